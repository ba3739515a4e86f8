//! `S3BlobStore` against moto: the quarantine bucket keeps what the status item cannot, and the
//! validator quarantines a large verified body there and replays it from there.

use std::sync::Arc;

use payhook_aws::moto::unique_name;
use payhook_aws::{DynamoStatusStore, S3BlobStore, create_bucket, create_table, s3_client};
use payhook_core::blob::{BlobStore, quarantine_key};
use payhook_core::currency::Rates;
use payhook_core::ports::{FixedClock, MemoryQueue, MemorySecretStore, ProviderSecrets};
use payhook_core::signature::{
    PaypalCertificateCache, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::status::{Status, StatusStore};
use payhook_core::validator::{
    MAX_QUARANTINED_BODY_BYTES, ReplayOutcome, Validator, ValidatorConfig, WebhookRequest,
};
use payhook_core::{Headers, Provider, Secret};
use payhook_testkit::conformance::workspace_root;

use crate::support::moto_config;

const NOW_MS: i64 = 1_767_225_600_000;
const SECRET: &str = "whsec_blob_test";

async fn bucket() -> Option<S3BlobStore> {
    let config = moto_config().await?;
    let client = s3_client(&config);
    let name = unique_name("payhook-quarantine");
    assert!(create_bucket(&client, &name).await.expect("create bucket"));
    assert!(
        !create_bucket(&client, &name).await.expect("again"),
        "a second create finds the bucket"
    );
    Some(S3BlobStore::new(client, name))
}

#[tokio::test]
async fn a_blob_reads_back_byte_for_byte_and_a_missing_key_is_none() {
    let Some(blobs) = bucket().await else { return };
    let body: Vec<u8> = (0..=255u8).cycle().take(300 * 1024).collect();
    let key = quarantine_key(Provider::Paypal, &body);
    assert_eq!(blobs.get(&key).await.unwrap(), None);
    blobs.put(&key, &body).await.unwrap();
    assert_eq!(blobs.get(&key).await.unwrap(), Some(body));
}

#[tokio::test]
async fn a_store_built_for_first_use_makes_its_client_then_and_reads_the_same_bucket() {
    let Some(given) = bucket().await else { return };
    let config = moto_config().await.expect("moto is up");
    let lazy = S3BlobStore::on_first_use(&config, given.bucket());
    assert!(
        !lazy.is_client_built(),
        "nothing is built before the first call"
    );
    let body = b"quarantined".to_vec();
    let key = quarantine_key(Provider::Stripe, &body);
    lazy.put(&key, &body).await.unwrap();
    assert!(lazy.is_client_built());
    assert_eq!(given.get(&key).await.unwrap(), Some(body.clone()));
    assert_eq!(lazy.clone().get(&key).await.unwrap(), Some(body));
}

fn oversized_unknown_currency_body() -> Vec<u8> {
    let path = workspace_root().join("tests/fixtures/stripe/payment_intent.succeeded.kwd.json");
    let mut event: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["id"] = "evt_blob_moto".into();
    event["data"]["object"]["currency"] = "xts".into();
    event["pad"] = "x".repeat(MAX_QUARANTINED_BODY_BYTES + 1).into();
    serde_json::to_vec(&event).unwrap()
}

fn validator(
    store: Arc<dyn StatusStore>,
    queue: Arc<MemoryQueue>,
    blobs: S3BlobStore,
    rates: Rates,
) -> Validator {
    let secrets = MemorySecretStore::new().with(
        Provider::Stripe,
        ProviderSecrets {
            signing_secrets: vec![Secret::new(SECRET)],
            ..Default::default()
        },
    );
    let certificates = PaypalCertificateCache::new(
        Arc::new(StaticCertificateFetcher::new(Vec::new())),
        TrustAnchors::mozilla(),
    );
    let config = ValidatorConfig {
        idempotency_retention_secs: 20 * 365 * 24 * 3600,
        rates: Arc::new(rates),
        ..ValidatorConfig::default()
    };
    Validator::new(
        Arc::new(secrets),
        store,
        queue,
        Arc::new(certificates),
        Arc::new(FixedClock(NOW_MS)),
        config,
    )
    .with_quarantine_blobs(Arc::new(blobs))
}

#[tokio::test]
async fn a_large_quarantined_body_goes_to_s3_and_is_replayed_from_it() {
    let Some(blobs) = bucket().await else { return };
    let Some(config) = moto_config().await else {
        return;
    };
    let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&config);
    let table = unique_name("webhook-processing");
    create_table(&dynamodb, &table).await.unwrap();
    let store: Arc<dyn StatusStore> =
        Arc::new(DynamoStatusStore::new(dynamodb).with_table_name(table));
    let queue = Arc::new(MemoryQueue::new());

    let body = oversized_unknown_currency_body();
    let mut headers = Headers::new();
    headers.insert(
        "Stripe-Signature",
        StripeVerifier::sign(&Secret::new(SECRET), NOW_MS / 1000, &body),
    );
    let bundled = Rates::bundled().unwrap();
    let before = validator(store.clone(), queue.clone(), blobs.clone(), bundled);
    let request = WebhookRequest {
        provider: "stripe",
        headers: &headers,
        body: &body,
        trace_header: None,
    };
    let accepted = before.handle(request).await.unwrap();
    assert_eq!(accepted.response().0, 202);
    let item = store.get("stripe:evt_blob_moto").await.unwrap().unwrap();
    assert_eq!(
        (item.status, item.raw_body.is_none()),
        (Status::Quarantined, true)
    );
    let key = item.raw_body_key.expect("an S3 key on the item");
    assert_eq!(blobs.get(&key).await.unwrap(), Some(body.clone()));

    let rates = Rates::from_json(
        r#"{"reporting_currency":"USD","as_of":"2026-12-02","currencies":{
            "USD":{"exponent":2,"rate":1},"XTS":{"exponent":3,"rate":2.0}}}"#,
    )
    .unwrap();
    let after = validator(store.clone(), queue.clone(), blobs, rates);
    assert_eq!(
        after
            .replay_quarantined("stripe:evt_blob_moto")
            .await
            .unwrap(),
        ReplayOutcome::Queued {
            webhook_id: "stripe:evt_blob_moto".into()
        }
    );
    assert_eq!(queue.messages().len(), 1);
    let item = store.get("stripe:evt_blob_moto").await.unwrap().unwrap();
    assert_eq!(item.status, Status::Queued);
}
