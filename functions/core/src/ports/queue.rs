//! The provider FIFO queues: the sending port (the validator, the sweeper), the visibility port
//! (a processor's caller), and a queue that only records what it is sent. The AWS adapters are
//! `payhook_aws::SqsFifoQueue` and `payhook_aws::SqsConsumer`; the SQS FIFO emulator of the
//! local stack is `payhook-memory`'s.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::provider::Provider;

/// SQS's largest message: 256 KiB (body plus attributes).
pub const SQS_MAX_MESSAGE_BYTES: usize = 262_144;

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
/// SQS FIFO does (used by tests and benches; the local stack has the full FIFO emulation,
/// `payhook_memory::sqs`).
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

#[async_trait]
impl<Q: Queue + ?Sized> Queue for std::sync::Arc<Q> {
    fn max_message_bytes(&self) -> usize {
        (**self).max_message_bytes()
    }

    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        (**self).send(message).await
    }
}
