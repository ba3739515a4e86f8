//! `payhook-aws`: the ports of `payhook-core` implemented with the AWS SDK for Rust.
//!
//! | port | adapter | AWS |
//! |---|---|---|
//! | [`SecretStore`](payhook_core::ports::SecretStore) | [`SsmSecretStore`] | SSM Parameter Store, cached for [`DEFAULT_CACHE_TTL`] |
//! | [`StatusStore`](payhook_core::status::StatusStore) | [`DynamoStatusStore`] | the `webhook-processing` DynamoDB table, conditional writes |
//! | [`Queue`](payhook_core::ports::Queue) | [`SqsFifoQueue`] | one SQS FIFO queue per provider |
//! | (receiving side) | [`SqsConsumer`] | `ReceiveMessage` / `DeleteMessageBatch`, as an event source mapping |
//! | [`EventBus`](payhook_core::ports::EventBus) | [`EventBridgeBus`] | EventBridge `PutEvents` to `payment-events` |
//! | [`BlobStore`](payhook_core::blob::BlobStore) | [`S3BlobStore`] | the quarantine bucket: bodies too large for a status item |
//! | [`CertificateFetcher`](payhook_core::signature::paypal::CertificateFetcher) | [`HttpsCertificateFetcher`] | none: HTTPS to PayPal |
//!
//! A Lambda builds its ports with [`Adapters`] (traced and shared, from one configuration).
//! Every client is built from one [`sdk_config`]: region from the environment (else
//! [`DEFAULT_REGION`]), `AWS_ENDPOINT_URL` or an explicit endpoint, short timeouts, and an
//! HTTPS client on rustls with *ring*. [`create_table`], [`create_bucket`] and
//! [`create_fifo_queue_with_dlq`] provision what the adapters use (tests, `payhook
//! bootstrap`). Each Lambda binary reads its configuration through [`env::Env`] (trimmed, empty
//! is unset, errors name the variable). With the `moto` feature, [`moto`] starts a moto server
//! for integration tests.
//!
//! ```no_run
//! use payhook_aws::{DynamoStatusStore, SqsFifoQueue, SsmSecretStore, sdk_config};
//! use payhook_core::Provider;
//!
//! # async fn run() -> Result<(), payhook_core::ports::QueueError> {
//! let config = sdk_config(None).await;
//! let secrets = SsmSecretStore::new(aws_sdk_ssm::Client::new(&config), "prod");
//! let status = DynamoStatusStore::new(aws_sdk_dynamodb::Client::new(&config));
//! let queue = SqsFifoQueue::from_queue_names(
//!     aws_sdk_sqs::Client::new(&config),
//!     Provider::ALL.map(|p| (p, payhook_aws::queue::default_queue_name(p))),
//! )
//! .await?;
//! # let _ = (secrets, status, queue);
//! # Ok(())
//! # }
//! ```

pub mod adapters;
pub mod blob_store;
pub mod certificate_fetcher;
pub mod client;
pub mod config;
pub mod consumer;
pub mod dlq;
pub mod env;
pub mod error;
pub mod eventbridge;
#[cfg(feature = "moto")]
pub mod moto;
pub mod payment_store;
pub mod provision;
pub mod queue;
pub mod secrets;
pub mod status_store;
pub mod traced;

pub use adapters::Adapters;
pub use blob_store::{S3BlobStore, create_bucket, s3_client};
pub use certificate_fetcher::HttpsCertificateFetcher;
pub use client::{ClientConstruction, SdkClient};
pub use config::{DEFAULT_REGION, config_loader, sdk_config};
pub use consumer::{QueueDepth, Received, SqsConsumer};
pub use error::ProvisionError;
pub use eventbridge::EventBridgeBus;
pub use payment_store::DynamoPaymentStore;
pub use queue::{SqsFifoQueue, create_fifo_queue_with_dlq};
pub use secrets::{DEFAULT_CACHE_TTL, SsmSecretStore};
pub use status_store::{DynamoStatusStore, create_table};
pub use traced::Traced;

// Re-exported so callers can name the SDK types without their own dependency lines.
pub use aws_config;
pub use aws_sdk_dynamodb;
pub use aws_sdk_eventbridge;
pub use aws_sdk_s3;
pub use aws_sdk_sqs;
pub use aws_sdk_ssm;
