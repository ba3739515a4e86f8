//! The local run as a metric source: the EMF documents of `metrics.jsonl` as CloudWatch would
//! extract them, plus local equivalents of the AWS-published metrics, derived from what the run
//! captured:
//!
//! | namespace | metrics | derived from |
//! |---|---|---|
//! | `AWS/Lambda` | Invocations, Errors, Duration, Throttles, ConcurrentExecutions | the X-Ray handler (sub)segments in `xray.jsonl`, one per invocation (`fault`/`error` = an error); else the logs' request ids. The local stack never throttles: `Throttles` is 0 per invocation |
//! | `AWS/ApiGateway` | Count, 4XXError, 5XXError, Latency, IntegrationLatency | the validator's answers (`status`) in `logs.jsonl`, plus requests the front door answered itself (in `summary.json` only); latency = the validator's segment duration |
//! | `AWS/SQS` | ApproximateNumberOfMessagesVisible / NotVisible, ApproximateAgeOfOldestMessage | each message's life, from the validator's `queued` log to the processor's last record log; DLQ depth from the records that went to the DLQ |
//! | `AWS/Events` | MatchedEvents, FailedInvocations, InvocationsFailedToBeSentToDlq | the event processor's deliveries per rule; failures from `summary.json`'s rule counters when present, else 0 |
//! | `AWS/DynamoDB` | ConditionalCheckFailedRequests | duplicate answers and skipped or absorbed records: each is a conditional write the status store refused |
//! | `AWS/Logs` | EMFParsingErrors, EMFValidationErrors | `metrics.jsonl` checked with the telemetry crate's EMF validator |
//!
//! DynamoDB latency and throttles come from AWS-call subsegments when the segments carry them;
//! the in-memory status store makes none, so those widgets say there is no local data.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use payhook_cloudwatch::check::NAMESPACE;
use serde_json::{Map, Value};

use super::logs::LogRecord;
use super::metrics::{MetricId, MetricSource, Points, Stat, TimeRange, aggregate_samples};
use super::names::{Names, is_function, providers};
use crate::DashboardError;
use payhook_local::run_dir::{LOGS_FILE, METRICS_FILE, SEGMENTS_FILE, SUMMARY_FILE};

/// Gauges (queue depth, age) are sampled at least this often, as SQS publishes them.
const GAUGE_STEP_MS: i64 = 60_000;

/// The captured run, as metrics and log records.
#[derive(Debug, Default)]
pub(crate) struct LocalRun {
    samples: HashMap<MetricId, Vec<(i64, f64)>>,
    provenance: BTreeMap<(String, String), String>,
    /// Every log record, by log group.
    pub(crate) logs: Vec<LogRecord>,
    range: Option<TimeRange>,
    /// Problems reading the run (shown on the page).
    pub(crate) warnings: Vec<String>,
    /// EventBridge rule names seen in the run.
    pub(crate) rules: BTreeSet<String>,
    /// One line about the run (from `summary.json`).
    pub(crate) headline: Option<String>,
}

/// One function invocation seen in the run.
#[derive(Debug, Clone)]
struct Invocation {
    function: String,
    start_ms: i64,
    end_ms: i64,
    /// Exact duration (segment times are in microseconds; the ends above are rounded).
    duration_ms: f64,
    error: bool,
}

/// One request answered by the API (the access log).
#[derive(Debug, Clone)]
struct Access {
    ts_ms: i64,
    status: i64,
    provider: String,
    webhook_id: Option<String>,
    error_code: Option<String>,
    error: Option<String>,
}

fn read_lines(path: &Path, required: bool) -> Result<Vec<String>, DashboardError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(DashboardError::Input(format!(
            "{}: {e} (is this a run directory written by `payhook demo`?)",
            path.display()
        ))),
    }
}

fn parse_time_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A segment's `end_time - start_time` in (fractional) milliseconds.
fn duration_ms(node: &Value) -> f64 {
    let t = |k: &str| node.get(k).and_then(Value::as_f64);
    match (t("start_time"), t("end_time")) {
        (Some(s), Some(e)) => ((e - s) * 1000.0).max(0.0),
        _ => 0.0,
    }
}

fn seconds_to_ms(v: &Value) -> Option<i64> {
    v.as_f64().map(|s| (s * 1000.0).round() as i64)
}

/// The logical function a log line belongs to: its `function_name` or `service` when that is
/// one of the six, else the crate in `location` (handlers log outside the invocation span).
fn log_function(v: &Value) -> Option<String> {
    for key in ["function_name", "service"] {
        if let Some(s) = v.get(key).and_then(Value::as_str)
            && is_function(s)
        {
            return Some(s.to_owned());
        }
    }
    let location = v.get("location").and_then(Value::as_str)?;
    let krate = location.split(':').next().unwrap_or_default();
    match krate {
        "payhook_webhook_validator" => Some("webhook-validator".into()),
        "payhook_event_processor" => Some("event-processor".into()),
        "payhook_sweeper" => Some("sweeper".into()),
        "payhook_provider_processor" => {
            let p = v.get("provider").and_then(Value::as_str)?;
            providers()
                .any(|q| q == p)
                .then(|| format!("{p}-processor"))
        }
        _ => None,
    }
}

fn dims(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

impl LocalRun {
    fn add(&mut self, id: MetricId, ts_ms: i64, value: f64) {
        if value.is_finite() {
            self.samples.entry(id).or_default().push((ts_ms, value));
        }
    }

    fn note(&mut self, namespace: &str, names: &[&str], how: &str) {
        for n in names {
            self.provenance
                .insert((namespace.to_owned(), (*n).to_owned()), how.to_owned());
        }
    }

    /// Reads `run_dir` (`metrics.jsonl` required; logs, segments and summary when present).
    pub(crate) fn load(run_dir: &Path, names: &Names) -> Result<LocalRun, DashboardError> {
        let mut run = LocalRun::default();
        let metrics = read_lines(&run_dir.join(METRICS_FILE), true)?;
        let logs = read_lines(&run_dir.join(LOGS_FILE), false)?;
        let segments = read_lines(&run_dir.join(SEGMENTS_FILE), false)?;
        let summary: Option<Value> = match std::fs::read_to_string(run_dir.join(SUMMARY_FILE)) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(v) => Some(v),
                Err(e) => {
                    run.warnings.push(format!("{SUMMARY_FILE}: {e}"));
                    None
                }
            },
            Err(_) => None,
        };
        if logs.is_empty() {
            run.warnings.push(format!(
                "no {LOGS_FILE}: log widgets and log-derived metrics are empty"
            ));
        }
        if segments.is_empty() {
            run.warnings.push(format!(
                "no {SEGMENTS_FILE}: Lambda metrics come from the logs' request ids"
            ));
        }
        run.load_emf(&metrics, names);
        let log_values: Vec<Value> = logs
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        if log_values.len() < logs.len() {
            run.warnings.push(format!(
                "{LOGS_FILE}: {} of {} lines are not JSON",
                logs.len() - log_values.len(),
                logs.len()
            ));
        }
        for v in &log_values {
            let Some(obj) = v.as_object() else { continue };
            let Some(ts) = obj
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(parse_time_ms)
            else {
                continue;
            };
            let group = match log_function(v) {
                Some(f) => names.log_group(&f),
                None => "payhook-local".to_owned(),
            };
            run.logs.push(LogRecord {
                group,
                ts_ms: ts,
                fields: obj.clone(),
            });
        }
        let segment_values: Vec<Value> = segments
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        let mut invocations = invocations_from_segments(&segment_values);
        let from_segments: BTreeSet<String> =
            invocations.iter().map(|i| i.function.clone()).collect();
        invocations.extend(
            invocations_from_logs(&log_values)
                .into_iter()
                .filter(|i| !from_segments.contains(&i.function)),
        );
        run.derive_lambda(&invocations, names);
        let access = run.derive_api(&log_values, &invocations, summary.as_ref(), names);
        run.derive_dynamodb(&segment_values, names);
        let end = run.current_end();
        run.derive_queues(&log_values, &access, summary.as_ref(), end, names);
        run.derive_events(&log_values, summary.as_ref(), names);
        run.headline = summary.as_ref().map(headline);
        run.range = run.compute_range();
        Ok(run)
    }

    fn load_emf(&mut self, lines: &[String], names: &Names) {
        let mut last_ts = 0_i64;
        let mut parse_errors = 0;
        let mut invalid = 0;
        for line in lines {
            let doc: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) => {
                    parse_errors += 1;
                    continue;
                }
            };
            let function = doc
                .get("service")
                .or_else(|| doc.get("function_name"))
                .and_then(Value::as_str)
                .filter(|s| is_function(s))
                .map(str::to_owned);
            let ts = doc
                .pointer("/_aws/Timestamp")
                .and_then(Value::as_i64)
                .unwrap_or(last_ts);
            last_ts = ts;
            let valid = payhook_telemetry::emf::validate(&doc).is_ok();
            if let Some(f) = &function {
                let group = dims(&[("LogGroupName", names.log_group(f))]);
                self.add(
                    MetricId::new("AWS/Logs", "EMFParsingErrors", group.clone()),
                    ts,
                    0.0,
                );
                self.add(
                    MetricId::new("AWS/Logs", "EMFValidationErrors", group),
                    ts,
                    if valid { 0.0 } else { 1.0 },
                );
            }
            if !valid {
                invalid += 1;
                continue;
            }
            self.extract_emf(&doc, ts);
        }
        self.note(
            "AWS/Logs",
            &["EMFParsingErrors", "EMFValidationErrors"],
            "metrics.jsonl checked with the telemetry crate's EMF validator",
        );
        if parse_errors > 0 || invalid > 0 {
            self.warnings.push(format!(
                "{METRICS_FILE}: {parse_errors} lines are not JSON and {invalid} documents fail EMF validation (CloudWatch would extract no metric from them)"
            ));
        }
    }

    fn extract_emf(&mut self, doc: &Value, ts: i64) {
        let Some(directives) = doc
            .pointer("/_aws/CloudWatchMetrics")
            .and_then(Value::as_array)
        else {
            return;
        };
        for d in directives {
            let ns = d
                .get("Namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let sets = d.get("Dimensions").and_then(Value::as_array);
            let metrics = d.get("Metrics").and_then(Value::as_array);
            let (Some(sets), Some(metrics)) = (sets, metrics) else {
                continue;
            };
            for set in sets {
                let Some(keys) = set.as_array() else { continue };
                let dimensions: Vec<(String, String)> = keys
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|k| {
                        doc.get(k)
                            .and_then(Value::as_str)
                            .map(|v| (k.to_owned(), v.to_owned()))
                    })
                    .collect();
                for m in metrics {
                    let Some(name) = m.get("Name").and_then(Value::as_str) else {
                        continue;
                    };
                    let id = MetricId::new(ns, name, dimensions.clone());
                    match doc.get(name) {
                        Some(Value::Array(values)) => {
                            for v in values.iter().filter_map(Value::as_f64) {
                                self.add(id.clone(), ts, v);
                            }
                        }
                        Some(v) => {
                            if let Some(v) = v.as_f64() {
                                self.add(id, ts, v);
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    }

    /// Every captured sample of a `Payhook` metric by name, whatever its dimensions.
    fn payhook_samples(&self, name: &str) -> Vec<(MetricId, Vec<(i64, f64)>)> {
        let mut out: Vec<(MetricId, Vec<(i64, f64)>)> = self
            .samples
            .iter()
            .filter(|(id, _)| id.namespace == NAMESPACE && id.name == name)
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn derive_lambda(&mut self, invocations: &[Invocation], names: &Names) {
        let mut by_function: BTreeMap<&str, Vec<&Invocation>> = BTreeMap::new();
        for inv in invocations {
            by_function.entry(&inv.function).or_default().push(inv);
        }
        for (function, invs) in by_function {
            let d = dims(&[("FunctionName", names.function(function))]);
            let id = |name: &str| MetricId::new("AWS/Lambda", name, d.clone());
            let mut intervals = Vec::new();
            for inv in &invs {
                self.add(id("Invocations"), inv.start_ms, 1.0);
                self.add(
                    id("Errors"),
                    inv.start_ms,
                    if inv.error { 1.0 } else { 0.0 },
                );
                self.add(id("Throttles"), inv.start_ms, 0.0);
                self.add(id("Duration"), inv.start_ms, inv.duration_ms);
                intervals.push((inv.start_ms, inv.end_ms.max(inv.start_ms + 1)));
            }
            // Concurrency: how many invocations overlap at each start.
            for &(start, _) in &intervals {
                let n = intervals
                    .iter()
                    .filter(|(s, e)| *s <= start && start < *e)
                    .count();
                self.add(id("ConcurrentExecutions"), start, n as f64);
            }
        }
        self.note(
            "AWS/Lambda",
            &["Invocations", "Errors", "Duration", "ConcurrentExecutions"],
            "one invocation per X-Ray handler segment of the run (fault or error = an error)",
        );
        self.note(
            "AWS/Lambda",
            &["Throttles"],
            "the local stack never throttles: 0 per invocation",
        );
    }

    #[expect(
        clippy::too_many_lines,
        reason = "derives every API Gateway metric of a local run in one walk over its requests, in send order"
    )]
    fn derive_api(
        &mut self,
        logs: &[Value],
        invocations: &[Invocation],
        summary: Option<&Value>,
        names: &Names,
    ) -> Vec<Access> {
        let mut access: Vec<Access> = logs
            .iter()
            .filter(|v| log_function(v).as_deref() == Some("webhook-validator"))
            .filter_map(|v| {
                let status = v.get("status").and_then(Value::as_i64)?;
                let ts = v
                    .get("timestamp")
                    .and_then(Value::as_str)
                    .and_then(parse_time_ms)?;
                let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
                Some(Access {
                    ts_ms: ts,
                    status,
                    provider: s("provider").unwrap_or_default(),
                    webhook_id: s("webhook_id"),
                    error_code: s("error_code"),
                    error: s("error"),
                })
            })
            .collect();
        access.sort_by_key(|a| a.ts_ms);
        // Requests the front door answered itself (API key, quota) reached no function: they are
        // only in summary.json, in send order. Place each at the time of the answer before it.
        if let Some(requests) = summary
            .and_then(|s| s.get("requests"))
            .and_then(Value::as_array)
        {
            let mut budget: HashMap<(String, i64), usize> = HashMap::new();
            for a in &access {
                *budget.entry((a.provider.clone(), a.status)).or_default() += 1;
            }
            let mut order: Vec<i64> = access.iter().map(|a| a.ts_ms).collect();
            order.sort_unstable();
            let mut seen = 0usize;
            let mut extra = Vec::new();
            for r in requests {
                let provider = r
                    .get("provider")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let Some(status) = r.get("status").and_then(Value::as_i64) else {
                    continue;
                };
                let left = budget.entry((provider.clone(), status)).or_default();
                if *left > 0 {
                    *left -= 1;
                    seen += 1;
                    continue;
                }
                let at = order
                    .get(seen.saturating_sub(1).min(order.len().saturating_sub(1)))
                    .copied();
                let Some(ts) = at else { continue };
                let response = r.get("response");
                let text = |k: &str| {
                    response
                        .and_then(|x| x.get(k))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                extra.push(Access {
                    ts_ms: ts,
                    status,
                    provider,
                    webhook_id: None,
                    error_code: text("error"),
                    error: text("message"),
                });
            }
            access.extend(extra);
            access.sort_by_key(|a| a.ts_ms);
        }
        let d = dims(&[
            ("ApiName", names.api_name()),
            ("Stage", names.stage.clone()),
        ]);
        let id = |name: &str| MetricId::new("AWS/ApiGateway", name, d.clone());
        for a in &access {
            self.add(id("Count"), a.ts_ms, 1.0);
            self.add(
                id("4XXError"),
                a.ts_ms,
                if (400..500).contains(&a.status) {
                    1.0
                } else {
                    0.0
                },
            );
            self.add(
                id("5XXError"),
                a.ts_ms,
                if a.status >= 500 { 1.0 } else { 0.0 },
            );
            let mut fields = Map::new();
            fields.insert("status".into(), Value::from(a.status));
            fields.insert(
                "path".into(),
                Value::String(format!("/webhooks/{}", a.provider)),
            );
            fields.insert("httpMethod".into(), Value::String("POST".into()));
            if let Some(c) = &a.error_code {
                fields.insert("errorType".into(), Value::String(c.clone()));
            }
            if let Some(e) = &a.error {
                fields.insert("errorMessage".into(), Value::String(e.clone()));
            }
            if let Some(w) = &a.webhook_id {
                fields.insert("webhookId".into(), Value::String(w.clone()));
            }
            self.logs.push(LogRecord {
                group: names.api_access_log_group(),
                ts_ms: a.ts_ms,
                fields,
            });
        }
        for inv in invocations
            .iter()
            .filter(|i| i.function == "webhook-validator")
        {
            let ms = inv.duration_ms;
            self.add(id("Latency"), inv.start_ms, ms);
            self.add(id("IntegrationLatency"), inv.start_ms, ms);
        }
        self.note(
            "AWS/ApiGateway",
            &["Count", "4XXError", "5XXError"],
            "the validator's answers in the logs, plus the front door's own in summary.json",
        );
        self.note(
            "AWS/ApiGateway",
            &["Latency", "IntegrationLatency"],
            "the validator's X-Ray segment durations",
        );
        access
    }

    fn derive_dynamodb(&mut self, segments: &[Value], names: &Names) {
        let table = names.table();
        let mut calls = Vec::new();
        for doc in segments {
            collect_dynamodb_calls(doc, &mut calls);
        }
        for (op, start, duration, throttled) in calls {
            let d = dims(&[("TableName", table.clone()), ("Operation", op.clone())]);
            self.add(
                MetricId::new("AWS/DynamoDB", "SuccessfulRequestLatency", d),
                start,
                duration,
            );
            let kind = if ["GetItem", "Query", "Scan", "BatchGetItem"].contains(&op.as_str()) {
                "ReadThrottleEvents"
            } else {
                "WriteThrottleEvents"
            };
            self.add(
                MetricId::new("AWS/DynamoDB", kind, dims(&[("TableName", table.clone())])),
                start,
                if throttled { 1.0 } else { 0.0 },
            );
        }
        let id = MetricId::new(
            "AWS/DynamoDB",
            "ConditionalCheckFailedRequests",
            dims(&[("TableName", table)]),
        );
        for name in [
            "WebhooksDuplicate",
            "RecordsSkipped",
            "DuplicateEventsAbsorbed",
        ] {
            for (_, samples) in self.payhook_samples(name) {
                for (ts, v) in samples {
                    self.add(id.clone(), ts, v);
                }
            }
        }
        self.note(
            "AWS/DynamoDB",
            &["ConditionalCheckFailedRequests"],
            "duplicate answers and skipped or absorbed records: each a conditional write the status store refused",
        );
        self.note(
            "AWS/DynamoDB",
            &[
                "SuccessfulRequestLatency",
                "ReadThrottleEvents",
                "WriteThrottleEvents",
            ],
            "DynamoDB call subsegments in the X-Ray segments",
        );
    }

    #[expect(
        clippy::too_many_lines,
        reason = "derives the SQS metrics of every queue and DLQ of a local run from the same summary and logs, one block per queue kind"
    )]
    fn derive_queues(
        &mut self,
        logs: &[Value],
        access: &[Access],
        summary: Option<&Value>,
        end: i64,
        names: &Names,
    ) {
        #[derive(Default)]
        struct Life {
            queued: Option<i64>,
            first_attempt: Option<i64>,
            done: Option<i64>,
            dlq: Option<i64>,
        }
        let mut lives: BTreeMap<(String, String), Life> = BTreeMap::new();
        for a in access.iter().filter(|a| a.status == 202) {
            if let Some(w) = &a.webhook_id {
                let life = lives.entry((a.provider.clone(), w.clone())).or_default();
                life.queued = Some(life.queued.map_or(a.ts_ms, |q| q.min(a.ts_ms)));
            }
        }
        let mut attempts_seen = false;
        for v in logs {
            let Some(function) = log_function(v) else {
                continue;
            };
            let Some(provider) = function.strip_suffix("-processor") else {
                continue;
            };
            if v.get("message_id").is_none() || v.get("receive_count").is_none() {
                continue;
            }
            let (Some(webhook), Some(ts)) = (
                v.get("webhook_id").and_then(Value::as_str),
                v.get("timestamp")
                    .and_then(Value::as_str)
                    .and_then(parse_time_ms),
            ) else {
                continue;
            };
            attempts_seen = true;
            let life = lives
                .entry((provider.to_owned(), webhook.to_owned()))
                .or_default();
            life.first_attempt = Some(life.first_attempt.map_or(ts, |f| f.min(ts)));
            let failed = v.get("error_code").is_some();
            let to_dlq = failed && v.get("level").and_then(Value::as_str) == Some("ERROR");
            if to_dlq {
                life.dlq = Some(ts);
                life.done = Some(ts);
            } else if !failed {
                life.done = Some(life.done.map_or(ts, |d| d.max(ts)));
            }
        }
        let end = end.max(1);
        let start = lives
            .values()
            .filter_map(|l| l.queued.or(l.first_attempt))
            .min()
            .unwrap_or(end);
        for provider in providers() {
            let mine: Vec<&Life> = lives
                .iter()
                .filter(|((p, _), _)| p == provider)
                .map(|(_, l)| l)
                .collect();
            let mut visible = Vec::new();
            let mut in_flight = Vec::new();
            let mut alive = Vec::new();
            let mut dead = Vec::new();
            for l in &mine {
                let queued = l.queued.or(l.first_attempt).unwrap_or(start);
                let gone = l.done.unwrap_or(end + 1);
                match l.first_attempt {
                    Some(f) => {
                        visible.push((queued, f));
                        in_flight.push((f, gone));
                    }
                    None => visible.push((queued, gone)),
                }
                alive.push((queued, gone));
                if let Some(d) = l.dlq {
                    dead.push((d, end + 1));
                }
            }
            if !attempts_seen {
                // No record logs: the DLQ from the MessagesToDlq metric alone.
                for (id, samples) in self.payhook_samples("MessagesToDlq") {
                    if id.dimension("provider") == Some(provider) {
                        for (ts, v) in samples {
                            for _ in 0..(v.max(0.0) as usize) {
                                dead.push((ts, end + 1));
                            }
                        }
                    }
                }
            }
            let q = dims(&[("QueueName", names.queue(provider))]);
            let dq = dims(&[("QueueName", names.dlq(provider))]);
            let times = sample_times(start, end, [&visible, &in_flight, &alive, &dead]);
            for &t in &times {
                let count =
                    |iv: &[(i64, i64)]| iv.iter().filter(|(s, e)| *s <= t && t < *e).count();
                let age = alive
                    .iter()
                    .filter(|(s, e)| *s <= t && t < *e)
                    .map(|(s, _)| (t - s) as f64 / 1000.0)
                    .fold(0.0, f64::max);
                self.add(
                    MetricId::new("AWS/SQS", "ApproximateNumberOfMessagesVisible", q.clone()),
                    t,
                    count(&visible) as f64,
                );
                self.add(
                    MetricId::new(
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesNotVisible",
                        q.clone(),
                    ),
                    t,
                    count(&in_flight) as f64,
                );
                self.add(
                    MetricId::new("AWS/SQS", "ApproximateAgeOfOldestMessage", q.clone()),
                    t,
                    age,
                );
                self.add(
                    MetricId::new("AWS/SQS", "ApproximateNumberOfMessagesVisible", dq.clone()),
                    t,
                    count(&dead) as f64,
                );
            }
        }
        // The events DLQ: the bus's dead letters when the summary carries the stack's counters.
        if let Some(n) = summary
            .and_then(|s| find_key(s, "bus_dead_letters"))
            .and_then(Value::as_f64)
        {
            let id = MetricId::new(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                dims(&[("QueueName", names.dlq("events"))]),
            );
            for t in sample_times(start, end, []) {
                self.add(id.clone(), t, if t >= end { n } else { 0.0 });
            }
        }
        let dlq_found: usize = self
            .samples
            .iter()
            .filter(|(id, _)| {
                id.name == "ApproximateNumberOfMessagesVisible"
                    && id
                        .dimension("QueueName")
                        .is_some_and(|q| providers().any(|p| names.dlq(p) == q))
            })
            .filter_map(|(_, s)| s.iter().max_by_key(|(t, _)| *t).map(|(_, v)| *v as usize))
            .sum();
        if let Some(expected) = summary
            .and_then(|s| s.pointer("/report/dlq"))
            .and_then(Value::as_u64)
            && expected as usize != dlq_found
        {
            self.warnings.push(format!(
                "{SUMMARY_FILE} counts {expected} messages in the DLQs; the logs show {dlq_found}"
            ));
        }
        self.note(
            "AWS/SQS",
            &[
                "ApproximateNumberOfMessagesVisible",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateAgeOfOldestMessage",
            ],
            "each message's life, from the validator's queued answer to the processor's last record log (DLQ: the records that went there)",
        );
    }

    fn derive_events(&mut self, logs: &[Value], summary: Option<&Value>, names: &Names) {
        let bus = names.bus();
        let mut deliveries: Vec<(String, i64)> = logs
            .iter()
            .filter(|v| log_function(v).as_deref() == Some("event-processor"))
            .filter_map(|v| {
                let rule = v.get("rule").and_then(Value::as_str)?;
                let ts = v
                    .get("timestamp")
                    .and_then(Value::as_str)
                    .and_then(parse_time_ms)?;
                Some((rule.to_owned(), ts))
            })
            .collect();
        if deliveries.is_empty() {
            for (id, samples) in self.payhook_samples("EventsProcessed") {
                if let Some(rule) = id.dimension("rule") {
                    for (ts, v) in samples {
                        for _ in 0..(v.max(0.0) as usize) {
                            deliveries.push((rule.to_owned(), ts));
                        }
                    }
                }
            }
        }
        let rule_stats = summary
            .and_then(|s| find_key(s, "rules"))
            .and_then(Value::as_object);
        let last = deliveries.iter().map(|(_, t)| *t).max();
        let mut matched: BTreeMap<String, u64> = BTreeMap::new();
        for (rule, ts) in &deliveries {
            *matched.entry(rule.clone()).or_default() += 1;
            let d = dims(&[("EventBusName", bus.clone()), ("RuleName", rule.clone())]);
            self.add(
                MetricId::new("AWS/Events", "MatchedEvents", d.clone()),
                *ts,
                1.0,
            );
            self.add(
                MetricId::new("AWS/Events", "FailedInvocations", d.clone()),
                *ts,
                0.0,
            );
            self.add(
                MetricId::new("AWS/Events", "InvocationsFailedToBeSentToDlq", d),
                *ts,
                0.0,
            );
        }
        if let (Some(stats), Some(last)) = (rule_stats, last) {
            for (rule, s) in stats {
                let d = dims(&[("EventBusName", bus.clone()), ("RuleName", rule.clone())]);
                let count = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
                let seen = matched.get(rule).copied().unwrap_or(0);
                if count("matched") > seen {
                    self.add(
                        MetricId::new("AWS/Events", "MatchedEvents", d.clone()),
                        last,
                        (count("matched") - seen) as f64,
                    );
                }
                self.add(
                    MetricId::new("AWS/Events", "FailedInvocations", d.clone()),
                    last,
                    count("failed_invocations") as f64,
                );
            }
        }
        self.rules.extend(matched.into_keys());
        if let Some(by_rule) = summary
            .and_then(|s| s.pointer("/report/processed_by_rule"))
            .and_then(Value::as_object)
        {
            self.rules.extend(by_rule.keys().cloned());
        }
        self.note(
            "AWS/Events",
            &["MatchedEvents"],
            "the event processor's deliveries per rule",
        );
        self.note(
            "AWS/Events",
            &["FailedInvocations", "InvocationsFailedToBeSentToDlq"],
            "the local bus's counters in summary.json when present, else 0 per delivery",
        );
    }

    fn current_end(&self) -> i64 {
        self.samples
            .values()
            .flat_map(|s| s.iter().map(|(t, _)| *t))
            .chain(self.logs.iter().map(|r| r.ts_ms))
            .max()
            .unwrap_or(0)
    }

    fn compute_range(&self) -> Option<TimeRange> {
        let all = self
            .samples
            .values()
            .flat_map(|s| s.iter().map(|(t, _)| *t))
            .chain(self.logs.iter().map(|r| r.ts_ms));
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for t in all {
            lo = lo.min(t);
            hi = hi.max(t);
        }
        (lo <= hi).then(|| TimeRange {
            start: lo.div_euclid(1000),
            end: hi.div_euclid(1000),
        })
    }

    /// Number of metrics captured or derived.
    pub(crate) fn metric_count(&self) -> usize {
        self.samples.len()
    }
}

/// Times to sample gauges at: every interval edge (and just before each end), and every
/// [`GAUGE_STEP_MS`] from `start` to `end`.
fn sample_times<const N: usize>(start: i64, end: i64, sets: [&Vec<(i64, i64)>; N]) -> Vec<i64> {
    let mut times = BTreeSet::new();
    let mut t = start;
    while t < end {
        times.insert(t);
        t += GAUGE_STEP_MS;
    }
    times.insert(end);
    for set in sets {
        for &(s, e) in set {
            times.insert(s);
            if e > s {
                times.insert((e - 1).min(end));
            }
            if e <= end {
                times.insert(e);
            }
        }
    }
    times
        .into_iter()
        .filter(|t| *t >= start && *t <= end)
        .collect()
}

fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|c| find_key(c, key))),
        _ => None,
    }
}

fn headline(summary: &Value) -> String {
    let r = summary.get("report").unwrap_or(summary);
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    format!(
        "{} requests, {} accepted, {} duplicates, {} processed, {} in the DLQs",
        n("sent"),
        n("accepted"),
        n("duplicates"),
        n("processed"),
        n("dlq")
    )
}

/// The function a handler subsegment (`## <handler>`) ran for.
fn handler_function(node: &Value) -> Option<String> {
    let name = node.get("name").and_then(Value::as_str)?;
    let handler = name.strip_prefix("## ")?;
    if is_function(handler) {
        return Some(handler.to_owned());
    }
    if handler == "provider-processor" {
        let p = node
            .pointer("/annotations/provider")
            .and_then(Value::as_str)?;
        return providers()
            .any(|q| q == p)
            .then(|| format!("{p}-processor"));
    }
    None
}

fn failed(node: &Value) -> bool {
    ["fault", "error"]
        .iter()
        .any(|k| node.get(*k).and_then(Value::as_bool) == Some(true))
}

fn invocations_from_segments(docs: &[Value]) -> Vec<Invocation> {
    fn walk(node: &Value, inherited_error: bool, out: &mut Vec<Invocation>) -> bool {
        let error = inherited_error || failed(node);
        let mut found = false;
        if let Some(function) = handler_function(node)
            && let (Some(s), Some(e)) = (
                node.get("start_time").and_then(seconds_to_ms),
                node.get("end_time").and_then(seconds_to_ms),
            )
        {
            out.push(Invocation {
                function,
                start_ms: s,
                end_ms: e,
                duration_ms: duration_ms(node),
                error,
            });
            found = true;
        }
        if let Some(children) = node.get("subsegments").and_then(Value::as_array) {
            for c in children {
                found |= walk(c, error, out);
            }
        }
        found
    }
    let mut out = Vec::new();
    for doc in docs {
        let found = walk(doc, false, &mut out);
        // A function segment without a handler subsegment is one invocation itself.
        let name = doc.get("name").and_then(Value::as_str).unwrap_or_default();
        if !found
            && doc.get("parent_id").is_none()
            && is_function(name)
            && let (Some(s), Some(e)) = (
                doc.get("start_time").and_then(seconds_to_ms),
                doc.get("end_time").and_then(seconds_to_ms),
            )
        {
            out.push(Invocation {
                function: name.to_owned(),
                start_ms: s,
                end_ms: e,
                duration_ms: duration_ms(doc),
                error: failed(doc),
            });
        }
    }
    out
}

/// Invocations from the logs' `function_request_id`s (when the segments have none).
fn invocations_from_logs(logs: &[Value]) -> Vec<Invocation> {
    let mut by_request: BTreeMap<(String, String), Invocation> = BTreeMap::new();
    for v in logs {
        let (Some(function), Some(request)) = (
            v.get("function_name")
                .and_then(Value::as_str)
                .filter(|f| is_function(f)),
            v.get("function_request_id").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(ts) = v
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_time_ms)
        else {
            continue;
        };
        let error = v.get("level").and_then(Value::as_str) == Some("ERROR");
        by_request
            .entry((function.to_owned(), request.to_owned()))
            .and_modify(|i| {
                i.start_ms = i.start_ms.min(ts);
                i.end_ms = i.end_ms.max(ts);
                i.duration_ms = (i.end_ms - i.start_ms) as f64;
                i.error |= error;
            })
            .or_insert(Invocation {
                function: function.to_owned(),
                start_ms: ts,
                end_ms: ts,
                duration_ms: 0.0,
                error,
            });
    }
    by_request.into_values().collect()
}

/// DynamoDB calls recorded as AWS subsegments: `(operation, start ms, duration ms, throttled)`.
fn collect_dynamodb_calls(node: &Value, out: &mut Vec<(String, i64, f64, bool)>) {
    let is_dynamo = node.get("namespace").and_then(Value::as_str) == Some("aws")
        && node
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case("DynamoDB"));
    if is_dynamo {
        let op = node
            .pointer("/aws/operation")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_owned();
        if let Some(s) = node.get("start_time").and_then(seconds_to_ms) {
            let throttled = node.get("throttle").and_then(Value::as_bool) == Some(true);
            out.push((op, s, duration_ms(node), throttled));
        }
    }
    if let Some(children) = node.get("subsegments").and_then(Value::as_array) {
        for c in children {
            collect_dynamodb_calls(c, out);
        }
    }
}

impl MetricSource for LocalRun {
    fn fetch(&self, id: &MetricId, stat: Stat, period: i64) -> Option<Points> {
        let samples = self.samples.get(id)?;
        Some(aggregate_samples(samples, stat, period))
    }

    fn list(&self, namespace: &str) -> Vec<MetricId> {
        let mut out: Vec<MetricId> = self
            .samples
            .keys()
            .filter(|id| id.namespace == namespace)
            .cloned()
            .collect();
        out.sort();
        out
    }

    fn range(&self) -> TimeRange {
        self.range.unwrap_or_else(|| {
            let now = payhook_devkit::unix_now();
            TimeRange {
                start: now,
                end: now,
            }
        })
    }

    fn provenance(&self, id: &MetricId) -> Option<String> {
        self.provenance
            .get(&(id.namespace.clone(), id.name.clone()))
            .cloned()
    }

    fn missing_note(&self, id: &MetricId) -> String {
        if id.namespace == NAMESPACE {
            let other: BTreeSet<String> = self
                .samples
                .keys()
                .filter(|m| m.namespace == NAMESPACE && m.name == id.name)
                .map(|m| {
                    m.dimensions
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            return if other.is_empty() {
                format!("the run emitted no Payhook {}", id.name)
            } else {
                format!(
                    "the run emitted no Payhook {} with these dimension values ({id})",
                    id.name
                )
            };
        }
        // Dimensions only where they tell resources apart (the queue); the rest is one note.
        let what = match id.dimension("QueueName") {
            Some(q) => format!("{} {} of {q}", id.namespace, id.name),
            None => format!("{} {}", id.namespace, id.name),
        };
        let why = match id.namespace.as_str() {
            "AWS/DynamoDB" => ": the local status store is in memory and makes no DynamoDB call",
            "AWS/SQS" => ": the run has no record of this queue",
            _ => "",
        };
        format!("no local data for {what}{why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_processor_logs_belong_to_their_provider_function() {
        let v = serde_json::json!({"service": "payhook-local", "function_name": null, "location": "payhook_provider_processor:187", "provider": "stripe"});
        assert_eq!(log_function(&v).as_deref(), Some("stripe-processor"));
        let v =
            serde_json::json!({"service": "event-processor", "function_name": "event-processor"});
        assert_eq!(log_function(&v).as_deref(), Some("event-processor"));
        let v = serde_json::json!({"service": "payhook-local", "location": "payhook::local::stack:426"});
        assert_eq!(log_function(&v), None);
    }

    #[test]
    fn dynamodb_call_subsegments_give_latency_per_operation() {
        let doc = serde_json::json!({"name": "webhook-validator", "start_time": 1.0, "end_time": 1.1, "subsegments": [
            {"name": "DynamoDB", "namespace": "aws", "aws": {"operation": "PutItem"}, "start_time": 1.0, "end_time": 1.0125},
            {"name": "SQS", "namespace": "aws", "aws": {"operation": "SendMessage"}, "start_time": 1.02, "end_time": 1.03}
        ]});
        let mut calls = Vec::new();
        collect_dynamodb_calls(&doc, &mut calls);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "PutItem");
        assert!((calls[0].2 - 12.5).abs() < 1e-6);
        assert!(!calls[0].3);
    }

    #[test]
    fn handler_subsegments_are_invocations_and_faults_are_errors() {
        let docs = vec![
            serde_json::json!({"name": "webhook-validator", "start_time": 1.0, "end_time": 1.5, "subsegments": [
                {"name": "## webhook-validator", "start_time": 1.0, "end_time": 1.4}
            ]}),
            serde_json::json!({"name": "## provider-processor", "parent_id": "x", "type": "subsegment", "annotations": {"provider": "paypal"}, "start_time": 2.0, "end_time": 2.25, "fault": true}),
        ];
        let invs = invocations_from_segments(&docs);
        assert_eq!(invs.len(), 2);
        assert_eq!(invs[0].function, "webhook-validator");
        assert!((invs[0].duration_ms - 400.0).abs() < 1e-6);
        assert!(!invs[0].error);
        assert_eq!(invs[1].function, "paypal-processor");
        assert!(invs[1].error);
    }
}
