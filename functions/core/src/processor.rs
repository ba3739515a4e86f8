//! The provider processors' handler (one binary, deployed per provider): for each SQS FIFO
//! record, claim the webhook in the status store, compute its amount tier, publish it to the
//! `payment-events` bus and mark it `PUBLISHED`.
//!
//! Exactly-once in effect comes from the status machine, not from SQS: a record whose
//! webhook is already `PUBLISHED`/`PROCESSED` is acknowledged and skipped; a claim is a
//! conditional write holding a lease, so two processors racing on one webhook publish once,
//! and a crashed attempt can be taken over once its lease ends.
//!
//! # Leases and retries
//!
//! - A claim's lease ends with the invocation or when the message becomes visible again,
//!   whichever is first ([`ProcessorConfig::visibility_timeout_secs`]): the next receive of a
//!   crashed attempt's message always finds the lease over and takes the claim over.
//! - A claim is attempt number `attempts`; what an attempt writes afterwards (`PUBLISHED`, or
//!   releasing the claim after a failure) applies only while the item still counts that
//!   attempt, so an attempt overtaken after its lease ended changes nothing of the next one's.
//! - A failed record (held back behind its group's failure too) gets a short retry delay that
//!   grows with its receive count ([`retry_delay_secs`]), applied with
//!   `ChangeMessageVisibility` ([`delay_retries`]): a transient failure costs seconds, while the
//!   queue's visibility timeout stays what the event source mapping needs. A record whose
//!   claim is held by another attempt comes back when that lease ends.
//! - The last receive (`maxReceiveCount`) always leaves the item `FAILED` with the reason,
//!   whatever the failure, and the message goes to the DLQ; a redrive makes it processable
//!   again (a claim is taken from `FAILED`).
//! - The one duplicate this allows: an attempt that dies between `PutEvents` and the
//!   `PUBLISHED` write is published again by the retry, and the event processor absorbs the
//!   copy (the webhook is `PROCESSED` once).
//!
//! Provider-specific meaning (PayPal's capture id from `links[rel=up]`, Stripe's cumulative
//! refund amounts, Square's status mapping) is applied by the normalisers before the message
//! is queued, because the FIFO message group *is* the payment id those rules produce; the
//! processor checks the record belongs to its provider and adds the tier.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use crate::event::{EventType, PaymentEvent};
use crate::payment::{
    Applied, BusinessEvent, BusinessEventType, Effect, PaymentRecord, PaymentStore,
};
use crate::ports::{
    BusEntry, BusError, Clock, EntryResult, EventBus, MessageVisibility, PAYMENT_EVENTS_BUS,
};
use crate::provider::Provider;
use crate::status::{
    Status, StatusItem, StatusStore, StoreError, Transition, TransitionOutcome, rfc3339_ms,
    trace_id_of_header,
};
pub use crate::tier::{Tier, TierThresholds};

/// Default receives before SQS moves a message to the DLQ.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// The processor function's timeout as deployed, in seconds.
pub const DEFAULT_FUNCTION_TIMEOUT_SECS: u32 = 300;

/// The provider queue's visibility timeout as deployed: six times the function timeout, as AWS
/// recommends for an SQS event source mapping.
pub const DEFAULT_VISIBILITY_TIMEOUT_SECS: u32 = 6 * DEFAULT_FUNCTION_TIMEOUT_SECS;

/// A failed record's first retry delay, in seconds; each later receive doubles it.
pub const RETRY_BASE_SECS: u32 = 2;

/// The longest retry delay, in seconds (never longer than the visibility timeout either).
pub const RETRY_MAX_SECS: u32 = 60;

/// Why a processor's timeouts contradict the lease and retry rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeoutError {
    /// A visibility timeout of 0 makes every message visible again at once.
    #[error(
        "a visibility timeout of 0 s lets every poller receive a message at once; use at least 1 s"
    )]
    NoVisibility,
    /// An invocation longer than the visibility timeout: the message comes back while the
    /// invocation still works on it (AWS refuses such an event source mapping).
    #[error(
        "the function timeout ({function_timeout_secs} s) is longer than the queue's visibility timeout ({visibility_timeout_secs} s)"
    )]
    FunctionOutlivesVisibility {
        /// The function timeout.
        function_timeout_secs: u32,
        /// The visibility timeout.
        visibility_timeout_secs: u32,
    },
}

/// Checks a processor's timeouts against the lease and retry rules: at least 1 s of
/// visibility, and no invocation longer than the visibility timeout.
pub fn check_timeouts(
    function_timeout_secs: u32,
    visibility_timeout_secs: u32,
) -> Result<(), TimeoutError> {
    if visibility_timeout_secs == 0 {
        return Err(TimeoutError::NoVisibility);
    }
    if function_timeout_secs > visibility_timeout_secs {
        return Err(TimeoutError::FunctionOutlivesVisibility {
            function_timeout_secs,
            visibility_timeout_secs,
        });
    }
    Ok(())
}

/// The retry delay of a record failed on its `receive_count`th receive: [`RETRY_BASE_SECS`]
/// doubled for each earlier receive, at most [`RETRY_MAX_SECS`] and at most the visibility
/// timeout (a delay only ever shortens the wait).
pub fn retry_delay_secs(receive_count: u32, visibility_timeout_secs: u32) -> u32 {
    let doublings = receive_count.saturating_sub(1).min(16);
    (RETRY_BASE_SECS << doublings)
        .min(RETRY_MAX_SECS)
        .min(visibility_timeout_secs)
}

/// How often the processor re-reads a payment record whose conditional write lost a race
/// before it fails the record (SQS then retries it).
pub const PAYMENT_WRITE_ATTEMPTS: u32 = 3;

/// The EventBridge `detail` a processor publishes: the canonical event of the webhook that
/// caused the business event, its tier, and the business event itself (the `detail-type` is
/// the business event's type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedDetail {
    /// The canonical event.
    #[serde(flatten)]
    pub event: PaymentEvent,
    /// Its amount tier.
    pub tier: Tier,
    /// `{webhook_id}/{n}`: the same for every publication of this business event (a retry
    /// after a crash between `PutEvents` and `PUBLISHED` publishes it again), so consumers
    /// can deduplicate on it. Empty in events published before business events existed.
    #[serde(default)]
    pub business_event_id: String,
    /// The business event (type, payment summary, refund delta, change); absent only in events
    /// published before business events existed, which the event processor still records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_event: Option<BusinessEvent>,
    /// When the processor put the event on the bus (RFC 3339, milliseconds): the event
    /// processor records it as the webhook's `published_at` when it gets there before the
    /// processor has recorded `PUBLISHED` (the envelope's `time` has only whole seconds).
    /// Absent in events published before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
}

/// Settings of one provider's processor.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    /// The provider whose queue this processor drains.
    pub provider: Provider,
    /// The queue's `maxReceiveCount`: the receive on which a failure is final.
    pub max_receive_count: u32,
    /// The queue's visibility timeout: no claim's lease outlives it.
    pub visibility_timeout_secs: u32,
    /// Tier thresholds.
    pub tiers: TierThresholds,
    /// The bus to publish to.
    pub event_bus: String,
}

impl ProcessorConfig {
    /// Defaults for `provider`.
    pub fn new(provider: Provider) -> Self {
        ProcessorConfig {
            provider,
            max_receive_count: DEFAULT_MAX_RECEIVE_COUNT,
            visibility_timeout_secs: DEFAULT_VISIBILITY_TIMEOUT_SECS,
            tiers: TierThresholds::default(),
            event_bus: PAYMENT_EVENTS_BUS.to_owned(),
        }
    }
}

/// One SQS record as the processor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecord {
    /// SQS message id (reported back in `batchItemFailures`).
    pub message_id: String,
    /// The canonical event JSON.
    pub body: String,
    /// `MessageGroupId`.
    pub group_id: String,
    /// `ApproximateReceiveCount`, counting this receive.
    pub receive_count: u32,
    /// `AWSTraceHeader`, if any.
    pub trace_header: Option<String>,
}

/// Why a record failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProcessError {
    /// The body is not a canonical event (a poison message).
    #[error("malformed record: {0}")]
    Malformed(String),
    /// The record's event belongs to another provider's queue.
    #[error("event from {found} on the {expected} queue")]
    WrongProvider {
        /// This processor's provider.
        expected: Provider,
        /// The event's provider.
        found: Provider,
    },
    /// Another attempt holds an unexpired lease on this webhook.
    #[error("another attempt holds the lease on {webhook_id}")]
    LeaseHeld {
        /// Which webhook.
        webhook_id: String,
        /// When the lease ends (Unix ms), if the item said.
        until_ms: Option<i64>,
    },
    /// The payment record kept changing under this attempt (another writer each time).
    #[error("the payment record of {0} changed during every attempt to update it")]
    PaymentConflict(String),
    /// An earlier record of the same message group failed in this batch (FIFO order).
    #[error("an earlier record of message group {0} failed in this batch")]
    GroupBlocked(String),
    /// The status store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus could not be called.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The bus rejected the entry.
    #[error("PutEvents rejected the entry: {code}: {message}")]
    EntryRejected {
        /// EventBridge error code.
        code: String,
        /// EventBridge error message.
        message: String,
    },
}

impl ProcessError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ProcessError::Malformed(_) => "malformed_record",
            ProcessError::WrongProvider { .. } => "wrong_provider",
            ProcessError::LeaseHeld { .. } => "lease_held",
            ProcessError::GroupBlocked(_) => "group_blocked",
            ProcessError::PaymentConflict(_) => "payment_conflict",
            ProcessError::Store(e) => e.code(),
            ProcessError::Bus(e) => e.code(),
            ProcessError::EntryRejected { .. } => "put_events_entry_failed",
        }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// Its business events were published and it is marked `PUBLISHED`.
    Published {
        /// Which webhook.
        webhook_id: String,
        /// Its normalised type.
        event_type: EventType,
        /// The business events published for it, in order.
        business_events: Vec<BusinessEventType>,
        /// Its tier.
        tier: Tier,
        /// Its amount in major units.
        amount: f64,
    },
    /// It changed nothing its payment's record tracks (`unchanged`) or came after a newer
    /// version (`stale`): nothing published, marked `PROCESSED` with that effect.
    Settled {
        /// Which webhook.
        webhook_id: String,
        /// What it did to the payment.
        effect: Effect,
    },
    /// Already done (or ignored): acknowledged without publishing again.
    Skipped {
        /// Which webhook.
        webhook_id: String,
        /// Where it already is.
        status: Status,
    },
    /// Failed: reported in `batchItemFailures` so SQS delivers it again (or moves it to the DLQ).
    Failed {
        /// Which webhook, when the body could be read.
        webhook_id: Option<String>,
        /// Why.
        error: ProcessError,
        /// This was the last receive: the item is now `FAILED` and SQS moves the message to the DLQ.
        final_attempt: bool,
        /// When the record should be received again, in seconds (see [`delay_retries`]).
        retry_after_secs: u32,
    },
}

/// The outcome of one batch, record by record, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchOutcome {
    /// `(message_id, outcome)` for every record of the batch.
    pub records: Vec<(String, RecordOutcome)>,
}

impl BatchOutcome {
    /// The message ids to report as `batchItemFailures`.
    pub fn failed_message_ids(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|(_, o)| matches!(o, RecordOutcome::Failed { .. }))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// `(message_id, seconds)` for every failed record that SQS will deliver again: when it
    /// should come back.
    pub fn retry_delays(&self) -> Vec<(&str, u32)> {
        self.records
            .iter()
            .filter_map(|(id, outcome)| match outcome {
                RecordOutcome::Failed {
                    final_attempt: false,
                    retry_after_secs,
                    ..
                } => Some((id.as_str(), *retry_after_secs)),
                _ => None,
            })
            .collect()
    }
}

/// Gives each failed record of `outcome` its retry delay with `ChangeMessageVisibility`, as
/// the processor's caller does after an invocation; `deliveries` are the batch's
/// `(message_id, receipt_handle)`. A change that fails is logged: the record then comes back
/// after the queue's visibility timeout, later but not lost.
pub async fn delay_retries(
    outcome: &BatchOutcome,
    deliveries: &[(String, String)],
    queue: &dyn MessageVisibility,
) {
    for (message_id, secs) in outcome.retry_delays() {
        let Some((_, handle)) = deliveries.iter().find(|(id, _)| id == message_id) else {
            continue;
        };
        if let Err(e) = queue.change_visibility(handle, secs).await {
            tracing::warn!(message_id, error = %e, error_code = e.code(), "could not shorten the retry delay");
        }
    }
}

/// Makes the span one record is handled in, from the record and its webhook id.
pub type RecordSpanFn = dyn Fn(&QueueRecord, Option<&str>) -> tracing::Span + Send + Sync;

/// How each record is traced. The Lambda function and the local stack set it from the
/// telemetry crate: every record is handled inside a span in the trace its `AWSTraceHeader`
/// names (the validator's), whose log lines carry the webhook id as `correlation_id` and that
/// trace's id, and `PutEvents` carries a header naming that span, so the event processor
/// continues the webhook's trace. By default nothing is traced and `PutEvents` carries the
/// record's own header.
#[derive(Clone)]
pub struct RecordTracing {
    /// The span one record is handled in, given the record and its webhook id (if the body
    /// names one).
    pub span: Arc<RecordSpanFn>,
    /// The trace header naming the current span, for a `PutEvents` entry put from inside it.
    pub trace_header: Arc<dyn Fn() -> Option<String> + Send + Sync>,
}

impl Default for RecordTracing {
    fn default() -> Self {
        RecordTracing {
            span: Arc::new(|_, _| tracing::Span::none()),
            trace_header: Arc::new(|| None),
        }
    }
}

impl std::fmt::Debug for RecordTracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordTracing").finish_non_exhaustive()
    }
}

/// The provider processor handler over its ports.
pub struct ProviderProcessor {
    store: Arc<dyn StatusStore>,
    payments: Arc<dyn PaymentStore>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    config: ProcessorConfig,
    tracing: RecordTracing,
}

impl std::fmt::Debug for ProviderProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderProcessor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ProviderProcessor {
    /// A processor over the given ports: webhook status items in `store`, payment records in
    /// `payments` (the same table in AWS).
    pub fn new(
        store: Arc<dyn StatusStore>,
        payments: Arc<dyn PaymentStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        config: ProcessorConfig,
    ) -> Self {
        ProviderProcessor {
            store,
            payments,
            bus,
            clock,
            config,
            tracing: RecordTracing::default(),
        }
    }

    /// Traces each record as `tracing` says (see [`RecordTracing`]).
    pub fn with_tracing(mut self, tracing: RecordTracing) -> Self {
        self.tracing = tracing;
        self
    }

    /// The processor's settings.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// Processes one batch in order. `deadline_ms` (Unix ms) is when the invocation ends; the
    /// lease of every claim ends then, or when the batch's messages become visible again if
    /// that is sooner. After a record fails, later records of the same message group fail
    /// without being tried (FIFO order); other groups go on.
    pub async fn handle_batch(&self, records: &[QueueRecord], deadline_ms: i64) -> BatchOutcome {
        let lease_until_ms = self.lease_until_ms(deadline_ms);
        let mut outcome = BatchOutcome::default();
        let mut blocked_groups: Vec<&str> = Vec::new();
        for record in records {
            let parsed = serde_json::from_str::<PaymentEvent>(&record.body);
            let webhook_id = match &parsed {
                Ok(event) => Some(event.webhook_id.clone()),
                Err(_) => webhook_id_of(&record.body),
            };
            let span = (self.tracing.span)(record, webhook_id.as_deref());
            let result = if blocked_groups.contains(&record.group_id.as_str()) {
                let error = ProcessError::GroupBlocked(record.group_id.clone());
                self.fail(record, webhook_id, error, None)
                    .instrument(span)
                    .await
            } else {
                self.handle_record(record, parsed, lease_until_ms)
                    .instrument(span)
                    .await
            };
            if matches!(result, RecordOutcome::Failed { .. }) {
                blocked_groups.push(&record.group_id);
            }
            outcome.records.push((record.message_id.clone(), result));
        }
        outcome
    }

    /// When the claims of a batch starting now end: with the invocation, or when the batch's
    /// messages become visible again, whichever is first.
    fn lease_until_ms(&self, deadline_ms: i64) -> i64 {
        let now = self.clock.now_ms();
        let visible_again = now + i64::from(self.config.visibility_timeout_secs) * 1000;
        deadline_ms.min(visible_again)
    }

    async fn handle_record(
        &self,
        record: &QueueRecord,
        parsed: Result<PaymentEvent, serde_json::Error>,
        lease_until_ms: i64,
    ) -> RecordOutcome {
        let event: PaymentEvent = match parsed {
            Ok(event) => event,
            Err(e) => {
                let webhook_id = webhook_id_of(&record.body);
                let error = ProcessError::Malformed(e.to_string());
                return self.fail(record, webhook_id, error, None).await;
            }
        };
        if event.provider != self.config.provider {
            let err = ProcessError::WrongProvider {
                expected: self.config.provider,
                found: event.provider,
            };
            return self.fail(record, Some(event.webhook_id), err, None).await;
        }
        let trace_header = record.trace_header.as_deref();
        let attempt = match self.claim(&event, trace_header, lease_until_ms).await {
            Ok(Claim::Taken(attempt)) => attempt,
            Ok(Claim::Done(status)) => {
                return RecordOutcome::Skipped {
                    webhook_id: event.webhook_id.clone(),
                    status,
                };
            }
            Err(err) => return self.fail(record, Some(event.webhook_id), err, None).await,
        };
        let result = match self.apply_to_payment(&event).await {
            Ok(applied) if applied.events.is_empty() => {
                self.settle(&event, attempt, applied.effect).await
            }
            Ok(applied) => self.publish(&event, record, attempt, &applied).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(outcome) => outcome,
            Err(err) => {
                self.fail(record, Some(event.webhook_id), err, Some(attempt))
                    .await
            }
        }
    }

    /// Applies the webhook to its payment's record with a conditional write and returns what
    /// it produced. A webhook already applied (a retry after a crash past this write) gets the
    /// events it produced then, so they are published, and only they.
    async fn apply_to_payment(&self, event: &PaymentEvent) -> Result<Applied, ProcessError> {
        for _ in 0..PAYMENT_WRITE_ATTEMPTS {
            let current = self
                .payments
                .get_payment(event.provider, &event.payment_id)
                .await?
                .unwrap_or_else(|| PaymentRecord::new(event.provider, event.payment_id.clone()));
            if let Some(applied) = current.applied(&event.webhook_id) {
                return Ok(applied.clone());
            }
            let (next, applied) = current.apply(event);
            let now = self.clock.now_ms();
            if self
                .payments
                .put_payment(&next, current.revision, now)
                .await?
            {
                return Ok(applied);
            }
        }
        Err(ProcessError::PaymentConflict(event.payment_id.clone()))
    }

    /// A webhook that changed nothing: `PROCESSED` at once, with its effect, for this attempt.
    async fn settle(
        &self,
        event: &PaymentEvent,
        attempt: u32,
        effect: Effect,
    ) -> Result<RecordOutcome, ProcessError> {
        let mut done = Transition::new(
            Status::Processed,
            &[Status::Processing],
            self.clock.now_ms(),
        );
        done.if_attempt = Some(attempt);
        done.payment_effect = Some(effect.as_str().to_owned());
        done.tier = Some(self.config.tiers.tier_of(event).as_str().to_owned());
        self.store.transition(&event.webhook_id, &done).await?;
        Ok(RecordOutcome::Settled {
            webhook_id: event.webhook_id.clone(),
            effect,
        })
    }

    /// Publishes the webhook's business events and records `PUBLISHED` for this attempt.
    /// Entries the bus rejects are put again (only they) a few times before the record fails.
    async fn publish(
        &self,
        event: &PaymentEvent,
        record: &QueueRecord,
        attempt: u32,
        applied: &Applied,
    ) -> Result<RecordOutcome, ProcessError> {
        let tier = self.config.tiers.tier_of(event);
        let put_at = rfc3339_ms(self.clock.now_ms());
        let mut pending = applied
            .events
            .iter()
            .enumerate()
            .map(|(n, business_event)| self.entry(event, record, tier, &put_at, n, business_event))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rejected = None;
        for _ in 0..PAYMENT_WRITE_ATTEMPTS {
            let results = self.bus.put_events(&pending).await?;
            if results.len() != pending.len() {
                return Err(ProcessError::EntryRejected {
                    code: "MissingResult".into(),
                    message: "PutEvents returned fewer results than entries".into(),
                });
            }
            let mut retry = Vec::new();
            for (entry, result) in pending.into_iter().zip(results) {
                if let EntryResult::Failed { code, message } = result {
                    rejected = Some(ProcessError::EntryRejected { code, message });
                    retry.push(entry);
                }
            }
            pending = retry;
            if pending.is_empty() {
                break;
            }
        }
        if let (false, Some(err)) = (pending.is_empty(), rejected) {
            return Err(err);
        }
        let mut published = Transition::new(
            Status::Published,
            &[Status::Processing],
            self.clock.now_ms(),
        );
        published.tier = Some(tier.as_str().to_owned());
        published.payment_effect = Some(applied.effect.as_str().to_owned());
        published.if_attempt = Some(attempt);
        // Rejected means the event processor already recorded it (or a take-over did): the
        // events are on the bus either way.
        self.store.transition(&event.webhook_id, &published).await?;
        Ok(RecordOutcome::Published {
            webhook_id: event.webhook_id.clone(),
            event_type: event.event_type,
            business_events: applied.events.iter().map(|e| e.event_type).collect(),
            tier,
            amount: event.amount,
        })
    }

    /// The bus entry of the `n`th business event of a webhook.
    fn entry(
        &self,
        event: &PaymentEvent,
        record: &QueueRecord,
        tier: Tier,
        put_at: &str,
        n: usize,
        business_event: &BusinessEvent,
    ) -> Result<BusEntry, ProcessError> {
        let detail = PublishedDetail {
            event: event.clone(),
            tier,
            business_event_id: format!("{}/{n}", event.webhook_id),
            business_event: Some(business_event.clone()),
            published_at: Some(put_at.to_owned()),
        };
        Ok(BusEntry {
            event_bus: self.config.event_bus.clone(),
            source: format!("payhook.{}", self.config.provider.as_str()),
            detail_type: business_event.event_type.as_str().to_owned(),
            detail: serde_json::to_string(&detail)
                .map_err(|e| ProcessError::Malformed(e.to_string()))?,
            // Inside the record's span: the event processor continues the webhook's trace
            // under it.
            trace_header: (self.tracing.trace_header)().or_else(|| record.trace_header.clone()),
        })
    }

    /// Claims the webhook until `lease_until_ms`.
    async fn claim(
        &self,
        event: &PaymentEvent,
        trace_header: Option<&str>,
        lease_until_ms: i64,
    ) -> Result<Claim, ProcessError> {
        let now = self.clock.now_ms();
        let mut claim = Transition::new(
            Status::Processing,
            &[Status::Received, Status::Queued, Status::Failed],
            now,
        );
        claim.or_lease_expired_at_ms = Some(now);
        claim.lease_until_ms = Some(lease_until_ms.max(now + 1));
        claim.increment_attempts = true;
        for _ in 0..2 {
            match self.store.transition(&event.webhook_id, &claim).await? {
                TransitionOutcome::Applied(item) => return Ok(Claim::Taken(item.attempts)),
                TransitionOutcome::Rejected(Some(item)) => {
                    return match item.status {
                        Status::Published | Status::Processed | Status::Ignored => {
                            Ok(Claim::Done(item.status))
                        }
                        _ => Err(ProcessError::LeaseHeld {
                            webhook_id: event.webhook_id.clone(),
                            until_ms: item.lease_until_ms,
                        }),
                    };
                }
                TransitionOutcome::Rejected(None) => {
                    // No record (e.g. sent by redrive after the item expired): recreate it.
                    let mut item = StatusItem::new(
                        event.webhook_id.clone(),
                        event.provider,
                        event.provider_event_type.clone(),
                        Status::Queued,
                        now,
                    );
                    item.event_type = Some(event.event_type.as_str().to_owned());
                    item.payment_id = Some(event.payment_id.clone());
                    item.amount_minor = Some(event.amount_minor);
                    item.currency = Some(event.currency.clone());
                    item.trace_id = trace_header.and_then(trace_id_of_header);
                    if let Some(received) = &event.received_at {
                        item.received_at = received.clone();
                    }
                    self.store.put_new(&item).await?;
                }
            }
        }
        Err(ProcessError::LeaseHeld {
            webhook_id: event.webhook_id.clone(),
            until_ms: None,
        })
    }

    /// Records a failure. On the last receive the item becomes `FAILED` with the reason,
    /// whatever the failure (a held lease or a held-back record too), and the message goes to
    /// the DLQ. Before that, `claimed` (this attempt's claim, if it took one) is released so
    /// the retry can take it at once, and the record gets its retry delay.
    async fn fail(
        &self,
        record: &QueueRecord,
        webhook_id: Option<String>,
        error: ProcessError,
        claimed: Option<u32>,
    ) -> RecordOutcome {
        let final_attempt = record.receive_count >= self.config.max_receive_count;
        let now = self.clock.now_ms();
        let change = match (final_attempt, claimed) {
            (true, _) => Some(Transition::new(
                Status::Failed,
                &[
                    Status::Received,
                    Status::Queued,
                    Status::Processing,
                    Status::Failed,
                ],
                now,
            )),
            (false, Some(attempt)) => {
                let mut release = Transition::new(Status::Queued, &[Status::Processing], now);
                // A claim taken over after this attempt's lease ended is not ours to release.
                release.if_attempt = Some(attempt);
                Some(release)
            }
            (false, None) => None,
        };
        if let (Some(id), Some(mut t)) = (&webhook_id, change) {
            t.last_error = Some(format!("{}: {error}", error.code()));
            if let Err(store_err) = self.store.transition(id, &t).await {
                tracing::warn!(webhook_id = %id, error = %store_err, error_code = store_err.code(), "could not record the failure");
            }
        }
        let retry_after_secs = self.retry_after_secs(record, &error, now);
        RecordOutcome::Failed {
            webhook_id,
            error,
            final_attempt,
            retry_after_secs,
        }
    }

    /// The record's retry delay; a record whose claim another attempt holds comes back when
    /// that lease ends.
    fn retry_after_secs(&self, record: &QueueRecord, error: &ProcessError, now: i64) -> u32 {
        let visibility = self.config.visibility_timeout_secs;
        let backoff = retry_delay_secs(record.receive_count, visibility);
        match error {
            ProcessError::LeaseHeld {
                until_ms: Some(until),
                ..
            } => {
                let lease_left_secs = (until - now + 999).div_euclid(1000) + 1;
                u32::try_from(lease_left_secs.max(0))
                    .unwrap_or(u32::MAX)
                    .max(backoff)
                    .min(visibility)
            }
            _ => backoff,
        }
    }
}

/// What a claim found.
enum Claim {
    /// Claimed: this is attempt number `n`.
    Taken(u32),
    /// Already done (or ignored): skip it.
    Done(Status),
}

/// The `webhook_id` of a record's body, if it has one (a malformed body may still).
fn webhook_id_of(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("webhook_id")?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_from_two_seconds_up_to_a_minute() {
        let delays: Vec<u32> = (1..=7).map(|n| retry_delay_secs(n, 1_800)).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            retry_delay_secs(0, 1_800),
            2,
            "a missing count is the first receive"
        );
        assert_eq!(retry_delay_secs(u32::MAX, 1_800), 60);
    }

    #[test]
    fn the_default_visibility_is_six_function_timeouts_as_aws_recommends() {
        let config = ProcessorConfig::new(Provider::Stripe);
        assert_eq!(config.visibility_timeout_secs, 1_800);
        assert_eq!(check_timeouts(DEFAULT_FUNCTION_TIMEOUT_SECS, 1_800), Ok(()));
    }

    #[test]
    fn a_retry_delay_never_exceeds_the_visibility_timeout() {
        assert_eq!(retry_delay_secs(3, 5), 5);
        assert_eq!(retry_delay_secs(1, 1), 1);
    }

    #[test]
    fn timeouts_that_contradict_the_lease_rules_are_refused() {
        assert_eq!(check_timeouts(300, 1_800), Ok(()));
        assert_eq!(
            check_timeouts(5, 5),
            Ok(()),
            "an invocation as long as the visibility"
        );
        assert_eq!(check_timeouts(0, 0), Err(TimeoutError::NoVisibility));
        assert_eq!(
            check_timeouts(6, 5),
            Err(TimeoutError::FunctionOutlivesVisibility {
                function_timeout_secs: 6,
                visibility_timeout_secs: 5
            })
        );
    }
}
