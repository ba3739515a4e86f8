//! `payhook serve` over moto, SIGKILLed while its processors work through multi-record batches
//! and started again: every accepted webhook ends `PROCESSED` once, nothing is dead-lettered.
//! (Skipped when moto is not installed, a failure under the test command.)

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use payhook_aws::DynamoStatusStore;
use payhook_aws::aws_sdk_dynamodb::Client as DynamoClient;
use payhook_aws::moto::{MotoServer, REGION};
use payhook_aws::provision::StackNames;
use payhook_core::Provider;
use payhook_core::status::{Status, StatusStore};
use payhook_devkit::democa::DemoCa;
use payhook_devkit::payloads::{self, PayloadSpec};
use payhook_devkit::unix_now;
use payhook_local::config;
use payhook_testkit::conformance::workspace_root;

const WEBHOOKS: usize = 24;

fn serve(dir: &Path, run: &str, port: u16, endpoint: &str, stage: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_payhook"))
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--aws-endpoint",
            endpoint,
        ])
        .arg("--config")
        .arg(dir.join(config::CONFIG_FILE_NAME))
        .arg("--run-dir")
        .arg(dir.join(run))
        .arg("--rules-dir")
        .arg(workspace_root().join("rules"))
        .env("PAYHOOK_AWS_STAGE", stage)
        .env("PAYHOOK_AWS_REGION", REGION)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("payhook serve starts")
}

async fn wait_listening(port: u16) {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payhook serve never listened on {port}");
}

async fn statuses(store: &DynamoStatusStore, ids: &[String]) -> Vec<Option<Status>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(store.get(id).await.unwrap().map(|i| i.status));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_batch_and_restarted_processes_every_accepted_webhook_once() {
    let Some(moto) = MotoServer::shared() else {
        payhook_testkit::skip::skip_test("serve_killed_mid_batch…: moto_server is not installed");
        return;
    };
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sigkill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = config::init_with_ca(&dir, port, true, || {
        Ok(DemoCa::generate(unix_now()).expect("demo CA"))
    })
    .expect("config");
    config.queues.visibility_timeout_seconds = 2;
    let stage = format!("kill{}", std::process::id() % 100_000);
    payhook_local::stage::bootstrap_stage(
        &moto.endpoint,
        REGION,
        &dir,
        &config,
        &StackNames::new(&stage),
        workspace_root().join("rules"),
    )
    .await
    .expect("bootstrap");
    let store = DynamoStatusStore::new(DynamoClient::new(&moto.sdk_config().await))
        .with_table_name(StackNames::new(&stage).table);

    let mut first = serve(&dir, "run-1", port, &moto.endpoint, &stage);
    wait_listening(port).await;
    let sender = config.sender().expect("sender");
    let url = format!("http://127.0.0.1:{port}/webhooks/square");
    // Posted at once, so the processors receive them in batches of several records.
    let payloads: Vec<_> = (0..WEBHOOKS)
        .map(|i| {
            payloads::build(
                &PayloadSpec::new(Provider::Square)
                    .amount(format!("{}.00", 10 + i), "USD")
                    .at(unix_now()),
            )
            .expect("payload")
        })
        .collect();
    let sender = std::sync::Arc::new(sender);
    let posts: Vec<_> = payloads
        .iter()
        .map(|p| {
            let (sender, url, body) = (sender.clone(), url.clone(), p.body.clone());
            tokio::spawn(
                async move { sender.send(&url, Provider::Square, body).await.map(|a| a.0) },
            )
        })
        .collect();
    for post in posts {
        assert_eq!(post.await.expect("joined").expect("answered"), 202);
    }
    let ids: Vec<String> = payloads.iter().map(|p| p.webhook_id()).collect();

    // Kill it while work is under way: some webhooks claimed or published, not all done.
    for _ in 0..2_000 {
        let now = statuses(&store, &ids).await;
        if now.iter().any(|s| {
            matches!(
                s,
                Some(Status::Processing | Status::Published | Status::Processed)
            )
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let at_kill = statuses(&store, &ids).await;
    assert!(
        at_kill.iter().any(|s| *s != Some(Status::Processed)),
        "killed after everything was done: {at_kill:?}"
    );

    let mut second = serve(&dir, "run-2", port, &moto.endpoint, &stage);
    let mut done = false;
    for _ in 0..600 {
        let now = statuses(&store, &ids).await;
        if now.iter().all(|s| *s == Some(Status::Processed)) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = second.kill();
    let _ = second.wait();
    let end = statuses(&store, &ids).await;
    assert!(
        done,
        "not every webhook ended PROCESSED: at kill {at_kill:?}, now {end:?}"
    );
    for id in &ids {
        let item = store.get(id).await.unwrap().unwrap();
        assert_eq!(item.matched_rules.len(), 1, "{id} recorded once: {item:?}");
        assert!(item.processed_at.is_some());
    }
}
