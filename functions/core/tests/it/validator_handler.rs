//! The webhook-validator handler's contract: every answer with its status and code, and a
//! webhook is acknowledged only once it is durably queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use payhook_core::ports::{
    FixedClock, MemoryQueue, MemorySecretStore, ProviderSecrets, Queue, QueueError, QueueMessage,
};
use payhook_core::ports::{SecretError, SecretStore};
use payhook_core::signature::{
    PaypalCertificateCache, SquareVerifier, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::status::{
    EVENT_AGE_MARGIN_SECS, MemoryStatusStore, PutOutcome, Status, StatusItem, StatusStore,
    StoreError, Transition, TransitionOutcome, TransmissionOutcome, TransmissionRecord,
};
use payhook_core::validator::{
    Accepted, IgnoredReason, Validator, ValidatorConfig, ValidatorError, WebhookRequest,
};
use payhook_core::{Headers, Provider, Secret};
use payhook_testkit::conformance::workspace_root;

const NOW_MS: i64 = 1_767_225_600_000;
const STRIPE_SECRET: &str = "whsec_validator_test";
const SQUARE_KEY: &str = "square-key";
const SQUARE_URL: &str = "https://hooks.example.com/prod/webhooks/square";

/// The recorded provider samples in `tests/fixtures` date from 2018 to 2025; the tests of other
/// behaviour keep them inside the accepted event age with a retention this long.
const FIXTURE_RETENTION_SECS: i64 = 20 * 365 * 24 * 3600;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/fixtures").join(path)).unwrap()
}

fn secrets() -> Arc<MemorySecretStore> {
    Arc::new(
        MemorySecretStore::new()
            .with(
                Provider::Stripe,
                ProviderSecrets {
                    signing_secrets: vec![Secret::new(STRIPE_SECRET)],
                    ..Default::default()
                },
            )
            .with(
                Provider::Square,
                ProviderSecrets {
                    signing_secrets: vec![Secret::new(SQUARE_KEY)],
                    notification_url: Some(SQUARE_URL.into()),
                    ..Default::default()
                },
            ),
    )
}

fn validator(store: Arc<dyn StatusStore>, queue: Arc<dyn Queue>) -> Validator {
    validator_at(store, queue, NOW_MS)
}

/// A validator whose clock stands at `now_ms`.
fn validator_at(store: Arc<dyn StatusStore>, queue: Arc<dyn Queue>, now_ms: i64) -> Validator {
    validator_with(
        store,
        queue,
        secrets(),
        now_ms,
        ValidatorConfig {
            idempotency_retention_secs: FIXTURE_RETENTION_SECS,
            ..ValidatorConfig::default()
        },
    )
}

fn validator_with(
    store: Arc<dyn StatusStore>,
    queue: Arc<dyn Queue>,
    secrets: Arc<dyn SecretStore>,
    now_ms: i64,
    config: ValidatorConfig,
) -> Validator {
    config.validate().expect("a valid configuration");
    let certs = Arc::new(PaypalCertificateCache::new(
        Arc::new(StaticCertificateFetcher::new(Vec::new())),
        TrustAnchors::mozilla(),
    ));
    Validator::new(
        secrets,
        store,
        queue,
        certs,
        Arc::new(FixedClock(now_ms)),
        config,
    )
}

/// Sends `body` to the Stripe endpoint, signed with the configured secret.
async fn send_signed_stripe(v: &Validator, body: &[u8]) -> Result<Accepted, ValidatorError> {
    send(v, "stripe", &stripe_headers(body, "Stripe-Signature"), body).await
}

fn stripe_headers(body: &[u8], header_name: &str) -> Headers {
    let mut h = Headers::new();
    h.insert(
        header_name,
        StripeVerifier::sign(&Secret::new(STRIPE_SECRET), NOW_MS / 1000, body),
    );
    h
}

async fn send(
    v: &Validator,
    provider: &str,
    headers: &Headers,
    body: &[u8],
) -> Result<Accepted, ValidatorError> {
    v.handle(WebhookRequest {
        provider,
        headers,
        body,
        trace_header: Some(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        ),
    })
    .await
}

#[tokio::test]
async fn signed_supported_event_is_queued_with_202_and_recorded_queued() {
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let v = validator(store.clone(), queue.clone());
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let accepted = send_signed_stripe(&v, &body).await.unwrap();
    let (status, json) = accepted.response();
    assert_eq!(status, 202);
    assert_eq!(json["status"], "queued");
    let messages = queue.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    let event: serde_json::Value = serde_json::from_str(&m.body).unwrap();
    assert_eq!(m.deduplication_id, event["webhook_id"].as_str().unwrap());
    assert_eq!(m.group_id, event["payment_id"].as_str().unwrap());
    assert!(m.trace_header.as_deref().unwrap().starts_with("Root=1-"));
    let item = store.get(accepted.webhook_id()).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Queued);
    assert_eq!(
        Some(item.received_at.as_str()),
        event["received_at"].as_str()
    );
}

#[tokio::test]
async fn header_names_are_case_insensitive() {
    let v = validator(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
    );
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    for name in ["stripe-signature", "STRIPE-SIGNATURE", "Stripe-Signature"] {
        let r = send(&v, "stripe", &stripe_headers(&body, name), &body).await;
        assert!(r.is_ok(), "{name}: {r:?}");
    }
}

#[tokio::test]
async fn second_delivery_is_a_200_duplicate_and_not_queued_again() {
    let queue = Arc::new(MemoryQueue::new());
    let v = validator(Arc::new(MemoryStatusStore::new()), queue.clone());
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let h = stripe_headers(&body, "Stripe-Signature");
    send(&v, "stripe", &h, &body).await.unwrap();
    let again = send(&v, "stripe", &h, &body).await.unwrap();
    assert!(matches!(
        again,
        Accepted::Duplicate {
            status: Status::Queued,
            ..
        }
    ));
    assert_eq!(again.response().0, 200);
    assert_eq!(again.response().1["status"], "duplicate");
    assert_eq!(queue.messages().len(), 1);
}

#[tokio::test]
async fn unsupported_event_type_is_a_200_ignored_and_recorded() {
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let v = validator(store.clone(), queue.clone());
    let body = fixture("stripe/customer.created.json");
    let r = send_signed_stripe(&v, &body).await.unwrap();
    assert_eq!(r.response().0, 200);
    assert_eq!(r.response().1["status"], "ignored");
    assert!(queue.messages().is_empty());
    assert_eq!(
        store.get(r.webhook_id()).await.unwrap().unwrap().status,
        Status::Ignored
    );
}

#[tokio::test]
async fn bad_signature_is_401_with_its_code() {
    let v = validator(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
    );
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let mut h = Headers::new();
    h.insert(
        "Stripe-Signature",
        StripeVerifier::sign(&Secret::new("whsec_wrong"), NOW_MS / 1000, &body),
    );
    let err = send(&v, "stripe", &h, &body).await.unwrap_err();
    assert_eq!(err.response(None).0, 401);
    assert_eq!(err.response(None).1["error"], "no_matching_signature");
    let err = send(&v, "stripe", &Headers::new(), &body)
        .await
        .unwrap_err();
    assert_eq!((err.http_status(), err.code()), (401, "missing_header"));
}

#[tokio::test]
async fn signed_but_malformed_supported_event_is_quarantined_not_refused() {
    let store = Arc::new(MemoryStatusStore::new());
    let v = validator(store.clone(), Arc::new(MemoryQueue::new()));
    let body = br#"{"id":"evt_bad","object":"event","type":"payment_intent.succeeded","created":1767225600,"data":{"object":{"id":"pi_1"}}}"#;
    let accepted = send(
        &v,
        "stripe",
        &stripe_headers(body, "Stripe-Signature"),
        body,
    )
    .await
    .unwrap();
    assert_eq!(accepted.response().0, 202);
    assert_eq!(accepted.response().1["reason"], "missing_field");
    let item = store.get("stripe:evt_bad").await.unwrap().unwrap();
    assert_eq!(item.status, Status::Quarantined);
}

#[tokio::test]
async fn empty_body_is_400() {
    let v = validator(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
    );
    let err = send(&v, "stripe", &stripe_headers(b"", "Stripe-Signature"), b"")
        .await
        .unwrap_err();
    assert_eq!((err.http_status(), err.code()), (400, "empty_body"));
}

#[tokio::test]
async fn unknown_provider_is_404() {
    let v = validator(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
    );
    let err = send(&v, "adyen", &Headers::new(), b"{}").await.unwrap_err();
    assert_eq!((err.http_status(), err.code()), (404, "unknown_provider"));
    // What is echoed into the log line is cut short.
    let long = "x".repeat(10_000);
    let err = send(&v, &long, &Headers::new(), b"{}").await.unwrap_err();
    assert!(err.to_string().len() < 200, "{}", err.to_string().len());
}

/// Counts secret lookups, and has PayPal unconfigured.
#[derive(Default)]
struct CountingSecrets {
    lookups: AtomicUsize,
}

#[async_trait]
impl SecretStore for CountingSecrets {
    async fn provider_secrets(&self, provider: Provider) -> Result<ProviderSecrets, SecretError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        secrets().provider_secrets(provider).await
    }
}

fn paypal_headers() -> Headers {
    [
        (
            "PAYPAL-TRANSMISSION-ID",
            "8d0bd1a0-c7a5-11f0-9b1c-0242ac120002",
        ),
        ("PAYPAL-TRANSMISSION-TIME", "2026-01-01T00:00:00Z"),
        (
            "PAYPAL-CERT-URL",
            "https://api.paypal.com/v1/notifications/certs/CERT-1",
        ),
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA"),
        ("PAYPAL-TRANSMISSION-SIG", "c2ln"),
    ]
    .into_iter()
    .collect()
}

#[tokio::test]
async fn provider_not_configured_on_this_stage_is_404_not_503() {
    let lookups = Arc::new(CountingSecrets::default());
    let v = validator_with(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
        lookups.clone(),
        NOW_MS,
        ValidatorConfig::default(),
    );
    let err = send(&v, "paypal", &paypal_headers(), b"{}")
        .await
        .unwrap_err();
    assert_eq!(
        (err.http_status(), err.code()),
        (404, "provider_not_configured")
    );
    assert_eq!(lookups.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn secrets_are_read_only_once_the_request_has_the_providers_signature_headers() {
    let lookups = Arc::new(CountingSecrets::default());
    let v = validator_with(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
        lookups.clone(),
        NOW_MS,
        ValidatorConfig::default(),
    );
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    // A Square signature sent to the Stripe endpoint, a PayPal request missing one header, and
    // an unconfigured provider without its headers: none of them reads a secret.
    let square_signed: Headers = [("x-square-hmacsha256-signature", "c2ln")]
        .into_iter()
        .collect();
    let err = send(&v, "stripe", &square_signed, &body).await.unwrap_err();
    assert_eq!((err.http_status(), err.code()), (401, "missing_header"));
    let partial: Headers = paypal_headers()
        .iter()
        .filter(|(name, _)| *name != "PAYPAL-AUTH-ALGO")
        .collect();
    let err = send(&v, "paypal", &partial, &body).await.unwrap_err();
    assert_eq!((err.http_status(), err.code()), (401, "missing_header"));
    let err = send(&v, "square", &Headers::new(), &body)
        .await
        .unwrap_err();
    assert_eq!((err.http_status(), err.code()), (401, "missing_header"));
    assert_eq!(lookups.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn body_over_the_limit_is_413_before_any_secret_or_signature_work() {
    let lookups = Arc::new(CountingSecrets::default());
    let store = Arc::new(MemoryStatusStore::new());
    let v = validator_with(
        store.clone(),
        Arc::new(MemoryQueue::new()),
        lookups.clone(),
        NOW_MS,
        ValidatorConfig {
            max_body_bytes: 1024,
            ..ValidatorConfig::default()
        },
    );
    let body = vec![b'x'; 1025];
    let err = send_signed_stripe(&v, &body).await.unwrap_err();
    assert_eq!((err.http_status(), err.code()), (413, "payload_too_large"));
    assert_eq!(lookups.lookups.load(Ordering::SeqCst), 0);
    assert!(store.snapshot().await.is_empty());
}

/// A queue with a tiny size limit.
struct TinyQueue;

#[async_trait]
impl Queue for TinyQueue {
    fn max_message_bytes(&self) -> usize {
        64
    }
    async fn send(&self, _message: QueueMessage) -> Result<String, QueueError> {
        panic!("nothing over the limit may be sent")
    }
}

#[tokio::test]
async fn message_over_the_queue_limit_is_413_and_not_recorded() {
    let store = Arc::new(MemoryStatusStore::new());
    let v = validator(store.clone(), Arc::new(TinyQueue));
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let err = send_signed_stripe(&v, &body).await.unwrap_err();
    assert_eq!((err.http_status(), err.code()), (413, "payload_too_large"));
    assert!(store.snapshot().await.is_empty());
}

/// A queue that fails its first `failures` sends.
struct FlakyQueue {
    failures: AtomicUsize,
    inner: MemoryQueue,
}

#[async_trait]
impl Queue for FlakyQueue {
    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable("connection refused".into()));
        }
        self.inner.send(message).await
    }
}

#[tokio::test]
async fn queue_failure_is_503_and_the_retry_is_enqueued_not_dropped_as_duplicate() {
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(FlakyQueue {
        failures: AtomicUsize::new(1),
        inner: MemoryQueue::new(),
    });
    let v = validator(store.clone(), queue.clone());
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let h = stripe_headers(&body, "Stripe-Signature");
    let err = send(&v, "stripe", &h, &body).await.unwrap_err();
    assert_eq!((err.http_status(), err.code()), (503, "queue_unavailable"));
    let retry = send(&v, "stripe", &h, &body).await.unwrap();
    assert!(matches!(retry, Accepted::Queued { .. }), "{retry:?}");
    assert_eq!(queue.inner.messages().len(), 1);
    assert_eq!(
        store.get(retry.webhook_id()).await.unwrap().unwrap().status,
        Status::Queued
    );
}

#[tokio::test]
async fn retry_keeps_the_first_receipt_so_the_queued_bytes_are_identical() {
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let h = stripe_headers(&body, "Stripe-Signature");
    // First attempt recorded RECEIVED at NOW_MS and then died before the enqueue.
    let first = validator(
        store.clone(),
        Arc::new(FlakyQueue {
            failures: AtomicUsize::new(1),
            inner: MemoryQueue::new(),
        }),
    );
    send(&first, "stripe", &h, &body).await.unwrap_err();
    let later = validator_at(store.clone(), queue.clone(), NOW_MS + 60_000);
    let retry = send(&later, "stripe", &h, &body).await.unwrap();
    let Accepted::Queued { event, .. } = retry else {
        panic!("not queued")
    };
    assert_eq!(
        event.received_at.as_deref(),
        Some("2026-01-01T00:00:00.000Z")
    );
}

/// A status store that is down.
struct DownStore;

#[async_trait]
impl StatusStore for DownStore {
    async fn get(&self, _: &str) -> Result<Option<StatusItem>, StoreError> {
        Err(StoreError::Unavailable("timeout".into()))
    }
    async fn put_new(&self, _: &StatusItem) -> Result<PutOutcome, StoreError> {
        Err(StoreError::Unavailable("timeout".into()))
    }
    async fn transition(&self, _: &str, _: &Transition) -> Result<TransitionOutcome, StoreError> {
        Err(StoreError::Unavailable("timeout".into()))
    }
    async fn record_transmission(
        &self,
        _: &TransmissionRecord,
        _: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        Err(StoreError::Unavailable("timeout".into()))
    }
}

/// A status store failing as DynamoDB does, with the details an AWS error carries.
struct LeakyStore;

const AWS_DETAIL: &str = "ResourceNotFoundException: Requested resource not found: \
    arn:aws:dynamodb:us-east-1:123456789012:table/webhook-processing (service error)";

#[async_trait]
impl StatusStore for LeakyStore {
    async fn get(&self, _: &str) -> Result<Option<StatusItem>, StoreError> {
        Err(StoreError::Unavailable(AWS_DETAIL.into()))
    }
    async fn put_new(&self, _: &StatusItem) -> Result<PutOutcome, StoreError> {
        Err(StoreError::Unavailable(AWS_DETAIL.into()))
    }
    async fn transition(&self, _: &str, _: &Transition) -> Result<TransitionOutcome, StoreError> {
        Err(StoreError::Unavailable(AWS_DETAIL.into()))
    }
    async fn record_transmission(
        &self,
        _: &TransmissionRecord,
        _: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        Err(StoreError::Unavailable(AWS_DETAIL.into()))
    }
}

#[tokio::test]
async fn error_bodies_carry_the_code_a_fixed_message_and_the_request_id_never_aws_detail() {
    let v = validator(Arc::new(LeakyStore), Arc::new(MemoryQueue::new()));
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let err = send_signed_stripe(&v, &body).await.unwrap_err();
    assert!(
        err.to_string().contains("arn:aws"),
        "the log line keeps the detail"
    );
    let (status, json) = err.response(Some("c0ffee-request"));
    assert_eq!(status, 503);
    assert_eq!(json["error"], "state_store_unavailable");
    assert_eq!(json["request_id"], "c0ffee-request");
    let text = json.to_string();
    for leak in [
        "arn:",
        "123456789012",
        "ResourceNotFound",
        "dynamodb",
        "service error",
    ] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
}

#[tokio::test]
async fn state_store_failure_is_503_and_nothing_is_queued() {
    let queue = Arc::new(MemoryQueue::new());
    let v = validator(Arc::new(DownStore), queue.clone());
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let err = send_signed_stripe(&v, &body).await.unwrap_err();
    assert_eq!(
        (err.http_status(), err.code()),
        (503, "state_store_unavailable")
    );
    assert!(queue.messages().is_empty());
}

#[tokio::test]
async fn square_webhook_signed_over_url_and_body_is_queued() {
    let queue = Arc::new(MemoryQueue::new());
    let v = validator(Arc::new(MemoryStatusStore::new()), queue.clone());
    let body = fixture("square/dispute.created.json");
    let mut h = Headers::new();
    h.insert(
        "X-Square-HmacSha256-Signature",
        SquareVerifier::sign(&Secret::new(SQUARE_KEY), SQUARE_URL, &body),
    );
    let r = send(&v, "square", &h, &body).await.unwrap();
    assert_eq!(r.response().0, 202);
    assert_eq!(queue.messages()[0].provider, Provider::Square);
}

#[tokio::test]
async fn square_event_older_than_the_idempotency_retention_is_refused_one_just_inside_passes() {
    let body = fixture("square/dispute.created.json");
    // The event's own time: `created_at` 2020-02-19T21:24:53.258Z.
    let occurred_ms = 1_582_147_493_258;
    let config = ValidatorConfig::default();
    let max_age_ms = (config.idempotency_retention_secs - EVENT_AGE_MARGIN_SECS) * 1000;
    let mut h = Headers::new();
    h.insert(
        "x-square-hmacsha256-signature",
        SquareVerifier::sign(&Secret::new(SQUARE_KEY), SQUARE_URL, &body),
    );
    let at = |now_ms: i64| {
        validator_with(
            Arc::new(MemoryStatusStore::new()),
            Arc::new(MemoryQueue::new()),
            secrets(),
            now_ms,
            config.clone(),
        )
    };
    let inside = send(&at(occurred_ms + max_age_ms), "square", &h, &body)
        .await
        .unwrap();
    assert_eq!(inside.response().0, 202);
    let err = send(&at(occurred_ms + max_age_ms + 1), "square", &h, &body)
        .await
        .unwrap_err();
    assert_eq!((err.http_status(), err.code()), (401, "event_too_old"));
    assert!(err.is_signature_failure());
}

#[tokio::test]
async fn the_status_item_lives_exactly_the_retention_that_bounds_the_event_age() {
    let store = Arc::new(MemoryStatusStore::new());
    let config = ValidatorConfig {
        idempotency_retention_secs: 10 * 24 * 3600,
        ..ValidatorConfig::default()
    };
    let body = stripe_event_created_at(NOW_MS / 1000 - 3600, true);
    let v = validator_with(
        store.clone(),
        Arc::new(MemoryQueue::new()),
        secrets(),
        NOW_MS,
        config.clone(),
    );
    send_signed_stripe(&v, &body).await.unwrap();
    let item = &store.snapshot().await[0];
    assert_eq!(
        item.expires_at,
        NOW_MS / 1000 + config.idempotency_retention_secs
    );
    // A later transition does not move it: the record's life is counted from first receipt.
    let t = Transition::new(Status::Processing, &[Status::Queued], NOW_MS + 86_400_000);
    store.transition(&item.webhook_id, &t).await.unwrap();
    assert_eq!(store.snapshot().await[0].expires_at, item.expires_at);
}

/// A Stripe `payment_intent.succeeded` created at `created` (Unix seconds).
fn stripe_event_created_at(created: i64, livemode: bool) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("stripe/payment_intent.succeeded.jpy.json")).unwrap();
    event["created"] = created.into();
    event["livemode"] = livemode.into();
    serde_json::to_vec(&event).unwrap()
}

#[tokio::test]
async fn stage_requiring_live_mode_answers_test_mode_events_200_ignored_with_the_reason() {
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let v = validator_with(
        store.clone(),
        queue.clone(),
        secrets(),
        NOW_MS,
        ValidatorConfig {
            stripe_require_livemode: true,
            ..ValidatorConfig::default()
        },
    );
    let test_mode = stripe_event_created_at(NOW_MS / 1000, false);
    let accepted = send_signed_stripe(&v, &test_mode).await.unwrap();
    let (status, json) = accepted.response();
    assert_eq!(status, 200);
    assert_eq!(json["status"], "ignored");
    assert_eq!(json["reason"], "test_mode");
    assert!(matches!(
        accepted,
        Accepted::Ignored {
            reason: IgnoredReason::TestMode,
            ..
        }
    ));
    assert!(queue.messages().is_empty());
    assert_eq!(store.snapshot().await[0].status, Status::Ignored);

    let mut live: serde_json::Value =
        serde_json::from_slice(&stripe_event_created_at(NOW_MS / 1000, true)).unwrap();
    live["id"] = "evt_live_1".into();
    let live = serde_json::to_vec(&live).unwrap();
    assert_eq!(
        send_signed_stripe(&v, &live).await.unwrap().response().0,
        202
    );
}

#[test]
fn a_stripe_tolerance_of_zero_needs_its_explicit_switch() {
    let off = ValidatorConfig {
        stripe_tolerance_secs: 0,
        ..ValidatorConfig::default()
    };
    assert!(off.validate().is_err());
    let meant = ValidatorConfig {
        stripe_allow_no_tolerance: true,
        ..off
    };
    assert_eq!(meant.validate(), Ok(()));
}

#[test]
fn a_retention_too_short_for_the_providers_retries_is_refused() {
    let short = ValidatorConfig {
        idempotency_retention_secs: 3 * 24 * 3600,
        ..ValidatorConfig::default()
    };
    let err = short.validate().unwrap_err();
    assert!(err.to_string().contains("retry"), "{err}");
    let enough = ValidatorConfig {
        idempotency_retention_secs: 4 * 24 * 3600,
        ..ValidatorConfig::default()
    };
    assert_eq!(enough.validate(), Ok(()));
    // The record outlives the PayPal window in which a transmission verifies.
    assert!(
        enough.transmission_record_secs()
            > 2 * i64::try_from(enough.paypal_tolerance_secs).unwrap()
    );
}

#[tokio::test]
async fn queued_event_carries_the_exact_amount_and_the_reporting_amount_or_none_without_a_rate() {
    let body = fixture("stripe/payment_intent.succeeded.kwd.json");
    let queued = |rates: payhook_core::currency::Rates| {
        let queue = Arc::new(MemoryQueue::new());
        let v = validator_with(
            Arc::new(MemoryStatusStore::new()),
            queue.clone(),
            secrets(),
            NOW_MS,
            ValidatorConfig {
                idempotency_retention_secs: FIXTURE_RETENTION_SECS,
                rates: Arc::new(rates),
                ..ValidatorConfig::default()
            },
        );
        let body = body.clone();
        async move {
            send_signed_stripe(&v, &body).await.unwrap();
            let message = &queue.messages()[0];
            serde_json::from_str::<serde_json::Value>(&message.body).unwrap()
        }
    };
    // KWD 12.340 (three decimals) at the rates file's 3.25 USD per dinar.
    let rated = queued(payhook_core::currency::Rates::bundled().unwrap()).await;
    assert_eq!(rated["amount_decimal"], "12.340");
    assert_eq!(rated["amount_reporting"], 40.11);
    assert_eq!(rated["reporting_currency"], "USD");
    let unrated = queued(payhook_core::currency::Rates::usd_only()).await;
    assert_eq!(unrated["amount_decimal"], "12.340");
    assert!(unrated.get("amount_reporting").is_none(), "{unrated}");
    assert!(unrated.get("reporting_currency").is_none());
}

/// The KWD fixture re-labelled in a currency payhook does not know (`XTS`, ISO's test code).
fn unknown_currency_body(event_id: &str) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("stripe/payment_intent.succeeded.kwd.json")).unwrap();
    event["id"] = event_id.into();
    event["data"]["object"]["currency"] = "xts".into();
    serde_json::to_vec(&event).unwrap()
}

fn validator_with_rates(
    store: Arc<MemoryStatusStore>,
    queue: Arc<MemoryQueue>,
    rates: payhook_core::currency::Rates,
) -> Validator {
    validator_with(
        store,
        queue,
        secrets(),
        NOW_MS,
        ValidatorConfig {
            idempotency_retention_secs: FIXTURE_RETENTION_SECS,
            rates: Arc::new(rates),
            ..ValidatorConfig::default()
        },
    )
}

#[tokio::test]
async fn verified_body_that_cannot_be_normalised_is_quarantined_whole_and_answered_202() {
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let v = validator(store.clone(), queue.clone());
    let body = unknown_currency_body("evt_quarantine_1");
    let accepted = send_signed_stripe(&v, &body).await.unwrap();
    let (status, json) = accepted.response();
    assert_eq!(status, 202);
    assert_eq!(json["status"], "quarantined");
    assert_eq!(json["reason"], "unsupported_currency");
    assert!(queue.messages().is_empty(), "nothing queued");
    let item = store.get("stripe:evt_quarantine_1").await.unwrap().unwrap();
    assert_eq!(item.status, Status::Quarantined);
    assert!(
        item.quarantine_reason
            .as_deref()
            .unwrap()
            .starts_with("unsupported_currency")
    );
    use base64::Engine as _;
    let kept = base64::engine::general_purpose::STANDARD
        .decode(item.raw_body.as_deref().unwrap())
        .unwrap();
    assert_eq!(kept, body, "the raw bytes, exactly");

    // The provider's retry is a duplicate, not a second quarantine.
    let again = send_signed_stripe(&v, &body).await.unwrap();
    assert_eq!(again.response().0, 200);
    assert_eq!(again.response().1["state"], "QUARANTINED");

    // Not even JSON, but verified: kept under a digest of the body.
    let garbage = b"{not json".to_vec();
    let accepted = send_signed_stripe(&v, &garbage).await.unwrap();
    let webhook_id = accepted.webhook_id().to_owned();
    assert!(webhook_id.starts_with("stripe:unreadable-"), "{webhook_id}");
    assert_eq!(accepted.response().1["reason"], "invalid_json");
}

#[tokio::test]
async fn unauthenticated_or_oversized_bodies_are_never_quarantined() {
    let store = Arc::new(MemoryStatusStore::new());
    let v = validator(store.clone(), Arc::new(MemoryQueue::new()));
    let body = unknown_currency_body("evt_forged");
    let mut h = Headers::new();
    h.insert(
        "Stripe-Signature",
        StripeVerifier::sign(&Secret::new("whsec_wrong"), NOW_MS / 1000, &body),
    );
    let err = send(&v, "stripe", &h, &body).await.unwrap_err();
    assert_eq!(err.http_status(), 401);
    let huge = format!(
        "{{\"id\":\"evt_huge\",\"pad\":\"{}\"}}",
        "x".repeat(payhook_core::validator::MAX_QUARANTINED_BODY_BYTES)
    );
    let err = send_signed_stripe(&v, huge.as_bytes()).await.unwrap_err();
    assert_eq!(
        (err.http_status(), err.code()),
        (503, "quarantine_unavailable")
    );
    assert!(store.snapshot().await.is_empty());
}

#[tokio::test]
async fn a_quarantined_webhook_is_replayed_once_after_the_rates_file_gains_its_currency() {
    use payhook_core::currency::Rates;
    use payhook_core::validator::ReplayOutcome;
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let before = validator_with_rates(store.clone(), queue.clone(), Rates::bundled().unwrap());
    send_signed_stripe(&before, &unknown_currency_body("evt_replay_1"))
        .await
        .unwrap();
    assert_eq!(
        before
            .replay_quarantined("stripe:evt_replay_1")
            .await
            .unwrap(),
        ReplayOutcome::StillFailing {
            reason: "unsupported_currency"
        }
    );
    assert!(queue.messages().is_empty());

    let rates = Rates::from_json(
        r#"{"reporting_currency":"USD","as_of":"2026-12-02","currencies":{
            "USD":{"exponent":2,"rate":1},"XTS":{"exponent":3,"rate":2.0}}}"#,
    )
    .unwrap();
    let after = validator_with_rates(store.clone(), queue.clone(), rates);
    assert_eq!(
        after
            .replay_quarantined("stripe:evt_replay_1")
            .await
            .unwrap(),
        ReplayOutcome::Queued {
            webhook_id: "stripe:evt_replay_1".into()
        }
    );
    assert_eq!(
        after
            .replay_quarantined("stripe:evt_replay_1")
            .await
            .unwrap(),
        ReplayOutcome::NotQuarantined(Some(Status::Queued)),
        "a second replay does nothing"
    );
    let messages = queue.messages();
    assert_eq!(messages.len(), 1);
    let event: serde_json::Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(event["currency"], "XTS");
    assert_eq!(event["amount_decimal"], "12.340");
    assert_eq!(event["amount_reporting"], 24.68);
    assert_eq!(
        event["received_at"], "2026-01-01T00:00:00.000Z",
        "first receipt kept"
    );
    let item = store.get("stripe:evt_replay_1").await.unwrap().unwrap();
    assert_eq!(item.status, Status::Queued);
}

/// A queue that counts every send, deduplicating nothing (a replay's repeat would show).
#[derive(Default)]
struct CountingQueue {
    sent: std::sync::Mutex<Vec<QueueMessage>>,
}

#[async_trait]
impl Queue for CountingQueue {
    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        let mut sent = self.sent.lock().unwrap();
        sent.push(message);
        Ok(format!("counted-{}", sent.len()))
    }
}

fn xts_rates() -> payhook_core::currency::Rates {
    payhook_core::currency::Rates::from_json(
        r#"{"reporting_currency":"USD","as_of":"2026-12-02","currencies":{
            "USD":{"exponent":2,"rate":1},"XTS":{"exponent":3,"rate":2.0}}}"#,
    )
    .unwrap()
}

/// An unknown-currency Stripe event padded past what a status item keeps inline.
fn oversized_unknown_currency_body(event_id: &str) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&unknown_currency_body(event_id)).unwrap();
    event["pad"] = "x"
        .repeat(payhook_core::validator::MAX_QUARANTINED_BODY_BYTES + 1024)
        .into();
    serde_json::to_vec(&event).unwrap()
}

#[tokio::test]
async fn a_body_too_big_for_the_item_is_quarantined_in_the_blob_store_and_replayed_from_it_once() {
    use payhook_core::blob::{BlobStore, MemoryBlobStore};
    use payhook_core::validator::ReplayOutcome;
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(CountingQueue::default());
    let blobs = Arc::new(MemoryBlobStore::new());
    let body = oversized_unknown_currency_body("evt_big_1");
    let v = validator(store.clone(), queue.clone()).with_quarantine_blobs(blobs.clone());

    let accepted = send_signed_stripe(&v, &body).await.unwrap();
    assert_eq!(accepted.response().0, 202, "kept, not a 503");
    let item = store.get("stripe:evt_big_1").await.unwrap().unwrap();
    assert_eq!(item.status, Status::Quarantined);
    assert_eq!(item.raw_body, None, "not inline");
    let key = item.raw_body_key.clone().expect("the blob's key");
    assert_eq!(
        blobs.get(&key).await.unwrap(),
        Some(body.clone()),
        "the bytes, exactly"
    );
    let again = send_signed_stripe(&v, &body).await.unwrap();
    assert_eq!(
        again.response().1["state"],
        "QUARANTINED",
        "a retry is a duplicate"
    );
    assert_eq!(blobs.keys().len(), 1, "one object for both deliveries");

    // A replay without the blob store cannot read the body: a 503-class error, nothing moves.
    let blind = validator_with_rates(store.clone(), Arc::new(MemoryQueue::new()), xts_rates());
    let err = blind
        .replay_quarantined("stripe:evt_big_1")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.is_retryable()),
        ("blob_store_not_configured", true)
    );

    let after = validator_with(
        store.clone(),
        queue.clone(),
        secrets(),
        NOW_MS,
        ValidatorConfig {
            idempotency_retention_secs: FIXTURE_RETENTION_SECS,
            rates: Arc::new(xts_rates()),
            ..ValidatorConfig::default()
        },
    )
    .with_quarantine_blobs(blobs.clone());
    for _ in 0..2 {
        after.replay_quarantined("stripe:evt_big_1").await.unwrap();
    }
    let sent = queue.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "replaying twice enqueues once");
    let event: serde_json::Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(event["webhook_id"], "stripe:evt_big_1");
    assert_eq!(
        after.replay_quarantined("stripe:evt_big_1").await.unwrap(),
        ReplayOutcome::NotQuarantined(Some(Status::Queued))
    );
}

#[tokio::test]
async fn a_received_item_keeps_the_exact_bytes_it_queued() {
    let store = Arc::new(MemoryStatusStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let v = validator(store.clone(), queue.clone());
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let accepted = send_signed_stripe(&v, &body).await.unwrap();
    let item = store.get(accepted.webhook_id()).await.unwrap().unwrap();
    assert_eq!(
        item.message_body.as_deref(),
        Some(queue.messages()[0].body.as_str()),
        "what the sweeper would enqueue again is what was queued"
    );
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table of every error with its code and public message, checked by one loop"
)]
fn every_error_code_has_its_fixed_public_message() {
    use payhook_core::validator::{error_body, public_message};
    let retry_later = "The webhook could not be stored; retry later.";
    let expected = [
        (
            "unknown_provider",
            "No webhook provider of that name; use stripe, paypal or square.",
        ),
        (
            "provider_not_configured",
            "This provider is not configured on this stage.",
        ),
        (
            "payload_too_large",
            "The request body is larger than accepted.",
        ),
        ("empty_body", "The request body is empty."),
        (
            "invalid_base64",
            "The request body is flagged base64 but is not valid base64.",
        ),
        (
            "missing_header",
            "A signature header the provider always sends is missing.",
        ),
        ("malformed_header", "A signature header cannot be parsed."),
        (
            "no_v1_signature",
            "The Stripe-Signature header carries no v1 signature.",
        ),
        (
            "no_matching_signature",
            "The signature does not match the request body.",
        ),
        (
            "timestamp_too_old",
            "The signature's timestamp is older than the tolerance.",
        ),
        (
            "timestamp_out_of_tolerance",
            "The transmission time is too far from now.",
        ),
        (
            "transmission_replayed",
            "This transmission was already received with another body.",
        ),
        (
            "event_too_old",
            "The event is older than this endpoint accepts.",
        ),
        (
            "cert_url_not_allowed",
            "The certificate URL is not one of PayPal's.",
        ),
        (
            "cert_not_available",
            "The certificate URL did not serve a certificate.",
        ),
        (
            "cert_fetch_failed",
            "The signing certificate could not be fetched; retry later.",
        ),
        (
            "cert_expired",
            "The signing certificate is outside its validity period.",
        ),
        ("cert_untrusted", "The signing certificate is not trusted."),
        (
            "cert_name_mismatch",
            "The signing certificate is not a PayPal message certificate.",
        ),
        (
            "unsupported_algorithm",
            "The signature algorithm is not accepted.",
        ),
        (
            "not_configured",
            "Signature verification is not configured for this provider.",
        ),
        ("invalid_json", "The body is not valid JSON."),
        (
            "missing_field",
            "The event lacks a field its type requires.",
        ),
        (
            "invalid_field",
            "A field of the event has an invalid value.",
        ),
        ("invalid_amount", "The event's amount is not valid."),
        (
            "unsupported_currency",
            "The event's currency is not supported.",
        ),
        ("secret_store_unavailable", retry_later),
        ("state_store_unavailable", retry_later),
        ("state_store_corrupt", retry_later),
        ("queue_unavailable", retry_later),
        ("quarantine_unavailable", retry_later),
        ("blob_store_unavailable", retry_later),
        ("blob_store_not_configured", retry_later),
        ("blob_missing", retry_later),
        ("something_new", "The request was not accepted."),
    ];
    for (code, message) in expected {
        assert_eq!(public_message(code), message, "{code}");
    }
    assert_eq!(
        error_body("event_too_old", Some("req-1")),
        serde_json::json!({
            "error": "event_too_old",
            "message": "The event is older than this endpoint accepts.",
            "request_id": "req-1",
        })
    );
    assert_eq!(
        error_body("empty_body", None),
        serde_json::json!({
            "error": "empty_body",
            "message": "The request body is empty.",
            "request_id": null,
        })
    );
}

#[test]
fn each_error_has_its_status_its_retry_and_whether_it_refuses_authenticity() {
    use payhook_core::blob::BlobError;
    use payhook_core::signature::SignatureError;
    let cases: Vec<(ValidatorError, u16, bool)> = vec![
        (
            ValidatorError::UnknownProvider("adyen".parse::<Provider>().unwrap_err()),
            404,
            false,
        ),
        (
            ValidatorError::Secrets(SecretError::NotConfigured(Provider::Paypal)),
            404,
            false,
        ),
        (
            ValidatorError::Signature(SignatureError::EmptyBody),
            400,
            false,
        ),
        (
            ValidatorError::Signature(SignatureError::CertFetchFailed("timeout".into())),
            503,
            false,
        ),
        (
            ValidatorError::Signature(SignatureError::NoMatchingSignature),
            401,
            true,
        ),
        (
            ValidatorError::Signature(SignatureError::MissingHeader("Stripe-Signature")),
            401,
            true,
        ),
        (
            ValidatorError::TransmissionReplayed {
                transmission_id: "tx-1".into(),
            },
            401,
            true,
        ),
        (
            ValidatorError::EventTooOld {
                occurred_at: "2020-01-01T00:00:00Z".into(),
                max_age_secs: 1,
            },
            401,
            true,
        ),
        (
            ValidatorError::PayloadTooLarge { size: 2, limit: 1 },
            413,
            false,
        ),
        (
            ValidatorError::QuarantineUnavailable { size: 2, limit: 1 },
            503,
            false,
        ),
        (
            ValidatorError::Secrets(SecretError::Unavailable("timeout".into())),
            503,
            false,
        ),
        (
            ValidatorError::StateStore(StoreError::Corrupt("x".into())),
            503,
            false,
        ),
        (
            ValidatorError::Queue(QueueError::Unavailable("x".into())),
            503,
            false,
        ),
        (
            ValidatorError::QuarantineBlobs(BlobError::NotConfigured),
            503,
            false,
        ),
    ];
    for (err, status, signature_failure) in cases {
        assert_eq!(err.http_status(), status, "{err:?}");
        assert_eq!(err.is_retryable(), status >= 500, "{err:?}");
        assert_eq!(err.is_signature_failure(), signature_failure, "{err:?}");
        assert_eq!(err.response(None).0, status, "{err:?}");
    }
}

#[test]
fn a_queue_refusing_the_size_is_a_413_and_any_other_queue_failure_a_503() {
    let too_large = ValidatorError::from(QueueError::TooLarge {
        size: 300_000,
        limit: 262_144,
    });
    assert_eq!(
        too_large,
        ValidatorError::PayloadTooLarge {
            size: 300_000,
            limit: 262_144
        }
    );
    assert_eq!(
        (too_large.http_status(), too_large.code()),
        (413, "payload_too_large")
    );
    let down = ValidatorError::from(QueueError::Unavailable("timeout".into()));
    assert_eq!(
        down,
        ValidatorError::Queue(QueueError::Unavailable("timeout".into()))
    );
    assert_eq!(
        (down.http_status(), down.code()),
        (503, "queue_unavailable")
    );
}

#[test]
fn the_validators_limits() {
    use payhook_core::validator::{
        DEFAULT_MAX_BODY_BYTES, LONGEST_PROVIDER_RETRY_SECS, MAX_QUARANTINED_BODY_BYTES,
        TRANSMISSION_RECORD_MARGIN_SECS,
    };
    assert_eq!(DEFAULT_MAX_BODY_BYTES, 1_048_576);
    assert_eq!(LONGEST_PROVIDER_RETRY_SECS, 259_200, "3 days");
    assert_eq!(MAX_QUARANTINED_BODY_BYTES, 286_720, "280 KiB");
    assert_eq!(TRANSMISSION_RECORD_MARGIN_SECS, 3_600);
    // The PayPal tolerance either side of the transmission time, and the margin.
    assert_eq!(ValidatorConfig::default().transmission_record_secs(), 4_200);
    let wide = ValidatorConfig {
        paypal_tolerance_secs: 1_000,
        ..ValidatorConfig::default()
    };
    assert_eq!(wide.transmission_record_secs(), 5_600);
    // A tolerance past i64 still keeps the record (a quarter of i64::MAX, twice, and the margin).
    let unbounded = ValidatorConfig {
        paypal_tolerance_secs: u64::MAX,
        ..ValidatorConfig::default()
    };
    assert_eq!(
        unbounded.transmission_record_secs(),
        4_611_686_018_427_391_502
    );
}

#[test]
fn a_zero_paypal_tolerance_or_body_limit_is_refused() {
    let paypal = ValidatorConfig {
        paypal_tolerance_secs: 0,
        ..ValidatorConfig::default()
    };
    assert_eq!(
        paypal.validate().unwrap_err().0,
        "the PayPal tolerance must be at least 1 second"
    );
    let body = ValidatorConfig {
        max_body_bytes: 0,
        ..ValidatorConfig::default()
    };
    assert_eq!(
        body.validate().unwrap_err().0,
        "the body limit must be at least 1 byte"
    );
    let one = ValidatorConfig {
        max_body_bytes: 1,
        paypal_tolerance_secs: 1,
        ..ValidatorConfig::default()
    };
    assert_eq!(one.validate(), Ok(()));
    assert_eq!(ValidatorConfig::default().validate(), Ok(()));
}

#[tokio::test]
async fn a_body_exactly_at_the_limit_is_accepted() {
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let v = validator_with(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
        secrets(),
        NOW_MS,
        ValidatorConfig {
            idempotency_retention_secs: FIXTURE_RETENTION_SECS,
            max_body_bytes: body.len(),
            ..ValidatorConfig::default()
        },
    );
    let accepted = send_signed_stripe(&v, &body).await.unwrap();
    assert_eq!(accepted.response().0, 202);
}

/// A queue whose size limit is set per test.
struct SizedQueue {
    limit: usize,
    inner: MemoryQueue,
}

#[async_trait]
impl Queue for SizedQueue {
    fn max_message_bytes(&self) -> usize {
        self.limit
    }
    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        self.inner.send(message).await
    }
}

#[tokio::test]
async fn a_message_exactly_at_the_queue_limit_is_queued_one_byte_over_is_not() {
    let body = fixture("stripe/payment_intent.succeeded.jpy.json");
    let probe = Arc::new(MemoryQueue::new());
    send_signed_stripe(
        &validator(Arc::new(MemoryStatusStore::new()), probe.clone()),
        &body,
    )
    .await
    .unwrap();
    let size = probe.messages()[0].body.len();
    let at = |limit: usize| {
        validator(
            Arc::new(MemoryStatusStore::new()),
            Arc::new(SizedQueue {
                limit,
                inner: MemoryQueue::new(),
            }),
        )
    };
    let accepted = send_signed_stripe(&at(size), &body).await.unwrap();
    assert_eq!(accepted.response().0, 202);
    let err = send_signed_stripe(&at(size - 1), &body).await.unwrap_err();
    assert_eq!(
        err,
        ValidatorError::PayloadTooLarge {
            size,
            limit: size - 1
        }
    );
}

/// An unknown-currency Stripe event padded to exactly `size` bytes.
fn unknown_currency_body_of(event_id: &str, size: usize) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&unknown_currency_body(event_id)).unwrap();
    event["pad"] = "".into();
    let bare = serde_json::to_vec(&event).unwrap().len();
    event["pad"] = "x".repeat(size - bare).into();
    let body = serde_json::to_vec(&event).unwrap();
    assert_eq!(body.len(), size);
    body
}

#[tokio::test]
async fn a_body_of_exactly_the_inline_limit_is_quarantined_inline() {
    use payhook_core::blob::MemoryBlobStore;
    use payhook_core::validator::MAX_QUARANTINED_BODY_BYTES;
    let store = Arc::new(MemoryStatusStore::new());
    let blobs = Arc::new(MemoryBlobStore::new());
    let v =
        validator(store.clone(), Arc::new(MemoryQueue::new())).with_quarantine_blobs(blobs.clone());
    let inline = unknown_currency_body_of("evt_at_limit", MAX_QUARANTINED_BODY_BYTES);
    assert_eq!(
        send_signed_stripe(&v, &inline).await.unwrap().response().0,
        202
    );
    let item = store.get("stripe:evt_at_limit").await.unwrap().unwrap();
    assert_eq!(item.raw_body_key, None);
    assert!(item.raw_body.is_some());
    assert!(blobs.keys().is_empty());

    let over = unknown_currency_body_of("evt_over_limit", MAX_QUARANTINED_BODY_BYTES + 1);
    assert_eq!(
        send_signed_stripe(&v, &over).await.unwrap().response().0,
        202
    );
    let item = store.get("stripe:evt_over_limit").await.unwrap().unwrap();
    assert_eq!(item.raw_body, None);
    assert_eq!(blobs.keys().len(), 1);

    // Without a blob store, the inline limit itself is still kept.
    let store = Arc::new(MemoryStatusStore::new());
    let v = validator(store.clone(), Arc::new(MemoryQueue::new()));
    let accepted = send_signed_stripe(&v, &inline).await.unwrap();
    assert_eq!(accepted.response().0, 202);
    assert_eq!(
        store
            .get("stripe:evt_at_limit")
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Quarantined
    );
}
