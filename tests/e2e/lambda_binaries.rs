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

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use payhook_aws::SqsConsumer;
use payhook_aws::aws_sdk_sqs::Client as SqsClient;
use payhook_aws::moto::MotoServer;
use payhook_core::Provider;
use payhook_core::status::{Status, StatusStore};
use payhook_devkit::payloads::{PayloadSpec, build};
use payhook_local::config;
use payhook_testkit::conformance::workspace_root;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::support::{MotoStage, bootstrap_on_moto, run_dir};

/// One pending invocation: its request id, its event and the trace header Lambda would pass.
struct Pending {
    request_id: String,
    event: String,
    trace_header: Option<String>,
}

/// The Runtime API of one function: `/next` hands out pending invocations, `/response` and
/// `/error` answer them.
struct RuntimeState {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    answers: Mutex<HashMap<String, oneshot::Sender<(bool, String)>>>,
    init_errors: Mutex<Vec<String>>,
}

struct RuntimeApi {
    addr: std::net::SocketAddr,
    state: Arc<RuntimeState>,
    send: mpsc::UnboundedSender<Pending>,
    function_arn: String,
}

async fn next(State(state): State<Arc<RuntimeState>>) -> Response {
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
    async fn start(function: &str) -> RuntimeApi {
        let (send, recv) = mpsc::unbounded_channel();
        let state = Arc::new(RuntimeState {
            queue: tokio::sync::Mutex::new(recv),
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
    async fn invoke(&self, event: &Value, trace_header: Option<String>) -> (bool, Value) {
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
struct Function {
    runtime: RuntimeApi,
    logs: Arc<Mutex<Vec<Value>>>,
    child: std::process::Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the test run's debug binaries are (`target/debug`, beside this test's `deps`).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} not built (the test command builds every workspace binary)",
        path.display()
    );
    path
}

async fn start_function(
    binary_name: &str,
    function: &str,
    env: &BTreeMap<String, String>,
    common: &[(String, String)],
) -> Function {
    let runtime = RuntimeApi::start(function).await;
    let mut command = std::process::Command::new(binary(binary_name));
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
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
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
    }
}

/// The X-Ray daemon stand-in: every segment document received.
async fn xray_daemon() -> (std::net::SocketAddr, Arc<Mutex<Vec<Value>>>) {
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
type Entries = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// An AWS endpoint that forwards every call to moto and keeps each `PutEvents` entry's
/// `TraceHeader` and `Detail`, as EventBridge would carry them to the rule's target.
async fn eventbridge_tap(moto: String) -> (String, Entries) {
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
fn rendered_environments(stage: &MotoStage) -> HashMap<String, BTreeMap<String, String>> {
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

fn api_gateway_event(provider: Provider, headers: &[(String, String)], body: &[u8]) -> Value {
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

fn sqs_event(records: &[payhook_aws::Received], queue_arn: &str) -> Value {
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
async fn the_three_binaries_carry_one_webhook_in_one_trace_with_correlated_logs() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let dir = run_dir("lambda-binaries");
    let config = config::init(&dir, 9, true, payhook_devkit::unix_now()).expect("demo config");
    let stage = bootstrap_on_moto(&dir, &config).await;
    let names = stage.target.names.clone();
    let envs = rendered_environments(&stage);
    let (xray, segments) = xray_daemon().await;
    let (eventbridge, put) = eventbridge_tap(moto.endpoint.clone()).await;
    let sqs = SqsClient::new(&stage.sdk);
    let queue_url = |name: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_url()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap()
                .to_owned()
        }
    };
    let common: Vec<(String, String)> = vec![
        ("AWS_REGION".into(), stage.target.region.clone()),
        ("AWS_DEFAULT_REGION".into(), stage.target.region.clone()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_ENDPOINT_URL".into(), moto.endpoint.clone()),
        ("AWS_XRAY_DAEMON_ADDRESS".into(), xray.to_string()),
        ("AWS_XRAY_CONTEXT_MISSING".into(), "LOG_ERROR".into()),
    ];

    // The validator, as API Gateway invokes it; the queue URLs resolved to the stage's.
    let mut validator_env = envs["webhook-validator"].clone();
    for provider in Provider::ALL {
        let key = format!("QUEUE_URL_{}", provider.as_str().to_uppercase());
        assert!(validator_env.contains_key(&key), "the program sets {key}");
        validator_env.insert(key, queue_url(names.queue(provider)).await);
    }
    let validator = start_function(
        "webhook-validator",
        "webhook-validator",
        &validator_env,
        &common,
    )
    .await;
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
    let stripe_queue = queue_url(names.queue(Provider::Stripe)).await;
    let consumer = SqsConsumer::new(sqs.clone(), stripe_queue);
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
    let mut through_tap = common.clone();
    for (key, value) in &mut through_tap {
        if key == "AWS_ENDPOINT_URL" {
            value.clone_from(&eventbridge);
        }
    }
    let processor = start_function(
        "provider-processor",
        "stripe-processor",
        &envs["stripe-processor"],
        &through_tap,
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
    let (entry_trace, detail) = put
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
        &common,
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
    let all = spans(&segments.lock().unwrap());
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
