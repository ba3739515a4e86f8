//! The `lambda_runtime` wrapper: context from the runtime, correlation id from the event,
//! errors as `Retryable` / `NonRetryable` diagnostics.

use std::sync::Arc;

use aws_lambda_events::event::apigw::ApiGatewayProxyRequest;
use lambda_runtime::{Context, LambdaEvent, Service};
use payhook_telemetry::lambda::{self, NON_RETRYABLE, RETRYABLE};
use payhook_telemetry::{Dimension, FunctionKind, InvocationHandle, Metric};
use serde_json::json;

use crate::support::{FakeDaemon, Harness, TestError, fresh_trace_header};

fn context(trace_header: &str) -> Context {
    let mut cx = Context::default();
    cx.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
    cx.invoked_function_arn =
        "arn:aws:lambda:us-east-1:123456789012:function:payhook-dev-webhook-validator".into();
    cx.xray_trace_id = Some(trace_header.into());
    cx.env_config = Arc::new(lambda_runtime::Config {
        function_name: "payhook-dev-webhook-validator".into(),
        memory: 1024,
        version: "$LATEST".into(),
        log_stream: String::new(),
        log_group: "/aws/lambda/payhook-dev-webhook-validator".into(),
    });
    cx
}

fn apigw_event() -> ApiGatewayProxyRequest {
    serde_json::from_value(json!({
        "resource": "/webhooks/{provider}",
        "path": "/webhooks/stripe",
        "httpMethod": "POST",
        "headers": {"Stripe-Signature": "t=1,v1=00"},
        "requestContext": {"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "stage": "prod", "httpMethod": "POST"},
        "body": "{}",
        "isBase64Encoded": false
    }))
    .expect("API Gateway proxy event")
}

async fn accept(
    event: LambdaEvent<ApiGatewayProxyRequest>,
    inv: InvocationHandle,
) -> Result<u16, TestError> {
    inv.count(Metric::WebhooksReceived, &[(Dimension::Provider, "stripe")]);
    tracing::info!(path = event.payload.path.as_deref(), "received");
    match event.payload.path.as_deref() {
        Some("/webhooks/stripe") => Ok(200),
        Some("/webhooks/bad") => Err(TestError {
            code: "invalid_signature",
            retryable: false,
            message: "signature mismatch".into(),
        }),
        _ => Err(TestError {
            code: "queue_unavailable",
            retryable: true,
            message: "SendMessage timed out".into(),
        }),
    }
}

#[tokio::test]
async fn the_wrapper_takes_context_from_the_runtime_and_the_correlation_id_from_the_event() {
    let daemon = FakeDaemon::bind();
    let h = Harness::with(|b| b.trace_export(daemon.export()));
    let mut service = lambda::service(h.function(FunctionKind::WebhookValidator), accept);
    let (header, trace_id, parent) = fresh_trace_header(true);
    let status = service
        .call(LambdaEvent::new(apigw_event(), context(&header)))
        .await
        .expect("handler succeeds");
    assert_eq!(status, 200);

    let line = &h.log_lines()[0];
    assert_eq!(
        line["function_request_id"],
        "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    );
    assert_eq!(line["function_name"], "payhook-dev-webhook-validator");
    assert_eq!(line["function_memory_size"], 1024);
    assert_eq!(
        line["function_arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:payhook-dev-webhook-validator"
    );
    assert_eq!(line["xray_trace_id"], trace_id.as_str());
    assert_eq!(
        line["correlation_id"],
        "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    );
    assert_eq!(line["cold_start"], true);

    // The handler subsegment hangs under the segment named by the runtime's trace header.
    let datagrams = daemon.datagrams();
    assert_eq!(datagrams.len(), 1);
    let doc: serde_json::Value = serde_json::from_slice(
        datagrams[0]
            .splitn(2, |b| *b == b'\n')
            .nth(1)
            .expect("document after the header"),
    )
    .expect("JSON");
    assert_eq!(doc["trace_id"], trace_id.as_str());
    assert_eq!(doc["parent_id"], parent.as_str());

    // ColdStart (with the runtime's function name) and the handler's metric were flushed.
    let docs = h.metric_docs();
    assert!(
        docs.iter()
            .any(|d| d["ColdStart"] == 1 && d["function_name"] == "payhook-dev-webhook-validator")
    );
    assert!(docs.iter().any(|d| d["WebhooksReceived"] == 1));
}

#[tokio::test]
async fn errors_become_retryable_or_non_retryable_diagnostics() {
    let h = Harness::new();
    let mut service = lambda::service(h.function(FunctionKind::WebhookValidator), accept);
    let (header, _, _) = fresh_trace_header(true);

    let mut bad = apigw_event();
    bad.path = Some("/webhooks/bad".into());
    let diag = service
        .call(LambdaEvent::new(bad, context(&header)))
        .await
        .expect_err("bad input");
    assert_eq!(diag.error_type, NON_RETRYABLE);
    assert_eq!(diag.error_message, "invalid_signature: signature mismatch");

    let mut down = apigw_event();
    down.path = Some("/webhooks/other".into());
    let diag = service
        .call(LambdaEvent::new(down, context(&header)))
        .await
        .expect_err("dependency down");
    assert_eq!(diag.error_type, RETRYABLE);
    assert_eq!(
        diag.error_message,
        "queue_unavailable: SendMessage timed out"
    );

    let errors: Vec<_> = h
        .log_lines()
        .into_iter()
        .filter(|l| l["level"] == "ERROR")
        .map(|l| l["error_code"].clone())
        .collect();
    assert_eq!(
        errors,
        vec![json!("invalid_signature"), json!("queue_unavailable")]
    );
}
