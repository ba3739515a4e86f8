//! `payhook serve`: runs the local stack on 127.0.0.1 until interrupted.
//!
//! In memory by default; with `--aws-endpoint URL` (or `aws.endpoint_url` in the
//! configuration) every port uses the AWS adapters against that endpoint — a moto server or
//! LocalStack holding the stage `aws.stage` that `payhook bootstrap --aws-endpoint URL` created.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::CliError;
use payhook_local::config::Config;
use payhook_local::faults::Faults;
use payhook_local::http::FrontDoor;
use payhook_local::stack::{AwsTarget, Stack, StackOptions};

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
    /// Run every port on the AWS adapters against this AWS-compatible endpoint (moto server,
    /// LocalStack) instead of in memory; the stage (aws.stage of the config) must have been
    /// created there with `payhook bootstrap --aws-endpoint URL`. Default: aws.endpoint_url of
    /// the config, else in memory.
    #[arg(long, value_name = "URL")]
    pub aws_endpoint: Option<String>,
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
        .unwrap_or_else(|| payhook_local::run_dir::fresh("serve"));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", args.addr)))?;
    let endpoint = args
        .aws_endpoint
        .clone()
        .or_else(|| config.aws.endpoint_url.clone())
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty());
    if let Some(url) = &endpoint {
        crate::commands::oncall::check_http_url(url, "--aws-endpoint")?;
    }
    let aws = endpoint.map(|url| AwsTarget::from_config(url, &config));
    let stack = Stack::start(StackOptions {
        config,
        run_dir: run_dir.clone(),
        rules_dir: crate::defaults::rules_dir(&args.rules_dir)?,
        faults: Faults::default(),
        aws,
    })
    .await?;
    let front = FrontDoor::serve(stack.clone(), listener)?;
    println!(
        "payhook serve: POST http://{0}/webhooks/{{provider}} (x-api-key from the config); admin at http://{0}/_payhook/stats; ports: {2}; run directory {1}",
        front.addr,
        run_dir.display(),
        stack.backend_name()
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("payhook serve: stopping");
    drop(front);
    stack.shutdown().await;
    Ok(0)
}
