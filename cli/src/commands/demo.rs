//! `payhook demo`: starts the local stack on a free port, sends a realistic mix of webhooks
//! from all three providers (successes, failures, refunds, disputes, concurrent duplicates,
//! bad signatures, an unsupported type, a request with an API key the usage plan does not hold
//! (sent, like every request, as `?key=` in the URL), one poison message and
//! one processor crash right after publishing),
//! waits until the pipeline is idle, prints a summary and checks the books: every accepted
//! webhook ends `PROCESSED` exactly once, or `FAILED` with its message in the DLQ. The run itself
//! is the local stack's (`cli/local/src/demo.rs`), the dashboard page and the traces of the run
//! are drawn by `payhook-dashboard` (`cli/dashboard/src/run_page.rs`); this command prints the
//! summary.

use std::path::PathBuf;

use clap::Args;
use payhook_local::books::DemoReport;
use payhook_local::demo::{DemoOptions, DemoRun};

use crate::CliError;

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

/// Runs the demo: returns the report (the caller decides the exit code).
pub async fn run_demo(args: &DemoArgs) -> Result<DemoReport, CliError> {
    let run_dir = args
        .run_dir
        .clone()
        .unwrap_or_else(|| payhook_local::run_dir::fresh("demo"));
    // Outside the repository: the rules (and the dashboards and alarms beside them) built in.
    let rules_dir = crate::defaults::rules_dir(&args.rules_dir)?;
    let DemoRun {
        report,
        accepted_ids,
    } = payhook_local::demo::run(&DemoOptions {
        run_dir: run_dir.clone(),
        rules_dir: rules_dir.clone(),
        timeout: args.timeout,
        aws_endpoint: args.aws_endpoint.clone(),
    })
    .await?;
    // The dashboard files drawn with this run's metrics, to look at before deploying, with
    // each accepted webhook's trace.
    let root = rules_dir.parent().unwrap_or(std::path::Path::new("."));
    payhook_dashboard::run_page(
        &root.join("dashboards"),
        &root.join("alarms"),
        &run_dir,
        &accepted_ids,
    )?;
    Ok(report)
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
