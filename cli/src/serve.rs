//! `payhook serve`: runs the local stack on 127.0.0.1 until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::config::Config;
use crate::local::faults::Faults;
use crate::local::http::FrontDoor;
use crate::local::stack::{Stack, StackOptions};
use crate::{CliError, unix_now};

/// Arguments of `payhook serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The config file (default: $PAYHOOK_CONFIG or ./payhook.toml; `payhook config init` writes one).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to listen (loopback only).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub addr: SocketAddr,
    /// Where logs, EMF metrics and X-Ray segments go (default: runs/serve-<time>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// The routing rules.
    #[arg(long, default_value = "rules")]
    pub rules_dir: PathBuf,
}

/// Runs `payhook serve` until Ctrl-C.
pub async fn run(args: ServeArgs) -> Result<i32, CliError> {
    if !args.addr.ip().is_loopback() {
        return Err(CliError::Usage(format!(
            "--addr {} is not a loopback address; the local stack listens on 127.0.0.1 only",
            args.addr
        )));
    }
    let config = Config::load(args.config.as_deref())?;
    let run_dir = args
        .run_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/serve-{}", unix_now())));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", args.addr)))?;
    let stack = Stack::start(StackOptions {
        config,
        run_dir: run_dir.clone(),
        rules_dir: args.rules_dir.clone(),
        faults: Faults::default(),
    })
    .await?;
    let front = FrontDoor::serve(stack.clone(), listener)?;
    println!(
        "payhook serve: POST http://{0}/webhooks/{{provider}} (x-api-key from the config); admin at http://{0}/_payhook/stats; run directory {1}",
        front.addr,
        run_dir.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("payhook serve: stopping");
    drop(front);
    stack.shutdown().await;
    Ok(0)
}
