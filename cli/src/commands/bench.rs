//! `payhook bench`: a bounded load run of the whole local pipeline on loopback. It starts the
//! stack (API Gateway stand-in, queues, processors, bus, event processor, with telemetry on)
//! in this process and the load generator in a process of its own (this binary again, with the
//! hidden `bench-load` command), so the peak RSS reported is the stack's alone. The load
//! generator pre-signs a mix of Stripe, Square and PayPal webhooks, posts them with a fixed
//! number of concurrent connections and reports their ingress latencies and the ids accepted;
//! the stack then waits until every one is processed and reports end-to-end throughput and the
//! reconciliation (zero lost, zero processed twice). The two processes share the machine's
//! cores, so the throughput is conservative.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use cpu_time::ProcessTime;
use payhook_core::Provider;
use serde::{Deserialize, Serialize};

use crate::CliError;
use payhook_devkit::http::Sender;
use payhook_devkit::payloads::{self, PayloadSpec};
use payhook_devkit::unix_now;
use payhook_local::books::{DemoReport, reconcile};
use payhook_local::config::{self, Config};
use payhook_local::faults::Faults;
use payhook_local::http::FrontDoor;
use payhook_local::stack::{Stack, StackOptions};
use payhook_telemetry::RootSampling;

/// Hard ceiling on requests per run, so a typo cannot turn a bench into a flood.
pub const MAX_REQUESTS: usize = 200_000;
/// Most concurrent connections.
pub const MAX_CONCURRENCY: usize = 1024;

/// Arguments of `payhook bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Webhooks to send (at most 200,000).
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Concurrent connections (about 8 per core keeps the latency low; more only queues).
    #[arg(long, default_value_t = 16)]
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
    /// Which webhooks start a sampled trace: `all` (as `payhook serve` by default) or
    /// `xray-default` (as API Gateway samples a deployed stage: the first each second, then
    /// 5 %).
    #[arg(long, default_value = "all")]
    pub trace_sampling: RootSampling,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Webhooks sent.
    pub requests: usize,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Which webhooks started a sampled trace (`all` or `xray-default`).
    pub trace_sampling: String,
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
    /// Peak resident set size of the stack's process (not the load generator's), in MB.
    pub peak_rss_mb: f64,
    /// CPU time (user and system, every thread) the stack's process spent from the load's
    /// start until the pipeline was idle, per webhook processed, in microseconds: the figure
    /// that moves least with how busy the machine is, where the rates move with it.
    pub stack_cpu_us_per_webhook: f64,
    /// The load generator's CPU time while sending, per request, in microseconds (the
    /// signing happens before its clock starts).
    pub load_cpu_us_per_request: f64,
    /// The reconciliation (processed, failed, DLQ, published, problems).
    pub reconciliation: DemoReport,
}

/// Latency percentiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// `seconds` spread over `items`, in microseconds (0 when there are none).
fn per_item_us(seconds: f64, items: usize) -> f64 {
    if items == 0 {
        0.0
    } else {
        seconds * 1e6 / items as f64
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
    requests: usize,
    paypal_percent: usize,
    sender: &Sender,
    addr: std::net::SocketAddr,
) -> Result<Vec<SignedRequest>, CliError> {
    let now = unix_now();
    let mut work = Vec::with_capacity(requests);
    for i in 0..requests {
        let provider = if i % 100 < paypal_percent.min(100) {
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

/// Arguments of the load generator `payhook bench` starts in its own process (a hidden
/// command: `payhook bench-load`). It signs with the secrets of the stack's configuration file.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The stack's configuration file (its secrets sign the webhooks).
    #[arg(long)]
    pub config: PathBuf,
    /// The stack's port on 127.0.0.1.
    #[arg(long)]
    pub port: u16,
    /// Webhooks to send (at most 200,000).
    #[arg(long)]
    pub requests: usize,
    /// Concurrent connections.
    #[arg(long)]
    pub concurrency: usize,
    /// Share of PayPal webhooks in percent.
    #[arg(long)]
    pub paypal_percent: usize,
    /// Stop sending after this many seconds.
    #[arg(long)]
    pub max_seconds: u64,
}

/// The line the load generator prints the moment its clock starts (everything is signed).
const LOAD_STARTED: &str = "started";

/// What the load generator saw, printed as one JSON line after [`LOAD_STARTED`].
#[derive(Debug, Serialize, Deserialize)]
struct LoadReport {
    /// Distinct webhook ids answered 202.
    accepted: Vec<String>,
    /// Answers that were not 202 (or no answer).
    not_accepted: usize,
    /// Seconds from the first send to the last answer.
    ingress_seconds: f64,
    /// Ingress latency percentiles of the accepted ones, in milliseconds.
    latency_ms: Percentiles,
    /// The generator's CPU seconds (every thread) from the first send to the last answer.
    cpu_seconds: f64,
}

/// Runs the load generator: signs every request, prints [`LOAD_STARTED`], sends them with
/// `--concurrency` connections and prints the [`LoadReport`].
pub async fn run_load(args: LoadArgs) -> Result<i32, CliError> {
    check_requests(args.requests)?;
    let config = Config::load(Some(&args.config))?;
    let sender = config.sender()?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let work = Arc::new(signed_requests(
        args.requests,
        args.paypal_percent,
        &sender,
        addr,
    )?);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{LOAD_STARTED}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Failed(format!("stdout: {e}")))?;
    let started = Instant::now();
    let cpu_started = ProcessTime::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut tasks = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency.clamp(1, MAX_CONCURRENCY) {
        let (work, next, sender) = (Arc::clone(&work), Arc::clone(&next), sender.clone());
        tasks.push(tokio::spawn(load_worker(work, next, sender, deadline)));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    let mut accepted = Vec::with_capacity(args.requests);
    let mut not_accepted = 0;
    for t in tasks {
        let (l, a, r) = t
            .await
            .map_err(|e| CliError::Failed(format!("load task: {e}")))?;
        latencies.extend(l);
        accepted.extend(a);
        not_accepted += r;
    }
    let ingress_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_started.elapsed().as_secs_f64();
    accepted.sort();
    accepted.dedup();
    let report = LoadReport {
        accepted,
        not_accepted,
        ingress_seconds,
        latency_ms: percentiles(latencies),
        cpu_seconds,
    };
    let line = serde_json::to_string(&report).map_err(|e| CliError::Failed(e.to_string()))?;
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Failed(format!("stdout: {e}")))?;
    Ok(0)
}

fn check_requests(requests: usize) -> Result<(), CliError> {
    if requests == 0 || requests > MAX_REQUESTS {
        return Err(CliError::Usage(format!(
            "--requests must be 1..={MAX_REQUESTS}"
        )));
    }
    Ok(())
}

/// Starts the load generator (this binary's `bench-load`) against the stack on `port`; returns
/// when its clock starts, with the child and its output still to read.
fn start_load(
    args: &BenchArgs,
    config: &Config,
    port: u16,
) -> Result<(std::process::Child, BufReader<std::process::ChildStdout>), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Failed(format!("cannot find this executable: {e}")))?;
    let mut child = Command::new(exe)
        .arg("bench-load")
        .arg("--config")
        .arg(&config.path)
        .args(["--port", &port.to_string()])
        .args(["--requests", &args.requests.to_string()])
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--paypal-percent", &args.paypal_percent.to_string()])
        .args(["--max-seconds", &args.max_seconds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| CliError::Failed(format!("cannot start the load generator: {e}")))?;
    let mut stdout =
        BufReader::new(child.stdout.take().ok_or_else(|| {
            CliError::Failed("the load generator's output is not piped".to_owned())
        })?);
    let mut line = String::new();
    match stdout.read_line(&mut line) {
        Ok(_) if line.trim_end() == LOAD_STARTED => Ok((child, stdout)),
        outcome => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            Err(CliError::Failed(format!(
                "the load generator did not start ({outcome:?}, {status})"
            )))
        }
    }
}

/// Reads the load generator's report and waits for it to exit.
fn finish_load(
    mut child: std::process::Child,
    mut stdout: BufReader<std::process::ChildStdout>,
) -> Result<LoadReport, CliError> {
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    let status = child
        .wait()
        .map_err(|e| CliError::Failed(format!("the load generator: {e}")))?;
    match read {
        Ok(_) if status.success() => serde_json::from_str(&line)
            .map_err(|e| CliError::Failed(format!("the load generator's report: {e}"))),
        _ => Err(CliError::Failed(format!(
            "the load generator failed ({status})"
        ))),
    }
}

/// Runs the load and returns the figures.
pub async fn run_bench(args: &BenchArgs) -> Result<BenchReport, CliError> {
    check_requests(args.requests)?;
    let concurrency = args.concurrency.clamp(1, MAX_CONCURRENCY);
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
    config.tracing.sampling = args.trace_sampling;
    let stack = Stack::start(StackOptions {
        config: config.clone(),
        run_dir: run_dir.clone(),
        rules_dir: crate::defaults::rules_dir(&args.rules_dir)?,
        faults: Faults::default(),
        aws: None,
    })
    .await?;
    let front = FrontDoor::serve(Arc::clone(&stack), listener)?;

    // The load generator signs everything before its clock starts; ours starts with its.
    let load = {
        let (args, config) = (args.clone(), config.clone());
        tokio::task::spawn_blocking(move || {
            let (child, stdout) = start_load(&args, &config, addr.port())?;
            let started = (Instant::now(), ProcessTime::now());
            Ok::<_, CliError>((started, finish_load(child, stdout)?))
        })
    };
    let ((started, cpu_started), load) = load
        .await
        .map_err(|e| CliError::Failed(format!("load generator task: {e}")))??;
    let deadline = started + Duration::from_secs(args.max_seconds);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let idle_since = stack.idle_since(remaining).await;
    let idle = idle_since.is_some();
    // Until the pipeline went idle, not until the calm stretch confirming it ended.
    let end_to_end = idle_since.map_or_else(
        || started.elapsed(),
        |at| at.into_std().saturating_duration_since(started),
    );
    let stack_cpu = cpu_started.elapsed();
    // Before the reconciliation reads every item back.
    let peak_rss_mb = peak_rss_mb();

    let mut reconciliation = DemoReport::empty();
    reconciliation.sent = args.requests;
    reconciliation.accepted = load.accepted.len();
    reconciliation.idle = idle;
    reconcile(&stack, &load.accepted, &mut reconciliation).await;
    drop(front);
    stack.shutdown().await;

    let report = BenchReport {
        requests: args.requests,
        concurrency,
        trace_sampling: args.trace_sampling.to_string(),
        accepted: load.accepted.len(),
        not_accepted: load.not_accepted,
        ingress_seconds: load.ingress_seconds,
        end_to_end_seconds: end_to_end.as_secs_f64(),
        ingress_per_second: load.accepted.len() as f64 / load.ingress_seconds,
        end_to_end_per_second: reconciliation.processed as f64 / end_to_end.as_secs_f64(),
        latency_ms: load.latency_ms,
        peak_rss_mb,
        stack_cpu_us_per_webhook: per_item_us(stack_cpu.as_secs_f64(), reconciliation.processed),
        load_cpu_us_per_request: per_item_us(load.cpu_seconds, args.requests),
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
