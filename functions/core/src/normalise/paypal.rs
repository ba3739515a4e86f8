//! PayPal webhook events (`{id: "WH-…", event_type, create_time, resource_type, resource}`)
//! into [`crate::PaymentEvent`]s. Only the Payments v2 capture/refund shapes and the customer
//! dispute shape are read; v1-era events (`PAYMENT.SALE.*`) are ignored. Amounts are decimal
//! strings converted exactly with the ISO 4217 exponent; see the mapping table in [`super`].

use url::Url;

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
        ("event_type", Node::Leaf),
        ("create_time", Node::Leaf),
        ("resource", Node::Object(&RESOURCE)),
    ],
};
/// A capture, a refund or a dispute.
static RESOURCE: Schema = Schema {
    keys: &[
        ("id", Node::Leaf),
        ("status", Node::Leaf),
        ("update_time", Node::Leaf),
        ("amount", Node::Object(&MONEY)),
        ("status_details", Node::Object(&STATUS_DETAILS)),
        ("links", Node::Array(&LINK)),
        ("dispute_id", Node::Leaf),
        ("dispute_amount", Node::Object(&MONEY)),
        ("disputed_transactions", Node::Array(&DISPUTED_TRANSACTION)),
    ],
};
static MONEY: Schema = Schema {
    keys: &[("currency_code", Node::Leaf), ("value", Node::Leaf)],
};
static STATUS_DETAILS: Schema = Schema {
    keys: &[("reason", Node::Leaf)],
};
static LINK: Node = Node::Object(&Schema {
    keys: &[("rel", Node::Leaf), ("href", Node::Leaf)],
});
static DISPUTED_TRANSACTION: Node = Node::Object(&Schema {
    keys: &[("seller_transaction_id", Node::Leaf)],
});

pub(super) fn envelope(body: &[u8]) -> Result<(String, String), NormaliseError> {
    let env = fields::parse_body(body, &BODY, Depth::TopLevel)?;
    Ok((
        fields::event_id(env.present("id"), "id")?,
        fields::event_type(env.present("event_type"), "event_type")?,
    ))
}

/// What a supported PayPal event type means.
#[derive(Clone, Copy)]
enum Kind {
    Capture(EventType),
    CaptureRefunded,
    Dispute(EventType),
}

fn kind(event_type: &str) -> Option<Kind> {
    Some(match event_type {
        "PAYMENT.CAPTURE.COMPLETED" => Kind::Capture(EventType::PaymentSucceeded),
        "PAYMENT.CAPTURE.DENIED" => Kind::Capture(EventType::PaymentFailed),
        "PAYMENT.CAPTURE.PENDING" => Kind::Capture(EventType::PaymentPending),
        "PAYMENT.CAPTURE.REFUNDED" => Kind::CaptureRefunded,
        "CUSTOMER.DISPUTE.CREATED" => Kind::Dispute(EventType::DisputeOpened),
        "CUSTOMER.DISPUTE.UPDATED" => Kind::Dispute(EventType::DisputeUpdated),
        "CUSTOMER.DISPUTE.RESOLVED" => Kind::Dispute(EventType::DisputeClosed),
        _ => return None,
    })
}

pub(super) fn normalise(body: &[u8], rates: &Rates) -> Result<Normalised, NormaliseError> {
    let env = fields::parse_body(body, &BODY, Depth::Full)?;
    let event_id = fields::event_id(env.present("id"), "id")?;
    let event_type = fields::event_type(env.present("event_type"), "event_type")?;
    let Some(kind) = kind(&event_type) else {
        return Ok(fields::ignored(Provider::Paypal, event_id, event_type));
    };

    let occurred_at = fields::occurred_at_from_rfc3339(
        fields::required(env.present("create_time"), "create_time")?,
        "create_time",
    )?;
    let resource = Obj::new(
        fields::required(env.present("resource"), "resource")?,
        "resource",
        rates,
    )?;

    let body = match kind {
        Kind::Capture(event_type) => capture(event_type, &resource)?,
        Kind::CaptureRefunded => refund(&resource)?,
        Kind::Dispute(event_type) => dispute(event_type, &resource)?,
    };
    let head = Head {
        provider: Provider::Paypal,
        event_id,
        event_type,
        occurred_at,
        livemode: None,
        account: None,
        merchant_id: None,
    };
    Ok(fields::build(head, body, rates))
}

fn resource_amount(resource: &Obj<'_>) -> Result<Money, NormaliseError> {
    Money::from_paypal_money(
        resource,
        "resource.amount",
        "resource.amount.currency_code",
        "resource.amount.value",
    )
}

fn capture(event_type: EventType, capture: &Obj<'_>) -> Result<Body, NormaliseError> {
    let failure_code = match (event_type, capture.opt_obj("resource.status_details")?) {
        (EventType::PaymentFailed, Some(details)) => {
            details.opt_string("resource.status_details.reason")?
        }
        _ => None,
    };
    Ok(Body {
        event_type,
        payment_id: capture.id("resource.id")?,
        object_id: None,
        money: resource_amount(capture)?,
        provider_status: capture.opt_string("resource.status")?,
        failure_code,
        ordering: Ordering {
            updated_at: capture.opt_timestamp("resource.update_time")?,
            ..Ordering::default()
        },
    })
}

/// `PAYMENT.CAPTURE.REFUNDED`: `resource` is the refund; its `amount` is this refund's (the
/// cumulative one is `seller_payable_breakdown.total_refunded_amount`), and the refunded
/// capture is named only by the `up` link.
fn refund(refund: &Obj<'_>) -> Result<Body, NormaliseError> {
    Ok(Body {
        event_type: EventType::RefundSucceeded,
        payment_id: capture_id_from_up_link(refund)?,
        object_id: Some(refund.id("resource.id")?),
        money: resource_amount(refund)?,
        provider_status: refund.opt_string("resource.status")?,
        failure_code: None,
        ordering: Ordering {
            updated_at: refund.opt_timestamp("resource.update_time")?,
            ..Ordering::default()
        },
    })
}

const UP_LINK: &str = "resource.links[rel=up]";
const UP_HREF: &str = "resource.links[rel=up].href";

/// The capture id in `links[rel=up].href` (`https://api.paypal.com/v2/payments/captures/{id}`).
fn capture_id_from_up_link(refund: &Obj<'_>) -> Result<String, NormaliseError> {
    let links = refund.array("resource.links")?;
    let up = links
        .iter()
        .filter_map(Json::as_object)
        .find(|link| link.get("rel").and_then(Json::as_str) == Some("up"))
        .ok_or(NormaliseError::MissingField(UP_LINK))?;
    let href = match up.get("href") {
        Some(Json::Str(href)) => href,
        None | Some(Json::Null) => return Err(NormaliseError::MissingField(UP_HREF)),
        Some(_) => {
            return Err(NormaliseError::InvalidField {
                field: UP_HREF,
                reason: "expected a string".into(),
            });
        }
    };
    let not_a_capture = || NormaliseError::InvalidField {
        field: UP_HREF,
        reason: "expected a capture URL ending in `/captures/{id}`".into(),
    };
    let url = Url::parse(href).map_err(|_| not_a_capture())?;
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|segment| !segment.is_empty()).collect())
        .unwrap_or_default();
    match segments.as_slice() {
        [.., "captures", id] => fields::valid_id(id, UP_HREF),
        _ => Err(not_a_capture()),
    }
}

const SELLER_TRANSACTION_ID: &str = "resource.disputed_transactions[0].seller_transaction_id";

/// `CUSTOMER.DISPUTE.*`: `resource` is the dispute; the disputed capture is the seller-side
/// transaction id of the first disputed transaction, which is the capture id for Payments v2.
fn dispute(event_type: EventType, dispute: &Obj<'_>) -> Result<Body, NormaliseError> {
    let transactions = dispute.array("resource.disputed_transactions")?;
    let first = transactions
        .first()
        .ok_or(NormaliseError::MissingField(SELLER_TRANSACTION_ID))?;
    let first = dispute.child(first, "resource.disputed_transactions[0]")?;
    Ok(Body {
        event_type,
        payment_id: first.id(SELLER_TRANSACTION_ID)?,
        object_id: Some(dispute.id("resource.dispute_id")?),
        money: Money::from_paypal_money(
            dispute,
            "resource.dispute_amount",
            "resource.dispute_amount.currency_code",
            "resource.dispute_amount.value",
        )?,
        provider_status: dispute.opt_string("resource.status")?,
        failure_code: None,
        ordering: Ordering {
            updated_at: dispute.opt_timestamp("resource.update_time")?,
            ..Ordering::default()
        },
    })
}
