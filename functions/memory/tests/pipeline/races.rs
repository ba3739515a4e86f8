//! Races that race: processors on tokio's multi-thread runtime over ports that yield, so their
//! claims really interleave, and a take-over whose loser fails while the winner still works.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use payhook_core::Provider;
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus};
use payhook_core::processor::{ProcessError, QueueRecord, RecordOutcome};
use payhook_core::status::{
    PutOutcome, Status, StatusItem, StatusStore, StoreError, Transition, TransitionOutcome,
    TransmissionOutcome, TransmissionRecord,
};
use tokio::sync::{Barrier, oneshot};

use crate::support::{Delivery, Faulty, Kill, LOCAL, T0, World};

/// Holds the first `n` transitions (the racing claims) until all `n` have arrived, so they
/// reach the store together.
struct ClaimsTogether<S> {
    inner: S,
    barrier: Barrier,
    n: usize,
    arrived: AtomicUsize,
}

#[async_trait]
impl<S: StatusStore> StatusStore for ClaimsTogether<S> {
    async fn get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError> {
        self.inner.get(webhook_id).await
    }

    async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError> {
        self.inner.put_new(item).await
    }

    async fn transition(
        &self,
        webhook_id: &str,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        if self.arrived.fetch_add(1, Ordering::SeqCst) < self.n {
            self.barrier.wait().await;
        }
        self.inner.transition(webhook_id, transition).await
    }

    async fn record_transmission(
        &self,
        record: &TransmissionRecord,
        now_unix: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        self.inner.record_transmission(record, now_unix).await
    }
}

fn first_record(world: &World) -> QueueRecord {
    let m = world.sqs.queue(Provider::Stripe).list_messages().remove(0);
    QueueRecord {
        message_id: m.message_id,
        body: m.body,
        group_id: m.attributes.message_group_id,
        receive_count: 1,
        trace_header: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processors_racing_on_one_webhook_on_many_threads_publish_it_once() {
    const RACERS: usize = 8;
    for round in 0..20_u64 {
        let mut world = World::new(LOCAL);
        let d = Delivery::stripe(&format!("race{round}"), "race", T0);
        world.post(&d, &Kill::never()).await;
        let record = first_record(&world);
        let store = Arc::new(Faulty::jitter(
            ClaimsTogether {
                inner: world.store.clone(),
                barrier: Barrier::new(RACERS),
                n: RACERS,
                arrived: AtomicUsize::new(0),
            },
            round + 1,
        ));
        let bus = Arc::new(Faulty::jitter(world.bus.clone(), round + 7));
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let processor = world.processor(store.clone(), bus.clone());
            let mut record = record.clone();
            record.message_id = format!("m{i}");
            let deadline = world.now() + 300_000;
            tasks.push(tokio::spawn(async move {
                processor.handle_batch(&[record], deadline).await
            }));
        }
        let mut published = 0;
        for task in tasks {
            match task.await.unwrap().records.remove(0).1 {
                RecordOutcome::Published { .. } => published += 1,
                RecordOutcome::Skipped { .. }
                | RecordOutcome::Failed {
                    error: ProcessError::LeaseHeld { .. },
                    ..
                } => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(published, 1, "round {round}");
        assert_eq!(world.bus.entries().len(), 1, "round {round}: one PutEvents");
        world.deliver_events().await;
        let item = world.store.get(&d.webhook_id).await.unwrap().unwrap();
        assert_eq!(item.status, Status::Processed, "round {round}");
        assert_eq!(world.recorded[&d.webhook_id], 1, "round {round}");
    }
}

/// A bus whose calls each wait for a verdict from the test: `Ok` publishes, `Err` fails.
#[derive(Default)]
struct GatedBus {
    inner: Option<Arc<dyn EventBus>>,
    gates: Mutex<VecDeque<oneshot::Receiver<Result<(), String>>>>,
}

impl GatedBus {
    fn gate(&self) -> oneshot::Sender<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        self.gates.lock().unwrap().push_back(rx);
        tx
    }
}

#[async_trait]
impl EventBus for GatedBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let gate = self.gates.lock().unwrap().pop_front().unwrap();
        gate.await.unwrap().map_err(BusError)?;
        self.inner.as_ref().unwrap().put_events(entries).await
    }
}

async fn wait_for_attempt(world: &World, webhook_id: &str, attempts: u32) {
    for _ in 0..100_000 {
        let item = world.store.get(webhook_id).await.unwrap().unwrap();
        if item.status == Status::Processing && item.attempts == attempts {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("claim {attempts} of {webhook_id} never happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_handler_never_releases_a_claim_taken_over_after_its_lease_ended() {
    let mut world = World::new(LOCAL);
    let d = Delivery::stripe("slow", "slow", T0);
    world.post(&d, &Kill::never()).await;
    let bus = Arc::new(GatedBus {
        inner: Some(world.bus.clone()),
        ..GatedBus::default()
    });
    let (gate_a, gate_b) = (bus.gate(), bus.gate());

    // A claims, then stalls in PutEvents past its lease and its invocation.
    let a = world.processor(world.store.clone(), bus.clone());
    let mut record_a = first_record(&world);
    record_a.message_id = "m-a".into();
    let deadline_a = world.now() + 300_000;
    let a = tokio::spawn(async move { a.handle_batch(&[record_a], deadline_a).await });
    wait_for_attempt(&world, &d.webhook_id, 1).await;
    world.clock.advance(301_000);

    // B, the next receive, takes the expired claim over and is publishing when A fails.
    let b = world.processor(world.store.clone(), bus.clone());
    let mut record_b = first_record(&world);
    record_b.message_id = "m-b".into();
    record_b.receive_count = 2;
    let deadline_b = world.now() + 300_000;
    let b = tokio::spawn(async move { b.handle_batch(&[record_b], deadline_b).await });
    wait_for_attempt(&world, &d.webhook_id, 2).await;
    gate_a.send(Err("EventBridge unavailable".into())).unwrap();
    assert!(matches!(
        a.await.unwrap().records[0].1,
        RecordOutcome::Failed {
            error: ProcessError::Bus(_),
            ..
        }
    ));
    let after_a = world.store.get(&d.webhook_id).await.unwrap().unwrap();

    gate_b.send(Ok(())).unwrap();
    let b = b.await.unwrap().records.remove(0).1;
    assert_eq!(
        (after_a.status, after_a.attempts),
        (Status::Processing, 2),
        "B's claim stands after A failed: {after_a:?}"
    );
    assert!(matches!(b, RecordOutcome::Published { .. }), "{b:?}");
    world.deliver_events().await;
    let item = world.store.get(&d.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Processed);
    assert_eq!(world.publications()[&d.webhook_id], 1);
}
