//! The provider-processor Lambda (one binary, deployed per provider with `PROVIDER`): SQS FIFO
//! batches in, partial batch failures out.
//!
//! Environment: [`Config::from_lookup`] (`PROVIDER`, `STATUS_TABLE`, `EVENT_BUS_NAME`,
//! `MAX_RECEIVE_COUNT`, `TIER_HIGH_MIN`, `TIER_MEDIUM_MIN`), and the Powertools variables the
//! telemetry crate reads.

use std::sync::Arc;

use payhook_provider_processor::{Config, Lambda};
use payhook_telemetry::{FunctionConfig, FunctionKind, Telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// One thread: Lambda hands an environment one event at a time, and a multi-thread runtime
// would size its pool from the cgroup files (`available_parallelism`) and start its workers
// at every cold start, for no parallelism the handler uses.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let telemetry = Telemetry::init_lambda()?;
    let function = telemetry.function(FunctionConfig::from_env(FunctionKind::ProviderProcessor)?);
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let lambda = Arc::new(Lambda::compose(
        &payhook_aws::Adapters::load().await,
        config,
        function,
    ));
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        let lambda = Arc::clone(&lambda);
        async move { Ok::<_, BoxError>(lambda.handle(event).await) }
    }))
    .await
}
