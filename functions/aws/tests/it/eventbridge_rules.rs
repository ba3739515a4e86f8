//! The rules in `rules/` on EventBridge (moto): provisioned on a bus of their own with one SQS
//! queue per rule as target, every sample event published through `EventBridgeBus` lands in
//! exactly the queues of the rules the local matcher (`RuleSet::matching`) names — once each,
//! wrapped as the deployed targets hand it to the event processor (`{"rule": …, "event": …}`).
//!
//! Each test uses a fresh bus: in moto one bad rule on a bus breaks every later `PutEvents` on
//! it, so tests must not share one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use payhook_aws::EventBridgeBus;
use payhook_aws::aws_sdk_eventbridge::Client as EventsClient;
use payhook_aws::aws_sdk_sqs::Client as SqsClient;
use payhook_aws::consumer::queue_url;
use payhook_aws::moto::unique_name;
use payhook_aws::provision::{
    Outcome, RULE_QUEUE_TARGET_ID, ResourceKind, StackNames, StackPlan, provision,
};
use payhook_core::event_processor::RoutedEvent;
use payhook_core::payment::PaymentRecord;
use payhook_core::ports::{BusEntry, EntryResult, EventBus};
use payhook_core::processor::{PublishedDetail, TierThresholds};
use payhook_core::{EventType, PaymentEvent, Provider};
use payhook_pattern::{RuleFile, RuleSet, load_rules};
use serde_json::{Value, json};

use crate::support::moto_config;

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn rule_files() -> (Vec<RuleFile>, RuleSet) {
    let loaded = load_rules(&rules_dir()).expect("rules/ loads");
    let files = loaded.iter().map(|(_, rule, _)| rule.clone()).collect();
    (files, RuleSet::from_loaded(&loaded))
}

/// A canonical event of `event_type` for `amount` major units.
fn event(provider: Provider, n: usize, event_type: EventType, amount: f64) -> PaymentEvent {
    let provider_event_id = format!("evt_rules_{n}");
    PaymentEvent {
        webhook_id: PaymentEvent::make_webhook_id(provider, &provider_event_id),
        provider,
        provider_event_id,
        provider_event_type: format!("sample.{}", event_type.as_str()),
        event_type,
        payment_id: format!("pay_{n}"),
        object_id: None,
        amount_minor: (amount * 100.0).round() as i64,
        amount,
        currency: "USD".into(),
        amount_decimal: payhook_core::currency::minor_to_decimal_string(
            (amount * 100.0).round() as i64,
            2,
        ),
        amount_reporting: Some(amount),
        reporting_currency: Some("USD".to_owned()),
        provider_status: None,
        failure_code: (event_type == EventType::PaymentFailed).then(|| "card_declined".into()),
        occurred_at: "2026-01-01T00:00:00Z".into(),
        received_at: Some("2026-01-01T00:00:00.123Z".into()),
        livemode: Some(false),
        account: None,
        merchant_id: None,
        object_updated_at: None,
        object_version: None,
        refunded_total_minor: None,
    }
}

/// The samples: succeeded payments in every tier and on both sides of each threshold, every
/// other normalised type (small and large), from all three providers.
fn samples() -> Vec<PaymentEvent> {
    let mut samples = Vec::new();
    let succeeded = [5000.0, 1000.0, 999.99, 250.0, 100.0, 99.99, 10.0, 0.5];
    for (i, amount) in succeeded.into_iter().enumerate() {
        let provider = Provider::ALL[i % Provider::ALL.len()];
        samples.push(event(
            provider,
            samples.len(),
            EventType::PaymentSucceeded,
            amount,
        ));
    }
    for (i, event_type) in EventType::ALL.into_iter().enumerate() {
        if event_type == EventType::PaymentSucceeded {
            continue;
        }
        for amount in [42.0, 5000.0] {
            let provider = Provider::ALL[(i + samples.len()) % Provider::ALL.len()];
            samples.push(event(provider, samples.len(), event_type, amount));
        }
    }
    // A currency without a reporting rate: no amount rule, only the unrated one.
    let mut unrated = event(
        Provider::Paypal,
        samples.len(),
        EventType::PaymentSucceeded,
        5000.0,
    );
    unrated.currency = "EUR".into();
    unrated.amount_reporting = None;
    unrated.reporting_currency = None;
    samples.push(unrated);
    samples
}

/// The entry a provider processor puts on the bus for `event`, the first webhook of its
/// payment: the business event the payment state machine makes of it.
fn entry(bus: &str, source: &str, event: &PaymentEvent) -> BusEntry {
    let (_, applied) = PaymentRecord::new(event.provider, event.payment_id.clone()).apply(event);
    let business = applied.events[0].clone();
    let detail_type = business.event_type.as_str();
    let detail = PublishedDetail {
        event: event.clone(),
        tier: TierThresholds::default().tier_of(event),
        business_event_id: format!("{}/0", event.webhook_id),
        business_event: Some(business.clone()),
        published_at: Some("2026-01-01T00:00:00.000Z".into()),
    };
    BusEntry {
        event_bus: bus.into(),
        source: source.into(),
        detail_type: detail_type.into(),
        detail: serde_json::to_string(&detail).unwrap(),
        trace_header: None,
    }
}

/// The event as EventBridge hands it to rules, for the local matcher.
fn envelope(entry: &BusEntry) -> Value {
    json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": entry.detail_type,
        "source": entry.source,
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": serde_json::from_str::<Value>(&entry.detail).unwrap(),
    })
}

/// Receives (and deletes) everything in `queue_url`.
async fn drain(sqs: &SqsClient, queue_url: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if output.messages().is_empty() {
            return bodies;
        }
        for message in output.messages() {
            bodies.push(serde_json::from_str(message.body().unwrap_or("null")).unwrap());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// The URL of each rule's target queue, by rule name.
async fn rule_queue_urls(
    sqs: &SqsClient,
    names: &StackNames,
    rules: &RuleSet,
) -> BTreeMap<String, String> {
    let mut queues = BTreeMap::new();
    for rule in rules.names() {
        let name = names.rule_queue(rule);
        let url = queue_url(sqs, &name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no queue {name}"));
        queues.insert(rule.to_owned(), url);
    }
    queues
}

#[tokio::test]
async fn every_sample_event_lands_in_exactly_the_queues_of_the_rules_the_local_matcher_names() {
    let Some(config) = moto_config().await else {
        return;
    };
    let (files, rules) = rule_files();
    assert!(rules.len() >= 6, "rules/ holds {} rules", rules.len());
    let names = StackNames::new(unique_name("eb"))
        .with_event_bus(unique_name("payment-events"))
        .with_table(unique_name("webhook-processing"));
    let mut plan = StackPlan::new(names.clone());
    plan.rules = files.clone();
    plan.rule_queues = true;
    let provisioned = provision(&config, &plan, |_| {}).await.unwrap();
    let targets = provisioned
        .iter()
        .filter(|p| p.kind == ResourceKind::RuleTarget)
        .count();
    assert_eq!(targets, files.len(), "one queue target per rule");

    let sqs = SqsClient::new(&config);
    let events = EventsClient::new(&config);
    let queues = rule_queue_urls(&sqs, &names, &rules).await;

    let bus = EventBridgeBus::new(events);
    let mut published: Vec<(String, BusEntry)> = samples()
        .iter()
        .map(|e| {
            let source = format!("payhook.{}", e.provider);
            (e.webhook_id.clone(), entry(&names.event_bus, &source, e))
        })
        .collect();
    // Not from payhook: no rule may take it, however large.
    let foreign = event(Provider::Stripe, 999, EventType::PaymentSucceeded, 5000.0);
    published.push((
        foreign.webhook_id.clone(),
        entry(&names.event_bus, "acme.billing", &foreign),
    ));

    let mut mismatches = Vec::new();
    let mut rules_hit = BTreeSet::new();
    for (webhook_id, entry) in &published {
        let expected: BTreeSet<String> = rules
            .matching(&envelope(entry))
            .into_iter()
            .map(str::to_owned)
            .collect();
        let results = bus.put_events(std::slice::from_ref(entry)).await.unwrap();
        assert!(
            matches!(results.as_slice(), [EntryResult::Accepted(_)]),
            "{results:?}"
        );
        // moto delivers to SQS targets inside PutEvents: the queues hold the event already.
        let mut landed = BTreeSet::new();
        for (rule, url) in &queues {
            let bodies = drain(&sqs, url).await;
            for body in &bodies {
                // What the event processor takes from its rule targets.
                let routed: RoutedEvent = serde_json::from_value(body.clone()).unwrap();
                assert_eq!(&routed.rule, rule, "{body}");
                assert_eq!(body["event"]["source"], json!(entry.source), "{body}");
                assert_eq!(
                    body["event"]["detail-type"],
                    json!(entry.detail_type),
                    "{body}"
                );
                assert_eq!(
                    body["event"]["detail"]["webhook_id"],
                    json!(webhook_id),
                    "{body}"
                );
            }
            match bodies.len() {
                0 => {}
                1 => {
                    landed.insert(rule.clone());
                }
                n => mismatches.push(format!("{webhook_id}: {n} copies in the `{rule}` queue")),
            }
        }
        if landed != expected {
            mismatches.push(format!(
                "{webhook_id} ({} {} amount {}): EventBridge routed to {landed:?}, the local \
                 matcher says {expected:?}",
                entry.source,
                entry.detail_type,
                serde_json::from_str::<Value>(&entry.detail).unwrap()["amount"]
            ));
        }
        if entry.source.starts_with("payhook.") && expected.is_empty() {
            mismatches.push(format!("{webhook_id}: no rule records this payhook event"));
        }
        rules_hit.extend(landed);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    let all: BTreeSet<String> = rules.names().map(str::to_owned).collect();
    assert_eq!(rules_hit, all, "every rule is exercised by some sample");
}

#[tokio::test]
async fn rules_and_their_queue_targets_are_created_once_and_then_left_alone() {
    let Some(config) = moto_config().await else {
        return;
    };
    let (files, _) = rule_files();
    let names = StackNames::new(unique_name("eb"))
        .with_event_bus(unique_name("payment-events"))
        .with_table(unique_name("webhook-processing"));
    let mut plan = StackPlan::new(names.clone());
    plan.rules = files.clone();
    plan.rule_queues = true;

    let first = provision(&config, &plan, |_| {}).await.unwrap();
    assert!(
        first.iter().all(|p| p.outcome == Outcome::Created),
        "{first:#?}"
    );
    let second = provision(&config, &plan, |_| {}).await.unwrap();
    assert!(
        second.iter().all(|p| p.outcome == Outcome::Unchanged),
        "{second:#?}"
    );

    let events = EventsClient::new(&config);
    for rule in &files {
        let described = events
            .describe_rule()
            .name(&rule.name)
            .event_bus_name(&names.event_bus)
            .send()
            .await
            .unwrap();
        let pattern: Value = serde_json::from_str(described.event_pattern().unwrap()).unwrap();
        assert_eq!(pattern, rule.event_pattern, "{}", rule.name);
        assert_eq!(described.description(), Some(rule.description.as_str()));
        let targets = events
            .list_targets_by_rule()
            .rule(&rule.name)
            .event_bus_name(&names.event_bus)
            .send()
            .await
            .unwrap();
        let [target] = targets.targets() else {
            panic!("{}: {:?}", rule.name, targets.targets());
        };
        assert_eq!(target.id(), RULE_QUEUE_TARGET_ID);
        assert!(target.arn().ends_with(&names.rule_queue(&rule.name)));
        let retry = rule.targets[0].retry_policy.unwrap();
        let policy = target.retry_policy().unwrap();
        assert_eq!(
            policy.maximum_retry_attempts(),
            Some(retry.maximum_retry_attempts as i32)
        );
        assert!(
            target
                .dead_letter_config()
                .and_then(|d| d.arn())
                .unwrap()
                .ends_with(&names.events_dlq())
        );
    }
}
