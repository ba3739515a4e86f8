//! The `payhook` binary: argument parsing and dispatch.

use std::process::ExitCode;

/// The local stack allocates on every request from several threads at once; glibc's allocator
/// serialises them on its arena locks (seen in profiles of `payhook bench`), mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use payhook::commands::{
    bench, bootstrap, check, config, dashboard, demo, oncall, quarantine, rules_cmd, send, serve,
    sweep, trace, verify,
};

/// payhook: receive payment webhooks from Stripe, PayPal and Square and never lose one.
#[derive(Debug, Parser)]
#[command(name = "payhook", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline locally, send a realistic mix of webhooks and check the books.
    Demo(demo::DemoArgs),
    /// Run the local stack (API Gateway stand-in, queues, processors, bus) on 127.0.0.1.
    Serve(serve::ServeArgs),
    /// A bounded load run of the local pipeline on loopback (latency, throughput, RSS, books).
    Bench(bench::BenchArgs),
    /// The load generator `payhook bench` runs in a process of its own.
    #[command(hide = true)]
    BenchLoad(bench::LoadArgs),
    /// Create a stage's queues, DLQs, table, bus, rules and SSM parameters on an AWS-compatible
    /// endpoint (moto, LocalStack) from the repo's files.
    Bootstrap(bootstrap::BootstrapArgs),
    /// Show one webhook's status item (exit 0 found, 1 not found).
    Status(oncall::StatusArgs),
    /// Draw one webhook's trace from a local run's X-Ray segments as a waterfall (exit 0
    /// drawn, 1 no segment names it).
    Trace(trace::TraceArgs),
    /// List or redrive the providers' dead-letter queues.
    #[command(subcommand)]
    Dlq(oncall::DlqCommand),
    /// List, show or replay the webhooks quarantined because they could not be normalised.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCommand),
    /// Sweep the local stack once: find webhooks stuck past their state's threshold, repair
    /// what is safe (exit 0 nothing left unrepaired, 1 otherwise).
    Sweep(sweep::SweepArgs),
    /// Check dashboards/, alarms/, rules/ and runbooks/ against each other and the metric
    /// catalogue before deploying (exit 0 ok, 1 findings, 2 usage error).
    Check(check::CheckArgs),
    /// Draw the dashboard files with a local run's metrics (or a deployed stack's) as one HTML page.
    Dashboard(dashboard::DashboardArgs),
    /// Verify one webhook's signature offline (exit 0 valid, 1 invalid, 2 usage error).
    Verify(verify::VerifyArgs),
    /// Test EventBridge patterns and the rules in rules/ against an event.
    #[command(subcommand)]
    Rules(rules_cmd::RulesCommand),
    /// Write or show the local stack's config (`config init` makes a demo config).
    Config(config::ConfigArgs),
    /// Build a realistic provider webhook, sign it the provider's way and post it.
    Send(send::SendArgs),
}

/// The runtime of the local stack (and of every other command): one worker per core, without
/// tokio's LIFO slot. The slot runs a task woken by another right after it, on the same worker,
/// and no other worker can steal it from there. Every webhook is such a chain (the validator's
/// send wakes a queue poller, its publish wakes a bus worker), so with the slot on one worker
/// held the chain while the other parked: `payhook bench` left both cores idle 17–19 % of its
/// run, and 2–6 % with the slot off, where the end-to-end rate rose by a third.
fn stack_runtime() -> tokio::runtime::Builder {
    #[cfg_attr(not(tokio_unstable), allow(unused_mut))]
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // The API is behind tokio's `tokio_unstable` cfg (set in `.cargo/config.toml`).
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder
}

fn main() -> ExitCode {
    // mimalloc asks the kernel for transparent huge pages, so every fault in its heap zeroes
    // 2 MiB, again each time a freed stretch is given back and reused. Under load the local
    // stack's heap does that all the time: profiles of `payhook bench` showed 4–6 % of the
    // stack's CPU zeroing pages and about 25 MB more memory than with ordinary pages.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let cli = Cli::parse();
    // The load generator runs on one thread: it shares the machine's cores with the stack it
    // measures, and a second worker would only add context switches.
    let mut builder = match cli.command {
        Command::BenchLoad(_) => tokio::runtime::Builder::new_current_thread(),
        _ => stack_runtime(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("payhook: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::BenchLoad(args) => bench::run_load(args).await,
            Command::Bootstrap(args) => bootstrap::run(args).await,
            Command::Status(args) => oncall::run_status(args).await,
            Command::Trace(args) => trace::run(args),
            Command::Dlq(command) => oncall::run_dlq(command).await,
            Command::Quarantine(command) => quarantine::run(command).await,
            Command::Sweep(args) => sweep::run(args).await,
            Command::Check(args) => check::run(args),
            Command::Dashboard(args) => dashboard::run(args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::Rules(command) => rules_cmd::run(command),
            Command::Config(args) => config::run(args).await,
            Command::Send(args) => send::run(args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("payhook: {e}");
            ExitCode::from(2)
        }
    }
}
