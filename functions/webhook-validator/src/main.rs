//! The webhook-validator Lambda: API Gateway REST proxy events in, 202/200/4xx/503 out.
//!
//! Environment: see [`payhook_webhook_validator::Config`] (stage, table, queue URLs, secrets
//! cache, signature tolerances, PayPal environment, idempotency retention, body limit, the
//! quarantine bucket), and the
//! Powertools variables the telemetry crate reads.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use lambda_runtime::{LambdaEvent, service_fn};
use payhook_aws::{
    DynamoStatusStore, HttpsCertificateFetcher, S3BlobStore, SqsFifoQueue, SsmSecretStore, Traced,
    s3_client,
};
use payhook_core::ports::SystemClock;
use payhook_core::signature::{PaypalCertificateCache, TrustAnchors};
use payhook_core::validator::Validator;
use payhook_telemetry::lambda::invocation_context;
use payhook_telemetry::{FunctionConfig, FunctionKind, Telemetry};
use payhook_webhook_validator::Config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let telemetry = Telemetry::init_lambda()?;
    let function = telemetry.function(FunctionConfig::from_env(FunctionKind::WebhookValidator)?);
    let config = Config::from_lookup(|name| std::env::var(name).ok())?;

    let sdk = payhook_aws::sdk_config(None).await;
    let secrets = SsmSecretStore::new(payhook_aws::aws_sdk_ssm::Client::new(&sdk), config.stage)
        .with_cache_ttl(Duration::from_secs(config.secrets_ttl_secs));
    let mut store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk));
    if let Some(table) = config.status_table {
        store = store.with_table_name(table);
    }
    let mut queue = SqsFifoQueue::new(payhook_aws::aws_sdk_sqs::Client::new(&sdk));
    for (provider, url) in config.queue_urls {
        queue = queue.with_queue_url(provider, url);
    }
    let certificates = PaypalCertificateCache::new(
        Arc::new(HttpsCertificateFetcher::new()?),
        TrustAnchors::mozilla(),
    );
    let mut validator = Validator::new(
        Arc::new(Traced(secrets)),
        Arc::new(Traced(store)),
        Arc::new(Traced(queue)),
        Arc::new(certificates),
        Arc::new(SystemClock),
        config.validator,
    );
    if let Some(bucket) = config.quarantine_bucket {
        validator = validator
            .with_quarantine_blobs(Arc::new(Traced(S3BlobStore::new(s3_client(&sdk), bucket))));
    }
    let validator = Arc::new(validator);

    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayProxyRequest>| {
            let validator = Arc::clone(&validator);
            let invocation = function.start_with(invocation_context(&event.context));
            async move {
                Ok::<_, BoxError>(
                    payhook_webhook_validator::invoke(&validator, invocation, &event.payload).await,
                )
            }
        },
    ))
    .await
}
