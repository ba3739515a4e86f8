//! The sweeper against the real handlers on the in-memory ports: a webhook stuck `RECEIVED` is
//! enqueued again with the bytes the validator meant to queue; one stuck `PUBLISHED` is published
//! again with the same business events, once; `QUEUED` and `PROCESSING` are only reported; a
//! webhook younger than its state's threshold is not stuck.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use payhook_core::payment::MemoryPaymentStore;
use payhook_core::ports::RecordingBus;
use payhook_core::ports::{
    Clock, MemoryQueue, MemorySecretStore, ProviderSecrets, Queue, QueueError, QueueMessage,
};
use payhook_core::processor::{ProcessorConfig, ProviderProcessor, QueueRecord};
use payhook_core::signature::{
    PaypalCertificateCache, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::status::{MemoryStatusStore, Status, StatusItem, StatusStore};
use payhook_core::sweeper::{Action, SweepReport, Sweeper, SweeperConfig};
use payhook_core::validator::{Validator, ValidatorConfig, WebhookRequest};
use payhook_core::{Headers, Provider, Secret};
use payhook_testkit::conformance::workspace_root;

const T0: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;
const SECRET: &str = "whsec_sweeper_test";

/// A clock the test moves.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

/// A queue that refuses every message (the validator's send fails: the item stays RECEIVED).
struct DownQueue;

#[async_trait]
impl Queue for DownQueue {
    async fn send(&self, _: QueueMessage) -> Result<String, QueueError> {
        Err(QueueError::Unavailable("SQS is down".into()))
    }
}

struct World {
    clock: Arc<TestClock>,
    store: Arc<MemoryStatusStore>,
    payments: Arc<MemoryPaymentStore>,
    queue: Arc<MemoryQueue>,
    bus: Arc<RecordingBus>,
}

impl World {
    fn new() -> World {
        World {
            clock: Arc::new(TestClock(AtomicI64::new(T0))),
            store: Arc::new(MemoryStatusStore::new()),
            payments: Arc::new(MemoryPaymentStore::new()),
            queue: Arc::new(MemoryQueue::new()),
            bus: Arc::new(RecordingBus::new()),
        }
    }

    fn validator(&self, queue: Arc<dyn Queue>) -> Validator {
        let secrets = MemorySecretStore::new().with(
            Provider::Stripe,
            ProviderSecrets {
                signing_secrets: vec![Secret::new(SECRET)],
                ..Default::default()
            },
        );
        Validator::new(
            Arc::new(secrets),
            self.store.clone(),
            queue,
            Arc::new(PaypalCertificateCache::new(
                Arc::new(StaticCertificateFetcher::new(Vec::new())),
                TrustAnchors::mozilla(),
            )),
            self.clock.clone(),
            ValidatorConfig {
                idempotency_retention_secs: 20 * 365 * 24 * 3600,
                ..ValidatorConfig::default()
            },
        )
    }

    fn sweeper(&self, config: SweeperConfig) -> Sweeper {
        Sweeper::new(
            self.store.clone(),
            self.payments.clone(),
            self.queue.clone(),
            self.clock.clone(),
            config,
        )
    }

    fn processor(&self) -> ProviderProcessor {
        ProviderProcessor::new(
            self.store.clone(),
            self.payments.clone(),
            self.bus.clone(),
            self.clock.clone(),
            ProcessorConfig::new(Provider::Stripe),
        )
    }

    /// Runs the Stripe processor over every queued message not yet handed to it.
    async fn process(&self, from: usize) {
        let records: Vec<QueueRecord> = self.queue.messages()[from..]
            .iter()
            .enumerate()
            .map(|(n, m)| QueueRecord {
                message_id: format!("m{}", from + n),
                body: m.body.clone(),
                group_id: m.group_id.clone(),
                receive_count: 1,
                trace_header: None,
            })
            .collect();
        let deadline = self.clock.now_ms() + 5 * MINUTE;
        self.processor().handle_batch(&records, deadline).await;
    }

    async fn item(&self, webhook_id: &str) -> StatusItem {
        self.store.get(webhook_id).await.unwrap().unwrap()
    }
}

fn stripe_body() -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/fixtures/stripe/payment_intent.succeeded.jpy.json"))
        .unwrap()
}

async fn deliver(validator: &Validator, body: &[u8]) -> String {
    let mut headers = Headers::new();
    headers.insert(
        "Stripe-Signature",
        StripeVerifier::sign(&Secret::new(SECRET), T0 / 1000, body),
    );
    // With a queue that is down the answer is a 503; the item is recorded either way.
    let _ = validator
        .handle(WebhookRequest {
            provider: "stripe",
            headers: &headers,
            body,
            trace_header: None,
        })
        .await;
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    format!("stripe:{}", body["id"].as_str().unwrap())
}

fn actions(report: &SweepReport) -> Vec<(&str, Status, &str)> {
    report
        .stuck
        .iter()
        .map(|s| (s.webhook_id.as_str(), s.status, s.action.as_str()))
        .collect()
}

#[tokio::test]
async fn a_webhook_stuck_received_is_enqueued_again_with_the_bytes_the_validator_meant_to_queue() {
    let world = World::new();
    let id = deliver(&world.validator(Arc::new(DownQueue)), &stripe_body()).await;
    let stuck = world.item(&id).await;
    assert_eq!(stuck.status, Status::Received, "the send failed");
    let kept = stuck.message_body.clone().expect("the bytes are kept");

    world.clock.set(T0 + 5 * MINUTE);
    let early = world
        .sweeper(SweeperConfig::default())
        .sweep()
        .await
        .unwrap();
    assert!(early.stuck.is_empty(), "5 minutes is not stuck yet");

    world.clock.set(T0 + 11 * MINUTE);
    let report = world
        .sweeper(SweeperConfig::default())
        .sweep()
        .await
        .unwrap();
    assert_eq!(
        actions(&report),
        [(id.as_str(), Status::Received, "reenqueued")]
    );
    assert_eq!(report.counts()[&(Provider::Stripe, "RECEIVED")], 1);
    let sent = world.queue.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, kept, "the exact bytes");
    assert_eq!(sent[0].group_id, stuck.payment_id.clone().unwrap());
    assert_eq!(world.item(&id).await.status, Status::Queued);

    world.clock.set(T0 + 12 * MINUTE);
    let again = world
        .sweeper(SweeperConfig::default())
        .sweep()
        .await
        .unwrap();
    assert!(again.stuck.is_empty(), "repaired once: {again:?}");
    assert_eq!(world.queue.messages().len(), 1);

    world.process(0).await;
    assert_eq!(world.item(&id).await.status, Status::Published);
}

#[tokio::test]
async fn a_webhook_published_but_never_processed_is_published_again_with_the_same_events_once() {
    let world = World::new();
    let id = deliver(&world.validator(world.queue.clone()), &stripe_body()).await;
    world.process(0).await;
    assert_eq!(world.item(&id).await.status, Status::Published);
    let first: Vec<serde_json::Value> = world
        .bus
        .entries()
        .iter()
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    assert!(!first.is_empty());

    // No event processor ever records it.
    world.clock.set(T0 + 31 * MINUTE);
    let report = world
        .sweeper(SweeperConfig::default())
        .sweep()
        .await
        .unwrap();
    assert_eq!(
        actions(&report),
        [(id.as_str(), Status::Published, "republished")]
    );
    assert_eq!(world.item(&id).await.status, Status::Queued);
    assert_eq!(world.queue.messages().len(), 2, "enqueued once more");

    world.process(1).await;
    assert_eq!(world.item(&id).await.status, Status::Published);
    let all = world.bus.entries();
    assert_eq!(all.len(), 2 * first.len(), "the same events once more");
    for (entry, before) in all[first.len()..].iter().zip(&first) {
        let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["business_event_id"], before["business_event_id"]);
        assert_eq!(detail["business_event"], before["business_event"]);
    }

    // Still never processed: reported, not republished a second time.
    world.clock.set(T0 + 62 * MINUTE);
    let report = world
        .sweeper(SweeperConfig::default())
        .sweep()
        .await
        .unwrap();
    assert_eq!(
        actions(&report),
        [(id.as_str(), Status::Published, "reported")]
    );
    assert_eq!(
        report.stuck[0].action,
        Action::Reported {
            reason: "republished_once_already"
        }
    );
    assert_eq!(world.queue.messages().len(), 2);
}

#[tokio::test]
async fn queued_and_processing_webhooks_are_reported_and_left_alone() {
    let world = World::new();
    for (id, status) in [
        ("stripe:evt_queued", Status::Queued),
        ("stripe:evt_processing", Status::Processing),
        ("stripe:evt_failed", Status::Failed),
    ] {
        let item = StatusItem::new(id, Provider::Stripe, "x", status, T0);
        world.store.put_new(&item).await.unwrap();
    }
    world.clock.set(T0 + 61 * MINUTE);
    let report = world
        .sweeper(SweeperConfig::default())
        .sweep()
        .await
        .unwrap();
    assert_eq!(
        actions(&report),
        [
            ("stripe:evt_queued", Status::Queued, "reported"),
            ("stripe:evt_processing", Status::Processing, "reported"),
        ],
        "FAILED is the DLQ's to report"
    );
    assert!(world.queue.messages().is_empty());
    assert_eq!(world.item("stripe:evt_queued").await.status, Status::Queued);
}

#[tokio::test]
async fn a_sweep_handles_at_most_its_limit_per_state_and_says_so() {
    let world = World::new();
    for n in 0..3 {
        let item = StatusItem::new(
            format!("stripe:evt_{n}"),
            Provider::Stripe,
            "x",
            Status::Queued,
            T0 + n,
        );
        world.store.put_new(&item).await.unwrap();
    }
    world.clock.set(T0 + 61 * MINUTE);
    let config = SweeperConfig {
        max_per_state: 2,
        ..SweeperConfig::default()
    };
    let report = world.sweeper(config).sweep().await.unwrap();
    let ids: Vec<&str> = report.stuck.iter().map(|s| s.webhook_id.as_str()).collect();
    assert_eq!(ids, ["stripe:evt_0", "stripe:evt_1"], "oldest first");
    assert_eq!(report.truncated, [Status::Queued]);
}
