//! The ports the handlers are written against, and their in-memory adapters. The AWS adapters
//! live in `payhook-aws`; `payhook serve` and the tests use the ones here.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::provider::Provider;
use crate::secret::Secret;

/// SQS's largest message: 256 KiB (body plus attributes).
pub const SQS_MAX_MESSAGE_BYTES: usize = 262_144;

/// What the validator needs to verify one provider's webhooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderSecrets {
    /// Stripe endpoint secrets (several during a rotation) or Square signature keys.
    pub signing_secrets: Vec<Secret>,
    /// Square: the notification URL configured on the subscription (signed with the body).
    pub notification_url: Option<String>,
    /// PayPal: the receiver's webhook id (part of the signed string).
    pub webhook_id: Option<String>,
}

/// Where provider secrets come from (SSM Parameter Store in AWS).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secrets of `provider`. A provider with nothing configured fails closed.
    async fn provider_secrets(&self, provider: Provider) -> Result<ProviderSecrets, SecretError>;
}

/// Secrets could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The provider has no secrets configured.
    #[error("no secrets configured for {0}")]
    NotConfigured(Provider),
    /// The store could not be reached.
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
}

impl SecretError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::NotConfigured(_) => "provider_not_configured",
            SecretError::Unavailable(_) => "secret_store_unavailable",
        }
    }
}

/// Secrets held in memory (local stack, tests).
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    secrets: HashMap<Provider, ProviderSecrets>,
}

impl MemorySecretStore {
    /// An empty store: every provider is unconfigured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the secrets of one provider.
    pub fn with(mut self, provider: Provider, secrets: ProviderSecrets) -> Self {
        self.secrets.insert(provider, secrets);
        self
    }
}

#[async_trait]
impl SecretStore for MemorySecretStore {
    async fn provider_secrets(&self, provider: Provider) -> Result<ProviderSecrets, SecretError> {
        self.secrets
            .get(&provider)
            .cloned()
            .ok_or(SecretError::NotConfigured(provider))
    }
}

/// One message for a provider's FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// Which provider's queue.
    pub provider: Provider,
    /// `MessageGroupId`: the payment id, so one payment's events stay in order.
    pub group_id: String,
    /// `MessageDeduplicationId`: the webhook id.
    pub deduplication_id: String,
    /// The canonical event's JSON.
    pub body: String,
    /// X-Ray trace header for the `AWSTraceHeader` system attribute.
    pub trace_header: Option<String>,
}

impl QueueMessage {
    /// Bytes SQS counts against its message size limit.
    pub fn size(&self) -> usize {
        self.body.len()
    }
}

/// A queue send failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The message is larger than the queue accepts.
    #[error("message of {size} bytes exceeds the queue's {limit}-byte limit")]
    TooLarge {
        /// The message size.
        size: usize,
        /// The queue's limit.
        limit: usize,
    },
    /// The queue could not be reached or refused the message.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

impl QueueError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::TooLarge { .. } => "payload_too_large",
            QueueError::Unavailable(_) => "queue_unavailable",
        }
    }
}

/// The provider FIFO queues.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Largest message body accepted, in bytes.
    fn max_message_bytes(&self) -> usize {
        SQS_MAX_MESSAGE_BYTES
    }

    /// Sends one message; returns the queue's message id once it is durably stored.
    async fn send(&self, message: QueueMessage) -> Result<String, QueueError>;
}

/// The receiving side of a provider queue as a processor's caller sees it: the visibility of
/// one delivery can be changed (`ChangeMessageVisibility`), so a failed record comes back after
/// its retry delay instead of the queue's whole visibility timeout.
#[async_trait]
pub trait MessageVisibility: Send + Sync {
    /// Makes the delivery with `receipt_handle` visible again `timeout_secs` from now.
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout_secs: u32,
    ) -> Result<(), QueueError>;
}

/// A queue that keeps every sent message in memory, deduplicating on the deduplication id as
/// SQS FIFO does (used by tests and benches; the local stack has the full FIFO emulation).
#[derive(Debug, Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<QueueMessage>>,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<QueueMessage> {
        self.sent.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        if message.size() > self.max_message_bytes() {
            return Err(QueueError::TooLarge {
                size: message.size(),
                limit: self.max_message_bytes(),
            });
        }
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| QueueError::Unavailable("queue lock poisoned".into()))?;
        if let Some(pos) = sent.iter().position(|m| {
            m.provider == message.provider && m.deduplication_id == message.deduplication_id
        }) {
            return Ok(format!("mem-{pos}"));
        }
        sent.push(message);
        Ok(format!("mem-{}", sent.len() - 1))
    }
}

/// Wall-clock time, injectable for tests.
pub trait Clock: Send + Sync {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that stands still at a set instant (tests, `payhook verify --now`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

#[async_trait]
impl<Q: Queue + ?Sized> Queue for std::sync::Arc<Q> {
    fn max_message_bytes(&self) -> usize {
        (**self).max_message_bytes()
    }

    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        (**self).send(message).await
    }
}
