//! The provider-processor Lambda (one binary, deployed per provider with `PROVIDER`): SQS FIFO
//! batches in, partial batch failures out.
//!
//! Environment: [`Config::from_lookup`] (`PROVIDER`, `STATUS_TABLE`, `EVENT_BUS_NAME`,
//! `MAX_RECEIVE_COUNT`, `TIER_HIGH_MIN`, `TIER_MEDIUM_MIN`), and the Powertools variables the
//! telemetry crate reads.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use payhook_aws::{DynamoPaymentStore, DynamoStatusStore, EventBridgeBus, SqsConsumer, Traced};
use payhook_core::ports::SystemClock;
use payhook_core::processor::{ProviderProcessor, delay_retries};
use payhook_provider_processor::{
    Config, batch_response, deliveries, invoke, queue_records, record_tracing,
};
use payhook_telemetry::lambda::invocation_context;
use payhook_telemetry::{FunctionConfig, FunctionKind, Telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let telemetry = Telemetry::init_lambda()?;
    let function = telemetry.function(FunctionConfig::from_env(FunctionKind::ProviderProcessor)?);
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;

    let sdk = payhook_aws::sdk_config(None).await;
    let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&sdk);
    let payments = DynamoPaymentStore::new(dynamodb.clone()).with_table_name(&config.status_table);
    let store = DynamoStatusStore::new(dynamodb).with_table_name(config.status_table);
    let bus = EventBridgeBus::new(payhook_aws::aws_sdk_eventbridge::Client::new(&sdk));
    let sqs = payhook_aws::aws_sdk_sqs::Client::new(&sdk);
    let processor = Arc::new(
        ProviderProcessor::new(
            Arc::new(Traced(store)),
            Arc::new(Traced(payments)),
            Arc::new(Traced(bus)),
            Arc::new(SystemClock),
            config.processor,
        )
        .with_tracing(record_tracing()),
    );

    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let processor = Arc::clone(&processor);
        let sqs = sqs.clone();
        let invocation = function.start_with(invocation_context(&event.context));
        // The claims' lease ends when this invocation does (or when the messages become
        // visible again, if sooner).
        let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        async move {
            let records = queue_records(&event.payload);
            let outcome = invoke(&processor, invocation, &records, deadline_ms).await;
            // Failed records come back after their short retry delay, not the queue's
            // visibility timeout.
            if let (Some(url), deliveries) = deliveries(&event.payload) {
                let queue = SqsConsumer::new(sqs.clone(), url);
                delay_retries(&outcome, &deliveries, &queue).await;
            }
            Ok::<_, BoxError>(batch_response(&outcome))
        }
    }))
    .await
}
