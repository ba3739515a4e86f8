//! The api-key-authorizer Lambda: API Gateway REST `REQUEST` authorizer events in, the API key
//! as `usageIdentifierKey` out (see [`payhook_api_key_authorizer`]).
//!
//! Environment: none of its own; the Powertools variables the telemetry crate reads.

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{LambdaEvent, service_fn};
use payhook_telemetry::Telemetry;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// One thread: Lambda hands an environment one event at a time, and a multi-thread runtime
// would size its pool from the cgroup files (`available_parallelism`) and start its workers
// at every cold start, for no parallelism the handler uses.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    // Logs on stdout (Powertools JSON) and spans to the X-Ray daemon, installed globally.
    let _telemetry = Telemetry::init_lambda()?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            let span = tracing::info_span!(
                "api-key-authorizer",
                function_request_id = %event.context.request_id
            );
            span.in_scope(|| payhook_api_key_authorizer::invoke(&event.payload))
        },
    ))
    .await
}
