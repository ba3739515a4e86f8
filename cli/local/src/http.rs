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
use aws_lambda_events::query_map::QueryMap;
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
            .route(RESOURCE_PATH, post(webhook))
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

/// The resource the webhook route is declared as, in API Gateway and here.
const RESOURCE_PATH: &str = "/webhooks/{provider}";

/// The proxy event API Gateway builds for this request.
pub fn proxy_event(
    provider: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    source_ip: &str,
) -> ApiGatewayProxyRequest {
    // Built field by field (not through a JSON document): this runs for every webhook the
    // local stack takes in.
    let mut event = ApiGatewayProxyRequest::default();
    event.resource = Some(RESOURCE_PATH.to_owned());
    event.path = Some(uri.path().to_owned());
    event.http_method = method.clone();
    // `headers` keeps the last value of a repeated name, `multiValueHeaders` every value.
    for (name, value) in headers {
        event.headers.insert(name, value.clone());
    }
    event.multi_value_headers = headers.clone();
    let mut multi_query: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        multi_query
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    // `queryStringParameters` keeps the last value of a repeated name, as API Gateway does.
    let single: HashMap<String, String> = multi_query
        .iter()
        .filter_map(|(name, values)| Some((name.clone(), values.last()?.clone())))
        .collect();
    event.query_string_parameters = QueryMap::from(single);
    event.multi_value_query_string_parameters = QueryMap::from(multi_query);
    event
        .path_parameters
        .insert("provider".to_owned(), provider.to_owned());
    // Text bodies pass through; anything that is not UTF-8 arrives base64-encoded.
    (event.body, event.is_base64_encoded) = match std::str::from_utf8(body) {
        Ok(text) => (Some(text.to_owned()), false),
        Err(_) => (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let now_ms = payhook_core::ports::Clock::now_ms(&payhook_core::ports::SystemClock);
    let context = &mut event.request_context;
    context.account_id = Some(payhook_memory::eventbridge::LOCAL_ACCOUNT.to_owned());
    context.resource_id = Some("local".to_owned());
    context.stage = Some(payhook_aws::provision::DEFAULT_LOCAL_STAGE.to_owned());
    context.request_id = Some(request_id);
    context.request_time = Some(payhook_core::status::rfc3339_ms(now_ms));
    context.request_time_epoch = now_ms;
    context.path = Some(uri.path().to_owned());
    context.protocol = Some("HTTP/1.1".to_owned());
    context.identity.source_ip = Some(source_ip.to_owned());
    context.identity.user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    context.resource_path = Some(RESOURCE_PATH.to_owned());
    context.http_method = method.clone();
    context.apiid = Some("local".to_owned());
    event
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: &[u8]) -> ApiGatewayProxyRequest {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.1".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.2".parse().unwrap());
        headers.insert("user-agent", "Stripe/1.0".parse().unwrap());
        let uri: Uri = "/webhooks/stripe?key=k1&tag=a&tag=b%20c".parse().unwrap();
        proxy_event("stripe", &Method::POST, &uri, &headers, body, "127.0.0.1")
    }

    #[test]
    fn the_proxy_event_carries_what_api_gateway_sends() {
        let e = event(br#"{"id":"evt_1"}"#);
        assert_eq!(e.resource.as_deref(), Some("/webhooks/{provider}"));
        assert_eq!(e.path.as_deref(), Some("/webhooks/stripe"));
        assert_eq!(e.http_method, Method::POST);
        assert_eq!(
            e.path_parameters.get("provider").map(String::as_str),
            Some("stripe")
        );
        // One value per header name (the last), every value in the multi-value map.
        assert_eq!(e.headers.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(e.headers["x-forwarded-for"], "10.0.0.2");
        let forwarded: Vec<_> = e
            .multi_value_headers
            .get_all("x-forwarded-for")
            .iter()
            .collect();
        assert_eq!(forwarded, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(e.query_string_parameters.first("key"), Some("k1"));
        assert_eq!(e.query_string_parameters.all("tag"), Some(vec!["b c"]));
        assert_eq!(
            e.multi_value_query_string_parameters.all("tag"),
            Some(vec!["a", "b c"])
        );
        assert_eq!(e.body.as_deref(), Some(r#"{"id":"evt_1"}"#));
        assert!(!e.is_base64_encoded);
        let context = &e.request_context;
        assert_eq!(
            context.resource_path.as_deref(),
            Some("/webhooks/{provider}")
        );
        assert_eq!(context.identity.source_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(context.identity.user_agent.as_deref(), Some("Stripe/1.0"));
        assert!(
            context
                .request_id
                .as_deref()
                .is_some_and(|id| id.len() == 36)
        );
        assert!(context.request_time_epoch > 0);
    }

    #[test]
    fn a_body_that_is_not_utf8_arrives_base64_encoded() {
        let e = event(&[0xff, 0x00, 0x7b]);
        assert!(e.is_base64_encoded);
        assert_eq!(e.body.as_deref(), Some("/wB7"));
    }

    #[test]
    fn a_header_value_that_is_not_utf8_reaches_the_validator_as_lossy_text() {
        // A forged delivery may carry bytes that are not UTF-8 in a header (HTTP allows
        // obs-text); the event keeps them and the validator reads them lossily, as it read
        // the JSON-built event's.
        let mut headers = HeaderMap::new();
        headers.insert(
            "stripe-signature",
            axum::http::HeaderValue::from_bytes(b"t=1,v1=ab\xffcd").unwrap(),
        );
        let uri: Uri = "/webhooks/stripe".parse().unwrap();
        let e = proxy_event("stripe", &Method::POST, &uri, &headers, b"{}", "127.0.0.1");
        assert_eq!(e.headers["stripe-signature"].as_bytes(), b"t=1,v1=ab\xffcd");
        let read = payhook_webhook_validator::headers_of(&e);
        assert_eq!(read.get("stripe-signature"), Some("t=1,v1=ab\u{fffd}cd"));
    }

    #[test]
    fn the_proxy_event_survives_the_runtimes_json_unchanged() {
        // The deployed validator receives the event as JSON; what it decodes is what the
        // local stack hands it directly.
        let e = event(br#"{"id":"evt_1"}"#);
        let json = serde_json::to_string(&e).unwrap();
        let decoded: ApiGatewayProxyRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(decoded.headers, e.headers);
        assert_eq!(decoded.multi_value_headers, e.multi_value_headers);
        assert_eq!(decoded.path_parameters, e.path_parameters);
        assert_eq!(decoded.body, e.body);
        assert_eq!(decoded.request_context, e.request_context);
    }
}
