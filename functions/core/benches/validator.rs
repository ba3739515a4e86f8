//! The validator's hot path for a ~2 KB Stripe event, and a provider processor batch of ten.
//!
//! Run with `cargo bench -p payhook-core --bench validator`.
//!
//! * `validator/verify_normalise_message`: verify the signature, parse and normalise, build the
//!   queue message — the CPU work of one webhook (target: median ≤ 15 µs).
//! * `validator/handle_in_memory`: the whole handler over in-memory ports (secrets, status store,
//!   queue), each iteration a new webhook.
//! * `processor/batch_of_10`: claim, tier, publish and mark ten records (target ≤ 100 µs).
//! * `stripe_verify/v1_entries/{1,111}`: Stripe verification of the same body with one `v1`
//!   and with as many as fit the 8 KiB header limit (the genuine one last, so past the bound
//!   and refused): the cost does not
//!   grow with the header, because one HMAC is computed per secret and at most eight `v1` are
//!   compared.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use payhook_core::bus::RecordingBus;
use payhook_core::conformance::workspace_root;
use payhook_core::normalise::{Normalised, normalise};
use payhook_core::payment::MemoryPaymentStore;
use payhook_core::ports::{
    FixedClock, MemorySecretStore, ProviderSecrets, Queue, QueueError, QueueMessage,
};
use payhook_core::processor::{ProcessorConfig, ProviderProcessor, QueueRecord};
use payhook_core::signature::{
    PaypalCertificateCache, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::status::{MemoryStatusStore, Status, StatusItem, StatusStore};
use payhook_core::validator::{Validator, ValidatorConfig, WebhookRequest};
use payhook_core::{Headers, Provider, Secret};

const NOW_MS: i64 = 1_767_225_600_000;
const SECRET: &str = "whsec_bench_secret_0123456789abcdef";

/// A queue that accepts and forgets: the bench measures the validator, not a queue.
struct NullQueue;

#[async_trait]
impl Queue for NullQueue {
    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        Ok(message.deduplication_id)
    }
}

fn body() -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/fixtures/stripe/payment_intent.succeeded.jpy.json"))
        .expect("the bench fixture is part of the repo")
}

fn signed(body: &[u8]) -> Headers {
    let mut h = Headers::new();
    h.insert(
        "Stripe-Signature",
        StripeVerifier::sign(&Secret::new(SECRET), NOW_MS / 1000, body),
    );
    h
}

fn bench_validator(c: &mut Criterion) {
    let body = body();
    let headers = signed(&body);
    let verifier = StripeVerifier::new(vec![Secret::new(SECRET)]);
    c.bench_function("validator/verify_normalise_message", |b| {
        b.iter(|| {
            verifier
                .verify(&headers, black_box(&body), NOW_MS / 1000)
                .expect("valid");
            let Ok(Normalised::Event(mut event)) = normalise(Provider::Stripe, black_box(&body))
            else {
                panic!("supported event")
            };
            event.received_at = Some("2026-01-01T00:00:00.000Z".to_owned());
            let message = QueueMessage {
                provider: Provider::Stripe,
                group_id: event.payment_id.clone(),
                deduplication_id: event.webhook_id.clone(),
                body: event.to_json(),
                trace_header: None,
            };
            black_box(message)
        })
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let secrets = MemorySecretStore::new().with(
        Provider::Stripe,
        ProviderSecrets {
            signing_secrets: vec![Secret::new(SECRET)],
            ..Default::default()
        },
    );
    let validator = Validator::new(
        Arc::new(secrets),
        Arc::new(MemoryStatusStore::new()),
        Arc::new(NullQueue),
        Arc::new(PaypalCertificateCache::new(
            Arc::new(StaticCertificateFetcher::new(Vec::new())),
            TrustAnchors::mozilla(),
        )),
        Arc::new(FixedClock(NOW_MS)),
        // The fixture was recorded in 2025: a retention long enough to keep it acceptable.
        ValidatorConfig {
            idempotency_retention_secs: 20 * 365 * 24 * 3600,
            ..ValidatorConfig::default()
        },
    );
    let text = String::from_utf8(body.clone()).expect("utf-8 fixture");
    let mut n = 0u64;
    c.bench_function("validator/handle_in_memory", |b| {
        b.iter_batched(
            || {
                // A new webhook each time (same size): a repeat would take the duplicate path.
                n += 1;
                let unique = text.replacen("\"id\": \"evt_", &format!("\"id\": \"evt_{n:08}"), 1);
                let bytes = unique.into_bytes();
                let headers = signed(&bytes);
                (bytes, headers)
            },
            |(bytes, headers)| {
                runtime.block_on(async {
                    let out = validator
                        .handle(WebhookRequest {
                            provider: "stripe",
                            headers: &headers,
                            body: &bytes,
                            trace_header: None,
                        })
                        .await;
                    black_box(out.expect("queued"))
                })
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_processor(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let text = String::from_utf8(body()).expect("utf-8 fixture");
    let events: Vec<_> = (0..10)
        .map(|i| {
            // Ten webhooks of ten payments, as a batch usually holds: each is a new capture, so
            // each record reads and writes its payment record and publishes.
            let unique = text
                .replacen("\"id\": \"evt_", &format!("\"id\": \"evt_b{i}"), 1)
                .replace("pi_3QzJp2B7WZ01zgkW0kq4RkTn", &format!("pi_bench{i}"));
            match normalise(Provider::Stripe, unique.as_bytes()) {
                Ok(Normalised::Event(e)) => e,
                other => panic!("supported event: {other:?}"),
            }
        })
        .collect();
    let records: Vec<QueueRecord> = events
        .iter()
        .enumerate()
        .map(|(i, e)| QueueRecord {
            message_id: format!("m{i}"),
            body: String::from_utf8(e.to_bytes()).unwrap_or_default(),
            group_id: format!("{}-{i}", e.payment_id),
            receive_count: 1,
            trace_header: None,
        })
        .collect();
    c.bench_function("processor/batch_of_10", |b| {
        b.iter_batched(
            || {
                let store = Arc::new(MemoryStatusStore::new());
                runtime.block_on(async {
                    for e in &events {
                        let item = StatusItem::new(
                            e.webhook_id.clone(),
                            Provider::Stripe,
                            "x",
                            Status::Queued,
                            NOW_MS,
                        );
                        store.put_new(&item).await.expect("memory store");
                    }
                });
                ProviderProcessor::new(
                    store,
                    Arc::new(MemoryPaymentStore::new()),
                    Arc::new(RecordingBus::new()),
                    Arc::new(FixedClock(NOW_MS)),
                    ProcessorConfig::new(Provider::Stripe),
                )
            },
            |processor| {
                let out = runtime.block_on(processor.handle_batch(&records, NOW_MS + 300_000));
                assert!(out.failed_message_ids().is_empty());
                black_box(out)
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_stripe_header_size(c: &mut Criterion) {
    let body = body();
    let verifier = StripeVerifier::new(vec![Secret::new(SECRET)]);
    let genuine = StripeVerifier::sign(&Secret::new(SECRET), NOW_MS / 1000, &body);
    let (t, v1) = genuine.split_once(',').expect("t=…,v1=…");
    // As many well-formed v1 as fit in the 8 KiB the verifier parses.
    let junk: String = (0..110).map(|i| format!(",v1={i:064x}")).collect();
    let mut group = c.benchmark_group("stripe_verify/v1_entries");
    for (entries, header) in [(1, genuine.clone()), (111, format!("{t}{junk},{v1}"))] {
        let mut headers = Headers::new();
        headers.insert("Stripe-Signature", header);
        group.bench_function(entries.to_string(), |b| {
            b.iter(|| black_box(verifier.verify(&headers, black_box(&body), NOW_MS / 1000)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_validator,
    bench_processor,
    bench_stripe_header_size
);
criterion_main!(benches);
