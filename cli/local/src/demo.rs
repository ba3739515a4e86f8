//! The stack side of `payhook demo`: starts the local stack on a free port (in memory, or on a
//! fresh stage of an AWS-compatible endpoint), sends the demo's traffic
//! (`cli/devkit/src/plan.rs`), waits until the pipeline is idle, checks the books
//! ([`crate::books`]) and writes `summary.json` into the run directory
//! ([`crate::run_dir`]). Drawing the dashboard page and printing are the command's
//! (`cli/src/commands/demo.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use payhook_aws::provision::StackNames;
use payhook_devkit::plan::{Plan, UNKNOWN_API_KEY, plan};
use payhook_devkit::unix_now;
use serde_json::json;

use crate::LocalError;
use crate::books::{DemoReport, check_payments, reconcile};
use crate::config::{self, Config};
use crate::faults::Faults;
use crate::http::FrontDoor;
use crate::stack::{AwsTarget, Stack, StackOptions};
use crate::stage::{provision_stage, stage_plan};

/// What a demo run needs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where to write the configuration, logs, metrics, traces and the summary.
    pub run_dir: PathBuf,
    /// The routing rules.
    pub rules_dir: PathBuf,
    /// Longest wait for the pipeline to go idle, in seconds.
    pub timeout: u64,
    /// Run the pipeline on this AWS-compatible endpoint (a fresh stage of its own) instead of
    /// in memory.
    pub aws_endpoint: Option<String>,
}

/// What a demo run saw: its report and the webhooks it accepted.
#[derive(Debug, Clone)]
pub struct DemoRun {
    /// The counts and the books' verdict.
    pub report: DemoReport,
    /// The distinct webhook ids answered 202, sorted.
    pub accepted_ids: Vec<String>,
}

/// Runs the demo's traffic through a fresh stack and checks the books; the caller decides the
/// exit code from [`DemoReport::balanced`].
pub async fn run(options: &DemoOptions) -> Result<DemoRun, LocalError> {
    let run_dir = options.run_dir.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| LocalError::Io(format!("cannot bind 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| LocalError::Io(e.to_string()))?
        .port();
    let mut config: Config = config::init(&run_dir, port, true, unix_now())?;
    // Short visibility so retries and the poison message's trip to the DLQ take seconds.
    // (On an endpoint every store call is a round trip to another server: a few seconds, so a
    // loaded machine does not hold an attempt past its lease.)
    config.queues.visibility_timeout_seconds = if options.aws_endpoint.is_some() { 5 } else { 1 };
    let faults = Faults::default();
    let Plan {
        planned,
        poison_payment,
        crash_payment,
        booked,
    } = plan(unix_now())?;
    faults.reject_payment(&poison_payment);
    faults.crash_once_after_publishing(&crash_payment);

    let rules_dir = options.rules_dir.clone();
    let aws = match &options.aws_endpoint {
        Some(endpoint) => Some(provision_demo_stage(endpoint, &config, &rules_dir).await?),
        None => None,
    };
    if let Some(target) = &aws {
        eprintln!(
            "payhook demo: stage `{}` created on {} (table {}, bus {})",
            target.names.stage, target.endpoint, target.names.table, target.names.event_bus
        );
    }
    let stack = Stack::start(StackOptions {
        config: config.clone(),
        run_dir: run_dir.clone(),
        rules_dir: rules_dir.clone(),
        faults,
        aws,
    })
    .await?;
    let front = FrontDoor::serve(Arc::clone(&stack), listener)?;
    eprintln!(
        "payhook demo: stack on http://{} — run directory {}",
        front.addr,
        run_dir.display()
    );

    let sender = config.sender()?;
    let mut report = DemoReport::empty();
    report.backend = stack.backend_name();
    let mut accepted_ids: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for p in &planned {
        let url = format!("http://{}/webhooks/{}", front.addr, p.provider.as_str());
        let headers = sender.signer().sign(p.provider, &p.body, unix_now())?;
        // A bad signature: the body changed after signing (one byte, as a proxy might).
        let mut body = p.body.clone();
        if p.tamper_signature {
            body.push(b' ');
        }
        let sender = if p.unknown_api_key {
            sender
                .clone()
                .with_api_key(Some(UNKNOWN_API_KEY.to_owned()))
        } else {
            sender.clone()
        };
        let sends = (0..p.copies).map(|_| {
            let (sender, url, headers, body) =
                (sender.clone(), url.clone(), headers.clone(), body.clone());
            async move { sender.post(&url, &headers, body).await }
        });
        let answers = futures_join_all(sends).await;
        for answer in answers {
            let (status, body) = answer?;
            report.sent += 1;
            *report.by_status.entry(status).or_default() += 1;
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or(json!({}));
            tally_answer(&mut report, &mut accepted_ids, status, &json);
            lines.push(json!({"label": p.label, "provider": p.provider.as_str(), "webhook_id": p.webhook_id, "status": status, "response": json}));
        }
    }
    accepted_ids.sort();
    accepted_ids.dedup();
    report.accepted = accepted_ids.len();

    report.idle = stack.wait_idle(Duration::from_secs(options.timeout)).await;
    reconcile(&stack, &accepted_ids, &mut report).await;
    check_payments(&stack, &booked, &mut report).await;
    stack.shutdown().await;

    let summary = json!({"report": report, "requests": lines});
    std::fs::write(
        run_dir.join(crate::run_dir::SUMMARY_FILE),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )
    .map_err(|e| LocalError::Io(format!("summary: {e}")))?;
    Ok(DemoRun {
        report,
        accepted_ids,
    })
}

/// Books one answer of the front door: an accepted webhook's id, a duplicate, an ignored
/// event, or a rejection by its status and reason.
fn tally_answer(
    report: &mut DemoReport,
    accepted_ids: &mut Vec<String>,
    status: u16,
    json: &serde_json::Value,
) {
    match (status, json["status"].as_str()) {
        (202, _) => {
            if let Some(id) = json["webhook_id"].as_str() {
                accepted_ids.push(id.to_owned());
            }
        }
        (200, Some("duplicate")) => report.duplicates += 1,
        (200, Some("ignored")) => report.ignored += 1,
        _ => {
            let reason = json["error"]
                .as_str()
                .or(json["message"].as_str())
                .unwrap_or("unknown")
                .to_owned();
            *report
                .rejected_by_reason
                .entry(format!("{status} {reason}"))
                .or_default() += 1;
        }
    }
}

/// Creates a stage of its own for one demo run on `endpoint` — `demo-…` with its own table
/// and bus, so runs and other stages on the same endpoint do not see each other's items or
/// rules — from `config` (its secrets become the SSM parameters, its queue settings the
/// queues') and the rule files.
async fn provision_demo_stage(
    endpoint: &str,
    config: &Config,
    rules_dir: &std::path::Path,
) -> Result<AwsTarget, LocalError> {
    payhook_devkit::http::check_http_url(endpoint, "--aws-endpoint")?;
    let stage = format!(
        "demo-{}-{}",
        unix_now() % 1_000_000,
        std::process::id() % 10_000
    );
    let names = StackNames::new(&stage)
        .with_table(format!("webhook-processing-{stage}"))
        .with_event_bus(format!("payment-events-{stage}"));
    let plan = stage_plan(names.clone(), rules_dir, Some(config))?;
    provision_stage(endpoint, Some(&config.aws.region), &plan, |_| {})
        .await
        .map_err(|e| LocalError::Aws(format!("creating the demo stage on {endpoint}: {e}")))?;
    Ok(AwsTarget {
        endpoint: endpoint.to_owned(),
        region: config.aws.region.clone(),
        names,
    })
}

/// Joins futures without pulling in the `futures` crate: they run concurrently on the runtime.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}
