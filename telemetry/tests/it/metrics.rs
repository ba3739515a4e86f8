//! Metrics: EMF documents that pass the validator and AWS's schema, ColdStart on its own, one
//! flush per invocation whatever the outcome, splitting before the limits.

use std::collections::HashMap;

use payhook_telemetry::emf;
use payhook_telemetry::metrics::MetricRejected;
use payhook_telemetry::{
    Dimension, FunctionConfig, FunctionKind, Metric, MetricSet, MetricsConfig, TelemetryError,
};
use serde_json::{Value, json};

use crate::support::{Harness, TestError, emf_schema, schema_errors};

fn assert_valid(docs: &[Value]) {
    let schema = emf_schema();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    for doc in docs {
        emf::validate(doc).unwrap_or_else(|e| panic!("{e:?}: {doc}"));
        emf::validate_timestamp_window(doc, now).unwrap_or_else(|e| panic!("{e:?}: {doc}"));
        if let Some(schema) = &schema {
            let errors = schema_errors(schema, doc);
            assert!(errors.is_empty(), "{errors:?}: {doc}");
        }
    }
}

fn metric_names(doc: &Value) -> Vec<String> {
    doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("directives")
        .iter()
        .flat_map(|d| d["Metrics"].as_array().expect("metrics").iter())
        .map(|m| m["Name"].as_str().expect("name").to_owned())
        .collect()
}

fn without_cold_start(docs: Vec<Value>) -> Vec<Value> {
    docs.into_iter()
        .filter(|d| metric_names(d) != ["ColdStart"])
        .collect()
}

#[tokio::test]
async fn every_document_the_crate_emits_passes_the_validator_and_the_schema() {
    let h = Harness::new();
    let validator = h.function(FunctionKind::WebhookValidator);
    let inv = validator.start("r1", None);
    let m = inv.handle();
    inv.run(async {
        for p in ["stripe", "paypal"] {
            m.count(Metric::WebhooksReceived, &[(Dimension::Provider, p)]);
            m.count(Metric::WebhooksAccepted, &[(Dimension::Provider, p)]);
            m.metric(Metric::ValidationLatency, 12.5, &[(Dimension::Provider, p)]);
        }
        m.count(
            Metric::WebhooksRejected,
            &[
                (Dimension::Provider, "square"),
                (Dimension::Reason, "invalid_signature"),
            ],
        );
        m.count(
            Metric::SignatureFailures,
            &[(Dimension::Provider, "square")],
        );
        Ok::<_, TestError>(())
    })
    .await
    .expect("ok");

    let processor = h.function(FunctionKind::ProviderProcessor);
    let inv = processor.start("r2", None);
    let m = inv.handle();
    inv.run(async {
        for (tier, amount) in [("high", 12_500.0), ("low", 9.99), ("high", 20_000.0)] {
            m.metric(
                Metric::PaymentAmount,
                amount,
                &[(Dimension::Provider, "stripe"), (Dimension::Tier, tier)],
            );
            m.count(Metric::PaymentsByTier, &[(Dimension::Tier, tier)]);
        }
        m.count(
            Metric::EventsPublished,
            &[
                (Dimension::Provider, "stripe"),
                (Dimension::EventType, "payment.succeeded"),
            ],
        );
        Ok::<_, TestError>(())
    })
    .await
    .expect("ok");

    let docs = h.metric_docs();
    assert!(docs.len() >= 4, "{docs:?}");
    assert_valid(&docs);
    // Two values with the same dimensions are one array; different tiers never share a document.
    let high = docs
        .iter()
        .find(|d| d["tier"] == "high" && d.get("PaymentAmount").is_some())
        .expect("high tier document");
    assert_eq!(high["PaymentAmount"], json!([12500, 20000]));
    assert_eq!(high["PaymentsByTier"], json!([1, 1]));
    assert_eq!(high["service"], "provider-processor");
    for doc in &docs {
        for directive in doc["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("directives")
        {
            assert_eq!(directive["Namespace"], "Payhook");
            for set in directive["Dimensions"].as_array().expect("sets") {
                assert_eq!(set[0], "service", "service leads every set: {doc}");
            }
            for metric in directive["Metrics"].as_array().expect("metrics") {
                let def = Metric::from_name(metric["Name"].as_str().expect("name"))
                    .expect("catalogued")
                    .def();
                assert_eq!(metric["Unit"], def.unit.as_str());
                let sets: Vec<Vec<&str>> = def
                    .dimension_sets
                    .iter()
                    .map(|s| s.iter().map(|d| d.as_str()).collect())
                    .collect();
                assert_eq!(directive["Dimensions"], json!(sets));
            }
        }
    }
}

#[tokio::test]
async fn cold_start_is_its_own_document_with_service_and_function_name() {
    let h = Harness::new();
    let f = h.function_with(
        FunctionConfig::new(FunctionKind::EventProcessor)
            .function_name("payhook-dev-event-processor")
            .service("payhook"),
    );
    for id in ["r1", "r2"] {
        let inv = f.start(id, None);
        let m = inv.handle();
        inv.run(async {
            m.count(Metric::DuplicateEventsAbsorbed, &[]);
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    }
    let docs = h.metric_docs();
    assert_valid(&docs);
    let cold: Vec<&Value> = docs
        .iter()
        .filter(|d| metric_names(d).contains(&"ColdStart".to_owned()))
        .collect();
    assert_eq!(cold.len(), 1, "one cold start over two invocations");
    let cold = cold[0];
    assert_eq!(metric_names(cold), ["ColdStart"], "alone in its document");
    assert_eq!(
        cold["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["service", "function_name"]])
    );
    assert_eq!(cold["function_name"], "payhook-dev-event-processor");
    assert_eq!(cold["service"], "payhook");
    assert_eq!(cold["ColdStart"], 1);
    assert_eq!(
        cold["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
        "Count"
    );
}

#[tokio::test]
async fn metrics_are_flushed_once_per_invocation_also_when_the_handler_fails() {
    let h = Harness::new();
    let f = h.function(FunctionKind::ProviderProcessor);
    let inv = f.start("r1", None);
    let m = inv.handle();
    let result = inv
        .run(async {
            m.count(Metric::RecordsFailed, &[(Dimension::Provider, "paypal")]);
            m.count(Metric::MessagesToDlq, &[(Dimension::Provider, "paypal")]);
            Err::<(), _>(TestError {
                code: "publish_failed",
                retryable: true,
                message: "PutEvents failed".into(),
            })
        })
        .await;
    assert!(result.is_err());
    let docs = without_cold_start(h.metric_docs());
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["RecordsFailed"], 1);
    assert_eq!(docs[0]["MessagesToDlq"], 1);
    assert_valid(&docs);
}

#[test]
fn metrics_are_flushed_when_the_handler_panics() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let inv = f.start("r1", None);
    let m = inv.handle();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(inv.run(async {
            m.count(Metric::WebhooksReceived, &[(Dimension::Provider, "stripe")]);
            if m.request_id() == "r1" {
                panic!("handler bug");
            }
            Ok::<_, TestError>(())
        }))
    }));
    assert!(outcome.is_err(), "the panic propagates");
    let docs = without_cold_start(h.metric_docs());
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["WebhooksReceived"], 1);
    let lines = h.log_lines();
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("error line");
    assert_eq!(error["error_code"], "panic");
}

#[tokio::test]
async fn an_invocation_without_metrics_writes_no_empty_document() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    f.start("r1", None).finish_ok();
    f.start("r2", None).finish_ok();
    assert_eq!(without_cold_start(h.metric_docs()), Vec::<Value>::new());
}

#[tokio::test]
async fn more_than_a_hundred_values_are_split_across_documents() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let inv = f.start("r1", None);
    let m = inv.handle();
    for i in 0..250 {
        m.metric(
            Metric::ValidationLatency,
            f64::from(i),
            &[(Dimension::Provider, "stripe")],
        );
    }
    m.count(Metric::WebhooksReceived, &[(Dimension::Provider, "stripe")]);
    inv.finish_ok();
    let docs = without_cold_start(h.metric_docs());
    assert_valid(&docs);
    let sizes: Vec<usize> = docs
        .iter()
        .map(|d| d["ValidationLatency"].as_array().map_or(1, Vec::len))
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    let all: Vec<f64> = docs
        .iter()
        .flat_map(|d| d["ValidationLatency"].as_array().expect("array").clone())
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(
        all,
        (0..250).map(f64::from).collect::<Vec<_>>(),
        "no value lost"
    );
    assert_eq!(
        docs.iter()
            .filter(|d| d.get("WebhooksReceived").is_some())
            .count(),
        1
    );
}

#[test]
fn namespace_comes_from_powertools_metrics_namespace_and_defaults_to_payhook() {
    let env: HashMap<&str, &str> = [
        ("POWERTOOLS_METRICS_NAMESPACE", "PaymentWebhooks/Prod"),
        ("POWERTOOLS_SERVICE_NAME", "payhook-prod"),
    ]
    .into();
    let lookup = |k: &str| env.get(k).map(|v| v.to_string());
    let h = Harness::new();
    let f = h.function_with(
        FunctionConfig::from_lookup(FunctionKind::WebhookValidator, lookup).expect("config"),
    );
    let inv = f.start("r1", None);
    inv.handle()
        .count(Metric::WebhooksReceived, &[(Dimension::Provider, "stripe")]);
    inv.finish_ok();
    for doc in h.metric_docs() {
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "PaymentWebhooks/Prod"
        );
        assert_eq!(doc["service"], "payhook-prod");
    }

    let default =
        FunctionConfig::from_lookup(FunctionKind::WebhookValidator, |_| None).expect("config");
    let h = Harness::new();
    let f = h.function_with(default);
    f.start("r1", None).finish_ok();
    assert_eq!(
        h.metric_docs()[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Payhook"
    );

    let bad = FunctionConfig::from_lookup(FunctionKind::WebhookValidator, |k| {
        (k == "POWERTOOLS_METRICS_NAMESPACE").then(|| ":bad namespace".to_owned())
    });
    assert!(matches!(bad, Err(TelemetryError::InvalidNamespace(_))));
}

#[tokio::test]
async fn default_dimensions_join_every_dimension_set() {
    let h = Harness::new();
    let f = h.function_with(
        FunctionConfig::new(FunctionKind::EventProcessor)
            .default_dimension("stage", "test")
            .expect("valid dimension"),
    );
    let inv = f.start("r1", None);
    inv.handle().count(
        Metric::EventsProcessed,
        &[(Dimension::Rule, "high-value-payments")],
    );
    inv.finish_ok();
    let docs = h.metric_docs();
    assert_valid(&docs);
    for doc in &docs {
        assert_eq!(doc["stage"], "test");
        for set in doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
            .as_array()
            .expect("sets")
        {
            assert_eq!(set.as_array().expect("set").last(), Some(&json!("stage")));
        }
    }
}

#[test]
fn default_dimensions_beyond_thirty_per_set_are_refused() {
    let mut cfg = FunctionConfig::new(FunctionKind::ProviderProcessor);
    let largest = Metric::ALL
        .iter()
        .flat_map(|m| m.def().dimension_sets.iter())
        .map(|s| s.len())
        .max()
        .expect("sets");
    for i in 0..(30 - largest) {
        cfg = cfg
            .default_dimension(format!("d{i}"), "v")
            .expect("room for it");
    }
    let err = cfg
        .default_dimension("one_too_many", "v")
        .expect_err("31st key");
    assert!(matches!(err, TelemetryError::TooManyDimensions(_)), "{err}");

    for (name, why) in [
        ("provider", "catalogue"),
        ("_aws", "EMF"),
        ("", "empty"),
        (":x", "colon"),
    ] {
        let r = MetricsConfig::new("Payhook", "svc")
            .expect("config")
            .with_default_dimension(name, "v");
        assert!(r.is_err(), "{name:?} ({why}) must be refused");
    }
}

#[test]
fn metrics_with_other_dimensions_than_the_catalogue_are_refused() {
    let mut set = MetricSet::new();
    let missing = set.add(
        Metric::WebhooksRejected,
        1.0,
        &[(Dimension::Provider, "stripe")],
    );
    assert!(matches!(
        missing,
        Err(MetricRejected::DimensionsMismatch { .. })
    ));
    let extra = set.add(
        Metric::PaymentsByTier,
        1.0,
        &[(Dimension::Tier, "high"), (Dimension::Provider, "stripe")],
    );
    assert!(matches!(
        extra,
        Err(MetricRejected::DimensionsMismatch { .. })
    ));
    assert_eq!(
        set.add(Metric::ColdStart, 1.0, &[]),
        Err(MetricRejected::Reserved("ColdStart"))
    );
    assert_eq!(
        set.add(
            Metric::ValidationLatency,
            f64::NAN,
            &[(Dimension::Provider, "stripe")]
        ),
        Err(MetricRejected::NotFinite("ValidationLatency"))
    );
    assert!(set.is_empty());
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "takes dimensions")]
fn emitting_with_the_wrong_dimensions_is_a_debug_assertion() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let inv = f.start("r1", None);
    inv.handle()
        .count(Metric::WebhooksRejected, &[(Dimension::Provider, "stripe")]);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "is not catalogued for webhook-validator")]
fn emitting_another_functions_metric_is_a_debug_assertion() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let inv = f.start("r1", None);
    inv.handle()
        .count(Metric::RecordsProcessed, &[(Dimension::Provider, "stripe")]);
}
