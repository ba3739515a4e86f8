//! The processing pipeline's guarantees, with in-memory ports: a payment is processed once and
//! only once in effect, in order per payment, even with duplicates, races, crashes and poison.

use std::sync::Arc;

use async_trait::async_trait;
use payhook_core::event_processor::{EventProcessor, ProcessedOutcome, RoutedEvent};
use payhook_core::payment::MemoryPaymentStore;
use payhook_core::ports::FixedClock;
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus, RecordingBus};
use payhook_core::processor::{
    ProcessError, ProcessorConfig, ProviderProcessor, QueueRecord, RecordOutcome, Tier,
};
use payhook_core::status::{MemoryStatusStore, Status, StatusItem, StatusStore};
use payhook_core::{EventType, PaymentEvent, Provider};
use serde_json::json;

const NOW: i64 = 1_767_225_600_000;

fn event(id: &str, payment: &str, event_type: EventType, amount_minor: i64) -> PaymentEvent {
    PaymentEvent {
        webhook_id: format!("stripe:{id}"),
        provider: Provider::Stripe,
        provider_event_id: id.to_owned(),
        provider_event_type: "payment_intent.succeeded".into(),
        event_type,
        payment_id: payment.to_owned(),
        object_id: None,
        amount_minor,
        amount: amount_minor as f64 / 100.0,
        currency: "USD".into(),
        amount_decimal: payhook_core::currency::minor_to_decimal_string(amount_minor, 2),
        amount_reporting: Some(amount_minor as f64 / 100.0),
        reporting_currency: Some("USD".to_owned()),
        provider_status: Some("succeeded".into()),
        failure_code: None,
        occurred_at: "2026-01-01T00:00:00Z".into(),
        received_at: Some("2026-01-01T00:00:00.000Z".into()),
        livemode: Some(false),
        account: None,
        merchant_id: None,
        object_updated_at: None,
        object_version: None,
        refunded_total_minor: None,
    }
}

fn record(msg: &str, e: &PaymentEvent, receive_count: u32) -> QueueRecord {
    QueueRecord {
        message_id: msg.to_owned(),
        body: String::from_utf8(e.to_bytes()).unwrap(),
        group_id: e.payment_id.clone(),
        receive_count,
        trace_header: None,
    }
}

async fn queued(store: &MemoryStatusStore, e: &PaymentEvent) {
    let mut item = StatusItem::new(
        e.webhook_id.clone(),
        e.provider,
        e.provider_event_type.clone(),
        Status::Queued,
        NOW,
    );
    item.payment_id = Some(e.payment_id.clone());
    store.put_new(&item).await.unwrap();
}

/// Records every event `QUEUED` and returns their first-receive records `m0`, `m1`, … in order.
async fn queue_all(store: &MemoryStatusStore, events: &[PaymentEvent]) -> Vec<QueueRecord> {
    let mut records = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        queued(store, e).await;
        records.push(record(&format!("m{i}"), e, 1));
    }
    records
}

fn processor(
    store: Arc<MemoryStatusStore>,
    payments: Arc<MemoryPaymentStore>,
    bus: Arc<dyn EventBus>,
) -> ProviderProcessor {
    ProviderProcessor::new(
        store,
        payments,
        bus,
        Arc::new(FixedClock(NOW)),
        ProcessorConfig::new(Provider::Stripe),
    )
}

fn routed(rule: &str, entry: &BusEntry) -> RoutedEvent {
    RoutedEvent::new(
        rule,
        json!({
            "version": "0", "id": "e-1", "detail-type": entry.detail_type,
            "source": entry.source, "account": "123456789012", "time": "2026-01-01T00:00:01Z",
            "region": "us-east-1", "resources": [],
            "detail": serde_json::from_str::<serde_json::Value>(&entry.detail).unwrap(),
        }),
    )
}

fn detail_field(entry: &BusEntry, field: &str) -> String {
    serde_json::from_str::<serde_json::Value>(&entry.detail).unwrap()[field]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn duplicate_delivery_is_processed_once() {
    let store = Arc::new(MemoryStatusStore::new());
    let payments = Arc::new(MemoryPaymentStore::new());
    let bus = Arc::new(RecordingBus::new());
    let e = event("evt_1", "pi_1", EventType::PaymentSucceeded, 250_000);
    queued(&store, &e).await;
    let p = processor(store.clone(), payments.clone(), bus.clone());
    let first = p.handle_batch(&[record("m1", &e, 1)], NOW + 300_000).await;
    let second = p.handle_batch(&[record("m2", &e, 1)], NOW + 300_000).await;
    assert!(matches!(
        first.records[0].1,
        RecordOutcome::Published {
            tier: Tier::High,
            ..
        }
    ));
    assert!(matches!(
        second.records[0].1,
        RecordOutcome::Skipped {
            status: Status::Published,
            ..
        }
    ));
    assert_eq!(bus.entries().len(), 1);
    assert!(first.failed_message_ids().is_empty() && second.failed_message_ids().is_empty());
}

#[tokio::test]
async fn two_processors_racing_on_one_webhook_publish_once() {
    let store = Arc::new(MemoryStatusStore::new());
    let payments = Arc::new(MemoryPaymentStore::new());
    let bus = Arc::new(RecordingBus::new());
    let e = event("evt_race", "pi_race", EventType::PaymentSucceeded, 1_000);
    queued(&store, &e).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let p = processor(store.clone(), payments.clone(), bus.clone());
        let r = record(&format!("m{i}"), &e, 1);
        tasks.push(tokio::spawn(async move {
            p.handle_batch(&[r], NOW + 300_000).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        bus.entries().len(),
        1,
        "exactly one PutEvents across racing processors"
    );
    assert_eq!(
        store.get(&e.webhook_id).await.unwrap().unwrap().status,
        Status::Published
    );
}

/// A bus that accepts the entry and then fails the call, as if the Lambda died between
/// PutEvents and marking PUBLISHED.
struct CrashAfterPut(RecordingBus);

#[async_trait]
impl EventBus for CrashAfterPut {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        self.0.put_events(entries).await?;
        Err(BusError(
            "connection reset after the events were accepted".into(),
        ))
    }
}

#[tokio::test]
async fn crash_after_put_events_retries_and_the_event_processor_absorbs_the_second_event() {
    let store = Arc::new(MemoryStatusStore::new());
    let payments = Arc::new(MemoryPaymentStore::new());
    let crashing = Arc::new(CrashAfterPut(RecordingBus::new()));
    let e = event("evt_crash", "pi_crash", EventType::PaymentSucceeded, 5_000);
    queued(&store, &e).await;
    let first = processor(store.clone(), payments.clone(), crashing.clone())
        .handle_batch(&[record("m1", &e, 1)], NOW + 1_000)
        .await;
    assert_eq!(first.failed_message_ids(), vec!["m1".to_owned()]);
    let item = store.get(&e.webhook_id).await.unwrap().unwrap();
    assert_ne!(
        item.status,
        Status::Published,
        "the crash happened before PUBLISHED"
    );

    // SQS redelivers after the visibility timeout, long after the first lease ended.
    let later = NOW + 1_800_000;
    let bus = Arc::new(RecordingBus::new());
    let retry = ProviderProcessor::new(
        store.clone(),
        payments.clone(),
        bus.clone(),
        Arc::new(FixedClock(later)),
        ProcessorConfig::new(Provider::Stripe),
    )
    .handle_batch(&[record("m1", &e, 2)], later + 300_000)
    .await;
    assert!(matches!(
        retry.records[0].1,
        RecordOutcome::Published { .. }
    ));

    // Both published events reach the event processor; only one is recorded.
    let ep = EventProcessor::new(store.clone(), Arc::new(FixedClock(later + 10)));
    let first_event = routed("low-value-payments", &crashing.0.entries()[0]);
    let second_event = routed("low-value-payments", &bus.entries()[0]);
    assert!(matches!(
        ep.handle(&first_event).await.unwrap(),
        ProcessedOutcome::Recorded { .. }
    ));
    assert!(matches!(
        ep.handle(&second_event).await.unwrap(),
        ProcessedOutcome::Absorbed { .. }
    ));
    let item = store.get(&e.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Processed);
    assert_eq!(item.matched_rules, vec!["low-value-payments".to_owned()]);
}

#[tokio::test]
async fn poison_message_ends_failed_on_the_last_receive() {
    let store = Arc::new(MemoryStatusStore::new());
    let payments = Arc::new(MemoryPaymentStore::new());
    let bus = Arc::new(RecordingBus::new());
    let e = event("evt_poison", "pi_poison", EventType::PaymentSucceeded, 100);
    queued(&store, &e).await;
    let mut poison = record("m1", &e, 1);
    poison.body = format!(
        r#"{{"webhook_id":"{}","amount":"not a number"}}"#,
        e.webhook_id
    );
    let p = processor(store.clone(), payments.clone(), bus.clone());
    for receive in 1..=4 {
        poison.receive_count = receive;
        let out = p
            .handle_batch(std::slice::from_ref(&poison), NOW + 300_000)
            .await;
        assert!(matches!(
            out.records[0].1,
            RecordOutcome::Failed {
                final_attempt: false,
                error: ProcessError::Malformed(_),
                ..
            }
        ));
        assert_eq!(
            store.get(&e.webhook_id).await.unwrap().unwrap().status,
            Status::Queued
        );
    }
    poison.receive_count = 5;
    let out = p
        .handle_batch(std::slice::from_ref(&poison), NOW + 300_000)
        .await;
    assert!(matches!(
        out.records[0].1,
        RecordOutcome::Failed {
            final_attempt: true,
            ..
        }
    ));
    let item = store.get(&e.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Failed);
    assert!(item.last_error.unwrap().starts_with("malformed_record"));
    assert!(bus.entries().is_empty());
}

#[tokio::test]
async fn events_of_one_payment_are_published_in_order() {
    let store = Arc::new(MemoryStatusStore::new());
    let payments = Arc::new(MemoryPaymentStore::new());
    let bus = Arc::new(RecordingBus::new());
    let events = [
        event("evt_a1", "pi_a", EventType::PaymentPending, 1_000),
        event("evt_b1", "pi_b", EventType::PaymentSucceeded, 1_000),
        event("evt_a2", "pi_a", EventType::PaymentSucceeded, 1_000),
        event("evt_a3", "pi_a", EventType::RefundSucceeded, 500),
    ];
    let records = queue_all(&store, &events).await;
    processor(store, payments.clone(), bus.clone())
        .handle_batch(&records, NOW + 300_000)
        .await;
    let ids: Vec<String> = bus
        .entries()
        .iter()
        .map(|e| detail_field(e, "webhook_id"))
        .filter(|id| id.starts_with("stripe:evt_a"))
        .collect();
    assert_eq!(ids, ["stripe:evt_a1", "stripe:evt_a2", "stripe:evt_a3"]);
}

/// A bus whose entries for one webhook are rejected.
struct FailingFor(&'static str, RecordingBus);

#[async_trait]
impl EventBus for FailingFor {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        if entries.iter().any(|e| e.detail.contains(self.0)) {
            return Ok(vec![EntryResult::Failed {
                code: "InternalFailure".into(),
                message: "try again".into(),
            }]);
        }
        self.1.put_events(entries).await
    }
}

#[tokio::test]
async fn after_a_failure_later_records_of_the_same_group_fail_and_other_groups_go_on() {
    let store = Arc::new(MemoryStatusStore::new());
    let payments = Arc::new(MemoryPaymentStore::new());
    let bus = Arc::new(FailingFor("evt_x1", RecordingBus::new()));
    let events = [
        event("evt_x1", "pi_x", EventType::PaymentSucceeded, 1_000),
        event("evt_y1", "pi_y", EventType::PaymentSucceeded, 1_000),
        event("evt_x2", "pi_x", EventType::RefundSucceeded, 1_000),
    ];
    let records = queue_all(&store, &events).await;
    let out = processor(store.clone(), payments.clone(), bus.clone())
        .handle_batch(&records, NOW + 300_000)
        .await;
    assert_eq!(
        out.failed_message_ids(),
        vec!["m0".to_owned(), "m2".to_owned()]
    );
    assert!(matches!(
        out.records[2].1,
        RecordOutcome::Failed {
            error: ProcessError::GroupBlocked(_),
            ..
        }
    ));
    assert_eq!(
        bus.1.entries().len(),
        1,
        "only the other group's record was published"
    );
    assert_eq!(
        store.get("stripe:evt_x2").await.unwrap().unwrap().status,
        Status::Queued,
        "the held-back record was never claimed"
    );
}

#[tokio::test]
async fn tier_follows_the_thresholds() {
    let store = Arc::new(MemoryStatusStore::new());
    let payments = Arc::new(MemoryPaymentStore::new());
    let bus = Arc::new(RecordingBus::new());
    let cases = [
        (100_000, "high"),
        (99_999, "medium"),
        (10_000, "medium"),
        (9_999, "low"),
    ];
    for (i, (minor, _)) in cases.iter().enumerate() {
        let e = event(
            &format!("evt_t{i}"),
            &format!("pi_t{i}"),
            EventType::PaymentSucceeded,
            *minor,
        );
        queued(&store, &e).await;
        processor(store.clone(), payments.clone(), bus.clone())
            .handle_batch(&[record("m", &e, 1)], NOW + 1)
            .await;
    }
    let tiers: Vec<String> = bus
        .entries()
        .iter()
        .map(|e| detail_field(e, "tier"))
        .collect();
    assert_eq!(tiers, cases.iter().map(|c| c.1).collect::<Vec<_>>());
}

/// A bus that hands each event to the event processor before `PutEvents` returns, as moto
/// does and as EventBridge occasionally does before the processor records PUBLISHED.
struct DeliversAtOnce {
    bus: RecordingBus,
    event_processor: EventProcessor,
}

#[async_trait]
impl EventBus for DeliversAtOnce {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let results = self.bus.put_events(entries).await?;
        for entry in entries {
            self.event_processor
                .handle(&routed("low-value-payments", entry))
                .await
                .expect("recorded from PROCESSING");
        }
        Ok(results)
    }
}

#[tokio::test]
async fn event_recorded_before_published_keeps_the_processors_put_time_as_published_at() {
    let store = Arc::new(MemoryStatusStore::new());
    let payments = Arc::new(MemoryPaymentStore::new());
    let bus = Arc::new(DeliversAtOnce {
        bus: RecordingBus::new(),
        event_processor: EventProcessor::new(store.clone(), Arc::new(FixedClock(NOW + 2_000))),
    });
    let e = event("evt_fast", "pi_fast", EventType::PaymentSucceeded, 5_000);
    queued(&store, &e).await;
    let out = processor(store.clone(), payments.clone(), bus.clone())
        .handle_batch(&[record("m1", &e, 1)], NOW + 300_000)
        .await;
    assert!(matches!(out.records[0].1, RecordOutcome::Published { .. }));
    let item = store.get(&e.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Processed, "PUBLISHED came too late");
    assert_eq!(item.matched_rules, vec!["low-value-payments".to_owned()]);
    // When the processor put it on the bus (its clock, to the millisecond): not left empty,
    // not the envelope's whole-second `time` (the helper's 2026-01-01T00:00:01Z), and not the
    // event processor's own clock.
    assert_eq!(
        item.published_at.as_deref(),
        Some(payhook_core::status::rfc3339_ms(NOW).as_str())
    );
    assert!(item.processed_at.is_some());
}
