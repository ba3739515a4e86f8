//! The stage each test runs on: a moto server of its own, provisioned as `payhook bootstrap`
//! does, a user per function holding only that function's rendered policy, IAM enforced; and
//! the observer's reads and clean-ups.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use payhook_aws::aws_config::{Region, SdkConfig};
use payhook_aws::moto::{MotoServer, REGION, unique_name};
use payhook_aws::provision::StackNames;
use payhook_aws::{DynamoStatusStore, SqsConsumer};
use payhook_core::Provider;
use payhook_core::status::{Status, StatusStore as _};
use payhook_local::config::{self, Config};
use payhook_testkit::conformance::workspace_root;
use serde_json::Value;

/// Each moto user's access key id and secret, by user name.
pub(crate) type Credentials = HashMap<String, (String, String)>;

/// A stage on a moto server of its own, with IAM enforced and a user per function.
pub(crate) struct Stage {
    pub(crate) moto: MotoServer,
    pub(crate) config: Config,
    pub(crate) names: StackNames,
    pub(crate) users: Credentials,
    /// The actions of each function's rendered policy.
    pub(crate) actions: HashMap<String, Vec<String>>,
}

impl Stage {
    /// Provisions the stage (unauthenticated), creates the users (and one per action of each
    /// `without_each` function, less that action), then turns enforcement on. `None` when the
    /// venv or moto is missing (skipped).
    pub(crate) async fn start(name: &str, without_each: &[&str]) -> Option<Stage> {
        let python = workspace_root().join(".venv/bin/python");
        if !python.is_file() {
            payhook_testkit::skip::skip_test(&format!(
                "{} not found (run scripts/bootstrap-python.sh)",
                python.display()
            ));
            return None;
        }
        let moto = MotoServer::start()?;
        let dir = scratch(name);
        let config = config::init(&dir, 8787, false, payhook_devkit::unix_now()).expect("config");
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
    pub(crate) async fn sdk(&self, user: &str) -> SdkConfig {
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
    pub(crate) async fn queue_url(&self, provider: Provider) -> String {
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        payhook_aws::consumer::queue_url(&sqs, &self.names.queue(provider))
            .await
            .expect("GetQueueUrl")
            .expect("queue exists")
    }

    /// Every item of the status table, raw, read by the observer.
    pub(crate) async fn table_keys(&self) -> Vec<String> {
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
    pub(crate) async fn status(&self, webhook_id: &str) -> Status {
        let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&self.sdk("observer").await);
        DynamoStatusStore::new(dynamodb)
            .with_table_name(self.names.table.clone())
            .get(webhook_id)
            .await
            .expect("GetItem")
            .unwrap_or_else(|| panic!("no status item {webhook_id}"))
            .status
    }

    /// Every message of the queues named `names` (those that exist) received and deleted by the
    /// observer, waiting for those in flight to come back (SQS allows one PurgeQueue a minute).
    pub(crate) async fn purge(&self, names: &[String]) {
        let sqs = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        for name in names {
            let Some(url) = payhook_aws::consumer::queue_url(&sqs, name)
                .await
                .expect("GetQueueUrl")
            else {
                continue;
            };
            let consumer = SqsConsumer::new(sqs.clone(), url.clone());
            // Until nothing is left: a record a path left in flight (a failed one waiting out its
            // retry delay, seconds) would otherwise come back in the next path's batch.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let batch = consumer.receive(10, 0, None).await.expect("ReceiveMessage");
                for message in &batch {
                    sqs.delete_message()
                        .queue_url(&url)
                        .receipt_handle(&message.receipt_handle)
                        .send()
                        .await
                        .expect("DeleteMessage");
                }
                if !batch.is_empty() {
                    continue;
                }
                let depth = consumer.depth().await.expect("GetQueueAttributes");
                if depth.in_flight + depth.delayed == 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < until,
                    "{name}: messages still in flight after a minute: {depth:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    }

    /// The status table's items deleted by the observer.
    pub(crate) async fn delete_status_items(&self) {
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
    payhook_local::stage::bootstrap_stage(
        &moto.endpoint,
        REGION,
        dir,
        config,
        names,
        workspace_root().join("rules"),
    )
    .await
    .expect("bootstrap runs");
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
    for (function, action) in crate::REMOVED {
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
