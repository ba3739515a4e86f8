//! One constructor of every adapter a Lambda composes: each binary loads [`Adapters`] once at
//! cold start and asks for the ports its handler needs, each already wrapped in [`Traced`] (an
//! X-Ray subsegment per AWS call) and shared. Clients are built from one [`SdkConfig`], without
//! I/O, at init or when first used as [`ClientConstruction`] says (on first use in an
//! on-demand Lambda environment, where init and the first request wait alike; at init with
//! provisioned concurrency). The quarantine bucket's S3 client is always built on first use:
//! most invocations never touch the bucket.
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
    ClientConstruction, DynamoPaymentStore, DynamoStatusStore, EventBridgeBus, S3BlobStore,
    SdkClient, SqsFifoQueue, SsmSecretStore, Traced, sdk_config,
};

/// The SDK configuration every adapter of one process is built from, when their clients are
/// built, and the DynamoDB client its stores share.
#[derive(Debug, Clone)]
pub struct Adapters {
    sdk: SdkConfig,
    construction: ClientConstruction,
    dynamodb: SdkClient<aws_sdk_dynamodb::Client>,
}

impl Adapters {
    /// Loads the configuration ([`sdk_config`]: region and endpoint from the environment);
    /// clients are built as [`ClientConstruction::from_env`] says.
    pub async fn load() -> Self {
        Adapters::from_sdk(sdk_config(None).await).with_construction(ClientConstruction::from_env())
    }

    /// Adapters over an SDK configuration made elsewhere (a test's, pointed at moto); clients
    /// are built when asked for.
    pub fn from_sdk(sdk: SdkConfig) -> Self {
        Adapters {
            dynamodb: SdkClient::new(
                &sdk,
                aws_sdk_dynamodb::Client::new,
                ClientConstruction::OnFirstUse,
            ),
            sdk,
            construction: ClientConstruction::Eager,
        }
    }

    /// Builds the clients of the ports asked for from now on as `construction` says.
    pub fn with_construction(mut self, construction: ClientConstruction) -> Self {
        self.construction = construction;
        self
    }

    fn client<C>(&self, make: fn(&SdkConfig) -> C) -> SdkClient<C> {
        SdkClient::new(&self.sdk, make, self.construction)
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
            self.client(aws_sdk_eventbridge::Client::new),
        )))
    }

    /// The stage's provider secrets in SSM, cached for `ttl`.
    pub fn secrets(&self, stage: &str, ttl: Duration) -> Arc<Traced<SsmSecretStore>> {
        Arc::new(Traced(
            SsmSecretStore::new(self.client(aws_sdk_ssm::Client::new), stage).with_cache_ttl(ttl),
        ))
    }

    /// The quarantine bucket. Its client is built when a body is first quarantined or
    /// replayed: most invocations never touch the bucket.
    pub fn blob_store(&self, bucket: &str) -> Arc<Traced<S3BlobStore>> {
        Arc::new(Traced(S3BlobStore::on_first_use(&self.sdk, bucket)))
    }

    /// An SQS client (the processor's consumer side).
    pub fn sqs(&self) -> SdkClient<aws_sdk_sqs::Client> {
        self.client(aws_sdk_sqs::Client::new)
    }

    /// One DynamoDB client for every store (a client is a handle: clones share its
    /// connections), built as the first store asked for is.
    fn dynamodb(&self) -> SdkClient<aws_sdk_dynamodb::Client> {
        if self.construction == ClientConstruction::Eager {
            // Built now (the first store's construction), once for every clone.
            let _ = &*self.dynamodb;
        }
        self.dynamodb.clone()
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
        let blobs = aws.blob_store("b-dev");
        assert_eq!(blobs.0.bucket(), "b-dev");
        assert!(
            !blobs.0.is_client_built(),
            "S3's client waits for a first use"
        );
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
