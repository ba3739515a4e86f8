//! `payhook bench`: a bounded load run of the whole local pipeline on loopback. It starts the
//! stack (API Gateway stand-in, queues, processors, bus, event processor, with telemetry on)
//! in this process, pre-signs a mix of Stripe, Square and PayPal webhooks, posts them with a
//! fixed number of concurrent connections, waits until every one is processed, and reports
//! ingress latency percentiles, end-to-end throughput, peak RSS and the reconciliation (zero
//! lost, zero processed twice). The load generator shares the process and its two cores with
//! the stack, so the figures are conservative.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use payhook_core::Provider;
use serde::Serialize;

use crate::CliError;
use payhook_devkit::http::Sender;
use payhook_devkit::payloads::{self, PayloadSpec};
use payhook_devkit::unix_now;
use payhook_local::books::{DemoReport, reconcile};
use payhook_local::config;
use payhook_local::faults::Faults;
use payhook_local::http::FrontDoor;
use payhook_local::stack::{Stack, StackOptions};

/// Hard ceiling on requests per run, so a typo cannot turn a bench into a flood.
pub const MAX_REQUESTS: usize = 200_000;

/// Arguments of `payhook bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Webhooks to send (at most 200,000).
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Give up after this many seconds (sending and draining together).
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,
    /// Share of PayPal webhooks in percent (their RSA signing is done before the clock starts).
    #[arg(long, default_value_t = 10)]
    pub paypal_percent: usize,
    /// The routing rules.
    #[arg(long, default_value = "rules")]
    pub rules_dir: PathBuf,
    /// Where logs, metrics, traces and bench.json go (default: runs/bench-<time>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Webhooks sent.
    pub requests: usize,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Answers that were 202.
    pub accepted: usize,
    /// Answers that were not 202.
    pub not_accepted: usize,
    /// Seconds from the first send to the last answer.
    pub ingress_seconds: f64,
    /// Seconds from the first send until the pipeline was idle with everything processed.
    pub end_to_end_seconds: f64,
    /// Webhooks per second answered.
    pub ingress_per_second: f64,
    /// Webhooks per second processed end to end.
    pub end_to_end_per_second: f64,
    /// Ingress latency percentiles in milliseconds.
    pub latency_ms: Percentiles,
    /// Peak resident set size of this process, in MB.
    pub peak_rss_mb: f64,
    /// The reconciliation (processed, failed, DLQ, published, problems).
    pub reconciliation: DemoReport,
}

/// Latency percentiles.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

fn percentiles(mut samples: Vec<f64>) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)]
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// Peak RSS of this process (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// A request of the run: its URL, signed headers and body.
type SignedRequest = (String, Vec<(String, String)>, bytes::Bytes);

/// Every request of the run, built and signed: its URL, headers and body. The providers
/// alternate Stripe and Square, with `--paypal-percent` of each hundred PayPal; the amounts
/// cycle through the three tiers.
fn signed_requests(
    args: &BenchArgs,
    sender: &Sender,
    addr: std::net::SocketAddr,
) -> Result<Vec<SignedRequest>, CliError> {
    let now = unix_now();
    let mut work = Vec::with_capacity(args.requests);
    for i in 0..args.requests {
        let provider = if i % 100 < args.paypal_percent.min(100) {
            Provider::Paypal
        } else if i % 2 == 0 {
            Provider::Stripe
        } else {
            Provider::Square
        };
        let amount = ["4999.00", "250.00", "12.50"][i % 3];
        let payload = payloads::build(&PayloadSpec::new(provider).amount(amount, "USD").at(now))?;
        let headers = sender.signer().sign(provider, &payload.body, now)?;
        let url = format!("http://{addr}/webhooks/{}", provider.as_str());
        work.push((url, headers, bytes::Bytes::from(payload.body)));
    }
    Ok(work)
}

/// One of the load's concurrent senders: takes the next request until all are taken or the
/// deadline passes; returns the latencies of the accepted ones (ms), their webhook ids and how
/// many were not accepted.
async fn load_worker(
    work: Arc<Vec<SignedRequest>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    sender: Sender,
    deadline: Instant,
) -> (Vec<f64>, Vec<String>, usize) {
    let mut latencies = Vec::new();
    let mut accepted = Vec::new();
    let mut refused = 0usize;
    loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if i >= work.len() || Instant::now() > deadline {
            break;
        }
        let (url, headers, body) = &work[i];
        let t = Instant::now();
        match sender.post(url, headers, body.clone()).await {
            Ok((202, text)) => {
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                if let Some(id) = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["webhook_id"].as_str().map(str::to_owned))
                {
                    accepted.push(id);
                }
            }
            _ => refused += 1,
        }
    }
    (latencies, accepted, refused)
}

/// Runs the load and returns the figures.
pub async fn run_bench(args: &BenchArgs) -> Result<BenchReport, CliError> {
    if args.requests == 0 || args.requests > MAX_REQUESTS {
        return Err(CliError::Usage(format!(
            "--requests must be 1..={MAX_REQUESTS}"
        )));
    }
    let concurrency = args.concurrency.clamp(1, 1024);
    let run_dir = args
        .run_dir
        .clone()
        .unwrap_or_else(|| payhook_local::run_dir::fresh("bench"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CliError::Failed(format!("cannot bind 127.0.0.1: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut config = config::init(&run_dir, addr.port(), true, unix_now())?;
    config.api.daily_quota = u64::MAX;
    let stack = Stack::start(StackOptions {
        config: config.clone(),
        run_dir: run_dir.clone(),
        rules_dir: crate::defaults::rules_dir(&args.rules_dir)?,
        faults: Faults::default(),
        aws: None,
    })
    .await?;
    let front = FrontDoor::serve(Arc::clone(&stack), listener)?;

    // Build and sign everything before the clock starts.
    let sender = config.sender()?;
    let work = Arc::new(signed_requests(args, &sender, addr)?);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (work, next, sender) = (Arc::clone(&work), Arc::clone(&next), sender.clone());
        tasks.push(tokio::spawn(load_worker(work, next, sender, deadline)));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    let mut accepted = Vec::with_capacity(args.requests);
    let mut refused = 0;
    for t in tasks {
        let (l, a, r) = t
            .await
            .map_err(|e| CliError::Failed(format!("load task: {e}")))?;
        latencies.extend(l);
        accepted.extend(a);
        refused += r;
    }
    let ingress = started.elapsed();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let idle = stack.wait_idle(remaining).await;
    let end_to_end = started.elapsed();

    let mut reconciliation = DemoReport::empty();
    reconciliation.sent = args.requests;
    accepted.sort();
    accepted.dedup();
    reconciliation.accepted = accepted.len();
    reconciliation.idle = idle;
    reconcile(&stack, &accepted, &mut reconciliation).await;
    drop(front);
    stack.shutdown().await;

    let report = BenchReport {
        requests: args.requests,
        concurrency,
        accepted: accepted.len(),
        not_accepted: refused,
        ingress_seconds: ingress.as_secs_f64(),
        end_to_end_seconds: end_to_end.as_secs_f64(),
        ingress_per_second: accepted.len() as f64 / ingress.as_secs_f64(),
        end_to_end_per_second: reconciliation.processed as f64 / end_to_end.as_secs_f64(),
        latency_ms: percentiles(latencies),
        peak_rss_mb: peak_rss_mb(),
        reconciliation,
    };
    std::fs::write(
        run_dir.join("bench.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| CliError::Failed(format!("bench.json: {e}")))?;
    Ok(report)
}

/// Runs `payhook bench`; exit 0 when nothing was lost or processed twice.
pub async fn run(args: BenchArgs) -> Result<i32, CliError> {
    let report = run_bench(&args).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    let ok = report.not_accepted == 0
        && report.reconciliation.balanced()
        && report.reconciliation.processed == report.accepted;
    Ok(if ok { 0 } else { 1 })
}
