//! The sweeper: finds webhooks stuck in a state they should have left long ago and repairs what
//! is safe to repair. It runs on a schedule (the `sweeper` Lambda, every 5 minutes as deployed)
//! and as `payhook sweep` on the local stack.
//!
//! For each swept state ([`SWEPT_STATES`]) it lists the items last changed longer ago than the
//! state's threshold ([`SweeperConfig`]), oldest first, through the status table's open-status
//! index ([`StatusStore::list_by_status`], never a scan), and reports every one of them
//! ([`SweepReport`], counted as `StuckWebhooks` by provider and state). Then:
//!
//! | state | what the sweeper does |
//! |---|---|
//! | `RECEIVED` | recorded but never confirmed on the queue (the validator died between its record and its send, or the send failed after a provider gave up retrying): the item's kept message body is sent again, then the item is marked `QUEUED` |
//! | `PUBLISHED` | on the bus but never `PROCESSED` (every delivery to the event processor failed): when the payment record still lists the events this webhook produced and the item keeps its message body, the item is set back to `RECEIVED` and enqueued again; the processor then finds the webhook already applied to its payment and publishes exactly those events again (their `business_event_id`s unchanged), and the event processor records it. Once per item: a second time it is only reported |
//! | `QUEUED`, `PROCESSING` | reported: the message is on its queue (or in flight, or dead-lettered as `FAILED`) and SQS delivers it; enqueueing another copy would not help a blocked message group |
//!
//! Every repair is a conditional write on the state the item was listed in, so a webhook that
//! moves on by itself meanwhile is left alone, and a sweep that dies part way is finished by the
//! next one: the message is sent before the item leaves `RECEIVED`, under a deduplication id
//! fixed for that stuck episode ([`sweep_deduplication_id`]), so a repeat within SQS's
//! 5-minute window is dropped, and a copy the processor finds already claimed or done is
//! skipped by the status machine.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::event_processor::parse_rfc3339_ms;
use crate::payment::PaymentStore;
use crate::ports::{Clock, Queue, QueueError, QueueMessage};
use crate::provider::Provider;
use crate::status::{
    DEFAULT_LIST_PAGE_SIZE, Status, StatusItem, StatusQuery, StatusStore, StoreError, Transition,
    TransitionOutcome,
};

/// The states the sweeper looks at, in the order it sweeps them.
pub const SWEPT_STATES: [Status; 4] = [
    Status::Received,
    Status::Queued,
    Status::Processing,
    Status::Published,
];

/// Default threshold of `RECEIVED`: the validator answers within API Gateway's 29 s, so an
/// item still `RECEIVED` after 10 minutes was never confirmed on the queue.
pub const DEFAULT_RECEIVED_SECS: i64 = 10 * 60;

/// Default threshold of `QUEUED` and `PROCESSING`: longer than a crashed invocation's message
/// takes to come back (the deployed visibility timeout, 30 minutes) plus its retries.
pub const DEFAULT_QUEUED_SECS: i64 = 60 * 60;

/// Default threshold of `PUBLISHED`: the event processor normally records an event within
/// seconds; 30 minutes is many failed deliveries.
pub const DEFAULT_PUBLISHED_SECS: i64 = 30 * 60;

/// Default most stuck items handled per state in one sweep (the rest wait for the next one).
pub const DEFAULT_MAX_PER_STATE: usize = 500;

/// Longest SQS `MessageDeduplicationId`.
pub const MAX_DEDUPLICATION_ID_CHARS: usize = 128;

/// What the sweeper writes as `last_error` when it sets a `PUBLISHED` item back to be
/// published again; seeing it again, the sweeper only reports the item.
pub const REPUBLISH_MARK: &str = "sweeper: republished after it was never PROCESSED";

/// How long each swept state may last before an item counts as stuck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweeperConfig {
    /// `(state, seconds)` for each of [`SWEPT_STATES`].
    pub thresholds: Vec<(Status, i64)>,
    /// The most stuck items handled per state in one sweep.
    pub max_per_state: usize,
}

impl Default for SweeperConfig {
    fn default() -> Self {
        SweeperConfig {
            thresholds: vec![
                (Status::Received, DEFAULT_RECEIVED_SECS),
                (Status::Queued, DEFAULT_QUEUED_SECS),
                (Status::Processing, DEFAULT_QUEUED_SECS),
                (Status::Published, DEFAULT_PUBLISHED_SECS),
            ],
            max_per_state: DEFAULT_MAX_PER_STATE,
        }
    }
}

impl SweeperConfig {
    /// Every swept state with the same threshold (`payhook sweep --older-than`, tests).
    pub fn older_than(secs: i64) -> Self {
        SweeperConfig {
            thresholds: SWEPT_STATES.iter().map(|s| (*s, secs)).collect(),
            ..SweeperConfig::default()
        }
    }

    /// The threshold of `status`, when it is swept.
    pub fn threshold_secs(&self, status: Status) -> Option<i64> {
        self.thresholds
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, secs)| *secs)
    }
}

/// What the sweeper did with one stuck webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Its message was sent again and it is `QUEUED` (or already claimed by a processor).
    Reenqueued,
    /// Set back to be published again: enqueued once more (see the module documentation).
    Republished,
    /// Left as it is; `reason` says why.
    Reported {
        /// Why it was not repaired (a stable code).
        reason: &'static str,
    },
    /// It moved on between the listing and the repair: nothing to do.
    MovedOn,
    /// The repair failed; the next sweep tries again.
    RepairFailed {
        /// The failure's stable code.
        code: &'static str,
        /// The failure.
        error: String,
    },
}

impl Action {
    /// `reenqueued`, `republished`, `reported`, `moved_on` or `repair_failed`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Action::Reenqueued => "reenqueued",
            Action::Republished => "republished",
            Action::Reported { .. } => "reported",
            Action::MovedOn => "moved_on",
            Action::RepairFailed { .. } => "repair_failed",
        }
    }
}

/// One stuck webhook found by a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckWebhook {
    /// Which webhook.
    pub webhook_id: String,
    /// Its provider.
    pub provider: Provider,
    /// The state it was stuck in.
    pub status: Status,
    /// Its last change (RFC 3339).
    pub updated_at: String,
    /// What the sweep did.
    pub action: Action,
}

/// The outcome of one sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Every stuck webhook found, state by state, oldest first.
    pub stuck: Vec<StuckWebhook>,
    /// States with more stuck items than [`SweeperConfig::max_per_state`]: the rest wait.
    pub truncated: Vec<Status>,
}

impl SweepReport {
    /// Stuck webhooks per provider and swept state, zeros included (one `StuckWebhooks` value
    /// each, so an alarm and the dashboard see an explicit 0).
    pub fn counts(&self) -> BTreeMap<(Provider, &'static str), usize> {
        let mut counts: BTreeMap<(Provider, &'static str), usize> = Provider::ALL
            .iter()
            .flat_map(|p| SWEPT_STATES.iter().map(move |s| ((*p, s.as_str()), 0)))
            .collect();
        for stuck in &self.stuck {
            *counts
                .entry((stuck.provider, stuck.status.as_str()))
                .or_default() += 1;
        }
        counts
    }

    /// How many stuck webhooks were repaired (re-enqueued or republished).
    pub fn repaired(&self) -> usize {
        self.stuck
            .iter()
            .filter(|s| matches!(s.action, Action::Reenqueued | Action::Republished))
            .count()
    }
}

/// A sweep that could not list a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listing {status} items failed: {source}")]
pub struct SweepError {
    /// The state being listed.
    pub status: Status,
    /// The store's failure.
    pub source: StoreError,
}

impl SweepError {
    /// Stable machine code (the store's).
    pub fn code(&self) -> &'static str {
        self.source.code()
    }
}

/// The deduplication id a stuck webhook is enqueued again with: `{webhook_id}:sweep:{ms}`, where
/// `ms` is the item's last change (fixed for one stuck episode, so a sweep repeated after dying
/// between its send and its write is deduplicated by SQS), cut to fit SQS's 128 characters.
pub fn sweep_deduplication_id(webhook_id: &str, updated_ms: i64) -> String {
    deduplication_id_with(webhook_id, "sweep", updated_ms)
}

/// `{webhook_id}:{purpose}:{at_ms}` as an SQS deduplication id: characters SQS does not allow
/// become `_`, and a long webhook id is cut so the whole fits [`MAX_DEDUPLICATION_ID_CHARS`].
/// Used for every message sent again on purpose (a sweep, a DLQ redrive), so each re-send of
/// one episode is deduplicated and a later episode is not.
pub fn deduplication_id_with(webhook_id: &str, purpose: &str, at_ms: i64) -> String {
    let suffix = format!(":{purpose}:{at_ms}");
    let keep = MAX_DEDUPLICATION_ID_CHARS.saturating_sub(suffix.len());
    let id: String = webhook_id
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(keep)
        .collect();
    format!("{id}{suffix}")
}

/// The sweeper over its ports.
pub struct Sweeper {
    store: Arc<dyn StatusStore>,
    payments: Arc<dyn PaymentStore>,
    queue: Arc<dyn Queue>,
    clock: Arc<dyn Clock>,
    config: SweeperConfig,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Sweeper {
    /// A sweeper over the status table, the payment records, the provider queues and a clock.
    pub fn new(
        store: Arc<dyn StatusStore>,
        payments: Arc<dyn PaymentStore>,
        queue: Arc<dyn Queue>,
        clock: Arc<dyn Clock>,
        config: SweeperConfig,
    ) -> Self {
        Sweeper {
            store,
            payments,
            queue,
            clock,
            config,
        }
    }

    /// The sweeper's settings.
    pub fn config(&self) -> &SweeperConfig {
        &self.config
    }

    /// One sweep over every swept state (see the module documentation).
    pub async fn sweep(&self) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport::default();
        let now = self.clock.now_ms();
        for status in SWEPT_STATES {
            let Some(secs) = self.config.threshold_secs(status) else {
                continue;
            };
            let before = now.saturating_sub(secs.saturating_mul(1000));
            let max = self.config.max_per_state.max(1);
            // One more than handled: whether the state has more than `max` stuck items.
            let items = self
                .stuck_items(StatusQuery::new(status, before), max + 1)
                .await
                .map_err(|source| SweepError { status, source })?;
            if items.len() > max {
                report.truncated.push(status);
            }
            for item in items.into_iter().take(max) {
                let action = self.repair(&item).await;
                log_stuck(&item, &action);
                report.stuck.push(StuckWebhook {
                    webhook_id: item.webhook_id,
                    provider: item.provider,
                    status,
                    updated_at: item.updated_at,
                    action,
                });
            }
        }
        Ok(report)
    }

    /// Up to `max` items of `query`, page after page.
    async fn stuck_items(
        &self,
        mut query: StatusQuery,
        max: usize,
    ) -> Result<Vec<StatusItem>, StoreError> {
        let mut items = Vec::new();
        while items.len() < max {
            query.limit = (max - items.len()).min(DEFAULT_LIST_PAGE_SIZE);
            let page = self.store.list_by_status(&query).await?;
            items.extend(page.items);
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        items.truncate(max);
        Ok(items)
    }

    async fn repair(&self, item: &StatusItem) -> Action {
        match item.status {
            Status::Received => self.reenqueue(item).await,
            Status::Published => self.republish(item).await,
            Status::Queued => Action::Reported {
                reason: "on_its_queue",
            },
            _ => Action::Reported {
                reason: "in_flight_or_dead_lettered",
            },
        }
    }

    /// Sends a `RECEIVED` item's kept message again, then marks it `QUEUED`.
    async fn reenqueue(&self, item: &StatusItem) -> Action {
        let (Some(body), Some(group_id)) = (&item.message_body, &item.payment_id) else {
            return Action::Reported {
                reason: "no_message_body_kept",
            };
        };
        let updated_ms = parse_rfc3339_ms(&item.updated_at).unwrap_or_default();
        let message = QueueMessage {
            provider: item.provider,
            group_id: group_id.clone(),
            deduplication_id: sweep_deduplication_id(&item.webhook_id, updated_ms),
            body: body.clone(),
            trace_header: None,
        };
        if let Err(err) = self.queue.send(message).await {
            return queue_failed(&err);
        }
        let queued = Transition::new(Status::Queued, &[Status::Received], self.clock.now_ms());
        match self.store.transition(&item.webhook_id, &queued).await {
            // Rejected: a processor claimed it first, which is what the send was for.
            Ok(_) => Action::Reenqueued,
            Err(err) => store_failed(&err),
        }
    }

    /// Sets a `PUBLISHED` item back to `RECEIVED` and enqueues it again, when the processor
    /// can publish exactly its events again (see the module documentation).
    async fn republish(&self, item: &StatusItem) -> Action {
        if item
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(REPUBLISH_MARK))
        {
            return Action::Reported {
                reason: "republished_once_already",
            };
        }
        let (Some(_), Some(payment_id)) = (&item.message_body, &item.payment_id) else {
            return Action::Reported {
                reason: "no_message_body_kept",
            };
        };
        let remembered = match self.payments.get_payment(item.provider, payment_id).await {
            Ok(record) => record.is_some_and(|r| r.applied(&item.webhook_id).is_some()),
            Err(err) => return store_failed(&err),
        };
        if !remembered {
            return Action::Reported {
                reason: "events_no_longer_listed",
            };
        }
        let mut back = Transition::new(Status::Received, &[Status::Published], self.clock.now_ms());
        back.last_error = Some(REPUBLISH_MARK.to_owned());
        let again = match self.store.transition(&item.webhook_id, &back).await {
            Ok(TransitionOutcome::Applied(again)) => again,
            Ok(TransitionOutcome::Rejected(_)) => return Action::MovedOn,
            Err(err) => return store_failed(&err),
        };
        match self.reenqueue(&again).await {
            Action::Reenqueued => Action::Republished,
            // Left RECEIVED with its body: the next sweep enqueues it.
            other => other,
        }
    }
}

fn queue_failed(err: &QueueError) -> Action {
    Action::RepairFailed {
        code: err.code(),
        error: err.to_string(),
    }
}

fn store_failed(err: &StoreError) -> Action {
    Action::RepairFailed {
        code: err.code(),
        error: err.to_string(),
    }
}

fn log_stuck(item: &StatusItem, action: &Action) {
    let reason = match action {
        Action::Reported { reason } => Some(*reason),
        Action::RepairFailed { code, .. } => Some(*code),
        _ => None,
    };
    tracing::warn!(
        webhook_id = %item.webhook_id,
        provider = item.provider.as_str(),
        status = item.status.as_str(),
        updated_at = %item.updated_at,
        action = action.as_str(),
        reason,
        "stuck webhook"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_deduplication_ids_are_fixed_per_episode_and_fit_sqs() {
        assert_eq!(
            sweep_deduplication_id("stripe:evt_1", 1_767_225_600_000),
            "stripe:evt_1:sweep:1767225600000"
        );
        assert_ne!(
            sweep_deduplication_id("stripe:evt_1", 1),
            sweep_deduplication_id("stripe:evt_1", 2)
        );
        let long = sweep_deduplication_id(&"x é".repeat(100), 1);
        assert!(long.len() <= MAX_DEDUPLICATION_ID_CHARS, "{long}");
        assert!(long.chars().all(|c| c.is_ascii_graphic()), "{long}");
    }

    #[test]
    fn counts_cover_every_provider_and_swept_state_with_zeros() {
        let report = SweepReport {
            stuck: vec![StuckWebhook {
                webhook_id: "square:a".into(),
                provider: Provider::Square,
                status: Status::Published,
                updated_at: String::new(),
                action: Action::MovedOn,
            }],
            truncated: Vec::new(),
        };
        let counts = report.counts();
        assert_eq!(counts.len(), 3 * SWEPT_STATES.len());
        assert_eq!(counts[&(Provider::Square, "PUBLISHED")], 1);
        assert_eq!(counts[&(Provider::Stripe, "RECEIVED")], 0);
    }
}
