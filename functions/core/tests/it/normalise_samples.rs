//! Normalisation of provider payloads: the shared conformance samples and the project's own
//! fixtures (`tests/fixtures/`) normalise to the events asserted here, currency tables and
//! decimal conversion are exact, bytes are deterministic, unsupported types are ignored and
//! malformed payloads of supported types fail with a stable error code.
//!
//! Run: `cargo test -p payhook-core --test it normalise_samples::`. The shared samples are
//! skipped (with a note) when `../shared/conformance` is absent, and required under the test
//! command.

use std::path::{Path, PathBuf};

use payhook_core::currency::{exponent, minor_to_major_f64, parse_decimal_minor};
use payhook_core::normalise::{NormaliseError, Normalised, envelope, normalise};
use payhook_core::{EventType, PaymentEvent, Provider};
use payhook_testkit::conformance::{conformance_dir, workspace_root};
use serde_json::{Value, json};

/// What one body must normalise to.
struct Expected {
    file: &'static str,
    provider: Provider,
    event_id: &'static str,
    provider_event_type: &'static str,
    event_type: EventType,
    payment_id: &'static str,
    object_id: Option<&'static str>,
    amount_minor: i64,
    amount: f64,
    currency: &'static str,
    occurred_at: &'static str,
    provider_status: Option<&'static str>,
    failure_code: Option<&'static str>,
    livemode: Option<bool>,
}

/// Every file under `../shared/conformance/samples/`.
const SHARED_SAMPLES: &[Expected] = &[
    Expected {
        file: "stripe/payment_intent.succeeded.json",
        provider: Provider::Stripe,
        event_id: "evt_3PgafyB7WZ01zgkW0dXyvGJc",
        provider_event_type: "payment_intent.succeeded",
        event_type: EventType::PaymentSucceeded,
        payment_id: "pi_1PgafyB7WZ01zgkWSjxsAJo3",
        object_id: None,
        amount_minor: 2000,
        amount: 20.0,
        currency: "USD",
        occurred_at: "2025-01-01T00:00:00.000Z",
        provider_status: Some("succeeded"),
        failure_code: None,
        livemode: Some(false),
    },
    Expected {
        file: "stripe/payment_intent.payment_failed.json",
        provider: Provider::Stripe,
        event_id: "evt_3PgafyB7WZ01zgkW1Xq2xH3k",
        provider_event_type: "payment_intent.payment_failed",
        event_type: EventType::PaymentFailed,
        payment_id: "pi_1PgafyB7WZ01zgkWSjxsAJo3",
        object_id: None,
        amount_minor: 2000,
        amount: 20.0,
        currency: "USD",
        occurred_at: "2025-01-01T00:00:01.000Z",
        provider_status: Some("requires_payment_method"),
        failure_code: Some("insufficient_funds"),
        livemode: Some(false),
    },
    Expected {
        file: "stripe/charge.refunded.json",
        provider: Provider::Stripe,
        event_id: "evt_3PgafyB7WZ01zgkW2mC9b3aZ",
        provider_event_type: "charge.refunded",
        event_type: EventType::RefundSucceeded,
        payment_id: "pi_1PgafyB7WZ01zgkWSjxsAJo3",
        object_id: Some("ch_1PgafuB7WZ01zgkWXYmPNZs8"),
        amount_minor: 500,
        amount: 5.0,
        currency: "USD",
        occurred_at: "2025-01-01T01:00:00.000Z",
        provider_status: Some("succeeded"),
        failure_code: None,
        livemode: Some(false),
    },
    Expected {
        file: "paypal/PAYMENT.CAPTURE.COMPLETED.json",
        provider: Provider::Paypal,
        event_id: "WH-58D329510W468432D-8HN650336L201105X",
        provider_event_type: "PAYMENT.CAPTURE.COMPLETED",
        event_type: EventType::PaymentSucceeded,
        payment_id: "27M47624FP291604U",
        object_id: None,
        amount_minor: 251,
        amount: 2.51,
        currency: "USD",
        occurred_at: "2019-02-14T21:50:07.940Z",
        provider_status: Some("COMPLETED"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "paypal/PAYMENT.CAPTURE.DENIED.json",
        provider: Provider::Paypal,
        event_id: "WH-1TW85072SJ7764036-40M00902YF732543P",
        provider_event_type: "PAYMENT.CAPTURE.DENIED",
        event_type: EventType::PaymentFailed,
        payment_id: "76C42869PD241332K",
        object_id: None,
        amount_minor: 60099,
        amount: 600.99,
        currency: "MXN",
        occurred_at: "2021-03-02T02:06:09.376Z",
        provider_status: Some("DECLINED"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "paypal/PAYMENT.CAPTURE.REFUNDED.json",
        provider: Provider::Paypal,
        event_id: "WH-1GE84257G0350133W-6RW800890C634293G",
        provider_event_type: "PAYMENT.CAPTURE.REFUNDED",
        event_type: EventType::RefundSucceeded,
        payment_id: "0JF852973C016714D",
        object_id: Some("1Y107995YT783435V"),
        amount_minor: 99,
        amount: 0.99,
        currency: "USD",
        occurred_at: "2018-08-15T19:14:04.543Z",
        provider_status: Some("COMPLETED"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "square/payment.created.json",
        provider: Provider::Square,
        event_id: "13b867cf-db3d-4b1c-90b6-2f32a9d78124",
        provider_event_type: "payment.created",
        event_type: EventType::PaymentPending,
        payment_id: "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
        object_id: None,
        amount_minor: 100,
        amount: 1.0,
        currency: "USD",
        occurred_at: "2020-02-06T21:27:30.792Z",
        provider_status: Some("APPROVED"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "square/payment.updated.json",
        provider: Provider::Square,
        event_id: "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc",
        provider_event_type: "payment.updated",
        event_type: EventType::PaymentSucceeded,
        payment_id: "hYy9pRFVxpDsO1FB05SunFWUe9JZY",
        object_id: None,
        amount_minor: 100,
        amount: 1.0,
        currency: "USD",
        occurred_at: "2020-02-06T21:27:34.308Z",
        provider_status: Some("COMPLETED"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "square/refund.created.json",
        provider: Provider::Square,
        event_id: "bc316346-6691-4243-88ed-6d651a0d0c47",
        provider_event_type: "refund.created",
        event_type: EventType::RefundPending,
        payment_id: "KkAkhdMsgzn59SM8A89WgKwekxLZY",
        object_id: Some(
            "KkAkhdMsgzn59SM8A89WgKwekxLZY_ptNBVqHYxt5gAdfcobBe4u1AZsXhoz06KTtuq9Ls24P",
        ),
        amount_minor: 1000,
        amount: 10.0,
        currency: "USD",
        occurred_at: "2020-02-06T21:27:41.852Z",
        provider_status: Some("PENDING"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "square/refund.updated.json",
        provider: Provider::Square,
        event_id: "bc316346-6691-4243-88ed-6d651a0d0c47",
        provider_event_type: "refund.updated",
        event_type: EventType::RefundSucceeded,
        payment_id: "KkAkhdMsgzn59SM8A89WgKwekxLZY",
        object_id: Some(
            "KkAkhdMsgzn59SM8A89WgKwekxLZY_ptNBVqHYxt5gAdfcobBe4u1AZsXhoz06KTtuq9Ls24P",
        ),
        amount_minor: 1000,
        amount: 10.0,
        currency: "USD",
        occurred_at: "2020-02-06T22:14:16.421Z",
        provider_status: Some("COMPLETED"),
        failure_code: None,
        livemode: None,
    },
];

/// The project's own fixtures of supported types (`tests/fixtures/`).
const PROJECT_FIXTURES: &[Expected] = &[
    Expected {
        file: "stripe/payment_intent.succeeded.jpy.json",
        provider: Provider::Stripe,
        event_id: "evt_3QzJp2B7WZ01zgkW0Vb8aQmD",
        provider_event_type: "payment_intent.succeeded",
        event_type: EventType::PaymentSucceeded,
        payment_id: "pi_3QzJp2B7WZ01zgkW0kq4RkTn",
        object_id: None,
        amount_minor: 1500,
        amount: 1500.0,
        currency: "JPY",
        occurred_at: "2025-03-01T00:00:00.000Z",
        provider_status: Some("succeeded"),
        failure_code: None,
        livemode: Some(false),
    },
    Expected {
        file: "stripe/payment_intent.succeeded.kwd.json",
        provider: Provider::Stripe,
        event_id: "evt_3QzKa9B7WZ01zgkW1Cq0Zr5P",
        provider_event_type: "payment_intent.succeeded",
        event_type: EventType::PaymentSucceeded,
        payment_id: "pi_3QzKa9B7WZ01zgkW1mT7uYcE",
        object_id: None,
        amount_minor: 12340,
        amount: 12.34,
        currency: "KWD",
        occurred_at: "2025-03-01T01:00:00.000Z",
        provider_status: Some("succeeded"),
        failure_code: None,
        livemode: Some(false),
    },
    Expected {
        file: "stripe/payment_intent.succeeded.isk.json",
        provider: Provider::Stripe,
        event_id: "evt_3QzLm4B7WZ01zgkW2Hs6Yt1B",
        provider_event_type: "payment_intent.succeeded",
        event_type: EventType::PaymentSucceeded,
        payment_id: "pi_3QzLm4B7WZ01zgkW2gU5wNpR",
        object_id: None,
        amount_minor: 990000,
        amount: 9900.0,
        currency: "ISK",
        occurred_at: "2025-03-01T02:00:00.000Z",
        provider_status: Some("succeeded"),
        failure_code: None,
        livemode: Some(false),
    },
    Expected {
        file: "stripe/charge.refunded.partial.json",
        provider: Provider::Stripe,
        event_id: "evt_3QzNq8B7WZ01zgkW3yE6Ua7W",
        provider_event_type: "charge.refunded",
        event_type: EventType::RefundSucceeded,
        payment_id: "pi_3QzNq8B7WZ01zgkW3rX0Tb9H",
        object_id: Some("ch_3QzNq8B7WZ01zgkW3Fv1Lb2C"),
        amount_minor: 5000,
        amount: 50.0,
        currency: "USD",
        occurred_at: "2025-03-01T03:00:00.000Z",
        provider_status: Some("succeeded"),
        failure_code: None,
        livemode: Some(false),
    },
    Expected {
        file: "stripe/charge.dispute.created.json",
        provider: Provider::Stripe,
        event_id: "evt_1QzPr4B7WZ01zgkW4Ab7Nq2X",
        provider_event_type: "charge.dispute.created",
        event_type: EventType::DisputeOpened,
        payment_id: "pi_3QzOw5B7WZ01zgkW4cJ3Hs6F",
        object_id: Some("dp_1QzPr3B7WZ01zgkW4uN8cR5e"),
        amount_minor: 4500,
        amount: 45.0,
        currency: "USD",
        occurred_at: "2025-03-01T04:00:01.000Z",
        provider_status: Some("needs_response"),
        failure_code: None,
        livemode: Some(false),
    },
    Expected {
        file: "paypal/CUSTOMER.DISPUTE.CREATED.json",
        provider: Provider::Paypal,
        event_id: "WH-4M0448861G563140B-9EX36365822141321",
        provider_event_type: "CUSTOMER.DISPUTE.CREATED",
        event_type: EventType::DisputeOpened,
        payment_id: "6T496768GW863311H",
        object_id: Some("PP-000-042-663-135"),
        amount_minor: 300,
        amount: 3.0,
        currency: "USD",
        occurred_at: "2018-06-21T13:36:33.000Z",
        provider_status: Some("OPEN"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "paypal/PAYMENT.CAPTURE.PENDING.json",
        provider: Provider::Paypal,
        event_id: "WH-9Y180613C5171350R-3A568107UP261041K",
        provider_event_type: "PAYMENT.CAPTURE.PENDING",
        event_type: EventType::PaymentPending,
        payment_id: "02T21492PP3782704",
        object_id: None,
        amount_minor: 251,
        amount: 2.51,
        currency: "USD",
        occurred_at: "2018-08-15T20:03:06.086Z",
        provider_status: Some("PENDING"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "paypal/PAYMENT.CAPTURE.COMPLETED.jpy.json",
        provider: Provider::Paypal,
        event_id: "WH-7KX21904LM3380457-2RT55871JH6620318",
        provider_event_type: "PAYMENT.CAPTURE.COMPLETED",
        event_type: EventType::PaymentSucceeded,
        payment_id: "3HV62815WK9904127",
        object_id: None,
        amount_minor: 1500,
        amount: 1500.0,
        currency: "JPY",
        occurred_at: "2025-03-01T09:15:42.518Z",
        provider_status: Some("COMPLETED"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "square/payment.updated.eur.json",
        provider: Provider::Square,
        event_id: "c3e9a1f4-7b2d-4e68-9a15-5d0f8b6c2e71",
        provider_event_type: "payment.updated",
        event_type: EventType::PaymentSucceeded,
        payment_id: "R2kVq8mWz6YtPb3Hn1Lc9xJdG4fZY",
        object_id: None,
        amount_minor: 4250,
        amount: 42.5,
        currency: "EUR",
        occurred_at: "2025-03-02T10:04:17.512Z",
        provider_status: Some("COMPLETED"),
        failure_code: None,
        livemode: None,
    },
    Expected {
        file: "square/dispute.created.json",
        provider: Provider::Square,
        event_id: "2b4d6c4a-91e3-4f0d-8c57-3e1a9b7f2d60",
        provider_event_type: "dispute.created",
        event_type: EventType::DisputeOpened,
        payment_id: "fbmsaEOpoARDKxiSGH1fqPuqoqFZY",
        object_id: Some("ORSEVtZAJxb37RA1EiGw"),
        amount_minor: 8801,
        amount: 88.01,
        currency: "USD",
        occurred_at: "2020-02-19T21:24:53.258Z",
        provider_status: Some("EVIDENCE_REQUIRED"),
        failure_code: None,
        livemode: None,
    },
];

/// The project's fixtures of event types payhook does not process: (file, event id, type).
const IGNORED_FIXTURES: &[(&str, Provider, &str, &str)] = &[
    (
        "stripe/customer.created.json",
        Provider::Stripe,
        "evt_1QzMv1B7WZ01zgkWsR4kE9bT",
        "customer.created",
    ),
    (
        "paypal/CHECKOUT.ORDER.APPROVED.json",
        Provider::Paypal,
        "WH-COC11055RA711503B-4YM959094A144403T",
        "CHECKOUT.ORDER.APPROVED",
    ),
    (
        "square/order.created.json",
        Provider::Square,
        "116038d3-2948-439f-8679-fc86dbf80f69",
        "order.created",
    ),
];

// ---------------------------------------------------------------------------------------------
// Helpers

fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests/fixtures")
}

fn samples_dir() -> Option<PathBuf> {
    conformance_dir().map(|dir| dir.join("samples"))
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    let path = dir.join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn fixture(file: &str) -> Vec<u8> {
    read(&fixtures_dir(), file)
}

/// The body with `change` applied to its JSON.
fn mutated(body: &[u8], change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(body).expect("fixture is JSON");
    change(&mut value);
    serde_json::to_vec(&value).expect("serialisable")
}

/// The value at a JSON pointer of a fixture (which must exist).
fn at<'a>(value: &'a mut Value, pointer: &str) -> &'a mut Value {
    value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("fixture has no {pointer}"))
}

/// Removes the key at a JSON pointer.
fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let removed = at(value, parent)
        .as_object_mut()
        .and_then(|object| object.remove(key));
    assert!(removed.is_some(), "fixture has no {pointer}");
}

fn event(provider: Provider, body: &[u8]) -> PaymentEvent {
    match normalise(provider, body) {
        Ok(Normalised::Event(event)) => *event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn error(provider: Provider, body: &[u8]) -> NormaliseError {
    match normalise(provider, body) {
        Err(error) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn assert_expected(expected: &Expected, body: &[u8]) {
    let file = expected.file;
    let event = event(expected.provider, body);
    let webhook_id = format!("{}:{}", expected.provider.as_str(), expected.event_id);
    assert_eq!(event.webhook_id, webhook_id, "{file}");
    assert_eq!(event.provider, expected.provider, "{file}");
    assert_eq!(event.provider_event_id, expected.event_id, "{file}");
    assert_eq!(
        event.provider_event_type, expected.provider_event_type,
        "{file}"
    );
    assert_eq!(event.event_type, expected.event_type, "{file}");
    assert_eq!(event.payment_id, expected.payment_id, "{file}");
    assert_eq!(event.object_id.as_deref(), expected.object_id, "{file}");
    assert_eq!(event.amount_minor, expected.amount_minor, "{file}");
    assert_eq!(event.amount, expected.amount, "{file}");
    assert_eq!(event.currency, expected.currency, "{file}");
    assert_eq!(event.occurred_at, expected.occurred_at, "{file}");
    assert_eq!(
        event.provider_status.as_deref(),
        expected.provider_status,
        "{file}"
    );
    assert_eq!(
        event.failure_code.as_deref(),
        expected.failure_code,
        "{file}"
    );
    assert_eq!(event.livemode, expected.livemode, "{file}");
    assert_eq!(
        event.received_at, None,
        "{file}: the validator fixes received_at"
    );
}

/// Every `*.json` under `dir/<provider>/`, as `<provider>/<name>`.
fn json_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for provider in Provider::ALL {
        let Ok(entries) = std::fs::read_dir(dir.join(provider.as_str())) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                files.push(format!("{}/{name}", provider.as_str()));
            }
        }
    }
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------------
// Samples and fixtures

#[test]
fn every_shared_sample_normalises_to_its_expected_event() {
    let Some(samples) = samples_dir() else { return };
    for expected in SHARED_SAMPLES {
        assert_expected(expected, &read(&samples, expected.file));
    }
    let covered: Vec<&str> = SHARED_SAMPLES.iter().map(|e| e.file).collect();
    for file in json_files(&samples) {
        assert!(
            covered.contains(&file.as_str()),
            "shared sample {file} has no expected event here"
        );
    }
}

#[test]
fn every_project_fixture_normalises_to_its_expected_event() {
    for expected in PROJECT_FIXTURES {
        assert_expected(expected, &fixture(expected.file));
    }
    let covered: Vec<&str> = PROJECT_FIXTURES
        .iter()
        .map(|e| e.file)
        .chain(IGNORED_FIXTURES.iter().map(|(file, ..)| *file))
        .collect();
    let files = json_files(&fixtures_dir());
    assert!(!files.is_empty(), "no fixtures found");
    for file in files {
        assert!(
            covered.contains(&file.as_str()),
            "fixture {file} has no expected outcome here"
        );
    }
}

#[test]
fn unsupported_event_types_are_ignored_not_refused() {
    for (file, provider, event_id, event_type) in IGNORED_FIXTURES {
        let outcome = normalise(*provider, &fixture(file)).expect("ignored, not an error");
        assert_eq!(
            outcome,
            Normalised::Ignored {
                webhook_id: format!("{provider}:{event_id}"),
                provider_event_id: (*event_id).to_owned(),
                provider_event_type: (*event_type).to_owned(),
            },
            "{file}"
        );
        assert_eq!(outcome.webhook_id(), format!("{provider}:{event_id}"));
        assert_eq!(outcome.event(), None);
    }
}

#[test]
fn unsupported_types_are_ignored_even_when_their_payload_would_be_malformed() {
    let body = mutated(&fixture("stripe/customer.created.json"), |v| {
        *at(v, "/data") = json!("not an object");
        remove(v, "/created");
    });
    let outcome = normalise(Provider::Stripe, &body).expect("ignored");
    assert_eq!(outcome.provider_event_type(), "customer.created");
}

#[test]
fn envelope_reads_the_same_id_and_type_as_normalise() {
    let mut bodies: Vec<(Provider, Vec<u8>)> = PROJECT_FIXTURES
        .iter()
        .map(|e| (e.provider, fixture(e.file)))
        .chain(IGNORED_FIXTURES.iter().map(|(f, p, ..)| (*p, fixture(f))))
        .collect();
    if let Some(samples) = samples_dir() {
        bodies.extend(
            SHARED_SAMPLES
                .iter()
                .map(|e| (e.provider, read(&samples, e.file))),
        );
    }
    for (provider, body) in bodies {
        let outcome = normalise(provider, &body).expect("fixture normalises");
        let (id, event_type) = envelope(provider, &body).expect("envelope reads");
        assert_eq!(id, outcome.provider_event_id());
        assert_eq!(event_type, outcome.provider_event_type());
    }
}

#[test]
fn envelope_reads_id_and_type_even_when_the_payload_is_malformed() {
    let body = mutated(&fixture("stripe/charge.dispute.created.json"), |v| {
        remove(v, "/data");
    });
    assert_eq!(
        error(Provider::Stripe, &body).code(),
        "missing_field",
        "normalise refuses it"
    );
    assert_eq!(
        envelope(Provider::Stripe, &body),
        Ok((
            "evt_1QzPr4B7WZ01zgkW4Ab7Nq2X".to_owned(),
            "charge.dispute.created".to_owned()
        ))
    );
    let no_id = mutated(&fixture("square/dispute.created.json"), |v| {
        remove(v, "/event_id")
    });
    assert_eq!(
        envelope(Provider::Square, &no_id),
        Err(NormaliseError::MissingField("event_id"))
    );
}

// ---------------------------------------------------------------------------------------------
// Determinism

#[test]
fn the_same_body_always_serialises_to_the_same_bytes() {
    for expected in PROJECT_FIXTURES {
        let body = fixture(expected.file);
        let first = event(expected.provider, &body).to_bytes();
        let second = event(expected.provider, &body).to_bytes();
        assert_eq!(first, second, "{}", expected.file);
        let text = String::from_utf8(first).expect("UTF-8");
        assert!(text.starts_with("{\"webhook_id\":"), "{text}");
        assert!(!text.contains("received_at"), "{text}");
        let back: PaymentEvent = serde_json::from_str(&text).expect("round trip");
        assert_eq!(back, event(expected.provider, &body));
    }
}

#[test]
fn key_order_and_whitespace_of_the_body_do_not_change_the_bytes() {
    let body = fixture("stripe/charge.refunded.partial.json");
    // serde_json's default map sorts keys, so this re-serialisation reorders and compacts.
    let compact = mutated(&body, |_| {});
    assert_ne!(body, compact);
    assert_eq!(
        event(Provider::Stripe, &body).to_bytes(),
        event(Provider::Stripe, &compact).to_bytes()
    );
}

// ---------------------------------------------------------------------------------------------
// Stripe

#[test]
fn stripe_refund_amount_is_this_refund_not_the_cumulative_total() {
    let body = fixture("stripe/charge.refunded.partial.json");
    assert_eq!(event(Provider::Stripe, &body).amount_minor, 7500 - 2500);

    // Without the previous value, the only amount known is the cumulative one.
    let no_previous = mutated(&body, |v| remove(v, "/data/previous_attributes"));
    assert_eq!(event(Provider::Stripe, &no_previous).amount_minor, 7500);
    let previous_without_amount = mutated(&body, |v| {
        *at(v, "/data/previous_attributes") = json!({"refunded": false});
    });
    assert_eq!(
        event(Provider::Stripe, &previous_without_amount).amount_minor,
        7500
    );

    let shrinking = mutated(&body, |v| {
        *at(v, "/data/previous_attributes/amount_refunded") = json!(9000);
    });
    assert_eq!(error(Provider::Stripe, &shrinking).code(), "invalid_amount");
}

#[test]
fn stripe_refund_of_a_charge_without_payment_intent_is_grouped_by_the_charge() {
    let body = mutated(&fixture("stripe/charge.refunded.partial.json"), |v| {
        *at(v, "/data/object/payment_intent") = Value::Null;
    });
    let event = event(Provider::Stripe, &body);
    assert_eq!(event.payment_id, "ch_3QzNq8B7WZ01zgkW3Fv1Lb2C");
    assert_eq!(
        event.object_id.as_deref(),
        Some("ch_3QzNq8B7WZ01zgkW3Fv1Lb2C")
    );
}

#[test]
fn stripe_dispute_without_payment_intent_is_grouped_by_the_charge() {
    let body = mutated(&fixture("stripe/charge.dispute.created.json"), |v| {
        *at(v, "/data/object/payment_intent") = Value::Null;
    });
    assert_eq!(
        event(Provider::Stripe, &body).payment_id,
        "ch_3QzOw5B7WZ01zgkW4Lx7Pd1N"
    );
}

#[test]
fn stripe_dispute_lifecycle_types_map_to_dispute_events() {
    for (stripe_type, status, expected) in [
        (
            "charge.dispute.updated",
            "under_review",
            EventType::DisputeUpdated,
        ),
        ("charge.dispute.closed", "lost", EventType::DisputeClosed),
    ] {
        let body = mutated(&fixture("stripe/charge.dispute.created.json"), |v| {
            *at(v, "/type") = json!(stripe_type);
            *at(v, "/data/object/status") = json!(status);
        });
        let event = event(Provider::Stripe, &body);
        assert_eq!(event.event_type, expected, "{stripe_type}");
        assert_eq!(event.provider_status.as_deref(), Some(status));
    }
}

#[test]
fn stripe_payment_intent_types_map_by_event_type() {
    for (stripe_type, status, expected) in [
        (
            "payment_intent.processing",
            "processing",
            EventType::PaymentPending,
        ),
        (
            "payment_intent.canceled",
            "canceled",
            EventType::PaymentCanceled,
        ),
    ] {
        let body = mutated(&fixture("stripe/payment_intent.succeeded.jpy.json"), |v| {
            *at(v, "/type") = json!(stripe_type);
            *at(v, "/data/object/status") = json!(status);
            *at(v, "/data/object/amount_received") = json!(0);
        });
        let event = event(Provider::Stripe, &body);
        assert_eq!(event.event_type, expected, "{stripe_type}");
        // Not captured: the amount is the one attempted.
        assert_eq!(event.amount_minor, 1500, "{stripe_type}");
    }
}

#[test]
fn stripe_failure_code_falls_back_from_decline_code_to_code() {
    let Some(samples) = samples_dir() else { return };
    let body = mutated(
        &read(&samples, "stripe/payment_intent.payment_failed.json"),
        |v| *at(v, "/data/object/last_payment_error/decline_code") = Value::Null,
    );
    assert_eq!(
        event(Provider::Stripe, &body).failure_code.as_deref(),
        Some("card_declined")
    );
    let no_error = mutated(
        &read(&samples, "stripe/payment_intent.payment_failed.json"),
        |v| *at(v, "/data/object/last_payment_error") = Value::Null,
    );
    assert_eq!(event(Provider::Stripe, &no_error).failure_code, None);
}

#[test]
fn stripe_livemode_is_carried_when_present() {
    let live = mutated(&fixture("stripe/payment_intent.succeeded.kwd.json"), |v| {
        *at(v, "/livemode") = json!(true);
    });
    assert_eq!(event(Provider::Stripe, &live).livemode, Some(true));
    let absent = mutated(&fixture("stripe/payment_intent.succeeded.kwd.json"), |v| {
        remove(v, "/livemode")
    });
    assert_eq!(event(Provider::Stripe, &absent).livemode, None);
}

#[test]
fn stripe_connect_account_and_square_merchant_are_carried() {
    let connected = mutated(&fixture("stripe/payment_intent.succeeded.kwd.json"), |v| {
        v["account"] = json!("acct_1Nv0FGQ9RKHgCVdK");
    });
    let event_of = |body: &[u8], provider| event(provider, body);
    let stripe = event_of(&connected, Provider::Stripe);
    assert_eq!(stripe.account.as_deref(), Some("acct_1Nv0FGQ9RKHgCVdK"));
    assert_eq!(stripe.merchant_id, None);
    let platform = event_of(
        &fixture("stripe/payment_intent.succeeded.kwd.json"),
        Provider::Stripe,
    );
    assert_eq!(platform.account, None);

    let square = event_of(&fixture("square/dispute.created.json"), Provider::Square);
    assert_eq!(square.merchant_id.as_deref(), Some("0HPGX5JYE6EE1"));
    assert_eq!(square.account, None);
    let bytes = String::from_utf8(square.to_bytes()).unwrap();
    assert!(
        bytes.contains(r#""merchant_id":"0HPGX5JYE6EE1""#),
        "{bytes}"
    );

    let bad = mutated(&fixture("square/dispute.created.json"), |v| {
        v["merchant_id"] = json!(42);
    });
    let err = payhook_core::normalise::normalise(Provider::Square, &bad).unwrap_err();
    assert_eq!(err.code(), "invalid_field");
}

// ---------------------------------------------------------------------------------------------
// PayPal

#[test]
fn paypal_refund_names_the_capture_only_through_the_up_link() {
    let Some(samples) = samples_dir() else { return };
    let body = read(&samples, "paypal/PAYMENT.CAPTURE.REFUNDED.json");
    let refund = event(Provider::Paypal, &body);
    assert_eq!(refund.payment_id, "0JF852973C016714D");
    assert_eq!(refund.object_id.as_deref(), Some("1Y107995YT783435V"));

    let no_up = mutated(&body, |v| {
        at(v, "/resource/links")
            .as_array_mut()
            .expect("links")
            .retain(|link| link["rel"] != "up");
    });
    assert_eq!(
        error(Provider::Paypal, &no_up),
        NormaliseError::MissingField("resource.links[rel=up]")
    );

    let up_to_an_order = mutated(&body, |v| {
        *at(v, "/resource/links/1/href") =
            json!("https://api.paypal.com/v2/checkout/orders/5O190127TN364715T");
    });
    assert_eq!(
        error(Provider::Paypal, &up_to_an_order).code(),
        "invalid_field"
    );

    let trailing_slash = mutated(&body, |v| {
        *at(v, "/resource/links/1/href") =
            json!("https://api.paypal.com/v2/payments/captures/0JF852973C016714D/");
    });
    assert_eq!(
        event(Provider::Paypal, &trailing_slash).payment_id,
        "0JF852973C016714D"
    );
}

#[test]
fn paypal_dispute_lifecycle_types_map_to_dispute_events() {
    for (paypal_type, expected) in [
        ("CUSTOMER.DISPUTE.UPDATED", EventType::DisputeUpdated),
        ("CUSTOMER.DISPUTE.RESOLVED", EventType::DisputeClosed),
    ] {
        let body = mutated(&fixture("paypal/CUSTOMER.DISPUTE.CREATED.json"), |v| {
            *at(v, "/event_type") = json!(paypal_type);
        });
        assert_eq!(event(Provider::Paypal, &body).event_type, expected);
    }
    let no_transactions = mutated(&fixture("paypal/CUSTOMER.DISPUTE.CREATED.json"), |v| {
        *at(v, "/resource/disputed_transactions") = json!([]);
    });
    assert_eq!(
        error(Provider::Paypal, &no_transactions).code(),
        "missing_field"
    );
}

#[test]
fn paypal_amounts_are_decimal_strings_converted_exactly() {
    let body = fixture("paypal/PAYMENT.CAPTURE.PENDING.json");
    let cases = [
        (json!("2.5"), json!("USD"), Ok(250)),
        (json!("0.07"), json!("usd"), Ok(7)),
        (json!("12.345"), json!("KWD"), Ok(12345)),
        (json!("2.515"), json!("USD"), Err("invalid_amount")),
        (json!("1500.5"), json!("JPY"), Err("invalid_amount")),
        (json!("-2.51"), json!("USD"), Err("invalid_amount")),
        (json!("2.51e0"), json!("USD"), Err("invalid_amount")),
        (json!(2.51), json!("USD"), Err("invalid_amount")),
        (json!("2.51"), json!("XYZ"), Err("unsupported_currency")),
        (json!("2.51"), json!(840), Err("invalid_field")),
    ];
    for (value, currency, expected) in cases {
        let changed = mutated(&body, |v| {
            *at(v, "/resource/amount/value") = value.clone();
            *at(v, "/resource/amount/currency_code") = currency.clone();
        });
        let outcome = normalise(Provider::Paypal, &changed);
        let got = match &outcome {
            Ok(Normalised::Event(event)) => Ok(event.amount_minor),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => Err(e.code()),
        };
        assert_eq!(got, expected, "{value} {currency}");
        if let Ok(Normalised::Event(event)) = outcome {
            assert_eq!(
                event.currency,
                currency.as_str().map(str::to_uppercase).unwrap()
            );
        }
    }
}

#[test]
fn paypal_pending_capture_is_pending_and_denied_carries_its_reason() {
    let body = fixture("paypal/PAYMENT.CAPTURE.PENDING.json");
    // The reason of a pending capture is not a failure.
    assert_eq!(event(Provider::Paypal, &body).failure_code, None);
    let denied = mutated(&body, |v| {
        *at(v, "/event_type") = json!("PAYMENT.CAPTURE.DENIED");
        *at(v, "/resource/status") = json!("DECLINED");
        *at(v, "/resource/status_details/reason") = json!("BUYER_COMPLAINT");
    });
    let event = event(Provider::Paypal, &denied);
    assert_eq!(event.event_type, EventType::PaymentFailed);
    assert_eq!(event.failure_code.as_deref(), Some("BUYER_COMPLAINT"));
}

// ---------------------------------------------------------------------------------------------
// Square

#[test]
fn square_payment_status_decides_the_event_type() {
    let Some(samples) = samples_dir() else { return };
    let body = read(&samples, "square/payment.updated.json");
    for (status, expected) in [
        ("COMPLETED", EventType::PaymentSucceeded),
        ("APPROVED", EventType::PaymentPending),
        ("PENDING", EventType::PaymentPending),
        ("CANCELED", EventType::PaymentCanceled),
        ("FAILED", EventType::PaymentFailed),
    ] {
        let changed = mutated(&body, |v| {
            *at(v, "/data/object/payment/status") = json!(status);
        });
        let event = event(Provider::Square, &changed);
        assert_eq!(event.event_type, expected, "{status}");
        assert_eq!(event.provider_status.as_deref(), Some(status));
    }
    let unknown = mutated(&body, |v| {
        *at(v, "/data/object/payment/status") = json!("TELEPORTED");
    });
    assert_eq!(
        error(Provider::Square, &unknown),
        NormaliseError::InvalidField {
            field: "data.object.payment.status",
            reason: "unknown status `TELEPORTED`".into()
        }
    );
}

#[test]
fn square_failed_card_payment_carries_the_card_error_code() {
    let Some(samples) = samples_dir() else { return };
    let body = mutated(&read(&samples, "square/payment.updated.json"), |v| {
        *at(v, "/data/object/payment/status") = json!("FAILED");
        *at(v, "/data/object/payment/card_details/status") = json!("FAILED");
        at(v, "/data/object/payment/card_details")
            .as_object_mut()
            .expect("card details")
            .insert(
                "errors".into(),
                json!([{"category": "PAYMENT_METHOD_ERROR", "code": "CVV_FAILURE", "detail": "Card verification code check failed."}]),
            );
    });
    assert_eq!(
        event(Provider::Square, &body).failure_code.as_deref(),
        Some("CVV_FAILURE")
    );
}

#[test]
fn square_refund_status_decides_the_event_type() {
    let Some(samples) = samples_dir() else { return };
    let body = read(&samples, "square/refund.updated.json");
    for (status, expected) in [
        ("PENDING", EventType::RefundPending),
        ("COMPLETED", EventType::RefundSucceeded),
        ("REJECTED", EventType::RefundFailed),
        ("FAILED", EventType::RefundFailed),
    ] {
        let changed = mutated(&body, |v| {
            *at(v, "/data/object/refund/status") = json!(status);
        });
        assert_eq!(event(Provider::Square, &changed).event_type, expected);
    }
}

#[test]
fn square_dispute_state_changes_close_on_final_states() {
    let body = fixture("square/dispute.created.json");
    for (state, expected) in [
        ("PROCESSING", EventType::DisputeUpdated),
        ("WON", EventType::DisputeClosed),
        ("LOST", EventType::DisputeClosed),
        ("ACCEPTED", EventType::DisputeClosed),
    ] {
        let changed = mutated(&body, |v| {
            *at(v, "/type") = json!("dispute.state.updated");
            *at(v, "/data/object/dispute/state") = json!(state);
        });
        assert_eq!(event(Provider::Square, &changed).event_type, expected);
    }
}

#[test]
fn square_amounts_are_iso_minor_units() {
    let body = mutated(&fixture("square/dispute.created.json"), |v| {
        *at(v, "/data/object/dispute/amount_money") = json!({"amount": 8801, "currency": "JPY"});
    });
    let event = event(Provider::Square, &body);
    assert_eq!((event.amount_minor, event.amount), (8801, 8801.0));
}

#[test]
fn square_created_at_with_an_offset_becomes_utc() {
    let body = mutated(&fixture("square/dispute.created.json"), |v| {
        *at(v, "/created_at") = json!("2020-02-19T13:24:53.258-08:00");
    });
    assert_eq!(
        event(Provider::Square, &body).occurred_at,
        "2020-02-19T21:24:53.258Z"
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed bodies

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table of malformed payloads, one row per case, checked by one loop"
)]
fn malformed_payloads_of_supported_types_fail_with_a_stable_code() {
    type Change = fn(&mut Value);
    let cases: &[(Provider, &str, Change, NormaliseError)] = &[
        (
            Provider::Stripe,
            "stripe/charge.dispute.created.json",
            |v| remove(v, "/data/object/amount"),
            NormaliseError::MissingField("data.object.amount"),
        ),
        (
            Provider::Stripe,
            "stripe/charge.dispute.created.json",
            |v| *at(v, "/data/object/amount") = json!("4500"),
            NormaliseError::InvalidAmount(
                "`data.object.amount` must be a non-negative integer number of minor units".into(),
            ),
        ),
        (
            Provider::Stripe,
            "stripe/payment_intent.succeeded.jpy.json",
            |v| *at(v, "/data/object/amount_received") = json!(-1500),
            NormaliseError::InvalidAmount(
                "`data.object.amount_received` must be a non-negative integer number of minor units"
                    .into(),
            ),
        ),
        (
            Provider::Stripe,
            "stripe/payment_intent.succeeded.jpy.json",
            |v| *at(v, "/data/object/amount_received") = json!(1500.5),
            NormaliseError::InvalidAmount(
                "`data.object.amount_received` must be a non-negative integer number of minor units"
                    .into(),
            ),
        ),
        (
            Provider::Stripe,
            "stripe/payment_intent.succeeded.jpy.json",
            |v| *at(v, "/data/object/currency") = json!("yen"),
            NormaliseError::UnsupportedCurrency("yen".into()),
        ),
        (
            Provider::Stripe,
            "stripe/payment_intent.succeeded.jpy.json",
            |v| *at(v, "/data/object/object") = json!("charge"),
            NormaliseError::InvalidField {
                field: "data.object.object",
                reason: "expected a `payment_intent` object for this event type".into(),
            },
        ),
        (
            Provider::Stripe,
            "stripe/payment_intent.succeeded.jpy.json",
            |v| *at(v, "/created") = json!("2025-03-01"),
            NormaliseError::InvalidField {
                field: "created",
                reason: "expected an integer number of Unix seconds".into(),
            },
        ),
        (
            Provider::Stripe,
            "stripe/payment_intent.succeeded.jpy.json",
            |v| *at(v, "/data/object/id") = json!("pi with spaces"),
            NormaliseError::InvalidField {
                field: "data.object.id",
                reason: "an id must be printable ASCII without spaces".into(),
            },
        ),
        (
            Provider::Stripe,
            "stripe/payment_intent.succeeded.jpy.json",
            |v| *at(v, "/livemode") = json!("false"),
            NormaliseError::InvalidField {
                field: "livemode",
                reason: "expected true or false".into(),
            },
        ),
        (
            Provider::Stripe,
            "stripe/charge.refunded.partial.json",
            |v| *at(v, "/data/object") = json!([]),
            NormaliseError::InvalidField {
                field: "data.object",
                reason: "expected a JSON object".into(),
            },
        ),
        (
            Provider::Paypal,
            "paypal/CUSTOMER.DISPUTE.CREATED.json",
            |v| remove(v, "/resource/dispute_amount"),
            NormaliseError::MissingField("resource.dispute_amount"),
        ),
        (
            Provider::Paypal,
            "paypal/PAYMENT.CAPTURE.PENDING.json",
            |v| *at(v, "/create_time") = json!("yesterday"),
            NormaliseError::InvalidField {
                field: "create_time",
                reason: "expected an RFC 3339 timestamp".into(),
            },
        ),
        (
            Provider::Paypal,
            "paypal/PAYMENT.CAPTURE.PENDING.json",
            |v| *at(v, "/id") = json!(42),
            NormaliseError::InvalidField {
                field: "id",
                reason: "expected a string".into(),
            },
        ),
        (
            Provider::Square,
            "square/dispute.created.json",
            |v| remove(v, "/data/object/dispute/disputed_payment"),
            NormaliseError::MissingField("data.object.dispute.disputed_payment"),
        ),
        (
            Provider::Square,
            "square/dispute.created.json",
            |v| *at(v, "/data/object/dispute/amount_money/currency") = json!("XAU"),
            NormaliseError::UnsupportedCurrency("XAU".into()),
        ),
        (
            Provider::Square,
            "square/dispute.created.json",
            |v| remove(v, "/type"),
            NormaliseError::MissingField("type"),
        ),
    ];
    for (provider, file, change, expected) in cases {
        let body = mutated(&fixture(file), *change);
        let got = error(*provider, &body);
        assert_eq!(&got, expected, "{file}");
        assert_eq!(got.http_status(), 400);
    }
}

#[test]
fn bodies_that_are_not_a_json_object_are_invalid_json() {
    let bodies: &[&[u8]] = &[
        b"",
        b"   ",
        b"not json",
        b"[\"evt_1\", \"payment_intent.succeeded\"]",
        b"\"evt_1\"",
        b"{\"id\": \"evt_1\"",
        // A repeated envelope key is ambiguous: refused, whichever provider's keys these are.
        br#"{"id": "a", "id": "b", "event_id": "a", "event_id": "b", "type": "x", "event_type": "x"}"#,
        br#"{"type": "x", "type": "y", "event_type": "x", "event_type": "y", "id": "a", "event_id": "a"}"#,
        b"\xff\xfe{}",
    ];
    for provider in Provider::ALL {
        for body in bodies {
            let got = normalise(provider, body).map(|_| ()).map_err(|e| e.code());
            assert_eq!(
                got,
                Err("invalid_json"),
                "{provider} {}",
                String::from_utf8_lossy(body)
            );
            let got = envelope(provider, body).map(|_| ()).map_err(|e| e.code());
            assert_eq!(
                got,
                Err("invalid_json"),
                "{provider} {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

#[test]
fn deeply_nested_bodies_do_not_exhaust_the_stack() {
    let depth = 100_000;
    for provider in Provider::ALL {
        for key in ["data", "resource", "other"] {
            let body = format!(
                r#"{{"id":"a","event_id":"a","type":"t","event_type":"t","{key}":{}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            // The type is unsupported: nesting under a key the provider does not read may be
            // skipped; under one it reads, it hits serde_json's depth limit.
            for outcome in [
                normalise(provider, body.as_bytes()).map(|n| n.provider_event_type().to_owned()),
                envelope(provider, body.as_bytes()).map(|(_, t)| t),
            ] {
                match outcome {
                    Ok(event_type) => assert_eq!(event_type, "t"),
                    Err(error) => assert_eq!(error.code(), "invalid_json", "{provider} {key}"),
                }
            }
        }
    }
}

#[test]
fn error_codes_are_stable() {
    let cases = [
        (NormaliseError::InvalidJson("x".into()), "invalid_json"),
        (NormaliseError::MissingField("id"), "missing_field"),
        (
            NormaliseError::InvalidField {
                field: "id",
                reason: "x".into(),
            },
            "invalid_field",
        ),
        (NormaliseError::InvalidAmount("x".into()), "invalid_amount"),
        (
            NormaliseError::UnsupportedCurrency("x".into()),
            "unsupported_currency",
        ),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code);
        assert_eq!(error.http_status(), 400);
        assert!(!error.to_string().is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Currencies and decimals

#[test]
fn stripe_uses_its_own_exponent_table_and_square_and_paypal_use_iso_4217() {
    let cases = [
        // (code, Stripe, ISO)
        ("JPY", Some(0), Some(0)),
        ("jpy", Some(0), Some(0)),
        ("KRW", Some(0), Some(0)),
        ("XOF", Some(0), Some(0)),
        ("KWD", Some(3), Some(3)),
        ("BHD", Some(3), Some(3)),
        ("TND", Some(3), Some(3)),
        ("ISK", Some(2), Some(0)),
        ("MGA", Some(0), Some(2)),
        ("HUF", Some(2), Some(2)),
        ("TWD", Some(2), Some(2)),
        ("USD", Some(2), Some(2)),
        ("eur", Some(2), Some(2)),
        ("IQD", None, Some(3)),
        ("LYD", None, Some(3)),
        ("CLF", None, Some(4)),
        ("UYI", None, Some(0)),
        ("XAU", None, None),
        ("XYZ", None, None),
        ("US", None, None),
        ("USDC", None, None),
        ("", None, None),
        ("U$D", None, None),
    ];
    for (code, stripe, iso) in cases {
        assert_eq!(
            exponent(Provider::Stripe, code).ok(),
            stripe,
            "Stripe {code}"
        );
        assert_eq!(exponent(Provider::Square, code).ok(), iso, "Square {code}");
        assert_eq!(exponent(Provider::Paypal, code).ok(), iso, "PayPal {code}");
        if stripe.is_none() {
            assert_eq!(
                exponent(Provider::Stripe, code),
                Err(NormaliseError::UnsupportedCurrency(code.into()))
            );
        }
    }
}

#[test]
fn decimal_strings_convert_exactly_or_not_at_all() {
    let ok: &[(&str, u32, i64)] = &[
        ("2.51", 2, 251),
        ("2.5", 2, 250),
        ("2", 2, 200),
        ("0", 2, 0),
        ("0.00", 2, 0),
        ("0.01", 2, 1),
        ("600.99", 2, 60099),
        ("1500", 0, 1500),
        ("12.345", 3, 12345),
        ("12.3", 3, 12300),
        ("007.10", 2, 710),
        ("1.2345", 4, 12345),
        ("92233720368547758.07", 2, i64::MAX),
        ("9223372036854775807", 0, i64::MAX),
        ("0", 400, 0),
    ];
    for (value, exp, minor) in ok {
        assert_eq!(
            parse_decimal_minor(value, *exp),
            Ok(*minor),
            "{value} e{exp}"
        );
    }
    let refused: &[(&str, u32)] = &[
        ("", 2),
        (".", 2),
        (".5", 2),
        ("5.", 2),
        ("2.515", 2),
        ("2.510", 2),
        ("1500.0", 0),
        ("1500.", 0),
        ("-2.51", 2),
        ("+2.51", 2),
        ("2.51e2", 2),
        ("2E2", 2),
        (" 2.51", 2),
        ("2.51 ", 2),
        ("2,51", 2),
        ("1.2.3", 2),
        ("١٢", 0),
        ("NaN", 2),
        ("Infinity", 2),
        ("0x10", 2),
        ("92233720368547758.08", 2),
        ("9223372036854775808", 0),
        ("99999999999999999999999999", 0),
        ("1", 19),
        ("1", u32::MAX),
    ];
    for (value, exp) in refused {
        let got = parse_decimal_minor(value, *exp).map_err(|e| e.code());
        assert_eq!(got, Err("invalid_amount"), "{value:?} e{exp}");
    }
}

#[test]
fn major_amount_is_the_nearest_double_to_the_exact_decimal() {
    let cases: &[(i64, u32, f64)] = &[
        (251, 2, 2.51),
        (60099, 2, 600.99),
        (1, 2, 0.01),
        (12345, 3, 12.345),
        (1500, 0, 1500.0),
        (0, 2, 0.0),
        (-251, 2, -2.51),
        (9_007_199_254_740_993, 0, 9_007_199_254_740_992.0),
        // i64::MAX / 100 = 92_233_720_368_547_758.07, whose nearest f64 is this one.
        (i64::MAX, 2, 92_233_720_368_547_760.0),
        (1, 400, 0.0),
        (1, u32::MAX, 0.0),
    ];
    for (minor, exp, major) in cases {
        assert_eq!(minor_to_major_f64(*minor, *exp), *major, "{minor} e-{exp}");
    }
}
