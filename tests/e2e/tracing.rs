//! One webhook, one trace: the validator's trace continues through the processor's record
//! (its claim, payment record, `PutEvents` and status writes) to the event processor, and every
//! log line about the webhook carries its id and that trace's id.

use payhook_core::Provider;
use payhook_devkit::payloads::PayloadSpec;
use serde_json::Value;

use crate::support::Harness;

/// Every span of the run's X-Ray documents as `(trace id, name, parent id, webhook_id
/// annotation)`, subsegments included.
fn spans(run_dir: &std::path::Path) -> Vec<(String, String, Option<String>, Option<String>)> {
    fn walk(
        doc: &Value,
        trace: &str,
        parent: Option<String>,
        out: &mut Vec<(String, String, Option<String>, Option<String>)>,
    ) {
        let id = doc["id"].as_str().unwrap_or_default().to_owned();
        out.push((
            trace.to_owned(),
            doc["name"].as_str().unwrap_or_default().to_owned(),
            parent,
            doc["annotations"]["webhook_id"].as_str().map(str::to_owned),
        ));
        for child in doc["subsegments"].as_array().into_iter().flatten() {
            walk(child, trace, Some(id.clone()), out);
        }
    }
    let text = std::fs::read_to_string(run_dir.join("xray.jsonl")).expect("xray.jsonl");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Value = serde_json::from_str(line).expect("a segment document");
        let trace = doc["trace_id"].as_str().unwrap_or_default().to_owned();
        let parent = doc["parent_id"].as_str().map(str::to_owned);
        walk(&doc, &trace, parent, &mut out);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhooks_journey_is_one_trace_from_the_validator_to_the_event_processor() {
    let h = Harness::start("one-trace", |_| {}).await;
    let p = h.payload(PayloadSpec::new(Provider::Stripe).amount("250.00", "USD"));
    let (status, body) = h.post(&p).await;
    assert_eq!(status, 202, "{body}");
    h.idle().await;
    let webhook_id = p.webhook_id();
    let item = h.stack.status(&webhook_id).await.expect("status item");
    let trace_id = item.trace_id.clone().expect("the item records its trace");
    h.stack.shutdown().await;

    let run_dir = h.stack.run_dir().to_owned();
    let in_trace: Vec<_> = spans(&run_dir)
        .into_iter()
        .filter(|(trace, ..)| *trace == trace_id)
        .collect();
    let names: Vec<&str> = in_trace.iter().map(|(_, name, ..)| name.as_str()).collect();
    for expected in [
        "webhook-validator",
        "## record",
        "EventBridge",
        "## event-processor",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from trace {trace_id}: {names:?}"
        );
    }
    assert!(
        names.iter().filter(|n| **n == "DynamoDB").count() >= 4,
        "the processor's claim, payment record and status writes: {names:?}"
    );

    // The logs: every line naming the webhook (from any function) is in its trace.
    let logs = std::fs::read_to_string(run_dir.join("logs.jsonl")).expect("logs.jsonl");
    let mut functions = std::collections::BTreeSet::new();
    for line in logs.lines() {
        let line: Value = serde_json::from_str(line).expect("a JSON log line");
        if line["correlation_id"] == webhook_id.as_str() {
            assert_eq!(line["xray_trace_id"], trace_id.as_str(), "{line}");
            functions.insert(
                line["function_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    assert!(
        functions.contains("webhook-validator") && functions.contains("event-processor"),
        "{functions:?}"
    );
    assert!(
        functions
            .iter()
            .any(|f| f.ends_with("-processor") && f != "event-processor"),
        "the provider processor's lines: {functions:?}"
    );
}
