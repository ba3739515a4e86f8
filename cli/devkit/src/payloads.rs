//! Realistic provider webhook payloads, and signing them the provider's way: the `stripe
//! trigger` of this kit, used by `payhook send`, `payhook demo` and the load bench.
//!
//! [`build`] makes a complete envelope shaped like the provider's real ones (the samples in
//! `../shared/conformance/samples/` and `tests/fixtures/`), with fresh ids in the provider's
//! formats, the amount converted exactly into the provider's minor units or decimal string, and
//! the given payment id where the provider puts it. Every supported type normalises (with
//! `payhook_core::normalise`) to the expected event type, payment id and amount; one
//! unsupported type per provider is there to see it acknowledged and ignored.
//!
//! [`Signer`] adds the signature headers with a configuration's secrets ([`SigningKeys`]):
//! `Stripe-Signature` with the first endpoint secret, Square's HMAC over the
//! notification URL and the body, PayPal's five `PAYPAL-*` headers with an RSA signature made
//! with the demo signing key of `paypal.signing_key_file`.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use payhook_core::signature::paypal::{
    PAYPAL_AUTH_ALGO_HEADER, PAYPAL_CERT_URL_HEADER, PAYPAL_TRANSMISSION_ID_HEADER,
    PAYPAL_TRANSMISSION_SIG_HEADER, PAYPAL_TRANSMISSION_TIME_HEADER,
};
use payhook_core::signature::square::SQUARE_SIGNATURE_HEADER;
use payhook_core::signature::stripe::STRIPE_SIGNATURE_HEADER;
use payhook_core::signature::{SquareVerifier, StripeVerifier};
use payhook_core::{Provider, Secret, currency};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{DevkitError, unix_now};

/// Stripe event types [`build`] makes; the last one is not processed by payhook.
pub const STRIPE_EVENT_TYPES: [&str; 8] = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.canceled",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "customer.created",
];

/// PayPal event types [`build`] makes; the last one is not processed by payhook.
pub const PAYPAL_EVENT_TYPES: [&str; 7] = [
    "PAYMENT.CAPTURE.COMPLETED",
    "PAYMENT.CAPTURE.DENIED",
    "PAYMENT.CAPTURE.PENDING",
    "PAYMENT.CAPTURE.REFUNDED",
    "CUSTOMER.DISPUTE.CREATED",
    "CUSTOMER.DISPUTE.RESOLVED",
    "CHECKOUT.ORDER.APPROVED",
];

/// Square event types [`build`] makes; the last one is not processed by payhook.
pub const SQUARE_EVENT_TYPES: [&str; 7] = [
    "payment.created",
    "payment.updated",
    "refund.created",
    "refund.updated",
    "dispute.created",
    "dispute.state.updated",
    "order.created",
];

/// The Stripe API version stamped on built events.
pub const STRIPE_API_VERSION: &str = "2025-06-30.basil";
/// PayPal's signature algorithm used by [`Signer`].
pub const PAYPAL_AUTH_ALGO: &str = "SHA256withRSA";

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const DIGITS: &[u8] = b"0123456789";
const PAYPAL_API: &str = "https://api.sandbox.paypal.com";

/// Every event type [`build`] makes for `provider`, the unsupported one last.
pub fn event_types(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Stripe => &STRIPE_EVENT_TYPES,
        Provider::Paypal => &PAYPAL_EVENT_TYPES,
        Provider::Square => &SQUARE_EVENT_TYPES,
    }
}

/// The event type sent when none is named: the provider's "payment succeeded".
pub fn default_event_type(provider: Provider) -> &'static str {
    match provider {
        Provider::Stripe => "payment_intent.succeeded",
        Provider::Paypal => "PAYMENT.CAPTURE.COMPLETED",
        Provider::Square => "payment.updated",
    }
}

/// An event type payhook acknowledges but does not process (status `IGNORED`).
pub fn unsupported_event_type(provider: Provider) -> &'static str {
    match provider {
        Provider::Stripe => "customer.created",
        Provider::Paypal => "CHECKOUT.ORDER.APPROVED",
        Provider::Square => "order.created",
    }
}

/// What to build. Start from [`PayloadSpec::new`] and set what matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSpec {
    /// The provider whose envelope to build.
    pub provider: Provider,
    /// The provider's event type (default: [`default_event_type`]).
    pub event_type: Option<String>,
    /// Amount in major units as a decimal string (`"25.00"`, `"1500"` in JPY), converted
    /// exactly with the provider's exponent for `currency`.
    pub amount: String,
    /// ISO 4217 code, any case.
    pub currency: String,
    /// The payment the event is about (PaymentIntent, PayPal capture, Square payment); a new
    /// one in the provider's format when `None`.
    pub payment_id: Option<String>,
    /// The provider's event id; a new unique one when `None`.
    pub event_id: Option<String>,
    /// Square only: the status (payment, refund) or state (dispute) carried in the object,
    /// instead of the type's usual one (`FAILED` makes `payment.updated` a failure).
    pub status: Option<String>,
    /// Square only: the refund's id, so that a refund's `refund.created` and `refund.updated`
    /// name the same refund; a new one when `None`.
    pub refund_id: Option<String>,
    /// When the event happened, Unix seconds.
    pub now_unix: i64,
}

impl PayloadSpec {
    /// The provider's default event for 25.00 USD, now, with fresh ids.
    pub fn new(provider: Provider) -> Self {
        PayloadSpec {
            provider,
            event_type: None,
            amount: "25.00".to_owned(),
            currency: "USD".to_owned(),
            payment_id: None,
            event_id: None,
            status: None,
            refund_id: None,
            now_unix: unix_now(),
        }
    }

    /// Sets the event type.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Sets the amount (major units, decimal string) and currency.
    pub fn amount(mut self, amount: impl Into<String>, currency: impl Into<String>) -> Self {
        self.amount = amount.into();
        self.currency = currency.into();
        self
    }

    /// Sets the payment id.
    pub fn payment_id(mut self, payment_id: impl Into<String>) -> Self {
        self.payment_id = Some(payment_id.into());
        self
    }

    /// Sets the event id (a duplicate delivery reuses one).
    pub fn event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = Some(event_id.into());
        self
    }

    /// Sets the Square object status.
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Sets the Square refund id.
    pub fn refund_id(mut self, refund_id: impl Into<String>) -> Self {
        self.refund_id = Some(refund_id.into());
        self
    }

    /// Sets the event time.
    pub fn at(mut self, now_unix: i64) -> Self {
        self.now_unix = now_unix;
        self
    }
}

/// A built webhook body and what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Its provider.
    pub provider: Provider,
    /// The provider's event id.
    pub event_id: String,
    /// The provider's event type.
    pub event_type: String,
    /// The payment it is about.
    pub payment_id: String,
    /// The amount in the provider's minor units of `currency`.
    pub amount_minor: i64,
    /// Upper-case ISO 4217 code.
    pub currency: String,
    /// The raw JSON body, as the provider would send it.
    pub body: Vec<u8>,
}

impl Payload {
    /// `"{provider}:{event id}"`: the webhook id the pipeline tracks it by.
    pub fn webhook_id(&self) -> String {
        format!("{}:{}", self.provider, self.event_id)
    }
}

/// Builds one webhook body. Unknown event types, bad amounts and unknown currencies are usage
/// errors that say what is accepted.
pub fn build(spec: &PayloadSpec) -> Result<Payload, DevkitError> {
    let provider = spec.provider;
    let event_type = spec
        .event_type
        .clone()
        .unwrap_or_else(|| default_event_type(provider).to_owned());
    if !event_types(provider).contains(&event_type.as_str()) {
        return Err(DevkitError::Invalid(format!(
            "{provider} event type `{event_type}` cannot be built; choose one of: {}",
            event_types(provider).join(", ")
        )));
    }
    if spec.status.is_some() && provider != Provider::Square {
        return Err(DevkitError::Invalid(
            "--status applies to square payloads only".into(),
        ));
    }
    let currency = currency::canonical_code(&spec.currency)
        .map_err(|e| DevkitError::Invalid(format!("--currency: {e}")))?;
    let exponent = currency::exponent(provider, &currency)
        .map_err(|e| DevkitError::Invalid(format!("--currency: {e}")))?;
    let amount_minor = currency::parse_decimal_minor(&spec.amount, exponent).map_err(|e| {
        DevkitError::Invalid(format!(
            "--amount {:?} in {currency} ({exponent} decimals for {provider}): {e}",
            spec.amount
        ))
    })?;
    let payment_id = match &spec.payment_id {
        Some(id) if valid_id(id) => id.clone(),
        Some(id) => {
            return Err(DevkitError::Invalid(format!(
                "--payment-id {id:?} must be 1 to 100 printable ASCII characters without spaces"
            )));
        }
        None => new_payment_id(provider)?,
    };
    let event_id = match &spec.event_id {
        Some(id) => id.clone(),
        None => new_event_id(provider)?,
    };
    let money = Money {
        minor: amount_minor,
        exponent,
        currency: currency.clone(),
    };
    let ctx = Ctx {
        event_id: &event_id,
        event_type: &event_type,
        payment_id: &payment_id,
        money: &money,
        status: spec.status.as_deref(),
        refund_id: spec.refund_id.as_deref(),
        now: spec.now_unix,
    };
    let body = match provider {
        Provider::Stripe => serde_json::to_vec_pretty(&stripe(&ctx)?),
        Provider::Paypal => serde_json::to_vec(&paypal(&ctx)?),
        Provider::Square => serde_json::to_vec(&square(&ctx)?),
    }
    .map_err(|e| DevkitError::Crypto(format!("cannot serialise the payload: {e}")))?;
    Ok(Payload {
        provider,
        event_id,
        event_type,
        payment_id,
        amount_minor,
        currency,
        body,
    })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A new payment id in `provider`'s format (PaymentIntent, PayPal capture, Square payment).
pub fn new_payment_id(provider: Provider) -> Result<String, DevkitError> {
    Ok(match provider {
        Provider::Stripe => format!("pi_{}", random_string(ALNUM, 24)?),
        Provider::Paypal => random_string(UPPER_ALNUM, 17)?,
        Provider::Square => random_string(ALNUM, 29)?,
    })
}

/// A new unique event id in `provider`'s format (`evt_…`, `WH-…-…`, a UUID).
pub fn new_event_id(provider: Provider) -> Result<String, DevkitError> {
    Ok(match provider {
        Provider::Stripe => format!("evt_{}", random_string(ALNUM, 24)?),
        Provider::Paypal => format!(
            "WH-{}-{}",
            random_string(UPPER_ALNUM, 17)?,
            random_string(UPPER_ALNUM, 17)?
        ),
        Provider::Square => uuid_v4()?,
    })
}

/// `N` bytes from the system's secure random generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], DevkitError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DevkitError::Random("the system random generator failed".into()))?;
    Ok(bytes)
}

/// `len` characters drawn uniformly from `alphabet` (at most 256 symbols) with the system's
/// secure random generator.
pub fn random_string(alphabet: &[u8], len: usize) -> Result<String, DevkitError> {
    if alphabet.is_empty() {
        return Err(DevkitError::Random(
            "random_string needs a non-empty alphabet".into(),
        ));
    }
    let symbols = alphabet.len().min(256);
    // Rejection sampling keeps the draw uniform: bytes at or above the largest multiple of
    // the alphabet's size are thrown away.
    let limit = 256 - 256 % symbols;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in random_bytes::<32>()? {
            if usize::from(byte) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(byte) % symbols]));
            }
        }
    }
    Ok(out)
}

fn uuid_v4() -> Result<String, DevkitError> {
    Ok(uuid::Builder::from_random_bytes(random_bytes::<16>()?)
        .into_uuid()
        .to_string())
}

/// An amount in minor units with its currency and the provider's exponent.
struct Money {
    minor: i64,
    exponent: u32,
    currency: String,
}

impl Money {
    /// PayPal's decimal string: `2.51`, `1500` (JPY), `12.340` (KWD).
    fn decimal(&self) -> String {
        let digits = self.minor.unsigned_abs().to_string();
        let exponent = self.exponent as usize;
        if exponent == 0 {
            return digits;
        }
        let padded = format!("{digits:0>width$}", width = exponent + 1);
        let (whole, fraction) = padded.split_at(padded.len() - exponent);
        format!("{whole}.{fraction}")
    }

    fn paypal(&self) -> Value {
        json!({"currency_code": self.currency, "value": self.decimal()})
    }

    fn square(&self) -> Value {
        json!({"amount": self.minor, "currency": self.currency})
    }
}

struct Ctx<'a> {
    event_id: &'a str,
    event_type: &'a str,
    payment_id: &'a str,
    money: &'a Money,
    status: Option<&'a str>,
    refund_id: Option<&'a str>,
    now: i64,
}

impl Ctx<'_> {
    /// RFC 3339 in UTC with milliseconds, `seconds_before` before the event.
    fn time(&self, seconds_before: i64) -> Result<String, DevkitError> {
        rfc3339(self.now - seconds_before, true)
    }
}

fn rfc3339(unix: i64, millis: bool) -> Result<String, DevkitError> {
    let at = OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| DevkitError::Invalid(format!("time {unix} is out of range: {e}")))?;
    let text = at
        .format(&Rfc3339)
        .map_err(|e| DevkitError::Invalid(format!("time {unix} cannot be formatted: {e}")))?;
    // `Rfc3339` prints no fraction for whole seconds; the providers print milliseconds.
    Ok(match (millis, text.strip_suffix('Z')) {
        (true, Some(stem)) if !stem.contains('.') => format!("{stem}.000Z"),
        _ => text,
    })
}

// ---------------------------------------------------------------------------------------------
// Stripe: an Event (`object: "event"`) around a PaymentIntent, Charge, Dispute or Customer.

fn stripe(ctx: &Ctx<'_>) -> Result<Value, DevkitError> {
    let charge_id = format!("ch_{}", random_string(ALNUM, 24)?);
    let (object, previous) = match ctx.event_type {
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.processing"
        | "payment_intent.canceled" => (stripe_payment_intent(ctx, &charge_id)?, None),
        "charge.refunded" => (
            stripe_charge(ctx, &charge_id)?,
            Some(json!({"amount_refunded": 0, "refunded": false})),
        ),
        "charge.dispute.created" | "charge.dispute.closed" => {
            (stripe_dispute(ctx, &charge_id)?, None)
        }
        _ => (stripe_customer(ctx)?, None),
    };
    let mut data = json!({ "object": object });
    if let (Some(previous), Some(data)) = (previous, data.as_object_mut()) {
        data.insert("previous_attributes".into(), previous);
    }
    Ok(json!({
        "id": ctx.event_id,
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": ctx.now,
        "data": data,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {
            "id": format!("req_{}", random_string(ALNUM, 14)?),
            "idempotency_key": uuid_v4()?,
        },
        "type": ctx.event_type,
    }))
}

fn stripe_payment_intent(ctx: &Ctx<'_>, charge_id: &str) -> Result<Value, DevkitError> {
    let payment_method = format!("pm_{}", random_string(ALNUM, 24)?);
    let (status, received, error, canceled_at, reason) = match ctx.event_type {
        "payment_intent.succeeded" => ("succeeded", ctx.money.minor, Value::Null, None, None),
        "payment_intent.payment_failed" => (
            "requires_payment_method",
            0,
            json!({
                "charge": charge_id,
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "message": "Your card has insufficient funds.",
                "type": "card_error",
                "payment_method": {"id": payment_method, "object": "payment_method", "type": "card"},
            }),
            None,
            None,
        ),
        "payment_intent.processing" => ("processing", 0, Value::Null, None, None),
        _ => (
            "canceled",
            0,
            Value::Null,
            Some(ctx.now),
            Some("requested_by_customer"),
        ),
    };
    let succeeded = status == "succeeded";
    let mut object = json!({
        "id": ctx.payment_id,
        "object": "payment_intent",
        "amount": ctx.money.minor,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": received,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": {"enabled": true},
        "canceled_at": canceled_at,
        "cancellation_reason": reason,
        "capture_method": "automatic",
        "client_secret": format!("{}_secret_{}", ctx.payment_id, random_string(ALNUM, 25)?),
        "confirmation_method": "automatic",
        "created": ctx.now - 60,
        "currency": ctx.money.currency.to_ascii_lowercase(),
        "customer": null,
        "description": "payhook send",
        "last_payment_error": error,
        "latest_charge": charge_id,
        "livemode": false,
        "metadata": {"order_id": random_string(DIGITS, 6)?},
        "next_action": null,
        "on_behalf_of": null,
    });
    let rest = json!({
        "payment_method": if succeeded { Value::String(payment_method) } else { Value::Null },
        "payment_method_configuration_details": null,
        "payment_method_options": {
            "card": {"installments": null, "mandate_options": null, "network": null,
                     "request_three_d_secure": "automatic"},
        },
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": status,
        "transfer_data": null,
        "transfer_group": null,
    });
    merge(&mut object, rest);
    Ok(object)
}

fn stripe_charge(ctx: &Ctx<'_>, charge_id: &str) -> Result<Value, DevkitError> {
    let mut object = json!({
        "id": charge_id,
        "object": "charge",
        "amount": ctx.money.minor,
        "amount_captured": ctx.money.minor,
        "amount_refunded": ctx.money.minor,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": format!("txn_{}", random_string(ALNUM, 24)?),
        "billing_details": {
            "address": {"city": null, "country": null, "line1": null, "line2": null,
                        "postal_code": null, "state": null},
            "email": null, "name": "Jenny Rosen", "phone": null, "tax_id": null,
        },
        "calculated_statement_descriptor": "PAYHOOK DEMO",
        "captured": true,
        "created": ctx.now - 3600,
        "currency": ctx.money.currency.to_ascii_lowercase(),
        "customer": null,
        "description": "payhook send",
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": null,
        "failure_message": null,
        "fraud_details": {},
        "livemode": false,
        "metadata": {},
        "on_behalf_of": null,
    });
    let rest = json!({
        "outcome": {
            "network_status": "approved_by_network", "reason": null, "risk_level": "normal",
            "risk_score": 32, "seller_message": "Payment complete.", "type": "authorized",
        },
        "paid": true,
        "payment_intent": ctx.payment_id,
        "payment_method": format!("pm_{}", random_string(ALNUM, 24)?),
        "payment_method_details": {
            "card": {
                "brand": "visa", "checks": {"address_line1_check": null,
                "address_postal_code_check": null, "cvc_check": "pass"}, "country": "US",
                "exp_month": 8, "exp_year": 2030, "fingerprint": random_string(ALNUM, 16)?,
                "funding": "credit", "last4": "4242", "network": "visa",
            },
            "type": "card",
        },
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": null,
        "refunded": true,
        "review": null,
        "shipping": null,
        "source": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "succeeded",
        "transfer_data": null,
        "transfer_group": null,
    });
    merge(&mut object, rest);
    Ok(object)
}

fn stripe_dispute(ctx: &Ctx<'_>, charge_id: &str) -> Result<Value, DevkitError> {
    let dispute_id = format!("dp_{}", random_string(ALNUM, 24)?);
    let closed = ctx.event_type == "charge.dispute.closed";
    let currency = ctx.money.currency.to_ascii_lowercase();
    let withdrawal = json!({
        "id": format!("txn_{}", random_string(ALNUM, 24)?),
        "object": "balance_transaction",
        "amount": -ctx.money.minor,
        "created": ctx.now,
        "currency": currency,
        "description": format!("Chargeback withdrawal for {charge_id}"),
        "reporting_category": "dispute",
        "source": dispute_id,
        "status": "pending",
        "type": "adjustment",
    });
    Ok(json!({
        "id": dispute_id,
        "object": "dispute",
        "amount": ctx.money.minor,
        "balance_transactions": [withdrawal],
        "charge": charge_id,
        "created": ctx.now,
        "currency": currency,
        "enhanced_eligibility_types": [],
        "evidence": {"customer_name": null, "product_description": null,
                     "uncategorized_text": null, "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": ctx.now + 7 * 86_400, "enhanced_eligibility": {}, "has_evidence": false,
            "past_due": false, "submission_count": 0,
        },
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "network_reason_code": "10.4",
        "payment_intent": ctx.payment_id,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": "fraudulent",
        "status": if closed { "lost" } else { "needs_response" },
    }))
}

fn stripe_customer(ctx: &Ctx<'_>) -> Result<Value, DevkitError> {
    Ok(json!({
        "id": format!("cus_{}", random_string(ALNUM, 14)?),
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": ctx.now,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "email": "jenny.rosen@example.com",
        "invoice_prefix": random_string(UPPER_ALNUM, 8)?,
        "livemode": false,
        "metadata": {},
        "name": "Jenny Rosen",
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    }))
}

fn merge(object: &mut Value, rest: Value) {
    if let (Some(object), Value::Object(rest)) = (object.as_object_mut(), rest) {
        object.extend(rest);
    }
}

// ---------------------------------------------------------------------------------------------
// PayPal: a webhook event (`WH-…`) around a Payments v2 capture or refund, a dispute or an order.

fn paypal(ctx: &Ctx<'_>) -> Result<Value, DevkitError> {
    let amount = format!("{} {}", ctx.money.decimal(), ctx.money.currency);
    let (resource_type, resource_version, summary, resource) = match ctx.event_type {
        "PAYMENT.CAPTURE.COMPLETED" => (
            "capture",
            "2.0",
            format!("Payment completed for {amount}"),
            paypal_capture(ctx, "COMPLETED")?,
        ),
        "PAYMENT.CAPTURE.DENIED" => (
            "capture",
            "2.0",
            format!("Payment denied for {amount}"),
            paypal_capture(ctx, "DECLINED")?,
        ),
        "PAYMENT.CAPTURE.PENDING" => (
            "capture",
            "2.0",
            format!("Payment pending for {amount}"),
            paypal_capture(ctx, "PENDING")?,
        ),
        "PAYMENT.CAPTURE.REFUNDED" => (
            "refund",
            "2.0",
            format!("A {amount} capture payment was refunded"),
            paypal_refund(ctx)?,
        ),
        "CUSTOMER.DISPUTE.CREATED" | "CUSTOMER.DISPUTE.RESOLVED" => {
            let dispute = paypal_dispute(ctx)?;
            let summary = match dispute["dispute_id"].as_str() {
                Some(id) if ctx.event_type == "CUSTOMER.DISPUTE.CREATED" => {
                    format!("A new dispute opened with Case # {id}")
                }
                Some(id) => format!("A dispute was resolved with case # {id}"),
                None => String::new(),
            };
            ("dispute", "1.0", summary, dispute)
        }
        _ => (
            "checkout-order",
            "2.0",
            "An order has been approved by buyer".to_owned(),
            paypal_order(ctx)?,
        ),
    };
    let event_link = format!(
        "{PAYPAL_API}/v1/notifications/webhooks-events/{}",
        ctx.event_id
    );
    Ok(json!({
        "id": ctx.event_id,
        "event_version": "1.0",
        "create_time": ctx.time(0)?,
        "resource_type": resource_type,
        "resource_version": resource_version,
        "event_type": ctx.event_type,
        "summary": summary,
        "resource": resource,
        "links": [
            {"href": event_link, "rel": "self", "method": "GET"},
            {"href": format!("{event_link}/resend"), "rel": "resend", "method": "POST"},
        ],
    }))
}

fn paypal_capture(ctx: &Ctx<'_>, status: &str) -> Result<Value, DevkitError> {
    let order_id = random_string(UPPER_ALNUM, 17)?;
    let capture_url = format!("{PAYPAL_API}/v2/payments/captures/{}", ctx.payment_id);
    let mut capture = json!({
        "id": ctx.payment_id,
        "amount": ctx.money.paypal(),
        "final_capture": true,
        "seller_protection": {
            "status": "ELIGIBLE",
            "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
        },
        "seller_receivable_breakdown": {
            "gross_amount": ctx.money.paypal(),
            "net_amount": ctx.money.paypal(),
        },
        "invoice_id": format!("INV-{}", random_string(DIGITS, 8)?),
        "status": status,
        "supplementary_data": {"related_ids": {"order_id": order_id}},
        "create_time": ctx.time(10)?,
        "update_time": ctx.time(0)?,
        "links": [
            {"href": capture_url, "rel": "self", "method": "GET"},
            {"href": format!("{capture_url}/refund"), "rel": "refund", "method": "POST"},
            {"href": format!("{PAYPAL_API}/v2/checkout/orders/{order_id}"), "rel": "up",
             "method": "GET"},
        ],
    });
    if status == "PENDING" {
        merge(
            &mut capture,
            json!({"status_details": {"reason": "PENDING_REVIEW"}}),
        );
    }
    Ok(capture)
}

fn paypal_refund(ctx: &Ctx<'_>) -> Result<Value, DevkitError> {
    let refund_id = random_string(UPPER_ALNUM, 17)?;
    Ok(json!({
        "id": refund_id,
        "amount": ctx.money.paypal(),
        "seller_payable_breakdown": {
            "gross_amount": ctx.money.paypal(),
            "net_amount": ctx.money.paypal(),
            "total_refunded_amount": ctx.money.paypal(),
        },
        "note_to_payer": "Refunded by payhook send",
        "status": "COMPLETED",
        "create_time": ctx.time(0)?,
        "update_time": ctx.time(0)?,
        "links": [
            {"href": format!("{PAYPAL_API}/v2/payments/refunds/{refund_id}"), "rel": "self",
             "method": "GET"},
            {"href": format!("{PAYPAL_API}/v2/payments/captures/{}", ctx.payment_id),
             "rel": "up", "method": "GET"},
        ],
    }))
}

fn paypal_dispute(ctx: &Ctx<'_>) -> Result<Value, DevkitError> {
    let dispute_id = format!("PP-D-{}", random_string(DIGITS, 8)?);
    let resolved = ctx.event_type == "CUSTOMER.DISPUTE.RESOLVED";
    let dispute_url = format!("{PAYPAL_API}/v1/customer/disputes/{dispute_id}");
    let mut dispute = json!({
        "dispute_id": dispute_id,
        "create_time": ctx.time(if resolved { 86_400 } else { 0 })?,
        "update_time": ctx.time(0)?,
        "disputed_transactions": [{
            "seller_transaction_id": ctx.payment_id,
            "seller": {"merchant_id": random_string(UPPER_ALNUM, 13)?, "name": "payhook demo store"},
            "items": [],
            "seller_protection_eligible": true,
        }],
        "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
        "status": if resolved { "RESOLVED" } else { "OPEN" },
        "dispute_amount": ctx.money.paypal(),
        "dispute_life_cycle_stage": "INQUIRY",
        "dispute_channel": "INTERNAL",
        "messages": [],
        "links": [
            {"href": dispute_url, "rel": "self", "method": "GET"},
            {"href": format!("{dispute_url}/send-message"), "rel": "send_message",
             "method": "POST"},
        ],
    });
    if resolved {
        merge(
            &mut dispute,
            json!({"dispute_outcome": {
                "outcome_code": "RESOLVED_BUYER_FAVOUR",
                "amount_refunded": ctx.money.paypal(),
            }}),
        );
    }
    Ok(dispute)
}

fn paypal_order(ctx: &Ctx<'_>) -> Result<Value, DevkitError> {
    let order_id = random_string(UPPER_ALNUM, 17)?;
    let order_url = format!("{PAYPAL_API}/v2/checkout/orders/{order_id}");
    Ok(json!({
        "id": order_id,
        "status": "APPROVED",
        "intent": "CAPTURE",
        "payer": {
            "name": {"given_name": "John", "surname": "Doe"},
            "email_address": "customer@example.com",
            "payer_id": random_string(UPPER_ALNUM, 13)?,
        },
        "purchase_units": [{
            "reference_id": uuid_v4()?,
            "amount": ctx.money.paypal(),
            "payee": {"email_address": "merchant@example.com"},
        }],
        "create_time": ctx.time(60)?,
        "update_time": ctx.time(0)?,
        "links": [
            {"href": order_url, "rel": "self", "method": "GET"},
            {"href": format!("{order_url}/capture"), "rel": "capture", "method": "POST"},
        ],
    }))
}

// ---------------------------------------------------------------------------------------------
// Square: `{merchant_id, type, event_id, created_at, data: {type, id, object}}`.

fn square(ctx: &Ctx<'_>) -> Result<Value, DevkitError> {
    let location_id = random_string(UPPER_ALNUM, 13)?;
    let (data_type, data_id, object) = match ctx.event_type {
        "payment.created" | "payment.updated" => {
            let created = ctx.event_type == "payment.created";
            let status = ctx
                .status
                .unwrap_or(if created { "APPROVED" } else { "COMPLETED" });
            (
                "payment",
                ctx.payment_id.to_owned(),
                json!({"payment": square_payment(ctx, status, &location_id)?}),
            )
        }
        "refund.created" | "refund.updated" => {
            let created = ctx.event_type == "refund.created";
            let status = ctx
                .status
                .unwrap_or(if created { "PENDING" } else { "COMPLETED" });
            let refund = square_refund(ctx, status, &location_id)?;
            let id = refund["id"].as_str().unwrap_or_default().to_owned();
            ("refund", id, json!({"refund": refund}))
        }
        "dispute.created" | "dispute.state.updated" => {
            let created = ctx.event_type == "dispute.created";
            let state = ctx
                .status
                .unwrap_or(if created { "EVIDENCE_REQUIRED" } else { "WON" });
            let dispute = square_dispute(ctx, state, &location_id)?;
            let id = dispute["id"].as_str().unwrap_or_default().to_owned();
            ("dispute", id, json!({"dispute": dispute}))
        }
        _ => {
            let order_id = random_string(ALNUM, 29)?;
            let order = json!({"order_created": {
                "created_at": ctx.time(0)?,
                "location_id": location_id,
                "order_id": order_id,
                "state": ctx.status.unwrap_or("OPEN"),
                "version": 1,
            }});
            ("order_created", order_id, order)
        }
    };
    Ok(json!({
        "merchant_id": random_string(UPPER_ALNUM, 13)?,
        "location_id": location_id,
        "type": ctx.event_type,
        "event_id": ctx.event_id,
        "created_at": ctx.time(0)?,
        "data": {"type": data_type, "id": data_id, "object": object},
    }))
}

fn square_payment(ctx: &Ctx<'_>, status: &str, location_id: &str) -> Result<Value, DevkitError> {
    let (card_status, errors) = match status {
        "COMPLETED" => ("CAPTURED", None),
        "FAILED" => (
            "FAILED",
            Some(json!([{
                "category": "PAYMENT_METHOD_ERROR",
                "code": "CARD_DECLINED",
                "detail": "Authorization error: 'CARD_DECLINED'",
            }])),
        ),
        "CANCELED" => ("VOIDED", None),
        _ => ("AUTHORIZED", None),
    };
    let mut card_details = json!({
        "avs_status": "AVS_ACCEPTED",
        "card": {
            "bin": "411111", "card_brand": "VISA", "card_type": "CREDIT", "exp_month": 11,
            "exp_year": 2030, "fingerprint": format!("sq-1-{}", random_string(ALNUM, 60)?),
            "last_4": "1111", "prepaid_type": "NOT_PREPAID",
        },
        "card_payment_timeline": {"authorized_at": ctx.time(5)?},
        "cvv_status": "CVV_ACCEPTED",
        "entry_method": "KEYED",
        "statement_description": "SQ *PAYHOOK DEMO",
        "status": card_status,
    });
    if let Some(errors) = errors {
        merge(&mut card_details, json!({ "errors": errors }));
    }
    let id = ctx.payment_id;
    Ok(json!({
        "id": id,
        "amount_money": ctx.money.square(),
        "approved_money": ctx.money.square(),
        "total_money": ctx.money.square(),
        "card_details": card_details,
        "created_at": ctx.time(5)?,
        "updated_at": ctx.time(0)?,
        "delay_action": "CANCEL",
        "delay_duration": "PT168H",
        "location_id": location_id,
        "order_id": random_string(ALNUM, 29)?,
        "receipt_number": id.chars().take(4).collect::<String>(),
        "receipt_url": format!("https://squareupsandbox.com/receipt/preview/{id}"),
        "risk_evaluation": {"created_at": ctx.time(5)?, "risk_level": "NORMAL"},
        "source_type": "CARD",
        "status": status,
        "version_token": random_string(ALNUM, 45)?,
    }))
}

fn square_refund(ctx: &Ctx<'_>, status: &str, location_id: &str) -> Result<Value, DevkitError> {
    Ok(json!({
        "id": match ctx.refund_id {
            Some(id) => id.to_owned(),
            None => format!("{}_{}", ctx.payment_id, random_string(ALNUM, 43)?),
        },
        "amount_money": ctx.money.square(),
        "created_at": ctx.time(60)?,
        "location_id": location_id,
        "order_id": random_string(ALNUM, 28)?,
        "payment_id": ctx.payment_id,
        "reason": "Requested by customer",
        "status": status,
        "updated_at": ctx.time(0)?,
        "version": if status == "PENDING" { 7 } else { 10 },
    }))
}

fn square_dispute(ctx: &Ctx<'_>, state: &str, location_id: &str) -> Result<Value, DevkitError> {
    let created = ctx.event_type == "dispute.created";
    Ok(json!({
        "id": random_string(ALNUM, 20)?,
        "amount_money": ctx.money.square(),
        "brand_dispute_id": random_string(ALNUM, 22)?,
        "card_brand": "VISA",
        "created_at": ctx.time(if created { 0 } else { 86_400 })?,
        "disputed_payment": {"payment_id": ctx.payment_id},
        "due_at": ctx.time(-14 * 86_400)?,
        "location_id": location_id,
        "reason": "AMOUNT_DIFFERS",
        "reported_at": ctx.time(if created { 0 } else { 86_400 })?,
        "state": state,
        "updated_at": ctx.time(0)?,
        "version": if created { 1 } else { 4 },
    }))
}

// ---------------------------------------------------------------------------------------------
// Signing.

/// What a [`Signer`] signs with: the secrets a stack's configuration holds (the local stack's
/// `Config::signing_keys` in `cli/local/src/config.rs`).
#[derive(Clone)]
pub struct SigningKeys {
    /// Stripe's endpoint signing secret (`whsec_…`).
    pub stripe_secret: Secret,
    /// Square's signature key.
    pub square_key: Secret,
    /// Square's notification URL, exactly as registered (Square signs it with the body).
    pub square_url: String,
    /// PayPal's webhook id (part of the signed message).
    pub paypal_webhook_id: String,
    /// The `PAYPAL-CERT-URL` sent.
    pub paypal_cert_url: String,
    /// The PayPal signing key, a PKCS#8 PEM (`None`: PayPal webhooks cannot be signed).
    pub paypal_key_pem: Option<Vec<u8>>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("square_url", &self.square_url)
            .field("paypal_cert_url", &self.paypal_cert_url)
            .finish_non_exhaustive()
    }
}

/// Signs webhook bodies as each provider would, with [`SigningKeys`]. Cheap to share (`Clone`
/// shares the parsed PayPal key).
#[derive(Clone)]
pub struct Signer {
    stripe_secret: Secret,
    square_key: Secret,
    square_url: String,
    paypal_webhook_id: String,
    paypal_cert_url: String,
    paypal_key: Option<Arc<RsaKeyPair>>,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("square_url", &self.square_url)
            .field("paypal_cert_url", &self.paypal_cert_url)
            .field(
                "paypal_key",
                &self.paypal_key.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer over `keys`. Without a PayPal key only PayPal signing fails.
    pub fn new(keys: SigningKeys) -> Result<Signer, DevkitError> {
        let paypal_key = match keys.paypal_key_pem {
            Some(pem) => Some(Arc::new(parse_rsa_key(&pem)?)),
            None => None,
        };
        Ok(Signer {
            stripe_secret: keys.stripe_secret,
            square_key: keys.square_key,
            square_url: keys.square_url,
            paypal_webhook_id: keys.paypal_webhook_id,
            paypal_cert_url: keys.paypal_cert_url,
            paypal_key,
            rng: SystemRandom::new(),
        })
    }

    /// The signature headers for `body` from `provider` at `now_unix`.
    pub fn sign(
        &self,
        provider: Provider,
        body: &[u8],
        now_unix: i64,
    ) -> Result<Vec<(String, String)>, DevkitError> {
        Ok(match provider {
            Provider::Stripe => vec![(
                STRIPE_SIGNATURE_HEADER.to_owned(),
                StripeVerifier::sign(&self.stripe_secret, now_unix, body),
            )],
            Provider::Square => vec![(
                SQUARE_SIGNATURE_HEADER.to_owned(),
                SquareVerifier::sign(&self.square_key, &self.square_url, body),
            )],
            Provider::Paypal => self.sign_paypal(body, now_unix)?,
        })
    }

    fn sign_paypal(
        &self,
        body: &[u8],
        now_unix: i64,
    ) -> Result<Vec<(String, String)>, DevkitError> {
        let key = self.paypal_key.as_ref().ok_or_else(|| {
            DevkitError::Invalid(
                "paypal.signing_key_file is not set: PayPal webhooks cannot be signed \
                 (run `payhook config init` for a demo key)"
                    .into(),
            )
        })?;
        let transmission_id = uuid_v4()?;
        let transmission_time = rfc3339(now_unix, false)?;
        let message = format!(
            "{transmission_id}|{transmission_time}|{}|{}",
            self.paypal_webhook_id,
            crc32fast::hash(body)
        );
        let mut signature = vec![0u8; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &self.rng,
            message.as_bytes(),
            &mut signature,
        )
        .map_err(|_| DevkitError::Crypto("RSA signing failed".into()))?;
        Ok(vec![
            (PAYPAL_TRANSMISSION_ID_HEADER.to_owned(), transmission_id),
            (
                PAYPAL_TRANSMISSION_TIME_HEADER.to_owned(),
                transmission_time,
            ),
            (
                PAYPAL_CERT_URL_HEADER.to_owned(),
                self.paypal_cert_url.clone(),
            ),
            (
                PAYPAL_AUTH_ALGO_HEADER.to_owned(),
                PAYPAL_AUTH_ALGO.to_owned(),
            ),
            (
                PAYPAL_TRANSMISSION_SIG_HEADER.to_owned(),
                BASE64.encode(signature),
            ),
        ])
    }
}

fn parse_rsa_key(pem: &[u8]) -> Result<RsaKeyPair, DevkitError> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|e| {
        DevkitError::Invalid(format!(
            "paypal.signing_key_file: no PKCS#8 `PRIVATE KEY` PEM block: {e}"
        ))
    })?;
    RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| {
        DevkitError::Invalid(format!(
            "paypal.signing_key_file: not a usable RSA key: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(minor: i64, exponent: u32) -> Money {
        Money {
            minor,
            exponent,
            currency: "USD".into(),
        }
    }

    #[test]
    fn paypal_decimals_follow_the_exponent() {
        assert_eq!(money(251, 2).decimal(), "2.51");
        assert_eq!(money(5, 2).decimal(), "0.05");
        assert_eq!(money(0, 2).decimal(), "0.00");
        assert_eq!(money(1500, 0).decimal(), "1500");
        assert_eq!(money(12_340, 3).decimal(), "12.340");
    }

    #[test]
    fn random_strings_use_only_the_alphabet() {
        let s = random_string(UPPER_ALNUM, 100).unwrap();
        assert_eq!(s.len(), 100);
        assert!(s.bytes().all(|b| UPPER_ALNUM.contains(&b)));
        assert_ne!(s, random_string(UPPER_ALNUM, 100).unwrap());
    }

    #[test]
    fn provider_times_carry_milliseconds() {
        assert_eq!(
            rfc3339(1_735_689_600, true).unwrap(),
            "2025-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339(1_735_689_600, false).unwrap(),
            "2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn unknown_event_types_list_the_buildable_ones() {
        let err = build(&PayloadSpec::new(Provider::Stripe).event_type("invoice.paid"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("payment_intent.succeeded"), "{err}");
    }
}
