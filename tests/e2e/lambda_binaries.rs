//! The real Lambda binaries run as Lambda runs them: each function's binary (the debug build the
//! test run already has) is started against a Lambda Runtime API stand-in on loopback, with the
//! environment the Pulumi program renders (resource references resolved to a stage bootstrapped
//! on moto) and an X-Ray daemon stand-in on UDP. The harness chains them as API Gateway, the SQS
//! event source mapping and EventBridge's rule target would: it hands the validator an API
//! Gateway proxy event, hands the processor what the queue holds, and hands the event processor
//! what the rule delivers, with the `TraceHeader` the processor put on its `PutEvents` entry
//! (EventBridge passes it to the target; moto drops it, so the harness reads it on the way
//! through an EventBridge endpoint of its own that forwards to moto).
//!
//! It proves what the local stack (calling the libraries directly) cannot: the binaries' wiring,
//! their environment names, and that one webhook is one trace across the three of them, with
//! every log line about it carrying its id and that trace's id.

use std::collections::BTreeMap;
use std::time::Duration;

use payhook_aws::SqsConsumer;
use payhook_aws::moto::MotoServer;
use payhook_core::Provider;
use payhook_core::status::{Status, StatusStore};
use payhook_devkit::payloads::{PayloadSpec, build};
use serde_json::{Value, json};

use crate::lambda_harness::{Chain, api_gateway_event, sqs_event, start_function};

/// Every span of the received documents as `(trace id, name)`.
fn spans(docs: &[Value]) -> Vec<(String, String)> {
    fn walk(doc: &Value, trace: &str, out: &mut Vec<(String, String)>) {
        out.push((
            trace.to_owned(),
            doc["name"].as_str().unwrap_or_default().to_owned(),
        ));
        for child in doc["subsegments"].as_array().into_iter().flatten() {
            walk(child, trace, out);
        }
    }
    let mut out = Vec::new();
    for doc in docs {
        walk(doc, doc["trace_id"].as_str().unwrap_or_default(), &mut out);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario across three binaries, step by step, asserting on what each step left"
)]
async fn the_three_binaries_carry_one_webhook_in_one_trace_with_correlated_logs() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let chain = Chain::start("lambda-binaries", moto).await;
    let (config, stage, envs, common) = (&chain.config, &chain.stage, &chain.envs, &chain.common);
    let names = stage.target.names.clone();

    // The validator, as API Gateway invokes it; the queue URLs resolved to the stage's.
    let validator_env = chain.validator_env().await;
    let validator = start_function(
        "webhook-validator",
        "webhook-validator",
        &validator_env,
        common,
    )
    .await;
    // Its init ends with its first call for work, before any event is waiting.
    let ready = validator
        .runtime
        .wait_first_next(Duration::from_secs(30))
        .await
        .expect("the validator asks the Runtime API for work");
    assert!(ready >= validator.started);
    let payload = build(&PayloadSpec::new(Provider::Stripe).amount("250.00", "USD")).unwrap();
    let headers = config
        .signer()
        .unwrap()
        .sign(Provider::Stripe, &payload.body, payhook_devkit::unix_now())
        .unwrap();
    let api_trace = format!(
        "Root=1-{:08x}-{:024x};Parent=53995c3f42cd8ad8;Sampled=1",
        payhook_devkit::unix_now(),
        u128::from(std::process::id()) << 32 | 0x00c0_ffee
    );
    let (ok, response) = validator
        .runtime
        .invoke(
            &api_gateway_event(Provider::Stripe, &headers, &payload.body),
            Some(api_trace.clone()),
        )
        .await;
    assert!(ok, "{response}");
    assert_eq!(response["statusCode"], 202, "{response}");
    let webhook_id = payload.webhook_id();
    let trace_id = api_trace
        .split(';')
        .next()
        .and_then(|r| r.strip_prefix("Root="))
        .unwrap()
        .to_owned();

    // The processor, as the event source mapping invokes it: its own invocation trace.
    let stripe_queue = chain.queue_url(Provider::Stripe).await;
    let consumer = SqsConsumer::new(chain.sqs.clone(), stripe_queue);
    let received = consumer.receive(10, 5, Some(60)).await.unwrap();
    assert_eq!(received.len(), 1, "the webhook is on its queue");
    assert_eq!(
        received[0]
            .record
            .trace_header
            .as_deref()
            .map(|h| h.contains(&trace_id)),
        Some(true),
        "AWSTraceHeader continues the validator's trace"
    );
    // Its AWS endpoint is the tap, which forwards every call to moto.
    let processor = start_function(
        "provider-processor",
        "stripe-processor",
        &envs["stripe-processor"],
        &chain.through_tap,
    )
    .await;
    let lambda_trace = format!(
        "Root=1-{:08x}-{:024x};Parent=0000000000000001;Sampled=1",
        payhook_devkit::unix_now(),
        0x5eed_u128
    );
    let event = sqs_event(
        &received,
        &format!(
            "arn:aws:sqs:us-east-1:123456789012:{}",
            names.queue(Provider::Stripe)
        ),
    );
    let (ok, response) = processor.runtime.invoke(&event, Some(lambda_trace)).await;
    assert!(ok, "{response}");
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let (entry_trace, detail) = chain
        .put
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("one PutEvents entry");
    assert_eq!(detail["webhook_id"], webhook_id.as_str());
    let entry_trace = entry_trace.expect("the entry carries a TraceHeader");
    assert!(
        entry_trace.contains(&trace_id),
        "{entry_trace} continues {trace_id}"
    );

    // The event processor, as the rule's target: EventBridge passes the entry's trace header.
    let event_processor = start_function(
        "event-processor",
        "event-processor",
        &envs["event-processor"],
        common,
    )
    .await;
    let routed = json!({
        "rule": "medium-value-payments",
        "event": {
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "payment.succeeded", "source": "payhook.stripe",
            "account": "123456789012", "time": "2026-12-03T00:00:00Z", "region": "us-east-1",
            "resources": [], "detail": detail,
        }
    });
    let (ok, response) = event_processor
        .runtime
        .invoke(&routed, Some(entry_trace))
        .await;
    assert!(ok, "{response}");
    let store =
        payhook_aws::DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&stage.sdk))
            .with_table_name(&names.table);
    let item = store.get(&webhook_id).await.unwrap().expect("status item");
    assert_eq!(item.status, Status::Processed);
    assert_eq!(item.trace_id.as_deref(), Some(trace_id.as_str()));

    // One trace: the validator, the processor's record (with its AWS calls) and the event
    // processor. The segments reach the daemon stand-in when each invocation ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = spans(&chain.segments.lock().unwrap());
    let in_trace: Vec<&str> = all
        .iter()
        .filter(|(t, _)| *t == trace_id)
        .map(|(_, n)| n.as_str())
        .collect();
    for expected in [
        "## webhook-validator",
        "## record",
        "EventBridge",
        "## event-processor",
    ] {
        assert!(
            in_trace.contains(&expected),
            "{expected} not in {trace_id}: {all:?}"
        );
    }

    // The logs: every line naming the webhook carries its trace, in all three binaries.
    let mut by_function = BTreeMap::new();
    for f in [&validator, &processor, &event_processor] {
        for line in f.logs.lock().unwrap().iter() {
            if line["correlation_id"] == webhook_id.as_str() {
                assert_eq!(line["xray_trace_id"], trace_id.as_str(), "{line}");
                *by_function
                    .entry(
                        line["function_name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                    .or_insert(0) += 1;
            }
        }
    }
    assert_eq!(
        by_function.keys().cloned().collect::<Vec<_>>(),
        ["event-processor", "stripe-processor", "webhook-validator"],
        "{by_function:?}"
    );
}
