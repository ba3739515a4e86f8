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
use serde_json::json;

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
