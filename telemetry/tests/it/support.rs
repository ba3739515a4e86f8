//! Shared test helpers: a telemetry stack on memory sinks (or a real UDP socket standing in for
//! the X-Ray daemon), the conformance fixtures, and a Draft-07 checker for `emf/schema.json`.

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use payhook_telemetry::{
    FunctionConfig, FunctionKind, FunctionTelemetry, MemorySink, Telemetry, TelemetryBuilder,
    TraceExport,
};
use regex::Regex;
use serde_json::Value;
use tracing::dispatcher::DefaultGuard;

/// A telemetry stack whose logs, metrics and segments land in memory, installed for this thread.
pub(crate) struct Harness {
    pub(crate) telemetry: Telemetry,
    pub(crate) logs: MemorySink,
    pub(crate) metrics: MemorySink,
    pub(crate) segments: MemorySink,
    _guard: DefaultGuard,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with(|b| b)
    }

    /// Segments to memory; `configure` may change anything else.
    pub(crate) fn with(configure: impl FnOnce(TelemetryBuilder) -> TelemetryBuilder) -> Self {
        let logs = MemorySink::new();
        let segments = MemorySink::new();
        let builder = Telemetry::builder()
            .service("payhook-tests")
            .log_sink(logs.clone())
            .trace_export(TraceExport::sink(segments.clone()));
        let telemetry = configure(builder).build().expect("telemetry builds");
        let guard = telemetry.set_default();
        Self {
            telemetry,
            logs,
            metrics: MemorySink::new(),
            segments,
            _guard: guard,
        }
    }

    /// A function whose metrics go to `self.metrics`.
    pub(crate) fn function(&self, kind: FunctionKind) -> FunctionTelemetry {
        self.function_with(FunctionConfig::new(kind))
    }

    pub(crate) fn function_with(&self, config: FunctionConfig) -> FunctionTelemetry {
        self.telemetry
            .function(config.metrics_sink(self.metrics.clone()))
    }

    pub(crate) fn log_lines(&self) -> Vec<Value> {
        self.logs.json().expect("every log line is JSON")
    }

    pub(crate) fn segment_docs(&self) -> Vec<Value> {
        self.segments.json().expect("every segment line is JSON")
    }

    pub(crate) fn metric_docs(&self) -> Vec<Value> {
        self.metrics.json().expect("every EMF line is JSON")
    }
}

/// A real UDP socket standing in for the X-Ray daemon.
pub(crate) struct FakeDaemon {
    pub(crate) socket: UdpSocket,
}

impl FakeDaemon {
    pub(crate) fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        Self { socket }
    }

    pub(crate) fn export(&self) -> TraceExport {
        TraceExport::Daemon(self.socket.local_addr().expect("addr"))
    }

    /// Every datagram received until the socket has been quiet for the read timeout.
    pub(crate) fn datagrams(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = self.socket.recv(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        out
    }
}

/// The conformance folder (payhook-core's rule: skipped, or failed under the test command,
/// when absent).
pub(crate) use payhook_testkit::conformance::conformance_dir;

/// The JSON Lines fixture at `path`, one value per non-empty line.
pub(crate) fn read_jsonl(path: &Path) -> Vec<Value> {
    payhook_testkit::conformance::read_jsonl(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn emf_schema() -> Option<Value> {
    let dir = conformance_dir()?;
    let text = std::fs::read_to_string(dir.join("emf/schema.json")).expect("schema.json");
    Some(serde_json::from_str(&text).expect("schema.json is JSON"))
}

/// Checks `doc` against a Draft-07 schema that uses only the keywords `emf/schema.json` uses
/// (`type`, `required`, `properties`, `items`, `minItems`, `maxItems`, `minLength`,
/// `maxLength`, `pattern`, plus the annotations `$id`, `title`, `examples`). Any other keyword
/// fails the test, so a change to the schema cannot be silently ignored.
pub(crate) fn schema_errors(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, doc, "", &mut errors);
    errors
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = schema.as_object().expect("a schema is an object");
    for (keyword, arg) in schema {
        match keyword.as_str() {
            "$id" | "$schema" | "title" | "examples" | "description" => {}
            "type" => {
                let ok = match arg.as_str().expect("type is a string") {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "null" => value.is_null(),
                    "number" => value.is_number(),
                    "integer" => {
                        value.is_i64()
                            || value.is_u64()
                            || value.as_f64().is_some_and(|f| f.fract() == 0.0)
                    }
                    other => panic!("unsupported type {other}"),
                };
                if !ok {
                    errors.push(format!("{path}: not {arg}"));
                }
            }
            "required" => {
                if let Some(obj) = value.as_object() {
                    for key in arg.as_array().expect("required is an array") {
                        let key = key.as_str().expect("required names are strings");
                        if !obj.contains_key(key) {
                            errors.push(format!("{path}: missing {key}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(obj) = value.as_object() {
                    for (name, sub) in arg.as_object().expect("properties is an object") {
                        if let Some(v) = obj.get(name) {
                            check(sub, v, &format!("{path}/{name}"), errors);
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check(arg, item, &format!("{path}/{i}"), errors);
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let Some(items) = value.as_array() {
                    let n = arg.as_u64().expect("a count") as usize;
                    let bad = if keyword == "minItems" {
                        items.len() < n
                    } else {
                        items.len() > n
                    };
                    if bad {
                        errors.push(format!("{path}: {keyword} {n}"));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let Some(s) = value.as_str() {
                    let n = arg.as_u64().expect("a length") as usize;
                    let len = s.chars().count();
                    let bad = if keyword == "minLength" {
                        len < n
                    } else {
                        len > n
                    };
                    if bad {
                        errors.push(format!("{path}: {keyword} {n}"));
                    }
                }
            }
            "pattern" => {
                if let Some(s) = value.as_str() {
                    let re = Regex::new(arg.as_str().expect("pattern is a string"))
                        .expect("the schema's patterns compile");
                    if !re.is_match(s) {
                        errors.push(format!("{path}: does not match {arg}"));
                    }
                }
            }
            other => panic!("schema keyword {other:?} is not supported by this checker"),
        }
    }
}

pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn is_xray_trace_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3 && parts[0] == "1" && is_hex(parts[1], 8) && is_hex(parts[2], 24)
}

/// A trace header for "now", as Lambda would pass it.
pub(crate) fn fresh_trace_header(sampled: bool) -> (String, String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let trace_id = format!("1-{secs:08x}-{:024x}", 0x00c0_ffee_1234_5678_9abc_def0_u128);
    let parent = "53995c3f42cd8ad8".to_owned();
    let header = format!(
        "Root={trace_id};Parent={parent};Sampled={}",
        if sampled { 1 } else { 0 }
    );
    (header, trace_id, parent)
}

/// An error type for handlers in tests.
#[derive(Debug, Clone)]
pub(crate) struct TestError {
    pub(crate) code: &'static str,
    pub(crate) retryable: bool,
    pub(crate) message: String,
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TestError {}

impl payhook_telemetry::ClassifiedError for TestError {
    fn code(&self) -> &'static str {
        self.code
    }
    fn retryable(&self) -> bool {
        self.retryable
    }
}
