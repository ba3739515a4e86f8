//! The provider processor's Lambda adapter: its configuration from the environment, the SQS
//! records it hands the handler, and the partial batch response it returns.
//!
//! Run: `cargo nextest run -p payhook-provider-processor`. `fixtures/sqs-fifo-batch.json` is an
//! SQS event as Lambda's event source mapping delivers it from a FIFO queue (the record shape
//! and attributes of the AWS Lambda developer guide's FIFO example), carrying two canonical
//! payhook events and one body that is not an event.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use payhook_core::Provider;
use payhook_core::payment::MemoryPaymentStore;
use payhook_core::ports::{RecordingBus, SystemClock};
use payhook_core::processor::{BatchOutcome, ProcessError, ProviderProcessor, RecordOutcome, Tier};
use payhook_core::status::{MemoryStatusStore, Status, StatusStore};
use payhook_provider_processor::{
    Config, EVENT_BUS_NAME_ENV, MAX_RECEIVE_COUNT_ENV, PROVIDER_ENV, STATUS_TABLE_ENV,
    TIER_HIGH_MIN_ENV, TIER_MEDIUM_MIN_ENV, batch_response, invoke, queue_record, queue_records,
};
use payhook_telemetry::{FunctionConfig, FunctionKind, MemorySink, Telemetry};
use serde_json::json;

const FIFO_BATCH: &[u8] = include_bytes!("fixtures/sqs-fifo-batch.json");
const POISON_MESSAGE_ID: &str = "7c1a3f0e-0d7b-4e6f-9a55-2b8f0c6d9e41";

fn config(pairs: &[(&str, &str)]) -> Result<Config, payhook_aws::env::EnvError> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(|name| env.get(name).cloned())
}

fn fifo_batch() -> SqsEvent {
    serde_json::from_slice(FIFO_BATCH).expect("the fixture is an SQS event")
}

// --- configuration ---------------------------------------------------------------------------

#[test]
fn only_the_provider_is_required_and_the_rest_defaults() {
    let config = config(&[(PROVIDER_ENV, "paypal")]).unwrap();
    assert_eq!(config.processor.provider, Provider::Paypal);
    assert_eq!(
        config.processor.max_receive_count, 5,
        "the DLQ's maxReceiveCount"
    );
    assert_eq!(config.processor.event_bus, "payment-events");
    assert_eq!(config.processor.tiers.high_min, 1000.0);
    assert_eq!(config.processor.tiers.medium_min, 100.0);
    assert_eq!(config.status_table, "webhook-processing");
}

#[test]
fn every_variable_is_read_and_trimmed() {
    let config = config(&[
        (PROVIDER_ENV, " square\n"),
        (STATUS_TABLE_ENV, " payhook-dev-webhook-processing "),
        (EVENT_BUS_NAME_ENV, " payhook-dev-payment-events "),
        (MAX_RECEIVE_COUNT_ENV, " 3 "),
        (TIER_HIGH_MIN_ENV, " 5000 "),
        (TIER_MEDIUM_MIN_ENV, " 250.5 "),
    ])
    .unwrap();
    assert_eq!(config.processor.provider, Provider::Square);
    assert_eq!(config.status_table, "payhook-dev-webhook-processing");
    assert_eq!(config.processor.event_bus, "payhook-dev-payment-events");
    assert_eq!(config.processor.max_receive_count, 3);
    assert_eq!(config.processor.tiers.high_min, 5000.0);
    assert_eq!(config.processor.tiers.medium_min, 250.5);
}

#[test]
fn empty_values_are_unset_and_take_their_defaults() {
    let blank = [
        STATUS_TABLE_ENV,
        EVENT_BUS_NAME_ENV,
        MAX_RECEIVE_COUNT_ENV,
        TIER_HIGH_MIN_ENV,
        TIER_MEDIUM_MIN_ENV,
    ]
    .map(|name| (name, "  "));
    let mut pairs = vec![(PROVIDER_ENV, "stripe")];
    pairs.extend(blank);
    assert_eq!(config(&pairs).unwrap(), config(&pairs[..1]).unwrap());
}

#[test]
fn a_missing_or_empty_provider_is_an_error_naming_provider() {
    for pairs in [&[][..], &[(PROVIDER_ENV, " ")][..]] {
        let err = config(pairs).unwrap_err();
        assert_eq!(err.variable(), "PROVIDER");
        assert_eq!(
            err.to_string(),
            "PROVIDER is not set (expected stripe, paypal or square)"
        );
    }
}

#[test]
fn an_unknown_provider_is_an_error_naming_provider_and_the_value() {
    let err = config(&[(PROVIDER_ENV, "adyen")]).unwrap_err();
    assert_eq!(err.variable(), "PROVIDER");
    assert!(
        err.to_string().starts_with("PROVIDER=`adyen` is not valid"),
        "{err}"
    );
}

#[test]
fn an_unusable_number_is_an_error_naming_its_variable() {
    for (name, value) in [
        (MAX_RECEIVE_COUNT_ENV, "five"),
        (MAX_RECEIVE_COUNT_ENV, "-1"),
        (MAX_RECEIVE_COUNT_ENV, "0"),
        (TIER_HIGH_MIN_ENV, "lots"),
        (TIER_HIGH_MIN_ENV, "NaN"),
        (TIER_MEDIUM_MIN_ENV, "-5"),
        (TIER_MEDIUM_MIN_ENV, "inf"),
    ] {
        let err = config(&[(PROVIDER_ENV, "stripe"), (name, value)]).unwrap_err();
        assert_eq!(err.variable(), name, "{name}={value}: {err}");
        assert_eq!(err.code(), "config_invalid", "{name}={value}");
    }
}

#[test]
fn a_medium_tier_above_the_high_tier_is_an_error_naming_tier_medium_min() {
    let err = config(&[
        (PROVIDER_ENV, "stripe"),
        (TIER_HIGH_MIN_ENV, "100"),
        (TIER_MEDIUM_MIN_ENV, "200"),
    ])
    .unwrap_err();
    assert_eq!(err.variable(), "TIER_MEDIUM_MIN");
    assert!(err.to_string().contains("TIER_HIGH_MIN"), "{err}");
    let equal = config(&[
        (PROVIDER_ENV, "stripe"),
        (TIER_HIGH_MIN_ENV, "100"),
        (TIER_MEDIUM_MIN_ENV, "100"),
    ]);
    assert!(
        equal.is_ok(),
        "equal thresholds leave no medium tier: {equal:?}"
    );
}

// --- record mapping --------------------------------------------------------------------------

#[test]
fn fifo_records_map_to_queue_records_in_delivery_order() {
    let event = fifo_batch();
    let records = queue_records(&event);
    let ids: Vec<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "11d6ee51-4cc7-4302-9e22-7cd8afdaadf5",
            POISON_MESSAGE_ID,
            "e9b2c4d6-58f1-4a3b-8c7d-0f1e2d3c4b5a",
        ]
    );
    let first = &records[0];
    assert_eq!(first.group_id, "pi_3QfAaB2eZvKYlo2C0aaaaaaa");
    assert_eq!(first.receive_count, 1);
    assert_eq!(
        first.trace_header.as_deref(),
        Some("Root=1-677576c0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1")
    );
    assert_eq!(Some(&first.body), event.records[0].body.as_ref());
    assert_eq!(records[1].body, r#"{"not":"a payment event"}"#);
    assert_eq!(records[1].receive_count, 2);
    assert_eq!(records[2].trace_header, None);
}

#[test]
fn a_record_without_a_usable_receive_count_counts_as_its_first_receive() {
    let mut message = fifo_batch().records.remove(1);
    message.attributes.remove("ApproximateReceiveCount");
    assert_eq!(queue_record(&message).receive_count, 1);
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), "many".into());
    assert_eq!(queue_record(&message).receive_count, 1);
}

// --- the partial batch response --------------------------------------------------------------

#[test]
fn batch_response_lists_exactly_the_failed_records_in_the_lambda_shape() {
    let published = |id: &str| RecordOutcome::Published {
        webhook_id: format!("stripe:{id}"),
        event_type: payhook_core::EventType::PaymentSucceeded,
        business_events: vec![payhook_core::payment::BusinessEventType::PaymentSucceeded],
        tier: Tier::Low,
        amount: 1.0,
    };
    let failed = |final_attempt| RecordOutcome::Failed {
        webhook_id: None,
        error: ProcessError::Malformed("not JSON".into()),
        final_attempt,
        retry_after_secs: 2,
    };
    let outcome = BatchOutcome {
        records: vec![
            ("id1".into(), published("evt_1")),
            ("id2".into(), failed(false)),
            (
                "id3".into(),
                RecordOutcome::Skipped {
                    webhook_id: "stripe:evt_3".into(),
                    status: Status::Processed,
                },
            ),
            ("id4".into(), failed(true)),
        ],
    };
    assert_eq!(
        serde_json::to_value(batch_response(&outcome)).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "id2"}, {"itemIdentifier": "id4"}]})
    );
    let all_good = BatchOutcome {
        records: vec![("id1".into(), published("evt_1"))],
    };
    assert_eq!(
        serde_json::to_value(batch_response(&all_good)).unwrap(),
        json!({"batchItemFailures": []}),
        "an empty list acknowledges the whole batch"
    );
}

#[tokio::test]
async fn a_fifo_batch_publishes_its_events_and_reports_only_the_poison_record() {
    let store = Arc::new(MemoryStatusStore::new());
    let bus = Arc::new(RecordingBus::new());
    let config = config(&[(PROVIDER_ENV, "stripe")]).unwrap();
    let processor = ProviderProcessor::new(
        store.clone(),
        Arc::new(MemoryPaymentStore::new()),
        bus.clone(),
        Arc::new(SystemClock),
        config.processor,
    );
    let metrics = MemorySink::new();
    let telemetry = Telemetry::builder().build().expect("telemetry builds");
    let function = telemetry.function(
        FunctionConfig::new(FunctionKind::ProviderProcessor).metrics_sink(metrics.clone()),
    );
    let records = queue_records(&fifo_batch());
    let deadline_ms = payhook_core::ports::Clock::now_ms(&SystemClock) + 60_000;

    let outcome = invoke(
        &processor,
        function.start("req-1", None),
        &records,
        deadline_ms,
    )
    .await;

    assert_eq!(
        serde_json::to_value(batch_response(&outcome)).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": POISON_MESSAGE_ID}]})
    );
    let published: Vec<String> = bus.entries().into_iter().map(|e| e.detail).collect();
    assert_eq!(published.len(), 2, "{published:?}");
    for webhook_id in [
        "stripe:evt_3QfAaB2eZvKYlo2C0a1b2c3d",
        "stripe:evt_3QfAaB2eZvKYlo2C0i9j0k1l",
    ] {
        let item = store.get(webhook_id).await.unwrap().expect("recorded");
        assert_eq!(item.status, Status::Published, "{webhook_id}");
    }
    let emf = metrics.json().unwrap();
    // An EMF value is a number, or an array of them when a document carries several.
    let count = |metric: &str| -> f64 {
        emf.iter()
            .filter_map(|doc| doc.get(metric))
            .flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
            .filter_map(|v| v.as_f64())
            .sum()
    };
    assert_eq!(count("RecordsProcessed"), 2.0);
    assert_eq!(count("RecordsFailed"), 1.0);
    assert_eq!(
        count("MessagesToDlq"),
        0.0,
        "receive 2 of 5 is not the last"
    );
}
