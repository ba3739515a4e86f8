//! The sweeper Lambda's adapter: one scheduled invocation runs one sweep
//! ([`payhook_core::sweeper::Sweeper`]) inside a telemetry invocation, counts `StuckWebhooks`
//! by provider and state (zeros included, so the alarm and the dashboard see every sweep), and
//! answers a summary; its configuration comes from the environment ([`Config`]). The local
//! stack runs the same [`invoke`] for `payhook sweep`.

use payhook_aws::env::{Env, EnvError};
use payhook_aws::status_store::DEFAULT_TABLE_NAME;
use payhook_core::Provider;
use payhook_core::sweeper::{SweepError, SweepReport, Sweeper, SweeperConfig};
use payhook_telemetry::{ClassifiedError, Dimension, Invocation, Metric};
use serde_json::{Value, json};

/// The DynamoDB status table (default [`DEFAULT_TABLE_NAME`]).
pub const STATUS_TABLE_ENV: &str = "STATUS_TABLE";

/// Each provider's queue URL variable (`QUEUE_URL_STRIPE`, …): where a stuck webhook is
/// enqueued again.
pub const QUEUE_URL_VARIABLES: [(Provider, &str); 3] = [
    (Provider::Stripe, "QUEUE_URL_STRIPE"),
    (Provider::Paypal, "QUEUE_URL_PAYPAL"),
    (Provider::Square, "QUEUE_URL_SQUARE"),
];

/// The sweeper's configuration, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The status table (which also holds the payment records).
    pub status_table: String,
    /// Each provider's queue URL.
    pub queue_urls: Vec<(Provider, String)>,
    /// The thresholds and per-state limit (the defaults of
    /// [`payhook_core::sweeper`], documented in its runbook).
    pub sweeper: SweeperConfig,
}

impl Config {
    /// Reads [`STATUS_TABLE_ENV`] and the [`QUEUE_URL_VARIABLES`] (required) through `lookup`
    /// (trimmed; empty means unset); an error names the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, EnvError> {
        let env = Env::new(lookup);
        let mut queue_urls = Vec::new();
        for (provider, name) in QUEUE_URL_VARIABLES {
            queue_urls.push((
                provider,
                env.required(name, "the provider's SQS FIFO queue URL")?,
            ));
        }
        Ok(Config {
            status_table: env
                .get(STATUS_TABLE_ENV)
                .unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned()),
            queue_urls,
            sweeper: SweeperConfig::default(),
        })
    }
}

/// A sweep that could not list a state: the invocation fails (and is alarmed on as a Lambda
/// error); the next scheduled sweep tries again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepFailed(pub SweepError);

impl std::fmt::Display for SweepFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SweepFailed {}

impl ClassifiedError for SweepFailed {
    fn code(&self) -> &'static str {
        self.0.code()
    }

    fn retryable(&self) -> bool {
        true
    }
}

/// The summary an invocation answers: stuck webhooks by state and action, and whether a state
/// had more than one sweep handles.
pub fn summary(report: &SweepReport) -> Value {
    let stuck: Vec<Value> = report
        .stuck
        .iter()
        .map(|s| {
            json!({
                "webhook_id": s.webhook_id,
                "state": s.status.as_str(),
                "updated_at": s.updated_at,
                "action": s.action.as_str(),
            })
        })
        .collect();
    json!({
        "stuck": report.stuck.len(),
        "repaired": report.repaired(),
        "truncated": report.truncated.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "webhooks": stuck,
    })
}

/// Runs one sweep inside a telemetry invocation and counts `StuckWebhooks` for every provider
/// and swept state.
pub async fn invoke(sweeper: &Sweeper, invocation: Invocation) -> Result<SweepReport, SweepFailed> {
    let inv = invocation.handle();
    invocation
        .run(async {
            let report = sweeper.sweep().await.map_err(SweepFailed)?;
            for ((provider, state), count) in report.counts() {
                inv.metric(
                    Metric::StuckWebhooks,
                    count as f64,
                    &[
                        (Dimension::Provider, provider.as_str()),
                        (Dimension::State, state),
                    ],
                );
            }
            tracing::info!(
                stuck = report.stuck.len(),
                repaired = report.repaired(),
                truncated = ?report.truncated,
                "sweep done"
            );
            Ok(report)
        })
        .await
}
