//! Each function's IAM policy, as the Pulumi program renders it, enforced by moto under that
//! function's real code path (see the crate docs); and the same path failing when the policy
//! lacks one action the code calls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use payhook::bootstrap::BootstrapArgs;
use payhook::config::{self, CONFIG_FILE_NAME, Config};
use payhook::oncall::redrive_deduplication_id;
use payhook::payloads::{self, PayloadSpec, Signer};
use payhook_aws::aws_config::{Region, SdkConfig};
use payhook_aws::aws_sdk_sqs::error::DisplayErrorContext;
use payhook_aws::consumer::Received;
use payhook_aws::moto::{MotoServer, REGION, unique_name};
use payhook_aws::provision::StackNames;
use payhook_aws::{
    DynamoPaymentStore, DynamoStatusStore, EventBridgeBus, SqsConsumer, SqsFifoQueue,
    SsmSecretStore,
};
use payhook_core::conformance::workspace_root;
use payhook_core::event_processor::EventProcessor;
use payhook_core::ports::{MessageVisibility, QueueError, SystemClock};
use payhook_core::processor::{ProcessorConfig, ProviderProcessor, RecordOutcome, delay_retries};
use payhook_core::status::{Status, StatusStore as _, TRANSMISSION_KEY_PREFIX};
use payhook_core::validator::{Accepted, Validator, WebhookRequest};
use payhook_core::{Headers, Provider};
use serde_json::Value;

/// One action of each function, removed to show the test fails without it.
const REMOVED: [(&str, &str); 3] = [
    ("webhook-validator", "sqs:SendMessage"),
    ("stripe-processor", "events:PutEvents"),
    ("event-processor", "dynamodb:UpdateItem"),
];

/// Actions no in-process path on moto can show, and why: something other than the function's
/// code calls them with its role, moto does not check them, or only a race reaches them.
/// `(function, action, why)`; `*` is every function.
const NOT_SHOWN_ON_MOTO: [(&str, &str, &str); 8] = [
    (
        "*",
        "logs:CreateLogStream",
        "Lambda writes the function's output to its log group",
    ),
    (
        "*",
        "logs:PutLogEvents",
        "Lambda writes the function's output to its log group",
    ),
    (
        "*",
        "xray:PutTraceSegments",
        "the Lambda environment's X-Ray daemon sends the traces",
    ),
    (
        "*",
        "xray:PutTelemetryRecords",
        "the Lambda environment's X-Ray daemon",
    ),
    (
        "webhook-validator",
        "kms:Decrypt",
        "SSM decrypts the SecureStrings with it; moto's SSM does not ask KMS",
    ),
    (
        "webhook-validator",
        "dynamodb:GetItem",
        "the status store reads an item when a conditional write failed without returning it \
         (the item vanished in between): a race",
    ),
    (
        "stripe-processor",
        "sqs:GetQueueAttributes",
        "the event source mapping reads the queue with the function's role",
    ),
    (
        "event-processor",
        "sqs:SendMessage",
        "Lambda's on-failure destination sends an exhausted invocation with it",
    ),
];

/// Whether `function`'s `action` is one of [`NOT_SHOWN_ON_MOTO`].
fn not_shown_on_moto(function: &str, action: &str) -> bool {
    NOT_SHOWN_ON_MOTO
        .iter()
        .any(|(f, a, _)| (*f == "*" || *f == function) && *a == action)
}

/// The functions whose every action is removed in turn (the other processors' policies have
/// the same actions as Stripe's, which the test checks).
const EVERY_ACTION_OF: [&str; 3] = ["webhook-validator", "stripe-processor", "event-processor"];

/// Each moto user's access key id and secret, by user name.
type Credentials = HashMap<String, (String, String)>;

/// A stage on a moto server of its own, with IAM enforced and a user per function.
struct Stage {
    moto: MotoServer,
    config: Config,
    names: StackNames,
    users: Credentials,
    /// The actions of each function's rendered policy.
    actions: HashMap<String, Vec<String>>,
}

impl Stage {
    /// Provisions the stage (unauthenticated), creates the users (and one per action of each
    /// `without_each` function, less that action), then turns enforcement on. `None` when the
    /// venv or moto is missing (skipped).
    async fn start(name: &str, without_each: &[&str]) -> Option<Stage> {
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
        let (users, actions) = create_users(&python, &moto, &names, without_each);
        Some(Stage {
            moto,
            config,
            names,
            users,
            actions,
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
        self.deliver_new(user, Provider::Stripe).await
    }

    /// A new signed delivery of `provider`'s default event through the validator running as
    /// `user`, then the provider's retry of it (a duplicate).
    async fn deliver_new(&self, user: &str, provider: Provider) -> Result<Accepted, String> {
        let payload = payloads::build(&PayloadSpec::new(provider)).expect("payload");
        self.deliver_body(user, provider, &payload.body).await
    }

    /// `body`, signed for `provider`, through the validator running as `user`, twice: the
    /// second is the provider's retry and must be a duplicate. Returns the first answer.
    async fn deliver_body(
        &self,
        user: &str,
        provider: Provider,
        body: &[u8],
    ) -> Result<Accepted, String> {
        let signer = Signer::from_config(&self.config).expect("signer");
        let headers: Headers = signer
            .sign(provider, body, payhook::unix_now())
            .expect("signed")
            .into_iter()
            .collect();
        let validator = self.validator(user).await;
        let request = || WebhookRequest {
            provider: provider.as_str(),
            headers: &headers,
            body,
            trace_header: None,
        };
        let first = validator
            .handle(request())
            .await
            .map_err(|e| format!("{e:?}"))?;
        let again = validator
            .handle(request())
            .await
            .map_err(|e| format!("{e:?}"))?;
        match again {
            Accepted::Duplicate { .. } => Ok(first),
            other => Err(format!("the retry was not a duplicate: {other:?}")),
        }
    }

    /// Lambda's event source mapping (receive, delete) and the processor's batch on
    /// `provider`'s queue, as `user`; with `drop_items`, the status items are deleted first
    /// (expired before a late redrive).
    async fn process_queue(
        &self,
        user: &str,
        provider: Provider,
        drop_items: bool,
    ) -> Vec<RecordOutcome> {
        self.try_process_queue(user, provider, drop_items)
            .await
            .unwrap_or_else(|e| panic!("{user} on the {provider} queue: {e}"))
    }

    /// As [`Stage::process_queue`]; an SQS call refused (or an empty queue) is an `Err`, a
    /// record the processor failed is a `Failed` outcome.
    async fn try_process_queue(
        &self,
        user: &str,
        provider: Provider,
        drop_items: bool,
    ) -> Result<Vec<RecordOutcome>, String> {
        let sdk = self.sdk(user).await;
        let consumer = SqsConsumer::new(
            payhook_aws::aws_sdk_sqs::Client::new(&sdk),
            self.queue_url(provider).await,
        );
        let received = consumer
            .receive(10, 1, None)
            .await
            .map_err(|e| format!("ReceiveMessage: {e:?}"))?;
        if received.is_empty() {
            let observer = SqsConsumer::new(
                payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await),
                self.queue_url(provider).await,
            );
            return Err(format!("nothing to receive: {:?}", observer.depth().await));
        }
        if drop_items {
            self.delete_status_items().await;
        }
        let processor = processor(&sdk, &self.names, provider);
        let records: Vec<_> = received.iter().map(|r| r.record.clone()).collect();
        let deadline = payhook::unix_now() * 1000 + 60_000;
        let outcome = processor.handle_batch(&records, deadline).await;
        // As `main.rs` does after the batch: each failed record gets its retry delay. That
        // call's failure is only logged there (the record comes back later), so it is
        // recorded here.
        let deliveries: Vec<_> = received
            .iter()
            .map(|r| (r.record.message_id.clone(), r.receipt_handle.clone()))
            .collect();
        let visibility = RecordedVisibility::new(&consumer);
        delay_retries(&outcome, &deliveries, &visibility).await;
        if let Some(failure) = visibility.failure() {
            return Err(format!("ChangeMessageVisibility (retry delay): {failure}"));
        }
        // As the event source mapping does: a processed record is deleted (one DeleteMessage
        // each; IAM authorises DeleteMessageBatch as sqs:DeleteMessage, moto would ask for
        // sqs:DeleteMessageBatch), a failed one is retried (here at once: its retry delay has
        // passed).
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&sdk);
        for (delivery, (_, result)) in received.iter().zip(&outcome.records) {
            if matches!(result, RecordOutcome::Failed { .. }) {
                consumer
                    .change_visibility(&delivery.receipt_handle, 0)
                    .await
                    .map_err(|e| format!("ChangeMessageVisibility: {e:?}"))?;
            } else {
                sqs.delete_message()
                    .queue_url(consumer.queue_url())
                    .receipt_handle(&delivery.receipt_handle)
                    .send()
                    .await
                    .map_err(|e| format!("DeleteMessage: {}", DisplayErrorContext(&e)))?;
            }
        }
        Ok(outcome.records.into_iter().map(|(_, o)| o).collect())
    }

    /// What Stripe's queue holds after a processor's last failed receive: SQS moves the message
    /// to the DLQ on the next receive, which the observer makes. Returns the DLQ's messages.
    async fn dead_letters(&self, provider: Provider) -> Vec<Received> {
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        let queue = SqsConsumer::new(sqs.clone(), self.queue_url(provider).await);
        let left = queue.receive(10, 0, Some(0)).await.expect("ReceiveMessage");
        assert!(left.is_empty(), "still on the queue: {left:?}");
        let dlq_url = payhook_aws::consumer::queue_url(&sqs, &self.names.dlq(provider))
            .await
            .expect("GetQueueUrl")
            .expect("DLQ exists");
        SqsConsumer::new(sqs, dlq_url)
            .receive(10, 1, Some(0))
            .await
            .expect("ReceiveMessage")
    }

    /// `payhook dlq redrive`'s moves, by the observer (an operator): each dead letter back on
    /// its queue with the same body and group and the redrive's deduplication id, then deleted
    /// from the DLQ.
    async fn redrive(&self, provider: Provider) -> usize {
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        let dlq_url = payhook_aws::consumer::queue_url(&sqs, &self.names.dlq(provider))
            .await
            .expect("GetQueueUrl")
            .expect("DLQ exists");
        let dlq = SqsConsumer::new(sqs.clone(), dlq_url.clone());
        let source = self.queue_url(provider).await;
        let messages = dlq.receive(10, 1, Some(60)).await.expect("ReceiveMessage");
        for message in &messages {
            let body: Value = serde_json::from_str(&message.record.body).expect("JSON body");
            let webhook_id = body["webhook_id"].as_str().expect("webhook_id");
            sqs.send_message()
                .queue_url(&source)
                .message_body(&message.record.body)
                .message_group_id(&message.record.group_id)
                .message_deduplication_id(redrive_deduplication_id(
                    webhook_id,
                    message.sent_timestamp_ms.unwrap_or_default(),
                ))
                .send()
                .await
                .expect("SendMessage");
            sqs.delete_message()
                .queue_url(&dlq_url)
                .receipt_handle(&message.receipt_handle)
                .send()
                .await
                .expect("DeleteMessage");
        }
        messages.len()
    }

    /// Every item of the status table, raw, read by the observer.
    async fn table_keys(&self) -> Vec<String> {
        let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&self.sdk("observer").await);
        let scanned = dynamodb
            .scan()
            .table_name(&self.names.table)
            .send()
            .await
            .expect("Scan");
        scanned
            .items()
            .iter()
            .filter_map(|item| item.get(payhook_aws::status_store::PARTITION_KEY))
            .filter_map(|key| key.as_s().ok().cloned())
            .collect()
    }

    /// One status item, read by the observer.
    async fn status(&self, webhook_id: &str) -> Status {
        let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&self.sdk("observer").await);
        DynamoStatusStore::new(dynamodb)
            .with_table_name(self.names.table.clone())
            .get(webhook_id)
            .await
            .expect("GetItem")
            .unwrap_or_else(|| panic!("no status item {webhook_id}"))
            .status
    }

    /// The validator's paths as `user`: a new Stripe webhook (recorded `QUEUED`), a PayPal
    /// transmission and a quarantined body, each with its retry. The queues are emptied after.
    async fn validator_paths(&self, user: &str) -> Result<(), String> {
        let result = async {
            let stripe = self.deliver_new(user, Provider::Stripe).await?;
            let status = self.status(stripe.webhook_id()).await;
            if status != Status::Queued {
                return Err(format!("{} is {status:?}, not QUEUED", stripe.webhook_id()));
            }
            self.deliver_new(user, Provider::Paypal).await?;
            let body = quarantined_body(&unique_name("evt_quarantine"));
            match self
                .deliver_body(user, Provider::Stripe, body.as_bytes())
                .await?
            {
                Accepted::Quarantined { .. } => Ok(()),
                other => Err(format!("not quarantined: {other:?}")),
            }
        }
        .await;
        self.purge(&[
            self.names.queue(Provider::Stripe),
            self.names.queue(Provider::Paypal),
        ])
        .await;
        result
    }

    /// The provider processor's paths as `user` on Stripe's queue: a new webhook, one whose
    /// status item expired, and a record it cannot read (failed, given its retry delay). The
    /// queue is emptied after.
    async fn processor_paths(&self, user: &str) -> Result<(), String> {
        let result = async {
            for drop_items in [false, true] {
                self.deliver("webhook-validator").await.expect("validator");
                let outcomes = self
                    .try_process_queue(user, Provider::Stripe, drop_items)
                    .await?;
                if !outcomes
                    .iter()
                    .all(|o| matches!(o, RecordOutcome::Published { .. }))
                {
                    return Err(format!("{outcomes:?}"));
                }
            }
            self.send_unreadable(Provider::Stripe).await;
            let outcomes = self
                .try_process_queue(user, Provider::Stripe, false)
                .await?;
            match outcomes.as_slice() {
                [RecordOutcome::Failed { error, .. }] if error.code() == "malformed_record" => {
                    Ok(())
                }
                other => Err(format!("unreadable record: {other:?}")),
            }
        }
        .await;
        self.purge(&[self.names.queue(Provider::Stripe)]).await;
        result
    }

    /// The event processor's paths as `user`: recording a freshly routed event, and refusing
    /// (for a retry) one whose status item is gone.
    async fn event_processor_paths(&self, user: &str) -> Result<(), String> {
        let rule_queues: Vec<String> =
            payhook_core::pattern::load_rules(&workspace_root().join("rules"))
                .expect("rules")
                .iter()
                .map(|rule| self.names.rule_queue(&rule.1.name))
                .collect();
        for drop_items in [false, true] {
            self.purge(&rule_queues).await;
            self.deliver("webhook-validator").await.expect("validator");
            let outcomes = self
                .process_queue("stripe-processor", Provider::Stripe, false)
                .await;
            assert_all_published(&outcomes, "processed");
            if drop_items {
                self.delete_status_items().await;
            }
            match (self.record_routed_event(user).await, drop_items) {
                (Ok(()), false) => {}
                (Err(e), true) if e.contains("NotPublished") => {}
                (other, _) => return Err(format!("missing status item {drop_items}: {other:?}")),
            }
        }
        Ok(())
    }

    /// A message on `provider`'s queue that is no canonical event, sent by the observer.
    async fn send_unreadable(&self, provider: Provider) {
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        sqs.send_message()
            .queue_url(self.queue_url(provider).await)
            .message_body("not an event")
            .message_group_id("unreadable")
            .message_deduplication_id(unique_name("unreadable"))
            .send()
            .await
            .expect("SendMessage");
    }

    /// The visible messages of the queues named `names` (those that exist) received and
    /// deleted by the observer (SQS allows one PurgeQueue a minute).
    async fn purge(&self, names: &[String]) {
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        for name in names {
            let Some(url) = payhook_aws::consumer::queue_url(&sqs, name)
                .await
                .expect("GetQueueUrl")
            else {
                continue;
            };
            let consumer = SqsConsumer::new(sqs.clone(), url.clone());
            loop {
                let batch = consumer.receive(10, 0, None).await.expect("ReceiveMessage");
                if batch.is_empty() {
                    break;
                }
                for message in batch {
                    sqs.delete_message()
                        .queue_url(&url)
                        .receipt_handle(message.receipt_handle)
                        .send()
                        .await
                        .expect("DeleteMessage");
                }
            }
        }
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

/// The processor's retry delays applied through `consumer`, the first refusal kept.
struct RecordedVisibility<'a> {
    consumer: &'a SqsConsumer,
    failure: std::sync::Mutex<Option<String>>,
}

impl<'a> RecordedVisibility<'a> {
    fn new(consumer: &'a SqsConsumer) -> Self {
        RecordedVisibility {
            consumer,
            failure: std::sync::Mutex::new(None),
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().expect("lock").clone()
    }
}

#[async_trait::async_trait]
impl MessageVisibility for RecordedVisibility<'_> {
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout_secs: u32,
    ) -> Result<(), QueueError> {
        let result = self
            .consumer
            .change_visibility(receipt_handle, timeout_secs)
            .await;
        if let Err(e) = &result {
            self.failure
                .lock()
                .expect("lock")
                .get_or_insert_with(|| format!("{e:?}"));
        }
        result
    }
}

/// A Stripe event the validator verifies but cannot normalise (no amount): it is quarantined.
fn quarantined_body(event_id: &str) -> String {
    format!(
        r#"{{"id":"{event_id}","object":"event","type":"payment_intent.succeeded","created":{},"data":{{"object":{{"id":"pi_iam"}}}}}}"#,
        payhook::unix_now()
    )
}

/// A provider processor as `main.rs` wires it, on `sdk`'s credentials.
fn processor(sdk: &SdkConfig, names: &StackNames, provider: Provider) -> ProviderProcessor {
    let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(sdk);
    let payments = DynamoPaymentStore::new(dynamodb.clone()).with_table_name(names.table.clone());
    let store = DynamoStatusStore::new(dynamodb).with_table_name(names.table.clone());
    let bus = EventBridgeBus::new(payhook_aws::aws_sdk_eventbridge::Client::new(sdk));
    ProviderProcessor::new(
        Arc::new(store),
        Arc::new(payments),
        Arc::new(bus),
        Arc::new(SystemClock),
        ProcessorConfig {
            event_bus: names.event_bus.clone(),
            ..ProcessorConfig::new(provider)
        },
    )
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
/// Returns each user's credentials and each function's actions.
fn create_users(
    python: &Path,
    moto: &MotoServer,
    names: &StackNames,
    without_each: &[&str],
) -> (Credentials, HashMap<String, Vec<String>>) {
    let mut command = Command::new(python);
    command
        .arg(workspace_root().join("infra/tests/iam_moto.py"))
        .args(["--endpoint", &moto.endpoint, "--stage", &names.stage])
        .args(["--table", &names.table, "--bus", &names.event_bus]);
    for (function, action) in REMOVED {
        command.args(["--without", &format!("{function}:{action}")]);
    }
    for function in without_each {
        command.args(["--without-each", function]);
    }
    let out = command.output().expect("python runs");
    assert!(
        out.status.success(),
        "iam_moto.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON users");
    let users = answer["users"].as_object().expect("users");
    let credentials = users
        .iter()
        .map(|(name, user)| {
            let field = |key: &str| user[key].as_str().expect("credential").to_owned();
            (
                name.clone(),
                (field("access_key_id"), field("secret_access_key")),
            )
        })
        .collect();
    let actions = users
        .iter()
        .filter(|(name, _)| !name.contains("-without-") && name.as_str() != "observer")
        .map(|(name, user)| (name.clone(), policy_actions(&user["policy"])))
        .collect();
    (credentials, actions)
}

/// Every action a policy document grants, in order, once each.
fn policy_actions(policy: &Value) -> Vec<String> {
    let mut actions: Vec<String> = Vec::new();
    for statement in policy["Statement"].as_array().expect("statements") {
        let listed = match &statement["Action"] {
            Value::Array(list) => list.clone(),
            single => vec![single.clone()],
        };
        for action in listed {
            let action = action.as_str().expect("action").to_owned();
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
    }
    actions
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
    let Some(stage) = Stage::start("granted", &[]).await else {
        return;
    };
    let accepted = stage
        .deliver("webhook-validator")
        .await
        .expect("validator allowed");
    assert!(matches!(accepted, Accepted::Queued { .. }), "{accepted:?}");

    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, false)
        .await;
    assert_all_published(&outcomes, "processed");
    stage
        .record_routed_event("event-processor")
        .await
        .expect("event processor allowed");

    // A late redrive after the status item expired: the processor records it again (PutItem).
    stage.deliver("webhook-validator").await.expect("validator");
    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, true)
        .await;
    assert_all_published(&outcomes, "missing status item");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paypal_transmissions_and_quarantine_run_under_the_rendered_policies() {
    let Some(stage) = Stage::start("paypal", &[]).await else {
        return;
    };
    // A PayPal delivery records its transmission (body digest) before the webhook, and the
    // retry of the same transmission finds that record.
    let accepted = stage
        .deliver_new("webhook-validator", Provider::Paypal)
        .await
        .expect("validator allowed");
    assert!(matches!(accepted, Accepted::Queued { .. }), "{accepted:?}");
    let keys = stage.table_keys().await;
    assert!(
        keys.iter().any(|k| k.starts_with(TRANSMISSION_KEY_PREFIX)),
        "no transmission record: {keys:?}"
    );
    let outcomes = stage
        .process_queue("paypal-processor", Provider::Paypal, false)
        .await;
    assert_all_published(&outcomes, "paypal processed");

    // A verified body that cannot be normalised is kept whole, and its retry is a duplicate.
    let body = quarantined_body("evt_iam_quarantine");
    let quarantined = stage
        .deliver_body("webhook-validator", Provider::Stripe, body.as_bytes())
        .await
        .expect("validator allowed");
    let Accepted::Quarantined { webhook_id, .. } = quarantined else {
        panic!("not quarantined: {quarantined:?}");
    };
    assert_eq!(stage.status(&webhook_id).await, Status::Quarantined);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_webhook_is_redriven_and_processed_under_the_rendered_policies() {
    let Some(stage) = Stage::start("redrive", &[]).await else {
        return;
    };
    let accepted = stage.deliver("webhook-validator").await.expect("validator");
    let Accepted::Queued { event, .. } = accepted else {
        panic!("not queued: {accepted:?}");
    };
    let webhook_id = event.webhook_id;
    // Every receive fails (the processor may not publish) until the last marks it FAILED;
    // everything else those attempts do (claim, release, retry delay) is under the policy.
    let failing = without("stripe-processor", "events:PutEvents");
    let receives = stage.config.queues.max_receive_count;
    for receive in 1..=receives {
        let outcomes = stage.process_queue(&failing, Provider::Stripe, false).await;
        let [RecordOutcome::Failed { final_attempt, .. }] = outcomes.as_slice() else {
            panic!("receive {receive}: {outcomes:?}");
        };
        assert_eq!(*final_attempt, receive == receives, "receive {receive}");
    }
    assert_eq!(stage.status(&webhook_id).await, Status::Failed);
    assert_eq!(stage.dead_letters(Provider::Stripe).await.len(), 1);

    assert_eq!(stage.redrive(Provider::Stripe).await, 1);
    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, false)
        .await;
    assert_all_published(&outcomes, "redriven");
    stage
        .record_routed_event("event-processor")
        .await
        .expect("event processor allowed");
    assert_eq!(stage.status(&webhook_id).await, Status::Processed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_fails_without_one_action_its_code_calls() {
    let Some(stage) = Stage::start("removed", &[]).await else {
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
        .process_queue(&without(processor.0, processor.1), Provider::Stripe, false)
        .await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RecordOutcome::Failed { .. })),
        "processor without {}: {outcomes:?}",
        processor.1
    );
    assert_denied(&format!("{outcomes:?}"), processor.1);

    let outcomes = stage
        .process_queue("stripe-processor", Provider::Stripe, false)
        .await;
    assert_all_published(&outcomes, "processed");
    let refused = stage
        .record_routed_event(&without(event_processor.0, event_processor.1))
        .await;
    assert_denied(&format!("{refused:?}"), event_processor.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_a_policy_grants_is_needed_by_a_path_or_not_shown_on_moto() {
    let Some(stage) = Stage::start("needed", &EVERY_ACTION_OF).await else {
        return;
    };
    // Every function's policy is checked here: a new function brings its paths.
    let checked = |f: &str| {
        EVERY_ACTION_OF.contains(&f)
            || f == "api-key-authorizer"
            || f == "paypal-processor"
            || f == "square-processor"
    };
    let unchecked: Vec<_> = stage.actions.keys().filter(|f| !checked(f)).collect();
    assert!(
        unchecked.is_empty(),
        "no paths for {unchecked:?}: add them to EVERY_ACTION_OF"
    );
    // Stripe's processor stands for the three: their policies differ only in resources.
    for provider in ["paypal", "square"] {
        assert_eq!(
            stage.actions[&format!("{provider}-processor")],
            stage.actions["stripe-processor"]
        );
    }
    // The authorizer calls no AWS API.
    assert!(
        stage.actions["api-key-authorizer"]
            .iter()
            .all(|a| not_shown_on_moto("api-key-authorizer", a)),
        "{:?}",
        stage.actions["api-key-authorizer"]
    );
    for (function, action, _) in NOT_SHOWN_ON_MOTO {
        if function != "*" {
            assert!(
                stage.actions[function].iter().any(|a| a == action),
                "{function} is no longer granted {action}: drop it from NOT_SHOWN_ON_MOTO"
            );
        }
    }

    // With the whole policy every path succeeds, so a failure below is the missing action's.
    stage
        .validator_paths("webhook-validator")
        .await
        .expect("validator paths");
    stage
        .processor_paths("stripe-processor")
        .await
        .expect("processor paths");
    stage
        .event_processor_paths("event-processor")
        .await
        .expect("event processor paths");

    let mut unneeded = Vec::new();
    for function in EVERY_ACTION_OF {
        for action in &stage.actions[function] {
            if not_shown_on_moto(function, action) {
                continue;
            }
            let user = without(function, action);
            let result = match function {
                "webhook-validator" => stage.validator_paths(&user).await,
                "stripe-processor" => stage.processor_paths(&user).await,
                _ => stage.event_processor_paths(&user).await,
            };
            // The same paths succeeded with the whole policy: any failure is this action's
            // (the validator, say, only logs a refused UpdateItem, and its retry then finds
            // the webhook not QUEUED).
            if result.is_ok() {
                unneeded.push(format!("{function}: {action}"));
            }
        }
    }
    assert!(
        unneeded.is_empty(),
        "granted, but no path of the function fails without it (remove it, or say in \
         NOT_SHOWN_ON_MOTO who uses it):\n{}",
        unneeded.join("\n")
    );
}
