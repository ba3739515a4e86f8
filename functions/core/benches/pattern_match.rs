//! Matching one published payment event against the routing rules of `rules/`.
//!
//! Run: `cargo bench -p payhook-core --bench pattern_match`.
//!
//! The target is the six rules against one event in at most 2 µs (median), about what the
//! `quamina` crate takes for six typical patterns on the same machines (DESIGN §7). Measured:
//! - `rules/matching_value`: [`RuleSet::matching`] on an event already parsed by `serde_json`
//!   (what `payhook serve` does with the event it just built);
//! - `rules/matching_str`: [`RuleSet::matching_str`] on the event's JSON text, reading included
//!   (quamina's figure includes its flattening of the text too);
//! - `rules/parse_then_match`: `serde_json::from_str` followed by `matching`, for comparison;
//! - `pattern/*`: one rule's [`Pattern::matches`] on a hit and a miss;
//! - `compile/rules`: parsing and validating the six patterns.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use payhook_core::conformance::workspace_root;
use payhook_core::pattern::{Pattern, RuleSet, load_rules};
use serde_json::{Value, json};

/// A `payment.succeeded` event of 250 USD as the Stripe processor publishes it.
fn canonical_event() -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "payment.succeeded",
        "source": "payhook.stripe",
        "account": "123456789012",
        "time": "2026-01-01T00:00:02Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "webhook_id": "stripe:evt_3MtwBwLkdIwHu7ix28a3tqPa",
            "provider": "stripe",
            "provider_event_id": "evt_3MtwBwLkdIwHu7ix28a3tqPa",
            "provider_event_type": "payment_intent.succeeded",
            "event_type": "payment.succeeded",
            "payment_id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "amount_minor": 25000,
            "amount": 250.0,
            "currency": "USD",
            "provider_status": "succeeded",
            "occurred_at": "2026-01-01T00:00:00Z",
            "received_at": "2026-01-01T00:00:01.000Z",
            "livemode": false,
            "tier": "medium"
        }
    })
}

fn bench(c: &mut Criterion) {
    let rules_dir = workspace_root().join("rules");
    let loaded = load_rules(&rules_dir).expect("rules/ loads");
    let set = RuleSet::from_loaded(&loaded);
    assert_eq!(set.len(), 6, "the bench measures the six payhook rules");
    let event = canonical_event();
    let text = serde_json::to_string(&event).expect("event serialises");
    assert_eq!(set.matching(&event), ["medium-value-payments"]);

    let mut group = c.benchmark_group("rules");
    group.bench_function("matching_value", |b| {
        b.iter(|| black_box(&set).matching(black_box(&event)).len())
    });
    group.bench_function("matching_str", |b| {
        b.iter(|| {
            black_box(&set)
                .matching_str(black_box(&text))
                .map(|m| m.len())
                .unwrap_or_default()
        })
    });
    group.bench_function("parse_then_match", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_str(black_box(&text)).expect("event parses");
            black_box(&set).matching(&value).len()
        })
    });
    group.finish();

    let medium = set.get("medium-value-payments").expect("rule exists");
    let high = set.get("high-value-payments").expect("rule exists");
    let mut group = c.benchmark_group("pattern");
    group.bench_function("hit", |b| {
        b.iter(|| black_box(medium).matches(black_box(&event)))
    });
    group.bench_function("miss", |b| {
        b.iter(|| black_box(high).matches(black_box(&event)))
    });
    group.finish();

    let patterns: Vec<Value> = loaded
        .iter()
        .map(|(_, rule, _)| rule.event_pattern.clone())
        .collect();
    c.bench_function("compile/rules", |b| {
        b.iter(|| {
            patterns
                .iter()
                .map(|p| {
                    Pattern::from_value(black_box(p))
                        .map(|p| p.alternatives())
                        .unwrap_or(0)
                })
                .sum::<usize>()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
