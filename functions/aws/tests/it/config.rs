//! `sdk_config`: what every adapter is built with, and that a dead endpoint fails fast.

use std::time::Duration;

use payhook_aws::config::{
    CONNECT_TIMEOUT, MAX_ATTEMPTS, OPERATION_ATTEMPT_TIMEOUT, OPERATION_TIMEOUT,
};
use payhook_aws::{DEFAULT_REGION, DynamoStatusStore, SqsFifoQueue, SsmSecretStore, sdk_config};
use payhook_core::Provider;
use payhook_core::ports::{Queue, QueueError, QueueMessage, SecretError, SecretStore};
use payhook_core::status::{StatusStore, StoreError};
use tokio::net::TcpListener;

use crate::support::{config_for, within};

#[tokio::test]
async fn sdk_config_sets_region_endpoint_timeouts_and_retries() {
    let config = sdk_config(Some("http://127.0.0.1:4566")).await;
    assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:4566"));
    let expected_region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| DEFAULT_REGION.to_owned());
    assert_eq!(
        config.region().map(|r| r.as_ref()),
        Some(expected_region.as_str())
    );
    let timeouts = config.timeout_config().expect("timeouts");
    assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
    assert_eq!(
        timeouts.operation_attempt_timeout(),
        Some(OPERATION_ATTEMPT_TIMEOUT)
    );
    assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
    assert_eq!(
        config.retry_config().map(|r| r.max_attempts()),
        Some(MAX_ATTEMPTS)
    );
    assert!(
        config.http_client().is_some(),
        "payhook's rustls+ring client, not the SDK default"
    );
}

/// A server that accepts connections and never answers: only timeouts end the calls.
async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    endpoint
}

#[tokio::test]
async fn silent_endpoint_times_out_as_unavailable_instead_of_hanging() {
    let endpoint = black_hole().await;
    let config = config_for(&endpoint, true).await;
    let limit = Duration::from_secs(5);

    let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&config));
    assert!(matches!(
        within(limit, store.get("stripe:evt_1")).await,
        Err(StoreError::Unavailable(_))
    ));

    let secrets = SsmSecretStore::new(payhook_aws::aws_sdk_ssm::Client::new(&config), "prod");
    assert!(matches!(
        within(limit, secrets.provider_secrets(Provider::Stripe)).await,
        Err(SecretError::Unavailable(_))
    ));

    let queue = SqsFifoQueue::new(payhook_aws::aws_sdk_sqs::Client::new(&config)).with_queue_url(
        Provider::Stripe,
        format!("{endpoint}/000000000000/stripe.fifo"),
    );
    let message = QueueMessage {
        provider: Provider::Stripe,
        group_id: "pi_1".into(),
        deduplication_id: "stripe:evt_1".into(),
        body: "{}".into(),
        trace_header: None,
    };
    assert!(matches!(
        within(limit, queue.send(message)).await,
        Err(QueueError::Unavailable(_))
    ));
}
