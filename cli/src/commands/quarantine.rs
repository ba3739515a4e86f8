//! `payhook quarantine list|show|replay`: the verified webhooks kept `QUARANTINED` because
//! their bodies could not be normalised, against the local stack (its admin API,
//! `/_payhook/quarantine…`) or AWS (`--aws`, `--aws-endpoint URL`), as `payhook status` and
//! `payhook dlq` are.
//!
//! - `list` shows the quarantined items, oldest change first, from the status table's
//!   open-status index (never a table scan): webhook id, provider, the provider's event type,
//!   the reason, when it was received and where its body is kept (`inline` or `s3`).
//! - `show WEBHOOK_ID` prints the item as JSON; `--body` adds the raw body as text.
//! - `replay WEBHOOK_ID… | --all` re-runs normalisation with the current code and rates file
//!   (locally the stack's rates file as it is now; on AWS this build's rates, or `--rates FILE`)
//!   and queues what now normalises. Each webhook is queued once: the item leaves
//!   `QUARANTINED` with a conditional write, and a repeat finds it `QUEUED`; a replay that dies
//!   between its send and that write sends the same bytes under the same deduplication id next
//!   time, which the FIFO queue drops. Exit 0 when nothing is still failing, 1 otherwise.

use std::io::Write;
use std::sync::Arc;

use base64::Engine as _;
use clap::{Args, Subcommand};
use http::Method;
use payhook_aws::config::sdk_config_for;
use payhook_aws::{DynamoStatusStore, S3BlobStore, SqsFifoQueue, s3_client};
use payhook_core::Provider;
use payhook_core::currency::Rates;
use payhook_core::ports::{MemorySecretStore, SystemClock};
use payhook_core::signature::{PaypalCertificateCache, StaticCertificateFetcher, TrustAnchors};
use payhook_core::status::{Status, StatusItem, StatusQuery, StatusStore, list_up_to};
use payhook_core::validator::{Validator, ValidatorConfig};
use payhook_devkit::http::http_client;
use payhook_local::admin::{
    DEFAULT_QUARANTINE_MAX, LocalQuarantineItem, LocalQuarantineList, QuarantineSummary,
    ReplayReport,
};
use serde::Serialize;

use crate::CliError;
use crate::commands::oncall::{Target, TargetArgs, admin_url, local_api_error, request};

/// `payhook quarantine …`
#[derive(Debug, Clone, Subcommand)]
pub enum QuarantineCommand {
    /// List the quarantined webhooks, oldest first.
    List(QuarantineListArgs),
    /// Show one quarantined webhook's item.
    Show(QuarantineShowArgs),
    /// Normalise quarantined webhooks again with the current code and rates; queue what now
    /// succeeds, once.
    Replay(QuarantineReplayArgs),
}

/// Arguments of `payhook quarantine list`.
#[derive(Debug, Clone, Args)]
pub struct QuarantineListArgs {
    /// One JSON object per item instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The most items to show.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QUARANTINE_MAX)]
    pub max: usize,
    /// Where to look.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Arguments of `payhook quarantine show`.
#[derive(Debug, Clone, Args)]
pub struct QuarantineShowArgs {
    /// The webhook id (`{provider}:{event id}`), as `list` shows it.
    pub webhook_id: String,
    /// Add the raw body, as text, to the output (it may hold personal data: a customer's
    /// e-mail, an address).
    #[arg(long)]
    pub body: bool,
    /// The quarantine bucket, for a body kept in S3 (default: `payhook-{stage}-quarantine`).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Where to look.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Arguments of `payhook quarantine replay`.
#[derive(Debug, Clone, Args)]
pub struct QuarantineReplayArgs {
    /// The webhooks to replay.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub webhook_ids: Vec<String>,
    /// Replay every quarantined webhook (up to --max).
    #[arg(long)]
    pub all: bool,
    /// With --all, the most webhooks to replay.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_QUARANTINE_MAX)]
    pub max: usize,
    /// On AWS: the rates file to normalise with (default: the one built into this payhook).
    #[arg(long, value_name = "FILE")]
    pub rates: Option<std::path::PathBuf>,
    /// The quarantine bucket, for bodies kept in S3 (default: `payhook-{stage}-quarantine`).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Where to replay.
    #[command(flatten)]
    pub target: TargetArgs,
}

fn write_failed(e: std::io::Error) -> CliError {
    CliError::Failed(format!("cannot write output: {e}"))
}

fn to_json(value: &impl Serialize) -> Result<String, CliError> {
    serde_json::to_string(value).map_err(|e| CliError::Failed(format!("cannot print: {e}")))
}

/// Runs `payhook quarantine …`, printing on stdout; returns the exit code.
pub async fn run(command: QuarantineCommand) -> Result<i32, CliError> {
    let mut stdout = std::io::stdout();
    run_with_output(command, &mut stdout).await
}

/// [`run`] writing to `out`.
pub async fn run_with_output(
    command: QuarantineCommand,
    out: &mut (dyn Write + Send),
) -> Result<i32, CliError> {
    match command {
        QuarantineCommand::List(args) => list(args, out).await,
        QuarantineCommand::Show(args) => show(args, out).await,
        QuarantineCommand::Replay(args) => replay(args, out).await,
    }
}

/// The status table, queues and bucket of a stage on AWS.
struct AwsStage {
    store: DynamoStatusStore,
    sdk: payhook_aws::aws_config::SdkConfig,
    names: payhook_aws::provision::StackNames,
    bucket: String,
}

async fn aws_stage(target: &Target, bucket: Option<&str>) -> Result<Option<AwsStage>, CliError> {
    let Target::Aws {
        endpoint,
        region,
        names,
    } = target
    else {
        return Ok(None);
    };
    let sdk = sdk_config_for(endpoint.as_deref(), region.as_deref()).await;
    let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk))
        .with_table_name(&names.table);
    Ok(Some(AwsStage {
        store,
        bucket: bucket.map_or_else(|| names.quarantine_bucket(), str::to_owned),
        names: names.clone(),
        sdk,
    }))
}

async fn quarantined_on_aws(stage: &AwsStage, max: usize) -> Result<Vec<StatusItem>, CliError> {
    let now = payhook_core::ports::Clock::now_ms(&SystemClock);
    let query = StatusQuery::new(Status::Quarantined, now.saturating_add(1));
    list_up_to(&stage.store, query, max).await.map_err(|e| {
        CliError::Failed(format!(
            "listing quarantined webhooks in table `{}`: {e}",
            stage.names.table
        ))
    })
}

async fn list(args: QuarantineListArgs, out: &mut (dyn Write + Send)) -> Result<i32, CliError> {
    let target = args.target.target()?;
    let items: Vec<QuarantineSummary> = match aws_stage(&target, None).await? {
        Some(stage) => quarantined_on_aws(&stage, args.max)
            .await?
            .iter()
            .map(QuarantineSummary::of)
            .collect(),
        None => {
            let Target::Local(base) = &target else {
                unreachable!("a target is local or AWS")
            };
            let mut url = url::Url::parse(&admin_url(base, &["quarantine"])?)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            url.query_pairs_mut()
                .append_pair("max", &args.max.to_string());
            let (status, body) = request(&http_client()?, Method::GET, url.as_str()).await?;
            if status != 200 {
                return Err(local_api_error(url.as_str(), status, &body));
            }
            serde_json::from_str::<LocalQuarantineList>(&body)
                .map_err(|e| CliError::Failed(format!("{url} answered an unexpected body: {e}")))?
                .items
        }
    };
    if args.json {
        for item in &items {
            writeln!(out, "{}", to_json(item)?).map_err(write_failed)?;
        }
        return Ok(0);
    }
    write_table(out, &items)?;
    writeln!(out, "{} quarantined webhook(s)", items.len()).map_err(write_failed)?;
    Ok(0)
}

fn write_table(out: &mut (dyn Write + Send), items: &[QuarantineSummary]) -> Result<(), CliError> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:<44} {:<30} {:<24} {:<6} REASON",
        "WEBHOOK_ID", "EVENT_TYPE", "RECEIVED", "BODY"
    )
    .map_err(write_failed)?;
    for item in items {
        let reason: String = item
            .reason
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(80)
            .collect();
        writeln!(
            out,
            "{:<44} {:<30} {:<24} {:<6} {reason}",
            item.webhook_id, item.provider_event_type, item.received_at, item.body
        )
        .map_err(write_failed)?;
    }
    Ok(())
}

async fn show(args: QuarantineShowArgs, out: &mut (dyn Write + Send)) -> Result<i32, CliError> {
    let target = args.target.target()?;
    let (item, blob) = match aws_stage(&target, args.bucket.as_deref()).await? {
        Some(stage) => {
            let item = stage
                .store
                .get(&args.webhook_id)
                .await
                .map_err(|e| CliError::Failed(format!("reading `{}`: {e}", args.webhook_id)))?;
            let blob = match item.as_ref().and_then(|i| i.raw_body_key.clone()) {
                Some(key) if args.body => {
                    let blobs = S3BlobStore::new(s3_client(&stage.sdk), &stage.bucket);
                    payhook_core::blob::BlobStore::get(&blobs, &key)
                        .await
                        .map_err(|e| CliError::Failed(format!("bucket `{}`: {e}", stage.bucket)))?
                }
                _ => None,
            };
            (item, blob)
        }
        None => {
            let Target::Local(base) = &target else {
                unreachable!("a target is local or AWS")
            };
            let url = admin_url(base, &["quarantine", &args.webhook_id])?;
            let (status, body) = request(&http_client()?, Method::GET, &url).await?;
            match status {
                200 => {
                    let shown: LocalQuarantineItem = serde_json::from_str(&body).map_err(|e| {
                        CliError::Failed(format!("{url} answered an unexpected body: {e}"))
                    })?;
                    let blob = shown
                        .body_base64
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
                    (Some(shown.item), blob)
                }
                404 => (None, None),
                _ => return Err(local_api_error(&url, status, &body)),
            }
        }
    };
    let Some(item) = item.filter(|i| i.status == Status::Quarantined || i.raw_body.is_some())
    else {
        eprintln!(
            "payhook quarantine show: `{}` is not a quarantined webhook",
            args.webhook_id
        );
        return Ok(1);
    };
    let mut value = serde_json::to_value(&item)
        .map_err(|e| CliError::Failed(format!("cannot print the item: {e}")))?;
    if args.body {
        let bytes = blob.or_else(|| {
            item.raw_body
                .as_deref()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        });
        value["body"] = bytes
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .into();
    }
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| CliError::Failed(format!("cannot print the item: {e}")))?;
    writeln!(out, "{text}").map_err(write_failed)?;
    Ok(0)
}

async fn replay(args: QuarantineReplayArgs, out: &mut (dyn Write + Send)) -> Result<i32, CliError> {
    let target = args.target.target()?;
    let reports = match aws_stage(&target, args.bucket.as_deref()).await? {
        Some(stage) => replay_on_aws(&args, &stage).await?,
        None => {
            let Target::Local(base) = &target else {
                unreachable!("a target is local or AWS")
            };
            replay_locally(&args, base).await?
        }
    };
    let mut failing = 0;
    for report in &reports {
        failing += usize::from(report.still_failing());
        writeln!(
            out,
            "{:<16} {} {}",
            report.outcome,
            report.webhook_id,
            report.detail.as_deref().unwrap_or("")
        )
        .map_err(write_failed)?;
    }
    let queued = reports.iter().filter(|r| r.outcome == "queued").count();
    writeln!(
        out,
        "payhook quarantine replay: {queued} queued, {failing} still failing, {} in all",
        reports.len()
    )
    .map_err(write_failed)?;
    Ok(i32::from(failing > 0))
}

async fn replay_locally(
    args: &QuarantineReplayArgs,
    base: &str,
) -> Result<Vec<ReplayReport>, CliError> {
    let client = http_client()?;
    let ids = if args.all {
        let mut url = url::Url::parse(&admin_url(base, &["quarantine"])?)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("max", &args.max.to_string());
        let (status, body) = request(&client, Method::GET, url.as_str()).await?;
        if status != 200 {
            return Err(local_api_error(url.as_str(), status, &body));
        }
        serde_json::from_str::<LocalQuarantineList>(&body)
            .map_err(|e| CliError::Failed(format!("{url} answered an unexpected body: {e}")))?
            .items
            .into_iter()
            .map(|i| i.webhook_id)
            .collect()
    } else {
        args.webhook_ids.clone()
    };
    let mut reports = Vec::new();
    for id in ids {
        let url = admin_url(base, &["quarantine", &id, "replay"])?;
        let (status, body) = request(&client, Method::POST, &url).await?;
        if status != 200 {
            return Err(local_api_error(&url, status, &body));
        }
        reports
            .push(serde_json::from_str(&body).map_err(|e| {
                CliError::Failed(format!("{url} answered an unexpected body: {e}"))
            })?);
    }
    Ok(reports)
}

async fn replay_on_aws(
    args: &QuarantineReplayArgs,
    stage: &AwsStage,
) -> Result<Vec<ReplayReport>, CliError> {
    let rates = match &args.rates {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Usage(format!("--rates {}: {e}", path.display())))?;
            Rates::from_json(&text)
                .map_err(|e| CliError::Usage(format!("--rates {}: {e}", path.display())))?
        }
        None => Rates::bundled().map_err(|e| CliError::Failed(format!("built-in rates: {e}")))?,
    };
    let queue = SqsFifoQueue::from_queue_names(
        payhook_aws::aws_sdk_sqs::Client::new(&stage.sdk),
        Provider::ALL.map(|p| (p, stage.names.queue(p))),
    )
    .await
    .map_err(|e| CliError::Failed(format!("stage `{}` queues: {e}", stage.names.stage)))?;
    let certificates = PaypalCertificateCache::new(
        Arc::new(StaticCertificateFetcher::new(Vec::new())),
        TrustAnchors::mozilla(),
    );
    // A replay verifies nothing (the body was verified when it came): no secrets are read.
    let validator = Validator::new(
        Arc::new(MemorySecretStore::new()),
        Arc::new(stage.store.clone()),
        Arc::new(queue),
        Arc::new(certificates),
        Arc::new(SystemClock),
        ValidatorConfig {
            rates: Arc::new(rates),
            ..ValidatorConfig::default()
        },
    )
    .with_quarantine_blobs(Arc::new(S3BlobStore::new(
        s3_client(&stage.sdk),
        &stage.bucket,
    )));
    let ids: Vec<String> = if args.all {
        quarantined_on_aws(stage, args.max)
            .await?
            .into_iter()
            .map(|i| i.webhook_id)
            .collect()
    } else {
        args.webhook_ids.clone()
    };
    let mut reports = Vec::new();
    for id in ids {
        let outcome = validator.replay_quarantined(&id).await.map_err(|e| {
            let hint = if e.code().starts_with("blob_") {
                format!(
                    "; its body is in bucket `{}`: is that the stage's quarantine bucket \
                     (`pulumi stack output quarantine_bucket`, --bucket)?",
                    stage.bucket
                )
            } else {
                String::new()
            };
            CliError::Failed(format!("replaying `{id}`: {e} ({}){hint}", e.code()))
        })?;
        reports.push(ReplayReport::of(&id, &outcome));
    }
    Ok(reports)
}
