//! Normalisation of provider payloads into the canonical [`crate::PaymentEvent`].
//!
//! The webhook validator calls [`normalise`] on the raw body once its signature is verified;
//! the resulting event is the SQS message body and, later, the EventBridge `detail`
//! ([`crate::event`]). [`envelope`] reads only the provider's event id and type, for logging and the
//! idempotency record, even when the type is not supported or the rest of the body is broken.
//!
//! | provider event | `event_type` | `payment_id` | `object_id` | amount |
//! |---|---|---|---|---|
//! | Stripe `payment_intent.succeeded` | `payment.succeeded` | PaymentIntent id | – | `amount_received` |
//! | Stripe `payment_intent.payment_failed` | `payment.failed` | PaymentIntent id | – | `amount` |
//! | Stripe `payment_intent.processing` | `payment.pending` | PaymentIntent id | – | `amount` |
//! | Stripe `payment_intent.canceled` | `payment.canceled` | PaymentIntent id | – | `amount` |
//! | Stripe `charge.refunded` | `refund.succeeded` | `payment_intent`, else the charge id | charge id | this refund (see below) |
//! | Stripe `charge.dispute.created` / `.updated` / `.closed` | `dispute.opened` / `.updated` / `.closed` | `payment_intent`, else `charge` | dispute id | `amount` |
//! | PayPal `PAYMENT.CAPTURE.COMPLETED` / `DENIED` / `PENDING` | `payment.succeeded` / `failed` / `pending` | capture id (`resource.id`) | – | `resource.amount` |
//! | PayPal `PAYMENT.CAPTURE.REFUNDED` | `refund.succeeded` | capture id from `links[rel=up]` | refund id | `resource.amount` |
//! | PayPal `CUSTOMER.DISPUTE.CREATED` / `UPDATED` / `RESOLVED` | `dispute.opened` / `updated` / `closed` | `disputed_transactions[0].seller_transaction_id` | `dispute_id` | `dispute_amount` |
//! | Square `payment.created` / `payment.updated` | by `payment.status` | payment id | – | `amount_money` |
//! | Square `refund.created` / `refund.updated` | by `refund.status` | `refund.payment_id` | refund id | `amount_money` |
//! | Square `dispute.created` | `dispute.opened` | `disputed_payment.payment_id` | dispute id | `amount_money` |
//! | Square `dispute.state.updated` / `dispute.state.changed` | `dispute.closed` when WON/LOST/ACCEPTED, else `dispute.updated` | as above | dispute id | `amount_money` |
//!
//! Square payment statuses: `COMPLETED` → `payment.succeeded`, `APPROVED`/`PENDING` →
//! `payment.pending`, `CANCELED` → `payment.canceled`, `FAILED` → `payment.failed`. Refund
//! statuses: `PENDING` → `refund.pending`, `COMPLETED` → `refund.succeeded`,
//! `REJECTED`/`FAILED` → `refund.failed`. An unknown status is an `invalid_field` error rather
//! than a guess, so nothing about money is silently dropped.
//!
//! Provider quirks handled here:
//! - Stripe `charge.refunded` carries the charge, whose `amount_refunded` is **cumulative** over
//!   every refund of the charge, and the event fires on every partial refund. The event's
//!   amount is the amount of *this* refund: `amount_refunded − previous_attributes.amount_refunded`
//!   when Stripe sends the previous value (it lists the fields the change touched), else
//!   `amount_refunded`, which is exact for a first refund and an upper bound otherwise.
//! - PayPal refund events name the refund in `resource.id`; the capture it refunds appears only
//!   in the `up` link (`…/v2/payments/captures/{id}`).
//! - Currency exponents follow each provider's table ([`crate::currency`]); PayPal amounts are
//!   decimal strings parsed exactly.
//!
//! Other fields: `webhook_id` is `"{provider}:{event id}"`; `occurred_at` is the provider's
//! event time (Stripe `created`, PayPal `create_time`, Square `created_at`) in UTC with
//! millisecond precision (`2025-01-01T00:00:00.000Z`); `provider_status` is the status of the
//! object the event carries; `livemode` and `account` (Connect) come from Stripe only,
//! `merchant_id` from Square only; `received_at` is left `None`
//! for the validator to fix at first receipt.
//!
//! Unsupported event types come back as [`Normalised::Ignored`], never as an error, so the
//! provider is acknowledged and stops retrying. A supported type whose payload is malformed is
//! a [`NormaliseError`] (HTTP 400) naming the field.

mod fields;
mod json;
mod paypal;
mod square;
mod stripe;

use crate::currency::Rates;
use crate::event::PaymentEvent;
use crate::provider::Provider;

/// The outcome of normalising one verified webhook body.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalised {
    /// A supported event, normalised.
    Event(Box<PaymentEvent>),
    /// A well-formed envelope of an event type payhook does not process: acknowledge it
    /// (status `IGNORED`) so the provider stops retrying.
    Ignored {
        /// `"{provider}:{provider_event_id}"`, the idempotency key.
        webhook_id: String,
        /// The provider's own event id.
        provider_event_id: String,
        /// The provider's event type, as sent.
        provider_event_type: String,
    },
}

impl Normalised {
    /// The idempotency key, `"{provider}:{provider_event_id}"`.
    pub fn webhook_id(&self) -> &str {
        match self {
            Normalised::Event(event) => &event.webhook_id,
            Normalised::Ignored { webhook_id, .. } => webhook_id,
        }
    }

    /// The provider's own event id.
    pub fn provider_event_id(&self) -> &str {
        match self {
            Normalised::Event(event) => &event.provider_event_id,
            Normalised::Ignored {
                provider_event_id, ..
            } => provider_event_id,
        }
    }

    /// The provider's event type, as sent.
    pub fn provider_event_type(&self) -> &str {
        match self {
            Normalised::Event(event) => &event.provider_event_type,
            Normalised::Ignored {
                provider_event_type,
                ..
            } => provider_event_type,
        }
    }

    /// The normalised event, unless the type was ignored.
    pub fn event(&self) -> Option<&PaymentEvent> {
        match self {
            Normalised::Event(event) => Some(event),
            Normalised::Ignored { .. } => None,
        }
    }
}

/// Why a verified body could not be normalised. Every variant is the sender's fault (HTTP 400,
/// see [`NormaliseError::http_status`]); [`NormaliseError::code`] is the stable machine code
/// used in HTTP bodies, logs and metrics. Messages name the offending field but never repeat
/// more than a short excerpt of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormaliseError {
    /// The body is not a JSON object (not UTF-8, not JSON, a JSON array, a repeated envelope
    /// key, …).
    #[error("the body is not a JSON object of the provider's webhook shape: {0}")]
    InvalidJson(String),
    /// A field the event type requires is absent or `null` (dotted path, e.g.
    /// `data.object.id`).
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    /// A field is present but has the wrong type or an unusable value.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// Dotted path of the field (`data.object.created`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An amount is not a non-negative integer of minor units, or a decimal string that
    /// cannot be converted exactly (sign, exponent, too many decimals, overflow).
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    /// The currency code is not one whose exponent is known for this provider.
    #[error(
        "unsupported currency `{0}`: not an ISO 4217 code with a known exponent for this provider"
    )]
    UnsupportedCurrency(String),
}

impl NormaliseError {
    /// The stable machine code: `invalid_json`, `missing_field`, `invalid_field`,
    /// `invalid_amount` or `unsupported_currency`.
    pub fn code(&self) -> &'static str {
        match self {
            NormaliseError::InvalidJson(_) => "invalid_json",
            NormaliseError::MissingField(_) => "missing_field",
            NormaliseError::InvalidField { .. } => "invalid_field",
            NormaliseError::InvalidAmount(_) => "invalid_amount",
            NormaliseError::UnsupportedCurrency(_) => "unsupported_currency",
        }
    }

    /// The HTTP status to answer with: always 400, since retrying the same body cannot help.
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// Normalises a verified webhook body from `provider`.
///
/// Returns [`Normalised::Ignored`] for well-formed envelopes of unsupported event types and a
/// [`NormaliseError`] for malformed bodies or malformed payloads of supported types. The same
/// body always gives an event with the same [`PaymentEvent::to_bytes`].
///
/// Without a rates file only USD amounts get a reporting amount; see [`normalise_with`].
pub fn normalise(provider: Provider, body: &[u8]) -> Result<Normalised, NormaliseError> {
    normalise_with(provider, body, &Rates::usd_only())
}

/// [`normalise`] with a rates file: its rates give `amount_reporting`, and the currencies it
/// adds are known.
pub fn normalise_with(
    provider: Provider,
    body: &[u8],
    rates: &Rates,
) -> Result<Normalised, NormaliseError> {
    match provider {
        Provider::Stripe => stripe::normalise(body, rates),
        Provider::Paypal => paypal::normalise(body, rates),
        Provider::Square => square::normalise(body, rates),
    }
}

/// The provider event id and type, read cheaply even for unsupported types (for logging/idempotency).
///
/// Succeeds whenever [`normalise`] does, with the same id and type; it also succeeds for bodies
/// whose payload is malformed, as long as the envelope's id and type are readable.
pub fn envelope(provider: Provider, body: &[u8]) -> Result<(String, String), NormaliseError> {
    match provider {
        Provider::Stripe => stripe::envelope(body),
        Provider::Paypal => paypal::envelope(body),
        Provider::Square => square::envelope(body),
    }
}
