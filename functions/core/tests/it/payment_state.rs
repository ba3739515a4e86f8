//! The payment state machine (`payhook_core::payment`): one business fact per transition,
//! whatever order a payment's webhooks arrive in.

use std::collections::BTreeSet;

use payhook_core::payment::{
    BusinessEvent, BusinessEventType, Effect, MAX_APPLIED_WEBHOOKS, PaymentRecord, PaymentState,
};
use payhook_core::status::rfc3339_ms;
use payhook_core::{EventType, PaymentEvent, Provider};
use proptest::prelude::*;

const T0: i64 = 1_767_225_600_000;

/// A normalised webhook about payment `pay_1`: `kind` on object `object_id` (refund or
/// dispute id), version `version` updated `version` seconds after [`T0`].
fn webhook(
    n: usize,
    kind: EventType,
    object_id: Option<&str>,
    amount_minor: i64,
    version: i64,
    status: &str,
) -> PaymentEvent {
    let id = format!("evt_{n}");
    PaymentEvent {
        webhook_id: format!("square:{id}"),
        provider: Provider::Square,
        provider_event_id: id,
        provider_event_type: "payment.updated".into(),
        event_type: kind,
        payment_id: "pay_1".into(),
        object_id: object_id.map(str::to_owned),
        amount_minor,
        amount: amount_minor as f64 / 100.0,
        amount_decimal: String::new(),
        amount_reporting: Some(amount_minor as f64 / 100.0),
        reporting_currency: Some("USD".into()),
        currency: "USD".into(),
        provider_status: Some(status.into()),
        failure_code: None,
        occurred_at: rfc3339_ms(T0 + version * 1_000),
        received_at: None,
        livemode: None,
        account: None,
        merchant_id: None,
        object_updated_at: Some(rfc3339_ms(T0 + version * 1_000)),
        object_version: Some(version),
        refunded_total_minor: None,
    }
}

/// Applies `webhooks` in order as the processor does (a webhook already applied is skipped)
/// and returns the final record with every business event paired with its webhook.
fn run(webhooks: &[PaymentEvent]) -> (PaymentRecord, Vec<(BusinessEvent, PaymentEvent)>) {
    let mut record = PaymentRecord::new(Provider::Square, "pay_1");
    let mut published = Vec::new();
    for w in webhooks {
        if record.applied(&w.webhook_id).is_some() {
            continue;
        }
        let (next, applied) = record.apply(w);
        published.extend(applied.events.into_iter().map(|e| (e, w.clone())));
        record = next;
    }
    (record, published)
}

/// The record without its bookkeeping (which webhooks, how many writes).
fn state_of(record: &PaymentRecord) -> PaymentRecord {
    let mut r = record.clone();
    r.applied.clear();
    r.revision = 0;
    r
}

fn count(events: &[(BusinessEvent, PaymentEvent)], t: BusinessEventType) -> usize {
    events.iter().filter(|(e, _)| e.event_type == t).count()
}

#[test]
fn a_square_payment_updated_several_times_and_refunded_is_booked_as_succeeded_once() {
    let webhooks = [
        webhook(1, EventType::PaymentPending, None, 150_000, 1, "APPROVED"),
        webhook(
            2,
            EventType::PaymentSucceeded,
            None,
            150_000,
            2,
            "COMPLETED",
        ),
        // Fees filled in, then the refunds applied: the payment stays COMPLETED.
        webhook(
            3,
            EventType::PaymentSucceeded,
            None,
            150_000,
            3,
            "COMPLETED",
        ),
        webhook(
            4,
            EventType::RefundPending,
            Some("r1"),
            50_000,
            4,
            "PENDING",
        ),
        webhook(
            5,
            EventType::RefundSucceeded,
            Some("r1"),
            50_000,
            5,
            "COMPLETED",
        ),
        webhook(
            6,
            EventType::PaymentSucceeded,
            None,
            150_000,
            6,
            "COMPLETED",
        ),
        webhook(
            7,
            EventType::RefundSucceeded,
            Some("r2"),
            100_000,
            7,
            "COMPLETED",
        ),
        webhook(
            8,
            EventType::PaymentSucceeded,
            None,
            150_000,
            8,
            "COMPLETED",
        ),
    ];
    let (record, events) = run(&webhooks);
    let types: Vec<&str> = events.iter().map(|(e, _)| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "payment.updated",
            "payment.succeeded",
            "payment.updated",
            "payment.refunded",
            "payment.refunded"
        ]
    );
    let refunds: Vec<(Option<i64>, i64)> = events
        .iter()
        .filter(|(e, _)| e.event_type == BusinessEventType::PaymentRefunded)
        .map(|(e, _)| (e.refund_delta_minor, e.payment.refunded_minor))
        .collect();
    assert_eq!(
        refunds,
        [(Some(50_000), 50_000), (Some(100_000), 150_000)],
        "each refund carries its delta and the cumulative total"
    );
    assert_eq!(record.state(), PaymentState::Succeeded);
    assert_eq!(record.captured_minor, Some(150_000));
    assert_eq!(record.refunded_minor(), 150_000);
    let effects: Vec<Effect> = record.applied.iter().map(|a| a.effect).collect();
    assert_eq!(
        effects[2],
        Effect::Unchanged,
        "the fee update changed nothing"
    );
    assert_eq!(effects[5], Effect::Unchanged);
}

#[test]
fn an_older_version_after_a_newer_one_changes_nothing_and_is_recorded_as_stale() {
    let (record, events) = run(&[
        webhook(2, EventType::PaymentCanceled, None, 1_000, 2, "CANCELED"),
        webhook(1, EventType::PaymentPending, None, 1_000, 1, "APPROVED"),
    ]);
    assert_eq!(events.len(), 1, "only the cancellation: {events:?}");
    assert_eq!(events[0].0.change.as_deref(), Some("state"));
    assert_eq!(record.state(), PaymentState::Canceled);
    assert_eq!(record.applied[1].effect, Effect::Stale);
}

#[test]
fn a_failure_reported_after_the_capture_is_not_published() {
    let (record, events) = run(&[
        webhook(2, EventType::PaymentSucceeded, None, 1_000, 2, "COMPLETED"),
        webhook(1, EventType::PaymentFailed, None, 1_000, 1, "FAILED"),
    ]);
    assert_eq!(count(&events, BusinessEventType::PaymentFailed), 0);
    assert!(record.failure_seen);
    assert_eq!(record.state(), PaymentState::Succeeded);
}

#[test]
fn a_stripe_refund_total_counts_the_largest_total_reported() {
    let refund = |n: usize, delta: i64, total: i64| {
        let mut e = webhook(
            n,
            EventType::RefundSucceeded,
            Some("ch_1"),
            delta,
            n as i64,
            "",
        );
        e.refunded_total_minor = Some(total);
        e
    };
    // The second refund's event arrives first.
    let (record, events) = run(&[refund(2, 700, 1_000), refund(1, 300, 300)]);
    assert_eq!(record.refunded_minor(), 1_000);
    assert_eq!(
        record.applied[1].effect,
        Effect::Stale,
        "a smaller total than one known"
    );
    let deltas: Vec<Option<i64>> = events.iter().map(|(e, _)| e.refund_delta_minor).collect();
    assert_eq!(
        deltas,
        [Some(1_000)],
        "the earlier total adds nothing once the larger one is known"
    );
}

#[test]
fn a_dispute_state_is_published_once_per_dispute() {
    let dispute =
        |n: usize, kind, status: &str| webhook(n, kind, Some("dp_1"), 1_000, n as i64, status);
    let (_, events) = run(&[
        dispute(1, EventType::DisputeOpened, "EVIDENCE_REQUIRED"),
        dispute(2, EventType::DisputeUpdated, "PROCESSING"),
        dispute(3, EventType::DisputeUpdated, "PROCESSING"),
        dispute(4, EventType::DisputeClosed, "WON"),
    ]);
    let types: Vec<&str> = events.iter().map(|(e, _)| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["dispute.opened", "dispute.updated", "dispute.closed"]
    );
}

#[test]
fn a_webhook_applied_before_a_crash_gets_the_same_events_on_its_retry() {
    let w = webhook(1, EventType::PaymentSucceeded, None, 1_000, 1, "COMPLETED");
    let (record, first) = PaymentRecord::new(Provider::Square, "pay_1").apply(&w);
    let again = record.applied(&w.webhook_id).expect("remembered");
    assert_eq!(again, &first);
    assert_eq!(
        again.events[0].event_type,
        BusinessEventType::PaymentSucceeded
    );
}

#[test]
fn the_record_remembers_a_bounded_number_of_webhooks() {
    let mut record = PaymentRecord::new(Provider::Square, "pay_1");
    for n in 0..(MAX_APPLIED_WEBHOOKS + 10) {
        let w = webhook(
            n,
            EventType::PaymentSucceeded,
            None,
            1_000,
            n as i64,
            "COMPLETED",
        );
        record = record.apply(&w).0;
    }
    assert_eq!(record.applied.len(), MAX_APPLIED_WEBHOOKS);
    assert_eq!(
        record.applied[0].webhook_id, "square:evt_10",
        "the oldest are dropped"
    );
    assert_eq!(record.revision, (MAX_APPLIED_WEBHOOKS + 10) as u64);
}

/// A payment's whole history, in the order the provider made it: payment versions (pending,
/// maybe a failed attempt, then captured, failed or cancelled, then updates that change
/// nothing), refunds (pending then completed or failed) and disputes.
fn history() -> impl Strategy<Value = Vec<PaymentEvent>> {
    (
        0..3usize,                                           // pending versions
        0..3u8,                                              // outcome: captured, failed, cancelled
        any::<bool>(),                                       // a failed attempt before the capture
        0..4usize,                                           // no-op updates after the outcome
        prop::collection::vec((1..50_000i64, 0..3u8), 0..4), // refunds: amount, end state
        prop::collection::vec(0..3usize, 0..3),              // disputes: how far they get
    )
        .prop_map(
            |(pending, outcome, failed_first, noops, refunds, disputes)| {
                let mut out = Vec::new();
                let mut version = 0i64;
                let mut next = |out: &mut Vec<PaymentEvent>,
                                kind,
                                object: Option<String>,
                                amount,
                                status: &str| {
                    version += 1;
                    let n = out.len();
                    out.push(webhook(n, kind, object.as_deref(), amount, version, status));
                };
                for _ in 0..pending {
                    next(
                        &mut out,
                        EventType::PaymentPending,
                        None,
                        100_000,
                        "APPROVED",
                    );
                }
                let outcome = match outcome {
                    0 => EventType::PaymentSucceeded,
                    1 => EventType::PaymentFailed,
                    _ => EventType::PaymentCanceled,
                };
                if failed_first && outcome == EventType::PaymentSucceeded {
                    next(&mut out, EventType::PaymentFailed, None, 100_000, "FAILED");
                }
                next(&mut out, outcome, None, 100_000, "FINAL");
                for _ in 0..noops {
                    next(&mut out, outcome, None, 100_000, "FINAL");
                }
                if outcome == EventType::PaymentSucceeded {
                    for (i, (amount, end)) in refunds.iter().enumerate() {
                        let id = Some(format!("r{i}"));
                        next(
                            &mut out,
                            EventType::RefundPending,
                            id.clone(),
                            *amount,
                            "PENDING",
                        );
                        let end = match end {
                            0 => EventType::RefundSucceeded,
                            1 => EventType::RefundFailed,
                            _ => continue,
                        };
                        next(&mut out, end, id, *amount, "END");
                    }
                }
                for (i, reach) in disputes.iter().enumerate() {
                    let id = Some(format!("dp{i}"));
                    next(
                        &mut out,
                        EventType::DisputeOpened,
                        id.clone(),
                        100_000,
                        "OPEN",
                    );
                    if *reach >= 1 {
                        next(
                            &mut out,
                            EventType::DisputeUpdated,
                            id.clone(),
                            100_000,
                            "REVIEW",
                        );
                    }
                    if *reach >= 2 {
                        next(&mut out, EventType::DisputeClosed, id, 100_000, "WON");
                    }
                }
                out
            },
        )
}

/// A history delivered in any order, some webhooks more than once.
fn deliveries() -> impl Strategy<Value = (Vec<PaymentEvent>, Vec<PaymentEvent>)> {
    history().prop_flat_map(|h| {
        let n = h.len();
        let shuffled = Just(h.clone()).prop_shuffle();
        let repeats = prop::collection::vec(0..n.max(1), 0..3);
        (Just(h), shuffled, repeats).prop_map(|(h, mut order, repeats)| {
            for i in repeats {
                if let Some(w) = h.get(i) {
                    order.push(w.clone());
                }
            }
            (h, order)
        })
    })
}

/// The facts a payment's business events state, which no delivery order may change.
fn facts(events: &[(BusinessEvent, PaymentEvent)]) -> BTreeSet<(BusinessEventType, String, i64)> {
    events
        .iter()
        .filter(|(e, _)| {
            !matches!(
                e.event_type,
                BusinessEventType::PaymentUpdated | BusinessEventType::PaymentFailed
            )
        })
        .map(|(e, w)| {
            let object = match e.event_type {
                BusinessEventType::PaymentSucceeded => String::new(),
                _ => format!(
                    "{}:{}",
                    w.object_id.clone().unwrap_or_default(),
                    w.provider_status.clone().unwrap_or_default()
                ),
            };
            (e.event_type, object, e.refund_delta_minor.unwrap_or(0))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_order_of_a_payments_webhooks_gives_the_same_state_and_the_same_facts(
        (history, order) in deliveries()
    ) {
        let (in_order, in_order_events) = run(&history);
        let (shuffled, shuffled_events) = run(&order);
        prop_assert_eq!(state_of(&shuffled), state_of(&in_order));
        prop_assert_eq!(facts(&shuffled_events), facts(&in_order_events));

        let captured = history.iter().any(|w| w.event_type == EventType::PaymentSucceeded);
        prop_assert_eq!(
            count(&shuffled_events, BusinessEventType::PaymentSucceeded),
            usize::from(captured)
        );
        let failed = history.iter().any(|w| w.event_type == EventType::PaymentFailed);
        let failures = count(&shuffled_events, BusinessEventType::PaymentFailed);
        prop_assert!(failures <= 1);
        if failed && !captured {
            prop_assert_eq!(failures, 1);
        }
        let refunded: i64 = shuffled_events
            .iter()
            .filter_map(|(e, _)| e.refund_delta_minor)
            .sum();
        prop_assert_eq!(refunded, shuffled.refunded_minor(), "the deltas add up to the total");
        for (e, _) in &shuffled_events {
            prop_assert!(e.refund_delta_minor.is_none_or(|d| d > 0));
        }
    }

    #[test]
    fn a_payment_updated_is_only_published_for_a_newer_version(
        (_history, order) in deliveries()
    ) {
        let (_, events) = run(&order);
        let mut newest_state: Option<i64> = None;
        for (e, w) in &events {
            if e.event_type == BusinessEventType::PaymentUpdated && e.change.as_deref() == Some("state") {
                let v = w.object_version.unwrap_or(0);
                prop_assert!(newest_state.is_none_or(|n| v > n), "{v} after {newest_state:?}");
                newest_state = Some(v);
            }
        }
    }
}

#[test]
fn a_refund_that_fails_after_pending_is_recorded_and_published_as_an_update() {
    let (record, events) = run(&[
        webhook(1, EventType::PaymentSucceeded, None, 10_000, 1, "COMPLETED"),
        webhook(2, EventType::RefundPending, Some("r1"), 4_000, 2, "PENDING"),
        webhook(3, EventType::RefundFailed, Some("r1"), 4_000, 3, "FAILED"),
    ]);
    let changes: Vec<Option<&str>> = events.iter().map(|(e, _)| e.change.as_deref()).collect();
    assert_eq!(
        changes,
        [None, Some("refund_pending"), Some("refund_failed")]
    );
    assert_eq!(
        record.refunds["r1"].status,
        payhook_core::payment::RefundStatus::Failed
    );
    assert_eq!(
        record.refunded_minor(),
        0,
        "a failed refund returns nothing"
    );
}

#[test]
fn state_names_are_the_serialised_ones_and_records_live_400_days() {
    for state in [
        PaymentState::Unknown,
        PaymentState::Pending,
        PaymentState::Succeeded,
        PaymentState::Failed,
        PaymentState::Canceled,
    ] {
        assert_eq!(
            serde_json::to_value(state).unwrap(),
            serde_json::json!(state.as_str())
        );
    }
    assert_eq!(
        payhook_core::payment::DEFAULT_PAYMENT_RETENTION_SECS,
        34_560_000
    );
}

#[test]
fn a_refunds_older_or_repeated_status_publishes_nothing() {
    let refund = |n: usize, kind, version: i64, status: &str| {
        webhook(n, kind, Some("r1"), 4_000, version, status)
    };
    let (record, events) = run(&[
        webhook(1, EventType::PaymentSucceeded, None, 10_000, 1, "COMPLETED"),
        refund(2, EventType::RefundPending, 2, "PENDING"),
        // The same status in a newer version: nothing new.
        refund(3, EventType::RefundPending, 3, "PENDING"),
        refund(4, EventType::RefundFailed, 5, "FAILED"),
        // An older version arriving last: stale.
        refund(5, EventType::RefundPending, 4, "PENDING"),
    ]);
    let changes: Vec<Option<&str>> = events.iter().map(|(e, _)| e.change.as_deref()).collect();
    assert_eq!(
        changes,
        [None, Some("refund_pending"), Some("refund_failed")]
    );
    assert_eq!(
        record.refunds["r1"].status,
        payhook_core::payment::RefundStatus::Failed
    );
    let effects: Vec<Effect> = record.applied.iter().map(|a| a.effect).collect();
    assert_eq!(
        effects[2..],
        [Effect::Unchanged, Effect::Transition, Effect::Stale]
    );
}
