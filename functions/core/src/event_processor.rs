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
    /// The EventBridge event (`detail` is the published detail). Shared, not owned: the local
    /// bus hands the one event it matched to every rule's target without copying it.
    #[serde(deserialize_with = "shared_value")]
    pub event: Arc<serde_json::Value>,
}

impl RoutedEvent {
    /// `event` delivered by the rule named `rule`.
    pub fn new(rule: impl Into<String>, event: impl Into<Arc<serde_json::Value>>) -> Self {
        RoutedEvent {
            rule: rule.into(),
            event: event.into(),
        }
    }
}

fn shared_value<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Arc<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Arc::new)
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
        // Read from the event in place (serde reads a `&Value`), without copying the detail.
        let detail: PublishedDetail = routed
            .event
            .get("detail")
            .ok_or_else(|| EventProcessorError::Malformed("no detail".into()))
            .and_then(|d| {
                PublishedDetail::deserialize(d)
                    .map_err(|e| EventProcessorError::Malformed(e.to_string()))
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
        // From PROCESSING the processor has not recorded PUBLISHED (yet): the time it put the
        // event on the bus is the publish time; in events older than that field, the envelope's
        // `time` (whole seconds), else now (an upper bound).
        record.published_at_ms = Some(
            detail
                .published_at
                .as_deref()
                .and_then(parse_rfc3339_ms)
                .or_else(|| {
                    routed
                        .event
                        .get("time")
                        .and_then(|t| t.as_str())
                        .and_then(parse_rfc3339_ms)
                })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::FixedClock;
    use crate::status::{MemoryStatusStore, StatusItem};

    const NOW: i64 = 1_767_225_660_000;

    fn routed(rule: &str) -> RoutedEvent {
        RoutedEvent::new(
            rule,
            serde_json::json!({
                "id": "e-1", "detail-type": "payment.succeeded", "source": "payhook.stripe",
                "time": "2026-01-01T00:00:59Z",
                "detail": {
                    "webhook_id": "stripe:evt_1", "provider": "stripe",
                    "provider_event_id": "evt_1",
                    "provider_event_type": "payment_intent.succeeded",
                    "event_type": "payment.succeeded", "payment_id": "pi_1",
                    "amount_minor": 1000, "amount": 10.0, "currency": "USD",
                    "occurred_at": "2026-01-01T00:00:00.000Z",
                    "received_at": "2026-01-01T00:00:30.000Z", "tier": "low"
                }
            }),
        )
    }

    async fn published_store() -> Arc<MemoryStatusStore> {
        let store = Arc::new(MemoryStatusStore::new());
        let item = StatusItem::new(
            "stripe:evt_1",
            Provider::Stripe,
            "payment_intent.succeeded",
            Status::Published,
            NOW - 30_000,
        );
        store.put_new(&item).await.expect("memory store");
        store
    }

    #[tokio::test]
    async fn the_end_to_end_latency_runs_from_first_receipt_to_the_record() {
        let processor = EventProcessor::new(published_store().await, Arc::new(FixedClock(NOW)));
        let outcome = processor.handle(&routed("low-value-payments")).await;
        assert_eq!(
            outcome,
            Ok(ProcessedOutcome::Recorded {
                webhook_id: "stripe:evt_1".into(),
                provider: Provider::Stripe,
                rule: "low-value-payments".into(),
                end_to_end_ms: Some(30_000),
            })
        );
    }

    #[tokio::test]
    async fn an_event_for_a_webhook_not_yet_published_is_retried_not_absorbed() {
        let store = Arc::new(MemoryStatusStore::new());
        let mut item = StatusItem::new(
            "stripe:evt_1",
            Provider::Stripe,
            "payment_intent.succeeded",
            Status::Queued,
            NOW,
        );
        // Even an item that somehow lists the rule is not absorbed unless it is PROCESSED.
        item.matched_rules = vec!["low-value-payments".into()];
        store.put_new(&item).await.expect("memory store");
        let processor = EventProcessor::new(store, Arc::new(FixedClock(NOW)));
        let err = processor
            .handle(&routed("low-value-payments"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            EventProcessorError::NotPublished {
                webhook_id: "stripe:evt_1".into(),
                status: Some(Status::Queued),
            }
        );
        assert!(err.is_retryable());
    }

    /// The event processor got there before the processor recorded `PUBLISHED`: the item is
    /// still `PROCESSING`, and `published_at` is when the event was put on the bus.
    async fn processing_store() -> Arc<MemoryStatusStore> {
        let store = Arc::new(MemoryStatusStore::new());
        let item = StatusItem::new(
            "stripe:evt_1",
            Provider::Stripe,
            "payment_intent.succeeded",
            Status::Processing,
            NOW - 30_000,
        );
        store.put_new(&item).await.expect("memory store");
        store
    }

    #[tokio::test]
    async fn from_processing_the_publish_time_is_the_processors_to_the_millisecond() {
        let store = processing_store().await;
        let processor = EventProcessor::new(store.clone(), Arc::new(FixedClock(NOW)));
        let mut event = routed("low-value-payments");
        Arc::make_mut(&mut event.event)["detail"]["published_at"] =
            "2026-01-01T00:00:59.734Z".into();
        processor.handle(&event).await.expect("recorded");
        let item = store.get("stripe:evt_1").await.unwrap().unwrap();
        assert_eq!(item.status, Status::Processed);
        assert_eq!(
            item.published_at.as_deref(),
            Some("2026-01-01T00:00:59.734Z")
        );
    }

    #[tokio::test]
    async fn from_processing_an_older_event_falls_back_to_the_envelope_time() {
        let store = processing_store().await;
        let processor = EventProcessor::new(store.clone(), Arc::new(FixedClock(NOW)));
        processor
            .handle(&routed("low-value-payments"))
            .await
            .expect("recorded");
        let item = store.get("stripe:evt_1").await.unwrap().unwrap();
        assert_eq!(
            item.published_at.as_deref(),
            Some("2026-01-01T00:00:59.000Z")
        );
    }

    #[test]
    fn error_codes_are_stable_and_only_malformed_events_are_not_retried() {
        let malformed = EventProcessorError::Malformed("no detail".into());
        let not_published = EventProcessorError::NotPublished {
            webhook_id: "stripe:evt_1".into(),
            status: None,
        };
        let store = EventProcessorError::Store(StoreError::Unavailable("down".into()));
        assert_eq!(malformed.code(), "malformed_event");
        assert_eq!(not_published.code(), "not_published");
        assert_eq!(store.code(), "state_store_unavailable");
        assert!(!malformed.is_retryable());
        assert!(not_published.is_retryable());
        assert!(store.is_retryable());
    }
}
