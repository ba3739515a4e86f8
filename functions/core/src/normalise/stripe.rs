//! Stripe Event objects (`{id, object: "event", type, created, livemode, data: {object,
//! previous_attributes}}`) into [`crate::PaymentEvent`]s. Amounts are integer minor units in
//! Stripe's own currency table; see the mapping table in [`super`].

use super::fields::{self, Body, Head, Money, Obj, Ordering};
use super::json::{Depth, Json, Node, Schema};
use super::{NormaliseError, Normalised};
use crate::currency::Rates;
use crate::event::EventType;
use crate::provider::Provider;

/// Every key [`normalise`] reads (see [`super::json`]).
static BODY: Schema = Schema {
    keys: &[
        ("id", Node::Leaf),
        ("type", Node::Leaf),
        ("created", Node::Leaf),
        ("livemode", Node::Leaf),
        ("account", Node::Leaf),
        ("data", Node::Object(&DATA)),
    ],
};
static DATA: Schema = Schema {
    keys: &[
        ("object", Node::Object(&OBJECT)),
        ("previous_attributes", Node::Object(&PREVIOUS_ATTRIBUTES)),
    ],
};
/// A PaymentIntent, a Charge or a Dispute.
static OBJECT: Schema = Schema {
    keys: &[
        ("object", Node::Leaf),
        ("id", Node::Leaf),
        ("amount", Node::Leaf),
        ("amount_received", Node::Leaf),
        ("amount_refunded", Node::Leaf),
        ("currency", Node::Leaf),
        ("status", Node::Leaf),
        ("payment_intent", Node::Leaf),
        ("charge", Node::Leaf),
        ("last_payment_error", Node::Object(&PAYMENT_ERROR)),
    ],
};
static PAYMENT_ERROR: Schema = Schema {
    keys: &[("decline_code", Node::Leaf), ("code", Node::Leaf)],
};
static PREVIOUS_ATTRIBUTES: Schema = Schema {
    keys: &[("amount_refunded", Node::Leaf)],
};

pub(super) fn envelope(body: &[u8]) -> Result<(String, String), NormaliseError> {
    let env = fields::parse_body(body, &BODY, Depth::TopLevel)?;
    Ok((
        fields::event_id(env.present("id"), "id")?,
        fields::event_type(env.present("type"), "type")?,
    ))
}

/// What a supported Stripe event type means.
#[derive(Clone, Copy)]
enum Kind {
    PaymentIntent(EventType),
    ChargeRefunded,
    Dispute(EventType),
}

fn kind(event_type: &str) -> Option<Kind> {
    Some(match event_type {
        "payment_intent.succeeded" => Kind::PaymentIntent(EventType::PaymentSucceeded),
        "payment_intent.payment_failed" => Kind::PaymentIntent(EventType::PaymentFailed),
        "payment_intent.processing" => Kind::PaymentIntent(EventType::PaymentPending),
        "payment_intent.canceled" => Kind::PaymentIntent(EventType::PaymentCanceled),
        "charge.refunded" => Kind::ChargeRefunded,
        "charge.dispute.created" => Kind::Dispute(EventType::DisputeOpened),
        "charge.dispute.updated" => Kind::Dispute(EventType::DisputeUpdated),
        "charge.dispute.closed" => Kind::Dispute(EventType::DisputeClosed),
        _ => return None,
    })
}

pub(super) fn normalise(body: &[u8], rates: &Rates) -> Result<Normalised, NormaliseError> {
    let env = fields::parse_body(body, &BODY, Depth::Full)?;
    let event_id = fields::event_id(env.present("id"), "id")?;
    let event_type = fields::event_type(env.present("type"), "type")?;
    let Some(kind) = kind(&event_type) else {
        return Ok(fields::ignored(Provider::Stripe, event_id, event_type));
    };

    let occurred_at = fields::occurred_at_from_unix(
        fields::required(env.present("created"), "created")?,
        "created",
    )?;
    let livemode = match env.present("livemode") {
        None => None,
        Some(Json::Bool(live)) => Some(*live),
        Some(_) => {
            return Err(NormaliseError::InvalidField {
                field: "livemode",
                reason: "expected true or false".into(),
            });
        }
    };
    let data = Obj::new(
        fields::required(env.present("data"), "data")?,
        "data",
        rates,
    )?;
    let object = data.obj("data.object")?;

    let body = match kind {
        Kind::PaymentIntent(event_type) => payment_intent(event_type, &object)?,
        Kind::ChargeRefunded => charge_refunded(&data, &object)?,
        Kind::Dispute(event_type) => dispute(event_type, &object)?,
    };
    let head = Head {
        provider: Provider::Stripe,
        event_id,
        event_type,
        occurred_at,
        livemode,
        account: fields::optional_text(env.present("account"), "account")?,
        merchant_id: None,
    };
    Ok(fields::build(head, body, rates))
}

fn money(object: &Obj<'_>, amount: i64) -> Result<Money, NormaliseError> {
    Money::from_minor(
        object.rates(),
        Provider::Stripe,
        amount,
        object.str("data.object.currency")?,
    )
}

fn payment_intent(event_type: EventType, pi: &Obj<'_>) -> Result<Body, NormaliseError> {
    pi.expect_kind("data.object.object", "payment_intent")?;
    // What was captured on success; what was attempted otherwise (amount_received is 0).
    let amount = if event_type == EventType::PaymentSucceeded {
        pi.minor_units("data.object.amount_received")?
    } else {
        pi.minor_units("data.object.amount")?
    };
    let failure_code = match (event_type, pi.opt_obj("data.object.last_payment_error")?) {
        (EventType::PaymentFailed, Some(error)) => {
            match error.opt_string("data.object.last_payment_error.decline_code")? {
                Some(decline) => Some(decline),
                None => error.opt_string("data.object.last_payment_error.code")?,
            }
        }
        _ => None,
    };
    Ok(Body {
        event_type,
        payment_id: pi.id("data.object.id")?,
        object_id: None,
        money: money(pi, amount)?,
        provider_status: pi.opt_string("data.object.status")?,
        failure_code,
        // A PaymentIntent has no update time: deliveries are ordered by the event's `created`.
        ordering: Ordering::default(),
    })
}

/// `charge.refunded` carries the Charge. Its `amount_refunded` is cumulative over all refunds
/// of the charge and the event fires on every partial refund, so the amount of *this* refund
/// is the difference from `previous_attributes.amount_refunded` when Stripe sends it.
fn charge_refunded(data: &Obj<'_>, charge: &Obj<'_>) -> Result<Body, NormaliseError> {
    charge.expect_kind("data.object.object", "charge")?;
    let charge_id = charge.id("data.object.id")?;
    let refunded_total = charge.minor_units("data.object.amount_refunded")?;
    let previous_total = match data.opt_obj("data.previous_attributes")? {
        Some(previous) => previous.opt_minor_units("data.previous_attributes.amount_refunded")?,
        None => None,
    };
    let amount = match previous_total {
        Some(previous) => refunded_total
            .checked_sub(previous)
            .filter(|a| *a >= 0)
            .ok_or_else(|| {
                NormaliseError::InvalidAmount(
                    "`data.object.amount_refunded` is smaller than \
                     `data.previous_attributes.amount_refunded`"
                        .into(),
                )
            })?,
        None => refunded_total,
    };
    let payment_id = match charge.opt_id("data.object.payment_intent")? {
        Some(pi) => pi,
        None => charge_id.clone(),
    };
    Ok(Body {
        event_type: EventType::RefundSucceeded,
        payment_id,
        object_id: Some(charge_id),
        money: money(charge, amount)?,
        provider_status: charge.opt_string("data.object.status")?,
        failure_code: None,
        ordering: Ordering {
            refunded_total_minor: Some(refunded_total),
            ..Ordering::default()
        },
    })
}

fn dispute(event_type: EventType, dispute: &Obj<'_>) -> Result<Body, NormaliseError> {
    dispute.expect_kind("data.object.object", "dispute")?;
    let payment_id = match dispute.opt_id("data.object.payment_intent")? {
        Some(pi) => pi,
        None => dispute.id("data.object.charge")?,
    };
    Ok(Body {
        event_type,
        payment_id,
        object_id: Some(dispute.id("data.object.id")?),
        money: money(dispute, dispute.minor_units("data.object.amount")?)?,
        provider_status: dispute.opt_string("data.object.status")?,
        failure_code: None,
        ordering: Ordering::default(),
    })
}
