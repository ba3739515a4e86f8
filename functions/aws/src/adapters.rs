//! One constructor of every adapter a Lambda composes: each binary loads [`Adapters`] once at
//! cold start and asks for the ports its handler needs, each already wrapped in [`Traced`] (an
//! X-Ray subsegment per AWS call) and shared. Clients are built when asked for, from one
//! [`SdkConfig`], and building one does no I/O.
//!
//! ```no_run
//! # async fn run() {
//! use payhook_aws::Adapters;
//!
//! let aws = Adapters::load().await;
//! let status = aws.status_store("webhook-processing");
//! let bus = aws.event_bus();
//! # let _ = (status, bus);
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use payhook_core::Provider;

use crate::{
    DynamoPaymentStore, DynamoStatusStore, EventBridgeBus, S3BlobStore, SqsFifoQueue,
    SsmSecretStore, Traced, s3_client, sdk_config,
};

/// The SDK configuration every adapter of one process is built from.
#[derive(Debug, Clone)]
pub struct Adapters {
    sdk: SdkConfig,
}

impl Adapters {
    /// Loads the configuration ([`sdk_config`]: region and endpoint from the environment).
    pub async fn load() -> Self {
        Adapters::from_sdk(sdk_config(None).await)
    }

    /// Adapters over an SDK configuration made elsewhere (a test's, pointed at moto).
    pub fn from_sdk(sdk: SdkConfig) -> Self {
        Adapters { sdk }
    }

    /// The SDK configuration, for a client no port wraps.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The `webhook-processing` table's status items.
    pub fn status_store(&self, table: &str) -> Arc<Traced<DynamoStatusStore>> {
        Arc::new(Traced(
            DynamoStatusStore::new(self.dynamodb()).with_table_name(table),
        ))
    }

    /// The payment records, kept in the same table.
    pub fn payment_store(&self, table: &str) -> Arc<Traced<DynamoPaymentStore>> {
        Arc::new(Traced(
            DynamoPaymentStore::new(self.dynamodb()).with_table_name(table),
        ))
    }

    /// The providers' FIFO queues, by URL.
    pub fn fifo_queues(
        &self,
        urls: impl IntoIterator<Item = (Provider, String)>,
    ) -> Arc<Traced<SqsFifoQueue>> {
        let queue = urls
            .into_iter()
            .fold(SqsFifoQueue::new(self.sqs()), |queue, (provider, url)| {
                queue.with_queue_url(provider, url)
            });
        Arc::new(Traced(queue))
    }

    /// The `payment-events` bus (the entries name it).
    pub fn event_bus(&self) -> Arc<Traced<EventBridgeBus>> {
        Arc::new(Traced(EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&self.sdk),
        )))
    }

    /// The stage's provider secrets in SSM, cached for `ttl`.
    pub fn secrets(&self, stage: &str, ttl: Duration) -> Arc<Traced<SsmSecretStore>> {
        Arc::new(Traced(
            SsmSecretStore::new(aws_sdk_ssm::Client::new(&self.sdk), stage).with_cache_ttl(ttl),
        ))
    }

    /// The quarantine bucket.
    pub fn blob_store(&self, bucket: &str) -> Arc<Traced<S3BlobStore>> {
        Arc::new(Traced(S3BlobStore::new(s3_client(&self.sdk), bucket)))
    }

    /// An SQS client (the processor's consumer side).
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapters() -> Adapters {
        Adapters::from_sdk(
            SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::from_static("us-east-1"))
                .build(),
        )
    }

    #[test]
    fn each_port_is_built_with_what_it_was_given() {
        let aws = adapters();
        assert_eq!(aws.status_store("t-dev").0.table_name(), "t-dev");
        assert_eq!(aws.secrets("dev", Duration::from_secs(1)).0.stage(), "dev");
        assert_eq!(aws.blob_store("b-dev").0.bucket(), "b-dev");
        let queues = aws.fifo_queues([
            (Provider::Stripe, "https://q/stripe.fifo".to_owned()),
            (Provider::Square, "https://q/square.fifo".to_owned()),
        ]);
        assert_eq!(
            queues.0.queue_url(Provider::Stripe),
            Some("https://q/stripe.fifo")
        );
        assert_eq!(
            queues.0.queue_url(Provider::Square),
            Some("https://q/square.fifo")
        );
        assert_eq!(queues.0.queue_url(Provider::Paypal), None);
        let _: &dyn payhook_core::ports::Queue = &*queues;
    }
}
