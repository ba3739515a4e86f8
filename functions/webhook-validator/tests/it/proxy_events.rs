//! API Gateway REST proxy events in, proxy responses out: base64 bodies, header case, the JSON
//! error body shape and the path parameter.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use aws_lambda_events::encodings::Body;
use base64::Engine as _;
use payhook_core::ports::{FixedClock, MemoryQueue, MemorySecretStore, ProviderSecrets};
use payhook_core::signature::{
    PaypalCertificateCache, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::status::MemoryStatusStore;
use payhook_core::validator::{Validator, ValidatorConfig};
use payhook_core::{Provider, Secret};
use payhook_testkit::conformance::workspace_root;
use payhook_webhook_validator::handle_proxy_event;
use serde_json::Value;

const NOW_MS: i64 = 1_767_225_600_000;
const SECRET: &str = "whsec_proxy_test";

fn validator(queue: Arc<MemoryQueue>) -> Validator {
    let secrets = MemorySecretStore::new().with(
        Provider::Stripe,
        ProviderSecrets {
            signing_secrets: vec![Secret::new(SECRET)],
            ..Default::default()
        },
    );
    Validator::new(
        Arc::new(secrets),
        Arc::new(MemoryStatusStore::new()),
        queue,
        Arc::new(PaypalCertificateCache::new(
            Arc::new(StaticCertificateFetcher::new(Vec::new())),
            TrustAnchors::mozilla(),
        )),
        Arc::new(FixedClock(NOW_MS)),
        // The recorded fixtures date from 2025: kept inside the accepted event age.
        ValidatorConfig {
            idempotency_retention_secs: 20 * 365 * 24 * 3600,
            ..ValidatorConfig::default()
        },
    )
}

/// A proxy event as API Gateway sends it (from the documented REST proxy shape).
fn proxy_event(
    provider: &str,
    headers: &[(&str, String)],
    body: &str,
    base64: bool,
) -> ApiGatewayProxyRequest {
    let mut event = serde_json::json!({
        "resource": "/webhooks/{provider}",
        "path": format!("/webhooks/{provider}"),
        "httpMethod": "POST",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"provider": provider},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "abc123", "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "identity": {"sourceIp": "127.0.0.1"},
            "resourcePath": "/webhooks/{provider}", "httpMethod": "POST", "apiId": "1234567890"
        },
        "body": body,
        "isBase64Encoded": base64
    });
    for (name, value) in headers {
        event["headers"][*name] = Value::String(value.clone());
        event["multiValueHeaders"][*name] = serde_json::json!([value]);
    }
    serde_json::from_value(event).unwrap()
}

fn response_json(body: &Option<Body>) -> Value {
    match body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("expected a text body, got {other:?}"),
    }
}

fn sample() -> String {
    std::fs::read_to_string(
        workspace_root().join("tests/fixtures/stripe/payment_intent.succeeded.jpy.json"),
    )
    .unwrap()
}

#[tokio::test]
async fn base64_encoded_body_is_decoded_before_verification() {
    let body = sample();
    let sig = StripeVerifier::sign(&Secret::new(SECRET), NOW_MS / 1000, body.as_bytes());
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    let queue = Arc::new(MemoryQueue::new());
    let out = handle_proxy_event(
        &validator(queue.clone()),
        &proxy_event("stripe", &[("stripe-signature", sig)], &encoded, true),
        None,
    )
    .await;
    assert_eq!(out.response.status_code, 202, "{:?}", out.response.body);
    assert_eq!(queue.messages().len(), 1);
}

#[tokio::test]
async fn invalid_base64_is_400_with_a_code() {
    let out = handle_proxy_event(
        &validator(Arc::new(MemoryQueue::new())),
        &proxy_event("stripe", &[], "!!not base64!!", true),
        None,
    )
    .await;
    assert_eq!(out.response.status_code, 400);
    assert_eq!(response_json(&out.response.body)["error"], "invalid_base64");
}

#[tokio::test]
async fn error_bodies_are_json_with_error_and_message() {
    let body = sample();
    let out = handle_proxy_event(
        &validator(Arc::new(MemoryQueue::new())),
        &proxy_event(
            "stripe",
            &[("Stripe-Signature", "t=1,v1=00".into())],
            &body,
            false,
        ),
        None,
    )
    .await;
    assert_eq!(out.response.status_code, 401);
    let json = response_json(&out.response.body);
    assert_eq!(json["error"], "no_matching_signature");
    assert!(json["message"].is_string());
    assert_eq!(
        out.response.headers.get("content-type").unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn unknown_provider_path_is_404() {
    let out = handle_proxy_event(
        &validator(Arc::new(MemoryQueue::new())),
        &proxy_event("adyen", &[], "{}", false),
        None,
    )
    .await;
    assert_eq!(out.response.status_code, 404);
    assert_eq!(
        response_json(&out.response.body)["error"],
        "unknown_provider"
    );
}
