//! Square webhook events (`{merchant_id, type, event_id, created_at, data: {type, id,
//! object}}`) into [`crate::PaymentEvent`]s. The normalised type follows the status of the
//! payment, refund or dispute carried in `data.object`; amounts are `Money` objects in ISO 4217
//! minor units. See the mapping table in [`super`].

use super::fields::{self, Body, Head, Money, Obj, Ordering};
use super::json::{Depth, Node, Schema};
use super::{NormaliseError, Normalised};
use crate::currency::Rates;
use crate::event::EventType;
use crate::provider::Provider;

/// Every key [`normalise`] reads (see [`super::json`]).
static BODY: Schema = Schema {
    keys: &[
        ("event_id", Node::Leaf),
        ("type", Node::Leaf),
        ("created_at", Node::Leaf),
        ("merchant_id", Node::Leaf),
        ("data", Node::Object(&DATA)),
    ],
};
static DATA: Schema = Schema {
    keys: &[("object", Node::Object(&OBJECT))],
};
static OBJECT: Schema = Schema {
    keys: &[
        ("payment", Node::Object(&PAYMENT)),
        ("refund", Node::Object(&REFUND)),
        ("dispute", Node::Object(&DISPUTE)),
    ],
};
static MONEY: Schema = Schema {
    keys: &[("amount", Node::Leaf), ("currency", Node::Leaf)],
};
static PAYMENT: Schema = Schema {
    keys: &[
        ("id", Node::Leaf),
        ("status", Node::Leaf),
        ("updated_at", Node::Leaf),
        ("version", Node::Leaf),
        ("amount_money", Node::Object(&MONEY)),
        ("card_details", Node::Object(&CARD_DETAILS)),
    ],
};
static CARD_DETAILS: Schema = Schema {
    keys: &[("errors", Node::Array(&CARD_ERROR))],
};
static CARD_ERROR: Node = Node::Object(&Schema {
    keys: &[("code", Node::Leaf)],
});
static REFUND: Schema = Schema {
    keys: &[
        ("id", Node::Leaf),
        ("payment_id", Node::Leaf),
        ("status", Node::Leaf),
        ("updated_at", Node::Leaf),
        ("version", Node::Leaf),
        ("amount_money", Node::Object(&MONEY)),
    ],
};
static DISPUTE: Schema = Schema {
    keys: &[
        ("id", Node::Leaf),
        ("dispute_id", Node::Leaf),
        ("state", Node::Leaf),
        ("updated_at", Node::Leaf),
        ("version", Node::Leaf),
        ("amount_money", Node::Object(&MONEY)),
        ("disputed_payment", Node::Object(&DISPUTED_PAYMENT)),
    ],
};
static DISPUTED_PAYMENT: Schema = Schema {
    keys: &[("payment_id", Node::Leaf)],
};

pub(super) fn envelope(body: &[u8]) -> Result<(String, String), NormaliseError> {
    let env = fields::parse_body(body, &BODY, Depth::TopLevel)?;
    Ok((
        fields::event_id(env.present("event_id"), "event_id")?,
        fields::event_type(env.present("type"), "type")?,
    ))
}

/// Which object a supported Square event type carries.
#[derive(Clone, Copy)]
enum Kind {
    Payment,
    Refund,
    DisputeCreated,
    DisputeStateChanged,
}

fn kind(event_type: &str) -> Option<Kind> {
    Some(match event_type {
        "payment.created" | "payment.updated" => Kind::Payment,
        "refund.created" | "refund.updated" => Kind::Refund,
        "dispute.created" => Kind::DisputeCreated,
        // `dispute.state.changed` is the older name of `dispute.state.updated`.
        "dispute.state.updated" | "dispute.state.changed" => Kind::DisputeStateChanged,
        _ => return None,
    })
}

pub(super) fn normalise(body: &[u8], rates: &Rates) -> Result<Normalised, NormaliseError> {
    let env = fields::parse_body(body, &BODY, Depth::Full)?;
    let event_id = fields::event_id(env.present("event_id"), "event_id")?;
    let event_type = fields::event_type(env.present("type"), "type")?;
    let Some(kind) = kind(&event_type) else {
        return Ok(fields::ignored(Provider::Square, event_id, event_type));
    };

    let occurred_at = fields::occurred_at_from_rfc3339(
        fields::required(env.present("created_at"), "created_at")?,
        "created_at",
    )?;
    let data = Obj::new(
        fields::required(env.present("data"), "data")?,
        "data",
        rates,
    )?;
    let object = data.obj("data.object")?;

    let body = match kind {
        Kind::Payment => payment(&object.obj("data.object.payment")?)?,
        Kind::Refund => refund(&object.obj("data.object.refund")?)?,
        Kind::DisputeCreated => dispute(Some(EventType::DisputeOpened), &object)?,
        Kind::DisputeStateChanged => dispute(None, &object)?,
    };
    let head = Head {
        provider: Provider::Square,
        event_id,
        event_type,
        occurred_at,
        livemode: None,
        account: None,
        merchant_id: fields::optional_text(env.present("merchant_id"), "merchant_id")?,
    };
    Ok(fields::build(head, body, rates))
}

fn unknown_status(field: &'static str, status: &str) -> NormaliseError {
    NormaliseError::InvalidField {
        field,
        reason: format!(
            "unknown status `{}`",
            status.chars().take(40).collect::<String>()
        ),
    }
}

fn payment(payment: &Obj<'_>) -> Result<Body, NormaliseError> {
    const STATUS: &str = "data.object.payment.status";
    let status = payment.str(STATUS)?;
    let event_type = match status {
        "COMPLETED" => EventType::PaymentSucceeded,
        "APPROVED" | "PENDING" => EventType::PaymentPending,
        "CANCELED" => EventType::PaymentCanceled,
        "FAILED" => EventType::PaymentFailed,
        other => return Err(unknown_status(STATUS, other)),
    };
    let failure_code = if event_type == EventType::PaymentFailed {
        card_error_code(payment)?
    } else {
        None
    };
    Ok(Body {
        event_type,
        payment_id: payment.id("data.object.payment.id")?,
        object_id: None,
        money: Money::from_square_money(
            payment,
            "data.object.payment.amount_money",
            "data.object.payment.amount_money.amount",
            "data.object.payment.amount_money.currency",
        )?,
        provider_status: Some(status.to_owned()),
        failure_code,
        ordering: Ordering {
            updated_at: payment.opt_timestamp("data.object.payment.updated_at")?,
            version: payment.opt_version("data.object.payment.version")?,
            refunded_total_minor: None,
        },
    })
}

/// The first `card_details.errors[].code` of a failed card payment, when Square gives one.
fn card_error_code(payment: &Obj<'_>) -> Result<Option<String>, NormaliseError> {
    let Some(card) = payment.opt_obj("data.object.payment.card_details")? else {
        return Ok(None);
    };
    if card
        .get("data.object.payment.card_details.errors")
        .is_none()
    {
        return Ok(None);
    }
    match card
        .array("data.object.payment.card_details.errors")?
        .first()
    {
        Some(first) => card
            .child(first, "data.object.payment.card_details.errors[0]")?
            .opt_string("data.object.payment.card_details.errors[0].code"),
        None => Ok(None),
    }
}

fn refund(refund: &Obj<'_>) -> Result<Body, NormaliseError> {
    const STATUS: &str = "data.object.refund.status";
    let status = refund.str(STATUS)?;
    let event_type = match status {
        "PENDING" => EventType::RefundPending,
        "COMPLETED" => EventType::RefundSucceeded,
        "REJECTED" | "FAILED" => EventType::RefundFailed,
        other => return Err(unknown_status(STATUS, other)),
    };
    Ok(Body {
        event_type,
        payment_id: refund.id("data.object.refund.payment_id")?,
        object_id: Some(refund.id("data.object.refund.id")?),
        money: Money::from_square_money(
            refund,
            "data.object.refund.amount_money",
            "data.object.refund.amount_money.amount",
            "data.object.refund.amount_money.currency",
        )?,
        provider_status: Some(status.to_owned()),
        failure_code: None,
        ordering: Ordering {
            updated_at: refund.opt_timestamp("data.object.refund.updated_at")?,
            version: refund.opt_version("data.object.refund.version")?,
            refunded_total_minor: None,
        },
    })
}

/// Dispute events. `dispute.created` is always `dispute.opened`; a state change is
/// `dispute.closed` once the state is final (`WON`, `LOST`, `ACCEPTED`), else `dispute.updated`.
fn dispute(created: Option<EventType>, object: &Obj<'_>) -> Result<Body, NormaliseError> {
    const STATE: &str = "data.object.dispute.state";
    let dispute = object.obj("data.object.dispute")?;
    let state = dispute.opt_string(STATE)?;
    let event_type = match (created, state.as_deref()) {
        (Some(event_type), _) => event_type,
        (None, Some("WON" | "LOST" | "ACCEPTED")) => EventType::DisputeClosed,
        (None, Some(_)) => EventType::DisputeUpdated,
        (None, None) => return Err(NormaliseError::MissingField(STATE)),
    };
    let disputed = dispute.obj("data.object.dispute.disputed_payment")?;
    // `dispute_id` is the deprecated name of `id`, still sent by older API versions.
    let dispute_id = match dispute.opt_id("data.object.dispute.id")? {
        Some(id) => id,
        None => dispute.id("data.object.dispute.dispute_id")?,
    };
    Ok(Body {
        event_type,
        payment_id: disputed.id("data.object.dispute.disputed_payment.payment_id")?,
        object_id: Some(dispute_id),
        money: Money::from_square_money(
            &dispute,
            "data.object.dispute.amount_money",
            "data.object.dispute.amount_money.amount",
            "data.object.dispute.amount_money.currency",
        )?,
        provider_status: state,
        failure_code: None,
        ordering: Ordering {
            updated_at: dispute.opt_timestamp("data.object.dispute.updated_at")?,
            version: dispute.opt_version("data.object.dispute.version")?,
            refunded_total_minor: None,
        },
    })
}
