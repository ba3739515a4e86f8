//! The in-memory SQS FIFO emulation keeps AWS's delivery semantics: group order and the
//! in-flight group lock, the deduplication window, visibility timeouts, the redrive policy, DLQ
//! redrive, receipt handles, limits and long polling.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use payhook_core::Provider;
use payhook_core::ports::{Queue, QueueError, QueueMessage, SQS_MAX_MESSAGE_BYTES};
use payhook_memory::sqs::{
    DEDUPLICATION_WINDOW_MS, FifoQueue, FifoQueueConfig, ManualClock, MemorySqs, QueueStats,
    ReceivedMessage, SendMessage, SqsError,
};
use proptest::prelude::*;

const T0: i64 = 1_767_225_600_000;
const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn queue(config: FifoQueueConfig) -> (Arc<ManualClock>, Arc<FifoQueue>) {
    let clock = Arc::new(ManualClock::new(T0));
    let queue = FifoQueue::new(config, clock.clone()).expect("valid config");
    (clock, Arc::new(queue))
}

fn stripe() -> FifoQueueConfig {
    FifoQueueConfig::new("stripe.fifo")
}

fn message(group: &str, dedup: &str, body: &str) -> SendMessage {
    SendMessage::new(group, body).deduplication_id(dedup)
}

fn send(queue: &FifoQueue, group: &str, dedup: &str, body: &str) -> String {
    let receipt = queue.send(message(group, dedup, body)).expect("send");
    assert!(!receipt.duplicate, "{dedup} unexpectedly a duplicate");
    receipt.message_id
}

fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

fn delete_all(queue: &FifoQueue, messages: &[ReceivedMessage]) {
    for m in messages {
        queue.delete(&m.receipt_handle).expect("delete");
    }
}

#[test]
fn per_group_order_is_kept() {
    let (_clock, q) = queue(stripe());
    for (group, body) in [
        ("a", "a1"),
        ("b", "b1"),
        ("a", "a2"),
        ("b", "b2"),
        ("a", "a3"),
    ] {
        send(&q, group, body, body);
    }
    // One at a time: each group's messages come in send order.
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    loop {
        let batch = q.receive(1).unwrap();
        let Some(m) = batch.first() else { break };
        seen.entry(m.attributes.message_group_id.clone())
            .or_default()
            .push(m.body.clone());
        q.delete(&m.receipt_handle).unwrap();
    }
    assert_eq!(seen["a"], ["a1", "a2", "a3"]);
    assert_eq!(seen["b"], ["b1", "b2"]);

    // In one batch: a group's messages together and in order, then the next group's.
    for (group, body) in [("a", "a4"), ("b", "b3"), ("a", "a5"), ("b", "b4")] {
        send(&q, group, body, body);
    }
    let batch = q.receive(10).unwrap();
    assert_eq!(bodies(&batch), ["a4", "a5", "b3", "b4"]);
    let sequence: Vec<u64> = batch.iter().map(|m| m.attributes.sequence_number).collect();
    assert!(sequence[0] < sequence[1] && sequence[2] < sequence[3]);
}

#[test]
fn in_flight_group_is_locked() {
    let (clock, q) = queue(stripe());
    send(&q, "a", "a1", "a1");
    send(&q, "a", "a2", "a2");
    send(&q, "b", "b1", "b1");

    let first = q.receive(1).unwrap();
    assert_eq!(bodies(&first), ["a1"]);
    // a2 is visible but its group has a1 in flight: only b1 comes.
    let second = q.receive(10).unwrap();
    assert_eq!(bodies(&second), ["b1"]);
    assert!(q.receive(10).unwrap().is_empty());
    assert_eq!(
        q.stats(),
        QueueStats {
            visible: 1,
            in_flight: 2,
            delayed: 0,
            dlq_depth: 0
        }
    );

    // Still locked just before a1's visibility ends ...
    clock.advance(29_999);
    q.delete(&second[0].receipt_handle).unwrap();
    assert!(q.receive(10).unwrap().is_empty());
    // ... and unlocked by deleting a1.
    q.delete(&first[0].receipt_handle).unwrap();
    assert_eq!(bodies(&q.receive(10).unwrap()), ["a2"]);
}

#[test]
fn dedup_window_holds_after_deletion() {
    let (clock, q) = queue(stripe());
    let id = send(&q, "pi_1", "stripe:evt_1", "first");
    let batch = q.receive(10).unwrap();
    delete_all(&q, &batch);
    assert!(q.is_idle());

    clock.advance(DEDUPLICATION_WINDOW_MS - 1);
    let again = q
        .send(message("pi_1", "stripe:evt_1", "a retry with another body"))
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message_id, id);
    assert!(q.receive(10).unwrap().is_empty());
    assert!(q.is_idle());
}

#[test]
fn dedup_expires_after_five_minutes() {
    let (clock, q) = queue(stripe());
    let id = send(&q, "pi_1", "stripe:evt_1", "first");
    clock.advance(60_000);
    // A duplicate does not extend the window: it runs from the first send.
    assert!(
        q.send(message("pi_1", "stripe:evt_1", "dup"))
            .unwrap()
            .duplicate
    );
    clock.advance(DEDUPLICATION_WINDOW_MS - 60_000 - 1);
    assert!(
        q.send(message("pi_1", "stripe:evt_1", "dup"))
            .unwrap()
            .duplicate
    );

    clock.advance(1);
    let later = q.send(message("pi_1", "stripe:evt_1", "second")).unwrap();
    assert!(!later.duplicate);
    assert_ne!(later.message_id, id);
    assert_eq!(bodies(&q.receive(10).unwrap()), ["first", "second"]);
}

#[test]
fn content_based_deduplication_uses_the_body_sha256() {
    let (clock, q) = queue(stripe().content_based_deduplication(true));
    let first = q.send(SendMessage::new("pi_1", "abc")).unwrap();
    let dup = q.send(SendMessage::new("pi_1", "abc")).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.message_id, first.message_id);
    // An explicit deduplication id wins over the content hash.
    assert!(!q.send(message("pi_1", "evt_2", "abc")).unwrap().duplicate);

    let batch = q.receive(10).unwrap();
    assert_eq!(
        batch[0].attributes.message_deduplication_id,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(batch[1].attributes.message_deduplication_id, "evt_2");
    clock.advance(DEDUPLICATION_WINDOW_MS);
    assert!(!q.send(SendMessage::new("pi_1", "abc")).unwrap().duplicate);
}

#[test]
fn deduplication_id_is_required_without_content_based_deduplication() {
    let (_clock, q) = queue(stripe());
    assert_eq!(
        q.send(SendMessage::new("pi_1", "body")),
        Err(SqsError::MissingDeduplicationId)
    );
    assert_eq!(
        q.send(message("pi_1", "", "body")),
        Err(SqsError::MissingDeduplicationId)
    );
}

#[test]
fn group_and_deduplication_ids_follow_sqs_rules() {
    let (_clock, q) = queue(stripe());
    for bad in ["", "has space", "ünicode", &"x".repeat(129)] {
        let err = q.send(message(bad, "d", "body")).unwrap_err();
        assert_eq!(err.code(), "invalid_group_id", "{bad:?}");
    }
    let err = q.send(message("g", &"x".repeat(129), "body")).unwrap_err();
    assert_eq!(err.code(), "invalid_deduplication_id");
    assert!(
        q.send(message(&"g".repeat(128), "stripe:evt_1!#", "body"))
            .is_ok()
    );
}

#[test]
fn visibility_timeout_redelivers_with_incremented_count() {
    let (clock, q) = queue(stripe().visibility_timeout_secs(60));
    send(&q, "pi_1", "evt_1", "body");
    let first = q.receive(10).unwrap();
    assert_eq!(first[0].attributes.approximate_receive_count, 1);

    clock.advance(59_999);
    assert!(q.receive(10).unwrap().is_empty());
    clock.advance(1);
    let second = q.receive(10).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].attributes.approximate_receive_count, 2);
    assert_ne!(second[0].receipt_handle, first[0].receipt_handle);
    assert_eq!(
        second[0].attributes.approximate_first_receive_timestamp_ms,
        Some(T0)
    );

    // The queue's timeout can change; later receives use the new one.
    q.set_visibility_timeout_secs(5).unwrap();
    clock.advance(60_000);
    let third = q.receive(10).unwrap();
    assert_eq!(third[0].attributes.approximate_receive_count, 3);
    clock.advance(5_000);
    assert_eq!(
        q.receive(10).unwrap()[0]
            .attributes
            .approximate_receive_count,
        4
    );
}

#[test]
fn change_visibility_extends_or_releases_one_delivery() {
    let (clock, q) = queue(stripe());
    send(&q, "pi_1", "evt_1", "body");
    let batch = q.receive(10).unwrap();
    let handle = &batch[0].receipt_handle;

    q.change_visibility(handle, 120).unwrap();
    clock.advance(119_999);
    assert!(q.receive(10).unwrap().is_empty());
    clock.advance(1);
    let again = q.receive(10).unwrap();
    assert_eq!(again.len(), 1);
    // The old handle's delivery is over.
    assert_eq!(
        q.change_visibility(handle, 10),
        Err(SqsError::ReceiptHandleExpired)
    );

    // 0 releases at once.
    q.change_visibility(&again[0].receipt_handle, 0).unwrap();
    let released = q.receive(10).unwrap();
    assert_eq!(released[0].attributes.approximate_receive_count, 3);

    assert_eq!(
        q.change_visibility(&released[0].receipt_handle, 43_201),
        Err(SqsError::InvalidVisibilityTimeout(43_201))
    );
    q.delete(&released[0].receipt_handle).unwrap();
    assert_eq!(
        q.change_visibility(&released[0].receipt_handle, 10),
        Err(SqsError::MessageNotInFlight)
    );
}

#[test]
fn max_receive_count_moves_to_dlq() {
    let (clock, q) = queue(stripe().max_receive_count(2));
    let first_id = q
        .send(message("pi_1", "evt_1", "poison").trace_header(TRACE))
        .unwrap()
        .message_id;
    send(&q, "pi_1", "evt_2", "next");

    for count in 1..=2 {
        let batch = q.receive(1).unwrap();
        assert_eq!(bodies(&batch), ["poison"]);
        assert_eq!(batch[0].attributes.approximate_receive_count, count);
        clock.advance(30_000);
    }
    // The third receive would exceed maxReceiveCount: the message moves, the group goes on.
    let batch = q.receive(1).unwrap();
    assert_eq!(bodies(&batch), ["next"]);
    assert_eq!(batch[0].attributes.approximate_receive_count, 1);

    let dead = q.dlq_messages().unwrap();
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(d.message_id, first_id);
    assert_eq!(d.body, "poison");
    assert!(!d.in_flight);
    assert_eq!(d.attributes.message_group_id, "pi_1");
    assert_eq!(d.attributes.message_deduplication_id, "evt_1");
    assert_eq!(d.attributes.approximate_receive_count, 2);
    assert_eq!(d.attributes.aws_trace_header.as_deref(), Some(TRACE));
    assert_eq!(
        d.attributes.dead_letter_queue_source.as_deref(),
        Some("stripe.fifo")
    );
    assert_eq!(q.dlq().unwrap().name(), "stripe-dlq.fifo");
    assert_eq!(
        q.stats(),
        QueueStats {
            visible: 0,
            in_flight: 1,
            delayed: 0,
            dlq_depth: 1
        }
    );
    // Listing does not consume.
    assert_eq!(q.dlq_messages().unwrap().len(), 1);
}

#[test]
fn redrive_moves_back_in_order_without_loss_or_duplication() {
    let (clock, q) = queue(stripe().max_receive_count(1));
    let sends = [
        ("g1", "m1"),
        ("g2", "m2"),
        ("g1", "m3"),
        ("g2", "m4"),
        ("g3", "m5"),
    ];
    for (group, body) in sends {
        send(&q, group, &format!("stripe:{body}"), body);
    }
    assert_eq!(q.receive(10).unwrap().len(), 5);
    clock.advance(30_000);
    assert!(q.receive(10).unwrap().is_empty(), "all dead-lettered");
    let dead = q.dlq_messages().unwrap();
    assert_eq!(dead.len(), 5);
    assert_eq!(q.stats().dlq_depth, 5);

    let mut progress = Vec::new();
    let moved = q
        .redrive_dlq_with(|r| progress.push(r.message_id.clone()))
        .unwrap();
    assert_eq!(moved, 5);
    let dead_ids: Vec<String> = dead.iter().map(|d| d.message_id.clone()).collect();
    assert_eq!(progress, dead_ids, "moved in the DLQ's order");
    assert!(q.dlq_messages().unwrap().is_empty());
    assert_eq!(q.redrive_dlq().unwrap().len(), 0, "nothing moves twice");

    // The original deduplication ids are still in their window: a resend is swallowed ...
    assert!(q.send(message("g1", "stripe:m1", "m1")).unwrap().duplicate);
    // ... but the redriven messages are all delivered, once each, in group order.
    let redelivered = q.receive(10).unwrap();
    let mut by_group: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in &redelivered {
        by_group
            .entry(m.attributes.message_group_id.as_str())
            .or_default()
            .push(m.body.as_str());
        assert_eq!(m.attributes.approximate_receive_count, 1);
        assert!(
            m.attributes
                .message_deduplication_id
                .starts_with(&format!("stripe:{}:redrive:", m.body)),
            "{}",
            m.attributes.message_deduplication_id
        );
    }
    assert_eq!(redelivered.len(), 5);
    assert_eq!(by_group["g1"], ["m1", "m3"]);
    assert_eq!(by_group["g2"], ["m2", "m4"]);
    assert_eq!(by_group["g3"], ["m5"]);
    let ids: HashSet<&str> = redelivered.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids, dead_ids.iter().map(String::as_str).collect());
    delete_all(&q, &redelivered);
    assert!(q.is_idle());
    assert_eq!(q.stats(), QueueStats::default());
}

#[test]
fn redrive_leaves_groups_received_from_the_dlq() {
    let (clock, q) = queue(stripe().max_receive_count(1));
    send(&q, "g1", "m1", "m1");
    send(&q, "g2", "m2", "m2");
    q.receive(10).unwrap();
    clock.advance(30_000);
    q.receive(10).unwrap();
    let dlq = q.dlq().unwrap();
    let taken = dlq.receive(1).unwrap();
    assert_eq!(bodies(&taken), ["m1"]);

    let moved = q.redrive_dlq().unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].group_id, "g2");
    assert_eq!(dlq.list_messages().len(), 1);
    dlq.delete(&taken[0].receipt_handle).unwrap();
}

#[test]
fn stale_receipt_handle_does_not_delete_new_delivery() {
    let (clock, q) = queue(stripe());
    send(&q, "pi_1", "evt_1", "body");
    let first = q.receive(10).unwrap();
    clock.advance(30_000);
    let second = q.receive(10).unwrap();
    assert_eq!(second[0].message_id, first[0].message_id);

    assert_eq!(
        q.delete(&first[0].receipt_handle),
        Err(SqsError::ReceiptHandleExpired)
    );
    assert_eq!(q.stats().in_flight, 1, "the new delivery is untouched");

    q.delete(&second[0].receipt_handle).unwrap();
    assert!(q.is_idle());
    // Deleting a message already gone is not an error, as with DeleteMessage.
    q.delete(&second[0].receipt_handle).unwrap();
}

#[test]
fn expired_receipt_handle_is_refused_before_redelivery() {
    let (clock, q) = queue(stripe());
    send(&q, "pi_1", "evt_1", "body");
    let first = q.receive(10).unwrap();
    clock.advance(30_000);
    assert_eq!(
        q.delete(&first[0].receipt_handle),
        Err(SqsError::ReceiptHandleExpired)
    );
    assert_eq!(q.stats().visible, 1, "the message is not lost");
}

#[test]
fn foreign_receipt_handles_are_invalid() {
    let (_clock, q) = queue(stripe());
    let (_other_clock, other) = queue(FifoQueueConfig::new("paypal.fifo"));
    send(&other, "g", "d", "body");
    let handle = other.receive(1).unwrap().remove(0).receipt_handle;
    assert_eq!(q.delete(&handle), Err(SqsError::ReceiptHandleIsInvalid));
    assert_eq!(q.delete("garbage"), Err(SqsError::ReceiptHandleIsInvalid));
    assert_eq!(
        q.change_visibility("", 0),
        Err(SqsError::ReceiptHandleIsInvalid)
    );
}

#[test]
fn batch_receive_clamps_to_ten() {
    let (_clock, q) = queue(stripe());
    for i in 0..25 {
        send(&q, "one-group", &format!("a{i}"), &format!("a{i}"));
        send(
            &q,
            &format!("group-{i}"),
            &format!("b{i}"),
            &format!("b{i}"),
        );
    }
    let batch = q.receive(10).unwrap();
    assert_eq!(batch.len(), 10);
    assert_eq!(q.receive(10).unwrap().len(), 10);
    assert_eq!(q.receive(0), Err(SqsError::InvalidBatchSize(0)));
    assert_eq!(q.receive(11), Err(SqsError::InvalidBatchSize(11)));
    assert_eq!(q.receive(11).unwrap_err().code(), "invalid_batch_size");

    let handles: Vec<&str> = batch.iter().map(|m| m.receipt_handle.as_str()).collect();
    let results = q.delete_batch(&handles).unwrap();
    assert!(results.iter().all(Result::is_ok));
    let eleven: Vec<&str> = vec!["x"; 11];
    assert_eq!(q.delete_batch(&eleven), Err(SqsError::InvalidBatchSize(11)));
}

#[tokio::test]
async fn too_large_is_rejected() {
    let (_clock, q) = queue(stripe());
    let too_big = "x".repeat(SQS_MAX_MESSAGE_BYTES + 1);
    assert_eq!(
        q.send(message("g", "d1", &too_big)),
        Err(SqsError::TooLarge {
            size: SQS_MAX_MESSAGE_BYTES + 1,
            limit: SQS_MAX_MESSAGE_BYTES
        })
    );
    assert!(
        q.send(message("g", "d2", &"x".repeat(SQS_MAX_MESSAGE_BYTES)))
            .is_ok()
    );
    assert_eq!(q.send(message("g", "d3", "")), Err(SqsError::EmptyBody));

    let sqs = MemorySqs::new(Arc::new(ManualClock::new(T0)));
    let err = sqs
        .send(QueueMessage {
            provider: Provider::Square,
            group_id: "g".into(),
            deduplication_id: "d".into(),
            body: too_big,
            trace_header: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::TooLarge { .. }));
    assert_eq!(err.code(), "payload_too_large");
    assert!(sqs.is_idle());
}

#[tokio::test]
async fn long_poll_wakes_on_send() {
    let (_clock, q) = queue(stripe());
    let poller = {
        let q = q.clone();
        tokio::spawn(async move { q.receive_wait(10, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(&q, "pi_1", "evt_1", "wake up");
    // Bounded only so that a broken wake-up fails instead of hanging for 20 s.
    let received = tokio::time::timeout(Duration::from_secs(10), poller)
        .await
        .expect("the poller woke on the send")
        .unwrap()
        .unwrap();
    assert_eq!(bodies(&received), ["wake up"]);
}

#[tokio::test]
async fn long_poll_returns_empty_after_the_wait() {
    let (_clock, q) = queue(stripe());
    let received = q.receive_wait(10, Duration::from_millis(30)).await.unwrap();
    assert!(received.is_empty());
    assert_eq!(
        q.receive_wait(10, Duration::from_secs(21)).await,
        Err(SqsError::InvalidWaitTime(Duration::from_secs(21)))
    );
}

#[tokio::test]
async fn waiters_wake_when_visibility_expires() {
    let clock = Arc::new(ManualClock::new(T0));
    let sqs_manual = Arc::new(MemorySqs::new(clock.clone()));
    let q = sqs_manual.queue(Provider::Paypal).clone();
    q.send(message("g", "d", "body")).unwrap();
    q.receive(10).unwrap();
    assert!(
        !sqs_manual
            .wait_for_messages(Duration::from_millis(30))
            .await
    );

    let waiter = {
        let sqs = sqs_manual.clone();
        tokio::spawn(async move { sqs.wait_for_messages(Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    clock.advance(30_000);
    let woke = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter noticed the expiry")
        .unwrap();
    assert!(woke);
    assert_eq!(
        q.receive(10).unwrap()[0]
            .attributes
            .approximate_receive_count,
        2
    );
}

#[tokio::test]
async fn memory_sqs_routes_by_provider_through_the_queue_port() {
    let clock = Arc::new(ManualClock::new(T0));
    let sqs = MemorySqs::new(clock.clone());
    let port: &dyn Queue = &sqs;
    let sent = QueueMessage {
        provider: Provider::Paypal,
        group_id: "CAPTURE-1".into(),
        deduplication_id: "paypal:WH-1".into(),
        body: r#"{"webhook_id":"paypal:WH-1"}"#.into(),
        trace_header: Some(TRACE.into()),
    };
    let id = port.send(sent.clone()).await.unwrap();
    assert_eq!(
        port.send(sent).await.unwrap(),
        id,
        "duplicate returns the original id"
    );

    assert!(sqs.queue(Provider::Stripe).receive(10).unwrap().is_empty());
    assert!(sqs.queue(Provider::Square).receive(10).unwrap().is_empty());
    assert_eq!(sqs.queue(Provider::Paypal).name(), "paypal.fifo");
    assert!(!sqs.is_idle());
    let batch = sqs.queue(Provider::Paypal).receive(10).unwrap();
    assert_eq!(batch.len(), 1);
    let attributes = batch[0].attributes.to_map();
    assert_eq!(attributes["AWSTraceHeader"], TRACE);
    assert_eq!(attributes["MessageGroupId"], "CAPTURE-1");
    assert_eq!(attributes["MessageDeduplicationId"], "paypal:WH-1");
    assert_eq!(attributes["ApproximateReceiveCount"], "1");
    assert_eq!(attributes["SentTimestamp"], T0.to_string());
    assert_eq!(
        attributes["ApproximateFirstReceiveTimestamp"],
        T0.to_string()
    );

    let stats = sqs.stats();
    assert_eq!(stats[&Provider::Paypal].in_flight, 1);
    assert!(!sqs.is_idle());
    sqs.queue(Provider::Paypal)
        .delete(&batch[0].receipt_handle)
        .unwrap();
    assert!(sqs.is_idle());
}

#[test]
fn provider_queues_are_configured_as_deployed() {
    let sqs = MemorySqs::new(Arc::new(ManualClock::new(T0)));
    for provider in Provider::ALL {
        let q = sqs.queue(provider);
        assert_eq!(q.name(), format!("{provider}.fifo"));
        assert_eq!(q.max_receive_count(), Some(5));
        assert_eq!(q.visibility_timeout_secs(), 30);
        assert_eq!(
            sqs.dlq(provider).unwrap().name(),
            format!("{provider}-dlq.fifo")
        );
    }
    let configured = MemorySqs::with_config(Arc::new(ManualClock::new(T0)), |p| {
        FifoQueueConfig::for_provider(p).visibility_timeout_secs(1800)
    })
    .unwrap();
    assert_eq!(
        configured.queue(Provider::Square).visibility_timeout_secs(),
        1800
    );
    let refused = MemorySqs::with_config(Arc::new(ManualClock::new(T0)), |p| {
        FifoQueueConfig::new(p.as_str())
    });
    assert_eq!(refused.unwrap_err().code(), "invalid_queue_attribute");
    assert!(
        FifoQueue::new(
            stripe().max_receive_count(0),
            Arc::new(ManualClock::new(T0))
        )
        .is_err()
    );
}

#[test]
fn is_idle_ignores_parked_dead_letters() {
    let clock = Arc::new(ManualClock::new(T0));
    let sqs = MemorySqs::with_config(clock.clone(), |p| {
        FifoQueueConfig::for_provider(p).max_receive_count(1)
    })
    .unwrap();
    let q = sqs.queue(Provider::Stripe);
    q.send(message("g", "d", "poison")).unwrap();
    q.receive(10).unwrap();
    clock.advance(30_000);
    assert!(!sqs.is_idle());
    assert!(q.receive(10).unwrap().is_empty());
    assert!(sqs.is_idle());
    assert_eq!(sqs.stats()[&Provider::Stripe].dlq_depth, 1);
    assert_eq!(sqs.dlq_messages(Provider::Stripe).unwrap().len(), 1);
    let mut moved = 0;
    assert_eq!(sqs.redrive(Provider::Stripe, |_| moved += 1).unwrap(), 1);
    assert_eq!(moved, 1);
    assert!(!sqs.is_idle());
}

// ---------------------------------------------------------------------------------------------
// Property: random sends, receives, deletes, visibility changes, redrives and time advances
// never lose a message, never deliver one twice at once, and never break group order.

const VISIBILITY_MS: i64 = 30_000;
const MAX_RECEIVES: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    Send { group: u8, dedup: u8 },
    Receive { max: usize },
    Delete { pick: usize },
    ChangeVisibility { pick: usize, secs: u32 },
    Advance { ms: i64 },
    Redrive,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..4, 0u8..24).prop_map(|(group, dedup)| Op::Send { group, dedup }),
        4 => (1usize..=10).prop_map(|max| Op::Receive { max }),
        4 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
        1 => (any::<usize>(), 0u32..90).prop_map(|(pick, secs)| Op::ChangeVisibility { pick, secs }),
        3 => prop_oneof![0i64..40_000, Just(VISIBILITY_MS), Just(DEDUPLICATION_WINDOW_MS)]
            .prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Redrive),
    ]
}

#[derive(Debug)]
struct Live {
    group: String,
    receive_count: u32,
    /// Current delivery: (receipt handle, visibility deadline).
    lease: Option<(String, i64)>,
    /// Bumped by each redrive: handles of an earlier stay in the source queue are void.
    incarnation: u32,
}

/// What the queue must look like, kept by hand beside it.
struct Model {
    clock: Arc<ManualClock>,
    queue: Arc<FifoQueue>,
    live: HashMap<String, Live>,
    /// Per group, the live message ids in queue order.
    order: HashMap<String, Vec<String>>,
    dead: Vec<String>,
    deleted: HashSet<String>,
    accepted: HashSet<String>,
    dedup: HashMap<String, (i64, String)>,
    handles: Vec<(String, String, u32)>,
    incarnations: HashMap<String, u32>,
    sends: usize,
}

impl Model {
    fn new() -> Self {
        let (clock, queue) = queue(stripe().max_receive_count(MAX_RECEIVES));
        Model {
            clock,
            queue,
            live: HashMap::new(),
            order: HashMap::new(),
            dead: Vec::new(),
            deleted: HashSet::new(),
            accepted: HashSet::new(),
            dedup: HashMap::new(),
            handles: Vec::new(),
            incarnations: HashMap::new(),
            sends: 0,
        }
    }

    fn now(&self) -> i64 {
        use payhook_core::ports::Clock;
        self.clock.now_ms()
    }

    fn in_flight(&self, id: &str) -> bool {
        let now = self.now();
        self.live[id]
            .lease
            .as_ref()
            .is_some_and(|(_, deadline)| now < *deadline)
    }

    fn forget(&mut self, id: &str) -> Live {
        let live = self.live.remove(id).expect("live");
        self.order
            .get_mut(&live.group)
            .expect("group")
            .retain(|other| other != id);
        live
    }

    #[expect(
        clippy::too_many_lines,
        reason = "the model's transition function: one arm per queue operation, as the model-based test needs them side by side"
    )]
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Send { group, dedup } => {
                self.sends += 1;
                let (group, dedup) = (format!("g{group}"), format!("d{dedup}"));
                let receipt = self
                    .queue
                    .send(message(&group, &dedup, &format!("body-{}", self.sends)))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let now = self.now();
                match self.dedup.get(&dedup) {
                    Some((first, id)) if now < first + DEDUPLICATION_WINDOW_MS => {
                        prop_assert!(receipt.duplicate);
                        prop_assert_eq!(&receipt.message_id, id);
                    }
                    _ => {
                        prop_assert!(!receipt.duplicate);
                        let id = receipt.message_id;
                        prop_assert!(self.accepted.insert(id.clone()), "fresh id");
                        self.dedup.insert(dedup, (now, id.clone()));
                        self.order
                            .entry(group.clone())
                            .or_default()
                            .push(id.clone());
                        self.incarnations.insert(id.clone(), 0);
                        self.live.insert(
                            id,
                            Live {
                                group,
                                receive_count: 0,
                                lease: None,
                                incarnation: 0,
                            },
                        );
                    }
                }
            }
            Op::Receive { max } => {
                let received = self
                    .queue
                    .receive(max)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                self.check_receive(max, &received)?;
            }
            Op::Delete { pick } => {
                if self.handles.is_empty() {
                    return Ok(());
                }
                let (handle, id, incarnation) = self.handles[pick % self.handles.len()].clone();
                let result = self.queue.delete(&handle);
                let current = self
                    .live
                    .get(&id)
                    .is_some_and(|l| l.incarnation == incarnation);
                if !current {
                    prop_assert_eq!(result, Ok(()), "a message no longer queued");
                } else if self.in_flight(&id)
                    && self.live[&id]
                        .lease
                        .as_ref()
                        .is_some_and(|(h, _)| *h == handle)
                {
                    prop_assert_eq!(result, Ok(()));
                    self.forget(&id);
                    prop_assert!(self.deleted.insert(id), "deleted once");
                } else {
                    prop_assert_eq!(result, Err(SqsError::ReceiptHandleExpired));
                }
            }
            Op::ChangeVisibility { pick, secs } => {
                if self.handles.is_empty() {
                    return Ok(());
                }
                let (handle, id, incarnation) = self.handles[pick % self.handles.len()].clone();
                let result = self.queue.change_visibility(&handle, secs);
                let current = self
                    .live
                    .get(&id)
                    .is_some_and(|l| l.incarnation == incarnation);
                if !current {
                    prop_assert_eq!(result, Err(SqsError::MessageNotInFlight));
                } else if self.in_flight(&id)
                    && self.live[&id]
                        .lease
                        .as_ref()
                        .is_some_and(|(h, _)| *h == handle)
                {
                    prop_assert_eq!(result, Ok(()));
                    let deadline = self.now() + i64::from(secs) * 1000;
                    if let Some(live) = self.live.get_mut(&id) {
                        live.lease = Some((handle, deadline));
                    }
                } else {
                    prop_assert_eq!(result, Err(SqsError::ReceiptHandleExpired));
                }
            }
            Op::Advance { ms } => self.clock.advance(ms),
            Op::Redrive => {
                let listed: Vec<String> = self
                    .queue
                    .dlq_messages()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?
                    .into_iter()
                    .map(|m| m.message_id)
                    .collect();
                prop_assert_eq!(&listed, &self.dead);
                let moved = self
                    .queue
                    .redrive_dlq()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let moved_ids: Vec<String> = moved.iter().map(|r| r.message_id.clone()).collect();
                prop_assert_eq!(&moved_ids, &self.dead, "all of the DLQ, in its order");
                for r in moved {
                    let incarnation = self.incarnations.get_mut(&r.message_id).expect("known");
                    *incarnation += 1;
                    self.order
                        .entry(r.group_id.clone())
                        .or_default()
                        .push(r.message_id.clone());
                    self.live.insert(
                        r.message_id,
                        Live {
                            group: r.group_id,
                            receive_count: 0,
                            lease: None,
                            incarnation: *incarnation,
                        },
                    );
                }
                self.dead.clear();
            }
        }
        self.check_stats()
    }

    fn check_receive(
        &mut self,
        max: usize,
        received: &[ReceivedMessage],
    ) -> Result<(), TestCaseError> {
        prop_assert!(received.len() <= max);
        let now = self.now();
        let locked_before: HashSet<String> = self
            .live
            .iter()
            .filter(|(id, _)| self.in_flight(id))
            .map(|(_, l)| l.group.clone())
            .collect();

        // First, what moved to the DLQ during this receive.
        let listed: Vec<String> = self
            .queue
            .dlq_messages()
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .into_iter()
            .map(|m| m.message_id)
            .collect();
        prop_assert!(listed.starts_with(&self.dead));
        for id in listed[self.dead.len()..].iter().cloned() {
            prop_assert!(self.live.contains_key(&id), "dead-lettered a live message");
            prop_assert!(!self.in_flight(&id), "dead-lettered an in-flight message");
            prop_assert!(self.live[&id].receive_count >= MAX_RECEIVES);
            prop_assert!(!locked_before.contains(&self.live[&id].group));
            self.forget(&id);
            self.dead.push(id);
        }

        let mut in_batch: HashMap<String, usize> = HashMap::new();
        for m in received {
            let id = &m.message_id;
            prop_assert!(
                self.live.contains_key(id),
                "delivered a message not in the queue"
            );
            prop_assert!(!self.in_flight(id), "delivered an in-flight message");
            let group = self.live[id].group.clone();
            prop_assert!(
                !locked_before.contains(&group),
                "delivered from a locked group"
            );
            prop_assert_eq!(&m.attributes.message_group_id, &group);
            // Every message ahead of it in its group is earlier in this batch.
            let taken = in_batch.entry(group.clone()).or_default();
            let position = self.order[&group].iter().position(|other| other == id);
            prop_assert_eq!(position, Some(*taken), "group order");
            *taken += 1;
            let live = self.live.get_mut(id).expect("live");
            live.receive_count += 1;
            prop_assert_eq!(m.attributes.approximate_receive_count, live.receive_count);
            live.lease = Some((m.receipt_handle.clone(), now + VISIBILITY_MS));
            self.handles
                .push((m.receipt_handle.clone(), id.clone(), live.incarnation));
        }

        // A short batch means nothing else was deliverable: every group left is locked.
        if received.len() < max {
            for (group, ids) in &self.order {
                if ids.is_empty() {
                    continue;
                }
                let locked = ids.iter().any(|id| self.in_flight(id));
                prop_assert!(locked, "group {} left undelivered", group);
            }
        }
        Ok(())
    }

    fn check_stats(&self) -> Result<(), TestCaseError> {
        let stats = self.queue.stats();
        let in_flight = self.live.keys().filter(|id| self.in_flight(id)).count();
        prop_assert_eq!(stats.in_flight, in_flight);
        prop_assert_eq!(stats.visible, self.live.len() - in_flight);
        prop_assert_eq!(stats.dlq_depth, self.dead.len());
        Ok(())
    }

    /// Lets every visibility and deduplication window pass, then receives and deletes until the
    /// queue is empty.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        self.clock.advance(3_600_000);
        for _ in 0..10_000 {
            let received = self
                .queue
                .receive(10)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            self.check_receive(10, &received)?;
            if received.is_empty() {
                break;
            }
            for m in &received {
                prop_assert_eq!(self.queue.delete(&m.receipt_handle), Ok(()));
                self.forget(&m.message_id);
                prop_assert!(self.deleted.insert(m.message_id.clone()), "deleted once");
            }
        }
        prop_assert!(self.live.is_empty(), "messages stuck: {:?}", self.live);
        prop_assert!(self.queue.stats().visible == 0 && self.queue.stats().in_flight == 0);
        let dead: HashSet<String> = self.dead.iter().cloned().collect();
        prop_assert_eq!(dead.len(), self.dead.len(), "dead-lettered once");
        prop_assert!(dead.is_disjoint(&self.deleted));
        let ended: HashSet<String> = dead.union(&self.deleted).cloned().collect();
        prop_assert_eq!(ended, self.accepted.clone(), "no message lost");
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_lose_nothing_and_keep_group_order(ops in prop::collection::vec(op(), 1..120)) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op)?;
        }
        model.drain()?;
    }
}
