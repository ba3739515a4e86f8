//! The local front door: an API Gateway REST stand-in for `POST /webhooks/{provider}` that
//! hands the validator the exact proxy event API Gateway would, and the admin API
//! (`/_payhook/…`): read-only views of a webhook, the stats, the DLQs and the quarantine, plus
//! the on-call actions: a DLQ redrive, a quarantine replay and a sweep.
//!
//! The API key is found as the deployed authorizer finds it (`?key=` in the URL, else
//! `x-api-key`; [`payhook_api_key_authorizer::api_key`] decides for both) and checked as the
//! usage plan checks it: each configured key (one per provider, or one shared) has its own
//! daily quota. The refusals are API Gateway's, status and body: `401 Unauthorized` without a
//! key, `403 Forbidden` with a key the plan does not know, `429 Limit Exceeded` past the quota.

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

use crate::LocalError;
use crate::admin::{
    DEFAULT_QUARANTINE_MAX, LocalDlqList, LocalQuarantineItem, LocalQuarantineList,
    QuarantineSummary, ReplayReport,
};
use crate::stack::Stack;

/// One key of the usage plan with its daily counter (reset at UTC midnight, as usage plans do).
#[derive(Debug)]
struct PlanKey {
    value: payhook_core::Secret,
    limit: u64,
    counter: Mutex<(i64, u64)>,
}

impl PlanKey {
    /// Counts one request against the quota; `false` once it is used up for the day.
    fn take(&self, today: i64) -> bool {
        let Ok(mut counter) = self.counter.lock() else {
            return false;
        };
        let (day, used) = &mut *counter;
        if *day != today {
            *day = today;
            *used = 0;
        }
        if *used >= self.limit {
            return false;
        }
        *used += 1;
        true
    }
}

/// The usage plan's keys: the shared `api.key` and each provider's own (`api.<provider>_key`),
/// once each, so every key has its own quota and providers without a key share `api.key`'s.
fn plan_keys(config: &crate::config::Config) -> Vec<PlanKey> {
    let mut keys: Vec<PlanKey> = Vec::new();
    let shared = std::iter::once(&config.api.key);
    let own = payhook_core::Provider::ALL.map(|p| config.api_key(p));
    for value in shared.chain(own) {
        if !keys.iter().any(|k| k.value == *value) {
            keys.push(PlanKey {
                value: value.clone(),
                limit: config.api.daily_quota,
                counter: Mutex::new((utc_day(), 0)),
            });
        }
    }
    keys
}

#[derive(Clone)]
struct AppState {
    stack: Arc<Stack>,
    keys: Arc<Vec<PlanKey>>,
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
    ) -> Result<FrontDoor, LocalError> {
        let addr = listener
            .local_addr()
            .map_err(|e| LocalError::Io(format!("listener: {e}")))?;
        let state = AppState {
            keys: Arc::new(plan_keys(stack.config())),
            stack,
        };
        let app = Router::new()
            .route("/webhooks/{provider}", post(webhook))
            .route("/_payhook/webhooks/{webhook_id}", get(webhook_status))
            .route("/_payhook/stats", get(stats))
            .route("/_payhook/dlq/{provider}", get(dlq_list))
            .route("/_payhook/dlq/{provider}/redrive", post(dlq_redrive))
            .route("/_payhook/quarantine", get(quarantine_list))
            .route("/_payhook/quarantine/{webhook_id}", get(quarantine_show))
            .route(
                "/_payhook/quarantine/{webhook_id}/replay",
                post(quarantine_replay),
            )
            .route("/_payhook/sweep", post(sweep))
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

/// API Gateway's own refusals: status, `x-amzn-ErrorType` and `{"message": …}` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// No route or method here.
    MissingAuthenticationToken,
    /// No API key (the authorizer refused, or its identity source is absent).
    Unauthorized,
    /// A key the usage plan does not hold.
    Forbidden,
    /// The key's daily quota is used up.
    LimitExceeded,
    /// The stand-in itself failed.
    Internal,
}

impl GatewayError {
    /// Status, error type and message, as API Gateway sends them.
    pub fn parts(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            GatewayError::MissingAuthenticationToken => (
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            GatewayError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UnauthorizedException",
                "Unauthorized",
            ),
            GatewayError::Forbidden => (StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden"),
            GatewayError::LimitExceeded => (
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                "Limit Exceeded",
            ),
            GatewayError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                "Internal server error",
            ),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, error_type, message) = self.parts();
        (
            status,
            [
                ("content-type", "application/json"),
                ("x-amzn-errortype", error_type),
            ],
            json!({ "message": message }).to_string(),
        )
            .into_response()
    }
}

async fn missing_route() -> Response {
    GatewayError::MissingAuthenticationToken.into_response()
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
    let query = query_parameters(uri);
    let mut multi_query: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        multi_query
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = json!({
        "resource": "/webhooks/{provider}",
        "path": uri.path(),
        "httpMethod": method.as_str(),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": if query.is_empty() { json!(null) } else { json!(query) },
        "multiValueQueryStringParameters": if multi_query.is_empty() { json!(null) } else { json!(multi_query) },
        "pathParameters": {"provider": provider},
        "stageVariables": null,
        "requestContext": {
            "accountId": payhook_memory::eventbridge::LOCAL_ACCOUNT,
            "resourceId": "local",
            "stage": payhook_aws::provision::DEFAULT_LOCAL_STAGE,
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
    if let Err(refused) = admit(&state.keys, &uri, &headers) {
        return refused.into_response();
    }
    let event = proxy_event(&provider, &method, &uri, &headers, &body, "127.0.0.1");
    into_response(state.stack.handle_webhook(&event).await)
}

/// What API Gateway decides before the validator runs: the authorizer's key, then the usage
/// plan's key check and quota.
fn admit(keys: &[PlanKey], uri: &Uri, headers: &HeaderMap) -> Result<(), GatewayError> {
    let query = query_parameters(uri);
    let from_query = query.get(payhook_api_key_authorizer::QUERY_PARAMETER);
    let from_header = headers
        .get(payhook_api_key_authorizer::HEADER)
        .and_then(|v| v.to_str().ok());
    let (key, _) = payhook_api_key_authorizer::api_key(from_query.map(String::as_str), from_header)
        .map_err(|_| GatewayError::Unauthorized)?;
    // Every key is compared, each in constant time.
    let plan_key = keys
        .iter()
        .fold(None, |found, k| {
            if constant_time_eq(k.value.expose().as_bytes(), key.as_bytes()) {
                Some(k)
            } else {
                found
            }
        })
        .ok_or(GatewayError::Forbidden)?;
    if plan_key.take(utc_day()) {
        Ok(())
    } else {
        Err(GatewayError::LimitExceeded)
    }
}

/// Constant-time equality for API keys of the same length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The query string as API Gateway's `queryStringParameters`: decoded, the last value of a
/// repeated name.
fn query_parameters(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
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

fn internal_error(e: &LocalError) -> Response {
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

fn failure(code: &str, e: &LocalError) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"error": code, "message": e.to_string()})),
    )
        .into_response()
}

/// `GET /_payhook/quarantine?max=N`: the quarantined webhooks, oldest change first.
async fn quarantine_list(State(state): State<AppState>, uri: Uri) -> Response {
    let max = query_parameters(&uri)
        .get("max")
        .and_then(|m| m.parse().ok())
        .unwrap_or(DEFAULT_QUARANTINE_MAX);
    match state.stack.quarantined(max).await {
        Ok(items) => {
            let items = items.iter().map(QuarantineSummary::of).collect();
            (StatusCode::OK, axum::Json(LocalQuarantineList { items })).into_response()
        }
        Err(e) => failure("quarantine_unavailable", &e),
    }
}

/// `GET /_payhook/quarantine/{webhook_id}`: the item, and its body when the blob store keeps it.
async fn quarantine_show(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
) -> Response {
    let Some(item) = state.stack.status(&webhook_id).await else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"error": "not_found", "message": format!("no webhook {webhook_id}")}),
            ),
        )
            .into_response();
    };
    match state.stack.quarantined_blob(&item).await {
        Ok(blob) => {
            let body_base64 = blob.map(|b| base64::engine::general_purpose::STANDARD.encode(b));
            (
                StatusCode::OK,
                axum::Json(LocalQuarantineItem { item, body_base64 }),
            )
                .into_response()
        }
        Err(e) => failure("quarantine_unavailable", &e),
    }
}

/// `POST /_payhook/quarantine/{webhook_id}/replay`: normalise again and queue, once.
async fn quarantine_replay(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
) -> Response {
    match state.stack.replay_quarantined(&webhook_id).await {
        Ok(outcome) => {
            let report = ReplayReport::of(&webhook_id, &outcome);
            tracing::info!(webhook_id, outcome = %report.outcome, "quarantined webhook replayed");
            (StatusCode::OK, axum::Json(report)).into_response()
        }
        Err(e) => failure("replay_failed", &e),
    }
}

/// `POST /_payhook/sweep?older_than=SECS`: one sweep; the sweeper function's summary.
async fn sweep(State(state): State<AppState>, uri: Uri) -> Response {
    let older_than = query_parameters(&uri)
        .get("older_than")
        .and_then(|s| s.parse().ok());
    match state.stack.sweep(older_than).await {
        Ok(report) => (
            StatusCode::OK,
            axum::Json(payhook_sweeper::summary(&report)),
        )
            .into_response(),
        Err(e) => failure("sweep_failed", &e),
    }
}
