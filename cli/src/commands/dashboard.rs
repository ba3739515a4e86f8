//! `payhook dashboard`: draws the CloudWatch dashboards of `dashboards/` into one
//! self-contained HTML page, from a local run (`--run-dir`, what `payhook demo` writes) or a
//! deployed stage's CloudWatch metrics (`--aws [--aws-endpoint URL]`), so a dashboard change can
//! be seen before it is deployed, and on-call can open one file when the console is slow.
//!
//! The drawing is the library `payhook-dashboard` (`cli/dashboard`); this command resolves its
//! arguments (the built-in dashboards and alarms outside the repository), writes the page and
//! prints how many widgets drew data.

use std::path::{Path, PathBuf};

use clap::Args;
use payhook_aws::provision::DEFAULT_DEPLOYED_STAGE;

use payhook_dashboard::{DASHBOARD_FILE, preview_aws, preview_local};

use crate::CliError;

/// Arguments of `payhook dashboard`.
#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    /// The run directory to draw from (what `payhook demo` wrote); required without `--aws`.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Where to write the page (default: <run-dir>/dashboard.html, or ./dashboard.html).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The dashboard bodies.
    #[arg(long, default_value = "dashboards")]
    pub dashboards: PathBuf,
    /// The alarm definitions (thresholds to draw, alarms to evaluate).
    #[arg(long, default_value = "alarms")]
    pub alarms: PathBuf,
    /// Draw from a deployed stack's CloudWatch metrics instead of a local run.
    #[arg(long)]
    pub aws: bool,
    /// The AWS endpoint (moto, LocalStack); default AWS_ENDPOINT_URL, else AWS itself.
    #[arg(long, requires = "aws")]
    pub aws_endpoint: Option<String>,
    /// The stage whose names fill the placeholders (default: `local`, or `prod` with `--aws`).
    #[arg(long)]
    pub stage: Option<String>,
    /// With `--aws`: how far back to look (default: the dashboard's `start`, else 180).
    #[arg(long)]
    pub since_minutes: Option<u64>,
}

/// [`payhook_dashboard::render_local`], its error as the command's.
pub fn render_local(
    dashboards_dir: &Path,
    alarms_dir: &Path,
    run_dir: &Path,
) -> Result<String, CliError> {
    Ok(payhook_dashboard::render_local(
        dashboards_dir,
        alarms_dir,
        run_dir,
    )?)
}

/// Runs `payhook dashboard`: writes the page and prints how many widgets drew data (exit 0).
pub async fn run(mut args: DashboardArgs) -> Result<i32, CliError> {
    // Outside the repository: the dashboards and alarms built into the binary.
    args.dashboards = crate::defaults::folder(&args.dashboards, "dashboards")?;
    args.alarms = crate::defaults::folder(&args.alarms, "alarms")?;
    let preview = if args.aws {
        let config = payhook_aws::sdk_config(args.aws_endpoint.as_deref()).await;
        let stage = args.stage.as_deref().unwrap_or(DEFAULT_DEPLOYED_STAGE);
        preview_aws(
            &config,
            &args.dashboards,
            &args.alarms,
            stage,
            args.since_minutes,
        )
        .await?
    } else {
        let run_dir = args.run_dir.as_deref().ok_or_else(|| {
            CliError::Usage("--run-dir DIR is required (or --aws to draw from CloudWatch)".into())
        })?;
        preview_local(
            &args.dashboards,
            &args.alarms,
            run_dir,
            args.stage.as_deref(),
        )?
    };
    let out = match (&args.out, &args.run_dir) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) if !args.aws => dir.join(DASHBOARD_FILE),
        (None, _) => PathBuf::from(DASHBOARD_FILE),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::Failed(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(&out, &preview.html)
        .map_err(|e| CliError::Failed(format!("{}: {e}", out.display())))?;
    println!(
        "{}: {} of {} widgets drew data",
        out.display(),
        preview.with_data(),
        preview.total()
    );
    for w in preview.data_widgets().filter(|w| !w.has_data) {
        println!("  no data: {}", w.no_data());
    }
    for w in &preview.warnings {
        eprintln!("payhook dashboard: {w}");
    }
    Ok(0)
}
