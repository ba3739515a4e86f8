//! The sweeper Lambda, invoked by an EventBridge schedule (every 5 minutes as deployed): one
//! sweep per invocation; the scheduled event's content is not used.
//!
//! Environment: [`Config::from_lookup`] (`STATUS_TABLE`, `QUEUE_URL_STRIPE`,
//! `QUEUE_URL_PAYPAL`, `QUEUE_URL_SQUARE`), and the Powertools variables the telemetry crate
//! reads.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use payhook_aws::{DynamoPaymentStore, DynamoStatusStore, SqsFifoQueue, Traced};
use payhook_core::ports::SystemClock;
use payhook_core::sweeper::Sweeper;
use payhook_sweeper::{Config, invoke, summary};
use payhook_telemetry::lambda::{diagnostic, invocation_context};
use payhook_telemetry::{FunctionConfig, FunctionKind, Telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let telemetry = Telemetry::init_lambda()?;
    let function = telemetry.function(FunctionConfig::from_env(FunctionKind::Sweeper)?);
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;

    let sdk = payhook_aws::sdk_config(None).await;
    let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&sdk);
    let payments = DynamoPaymentStore::new(dynamodb.clone()).with_table_name(&config.status_table);
    let store = DynamoStatusStore::new(dynamodb).with_table_name(config.status_table);
    let mut queue = SqsFifoQueue::new(payhook_aws::aws_sdk_sqs::Client::new(&sdk));
    for (provider, url) in config.queue_urls {
        queue = queue.with_queue_url(provider, url);
    }
    let sweeper = Arc::new(Sweeper::new(
        Arc::new(Traced(store)),
        Arc::new(Traced(payments)),
        Arc::new(Traced(queue)),
        Arc::new(SystemClock),
        config.sweeper,
    ));

    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let sweeper = Arc::clone(&sweeper);
        let invocation = function.start_with(invocation_context(&event.context));
        async move {
            invoke(&sweeper, invocation)
                .await
                .map(|report| summary(&report))
                .map_err(|e| -> Diagnostic { diagnostic(&e) })
        }
    }))
    .await
}
