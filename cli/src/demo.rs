//! `payhook demo`: starts the local stack on a free port, sends a realistic mix of webhooks
//! from all three providers (successes, failures, refunds, disputes, concurrent duplicates,
//! bad signatures, an unsupported type, a request with an API key the usage plan does not hold
//! (sent, like every request, as `?key=` in the URL), one poison message and
//! one processor crash right after publishing),
//! waits until the pipeline is idle, prints a summary and checks the books: every accepted
//! webhook ends `PROCESSED` exactly once, or `FAILED` with its message in the DLQ.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use payhook_aws::provision::{StackNames, StackPlan, provision};
use payhook_core::Provider;
use payhook_core::status::Status;
use payhook_pattern::load_rules;
use serde::Serialize;
use serde_json::json;

use crate::config::{self, Config};
use crate::local::faults::Faults;
use crate::local::http::FrontDoor;
use crate::local::stack::{AwsTarget, Stack, StackOptions};
use crate::{CliError, unix_now};
use payhook_devkit::plan::{BookedPayment, Plan, UNKNOWN_API_KEY, plan};

/// Arguments of `payhook demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where to write logs, metrics, traces and the summary (default: runs/demo-<time>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// The routing rules.
    #[arg(long, default_value = "rules")]
    pub rules_dir: PathBuf,
    /// Longest wait for the pipeline to go idle, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Run the pipeline on this AWS-compatible endpoint (a moto server, LocalStack) instead of
    /// in memory: the demo creates a fresh stage there (queues, DLQs, table, bus, rules, SSM
    /// parameters) and every port uses the AWS adapters.
    #[arg(long, value_name = "URL")]
    pub aws_endpoint: Option<String>,
}

/// What the demo saw and concluded.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Where the pipeline ran: `memory`, or `aws <endpoint> stage <stage>`.
    pub backend: String,
    /// Requests sent.
    pub sent: usize,
    /// Answers by HTTP status.
    pub by_status: BTreeMap<u16, usize>,
    /// 4xx answers by error code.
    pub rejected_by_reason: BTreeMap<String, usize>,
    /// Distinct webhooks acknowledged as queued (202).
    pub accepted: usize,
    /// Answers `duplicate` (200).
    pub duplicates: usize,
    /// Answers `ignored` (200).
    pub ignored: usize,
    /// Webhooks that ended PROCESSED.
    pub processed: usize,
    /// Events delivered per rule.
    pub processed_by_rule: BTreeMap<String, u64>,
    /// Webhooks PROCESSED without a business event: nothing new for their payment (a Square
    /// update on a completed payment) or older than what was known (stale).
    pub settled: usize,
    /// Payments whose books were checked from their payment record.
    pub payments_checked: usize,
    /// Business events of the checked payments, by type.
    pub business_events: BTreeMap<String, u64>,
    /// Webhooks that ended FAILED.
    pub failed: usize,
    /// Messages in the DLQs.
    pub dlq: usize,
    /// Events put on the bus.
    pub published: u64,
    /// Repeated deliveries the event processor absorbed (a retry re-published an event).
    pub absorbed: u64,
    /// Whether the pipeline went idle before the timeout.
    pub idle: bool,
    /// Problems found by the reconciliation (empty: the books balance).
    pub problems: Vec<String>,
}

impl DemoReport {
    /// A report with nothing counted yet.
    pub fn empty() -> Self {
        DemoReport {
            backend: "memory".to_owned(),
            sent: 0,
            by_status: BTreeMap::new(),
            rejected_by_reason: BTreeMap::new(),
            accepted: 0,
            duplicates: 0,
            ignored: 0,
            processed: 0,
            processed_by_rule: BTreeMap::new(),
            settled: 0,
            payments_checked: 0,
            business_events: BTreeMap::new(),
            failed: 0,
            dlq: 0,
            published: 0,
            absorbed: 0,
            idle: false,
            problems: Vec::new(),
        }
    }

    /// Whether every accepted webhook is accounted for exactly once.
    pub fn balanced(&self) -> bool {
        self.idle && self.problems.is_empty()
    }
}

/// Runs the demo: returns the report (the caller decides the exit code).
pub async fn run_demo(args: &DemoArgs) -> Result<DemoReport, CliError> {
    let run_dir = args
        .run_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/demo-{}", unix_now())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::Failed(format!("cannot bind 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::Failed(e.to_string()))?
        .port();
    let mut config: Config = config::init(&run_dir, port, true, unix_now())?;
    // Short visibility so retries and the poison message's trip to the DLQ take seconds.
    // (On an endpoint every store call is a round trip to another server: a few seconds, so a
    // loaded machine does not hold an attempt past its lease.)
    config.queues.visibility_timeout_seconds = if args.aws_endpoint.is_some() { 5 } else { 1 };
    let faults = Faults::default();
    let Plan {
        planned,
        poison_payment,
        crash_payment,
        booked,
    } = plan(unix_now())?;
    faults.reject_payment(&poison_payment);
    faults.crash_once_after_publishing(&crash_payment);

    // Outside the repository: the rules (and the dashboards and alarms beside them) built in.
    let rules_dir = crate::defaults::rules_dir(&args.rules_dir)?;
    let aws = match &args.aws_endpoint {
        Some(endpoint) => Some(provision_demo_stage(endpoint, &config, &rules_dir).await?),
        None => None,
    };
    if let Some(target) = &aws {
        eprintln!(
            "payhook demo: stage `{}` created on {} (table {}, bus {})",
            target.names.stage, target.endpoint, target.names.table, target.names.event_bus
        );
    }
    let stack = Stack::start(StackOptions {
        config: config.clone(),
        run_dir: run_dir.clone(),
        rules_dir: rules_dir.clone(),
        faults,
        aws,
    })
    .await?;
    let front = FrontDoor::serve(Arc::clone(&stack), listener)?;
    eprintln!(
        "payhook demo: stack on http://{} — run directory {}",
        front.addr,
        run_dir.display()
    );

    let sender = config.sender()?;
    let mut report = DemoReport::empty();
    report.backend = stack.backend_name();
    let mut accepted_ids: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for p in &planned {
        let url = format!("http://{}/webhooks/{}", front.addr, p.provider.as_str());
        let headers = sender.signer().sign(p.provider, &p.body, unix_now())?;
        // A bad signature: the body changed after signing (one byte, as a proxy might).
        let mut body = p.body.clone();
        if p.tamper_signature {
            body.push(b' ');
        }
        let sender = if p.unknown_api_key {
            sender
                .clone()
                .with_api_key(Some(UNKNOWN_API_KEY.to_owned()))
        } else {
            sender.clone()
        };
        let sends = (0..p.copies).map(|_| {
            let (sender, url, headers, body) =
                (sender.clone(), url.clone(), headers.clone(), body.clone());
            async move { sender.post(&url, &headers, body).await }
        });
        let answers = futures_join_all(sends).await;
        for answer in answers {
            let (status, body) = answer?;
            report.sent += 1;
            *report.by_status.entry(status).or_default() += 1;
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or(json!({}));
            match (status, json["status"].as_str()) {
                (202, _) => {
                    if let Some(id) = json["webhook_id"].as_str() {
                        accepted_ids.push(id.to_owned());
                    }
                }
                (200, Some("duplicate")) => report.duplicates += 1,
                (200, Some("ignored")) => report.ignored += 1,
                _ => {
                    let reason = json["error"]
                        .as_str()
                        .or(json["message"].as_str())
                        .unwrap_or("unknown")
                        .to_owned();
                    *report
                        .rejected_by_reason
                        .entry(format!("{status} {reason}"))
                        .or_default() += 1;
                }
            }
            lines.push(json!({"label": p.label, "provider": p.provider.as_str(), "webhook_id": p.webhook_id, "status": status, "response": json}));
        }
    }
    accepted_ids.sort();
    accepted_ids.dedup();
    report.accepted = accepted_ids.len();

    report.idle = stack.wait_idle(Duration::from_secs(args.timeout)).await;
    reconcile(&stack, &accepted_ids, &mut report).await;
    check_payments(&stack, &booked, &mut report).await;
    stack.shutdown().await;

    let summary = json!({"report": report, "requests": lines});
    std::fs::write(
        run_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )
    .map_err(|e| CliError::Failed(format!("summary: {e}")))?;
    // The dashboard files drawn with this run's metrics, to look at before deploying.
    let root = rules_dir.parent().unwrap_or(std::path::Path::new("."));
    let page =
        crate::dashboard::render_local(&root.join("dashboards"), &root.join("alarms"), &run_dir)?;
    let page = with_trace_links(page, &trace_waterfalls(&run_dir, &accepted_ids)?);
    std::fs::write(run_dir.join(crate::dashboard::DASHBOARD_FILE), page)
        .map_err(|e| CliError::Failed(format!("dashboard page: {e}")))?;
    Ok(report)
}

/// Where the demo writes each sampled webhook's waterfall, beside the dashboard page.
pub const TRACES_DIR: &str = "traces";

/// Draws each sampled webhook's trace (from the run's `xray.jsonl`) as an SVG waterfall in
/// [`TRACES_DIR`]; returns `(webhook id, file name)` of those drawn.
fn trace_waterfalls(
    run_dir: &std::path::Path,
    webhook_ids: &[String],
) -> Result<Vec<(String, String)>, CliError> {
    let dir = run_dir.join(TRACES_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Failed(format!("traces: {e}")))?;
    let segments = run_dir.join("xray.jsonl");
    let mut drawn = Vec::new();
    for id in webhook_ids {
        let Some(svg) = crate::trace::waterfall_svg_from_file(&segments, id) else {
            continue;
        };
        let file: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
            + ".svg";
        std::fs::write(dir.join(&file), svg)
            .map_err(|e| CliError::Failed(format!("trace {id}: {e}")))?;
        drawn.push((id.clone(), file));
    }
    Ok(drawn)
}

/// The dashboard page with a list of the sampled webhooks, each linked to its waterfall.
fn with_trace_links(page: String, drawn: &[(String, String)]) -> String {
    if drawn.is_empty() {
        return page;
    }
    let mut section = String::from(
        "<section id=\"traces\"><h2>Traces of this run's webhooks</h2>\
         <p>Each webhook's journey as X-Ray would draw it: validator, queue, processor record, bus, \
         event processor (<code>payhook trace WEBHOOK_ID</code> prints the same in a terminal).</p><ul>",
    );
    for (id, file) in drawn {
        section.push_str(&format!(
            "<li><a href=\"{TRACES_DIR}/{file}\">{}</a></li>",
            id.replace('&', "&amp;").replace('<', "&lt;")
        ));
    }
    section.push_str("</ul></section>");
    match page.rfind("</body>") {
        Some(at) => format!("{}{section}{}", &page[..at], &page[at..]),
        None => page + &section,
    }
}

/// Creates a stage of its own for one demo run on `endpoint` — `demo-…` with its own table
/// and bus, so runs and other stages on the same endpoint do not see each other's items or
/// rules — from `config` (its secrets become the SSM parameters, its queue settings the
/// queues') and the rule files.
async fn provision_demo_stage(
    endpoint: &str,
    config: &Config,
    rules_dir: &std::path::Path,
) -> Result<AwsTarget, CliError> {
    crate::oncall::check_http_url(endpoint, "--aws-endpoint")?;
    let stage = format!(
        "demo-{}-{}",
        unix_now() % 1_000_000,
        std::process::id() % 10_000
    );
    let names = StackNames::new(&stage)
        .with_table(format!("webhook-processing-{stage}"))
        .with_event_bus(format!("payment-events-{stage}"));
    let mut plan = StackPlan::new(names.clone());
    plan.max_receive_count = config.queues.max_receive_count;
    plan.visibility_timeout_secs = config.queues.visibility_timeout_seconds;
    plan.rules = load_rules(rules_dir)
        .map_err(|e| CliError::Usage(format!("rules in {}: {e}", rules_dir.display())))?
        .into_iter()
        .map(|(_, rule, _)| rule)
        .collect();
    plan.rule_queues = true;
    plan.parameters = crate::bootstrap::parameters_from_config(&names, config);
    let sdk = crate::bootstrap::aws_sdk_config(Some(endpoint), Some(&config.aws.region)).await;
    provision(&sdk, &plan, |_| {})
        .await
        .map_err(|e| CliError::Failed(format!("creating the demo stage on {endpoint}: {e}")))?;
    Ok(AwsTarget {
        endpoint: endpoint.to_owned(),
        region: config.aws.region.clone(),
        names,
    })
}

/// Joins futures without pulling in the `futures` crate: they run concurrently on the runtime.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// Checks the books: every accepted webhook is PROCESSED (published exactly once, recorded with
/// its rules) or FAILED with its message in its provider's DLQ; nothing is left in between.
pub async fn reconcile(stack: &Stack, accepted: &[String], report: &mut DemoReport) {
    let mut dlq_ids: Vec<String> = Vec::new();
    for provider in Provider::ALL {
        match stack.dlq_messages(provider).await {
            Ok(messages) => dlq_ids.extend(messages.into_iter().filter_map(|m| m.webhook_id)),
            Err(e) => report
                .problems
                .push(format!("{provider} DLQ could not be read: {e}")),
        }
    }
    report.dlq = dlq_ids.len();
    // Rules recorded on PROCESSED items (only this run's webhooks: a table on an endpoint may
    // hold others).
    let mut recorded: u64 = 0;
    for id in accepted {
        match stack.status(id).await {
            Some(item) if item.status == Status::Processed => {
                report.processed += 1;
                recorded += item.matched_rules.len() as u64;
                let settled = matches!(item.payment_effect.as_deref(), Some("unchanged" | "stale"));
                match (item.matched_rules.is_empty(), settled) {
                    (true, true) => report.settled += 1,
                    (false, false) => {}
                    (true, false) => report
                        .problems
                        .push(format!("{id}: PROCESSED without a matched rule")),
                    (false, true) => report.problems.push(format!(
                        "{id}: changed nothing for its payment, yet a rule recorded it"
                    )),
                }
            }
            Some(item) if item.status == Status::Failed => {
                report.failed += 1;
                if !dlq_ids.contains(id) {
                    report
                        .problems
                        .push(format!("{id}: FAILED but not in the DLQ"));
                }
            }
            Some(item) => report.problems.push(format!("{id}: ended {}", item.status)),
            None => report
                .problems
                .push(format!("{id}: accepted but never recorded")),
        }
    }
    for id in &dlq_ids {
        if !accepted.contains(id) {
            report
                .problems
                .push(format!("{id}: in the DLQ but never accepted"));
        }
    }
    report.published = stack.put_count();
    let mut delivered = 0;
    for (rule, stats) in stack.rule_stats() {
        delivered += stats.delivered;
        report.processed_by_rule.insert(rule, stats.delivered);
    }
    // A delivery that did not add a rule to a PROCESSED item was absorbed as a repeat.
    report.absorbed = delivered.saturating_sub(recorded);
    // Each webhook that changed its payment publishes one business event; the settled ones
    // publish none. Every publication beyond that (a retry after a crash, a take-over) must
    // have been absorbed. Deliveries can exceed publications (a rule's queue delivers at least
    // once), so absorbed repeats may outnumber the extra publications, never the reverse.
    let publishing = (report.processed - report.settled) as u64;
    if report.published < publishing || report.published - publishing > report.absorbed {
        report.problems.push(format!(
            "{} events published for {} processed webhooks that changed their payment and {} absorbed repeats: an event was lost or a repeat was recorded",
            report.published, publishing, report.absorbed
        ));
    }
}

/// Checks each booked payment's record: captured once for the amount sent, refunded by exactly
/// the expected deltas, whatever updates and stale copies arrived in between.
pub async fn check_payments(stack: &Stack, booked: &[BookedPayment], report: &mut DemoReport) {
    use payhook_core::payment::BusinessEventType;
    for b in booked {
        let id = format!("{} payment {}", b.provider, b.payment_id);
        let Some(record) = stack.payment(b.provider, &b.payment_id).await else {
            report.problems.push(format!("{id}: no payment record"));
            continue;
        };
        report.payments_checked += 1;
        let events: Vec<_> = record.applied.iter().flat_map(|a| &a.events).collect();
        let succeeded = events
            .iter()
            .filter(|e| e.event_type == BusinessEventType::PaymentSucceeded)
            .count();
        let refunds: Vec<i64> = events
            .iter()
            .filter(|e| e.event_type == BusinessEventType::PaymentRefunded)
            .filter_map(|e| e.refund_delta_minor)
            .collect();
        if succeeded != 1 || record.captured_minor != Some(b.captured_minor) {
            report.problems.push(format!(
                "{id}: {succeeded} payment.succeeded, captured {:?} (expected one, {})",
                record.captured_minor, b.captured_minor
            ));
        }
        if refunds != b.refunds {
            report.problems.push(format!(
                "{id}: payment.refunded deltas {refunds:?} (expected {:?})",
                b.refunds
            ));
        }
        for e in events {
            *report
                .business_events
                .entry(e.event_type.as_str().to_owned())
                .or_default() += 1;
        }
    }
}

/// Prints the summary table.
pub fn print_report(report: &DemoReport, run_dir_hint: &str) {
    println!("payhook demo — summary (ports: {})", report.backend);
    println!("  {:<34} {:>6}", "requests sent", report.sent);
    for (status, n) in &report.by_status {
        println!("  {:<34} {:>6}", format!("  HTTP {status}"), n);
    }
    println!(
        "  {:<34} {:>6}",
        "accepted (queued, distinct)", report.accepted
    );
    println!("  {:<34} {:>6}", "duplicates (200)", report.duplicates);
    println!("  {:<34} {:>6}", "ignored types (200)", report.ignored);
    for (reason, n) in &report.rejected_by_reason {
        println!("  {:<34} {:>6}", format!("rejected: {reason}"), n);
    }
    println!("  {:<34} {:>6}", "published to the bus", report.published);
    println!(
        "  {:<34} {:>6}",
        "repeats absorbed (after a crash)", report.absorbed
    );
    println!("  {:<34} {:>6}", "processed (PROCESSED)", report.processed);
    for (rule, n) in &report.processed_by_rule {
        println!("  {:<34} {:>6}", format!("  by rule {rule}"), n);
    }
    println!(
        "  {:<34} {:>6}",
        "  of which nothing new (settled)", report.settled
    );
    println!(
        "  {:<34} {:>6}",
        "payments booked and checked", report.payments_checked
    );
    for (event_type, n) in &report.business_events {
        println!("  {:<34} {:>6}", format!("  {event_type}"), n);
    }
    println!("  {:<34} {:>6}", "failed (FAILED)", report.failed);
    println!("  {:<34} {:>6}", "in the DLQs", report.dlq);
    if report.balanced() {
        println!("books balance: every accepted webhook is PROCESSED exactly once or in the DLQ");
    } else {
        println!("BOOKS DO NOT BALANCE:");
        if !report.idle {
            println!("  - the pipeline did not go idle in time");
        }
        for p in &report.problems {
            println!("  - {p}");
        }
    }
    println!("logs, metrics, traces and summary.json in {run_dir_hint}");
}

/// Runs `payhook demo`; exit 0 only when the books balance.
pub async fn run(args: DemoArgs) -> Result<i32, CliError> {
    let report = run_demo(&args).await?;
    let hint = args
        .run_dir
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "runs/".to_owned());
    print_report(&report, &hint);
    Ok(if report.balanced() { 0 } else { 1 })
}
