//! `payhook bootstrap --aws-endpoint URL`: creates a stage's queues, dead-letter queues, status
//! table, event bus, routing rules (from `rules/`) and SSM parameters (from the configuration's
//! provider secrets) on an AWS-compatible endpoint — moto server or LocalStack — so
//! `payhook serve --aws-endpoint URL`, `payhook status` and `payhook dlq` have a stack to talk to.
//!
//! The names and settings are the Pulumi program's (see [`payhook_aws::provision`]), so a
//! bootstrapped stage looks like a deployed one to the on-call tools. Each rule also gets a
//! standard queue `payhook-{stage}-rule-{rule}` as its target, since there are no functions
//! for EventBridge to invoke (`--no-rule-queues` leaves them out).
//!
//! Every resource is read before it is written: running bootstrap again reports each one
//! `unchanged` and writes nothing; one whose settings drifted is `updated`. A real AWS account
//! is deployed with Pulumi (`infra/`), not with this command, so an endpoint is required.
//!
//! Output: one line per resource (`created|updated|unchanged  KIND  NAME`) and a total. Exit 0
//! when everything is in place, 2 on a usage error or a failed AWS call (what was done so far
//! stays; running again continues).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use payhook_aws::provision::{
    self, DEFAULT_LOCAL_STAGE, Outcome, StackNames, VISIBILITY_TIMEOUT_SECONDS,
};
use payhook_aws::status_store::DEFAULT_TABLE_NAME;
use payhook_core::ports::PAYMENT_EVENTS_BUS;
use payhook_local::config::{CONFIG_FILE_NAME, CONFIG_PATH_ENV, Config};
use payhook_local::stage::{provision_stage, stage_plan};

use crate::CliError;

/// Arguments of `payhook bootstrap`.
#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    /// The AWS-compatible endpoint to create the stage on (moto server, LocalStack), e.g.
    /// http://127.0.0.1:5000. Default: aws.endpoint_url of the configuration, else
    /// $AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    pub aws_endpoint: Option<String>,
    /// The configuration whose [aws] section, [queues] max_receive_count and provider secrets
    /// are used (default: $PAYHOOK_CONFIG, else ./payhook.toml when it exists; without one no
    /// SSM parameters are created).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The stage: part of every queue and parameter name (default: aws.stage of the
    /// configuration, else `local`).
    #[arg(long)]
    pub stage: Option<String>,
    /// The region (default: aws.region of the configuration, else $AWS_REGION, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Where the rule files are.
    #[arg(long, value_name = "DIR", default_value = "rules")]
    pub rules_dir: PathBuf,
    /// The status table's name.
    #[arg(long, default_value = DEFAULT_TABLE_NAME)]
    pub table: String,
    /// The event bus's name.
    #[arg(long, default_value = PAYMENT_EVENTS_BUS)]
    pub event_bus: String,
    /// Receives before a provider queue's message goes to its DLQ (default: queues.
    /// max_receive_count of the configuration, else 5).
    #[arg(long, value_name = "N")]
    pub max_receive_count: Option<u32>,
    /// The provider queues' visibility timeout in seconds (the deployed value by default; a
    /// few seconds make failed messages come back quickly in local runs).
    #[arg(long, value_name = "SECONDS", default_value_t = VISIBILITY_TIMEOUT_SECONDS)]
    pub visibility_timeout: u32,
    /// Do not give each rule a queue as its target.
    #[arg(long)]
    pub no_rule_queues: bool,
    /// Do not create the SSM parameters, even when the configuration has secrets.
    #[arg(long)]
    pub no_parameters: bool,
}

/// Loads the configuration named by `--config`; without it, the one `$PAYHOOK_CONFIG` names or
/// `./payhook.toml` when it exists (`None` when neither does).
fn optional_config(path: Option<&Path>) -> Result<Option<Config>, CliError> {
    if let Some(path) = path {
        return Ok(Some(Config::load(Some(path))?));
    }
    let default = std::env::var(CONFIG_PATH_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CONFIG_FILE_NAME));
    if default.is_file() {
        Ok(Some(Config::load(Some(&default))?))
    } else {
        Ok(None)
    }
}

/// Runs `payhook bootstrap`, printing progress on stdout; returns the exit code.
pub async fn run(args: BootstrapArgs) -> Result<i32, CliError> {
    let mut stdout = std::io::stdout();
    run_with_output(args, &mut stdout).await
}

/// [`run`] writing its lines to `out`.
pub async fn run_with_output(
    args: BootstrapArgs,
    out: &mut (dyn Write + Send),
) -> Result<i32, CliError> {
    let config = optional_config(args.config.as_deref())?;
    let endpoint = args
        .aws_endpoint
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.aws.endpoint_url.clone()))
        .or_else(|| std::env::var(payhook_aws::config::ENDPOINT_URL_ENV).ok())
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .ok_or_else(|| {
            CliError::Usage(
                "bootstrap needs --aws-endpoint URL (a moto server or LocalStack); a real AWS \
                 account is deployed with Pulumi (infra/)"
                    .into(),
            )
        })?;
    crate::commands::oncall::check_http_url(&endpoint, "--aws-endpoint")?;
    let stage = args
        .stage
        .clone()
        .or_else(|| config.as_ref().map(|c| c.aws.stage.clone()))
        .unwrap_or_else(|| DEFAULT_LOCAL_STAGE.to_owned());
    provision::validate_stage(&stage).map_err(|e| CliError::Usage(e.to_string()))?;
    let region = args
        .region
        .clone()
        .or_else(|| config.as_ref().map(|c| c.aws.region.clone()));

    let dir = crate::defaults::rules_dir(&args.rules_dir)?;
    let names = StackNames::new(&stage)
        .with_table(&args.table)
        .with_event_bus(&args.event_bus);
    let mut plan = stage_plan(names, &dir, config.as_ref())?;
    if let Some(n) = args.max_receive_count {
        plan.max_receive_count = n;
    }
    plan.visibility_timeout_secs = args.visibility_timeout;
    plan.rule_queues = !args.no_rule_queues;
    if args.no_parameters {
        plan.parameters.clear();
    } else if config.is_none() {
        eprintln!(
            "payhook bootstrap: no configuration file, so no SSM parameters are created (run \
             `payhook config init`, or pass --config FILE)"
        );
    }
    plan.validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;

    let write_failed = |e: std::io::Error| CliError::Failed(format!("cannot write output: {e}"));
    writeln!(
        out,
        "payhook bootstrap: stage `{stage}` on {endpoint} (region {})",
        region.as_deref().unwrap_or("from the environment")
    )
    .map_err(write_failed)?;
    let mut write_error = None;
    let result = provision_stage(&endpoint, region.as_deref(), &plan, |line| {
        let written = writeln!(
            out,
            "{:<9} {:<11} {}",
            line.outcome.as_str(),
            line.kind.as_str(),
            line.name
        )
        .and_then(|()| out.flush());
        if let Err(e) = written {
            write_error.get_or_insert(e);
        }
    })
    .await;
    if let Some(e) = write_error {
        return Err(write_failed(e));
    }
    let done = result.map_err(|e| {
        CliError::Failed(format!(
            "bootstrap stopped: {e} ({}; what was created so far stays, running again continues)",
            e.code()
        ))
    })?;
    let count = |outcome| done.iter().filter(|l| l.outcome == outcome).count();
    writeln!(
        out,
        "payhook bootstrap: {} resources: {} created, {} updated, {} unchanged",
        done.len(),
        count(Outcome::Created),
        count(Outcome::Updated),
        count(Outcome::Unchanged)
    )
    .map_err(write_failed)?;
    Ok(0)
}
