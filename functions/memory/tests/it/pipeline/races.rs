//! Races that race: processors on tokio's multi-thread runtime over ports that yield, so their
//! claims really interleave, and a take-over whose loser fails while the winner still works.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use payhook_core::Provider;
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus};
use payhook_core::processor::{ProcessError, QueueRecord, RecordOutcome};
use payhook_core::status::{
    PutOutcome, Status, StatusItem, StatusStore, StoreError, Transition, TransitionOutcome,
    TransmissionOutcome, TransmissionRecord,
};
use tokio::sync::{Barrier, mpsc, oneshot};

use super::support::{Delivery, Faulty, Kill, LOCAL, T0, World};

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

/// A bus whose calls each hand the test a gate as they arrive and wait for its verdict:
/// `Ok` publishes, `Err` fails. The test learns who is in `PutEvents` from the arrivals, so it
/// never has to guess which processor got there first.
struct GatedBus {
    inner: Arc<dyn EventBus>,
    arrivals: mpsc::UnboundedSender<oneshot::Sender<Result<(), String>>>,
}

impl GatedBus {
    fn new(inner: Arc<dyn EventBus>) -> (Self, Arrivals) {
        let (arrivals, rx) = mpsc::unbounded_channel();
        (Self { inner, arrivals }, Arrivals(rx))
    }
}

#[async_trait]
impl EventBus for GatedBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let (gate, verdict) = oneshot::channel();
        self.arrivals.send(gate).expect("the test is listening");
        verdict
            .await
            .expect("the test answers every call")
            .map_err(BusError)?;
        self.inner.put_events(entries).await
    }
}

/// The gates of the `PutEvents` calls, in the order the calls arrived.
struct Arrivals(mpsc::UnboundedReceiver<oneshot::Sender<Result<(), String>>>);

impl Arrivals {
    async fn next(&mut self, who: &str) -> oneshot::Sender<Result<(), String>> {
        within(&format!("{who} reaching PutEvents"), self.0.recv())
            .await
            .expect("the bus is alive")
    }
}

/// A step that hangs fails the test after a bound instead of stalling the whole run.
async fn within<F: std::future::Future>(what: &str, step: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), step)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 30 s"))
}

async fn claim_of(world: &World, webhook_id: &str) -> (Status, u32) {
    let item = world.store.get(webhook_id).await.unwrap().unwrap();
    (item.status, item.attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_handler_never_releases_a_claim_taken_over_after_its_lease_ended() {
    let mut world = World::new(LOCAL);
    let d = Delivery::stripe("slow", "slow", T0);
    world.post(&d, &Kill::never()).await;
    let (bus, mut arrivals) = GatedBus::new(world.bus.clone());
    let bus = Arc::new(bus);

    // A claims, then stalls in PutEvents past its lease and its invocation.
    let a = world.processor(world.store.clone(), bus.clone());
    let mut record_a = first_record(&world);
    record_a.message_id = "m-a".into();
    let deadline_a = world.now() + 300_000;
    let a = tokio::spawn(async move { a.handle_batch(&[record_a], deadline_a).await });
    let gate_a = arrivals.next("A").await;
    assert_eq!(
        claim_of(&world, &d.webhook_id).await,
        (Status::Processing, 1)
    );
    world.clock.advance(301_000);

    // B, the next receive, takes the expired claim over and is publishing when A fails.
    let b = world.processor(world.store.clone(), bus.clone());
    let mut record_b = first_record(&world);
    record_b.message_id = "m-b".into();
    record_b.receive_count = 2;
    let deadline_b = world.now() + 300_000;
    let b = tokio::spawn(async move { b.handle_batch(&[record_b], deadline_b).await });
    let gate_b = arrivals.next("B").await;
    assert_eq!(
        claim_of(&world, &d.webhook_id).await,
        (Status::Processing, 2)
    );
    gate_a.send(Err("EventBridge unavailable".into())).unwrap();
    let a = within("A's failure handling", a).await.unwrap();
    assert!(matches!(
        a.records[0].1,
        RecordOutcome::Failed {
            error: ProcessError::Bus(_),
            ..
        }
    ));
    let after_a = claim_of(&world, &d.webhook_id).await;

    gate_b.send(Ok(())).unwrap();
    let b = within("B's publication", b)
        .await
        .unwrap()
        .records
        .remove(0)
        .1;
    assert_eq!(
        after_a,
        (Status::Processing, 2),
        "B's claim stands after A failed"
    );
    assert!(matches!(b, RecordOutcome::Published { .. }), "{b:?}");
    world.deliver_events().await;
    let item = world.store.get(&d.webhook_id).await.unwrap().unwrap();
    assert_eq!(item.status, Status::Processed);
    assert_eq!(world.publications()[&d.webhook_id], 1);
}
