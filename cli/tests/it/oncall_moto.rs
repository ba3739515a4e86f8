//! `payhook bootstrap`, `payhook status` and `payhook dlq list|redrive` against a real moto
//! server (skipped when moto is not installed, failing under the test command), and the
//! local-stack side of `status` and `dlq` over HTTP on loopback.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use payhook::commands::bootstrap::BootstrapArgs;
use payhook::commands::oncall::{self, DlqCommand, StatusArgs};
use payhook_aws::aws_config::SdkConfig;
use payhook_aws::aws_sdk_dynamodb::Client as DynamoClient;
use payhook_aws::aws_sdk_eventbridge::Client as EventsClient;
use payhook_aws::aws_sdk_sqs::Client as SqsClient;
use payhook_aws::aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use payhook_aws::aws_sdk_ssm::Client as SsmClient;
use payhook_aws::aws_sdk_ssm::types::ParameterType;
use payhook_aws::dlq::redrive_deduplication_id;
use payhook_aws::moto::{self, MotoServer};
use payhook_aws::provision::{self, StackNames, StackPlan};
use payhook_aws::{DynamoStatusStore, create_table};
use payhook_core::status::{Status, StatusItem, StatusStore};
use payhook_core::{EventType, PaymentEvent, Provider};
use payhook_pattern::load_rules;
use serde_json::{Value, json};

/// The commands under test, parsed the way the `payhook` binary parses them.
#[derive(Debug, Parser)]
#[command(name = "payhook")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Bootstrap(BootstrapArgs),
    Status(StatusArgs),
    #[command(subcommand)]
    Dlq(DlqCommand),
}

/// Runs `payhook ARGS…`; returns the exit code and what it printed on stdout.
async fn payhook(args: &[&str]) -> (i32, String) {
    let cli = Cli::try_parse_from(std::iter::once("payhook").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let mut out: Vec<u8> = Vec::new();
    let code = match cli.command {
        Command::Bootstrap(a) => payhook::commands::bootstrap::run_with_output(a, &mut out).await,
        Command::Status(a) => oncall::run_status_with_output(a, &mut out).await,
        Command::Dlq(c) => oncall::run_dlq_with_output(c, &mut out).await,
    }
    .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", String::from_utf8_lossy(&out)));
    (code, String::from_utf8(out).unwrap())
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    crate::support::scratch_in("oncall_moto", name)
}

/// A stage name of its own for each test (tests share one moto server).
fn unique_stage() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t{}-{}-{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 10_000
    )
}

async fn moto_config() -> Option<(&'static MotoServer, SdkConfig)> {
    let server = MotoServer::shared()?;
    Some((server, server.sdk_config().await))
}

/// The queues, DLQs and table of a fresh stage (no rules, no parameters).
async fn provisioned_stage(config: &SdkConfig) -> StackNames {
    let names = StackNames::new(unique_stage())
        .with_table(moto::unique_name("webhook-processing"))
        .with_event_bus(moto::unique_name("payment-events"));
    provision::provision(config, &StackPlan::new(names.clone()), |_| {})
        .await
        .unwrap();
    names
}

/// `--aws-endpoint … --region … --stage … --table …` for `names`.
fn aws_args<'a>(moto: &'a MotoServer, names: &'a StackNames) -> Vec<&'a str> {
    vec![
        "--aws-endpoint",
        moto.endpoint.as_str(),
        "--region",
        moto::REGION,
        "--stage",
        names.stage.as_str(),
        "--table",
        names.table.as_str(),
    ]
}

async fn queue_url(sqs: &SqsClient, name: &str) -> String {
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

async fn attributes(sqs: &SqsClient, url: &str) -> HashMap<QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes()
        .cloned()
        .unwrap()
}

/// The canonical event body of `provider_event_id` in payment `payment_id`.
fn body(provider: Provider, provider_event_id: &str, payment_id: &str) -> String {
    let event = PaymentEvent {
        webhook_id: PaymentEvent::make_webhook_id(provider, provider_event_id),
        provider,
        provider_event_id: provider_event_id.into(),
        provider_event_type: "payment_intent.succeeded".into(),
        event_type: EventType::PaymentSucceeded,
        payment_id: payment_id.into(),
        object_id: None,
        amount_minor: 2_500,
        amount: 25.0,
        currency: "USD".into(),
        amount_decimal: payhook_core::currency::minor_to_decimal_string(2_500, 2),
        amount_reporting: Some(25.0),
        reporting_currency: Some("USD".to_owned()),
        provider_status: Some("succeeded".into()),
        failure_code: None,
        occurred_at: "2026-01-01T00:00:00Z".into(),
        received_at: Some("2026-01-01T00:00:00.100Z".into()),
        livemode: Some(false),
        account: None,
        merchant_id: None,
        object_updated_at: None,
        object_version: None,
        refunded_total_minor: None,
    };
    String::from_utf8(event.to_bytes()).unwrap()
}

/// Puts a message straight into `names`' `provider` DLQ, as SQS does after maxReceiveCount.
async fn dead_letter(
    sqs: &SqsClient,
    names: &StackNames,
    provider: Provider,
    provider_event_id: &str,
    group: &str,
) {
    let url = queue_url(sqs, &names.dlq(provider)).await;
    sqs.send_message()
        .queue_url(url)
        .message_body(body(provider, provider_event_id, group))
        .message_group_id(group)
        .message_deduplication_id(PaymentEvent::make_webhook_id(provider, provider_event_id))
        .send()
        .await
        .unwrap();
}

/// Receives everything in the queue (deleting it): `(group, webhook id, dedup id)` in order.
async fn drain(sqs: &SqsClient, url: &str) -> Vec<(String, String, String)> {
    let mut messages = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        if output.messages().is_empty() {
            return messages;
        }
        for message in output.messages() {
            let attribute = |name| {
                message
                    .attributes()
                    .and_then(|a| a.get(&name).cloned())
                    .unwrap_or_default()
            };
            let body: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            messages.push((
                attribute(MessageSystemAttributeName::MessageGroupId),
                body["webhook_id"].as_str().unwrap().to_owned(),
                attribute(MessageSystemAttributeName::MessageDeduplicationId),
            ));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("payhook.toml");
    std::fs::write(
        &path,
        r#"
[api]
key = "test-api-key"

[stripe]
signing_secrets = ["whsec_new", "whsec_old"]

[square]
signature_key = "square-key"
notification_url = "http://127.0.0.1:8787/webhooks/square"

[paypal]
webhook_id = "WH-TEST-1"
"#,
    )
    .unwrap();
    path
}

// --- bootstrap -------------------------------------------------------------------------------

#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario in three acts (create, run again, repair drift) over the same stage"
)]
async fn bootstrap_creates_the_whole_stage_changes_nothing_when_run_again_and_repairs_drift() {
    let Some((moto, config)) = moto_config().await else {
        return;
    };
    let dir = scratch("bootstrap");
    let config_file = write_config(&dir);
    let names = StackNames::new(unique_stage())
        .with_table(moto::unique_name("webhook-processing"))
        .with_event_bus(moto::unique_name("payment-events"));
    let config_arg = config_file.to_str().unwrap();
    let rules_arg = rules_dir();
    let mut args = vec!["bootstrap", "--config", config_arg];
    args.extend(aws_args(moto, &names));
    args.extend([
        "--event-bus",
        names.event_bus.as_str(),
        "--rules-dir",
        rules_arg.to_str().unwrap(),
    ]);

    let (code, out) = payhook(&args).await;
    assert_eq!(code, 0, "{out}");
    let rules = load_rules(&rules_dir()).unwrap();
    // 3 × (queue + DLQ), events DLQ, table, quarantine bucket, bus, 3 per rule (rule, queue,
    // target), 4 parameters.
    let expected = 3 * 2 + 4 + rules.len() * 3 + 4;
    assert!(
        out.contains(&format!(
            "{expected} resources: {expected} created, 0 updated, 0 unchanged"
        )),
        "{out}"
    );

    let sqs = SqsClient::new(&config);
    for provider in Provider::ALL {
        let dlq_url = queue_url(&sqs, &names.dlq(provider)).await;
        let dlq = attributes(&sqs, &dlq_url).await;
        assert_eq!(dlq[&QueueAttributeName::FifoQueue], "true");
        assert_eq!(dlq[&QueueAttributeName::ContentBasedDeduplication], "true");
        assert_eq!(dlq[&QueueAttributeName::MessageRetentionPeriod], "1209600");

        let queue = attributes(&sqs, &queue_url(&sqs, &names.queue(provider)).await).await;
        assert_eq!(queue[&QueueAttributeName::FifoQueue], "true");
        assert_eq!(
            queue[&QueueAttributeName::ContentBasedDeduplication],
            "true"
        );
        assert_eq!(queue[&QueueAttributeName::VisibilityTimeout], "1800");
        assert_eq!(queue[&QueueAttributeName::MessageRetentionPeriod], "345600");
        let redrive: Value =
            serde_json::from_str(&queue[&QueueAttributeName::RedrivePolicy]).unwrap();
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            "5"
        );
        assert_eq!(
            redrive["deadLetterTargetArn"],
            json!(dlq[&QueueAttributeName::QueueArn])
        );
    }
    queue_url(&sqs, &names.events_dlq()).await;

    let table = DynamoClient::new(&config)
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    assert_eq!(table.key_schema()[0].attribute_name(), "webhook_id");
    let indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    assert_eq!(indexes, [payhook_aws::status_store::OPEN_STATUS_INDEX]);
    payhook_aws::s3_client(&config)
        .head_bucket()
        .bucket(names.quarantine_bucket())
        .send()
        .await
        .expect("the quarantine bucket");

    let events = EventsClient::new(&config);
    events
        .describe_event_bus()
        .name(&names.event_bus)
        .send()
        .await
        .unwrap();
    let listed = events
        .list_rules()
        .event_bus_name(&names.event_bus)
        .send()
        .await
        .unwrap();
    let mut on_bus: Vec<&str> = listed.rules().iter().filter_map(|r| r.name()).collect();
    on_bus.sort_unstable();
    let mut in_files: Vec<&str> = rules.iter().map(|(_, r, _)| r.name.as_str()).collect();
    in_files.sort_unstable();
    assert_eq!(on_bus, in_files);
    for rule in listed.rules() {
        let (_, file, _) = rules
            .iter()
            .find(|(_, r, _)| Some(r.name.as_str()) == rule.name())
            .unwrap();
        let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
        assert_eq!(pattern, file.event_pattern);
        queue_url(&sqs, &names.rule_queue(&file.name)).await;
    }

    let parameters = SsmClient::new(&config)
        .get_parameters_by_path()
        .path(format!("/payhook/{}", names.stage))
        .recursive(true)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let parameters: BTreeMap<String, (String, Option<ParameterType>)> = parameters
        .parameters()
        .iter()
        .map(|p| {
            (
                p.name().unwrap().to_owned(),
                (p.value().unwrap().to_owned(), p.r#type().cloned()),
            )
        })
        .collect();
    let expected_parameters: BTreeMap<String, (String, Option<ParameterType>)> = [
        ("paypal/webhook-id", "WH-TEST-1"),
        (
            "square/notification-url",
            "http://127.0.0.1:8787/webhooks/square",
        ),
        ("square/signing-secrets", "square-key"),
        ("stripe/signing-secrets", "whsec_new,whsec_old"),
    ]
    .into_iter()
    .map(|(name, value)| {
        (
            format!("/payhook/{}/{name}", names.stage),
            (value.to_owned(), Some(ParameterType::SecureString)),
        )
    })
    .collect();
    assert_eq!(parameters, expected_parameters);

    let (code, again) = payhook(&args).await;
    assert_eq!(code, 0, "{again}");
    assert!(
        again.contains(&format!(
            "{expected} resources: 0 created, 0 updated, {expected} unchanged"
        )),
        "{again}"
    );

    // A setting changed by hand is put back, and only that queue is touched.
    let stripe_url = queue_url(&sqs, &names.queue(Provider::Stripe)).await;
    sqs.set_queue_attributes()
        .queue_url(&stripe_url)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap();
    let (code, repaired) = payhook(&args).await;
    assert_eq!(code, 0, "{repaired}");
    assert!(
        repaired.contains(&format!(
            "updated   fifo-queue  {}",
            names.queue(Provider::Stripe)
        )),
        "{repaired}"
    );
    assert!(
        repaired.contains(&format!(
            "{expected} resources: 0 created, 1 updated, {} unchanged",
            expected - 1
        )),
        "{repaired}"
    );
    let queue = attributes(&sqs, &stripe_url).await;
    assert_eq!(queue[&QueueAttributeName::VisibilityTimeout], "1800");
}

#[tokio::test]
async fn bootstrap_without_an_endpoint_is_a_usage_error_pointing_to_pulumi() {
    let cli = Cli::try_parse_from(["payhook", "bootstrap"]);
    let Ok(Cli {
        command: Command::Bootstrap(mut args),
    }) = cli
    else {
        panic!("bootstrap arguments do not parse");
    };
    args.rules_dir = rules_dir();
    if std::env::var_os("AWS_ENDPOINT_URL").is_some()
        || std::env::var_os(payhook_local::config::CONFIG_PATH_ENV).is_some()
        || Path::new(payhook_local::config::CONFIG_FILE_NAME).is_file()
    {
        payhook_testkit::skip::skip_test(
            "AWS_ENDPOINT_URL, PAYHOOK_CONFIG or a payhook.toml is set (unset them to run this test)",
        );
        return;
    }
    let mut out = Vec::new();
    match payhook::commands::bootstrap::run_with_output(args, &mut out).await {
        Err(payhook::CliError::Usage(message)) => assert!(message.contains("Pulumi"), "{message}"),
        other => panic!("{other:?}"),
    }
}

// --- status ----------------------------------------------------------------------------------

#[tokio::test]
async fn status_prints_the_item_from_dynamodb_and_exits_1_for_an_unknown_webhook() {
    let Some((moto, config)) = moto_config().await else {
        return;
    };
    let names = StackNames::new(unique_stage()).with_table(moto::unique_name("status"));
    create_table(&DynamoClient::new(&config), &names.table)
        .await
        .unwrap();
    let store = DynamoStatusStore::new(DynamoClient::new(&config)).with_table_name(&names.table);
    let mut item = StatusItem::new(
        "stripe:evt_status_1",
        Provider::Stripe,
        "payment_intent.payment_failed",
        Status::Failed,
        1_767_225_600_000,
    );
    item.last_error = Some("PutEvents rejected the entry: ThrottlingException".into());
    item.attempts = 5;
    store.put_new(&item).await.unwrap();

    let mut args = vec!["status", "stripe:evt_status_1"];
    args.extend(aws_args(moto, &names));
    let (code, out) = payhook(&args).await;
    assert_eq!(code, 0, "{out}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed, serde_json::to_value(&item).unwrap());

    let mut args = vec!["status", "stripe:evt_nobody"];
    args.extend(aws_args(moto, &names));
    let (code, out) = payhook(&args).await;
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
}

#[tokio::test]
async fn status_reads_a_webhook_from_the_running_local_stack() {
    use payhook_local::faults::Faults;
    use payhook_local::http::FrontDoor;
    use payhook_local::stack::{Stack, StackOptions};

    let dir = scratch("local-status");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = payhook_local::config::init(&dir, port, true, payhook_devkit::unix_now()).unwrap();
    let stack = Stack::start(StackOptions {
        config: config.clone(),
        run_dir: dir.join("run"),
        rules_dir: rules_dir(),
        faults: Faults::default(),
        aws: None,
    })
    .await
    .unwrap();
    let front = FrontDoor::serve(Arc::clone(&stack), listener).unwrap();
    let base = format!("http://{}", front.addr);

    let payload = payhook_devkit::payloads::build(
        &payhook_devkit::payloads::PayloadSpec::new(Provider::Stripe).amount("25.00", "USD"),
    )
    .unwrap();
    let sender = config.sender().unwrap();
    let (status, response) = sender
        .send(
            &format!("{base}/webhooks/stripe"),
            Provider::Stripe,
            payload.body.clone(),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{response}");
    assert!(stack.wait_idle(Duration::from_secs(20)).await);

    let webhook_id = payload.webhook_id();
    let (code, out) = payhook(&["status", &webhook_id, "--local", &base]).await;
    assert_eq!(code, 0, "{out}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["webhook_id"], json!(webhook_id));
    assert_eq!(printed["status"], json!("PROCESSED"));

    let (code, _) = payhook(&["status", "stripe:evt_never_sent", "--local", &base]).await;
    assert_eq!(code, 1);
    drop(front);
    stack.shutdown().await;
}

// --- dlq list --------------------------------------------------------------------------------

#[tokio::test]
async fn dlq_list_shows_dead_letters_with_their_last_error_and_leaves_them_in_place() {
    let Some((moto, config)) = moto_config().await else {
        return;
    };
    let names = provisioned_stage(&config).await;
    let sqs = SqsClient::new(&config);
    dead_letter(&sqs, &names, Provider::Stripe, "evt_a1", "pi_a").await;
    dead_letter(&sqs, &names, Provider::Stripe, "evt_a2", "pi_a").await;
    dead_letter(&sqs, &names, Provider::Stripe, "evt_b1", "pi_b").await;
    dead_letter(&sqs, &names, Provider::Square, "evt_sq1", "sq_pay_1").await;
    let store = DynamoStatusStore::new(DynamoClient::new(&config)).with_table_name(&names.table);
    let mut failed = StatusItem::new(
        "stripe:evt_a1",
        Provider::Stripe,
        "payment_intent.succeeded",
        Status::Failed,
        1_767_225_600_000,
    );
    failed.last_error = Some("event bus unavailable: PutEvents timed out after 5 s".into());
    store.put_new(&failed).await.unwrap();

    let mut args = vec!["dlq", "list", "--provider", "stripe", "--json"];
    args.extend(aws_args(moto, &names));
    let (code, out) = payhook(&args).await;
    assert_eq!(code, 0, "{out}");
    let listed: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(&str, &str)> = listed
        .iter()
        .map(|m| {
            (
                m["webhook_id"].as_str().unwrap(),
                m["group_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("stripe:evt_a1", "pi_a"),
            ("stripe:evt_a2", "pi_a"),
            ("stripe:evt_b1", "pi_b")
        ]
    );
    assert_eq!(listed[0]["provider"], json!("stripe"));
    assert_eq!(listed[0]["status"], json!("FAILED"));
    assert_eq!(
        listed[0]["last_error"],
        json!("event bus unavailable: PutEvents timed out after 5 s")
    );
    assert!(listed[1]["last_error"].is_null());
    assert!(
        listed
            .iter()
            .all(|m| m["receive_count"].as_u64() >= Some(1))
    );
    assert!(
        listed
            .iter()
            .all(|m| m["sent_timestamp_ms"].as_i64() > Some(0))
    );

    // The table view, over every provider.
    let mut args = vec!["dlq", "list"];
    args.extend(aws_args(moto, &names));
    let (code, table) = payhook(&args).await;
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("stripe:evt_a1"), "{table}");
    assert!(table.contains("square:evt_sq1"), "{table}");
    assert!(table.contains("event bus unavailable"), "{table}");
    assert!(
        table.contains("4 message(s) in dead-letter queues (stripe 3, paypal 0, square 1)"),
        "{table}"
    );

    // Nothing was consumed, and everything is visible again straight away.
    let remaining = drain(&sqs, &queue_url(&sqs, &names.dlq(Provider::Stripe)).await).await;
    let ids: Vec<&str> = remaining.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(ids, ["stripe:evt_a1", "stripe:evt_a2", "stripe:evt_b1"]);
}

// --- dlq redrive -----------------------------------------------------------------------------

#[tokio::test]
async fn dlq_redrive_moves_each_dead_letter_back_once_in_group_order() {
    let Some((moto, config)) = moto_config().await else {
        return;
    };
    let names = provisioned_stage(&config).await;
    let sqs = SqsClient::new(&config);
    for (id, group) in [
        ("evt_a1", "pi_a"),
        ("evt_b1", "pi_b"),
        ("evt_a2", "pi_a"),
        ("evt_a3", "pi_a"),
    ] {
        dead_letter(&sqs, &names, Provider::Stripe, id, group).await;
    }
    dead_letter(&sqs, &names, Provider::Paypal, "WH-1", "CAP-1").await;

    let mut args = vec!["dlq", "redrive"];
    args.extend(aws_args(moto, &names));
    let (code, out) = payhook(&args).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("moved ")).count(),
        5,
        "{out}"
    );
    assert!(
        out.contains("moved 5 message(s) back to their queues (stripe 4, paypal 1, square 0)"),
        "{out}"
    );

    let stripe = drain(&sqs, &queue_url(&sqs, &names.queue(Provider::Stripe)).await).await;
    let in_group = |group: &str| -> Vec<String> {
        stripe
            .iter()
            .filter(|(g, _, _)| g == group)
            .map(|(_, id, _)| id.clone())
            .collect()
    };
    assert_eq!(stripe.len(), 4, "{stripe:?}");
    assert_eq!(
        in_group("pi_a"),
        ["stripe:evt_a1", "stripe:evt_a2", "stripe:evt_a3"]
    );
    assert_eq!(in_group("pi_b"), ["stripe:evt_b1"]);
    assert!(
        stripe
            .iter()
            .all(|(_, id, dedup)| dedup.starts_with(&format!("{id}:redrive:"))),
        "{stripe:?}"
    );
    let paypal = drain(&sqs, &queue_url(&sqs, &names.queue(Provider::Paypal)).await).await;
    assert_eq!(paypal.len(), 1);
    assert_eq!(paypal[0].0, "CAP-1");
    for provider in Provider::ALL {
        let left = drain(&sqs, &queue_url(&sqs, &names.dlq(provider)).await).await;
        assert!(left.is_empty(), "{provider}: {left:?}");
    }

    let (code, again) = payhook(&args).await;
    assert_eq!(code, 0, "{again}");
    assert!(again.contains("moved 0 message(s)"), "{again}");
}

#[tokio::test]
async fn a_redrive_repeated_after_dying_between_send_and_delete_queues_the_message_once() {
    let Some((moto, config)) = moto_config().await else {
        return;
    };
    let names = provisioned_stage(&config).await;
    let sqs = SqsClient::new(&config);
    dead_letter(&sqs, &names, Provider::Square, "evt_crash", "sq_pay_9").await;

    // What the redrive that died had done: the copy is in the source queue, the original is
    // still in the DLQ.
    let dlq_url = queue_url(&sqs, &names.dlq(Provider::Square)).await;
    let received = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .unwrap();
    let [message] = received.messages() else {
        panic!("{received:?}");
    };
    let sent_ms: i64 = message.attributes().unwrap()[&MessageSystemAttributeName::SentTimestamp]
        .parse()
        .unwrap();
    sqs.change_message_visibility()
        .queue_url(&dlq_url)
        .receipt_handle(message.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let source_url = queue_url(&sqs, &names.queue(Provider::Square)).await;
    sqs.send_message()
        .queue_url(&source_url)
        .message_body(message.body().unwrap())
        .message_group_id("sq_pay_9")
        .message_deduplication_id(redrive_deduplication_id("square:evt_crash", sent_ms))
        .send()
        .await
        .unwrap();

    let mut args = vec!["dlq", "redrive", "--provider", "square"];
    args.extend(aws_args(moto, &names));
    let (code, out) = payhook(&args).await;
    assert_eq!(code, 0, "{out}");

    let queued = drain(&sqs, &source_url).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].1, "square:evt_crash");
    assert!(drain(&sqs, &dlq_url).await.is_empty());
}

// --- the local stack's DLQ admin API -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_commands_list_and_redrive_a_real_local_stacks_dead_letters() {
    use payhook_devkit::payloads::{PayloadSpec, build};
    use payhook_local::faults::Faults;
    use payhook_local::http::FrontDoor;
    use payhook_local::stack::{Stack, StackOptions};

    let dir = scratch("local-dlq");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config =
        payhook_local::config::init(&dir, port, true, payhook_devkit::unix_now()).unwrap();
    config.queues.visibility_timeout_seconds = 1;
    config.queues.max_receive_count = 2;
    // A poison message: the bus rejects this payment's events until the fault is cleared.
    let faults = Faults::default();
    let payload = build(
        &PayloadSpec::new(Provider::Stripe)
            .amount("42.00", "USD")
            .payment_id("pi_dlq_poison"),
    )
    .unwrap();
    faults.reject_payment("pi_dlq_poison");
    let stack = Stack::start(StackOptions {
        config: config.clone(),
        run_dir: dir.join("run"),
        rules_dir: rules_dir(),
        faults: faults.clone(),
        aws: None,
    })
    .await
    .unwrap();
    let front = FrontDoor::serve(Arc::clone(&stack), listener).unwrap();
    let base = format!("http://{}", front.addr);
    let sender = config.sender().unwrap();
    let (status, response) = sender
        .send(
            &format!("{base}/webhooks/stripe"),
            Provider::Stripe,
            payload.body.clone(),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{response}");
    assert!(stack.wait_idle(Duration::from_secs(60)).await);
    let webhook_id = payload.webhook_id();
    assert_eq!(
        stack.status(&webhook_id).await.map(|i| i.status),
        Some(Status::Failed)
    );

    let (code, out) = payhook(&["dlq", "list", "--local", &base]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&webhook_id), "{out}");
    assert!(
        out.contains("put_events_entry_failed"),
        "the last error: {out}"
    );
    assert!(
        out.contains("1 message(s) in dead-letter queues (stripe 1, paypal 0, square 0)"),
        "{out}"
    );

    // The cause is fixed; the redrive moves it back and it is processed.
    faults.clear_rejections();
    let (code, out) = payhook(&["dlq", "redrive", "--provider", "stripe", "--local", &base]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("moved ") && l.contains(&webhook_id)),
        "{out}"
    );
    assert!(out.contains("moved 1 message(s)"), "{out}");
    assert!(stack.wait_idle(Duration::from_secs(60)).await);
    assert_eq!(
        stack.status(&webhook_id).await.map(|i| i.status),
        Some(Status::Processed)
    );
    let (code, out) = payhook(&["dlq", "list", "--local", &base]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 message(s) in dead-letter queues"), "{out}");
    drop(front);
    stack.shutdown().await;
}
