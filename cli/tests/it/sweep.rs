//! `payhook sweep` against the local stack running over a bootstrapped stage on moto: a webhook
//! left `RECEIVED` (its validator died before the send) is found through the table's sparse
//! open-status index, enqueued again with its kept bytes, and processed once; the next sweep
//! finds nothing. (Skipped when moto is not installed, a failure under the test command.)

use std::sync::Arc;
use std::time::Duration;

use payhook::commands::sweep::{self, SweepArgs};
use payhook_aws::DynamoStatusStore;
use payhook_aws::aws_sdk_dynamodb::Client as DynamoClient;
use payhook_aws::moto::{self, MotoServer, REGION};
use payhook_aws::provision::StackNames;
use payhook_core::Provider;
use payhook_core::currency::Rates;
use payhook_core::normalise::{Normalised, normalise_with};
use payhook_core::status::{PutOutcome, Status, StatusItem, StatusStore, rfc3339_ms};
use payhook_devkit::democa::DemoCa;
use payhook_devkit::payloads::{self, PayloadSpec};
use payhook_devkit::unix_now;
use payhook_local::config;
use payhook_local::faults::Faults;
use payhook_local::http::FrontDoor;
use payhook_local::stack::{AwsTarget, Stack, StackOptions};
use payhook_testkit::conformance::workspace_root;

async fn sweep_once(base: &str) -> (i32, String) {
    let mut out = Vec::new();
    let args = SweepArgs {
        local: base.to_owned(),
        older_than: None,
        json: false,
    };
    let code = sweep::run_with_output(args, &mut out).await.expect("sweep");
    (code, String::from_utf8(out).unwrap())
}

/// A webhook the validator recorded `RECEIVED` 20 minutes ago, with the message it was about to
/// send, and never sent.
fn stranded_received_item(now_ms: i64) -> StatusItem {
    let payload = payloads::build(
        &PayloadSpec::new(Provider::Stripe)
            .amount("42.00", "USD")
            .at(now_ms / 1000 - 1200),
    )
    .unwrap();
    let Normalised::Event(mut event) =
        normalise_with(Provider::Stripe, &payload.body, &Rates::bundled().unwrap()).unwrap()
    else {
        panic!("a payment event");
    };
    let received_ms = now_ms - 20 * 60_000;
    event.received_at = Some(rfc3339_ms(received_ms));
    let mut item = StatusItem::new(
        event.webhook_id.clone(),
        Provider::Stripe,
        event.provider_event_type.clone(),
        Status::Received,
        received_ms,
    );
    item.event_type = Some(event.event_type.as_str().to_owned());
    item.payment_id = Some(event.payment_id.clone());
    item.amount_minor = Some(event.amount_minor);
    item.currency = Some(event.currency.clone());
    item.message_body = Some(event.to_json());
    item
}

#[tokio::test]
async fn a_webhook_stranded_received_is_swept_back_onto_its_queue_and_processed_once() {
    let Some(moto) = MotoServer::shared() else {
        payhook_testkit::skip::skip_test("sweep over moto: moto_server is not installed");
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sweep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = config::init_with_ca(&dir, port, true, || {
        Ok(DemoCa::generate(unix_now()).expect("demo CA"))
    })
    .expect("config");
    config.queues.visibility_timeout_seconds = 2;
    let stage = format!("sw{}", std::process::id() % 100_000);
    // A table of its own: the sweep lists the whole table's stuck items.
    let names = StackNames::new(&stage).with_table(moto::unique_name("webhook-processing"));
    payhook_local::stage::bootstrap_stage(
        &moto.endpoint,
        REGION,
        &dir,
        &config,
        &names,
        workspace_root().join("rules"),
    )
    .await
    .expect("bootstrap");
    let store = DynamoStatusStore::new(DynamoClient::new(&moto.sdk_config().await))
        .with_table_name(&names.table);
    let item = stranded_received_item(unix_now() * 1000);
    assert_eq!(store.put_new(&item).await.unwrap(), PutOutcome::Created);

    let stack = Stack::start(StackOptions {
        config: config.clone(),
        run_dir: dir.join("run"),
        rules_dir: workspace_root().join("rules"),
        faults: Faults::default(),
        aws: Some(AwsTarget {
            endpoint: moto.endpoint.clone(),
            region: REGION.to_owned(),
            names: names.clone(),
        }),
    })
    .await
    .expect("the stack over moto");
    let front = FrontDoor::serve(Arc::clone(&stack), listener).unwrap();
    let base = format!("http://{}", front.addr);

    let (code, printed) = sweep_once(&base).await;
    assert_eq!(code, 0, "{printed}");
    assert!(
        printed.contains("reenqueued") && printed.contains(&item.webhook_id),
        "{printed}"
    );
    assert!(stack.wait_idle(Duration::from_secs(60)).await);
    let done = store.get(&item.webhook_id).await.unwrap().unwrap();
    assert_eq!(done.status, Status::Processed);
    assert_eq!(
        done.message_body, None,
        "the bytes go once the webhook is done"
    );
    assert_eq!(stack.put_count(), 1, "published once");

    let (code, printed) = sweep_once(&base).await;
    assert_eq!(code, 0, "{printed}");
    assert!(printed.contains("0 stuck"), "{printed}");
    drop(front);
    stack.shutdown().await;
}
