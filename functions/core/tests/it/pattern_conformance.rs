//! The EventBridge pattern matcher against the shared conformance corpus
//! (`../shared/conformance/eventbridge/`), and the routing rules of `rules/` against events
//! shaped the way the provider processors publish them.
//!
//! Run: `cargo test -p payhook-core --test it pattern_conformance::`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use payhook_core::currency::Rates;
use payhook_core::normalise::{Normalised, normalise_with};
use payhook_core::payment::{BusinessEventType, PaymentRecord};
use payhook_core::processor::{Tier, TierThresholds};
use payhook_core::{EventType, PaymentEvent, Provider};
use payhook_pattern::{MAX_PATTERN_CHARS, Pattern, RuleSet, RuleState, RulesError, load_rules};
use payhook_testkit::conformance::{conformance_dir, read_jsonl, workspace_root};
use proptest::prelude::*;
use serde_json::{Value, json};

mod key_independence;

const EXPECTED_CASES: usize = 204;
const EXPECTED_INVALID: usize = 57;
const AWS_PREFIX: &str = "Event pattern is not valid. Reason: ";

fn eventbridge_dir() -> Option<PathBuf> {
    conformance_dir().map(|d| d.join("eventbridge"))
}

fn text_of(case: &Value, raw_key: &str, key: &str) -> String {
    match case.get(raw_key).and_then(Value::as_str) {
        Some(raw) => raw.to_owned(),
        None => serde_json::to_string(&case[key]).expect("corpus values serialise"),
    }
}

#[test]
fn every_corpus_case_matches_as_eventbridge_does() {
    let Some(dir) = eventbridge_dir() else { return };
    let cases = read_jsonl(&dir.join("patterns.jsonl")).expect("patterns.jsonl reads");
    assert_eq!(cases.len(), EXPECTED_CASES, "the corpus changed size");

    let mut failures = Vec::new();
    let mut expected_true = 0;
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?");
        let expect = case["expect"].as_bool().expect("expect is a boolean");
        expected_true += usize::from(expect);
        let pattern_text = text_of(case, "pattern_raw", "pattern");
        let event_text = text_of(case, "event_raw", "event");

        // The exact text, through our own reader (duplicate keys, number spellings).
        match Pattern::parse(&pattern_text) {
            Ok(pattern) => match pattern.matches_str(&event_text) {
                Ok(got) if got == expect => {}
                Ok(got) => failures.push(format!("{id}: text: expected {expect}, got {got}")),
                Err(e) => failures.push(format!("{id}: event rejected: {e}")),
            },
            Err(e) => failures.push(format!("{id}: pattern rejected: {e}")),
        }

        // The parsed equivalent, through serde_json values.
        match Pattern::from_value(&case["pattern"]) {
            Ok(pattern) => {
                let got = pattern.matches(&case["event"]);
                if got != expect {
                    failures.push(format!("{id}: value: expected {expect}, got {got}"));
                }
            }
            Err(e) => failures.push(format!("{id}: pattern value rejected: {e}")),
        }
    }
    assert_eq!(
        expected_true, 112,
        "the corpus has 112 true and 92 false cases"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with EventBridge:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_invalid_pattern_is_rejected_with_aws_reason() {
    let Some(dir) = eventbridge_dir() else { return };
    let cases = read_jsonl(&dir.join("invalid.jsonl")).expect("invalid.jsonl reads");
    assert_eq!(cases.len(), EXPECTED_INVALID, "the corpus changed size");

    let mut failures = Vec::new();
    let mut service_limits = 0;
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?");
        let why = case["why"].as_str().unwrap_or_default();
        service_limits += usize::from(case.get("enforced_by").is_some());
        let text = text_of(case, "pattern_raw", "pattern");
        match Pattern::parse(&text) {
            Ok(_) => failures.push(format!("{id}: accepted ({why})")),
            Err(e) => {
                let message = e.to_string();
                if e.code() != "invalid_event_pattern" || !message.starts_with(AWS_PREFIX) {
                    failures.push(format!("{id}: not an AWS-style pattern error: {message}"));
                }
                // Where the corpus has AWS's own text, ours must carry it.
                if let Some(reason) = why.strip_prefix(AWS_PREFIX)
                    && !e.reason().contains(reason)
                {
                    failures.push(format!(
                        "{id}: reason {:?}, AWS says {reason:?}",
                        e.reason()
                    ));
                }
            }
        }
        if !case["pattern"].is_null() && Pattern::from_value(&case["pattern"]).is_ok() {
            failures.push(format!("{id}: accepted as a value ({why})"));
        }
    }
    assert_eq!(service_limits, 3, "three cases are service-side limits");
    assert!(
        failures.is_empty(),
        "{} of {} invalid patterns were handled wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn pattern_size_limit_is_the_default_quota() {
    let values: Vec<String> = (0..200)
        .map(|i| format!("\"payment.type{i:04}\""))
        .collect();
    let long = format!("{{\"detail-type\": [{}]}}", values.join(","));
    assert!(long.len() > MAX_PATTERN_CHARS);
    let err = Pattern::parse(&long).unwrap_err();
    assert_eq!(err.code(), "invalid_event_pattern");
    assert!(
        Pattern::parse(&format!(
            "{{\"detail-type\": [{}]}}",
            values[..50].join(",")
        ))
        .is_ok()
    );
}

// ---------------------------------------------------------------------------------------------
// The routing rules in rules/.

const RULE_NAMES: [&str; 8] = [
    "disputes",
    "failed-payments",
    "high-value-payments",
    "low-value-payments",
    "medium-value-payments",
    "payment-updates",
    "refunds",
    "unrated-payments",
];

fn rules_dir() -> PathBuf {
    workspace_root().join("rules")
}

fn rule_set() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES
        .get_or_init(|| RuleSet::load(&rules_dir()).unwrap_or_else(|e| panic!("rules/ loads: {e}")))
}

/// The `PutEvents` result a provider processor produces for the first webhook of a payment, as
/// the bus delivers it: the business event that webhook makes (from the real payment state
/// machine) around the canonical event plus its tier.
fn published(provider: Provider, event_type: EventType, amount: f64) -> Value {
    let amount_minor = (amount * 100.0).round() as i64;
    let event = PaymentEvent {
        webhook_id: PaymentEvent::make_webhook_id(provider, "evt_1"),
        provider,
        provider_event_id: "evt_1".to_owned(),
        provider_event_type: "sample".to_owned(),
        event_type,
        payment_id: "pay_1".to_owned(),
        object_id: None,
        amount_minor,
        amount,
        currency: "USD".to_owned(),
        amount_decimal: payhook_core::currency::minor_to_decimal_string(amount_minor, 2),
        amount_reporting: Some(amount),
        reporting_currency: Some("USD".to_owned()),
        provider_status: None,
        failure_code: None,
        occurred_at: "2026-01-01T00:00:00Z".to_owned(),
        received_at: Some("2026-01-01T00:00:01.000Z".to_owned()),
        livemode: Some(false),
        account: None,
        merchant_id: None,
        object_updated_at: None,
        object_version: None,
        refunded_total_minor: None,
    };
    let (_, applied) = PaymentRecord::new(provider, "pay_1").apply(&event);
    let business = applied
        .events
        .first()
        .expect("a first webhook is a transition");
    let mut detail = serde_json::to_value(&event).expect("PaymentEvent serialises");
    let tier = TierThresholds::default().tier(amount);
    detail["tier"] = serde_json::to_value(tier).expect("Tier serialises");
    detail["business_event_id"] = json!(format!("{}/0", event.webhook_id));
    detail["business_event"] = serde_json::to_value(business).expect("BusinessEvent serialises");
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": business.event_type.as_str(),
        "source": format!("payhook.{}", provider.as_str()),
        "account": "123456789012",
        "time": "2026-01-01T00:00:02Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

/// Which rules the event matches, checked to be the same through values and through text.
fn routed(set: &RuleSet, event: &Value) -> Vec<String> {
    let by_value: Vec<String> = set.matching(event).into_iter().map(str::to_owned).collect();
    let text = serde_json::to_string(event).expect("event serialises");
    let by_text: Vec<String> = set
        .matching_str(&text)
        .expect("event text is an object")
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        by_value, by_text,
        "value and text routing disagree for {text}"
    );
    by_value
}

/// A Stripe `payment_intent.succeeded` fixture with its amount set, normalised with `rates`,
/// published with its tier as a processor does, and routed.
fn route_stripe_payment(fixture: &str, amount_minor: i64, rates: &Rates) -> (Tier, Vec<String>) {
    let path = workspace_root().join("tests/fixtures/stripe").join(fixture);
    let mut body: Value = serde_json::from_slice(&std::fs::read(path).expect("fixture")).unwrap();
    body["data"]["object"]["amount"] = amount_minor.into();
    body["data"]["object"]["amount_received"] = amount_minor.into();
    let bytes = serde_json::to_vec(&body).unwrap();
    let Ok(Normalised::Event(event)) = normalise_with(Provider::Stripe, &bytes, rates) else {
        panic!("{fixture} normalises")
    };
    let tier = TierThresholds::default().tier_of(&event);
    let mut detail = serde_json::to_value(&*event).unwrap();
    detail["tier"] = serde_json::to_value(tier).unwrap();
    let envelope = json!({
        "version": "0", "id": "1", "detail-type": "payment.succeeded",
        "source": "payhook.stripe", "account": "123456789012", "time": "2026-01-01T00:00:02Z",
        "region": "us-east-1", "resources": [], "detail": detail,
    });
    (tier, routed(rule_set(), &envelope))
}

#[test]
fn tiers_and_amount_rules_compare_the_reporting_amount_not_the_currencys_own() {
    let rates = Rates::bundled().expect("the rates file loads");
    // ¥1,000 is about 7 USD; ¥200,000 about 1,340 USD.
    assert_eq!(
        route_stripe_payment("payment_intent.succeeded.jpy.json", 1_000, &rates),
        (Tier::Low, vec!["low-value-payments".to_owned()])
    );
    assert_eq!(
        route_stripe_payment("payment_intent.succeeded.jpy.json", 200_000, &rates),
        (Tier::High, vec!["high-value-payments".to_owned()])
    );
    // KWD 999.000 is about 3,250 USD; KWD 50.000 about 160 USD.
    assert_eq!(
        route_stripe_payment("payment_intent.succeeded.kwd.json", 999_000, &rates),
        (Tier::High, vec!["high-value-payments".to_owned()])
    );
    assert_eq!(
        route_stripe_payment("payment_intent.succeeded.kwd.json", 50_000, &rates),
        (Tier::Medium, vec!["medium-value-payments".to_owned()])
    );
}

#[test]
fn a_currency_without_a_rate_is_unrated_and_routed_only_to_the_unrated_rule() {
    // Without a rates file only USD is rated.
    let (tier, rules) = route_stripe_payment(
        "payment_intent.succeeded.kwd.json",
        999_000,
        &Rates::usd_only(),
    );
    assert_eq!(tier, Tier::Unrated);
    assert_eq!(rules, ["unrated-payments"]);
}

#[test]
fn every_rule_file_loads_onto_the_payment_events_bus() {
    let loaded = load_rules(&rules_dir()).unwrap_or_else(|e| panic!("rules/ loads: {e}"));
    let mut names: Vec<&str> = loaded.iter().map(|(_, r, _)| r.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, RULE_NAMES);
    for (path, rule, pattern) in &loaded {
        assert_eq!(rule.event_bus, "payment-events", "{}", path.display());
        assert_eq!(rule.state, RuleState::Enabled, "{}", path.display());
        assert!(
            pattern.field_names().contains(&"source"),
            "{}",
            path.display()
        );
        for target in &rule.targets {
            assert_eq!(target.function, "event-processor", "{}", path.display());
            assert!(target.retry_policy.is_some(), "{}", path.display());
            assert_eq!(target.dead_letter_queue.as_deref(), Some("events-dlq"));
        }
    }
    assert_eq!(rule_set().len(), RULE_NAMES.len());
}

#[test]
fn sample_events_match_exactly_the_expected_rules() {
    let set = rule_set();
    let cases: &[(Provider, EventType, f64, &[&str])] = &[
        (
            Provider::Stripe,
            EventType::PaymentSucceeded,
            5000.0,
            &["high-value-payments"],
        ),
        (
            Provider::Paypal,
            EventType::PaymentSucceeded,
            250.0,
            &["medium-value-payments"],
        ),
        (
            Provider::Square,
            EventType::PaymentSucceeded,
            10.0,
            &["low-value-payments"],
        ),
        (
            Provider::Stripe,
            EventType::PaymentFailed,
            5000.0,
            &["failed-payments"],
        ),
        (
            Provider::Square,
            EventType::PaymentFailed,
            10.0,
            &["failed-payments"],
        ),
        (
            Provider::Stripe,
            EventType::RefundSucceeded,
            250.0,
            &["refunds"],
        ),
        (
            Provider::Paypal,
            EventType::RefundPending,
            5000.0,
            &["payment-updates"],
        ),
        (
            Provider::Square,
            EventType::RefundFailed,
            10.0,
            &["payment-updates"],
        ),
        (
            Provider::Stripe,
            EventType::DisputeOpened,
            5000.0,
            &["disputes"],
        ),
        (
            Provider::Paypal,
            EventType::DisputeUpdated,
            250.0,
            &["disputes"],
        ),
        (
            Provider::Square,
            EventType::DisputeClosed,
            10.0,
            &["disputes"],
        ),
        (
            Provider::Stripe,
            EventType::PaymentPending,
            5000.0,
            &["payment-updates"],
        ),
        (
            Provider::Paypal,
            EventType::PaymentCanceled,
            250.0,
            &["payment-updates"],
        ),
    ];
    for (provider, event_type, amount, expected) in cases {
        let event = published(*provider, *event_type, *amount);
        assert_eq!(
            routed(set, &event),
            *expected,
            "{provider} {event_type} of {amount}"
        );
    }
}

#[test]
fn every_normalised_event_type_is_routed_by_exactly_one_rule() {
    // The event processor records PROCESSED only for routed events: an unrouted type would
    // stay PUBLISHED for ever.
    let set = rule_set();
    for event_type in EventType::ALL {
        for amount in [5000.0, 250.0, 10.0] {
            let event = published(Provider::Stripe, event_type, amount);
            assert_eq!(routed(set, &event).len(), 1, "{event_type} of {amount}");
        }
    }
}

#[test]
fn every_business_event_type_is_routed_by_exactly_one_rule() {
    let set = rule_set();
    for business in BusinessEventType::ALL {
        let mut event = published(Provider::Square, EventType::PaymentSucceeded, 250.0);
        event["detail-type"] = json!(business.as_str());
        assert_eq!(routed(set, &event).len(), 1, "{business}");
    }
}

#[test]
fn amount_rules_split_at_the_tier_thresholds() {
    let set = rule_set();
    for (amount, expected) in [
        (1000.0, "high-value-payments"),
        (999.99, "medium-value-payments"),
        (100.0, "medium-value-payments"),
        (99.99, "low-value-payments"),
        (0.0, "low-value-payments"),
        (0.01, "low-value-payments"),
        (4_999_999_999.0, "high-value-payments"),
    ] {
        let event = published(Provider::Stripe, EventType::PaymentSucceeded, amount);
        assert_eq!(routed(set, &event), [expected], "amount {amount}");
    }
}

#[test]
fn events_from_other_sources_match_no_rule() {
    let set = rule_set();
    let mut event = published(Provider::Stripe, EventType::PaymentSucceeded, 5000.0);
    event["source"] = json!("aws.events");
    assert!(routed(set, &event).is_empty());
    event["source"] = json!("payhook");
    assert!(routed(set, &event).is_empty());
}

proptest! {
    #[test]
    fn a_succeeded_payment_matches_the_amount_rule_of_its_tier(cents in 0i64..1_000_000_000) {
        let set = rule_set();
        let amount = cents as f64 / 100.0;
        let event = published(Provider::Square, EventType::PaymentSucceeded, amount);
        let tier = event["detail"]["tier"].as_str().unwrap_or_default().to_owned();
        let matched = routed(set, &event);
        prop_assert_eq!(matched, vec![format!("{tier}-value-payments")]);
    }
}

// ---------------------------------------------------------------------------------------------
// The loader refuses rule files EventBridge (or this project) would not take.

static SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory holding the given files; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(files: &[(&str, String)]) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "payhook-rules-{}-{}",
            std::process::id(),
            SCRATCH.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("scratch file");
        }
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rule_json(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut rule = json!({
        "name": name,
        "description": "test rule",
        "event_bus": "payment-events",
        "state": "ENABLED",
        "event_pattern": {"source": [{"prefix": "payhook."}]},
        "targets": [{
            "id": "event-processor",
            "function": "event-processor",
            "retry_policy": {"maximum_retry_attempts": 10, "maximum_event_age_seconds": 3600},
            "dead_letter_queue": "events-dlq"
        }]
    });
    edit(&mut rule);
    serde_json::to_string_pretty(&rule).expect("serialises")
}

fn load_error(files: &[(&str, String)]) -> RulesError {
    let scratch = Scratch::new(files);
    match load_rules(scratch.path()) {
        Ok(rules) => panic!("loaded {} rules that should be refused", rules.len()),
        Err(e) => e,
    }
}

#[test]
fn loader_accepts_a_valid_folder_and_skips_other_files() {
    let scratch = Scratch::new(&[
        // An exact number outside the comparable range (an account id) is fine.
        (
            "ok.json",
            rule_json("ok", |r| {
                r["event_pattern"]["account"] = json!([123_456_789_012_u64])
            }),
        ),
        ("README.md", "# not a rule".to_owned()),
        (
            "off.json",
            rule_json("off", |r| r["state"] = json!("DISABLED")),
        ),
    ]);
    let loaded = load_rules(scratch.path()).expect("loads");
    assert_eq!(loaded.len(), 2);
    let set = RuleSet::from_loaded(&loaded);
    assert_eq!(
        set.names().collect::<Vec<_>>(),
        ["ok"],
        "disabled rules route nothing"
    );
}

#[test]
fn loader_refuses_invalid_rule_files() {
    let long = "x".repeat(513);
    // (what is wrong, the files, a phrase the error must contain)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "bad name",
            vec![("bad name.json", rule_json("bad name", |_| {}))],
            "name",
        ),
        (
            "name too long",
            vec![("n.json", rule_json(&"n".repeat(65), |_| {}))],
            "name",
        ),
        (
            "file not named after rule",
            vec![("x.json", rule_json("y", |_| {}))],
            "y.json",
        ),
        (
            "description too long",
            vec![("d.json", rule_json("d", |r| r["description"] = json!(long)))],
            "description",
        ),
        (
            "no targets",
            vec![("t.json", rule_json("t", |r| r["targets"] = json!([])))],
            "targets",
        ),
        (
            "invalid pattern",
            vec![(
                "p.json",
                rule_json("p", |r| {
                    r["event_pattern"] = json!({"detail-type": "payment.failed"})
                }),
            )],
            "must be an object or an array",
        ),
        (
            "non-portable number",
            vec![(
                "q.json",
                rule_json("q", |r| {
                    r["event_pattern"] = json!({"amount": [{"numeric": [">", 1e10]}]})
                }),
            )],
            "outside",
        ),
        (
            "unknown field",
            vec![("u.json", rule_json("u", |r| r["evnet_pattern"] = json!({})))],
            "unknown field",
        ),
        (
            "retry policy out of range",
            vec![(
                "r.json",
                rule_json("r", |r| {
                    r["targets"][0]["retry_policy"]["maximum_event_age_seconds"] = json!(10)
                }),
            )],
            "maximum_event_age_seconds",
        ),
        (
            "repeated key",
            vec![(
                "k.json",
                r#"{"name": "k", "name": "k", "description": "", "event_bus": "payment-events",
                    "state": "ENABLED", "event_pattern": {"source": ["x"]},
                    "targets": [{"id": "t", "function": "f"}]}"#
                    .to_owned(),
            )],
            "repeated keys",
        ),
        ("not JSON", vec![("j.json", "{".to_owned())], "not JSON"),
    ];
    for (what, files, needle) in cases {
        let err = load_error(&files);
        assert_eq!(err.code(), "invalid_rule", "{what}: {err}");
        assert!(err.to_string().contains(needle), "{what}: {err}");
    }
}

#[test]
fn loader_reports_a_missing_folder_as_unreadable() {
    let err = load_rules(&workspace_root().join("no-such-rules-dir")).unwrap_err();
    assert_eq!(err.code(), "rules_unreadable");
}
