//! The webhook-validator Lambda's adapter between API Gateway REST proxy events and the
//! [`payhook_core::validator::Validator`] handler.
//!
//! The same function serves the Lambda (`main.rs`) and the local stack's API Gateway
//! stand-in, which passes it the exact proxy event it would receive in AWS.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use payhook_core::Headers;
use payhook_core::validator::{Accepted, Validator, ValidatorError, WebhookRequest};
use payhook_telemetry::{Annotation, Dimension, Invocation, Metric};
use serde_json::json;
use tracing::Instrument as _;

/// Why a proxy event was not acknowledged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProxyError {
    /// The body was flagged base64 but did not decode.
    #[error("the body is flagged base64 but is not valid base64")]
    InvalidBase64,
    /// The validator rejected it.
    #[error(transparent)]
    Validator(#[from] ValidatorError),
}

impl ProxyError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::InvalidBase64 => "invalid_base64",
            ProxyError::Validator(e) => e.code(),
        }
    }

    /// HTTP status.
    pub fn http_status(&self) -> u16 {
        match self {
            ProxyError::InvalidBase64 => 400,
            ProxyError::Validator(e) => e.http_status(),
        }
    }

    /// HTTP status and the JSON error body `{"error": code, "message": …}`.
    pub fn response(&self) -> (u16, serde_json::Value) {
        (
            self.http_status(),
            json!({"error": self.code(), "message": self.to_string()}),
        )
    }
}

/// What one proxy event turned into.
#[derive(Debug)]
pub struct ProxyOutcome {
    /// The `{provider}` path segment as sent (may name no provider).
    pub provider: String,
    /// The handler's result.
    pub result: Result<Accepted, ProxyError>,
    /// The HTTP response for API Gateway.
    pub response: ApiGatewayProxyResponse,
}

/// Header names, case-insensitive, from a proxy event (values that are not UTF-8 are kept
/// lossily: no provider signs such headers, so they can only fail verification).
pub fn headers_of(event: &ApiGatewayProxyRequest) -> Headers {
    let mut headers = Headers::new();
    for (name, value) in event.headers.iter() {
        headers.insert(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    headers
}

/// The raw body bytes, decoding base64 when API Gateway flagged it.
pub fn body_of(event: &ApiGatewayProxyRequest) -> Result<Vec<u8>, ProxyError> {
    let body = event.body.as_deref().unwrap_or("");
    if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| ProxyError::InvalidBase64)
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// Runs the validator on one API Gateway proxy event.
pub async fn handle_proxy_event(
    validator: &Validator,
    event: &ApiGatewayProxyRequest,
    trace_header: Option<&str>,
) -> ProxyOutcome {
    let provider = event
        .path_parameters
        .get("provider")
        .cloned()
        .unwrap_or_default();
    let result = match body_of(event) {
        Ok(body) => {
            let headers = headers_of(event);
            validator
                .handle(WebhookRequest {
                    provider: &provider,
                    headers: &headers,
                    body: &body,
                    trace_header,
                })
                .await
                .map_err(ProxyError::from)
        }
        Err(err) => Err(err),
    };
    let (status, body) = match &result {
        Ok(accepted) => accepted.response(),
        Err(err) => err.response(),
    };
    ProxyOutcome {
        provider,
        result,
        response: json_response(status, &body),
    }
}

/// An API Gateway proxy response with a JSON body.
pub fn json_response(status: u16, body: &serde_json::Value) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.body = Some(Body::Text(body.to_string()));
    response
}

/// Runs one API Gateway proxy event through the validator inside a telemetry invocation: the
/// correlation id is API Gateway's `requestContext.requestId`; the outcome is logged (never the
/// body, the signature or a secret) and counted (`WebhooksReceived`, `WebhooksAccepted`,
/// `WebhooksDuplicate`, `WebhooksIgnored`, `WebhooksRejected` by reason, `SignatureFailures`,
/// `ValidationLatency`). A 4xx/5xx answer is still a successful invocation: API Gateway gets
/// the response, not a Lambda error.
pub async fn invoke(
    validator: &Validator,
    invocation: Invocation,
    event: &ApiGatewayProxyRequest,
) -> ApiGatewayProxyResponse {
    let inv = invocation.handle();
    if let Some(request_id) = event.request_context.request_id.as_deref() {
        inv.set_correlation_id(request_id);
    }
    let started = std::time::Instant::now();
    let outcome = async {
        // Carried onto the queue as `AWSTraceHeader`, so SQS and the processor continue the trace.
        let trace_header = payhook_telemetry::trace_header_for_current_span();
        handle_proxy_event(validator, event, trace_header.as_deref()).await
    }
    .instrument(invocation.span().clone())
    .await;
    // Inside the invocation's span, so the lines carry the function's context.
    invocation
        .span()
        .in_scope(|| record_outcome(&inv, &outcome, started.elapsed()));
    invocation.finish_ok();
    outcome.response
}

fn record_outcome(
    inv: &payhook_telemetry::InvocationHandle,
    outcome: &ProxyOutcome,
    elapsed: std::time::Duration,
) {
    // Metrics are dimensioned by provider; a path naming no provider is counted as `unknown`
    // so an attacker cannot create dimension values.
    let provider = match outcome.provider.parse::<payhook_core::Provider>() {
        Ok(p) => p.as_str(),
        Err(_) => "unknown",
    };
    inv.annotate(Annotation::Provider, provider);
    inv.count(Metric::WebhooksReceived, &[(Dimension::Provider, provider)]);
    inv.metric(
        Metric::ValidationLatency,
        elapsed.as_secs_f64() * 1000.0,
        &[(Dimension::Provider, provider)],
    );
    let status = outcome.response.status_code;
    match &outcome.result {
        Ok(accepted) => {
            let webhook_id = accepted.webhook_id();
            inv.annotate(Annotation::WebhookId, webhook_id);
            inv.append_key("webhook_id", webhook_id);
            let (metric, what, event_type) = match accepted {
                Accepted::Queued { event, .. } => (
                    Metric::WebhooksAccepted,
                    "queued",
                    event.event_type.as_str(),
                ),
                Accepted::Duplicate { .. } => (Metric::WebhooksDuplicate, "duplicate", ""),
                Accepted::Ignored {
                    provider_event_type,
                    ..
                } => (
                    Metric::WebhooksIgnored,
                    "ignored",
                    provider_event_type.as_str(),
                ),
            };
            if !event_type.is_empty() {
                inv.annotate(Annotation::EventType, event_type);
            }
            inv.count(metric, &[(Dimension::Provider, provider)]);
            tracing::info!(
                provider,
                webhook_id,
                status,
                outcome = what,
                "webhook {what}"
            );
        }
        Err(err) => {
            let code = err.code();
            inv.count(
                Metric::WebhooksRejected,
                &[(Dimension::Provider, provider), (Dimension::Reason, code)],
            );
            if matches!(err, ProxyError::Validator(e) if e.is_signature_failure()) {
                inv.count(
                    Metric::SignatureFailures,
                    &[(Dimension::Provider, provider)],
                );
            }
            if status >= 500 {
                tracing::error!(provider, status, error_code = code, error = %err, "webhook not accepted; the provider will retry");
            } else {
                tracing::warn!(provider, status, error_code = code, error = %err, "webhook rejected");
            }
        }
    }
}
