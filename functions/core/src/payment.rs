//! The state of one payment across its webhooks, and the business events its changes produce.
//!
//! See the state machine below (also `functions/core/docs/payment-state.md`).
#![doc = include_str!("../docs/payment-state.md")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::event::{EventType, PaymentEvent};
use crate::event_processor::parse_rfc3339_ms;
use crate::provider::Provider;
use crate::status::StoreError;

/// Key prefix of payment records in the status table (webhook keys start with a provider name).
pub const PAYMENT_KEY_PREFIX: &str = "payment#";

/// How long a payment record is kept after its last change: longer than any refund or dispute
/// window of the three providers (refunds up to a year after the charge on some Square and
/// PayPal accounts, Stripe disputes up to 120 days after the charge), so a late refund still
/// finds the capture it refunds and a late `payment.updated` is not mistaken for a new capture.
pub const DEFAULT_PAYMENT_RETENTION_SECS: i64 = 400 * 24 * 60 * 60;

/// Webhooks remembered per payment with the events they produced. The FIFO message group (the
/// payment id) delivers a payment's webhooks one at a time, so a webhook retried after a crash
/// is retried before any later one of its payment is applied: it is always among the newest.
pub const MAX_APPLIED_WEBHOOKS: usize = 64;

/// The table key of a payment's record.
pub fn payment_key(provider: Provider, payment_id: &str) -> String {
    format!("{PAYMENT_KEY_PREFIX}{}:{payment_id}", provider.as_str())
}

/// A payment's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Only refunds or disputes of it seen so far.
    #[default]
    Unknown,
    /// Authorised or processing, not captured.
    Pending,
    /// Captured (stays so; refunds are tracked beside it).
    Succeeded,
    /// The latest attempt failed.
    Failed,
    /// Cancelled or voided before capture.
    Canceled,
}

impl PaymentState {
    /// The state a payment webhook of type `event_type` reports, if it is about the payment.
    fn of(event_type: EventType) -> Option<PaymentState> {
        Some(match event_type {
            EventType::PaymentSucceeded => PaymentState::Succeeded,
            EventType::PaymentFailed => PaymentState::Failed,
            EventType::PaymentPending => PaymentState::Pending,
            EventType::PaymentCanceled => PaymentState::Canceled,
            _ => return None,
        })
    }

    /// The snake-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentState::Unknown => "unknown",
            PaymentState::Pending => "pending",
            PaymentState::Succeeded => "succeeded",
            PaymentState::Failed => "failed",
            PaymentState::Canceled => "canceled",
        }
    }
}

/// Where a delivery stands in the history of the object it carries: the object's update time
/// (else the event's), its version counter (else 0), then the provider's event id, so any two
/// distinct deliveries are ordered the same way wherever they are compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The object's version counter.
    pub version: i64,
    /// The provider's event id.
    pub event_id: String,
}

impl Position {
    /// The position of `event`'s object.
    pub fn of(event: &PaymentEvent) -> Position {
        let at = event
            .object_updated_at
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .or_else(|| parse_rfc3339_ms(&event.occurred_at))
            .unwrap_or(0);
        Position {
            at_ms: at,
            version: event.object_version.unwrap_or(0),
            event_id: event.provider_event_id.clone(),
        }
    }
}

/// A refund's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Requested, not final.
    Pending,
    /// Money returned (stays so).
    Succeeded,
    /// Rejected or failed.
    Failed,
}

impl RefundStatus {
    fn of(event_type: EventType) -> Option<RefundStatus> {
        Some(match event_type {
            EventType::RefundPending => RefundStatus::Pending,
            EventType::RefundSucceeded => RefundStatus::Succeeded,
            EventType::RefundFailed => RefundStatus::Failed,
            _ => return None,
        })
    }

    const fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }
}

/// One refund of the payment, by the provider's refund id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    /// Its status (`succeeded` once any delivery said so).
    pub status: RefundStatus,
    /// Its amount in minor units.
    pub amount_minor: i64,
    /// The newest delivery about it.
    pub latest: Position,
}

/// What a webhook did to its payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// It added a fact or a newer state: business events were published.
    Transition,
    /// Nothing new (a newer version that changes nothing the record tracks).
    Unchanged,
    /// An older version than one already applied: nothing changed.
    Stale,
}

impl Effect {
    /// The snake-case name recorded on the status item.
    pub const fn as_str(self) -> &'static str {
        match self {
            Effect::Transition => "transition",
            Effect::Unchanged => "unchanged",
            Effect::Stale => "stale",
        }
    }
}

/// The business event types published on `payment-events` (the EventBridge `detail-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BusinessEventType {
    /// The payment was captured: once per payment.
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    /// A payment attempt failed: once per payment.
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    /// Money was returned: once per refund, with the delta and the cumulative total.
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
    /// Another change: a newer pending or cancelled state, a refund pending or failed.
    #[serde(rename = "payment.updated")]
    PaymentUpdated,
    /// A dispute was opened.
    #[serde(rename = "dispute.opened")]
    DisputeOpened,
    /// A dispute reached a new state.
    #[serde(rename = "dispute.updated")]
    DisputeUpdated,
    /// A dispute was closed.
    #[serde(rename = "dispute.closed")]
    DisputeClosed,
}

impl BusinessEventType {
    /// Every business event type.
    pub const ALL: [BusinessEventType; 7] = [
        BusinessEventType::PaymentSucceeded,
        BusinessEventType::PaymentFailed,
        BusinessEventType::PaymentRefunded,
        BusinessEventType::PaymentUpdated,
        BusinessEventType::DisputeOpened,
        BusinessEventType::DisputeUpdated,
        BusinessEventType::DisputeClosed,
    ];

    /// The dotted name, used as the EventBridge `DetailType`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BusinessEventType::PaymentSucceeded => "payment.succeeded",
            BusinessEventType::PaymentFailed => "payment.failed",
            BusinessEventType::PaymentRefunded => "payment.refunded",
            BusinessEventType::PaymentUpdated => "payment.updated",
            BusinessEventType::DisputeOpened => "dispute.opened",
            BusinessEventType::DisputeUpdated => "dispute.updated",
            BusinessEventType::DisputeClosed => "dispute.closed",
        }
    }

    fn of_dispute(event_type: EventType) -> Option<BusinessEventType> {
        Some(match event_type {
            EventType::DisputeOpened => BusinessEventType::DisputeOpened,
            EventType::DisputeUpdated => BusinessEventType::DisputeUpdated,
            EventType::DisputeClosed => BusinessEventType::DisputeClosed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for BusinessEventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The payment as a business event describes it, after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSummary {
    /// Its lifecycle state.
    pub state: PaymentState,
    /// The captured amount in minor units, once captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_minor: Option<i64>,
    /// Refunded so far, in minor units (cumulative).
    pub refunded_minor: i64,
    /// The payment's currency, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// One business event a webhook produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessEvent {
    /// Its type (`detail-type`).
    #[serde(rename = "type")]
    pub event_type: BusinessEventType,
    /// The payment after the change.
    pub payment: PaymentSummary,
    /// `payment.refunded`: the amount this event adds to the refunded total (minor units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_delta_minor: Option<i64>,
    /// `payment.updated`: what changed (`state`, `refund`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
}

/// A webhook applied to the record and what it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The webhook.
    pub webhook_id: String,
    /// Its effect.
    pub effect: Effect,
    /// The business events it produced, in publishing order.
    pub events: Vec<BusinessEvent>,
}

/// The record of one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// Which provider.
    pub provider: Provider,
    /// The provider's payment id (the FIFO message group).
    pub payment_id: String,
    /// The payment's currency (from the first webhook that named one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The status the newest payment-object version reported.
    #[serde(default)]
    pub latest_state: PaymentState,
    /// The newest payment-object version applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<Position>,
    /// The captured amount, once a capture was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_minor: Option<i64>,
    /// Whether a failed attempt was seen.
    #[serde(default)]
    pub failure_seen: bool,
    /// Refunds by the provider's refund id.
    #[serde(default)]
    pub refunds: BTreeMap<String, RefundRecord>,
    /// The largest cumulative refunded total the provider reported (Stripe).
    #[serde(default)]
    pub reported_refunded_minor: i64,
    /// `(dispute id, dispute event type, provider status)` facts seen.
    #[serde(default)]
    pub dispute_facts: BTreeSet<(String, BusinessEventType, String)>,
    /// The newest webhooks applied, oldest first (at most [`MAX_APPLIED_WEBHOOKS`]).
    #[serde(default)]
    pub applied: Vec<Applied>,
    /// Write counter for the conditional write (0: not stored yet).
    #[serde(default)]
    pub revision: u64,
}

impl PaymentRecord {
    /// An empty record for a payment never seen.
    pub fn new(provider: Provider, payment_id: impl Into<String>) -> Self {
        PaymentRecord {
            provider,
            payment_id: payment_id.into(),
            currency: None,
            latest_state: PaymentState::Unknown,
            latest: None,
            captured_minor: None,
            failure_seen: false,
            refunds: BTreeMap::new(),
            reported_refunded_minor: 0,
            dispute_facts: BTreeSet::new(),
            applied: Vec::new(),
            revision: 0,
        }
    }

    /// The table key.
    pub fn key(&self) -> String {
        payment_key(self.provider, &self.payment_id)
    }

    /// The payment's state: captured stays captured, otherwise the newest version's status.
    pub fn state(&self) -> PaymentState {
        if self.captured_minor.is_some() {
            PaymentState::Succeeded
        } else {
            self.latest_state
        }
    }

    /// Refunded so far (minor units): the completed refunds, or the provider's reported total
    /// when it is larger (Stripe reports only the total).
    pub fn refunded_minor(&self) -> i64 {
        let by_id: i64 = self
            .refunds
            .values()
            .filter(|r| r.status == RefundStatus::Succeeded)
            .map(|r| r.amount_minor)
            .sum();
        by_id.max(self.reported_refunded_minor)
    }

    /// The summary business events carry.
    pub fn summary(&self) -> PaymentSummary {
        PaymentSummary {
            state: self.state(),
            captured_minor: self.captured_minor,
            refunded_minor: self.refunded_minor(),
            currency: self.currency.clone(),
        }
    }

    /// What `webhook_id` produced, if it was applied (and is still remembered).
    pub fn applied(&self, webhook_id: &str) -> Option<&Applied> {
        self.applied.iter().find(|a| a.webhook_id == webhook_id)
    }

    /// Applies `event`, returning the new record (revision + 1, the webhook remembered) and
    /// what it produced. Pure: the caller writes the record conditionally on the old revision.
    pub fn apply(&self, event: &PaymentEvent) -> (PaymentRecord, Applied) {
        let mut next = self.clone();
        if next.currency.is_none() {
            next.currency = Some(event.currency.clone());
        }
        let position = Position::of(event);
        let mut events = Vec::new();
        let mut newer = false;
        if let Some(state) = PaymentState::of(event.event_type) {
            newer = next.apply_payment(event, state, &position, &mut events);
        } else if let Some(status) = RefundStatus::of(event.event_type) {
            newer = next.apply_refund(event, status, &position, &mut events);
        } else if let Some(kind) = BusinessEventType::of_dispute(event.event_type) {
            next.apply_dispute(event, kind, &mut events);
            // Disputes are facts without versions: a repeat is unchanged, never stale.
            newer = true;
        }
        let effect = match (events.is_empty(), newer) {
            (false, _) => Effect::Transition,
            (true, true) => Effect::Unchanged,
            (true, false) => Effect::Stale,
        };
        let applied = Applied {
            webhook_id: event.webhook_id.clone(),
            effect,
            events,
        };
        next.applied.push(applied.clone());
        if next.applied.len() > MAX_APPLIED_WEBHOOKS {
            let excess = next.applied.len() - MAX_APPLIED_WEBHOOKS;
            next.applied.drain(..excess);
        }
        next.revision = self.revision + 1;
        (next, applied)
    }

    /// A payment-object webhook. Returns whether it is the newest version seen.
    fn apply_payment(
        &mut self,
        event: &PaymentEvent,
        state: PaymentState,
        position: &Position,
        events: &mut Vec<BusinessEvent>,
    ) -> bool {
        let before = self.state();
        if state == PaymentState::Succeeded && self.captured_minor.is_none() {
            self.captured_minor = Some(event.amount_minor);
            events.push(self.event(BusinessEventType::PaymentSucceeded, None, None));
        }
        if state == PaymentState::Failed && !self.failure_seen {
            self.failure_seen = true;
            // A failed attempt reported after the capture is history, not news: telling the
            // customer their payment failed after it succeeded would be wrong.
            if self.captured_minor.is_none() {
                events.push(self.event(BusinessEventType::PaymentFailed, None, None));
            }
        }
        let newer = self.latest.as_ref().is_none_or(|latest| position > latest);
        if newer {
            self.latest = Some(position.clone());
            self.latest_state = state;
            let now = self.state();
            if now != before && matches!(now, PaymentState::Pending | PaymentState::Canceled) {
                events.push(self.event(BusinessEventType::PaymentUpdated, None, Some("state")));
            }
        }
        newer
    }

    /// A refund webhook. Returns whether it is the newest version of its refund seen.
    fn apply_refund(
        &mut self,
        event: &PaymentEvent,
        status: RefundStatus,
        position: &Position,
        events: &mut Vec<BusinessEvent>,
    ) -> bool {
        let refunded_before = self.refunded_minor();
        if let Some(total) = event.refunded_total_minor {
            // The provider reports the cumulative total (Stripe): the largest one seen counts.
            self.reported_refunded_minor = self.reported_refunded_minor.max(total);
            let delta = self.refunded_minor() - refunded_before;
            if delta > 0 {
                events.push(self.event(BusinessEventType::PaymentRefunded, Some(delta), None));
            }
            return delta > 0;
        }
        let refund_id = event
            .object_id
            .clone()
            .unwrap_or_else(|| event.provider_event_id.clone());
        let (newer, previous) = match self.refunds.get(&refund_id) {
            None => (true, None),
            Some(known) => (position > &known.latest, Some(known.status)),
        };
        let was_succeeded = previous == Some(RefundStatus::Succeeded);
        let entry = self
            .refunds
            .entry(refund_id)
            .or_insert_with(|| RefundRecord {
                status,
                amount_minor: event.amount_minor,
                latest: position.clone(),
            });
        if newer {
            entry.latest = position.clone();
            entry.amount_minor = event.amount_minor;
            if !was_succeeded {
                entry.status = status;
            }
        }
        if status == RefundStatus::Succeeded && !was_succeeded {
            entry.status = RefundStatus::Succeeded;
            entry.amount_minor = event.amount_minor;
            let delta = self.refunded_minor() - refunded_before;
            events.push(self.event(BusinessEventType::PaymentRefunded, Some(delta), None));
        } else if newer && !was_succeeded && previous != Some(status) {
            let mut update = self.event(BusinessEventType::PaymentUpdated, None, Some("refund"));
            update.change = Some(format!("refund_{}", status.as_str()));
            events.push(update);
        }
        newer
    }

    /// A dispute webhook: each `(dispute, type, status)` is a fact published once.
    fn apply_dispute(
        &mut self,
        event: &PaymentEvent,
        kind: BusinessEventType,
        events: &mut Vec<BusinessEvent>,
    ) {
        let dispute_id = event
            .object_id
            .clone()
            .unwrap_or_else(|| event.provider_event_id.clone());
        let status = event.provider_status.clone().unwrap_or_default();
        if self.dispute_facts.insert((dispute_id, kind, status)) {
            events.push(self.event(kind, None, None));
        }
    }

    fn event(
        &self,
        event_type: BusinessEventType,
        refund_delta_minor: Option<i64>,
        change: Option<&str>,
    ) -> BusinessEvent {
        BusinessEvent {
            event_type,
            payment: self.summary(),
            refund_delta_minor,
            change: change.map(str::to_owned),
        }
    }
}

/// Where payment records live (the status table in AWS).
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// The record of a payment, if it has one.
    async fn get_payment(
        &self,
        provider: Provider,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError>;

    /// Writes `record` if the stored record's revision is still `expected_revision` (0: no
    /// record yet). `Ok(false)` when another write came first.
    async fn put_payment(
        &self,
        record: &PaymentRecord,
        expected_revision: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
impl<S: PaymentStore + ?Sized> PaymentStore for Arc<S> {
    async fn get_payment(
        &self,
        provider: Provider,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        (**self).get_payment(provider, payment_id).await
    }

    async fn put_payment(
        &self,
        record: &PaymentRecord,
        expected_revision: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        (**self)
            .put_payment(record, expected_revision, now_ms)
            .await
    }
}

/// Payment records in memory (local stack, tests).
#[derive(Debug, Default)]
pub struct MemoryPaymentStore {
    records: Mutex<BTreeMap<String, PaymentRecord>>,
}

impl MemoryPaymentStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record, by key.
    pub async fn snapshot(&self) -> Vec<PaymentRecord> {
        self.records.lock().await.values().cloned().collect()
    }
}

#[async_trait]
impl PaymentStore for MemoryPaymentStore {
    async fn get_payment(
        &self,
        provider: Provider,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let key = payment_key(provider, payment_id);
        Ok(self.records.lock().await.get(&key).cloned())
    }

    async fn put_payment(
        &self,
        record: &PaymentRecord,
        expected_revision: u64,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut records = self.records.lock().await;
        let stored = records.get(&record.key()).map_or(0, |r| r.revision);
        if stored != expected_revision {
            return Ok(false);
        }
        records.insert(record.key(), record.clone());
        Ok(true)
    }
}
