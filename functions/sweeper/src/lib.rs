//! The sweeper Lambda's adapter: one scheduled invocation runs one sweep
//! ([`payhook_core::sweeper::Sweeper`]) inside a telemetry invocation, counts `StuckWebhooks`
//! by provider and state (zeros included, so the alarm and the dashboard see every sweep), and
//! answers a summary; its configuration comes from the environment ([`Config`]). The local
//! stack runs the same [`invoke`] for `payhook sweep`.

use payhook_aws::env::{Env, EnvError};
pub use payhook_aws::env::{QUEUE_URL_VARIABLES, STATUS_TABLE_ENV};
use payhook_core::Provider;
use payhook_core::sweeper::{SweepError, SweepReport, Sweeper, SweeperConfig};
use payhook_telemetry::{ClassifiedError, Dimension, Invocation, Metric};
use serde_json::{Value, json};

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
        Ok(Config {
            status_table: env.status_table(),
            queue_urls: env.queue_urls()?,
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

/// The function as deployed: the sweeper over the status table, the payment records and the
/// providers' queues, built once at cold start by `main.rs`.
#[derive(Debug)]
pub struct Lambda {
    sweeper: Sweeper,
    function: payhook_telemetry::FunctionTelemetry,
}

impl Lambda {
    /// The sweeper over AWS adapters. No I/O: clients connect on first use.
    pub fn compose(
        aws: &payhook_aws::Adapters,
        config: Config,
        function: payhook_telemetry::FunctionTelemetry,
    ) -> Lambda {
        Lambda {
            sweeper: Sweeper::new(
                aws.status_store(&config.status_table),
                aws.payment_store(&config.status_table),
                aws.fifo_queues(config.queue_urls),
                std::sync::Arc::new(payhook_core::ports::SystemClock),
                config.sweeper,
            ),
            function,
        }
    }

    /// One scheduled sweep, inside its telemetry invocation (the event's content is not used).
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<Value>,
    ) -> Result<Value, lambda_runtime::Diagnostic> {
        use payhook_telemetry::lambda::{diagnostic, invocation_context};
        let invocation = self.function.start_with(invocation_context(&event.context));
        invoke(&self.sweeper, invocation)
            .await
            .map(|report| summary(&report))
            .map_err(|e| diagnostic(&e))
    }
}
