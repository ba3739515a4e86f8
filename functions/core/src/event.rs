//! The canonical `PaymentEvent`: what every provider payload is normalised into. It is the SQS
//! message body and the EventBridge `detail`.

use serde::{Deserialize, Serialize};

use crate::provider::Provider;

/// The normalised meaning of a provider event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// Money was captured.
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    /// The payment attempt failed or was declined.
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    /// The payment exists but is not final yet (authorised, pending).
    #[serde(rename = "payment.pending")]
    PaymentPending,
    /// The payment was cancelled or voided before capture.
    #[serde(rename = "payment.canceled")]
    PaymentCanceled,
    /// A refund completed.
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
    /// A refund was requested and is not final yet.
    #[serde(rename = "refund.pending")]
    RefundPending,
    /// A refund failed or was rejected.
    #[serde(rename = "refund.failed")]
    RefundFailed,
    /// A dispute (chargeback) was opened.
    #[serde(rename = "dispute.opened")]
    DisputeOpened,
    /// A dispute changed state.
    #[serde(rename = "dispute.updated")]
    DisputeUpdated,
    /// A dispute was closed (won or lost).
    #[serde(rename = "dispute.closed")]
    DisputeClosed,
}

impl EventType {
    /// Every normalised type.
    pub const ALL: [EventType; 10] = [
        EventType::PaymentSucceeded,
        EventType::PaymentFailed,
        EventType::PaymentPending,
        EventType::PaymentCanceled,
        EventType::RefundSucceeded,
        EventType::RefundPending,
        EventType::RefundFailed,
        EventType::DisputeOpened,
        EventType::DisputeUpdated,
        EventType::DisputeClosed,
    ];

    /// The dotted name (`payment.succeeded`), used as the EventBridge `DetailType` too.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentPending => "payment.pending",
            EventType::PaymentCanceled => "payment.canceled",
            EventType::RefundSucceeded => "refund.succeeded",
            EventType::RefundPending => "refund.pending",
            EventType::RefundFailed => "refund.failed",
            EventType::DisputeOpened => "dispute.opened",
            EventType::DisputeUpdated => "dispute.updated",
            EventType::DisputeClosed => "dispute.closed",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One provider webhook, normalised. Field order is the serialisation order, and serialisation
/// is deterministic: the same webhook gives the same bytes (SQS content-based deduplication
/// relies on it), because `received_at` is fixed at first receipt by the status record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// `"{provider}:{provider_event_id}"`: the idempotency key.
    pub webhook_id: String,
    /// Which provider sent it.
    pub provider: Provider,
    /// The provider's own event id (`evt_…`, `WH-…`, Square's `event_id`).
    pub provider_event_id: String,
    /// The provider's event type (`payment_intent.succeeded`, `PAYMENT.CAPTURE.COMPLETED`, …).
    pub provider_event_type: String,
    /// The normalised event type.
    pub event_type: EventType,
    /// The payment this event is about (Stripe PaymentIntent or charge, PayPal capture, Square
    /// payment): the SQS FIFO message group, so one payment's events stay in order.
    pub payment_id: String,
    /// The object the event is about when it is not the payment itself (refund, dispute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Amount in minor units of `currency` (per the provider's exponent table).
    pub amount_minor: i64,
    /// Amount in major units as a number (the nearest `f64`); never used for arithmetic.
    pub amount: f64,
    /// Amount in major units, exactly, as a decimal string with the currency's decimals
    /// (`"1500.000"` for KWD). Empty in messages queued before this field existed.
    #[serde(default)]
    pub amount_decimal: String,
    /// The amount in the reporting currency (`reporting_currency`, from the rates file), rounded
    /// to cents and inside EventBridge's numeric range: what tiers and the amount rules compare.
    /// Absent when the currency has no rate (the event is `unrated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_reporting: Option<f64>,
    /// The currency of `amount_reporting` (USD by default), when it is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_currency: Option<String>,
    /// ISO 4217 code, upper case.
    pub currency: String,
    /// The provider's status of the object (`succeeded`, `COMPLETED`, …), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<String>,
    /// The provider's failure or decline code, on failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// When the provider says the event happened (RFC 3339, UTC).
    pub occurred_at: String,
    /// When payhook first received this webhook (RFC 3339, UTC, milliseconds); fixed at first
    /// receipt so retries serialise to the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    /// Whether the provider marked it live (Stripe `livemode`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub livemode: Option<bool>,
    /// The connected account the event happened on (Stripe Connect `account`), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The seller the event belongs to (Square `merchant_id`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// When the object this event carries was last updated, per the provider (Square
    /// `updated_at`, PayPal `update_time`; RFC 3339, UTC, milliseconds). With `object_version`
    /// it orders the deliveries about one object (see [`crate::payment`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_updated_at: Option<String>,
    /// The object's version counter (Square `version`), when the provider keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version: Option<i64>,
    /// Refunds: the payment's cumulative refunded amount in minor units when the provider
    /// reports it (Stripe `charge.refunded`'s `amount_refunded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_total_minor: Option<i64>,
}

impl PaymentEvent {
    /// The deterministic JSON bytes of this event.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings, integers, finite floats and enums cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The deterministic JSON text of this event (the queue message body).
    pub fn to_json(&self) -> String {
        // As for `to_bytes`: cannot fail for this type.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Builds `"{provider}:{id}"`.
    pub fn make_webhook_id(provider: Provider, provider_event_id: &str) -> String {
        format!("{}:{}", provider.as_str(), provider_event_id)
    }
}
