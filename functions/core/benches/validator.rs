//! The validator's hot path for each provider, and a provider processor batch of ten.
//!
//! Run with `cargo bench -p payhook-core --bench validator`.
//!
//! * `{stripe,square,paypal}/floor_hmac_sha256`: HMAC-SHA256 of the same body — the least any
//!   webhook validator must do per byte, printed in the same run as the figure it bounds, so
//!   BENCHMARKS.md can give the ratio to it.
//! * `stripe/verify_normalise_message`, `square/verify_normalise_message`: verify the signature,
//!   normalise, build the queue message — the CPU work of one webhook (~2 KB bodies from
//!   `tests/fixtures/`; target: median ≤ 8 µs).
//! * `paypal/normalise_message`: the same without the signature check, whose RSA verification
//!   is `paypal/verify_rsa_sha256` (from the shared conformance vector `paypal-018`, with its
//!   certificate already cached; skipped, saying so, without the conformance folder).
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
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use payhook_core::normalise::{Normalised, normalise};
use payhook_core::payment::MemoryPaymentStore;
use payhook_core::ports::{
    FixedClock, MemorySecretStore, ProviderSecrets, Queue, QueueError, QueueMessage, RecordingBus,
};
use payhook_core::processor::{ProcessorConfig, ProviderProcessor, QueueRecord};
use payhook_core::signature::square::SQUARE_SIGNATURE_HEADER;
use payhook_core::signature::{
    PaypalCertificateCache, PaypalEnvironment, PaypalVerifier, SquareVerifier,
    StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::status::{MemoryStatusStore, Status, StatusItem, StatusStore};
use payhook_core::validator::{Validator, ValidatorConfig, WebhookRequest};
use payhook_core::{Headers, Provider, Secret};
use payhook_testkit::conformance::{conformance_dir, read_jsonl, workspace_root};
use ring::hmac;

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

fn fixture(file: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/fixtures").join(file))
        .expect("the bench fixtures are part of the repo")
}

fn body() -> Vec<u8> {
    fixture("stripe/payment_intent.succeeded.jpy.json")
}

/// What the validator does after verifying: normalise, stamp the receipt, build the message.
fn normalise_message(provider: Provider, body: &[u8]) -> QueueMessage {
    let Ok(Normalised::Event(mut event)) = normalise(provider, body) else {
        panic!("supported event")
    };
    event.received_at = Some("2026-01-01T00:00:00.000Z".to_owned());
    QueueMessage {
        provider,
        group_id: event.payment_id.clone(),
        deduplication_id: event.webhook_id.clone(),
        body: event.to_json(),
        trace_header: None,
    }
}

/// The floor of a group: HMAC-SHA256 of its body.
fn bench_floor(group: &mut BenchmarkGroup<'_, WallTime>, body: &[u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    group.bench_function("floor_hmac_sha256", |b| {
        b.iter(|| black_box(hmac::sign(&key, black_box(body))))
    });
}

fn signed(body: &[u8]) -> Headers {
    let mut h = Headers::new();
    h.insert(
        "Stripe-Signature",
        StripeVerifier::sign(&Secret::new(SECRET), NOW_MS / 1000, body),
    );
    h
}

fn bench_hot_path(c: &mut Criterion) {
    let body = body();
    let headers = signed(&body);
    let verifier = StripeVerifier::new(vec![Secret::new(SECRET)]);
    let mut group = c.benchmark_group("stripe");
    bench_floor(&mut group, &body);
    group.bench_function("verify_normalise_message", |b| {
        b.iter(|| {
            verifier
                .verify(&headers, black_box(&body), NOW_MS / 1000)
                .expect("valid");
            black_box(normalise_message(Provider::Stripe, black_box(&body)))
        })
    });
    group.finish();

    let body = fixture("square/payment.updated.eur.json");
    const URL: &str = "https://hooks.example.com/webhooks/square";
    let key = Secret::new(SECRET);
    let headers: Headers = [(
        SQUARE_SIGNATURE_HEADER,
        SquareVerifier::sign(&key, URL, &body),
    )]
    .into_iter()
    .collect();
    let verifier = SquareVerifier::new(vec![key], URL);
    let mut group = c.benchmark_group("square");
    bench_floor(&mut group, &body);
    group.bench_function("verify_normalise_message", |b| {
        b.iter(|| {
            verifier.verify(&headers, black_box(&body)).expect("valid");
            black_box(normalise_message(Provider::Square, black_box(&body)))
        })
    });
    group.finish();

    let body = fixture("paypal/PAYMENT.CAPTURE.COMPLETED.jpy.json");
    let mut group = c.benchmark_group("paypal");
    bench_floor(&mut group, &body);
    group.bench_function("normalise_message", |b| {
        b.iter(|| black_box(normalise_message(Provider::Paypal, black_box(&body))))
    });
    match paypal_vector() {
        Some(vector) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let verify = || {
                runtime.block_on(vector.verifier.verify(
                    &vector.headers,
                    black_box(&vector.body),
                    vector.now_unix,
                ))
            };
            verify().expect("the conformance vector verifies");
            group.bench_function("verify_rsa_sha256", |b| b.iter(|| verify().expect("valid")));
        }
        None => eprintln!(
            "paypal/verify_rsa_sha256 skipped: the conformance folder (PAYHOOK_CONFORMANCE_DIR) \
             is not there"
        ),
    }
    group.finish();
}

/// A genuine PayPal delivery (`paypal-018` of the shared signature vectors) and its verifier
/// with the certificate chain served from memory.
struct PaypalVector {
    verifier: PaypalVerifier,
    headers: Headers,
    body: Vec<u8>,
    now_unix: i64,
}

fn paypal_vector() -> Option<PaypalVector> {
    let dir = conformance_dir()?.join("signatures");
    let vector = read_jsonl(&dir.join("vectors.jsonl"))
        .expect("vectors.jsonl")
        .into_iter()
        .find(|v| v["id"] == "paypal-018")?;
    let text = |field: &str| vector[field].as_str().expect(field).to_owned();
    let pem = |file: &str| std::fs::read(dir.join(file)).expect("PEM");
    let chain: Vec<&str> = vector["trust_chain_files"]
        .as_array()
        .expect("chain")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let (anchor, intermediates) = chain.split_last().expect("anchor");
    let mut bundle = pem(text("secret").strip_prefix("file:").expect("file:"));
    for file in intermediates {
        bundle.extend(pem(file));
    }
    let certificates = Arc::new(PaypalCertificateCache::new(
        Arc::new(StaticCertificateFetcher::new(bundle)),
        TrustAnchors::from_pem(&pem(anchor)).expect("anchor"),
    ));
    Some(PaypalVector {
        verifier: PaypalVerifier::new(text("webhook_id"), certificates)
            .with_environment(PaypalEnvironment::Sandbox),
        headers: vector["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str().unwrap_or_default()))
            .collect(),
        body: text("body").into_bytes(),
        now_unix: vector["now"].as_i64().expect("now"),
    })
}

fn bench_validator(c: &mut Criterion) {
    let body = body();
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
    bench_hot_path,
    bench_validator,
    bench_processor,
    bench_stripe_header_size
);
criterion_main!(benches);
