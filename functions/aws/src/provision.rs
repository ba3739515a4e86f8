//! Provisioning a whole stage from the repository's files, idempotently: what
//! `payhook bootstrap --aws-endpoint URL` creates on moto or LocalStack, and what the moto tests
//! run against.
//!
//! It creates the same resources, under the same names, as the Pulumi program in `infra/`
//! (`settings.py`, `queues.py`, `events.py`, `storage.py`, `secrets.py`), so `payhook status`
//! and `payhook dlq` cannot tell a bootstrapped stage from a deployed one:
//!
//! | resource | name ([`StackNames`]) | settings |
//! |---|---|---|
//! | provider queue | `payhook-{stage}-{provider}.fifo` | FIFO, content-based deduplication, visibility [`VISIBILITY_TIMEOUT_SECONDS`], retention [`QUEUE_RETENTION_SECONDS`], redrive to its DLQ after `maxReceiveCount` receives |
//! | provider DLQ | `payhook-{stage}-{provider}-dlq.fifo` | FIFO, content-based deduplication, retention [`DLQ_RETENTION_SECONDS`] |
//! | events DLQ | `payhook-{stage}-events-dlq` | standard, retention [`DLQ_RETENTION_SECONDS`]; the rule targets' dead-letter queue |
//! | status table | `webhook-processing` | [`create_table`]: on demand, TTL on `expires_at`, the open-status index |
//! | quarantine bucket | `payhook-{stage}-quarantine` | [`create_bucket`](crate::create_bucket): quarantined bodies too large for an item |
//! | bus | `payment-events` | custom event bus |
//! | rules | each `rules/*.json` `name` | its event pattern, description and state |
//! | parameters | `/payhook/{stage}/{provider}/…` | `SecureString`, from given values |
//!
//! Lambda functions are not created: on moto nothing would invoke them. In their place, with
//! [`StackPlan::rule_queues`], every rule gets a standard queue `payhook-{stage}-rule-{rule}` as
//! its target ([`RULE_QUEUE_TARGET_ID`]), with the retry policy and dead-letter queue of the
//! rule file's target and an input transformer that wraps the event the way the deployed
//! targets do: `{"rule": "<name>", "event": <the event>}`. The deployed template uses
//! `<aws.events.rule-name>` ([`RULE_TARGET_INPUT_TEMPLATE`]); moto 5 substitutes only
//! `<aws.events.event.json>` (and the ingestion time) and would deliver that placeholder
//! verbatim, so the rule queue's template writes the rule's name in literally
//! ([`rule_queue_input_template`]), which gives the same bytes on AWS.
//!
//! Every step first reads what exists and only then writes: a resource that is already as
//! planned is reported [`Outcome::Unchanged`] and not touched, one that differs is brought in
//! line ([`Outcome::Updated`]), so running a plan twice is a no-op. Not created (Pulumi's job on
//! a real account): the bus archive, the queues' resource policies and the DLQs' redrive-allow
//! policies, point-in-time recovery, tags, IAM.

use std::collections::HashMap;
use std::fmt;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::{DeadLetterConfig, InputTransformer, RetryPolicy, RuleState};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_ssm::types::ParameterType;
use payhook_core::Provider;
use payhook_core::Secret;
use payhook_core::ports::PAYMENT_EVENTS_BUS;
use payhook_pattern::{RuleFile, RuleState as FileRuleState};

use crate::error::{ProvisionError, describe};
use crate::queue::{DLQ_RETENTION_SECONDS, FIFO_SUFFIX, dlq_name};
use crate::secrets::parameter_name;
use crate::status_store::{DEFAULT_TABLE_NAME, OPEN_STATUS_INDEX, TTL_ATTRIBUTE, create_table};

/// The stage of the local stack (`payhook serve`, `payhook bootstrap` without `--stage`).
pub const DEFAULT_LOCAL_STAGE: &str = "local";

/// The stage a deployment, and the on-call tools' `--aws`, use when none is named (the Pulumi
/// program's default).
pub const DEFAULT_DEPLOYED_STAGE: &str = "prod";

/// How long a provider queue keeps a message: 4 days, SQS's default (as `infra/` sets it).
pub const QUEUE_RETENTION_SECONDS: u32 = 4 * 24 * 60 * 60;

/// The provider queues' visibility timeout: six times the processors' 300 s function timeout,
/// as AWS advises for SQS event sources (and as `infra/` deploys).
pub const VISIBILITY_TIMEOUT_SECONDS: u32 = 6 * 300;

/// Receives before SQS moves a message to its provider's DLQ.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = payhook_core::processor::DEFAULT_MAX_RECEIVE_COUNT;

/// Largest `maxReceiveCount` SQS accepts.
pub const MAX_RECEIVE_COUNT_LIMIT: u32 = 1000;

/// Largest visibility timeout SQS accepts (12 hours).
pub const MAX_VISIBILITY_TIMEOUT_SECONDS: u32 = 43_200;

/// Longest SQS queue name.
pub const MAX_QUEUE_NAME_CHARS: usize = 80;

/// Longest stage name (`infra/`'s `STAGE_PATTERN`: it becomes part of every resource name).
pub const MAX_STAGE_CHARS: usize = 20;

/// The target id of a rule's queue target ([`StackPlan::rule_queues`]).
pub const RULE_QUEUE_TARGET_ID: &str = "payhook-rule-queue";

/// The input template of the deployed rule targets (`infra/payhook_infra/events.py`): the event
/// processor reads the matched rule from `rule`.
pub const RULE_TARGET_INPUT_TEMPLATE: &str =
    r#"{"rule": "<aws.events.rule-name>", "event": <aws.events.event.json>}"#;

/// The input template of `rule`'s queue target: [`RULE_TARGET_INPUT_TEMPLATE`] with the rule's
/// name written in (see the module documentation for why).
pub fn rule_queue_input_template(rule: &str) -> String {
    RULE_TARGET_INPUT_TEMPLATE.replace("<aws.events.rule-name>", rule)
}

/// Checks a stage name the way `infra/` does: 1–20 characters of `a-z`, `0-9` and `-`,
/// starting with a letter.
pub fn validate_stage(stage: &str) -> Result<(), ProvisionError> {
    let mut chars = stage.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && stage.len() <= MAX_STAGE_CHARS;
    if valid {
        Ok(())
    } else {
        Err(ProvisionError::Invalid(format!(
            "stage `{stage}` must be 1-{MAX_STAGE_CHARS} characters of a-z, 0-9 and '-', \
             starting with a letter (it becomes part of every resource name)"
        )))
    }
}

/// The names of a stage's resources, exactly as `infra/payhook_infra/settings.py` makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackNames {
    /// The stage (`prod`, `local`).
    pub stage: String,
    /// The status table (`webhook-processing`).
    pub table: String,
    /// The event bus (`payment-events`).
    pub event_bus: String,
}

impl StackNames {
    /// The names of `stage`, with the default table and bus names.
    pub fn new(stage: impl Into<String>) -> Self {
        StackNames {
            stage: stage.into(),
            table: DEFAULT_TABLE_NAME.to_owned(),
            event_bus: PAYMENT_EVENTS_BUS.to_owned(),
        }
    }

    /// Uses the table `name` instead (`infra/`'s `tableName`).
    pub fn with_table(mut self, name: impl Into<String>) -> Self {
        self.table = name.into();
        self
    }

    /// Uses the bus `name` instead (`infra/`'s `eventBusName`).
    pub fn with_event_bus(mut self, name: impl Into<String>) -> Self {
        self.event_bus = name.into();
        self
    }

    /// `payhook-{stage}`: the prefix of every queue.
    pub fn prefix(&self) -> String {
        format!("payhook-{}", self.stage)
    }

    /// `provider`'s FIFO queue: `payhook-{stage}-{provider}.fifo`.
    pub fn queue(&self, provider: Provider) -> String {
        format!("{}-{provider}{FIFO_SUFFIX}", self.prefix())
    }

    /// `provider`'s FIFO dead-letter queue: `payhook-{stage}-{provider}-dlq.fifo`.
    pub fn dlq(&self, provider: Provider) -> String {
        dlq_name(&self.queue(provider))
    }

    /// The rule targets' dead-letter queue: `payhook-{stage}-events-dlq`.
    pub fn events_dlq(&self) -> String {
        format!("{}-events-dlq", self.prefix())
    }

    /// The queue standing in for `rule`'s targets on moto: `payhook-{stage}-rule-{rule}`, with
    /// any character SQS does not allow in a name (a rule name may hold `.`) replaced by `-`.
    pub fn rule_queue(&self, rule: &str) -> String {
        let rule: String = rule
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("{}-rule-{rule}", self.prefix())
    }

    /// The quarantine bucket on an AWS-compatible endpoint: `payhook-{stage}-quarantine` (the
    /// deployed bucket's name is Pulumi's, with a suffix; see `infra/`).
    pub fn quarantine_bucket(&self) -> String {
        format!("{}-quarantine", self.prefix())
    }

    /// One of `provider`'s SSM parameters: `/payhook/{stage}/{provider}/{parameter}`.
    pub fn parameter(&self, provider: Provider, parameter: &str) -> String {
        parameter_name(&self.stage, provider, parameter)
    }
}

/// An SSM `SecureString` parameter to create with a given value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureParameter {
    /// The full name ([`StackNames::parameter`]).
    pub name: String,
    /// The value (redacted in `Debug`).
    pub value: Secret,
    /// What it holds.
    pub description: String,
}

/// Everything [`provision`] creates.
#[derive(Debug, Clone)]
pub struct StackPlan {
    /// The resource names.
    pub names: StackNames,
    /// Receives before a provider queue's message goes to its DLQ.
    pub max_receive_count: u32,
    /// The provider queues' visibility timeout, seconds.
    pub visibility_timeout_secs: u32,
    /// The rules to create on the bus (`rules/*.json`, e.g. from
    /// [`load_rules`](payhook_pattern::load_rules)). Each lands on
    /// [`StackNames::event_bus`], whatever bus its file names.
    pub rules: Vec<RuleFile>,
    /// Give every rule a standard queue as its target (moto, LocalStack: there are no functions
    /// to invoke).
    pub rule_queues: bool,
    /// The SSM parameters to create or update.
    pub parameters: Vec<SecureParameter>,
}

impl StackPlan {
    /// A plan for `names` with the deployed defaults ([`DEFAULT_MAX_RECEIVE_COUNT`],
    /// [`VISIBILITY_TIMEOUT_SECONDS`]), no rules, no rule queues and no parameters.
    pub fn new(names: StackNames) -> Self {
        StackPlan {
            names,
            max_receive_count: DEFAULT_MAX_RECEIVE_COUNT,
            visibility_timeout_secs: VISIBILITY_TIMEOUT_SECONDS,
            rules: Vec::new(),
            rule_queues: false,
            parameters: Vec::new(),
        }
    }

    /// Checks the plan before anything is created: counts and timeouts within SQS's limits,
    /// queue names within [`MAX_QUEUE_NAME_CHARS`], unique rule names.
    pub fn validate(&self) -> Result<(), ProvisionError> {
        let invalid = |message: String| Err(ProvisionError::Invalid(message));
        if !(1..=MAX_RECEIVE_COUNT_LIMIT).contains(&self.max_receive_count) {
            return invalid(format!(
                "max receive count {} must be 1 to {MAX_RECEIVE_COUNT_LIMIT}",
                self.max_receive_count
            ));
        }
        if self.visibility_timeout_secs > MAX_VISIBILITY_TIMEOUT_SECONDS {
            return invalid(format!(
                "visibility timeout {} s must be at most {MAX_VISIBILITY_TIMEOUT_SECONDS} s",
                self.visibility_timeout_secs
            ));
        }
        let mut queues: Vec<String> = Provider::ALL
            .iter()
            .flat_map(|p| [self.names.queue(*p), self.names.dlq(*p)])
            .collect();
        queues.push(self.names.events_dlq());
        if self.rule_queues {
            queues.extend(self.rules.iter().map(|r| self.names.rule_queue(&r.name)));
        }
        if let Some(long) = queues.iter().find(|q| q.len() > MAX_QUEUE_NAME_CHARS) {
            return invalid(format!(
                "queue name `{long}` is longer than SQS's {MAX_QUEUE_NAME_CHARS} characters \
                 (use a shorter stage)"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for rule in &self.rules {
            if !seen.insert(rule.name.as_str()) {
                return invalid(format!("rule `{}` is planned twice", rule.name));
            }
        }
        Ok(())
    }
}

/// What kind of resource a [`Provisioned`] line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A provider's FIFO queue.
    Queue,
    /// A provider's FIFO dead-letter queue.
    DeadLetterQueue,
    /// The rule targets' dead-letter queue.
    EventsDeadLetterQueue,
    /// The status table.
    Table,
    /// The quarantine bucket.
    Bucket,
    /// The event bus.
    EventBus,
    /// A routing rule.
    Rule,
    /// A rule's stand-in queue.
    RuleQueue,
    /// A rule's queue target.
    RuleTarget,
    /// An SSM parameter.
    Parameter,
}

impl ResourceKind {
    /// A short kebab-case name (`fifo-queue`, `rule`, `parameter`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Queue => "fifo-queue",
            ResourceKind::DeadLetterQueue => "fifo-dlq",
            ResourceKind::EventsDeadLetterQueue => "events-dlq",
            ResourceKind::Table => "table",
            ResourceKind::Bucket => "bucket",
            ResourceKind::EventBus => "event-bus",
            ResourceKind::Rule => "rule",
            ResourceKind::RuleQueue => "rule-queue",
            ResourceKind::RuleTarget => "rule-target",
            ResourceKind::Parameter => "parameter",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`provision`] did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It did not exist and was created.
    Created,
    /// It existed with other settings, which were brought in line with the plan.
    Updated,
    /// It existed as planned; nothing was written.
    Unchanged,
}

impl Outcome {
    /// `created`, `updated` or `unchanged`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource [`provision`] went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// What it is.
    pub kind: ResourceKind,
    /// Its name (a rule target: `{rule}/{target id}`).
    pub name: String,
    /// What was done.
    pub outcome: Outcome,
    /// Its URL (queues) or ARN (bus, rules), when known.
    pub locator: Option<String>,
}

/// Creates or updates everything in `plan` (see the module documentation), calling
/// `on_resource` after each resource, in order: the provider DLQs and queues, the events DLQ,
/// the table, the quarantine bucket, the bus, each rule (and its queue and target), the parameters. Returns the same
/// lines. Stops at the first failure; what was done so far stays (running again continues).
#[expect(
    clippy::too_many_lines,
    reason = "creates the stage's resources in dependency order, each step needing the URLs and ARNs of the ones before it"
)]
pub async fn provision<F>(
    config: &SdkConfig,
    plan: &StackPlan,
    mut on_resource: F,
) -> Result<Vec<Provisioned>, ProvisionError>
where
    F: FnMut(&Provisioned) + Send,
{
    plan.validate()?;
    let sqs = aws_sdk_sqs::Client::new(config);
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let events = aws_sdk_eventbridge::Client::new(config);
    let ssm = aws_sdk_ssm::Client::new(config);
    let mut done = Vec::new();
    let mut report = |line: Provisioned| {
        on_resource(&line);
        done.push(line);
    };
    let names = &plan.names;

    for provider in Provider::ALL {
        let dlq = names.dlq(provider);
        let (dlq_url, outcome) = ensure_queue(&sqs, &dlq, &fifo_dlq_attributes()).await?;
        report(Provisioned {
            kind: ResourceKind::DeadLetterQueue,
            name: dlq.clone(),
            outcome,
            locator: Some(dlq_url.clone()),
        });
        let dlq_arn = queue_arn(&sqs, &dlq_url, &dlq).await?;
        let queue = names.queue(provider);
        let attributes = fifo_queue_attributes(plan, &dlq_arn);
        let (queue_url, outcome) = ensure_queue(&sqs, &queue, &attributes).await?;
        report(Provisioned {
            kind: ResourceKind::Queue,
            name: queue,
            outcome,
            locator: Some(queue_url),
        });
    }

    let events_dlq = names.events_dlq();
    let (events_dlq_url, outcome) = ensure_queue(
        &sqs,
        &events_dlq,
        &[(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECONDS.to_string(),
        )],
    )
    .await?;
    report(Provisioned {
        kind: ResourceKind::EventsDeadLetterQueue,
        name: events_dlq.clone(),
        outcome,
        locator: Some(events_dlq_url.clone()),
    });
    let events_dlq_arn = queue_arn(&sqs, &events_dlq_url, &events_dlq).await?;

    let outcome = ensure_table(&dynamodb, &names.table).await?;
    report(Provisioned {
        kind: ResourceKind::Table,
        name: names.table.clone(),
        outcome,
        locator: None,
    });

    let bucket = names.quarantine_bucket();
    let created =
        crate::blob_store::create_bucket(&crate::blob_store::s3_client(config), &bucket).await?;
    report(Provisioned {
        kind: ResourceKind::Bucket,
        name: bucket,
        outcome: if created {
            Outcome::Created
        } else {
            Outcome::Unchanged
        },
        locator: None,
    });

    let (bus_arn, outcome) = ensure_bus(&events, &names.event_bus).await?;
    report(Provisioned {
        kind: ResourceKind::EventBus,
        name: names.event_bus.clone(),
        outcome,
        locator: bus_arn,
    });

    for rule in &plan.rules {
        let (rule_arn, outcome) = ensure_rule(&events, &names.event_bus, rule).await?;
        report(Provisioned {
            kind: ResourceKind::Rule,
            name: rule.name.clone(),
            outcome,
            locator: rule_arn,
        });
        if !plan.rule_queues {
            continue;
        }
        let queue = names.rule_queue(&rule.name);
        let (queue_url, outcome) = ensure_queue(
            &sqs,
            &queue,
            &[(
                QueueAttributeName::MessageRetentionPeriod,
                QUEUE_RETENTION_SECONDS.to_string(),
            )],
        )
        .await?;
        report(Provisioned {
            kind: ResourceKind::RuleQueue,
            name: queue.clone(),
            outcome,
            locator: Some(queue_url.clone()),
        });
        let target = QueueTarget {
            queue_arn: queue_arn(&sqs, &queue_url, &queue).await?,
            input_template: rule_queue_input_template(&rule.name),
            retry_policy: rule
                .targets
                .iter()
                .find_map(|t| t.retry_policy)
                .map(|p| (p.maximum_retry_attempts, p.maximum_event_age_seconds)),
            dead_letter_arn: rule
                .targets
                .iter()
                .any(|t| t.dead_letter_queue.is_some())
                .then(|| events_dlq_arn.clone()),
        };
        let outcome = ensure_queue_target(&events, &names.event_bus, &rule.name, &target).await?;
        report(Provisioned {
            kind: ResourceKind::RuleTarget,
            name: format!("{}/{RULE_QUEUE_TARGET_ID}", rule.name),
            outcome,
            locator: Some(target.queue_arn),
        });
    }

    for parameter in &plan.parameters {
        let outcome = ensure_parameter(&ssm, parameter).await?;
        report(Provisioned {
            kind: ResourceKind::Parameter,
            name: parameter.name.clone(),
            outcome,
            locator: None,
        });
    }
    Ok(done)
}

fn fifo_dlq_attributes() -> Vec<(QueueAttributeName, String)> {
    vec![
        (QueueAttributeName::FifoQueue, "true".to_owned()),
        (
            QueueAttributeName::ContentBasedDeduplication,
            "true".to_owned(),
        ),
        (
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECONDS.to_string(),
        ),
        (
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT_SECONDS.to_string(),
        ),
    ]
}

fn fifo_queue_attributes(plan: &StackPlan, dlq_arn: &str) -> Vec<(QueueAttributeName, String)> {
    vec![
        (QueueAttributeName::FifoQueue, "true".to_owned()),
        (
            QueueAttributeName::ContentBasedDeduplication,
            "true".to_owned(),
        ),
        (
            QueueAttributeName::VisibilityTimeout,
            plan.visibility_timeout_secs.to_string(),
        ),
        (
            QueueAttributeName::MessageRetentionPeriod,
            QUEUE_RETENTION_SECONDS.to_string(),
        ),
        (
            QueueAttributeName::RedrivePolicy,
            redrive_policy(dlq_arn, plan.max_receive_count),
        ),
    ]
}

/// The `RedrivePolicy` attribute: `{"deadLetterTargetArn": …, "maxReceiveCount": n}`.
pub fn redrive_policy(dlq_arn: &str, max_receive_count: u32) -> String {
    serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
        .to_string()
}

/// Whether an attribute as SQS returns it equals the planned value: JSON policies compared as
/// JSON (numbers and numeric strings alike), booleans case-insensitively.
fn same_attribute(name: &QueueAttributeName, current: &str, planned: &str) -> bool {
    if *name == QueueAttributeName::RedrivePolicy {
        return same_json(current, planned);
    }
    current.trim().eq_ignore_ascii_case(planned.trim())
}

fn same_json(a: &str, b: &str) -> bool {
    fn normalise(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                map.into_iter().map(|(k, v)| (k, normalise(v))).collect()
            }
            serde_json::Value::Number(n) => serde_json::Value::String(n.to_string()),
            other => other,
        }
    }
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(a), Ok(b)) => normalise(a) == normalise(b),
        _ => false,
    }
}

async fn existing_queue_url(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<Option<String>, ProvisionError> {
    crate::consumer::queue_url(sqs, name)
        .await
        .map_err(|e| ProvisionError::Aws(e.to_string()))
}

/// Creates the queue `name` with `attributes`, or brings an existing one in line with them.
async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<(String, Outcome), ProvisionError> {
    let url = match existing_queue_url(sqs, name).await? {
        Some(url) => url,
        None => {
            let created = sqs
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(attributes.iter().cloned().collect()))
                .send()
                .await;
            match created {
                Ok(output) => {
                    let url = output.queue_url().map(str::to_owned).ok_or_else(|| {
                        ProvisionError::Aws(format!("SQS CreateQueue: no URL for `{name}`"))
                    })?;
                    return Ok((url, Outcome::Created));
                }
                // Created meanwhile with other attributes: update it below.
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_queue_name_exists()) =>
                {
                    existing_queue_url(sqs, name).await?.ok_or_else(|| {
                        ProvisionError::Aws(format!("SQS: queue `{name}` exists but has no URL"))
                    })?
                }
                Err(err) => return Err(ProvisionError::Aws(describe("SQS CreateQueue", &err))),
            }
        }
    };
    let current = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("SQS GetQueueAttributes", &err)))?
        .attributes()
        .cloned()
        .unwrap_or_default();
    let differing: HashMap<QueueAttributeName, String> = attributes
        .iter()
        .filter(|(name, planned)| {
            !current
                .get(name)
                .is_some_and(|value| same_attribute(name, value, planned))
        })
        .cloned()
        .collect();
    if differing.is_empty() {
        return Ok((url, Outcome::Unchanged));
    }
    if differing.contains_key(&QueueAttributeName::FifoQueue) {
        return Err(ProvisionError::Invalid(format!(
            "queue `{name}` exists with another FifoQueue setting, which SQS cannot change; \
             delete it or use another stage"
        )));
    }
    sqs.set_queue_attributes()
        .queue_url(&url)
        .set_attributes(Some(differing))
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("SQS SetQueueAttributes", &err)))?;
    Ok((url, Outcome::Updated))
}

/// The queue's ARN (`GetQueueAttributes`); `name` is for the error.
pub(crate) async fn queue_arn(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: &str,
) -> Result<String, ProvisionError> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("SQS GetQueueAttributes", &err)))?
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| ProvisionError::Aws(format!("SQS: no ARN for `{name}`")))
}

async fn ensure_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<Outcome, ProvisionError> {
    let existing = dynamodb.describe_table().table_name(name).send().await;
    let indexed = match existing {
        Ok(described) => described.table().is_some_and(|table| {
            table
                .global_secondary_indexes()
                .iter()
                .any(|index| index.index_name() == Some(OPEN_STATUS_INDEX))
        }),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            create_table(dynamodb, name).await?;
            return Ok(Outcome::Created);
        }
        Err(err) => {
            return Err(ProvisionError::Aws(describe(
                "DynamoDB DescribeTable",
                &err,
            )));
        }
    };
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("DynamoDB DescribeTimeToLive", &err)))?;
    let description = ttl.time_to_live_description();
    let ttl_on = description.is_some_and(|d| {
        d.attribute_name() == Some(TTL_ATTRIBUTE)
            && d.time_to_live_status().is_some_and(|s| {
                matches!(
                    s,
                    aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled
                        | aws_sdk_dynamodb::types::TimeToLiveStatus::Enabling
                )
            })
    });
    if ttl_on && indexed {
        return Ok(Outcome::Unchanged);
    }
    // `create_table` on an existing table waits for it, adds the index and turns TTL on.
    create_table(dynamodb, name).await?;
    Ok(Outcome::Updated)
}

async fn ensure_bus(
    events: &aws_sdk_eventbridge::Client,
    name: &str,
) -> Result<(Option<String>, Outcome), ProvisionError> {
    match events.describe_event_bus().name(name).send().await {
        Ok(bus) => return Ok((bus.arn().map(str::to_owned), Outcome::Unchanged)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(err) => {
            return Err(ProvisionError::Aws(describe(
                "EventBridge DescribeEventBus",
                &err,
            )));
        }
    }
    match events
        .create_event_bus()
        .name(name)
        .description("payhook: normalised payment events (PaymentEvent in detail)")
        .send()
        .await
    {
        Ok(created) => Ok((created.event_bus_arn().map(str::to_owned), Outcome::Created)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception()) =>
        {
            Ok((None, Outcome::Unchanged))
        }
        Err(err) => Err(ProvisionError::Aws(describe(
            "EventBridge CreateEventBus",
            &err,
        ))),
    }
}

fn rule_state(rule: &RuleFile) -> RuleState {
    match rule.state {
        FileRuleState::Enabled => RuleState::Enabled,
        FileRuleState::Disabled => RuleState::Disabled,
    }
}

async fn ensure_rule(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    rule: &RuleFile,
) -> Result<(Option<String>, Outcome), ProvisionError> {
    let pattern = serde_json::to_string(&rule.event_pattern).map_err(|e| {
        ProvisionError::Invalid(format!("rule `{}`: event pattern: {e}", rule.name))
    })?;
    let state = rule_state(rule);
    let outcome = match events
        .describe_rule()
        .name(&rule.name)
        .event_bus_name(bus)
        .send()
        .await
    {
        Ok(existing) => {
            let same_pattern = existing
                .event_pattern()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .is_some_and(|p| p == rule.event_pattern);
            let same = same_pattern
                && existing.state() == Some(&state)
                && existing.description().unwrap_or_default() == rule.description;
            if same {
                return Ok((existing.arn().map(str::to_owned), Outcome::Unchanged));
            }
            Outcome::Updated
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Outcome::Created
        }
        Err(err) => {
            return Err(ProvisionError::Aws(describe(
                "EventBridge DescribeRule",
                &err,
            )));
        }
    };
    let put = events
        .put_rule()
        .name(&rule.name)
        .event_bus_name(bus)
        .description(&rule.description)
        .event_pattern(pattern)
        .state(state)
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("EventBridge PutRule", &err)))?;
    Ok((put.rule_arn().map(str::to_owned), outcome))
}

/// A rule's queue target as planned.
#[derive(Debug, Clone)]
struct QueueTarget {
    queue_arn: String,
    input_template: String,
    /// `(maximum retry attempts, maximum event age in seconds)`.
    retry_policy: Option<(u32, u32)>,
    dead_letter_arn: Option<String>,
}

async fn ensure_queue_target(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    rule: &str,
    planned: &QueueTarget,
) -> Result<Outcome, ProvisionError> {
    let existing = events
        .list_targets_by_rule()
        .rule(rule)
        .event_bus_name(bus)
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("EventBridge ListTargetsByRule", &err)))?;
    let current = existing
        .targets()
        .iter()
        .find(|t| t.id() == RULE_QUEUE_TARGET_ID);
    let outcome = match current {
        None => Outcome::Created,
        Some(target) => {
            let retry = target.retry_policy().map(|p| {
                (
                    p.maximum_retry_attempts().unwrap_or_default(),
                    p.maximum_event_age_in_seconds().unwrap_or_default(),
                )
            });
            let planned_retry = planned.retry_policy.map(|(attempts, age)| {
                (
                    i32::try_from(attempts).unwrap_or(i32::MAX),
                    i32::try_from(age).unwrap_or(i32::MAX),
                )
            });
            let same = target.arn() == planned.queue_arn
                && target
                    .input_transformer()
                    .map(|t| t.input_template().to_owned())
                    == Some(planned.input_template.clone())
                && retry == planned_retry
                && target.dead_letter_config().and_then(|d| d.arn())
                    == planned.dead_letter_arn.as_deref();
            if same {
                return Ok(Outcome::Unchanged);
            }
            Outcome::Updated
        }
    };
    let invalid = |err: aws_smithy_types::error::operation::BuildError| {
        ProvisionError::Invalid(format!("rule `{rule}` target: {err}"))
    };
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id(RULE_QUEUE_TARGET_ID)
        .arn(&planned.queue_arn)
        .input_transformer(
            InputTransformer::builder()
                .input_template(&planned.input_template)
                .build()
                .map_err(invalid)?,
        )
        .set_retry_policy(planned.retry_policy.map(|(attempts, age)| {
            RetryPolicy::builder()
                .maximum_retry_attempts(i32::try_from(attempts).unwrap_or(i32::MAX))
                .maximum_event_age_in_seconds(i32::try_from(age).unwrap_or(i32::MAX))
                .build()
        }))
        .set_dead_letter_config(
            planned
                .dead_letter_arn
                .as_ref()
                .map(|arn| DeadLetterConfig::builder().arn(arn).build()),
        )
        .build()
        .map_err(invalid)?;
    let put = events
        .put_targets()
        .rule(rule)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("EventBridge PutTargets", &err)))?;
    if put.failed_entry_count() > 0 {
        let reasons: Vec<String> = put
            .failed_entries()
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.error_code().unwrap_or("Unknown"),
                    e.error_message().unwrap_or("")
                )
            })
            .collect();
        return Err(ProvisionError::Aws(format!(
            "EventBridge PutTargets on `{rule}` refused the target: {}",
            reasons.join("; ")
        )));
    }
    Ok(outcome)
}

async fn ensure_parameter(
    ssm: &aws_sdk_ssm::Client,
    parameter: &SecureParameter,
) -> Result<Outcome, ProvisionError> {
    let outcome = match ssm
        .get_parameter()
        .name(&parameter.name)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(existing) => {
            let current = existing.parameter();
            let same = current.is_some_and(|p| {
                p.value() == Some(parameter.value.expose())
                    && p.r#type() == Some(&ParameterType::SecureString)
            });
            if same {
                return Ok(Outcome::Unchanged);
            }
            Outcome::Updated
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Outcome::Created
        }
        // The error names the parameter, never its value.
        Err(err) => return Err(ProvisionError::Aws(describe("SSM GetParameter", &err))),
    };
    ssm.put_parameter()
        .name(&parameter.name)
        .value(parameter.value.expose())
        .r#type(ParameterType::SecureString)
        .description(&parameter.description)
        .overwrite(outcome == Outcome::Updated)
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("SSM PutParameter", &err)))?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_pulumi_program() {
        let names = StackNames::new("prod");
        assert_eq!(names.queue(Provider::Stripe), "payhook-prod-stripe.fifo");
        assert_eq!(names.dlq(Provider::Square), "payhook-prod-square-dlq.fifo");
        assert_eq!(names.events_dlq(), "payhook-prod-events-dlq");
        assert_eq!(names.table, "webhook-processing");
        assert_eq!(names.event_bus, "payment-events");
        assert_eq!(
            names.parameter(Provider::Paypal, "webhook-id"),
            "/payhook/prod/paypal/webhook-id"
        );
        assert_eq!(
            names.rule_queue("high.value"),
            "payhook-prod-rule-high-value"
        );
    }

    #[test]
    fn stages_follow_the_pulumi_pattern() {
        assert!(validate_stage("prod").is_ok());
        assert!(validate_stage("dev-2").is_ok());
        for bad in ["", "Prod", "2dev", "dev_1", "a-very-long-stage-name-x"] {
            assert!(validate_stage(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rule_queue_template_names_the_rule_and_keeps_the_event() {
        assert_eq!(
            rule_queue_input_template("refunds"),
            r#"{"rule": "refunds", "event": <aws.events.event.json>}"#
        );
    }

    #[test]
    fn redrive_policies_compare_as_json() {
        let planned = redrive_policy("arn:aws:sqs:us-east-1:1:q-dlq.fifo", 5);
        assert!(same_attribute(
            &QueueAttributeName::RedrivePolicy,
            r#"{"maxReceiveCount": "5", "deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:q-dlq.fifo"}"#,
            &planned
        ));
        assert!(!same_attribute(
            &QueueAttributeName::RedrivePolicy,
            &redrive_policy("arn:aws:sqs:us-east-1:1:q-dlq.fifo", 3),
            &planned
        ));
        assert!(same_attribute(
            &QueueAttributeName::FifoQueue,
            "True",
            "true"
        ));
    }

    #[test]
    fn plans_out_of_sqs_limits_are_refused_before_any_call() {
        let mut plan = StackPlan::new(StackNames::new("prod"));
        assert!(plan.validate().is_ok());
        plan.max_receive_count = 0;
        assert!(plan.validate().is_err());
        plan.max_receive_count = 5;
        plan.visibility_timeout_secs = 50_000;
        assert!(plan.validate().is_err());
        let mut long = StackPlan::new(StackNames::new("x".repeat(70)));
        long.rule_queues = true;
        assert!(long.validate().is_err());
    }
}
