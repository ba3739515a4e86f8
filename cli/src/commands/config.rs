//! `payhook config init|show`: writes a demo configuration or prints the effective one. The
//! configuration itself (schema, environment overrides, rendering, generation) is the local
//! stack's: `cli/local/src/config.rs` (`payhook_local::config`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use payhook_devkit::unix_now;
use payhook_local::config::{
    Config, DEFAULT_PORT, DEMO_CHAIN_FILE, DEMO_SIGNING_KEY_FILE, DEMO_TRUST_ANCHOR_FILE, init,
};

use crate::CliError;

/// Arguments of `payhook config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do with the configuration.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `payhook config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write payhook.toml with fresh random secrets and a local demo CA for PayPal.
    Init(ConfigInitArgs),
    /// Print the effective configuration (file plus PAYHOOK_… overrides), secrets redacted.
    Show(ConfigShowArgs),
}

/// Arguments of `payhook config init`.
#[derive(Debug, Clone, Args)]
pub struct ConfigInitArgs {
    /// Folder to write payhook.toml and the demo PayPal PEM files into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Replace existing files (and so every secret in them).
    #[arg(long)]
    pub force: bool,
    /// Port of the local stack, for the Square notification URL.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
}

/// Arguments of `payhook config show`.
#[derive(Debug, Clone, Args)]
pub struct ConfigShowArgs {
    /// The configuration file (default: $PAYHOOK_CONFIG, else ./payhook.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `payhook config …`; returns the exit code.
pub async fn run(args: ConfigArgs) -> Result<i32, CliError> {
    match args.command {
        ConfigCommand::Init(args) => run_init(args).await,
        ConfigCommand::Show(args) => run_show(args).await,
    }
}

/// Runs `payhook config init`: 0 when written; refusing to overwrite is a usage error.
pub async fn run_init(args: ConfigInitArgs) -> Result<i32, CliError> {
    let config = init(&args.dir, args.port, args.force, unix_now())?;
    println!(
        "wrote {} with fresh demo secrets, and the local PayPal demo CA \
         ({DEMO_TRUST_ANCHOR_FILE}, {DEMO_CHAIN_FILE}, {DEMO_SIGNING_KEY_FILE})",
        config.path.display()
    );
    println!(
        "next: `payhook serve --config {}`, then `payhook send stripe --config {}`",
        config.path.display(),
        config.path.display()
    );
    Ok(0)
}

/// Runs `payhook config show`: prints the effective configuration with secrets redacted.
pub async fn run_show(args: ConfigShowArgs) -> Result<i32, CliError> {
    let config = Config::load(args.config.as_deref())?;
    print!("{}", config.render(true));
    Ok(0)
}
