//! Each function's IAM policy, as the Pulumi program renders it, enforced by moto under that
//! function's real code path (see the crate docs); and the same path failing when the policy
//! lacks one action the code calls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use payhook::bootstrap::BootstrapArgs;
use payhook::config::{self, CONFIG_FILE_NAME, Config};
use payhook::payloads::{self, PayloadSpec, Signer};
use payhook_aws::aws_config::{Region, SdkConfig};
use payhook_aws::moto::{MotoServer, REGION, unique_name};
use payhook_aws::provision::StackNames;
use payhook_aws::{DynamoStatusStore, EventBridgeBus, SqsConsumer, SqsFifoQueue, SsmSecretStore};
use payhook_core::conformance::workspace_root;
use payhook_core::event_processor::EventProcessor;
use payhook_core::ports::SystemClock;
use payhook_core::processor::{ProcessorConfig, ProviderProcessor, RecordOutcome};
use payhook_core::validator::{Accepted, Validator, WebhookRequest};
use payhook_core::{Headers, Provider};
use serde_json::Value;

/// One action of each function, removed to show the test fails without it.
const REMOVED: [(&str, &str); 3] = [
    ("webhook-validator", "sqs:SendMessage"),
    ("stripe-processor", "events:PutEvents"),
    ("event-processor", "dynamodb:UpdateItem"),
];

/// A stage on a moto server of its own, with IAM enforced and a user per function.
struct Stage {
    moto: MotoServer,
    config: Config,
    names: StackNames,
    users: HashMap<String, (String, String)>,
}

impl Stage {
    /// Provisions the stage (unauthenticated), creates the users, then turns enforcement on.
    /// `None` when the venv or moto is missing (skipped).
    async fn start(name: &str) -> Option<Stage> {
        let python = workspace_root().join(".venv/bin/python");
        if !python.is_file() {
            payhook_core::skip::skip_test(&format!(
                "{} not found (run scripts/bootstrap-python.sh)",
                python.display()
            ));
            return None;
        }
        let moto = MotoServer::start()?;
        let dir = scratch(name);
        let config = config::init(&dir, 8787, false, payhook::unix_now()).expect("config");
        let stage = format!("iam{}", std::process::id() % 100_000);
        let names = StackNames::new(&stage)
            .with_table(unique_name("webhook-processing"))
            .with_event_bus(unique_name("payment-events"));
        bootstrap(&moto, &dir, &names, &config).await;
        let users = create_users(&python, &moto, &names);
        Some(Stage {
            moto,
            config,
            names,
            users,
        })
    }

    /// SDK configuration with `user`'s credentials.
    async fn sdk(&self, user: &str) -> SdkConfig {
        let (id, secret) = self
            .users
            .get(user)
            .unwrap_or_else(|| panic!("no user {user}"));
        let credentials = payhook_aws::aws_sdk_sqs::config::Credentials::new(
            id.as_str(),
            secret.as_str(),
            None,
            None,
            "payhook-iam-test",
        );
        payhook_aws::config_loader(Some(&self.moto.endpoint))
            .region(Region::from_static(REGION))
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// `provider`'s queue URL (looked up by the observer: no function may call GetQueueUrl).
    async fn queue_url(&self, provider: Provider) -> String {
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        payhook_aws::consumer::queue_url(&sqs, &self.names.queue(provider))
            .await
            .expect("GetQueueUrl")
            .expect("queue exists")
    }

    /// The validator, as `main.rs` wires it, running as `user`.
    async fn validator(&self, user: &str) -> Validator {
        let sdk = self.sdk(user).await;
        let secrets = SsmSecretStore::new(
            payhook_aws::aws_sdk_ssm::Client::new(&sdk),
            self.names.stage.clone(),
        );
        let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk))
            .with_table_name(self.names.table.clone());
        let mut queue = SqsFifoQueue::new(payhook_aws::aws_sdk_sqs::Client::new(&sdk));
        for provider in Provider::ALL {
            queue = queue.with_queue_url(provider, self.queue_url(provider).await);
        }
        Validator::new(
            Arc::new(secrets),
            Arc::new(store),
            Arc::new(queue),
            self.config
                .paypal_certificate_cache()
                .expect("certificates"),
            Arc::new(SystemClock),
            self.config.validator_config(),
        )
    }

    /// A signed Stripe delivery through the validator running as `user`.
    async fn deliver(&self, user: &str) -> Result<Accepted, String> {
        let payload = payloads::build(&PayloadSpec::new(Provider::Stripe)).expect("payload");
        let signer = Signer::from_config(&self.config).expect("signer");
        let headers: Headers = signer
            .sign(Provider::Stripe, &payload.body, payhook::unix_now())
            .expect("signed")
            .into_iter()
            .collect();
        let validator = self.validator(user).await;
        let request = WebhookRequest {
            provider: "stripe",
            headers: &headers,
            body: &payload.body,
            trace_header: None,
        };
        let first = validator
            .handle(request)
            .await
            .map_err(|e| format!("{e:?}"))?;
        // The provider's retry of the same delivery.
        let again = validator
            .handle(WebhookRequest {
                provider: "stripe",
                headers: &headers,
                body: &payload.body,
                trace_header: None,
            })
            .await
            .map_err(|e| format!("{e:?}"))?;
        assert!(matches!(again, Accepted::Duplicate { .. }), "{again:?}");
        Ok(first)
    }

    /// Lambda's event source mapping (receive, delete) and the processor's batch, as `user`;
    /// with `drop_items`, the status items are deleted first (expired before a late redrive).
    async fn process_stripe_queue(&self, user: &str, drop_items: bool) -> Vec<RecordOutcome> {
        let sdk = self.sdk(user).await;
        let consumer = SqsConsumer::new(
            payhook_aws::aws_sdk_sqs::Client::new(&sdk),
            self.queue_url(Provider::Stripe).await,
        );
        let received = consumer.receive(10, 1, None).await.expect("ReceiveMessage");
        let observer = SqsConsumer::new(
            payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await),
            self.queue_url(Provider::Stripe).await,
        );
        assert!(
            !received.is_empty(),
            "the validator queued a message: {:?}",
            observer.depth().await
        );
        if drop_items {
            self.delete_status_items().await;
        }
        let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk))
            .with_table_name(self.names.table.clone());
        let bus = EventBridgeBus::new(payhook_aws::aws_sdk_eventbridge::Client::new(&sdk));
        let processor = ProviderProcessor::new(
            Arc::new(store),
            Arc::new(bus),
            Arc::new(SystemClock),
            ProcessorConfig {
                event_bus: self.names.event_bus.clone(),
                ..ProcessorConfig::new(Provider::Stripe)
            },
        );
        let records: Vec<_> = received.iter().map(|r| r.record.clone()).collect();
        let deadline = payhook::unix_now() * 1000 + 60_000;
        let outcome = processor.handle_batch(&records, deadline).await;
        // As the event source mapping does: a processed record is deleted (one DeleteMessage
        // each; IAM authorises DeleteMessageBatch as sqs:DeleteMessage, moto would ask for
        // sqs:DeleteMessageBatch), a failed one is retried (here at once, with the
        // ChangeMessageVisibility the processor's retry delay uses).
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&sdk);
        for (delivery, (_, result)) in received.iter().zip(&outcome.records) {
            if matches!(result, RecordOutcome::Failed { .. }) {
                consumer
                    .change_visibility(&delivery.receipt_handle, 0)
                    .await
                    .expect("ChangeMessageVisibility");
            } else {
                sqs.delete_message()
                    .queue_url(consumer.queue_url())
                    .receipt_handle(&delivery.receipt_handle)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
        outcome.records.into_iter().map(|(_, o)| o).collect()
    }

    /// The status table's items deleted by the observer.
    async fn delete_status_items(&self) {
        let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&self.sdk("observer").await);
        let store =
            DynamoStatusStore::new(dynamodb.clone()).with_table_name(self.names.table.clone());
        for item in store.scan().await.expect("scan") {
            dynamodb
                .delete_item()
                .table_name(&self.names.table)
                .key(
                    payhook_aws::status_store::PARTITION_KEY,
                    payhook_aws::aws_sdk_dynamodb::types::AttributeValue::S(item.webhook_id),
                )
                .send()
                .await
                .expect("DeleteItem");
        }
    }

    /// The first event a rule delivered (its stand-in queue, read by the observer), recorded
    /// by the event processor running as `user`.
    async fn record_routed_event(&self, user: &str) -> Result<(), String> {
        let observer = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        let mut delivered = None;
        for rule in
            payhook_core::pattern::load_rules(&workspace_root().join("rules")).expect("rules")
        {
            let name = self.names.rule_queue(&rule.1.name);
            let Some(url) = payhook_aws::consumer::queue_url(&observer, &name)
                .await
                .expect("GetQueueUrl")
            else {
                continue;
            };
            let consumer = SqsConsumer::new(observer.clone(), url);
            if let Some(message) = consumer.receive(1, 0, None).await.expect("receive").pop() {
                delivered = Some(message.record.body);
                break;
            }
        }
        let body = delivered.expect("a rule delivered the published event");
        let payload: Value = serde_json::from_str(&body).expect("JSON");
        let routed = payhook_event_processor::routed_event(payload).map_err(|e| e.to_string())?;
        let sdk = self.sdk(user).await;
        let store = DynamoStatusStore::new(payhook_aws::aws_sdk_dynamodb::Client::new(&sdk))
            .with_table_name(self.names.table.clone());
        EventProcessor::new(Arc::new(store), Arc::new(SystemClock))
            .handle(&routed)
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("iam")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Queues, DLQs, table, bus, rules (with stand-in queues) and SSM parameters, as
/// `payhook bootstrap` makes them, before IAM is enforced.
async fn bootstrap(moto: &MotoServer, dir: &Path, names: &StackNames, config: &Config) {
    let args = BootstrapArgs {
        aws_endpoint: Some(moto.endpoint.clone()),
        config: Some(dir.join(CONFIG_FILE_NAME)),
        stage: Some(names.stage.clone()),
        region: Some(REGION.to_owned()),
        rules_dir: workspace_root().join("rules"),
        table: names.table.clone(),
        event_bus: names.event_bus.clone(),
        max_receive_count: Some(config.queues.max_receive_count),
        visibility_timeout: config.queues.visibility_timeout_seconds,
        no_rule_queues: false,
        no_parameters: false,
    };
    let mut out = Vec::new();
    let code = payhook::bootstrap::run_with_output(args, &mut out)
        .await
        .expect("bootstrap runs");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
}

/// Runs `infra/tests/iam_moto.py`: the rendered policies become users; IAM is enforced after.
fn create_users(
    python: &Path,
    moto: &MotoServer,
    names: &StackNames,
) -> HashMap<String, (String, String)> {
    let mut command = Command::new(python);
    command
        .arg(workspace_root().join("infra/tests/iam_moto.py"))
        .args(["--endpoint", &moto.endpoint, "--stage", &names.stage])
        .args(["--table", &names.table, "--bus", &names.event_bus]);
    for (function, action) in REMOVED {
        command.args(["--without", &format!("{function}:{action}")]);
    }
    let out = command.output().expect("python runs");
    assert!(
        out.status.success(),
        "iam_moto.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON users");
    answer["users"]
        .as_object()
        .expect("users")
        .iter()
        .map(|(name, user)| {
            let field = |key: &str| user[key].as_str().expect("credential").to_owned();
            (
                name.clone(),
                (field("access_key_id"), field("secret_access_key")),
            )
        })
        .collect()
}

/// Every record of the batch was published.
fn assert_all_published(outcomes: &[RecordOutcome], what: &str) {
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RecordOutcome::Published { .. })),
        "{what}: {outcomes:?}"
    );
}

/// The failure is moto's AccessDenied for exactly `action`.
fn assert_denied(failure: &str, action: &str) {
    assert!(
        failure.contains(&format!("is not authorized to perform: {action}")),
        "expected AccessDenied for {action}, got: {failure}"
    );
}

fn without(function: &str, action: &str) -> String {
    format!("{function}-without-{action}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_runs_its_path_under_exactly_its_rendered_policy() {
    let Some(stage) = Stage::start("granted").await else {
        return;
    };
    let accepted = stage
        .deliver("webhook-validator")
        .await
        .expect("validator allowed");
    assert!(matches!(accepted, Accepted::Queued { .. }), "{accepted:?}");

    let outcomes = stage.process_stripe_queue("stripe-processor", false).await;
    assert_all_published(&outcomes, "processed");
    stage
        .record_routed_event("event-processor")
        .await
        .expect("event processor allowed");

    // A late redrive after the status item expired: the processor records it again (PutItem).
    stage.deliver("webhook-validator").await.expect("validator");
    let outcomes = stage.process_stripe_queue("stripe-processor", true).await;
    assert_all_published(&outcomes, "missing status item");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_fails_without_one_action_its_code_calls() {
    let Some(stage) = Stage::start("removed").await else {
        return;
    };
    let [validator, processor, event_processor] = REMOVED;

    let refused = stage.deliver(&without(validator.0, validator.1)).await;
    assert!(
        refused.is_err(),
        "validator without {}: {refused:?}",
        validator.1
    );

    stage.deliver("webhook-validator").await.expect("validator");
    let outcomes = stage
        .process_stripe_queue(&without(processor.0, processor.1), false)
        .await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RecordOutcome::Failed { .. })),
        "processor without {}: {outcomes:?}",
        processor.1
    );
    assert_denied(&format!("{outcomes:?}"), processor.1);

    let outcomes = stage.process_stripe_queue("stripe-processor", false).await;
    assert_all_published(&outcomes, "processed");
    let refused = stage
        .record_routed_event(&without(event_processor.0, event_processor.1))
        .await;
    assert_denied(&format!("{refused:?}"), event_processor.1);
}
