//! `SsmSecretStore` against moto: parameter layout, rotation lists, fail-closed, the cache.

use std::time::Duration;

use payhook_aws::SsmSecretStore;
use payhook_aws::aws_sdk_ssm::Client;
use payhook_aws::aws_sdk_ssm::types::ParameterType;
use payhook_aws::moto::unique_name;
use payhook_aws::secrets::{
    NOTIFICATION_URL_PARAMETER, SIGNING_SECRETS_PARAMETER, WEBHOOK_ID_PARAMETER, parameter_name,
};
use payhook_core::Provider;
use payhook_core::ports::{SecretError, SecretStore};
use payhook_core::secret::Secret;

use crate::support::{config_for, moto_config, refused_endpoint};

struct Ssm {
    client: Client,
    stage: String,
}

impl Ssm {
    async fn new() -> Option<Ssm> {
        let config = moto_config().await?;
        Some(Ssm {
            client: Client::new(&config),
            stage: unique_name("stage"),
        })
    }

    async fn put(&self, provider: Provider, parameter: &str, value: &str, kind: ParameterType) {
        self.client
            .put_parameter()
            .name(parameter_name(&self.stage, provider, parameter))
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }

    fn store(&self) -> SsmSecretStore {
        SsmSecretStore::new(self.client.clone(), self.stage.clone())
    }
}

fn exposed(secrets: &[Secret]) -> Vec<&str> {
    secrets.iter().map(Secret::expose).collect()
}

#[tokio::test]
async fn rotation_list_yields_every_secret_in_order() {
    let Some(ssm) = Ssm::new().await else { return };
    ssm.put(
        Provider::Stripe,
        SIGNING_SECRETS_PARAMETER,
        "whsec_new,whsec_old",
        ParameterType::SecureString,
    )
    .await;
    let secrets = ssm
        .store()
        .provider_secrets(Provider::Stripe)
        .await
        .unwrap();
    assert_eq!(
        exposed(&secrets.signing_secrets),
        ["whsec_new", "whsec_old"]
    );
    assert_eq!(secrets.notification_url, None);
    assert_eq!(secrets.webhook_id, None);
}

#[tokio::test]
async fn square_and_paypal_read_their_own_parameters() {
    let Some(ssm) = Ssm::new().await else { return };
    ssm.put(
        Provider::Square,
        SIGNING_SECRETS_PARAMETER,
        "sq_key",
        ParameterType::SecureString,
    )
    .await;
    ssm.put(
        Provider::Square,
        NOTIFICATION_URL_PARAMETER,
        "https://hooks.example.com/webhooks/square",
        ParameterType::String,
    )
    .await;
    ssm.put(
        Provider::Paypal,
        WEBHOOK_ID_PARAMETER,
        "8PT597110X687430LKGECATA",
        ParameterType::String,
    )
    .await;
    let store = ssm.store();

    let square = store.provider_secrets(Provider::Square).await.unwrap();
    assert_eq!(exposed(&square.signing_secrets), ["sq_key"]);
    assert_eq!(
        square.notification_url.as_deref(),
        Some("https://hooks.example.com/webhooks/square")
    );
    let paypal = store.provider_secrets(Provider::Paypal).await.unwrap();
    assert_eq!(
        paypal.webhook_id.as_deref(),
        Some("8PT597110X687430LKGECATA")
    );
    assert!(paypal.signing_secrets.is_empty());
}

#[tokio::test]
async fn provider_without_parameters_is_not_configured() {
    let Some(ssm) = Ssm::new().await else { return };
    // Another provider's secrets do not configure this one.
    ssm.put(
        Provider::Stripe,
        SIGNING_SECRETS_PARAMETER,
        "whsec_1",
        ParameterType::SecureString,
    )
    .await;
    let store = ssm.store();
    for provider in [Provider::Paypal, Provider::Square] {
        let err = store.provider_secrets(provider).await.unwrap_err();
        assert_eq!(err, SecretError::NotConfigured(provider));
        assert_eq!(err.code(), "provider_not_configured");
    }
    // Square's key without its notification URL is not enough to verify anything.
    ssm.put(
        Provider::Square,
        SIGNING_SECRETS_PARAMETER,
        "sq_key",
        ParameterType::SecureString,
    )
    .await;
    let fresh = ssm.store();
    assert_eq!(
        fresh.provider_secrets(Provider::Square).await,
        Err(SecretError::NotConfigured(Provider::Square))
    );
}

#[tokio::test]
async fn secrets_are_cached_until_the_ttl_passes() {
    let Some(ssm) = Ssm::new().await else { return };
    ssm.put(
        Provider::Stripe,
        SIGNING_SECRETS_PARAMETER,
        "whsec_old",
        ParameterType::SecureString,
    )
    .await;
    let ttl = Duration::from_millis(1_500);
    let store = ssm.store().with_cache_ttl(ttl);
    let first = store.provider_secrets(Provider::Stripe).await.unwrap();
    assert_eq!(exposed(&first.signing_secrets), ["whsec_old"]);

    ssm.put(
        Provider::Stripe,
        SIGNING_SECRETS_PARAMETER,
        "whsec_new,whsec_old",
        ParameterType::SecureString,
    )
    .await;
    let cached = store.provider_secrets(Provider::Stripe).await.unwrap();
    assert_eq!(
        exposed(&cached.signing_secrets),
        ["whsec_old"],
        "within the TTL SSM is not asked"
    );

    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let refreshed = store.provider_secrets(Provider::Stripe).await.unwrap();
    assert_eq!(
        exposed(&refreshed.signing_secrets),
        ["whsec_new", "whsec_old"]
    );

    ssm.put(
        Provider::Stripe,
        SIGNING_SECRETS_PARAMETER,
        "whsec_newest",
        ParameterType::SecureString,
    )
    .await;
    store.clear_cache().await;
    let cleared = store.provider_secrets(Provider::Stripe).await.unwrap();
    assert_eq!(exposed(&cleared.signing_secrets), ["whsec_newest"]);
}

#[tokio::test]
async fn not_configured_is_cached_too() {
    let Some(ssm) = Ssm::new().await else { return };
    let store = ssm.store().with_cache_ttl(Duration::from_secs(60));
    assert!(store.provider_secrets(Provider::Stripe).await.is_err());
    ssm.put(
        Provider::Stripe,
        SIGNING_SECRETS_PARAMETER,
        "whsec_1",
        ParameterType::SecureString,
    )
    .await;
    assert_eq!(
        store.provider_secrets(Provider::Stripe).await,
        Err(SecretError::NotConfigured(Provider::Stripe)),
        "an unconfigured provider does not cost an SSM call per request"
    );
    store.clear_cache().await;
    assert!(store.provider_secrets(Provider::Stripe).await.is_ok());
}

#[tokio::test]
async fn unreachable_ssm_is_unavailable() {
    let config = config_for(&refused_endpoint(), true).await;
    let store = SsmSecretStore::new(Client::new(&config), "prod");
    let result = crate::support::within(
        Duration::from_secs(10),
        store.provider_secrets(Provider::Stripe),
    )
    .await;
    match result {
        Err(err @ SecretError::Unavailable(_)) => {
            assert_eq!(err.code(), "secret_store_unavailable");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
