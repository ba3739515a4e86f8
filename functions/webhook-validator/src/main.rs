//! The webhook-validator Lambda: API Gateway REST proxy events in, 202/200/4xx/503 out.
//!
//! Environment: `PAYHOOK_STAGE` (SSM parameters under `/payhook/{stage}/…`), `STATUS_TABLE`,
//! `QUEUE_URL_STRIPE`, `QUEUE_URL_PAYPAL`, `QUEUE_URL_SQUARE`, `SECRETS_TTL_SECONDS` (300),
//! `STRIPE_TOLERANCE_SECONDS` (300), and the Powertools variables the telemetry crate reads.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use lambda_runtime::{LambdaEvent, service_fn};
use payhook_aws::{
    DynamoStatusStore, HttpsCertificateFetcher, SqsFifoQueue, SsmSecretStore, Traced,
};
use payhook_core::Provider;
use payhook_core::ports::SystemClock;
use payhook_core::signature::{PaypalCertificateCache, TrustAnchors};
use payhook_core::validator::{Validator, ValidatorConfig};
use payhook_telemetry::lambda::invocation_context;
use payhook_telemetry::{FunctionConfig, FunctionKind, Telemetry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn env_u64(key: &str, default: u64) -> Result<u64, BoxError> {
    env(key).map_or(Ok(default), |v| {
        v.trim()
            .parse()
            .map_err(|_| format!("{key}=`{v}` is not a whole number").into())
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let telemetry = Telemetry::init_lambda()?;
    let function = telemetry.function(FunctionConfig::from_env(FunctionKind::WebhookValidator)?);

    let sdk = payhook_aws::sdk_config(None).await;
    let stage = env("PAYHOOK_STAGE").unwrap_or_else(|| "prod".to_owned());
    let secrets = SsmSecretStore::new(payhook_aws::aws_sdk_ssm::Client::new(&sdk), stage)
        .with_cache_ttl(Duration::from_secs(env_u64("SECRETS_TTL_SECONDS", 300)?));
    let mut store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk));
    if let Some(table) = env("STATUS_TABLE") {
        store = store.with_table_name(table);
    }
    let mut queue = SqsFifoQueue::new(payhook_aws::aws_sdk_sqs::Client::new(&sdk));
    for provider in Provider::ALL {
        let key = format!("QUEUE_URL_{}", provider.as_str().to_uppercase());
        let url = env(&key).ok_or_else(|| format!("{key} is not set"))?;
        queue = queue.with_queue_url(provider, url);
    }
    let certificates = PaypalCertificateCache::new(
        Arc::new(HttpsCertificateFetcher::new()?),
        TrustAnchors::mozilla(),
    );
    let validator = Arc::new(Validator::new(
        Arc::new(Traced(secrets)),
        Arc::new(Traced(store)),
        Arc::new(Traced(queue)),
        Arc::new(certificates),
        Arc::new(SystemClock),
        ValidatorConfig {
            stripe_tolerance_secs: env_u64("STRIPE_TOLERANCE_SECONDS", 300)?,
        },
    ));

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
