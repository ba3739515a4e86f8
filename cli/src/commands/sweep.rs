//! `payhook sweep`: one sweep of the running local stack (its admin API,
//! `POST /_payhook/sweep`), as the deployed `sweeper` function runs every 5 minutes: webhooks
//! stuck past their state's threshold are listed with what was done (`reenqueued`,
//! `republished`, `reported` with the reason, `moved_on`, `repair_failed`), and counted as
//! `StuckWebhooks`. `--older-than SECS` uses one threshold for every state (the local stack's
//! timeouts are seconds, not the deployed minutes). Exit 0 when nothing stuck is left
//! unrepaired, 1 otherwise.

use std::io::Write;

use clap::Args;
use http::Method;
use serde::{Deserialize, Serialize};

use crate::CliError;
use crate::commands::oncall::{
    DEFAULT_LOCAL_URL, admin_url, check_http_url, local_api_error, request,
};
use payhook_devkit::http::http_client;

/// Arguments of `payhook sweep`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// The local stack's URL.
    #[arg(long, value_name = "URL", default_value = DEFAULT_LOCAL_URL)]
    pub local: String,
    /// Count an item stuck once its state is this many seconds old, whatever the state
    /// (default: the deployed thresholds).
    #[arg(long, value_name = "SECS")]
    pub older_than: Option<i64>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One stuck webhook in the local admin API's answer to `POST /_payhook/sweep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweptWebhook {
    /// Which webhook.
    pub webhook_id: String,
    /// The state it was stuck in.
    pub state: String,
    /// Its last change.
    pub updated_at: String,
    /// What the sweep did.
    pub action: String,
}

/// The local admin API's answer to `POST /_payhook/sweep` (the sweeper function's summary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalSweep {
    /// Stuck webhooks found.
    pub stuck: usize,
    /// Of those, re-enqueued or republished.
    pub repaired: usize,
    /// States with more stuck webhooks than one sweep handles.
    #[serde(default)]
    pub truncated: Vec<String>,
    /// Each stuck webhook.
    #[serde(default)]
    pub webhooks: Vec<SweptWebhook>,
}

/// Runs `payhook sweep`, printing on stdout; returns the exit code.
pub async fn run(args: SweepArgs) -> Result<i32, CliError> {
    let mut stdout = std::io::stdout();
    run_with_output(args, &mut stdout).await
}

/// [`run`] writing to `out`.
pub async fn run_with_output(
    args: SweepArgs,
    out: &mut (dyn Write + Send),
) -> Result<i32, CliError> {
    check_http_url(&args.local, "--local")?;
    let mut url = url::Url::parse(&admin_url(args.local.trim_end_matches('/'), &["sweep"])?)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(secs) = args.older_than {
        if secs < 0 {
            return Err(CliError::Usage("--older-than must be 0 or more".into()));
        }
        url.query_pairs_mut()
            .append_pair("older_than", &secs.to_string());
    }
    let (status, body) = request(&http_client()?, Method::POST, url.as_str()).await?;
    if status != 200 {
        return Err(local_api_error(url.as_str(), status, &body));
    }
    let swept: LocalSweep = serde_json::from_str(&body)
        .map_err(|e| CliError::Failed(format!("{url} answered an unexpected body: {e}")))?;
    let write = |e: std::io::Error| CliError::Failed(format!("cannot write output: {e}"));
    if args.json {
        writeln!(out, "{body}").map_err(write)?;
    } else {
        for w in &swept.webhooks {
            writeln!(
                out,
                "{:<12} {:<44} {:<10} {}",
                w.action, w.webhook_id, w.state, w.updated_at
            )
            .map_err(write)?;
        }
        writeln!(
            out,
            "payhook sweep: {} stuck, {} repaired{}",
            swept.stuck,
            swept.repaired,
            if swept.truncated.is_empty() {
                String::new()
            } else {
                format!("; more left in {}", swept.truncated.join(", "))
            }
        )
        .map_err(write)?;
    }
    Ok(i32::from(swept.stuck > swept.repaired))
}
