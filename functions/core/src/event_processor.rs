//! The event processor: the EventBridge target of every rule in `rules/`. It records the final
//! `PROCESSED` status with the tier, the matched rule(s) and the times, and is idempotent under
//! EventBridge's at-least-once delivery.
//!
//! Each rule's target hands it `{"rule": "<rule name>", "event": <the EventBridge event>}`
//! (an input transformer in AWS, the local bus in `payhook serve`), so it knows which rule
//! delivered the event.

use std::sync::Arc;

use serde::Deserialize;

use crate::ports::Clock;
use crate::processor::PublishedDetail;
use crate::provider::Provider;
use crate::status::{Status, StatusStore, StoreError, Transition, TransitionOutcome};

/// What a rule target delivers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RoutedEvent {
    /// The name of the rule that matched.
    pub rule: String,
    /// The EventBridge event (`detail` is the published detail).
    pub event: serde_json::Value,
}

/// What the event processor did.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessedOutcome {
    /// The webhook is now `PROCESSED` with this rule recorded.
    Recorded {
        /// Which webhook.
        webhook_id: String,
        /// Its provider.
        provider: Provider,
        /// The rule that delivered it.
        rule: String,
        /// Milliseconds from first receipt to now, when known.
        end_to_end_ms: Option<i64>,
    },
    /// A repeated delivery of a rule already recorded: nothing changed.
    Absorbed {
        /// Which webhook.
        webhook_id: String,
        /// The rule that delivered it again.
        rule: String,
    },
}

/// Why an event could not be recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventProcessorError {
    /// The delivery is not a routed payhook event.
    #[error("malformed routed event: {0}")]
    Malformed(String),
    /// The webhook is in a state that cannot become `PROCESSED` (yet): retried.
    #[error("webhook {webhook_id} is {status:?}, not published")]
    NotPublished {
        /// Which webhook.
        webhook_id: String,
        /// Its state (`None`: no such item).
        status: Option<Status>,
    },
    /// The status store failed: retried.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EventProcessorError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            EventProcessorError::Malformed(_) => "malformed_event",
            EventProcessorError::NotPublished { .. } => "not_published",
            EventProcessorError::Store(e) => e.code(),
        }
    }

    /// Whether a retry can succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, EventProcessorError::Malformed(_))
    }
}

/// The event processor handler.
pub struct EventProcessor {
    store: Arc<dyn StatusStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for EventProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProcessor").finish_non_exhaustive()
    }
}

impl EventProcessor {
    /// An event processor over the status store.
    pub fn new(store: Arc<dyn StatusStore>, clock: Arc<dyn Clock>) -> Self {
        EventProcessor { store, clock }
    }

    /// Records one routed event.
    pub async fn handle(
        &self,
        routed: &RoutedEvent,
    ) -> Result<ProcessedOutcome, EventProcessorError> {
        let detail: PublishedDetail = routed
            .event
            .get("detail")
            .cloned()
            .ok_or_else(|| EventProcessorError::Malformed("no detail".into()))
            .and_then(|d| {
                serde_json::from_value(d).map_err(|e| EventProcessorError::Malformed(e.to_string()))
            })?;
        let webhook_id = detail.event.webhook_id.clone();
        let now = self.clock.now_ms();
        let mut record = Transition::new(
            Status::Processed,
            // PROCESSING: the processor crashed after PutEvents, before marking PUBLISHED.
            &[Status::Published, Status::Processing],
            now,
        );
        record.tier = Some(detail.tier.as_str().to_owned());
        record.add_matched_rules = vec![routed.rule.clone()];
        // From PROCESSING the processor has not recorded PUBLISHED (yet): the event's `time`,
        // when EventBridge put it on the bus, is the publish time (else: now, an upper bound).
        record.published_at_ms = Some(
            routed
                .event
                .get("time")
                .and_then(|t| t.as_str())
                .and_then(parse_rfc3339_ms)
                .unwrap_or(now),
        );
        let recorded = || ProcessedOutcome::Recorded {
            webhook_id: webhook_id.clone(),
            provider: detail.event.provider,
            rule: routed.rule.clone(),
            end_to_end_ms: detail
                .event
                .received_at
                .as_deref()
                .and_then(parse_rfc3339_ms)
                .map(|received| now - received),
        };
        match self.store.transition(&webhook_id, &record).await? {
            TransitionOutcome::Applied(_) => Ok(recorded()),
            TransitionOutcome::Rejected(Some(item)) if item.status == Status::Processed => {
                if item.matched_rules.contains(&routed.rule) {
                    return Ok(ProcessedOutcome::Absorbed {
                        webhook_id,
                        rule: routed.rule.clone(),
                    });
                }
                // Another rule matched the same event: add it to the record.
                record.from = vec![Status::Processed];
                match self.store.transition(&webhook_id, &record).await? {
                    TransitionOutcome::Applied(_) => Ok(recorded()),
                    TransitionOutcome::Rejected(item) => Err(EventProcessorError::NotPublished {
                        webhook_id,
                        status: item.map(|i| i.status),
                    }),
                }
            }
            TransitionOutcome::Rejected(item) => Err(EventProcessorError::NotPublished {
                webhook_id,
                status: item.map(|i| i.status),
            }),
        }
    }
}

/// Parses RFC 3339 into Unix milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let dt =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}
