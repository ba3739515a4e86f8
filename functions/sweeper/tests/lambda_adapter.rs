//! The sweeper Lambda's adapter: its configuration from the environment, the `StuckWebhooks`
//! values one sweep emits (every provider and state, zeros included), and a listing failure
//! failing the invocation.
//!
//! Run: `cargo nextest run -p payhook-sweeper`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use payhook_core::Provider;
use payhook_core::payment::MemoryPaymentStore;
use payhook_core::ports::{FixedClock, MemoryQueue};
use payhook_core::status::{
    MemoryStatusStore, PutOutcome, Status, StatusItem, StatusStore, StoreError, Transition,
    TransitionOutcome, TransmissionOutcome, TransmissionRecord,
};
use payhook_core::sweeper::{Sweeper, SweeperConfig};
use payhook_sweeper::{Config, invoke, summary};
use payhook_telemetry::{FunctionConfig, FunctionKind, MemorySink, Telemetry};
use serde_json::Value;

const T0: i64 = 1_767_225_600_000;

fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
    let env: HashMap<&str, &str> = pairs.iter().copied().collect();
    Config::from_lookup(|name| env.get(name).map(|v| (*v).to_owned())).map_err(|e| e.to_string())
}

const QUEUES: [(&str, &str); 3] = [
    (
        "QUEUE_URL_STRIPE",
        "https://sqs.us-east-1.amazonaws.com/1/s.fifo",
    ),
    (
        "QUEUE_URL_PAYPAL",
        "https://sqs.us-east-1.amazonaws.com/1/p.fifo",
    ),
    (
        "QUEUE_URL_SQUARE",
        "https://sqs.us-east-1.amazonaws.com/1/q.fifo",
    ),
];

#[test]
fn the_queue_urls_are_required_and_the_table_defaults_to_webhook_processing() {
    let c = config(&QUEUES).unwrap();
    assert_eq!(c.status_table, "webhook-processing");
    assert_eq!(c.queue_urls.len(), 3);
    assert_eq!(c.sweeper, SweeperConfig::default());
    let err = config(&QUEUES[..2]).unwrap_err();
    assert!(err.contains("QUEUE_URL_SQUARE"), "{err}");
    let mut with_table = QUEUES.to_vec();
    with_table.push(("STATUS_TABLE", " webhooks-dev "));
    assert_eq!(config(&with_table).unwrap().status_table, "webhooks-dev");
}

fn telemetry(metrics: &MemorySink) -> (Telemetry, payhook_telemetry::FunctionTelemetry) {
    let telemetry = Telemetry::builder().build().expect("telemetry builds");
    let function = telemetry
        .function(FunctionConfig::new(FunctionKind::Sweeper).metrics_sink(metrics.clone()));
    (telemetry, function)
}

fn sweeper(store: Arc<dyn StatusStore>, now_ms: i64) -> Sweeper {
    Sweeper::new(
        store,
        Arc::new(MemoryPaymentStore::new()),
        Arc::new(MemoryQueue::new()),
        Arc::new(FixedClock(now_ms)),
        SweeperConfig::default(),
    )
}

/// Every `StuckWebhooks` value of the EMF documents: `(provider, state) → value`.
fn stuck_values(metrics: &MemorySink) -> HashMap<(String, String), f64> {
    metrics
        .json()
        .unwrap()
        .iter()
        .filter_map(|doc| {
            let value = doc.get("StuckWebhooks")?.as_f64()?;
            let dim = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            Some(((dim("provider"), dim("state")), value))
        })
        .collect()
}

#[tokio::test]
async fn one_sweep_counts_stuck_webhooks_for_every_provider_and_state_zeros_included() {
    let store = Arc::new(MemoryStatusStore::new());
    let item = StatusItem::new("paypal:WH-1", Provider::Paypal, "x", Status::Queued, T0);
    store.put_new(&item).await.unwrap();
    let metrics = MemorySink::new();
    let (_telemetry, function) = telemetry(&metrics);

    let report = invoke(
        &sweeper(store, T0 + 2 * 3_600_000),
        function.start("req-1", None),
    )
    .await
    .unwrap();
    assert_eq!(summary(&report)["stuck"], 1);
    let values = stuck_values(&metrics);
    assert_eq!(values.len(), 12, "3 providers × 4 states: {values:?}");
    assert_eq!(values[&("paypal".to_owned(), "QUEUED".to_owned())], 1.0);
    assert_eq!(values[&("stripe".to_owned(), "PUBLISHED".to_owned())], 0.0);
}

/// A status table that cannot be read.
struct DownStore;

#[async_trait]
impl StatusStore for DownStore {
    async fn get(&self, _: &str) -> Result<Option<StatusItem>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn put_new(&self, _: &StatusItem) -> Result<PutOutcome, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn transition(&self, _: &str, _: &Transition) -> Result<TransitionOutcome, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn record_transmission(
        &self,
        _: &TransmissionRecord,
        _: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn a_table_that_cannot_be_listed_fails_the_invocation_and_emits_no_count() {
    let metrics = MemorySink::new();
    let (_telemetry, function) = telemetry(&metrics);
    let err = invoke(
        &sweeper(Arc::new(DownStore), T0),
        function.start("req-1", None),
    )
    .await
    .unwrap_err();
    assert_eq!(
        payhook_telemetry::ClassifiedError::code(&err),
        "state_store_unavailable"
    );
    assert!(
        stuck_values(&metrics).is_empty(),
        "no zeros that would hide the failure"
    );
}
