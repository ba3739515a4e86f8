//! The Lambda side of the binaries' harness: a Runtime API stand-in per function (`/next`
//! hands out invocations, `/response` and `/error` answer them, and the time of the first
//! `/next` marks the end of init), the binaries started under it with the environment the
//! Pulumi program renders, an X-Ray daemon stand-in on UDP, an EventBridge tap in front of moto,
//! and the events API Gateway and the SQS event source mapping send. Used by the
//! `lambda_binaries` test and the cold-start bench (`tests/benches/cold_start.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use payhook_core::Provider;
use payhook_testkit::conformance::workspace_root;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::support::MotoStage;

/// One pending invocation: its request id, its event and the trace header Lambda would pass.
pub(crate) struct Pending {
    request_id: String,
    event: String,
    trace_header: Option<String>,
}

/// The Runtime API of one function: `/next` hands out pending invocations, `/response` and
/// `/error` answer them.
pub(crate) struct RuntimeState {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    /// When the function first asked for work: the end of its init.
    first_next: Mutex<Option<Instant>>,
    answers: Mutex<HashMap<String, oneshot::Sender<(bool, String)>>>,
    init_errors: Mutex<Vec<String>>,
}

pub(crate) struct RuntimeApi {
    pub(crate) addr: std::net::SocketAddr,
    state: Arc<RuntimeState>,
    send: mpsc::UnboundedSender<Pending>,
    function_arn: String,
}

async fn next(State(state): State<Arc<RuntimeState>>) -> Response {
    state
        .first_next
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let Some(p) = state.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = payhook_devkit::unix_now() * 1000 + 300_000;
    let mut response = Response::new(Body::from(p.event));
    let headers = response.headers_mut();
    headers.insert(
        "lambda-runtime-aws-request-id",
        p.request_id.parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:harness"
            .parse()
            .unwrap(),
    );
    if let Some(trace) = p.trace_header {
        headers.insert("lambda-runtime-trace-id", trace.parse().unwrap());
    }
    response
}

async fn answer(
    State(state): State<Arc<RuntimeState>>,
    UrlPath((id, kind)): UrlPath<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(tx) = state.answers.lock().unwrap().remove(&id) {
        let _ = tx.send((kind == "response", text));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    state
        .init_errors
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    pub(crate) async fn start(function: &str) -> RuntimeApi {
        let (send, recv) = mpsc::unbounded_channel();
        let state = Arc::new(RuntimeState {
            queue: tokio::sync::Mutex::new(recv),
            first_next: Mutex::new(None),
            answers: Mutex::new(HashMap::new()),
            init_errors: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi {
            addr,
            state,
            send,
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
        }
    }

    /// Invokes the function with `event` and returns (succeeded, response body).
    /// When the function first called `/next` (its init done), once it has.
    pub(crate) fn first_next(&self) -> Option<Instant> {
        *self.state.first_next.lock().unwrap()
    }

    /// Waits up to `limit` for the function's first `/next`.
    pub(crate) async fn wait_first_next(&self, limit: Duration) -> Option<Instant> {
        let until = Instant::now() + limit;
        loop {
            if let Some(at) = self.first_next() {
                return Some(at);
            }
            if Instant::now() > until {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    pub(crate) async fn invoke(
        &self,
        event: &Value,
        trace_header: Option<String>,
    ) -> (bool, Value) {
        let request_id = uuid_like();
        let (tx, rx) = oneshot::channel();
        self.state
            .answers
            .lock()
            .unwrap()
            .insert(request_id.clone(), tx);
        self.send
            .send(Pending {
                request_id,
                event: event.to_string(),
                trace_header,
            })
            .unwrap();
        let (ok, body) = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not answer; init errors: {:?}",
                    self.function_arn,
                    self.state.init_errors.lock().unwrap()
                )
            })
            .unwrap();
        (
            ok,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A started function binary and the JSON log lines it wrote to stdout; killed when dropped.
pub(crate) struct Function {
    pub(crate) runtime: RuntimeApi,
    pub(crate) logs: Arc<Mutex<Vec<Value>>>,
    child: std::process::Child,
    /// When the process was spawned.
    pub(crate) started: Instant,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary of this build's profile: `target/debug/{name}` for the tests (the test command
/// builds every workspace binary), `target/release/{name}` for the cold-start bench — beside the
/// running executable's `deps`.
pub(crate) fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(name);
    assert!(path.is_file(), "{} is not built", path.display());
    path
}

/// `name` beside the running executable, or a path as given.
fn binary_name_to_path(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        binary(name)
    }
}

/// Starts `binary_name` (a workspace binary's name, or a path) as the Lambda `function` against
/// a Runtime API stand-in of its own, with `env` and `common` as its whole environment.
pub(crate) async fn start_function(
    binary_name: &str,
    function: &str,
    env: &BTreeMap<String, String>,
    common: &[(String, String)],
) -> Function {
    let runtime = RuntimeApi::start(function).await;
    let mut command = std::process::Command::new(binary_name_to_path(binary_name));
    command
        .env_clear()
        .envs(env)
        .envs(common.iter().cloned())
        .env("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/03/[$LATEST]harness")
        // As Lambda sets it: `on-demand`, unless the run asks for another
        // (`PAYHOOK_INITIALIZATION_TYPE=provisioned-concurrency`: clients built at init).
        .env(
            "AWS_LAMBDA_INITIALIZATION_TYPE",
            std::env::var("PAYHOOK_INITIALIZATION_TYPE").unwrap_or_else(|_| "on-demand".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let logs: Arc<Mutex<Vec<Value>>> = Arc::default();
    let stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&logs);
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap().push(v);
            }
        }
    });
    Function {
        runtime,
        logs,
        child,
        started,
    }
}

/// The X-Ray daemon stand-in: every segment document received.
pub(crate) async fn xray_daemon() -> (std::net::SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let docs: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = Arc::clone(&docs);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = socket.recv(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]);
            if let Some((_, doc)) = text.split_once('\n')
                && let Ok(v) = serde_json::from_str::<Value>(doc)
            {
                sink.lock().unwrap().push(v);
            }
        }
    });
    (addr, docs)
}

/// The `PutEvents` entries seen: `(TraceHeader, Detail)`.
pub(crate) type Entries = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// An AWS endpoint that forwards every call to moto and keeps each `PutEvents` entry's
/// `TraceHeader` and `Detail`, as EventBridge would carry them to the rule's target.
pub(crate) async fn eventbridge_tap(moto: String) -> (String, Entries) {
    let entries: Entries = Arc::default();
    let seen = Arc::clone(&entries);
    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let forward = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (client, moto, seen) = (client.clone(), moto.clone(), Arc::clone(&seen));
        async move {
            if headers
                .get("x-amz-target")
                .is_some_and(|t| t == "AWSEvents.PutEvents")
                && let Ok(request) = serde_json::from_slice::<Value>(&body)
            {
                for entry in request["Entries"].as_array().into_iter().flatten() {
                    let detail = entry["Detail"]
                        .as_str()
                        .and_then(|d| serde_json::from_str(d).ok())
                        .unwrap_or(Value::Null);
                    let trace = entry["TraceHeader"].as_str().map(str::to_owned);
                    seen.lock().unwrap().push((trace, detail));
                }
            }
            let mut request = Request::builder().method(method).uri(format!(
                "{moto}{}",
                uri.path_and_query().map_or("/", |p| p.as_str())
            ));
            for (name, value) in &headers {
                if name != "host" {
                    request = request.header(name, value);
                }
            }
            let response = client
                .request(request.body(Full::new(body)).unwrap())
                .await
                .unwrap();
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            Response::from_parts(parts, Body::from(bytes))
        }
    };
    let app = Router::new().fallback(forward);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), entries)
}

/// Each function's environment as the Pulumi program renders it for `stage`.
pub(crate) fn rendered_environments(
    stage: &MotoStage,
) -> HashMap<String, BTreeMap<String, String>> {
    let python = workspace_root().join(".venv/bin/python");
    let names = &stage.target.names;
    let out = std::process::Command::new(&python)
        .arg(workspace_root().join("infra/tests/render_env.py"))
        .args(["--stage", &names.stage, "--table", &names.table])
        .args(["--bus", &names.event_bus])
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn api_gateway_event(
    provider: Provider,
    headers: &[(String, String)],
    body: &[u8],
) -> Value {
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "resource": "/webhooks/{provider}",
        "path": format!("/webhooks/{}", provider.as_str()),
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"provider": provider.as_str()},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "abc123", "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "httpMethod": "POST",
            "resourcePath": "/webhooks/{provider}", "path": "/prod/webhooks/stripe",
            "protocol": "HTTP/1.1", "requestTimeEpoch": payhook_devkit::unix_now() * 1000,
            "identity": {"sourceIp": "203.0.113.9"}, "apiId": "a1b2c3"
        },
        "body": String::from_utf8_lossy(body),
        "isBase64Encoded": false
    })
}

pub(crate) fn sqs_event(records: &[payhook_aws::Received], queue_arn: &str) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut attributes = json!({
                "ApproximateReceiveCount": r.record.receive_count.to_string(),
                "SentTimestamp": r.sent_timestamp_ms.unwrap_or_default().to_string(),
                "MessageGroupId": r.record.group_id,
                "SenderId": "AIDAHARNESS",
                "ApproximateFirstReceiveTimestamp": (payhook_devkit::unix_now() * 1000).to_string(),
            });
            if let Some(trace) = &r.record.trace_header {
                attributes["AWSTraceHeader"] = json!(trace);
            }
            json!({
                "messageId": r.record.message_id,
                "receiptHandle": r.receipt_handle,
                "body": r.record.body,
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The stage and stand-ins the three binaries are chained through: a stage bootstrapped on moto
/// from a fresh demo config, each function's rendered environment, the X-Ray daemon and the
/// EventBridge tap, and the environment every function shares.
pub(crate) struct Chain {
    pub(crate) config: payhook_local::config::Config,
    pub(crate) stage: MotoStage,
    pub(crate) envs: HashMap<String, BTreeMap<String, String>>,
    pub(crate) segments: Arc<Mutex<Vec<Value>>>,
    pub(crate) put: Entries,
    pub(crate) sqs: payhook_aws::aws_sdk_sqs::Client,
    /// Credentials, region, moto as the endpoint, the daemon's address.
    pub(crate) common: Vec<(String, String)>,
    /// The same with the tap as the endpoint, so each `PutEvents` entry is kept.
    pub(crate) through_tap: Vec<(String, String)>,
}

impl Chain {
    /// Sets the chain up under run directory `name` on `moto`.
    pub(crate) async fn start(name: &str, moto: &payhook_aws::moto::MotoServer) -> Chain {
        let dir = crate::support::run_dir(name);
        let config = payhook_local::config::init(&dir, 9, true, payhook_devkit::unix_now())
            .expect("demo config");
        let stage = crate::support::bootstrap_on_moto(&dir, &config).await;
        let envs = rendered_environments(&stage);
        let (xray, segments) = xray_daemon().await;
        let (tap, put) = eventbridge_tap(moto.endpoint.clone()).await;
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&stage.sdk);
        let common: Vec<(String, String)> = vec![
            ("AWS_REGION".into(), stage.target.region.clone()),
            ("AWS_DEFAULT_REGION".into(), stage.target.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_ENDPOINT_URL".into(), moto.endpoint.clone()),
            ("AWS_XRAY_DAEMON_ADDRESS".into(), xray.to_string()),
            ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
        ];
        let mut through_tap = common.clone();
        for (key, value) in &mut through_tap {
            if key == "AWS_ENDPOINT_URL" {
                value.clone_from(&tap);
            }
        }
        Chain {
            config,
            stage,
            envs,
            segments,
            put,
            sqs,
            common,
            through_tap,
        }
    }

    /// The URL of `provider`'s queue in the stage.
    pub(crate) async fn queue_url(&self, provider: Provider) -> String {
        self.sqs
            .get_queue_url()
            .queue_name(self.stage.target.names.queue(provider))
            .send()
            .await
            .expect("queue")
            .queue_url()
            .expect("url")
            .to_owned()
    }

    /// The validator's rendered environment with each queue URL resolved to the stage's.
    pub(crate) async fn validator_env(&self) -> BTreeMap<String, String> {
        let mut env = self.envs["webhook-validator"].clone();
        for provider in Provider::ALL {
            let key = format!("QUEUE_URL_{}", provider.as_str().to_uppercase());
            assert!(env.contains_key(&key), "the program sets {key}");
            env.insert(key, self.queue_url(provider).await);
        }
        env
    }
}
