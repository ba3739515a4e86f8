//! The per-invocation machinery without `lambda_runtime`, as `payhook serve` uses it.

use payhook_telemetry::{
    Dimension, FileSink, FunctionConfig, FunctionKind, Metric, Telemetry, TraceExport,
};
use serde_json::Value;

use crate::support::Harness;

#[tokio::test]
async fn a_dropped_invocation_still_flushes_and_logs_why() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    {
        let inv = f.start("r1", None);
        inv.handle()
            .count(Metric::WebhooksReceived, &[(Dimension::Provider, "stripe")]);
        // Dropped without finishing, as when the serving task is cancelled.
    }
    let docs = h.metric_docs();
    assert!(docs.iter().any(|d| d["WebhooksReceived"] == 1), "{docs:?}");
    let error = h
        .log_lines()
        .into_iter()
        .find(|l| l["level"] == "ERROR")
        .expect("error line");
    assert_eq!(error["error_code"], "invocation_dropped");
}

#[tokio::test]
async fn run_uses_the_telemetrys_subscriber_even_when_it_is_not_the_default() {
    let logs = payhook_telemetry::MemorySink::new();
    let telemetry = Telemetry::builder()
        .log_sink(logs.clone())
        .build()
        .expect("telemetry");
    // No `set_default`: the local stack keeps one subscriber per stack, not per thread.
    let f = telemetry.function(FunctionConfig::new(FunctionKind::ProviderProcessor));
    let inv = f.start("r1", None);
    let result = inv
        .run(async {
            tracing::info!("inside");
            Err::<(), _>(crate::support::TestError {
                code: "lease_held",
                retryable: true,
                message: "another attempt holds the lease".into(),
            })
        })
        .await;
    assert!(result.is_err());
    let lines = logs.json().expect("JSON lines");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| l["function_request_id"] == "r1"));
    assert_eq!(lines[1]["error_code"], "lease_held");
}

#[tokio::test]
async fn the_local_stack_writes_logs_metrics_and_segments_to_files() {
    let dir = std::env::temp_dir().join(format!("payhook-telemetry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let telemetry = Telemetry::builder()
        .service("payhook-local")
        .log_sink(FileSink::create(dir.join("logs.jsonl")).expect("logs file"))
        .trace_export(TraceExport::sink(
            FileSink::create(dir.join("segments.jsonl")).expect("segments file"),
        ))
        .local_root_segments(true)
        .build()
        .expect("telemetry");
    let _guard = telemetry.set_default();
    let f = telemetry.function(
        FunctionConfig::new(FunctionKind::WebhookValidator)
            .metrics_sink(FileSink::create(dir.join("metrics.jsonl")).expect("metrics file")),
    );
    let inv = f.start("local-1", None);
    let handle = inv.handle();
    inv.run(async {
        handle.count(Metric::WebhooksAccepted, &[(Dimension::Provider, "square")]);
        tracing::info!("accepted");
        Ok::<_, crate::support::TestError>(())
    })
    .await
    .expect("ok");

    let read = |name: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.join(name))
            .expect("file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    };
    let logs = read("logs.jsonl");
    assert_eq!(logs[0]["function_request_id"], "local-1");
    let metrics = read("metrics.jsonl");
    assert!(metrics.iter().any(|d| d["WebhooksAccepted"] == 1));
    let segments = read("segments.jsonl");
    assert_eq!(
        segments.len(),
        1,
        "the function segment with the handler nested in it"
    );
    assert_eq!(
        segments[0]["subsegments"][0]["name"],
        "## webhook-validator"
    );
    assert_eq!(segments[0]["trace_id"], logs[0]["xray_trace_id"]);
    let _ = std::fs::remove_dir_all(&dir);
}
