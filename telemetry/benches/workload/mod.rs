//! The work the `invocation` bench measures, shared with the test that pins the output bytes
//! (`tests/it/output_bytes.rs`), so the bytes pinned are the bytes the bench produces.

use payhook_telemetry::{Annotation, Dimension, FunctionTelemetry, Metric, aws_call_span};

/// One invocation's telemetry, as the validator's success path produces it.
pub(crate) fn one_invocation(function: &FunctionTelemetry, header: &str) {
    let invocation = function.start("8476a536-e9f4-11e8-9739-2dfe598c3fcd", Some(header));
    let inv = invocation.handle();
    inv.set_correlation_id("c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
    {
        let _handler = invocation.span().enter();
        inv.annotate(Annotation::Provider, "stripe");
        tracing::info!(provider = "stripe", "webhook received");
        {
            let _call = aws_call_span("DynamoDB", "PutItem").entered();
            tracing::info!(
                webhook_id = "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy",
                "recorded"
            );
        }
        {
            let _call = aws_call_span("SQS", "SendMessage").entered();
            tracing::info!(queue = "stripe.fifo", "queued");
        }
        let p = [(Dimension::Provider, "stripe")];
        inv.count(Metric::WebhooksReceived, &p);
        inv.count(Metric::WebhooksAccepted, &p);
        inv.metric(Metric::ValidationLatency, 12.5, &p);
        inv.count(Metric::WebhooksDuplicate, &p);
        inv.count(
            Metric::WebhooksRejected,
            &[(Dimension::Provider, "stripe"), (Dimension::Reason, "none")],
        );
    }
    invocation.finish_ok();
}
