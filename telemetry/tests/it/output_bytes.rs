//! The exact bytes of log lines, EMF documents and segment documents, pinned against
//! `golden/output_bytes.txt`: the encoders are written by hand for speed, and this keeps every
//! optimisation honest. Only what changes from run to run is normalised: clocks, random span
//! and trace ids (numbered in order of appearance, so which id is which still shows) and the
//! line numbers of this crate's own log call sites.
//!
//! After an intended change of output, regenerate the file with
//! `PAYHOOK_BLESS_GOLDEN=1 cargo test -p payhook-telemetry output_bytes` and review the diff.

use std::collections::HashMap;
use std::fmt::Write as _;

use payhook_telemetry::{
    Annotation, Dimension, FunctionConfig, FunctionKind, InvocationContext, LoggerConfig,
    MemorySink, Metric, Telemetry, TraceExport, aws_call_span, correlation_scope, mark_span_failed,
    record_span, webhook_scope,
};
use regex::{Captures, Regex};

use crate::support::{FakeDaemon, TestError};

const GOLDEN: &str = include_str!("golden/output_bytes.txt");
/// The trace ids' suffixes; their time part is "now" (X-Ray drops traces older than 30 days).
const TRACE: &str = "00c0ffee123456789abcdef0";
const RECORD_TRACE: &str = "00decaf0123456789abcdef0";

fn header(suffix: &str, parent: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    format!("Root=1-{secs:08x}-{suffix};Parent={parent};Sampled=1")
}

#[derive(Debug)]
struct Boom;

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("socket closed")
    }
}

impl std::error::Error for Boom {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        None
    }
}

/// What the bench does, with every kind of field, span and metric the encoders handle.
fn scenario(metrics: &MemorySink, telemetry: &Telemetry) {
    let function = telemetry.function(
        FunctionConfig::new(FunctionKind::WebhookValidator)
            .function_name("payhook-dev-webhook-validator")
            .memory_size_mb(1024)
            .default_dimension("stage", "dev")
            .expect("valid dimension")
            .metrics_sink(metrics.clone()),
    );
    tracing::info!(phase = "init", "before any invocation");
    let header = header(TRACE, "53995c3f42cd8ad8");
    let record_header = self::header(RECORD_TRACE, "63995c3f42cd8ad8");

    // The bench's invocation, cold.
    crate::workload::one_invocation(&function, &header);

    // A warm invocation with every field type, redaction, escaping, span fields, scopes,
    // repeated metrics and a failure.
    let invocation = function.start_with(InvocationContext {
        request_id: "req-\"2\"",
        trace_header: Some(&header),
        function_arn: Some("arn:aws:lambda:us-east-1:123456789012:function:webhook-validator"),
        function_name: Some("payhook-dev-webhook-validator"),
        memory_size_mb: Some(512),
    });
    let inv = invocation.handle();
    {
        let _handler = invocation.span().enter();
        inv.annotate(Annotation::Provider, "paypal");
        inv.annotate(Annotation::EventType, "payment.succeeded");
        inv.annotate(Annotation::Provider, "square");
        inv.append_key("client_secret", "sk_live_abc");
        tracing::debug!("not written at INFO");
        tracing::info!(
            attempt = 2_u64,
            delta = -3_i64,
            ratio = 0.25_f64,
            whole = 3.0_f64,
            ok = true,
            debugged = ?vec!["a", "b"],
            shown = %"display \"quoted\"\n",
            error = &Boom as &(dyn std::error::Error + 'static),
            password = "hunter2",
            retries = 7_u64,
            contact = "write to jane.doe@example.com",
            "card 4242 4242 4242 4242 declined\tfor \u{1}control"
        );
        {
            let call = aws_call_span("SQS", "SendMessage");
            call.record("aws.region", "us-east-1");
            call.record(
                "aws.queue.url",
                "https://sqs.us-east-1.amazonaws.com/123456789012/stripe.fifo",
            );
            call.record("http.response.status_code", 500_u64);
            mark_span_failed(&call, "queue_unavailable");
            let _call = call.entered();
            tracing::warn!(attempt = 3_u64, "send failed");
        }
        {
            let _record = record_span("msg-1", Some(&record_header)).entered();
            tracing::info!("inside a record");
            let _scope = webhook_scope("paypal:WH-1", Some(&record_header)).entered();
            tracing::error!(correlation_id = "override", "inside a webhook scope");
        }
        {
            let _scope = correlation_scope("corr-9").entered();
            let _inner =
                tracing::info_span!(target: "payhook_core::normalise", "normalise", step = 1_u64)
                    .entered();
            tracing::info!(step = 2_u64, "normalised");
        }
        let p = [(Dimension::Provider, "paypal")];
        inv.count(Metric::WebhooksReceived, &p);
        inv.count(Metric::WebhooksReceived, &p);
        inv.metric(Metric::ValidationLatency, 0.125, &p);
        inv.metric(Metric::ValidationLatency, 7.0, &p);
        inv.count(
            Metric::WebhooksReceived,
            &[(Dimension::Provider, "st\u{e9}ripe")],
        );
        inv.count(
            Metric::WebhooksRejected,
            &[
                (Dimension::Provider, "paypal"),
                (Dimension::Reason, "invalid_signature"),
            ],
        );
    }
    invocation.finish_err(&TestError {
        code: "queue_unavailable",
        retryable: true,
        message: "SendMessage timed out for jane.doe@example.com".to_owned(),
    });

    // Dropped unfinished.
    drop(function.start("req-3", Some(&header)));
    tracing::info!("after the invocations");
}

/// Replaces what differs from run to run.
fn normalise(text: &str) -> String {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut number = |kind: &str, id: &str| {
        let n = ids.len() + 1;
        let n = *ids.entry(format!("{kind}{id}")).or_insert(n);
        format!("<{kind}{n}>")
    };
    let clocks = Regex::new(
        r#"("timestamp":)"[0-9T:.Z-]+"|("Timestamp":)[0-9]+|("(?:start|end)_time":)[0-9.e+]+"#,
    )
    .expect("regex");
    let text = clocks.replace_all(text, |c: &Captures<'_>| {
        let key = c.get(1).or(c.get(2)).or(c.get(3)).expect("a key");
        format!("{}<clock>", key.as_str())
    });
    let locations =
        Regex::new(r#"("location":"payhook_telemetry::[a-z_]+):[0-9]+"#).expect("regex");
    let text = locations.replace_all(&text, "$1:<line>");
    let traces = Regex::new(r"1-[0-9a-f]{8}-((00c0ffee|00decaf0)123456789abcdef0)").expect("regex");
    let text = traces.replace_all(&text, "1-<now>-$1");
    let span_ids = Regex::new(r#""([0-9a-f]{16})""#).expect("regex");
    let text = span_ids.replace_all(&text, |c: &Captures<'_>| {
        format!("\"{}\"", number("span", &c[1]))
    });
    text.into_owned()
}

fn section(out: &mut String, title: &str, lines: &[String]) {
    let _ = writeln!(out, "## {title}");
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
}

#[test]
fn log_emf_and_segment_bytes_are_pinned() {
    let (logs, metrics, segments) = (MemorySink::new(), MemorySink::new(), MemorySink::new());
    let telemetry = Telemetry::builder()
        .service("payhook-tests")
        .log_sink(logs.clone())
        .trace_export(TraceExport::sink(segments.clone()))
        .build()
        .expect("telemetry");
    {
        let _guard = telemetry.set_default();
        scenario(&metrics, &telemetry);
    }

    // Debug sampling on every invocation, a local root segment, and the daemon's datagrams.
    let daemon = FakeDaemon::bind();
    let (sampled_logs, sampled_metrics) = (MemorySink::new(), MemorySink::new());
    let local = Telemetry::builder()
        .log_sink(sampled_logs.clone())
        .logger(LoggerConfig::default().with_sample_rate(1.0))
        .trace_export(daemon.export())
        .local_root_segments(true)
        .build()
        .expect("telemetry");
    {
        let _guard = local.set_default();
        let function = local.function(
            FunctionConfig::new(FunctionKind::EventProcessor).metrics_sink(sampled_metrics.clone()),
        );
        let invocation = function.start("req-local", None);
        {
            let _handler = invocation.span().enter();
            tracing::debug!(sampled = true, "debug line of a sampled invocation");
            let _call = aws_call_span("EventBridge", "PutEvents").entered();
        }
        invocation.finish_ok();
    }
    let datagrams: Vec<String> = daemon
        .datagrams()
        .into_iter()
        .map(|d| String::from_utf8(d).expect("UTF-8"))
        .collect();
    // The local root segment starts a trace of its own: its id is random.
    let trace_ids = Regex::new(r"1-[0-9a-f]{8}-[0-9a-f]{24}").expect("regex");
    let local_trace = |lines: Vec<String>| -> Vec<String> {
        lines
            .iter()
            .map(|l| trace_ids.replace_all(l, "<local-trace>").into_owned())
            .collect()
    };

    let mut actual = String::new();
    section(&mut actual, "logs", &logs.lines());
    section(&mut actual, "metrics", &metrics.lines());
    // One export holding two traces writes them in no fixed order: the record's trace last.
    let mut segment_lines = segments.lines();
    segment_lines.sort_by_key(|l| l.contains(RECORD_TRACE));
    section(&mut actual, "segments", &segment_lines);
    section(
        &mut actual,
        "sampled logs",
        &local_trace(sampled_logs.lines()),
    );
    section(&mut actual, "sampled metrics", &sampled_metrics.lines());
    section(&mut actual, "datagrams", &local_trace(datagrams));

    let actual = normalise(&actual);
    if std::env::var_os("PAYHOOK_BLESS_GOLDEN").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/golden/output_bytes.txt"
        );
        std::fs::write(path, &actual).expect("write the golden file");
        return;
    }
    if actual != GOLDEN {
        for (i, (a, g)) in actual.lines().zip(GOLDEN.lines()).enumerate() {
            assert_eq!(a, g, "line {} differs", i + 1);
        }
        assert_eq!(actual.lines().count(), GOLDEN.lines().count(), "{actual}");
    }
}
