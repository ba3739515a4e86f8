//! The test pipeline: the real handlers on the in-memory store, FIFO queues (with their DLQ)
//! and a recording bus, driven the way the event source mapping and EventBridge drive them,
//! with ports that can be killed at any call ([`Kill`]) or made to yield ([`Faulty::jitter`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use payhook_core::event_processor::{EventProcessor, ProcessedOutcome, RoutedEvent};
use payhook_core::payment::{MemoryPaymentStore, PaymentRecord, PaymentStore};
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus, RecordingBus};
use payhook_core::ports::{
    Clock, MemorySecretStore, ProviderSecrets, Queue, QueueError, QueueMessage,
};
use payhook_core::processor::{
    BatchOutcome, ProcessorConfig, ProviderProcessor, QueueRecord, delay_retries,
};
use payhook_core::signature::{
    PaypalCertificateCache, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::status::{
    MemoryStatusStore, PutOutcome, Status, StatusItem, StatusStore, StoreError, Transition,
    TransitionOutcome, TransmissionOutcome, TransmissionRecord, rfc3339_ms,
};
use payhook_core::validator::{Validator, ValidatorConfig, WebhookRequest};
use payhook_core::{Headers, Provider, Secret};
use payhook_memory::sqs::{FifoQueueConfig, ManualClock, MemorySqs};
use payhook_testkit::conformance::workspace_root;
use serde_json::json;

/// When every test starts (2026-01-01T00:00:00Z).
pub(crate) const T0: i64 = 1_767_225_600_000;
const STRIPE_SECRET: &str = "whsec_pipeline_test";

/// How a deployment times its processors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deployment {
    /// For messages.
    pub(crate) name: &'static str,
    /// The processor's invocation budget (the Lambda timeout).
    pub(crate) function_timeout_secs: u32,
    /// The provider queue's visibility timeout.
    pub(crate) visibility_timeout_secs: u32,
    /// The queue's `maxReceiveCount`.
    pub(crate) max_receive_count: u32,
}

/// As deployed: a 300 s function and the visibility timeout AWS recommends for its event source
/// mapping (six times the function timeout).
pub(crate) const AWS: Deployment = Deployment {
    name: "aws",
    function_timeout_secs: 300,
    visibility_timeout_secs: 1_800,
    max_receive_count: 5,
};

/// As the local stack runs: the same 300 s invocation budget, a 5 s visibility timeout so that
/// retries show.
pub(crate) const LOCAL: Deployment = Deployment {
    name: "local",
    function_timeout_secs: 300,
    visibility_timeout_secs: 5,
    max_receive_count: 5,
};

/// "Kill after step N": every port call is a step; when `N` steps are done, the next call (or
/// the end of the task) never returns and the task is dropped — nothing after it runs, nothing
/// is cleaned up.
#[derive(Debug, Default)]
pub(crate) struct Kill {
    at: Option<usize>,
    done: AtomicUsize,
    killed: AtomicBool,
    log: Mutex<Vec<String>>,
    notify: tokio::sync::Notify,
}

impl Kill {
    /// Counts steps and never kills.
    pub(crate) fn never() -> Arc<Kill> {
        Arc::new(Kill::default())
    }

    /// Kills once `n` steps are done.
    pub(crate) fn after(n: usize) -> Arc<Kill> {
        Arc::new(Kill {
            at: Some(n),
            ..Kill::default()
        })
    }

    /// Steps done so far.
    pub(crate) fn steps(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Whether the task was killed.
    pub(crate) fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// The steps done, in order (`"transition stripe:evt_…"`).
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn due(&self) -> bool {
        !self.killed() && self.at == Some(self.steps())
    }

    async fn before(&self) {
        if self.due() {
            self.killed.store(true, Ordering::SeqCst);
            self.notify.notify_one();
            std::future::pending::<()>().await;
        }
    }

    fn after_step(&self, step: String) {
        self.log.lock().unwrap().push(step);
        self.done.fetch_add(1, Ordering::SeqCst);
    }

    /// Runs `task` until it ends or is killed (`None`: dropped where it stood).
    pub(crate) async fn run<F: Future>(&self, task: F) -> Option<F::Output> {
        let out = tokio::select! {
            biased;
            () = self.notify.notified() => None,
            out = task => Some(out),
        };
        if out.is_some() && self.due() {
            // Killed after its last call: whatever it returned is lost.
            self.killed.store(true, Ordering::SeqCst);
            return None;
        }
        out
    }
}

/// A port wrapper: every call is a [`Kill`] step, and with `jitter` it yields to the
/// scheduler a varying number of times before and after the call, so that concurrent tasks
/// on the multi-thread runtime interleave their calls.
#[derive(Debug)]
pub(crate) struct Faulty<T> {
    inner: T,
    kill: Arc<Kill>,
    jitter: Option<AtomicU64>,
}

impl<T> Faulty<T> {
    /// `inner` with its calls counted by `kill`.
    pub(crate) fn new(inner: T, kill: &Arc<Kill>) -> Self {
        Faulty {
            inner,
            kill: Arc::clone(kill),
            jitter: None,
        }
    }

    /// `inner`, yielding around every call (never killed).
    pub(crate) fn jitter(inner: T, seed: u64) -> Self {
        Faulty {
            inner,
            kill: Kill::never(),
            jitter: Some(AtomicU64::new(seed | 1)),
        }
    }

    async fn call<R>(&self, step: impl FnOnce() -> String, f: impl Future<Output = R>) -> R {
        self.kill.before().await;
        self.wobble().await;
        let out = f.await;
        self.wobble().await;
        self.kill.after_step(step());
        out
    }

    async fn wobble(&self) {
        let Some(state) = &self.jitter else { return };
        // xorshift: a reproducible, varying number of yields.
        let mut x = state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.store(x, Ordering::Relaxed);
        for _ in 0..(x % 4) {
            tokio::task::yield_now().await;
        }
    }
}

#[async_trait]
impl<S: StatusStore> StatusStore for Faulty<S> {
    async fn get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError> {
        self.call(|| format!("get {webhook_id}"), self.inner.get(webhook_id))
            .await
    }

    async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError> {
        self.call(
            || format!("put_new {}", item.webhook_id),
            self.inner.put_new(item),
        )
        .await
    }

    async fn transition(
        &self,
        webhook_id: &str,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        let step = || format!("transition {webhook_id} to {}", transition.to);
        self.call(step, self.inner.transition(webhook_id, transition))
            .await
    }

    async fn record_transmission(
        &self,
        record: &TransmissionRecord,
        now_unix: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        self.call(
            || format!("record_transmission {}", record.key),
            self.inner.record_transmission(record, now_unix),
        )
        .await
    }
}

#[async_trait]
impl<Q: Queue> Queue for Faulty<Q> {
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }

    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        let step = format!("send {}", message.deduplication_id);
        self.call(|| step, self.inner.send(message)).await
    }
}

#[async_trait]
impl<B: EventBus> EventBus for Faulty<B> {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let step = || format!("put_events {}", webhook_of(&entries[0]));
        self.call(step, self.inner.put_events(entries)).await
    }
}

#[async_trait]
impl<P: PaymentStore> PaymentStore for Faulty<P> {
    async fn get_payment(
        &self,
        provider: Provider,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let step = || format!("get_payment {payment_id}");
        self.call(step, self.inner.get_payment(provider, payment_id))
            .await
    }

    async fn put_payment(
        &self,
        record: &PaymentRecord,
        expected_revision: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let step = || format!("put_payment {}", record.payment_id);
        self.call(
            step,
            self.inner.put_payment(record, expected_revision, now_ms),
        )
        .await
    }
}

/// The webhook id a published entry carries.
pub(crate) fn webhook_of(entry: &BusEntry) -> String {
    let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
    detail["webhook_id"].as_str().unwrap().to_owned()
}

/// A signed Stripe delivery of the recorded `payment_intent.succeeded` sample, as event
/// `evt_{id}` of payment `pi_{payment}`.
pub(crate) struct Delivery {
    /// Its webhook id.
    pub(crate) webhook_id: String,
    body: Vec<u8>,
}

impl Delivery {
    /// The sample with its ids replaced and created a minute before `now_ms`.
    pub(crate) fn stripe(id: &str, payment: &str, now_ms: i64) -> Delivery {
        let path = workspace_root().join("tests/fixtures/stripe/payment_intent.succeeded.jpy.json");
        let mut sample: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        sample["id"] = json!(format!("evt_{id}"));
        sample["created"] = json!(now_ms / 1000 - 60);
        sample["data"]["object"]["id"] = json!(format!("pi_{payment}"));
        Delivery {
            webhook_id: format!("stripe:evt_{id}"),
            body: serde_json::to_vec(&sample).unwrap(),
        }
    }
}

/// The whole pipeline of one provider (Stripe) on shared in-memory ports.
pub(crate) struct World {
    /// Its timeouts.
    pub(crate) deployment: Deployment,
    /// The one clock every part reads.
    pub(crate) clock: Arc<ManualClock>,
    /// The status table.
    pub(crate) store: Arc<MemoryStatusStore>,
    /// The payment records (the same table in AWS).
    pub(crate) payments: Arc<MemoryPaymentStore>,
    /// The provider queues and their DLQs.
    pub(crate) sqs: Arc<MemorySqs>,
    /// Everything put on the bus (EventBridge delivers each to the event processor).
    pub(crate) bus: Arc<RecordingBus>,
    delivered: usize,
    pending: Vec<BusEntry>,
    /// `PROCESSED` recorded by the event processor, per webhook.
    pub(crate) recorded: HashMap<String, usize>,
}

impl World {
    /// A fresh pipeline at [`T0`].
    pub(crate) fn new(deployment: Deployment) -> World {
        let clock = Arc::new(ManualClock::new(T0));
        let sqs = MemorySqs::with_config(clock.clone(), |p| {
            FifoQueueConfig::for_provider(p)
                .max_receive_count(deployment.max_receive_count)
                .visibility_timeout_secs(deployment.visibility_timeout_secs)
        })
        .unwrap();
        World {
            deployment,
            clock,
            store: Arc::new(MemoryStatusStore::new()),
            payments: Arc::new(MemoryPaymentStore::new()),
            sqs: Arc::new(sqs),
            bus: Arc::new(RecordingBus::new()),
            delivered: 0,
            pending: Vec::new(),
            recorded: HashMap::new(),
        }
    }

    /// Now, on the shared clock.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A fresh validator over these ports.
    pub(crate) fn validator(
        &self,
        store: Arc<dyn StatusStore>,
        queue: Arc<dyn Queue>,
    ) -> Validator {
        let secrets = MemorySecretStore::new().with(
            Provider::Stripe,
            ProviderSecrets {
                signing_secrets: vec![Secret::new(STRIPE_SECRET)],
                ..Default::default()
            },
        );
        let certificates = Arc::new(PaypalCertificateCache::new(
            Arc::new(StaticCertificateFetcher::new(Vec::new())),
            TrustAnchors::mozilla(),
        ));
        Validator::new(
            Arc::new(secrets),
            store,
            queue,
            certificates,
            self.clock.clone(),
            ValidatorConfig::default(),
        )
    }

    /// The processor's settings in this deployment.
    pub(crate) fn processor_config(&self) -> ProcessorConfig {
        let mut config = ProcessorConfig::new(Provider::Stripe);
        config.max_receive_count = self.deployment.max_receive_count;
        config.visibility_timeout_secs = self.deployment.visibility_timeout_secs;
        config
    }

    /// A fresh processor over these ports (and the world's payment records).
    pub(crate) fn processor(
        &self,
        store: Arc<dyn StatusStore>,
        bus: Arc<dyn EventBus>,
    ) -> ProviderProcessor {
        self.processor_with(store, self.payments.clone(), bus)
    }

    /// A fresh processor over these ports.
    pub(crate) fn processor_with(
        &self,
        store: Arc<dyn StatusStore>,
        payments: Arc<dyn PaymentStore>,
        bus: Arc<dyn EventBus>,
    ) -> ProviderProcessor {
        ProviderProcessor::new(
            store,
            payments,
            bus,
            self.clock.clone(),
            self.processor_config(),
        )
    }

    /// Posts `delivery` until it is answered 2xx, as the provider retries: the first attempts
    /// run on ports counted by `kill`; after a kill (no answer) the provider retries a second
    /// later with a fresh validator.
    pub(crate) async fn post(&mut self, delivery: &Delivery, kill: &Arc<Kill>) {
        for _ in 0..10 {
            let (store, queue): (Arc<dyn StatusStore>, Arc<dyn Queue>) = if kill.killed() {
                (self.store.clone(), self.sqs.clone())
            } else {
                (
                    Arc::new(Faulty::new(self.store.clone(), kill)),
                    Arc::new(Faulty::new(self.sqs.clone(), kill)),
                )
            };
            let validator = self.validator(store, queue);
            let mut headers = Headers::new();
            headers.insert(
                "Stripe-Signature",
                StripeVerifier::sign(
                    &Secret::new(STRIPE_SECRET),
                    self.now() / 1000,
                    &delivery.body,
                ),
            );
            let request = WebhookRequest {
                provider: "stripe",
                headers: &headers,
                body: &delivery.body,
                trace_header: None,
            };
            match kill.run(validator.handle(request)).await {
                Some(Ok(_)) => return,
                Some(Err(e)) => assert!(e.is_retryable(), "{} refused: {e}", delivery.webhook_id),
                None => {}
            }
            self.clock.advance(1_000);
        }
        panic!("{} was never acknowledged", delivery.webhook_id);
    }

    /// One processor invocation, as the event source mapping makes it: a batch of up to 10
    /// records, then the successes deleted and the failures' retry delays applied. With
    /// `kill`, its store and bus calls are counted and it may be killed (then nothing is
    /// deleted or changed). Whether there was a batch.
    pub(crate) async fn invoke(&mut self, kill: Option<&Arc<Kill>>) -> bool {
        self.invoke_on(kill, self.bus.clone()).await
    }

    /// [`World::invoke`] with the processor publishing to `bus` (a faulty one).
    pub(crate) async fn invoke_with_bus(&mut self, bus: Arc<dyn EventBus>) -> bool {
        self.invoke_on(None, bus).await
    }

    async fn invoke_on(&mut self, kill: Option<&Arc<Kill>>, bus: Arc<dyn EventBus>) -> bool {
        let queue = self.sqs.queue(Provider::Stripe).clone();
        let received = queue.receive(10).unwrap();
        if received.is_empty() {
            return false;
        }
        let records: Vec<QueueRecord> = received
            .iter()
            .map(|m| QueueRecord {
                message_id: m.message_id.clone(),
                body: m.body.clone(),
                group_id: m.attributes.message_group_id.clone(),
                receive_count: m.attributes.approximate_receive_count,
                trace_header: None,
            })
            .collect();
        let processor = match kill {
            Some(kill) => self.processor_with(
                Arc::new(Faulty::new(self.store.clone(), kill)),
                Arc::new(Faulty::new(self.payments.clone(), kill)),
                Arc::new(Faulty::new(bus, kill)),
            ),
            None => self.processor(self.store.clone(), bus),
        };
        let deadline = self.now() + i64::from(self.deployment.function_timeout_secs) * 1000;
        let task = processor.handle_batch(&records, deadline);
        let outcome = match kill {
            Some(kill) => kill.run(task).await,
            None => Some(task.await),
        };
        if let Some(outcome) = outcome {
            self.settle(&received, &outcome).await;
        }
        true
    }

    async fn settle(
        &self,
        received: &[payhook_memory::sqs::ReceivedMessage],
        outcome: &BatchOutcome,
    ) {
        let queue = self.sqs.queue(Provider::Stripe).clone();
        let failed = outcome.failed_message_ids();
        let deliveries: Vec<(String, String)> = received
            .iter()
            .map(|m| (m.message_id.clone(), m.receipt_handle.clone()))
            .collect();
        let done: Vec<&str> = deliveries
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .map(|(_, handle)| handle.as_str())
            .collect();
        if !done.is_empty() {
            queue.delete_batch(&done).unwrap();
        }
        delay_retries(outcome, &deliveries, queue.as_ref()).await;
    }

    /// EventBridge's side: every entry put since the last call (and every earlier delivery
    /// that failed retryably) goes to a fresh event processor.
    pub(crate) async fn deliver_events(&mut self) {
        let entries = self.bus.entries();
        let mut due = std::mem::take(&mut self.pending);
        due.extend(entries[self.delivered..].iter().cloned());
        self.delivered = entries.len();
        let handler = EventProcessor::new(self.store.clone(), self.clock.clone());
        for entry in due {
            let routed = RoutedEvent::new(
                "all-payments",
                json!({
                    "version": "0", "id": "e", "detail-type": entry.detail_type,
                    "source": entry.source, "account": "123456789012",
                    "time": rfc3339_ms(self.now()), "region": "us-east-1", "resources": [],
                    "detail": serde_json::from_str::<serde_json::Value>(&entry.detail).unwrap(),
                }),
            );
            match handler.handle(&routed).await {
                Ok(ProcessedOutcome::Recorded { webhook_id, .. }) => {
                    *self.recorded.entry(webhook_id).or_default() += 1;
                }
                Ok(ProcessedOutcome::Absorbed { .. }) => {}
                Err(e) if e.is_retryable() => self.pending.push(entry),
                Err(e) => panic!("event processor refused an event: {e}"),
            }
        }
    }

    /// Runs the pipeline with healthy handlers, a second at a time, until nothing is queued,
    /// in flight or waiting for delivery (or the queue would have dead-lettered everything).
    pub(crate) async fn drain(&mut self) {
        let d = self.deployment;
        let horizon = u64::from(d.visibility_timeout_secs) * u64::from(d.max_receive_count + 1);
        for _ in 0..horizon + 600 {
            self.deliver_events().await;
            let idle = self.sqs.queue(Provider::Stripe).stats().is_empty();
            if idle && self.pending.is_empty() {
                return;
            }
            self.clock.advance(1_000);
            while self.invoke(None).await {}
        }
    }

    /// What breaks the books: each of `webhooks` must be `PROCESSED` exactly once, or `FAILED`
    /// with its message in the DLQ; nothing may be left queued, in flight or undelivered.
    pub(crate) async fn violations(&self, webhooks: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let dead: Vec<String> = self
            .sqs
            .dlq_messages(Provider::Stripe)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        for id in webhooks {
            let item = self.store.get(id).await.unwrap();
            let status = item.as_ref().map(|i| i.status);
            let recorded = self.recorded.get(id).copied().unwrap_or(0);
            let dead_lettered = dead.iter().any(|b| b.contains(&format!("\"{id}\"")));
            let settled = item.as_ref().and_then(|i| i.payment_effect.as_deref());
            match status {
                Some(Status::Processed) if recorded == 1 => {}
                // Nothing new for its payment: processed without a business event.
                Some(Status::Processed)
                    if recorded == 0 && matches!(settled, Some("unchanged" | "stale")) => {}
                Some(Status::Failed) if dead_lettered => {}
                other => out.push(format!(
                    "{id}: {other:?}, recorded {recorded}×, in the DLQ: {dead_lettered}"
                )),
            }
        }
        let stats = self.sqs.queue(Provider::Stripe).stats();
        if !stats.is_empty() {
            out.push(format!("queue not drained: {stats:?}"));
        }
        if !self.pending.is_empty() {
            out.push(format!(
                "{} bus deliveries never recorded",
                self.pending.len()
            ));
        }
        out
    }

    /// Messages in the DLQ.
    pub(crate) fn dead_letters(&self) -> usize {
        self.sqs.dlq_messages(Provider::Stripe).unwrap().len()
    }

    /// The distinct business events of `detail_type` put on the bus, per payment (a business
    /// event published twice after a crash keeps its `business_event_id`).
    pub(crate) fn business_events(
        &self,
        detail_type: &str,
    ) -> HashMap<String, std::collections::BTreeSet<String>> {
        let mut out: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        for entry in self.bus.entries() {
            if entry.detail_type != detail_type {
                continue;
            }
            let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
            let payment = detail["payment_id"].as_str().unwrap().to_owned();
            let id = detail["business_event_id"].as_str().unwrap().to_owned();
            out.entry(payment).or_default().insert(id);
        }
        out
    }

    /// How often each webhook was put on the bus.
    pub(crate) fn publications(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for entry in self.bus.entries() {
            *counts.entry(webhook_of(&entry)).or_default() += 1;
        }
        counts
    }
}
