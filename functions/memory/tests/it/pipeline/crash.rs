//! Crashes that crash: the validator or the processor is killed after each of its steps (each
//! store write, each send, PutEvents) — dropped where it stands, nothing cleaned up — and the
//! pipeline is restarted with fresh handlers on the same store, queue and bus, time moving on
//! past visibility timeouts and leases. The books must balance every time.

use std::sync::Arc;

use super::support::{AWS, Delivery, Deployment, Kill, LOCAL, T0, World};

/// Three webhooks, two deliveries of one payment's capture under different event ids (one FIFO
/// group) and one of another payment, so the processor's batch holds several records and
/// several groups, and one of them changes nothing for its payment.
fn deliveries() -> Vec<Delivery> {
    vec![
        Delivery::stripe("a1", "a", T0),
        Delivery::stripe("a2", "a", T0),
        Delivery::stripe("b1", "b", T0),
    ]
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.webhook_id.clone()).collect()
}

/// Every webhook `PROCESSED` once or `FAILED` in the DLQ, and a webhook put on the bus twice
/// only when the kill fell between its `PutEvents` and the `PUBLISHED` write (the retry
/// publishes again and the event processor absorbs the copy: recorded once).
async fn check(world: &World, webhooks: &[String], kill: &Kill, what: &str) -> Vec<String> {
    let last = kill.log().last().cloned().unwrap_or_default();
    let mut broken: Vec<String> = world
        .violations(webhooks)
        .await
        .into_iter()
        .map(|v| {
            format!(
                "{what}, killed after {} steps (last: {last:?}): {v}",
                kill.steps()
            )
        })
        .collect();
    // Nothing was wrong with any message: a crash is recovered, never dead-lettered.
    let dead = world.dead_letters();
    if dead > 0 {
        broken.push(format!(
            "{what}, killed after {last:?}: {dead} healthy message(s) dead-lettered"
        ));
    }
    // One payment.succeeded per payment, whatever the kill point: a copy published again after
    // a crash carries the same business event id.
    let succeeded = world.business_events("payment.succeeded");
    for payment in ["pi_a", "pi_b"] {
        let n = succeeded.get(payment).map_or(0, |ids| ids.len());
        if n != 1 {
            broken.push(format!(
                "{what}, killed after {last:?}: {payment} has {n} distinct payment.succeeded"
            ));
        }
    }
    for (webhook, n) in world.publications() {
        if n > 1 && !(n == 2 && last == format!("put_events {webhook}")) {
            broken.push(format!(
                "{what}, killed after {last:?}: {webhook} published {n} times"
            ));
        }
    }
    broken
}

async fn post_all(world: &mut World, deliveries: &[Delivery], kill: &Arc<Kill>) {
    for d in deliveries {
        world.post(d, kill).await;
    }
}

async fn validator_killed_at_every_step(deployment: Deployment) {
    let deliveries = deliveries();
    let webhooks = ids(&deliveries);
    let counted = Kill::never();
    post_all(&mut World::new(deployment), &deliveries, &counted).await;
    let steps = counted.steps();
    assert_eq!(
        steps,
        9,
        "record, send, mark queued per webhook: {:?}",
        counted.log()
    );
    let mut broken = Vec::new();
    for n in 0..=steps {
        let mut world = World::new(deployment);
        let kill = Kill::after(n);
        post_all(&mut world, &deliveries, &kill).await;
        assert!(kill.killed(), "kill point {n} was reached");
        world.drain().await;
        broken.extend(check(&world, &webhooks, &kill, deployment.name).await);
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

async fn processor_killed_at_every_step(deployment: Deployment) {
    let deliveries = deliveries();
    let webhooks = ids(&deliveries);
    let counted = Kill::never();
    let mut world = World::new(deployment);
    post_all(&mut world, &deliveries, &Kill::never()).await;
    assert!(world.invoke(Some(&counted)).await);
    let steps = counted.steps();
    assert_eq!(
        steps,
        14,
        "per record: claim, read and write the payment record, then PutEvents and mark \
         published (a new capture) or mark processed (the second capture of pi_a): {:?}",
        counted.log()
    );
    let mut broken = Vec::new();
    for n in 0..=steps {
        let mut world = World::new(deployment);
        post_all(&mut world, &deliveries, &Kill::never()).await;
        let kill = Kill::after(n);
        assert!(world.invoke(Some(&kill)).await);
        assert!(kill.killed(), "kill point {n} was reached");
        world.drain().await;
        broken.extend(check(&world, &webhooks, &kill, deployment.name).await);
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

#[tokio::test]
async fn a_validator_killed_after_any_step_loses_nothing_as_deployed() {
    validator_killed_at_every_step(AWS).await;
}

#[tokio::test]
async fn a_validator_killed_after_any_step_loses_nothing_on_the_local_stack() {
    validator_killed_at_every_step(LOCAL).await;
}

#[tokio::test]
async fn a_processor_killed_after_any_step_leaves_every_webhook_processed_once_as_deployed() {
    processor_killed_at_every_step(AWS).await;
}

#[tokio::test]
async fn a_processor_killed_after_any_step_leaves_every_webhook_processed_once_on_the_local_stack()
{
    processor_killed_at_every_step(LOCAL).await;
}
