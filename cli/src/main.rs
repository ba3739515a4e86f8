//! `payhook`: the command for developers and on-call — the local stack, signature checks,
//! rule tests and the on-call tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod verify;

/// payhook: receive payment webhooks from Stripe, PayPal and Square and never lose one.
#[derive(Debug, Parser)]
#[command(name = "payhook", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify one webhook's signature offline (exit 0 valid, 1 invalid, 2 usage error).
    Verify(verify::VerifyArgs),
}

/// A failure of the command itself (exit 2), as opposed to a negative answer (exit 1).
#[derive(Debug)]
pub(crate) enum CliError {
    /// Wrong or missing arguments or files.
    Usage(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "usage error: {m}"),
        }
    }
}

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("payhook: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Verify(args) => verify::run(args).await,
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
