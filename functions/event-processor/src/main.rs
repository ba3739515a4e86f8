//! The event-processor Lambda: the target of every rule on the `payment-events` bus. Its input
//! is `{"rule": "<rule name>", "event": <the EventBridge event>}` from the targets' input
//! transformer. A retryable failure is returned as a Lambda error so EventBridge retries.
//!
//! Environment: [`Config::from_lookup`] (`STATUS_TABLE`), and the Powertools variables the
//! telemetry crate reads.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use payhook_aws::{DynamoStatusStore, Traced};
use payhook_core::event_processor::EventProcessor;
use payhook_core::ports::SystemClock;
use payhook_event_processor::{Config, invoke, routed_event};
use payhook_telemetry::lambda::{diagnostic, invocation_context};
use payhook_telemetry::{FunctionConfig, FunctionKind, Telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let telemetry = Telemetry::init_lambda()?;
    let function = telemetry.function(FunctionConfig::from_env(FunctionKind::EventProcessor)?);
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;

    let sdk = payhook_aws::sdk_config(None).await;
    let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk))
        .with_table_name(config.status_table);
    let processor = Arc::new(EventProcessor::new(
        Arc::new(Traced(store)),
        Arc::new(SystemClock),
    ));

    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let processor = Arc::clone(&processor);
        let invocation = function.start_with(invocation_context(&event.context));
        async move {
            let routed = routed_event(event.payload).map_err(|e| diagnostic(&e))?;
            invoke(&processor, invocation, &routed)
                .await
                .map(|_| ())
                .map_err(|e| -> Diagnostic { diagnostic(&e) })
        }
    }))
    .await
}
