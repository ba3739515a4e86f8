//! Leases and retries that cannot strand a webhook: a claim's lease ends with the message's
//! visibility timeout, the last receive always leaves the item `FAILED` with the reason, a
//! failed record comes back in seconds, and a redriven dead letter is processed.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use payhook_core::Provider;
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus};
use payhook_core::processor::{ProcessError, QueueRecord, RecordOutcome};
use payhook_core::status::{Status, StatusStore};

use super::support::{AWS, Delivery, Deployment, Faulty, Kill, LOCAL, T0, World, webhook_of};

/// Rejects the entries of the given webhooks; fails the first `transient` calls outright.
struct FaultyBus {
    inner: Arc<dyn EventBus>,
    poison: HashSet<String>,
    transient: AtomicUsize,
}

impl FaultyBus {
    fn poison(inner: Arc<dyn EventBus>, webhooks: &[&str]) -> Arc<FaultyBus> {
        Arc::new(FaultyBus {
            inner,
            poison: webhooks.iter().map(|w| (*w).to_owned()).collect(),
            transient: AtomicUsize::new(0),
        })
    }

    fn failing_once(inner: Arc<dyn EventBus>) -> Arc<FaultyBus> {
        Arc::new(FaultyBus {
            inner,
            poison: HashSet::new(),
            transient: AtomicUsize::new(1),
        })
    }
}

#[async_trait]
impl EventBus for FaultyBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        if self
            .transient
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(BusError("EventBridge unavailable".into()));
        }
        if entries.iter().any(|e| self.poison.contains(&webhook_of(e))) {
            return Ok(vec![EntryResult::Failed {
                code: "InternalFailure".into(),
                message: "rejected".into(),
            }]);
        }
        self.inner.put_events(entries).await
    }
}

fn record(world: &World, delivery: &Delivery, message_id: &str, receive_count: u32) -> QueueRecord {
    let body = world
        .sqs
        .queue(Provider::Stripe)
        .list_messages()
        .into_iter()
        .find(|m| m.body.contains(&delivery.webhook_id))
        .map(|m| m.body)
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    QueueRecord {
        message_id: message_id.to_owned(),
        group_id: event["payment_id"].as_str().unwrap().to_owned(),
        body,
        receive_count,
        trace_header: None,
    }
}

/// The lease a claim took when its invocation was killed right after claiming.
async fn lease_of_a_claim(deployment: Deployment) -> (i64, i64) {
    let mut world = World::new(deployment);
    let d = Delivery::stripe("lease", "lease", T0);
    world.post(&d, &Kill::never()).await;
    let claimed_at = world.now();
    assert!(world.invoke(Some(&Kill::after(1))).await);
    let item = world.store.get(&d.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Processing);
    (claimed_at, item.lease_until_ms.unwrap())
}

#[tokio::test]
async fn a_claim_lease_ends_when_the_message_becomes_visible_again() {
    let (claimed_at, lease) = lease_of_a_claim(LOCAL).await;
    let visible_again = claimed_at + i64::from(LOCAL.visibility_timeout_secs) * 1000;
    assert_eq!(
        lease, visible_again,
        "not later (stranded), not sooner (taken over early)"
    );
}

#[tokio::test]
async fn a_claim_lease_ends_with_the_invocation_as_deployed() {
    let (claimed_at, lease) = lease_of_a_claim(AWS).await;
    assert_eq!(
        lease,
        claimed_at + i64::from(AWS.function_timeout_secs) * 1000
    );
}

#[tokio::test]
async fn the_last_receive_fails_a_webhook_whose_claim_is_still_held() {
    let mut world = World::new(LOCAL);
    let d = Delivery::stripe("held", "held", T0);
    world.post(&d, &Kill::never()).await;
    let record = record(&world, &d, "m-last", LOCAL.max_receive_count);
    assert!(world.invoke(Some(&Kill::after(1))).await);
    let processor = world.processor(world.store.clone(), world.bus.clone());
    let outcome = processor
        .handle_batch(&[record], world.now() + 300_000)
        .await;
    assert!(matches!(
        &outcome.records[0].1,
        RecordOutcome::Failed {
            error: ProcessError::LeaseHeld { .. },
            final_attempt: true,
            ..
        }
    ));
    let item = world.store.get(&d.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Failed, "{item:?}");
    assert!(item.last_error.unwrap().starts_with("lease_held"));
}

#[tokio::test]
async fn a_held_back_record_is_failed_with_its_reason_on_its_last_receive() {
    let mut world = World::new(LOCAL);
    let poison = Delivery::stripe("poison", "p", T0);
    let behind = Delivery::stripe("behind", "p", T0);
    world.post(&poison, &Kill::never()).await;
    world.post(&behind, &Kill::never()).await;
    let last = LOCAL.max_receive_count;
    let records = [
        record(&world, &poison, "m-poison", last),
        record(&world, &behind, "m-behind", last),
    ];
    let bus = FaultyBus::poison(world.bus.clone(), &[&poison.webhook_id]);
    let processor = world.processor(world.store.clone(), bus);
    let outcome = processor
        .handle_batch(&records, world.now() + 300_000)
        .await;
    assert!(
        matches!(
            &outcome.records[1].1,
            RecordOutcome::Failed {
                error: ProcessError::GroupBlocked(_),
                final_attempt: true,
                webhook_id: Some(_),
                ..
            }
        ),
        "{:?}",
        outcome.records[1]
    );
    for (d, reason) in [
        (&poison, "put_events_entry_failed"),
        (&behind, "group_blocked"),
    ] {
        let item = world.store.get(&d.webhook_id).await.unwrap().unwrap();
        assert_eq!(item.status, Status::Failed, "{}", d.webhook_id);
        assert!(
            item.last_error.unwrap().starts_with(reason),
            "{}",
            d.webhook_id
        );
    }
}

#[tokio::test]
async fn a_transient_failure_is_retried_within_seconds_as_deployed() {
    let mut world = World::new(AWS);
    let d = Delivery::stripe("blip", "blip", T0);
    world.post(&d, &Kill::never()).await;
    assert!(
        world
            .invoke_with_bus(FaultyBus::failing_once(world.bus.clone()))
            .await
    );
    // Far less than the queue's visibility timeout (30 minutes).
    world.clock.advance(10_000);
    assert!(
        world.invoke(None).await,
        "the failed record is back within 10 s"
    );
    world.deliver_events().await;
    let item = world.store.get(&d.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Processed);
    assert_eq!(item.attempts, 2);
}

#[tokio::test]
async fn a_redriven_dead_letter_is_processed_once() {
    let mut world = World::new(LOCAL);
    let d = Delivery::stripe("dead", "dead", T0);
    world.post(&d, &Kill::never()).await;
    let bus = FaultyBus::poison(world.bus.clone(), &[&d.webhook_id]);
    for _ in 0..(LOCAL.visibility_timeout_secs * (LOCAL.max_receive_count + 1)) {
        world.invoke_with_bus(bus.clone()).await;
        world.clock.advance(1_000);
    }
    let item = world.store.get(&d.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Failed);
    assert_eq!(item.attempts, LOCAL.max_receive_count);
    assert_eq!(world.sqs.dlq_messages(Provider::Stripe).unwrap().len(), 1);

    assert_eq!(world.sqs.redrive(Provider::Stripe, |_| {}).unwrap(), 1);
    world.drain().await;
    assert!(
        world
            .violations(std::slice::from_ref(&d.webhook_id))
            .await
            .is_empty()
    );
    assert_eq!(world.publications()[&d.webhook_id], 1);
    assert!(world.sqs.dlq_messages(Provider::Stripe).unwrap().is_empty());
}

#[tokio::test]
async fn a_record_whose_claim_is_held_comes_back_when_the_lease_ends() {
    let mut world = World::new(AWS);
    let d = Delivery::stripe("wait", "wait", T0);
    world.post(&d, &Kill::never()).await;
    let record = record(&world, &d, "m-wait", 1);
    // Another invocation holds the claim until 3.5 s from now.
    let dying = Kill::after(1);
    let holder = world.processor(
        Arc::new(Faulty::new(world.store.clone(), &dying)),
        world.bus.clone(),
    );
    let held = holder.handle_batch(std::slice::from_ref(&record), world.now() + 3_500);
    assert!(dying.run(held).await.is_none());
    let processor = world.processor(world.store.clone(), world.bus.clone());
    let outcome = processor
        .handle_batch(&[record], world.now() + 300_000)
        .await;
    assert!(matches!(
        outcome.records[0].1,
        RecordOutcome::Failed {
            error: ProcessError::LeaseHeld { .. },
            final_attempt: false,
            ..
        }
    ));
    // Whole seconds past the lease's end (4 s), plus one; more than the 2 s backoff.
    assert_eq!(outcome.retry_delays(), [("m-wait", 5)]);
}
