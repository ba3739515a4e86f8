//! The sweeper Lambda, invoked by an EventBridge schedule (every 5 minutes as deployed): one
//! sweep per invocation; the scheduled event's content is not used.
//!
//! Environment: [`Config::from_lookup`] (`STATUS_TABLE`, `QUEUE_URL_STRIPE`,
//! `QUEUE_URL_PAYPAL`, `QUEUE_URL_SQUARE`), and the Powertools variables the telemetry crate
//! reads.

use std::sync::Arc;

use payhook_sweeper::{Config, Lambda};
use payhook_telemetry::{FunctionConfig, FunctionKind, Telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// One thread: Lambda hands an environment one event at a time, and a multi-thread runtime
// would size its pool from the cgroup files (`available_parallelism`) and start its workers
// at every cold start, for no parallelism the handler uses.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let telemetry = Telemetry::init_lambda()?;
    let function = telemetry.function(FunctionConfig::from_env(FunctionKind::Sweeper)?);
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let lambda = Arc::new(Lambda::compose(
        &payhook_aws::Adapters::load().await,
        config,
        function,
    ));
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        let lambda = Arc::clone(&lambda);
        async move { lambda.handle(event).await }
    }))
    .await
}
