//! The provider processors' handler (one binary, deployed per provider): for each SQS FIFO
//! record, claim the webhook in the status store, compute its amount tier, publish it to the
//! `payment-events` bus and mark it `PUBLISHED`.
//!
//! Exactly-once in effect comes from the status machine, not from SQS: a record whose
//! webhook is already `PUBLISHED`/`PROCESSED` is acknowledged and skipped; a claim is a
//! conditional write holding a lease that ends with the invocation, so two processors racing
//! on one webhook publish once, and a crashed attempt can be taken over once its lease ends.
//!
//! Provider-specific meaning (PayPal's capture id from `links[rel=up]`, Stripe's cumulative
//! refund amounts, Square's status mapping) is applied by the normalisers before the message
//! is queued, because the FIFO message group *is* the payment id those rules produce; the
//! processor checks the record belongs to its provider and adds the tier.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::bus::{BusEntry, BusError, EntryResult, EventBus, PAYMENT_EVENTS_BUS};
use crate::event::{EventType, PaymentEvent};
use crate::ports::Clock;
use crate::provider::Provider;
use crate::status::{Status, StatusItem, StatusStore, StoreError, Transition, TransitionOutcome};
pub use crate::tier::{Tier, TierThresholds};

/// Default receives before SQS moves a message to the DLQ.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// The EventBridge `detail` a processor publishes: the canonical event plus its tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedDetail {
    /// The canonical event.
    #[serde(flatten)]
    pub event: PaymentEvent,
    /// Its amount tier.
    pub tier: Tier,
}

/// Settings of one provider's processor.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    /// The provider whose queue this processor drains.
    pub provider: Provider,
    /// The queue's `maxReceiveCount`: the receive on which a failure is final.
    pub max_receive_count: u32,
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
    #[error("another attempt holds the lease on {0}")]
    LeaseHeld(String),
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
            ProcessError::LeaseHeld(_) => "lease_held",
            ProcessError::GroupBlocked(_) => "group_blocked",
            ProcessError::Store(e) => e.code(),
            ProcessError::Bus(e) => e.code(),
            ProcessError::EntryRejected { .. } => "put_events_entry_failed",
        }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// Published and marked `PUBLISHED`.
    Published {
        /// Which webhook.
        webhook_id: String,
        /// Its normalised type.
        event_type: EventType,
        /// Its tier.
        tier: Tier,
        /// Its amount in major units.
        amount: f64,
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
}

/// The provider processor handler over its ports.
pub struct ProviderProcessor {
    store: Arc<dyn StatusStore>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    config: ProcessorConfig,
}

impl std::fmt::Debug for ProviderProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderProcessor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ProviderProcessor {
    /// A processor over the given ports.
    pub fn new(
        store: Arc<dyn StatusStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        config: ProcessorConfig,
    ) -> Self {
        ProviderProcessor {
            store,
            bus,
            clock,
            config,
        }
    }

    /// The processor's settings.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// Processes one batch in order. `deadline_ms` (Unix ms) is when the invocation ends: the
    /// lease of every claim ends then too. After a record fails, later records of the same
    /// message group fail without being tried (FIFO order); other groups go on.
    pub async fn handle_batch(&self, records: &[QueueRecord], deadline_ms: i64) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let mut blocked_groups: Vec<&str> = Vec::new();
        for record in records {
            let result = if blocked_groups.contains(&record.group_id.as_str()) {
                RecordOutcome::Failed {
                    webhook_id: None,
                    error: ProcessError::GroupBlocked(record.group_id.clone()),
                    final_attempt: false,
                }
            } else {
                self.handle_record(record, deadline_ms).await
            };
            if matches!(result, RecordOutcome::Failed { .. }) {
                blocked_groups.push(&record.group_id);
            }
            outcome.records.push((record.message_id.clone(), result));
        }
        outcome
    }

    async fn handle_record(&self, record: &QueueRecord, deadline_ms: i64) -> RecordOutcome {
        let event: PaymentEvent = match serde_json::from_str(&record.body) {
            Ok(event) => event,
            Err(e) => {
                let webhook_id = serde_json::from_str::<serde_json::Value>(&record.body)
                    .ok()
                    .and_then(|v| v.get("webhook_id")?.as_str().map(str::to_owned));
                return self
                    .fail(record, webhook_id, ProcessError::Malformed(e.to_string()))
                    .await;
            }
        };
        if event.provider != self.config.provider {
            let err = ProcessError::WrongProvider {
                expected: self.config.provider,
                found: event.provider,
            };
            return self.fail(record, Some(event.webhook_id), err).await;
        }
        match self.process(&event, record, deadline_ms).await {
            Ok(outcome) => outcome,
            Err(err) => self.fail(record, Some(event.webhook_id), err).await,
        }
    }

    async fn process(
        &self,
        event: &PaymentEvent,
        record: &QueueRecord,
        deadline_ms: i64,
    ) -> Result<RecordOutcome, ProcessError> {
        if let Some(status) = self.claim(event, deadline_ms).await? {
            return Ok(RecordOutcome::Skipped {
                webhook_id: event.webhook_id.clone(),
                status,
            });
        }
        let tier = self.config.tiers.tier_of(event);
        let detail = PublishedDetail {
            event: event.clone(),
            tier,
        };
        let entry = BusEntry {
            event_bus: self.config.event_bus.clone(),
            source: format!("payhook.{}", self.config.provider.as_str()),
            detail_type: event.event_type.as_str().to_owned(),
            detail: serde_json::to_string(&detail)
                .map_err(|e| ProcessError::Malformed(e.to_string()))?,
            trace_header: record.trace_header.clone(),
        };
        let results = self.bus.put_events(std::slice::from_ref(&entry)).await?;
        match results.into_iter().next() {
            Some(EntryResult::Accepted(_)) => {}
            Some(EntryResult::Failed { code, message }) => {
                return Err(ProcessError::EntryRejected { code, message });
            }
            None => {
                return Err(ProcessError::EntryRejected {
                    code: "MissingResult".into(),
                    message: "PutEvents returned no result for the entry".into(),
                });
            }
        }
        let mut published = Transition::new(
            Status::Published,
            &[Status::Processing],
            self.clock.now_ms(),
        );
        published.tier = Some(tier.as_str().to_owned());
        // Rejected means the event processor already recorded it (or a take-over did): the
        // event is on the bus either way.
        self.store.transition(&event.webhook_id, &published).await?;
        Ok(RecordOutcome::Published {
            webhook_id: event.webhook_id.clone(),
            event_type: event.event_type,
            tier,
            amount: event.amount,
        })
    }

    /// Claims the webhook; `Ok(Some(status))` when it is already done and must be skipped.
    async fn claim(
        &self,
        event: &PaymentEvent,
        deadline_ms: i64,
    ) -> Result<Option<Status>, ProcessError> {
        let now = self.clock.now_ms();
        let mut claim = Transition::new(
            Status::Processing,
            &[Status::Received, Status::Queued, Status::Failed],
            now,
        );
        claim.or_lease_expired_at_ms = Some(now);
        claim.lease_until_ms = Some(deadline_ms.max(now + 1));
        claim.increment_attempts = true;
        for _ in 0..2 {
            match self.store.transition(&event.webhook_id, &claim).await? {
                TransitionOutcome::Applied(_) => return Ok(None),
                TransitionOutcome::Rejected(Some(item)) => {
                    return match item.status {
                        Status::Published | Status::Processed | Status::Ignored => {
                            Ok(Some(item.status))
                        }
                        _ => Err(ProcessError::LeaseHeld(event.webhook_id.clone())),
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
                    if let Some(received) = &event.received_at {
                        item.received_at = received.clone();
                    }
                    self.store.put_new(&item).await?;
                }
            }
        }
        Err(ProcessError::LeaseHeld(event.webhook_id.clone()))
    }

    /// Records a failure: on the last receive the item becomes `FAILED` (the message goes to
    /// the DLQ); before that the claim is released so the next receive can take it at once.
    async fn fail(
        &self,
        record: &QueueRecord,
        webhook_id: Option<String>,
        error: ProcessError,
    ) -> RecordOutcome {
        let final_attempt = record.receive_count >= self.config.max_receive_count;
        if let Some(id) = &webhook_id {
            let now = self.clock.now_ms();
            let mut t = if final_attempt {
                Transition::new(
                    Status::Failed,
                    &[Status::Received, Status::Queued, Status::Processing],
                    now,
                )
            } else {
                Transition::new(Status::Queued, &[Status::Processing], now)
            };
            t.last_error = Some(format!("{}: {error}", error.code()));
            // A held lease belongs to another attempt: its record is not ours to change.
            if !matches!(error, ProcessError::LeaseHeld(_))
                && let Err(store_err) = self.store.transition(id, &t).await
            {
                tracing::warn!(webhook_id = %id, error = %store_err, error_code = store_err.code(), "could not record the failure");
            }
        }
        RecordOutcome::Failed {
            webhook_id,
            error,
            final_attempt,
        }
    }
}
