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
use payhook_core::validator::{
    Accepted, IgnoredReason, Validator, ValidatorError, WebhookRequest, error_body,
};
use payhook_telemetry::{Annotation, Dimension, Invocation, Metric};
use tracing::Instrument as _;

/// The validator Lambda's settings, read once at cold start from its environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `PAYHOOK_STAGE` | `prod` | SSM parameters under `/payhook/{stage}/…` |
/// | `STATUS_TABLE` | `webhook-processing` | the status table |
/// | `QUEUE_URL_STRIPE`, `QUEUE_URL_PAYPAL`, `QUEUE_URL_SQUARE` | required | the provider FIFO queues |
/// | `SECRETS_TTL_SECONDS` | 300 | how long secrets are cached |
/// | `STRIPE_TOLERANCE_SECONDS` | 300 | age tolerance of Stripe's `t` (0 needs the next switch) |
/// | `STRIPE_ALLOW_NO_TOLERANCE` | `false` | lets the tolerance be 0 |
/// | `STRIPE_REQUIRE_LIVEMODE` | `false` | answer Stripe test-mode events 200 `ignored` |
/// | `PAYPAL_TOLERANCE_SECONDS` | 300 | distance allowed between the transmission time and now |
/// | `PAYPAL_ENVIRONMENT` | `live` | `live` or `sandbox`: the certificate hosts accepted |
/// | `IDEMPOTENCY_RETENTION_SECONDS` | 2592000 (30 days) | status item lifetime; events older than it less one day are refused |
/// | `MAX_BODY_BYTES` | 1048576 | largest body accepted |
/// | `CURRENCY_RATES` | the built-in `rules/currencies/rates.json` | the rates file's JSON (the Pulumi program sets it from `rules/currencies/rates.json`) |
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The stage (SSM path segment).
    pub stage: String,
    /// The status table.
    pub status_table: String,
    /// Each provider's queue URL.
    pub queue_urls: Vec<(payhook_core::Provider, String)>,
    /// Secrets cache lifetime, seconds.
    pub secrets_ttl_secs: u64,
    /// The S3 bucket keeping quarantined bodies too large for a status item
    /// (`QUARANTINE_BUCKET`); without it such a body is answered 503.
    pub quarantine_bucket: Option<String>,
    /// The handler's settings (validated).
    pub validator: payhook_core::validator::ValidatorConfig,
}

pub use payhook_aws::env::{QUEUE_URL_VARIABLES, STATUS_TABLE_ENV};

impl Config {
    /// Reads the settings through `lookup` (`std::env::var` in the binary), trimmed, empty
    /// meaning unset; refuses settings that would weaken a guarantee (a Stripe tolerance of 0
    /// without its switch, a retention shorter than the providers' retries).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, Box<dyn std::error::Error + Send + Sync>> {
        use payhook_core::validator::ValidatorConfig;
        let env = payhook_aws::env::Env::new(lookup);
        let defaults = ValidatorConfig::default();
        let validator = ValidatorConfig {
            stripe_tolerance_secs: env
                .parse_or("STRIPE_TOLERANCE_SECONDS", defaults.stripe_tolerance_secs)?,
            stripe_allow_no_tolerance: env.parse_or("STRIPE_ALLOW_NO_TOLERANCE", false)?,
            stripe_require_livemode: env.parse_or("STRIPE_REQUIRE_LIVEMODE", false)?,
            paypal_tolerance_secs: env
                .parse_or("PAYPAL_TOLERANCE_SECONDS", defaults.paypal_tolerance_secs)?,
            paypal_environment: env.parse_or("PAYPAL_ENVIRONMENT", defaults.paypal_environment)?,
            idempotency_retention_secs: env.parse_or(
                "IDEMPOTENCY_RETENTION_SECONDS",
                defaults.idempotency_retention_secs,
            )?,
            max_body_bytes: env.parse_or("MAX_BODY_BYTES", defaults.max_body_bytes)?,
            rates: match env.get("CURRENCY_RATES") {
                Some(json) => std::sync::Arc::new(
                    payhook_core::currency::Rates::from_json(&json)
                        .map_err(|e| format!("CURRENCY_RATES: {e}"))?,
                ),
                None => defaults.rates,
            },
        };
        validator.validate()?;
        let queue_urls = env.queue_urls()?;
        Ok(Config {
            stage: env
                .get("PAYHOOK_STAGE")
                .unwrap_or_else(|| payhook_aws::provision::DEFAULT_DEPLOYED_STAGE.to_owned()),
            status_table: env.status_table(),
            queue_urls,
            secrets_ttl_secs: env.parse_or("SECRETS_TTL_SECONDS", 300)?,
            quarantine_bucket: env.get("QUARANTINE_BUCKET"),
            validator,
        })
    }
}

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

    /// HTTP status and the JSON error body: the stable code, its fixed message and the
    /// request id (the details are logged under the same request id, never answered).
    pub fn response(&self, request_id: Option<&str>) -> (u16, serde_json::Value) {
        (self.http_status(), error_body(self.code(), request_id))
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
        Err(err) => err.response(event.request_context.request_id.as_deref()),
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
            // From here on the lines belong to the webhook's story (the processors and the
            // event processor correlate by it); API Gateway's request id stays on them.
            if let Some(request_id) = inv.correlation_id() {
                inv.append_key("api_request_id", &request_id);
            }
            inv.set_correlation_id(webhook_id);
            let (metric, what, event_type, reason) = match accepted {
                Accepted::Queued { event, .. } => (
                    Metric::WebhooksAccepted,
                    "queued",
                    event.event_type.as_str(),
                    None,
                ),
                Accepted::Duplicate { .. } => (Metric::WebhooksDuplicate, "duplicate", "", None),
                Accepted::Quarantined { .. } => {
                    (Metric::WebhooksQuarantined, "quarantined", "", None)
                }
                Accepted::Ignored {
                    provider_event_type,
                    reason,
                    ..
                } => (
                    Metric::WebhooksIgnored,
                    "ignored",
                    provider_event_type.as_str(),
                    Some(*reason),
                ),
            };
            if !event_type.is_empty() {
                inv.annotate(Annotation::EventType, event_type);
            }
            inv.count(metric, &[(Dimension::Provider, provider)]);
            if let Accepted::Queued { event, .. } = accepted
                && event.amount_reporting.is_none()
            {
                inv.count(Metric::UnratedPayments, &[(Dimension::Provider, provider)]);
                tracing::warn!(
                    provider,
                    webhook_id,
                    currency = event.currency.as_str(),
                    "no reporting rate for the currency: the event is unrated"
                );
            }
            if reason == Some(IgnoredReason::TestMode) {
                inv.count(
                    Metric::TestModeWebhooksIgnored,
                    &[(Dimension::Provider, provider)],
                );
            }
            tracing::info!(
                provider,
                webhook_id,
                status,
                outcome = what,
                reason = reason.map(IgnoredReason::as_str),
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

/// The function as deployed: the validator composed from AWS adapters, built once at cold
/// start by `main.rs`.
#[derive(Debug)]
pub struct Lambda {
    validator: Validator,
    function: payhook_telemetry::FunctionTelemetry,
}

impl Lambda {
    /// The validator over SSM secrets, the status table, the providers' queues, PayPal's
    /// certificates fetched over HTTPS (checked against Mozilla's roots) and, when configured,
    /// the quarantine bucket. No I/O: clients connect on first use.
    pub fn compose(
        aws: &payhook_aws::Adapters,
        config: Config,
        function: payhook_telemetry::FunctionTelemetry,
    ) -> Result<Lambda, Box<dyn std::error::Error + Send + Sync>> {
        use payhook_core::signature::{PaypalCertificateCache, TrustAnchors};
        use std::sync::Arc;
        let certificates = PaypalCertificateCache::new(
            Arc::new(payhook_aws::HttpsCertificateFetcher::new()?),
            TrustAnchors::mozilla(),
        );
        let mut validator = Validator::new(
            aws.secrets(
                &config.stage,
                std::time::Duration::from_secs(config.secrets_ttl_secs),
            ),
            aws.status_store(&config.status_table),
            aws.fifo_queues(config.queue_urls),
            Arc::new(certificates),
            Arc::new(payhook_core::ports::SystemClock),
            config.validator,
        );
        if let Some(bucket) = &config.quarantine_bucket {
            validator = validator.with_quarantine_blobs(aws.blob_store(bucket));
        }
        Ok(Lambda {
            validator,
            function,
        })
    }

    /// One API Gateway event, inside its telemetry invocation.
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<ApiGatewayProxyRequest>,
    ) -> ApiGatewayProxyResponse {
        let invocation = self
            .function
            .start_with(payhook_telemetry::lambda::invocation_context(
                &event.context,
            ));
        invoke(&self.validator, invocation, &event.payload).await
    }
}
