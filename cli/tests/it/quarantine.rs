//! `payhook quarantine list|show|replay` against the running local stack (its admin API over
//! HTTP on loopback) and against a bootstrapped stage on moto (`--aws-endpoint`, skipped when
//! moto is not installed, failing under the test command): an unknown currency is quarantined,
//! listed, shown, and replayed once after the rates file gains it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use clap::Parser;
use payhook::commands::quarantine::{self, QuarantineCommand};
use payhook_aws::DynamoStatusStore;
use payhook_aws::aws_sdk_sqs::Client as SqsClient;
use payhook_aws::moto::{self, MotoServer};
use payhook_aws::provision::{self, StackNames, StackPlan};
use payhook_core::Provider;
use payhook_core::status::{PutOutcome, Status, StatusItem, StatusStore};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(name = "payhook")]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, clap::Subcommand)]
enum Top {
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
}

/// Runs `payhook quarantine ARGS…`; returns the exit code and what it printed.
async fn payhook(args: &[&str]) -> (i32, String) {
    let cli = Cli::try_parse_from(
        ["payhook", "quarantine"]
            .into_iter()
            .chain(args.iter().copied()),
    )
    .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let Top::Quarantine(command) = cli.command;
    let mut out: Vec<u8> = Vec::new();
    let code = quarantine::run_with_output(command, &mut out)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", String::from_utf8_lossy(&out)));
    (code, String::from_utf8(out).unwrap())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    crate::support::scratch_in("quarantine", name)
}

/// A Stripe payment in `XTS` (ISO's test code, unknown to the bundled rates file), happening now.
fn unknown_currency_body(event_id: &str) -> Vec<u8> {
    let path = repo().join("tests/fixtures/stripe/payment_intent.succeeded.kwd.json");
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["id"] = event_id.into();
    event["created"] = payhook_devkit::unix_now().into();
    event["data"]["object"]["currency"] = "xts".into();
    serde_json::to_vec(&event).unwrap()
}

/// The bundled rates file, with `XTS` added when `with_xts`.
fn write_rates(path: &Path, with_xts: bool) {
    let mut rates: Value =
        serde_json::from_slice(&std::fs::read(repo().join("rules/currencies/rates.json")).unwrap())
            .unwrap();
    if with_xts {
        rates["currencies"]["XTS"] = serde_json::json!({"exponent": 3, "rate": 2.0});
    }
    std::fs::write(path, serde_json::to_vec_pretty(&rates).unwrap()).unwrap();
}

#[tokio::test]
async fn a_quarantined_webhook_is_listed_shown_and_replayed_once_on_the_local_stack() {
    use payhook_local::faults::Faults;
    use payhook_local::http::FrontDoor;
    use payhook_local::stack::{Stack, StackOptions};

    let dir = scratch("local");
    let rates = dir.join("rates.json");
    write_rates(&rates, false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config =
        payhook_local::config::init(&dir, port, true, payhook_devkit::unix_now()).unwrap();
    config.processing.currency_rates_file = Some(rates.clone());
    let stack = Stack::start(StackOptions {
        config: config.clone(),
        run_dir: dir.join("run"),
        rules_dir: repo().join("rules"),
        faults: Faults::default(),
        aws: None,
    })
    .await
    .unwrap();
    let front = FrontDoor::serve(Arc::clone(&stack), listener).unwrap();
    let base = format!("http://{}", front.addr);

    let body = unknown_currency_body("evt_local_xts");
    let sender = config.sender().unwrap();
    let url = format!("{base}/webhooks/stripe");
    let (status, response) = sender
        .send(&url, Provider::Stripe, body.clone())
        .await
        .unwrap();
    assert_eq!(status, 202, "{response}");
    assert!(response.contains("quarantined"), "{response}");

    let (code, out) = payhook(&["list", "--json", "--local", &base]).await;
    assert_eq!(code, 0, "{out}");
    let listed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listed["webhook_id"], "stripe:evt_local_xts");
    assert_eq!(listed["body"], "inline");
    assert!(
        listed["reason"]
            .as_str()
            .unwrap()
            .starts_with("unsupported_currency"),
        "{listed}"
    );

    let (code, out) = payhook(&["show", "stripe:evt_local_xts", "--body", "--local", &base]).await;
    assert_eq!(code, 0, "{out}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["status"], "QUARANTINED");
    assert_eq!(shown["body"].as_str().unwrap().as_bytes(), &body[..]);

    // Still unknown: it stays quarantined, and the exit code says so.
    let (code, out) = payhook(&["replay", "--all", "--local", &base]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("still_failing"), "{out}");

    write_rates(&rates, true);
    let (code, out) = payhook(&["replay", "--all", "--local", &base]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 queued"), "{out}");
    let (code, out) = payhook(&["replay", "stripe:evt_local_xts", "--local", &base]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not_quarantined"), "{out}");
    assert!(stack.wait_idle(Duration::from_secs(20)).await);

    let item = stack.status("stripe:evt_local_xts").await.unwrap();
    assert_eq!(item.status, Status::Processed);
    assert_eq!(stack.put_count(), 1, "published once");
    let (_, out) = payhook(&["list", "--json", "--local", &base]).await;
    assert!(out.trim().is_empty(), "nothing left quarantined: {out}");
    drop(front);
    stack.shutdown().await;
}

async fn moto() -> Option<(&'static MotoServer, payhook_aws::aws_config::SdkConfig)> {
    let server = MotoServer::shared()?;
    Some((server, server.sdk_config().await))
}

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario over the same stage: an inline and an S3 body quarantined, each replayed twice and queued once"
)]
async fn replay_on_aws_queues_a_quarantined_webhook_once_and_reads_a_large_body_from_s3() {
    let Some((moto, config)) = moto().await else {
        return;
    };
    let stage = format!("q{}", std::process::id() % 100_000);
    let names = StackNames::new(&stage).with_table(moto::unique_name("webhook-processing"));
    provision::provision(&config, &StackPlan::new(names.clone()), |_| {})
        .await
        .unwrap();
    let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&config))
        .with_table_name(&names.table);
    let now = payhook_devkit::unix_now() * 1000;
    let small = unknown_currency_body("evt_aws_small");
    let mut item = StatusItem::new(
        "stripe:evt_aws_small",
        Provider::Stripe,
        "payment_intent.succeeded",
        Status::Quarantined,
        now,
    );
    item.quarantine_reason = Some("unsupported_currency: XTS".into());
    item.raw_body = Some(base64::engine::general_purpose::STANDARD.encode(&small));
    assert_eq!(store.put_new(&item).await.unwrap(), PutOutcome::Created);
    // A body kept in the stage's bucket, as the validator keeps one too large for the item.
    let large = unknown_currency_body("evt_aws_large");
    let key = payhook_core::blob::quarantine_key(Provider::Stripe, &large);
    let blobs =
        payhook_aws::S3BlobStore::new(payhook_aws::s3_client(&config), names.quarantine_bucket());
    payhook_core::blob::BlobStore::put(&blobs, &key, &large)
        .await
        .unwrap();
    let mut item = StatusItem::new(
        "stripe:evt_aws_large",
        Provider::Stripe,
        "payment_intent.succeeded",
        Status::Quarantined,
        now,
    );
    item.raw_body_key = Some(key);
    assert_eq!(store.put_new(&item).await.unwrap(), PutOutcome::Created);

    let dir = scratch("aws");
    let rates = dir.join("rates.json");
    write_rates(&rates, true);
    let target = [
        "--aws-endpoint",
        moto.endpoint.as_str(),
        "--region",
        moto::REGION,
        "--stage",
        stage.as_str(),
        "--table",
        names.table.as_str(),
    ];
    let mut list = vec!["list", "--json"];
    list.extend(target);
    let (code, out) = payhook(&list).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains(r#""body":"s3""#), "{out}");

    // The wrong bucket: nothing moves, and the error says where to look.
    let mut wrong = vec![
        "replay",
        "stripe:evt_aws_large",
        "--rates",
        rates.to_str().unwrap(),
        "--bucket",
        "no-such-quarantine-bucket",
    ];
    wrong.extend(target);
    let cli = Cli::try_parse_from(["payhook", "quarantine"].into_iter().chain(wrong)).unwrap();
    let Top::Quarantine(command) = cli.command;
    let err = quarantine::run_with_output(command, &mut Vec::new())
        .await
        .expect_err("the body is not in that bucket");
    assert!(err.to_string().contains("quarantine_bucket"), "{err}");

    let mut replay = vec!["replay", "--all", "--rates", rates.to_str().unwrap()];
    replay.extend(target);
    let (code, out) = payhook(&replay).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 queued"), "{out}");
    let mut again = vec![
        "replay",
        "stripe:evt_aws_small",
        "stripe:evt_aws_large",
        "--rates",
        rates.to_str().unwrap(),
    ];
    again.extend(target);
    let (code, out) = payhook(&again).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("0 queued"),
        "a second replay queues nothing: {out}"
    );

    let sqs = SqsClient::new(&config);
    let url = sqs
        .get_queue_url()
        .queue_name(names.queue(Provider::Stripe))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let mut bodies = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if received.messages().is_empty() {
            break;
        }
        bodies.extend(
            received
                .messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
    }
    let mut ids: Vec<String> = bodies
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["webhook_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["stripe:evt_aws_large", "stripe:evt_aws_small"],
        "each queued once"
    );
}
