//! Reading provider JSON with errors that name the field: typed accessors over a JSON object,
//! id and timestamp validation, money, and the event builder shared by the three providers.

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use super::json::{self, Depth, Fields, Json, Schema};
use super::{NormaliseError, Normalised};
use crate::currency::{self, Rates};
use crate::event::{EventType, PaymentEvent};
use crate::provider::Provider;

/// The longest id accepted (event, payment, refund and dispute ids). Ids become the SQS
/// `MessageDeduplicationId` (as `"{provider}:{id}"`) and `MessageGroupId`, which allow 128
/// printable ASCII characters; real ids are 20–80 characters long.
pub(crate) const MAX_ID_LEN: usize = 120;

/// The longest event type accepted (they are logged and stored, also when ignored).
const MAX_EVENT_TYPE_LEN: usize = 100;

/// `occurred_at` format: RFC 3339 in UTC with milliseconds, like `received_at`, so that
/// timestamps from all providers sort as text.
const OCCURRED_AT_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Reads a provider body keeping the keys `schema` declares (see [`json`]), refusing anything
/// but a JSON object at the top level (serde would otherwise read a JSON array positionally
/// into a struct, and a scalar has no keys to miss).
pub(crate) fn parse_body<'a>(
    body: &'a [u8],
    schema: &'static Schema,
    depth: Depth,
) -> Result<Fields<'a>, NormaliseError> {
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err(NormaliseError::InvalidJson(
            "expected a JSON object at the top level".into(),
        ));
    }
    match json::parse(body, schema, depth) {
        Ok(Json::Object(fields)) => Ok(fields),
        Ok(_) => Err(NormaliseError::InvalidJson(
            "expected a JSON object at the top level".into(),
        )),
        Err(e) => Err(NormaliseError::InvalidJson(e.to_string())),
    }
}

/// The last segment of a dotted path: the key to look up in the parent object.
fn key_of(path: &'static str) -> &'static str {
    path.rsplit('.').next().unwrap_or(path)
}

fn invalid(field: &'static str, reason: impl Into<String>) -> NormaliseError {
    NormaliseError::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// A JSON object being read; every accessor takes the full dotted path of the field, whose
/// last segment is the key (`obj.str("data.object.id")` reads key `id`).
#[derive(Clone, Copy)]
pub(crate) struct Obj<'a> {
    map: &'a Fields<'a>,
    /// The currencies amounts are resolved against (the built-in tables and the rates file).
    rates: &'a Rates,
}

impl<'a> Obj<'a> {
    /// `value` as an object, or `invalid_field` at `path`; its amounts resolve against `rates`.
    pub(crate) fn new(
        value: &'a Json<'a>,
        path: &'static str,
        rates: &'a Rates,
    ) -> Result<Self, NormaliseError> {
        value
            .as_object()
            .map(|map| Obj { map, rates })
            .ok_or_else(|| invalid(path, "expected a JSON object"))
    }

    /// `value` (an element of one of this object's arrays) as an object of the same event.
    pub(crate) fn child(
        &self,
        value: &'a Json<'a>,
        path: &'static str,
    ) -> Result<Obj<'a>, NormaliseError> {
        Obj::new(value, path, self.rates)
    }

    /// The currencies this event's amounts resolve against.
    pub(crate) fn rates(&self) -> &'a Rates {
        self.rates
    }

    /// The value at `path`; absent and `null` are the same.
    pub(crate) fn get(&self, path: &'static str) -> Option<&'a Json<'a>> {
        self.map.get(key_of(path)).filter(|v| !v.is_null())
    }

    /// The value at `path`, or `missing_field`.
    pub(crate) fn req(&self, path: &'static str) -> Result<&'a Json<'a>, NormaliseError> {
        self.get(path).ok_or(NormaliseError::MissingField(path))
    }

    /// The object at `path`, required.
    pub(crate) fn obj(&self, path: &'static str) -> Result<Obj<'a>, NormaliseError> {
        self.child(self.req(path)?, path)
    }

    /// The object at `path`, if present.
    pub(crate) fn opt_obj(&self, path: &'static str) -> Result<Option<Obj<'a>>, NormaliseError> {
        self.get(path).map(|v| self.child(v, path)).transpose()
    }

    /// The array at `path`, required.
    pub(crate) fn array(&self, path: &'static str) -> Result<&'a [Json<'a>], NormaliseError> {
        self.req(path)?
            .as_array()
            .ok_or_else(|| invalid(path, "expected a JSON array"))
    }

    /// The non-empty string at `path`, required.
    pub(crate) fn str(&self, path: &'static str) -> Result<&'a str, NormaliseError> {
        match self.opt_str(path)? {
            Some(s) => Ok(s),
            None => Err(NormaliseError::MissingField(path)),
        }
    }

    /// The string at `path`, if present and not empty.
    pub(crate) fn opt_str(&self, path: &'static str) -> Result<Option<&'a str>, NormaliseError> {
        match self.get(path) {
            None => Ok(None),
            Some(Json::Str(s)) if s.is_empty() => Ok(None),
            Some(Json::Str(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(path, "expected a string")),
        }
    }

    /// The string at `path` as an owned value, if present and not empty.
    pub(crate) fn opt_string(&self, path: &'static str) -> Result<Option<String>, NormaliseError> {
        Ok(self.opt_str(path)?.map(str::to_owned))
    }

    /// The id at `path`, required and valid (see [`valid_id`]).
    pub(crate) fn id(&self, path: &'static str) -> Result<String, NormaliseError> {
        valid_id(self.str(path)?, path)
    }

    /// The id at `path`, if present; validated when present.
    pub(crate) fn opt_id(&self, path: &'static str) -> Result<Option<String>, NormaliseError> {
        self.opt_str(path)?.map(|s| valid_id(s, path)).transpose()
    }

    /// The non-negative integer amount of minor units at `path`, required.
    pub(crate) fn minor_units(&self, path: &'static str) -> Result<i64, NormaliseError> {
        minor_units(self.req(path)?, path)
    }

    /// The non-negative integer amount of minor units at `path`, if present.
    pub(crate) fn opt_minor_units(
        &self,
        path: &'static str,
    ) -> Result<Option<i64>, NormaliseError> {
        self.get(path).map(|v| minor_units(v, path)).transpose()
    }

    /// The RFC 3339 timestamp at `path` (an object's `updated_at` / `update_time`), if present,
    /// in the same UTC millisecond form as `occurred_at`.
    pub(crate) fn opt_timestamp(
        &self,
        path: &'static str,
    ) -> Result<Option<String>, NormaliseError> {
        match self.get(path) {
            None | Some(Json::Null) => Ok(None),
            Some(value) => occurred_at_from_rfc3339(value, path).map(Some),
        }
    }

    /// The non-negative integer at `path` (Square's object `version`), if present.
    pub(crate) fn opt_version(&self, path: &'static str) -> Result<Option<i64>, NormaliseError> {
        match self.get(path) {
            None | Some(Json::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .filter(|v| *v >= 0)
                .map(Some)
                .ok_or_else(|| invalid(path, "expected a non-negative integer")),
        }
    }

    /// When present, the `object` discriminator (Stripe) must name `expected`.
    pub(crate) fn expect_kind(
        &self,
        path: &'static str,
        expected: &str,
    ) -> Result<(), NormaliseError> {
        match self.opt_str(path)? {
            Some(kind) if kind != expected => Err(invalid(
                path,
                format!("expected a `{expected}` object for this event type"),
            )),
            _ => Ok(()),
        }
    }
}

/// `value` as a non-negative integer of minor units.
fn minor_units(value: &Json<'_>, path: &'static str) -> Result<i64, NormaliseError> {
    match value.as_i64() {
        Some(amount) if amount >= 0 => Ok(amount),
        _ => Err(NormaliseError::InvalidAmount(format!(
            "`{path}` must be a non-negative integer number of minor units"
        ))),
    }
}

/// `id` if it can serve as an idempotency key and SQS message group: 1 to [`MAX_ID_LEN`]
/// printable ASCII characters without spaces.
pub(crate) fn valid_id(id: &str, path: &'static str) -> Result<String, NormaliseError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(invalid(
            path,
            format!("an id must be 1 to {MAX_ID_LEN} characters long"),
        ));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            path,
            "an id must be printable ASCII without spaces",
        ));
    }
    Ok(id.to_owned())
}

/// The envelope's event id (`evt_…`, `WH-…`, Square's `event_id`).
pub(crate) fn event_id(
    value: Option<&Json<'_>>,
    path: &'static str,
) -> Result<String, NormaliseError> {
    match value {
        None | Some(Json::Null) => Err(NormaliseError::MissingField(path)),
        Some(Json::Str(s)) => valid_id(s, path),
        Some(_) => Err(invalid(path, "expected a string")),
    }
}

/// The envelope's event type: 1 to [`MAX_EVENT_TYPE_LEN`] printable ASCII characters.
pub(crate) fn event_type(
    value: Option<&Json<'_>>,
    path: &'static str,
) -> Result<String, NormaliseError> {
    let text = match value {
        None | Some(Json::Null) => return Err(NormaliseError::MissingField(path)),
        Some(Json::Str(s)) => s,
        Some(_) => return Err(invalid(path, "expected a string")),
    };
    if text.is_empty()
        || text.len() > MAX_EVENT_TYPE_LEN
        || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid(
            path,
            format!("an event type must be 1 to {MAX_EVENT_TYPE_LEN} printable ASCII characters"),
        ));
    }
    Ok(text.to_string())
}

/// A required envelope value other than id and type (`created`, `data`, `resource`, …).
pub(crate) fn required<'a, 'b>(
    value: Option<&'a Json<'b>>,
    path: &'static str,
) -> Result<&'a Json<'b>, NormaliseError> {
    value
        .filter(|v| !v.is_null())
        .ok_or(NormaliseError::MissingField(path))
}

/// Unix seconds (Stripe `created`) as `occurred_at`.
pub(crate) fn occurred_at_from_unix(
    value: &Json<'_>,
    path: &'static str,
) -> Result<String, NormaliseError> {
    let seconds = value
        .as_i64()
        .ok_or_else(|| invalid(path, "expected an integer number of Unix seconds"))?;
    let at = OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| invalid(path, "Unix time out of range"))?;
    format_occurred_at(at, path)
}

/// An RFC 3339 timestamp with any offset (PayPal `create_time`, Square `created_at`) as
/// `occurred_at`.
pub(crate) fn occurred_at_from_rfc3339(
    value: &Json<'_>,
    path: &'static str,
) -> Result<String, NormaliseError> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(path, "expected an RFC 3339 timestamp string"))?;
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| invalid(path, "expected an RFC 3339 timestamp"))?;
    // Not `to_offset`: it panics when the UTC time falls outside the supported years.
    let utc = at
        .checked_to_offset(UtcOffset::UTC)
        .ok_or_else(|| invalid(path, "timestamp out of range"))?;
    format_occurred_at(utc, path)
}

/// `at` (in UTC) as `occurred_at`: RFC 3339 with milliseconds, the fraction cut, not rounded.
fn format_occurred_at(at: OffsetDateTime, path: &'static str) -> Result<String, NormaliseError> {
    debug_assert!(at.offset().is_utc(), "callers convert to UTC first");
    if !(0..=9999).contains(&at.year()) {
        return Err(invalid(path, "timestamp out of range"));
    }
    if at.year() >= 1970 {
        // Every webhook has one: the usual years go through the status module's hand-written
        // formatter (the same text, checked against `time`'s over the whole range), not
        // through `time`'s format description.
        let unix_ms = at.unix_timestamp() * 1000 + i64::from(at.millisecond());
        return Ok(crate::status::rfc3339_ms(unix_ms));
    }
    at.format(OCCURRED_AT_FORMAT)
        .map_err(|_| invalid(path, "timestamp out of range"))
}

/// An amount in minor units with its currency, resolved against the provider's table.
pub(crate) struct Money {
    pub(crate) amount_minor: i64,
    pub(crate) currency: String,
    exponent: u32,
}

impl Money {
    /// An integer amount already in the provider's minor units (Stripe, Square).
    pub(crate) fn from_minor(
        rates: &Rates,
        provider: Provider,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Self, NormaliseError> {
        let exponent = rates.exponent(provider, currency)?;
        Ok(Money {
            amount_minor,
            currency: currency::canonical_code(currency)?,
            exponent,
        })
    }

    /// A decimal string (PayPal `value`), converted exactly with the currency's exponent.
    pub(crate) fn from_decimal(
        rates: &Rates,
        provider: Provider,
        value: &str,
        currency: &str,
        path: &'static str,
    ) -> Result<Self, NormaliseError> {
        let exponent = rates.exponent(provider, currency)?;
        let amount_minor = currency::parse_decimal_minor(value, exponent).map_err(|e| match e {
            NormaliseError::InvalidAmount(why) => {
                NormaliseError::InvalidAmount(format!("`{path}`: {why}"))
            }
            other => other,
        })?;
        Ok(Money {
            amount_minor,
            currency: currency::canonical_code(currency)?,
            exponent,
        })
    }

    /// Square's `Money {amount, currency}` object at `path`.
    pub(crate) fn from_square_money(
        parent: &Obj<'_>,
        path: &'static str,
        amount_path: &'static str,
        currency_path: &'static str,
    ) -> Result<Self, NormaliseError> {
        let money = parent.obj(path)?;
        let amount = money.minor_units(amount_path)?;
        let currency = money.str(currency_path)?;
        Money::from_minor(parent.rates(), Provider::Square, amount, currency)
    }

    /// PayPal's `Money {currency_code, value}` object at `path`.
    pub(crate) fn from_paypal_money(
        parent: &Obj<'_>,
        path: &'static str,
        currency_path: &'static str,
        value_path: &'static str,
    ) -> Result<Self, NormaliseError> {
        let money = parent.obj(path)?;
        let currency = money.str(currency_path)?;
        let value = match money.req(value_path)? {
            Json::Str(value) => value,
            _ => {
                return Err(NormaliseError::InvalidAmount(format!(
                    "`{value_path}` must be a decimal string"
                )));
            }
        };
        Money::from_decimal(
            parent.rates(),
            Provider::Paypal,
            value,
            currency,
            value_path,
        )
    }
}

/// What the envelope says about the event, common to every provider.
pub(crate) struct Head {
    pub(crate) provider: Provider,
    pub(crate) event_id: String,
    pub(crate) event_type: String,
    pub(crate) occurred_at: String,
    pub(crate) livemode: Option<bool>,
    /// Stripe Connect `account` / Square `merchant_id`.
    pub(crate) account: Option<String>,
    pub(crate) merchant_id: Option<String>,
}

/// What the payload says about the payment.
pub(crate) struct Body {
    pub(crate) event_type: EventType,
    pub(crate) payment_id: String,
    pub(crate) object_id: Option<String>,
    pub(crate) money: Money,
    pub(crate) provider_status: Option<String>,
    pub(crate) failure_code: Option<String>,
    /// How this object's versions are ordered (see [`Ordering`]).
    pub(crate) ordering: Ordering,
}

/// What a provider says about the version of the object an event carries, so that the payment
/// state can tell a newer delivery from a stale one.
#[derive(Default)]
pub(crate) struct Ordering {
    /// The object's own update time (Square `updated_at`, PayPal `update_time`).
    pub(crate) updated_at: Option<String>,
    /// The object's version counter (Square `version`).
    pub(crate) version: Option<i64>,
    /// The cumulative refunded amount the object reports (Stripe charge `amount_refunded`).
    pub(crate) refunded_total_minor: Option<i64>,
}

/// Assembles the canonical event (`received_at` is left for the validator), with its amount
/// as an exact decimal and in the reporting currency when `rates` has a rate for it.
pub(crate) fn build(head: Head, body: Body, rates: &Rates) -> Normalised {
    let amount_reporting = rates.reporting(
        &body.money.currency,
        body.money.amount_minor,
        body.money.exponent,
    );
    Normalised::Event(Box::new(PaymentEvent {
        webhook_id: PaymentEvent::make_webhook_id(head.provider, &head.event_id),
        provider: head.provider,
        provider_event_id: head.event_id,
        provider_event_type: head.event_type,
        event_type: body.event_type,
        payment_id: body.payment_id,
        object_id: body.object_id,
        amount_minor: body.money.amount_minor,
        amount: currency::minor_to_major_f64(body.money.amount_minor, body.money.exponent),
        amount_decimal: currency::minor_to_decimal_string(
            body.money.amount_minor,
            body.money.exponent,
        ),
        amount_reporting,
        reporting_currency: amount_reporting.map(|_| rates.reporting_currency().to_owned()),
        currency: body.money.currency,
        provider_status: body.provider_status,
        failure_code: body.failure_code,
        occurred_at: head.occurred_at,
        received_at: None,
        livemode: head.livemode,
        account: head.account,
        merchant_id: head.merchant_id,
        object_updated_at: body.ordering.updated_at,
        object_version: body.ordering.version,
        refunded_total_minor: body.ordering.refunded_total_minor,
    }))
}

/// An optional string field of the envelope: absent or null is `None`, anything but a
/// non-empty string is refused.
pub(crate) fn optional_text(
    value: Option<&Json<'_>>,
    field: &'static str,
) -> Result<Option<String>, NormaliseError> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Str(text)) if !text.is_empty() => Ok(Some(text.to_string())),
        Some(_) => Err(NormaliseError::InvalidField {
            field,
            reason: "expected a non-empty string".into(),
        }),
    }
}

/// The [`Normalised::Ignored`] answer for an unsupported event type.
pub(crate) fn ignored(provider: Provider, event_id: String, event_type: String) -> Normalised {
    Normalised::Ignored {
        webhook_id: PaymentEvent::make_webhook_id(provider, &event_id),
        provider_event_id: event_id,
        provider_event_type: event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn occurred_at_is_the_text_of_times_format_description() {
        // Instants across the years 0 to 9999 with every kind of fraction (none, whole
        // milliseconds, and nanoseconds that must be cut, not rounded), both sides of 1970.
        let mut rng = payhook_testkit::rng::XorShift::new(0x2545_f491_4f6c_dd1d_u64);
        let mut next = || rng.next_u64();
        let first = OffsetDateTime::parse("0000-01-01T00:00:00Z", &Rfc3339).unwrap();
        let last = OffsetDateTime::parse("9999-12-31T23:59:59.999999999Z", &Rfc3339).unwrap();
        let span = (last - first).whole_seconds() as u64;
        let mut instants = vec![
            first,
            last,
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::UNIX_EPOCH - time::Duration::nanoseconds(1),
            OffsetDateTime::parse("2024-02-29T23:59:59.9999Z", &Rfc3339).unwrap(),
        ];
        for _ in 0..20_000 {
            let at = first + time::Duration::seconds((next() % span) as i64);
            let nanos = match next() % 3 {
                0 => 0,
                1 => (next() % 1000) as i64 * 1_000_000,
                _ => (next() % 1_000_000_000) as i64,
            };
            instants.push(at + time::Duration::nanoseconds(nanos));
        }
        for at in instants {
            assert_eq!(
                format_occurred_at(at, "created_at").unwrap(),
                at.format(OCCURRED_AT_FORMAT).unwrap(),
                "{at}"
            );
        }
    }

    /// A scalar JSON value as the sparse reader keeps it.
    fn leaf(value: Value) -> Json<'static> {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Json::PosInt(u),
                (None, Some(i)) => Json::NegInt(i),
                _ => Json::Float,
            },
            Value::String(s) => Json::Str(s.into()),
            other => panic!("not a scalar: {other}"),
        }
    }

    #[test]
    fn occurred_at_is_utc_with_milliseconds() {
        let at = |s: &str| occurred_at_from_rfc3339(&leaf(json!(s)), "t");
        assert_eq!(
            at("2018-08-15T12:13:29-07:00").as_deref(),
            Ok("2018-08-15T19:13:29.000Z")
        );
        assert_eq!(
            at("2019-02-14T21:50:07.940Z").as_deref(),
            Ok("2019-02-14T21:50:07.940Z")
        );
        assert_eq!(
            at("2019-02-14T21:50:07.123456Z").as_deref(),
            Ok("2019-02-14T21:50:07.123Z")
        );
        assert_eq!(
            occurred_at_from_unix(&leaf(json!(1735689600)), "t").as_deref(),
            Ok("2025-01-01T00:00:00.000Z")
        );
    }

    #[test]
    fn timestamps_that_leave_the_supported_range_are_errors_not_panics() {
        for s in [
            "9999-12-31T23:59:59-23:59",
            "0000-01-01T00:00:00+23:59",
            "2019-02-14T21:50:07",
            "2019-02-30T21:50:07Z",
            "",
        ] {
            let err = occurred_at_from_rfc3339(&leaf(json!(s)), "t").unwrap_err();
            assert_eq!(err.code(), "invalid_field", "{s}");
        }
        for n in [
            json!(i64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!("1735689600"),
        ] {
            let err = occurred_at_from_unix(&leaf(n.clone()), "t").unwrap_err();
            assert_eq!(err.code(), "invalid_field", "{n}");
        }
    }

    #[test]
    fn ids_are_bounded_printable_ascii() {
        assert!(valid_id("evt_1", "id").is_ok());
        assert!(valid_id(&"a".repeat(MAX_ID_LEN), "id").is_ok());
        for bad in ["", "a b", "é", "a\nb"] {
            assert!(valid_id(bad, "id").is_err(), "{bad:?}");
        }
        assert!(valid_id(&"a".repeat(MAX_ID_LEN + 1), "id").is_err());
    }

    #[test]
    fn a_json_array_is_not_an_envelope() {
        static TWO: Schema = Schema {
            keys: &[("a", json::Node::Leaf), ("b", json::Node::Leaf)],
        };
        let code = |body: &[u8]| parse_body(body, &TWO, Depth::Full).err().map(|e| e.code());
        assert_eq!(code(br#" ["x", "y"]"#), Some("invalid_json"));
        assert_eq!(code(b"1"), Some("invalid_json"));
        assert_eq!(code(b"\n {\"a\": 1}"), None);
        assert_eq!(code(br#"{"a": 1, "a": 2}"#), Some("invalid_json"));
        assert_eq!(code(br#"{"c": 1, "c": 2}"#), None);
        assert_eq!(code(br#"{"a": 1} x"#), Some("invalid_json"));
    }
}
