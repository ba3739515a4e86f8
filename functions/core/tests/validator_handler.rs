//! The webhook-validator handler's contract: every answer with its status and code, and a
//! webhook is acknowledged only once it is durably queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use payhook_core::conformance::workspace_root;
use payhook_core::ports::{
    FixedClock, MemoryQueue, MemorySecretStore, ProviderSecrets, Queue, QueueError, QueueMessage,
};
use payhook_core::signature::{
    PaypalCertificateCache, SquareVerifier, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::status::{
    MemoryStatusStore, PutOutcome, Status, StatusItem, StatusStore, StoreError, Transition,
    TransitionOutcome,
};
use payhook_core::validator::{
    Accepted, Validator, ValidatorConfig, ValidatorError, WebhookRequest,
};
use payhook_core::{Headers, Provider, Secret};

const NOW_MS: i64 = 1_767_225_600_000;
const STRIPE_SECRET: &str = "whsec_validator_test";
const SQUARE_KEY: &str = "square-key";
const SQUARE_URL: &str = "https://hooks.example.com/prod/webhooks/square";

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
    let certs = Arc::new(PaypalCertificateCache::new(
        Arc::new(StaticCertificateFetcher::new(Vec::new())),
        TrustAnchors::mozilla(),
    ));
    Validator::new(
        secrets(),
        store,
        queue,
        certs,
        Arc::new(FixedClock(now_ms)),
        ValidatorConfig::default(),
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
    assert_eq!(err.response().0, 401);
    assert_eq!(err.response().1["error"], "no_matching_signature");
    let err = send(&v, "stripe", &Headers::new(), &body)
        .await
        .unwrap_err();
    assert_eq!((err.http_status(), err.code()), (401, "missing_header"));
}

#[tokio::test]
async fn signed_but_malformed_supported_event_is_400() {
    let v = validator(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
    );
    let body = br#"{"id":"evt_bad","object":"event","type":"payment_intent.succeeded","created":1767225600,"data":{"object":{"id":"pi_1"}}}"#;
    let err = send(
        &v,
        "stripe",
        &stripe_headers(body, "Stripe-Signature"),
        body,
    )
    .await
    .unwrap_err();
    assert_eq!(err.http_status(), 400);
    assert!(err.response().1["message"].as_str().unwrap().len() > 10);
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
}

#[tokio::test]
async fn unconfigured_provider_fails_closed_with_503() {
    let v = validator(
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
    );
    let err = send(&v, "paypal", &Headers::new(), b"{}")
        .await
        .unwrap_err();
    assert_eq!(
        (err.http_status(), err.code()),
        (503, "provider_not_configured")
    );
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
