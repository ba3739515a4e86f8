//! The local front door: an API Gateway REST stand-in (`POST /webhooks/{provider}` with
//! `x-api-key` and the usage plan's daily quota) that hands the validator the exact proxy
//! event API Gateway would, and the admin API (`/_payhook/…`): read-only views of a webhook,
//! the stats and the DLQs, plus the one on-call action, a DLQ redrive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body as ProxyBody;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::json;

use super::stack::Stack;
use crate::CliError;
use crate::oncall::LocalDlqList;

/// The daily quota and its counter (resets at UTC midnight, as usage plans do).
#[derive(Debug)]
struct Quota {
    limit: u64,
    day: i64,
    used: u64,
}

#[derive(Clone)]
struct AppState {
    stack: Arc<Stack>,
    api_key: String,
    quota: Arc<Mutex<Quota>>,
}

/// A running HTTP front door.
#[derive(Debug)]
pub struct FrontDoor {
    /// The bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FrontDoor {
    /// Serves `stack` on `listener` until dropped or the stack shuts down.
    pub fn serve(
        stack: Arc<Stack>,
        listener: tokio::net::TcpListener,
    ) -> Result<FrontDoor, CliError> {
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Failed(format!("listener: {e}")))?;
        let state = AppState {
            api_key: stack.config().api.key.expose().to_owned(),
            quota: Arc::new(Mutex::new(Quota {
                limit: stack.config().api.daily_quota,
                day: utc_day(),
                used: 0,
            })),
            stack,
        };
        let app = Router::new()
            .route("/webhooks/{provider}", post(webhook))
            .route("/_payhook/webhooks/{webhook_id}", get(webhook_status))
            .route("/_payhook/stats", get(stats))
            .route("/_payhook/dlq/{provider}", get(dlq_list))
            .route("/_payhook/dlq/{provider}/redrive", post(dlq_redrive))
            .fallback(missing_route)
            .with_state(state);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        });
        Ok(FrontDoor { addr, task })
    }
}

impl Drop for FrontDoor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn utc_day() -> i64 {
    payhook_core::ports::Clock::now_ms(&payhook_core::ports::SystemClock).div_euclid(86_400_000)
}

fn gateway_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-amzn-errortype", "ForbiddenException"),
        ],
        json!({"message": message}).to_string(),
    )
        .into_response()
}

async fn missing_route() -> Response {
    // What API Gateway answers for a route or method it does not have.
    gateway_error(StatusCode::FORBIDDEN, "Missing Authentication Token")
}

/// The proxy event API Gateway builds for this request.
pub fn proxy_event(
    provider: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    source_ip: &str,
) -> ApiGatewayProxyRequest {
    let mut single = serde_json::Map::new();
    let mut multi: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        single.insert(name.as_str().to_owned(), json!(value));
        multi
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value);
    }
    // Text bodies pass through; anything that is not UTF-8 arrives base64-encoded.
    let (body, is_base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = json!({
        "resource": "/webhooks/{provider}",
        "path": uri.path(),
        "httpMethod": method.as_str(),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"provider": provider},
        "stageVariables": null,
        "requestContext": {
            "accountId": super::bus::LOCAL_ACCOUNT,
            "resourceId": "local",
            "stage": "local",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": payhook_core::status::rfc3339_ms(payhook_core::ports::Clock::now_ms(&payhook_core::ports::SystemClock)),
            "path": uri.path(),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok())},
            "resourcePath": "/webhooks/{provider}",
            "httpMethod": method.as_str(),
            "apiId": "local"
        },
        "body": body,
        "isBase64Encoded": is_base64
    });
    serde_json::from_value(event).unwrap_or_default()
}

fn into_response(proxy: ApiGatewayProxyResponse) -> Response {
    let status = u16::try_from(proxy.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let body = match proxy.body {
        Some(ProxyBody::Text(t)) => Body::from(t),
        Some(ProxyBody::Binary(b)) => Body::from(b),
        _ => Body::empty(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in proxy.headers.iter() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

async fn webhook(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key_ok = headers
        .get("x-api-key")
        .map(|k| ring_eq(k.as_bytes(), state.api_key.as_bytes()))
        .unwrap_or(false);
    if !key_ok {
        return gateway_error(StatusCode::FORBIDDEN, "Forbidden");
    }
    {
        let Ok(mut quota) = state.quota.lock() else {
            return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        };
        let today = utc_day();
        if quota.day != today {
            quota.day = today;
            quota.used = 0;
        }
        if quota.used >= quota.limit {
            return gateway_error(StatusCode::TOO_MANY_REQUESTS, "Limit Exceeded");
        }
        quota.used += 1;
    }
    let event = proxy_event(&provider, &method, &uri, &headers, &body, "127.0.0.1");
    into_response(state.stack.handle_webhook(&event).await)
}

/// Constant-time equality for the API key.
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn webhook_status(State(state): State<AppState>, Path(webhook_id): Path<String>) -> Response {
    match state.stack.status(&webhook_id).await {
        Some(item) => (StatusCode::OK, axum::Json(item)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"error": "not_found", "message": format!("no webhook {webhook_id}")}),
            ),
        )
            .into_response(),
    }
}

async fn stats(State(state): State<AppState>) -> Response {
    (StatusCode::OK, axum::Json(state.stack.stats().await)).into_response()
}

fn provider_or_404(provider: &str) -> Result<payhook_core::Provider, Box<Response>> {
    provider
        .parse()
        .map_err(|e: payhook_core::provider::UnknownProvider| {
            Box::new(
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": "unknown_provider", "message": e.to_string()})),
                )
                    .into_response(),
            )
        })
}

/// `GET /_payhook/dlq/{provider}`: the dead letters, without consuming them.
async fn dlq_list(State(state): State<AppState>, Path(provider): Path<String>) -> Response {
    let provider = match provider_or_404(&provider) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match state.stack.dlq_messages(provider).await {
        Ok(messages) => {
            let answer = LocalDlqList {
                provider: Some(provider),
                messages,
            };
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
        Err(e) => internal_error(&e),
    }
}

fn internal_error(e: &CliError) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"error": "dlq_unavailable", "message": e.to_string()})),
    )
        .into_response()
}

/// `POST /_payhook/dlq/{provider}/redrive`: moves the dead letters back to the queue, in order,
/// each exactly once.
async fn dlq_redrive(State(state): State<AppState>, Path(provider): Path<String>) -> Response {
    let provider = match provider_or_404(&provider) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match state.stack.redrive(provider).await {
        Ok(answer) => {
            tracing::info!(
                provider = provider.as_str(),
                moved = answer.moved,
                "DLQ redriven"
            );
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
        Err(e) => internal_error(&e),
    }
}
