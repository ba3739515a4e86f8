//! The traffic of `payhook demo`: a realistic mix from all three providers — successes,
//! failures, refunds, disputes, a Square payment's many updates, concurrent duplicates, bad
//! signatures, an unsupported type, a request with an API key the usage plan does not hold, one
//! poison message and one processor crash right after publishing — with the payments whose books
//! the demo then checks. The local stack (`cli/local/src/demo.rs`) sends it and checks the books.

use payhook_core::Provider;

use crate::DevkitError;
use crate::payloads::{self, PayloadSpec};

/// The key of the demo's request that API Gateway answers `403 Forbidden`.
pub const UNKNOWN_API_KEY: &str = "phk_not_in_the_usage_plan";

/// One request of the demo and what it is meant to show.
#[derive(Debug, Clone)]
pub struct Planned {
    /// What it shows (`payment`, `bad signature`, …), in the run's `summary.json`.
    pub label: &'static str,
    /// The provider it imitates.
    pub provider: Provider,
    /// The body, signed when sent.
    pub body: Vec<u8>,
    /// The webhook id it should be recorded under (`None`: it is refused).
    pub webhook_id: Option<String>,
    /// Change the body after signing (one byte, as a proxy might): a bad signature.
    pub tamper_signature: bool,
    /// Send [`UNKNOWN_API_KEY`] instead of the provider's key.
    pub unknown_api_key: bool,
    /// How many copies are sent at once.
    pub copies: usize,
}

/// A payment whose books the demo checks from its payment record: captured once, refunded by
/// exactly these amounts (in order of publication), whatever updates came in between.
#[derive(Debug, Clone)]
pub struct BookedPayment {
    /// Its provider.
    pub provider: Provider,
    /// Its id.
    pub payment_id: String,
    /// The amount captured, minor units.
    pub captured_minor: i64,
    /// The `payment.refunded` deltas expected, minor units.
    pub refunds: Vec<i64>,
}

/// What the demo sends, and what it expects of some of it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The requests, in order.
    pub planned: Vec<Planned>,
    /// The payment whose events the bus rejects on every attempt (the poison message).
    pub poison_payment: String,
    /// The payment whose processor crashes once right after publishing.
    pub crash_payment: String,
    /// The payments whose books are checked from their payment record.
    pub booked: Vec<BookedPayment>,
}

/// A Square payment's realistic life, sent in order: created (approved), completed, a fee filled
/// in, a partial refund (pending, then completed) with the payment updated for it, a refund of
/// the rest, the payment updated again, and a late copy of the approved version (stale). Square
/// sends `payment.updated` for every change while the payment stays `COMPLETED`: the books
/// must show one `payment.succeeded` and two `payment.refunded` (40.00, then 80.00).
fn square_payment_life(
    now: i64,
    add: &mut impl FnMut(&'static str, PayloadSpec) -> Result<(), DevkitError>,
) -> Result<BookedPayment, DevkitError> {
    let provider = Provider::Square;
    let payment = payloads::new_payment_id(provider)?;
    let first_refund = format!("{payment}_refund_partial");
    let second_refund = format!("{payment}_refund_rest");
    let steps: [(&str, &str, &str, Option<&str>, i64); 9] = [
        ("payment.created", "APPROVED", "120.00", None, 90),
        ("payment.updated", "COMPLETED", "120.00", None, 80),
        ("payment.updated", "COMPLETED", "120.00", None, 70),
        (
            "refund.created",
            "PENDING",
            "40.00",
            Some(&first_refund),
            60,
        ),
        (
            "refund.updated",
            "COMPLETED",
            "40.00",
            Some(&first_refund),
            50,
        ),
        ("payment.updated", "COMPLETED", "120.00", None, 40),
        (
            "refund.created",
            "COMPLETED",
            "80.00",
            Some(&second_refund),
            30,
        ),
        ("payment.updated", "COMPLETED", "120.00", None, 20),
        ("payment.updated", "APPROVED", "120.00", None, 85),
    ];
    for (event_type, status, amount, refund_id, seconds_ago) in steps {
        let mut spec = PayloadSpec::new(provider)
            .event_type(event_type)
            .status(status)
            .amount(amount, "USD")
            .payment_id(payment.clone())
            .at(now - seconds_ago);
        if let Some(id) = refund_id {
            spec = spec.refund_id(id);
        }
        add("square payment with updates and refunds", spec)?;
    }
    Ok(BookedPayment {
        provider,
        payment_id: payment,
        captured_minor: 12_000,
        refunds: vec![4_000, 8_000],
    })
}

/// The demo's traffic at `now`: every request with fresh ids, built and ready to sign.
#[expect(
    clippy::too_many_lines,
    reason = "the demo's traffic as one script, in send order: each block is a scenario the books later check"
)]
pub fn plan(now: i64) -> Result<Plan, DevkitError> {
    let mut planned = Vec::new();
    let mut booked = Vec::new();
    let mut add = |label: &'static str, spec: PayloadSpec| -> Result<(), DevkitError> {
        // Specs carry their own time (now, unless a payment's life spaces its events out).
        let payload = payloads::build(&spec)?;
        planned.push(Planned {
            label,
            provider: payload.provider,
            webhook_id: Some(payload.webhook_id()),
            body: payload.body,
            tamper_signature: false,
            unknown_api_key: false,
            copies: 1,
        });
        Ok(())
    };
    for provider in Provider::ALL {
        let currency = "USD";
        for amount in ["4999.00", "250.00", "12.50"] {
            add(
                "payment",
                PayloadSpec::new(provider)
                    .event_type(payloads::default_event_type(provider))
                    .amount(amount, currency),
            )?;
        }
        for event_type in payloads::event_types(provider) {
            if *event_type == payloads::unsupported_event_type(provider) {
                add(
                    "unsupported type",
                    PayloadSpec::new(provider).event_type(*event_type),
                )?;
            } else {
                add(
                    "event",
                    PayloadSpec::new(provider)
                        .event_type(*event_type)
                        .amount("75.00", currency),
                )?;
            }
        }
        // One payment's life in order: the same FIFO group (Square's, with its updates, below).
        let payment = payloads::new_payment_id(provider)?;
        let lifecycle: &[&str] = match provider {
            Provider::Stripe => &["payment_intent.succeeded", "charge.refunded"],
            Provider::Paypal => &["PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.REFUNDED"],
            Provider::Square => &[],
        };
        if !lifecycle.is_empty() {
            booked.push(BookedPayment {
                provider,
                payment_id: payment.clone(),
                captured_minor: 12_000,
                refunds: vec![12_000],
            });
        }
        for event_type in lifecycle {
            add(
                "payment lifecycle",
                PayloadSpec::new(provider)
                    .event_type(*event_type)
                    .amount("120.00", currency)
                    .payment_id(payment.clone()),
            )?;
        }
    }
    booked.push(square_payment_life(now, &mut add)?);
    // Concurrent duplicates: the same delivery three times at once.
    for provider in Provider::ALL {
        let payload = payloads::build(&PayloadSpec::new(provider).amount("60.00", "EUR").at(now))?;
        planned.push(Planned {
            label: "concurrent duplicates",
            provider,
            webhook_id: Some(payload.webhook_id()),
            body: payload.body,
            tamper_signature: false,
            unknown_api_key: false,
            copies: 3,
        });
    }
    // Bad signatures and a request without the API key.
    for provider in Provider::ALL {
        let payload = payloads::build(&PayloadSpec::new(provider).at(now))?;
        planned.push(Planned {
            label: "bad signature",
            provider,
            webhook_id: None,
            body: payload.body,
            tamper_signature: true,
            unknown_api_key: false,
            copies: 1,
        });
    }
    let payload = payloads::build(&PayloadSpec::new(Provider::Stripe).at(now))?;
    planned.push(Planned {
        label: "unknown API key",
        provider: Provider::Stripe,
        webhook_id: None,
        body: payload.body,
        tamper_signature: false,
        unknown_api_key: true,
        copies: 1,
    });
    // The poison message: its events are rejected by the bus on every attempt.
    let poison_payment = payloads::new_payment_id(Provider::Stripe)?;
    let payload = payloads::build(
        &PayloadSpec::new(Provider::Stripe)
            .amount("42.00", "USD")
            .payment_id(poison_payment.clone())
            .at(now),
    )?;
    planned.push(Planned {
        label: "poison message",
        provider: Provider::Stripe,
        webhook_id: Some(payload.webhook_id()),
        body: payload.body,
        tamper_signature: false,
        unknown_api_key: false,
        copies: 1,
    });
    // A processor that crashes right after PutEvents: the retry publishes again and the event
    // processor absorbs the repeat.
    let crash_payment = payloads::new_payment_id(Provider::Square)?;
    let payload = payloads::build(
        &PayloadSpec::new(Provider::Square)
            .amount("64.00", "USD")
            .payment_id(crash_payment.clone())
            .at(now),
    )?;
    planned.push(Planned {
        label: "processor crash after publishing",
        provider: Provider::Square,
        webhook_id: Some(payload.webhook_id()),
        body: payload.body,
        tamper_signature: false,
        unknown_api_key: false,
        copies: 1,
    });
    Ok(Plan {
        planned,
        poison_payment,
        crash_payment,
        booked,
    })
}
