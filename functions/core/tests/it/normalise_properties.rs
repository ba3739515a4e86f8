//! Properties of normalisation over generated input: arbitrary bytes, arbitrary JSON and real
//! envelopes with mutated fields never panic and always give a typed result; events that come
//! out are well formed and deterministic; decimal conversion agrees with integer arithmetic.
//!
//! Run: `cargo test -p payhook-core --test it normalise_properties::` (`PROPTEST_CASES=N` for
//! more).

use std::path::Path;
use std::sync::LazyLock;

use payhook_core::currency::{minor_to_major_f64, parse_decimal_minor};
use payhook_core::normalise::{NormaliseError, Normalised, envelope, normalise};
use payhook_core::{PaymentEvent, Provider};
use payhook_testkit::conformance::{conformance_dir, workspace_root};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};

const CODES: [&str; 5] = [
    "invalid_json",
    "missing_field",
    "invalid_field",
    "invalid_amount",
    "unsupported_currency",
];

/// Every body the tests know, with its provider: the project's fixtures and, when present, the
/// shared samples.
static BODIES: LazyLock<Vec<(Provider, Value)>> = LazyLock::new(|| {
    let mut bodies = Vec::new();
    let mut load = |dir: &Path| {
        for provider in Provider::ALL {
            let Ok(entries) = std::fs::read_dir(dir.join(provider.as_str())) else {
                continue;
            };
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read(&path).expect("readable fixture");
                    let value = serde_json::from_slice(&text).expect("fixture is JSON");
                    bodies.push((provider, value));
                }
            }
        }
    };
    load(&workspace_root().join("tests/fixtures"));
    if let Some(dir) = conformance_dir() {
        load(&dir.join("samples"));
    }
    assert!(!bodies.is_empty(), "no fixtures found");
    bodies
});

/// Checks what must hold of any outcome, and returns it.
fn check(provider: Provider, body: &[u8]) -> Result<Normalised, NormaliseError> {
    let outcome = normalise(provider, body);
    match &outcome {
        Err(error) => assert!(CODES.contains(&error.code()), "{error:?}"),
        Ok(normalised) => {
            let (id, event_type) =
                envelope(provider, body).expect("envelope reads what normalise read");
            assert_eq!(id, normalised.provider_event_id());
            assert_eq!(event_type, normalised.provider_event_type());
            assert_eq!(
                normalised.webhook_id(),
                PaymentEvent::make_webhook_id(provider, &id)
            );
            if let Normalised::Event(event) = normalised {
                check_event(provider, event, body);
            }
        }
    }
    if let Err(error) = envelope(provider, body) {
        assert!(CODES.contains(&error.code()), "{error:?}");
    }
    outcome
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 120 && s.bytes().all(|b| b.is_ascii_graphic())
}

fn check_event(provider: Provider, event: &PaymentEvent, body: &[u8]) {
    assert_eq!(event.provider, provider);
    assert!(is_id(&event.provider_event_id));
    assert!(is_id(&event.payment_id), "{:?}", event.payment_id);
    if let Some(object_id) = &event.object_id {
        assert!(is_id(object_id));
    }
    assert!(event.amount_minor >= 0);
    assert!(event.amount.is_finite() && event.amount >= 0.0);
    assert_eq!(event.currency.len(), 3);
    assert!(event.currency.bytes().all(|b| b.is_ascii_uppercase()));
    assert_eq!(event.occurred_at.len(), "2025-01-01T00:00:00.000Z".len());
    assert!(event.occurred_at.ends_with('Z'));
    assert_eq!(event.received_at, None);
    if provider != Provider::Stripe {
        assert_eq!(event.livemode, None);
    }
    // Deterministic, and the bytes read back as the same event.
    let bytes = event.to_bytes();
    match normalise(provider, body) {
        Ok(Normalised::Event(again)) => assert_eq!(again.to_bytes(), bytes),
        other => panic!("second run differs: {other:?}"),
    }
    let back: PaymentEvent = serde_json::from_slice(&bytes).expect("event bytes read back");
    assert_eq!(&back, event);
}

/// Leaves that exercise the accessors: ids, amounts, currencies, timestamps, statuses.
fn interesting_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "0",
            "2.51",
            "-1",
            "1e3",
            "usd",
            "JPY",
            "XAU",
            "COMPLETED",
            "FAILED",
            "up",
            "https://api.paypal.com/v2/payments/captures/0JF852973C016714D",
            "https://api.paypal.com/v2/payments/captures/",
            "2020-02-06T21:27:30.792Z",
            "9999-12-31T23:59:59-23:59",
            "evt_1",
            "a b",
        ])
        .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "id",
            "type",
            "event_type",
            "event_id",
            "created",
            "create_time",
            "created_at",
            "livemode",
            "data",
            "object",
            "resource",
            "amount",
            "amount_received",
            "amount_refunded",
            "amount_money",
            "currency",
            "currency_code",
            "value",
            "status",
            "payment",
            "refund",
            "dispute",
            "links",
            "rel",
            "href",
            "payment_intent",
            "charge",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ];
    interesting_leaf().prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every JSON pointer inside `value` (not the root).
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        let pointer = format!("{prefix}/{key}");
        out.push(pointer.clone());
        pointers(child, pointer, out);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
}

fn apply(value: &mut Value, pointer: &str, mutation: &Mutation) {
    match mutation {
        Mutation::Replace(new) => {
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = new.clone();
            }
        }
        Mutation::Remove => {
            let Some((parent, key)) = pointer.rsplit_once('/') else {
                return;
            };
            match value.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = key.parse::<usize>()
                        && i < items.len()
                    {
                        items.remove(i);
                    }
                }
                _ => {}
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::Remove),
        3 => json_value().prop_map(Mutation::Replace),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        for provider in Provider::ALL {
            let _ = check(provider, &body);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let body = serde_json::to_vec(&value).expect("serialisable");
        for provider in Provider::ALL {
            let _ = check(provider, &body);
        }
    }

    #[test]
    fn fixtures_with_mutated_fields_never_panic_and_events_stay_well_formed(
        which in any::<Index>(),
        mutations in prop::collection::vec((any::<Index>(), mutation()), 1..4),
    ) {
        let (provider, original) = which.get(&BODIES[..]).clone();
        let mut value = original;
        for (at, change) in &mutations {
            let mut all = Vec::new();
            pointers(&value, String::new(), &mut all);
            if all.is_empty() {
                break;
            }
            let pointer: &String = at.get(&all);
            apply(&mut value, pointer, change);
        }
        let body = serde_json::to_vec(&value).expect("serialisable");
        let _ = check(provider, &body);
    }

    #[test]
    fn fixtures_under_any_event_type_give_a_typed_outcome(
        which in any::<Index>(),
        event_type in prop_oneof![
            "[ -~]{0,30}",
            prop::sample::select(vec![
                "payment_intent.succeeded", "payment_intent.payment_failed",
                "payment_intent.processing", "payment_intent.canceled", "charge.refunded",
                "charge.dispute.created", "charge.dispute.closed", "PAYMENT.CAPTURE.COMPLETED",
                "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.PENDING", "PAYMENT.CAPTURE.REFUNDED",
                "CUSTOMER.DISPUTE.CREATED", "payment.created", "payment.updated",
                "refund.created", "refund.updated", "dispute.created", "dispute.state.updated",
            ]).prop_map(str::to_owned),
        ],
    ) {
        let (provider, mut value) = which.get(&BODIES[..]).clone();
        let key = if provider == Provider::Paypal { "event_type" } else { "type" };
        value[key] = Value::String(event_type.clone());
        let body = serde_json::to_vec(&value).expect("serialisable");
        if let Ok(normalised) = check(provider, &body) {
            prop_assert_eq!(normalised.provider_event_type(), event_type.as_str());
        }
    }

    #[test]
    fn decimal_parsing_agrees_with_integer_arithmetic(
        whole in 0u64..1_000_000_000_000,
        exponent in 0u32..=4,
        fraction_digits in prop::collection::vec(0u8..10, 0..=4),
    ) {
        let fraction_digits = &fraction_digits[..fraction_digits.len().min(exponent as usize)];
        let fraction: String = fraction_digits.iter().map(|d| char::from(b'0' + d)).collect();
        let text = if fraction.is_empty() { whole.to_string() } else { format!("{whole}.{fraction}") };
        let mut expected = i128::from(whole) * 10i128.pow(exponent);
        for (i, digit) in fraction_digits.iter().enumerate() {
            expected += i128::from(*digit) * 10i128.pow(exponent - 1 - i as u32);
        }
        prop_assert_eq!(parse_decimal_minor(&text, exponent).map(i128::from), Ok(expected));
        // One fractional digit more than the exponent is always refused.
        let too_precise = format!("{whole}.{fraction}{}", "0".repeat(exponent as usize + 1 - fraction.len()));
        prop_assert!(parse_decimal_minor(&too_precise, exponent).is_err());
    }

    #[test]
    fn decimal_parsing_of_any_text_is_typed(text in "\\PC{0,30}|[0-9.+eE -]{0,30}", exponent in any::<u32>()) {
        match parse_decimal_minor(&text, exponent) {
            Ok(minor) => {
                prop_assert!(minor >= 0);
                prop_assert!(!text.is_empty());
                prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            }
            Err(error) => prop_assert_eq!(error.code(), "invalid_amount"),
        }
    }

    #[test]
    fn major_amount_is_the_correctly_rounded_quotient(
        minor in -(1i64 << 53)..(1i64 << 53),
        exponent in 0u32..=15,
    ) {
        // Both operands are exact doubles, so one IEEE division is correctly rounded too.
        let expected = minor as f64 / 10f64.powi(exponent as i32);
        prop_assert_eq!(minor_to_major_f64(minor, exponent), expected);
    }
}
