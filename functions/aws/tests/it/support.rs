//! What the tests share: the moto server, its SDK configuration, and endpoints that fail.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use payhook_aws::aws_config::retry::RetryConfig;
use payhook_aws::aws_config::timeout::TimeoutConfig;
use payhook_aws::aws_config::{Region, SdkConfig};
use payhook_aws::moto::{self, MotoServer};

/// SDK configuration for the shared moto server; `None` when moto is not installed.
pub(crate) async fn moto_config() -> Option<SdkConfig> {
    let server = MotoServer::shared()?;
    Some(server.sdk_config().await)
}

/// An endpoint where nothing listens: connections are refused at once.
pub(crate) fn refused_endpoint() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// SDK configuration for `endpoint` with dummy credentials, built by payhook's own loader,
/// optionally with a short attempt timeout and a single attempt.
pub(crate) async fn config_for(endpoint: &str, short_timeouts: bool) -> SdkConfig {
    let credentials = payhook_aws::aws_sdk_sqs::config::Credentials::new(
        moto::ACCESS_KEY_ID,
        moto::ACCESS_KEY_ID,
        None,
        None,
        "tests",
    );
    let mut loader = payhook_aws::config_loader(Some(endpoint))
        .region(Region::from_static(moto::REGION))
        .credentials_provider(credentials);
    if short_timeouts {
        loader = loader
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(300))
                    .operation_attempt_timeout(Duration::from_millis(500))
                    .build(),
            )
            .retry_config(RetryConfig::disabled());
    }
    loader.load().await
}

/// Runs `future`, failing the test if it takes longer than `limit` (an adapter must not hang).
pub(crate) async fn within<T>(limit: Duration, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}
