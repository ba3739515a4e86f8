//! In-memory SQS FIFO queues with AWS's semantics: the queue stand-in of the local stack
//! (`payhook serve`) between the webhook validator and the provider processors, and of the
//! tests that check the pipeline's delivery guarantees.
//!
//! [`FifoQueue`] is one FIFO queue (optionally with its FIFO dead-letter queue);
//! [`MemorySqs`] holds one per provider and implements the [`Queue`] port, so the validator
//! sends to it exactly as it sends to SQS. Time comes from an injected [`Clock`]
//! ([`ManualClock`] in tests), so visibility timeouts and the deduplication window are tested
//! without sleeping.
//!
//! # Semantics
//!
//! - **FIFO per message group.** Messages of one `MessageGroupId` are delivered in send order.
//!   While a group has an in-flight message (received, not deleted, visibility not expired) no
//!   other message of that group is delivered. One receive may return several messages of a
//!   group (in order), filling up from further groups; `MaxNumberOfMessages` is 1 to
//!   [`MAX_RECEIVE_BATCH`], anything else is [`SqsError::InvalidBatchSize`].
//! - **Deduplication.** A `MessageDeduplicationId` (or, with content-based deduplication, the
//!   hex SHA-256 of the body) seen in the last [`DEDUPLICATION_WINDOW_MS`] (counted from the
//!   first send) makes a send succeed with the original message id without delivering anything,
//!   even after the original was deleted or dead-lettered. An explicit id wins over the content
//!   hash, as in SQS.
//! - **Visibility timeout** per queue (default [`DEFAULT_VISIBILITY_TIMEOUT_SECS`]), changed for
//!   the queue with [`FifoQueue::set_visibility_timeout_secs`] or for one delivery with
//!   [`FifoQueue::change_visibility`]. A message not deleted in time becomes visible again,
//!   keeping its receive count, at the head of its group.
//! - **Redrive policy.** A queue configured with a `maxReceiveCount` has a FIFO dead-letter
//!   queue; a message already received that many times moves there when it would be received
//!   again, keeping body, group id, deduplication id, trace header, message id and receive
//!   count. [`FifoQueue::redrive_dlq`] moves dead letters back (see there).
//! - **Receipt handles** are unique per receive. A handle is only good while its delivery is in
//!   flight: deleting (or changing the visibility) with a handle whose visibility has expired
//!   is refused with [`SqsError::ReceiptHandleExpired`], as SQS FIFO does, so a stale handle can
//!   never delete a newer delivery of the same message. Deleting a message that is no longer in
//!   the queue (already deleted, or dead-lettered) succeeds and changes nothing, as
//!   `DeleteMessage` does.
//! - **Attributes** returned on receive: `ApproximateReceiveCount`,
//!   `ApproximateFirstReceiveTimestamp`, `SentTimestamp`, `MessageGroupId`,
//!   `MessageDeduplicationId`, `SequenceNumber` and the `AWSTraceHeader` system attribute
//!   ([`MessageAttributes::to_map`] gives them under SQS's names).
//! - **Size**: empty bodies are refused; bodies above the queue's limit (default
//!   [`SQS_MAX_MESSAGE_BYTES`], 256 KiB) are [`SqsError::TooLarge`] ([`QueueError::TooLarge`]
//!   through the port).
//! - **Long polling**: [`FifoQueue::receive_wait`] returns as soon as a message is deliverable,
//!   or empty after the wait (at most [`MAX_RECEIVE_WAIT`]); [`FifoQueue::wait_for_messages`]
//!   and [`MemorySqs::wait_for_messages`] wait without receiving. Waiters sleep on a
//!   [`tokio::sync::Notify`]; while messages are in flight they also re-read the clock every
//!   few tens of milliseconds so that expiring visibility wakes them (whatever the clock).
//! - Message delays are not emulated: the delayed count in [`QueueStats`] is always 0.
//!
//! # Cost
//!
//! Each queue is one mutex over: a map of groups (each a `VecDeque` in send order), a queue of
//! groups that can deliver, an index from sequence number to group, a min-heap of visibility
//! deadlines and a time-ordered queue of deduplication-window expiries (old ids are pruned as
//! time passes). Send, receive (per message), delete and change of visibility are O(1) or
//! O(log n) amortised; listing and redriving a DLQ are O(n log n).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use payhook_memory::sqs::{FifoQueue, FifoQueueConfig, ManualClock, SendMessage};
//!
//! let clock = Arc::new(ManualClock::new(1_767_225_600_000));
//! let queue = FifoQueue::new(FifoQueueConfig::new("stripe.fifo").max_receive_count(3), clock.clone())?;
//! queue.send(SendMessage::new("pi_1", r#"{"n":1}"#).deduplication_id("stripe:evt_1"))?;
//! queue.send(SendMessage::new("pi_1", r#"{"n":2}"#).deduplication_id("stripe:evt_2"))?;
//! // A provider retry within five minutes is accepted but not delivered twice.
//! let retry = queue.send(SendMessage::new("pi_1", r#"{"n":1}"#).deduplication_id("stripe:evt_1"))?;
//! assert!(retry.duplicate);
//!
//! // Both messages of group pi_1 come in one batch, in order.
//! let batch = queue.receive(10)?;
//! assert_eq!(batch.len(), 2);
//! queue.delete(&batch[0].receipt_handle)?;
//!
//! // The second is still in flight, so the group is locked ...
//! assert!(queue.receive(10)?.is_empty());
//! // ... until its visibility timeout (30 s by default) expires: then it comes back.
//! clock.advance(30_000);
//! let again = queue.receive(10)?;
//! assert_eq!(again[0].body, r#"{"n":2}"#);
//! assert_eq!(again[0].attributes.approximate_receive_count, 2);
//! # Ok::<(), payhook_memory::sqs::SqsError>(())
//! ```

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use payhook_core::Provider;
use payhook_core::ports::{
    Clock, MessageVisibility, Queue, QueueError, QueueMessage, SQS_MAX_MESSAGE_BYTES,
};

/// How long a deduplication id is remembered, from the first send: 5 minutes (SQS FIFO).
pub const DEDUPLICATION_WINDOW_MS: i64 = 5 * 60 * 1000;

/// A queue's visibility timeout unless configured otherwise: 30 s (SQS's default).
pub const DEFAULT_VISIBILITY_TIMEOUT_SECS: u32 = 30;

/// The longest visibility timeout SQS accepts: 12 hours.
pub const MAX_VISIBILITY_TIMEOUT_SECS: u32 = 43_200;

/// The most messages one receive returns (SQS's `MaxNumberOfMessages` limit).
pub const MAX_RECEIVE_BATCH: usize = 10;

/// The longest long-poll wait SQS accepts (`WaitTimeSeconds` ≤ 20).
pub const MAX_RECEIVE_WAIT: Duration = Duration::from_secs(20);

/// payhook's `maxReceiveCount` unless configured otherwise (the Pulumi program's default too).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// The largest `maxReceiveCount` SQS accepts in a redrive policy.
pub const MAX_RECEIVE_COUNT_LIMIT: u32 = 1000;

/// The longest `MessageGroupId` or `MessageDeduplicationId`: 128 characters.
pub const MAX_ID_CHARS: usize = 128;

/// The longest FIFO queue name, `.fifo` included: 80 characters.
pub const MAX_QUEUE_NAME_CHARS: usize = 80;

/// The smallest maximum message size SQS lets a queue be configured with: 1 KiB.
pub const MIN_MAX_MESSAGE_BYTES: usize = 1024;

/// The suffix SQS requires of FIFO queue names.
pub const FIFO_SUFFIX: &str = ".fifo";

/// How often a waiter re-reads the clock while messages are in flight: their visibility may
/// expire at any moment of an injected clock, and nothing else would wake the waiter.
const WAIT_RECHECK: Duration = Duration::from_millis(25);

/// Leases kept in the deadline heap before stale entries are swept out.
const LEASE_HEAP_SLACK: usize = 1024;

/// Why an SQS operation on the in-memory queues was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqsError {
    /// The body is larger than the queue accepts.
    #[error("message of {size} bytes exceeds the queue's {limit}-byte limit")]
    TooLarge {
        /// The body's size in bytes.
        size: usize,
        /// The queue's limit.
        limit: usize,
    },
    /// The body is empty (SQS requires at least one character).
    #[error("the message body is empty")]
    EmptyBody,
    /// `MaxNumberOfMessages` outside 1 to [`MAX_RECEIVE_BATCH`] (or too many batch entries).
    #[error("batch size must be between 1 and {MAX_RECEIVE_BATCH}, got {0}")]
    InvalidBatchSize(usize),
    /// A long-poll wait above [`MAX_RECEIVE_WAIT`].
    #[error("long-poll wait must be at most 20 s, got {0:?}")]
    InvalidWaitTime(Duration),
    /// A visibility timeout above [`MAX_VISIBILITY_TIMEOUT_SECS`].
    #[error("visibility timeout must be at most {MAX_VISIBILITY_TIMEOUT_SECS} s, got {0} s")]
    InvalidVisibilityTimeout(u32),
    /// A queue configuration SQS would refuse.
    #[error("invalid queue attribute: {0}")]
    InvalidQueueAttribute(String),
    /// The `MessageGroupId` is empty, too long or has characters SQS refuses.
    #[error("invalid MessageGroupId: {0}")]
    InvalidGroupId(&'static str),
    /// No `MessageDeduplicationId` on a queue without content-based deduplication.
    #[error(
        "the queue has no content-based deduplication and the message has no MessageDeduplicationId"
    )]
    MissingDeduplicationId,
    /// The `MessageDeduplicationId` is too long or has characters SQS refuses.
    #[error("invalid MessageDeduplicationId: {0}")]
    InvalidDeduplicationId(&'static str),
    /// The receipt handle was not issued by this queue.
    #[error("the receipt handle was not issued by this queue")]
    ReceiptHandleIsInvalid,
    /// The receipt handle's delivery is over: its visibility expired (the message may have been
    /// received again since, with a new handle). Receive the message again to act on it.
    #[error("the receipt handle has expired: the message became visible again")]
    ReceiptHandleExpired,
    /// The message is not in flight (already deleted or dead-lettered).
    #[error("the message is not in flight")]
    MessageNotInFlight,
    /// The queue has no dead-letter queue (no `maxReceiveCount` configured).
    #[error("queue {0} has no dead-letter queue")]
    NoDeadLetterQueue(String),
}

impl SqsError {
    /// Stable machine code, for HTTP bodies, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SqsError::TooLarge { .. } => "payload_too_large",
            SqsError::EmptyBody => "empty_body",
            SqsError::InvalidBatchSize(_) => "invalid_batch_size",
            SqsError::InvalidWaitTime(_) => "invalid_wait_time",
            SqsError::InvalidVisibilityTimeout(_) => "invalid_visibility_timeout",
            SqsError::InvalidQueueAttribute(_) => "invalid_queue_attribute",
            SqsError::InvalidGroupId(_) => "invalid_group_id",
            SqsError::MissingDeduplicationId => "missing_deduplication_id",
            SqsError::InvalidDeduplicationId(_) => "invalid_deduplication_id",
            SqsError::ReceiptHandleIsInvalid => "receipt_handle_invalid",
            SqsError::ReceiptHandleExpired => "receipt_handle_expired",
            SqsError::MessageNotInFlight => "message_not_in_flight",
            SqsError::NoDeadLetterQueue(_) => "no_dead_letter_queue",
        }
    }
}

impl From<SqsError> for QueueError {
    fn from(error: SqsError) -> Self {
        match error {
            SqsError::TooLarge { size, limit } => QueueError::TooLarge { size, limit },
            other => QueueError::Unavailable(other.to_string()),
        }
    }
}

/// A clock that moves only when told to, for tests of visibility timeouts and deduplication
/// windows that must not sleep.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start_ms` (Unix milliseconds).
    pub fn new(start_ms: i64) -> Self {
        ManualClock {
            now_ms: AtomicI64::new(start_ms),
        }
    }

    /// Moves the clock `ms` milliseconds forward.
    pub fn advance(&self, ms: i64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `ms` (Unix milliseconds).
    pub fn set(&self, ms: i64) {
        self.now_ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// How one FIFO queue is set up (SQS queue attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoQueueConfig {
    /// The queue name; must end in `.fifo`.
    pub name: String,
    /// `VisibilityTimeout`, in seconds (0 to [`MAX_VISIBILITY_TIMEOUT_SECS`]).
    pub visibility_timeout_secs: u32,
    /// `ContentBasedDeduplication`: messages without a deduplication id are deduplicated on
    /// the SHA-256 of their body.
    pub content_based_deduplication: bool,
    /// `MaximumMessageSize`, in bytes ([`MIN_MAX_MESSAGE_BYTES`] to [`SQS_MAX_MESSAGE_BYTES`]).
    pub max_message_bytes: usize,
    /// The redrive policy's `maxReceiveCount` (1 to [`MAX_RECEIVE_COUNT_LIMIT`]); `Some` gives
    /// the queue a FIFO dead-letter queue named `{stem}-dlq.fifo`.
    pub max_receive_count: Option<u32>,
}

impl FifoQueueConfig {
    /// SQS's defaults for a FIFO queue: 30 s visibility, no content-based deduplication,
    /// 256 KiB messages, no dead-letter queue.
    pub fn new(name: impl Into<String>) -> Self {
        FifoQueueConfig {
            name: name.into(),
            visibility_timeout_secs: DEFAULT_VISIBILITY_TIMEOUT_SECS,
            content_based_deduplication: false,
            max_message_bytes: SQS_MAX_MESSAGE_BYTES,
            max_receive_count: None,
        }
    }

    /// A provider's queue as payhook deploys it: `{provider}.fifo`, content-based
    /// deduplication on, a DLQ after [`DEFAULT_MAX_RECEIVE_COUNT`] receives, 30 s visibility.
    pub fn for_provider(provider: Provider) -> Self {
        FifoQueueConfig::new(format!("{provider}{FIFO_SUFFIX}"))
            .content_based_deduplication(true)
            .max_receive_count(DEFAULT_MAX_RECEIVE_COUNT)
    }

    /// Sets the visibility timeout, in seconds.
    pub fn visibility_timeout_secs(mut self, secs: u32) -> Self {
        self.visibility_timeout_secs = secs;
        self
    }

    /// Turns content-based deduplication on or off.
    pub fn content_based_deduplication(mut self, on: bool) -> Self {
        self.content_based_deduplication = on;
        self
    }

    /// Sets the maximum message size, in bytes.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Gives the queue a dead-letter queue that takes messages after `count` receives.
    pub fn max_receive_count(mut self, count: u32) -> Self {
        self.max_receive_count = Some(count);
        self
    }

    /// The dead-letter queue's name: `stripe.fifo` → `stripe-dlq.fifo`.
    pub fn dlq_name(&self) -> String {
        let stem = self.name.strip_suffix(FIFO_SUFFIX).unwrap_or(&self.name);
        format!("{stem}-dlq{FIFO_SUFFIX}")
    }

    fn validate(&self) -> Result<(), SqsError> {
        let invalid = |why: String| Err(SqsError::InvalidQueueAttribute(why));
        if !self.name.ends_with(FIFO_SUFFIX) || self.name.len() == FIFO_SUFFIX.len() {
            return invalid(format!("FIFO queue name {:?} must end in .fifo", self.name));
        }
        if self.name.chars().count() > MAX_QUEUE_NAME_CHARS {
            return invalid(format!(
                "queue name {:?} is longer than {MAX_QUEUE_NAME_CHARS} characters",
                self.name
            ));
        }
        let stem = &self.name[..self.name.len() - FIFO_SUFFIX.len()];
        if !stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return invalid(format!(
                "queue name {:?} may only hold letters, digits, '-' and '_' before .fifo",
                self.name
            ));
        }
        if self.visibility_timeout_secs > MAX_VISIBILITY_TIMEOUT_SECS {
            return Err(SqsError::InvalidVisibilityTimeout(
                self.visibility_timeout_secs,
            ));
        }
        if !(MIN_MAX_MESSAGE_BYTES..=SQS_MAX_MESSAGE_BYTES).contains(&self.max_message_bytes) {
            return invalid(format!(
                "MaximumMessageSize must be {MIN_MAX_MESSAGE_BYTES} to {SQS_MAX_MESSAGE_BYTES} bytes, got {}",
                self.max_message_bytes
            ));
        }
        if let Some(count) = self.max_receive_count
            && !(1..=MAX_RECEIVE_COUNT_LIMIT).contains(&count)
        {
            return invalid(format!(
                "maxReceiveCount must be 1 to {MAX_RECEIVE_COUNT_LIMIT}, got {count}"
            ));
        }
        Ok(())
    }
}

/// A message to send to a [`FifoQueue`] (`SendMessage`'s parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    /// `MessageGroupId`: messages of one group are delivered in order, one batch at a time.
    pub group_id: String,
    /// `MessageDeduplicationId`; `None` (or empty) uses the body's SHA-256 on queues with
    /// content-based deduplication.
    pub deduplication_id: Option<String>,
    /// `MessageBody`.
    pub body: String,
    /// The `AWSTraceHeader` message system attribute.
    pub trace_header: Option<String>,
}

impl SendMessage {
    /// A message of `group_id` with `body`, no deduplication id and no trace header.
    pub fn new(group_id: impl Into<String>, body: impl Into<String>) -> Self {
        SendMessage {
            group_id: group_id.into(),
            deduplication_id: None,
            body: body.into(),
            trace_header: None,
        }
    }

    /// Sets the `MessageDeduplicationId`.
    pub fn deduplication_id(mut self, id: impl Into<String>) -> Self {
        self.deduplication_id = Some(id.into());
        self
    }

    /// Sets the `AWSTraceHeader` system attribute.
    pub fn trace_header(mut self, header: impl Into<String>) -> Self {
        self.trace_header = Some(header.into());
        self
    }
}

impl From<QueueMessage> for SendMessage {
    fn from(message: QueueMessage) -> Self {
        SendMessage {
            group_id: message.group_id,
            deduplication_id: Some(message.deduplication_id).filter(|id| !id.is_empty()),
            body: message.body,
            trace_header: message.trace_header,
        }
    }
}

/// What a send returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// The message id; for a duplicate, the id of the message first sent with that
    /// deduplication id.
    pub message_id: String,
    /// The message's `SequenceNumber` in its queue (the original's for a duplicate).
    pub sequence_number: u64,
    /// Whether the send was a duplicate within the deduplication window (nothing was queued).
    pub duplicate: bool,
}

/// The system attributes SQS returns with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttributes {
    /// `ApproximateReceiveCount`, counting the receive that returned the message.
    pub approximate_receive_count: u32,
    /// `ApproximateFirstReceiveTimestamp` (Unix ms); `None` for a message never received.
    pub approximate_first_receive_timestamp_ms: Option<i64>,
    /// `SentTimestamp` (Unix ms).
    pub sent_timestamp_ms: i64,
    /// `MessageGroupId`.
    pub message_group_id: String,
    /// `MessageDeduplicationId` (the body's hex SHA-256 under content-based deduplication).
    pub message_deduplication_id: String,
    /// `SequenceNumber`: the message's position in its queue.
    pub sequence_number: u64,
    /// `AWSTraceHeader`, if the message was sent with one.
    pub aws_trace_header: Option<String>,
    /// On a dead-letter queue: the name of the queue the message came from.
    pub dead_letter_queue_source: Option<String>,
}

impl MessageAttributes {
    /// The attributes under SQS's names, as an SQS event record carries them
    /// (`dead_letter_queue_source` is a queue name, not an ARN, and is left out).
    pub fn to_map(&self) -> BTreeMap<&'static str, String> {
        let mut map = BTreeMap::new();
        map.insert(
            "ApproximateReceiveCount",
            self.approximate_receive_count.to_string(),
        );
        if let Some(first) = self.approximate_first_receive_timestamp_ms {
            map.insert("ApproximateFirstReceiveTimestamp", first.to_string());
        }
        map.insert("SentTimestamp", self.sent_timestamp_ms.to_string());
        map.insert("MessageGroupId", self.message_group_id.clone());
        map.insert(
            "MessageDeduplicationId",
            self.message_deduplication_id.clone(),
        );
        map.insert("SequenceNumber", self.sequence_number.to_string());
        if let Some(trace) = &self.aws_trace_header {
            map.insert("AWSTraceHeader", trace.clone());
        }
        map
    }
}

/// One delivery of a message by a receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The message id (stable across deliveries, dead-lettering and redrive).
    pub message_id: String,
    /// The handle of this delivery, for [`FifoQueue::delete`] and
    /// [`FifoQueue::change_visibility`]; good only while this delivery is in flight.
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// The system attributes.
    pub attributes: MessageAttributes,
}

/// A message as it sits in a queue, listed without receiving it (`payhook dlq list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The message id.
    pub message_id: String,
    /// The body.
    pub body: String,
    /// The system attributes (`approximate_receive_count` is the receives so far).
    pub attributes: MessageAttributes,
    /// Whether the message is in flight (received and not yet deleted or expired).
    pub in_flight: bool,
}

/// A message a redrive moved from the dead-letter queue back to its source queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// The message id (kept).
    pub message_id: String,
    /// The `MessageGroupId` (kept).
    pub group_id: String,
    /// The deduplication id the message had on the dead-letter queue.
    pub previous_deduplication_id: String,
    /// The fresh deduplication id it was re-sent with, `{original}:redrive:{n}`.
    pub deduplication_id: String,
    /// Its new `SequenceNumber` in the source queue.
    pub sequence_number: u64,
}

/// Depths of one queue, as CloudWatch's `ApproximateNumberOfMessages*` metrics count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// Messages waiting to be received (`ApproximateNumberOfMessagesVisible`), including those
    /// held back by their group's in-flight lock.
    pub visible: usize,
    /// Messages received and not yet deleted or expired (`…NotVisible`).
    pub in_flight: usize,
    /// Delayed messages (`…Delayed`): always 0, delays are not emulated.
    pub delayed: usize,
    /// Messages in the queue's dead-letter queue (visible and in flight); 0 without one.
    pub dlq_depth: usize,
}

impl QueueStats {
    /// No message visible or in flight (the dead-letter queue is not counted).
    pub fn is_empty(&self) -> bool {
        self.visible == 0 && self.in_flight == 0
    }
}

/// One in-memory SQS FIFO queue, with its FIFO dead-letter queue when configured with a
/// `maxReceiveCount`. All methods take `&self`; share the queue with an [`Arc`].
pub struct FifoQueue {
    name: String,
    tag: u64,
    content_based_deduplication: bool,
    max_message_bytes: usize,
    max_receive_count: Option<u32>,
    dlq: Option<Arc<FifoQueue>>,
    clock: Arc<dyn Clock>,
    notify: Arc<Notify>,
    inner: Mutex<Inner>,
}

impl fmt::Debug for FifoQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FifoQueue")
            .field("name", &self.name)
            .field(
                "content_based_deduplication",
                &self.content_based_deduplication,
            )
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_receive_count", &self.max_receive_count)
            .field("dlq", &self.dlq.as_ref().map(|d| d.name.as_str()))
            .finish_non_exhaustive()
    }
}

impl FifoQueue {
    /// A queue set up by `config` (with its dead-letter queue if `max_receive_count` is set),
    /// reading time from `clock`. Refuses configurations SQS would refuse.
    pub fn new(config: FifoQueueConfig, clock: Arc<dyn Clock>) -> Result<Self, SqsError> {
        FifoQueue::with_notify(config, clock, Arc::new(Notify::new()))
    }

    fn with_notify(
        config: FifoQueueConfig,
        clock: Arc<dyn Clock>,
        notify: Arc<Notify>,
    ) -> Result<Self, SqsError> {
        config.validate()?;
        let dlq = match config.max_receive_count {
            Some(_) => {
                let dlq_config = FifoQueueConfig {
                    name: config.dlq_name(),
                    max_receive_count: None,
                    ..config.clone()
                };
                dlq_config.validate()?;
                Some(Arc::new(FifoQueue::build(
                    dlq_config,
                    None,
                    clock.clone(),
                    notify.clone(),
                )))
            }
            None => None,
        };
        Ok(FifoQueue::build(config, dlq, clock, notify))
    }

    fn build(
        config: FifoQueueConfig,
        dlq: Option<Arc<FifoQueue>>,
        clock: Arc<dyn Clock>,
        notify: Arc<Notify>,
    ) -> Self {
        static QUEUE_TAGS: AtomicU64 = AtomicU64::new(1);
        FifoQueue {
            tag: QUEUE_TAGS.fetch_add(1, Ordering::Relaxed),
            content_based_deduplication: config.content_based_deduplication,
            max_message_bytes: config.max_message_bytes,
            max_receive_count: config.max_receive_count,
            inner: Mutex::new(Inner::new(config.visibility_timeout_secs)),
            name: config.name,
            dlq,
            clock,
            notify,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dead-letter queue, if the queue has a redrive policy.
    pub fn dlq(&self) -> Option<&Arc<FifoQueue>> {
        self.dlq.as_ref()
    }

    /// The redrive policy's `maxReceiveCount`, if any.
    pub fn max_receive_count(&self) -> Option<u32> {
        self.max_receive_count
    }

    /// The largest body accepted, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// The queue's visibility timeout, in seconds.
    pub fn visibility_timeout_secs(&self) -> u32 {
        self.lock().visibility_timeout_secs
    }

    /// Sets the queue's visibility timeout for later receives (`SetQueueAttributes`); messages
    /// already in flight keep theirs.
    pub fn set_visibility_timeout_secs(&self, secs: u32) -> Result<(), SqsError> {
        if secs > MAX_VISIBILITY_TIMEOUT_SECS {
            return Err(SqsError::InvalidVisibilityTimeout(secs));
        }
        self.lock().visibility_timeout_secs = secs;
        Ok(())
    }

    /// Sends one message (`SendMessage`). A duplicate within the deduplication window succeeds
    /// with the original's id and queues nothing.
    pub fn send(&self, message: SendMessage) -> Result<SendReceipt, SqsError> {
        let size = message.body.len();
        if size == 0 {
            return Err(SqsError::EmptyBody);
        }
        if size > self.max_message_bytes {
            return Err(SqsError::TooLarge {
                size,
                limit: self.max_message_bytes,
            });
        }
        validate_id(&message.group_id).map_err(SqsError::InvalidGroupId)?;
        let dedup: Cow<'_, str> = match message.deduplication_id.as_deref() {
            Some(id) if !id.is_empty() => {
                validate_id(id).map_err(SqsError::InvalidDeduplicationId)?;
                Cow::Borrowed(id)
            }
            _ if self.content_based_deduplication => Cow::Owned(sha256_hex(&message.body)),
            _ => return Err(SqsError::MissingDeduplicationId),
        };
        let now = self.clock.now_ms();
        let receipt = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            inner.prune_dedup(now);
            if let Some(entry) = inner.dedup.get(dedup.as_ref())
                && entry.expires_at > now
            {
                return Ok(SendReceipt {
                    message_id: entry.message_id.to_string(),
                    sequence_number: entry.sequence_number,
                    duplicate: true,
                });
            }
            let message_id: Arc<str> = Arc::from(next_message_id());
            let dedup: Arc<str> = Arc::from(dedup.as_ref());
            let seq = inner.take_seq();
            inner.remember_dedup(dedup.clone(), message_id.clone(), seq, now);
            let group_id = inner.group_key(&message.group_id);
            inner.push(Stored {
                seq,
                message_id: message_id.clone(),
                body: message.body,
                group_id,
                deduplication_id: dedup,
                trace_header: message.trace_header,
                sent_ms: now,
                first_receive_ms: None,
                receive_count: 0,
                dead_letter_source: None,
                lease: None,
            });
            SendReceipt {
                message_id: message_id.to_string(),
                sequence_number: seq,
                duplicate: false,
            }
        };
        self.notify.notify_waiters();
        Ok(receipt)
    }

    /// Receives up to `max` messages (`ReceiveMessage` without waiting): as many as possible
    /// from the first deliverable group, in order, then from further groups. Each returned
    /// message is in flight for the queue's visibility timeout. Messages already received
    /// `maxReceiveCount` times move to the dead-letter queue instead of being returned.
    pub fn receive(&self, max: usize) -> Result<Vec<ReceivedMessage>, SqsError> {
        check_batch_size(max)?;
        let now = self.clock.now_ms();
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.expire_leases(now);
        let visibility_ms = i64::from(inner.visibility_timeout_secs) * 1000;
        let dead_letter_after = self.dlq.as_ref().and(self.max_receive_count);
        let mut out = Vec::with_capacity(max);
        let mut dead = Vec::new();
        while out.len() < max {
            let Some(key) = inner.ready.queue.pop_front() else {
                break;
            };
            let Some(group) = inner.groups.get_mut(&key) else {
                continue;
            };
            if !group.ready {
                continue;
            }
            group.ready = false;
            inner.ready.count -= 1;
            if group.in_flight > 0 {
                continue;
            }
            let mut i = 0;
            while out.len() < max && i < group.messages.len() {
                if dead_letter_after.is_some_and(|limit| group.messages[i].receive_count >= limit) {
                    if let Some(message) = group.messages.remove(i) {
                        inner.index.remove(&message.seq);
                        dead.push(message);
                    }
                    continue;
                }
                let message = &mut group.messages[i];
                let receive_no = inner.next_receive;
                inner.next_receive += 1;
                let lease = Lease {
                    receive_no,
                    deadline_ms: now.saturating_add(visibility_ms),
                };
                message.receive_count += 1;
                message.first_receive_ms.get_or_insert(now);
                message.lease = Some(lease);
                inner
                    .leases
                    .push(Reverse((lease.deadline_ms, message.seq, receive_no)));
                out.push(ReceivedMessage {
                    message_id: message.message_id.to_string(),
                    receipt_handle: self.receipt_handle(message.seq, receive_no),
                    body: message.body.clone(),
                    attributes: message.attributes(),
                });
                group.in_flight += 1;
                inner.in_flight += 1;
                i += 1;
            }
            if group.messages.is_empty() {
                inner.groups.remove(&key);
            } else {
                inner.ready.offer(&key, group);
            }
        }
        let dead_lettered = !dead.is_empty();
        if dead_lettered && let Some(dlq) = &self.dlq {
            // Still under this queue's lock (always taken before the DLQ's), so a message is
            // never seen in neither queue.
            dlq.accept_dead_letters(dead, &self.name);
        }
        drop(guard);
        if dead_lettered {
            self.notify.notify_waiters();
        }
        Ok(out)
    }

    /// Receives with long polling (`ReceiveMessage` with `WaitTimeSeconds`): returns as soon
    /// as at least one message is received, or empty once `wait` (at most
    /// [`MAX_RECEIVE_WAIT`]) has passed. Needs a Tokio runtime with time enabled.
    pub async fn receive_wait(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, SqsError> {
        check_batch_size(max)?;
        if wait > MAX_RECEIVE_WAIT {
            return Err(SqsError::InvalidWaitTime(wait));
        }
        let deadline = Instant::now() + wait;
        loop {
            let received = self.receive(max)?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !received.is_empty() || remaining.is_zero() {
                return Ok(received);
            }
            self.wait_for_messages(remaining).await;
        }
    }

    /// Waits until a message can be received (true) or `timeout` passes (false), without
    /// receiving anything. Wakes on sends and on visibility expiring; never busy-spins.
    pub async fn wait_for_messages(&self, timeout: Duration) -> bool {
        wait_until(&self.notify, timeout, || self.readiness()).await
    }

    /// Deletes the message delivered with `receipt_handle` (`DeleteMessage`).
    ///
    /// Refused with [`SqsError::ReceiptHandleExpired`] when that delivery's visibility has
    /// expired (whether or not the message was received again since): a stale handle never
    /// deletes a newer delivery. A message no longer in the queue (deleted, dead-lettered) is
    /// not an error.
    pub fn delete(&self, receipt_handle: &str) -> Result<(), SqsError> {
        let (seq, receive_no) = self.parse_receipt_handle(receipt_handle)?;
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.expire_leases(now);
        let deleted = inner.delete(seq, receive_no);
        inner.compact_leases();
        deleted
    }

    /// Deletes up to [`MAX_RECEIVE_BATCH`] deliveries under one lock (`DeleteMessageBatch`);
    /// one result per handle, in order.
    pub fn delete_batch<S: AsRef<str>>(
        &self,
        receipt_handles: &[S],
    ) -> Result<Vec<Result<(), SqsError>>, SqsError> {
        check_batch_size(receipt_handles.len())?;
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.expire_leases(now);
        let results = receipt_handles
            .iter()
            .map(|handle| {
                let (seq, receive_no) = self.parse_receipt_handle(handle.as_ref())?;
                inner.delete(seq, receive_no)
            })
            .collect();
        inner.compact_leases();
        Ok(results)
    }

    /// Sets the visibility timeout of the delivery with `receipt_handle` to `secs` from now
    /// (`ChangeMessageVisibility`); 0 makes the message visible again at once (its group
    /// unlocks when no other message of it is in flight).
    pub fn change_visibility(&self, receipt_handle: &str, secs: u32) -> Result<(), SqsError> {
        if secs > MAX_VISIBILITY_TIMEOUT_SECS {
            return Err(SqsError::InvalidVisibilityTimeout(secs));
        }
        let (seq, receive_no) = self.parse_receipt_handle(receipt_handle)?;
        let now = self.clock.now_ms();
        {
            let mut guard = self.lock();
            let inner = &mut *guard;
            inner.expire_leases(now);
            let message = inner
                .index
                .get(&seq)
                .and_then(|key| inner.groups.get_mut(key))
                .and_then(|group| group.find_mut(seq))
                .ok_or(SqsError::MessageNotInFlight)?;
            let Some(lease) = message
                .lease
                .as_mut()
                .filter(|l| l.receive_no == receive_no)
            else {
                return Err(SqsError::ReceiptHandleExpired);
            };
            lease.deadline_ms = now.saturating_add(i64::from(secs) * 1000);
            inner
                .leases
                .push(Reverse((lease.deadline_ms, seq, receive_no)));
            inner.expire_leases(now);
            inner.compact_leases();
        }
        if secs == 0 {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    /// Every message in the queue, in queue order, without receiving any (for a dead-letter
    /// queue: `payhook dlq list`).
    pub fn list_messages(&self) -> Vec<QueuedMessage> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.expire_leases(now);
        let mut all: Vec<&Stored> = inner
            .groups
            .values()
            .flat_map(|group| group.messages.iter())
            .collect();
        all.sort_unstable_by_key(|m| m.seq);
        all.into_iter()
            .map(|m| QueuedMessage {
                message_id: m.message_id.to_string(),
                body: m.body.clone(),
                attributes: m.attributes(),
                in_flight: m.lease.is_some(),
            })
            .collect()
    }

    /// The dead-letter queue's messages, in order, without receiving them.
    pub fn dlq_messages(&self) -> Result<Vec<QueuedMessage>, SqsError> {
        Ok(self.dead_letter_queue()?.list_messages())
    }

    /// Moves the dead-letter queue's messages back to this queue, in their order, atomically:
    /// each exactly once, keeping message id, group id, body and trace header, with its receive
    /// count reset and a fresh deduplication id `{original}:redrive:{n}` (so the deduplication
    /// window of the original does not swallow it). Messages of a DLQ group that has a message
    /// in flight (someone received from the DLQ) stay, with the rest of their group, so
    /// nothing is both redriven and processed off the DLQ. Returns the moved messages in order.
    pub fn redrive_dlq(&self) -> Result<Vec<Redriven>, SqsError> {
        let dlq = self.dead_letter_queue()?;
        let now = self.clock.now_ms();
        let moved = {
            // Lock order: source queue, then its DLQ (as in `receive`).
            let mut source_guard = self.lock();
            let source = &mut *source_guard;
            let mut dead_guard = dlq.lock();
            let dead = &mut *dead_guard;
            dead.expire_leases(now);
            source.prune_dedup(now);
            let movable: Vec<Arc<str>> = dead
                .groups
                .iter()
                .filter(|(_, group)| group.in_flight == 0)
                .map(|(key, _)| key.clone())
                .collect();
            let mut taken = Vec::new();
            for key in movable {
                if let Some(group) = dead.groups.remove(&key) {
                    if group.ready {
                        dead.ready.count -= 1;
                    }
                    for message in group.messages {
                        dead.index.remove(&message.seq);
                        taken.push(message);
                    }
                }
            }
            dead.compact_leases();
            taken.sort_unstable_by_key(|m| m.seq);
            let mut moved = Vec::with_capacity(taken.len());
            for message in taken {
                source.redrives += 1;
                let dedup: Arc<str> = Arc::from(redrive_deduplication_id(
                    &message.deduplication_id,
                    source.redrives,
                ));
                let seq = source.take_seq();
                source.remember_dedup(dedup.clone(), message.message_id.clone(), seq, now);
                let group_id = source.group_key(&message.group_id);
                moved.push(Redriven {
                    message_id: message.message_id.to_string(),
                    group_id: group_id.to_string(),
                    previous_deduplication_id: message.deduplication_id.to_string(),
                    deduplication_id: dedup.to_string(),
                    sequence_number: seq,
                });
                source.push(Stored {
                    seq,
                    message_id: message.message_id,
                    body: message.body,
                    group_id,
                    deduplication_id: dedup,
                    trace_header: message.trace_header,
                    sent_ms: now,
                    first_receive_ms: None,
                    receive_count: 0,
                    dead_letter_source: None,
                    lease: None,
                });
            }
            moved
        };
        if !moved.is_empty() {
            self.notify.notify_waiters();
        }
        Ok(moved)
    }

    /// [`FifoQueue::redrive_dlq`], calling `on_moved` for each moved message in order (after
    /// the move, with no lock held, so it may use the queue); returns how many moved.
    pub fn redrive_dlq_with(&self, mut on_moved: impl FnMut(&Redriven)) -> Result<usize, SqsError> {
        let moved = self.redrive_dlq()?;
        moved.iter().for_each(&mut on_moved);
        Ok(moved.len())
    }

    /// The queue's depths and its dead-letter queue's.
    pub fn stats(&self) -> QueueStats {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.expire_leases(now);
        let dlq_depth = self.dlq.as_ref().map_or(0, |dlq| {
            let stats = dlq.stats();
            stats.visible + stats.in_flight
        });
        QueueStats {
            visible: inner.index.len() - inner.in_flight,
            in_flight: inner.in_flight,
            delayed: 0,
            dlq_depth,
        }
    }

    /// No message visible or in flight (the dead-letter queue is not counted).
    pub fn is_idle(&self) -> bool {
        self.lock().index.is_empty()
    }

    fn dead_letter_queue(&self) -> Result<&Arc<FifoQueue>, SqsError> {
        self.dlq
            .as_ref()
            .ok_or_else(|| SqsError::NoDeadLetterQueue(self.name.clone()))
    }

    fn accept_dead_letters(&self, messages: Vec<Stored>, source: &str) {
        let source: Arc<str> = Arc::from(source);
        let mut guard = self.lock();
        let inner = &mut *guard;
        for mut message in messages {
            message.seq = inner.take_seq();
            message.group_id = inner.group_key(&message.group_id);
            message.lease = None;
            message.dead_letter_source = Some(source.clone());
            inner.push(message);
        }
    }

    fn readiness(&self) -> Readiness {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.expire_leases(now);
        inner.readiness(now)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock cannot leave a half-moved message (moves happen by value),
        // so the state is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn receipt_handle(&self, seq: u64, receive_no: u64) -> String {
        format!("AQEB{:x}.{seq:x}.{receive_no:x}", self.tag)
    }

    fn parse_receipt_handle(&self, handle: &str) -> Result<(u64, u64), SqsError> {
        let mut parts = handle
            .strip_prefix("AQEB")
            .ok_or(SqsError::ReceiptHandleIsInvalid)?
            .split('.')
            .map(|part| u64::from_str_radix(part, 16));
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(tag)), Some(Ok(seq)), Some(Ok(receive_no)), None) if tag == self.tag => {
                Ok((seq, receive_no))
            }
            _ => Err(SqsError::ReceiptHandleIsInvalid),
        }
    }
}

/// The in-memory SQS of the local stack: one FIFO queue and its FIFO dead-letter queue per
/// provider, implementing the [`Queue`] port (a message goes to its provider's queue).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use payhook_core::Provider;
/// use payhook_memory::sqs::MemorySqs;
/// use payhook_core::ports::{Queue, QueueMessage, SystemClock};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let sqs = Arc::new(MemorySqs::new(Arc::new(SystemClock)));
/// let message = QueueMessage {
///     provider: Provider::Stripe,
///     group_id: "pi_1".into(),
///     deduplication_id: "stripe:evt_1".into(),
///     body: r#"{"webhook_id":"stripe:evt_1"}"#.into(),
///     trace_header: Some("Root=1-5759e988-bd862e3fe1be46a994272793".into()),
/// };
/// let id = sqs.send(message).await.unwrap();
///
/// // The stripe processor's poller: long-poll its queue, process, delete.
/// let batch = sqs.queue(Provider::Stripe).receive_wait(10, Duration::from_secs(1)).await.unwrap();
/// assert_eq!(batch[0].message_id, id);
/// assert!(batch[0].attributes.aws_trace_header.is_some());
/// sqs.queue(Provider::Stripe).delete(&batch[0].receipt_handle).unwrap();
/// assert!(sqs.is_idle());
/// # });
/// ```
#[derive(Debug)]
pub struct MemorySqs {
    queues: BTreeMap<Provider, Arc<FifoQueue>>,
    notify: Arc<Notify>,
}

impl MemorySqs {
    /// Every provider's queue as payhook deploys it ([`FifoQueueConfig::for_provider`]).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let notify = Arc::new(Notify::new());
        let queues = Provider::ALL
            .into_iter()
            .map(|provider| {
                let config = FifoQueueConfig::for_provider(provider);
                // The default configuration is valid by construction; build it unchecked so
                // this constructor cannot fail.
                let dlq_config = FifoQueueConfig {
                    name: config.dlq_name(),
                    max_receive_count: None,
                    ..config.clone()
                };
                let dlq = FifoQueue::build(dlq_config, None, clock.clone(), notify.clone());
                let queue =
                    FifoQueue::build(config, Some(Arc::new(dlq)), clock.clone(), notify.clone());
                (provider, Arc::new(queue))
            })
            .collect();
        MemorySqs { queues, notify }
    }

    /// Every provider's queue set up by `config(provider)`; refuses configurations SQS would.
    pub fn with_config(
        clock: Arc<dyn Clock>,
        config: impl Fn(Provider) -> FifoQueueConfig,
    ) -> Result<Self, SqsError> {
        let notify = Arc::new(Notify::new());
        let mut queues = BTreeMap::new();
        for provider in Provider::ALL {
            let queue = FifoQueue::with_notify(config(provider), clock.clone(), notify.clone())?;
            queues.insert(provider, Arc::new(queue));
        }
        Ok(MemorySqs { queues, notify })
    }

    /// `provider`'s queue.
    pub fn queue(&self, provider: Provider) -> &Arc<FifoQueue> {
        // Every provider gets a queue in both constructors.
        &self.queues[&provider]
    }

    /// `provider`'s dead-letter queue, if its queue has a redrive policy.
    pub fn dlq(&self, provider: Provider) -> Option<&Arc<FifoQueue>> {
        self.queue(provider).dlq()
    }

    /// `provider`'s dead-letter messages, in order, without receiving them.
    pub fn dlq_messages(&self, provider: Provider) -> Result<Vec<QueuedMessage>, SqsError> {
        self.queue(provider).dlq_messages()
    }

    /// Moves `provider`'s dead letters back to its queue ([`FifoQueue::redrive_dlq_with`]);
    /// returns how many moved.
    pub fn redrive(
        &self,
        provider: Provider,
        on_moved: impl FnMut(&Redriven),
    ) -> Result<usize, SqsError> {
        self.queue(provider).redrive_dlq_with(on_moved)
    }

    /// Each provider's queue depths.
    pub fn stats(&self) -> BTreeMap<Provider, QueueStats> {
        self.queues
            .iter()
            .map(|(provider, queue)| (*provider, queue.stats()))
            .collect()
    }

    /// True when no provider queue has a visible or in-flight message: everything sent has
    /// been processed (messages parked in dead-letter queues wait for an operator and are not
    /// counted; see [`MemorySqs::stats`]).
    pub fn is_idle(&self) -> bool {
        self.queues.values().all(|queue| queue.is_idle())
    }

    /// Waits until some provider queue has a message to receive (true) or `timeout` passes
    /// (false). Wakes on sends and on visibility expiring; never busy-spins.
    pub async fn wait_for_messages(&self, timeout: Duration) -> bool {
        wait_until(&self.notify, timeout, || {
            self.queues
                .values()
                .map(|queue| queue.readiness())
                .fold(Readiness::default(), Readiness::merge)
        })
        .await
    }
}

#[async_trait]
impl MessageVisibility for FifoQueue {
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout_secs: u32,
    ) -> Result<(), QueueError> {
        FifoQueue::change_visibility(self, receipt_handle, timeout_secs).map_err(QueueError::from)
    }
}

#[async_trait]
impl Queue for MemorySqs {
    fn max_message_bytes(&self) -> usize {
        self.queues
            .values()
            .map(|queue| queue.max_message_bytes())
            .min()
            .unwrap_or(SQS_MAX_MESSAGE_BYTES)
    }

    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        let queue = self.queue(message.provider);
        let receipt = queue.send(SendMessage::from(message))?;
        Ok(receipt.message_id)
    }
}

/// One stored message. Moved by value between queues, never copied.
#[derive(Debug)]
struct Stored {
    seq: u64,
    message_id: Arc<str>,
    body: String,
    group_id: Arc<str>,
    deduplication_id: Arc<str>,
    trace_header: Option<String>,
    sent_ms: i64,
    first_receive_ms: Option<i64>,
    receive_count: u32,
    dead_letter_source: Option<Arc<str>>,
    lease: Option<Lease>,
}

impl Stored {
    fn attributes(&self) -> MessageAttributes {
        MessageAttributes {
            approximate_receive_count: self.receive_count,
            approximate_first_receive_timestamp_ms: self.first_receive_ms,
            sent_timestamp_ms: self.sent_ms,
            message_group_id: self.group_id.to_string(),
            message_deduplication_id: self.deduplication_id.to_string(),
            sequence_number: self.seq,
            aws_trace_header: self.trace_header.clone(),
            dead_letter_queue_source: self.dead_letter_source.as_deref().map(str::to_owned),
        }
    }
}

/// One delivery in flight: the receive that made it and when its visibility ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lease {
    receive_no: u64,
    deadline_ms: i64,
}

/// A message group: its messages in send order. In-flight messages are always among the first
/// [`MAX_RECEIVE_BATCH`] (a group is only delivered from its head, and only while none of it is
/// in flight).
#[derive(Debug, Default)]
struct Group {
    messages: VecDeque<Stored>,
    in_flight: usize,
    /// Whether the group's key is in [`ReadyGroups::queue`] (and counted).
    ready: bool,
}

impl Group {
    fn find_mut(&mut self, seq: u64) -> Option<&mut Stored> {
        let position = self.messages.binary_search_by_key(&seq, |m| m.seq).ok()?;
        self.messages.get_mut(position)
    }

    fn deliverable(&self) -> bool {
        self.in_flight == 0 && !self.messages.is_empty()
    }
}

/// Groups that can deliver, in the order they became able to. A key may linger after its group
/// was removed or re-queued; only entries whose group has `ready` set count.
#[derive(Debug, Default)]
struct ReadyGroups {
    queue: VecDeque<Arc<str>>,
    count: usize,
}

impl ReadyGroups {
    fn offer(&mut self, key: &Arc<str>, group: &mut Group) {
        if !group.ready && group.deliverable() {
            group.ready = true;
            self.count += 1;
            self.queue.push_back(key.clone());
        }
    }
}

#[derive(Debug)]
struct DedupEntry {
    message_id: Arc<str>,
    sequence_number: u64,
    expires_at: i64,
}

/// A queue's state, behind its mutex.
#[derive(Debug)]
struct Inner {
    visibility_timeout_secs: u32,
    next_seq: u64,
    next_receive: u64,
    redrives: u64,
    groups: HashMap<Arc<str>, Group>,
    ready: ReadyGroups,
    /// Group of every message in the queue, by sequence number.
    index: HashMap<u64, Arc<str>>,
    in_flight: usize,
    /// Visibility deadlines `(deadline, seq, receive_no)`; entries for deliveries since deleted
    /// or re-leased are skipped when popped and swept by `compact_leases`.
    leases: BinaryHeap<Reverse<(i64, u64, u64)>>,
    dedup: HashMap<Arc<str>, DedupEntry>,
    /// Deduplication ids by window expiry (sends arrive in clock order).
    dedup_expiry: VecDeque<(i64, Arc<str>)>,
}

impl Inner {
    fn new(visibility_timeout_secs: u32) -> Self {
        Inner {
            visibility_timeout_secs,
            next_seq: 1,
            next_receive: 1,
            redrives: 0,
            groups: HashMap::new(),
            ready: ReadyGroups::default(),
            index: HashMap::new(),
            in_flight: 0,
            leases: BinaryHeap::new(),
            dedup: HashMap::new(),
            dedup_expiry: VecDeque::new(),
        }
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The group's key, shared with the group already in the queue if there is one.
    fn group_key(&self, group_id: &str) -> Arc<str> {
        self.groups
            .get_key_value(group_id)
            .map_or_else(|| Arc::from(group_id), |(key, _)| key.clone())
    }

    fn push(&mut self, message: Stored) {
        let key = message.group_id.clone();
        self.index.insert(message.seq, key.clone());
        let group = self.groups.entry(key.clone()).or_default();
        group.messages.push_back(message);
        self.ready.offer(&key, group);
    }

    fn remember_dedup(&mut self, id: Arc<str>, message_id: Arc<str>, seq: u64, now: i64) {
        let expires_at = now.saturating_add(DEDUPLICATION_WINDOW_MS);
        self.dedup_expiry.push_back((expires_at, id.clone()));
        self.dedup.insert(
            id,
            DedupEntry {
                message_id,
                sequence_number: seq,
                expires_at,
            },
        );
    }

    /// Forgets deduplication ids whose window has passed. (Lookups check the expiry too, so a
    /// clock set backwards only delays pruning.)
    fn prune_dedup(&mut self, now: i64) {
        while let Some((expires_at, _)) = self.dedup_expiry.front() {
            if *expires_at > now {
                break;
            }
            if let Some((expires_at, id)) = self.dedup_expiry.pop_front()
                && self
                    .dedup
                    .get(&id)
                    .is_some_and(|entry| entry.expires_at == expires_at)
            {
                self.dedup.remove(&id);
            }
        }
    }

    /// Makes deliveries whose visibility has ended visible again (receive count kept).
    fn expire_leases(&mut self, now: i64) {
        while let Some(&Reverse((deadline, seq, receive_no))) = self.leases.peek() {
            if deadline > now {
                break;
            }
            self.leases.pop();
            let Some(key) = self.index.get(&seq) else {
                continue;
            };
            let Some(group) = self.groups.get_mut(key) else {
                continue;
            };
            let Some(message) = group.find_mut(seq) else {
                continue;
            };
            if message.lease
                == Some(Lease {
                    receive_no,
                    deadline_ms: deadline,
                })
            {
                message.lease = None;
                group.in_flight -= 1;
                self.in_flight -= 1;
                self.ready.offer(key, group);
            }
        }
    }

    fn delete(&mut self, seq: u64, receive_no: u64) -> Result<(), SqsError> {
        let Some(key) = self.index.get(&seq).cloned() else {
            // Already deleted or dead-lettered: DeleteMessage succeeds.
            return Ok(());
        };
        let Some(group) = self.groups.get_mut(&key) else {
            return Ok(());
        };
        let Ok(position) = group.messages.binary_search_by_key(&seq, |m| m.seq) else {
            return Ok(());
        };
        let current = group.messages[position]
            .lease
            .is_some_and(|lease| lease.receive_no == receive_no);
        if !current {
            return Err(SqsError::ReceiptHandleExpired);
        }
        group.messages.remove(position);
        group.in_flight -= 1;
        self.in_flight -= 1;
        self.index.remove(&seq);
        if group.messages.is_empty() {
            if group.ready {
                self.ready.count -= 1;
            }
            self.groups.remove(&key);
        } else {
            self.ready.offer(&key, group);
        }
        Ok(())
    }

    /// Sweeps stale entries out of the deadline heap once they outnumber live leases, so the
    /// heap stays O(in flight) (amortised O(1) per delete).
    fn compact_leases(&mut self) {
        if self.leases.len() <= LEASE_HEAP_SLACK + 4 * self.in_flight {
            return;
        }
        let leases = std::mem::take(&mut self.leases);
        self.leases = leases
            .into_iter()
            .filter(|Reverse((deadline, seq, receive_no))| {
                self.index
                    .get(seq)
                    .and_then(|key| self.groups.get(key))
                    .and_then(|group| {
                        let position = group.messages.binary_search_by_key(seq, |m| m.seq).ok()?;
                        group.messages.get(position)
                    })
                    .is_some_and(|m| {
                        m.lease
                            == Some(Lease {
                                receive_no: *receive_no,
                                deadline_ms: *deadline,
                            })
                    })
            })
            .collect();
    }

    fn readiness(&self, now: i64) -> Readiness {
        Readiness {
            ready: self.ready.count > 0,
            next_expiry_ms: (self.in_flight > 0)
                .then(|| {
                    self.leases
                        .peek()
                        .map(|Reverse((deadline, _, _))| deadline - now)
                })
                .flatten(),
        }
    }
}

/// Whether a queue can deliver now, and else how soon (by its clock) a visibility may end.
#[derive(Debug, Clone, Copy, Default)]
struct Readiness {
    ready: bool,
    next_expiry_ms: Option<i64>,
}

impl Readiness {
    fn merge(self, other: Readiness) -> Readiness {
        Readiness {
            ready: self.ready || other.ready,
            next_expiry_ms: match (self.next_expiry_ms, other.next_expiry_ms) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Sleeps on `notify` until `check` says a message is deliverable or `timeout` passes.
async fn wait_until(
    notify: &Notify,
    timeout: Duration,
    mut check: impl FnMut() -> Readiness,
) -> bool {
    let start = Instant::now();
    let deadline = start.checked_add(timeout);
    loop {
        // Registered before checking, so a send between the check and the sleep still wakes us.
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        let readiness = check();
        if readiness.ready {
            return true;
        }
        let now = Instant::now();
        let mut nap = match deadline {
            Some(deadline) if now >= deadline => return false,
            Some(deadline) => deadline - now,
            None => Duration::MAX,
        };
        if let Some(next_expiry_ms) = readiness.next_expiry_ms {
            let until_expiry = Duration::from_millis(u64::try_from(next_expiry_ms).unwrap_or(0));
            nap = nap.min(until_expiry.clamp(Duration::from_millis(1), WAIT_RECHECK));
        }
        // Woken or timed out: either way, look again.
        let _ = tokio::time::timeout(nap, notified).await;
    }
}

fn check_batch_size(size: usize) -> Result<(), SqsError> {
    if (1..=MAX_RECEIVE_BATCH).contains(&size) {
        Ok(())
    } else {
        Err(SqsError::InvalidBatchSize(size))
    }
}

/// SQS's rule for group and deduplication ids: 1 to 128 characters, each an ASCII letter,
/// digit or punctuation mark.
fn validate_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("must not be empty");
    }
    if id.len() > MAX_ID_CHARS {
        return Err("must be at most 128 characters");
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("may only hold ASCII letters, digits and punctuation");
    }
    Ok(())
}

fn sha256_hex(body: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()))
}

/// `{original}:redrive:{n}`, where `original` drops earlier `:redrive:` suffixes; hashed when
/// that would pass SQS's 128-character limit.
fn redrive_deduplication_id(id: &str, n: u64) -> String {
    let original = id.split(":redrive:").next().unwrap_or(id);
    let candidate = format!("{original}:redrive:{n}");
    if candidate.len() <= MAX_ID_CHARS {
        candidate
    } else {
        format!("{}:redrive:{n}", sha256_hex(original))
    }
}

/// A UUID-shaped message id, unique within the process and differing between runs.
fn next_message_id() -> String {
    static RUN: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let run = *RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        nanos ^ std::process::id().rotate_left(16)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{run:08x}-{:04x}-4000-8000-{:012x}",
        n >> 48,
        n & 0xffff_ffff_ffff
    )
}
