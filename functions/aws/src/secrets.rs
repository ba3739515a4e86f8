//! [`SsmSecretStore`]: provider secrets from SSM Parameter Store, cached in the function.
//!
//! Each provider's parameters live under `/payhook/{stage}/{provider}/`:
//!
//! | parameter          | type           | holds                                                  |
//! |--------------------|----------------|--------------------------------------------------------|
//! | `signing-secrets`  | `SecureString` | comma-separated secrets; several during a rotation     |
//! | `notification-url` | `String`       | Square: the subscription's notification URL            |
//! | `webhook-id`       | `String`       | PayPal: the receiver's webhook id                      |
//!
//! The validator asks for a provider's secrets on every request; one `GetParameters` call (with
//! decryption) fills the cache for [`DEFAULT_CACHE_TTL`], as Powertools Parameters does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use payhook_core::Provider;
use payhook_core::ports::{ProviderSecrets, SecretError, SecretStore};
use payhook_core::secret::Secret;
use tokio::sync::{Mutex, RwLock};

use crate::error::describe;

/// How long fetched secrets are reused before SSM is asked again (Powertools' default: 5 min).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// The root of every payhook parameter.
pub const PARAMETER_ROOT: &str = "/payhook";

/// Parameter holding the comma-separated signing secrets (Stripe endpoint secrets, Square
/// signature keys).
pub const SIGNING_SECRETS_PARAMETER: &str = "signing-secrets";

/// Parameter holding Square's notification URL.
pub const NOTIFICATION_URL_PARAMETER: &str = "notification-url";

/// Parameter holding PayPal's webhook id.
pub const WEBHOOK_ID_PARAMETER: &str = "webhook-id";

/// Every parameter of a provider, fetched together.
const PARAMETERS: [&str; 3] = [
    SIGNING_SECRETS_PARAMETER,
    NOTIFICATION_URL_PARAMETER,
    WEBHOOK_ID_PARAMETER,
];

/// The full name of one of a provider's parameters: `/payhook/{stage}/{provider}/{parameter}`.
pub fn parameter_name(stage: &str, provider: Provider, parameter: &str) -> String {
    format!("{PARAMETER_ROOT}/{stage}/{provider}/{parameter}")
}

/// Provider secrets read from SSM Parameter Store (with decryption) and cached in memory.
///
/// A provider counts as configured when it has what its verification needs: Stripe its signing
/// secrets, Square its signature keys and notification URL, PayPal its webhook id. Otherwise the
/// answer is [`SecretError::NotConfigured`] (fail closed), cached like a value so an unconfigured
/// provider cannot turn every request into an SSM call. A failed call is not cached.
#[derive(Debug)]
pub struct SsmSecretStore {
    client: crate::SdkClient<Client>,
    stage: String,
    ttl: Duration,
    cache: RwLock<HashMap<Provider, CacheEntry>>,
    /// Held while fetching, so a cold cache costs one SSM call however many requests wait.
    fetching: Mutex<()>,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    fetched_at: Instant,
    value: Result<ProviderSecrets, SecretError>,
}

impl SsmSecretStore {
    /// A store reading `/payhook/{stage}/…` with the [`DEFAULT_CACHE_TTL`].
    pub fn new(client: impl Into<crate::SdkClient<Client>>, stage: impl Into<String>) -> Self {
        SsmSecretStore {
            client: client.into(),
            stage: stage.into(),
            ttl: DEFAULT_CACHE_TTL,
            cache: RwLock::new(HashMap::new()),
            fetching: Mutex::new(()),
        }
    }

    /// Keeps fetched secrets for `ttl` instead (zero: ask SSM every time).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The stage whose parameters are read.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// Forgets every cached secret, so the next request reads SSM (after a rotation).
    pub async fn clear_cache(&self) {
        self.cache.write().await.clear();
    }

    async fn cached(&self, provider: Provider) -> Option<Result<ProviderSecrets, SecretError>> {
        let cache = self.cache.read().await;
        cache
            .get(&provider)
            .filter(|entry| entry.fetched_at.elapsed() < self.ttl)
            .map(|entry| entry.value.clone())
    }

    async fn fetch(&self, provider: Provider) -> Result<ProviderSecrets, SecretError> {
        let names = PARAMETERS.map(|parameter| parameter_name(&self.stage, provider, parameter));
        let output = self
            .client
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|err| SecretError::Unavailable(describe("SSM GetParameters", &err)))?;
        // Missing parameters come back in `invalid_parameters`, not as an error.
        let mut values: HashMap<&str, String> = HashMap::new();
        for parameter in output.parameters() {
            let (Some(name), Some(value)) = (parameter.name(), parameter.value()) else {
                continue;
            };
            if let Some((short, _)) = PARAMETERS
                .iter()
                .zip(&names)
                .find(|(_, full)| *full == name)
            {
                values.insert(short, value.to_owned());
            }
        }
        secrets_from_parameters(provider, &values)
    }
}

/// Builds a provider's secrets from its parameter values (keyed by short parameter name),
/// failing closed when something its verification needs is missing.
fn secrets_from_parameters(
    provider: Provider,
    values: &HashMap<&str, String>,
) -> Result<ProviderSecrets, SecretError> {
    let non_empty = |name: &str| {
        values
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let signing_secrets: Vec<Secret> = values
        .get(SIGNING_SECRETS_PARAMETER)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Secret::from)
                .collect()
        })
        .unwrap_or_default();
    let secrets = ProviderSecrets {
        signing_secrets,
        notification_url: non_empty(NOTIFICATION_URL_PARAMETER),
        webhook_id: non_empty(WEBHOOK_ID_PARAMETER),
    };
    let complete = match provider {
        Provider::Stripe => !secrets.signing_secrets.is_empty(),
        Provider::Square => {
            !secrets.signing_secrets.is_empty() && secrets.notification_url.is_some()
        }
        Provider::Paypal => secrets.webhook_id.is_some(),
    };
    if complete {
        Ok(secrets)
    } else {
        Err(SecretError::NotConfigured(provider))
    }
}

#[async_trait]
impl SecretStore for SsmSecretStore {
    async fn provider_secrets(&self, provider: Provider) -> Result<ProviderSecrets, SecretError> {
        if let Some(hit) = self.cached(provider).await {
            return hit;
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have filled the cache while this one waited.
        if let Some(hit) = self.cached(provider).await {
            return hit;
        }
        let value = self.fetch(provider).await;
        if !matches!(value, Err(SecretError::Unavailable(_))) {
            self.cache.write().await.insert(
                provider,
                CacheEntry {
                    fetched_at: Instant::now(),
                    value: value.clone(),
                },
            );
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn parameter_names_follow_the_design() {
        assert_eq!(
            parameter_name("prod", Provider::Square, NOTIFICATION_URL_PARAMETER),
            "/payhook/prod/square/notification-url"
        );
    }

    #[test]
    fn rotation_list_is_split_trimmed_and_blank_entries_dropped() {
        let secrets = secrets_from_parameters(
            Provider::Stripe,
            &values(&[(SIGNING_SECRETS_PARAMETER, " whsec_new , ,whsec_old,")]),
        )
        .unwrap();
        let exposed: Vec<_> = secrets.signing_secrets.iter().map(Secret::expose).collect();
        assert_eq!(exposed, ["whsec_new", "whsec_old"]);
    }

    #[test]
    fn incomplete_configuration_fails_closed() {
        let only_url = values(&[(NOTIFICATION_URL_PARAMETER, "https://example.com/hook")]);
        assert_eq!(
            secrets_from_parameters(Provider::Square, &only_url),
            Err(SecretError::NotConfigured(Provider::Square))
        );
        let blank = values(&[(SIGNING_SECRETS_PARAMETER, " , ")]);
        assert_eq!(
            secrets_from_parameters(Provider::Stripe, &blank),
            Err(SecretError::NotConfigured(Provider::Stripe))
        );
        let secrets_only = values(&[(SIGNING_SECRETS_PARAMETER, "k")]);
        assert_eq!(
            secrets_from_parameters(Provider::Paypal, &secrets_only),
            Err(SecretError::NotConfigured(Provider::Paypal))
        );
    }
}
