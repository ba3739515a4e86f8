//! X-Ray subsegments for the ports' calls: [`Traced`] wraps any port and runs each call inside
//! a [`payhook_telemetry::aws_call_span`] (`namespace: aws`, the service and operation named),
//! marked failed with the error's code when it fails. The Lambda binaries wrap the AWS adapters
//! with it; the local stack wraps its in-memory stand-ins the same way, so a local run's traces
//! have the shape of the deployed ones.

use async_trait::async_trait;
use payhook_core::Provider;
use payhook_core::blob::{BlobError, BlobStore};
use payhook_core::ports::{
    BusEntry, BusError, EntryResult, EventBus, ProviderSecrets, Queue, QueueError, QueueMessage,
    SecretError, SecretStore,
};
use payhook_core::status::{
    PutOutcome, StatusItem, StatusPage, StatusQuery, StatusStore, StoreError, Transition,
    TransitionOutcome, TransmissionOutcome, TransmissionRecord,
};
use payhook_telemetry::{aws_call_span, mark_span_failed};
use tracing::Instrument as _;

/// A port whose calls are traced as AWS calls.
#[derive(Debug, Clone)]
pub struct Traced<T>(pub T);

async fn traced<R, E>(
    service: &'static str,
    operation: &'static str,
    code: impl Fn(&E) -> &'static str,
    call: impl std::future::Future<Output = Result<R, E>>,
) -> Result<R, E> {
    let span = aws_call_span(service, operation);
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        mark_span_failed(&span, code(e));
    }
    result
}

#[async_trait]
impl<T: StatusStore> StatusStore for Traced<T> {
    async fn get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError> {
        traced(
            "DynamoDB",
            "GetItem",
            StoreError::code,
            self.0.get(webhook_id),
        )
        .await
    }

    async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError> {
        traced(
            "DynamoDB",
            "PutItem",
            StoreError::code,
            self.0.put_new(item),
        )
        .await
    }

    async fn transition(
        &self,
        webhook_id: &str,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        traced(
            "DynamoDB",
            "UpdateItem",
            StoreError::code,
            self.0.transition(webhook_id, transition),
        )
        .await
    }

    async fn record_transmission(
        &self,
        record: &TransmissionRecord,
        now_unix: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        traced(
            "DynamoDB",
            "PutItem",
            StoreError::code,
            self.0.record_transmission(record, now_unix),
        )
        .await
    }

    async fn list_by_status(&self, query: &StatusQuery) -> Result<StatusPage, StoreError> {
        traced(
            "DynamoDB",
            "Query",
            StoreError::code,
            self.0.list_by_status(query),
        )
        .await
    }
}

#[async_trait]
impl<T: Queue> Queue for Traced<T> {
    fn max_message_bytes(&self) -> usize {
        self.0.max_message_bytes()
    }

    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        traced("SQS", "SendMessage", QueueError::code, self.0.send(message)).await
    }
}

#[async_trait]
impl<T: EventBus> EventBus for Traced<T> {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        traced(
            "EventBridge",
            "PutEvents",
            BusError::code,
            self.0.put_events(entries),
        )
        .await
    }
}

#[async_trait]
impl<T: SecretStore> SecretStore for Traced<T> {
    async fn provider_secrets(&self, provider: Provider) -> Result<ProviderSecrets, SecretError> {
        // Cached reads make no call most of the time; the span still shows the wait.
        traced(
            "SSM",
            "GetParameters",
            SecretError::code,
            self.0.provider_secrets(provider),
        )
        .await
    }
}

#[async_trait]
impl<T: BlobStore> BlobStore for Traced<T> {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        traced("S3", "PutObject", BlobError::code, self.0.put(key, bytes)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        traced("S3", "GetObject", BlobError::code, self.0.get(key)).await
    }
}
