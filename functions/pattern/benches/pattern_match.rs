//! Matching one published payment event against routing rules: the rules `rules/` holds (however
//! many), and generated sets of 50 and 500 rules (EventBridge allows 300 rules per bus) to show
//! how the cost grows with the rule count.
//!
//! Run: `cargo bench -p payhook-pattern --bench pattern_match` (add `-- --quick` for a short run).
//!
//! The target is the payhook rules against one event in at most 2 µs (median), about what the
//! `quamina` crate takes for a handful of typical patterns. Measured:
//! - `rules/matching_value`: [`RuleSet::matching`] on an event already parsed by `serde_json`
//!   (what `payhook serve` does with the event it just built);
//! - `rules/matching_str`: [`RuleSet::matching_str`] on the event's JSON text, reading included
//!   (quamina's figure includes its flattening of the text too);
//! - `rules/parse_then_match`: `serde_json::from_str` followed by `matching`, for comparison;
//! - `generated_rules/matching_value/{50,500}` and `generated_rules/matching_str/{50,500}`: the
//!   same two over generated rules shaped like payhook's (source, detail-type, a numeric amount
//!   range, a currency and one more operator each), some of which match the event;
//! - `pattern/*`: one rule's [`Pattern::matches`] on a hit and a miss;
//! - `compile/rules`: parsing and validating the patterns of `rules/`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use payhook_pattern::{Pattern, RuleSet, load_rules};
use serde_json::{Value, json};

/// Rule counts of the generated sets.
const GENERATED_RULE_COUNTS: [usize; 2] = [50, 500];

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

/// `count` rules shaped like payhook's: each names a source, a detail type, an amount range, a
/// currency and one more operator, cycling through values so that a few match the canonical
/// event (a succeeded payment of 250 USD from Stripe).
fn generated_rules(count: usize) -> RuleSet {
    const DETAIL_TYPES: [&str; 4] = [
        "payment.succeeded",
        "payment.failed",
        "refund.succeeded",
        "dispute.opened",
    ];
    const CURRENCIES: [&str; 3] = ["USD", "EUR", "JPY"];
    let extras = [
        json!({"provider": ["stripe", "paypal"]}),
        json!({"tier": [{"anything-but": "low"}]}),
        json!({"payment_id": [{"wildcard": "pi_*"}]}),
        json!({"provider_status": [{"exists": true}]}),
        json!({"webhook_id": [{"prefix": "square:"}]}),
    ];
    RuleSet::new((0..count).map(|i| {
        // Stepping by 7 tenths staggers the amount cycle against the others: rule 12 and
        // every 60th after it match the event.
        let low = (i * 7 % 10) * 50;
        let mut detail = json!({
            "amount": [{"numeric": [">=", low, "<", low + 100]}],
            "currency": [CURRENCIES[i % CURRENCIES.len()]],
        });
        if let (Some(detail), Some(extra)) =
            (detail.as_object_mut(), extras[i % extras.len()].as_object())
        {
            detail.extend(extra.clone());
        }
        let pattern = json!({
            "source": [{"prefix": "payhook."}],
            "detail-type": [DETAIL_TYPES[i % DETAIL_TYPES.len()]],
            "detail": detail,
        });
        let pattern = Pattern::from_value(&pattern).expect("generated patterns are valid");
        (format!("generated-{i:03}"), pattern)
    }))
}

/// Benchmarks matching the event, as a value and as text, against every rule of `set`.
fn bench_matching(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: impl Fn(&str) -> BenchmarkId,
    set: &RuleSet,
    event: &Value,
    text: &str,
) {
    group.bench_function(id("matching_value"), |b| {
        b.iter(|| black_box(set).matching(black_box(event)).len())
    });
    group.bench_function(id("matching_str"), |b| {
        b.iter(|| {
            black_box(set)
                .matching_str(black_box(text))
                .map(|m| m.len())
                .unwrap_or_default()
        })
    });
}

fn bench(c: &mut Criterion) {
    // The workspace root is two levels above this crate (`functions/pattern`).
    let rules_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let loaded = load_rules(&rules_dir).expect("rules/ loads");
    let set = RuleSet::from_loaded(&loaded);
    let event = canonical_event();
    let text = serde_json::to_string(&event).expect("event serialises");
    let matched = set.matching(&event);
    eprintln!(
        "rules/: {} rules, {} matching the event ({})",
        set.len(),
        matched.len(),
        matched.join(", ")
    );

    let mut group = c.benchmark_group("rules");
    bench_matching(
        &mut group,
        |name| BenchmarkId::from_parameter(name),
        &set,
        &event,
        &text,
    );
    group.bench_function("parse_then_match", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_str(black_box(&text)).expect("event parses");
            black_box(&set).matching(&value).len()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("generated_rules");
    for count in GENERATED_RULE_COUNTS {
        let generated = generated_rules(count);
        eprintln!(
            "generated_rules/{count}: {} matching the event",
            generated.matching(&event).len()
        );
        bench_matching(
            &mut group,
            |name| BenchmarkId::new(name, count),
            &generated,
            &event,
            &text,
        );
    }
    group.finish();

    let mut group = c.benchmark_group("pattern");
    let hit = set.names().find(|name| matched.contains(name));
    let miss = set.names().find(|name| !matched.contains(name));
    for (what, name) in [("hit", hit), ("miss", miss)] {
        let Some(pattern) = name.and_then(|n| set.get(n)) else {
            eprintln!("pattern/{what}: no rule in rules/ gives one for this event; not measured");
            continue;
        };
        group.bench_function(what, |b| {
            b.iter(|| black_box(pattern).matches(black_box(&event)))
        });
    }
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
