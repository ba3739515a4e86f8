//! The whole pipeline with moto holding every queue, the table and the bus: the stack's ports
//! on the AWS adapters (`payhook serve --aws-endpoint URL`, `payhook demo --aws-endpoint URL`),
//! checked through moto with the SDK's own clients, not through the stack.

use std::collections::BTreeMap;

use payhook_aws::aws_config::SdkConfig;
use payhook_aws::aws_sdk_sqs::Client as SqsClient;
use payhook_aws::moto::MotoServer;
use payhook_aws::provision::StackNames;
use payhook_aws::{DynamoStatusStore, SqsConsumer};
use payhook_core::Provider;
use payhook_core::status::{Status, StatusItem};
use payhook_devkit::payloads::{self, PayloadSpec};
use payhook_local::demo::DemoOptions;
use payhook_testkit::conformance::workspace_root;

use crate::support::{Harness, MotoStage};

/// Every item of the stage's table, read from moto directly.
async fn table(stage: &MotoStage) -> BTreeMap<String, StatusItem> {
    let client = payhook_aws::aws_sdk_dynamodb::Client::new(&stage.sdk);
    DynamoStatusStore::new(client)
        .with_table_name(&stage.target.names.table)
        .scan()
        .await
        .expect("scan the stage's table on moto")
        .into_iter()
        .map(|item| (item.webhook_id.clone(), item))
        .collect()
}

/// Messages (visible, in flight or delayed) in the queue `name`, read from moto.
async fn depth(sdk: &SdkConfig, name: &str) -> usize {
    let sqs = SqsClient::new(sdk);
    let url = payhook_aws::consumer::queue_url(&sqs, name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("queue {name} exists on moto"));
    let d = SqsConsumer::new(sqs, url).depth().await.unwrap();
    d.visible + d.in_flight + d.delayed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_on_moto_keeps_order_dead_letters_poison_and_redrives_it() {
    let Some((h, stage)) =
        Harness::start_on_moto("moto-pipeline", |c| c.queues.max_receive_count = 2).await
    else {
        return;
    };
    let names: &StackNames = &stage.target.names;
    let (status, stats) = h.admin("/_payhook/stats").await;
    assert_eq!(status, 200);
    assert!(
        stats["backend"].as_str().unwrap().starts_with("aws "),
        "{stats}"
    );

    // One payment's events in order, one webhook per provider, and a poison message.
    let payment = payloads::new_payment_id(Provider::Square).unwrap();
    let ordered = h
        .post_payment_events(
            Provider::Square,
            &payment,
            &["payment.created", "payment.updated", "refund.created"],
        )
        .await;
    let mut others = Vec::new();
    for (provider, amount) in [(Provider::Stripe, "1500.00"), (Provider::Paypal, "12.50")] {
        let p = h.payload(PayloadSpec::new(provider).amount(amount, "USD"));
        let (status, body) = h.post(&p).await;
        assert_eq!(status, 202, "{body}");
        others.push(p.webhook_id());
    }
    let poison_payment = payloads::new_payment_id(Provider::Stripe).unwrap();
    h.faults.reject_payment(&poison_payment);
    let poison = h.payload(
        PayloadSpec::new(Provider::Stripe)
            .amount("42.00", "USD")
            .payment_id(poison_payment),
    );
    assert_eq!(h.post(&poison).await.0, 202);
    // A copy of a delivered webhook is a duplicate, found in the DynamoDB table.
    let copy = h.payload(PayloadSpec::new(Provider::Stripe).amount("5.00", "USD"));
    assert_eq!(h.post(&copy).await.0, 202);
    h.idle().await;
    let (status, body) = h.post(&copy).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    others.push(copy.webhook_id());

    let items = table(&stage).await;
    let mut published = Vec::new();
    for id in ordered.iter().chain(&others) {
        let item = &items[id];
        assert_eq!(item.status, Status::Processed, "{id}: {item:?}");
        assert!(
            !item.matched_rules.is_empty(),
            "{id} recorded with its rule"
        );
        assert!(item.published_at.is_some(), "{id}: {item:?}");
    }
    // The processor's log says in which order it published. (The item's `published_at` cannot:
    // moto delivers to the event processor before the processor records PUBLISHED, and the
    // item then keeps the event's bus time, which has whole seconds.)
    h.stack.flush_files();
    let logs = std::fs::read_to_string(h.stack.run_dir().join("logs.jsonl")).unwrap();
    for line in logs.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        if record["message"] == "published to the bus"
            && let Some(id) = record["webhook_id"].as_str()
            && ordered.iter().any(|o| o == id)
        {
            published.push(id.to_owned());
        }
    }
    assert_eq!(
        published, ordered,
        "one payment's events published in order"
    );
    let failed = &items[&poison.webhook_id()];
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.attempts, 2, "maxReceiveCount receives");
    assert_eq!(items.len(), ordered.len() + others.len() + 1, "{items:?}");
    assert_eq!(depth(&stage.sdk, &names.dlq(Provider::Stripe)).await, 1);
    assert_eq!(depth(&stage.sdk, &names.queue(Provider::Stripe)).await, 0);

    let (status, dlq) = h.admin("/_payhook/dlq/stripe").await;
    assert_eq!(status, 200);
    let messages = dlq["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{dlq}");
    assert_eq!(messages[0]["webhook_id"], poison.webhook_id().as_str());
    assert_eq!(messages[0]["status"], "FAILED");

    h.faults.clear_rejections();
    assert_eq!(h.redrive(Provider::Stripe).await, 1);
    h.idle().await;
    assert_eq!(
        table(&stage).await[&poison.webhook_id()].status,
        Status::Processed,
        "redriven and processed"
    );
    assert_eq!(depth(&stage.sdk, &names.dlq(Provider::Stripe)).await, 0);
    assert_eq!(
        h.stack.put_count(),
        (ordered.len() + others.len() + 1) as u64,
        "each webhook published once"
    );
    let (_, stats) = h.admin("/_payhook/stats").await;
    assert_eq!(stats["idle"], true, "{stats}");
    assert_eq!(stats["statuses"]["PROCESSED"], items.len(), "{stats}");
    h.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_endpoint_without_the_stage() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let dir = crate::support::run_dir("moto-missing-stage");
    let config = payhook_local::config::init(&dir, 8787, true, payhook_devkit::unix_now()).unwrap();
    let names = StackNames::new("never-bootstrapped");
    let error = payhook_local::stack::Stack::start(payhook_local::stack::StackOptions {
        config,
        run_dir: dir.join("run"),
        rules_dir: workspace_root().join("rules"),
        faults: Default::default(),
        aws: Some(payhook_local::stack::AwsTarget {
            endpoint: moto.endpoint.clone(),
            region: payhook_aws::moto::REGION.to_owned(),
            names,
        }),
    })
    .await
    .expect_err("no stage there");
    let message = error.to_string();
    assert!(
        message.contains("payhook-never-bootstrapped-stripe.fifo")
            && message.contains("payhook bootstrap"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_on_moto_balances_its_books() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let options = DemoOptions {
        run_dir: crate::support::run_dir("moto-demo"),
        rules_dir: workspace_root().join("rules"),
        timeout: 120,
        aws_endpoint: Some(moto.endpoint.clone()),
    };
    let report = payhook_local::demo::run(&options)
        .await
        .expect("demo runs")
        .report;
    assert!(report.balanced(), "{report:#?}");
    assert!(report.backend.starts_with("aws "), "{}", report.backend);
    assert_eq!(report.accepted, report.processed + report.failed);
    assert_eq!(report.failed, 1, "the one poison message");
    assert_eq!(report.dlq, 1);
    // The crashed batch comes back; its event is published again (and absorbed) unless the
    // first copy was already recorded PROCESSED by then. The demo's queues make a message
    // visible again after 1 s, so on a loaded machine a slow attempt's lease can end and the
    // next receive take the claim over and publish again: absorbed too, never recorded twice
    // (balanced() above).
    assert!(report.absorbed <= 3, "{report:#?}");
    assert_eq!(
        report.settled, 4,
        "the Square payment's no-op updates: {report:#?}"
    );
    assert_eq!(report.payments_checked, 3, "{report:#?}");
    assert_eq!(report.business_events.get("payment.succeeded"), Some(&3));

    // The demo's stage, checked on moto itself: its table holds every accepted webhook.
    let stage = report
        .backend
        .rsplit(' ')
        .next()
        .expect("stage in the backend name")
        .to_owned();
    let sdk = moto.sdk_config().await;
    let items = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk))
        .with_table_name(format!("webhook-processing-{stage}"))
        .scan()
        .await
        .unwrap();
    let count = |status| items.iter().filter(|i| i.status == status).count();
    assert_eq!(count(Status::Processed), report.processed);
    assert_eq!(count(Status::Failed), 1);
    let mut dead_letters = 0;
    for provider in Provider::ALL {
        dead_letters += depth(&sdk, &StackNames::new(&stage).dlq(provider)).await;
    }
    assert_eq!(dead_letters, 1, "the poison message, on moto");
}
