//! Cold start of the Lambda binaries: each function's real release binary is started, several
//! times, under a Lambda Runtime API stand-in with the environment the Pulumi program renders (a
//! stage bootstrapped on moto, an X-Ray daemon stand-in on UDP), and is measured as Lambda
//! would bill it:
//!
//! - **init**: from exec to the function's first `/next` (everything `main` does before the
//!   runtime loop: telemetry, configuration, SDK clients);
//! - **first invocation**: the first event's round trip through the stand-in, which pays for
//!   whatever the function builds lazily (connections, credentials, caches);
//! - **warm invocation**: the median of the next events' round trips in the same process.
//!
//! The baseline is `examples/hello_bootstrap.rs` (the same runtime crate and tokio, echoing its
//! event), measured in the same run. Each event does the function's real work against moto: a
//! new signed webhook for the validator, a record of what it queued for the Stripe processor, the
//! processor's `PutEvents` entry for the event processor — so the invocation times include
//! moto's own latency, the same for first and warm.
//!
//! Run (release binaries first; the bench does not build them):
//!
//! ```sh
//! cargo build --release -p payhook-webhook-validator -p payhook-provider-processor \
//!   -p payhook-event-processor
//! cargo build --release -p payhook-e2e --example hello_bootstrap
//! cargo bench -p payhook-e2e --bench cold_start
//! ```
//!
//! The functions start as in an on-demand environment (`AWS_LAMBDA_INITIALIZATION_TYPE=on-demand`:
//! SDK clients built when first used); `PAYHOOK_INITIALIZATION_TYPE=provisioned-concurrency`
//! measures them as provisioned concurrency starts them (clients built at init).
//!
//! It needs moto (`PAYHOOK_MOTO_SERVER`, or `scripts/bootstrap-python.sh`) and the Python venv
//! that renders the environments. It prints a Markdown table for BENCHMARKS.md; it asserts no
//! timing.

#[allow(
    dead_code,
    reason = "the end-to-end support also serves tests this bench does not run"
)]
#[path = "../e2e/support.rs"]
mod support;

#[allow(dead_code, reason = "the harness also serves the lambda_binaries test")]
#[path = "../e2e/lambda_harness.rs"]
mod lambda_harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use payhook_aws::SqsConsumer;
use payhook_aws::moto::MotoServer;
use payhook_core::Provider;
use payhook_devkit::payloads::{PayloadSpec, build};
use serde_json::{Value, json};

use lambda_harness::{Chain, api_gateway_event, binary, sqs_event, start_function};

/// Processes started per function.
const STARTS: usize = 7;
/// Warm invocations after the first, per start.
const WARM: usize = 9;
/// Events each function handles in the whole run.
const EVENTS: usize = STARTS * (1 + WARM);

/// One function's measurements over its starts.
struct Measured {
    name: &'static str,
    init: Vec<Duration>,
    first: Vec<Duration>,
    warm: Vec<Duration>,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

#[expect(
    clippy::too_many_lines,
    reason = "one bench script: each function's cold and warm invocations measured in turn on the same chain"
)]
async fn run() {
    let Some(moto) = MotoServer::shared() else {
        eprintln!(
            "cold_start skipped: no moto server (scripts/bootstrap-python.sh installs one; \
             PAYHOOK_MOTO_SERVER names it)"
        );
        return;
    };
    let hello = binary("examples/hello_bootstrap");
    for name in ["webhook-validator", "provider-processor", "event-processor"] {
        binary(name);
    }

    let chain = Chain::start("cold-start", moto).await;
    let (envs, common) = (&chain.envs, &chain.common);
    let mut results = Vec::new();

    let hello_events = (0..EVENTS).map(|i| json!({ "hello": i })).collect();
    results.push(
        measure(
            "hello_bootstrap (baseline)",
            hello.to_str().expect("UTF-8 path"),
            "hello",
            &BTreeMap::new(),
            common,
            hello_events,
            |response| response.get("hello").is_some(),
        )
        .await,
    );

    // The validator: a new signed Stripe webhook per event.
    let validator_env = chain.validator_env().await;
    let signer = chain.config.signer().expect("signer");
    let webhooks = (0..EVENTS)
        .map(|_| {
            let payload = build(&PayloadSpec::new(Provider::Stripe).amount("250.00", "USD"))
                .expect("payload");
            let headers = signer
                .sign(Provider::Stripe, &payload.body, payhook_devkit::unix_now())
                .expect("signed");
            api_gateway_event(Provider::Stripe, &headers, &payload.body)
        })
        .collect();
    results.push(
        measure(
            "webhook-validator",
            "webhook-validator",
            "webhook-validator",
            &validator_env,
            common,
            webhooks,
            |response| response["statusCode"] == 202,
        )
        .await,
    );

    // The Stripe processor: one record of what the validator queued per event, its AWS calls
    // through the tap that keeps each PutEvents entry.
    let stripe_queue = chain.queue_url(Provider::Stripe).await;
    let queue_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        chain.stage.target.names.queue(Provider::Stripe)
    );
    let consumer = SqsConsumer::new(chain.sqs.clone(), stripe_queue);
    let mut records = Vec::new();
    while records.len() < EVENTS {
        let batch = consumer.receive(10, 1, Some(900)).await.expect("receive");
        assert!(!batch.is_empty(), "{} of {EVENTS} queued", records.len());
        records.extend(batch);
    }
    let record_events = records
        .iter()
        .map(|r| sqs_event(std::slice::from_ref(r), &queue_arn))
        .collect();
    results.push(
        measure(
            "provider-processor (Stripe)",
            "provider-processor",
            "stripe-processor",
            &envs["stripe-processor"],
            &chain.through_tap,
            record_events,
            |response| response["batchItemFailures"] == json!([]),
        )
        .await,
    );

    // The event processor: each entry the processor put, as the rule's target receives it.
    let entries = chain.put.lock().expect("entries").clone();
    assert_eq!(entries.len(), EVENTS, "one PutEvents entry per webhook");
    let routed = entries
        .into_iter()
        .map(|(_, detail)| {
            json!({
                "rule": "medium-value-payments",
                "event": {
                    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                    "detail-type": "payment.succeeded", "source": "payhook.stripe",
                    "account": "123456789012", "time": "2026-12-03T00:00:00Z",
                    "region": "us-east-1", "resources": [], "detail": detail,
                }
            })
        })
        .collect();
    results.push(
        measure(
            "event-processor",
            "event-processor",
            "event-processor",
            &envs["event-processor"],
            common,
            routed,
            |_| true,
        )
        .await,
    );

    report(&results);
}

/// Starts `binary` [`STARTS`] times, handing each process one event of `events` and then
/// [`WARM`] more; every answer must be a success that `ok` accepts.
async fn measure(
    name: &'static str,
    binary: &str,
    function: &str,
    env: &BTreeMap<String, String>,
    common: &[(String, String)],
    events: Vec<Value>,
    ok: impl Fn(&Value) -> bool,
) -> Measured {
    let mut events = events.into_iter();
    let mut measured = Measured {
        name,
        init: Vec::new(),
        first: Vec::new(),
        warm: Vec::new(),
    };
    for _ in 0..STARTS {
        let process = start_function(binary, function, env, common).await;
        let ready = process
            .runtime
            .wait_first_next(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("{name} did not ask for work within 30 s"));
        measured.init.push(ready - process.started);
        for i in 0..=WARM {
            let event = events.next().expect("an event per invocation");
            let trace = format!(
                "Root=1-{:08x}-{:024x};Parent=53995c3f42cd8ad8;Sampled=1",
                payhook_devkit::unix_now(),
                rand_like(i)
            );
            let at = Instant::now();
            let (succeeded, response) = process.runtime.invoke(&event, Some(trace)).await;
            let took = at.elapsed();
            assert!(succeeded && ok(&response), "{name}: {response}");
            if i == 0 {
                measured.first.push(took);
            } else {
                measured.warm.push(took);
            }
        }
    }
    measured
}

/// A trace id part that differs between invocations.
fn rand_like(i: usize) -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    nanos ^ (i as u128) << 64
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn report(results: &[Measured]) {
    let baseline = median(&results[0].init);
    println!(
        "\n{STARTS} starts per function, {WARM} warm invocations after each first one; medians \
         (min–max for init)\n"
    );
    println!(
        "| function | init | init − baseline | first invocation | warm invocation | first ÷ warm |"
    );
    println!("|---|---|---|---|---|---|");
    for m in results {
        let init = median(&m.init);
        let (min, max) = (
            m.init.iter().min().copied().unwrap_or_default(),
            m.init.iter().max().copied().unwrap_or_default(),
        );
        let (first, warm) = (median(&m.first), median(&m.warm));
        let over = init.as_secs_f64() - baseline.as_secs_f64();
        println!(
            "| {} | {} ({}–{}) | {:+.2} ms | {} | {} | {:.1}× |",
            m.name,
            ms(init),
            ms(min),
            ms(max),
            over * 1000.0,
            ms(first),
            ms(warm),
            first.as_secs_f64() / warm.as_secs_f64()
        );
    }
}
