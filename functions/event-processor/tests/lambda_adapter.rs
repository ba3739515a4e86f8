//! The event processor's Lambda adapter: its configuration from the environment, the routed
//! event it parses from a rule target's delivery, and what it answers the runtime.
//!
//! Run: `cargo nextest run -p payhook-event-processor`. `fixtures/routed-high-value-payment.json`
//! is what a rule target's input transformer (`{"rule": <rule name>, "event": <event>}`, see
//! `infra/payhook_infra/events.py`) delivers for a high-value Stripe payment.

use std::collections::HashMap;
use std::sync::Arc;

use payhook_core::Provider;
use payhook_core::event_processor::{EventProcessor, ProcessedOutcome, RoutedEvent};
use payhook_core::ports::SystemClock;
use payhook_core::status::{MemoryStatusStore, Status, StatusItem, StatusStore};
use payhook_event_processor::{Config, DeliveryFailed, STATUS_TABLE_ENV, invoke, routed_event};
use payhook_telemetry::lambda::{NON_RETRYABLE, RETRYABLE, diagnostic};
use payhook_telemetry::{FunctionConfig, FunctionKind, FunctionTelemetry, MemorySink, Telemetry};
use serde_json::Value;

const ROUTED: &[u8] = include_bytes!("fixtures/routed-high-value-payment.json");
const WEBHOOK_ID: &str = "stripe:evt_3QfAaB2eZvKYlo2C0i9j0k1l";

fn config(pairs: &[(&str, &str)]) -> Config {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(|name| env.get(name).cloned()).expect("the event processor's config")
}

fn delivery() -> Value {
    serde_json::from_slice(ROUTED).expect("the fixture is JSON")
}

/// A delivery of the fixture to an event processor whose store holds the webhook in `status`,
/// with telemetry whose EMF documents land in `metrics`.
struct Delivery {
    store: Arc<MemoryStatusStore>,
    processor: EventProcessor,
    routed: RoutedEvent,
    function: FunctionTelemetry,
    metrics: MemorySink,
    _telemetry: Telemetry,
}

async fn delivery_with_webhook(status: Status) -> Delivery {
    let store = Arc::new(MemoryStatusStore::new());
    let item = StatusItem::new(
        WEBHOOK_ID,
        Provider::Stripe,
        "payment_intent.succeeded",
        status,
        1_767_225_600_000,
    );
    store.put_new(&item).await.unwrap();
    let metrics = MemorySink::new();
    let telemetry = Telemetry::builder().build().expect("telemetry builds");
    let function = telemetry
        .function(FunctionConfig::new(FunctionKind::EventProcessor).metrics_sink(metrics.clone()));
    Delivery {
        processor: EventProcessor::new(store.clone(), Arc::new(SystemClock)),
        store,
        routed: routed_event(delivery()).unwrap(),
        function,
        metrics,
        _telemetry: telemetry,
    }
}

impl Delivery {
    async fn invoke(&self, request_id: &str) -> Result<ProcessedOutcome, DeliveryFailed> {
        invoke(
            &self.processor,
            self.function.start(request_id, None),
            &self.routed,
        )
        .await
    }

    async fn status(&self) -> Status {
        self.store
            .get(WEBHOOK_ID)
            .await
            .unwrap()
            .expect("the item")
            .status
    }
}

/// The runtime's answer to `err`: its `error_type`, and an `error_message` led by the code.
fn assert_diagnostic(err: &DeliveryFailed, error_type: &str, code: &str) {
    let diagnostic = diagnostic(err);
    assert_eq!(diagnostic.error_type, error_type, "{err}");
    assert!(
        diagnostic.error_message.starts_with(&format!("{code}: ")),
        "{}",
        diagnostic.error_message
    );
}

// --- configuration ---------------------------------------------------------------------------

#[test]
fn the_status_table_defaults_to_webhook_processing() {
    assert_eq!(config(&[]).status_table, "webhook-processing");
}

#[test]
fn the_status_table_is_trimmed_and_an_empty_one_is_unset() {
    assert_eq!(
        config(&[(STATUS_TABLE_ENV, " payhook-dev-webhook-processing\n")]).status_table,
        "payhook-dev-webhook-processing"
    );
    assert_eq!(
        config(&[(STATUS_TABLE_ENV, "   ")]).status_table,
        "webhook-processing"
    );
}

// --- the routed event ------------------------------------------------------------------------

#[test]
fn a_rule_targets_delivery_parses_into_the_rule_and_the_event() {
    let routed = routed_event(delivery()).unwrap();
    assert_eq!(routed.rule, "high-value-payments");
    assert_eq!(routed.event["id"], "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    assert_eq!(routed.event["detail"]["webhook_id"], WEBHOOK_ID);
}

#[test]
fn a_delivery_without_the_rule_is_malformed_and_not_retried() {
    let mut payload = delivery();
    payload.as_object_mut().unwrap().remove("rule");
    let err = routed_event(payload).unwrap_err();
    assert_diagnostic(&err, NON_RETRYABLE, "malformed_event");
}

// --- what the runtime is answered ------------------------------------------------------------

#[tokio::test]
async fn a_published_webhook_is_recorded_processed_then_a_redelivery_is_absorbed() {
    let delivery = delivery_with_webhook(Status::Published).await;

    let first = delivery.invoke("req-1").await;
    assert!(
        matches!(&first, Ok(ProcessedOutcome::Recorded { webhook_id, rule, .. })
            if webhook_id == WEBHOOK_ID && rule == "high-value-payments"),
        "{first:?}"
    );
    let item = delivery.store.get(WEBHOOK_ID).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Processed);
    assert_eq!(item.tier.as_deref(), Some("high"));
    assert_eq!(item.matched_rules, ["high-value-payments"]);

    let again = delivery.invoke("req-2").await;
    assert!(
        matches!(&again, Ok(ProcessedOutcome::Absorbed { .. })),
        "{again:?}"
    );
    assert_eq!(delivery.status().await, Status::Processed);
    let emf = delivery.metrics.json().unwrap();
    let count =
        |metric: &str| -> usize { emf.iter().filter(|doc| doc.get(metric).is_some()).count() };
    assert_eq!(count("EventsProcessed"), 1);
    assert_eq!(count("DuplicateEventsAbsorbed"), 1);
}

#[tokio::test]
async fn an_event_for_a_webhook_not_yet_published_is_a_retryable_error() {
    let delivery = delivery_with_webhook(Status::Queued).await;

    let err = delivery.invoke("req-1").await.unwrap_err();
    // Retryable: Lambda fails the invocation and EventBridge delivers the event again.
    assert_diagnostic(&err, RETRYABLE, "not_published");
    assert_eq!(delivery.status().await, Status::Queued, "nothing written");
}
