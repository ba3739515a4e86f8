//! The on-call tools: `payhook status WEBHOOK_ID` and `payhook dlq list|redrive`, against the
//! local stack (its admin API) or AWS (a deployed stage with the default credentials, or any
//! AWS-compatible endpoint with `--aws-endpoint`).
//!
//! Where they look ([`TargetArgs`]): `--local URL` (the default, `http://127.0.0.1:8787`),
//! `--aws-endpoint URL`, or `--aws`. On AWS the names are the Pulumi program's (and
//! `payhook bootstrap`'s): table `webhook-processing` (`--table`), queues
//! `payhook-{stage}-{provider}.fifo` and DLQs `payhook-{stage}-{provider}-dlq.fifo`.
//!
//! # `payhook status WEBHOOK_ID`
//!
//! Prints the webhook's item of the status table as JSON. Exit 0 found, 1 not found, 2 when
//! the stack cannot be asked.
//!
//! # `payhook dlq list [--provider P]`
//!
//! Lists the messages in the providers' dead-letter queues — message id, webhook id, message
//! group (the payment), receive count, when it was sent, and the webhook's status and last
//! error from the table — and leaves them there.
//!
//! SQS has no way to look at a message without receiving it, so on AWS `list` receives each
//! message with a short visibility timeout ([`LIST_VISIBILITY_SECS`]) and makes it visible
//! again at once (`ChangeMessageVisibility` to 0) once all are listed. The side effects:
//! each listing adds one to every listed message's `ApproximateReceiveCount` (the count shown
//! includes it; a DLQ has no redrive policy, so nothing moves because of it); for the moment of
//! the listing, and up to [`LIST_VISIBILITY_SECS`] if `list` is killed before it resets them,
//! the messages are invisible to other readers of the DLQ; and in a FIFO queue a message group
//! with more messages than one receive returns shows only its head until those are visible
//! again. Counts from `GetQueueAttributes` are shown alongside, so a partial listing shows.
//! The local stack lists its in-memory DLQ without any of this. (The SQS operations are
//! `payhook_aws::dlq`, shared with the local stack on an AWS endpoint.)
//!
//! # `payhook dlq redrive [--provider P]`
//!
//! Moves every DLQ message back to its source queue, in order, each exactly once: receive from
//! the DLQ, `SendMessage` to the source queue with the same body, message group and
//! `AWSTraceHeader` and the deduplication id
//! [`redrive_deduplication_id`](payhook_aws::dlq::redrive_deduplication_id)
//! (`{webhook_id}:redrive:{SentTimestamp}`), then `DeleteMessage` from the DLQ — only after the
//! send succeeded. The id is fresh (the original id is still inside SQS's 5-minute window when
//! a message dead-letters quickly) yet fixed for that DLQ message, so if a redrive dies between
//! the send and the delete, running it again within 5 minutes re-sends under the same id and
//! SQS drops the copy. When a send fails, the rest of that message group stays in the DLQ (order
//! is kept) and the exit code is 1. One line per message and a total are printed.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::Method;
use http::header::{ACCEPT, USER_AGENT};
use http_body_util::Full;
use payhook_aws::DynamoStatusStore;
use payhook_aws::aws_sdk_sqs::Client as SqsClient;
use payhook_aws::config::sdk_config_for;
use payhook_aws::dlq::{
    DlqMessage, RedrivenMessage, approximate_depth, peek, redrive_queue,
    required_queue_url as queue_url,
};
use payhook_aws::provision::{DEFAULT_DEPLOYED_STAGE, DEFAULT_LOCAL_STAGE, StackNames};
use payhook_aws::status_store::DEFAULT_TABLE_NAME;
use payhook_core::Provider;
use payhook_core::status::{StatusItem, StatusStore, rfc3339_ms};
pub(crate) use payhook_devkit::http::check_http_url;
use payhook_devkit::http::{HttpClient, NoAnswer, REQUEST_TIMEOUT, exchange, http_client};
use payhook_local::admin::{DEFAULT_LIST_MAX, LocalDlqList, LocalRedrive};

use crate::CliError;

/// The local stack's default address (`payhook serve`'s default `--addr`).
pub const DEFAULT_LOCAL_URL: &str = "http://127.0.0.1:8787";

/// Environment variable naming the stage when `--stage` is not given.
pub const STAGE_ENV: &str = "PAYHOOK_AWS_STAGE";

/// Characters of the last error `dlq list` shows in its table (the JSON output has it all).
pub const ERROR_PREVIEW_CHARS: usize = 60;

/// Where `status` and `dlq` look.
#[derive(Debug, Clone, Default, Args)]
pub struct TargetArgs {
    /// The local stack's URL (the default target: http://127.0.0.1:8787).
    #[arg(long, value_name = "URL", conflicts_with_all = ["aws_endpoint", "aws"])]
    pub local: Option<String>,
    /// An AWS-compatible endpoint (moto server, LocalStack) holding a bootstrapped stage.
    #[arg(long, value_name = "URL", conflicts_with = "aws")]
    pub aws_endpoint: Option<String>,
    /// AWS itself, with the default credentials chain and region.
    #[arg(long)]
    pub aws: bool,
    /// The stage whose queues to use (default: $PAYHOOK_AWS_STAGE, else `local` with
    /// --aws-endpoint and `prod` with --aws).
    #[arg(long)]
    pub stage: Option<String>,
    /// The region (default: $AWS_REGION, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// The status table.
    #[arg(long, default_value = DEFAULT_TABLE_NAME)]
    pub table: String,
}

/// Where a command goes, resolved from [`TargetArgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local stack's admin API at this base URL.
    Local(String),
    /// AWS (or an AWS-compatible endpoint).
    Aws {
        /// The endpoint; `None` for AWS itself.
        endpoint: Option<String>,
        /// The region; `None` for the environment's.
        region: Option<String>,
        /// The resource names.
        names: StackNames,
    },
}

impl TargetArgs {
    /// The target these arguments name.
    pub fn target(&self) -> Result<Target, CliError> {
        let aws_endpoint = self
            .aws_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        if !self.aws && aws_endpoint.is_none() {
            let url = self.local.as_deref().unwrap_or(DEFAULT_LOCAL_URL);
            check_http_url(url, "--local")?;
            return Ok(Target::Local(url.trim_end_matches('/').to_owned()));
        }
        if let Some(url) = aws_endpoint {
            check_http_url(url, "--aws-endpoint")?;
        }
        let stage = self
            .stage
            .clone()
            .or_else(|| std::env::var(STAGE_ENV).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| {
                if aws_endpoint.is_some() {
                    DEFAULT_LOCAL_STAGE.to_owned()
                } else {
                    DEFAULT_DEPLOYED_STAGE.to_owned()
                }
            });
        payhook_aws::provision::validate_stage(&stage)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(Target::Aws {
            endpoint: aws_endpoint.map(str::to_owned),
            region: self.region.clone(),
            names: StackNames::new(stage).with_table(&self.table),
        })
    }
}

/// Arguments of `payhook status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The webhook id, `{provider}:{provider event id}` (as `payhook send` prints it).
    pub webhook_id: String,
    /// Where to look.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `payhook dlq …`
#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// List the dead-letter queues' messages without removing them.
    List(DlqListArgs),
    /// Move the dead-letter queues' messages back to their source queues.
    Redrive(DlqRedriveArgs),
}

/// Arguments of `payhook dlq list`.
#[derive(Debug, Clone, Args)]
pub struct DlqListArgs {
    /// Only this provider's DLQ (stripe, paypal or square); default: all three.
    #[arg(long)]
    pub provider: Option<Provider>,
    /// One JSON object per message instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The most messages to show per provider.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIST_MAX)]
    pub max: usize,
    /// Where to look.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Arguments of `payhook dlq redrive`.
#[derive(Debug, Clone, Args)]
pub struct DlqRedriveArgs {
    /// Only this provider's DLQ (stripe, paypal or square); default: all three.
    #[arg(long)]
    pub provider: Option<Provider>,
    /// Where to look.
    #[command(flatten)]
    pub target: TargetArgs,
}

fn write_failed(e: std::io::Error) -> CliError {
    CliError::Failed(format!("cannot write output: {e}"))
}

// --- status ----------------------------------------------------------------------------------

/// Runs `payhook status`, printing the item on stdout; returns the exit code.
pub async fn run_status(args: StatusArgs) -> Result<i32, CliError> {
    let mut stdout = std::io::stdout();
    run_status_with_output(args, &mut stdout).await
}

/// [`run_status`] writing to `out`.
pub async fn run_status_with_output(
    args: StatusArgs,
    out: &mut (dyn Write + Send),
) -> Result<i32, CliError> {
    if args.webhook_id.trim().is_empty() {
        return Err(CliError::Usage("the webhook id is empty".into()));
    }
    let target = args.target.target()?;
    let region = match &target {
        Target::Local(_) => None,
        Target::Aws { region, .. } => Some(region.clone().unwrap_or_else(|| {
            std::env::var("AWS_REGION").unwrap_or_else(|_| payhook_aws::DEFAULT_REGION.to_owned())
        })),
    };
    let text = match target {
        Target::Local(base) => {
            let url = admin_url(&base, &["webhooks", &args.webhook_id])?;
            let client = http_client()?;
            let (status, body) = request(&client, Method::GET, &url).await?;
            match status {
                // Printed in the item's own field order when it is one, else as it came.
                200 => match serde_json::from_str::<StatusItem>(&body) {
                    Ok(item) => status_json(&item)?,
                    Err(_) => serde_json::from_str::<serde_json::Value>(&body)
                        .and_then(|value| serde_json::to_string_pretty(&value))
                        .map_err(|e| {
                            CliError::Failed(format!("{url} answered with something not JSON: {e}"))
                        })?,
                },
                404 => {
                    eprintln!(
                        "payhook status: no webhook `{}` in the local stack at {base}",
                        args.webhook_id
                    );
                    return Ok(1);
                }
                other => {
                    return Err(CliError::Failed(format!(
                        "{url} answered {other}: {}",
                        preview(&body, 200)
                    )));
                }
            }
        }
        Target::Aws {
            endpoint,
            region,
            names,
        } => {
            let sdk = sdk_config_for(endpoint.as_deref(), region.as_deref()).await;
            let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk))
                .with_table_name(&names.table);
            match store.get(&args.webhook_id).await {
                Ok(Some(item)) => status_json(&item)?,
                Ok(None) => {
                    eprintln!(
                        "payhook status: no webhook `{}` in table `{}`",
                        args.webhook_id, names.table
                    );
                    return Ok(1);
                }
                Err(e) => {
                    return Err(CliError::Failed(format!(
                        "reading `{}` from table `{}`: {e}",
                        args.webhook_id, names.table
                    )));
                }
            }
        }
    };
    writeln!(out, "{text}").map_err(write_failed)?;
    // Where to look next, on stderr so that stdout stays the item's JSON.
    if let Ok(item) = serde_json::from_str::<StatusItem>(&text) {
        eprint!("{}", where_next(&item, region.as_deref()));
    }
    Ok(0)
}

/// The next steps from a status item: its trace (the X-Ray console in `region`, or
/// `payhook trace` for the local stack) and the Logs Insights query that returns every log line
/// of its journey, from all three functions.
pub fn where_next(item: &StatusItem, region: Option<&str>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let query = format!(
        "fields @timestamp, function_name, level, message, error_code \
         | filter correlation_id = \"{id}\"{trace} | sort @timestamp asc",
        id = item.webhook_id,
        trace = item
            .trace_id
            .as_deref()
            .map(|t| format!(" or xray_trace_id = \"{t}\""))
            .unwrap_or_default(),
    );
    match (region, item.trace_id.as_deref()) {
        (Some(region), Some(trace)) => {
            let _ = writeln!(
                out,
                "trace: https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#xray:traces/{trace}"
            );
        }
        (None, Some(trace)) => {
            let _ = writeln!(
                out,
                "trace {trace}: payhook trace {} (from the run directory's xray.jsonl)",
                item.webhook_id
            );
        }
        (_, None) => {
            let _ = writeln!(out, "trace: none recorded (the validator was not traced)");
        }
    }
    let _ = writeln!(
        out,
        "logs: CloudWatch Logs Insights over the stage's /aws/lambda/* log groups:\n  {query}"
    );
    out
}

fn status_json(item: &StatusItem) -> Result<String, CliError> {
    serde_json::to_string_pretty(item)
        .map_err(|e| CliError::Failed(format!("cannot print the item: {e}")))
}

// --- dlq -------------------------------------------------------------------------------------

/// Runs `payhook dlq …`, printing on stdout; returns the exit code.
pub async fn run_dlq(command: DlqCommand) -> Result<i32, CliError> {
    let mut stdout = std::io::stdout();
    run_dlq_with_output(command, &mut stdout).await
}

/// [`run_dlq`] writing to `out`.
pub async fn run_dlq_with_output(
    command: DlqCommand,
    out: &mut (dyn Write + Send),
) -> Result<i32, CliError> {
    match command {
        DlqCommand::List(args) => list(args, out).await,
        DlqCommand::Redrive(args) => redrive(args, out).await,
    }
}

fn providers(only: Option<Provider>) -> Vec<Provider> {
    only.map_or_else(|| Provider::ALL.to_vec(), |p| vec![p])
}

async fn list(args: DlqListArgs, out: &mut (dyn Write + Send)) -> Result<i32, CliError> {
    let target = args.target.target()?;
    let mut all: Vec<DlqMessage> = Vec::new();
    let mut depths: BTreeMap<Provider, (usize, Option<usize>)> = BTreeMap::new();
    match &target {
        Target::Local(base) => {
            let client = http_client()?;
            for provider in providers(args.provider) {
                let url = admin_url(base, &["dlq", provider.as_str()])?;
                let (status, body) = request(&client, Method::GET, &url).await?;
                if status != 200 {
                    return Err(local_api_error(&url, status, &body));
                }
                let listed: LocalDlqList = serde_json::from_str(&body).map_err(|e| {
                    CliError::Failed(format!("{url} answered an unexpected body: {e}"))
                })?;
                let total = listed.messages.len();
                let shown: Vec<DlqMessage> = listed
                    .messages
                    .into_iter()
                    .take(args.max)
                    .map(|m| DlqMessage {
                        provider: Some(provider),
                        ..m
                    })
                    .collect();
                depths.insert(provider, (shown.len(), Some(total)));
                all.extend(shown);
            }
        }
        Target::Aws {
            endpoint,
            region,
            names,
        } => {
            let sdk = sdk_config_for(endpoint.as_deref(), region.as_deref()).await;
            let sqs = SqsClient::new(&sdk);
            let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk))
                .with_table_name(&names.table);
            let mut lookup_failed = false;
            for provider in providers(args.provider) {
                let dlq_name = names.dlq(provider);
                let dlq_url = queue_url(&sqs, &dlq_name, &names.stage).await?;
                let approximate = approximate_depth(&sqs, &dlq_url).await;
                let mut messages = peek(&sqs, &dlq_url, args.max).await?;
                for message in &mut messages {
                    message.provider = Some(provider);
                    let Some(webhook_id) = &message.webhook_id else {
                        continue;
                    };
                    match store.get(webhook_id).await {
                        Ok(Some(item)) => {
                            message.status = Some(item.status.to_string());
                            message.last_error = item.last_error;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            if !lookup_failed {
                                eprintln!(
                                    "payhook dlq list: cannot read table `{}` ({e}); listing \
                                     without status and last error",
                                    names.table
                                );
                            }
                            lookup_failed = true;
                        }
                    }
                }
                depths.insert(provider, (messages.len(), approximate));
                all.extend(messages);
            }
        }
    }

    if args.json {
        for message in &all {
            let line = serde_json::to_string(message)
                .map_err(|e| CliError::Failed(format!("cannot print a message: {e}")))?;
            writeln!(out, "{line}").map_err(write_failed)?;
        }
        return Ok(0);
    }
    write_table(out, &all)?;
    let per_provider: Vec<String> = depths
        .iter()
        .map(|(provider, (shown, approximate))| match approximate {
            Some(n) if *n > *shown => format!("{provider} {shown} of about {n}"),
            _ => format!("{provider} {shown}"),
        })
        .collect();
    writeln!(
        out,
        "{} message(s) in dead-letter queues ({})",
        all.len(),
        per_provider.join(", ")
    )
    .map_err(write_failed)?;
    Ok(0)
}

fn write_table(out: &mut (dyn Write + Send), messages: &[DlqMessage]) -> Result<(), CliError> {
    if messages.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:<8} {:<36} {:<28} {:>8} {:<24} {:<10} LAST_ERROR",
        "PROVIDER", "WEBHOOK_ID", "GROUP", "RECEIVES", "SENT", "STATUS"
    )
    .map_err(write_failed)?;
    for m in messages {
        let row = format!(
            "{:<8} {:<36} {:<28} {:>8} {:<24} {:<10} {}",
            m.provider.map(Provider::as_str).unwrap_or("-"),
            m.webhook_id
                .as_deref()
                .unwrap_or(&format!("(message {})", m.message_id)),
            m.group_id,
            m.receive_count,
            m.sent_timestamp_ms.map(rfc3339_ms).unwrap_or_default(),
            m.status.as_deref().unwrap_or("-"),
            m.last_error
                .as_deref()
                .map(|e| preview(e, ERROR_PREVIEW_CHARS))
                .unwrap_or_default(),
        );
        writeln!(out, "{}", row.trim_end()).map_err(write_failed)?;
    }
    Ok(())
}

async fn redrive(args: DlqRedriveArgs, out: &mut (dyn Write + Send)) -> Result<i32, CliError> {
    let target = args.target.target()?;
    let mut moved: BTreeMap<Provider, usize> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    match &target {
        Target::Local(base) => {
            let client = http_client()?;
            for provider in providers(args.provider) {
                let url = admin_url(base, &["dlq", provider.as_str(), "redrive"])?;
                let (status, body) = request(&client, Method::POST, &url).await?;
                if status != 200 {
                    return Err(local_api_error(&url, status, &body));
                }
                let answer: LocalRedrive = serde_json::from_str(&body).map_err(|e| {
                    CliError::Failed(format!("{url} answered an unexpected body: {e}"))
                })?;
                for message in &answer.messages {
                    let message = RedrivenMessage {
                        provider: Some(provider),
                        ..message.clone()
                    };
                    write_moved(out, &message)?;
                }
                moved.insert(provider, answer.moved);
            }
        }
        Target::Aws {
            endpoint,
            region,
            names,
        } => {
            let sdk = sdk_config_for(endpoint.as_deref(), region.as_deref()).await;
            let sqs = SqsClient::new(&sdk);
            for provider in providers(args.provider) {
                let source_url = queue_url(&sqs, &names.queue(provider), &names.stage).await?;
                let dlq_url = queue_url(&sqs, &names.dlq(provider), &names.stage).await?;
                let mut write = |m: &RedrivenMessage| {
                    write_moved(out, m).map_err(|e| payhook_aws::dlq::BoxError::from(e.to_string()))
                };
                let count = redrive_queue(
                    &sqs,
                    provider,
                    &dlq_url,
                    &source_url,
                    &mut write,
                    &mut failures,
                )
                .await?;
                moved.insert(provider, count);
            }
        }
    }
    for failure in &failures {
        writeln!(out, "failed  {failure}").map_err(write_failed)?;
    }
    let total: usize = moved.values().sum();
    let per_provider: Vec<String> = moved.iter().map(|(p, n)| format!("{p} {n}")).collect();
    writeln!(
        out,
        "payhook dlq redrive: moved {total} message(s) back to their queues ({}){}",
        per_provider.join(", "),
        if failures.is_empty() {
            String::new()
        } else {
            format!(
                "; {} could not be moved and stay in the DLQ",
                failures.len()
            )
        }
    )
    .map_err(write_failed)?;
    Ok(if failures.is_empty() { 0 } else { 1 })
}

fn write_moved(out: &mut (dyn Write + Send), m: &RedrivenMessage) -> Result<(), CliError> {
    writeln!(
        out,
        "moved   {:<8} {:<36} group={} dedup={}",
        m.provider.map(Provider::as_str).unwrap_or("-"),
        m.webhook_id
            .as_deref()
            .unwrap_or(&format!("(message {})", m.message_id)),
        m.group_id,
        m.deduplication_id.as_deref().unwrap_or("-"),
    )
    .and_then(|()| out.flush())
    .map_err(write_failed)
}

// --- local admin API -------------------------------------------------------------------------

/// `{base}/_payhook/{segments…}`, each segment percent-encoded.
pub(crate) fn admin_url(base: &str, segments: &[&str]) -> Result<String, CliError> {
    let mut url = url::Url::parse(base)
        .map_err(|e| CliError::Usage(format!("--local `{base}` is not a URL: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| CliError::Usage(format!("--local `{base}` cannot have a path")))?
        .pop_if_empty()
        .push("_payhook")
        .extend(segments);
    Ok(url.into())
}

pub(crate) fn local_api_error(url: &str, status: u16, body: &str) -> CliError {
    let hint = if status == 403 || status == 404 {
        " (a local stack without this admin API? update payhook)"
    } else {
        ""
    };
    CliError::Failed(format!(
        "{url} answered {status}: {}{hint}",
        preview(body, 200)
    ))
}

/// One request to the local admin API; `(status, body)`.
pub(crate) async fn request(
    client: &HttpClient,
    method: Method,
    url: &str,
) -> Result<(u16, String), CliError> {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("payhook-oncall/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::new()))
        .map_err(|e| CliError::Usage(format!("cannot build a request to {url}: {e}")))?;
    let answer = exchange(client, request, |why| match why {
        NoAnswer::Request(e) => format!(
            "no answer from the local stack at {url} ({e}): is `payhook serve` running? \
             (or use --aws / --aws-endpoint)"
        ),
        NoAnswer::Body(e) => format!("reading the answer from {url}: {e}"),
        NoAnswer::Timeout => format!(
            "no answer from {url} within {} s",
            REQUEST_TIMEOUT.as_secs()
        ),
    })
    .await?;
    Ok(answer)
}

/// The first `chars` characters of `text`, with `…` when cut.
fn preview(text: &str, chars: usize) -> String {
    let mut cut: String = text.chars().take(chars).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_points_to_the_webhooks_trace_and_the_query_for_its_logs() {
        let mut item = StatusItem::new(
            "stripe:evt_1",
            Provider::Stripe,
            "payment_intent.succeeded",
            payhook_core::status::Status::Processed,
            1_767_225_600_000,
        );
        item.trace_id = Some("1-6b000000-0123456789abcdef01234567".into());
        let aws = where_next(&item, Some("eu-west-1"));
        assert!(
            aws.contains("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#xray:traces/1-6b000000-0123456789abcdef01234567"),
            "{aws}"
        );
        assert!(
            aws.contains(r#"filter correlation_id = "stripe:evt_1" or xray_trace_id = "1-6b000000-0123456789abcdef01234567""#),
            "{aws}"
        );
        let local = where_next(&item, None);
        assert!(local.contains("payhook trace stripe:evt_1"), "{local}");
        item.trace_id = None;
        let untraced = where_next(&item, Some("us-east-1"));
        assert!(untraced.contains("none recorded"), "{untraced}");
        assert!(
            untraced.contains(r#"filter correlation_id = "stripe:evt_1" |"#),
            "{untraced}"
        );
    }

    #[test]
    fn the_local_stack_is_the_default_target() {
        assert_eq!(
            TargetArgs::default().target().unwrap(),
            Target::Local(DEFAULT_LOCAL_URL.to_owned())
        );
        let aws = TargetArgs {
            aws_endpoint: Some("http://127.0.0.1:5000".into()),
            stage: Some("dev".into()),
            table: DEFAULT_TABLE_NAME.into(),
            ..TargetArgs::default()
        };
        let Target::Aws { names, .. } = aws.target().unwrap() else {
            panic!("expected AWS");
        };
        assert_eq!(names.dlq(Provider::Stripe), "payhook-dev-stripe-dlq.fifo");
        assert_eq!(names.table, "webhook-processing");
    }

    #[test]
    fn admin_urls_encode_the_webhook_id() {
        assert_eq!(
            admin_url("http://127.0.0.1:8787/", &["webhooks", "square:a b/c"]).unwrap(),
            "http://127.0.0.1:8787/_payhook/webhooks/square:a%20b%2Fc"
        );
    }

    #[test]
    fn previews_are_cut_on_characters() {
        assert_eq!(preview("héllo wörld", 5), "héllo…");
        assert_eq!(preview("short", 10), "short");
    }
}
