//! The validator Lambda's configuration from its environment: defaults, the one empty-is-unset
//! rule, errors that name the variable, and the guarantees it refuses to weaken.

use std::collections::HashMap;

use payhook_core::Provider;
use payhook_core::signature::PaypalEnvironment;
use payhook_core::status::DEFAULT_IDEMPOTENCY_RETENTION_SECS;
use payhook_webhook_validator::Config;

const QUEUES: [(&str, &str); 3] = [
    (
        "QUEUE_URL_STRIPE",
        "https://sqs.us-east-1.amazonaws.com/1/stripe.fifo",
    ),
    (
        "QUEUE_URL_PAYPAL",
        "https://sqs.us-east-1.amazonaws.com/1/paypal.fifo",
    ),
    (
        "QUEUE_URL_SQUARE",
        "https://sqs.us-east-1.amazonaws.com/1/square.fifo",
    ),
];

fn config(extra: &[(&str, &str)]) -> Result<Config, String> {
    let env: HashMap<&str, &str> = QUEUES.iter().chain(extra).copied().collect();
    Config::from_lookup(|name| env.get(name).map(|v| (*v).to_owned())).map_err(|e| e.to_string())
}

#[test]
fn defaults_are_the_safe_ones() {
    let c = config(&[]).unwrap();
    assert_eq!(c.stage, "prod");
    assert_eq!(c.status_table, "webhook-processing");
    assert_eq!(c.secrets_ttl_secs, 300);
    assert_eq!(c.queue_urls.len(), 3);
    assert_eq!(c.queue_urls[0].0, Provider::Stripe);
    let v = &c.validator;
    assert_eq!(v.stripe_tolerance_secs, 300);
    assert!(!v.stripe_allow_no_tolerance && !v.stripe_require_livemode);
    assert_eq!(v.paypal_environment, PaypalEnvironment::Live);
    assert_eq!(v.paypal_tolerance_secs, 300);
    assert_eq!(
        v.idempotency_retention_secs,
        DEFAULT_IDEMPOTENCY_RETENTION_SECS
    );
    assert_eq!(v.rates.reporting_currency(), "USD");
}

#[test]
fn values_are_trimmed_and_empty_means_unset() {
    let c = config(&[
        ("PAYHOOK_STAGE", "  staging "),
        ("STATUS_TABLE", "   "),
        ("PAYPAL_ENVIRONMENT", " sandbox"),
        ("STRIPE_REQUIRE_LIVEMODE", "true "),
    ])
    .unwrap();
    assert_eq!(c.stage, "staging");
    assert_eq!(c.status_table, "webhook-processing");
    assert_eq!(c.validator.paypal_environment, PaypalEnvironment::Sandbox);
    assert!(c.validator.stripe_require_livemode);
}

#[test]
fn a_missing_queue_or_a_bad_value_names_its_variable() {
    let env: HashMap<&str, &str> = QUEUES[..2].iter().copied().collect();
    let err = Config::from_lookup(|name| env.get(name).map(|v| (*v).to_owned())).unwrap_err();
    assert!(err.to_string().contains("QUEUE_URL_SQUARE"), "{err}");
    for (name, value) in [
        ("PAYPAL_ENVIRONMENT", "production"),
        ("STRIPE_TOLERANCE_SECONDS", "five"),
        ("MAX_BODY_BYTES", "-1"),
        ("CURRENCY_RATES", "{\"reporting_currency\":\"USD\"}"),
    ] {
        let err = config(&[(name, value)]).unwrap_err();
        assert!(err.contains(name), "{name}: {err}");
    }
}

#[test]
fn settings_that_would_open_a_replay_window_refuse_to_start() {
    let err = config(&[("STRIPE_TOLERANCE_SECONDS", "0")]).unwrap_err();
    assert!(err.contains("allow_no_tolerance"), "{err}");
    let allowed = config(&[
        ("STRIPE_TOLERANCE_SECONDS", "0"),
        ("STRIPE_ALLOW_NO_TOLERANCE", "true"),
    ])
    .unwrap();
    assert_eq!(allowed.validator.stripe_tolerance_secs, 0);
    let err = config(&[("IDEMPOTENCY_RETENTION_SECONDS", "86400")]).unwrap_err();
    assert!(err.contains("retention"), "{err}");
}

#[test]
fn currency_rates_come_from_the_environment_when_set() {
    let c = config(&[(
        "CURRENCY_RATES",
        r#"{"reporting_currency":"EUR","as_of":"2026-12-01","currencies":{"EUR":{"exponent":2,"rate":1}}}"#,
    )])
    .unwrap();
    assert_eq!(c.validator.rates.reporting_currency(), "EUR");
}

#[test]
fn the_quarantine_bucket_is_optional_and_read_trimmed() {
    assert_eq!(config(&[]).unwrap().quarantine_bucket, None);
    let c = config(&[("QUARANTINE_BUCKET", " payhook-prod-quarantine-1a2b ")]).unwrap();
    assert_eq!(
        c.quarantine_bucket.as_deref(),
        Some("payhook-prod-quarantine-1a2b")
    );
}
