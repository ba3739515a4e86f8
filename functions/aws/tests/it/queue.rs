//! `SqsFifoQueue` against moto: FIFO ids, the trace header, size limits, provisioning.

use std::time::Duration;

use payhook_aws::aws_sdk_sqs::Client;
use payhook_aws::aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use payhook_aws::moto::unique_name;
use payhook_aws::queue::{DLQ_RETENTION_SECONDS, dlq_name};
use payhook_aws::{SqsFifoQueue, create_fifo_queue_with_dlq};
use payhook_core::Provider;
use payhook_core::ports::{Queue, QueueError, QueueMessage, SQS_MAX_MESSAGE_BYTES};

use crate::support::{config_for, moto_config, refused_endpoint, within};

const TRACE_HEADER: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn message(provider: Provider, group: &str, dedup: &str, body: &str) -> QueueMessage {
    QueueMessage {
        provider,
        group_id: group.into(),
        deduplication_id: dedup.into(),
        body: body.into(),
        trace_header: Some(TRACE_HEADER.into()),
    }
}

async fn provisioned() -> Option<(Client, String)> {
    let config = moto_config().await?;
    let client = Client::new(&config);
    let name = format!("{}.fifo", unique_name("stripe"));
    let (url, _dlq) = create_fifo_queue_with_dlq(&client, &name, 5, 180)
        .await
        .unwrap();
    Some((client, url))
}

#[tokio::test]
async fn sent_message_carries_group_dedup_id_and_trace_header() {
    let Some((client, url)) = provisioned().await else {
        return;
    };
    let queue = SqsFifoQueue::new(client.clone()).with_queue_url(Provider::Stripe, &url);
    let body = r#"{"event_type":"payment.succeeded"}"#;
    let id = queue
        .send(message(Provider::Stripe, "pi_3Q", "stripe:evt_1", body))
        .await
        .unwrap();
    assert!(!id.is_empty());

    let received = client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .message_system_attribute_names(MessageSystemAttributeName::MessageDeduplicationId)
        .send()
        .await
        .unwrap();
    let [received] = received.messages() else {
        panic!("expected one message, got {:?}", received.messages());
    };
    assert_eq!(received.message_id(), Some(id.as_str()));
    assert_eq!(received.body(), Some(body));
    let attributes = received.attributes().expect("system attributes");
    let attribute = |name| attributes.get(&name).map(String::as_str);
    assert_eq!(
        attribute(MessageSystemAttributeName::AwsTraceHeader),
        Some(TRACE_HEADER)
    );
    assert_eq!(
        attribute(MessageSystemAttributeName::MessageGroupId),
        Some("pi_3Q")
    );
    assert_eq!(
        attribute(MessageSystemAttributeName::MessageDeduplicationId),
        Some("stripe:evt_1")
    );
}

#[tokio::test]
async fn message_without_trace_header_has_none() {
    let Some((client, url)) = provisioned().await else {
        return;
    };
    let queue = SqsFifoQueue::new(client.clone()).with_queue_url(Provider::Stripe, &url);
    let mut untraced = message(Provider::Stripe, "pi_1", "stripe:evt_untraced", "{}");
    untraced.trace_header = None;
    queue.send(untraced).await.unwrap();
    let received = client
        .receive_message()
        .queue_url(&url)
        .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
        .send()
        .await
        .unwrap();
    let [received] = received.messages() else {
        panic!("expected one message")
    };
    let trace = received
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader));
    assert_eq!(trace, None);
}

#[tokio::test]
async fn repeated_deduplication_id_is_delivered_once() {
    let Some((client, url)) = provisioned().await else {
        return;
    };
    let queue = SqsFifoQueue::new(client.clone()).with_queue_url(Provider::Stripe, &url);
    queue
        .send(message(
            Provider::Stripe,
            "pi_1",
            "stripe:evt_dup",
            "{\"n\":1}",
        ))
        .await
        .unwrap();
    // A provider retry: same webhook id, same bytes.
    queue
        .send(message(
            Provider::Stripe,
            "pi_1",
            "stripe:evt_dup",
            "{\"n\":1}",
        ))
        .await
        .unwrap();
    let received = client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages().len(), 1);
}

#[tokio::test]
async fn each_provider_goes_to_its_own_queue() {
    let Some(config) = moto_config().await else {
        return;
    };
    let client = Client::new(&config);
    let mut names = Vec::new();
    for provider in Provider::ALL {
        let name = format!("{}.fifo", unique_name(provider.as_str()));
        create_fifo_queue_with_dlq(&client, &name, 3, 60)
            .await
            .unwrap();
        names.push((provider, name));
    }
    let queue = SqsFifoQueue::from_queue_names(client.clone(), names.clone())
        .await
        .unwrap();
    queue
        .send(message(Provider::Paypal, "PAY-1", "paypal:WH-1", "paypal"))
        .await
        .unwrap();
    for (provider, _) in &names {
        let url = queue.queue_url(*provider).unwrap();
        let received = client
            .receive_message()
            .queue_url(url)
            .send()
            .await
            .unwrap();
        let bodies: Vec<_> = received
            .messages()
            .iter()
            .filter_map(|m| m.body())
            .collect();
        let expected: &[&str] = if *provider == Provider::Paypal {
            &["paypal"]
        } else {
            &[]
        };
        assert_eq!(bodies, expected, "{provider}");
    }
}

#[tokio::test]
async fn oversized_message_is_refused_before_sending() {
    // Nothing listens at the endpoint: reaching SQS would be `Unavailable`, not `TooLarge`.
    let config = config_for(&refused_endpoint(), true).await;
    let queue = SqsFifoQueue::new(Client::new(&config)).with_queue_url(
        Provider::Stripe,
        "http://127.0.0.1:9/000000000000/stripe.fifo",
    );
    assert_eq!(queue.max_message_bytes(), SQS_MAX_MESSAGE_BYTES);
    let body = "x".repeat(SQS_MAX_MESSAGE_BYTES + 1);
    let err = queue
        .send(message(Provider::Stripe, "pi_1", "stripe:evt_big", &body))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        QueueError::TooLarge {
            size: SQS_MAX_MESSAGE_BYTES + 1,
            limit: SQS_MAX_MESSAGE_BYTES
        }
    );
    assert_eq!(err.code(), "payload_too_large");

    let small = queue.with_max_message_bytes(10);
    assert!(matches!(
        small
            .send(message(
                Provider::Stripe,
                "pi_1",
                "stripe:evt_11",
                "01234567890"
            ))
            .await,
        Err(QueueError::TooLarge {
            size: 11,
            limit: 10
        })
    ));
}

#[tokio::test]
async fn largest_allowed_message_is_accepted_by_sqs() {
    let Some((client, url)) = provisioned().await else {
        return;
    };
    let queue = SqsFifoQueue::new(client).with_queue_url(Provider::Stripe, &url);
    let body = "x".repeat(SQS_MAX_MESSAGE_BYTES);
    queue
        .send(message(Provider::Stripe, "pi_1", "stripe:evt_max", &body))
        .await
        .unwrap();
}

#[tokio::test]
async fn provider_without_a_queue_is_unavailable() {
    let Some((client, url)) = provisioned().await else {
        return;
    };
    let queue = SqsFifoQueue::new(client).with_queue_url(Provider::Stripe, url);
    let err = queue
        .send(message(Provider::Square, "sq_1", "square:evt_1", "{}"))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unreachable_sqs_is_unavailable_not_a_hang() {
    let config = config_for(&refused_endpoint(), false).await;
    let queue = SqsFifoQueue::new(Client::new(&config)).with_queue_url(
        Provider::Stripe,
        "http://127.0.0.1:9/000000000000/stripe.fifo",
    );
    let result = within(
        Duration::from_secs(20),
        queue.send(message(Provider::Stripe, "pi_1", "stripe:evt_1", "{}")),
    )
    .await;
    match result {
        Err(err @ QueueError::Unavailable(_)) => assert_eq!(err.code(), "queue_unavailable"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn fifo_queue_is_created_with_its_dlq_and_redrive_policy() {
    let Some(config) = moto_config().await else {
        return;
    };
    let client = Client::new(&config);
    let name = format!("{}.fifo", unique_name("square"));
    let (url, dlq_url) = create_fifo_queue_with_dlq(&client, &name, 4, 180)
        .await
        .unwrap();
    assert!(url.ends_with(&name), "{url}");
    assert!(dlq_url.ends_with(&dlq_name(&name)), "{dlq_url}");
    let again = create_fifo_queue_with_dlq(&client, &name, 4, 180)
        .await
        .unwrap();
    assert_eq!(
        again,
        (url.clone(), dlq_url.clone()),
        "provisioning twice is a no-op"
    );

    let attributes = |url: String| {
        let client = client.clone();
        async move {
            client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .unwrap()
                .attributes()
                .cloned()
                .unwrap_or_default()
        }
    };
    let dlq = attributes(dlq_url).await;
    let main = attributes(url).await;
    let get = |map: &std::collections::HashMap<QueueAttributeName, String>, name| {
        map.get(&name).cloned().unwrap_or_default()
    };
    assert_eq!(get(&dlq, QueueAttributeName::FifoQueue), "true");
    assert_eq!(
        get(&dlq, QueueAttributeName::MessageRetentionPeriod),
        DLQ_RETENTION_SECONDS.to_string()
    );
    assert_eq!(get(&main, QueueAttributeName::FifoQueue), "true");
    assert_eq!(
        get(&main, QueueAttributeName::ContentBasedDeduplication),
        "true"
    );
    assert_eq!(get(&main, QueueAttributeName::VisibilityTimeout), "180");
    let redrive = get(&main, QueueAttributeName::RedrivePolicy);
    assert!(
        redrive.contains(&get(&dlq, QueueAttributeName::QueueArn)),
        "{redrive}"
    );
    assert!(
        redrive.replace(' ', "").contains(r#""maxReceiveCount":4"#),
        "{redrive}"
    );
}

#[tokio::test]
async fn non_fifo_name_is_refused() {
    let config = config_for(&refused_endpoint(), true).await;
    let err = create_fifo_queue_with_dlq(&Client::new(&config), "stripe", 5, 60)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_resource_definition");
}

#[tokio::test]
async fn consumer_receives_records_deletes_them_and_reports_depths() {
    use payhook_aws::SqsConsumer;

    let Some(config) = crate::support::moto_config().await else {
        return;
    };
    let client = Client::new(&config);
    let name = format!("{}.fifo", unique_name("consumer"));
    // One receive before the DLQ, one second of visibility: an unacknowledged message is
    // dead-lettered by the receive after it comes back.
    let (url, dlq_url) = create_fifo_queue_with_dlq(&client, &name, 1, 1)
        .await
        .unwrap();
    let queue = SqsFifoQueue::new(client.clone()).with_queue_url(Provider::Square, &url);
    for (i, group) in ["pay_a", "pay_a", "pay_b"].iter().enumerate() {
        queue
            .send(message(
                Provider::Square,
                group,
                &format!("square:evt_{i}"),
                &format!(r#"{{"n":{i}}}"#),
            ))
            .await
            .unwrap();
    }
    let consumer = SqsConsumer::new(client.clone(), &url);
    assert_eq!(consumer.depth().await.unwrap().visible, 3);

    let received = within(Duration::from_secs(10), consumer.receive(10, 1, None))
        .await
        .unwrap();
    assert_eq!(received.len(), 3, "{received:?}");
    let first = &received[0];
    assert_eq!(first.record.body, r#"{"n":0}"#);
    assert_eq!(first.record.group_id, "pay_a");
    assert_eq!(first.record.receive_count, 1);
    assert_eq!(first.record.trace_header.as_deref(), Some(TRACE_HEADER));
    assert!(first.sent_timestamp_ms.is_some_and(|ms| ms > 0));
    let depth = consumer.depth().await.unwrap();
    assert_eq!((depth.visible, depth.in_flight), (0, 3));

    // Acknowledge all but the last: it comes back after its visibility timeout and, past
    // maxReceiveCount, goes to the DLQ instead of being delivered again.
    let done: Vec<&str> = received[..2]
        .iter()
        .map(|r| r.receipt_handle.as_str())
        .collect();
    assert_eq!(consumer.delete(&done).await.unwrap(), 0);
    let depth = consumer.depth().await.unwrap();
    assert_eq!((depth.visible, depth.in_flight), (0, 1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = consumer.receive(10, 1, None).await.unwrap();
    assert!(
        again.is_empty(),
        "dead-lettered, not redelivered: {again:?}"
    );
    assert!(consumer.depth().await.unwrap().is_empty());
    let dlq = SqsConsumer::new(client, &dlq_url);
    assert_eq!(dlq.depth().await.unwrap().visible, 1);
}
