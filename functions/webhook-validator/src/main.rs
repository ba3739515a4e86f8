//! The webhook-validator Lambda: API Gateway REST proxy events in, 202/200/4xx/503 out.
//!
//! Environment: see [`payhook_webhook_validator::Config`] (stage, table, queue URLs, secrets
//! cache, signature tolerances, PayPal environment, idempotency retention, body limit, the
//! quarantine bucket), and the Powertools variables the telemetry crate reads.

use std::sync::Arc;

use payhook_telemetry::{FunctionConfig, FunctionKind, Telemetry};
use payhook_webhook_validator::{Config, Lambda};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// One thread: Lambda hands an environment one event at a time, and a multi-thread runtime
// would size its pool from the cgroup files (`available_parallelism`) and start its workers
// at every cold start, for no parallelism the handler uses.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let telemetry = Telemetry::init_lambda()?;
    let function = telemetry.function(FunctionConfig::from_env(FunctionKind::WebhookValidator)?);
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;
    let lambda = Arc::new(Lambda::compose(
        &payhook_aws::Adapters::load().await,
        config,
        function,
    )?);
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        let lambda = Arc::clone(&lambda);
        async move { Ok::<_, BoxError>(lambda.handle(event).await) }
    }))
    .await
}
