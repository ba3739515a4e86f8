//! Throughput of the in-memory SQS FIFO queue that carries the local stack's webhooks: send a
//! batch across many message groups, then receive ten at a time and delete each message.
//!
//! Run with `cargo bench -p payhook-memory --bench memory_sqs`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use payhook_core::ports::SystemClock;
use payhook_memory::sqs::{FifoQueue, FifoQueueConfig, MAX_RECEIVE_BATCH, SendMessage};

/// Payments in flight at once: a busy shop's worth of message groups.
const GROUPS: usize = 1_000;

/// A canonical event of typical size (about 600 bytes).
fn body(i: usize) -> String {
    format!(
        r#"{{"webhook_id":"stripe:evt_{i:024}","provider":"stripe","provider_event_id":"evt_{i:024}","provider_event_type":"payment_intent.succeeded","event_type":"payment.succeeded","payment_id":"pi_{g:024}","object_id":null,"amount_minor":125000,"amount":1250.0,"currency":"USD","provider_status":"succeeded","failure_code":null,"occurred_at":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00.000Z","livemode":false,"padding":"{pad}"}}"#,
        g = i % GROUPS,
        pad = "x".repeat(160),
    )
}

fn messages(n: usize) -> Vec<SendMessage> {
    (0..n)
        .map(|i| {
            SendMessage::new(format!("pi_{:024}", i % GROUPS), body(i))
                .deduplication_id(format!("stripe:evt_{i:024}"))
                .trace_header("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
        })
        .collect()
}

fn fresh_queue() -> FifoQueue {
    let config = FifoQueueConfig::for_provider(payhook_core::Provider::Stripe);
    FifoQueue::new(config, Arc::new(SystemClock)).expect("valid config")
}

/// Receives ten at a time and deletes each message until the queue is empty; returns how many.
fn drain(queue: &FifoQueue, batch_delete: bool) -> usize {
    let mut done = 0;
    loop {
        let received = queue.receive(MAX_RECEIVE_BATCH).expect("receive");
        if received.is_empty() {
            return done;
        }
        done += received.len();
        if batch_delete {
            let handles: Vec<&str> = received.iter().map(|m| m.receipt_handle.as_str()).collect();
            queue.delete_batch(&handles).expect("delete batch");
        } else {
            for m in &received {
                queue.delete(&m.receipt_handle).expect("delete");
            }
        }
    }
}

fn send_receive_delete(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory_sqs");
    for n in [1_000usize, 10_000] {
        group.throughput(Throughput::Elements(n as u64));
        for (name, batch_delete) in [
            ("send_receive10_delete", false),
            ("send_receive10_delete_batch", true),
        ] {
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.iter_batched(
                    || (fresh_queue(), messages(n)),
                    |(queue, batch)| {
                        for m in batch {
                            queue.send(m).expect("send");
                        }
                        assert_eq!(drain(&queue, batch_delete), n);
                        black_box(queue)
                    },
                    BatchSize::LargeInput,
                );
            });
        }
    }

    // The local stack's shape on two cores: a validator thread sending while a processor
    // thread receives and deletes.
    let n = 10_000usize;
    group.throughput(Throughput::Elements(n as u64));
    group.bench_with_input(
        BenchmarkId::new("concurrent_1_sender_1_receiver", n),
        &n,
        |b, &n| {
            b.iter_batched(
                || (Arc::new(fresh_queue()), messages(n)),
                |(queue, batch)| {
                    let done = AtomicUsize::new(0);
                    thread::scope(|s| {
                        s.spawn(|| {
                            for m in batch {
                                queue.send(m).expect("send");
                            }
                        });
                        s.spawn(|| {
                            while done.load(Ordering::Relaxed) < n {
                                let got = drain(&queue, false);
                                if got == 0 {
                                    thread::yield_now();
                                }
                                done.fetch_add(got, Ordering::Relaxed);
                            }
                        });
                    });
                    black_box(queue)
                },
                BatchSize::LargeInput,
            );
        },
    );
    group.finish();
}

criterion_group!(benches, send_receive_delete);
criterion_main!(benches);
