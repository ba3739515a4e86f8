//! `EventBridgeBus` against moto: entries reach the bus (and a rule's SQS target), the batch
//! limit is enforced, and an unreachable bus is an error.

use std::time::Duration;

use payhook_aws::EventBridgeBus;
use payhook_aws::aws_sdk_eventbridge::Client;
use payhook_aws::aws_sdk_eventbridge::types::Target;
use payhook_aws::aws_sdk_sqs::types::QueueAttributeName;
use payhook_aws::moto::unique_name;
use payhook_core::ports::{BusEntry, EntryResult, EventBus, PUT_EVENTS_MAX_ENTRIES};

use crate::support::{config_for, moto_config, refused_endpoint, within};

fn entry(bus: &str, detail: &str) -> BusEntry {
    BusEntry {
        event_bus: bus.into(),
        source: "payhook.stripe".into(),
        detail_type: "payment.succeeded".into(),
        detail: detail.into(),
        trace_header: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into()),
    }
}

#[tokio::test]
async fn entries_reach_the_bus_and_its_rule_targets() {
    let Some(config) = moto_config().await else {
        return;
    };
    let events = Client::new(&config);
    let sqs = payhook_aws::aws_sdk_sqs::Client::new(&config);
    let bus = unique_name("payment-events");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("audit"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap();
    events
        .put_rule()
        .name("audit")
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["payhook.stripe"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("audit")
        .event_bus_name(&bus)
        .targets(
            Target::builder()
                .id("audit-queue")
                .arn(queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let results = EventBridgeBus::new(events)
        .put_events(&[entry(&bus, r#"{"n":1}"#), entry(&bus, r#"{"n":2}"#)])
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, EntryResult::Accepted(id) if !id.is_empty())),
        "{results:?}"
    );

    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = received
        .messages()
        .iter()
        .filter_map(|m| m.body())
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(
        bodies
            .iter()
            .any(|b| b.contains(r#""n": 1"#) || b.contains(r#""n":1"#)),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn more_than_a_batch_is_refused_before_calling_eventbridge() {
    let config = config_for(&refused_endpoint(), true).await;
    let bus = EventBridgeBus::new(Client::new(&config));
    let entries = vec![entry("payment-events", "{}"); PUT_EVENTS_MAX_ENTRIES + 1];
    let err = bus.put_events(&entries).await.unwrap_err();
    assert!(err.0.contains("limit"), "{err}");
}

#[tokio::test]
async fn unreachable_eventbridge_is_an_error_not_a_hang() {
    let config = config_for(&refused_endpoint(), false).await;
    let bus = EventBridgeBus::new(Client::new(&config));
    let result = within(
        Duration::from_secs(20),
        bus.put_events(&[entry("payment-events", "{}")]),
    )
    .await;
    assert_eq!(result.unwrap_err().code(), "event_bus_unavailable");
}
