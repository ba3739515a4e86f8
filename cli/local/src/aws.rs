//! The local stack on an AWS-compatible endpoint (`payhook serve --aws-endpoint URL`, `payhook
//! demo --aws-endpoint URL`): the same handlers, with every port on the AWS adapters of
//! `payhook-aws` — secrets from SSM, the status table in DynamoDB, the provider queues and
//! their DLQs in SQS, `PutEvents` to the EventBridge bus — against a stage that
//! `payhook bootstrap` (or the demo) created there.
//!
//! What stands in for Lambda's side of AWS: the processors poll their FIFO queues
//! ([`SqsConsumer`], batches of up to 10, deleting what succeeded, as the event source mapping
//! does), and since the endpoint invokes no functions, every rule's targets are the standard
//! queue `payhook-{stage}-rule-{rule}` ([`StackNames::rule_queue`]), which bootstrap made the
//! rule's target with the deployed input template. Each is polled and its messages, the
//! `{"rule", "event"}` the Lambda target would get, are delivered to the event processor: a
//! failed delivery comes back after [`RULE_RETRY_VISIBILITY_SECS`] and, once the rule's retry
//! policy is used up (or at once for a permanent error), goes to the stage's events DLQ, as
//! EventBridge's target dead-letter config sends it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use payhook_aws::aws_config::SdkConfig;
use payhook_aws::aws_sdk_sqs::Client as SqsClient;
use payhook_aws::aws_sdk_sqs::types::QueueAttributeName;
use payhook_aws::provision::StackNames;
use payhook_aws::{
    DynamoPaymentStore, DynamoStatusStore, EventBridgeBus, QueueDepth, SqsConsumer, SqsFifoQueue,
};
use payhook_core::Provider;
use payhook_core::event_processor::RoutedEvent;
use payhook_core::payment::{PaymentRecord, PaymentStore};
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus, QueueError};
use payhook_core::status::{
    PutOutcome, StatusItem, StatusPage, StatusQuery, StatusStore, StoreError, Transition,
    TransitionOutcome, TransmissionOutcome, TransmissionRecord,
};
use payhook_memory::eventbridge::{EventTarget, RuleStats};
use payhook_memory::sqs::QueueStats;
use payhook_pattern::{DEFAULT_RETRY_POLICY, RuleFile, RuleState};
use serde_json::json;

use crate::LocalError;

/// Visibility of a rule queue's message whose delivery failed: when it is retried.
pub const RULE_RETRY_VISIBILITY_SECS: i32 = 1;

/// Long-poll wait of each receive, seconds (a shutdown does not wait for it).
pub const RECEIVE_WAIT_SECS: i32 = 1;

/// One rule's stand-in target queue.
#[derive(Debug)]
pub(crate) struct RuleQueue {
    /// The rule's name.
    pub(crate) rule: String,
    /// Its queue.
    pub(crate) consumer: SqsConsumer,
    /// Deliveries before a failing event goes to the events DLQ (1 + the retries of the
    /// rule's retry policy).
    pub(crate) max_attempts: u32,
}

/// A provider's queue and dead-letter queue.
#[derive(Debug)]
pub(crate) struct ProviderQueues {
    /// The FIFO queue.
    pub(crate) queue: SqsConsumer,
    /// Its DLQ.
    pub(crate) dlq: SqsConsumer,
}

/// The status table with its calls made one at a time.
///
/// DynamoDB applies each conditional write atomically; moto's DynamoDB checks the condition and
/// writes without a lock, so under concurrency two conditional updates of one item could both
/// pass (the validator's `RECEIVED → QUEUED` landing after a processor's claim, say). Every
/// writer of the stage's table is in this process, so taking the calls one at a time gives back
/// the atomicity the pipeline relies on, on any endpoint.
#[derive(Debug)]
pub(crate) struct SerialisedStore {
    pub(crate) inner: DynamoStatusStore,
    /// The payment records, in the same table.
    payments: DynamoPaymentStore,
    lock: tokio::sync::Mutex<()>,
}

#[async_trait]
impl PaymentStore for SerialisedStore {
    async fn get_payment(
        &self,
        provider: Provider,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        self.payments.get_payment(provider, payment_id).await
    }

    async fn put_payment(
        &self,
        record: &PaymentRecord,
        expected_revision: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        self.payments
            .put_payment(record, expected_revision, now_ms)
            .await
    }
}

#[async_trait]
impl StatusStore for SerialisedStore {
    async fn get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        self.inner.get(webhook_id).await
    }

    async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        self.inner.put_new(item).await
    }

    async fn transition(
        &self,
        webhook_id: &str,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        self.inner.transition(webhook_id, transition).await
    }

    async fn record_transmission(
        &self,
        record: &TransmissionRecord,
        now_unix: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        let _one_at_a_time = self.lock.lock().await;
        self.inner.record_transmission(record, now_unix).await
    }

    async fn list_by_status(&self, query: &StatusQuery) -> Result<StatusPage, StoreError> {
        // A read: nothing to serialise against.
        self.inner.list_by_status(query).await
    }
}

/// The resolved stage on the endpoint: clients, queue URLs, counters.
#[derive(Debug)]
pub(crate) struct AwsPipeline {
    pub(crate) names: StackNames,
    pub(crate) sqs: SqsClient,
    pub(crate) store: Arc<SerialisedStore>,
    pub(crate) queue: SqsFifoQueue,
    pub(crate) bus: Arc<CountingBus>,
    pub(crate) providers: BTreeMap<Provider, ProviderQueues>,
    pub(crate) rules: Vec<RuleQueue>,
    pub(crate) events_dlq: SqsConsumer,
    /// The provider queues' `maxReceiveCount` (read from their redrive policy).
    pub(crate) max_receive_count: u32,
    /// The provider queues' visibility timeout (the shortest of them), seconds.
    pub(crate) visibility_timeout_secs: u32,
    rule_stats: Mutex<BTreeMap<String, RuleStats>>,
}

impl AwsPipeline {
    /// Resolves `names`' queues on the endpoint `sdk` points at; fails with a hint to run
    /// `payhook bootstrap` when the stage is not there. `rules` are the rule files whose
    /// queues to poll (the enabled rules of the stage's bus).
    pub(crate) async fn connect(
        sdk: &SdkConfig,
        names: StackNames,
        rules: &[RuleFile],
    ) -> Result<AwsPipeline, LocalError> {
        let sqs = SqsClient::new(sdk);
        let mut queue = SqsFifoQueue::new(sqs.clone());
        let mut providers = BTreeMap::new();
        let mut max_receive_count = None;
        let mut visibility_timeout_secs: Option<u32> = None;
        for provider in Provider::ALL {
            let url =
                payhook_aws::dlq::required_queue_url(&sqs, &names.queue(provider), &names.stage)
                    .await?;
            let dlq_url =
                payhook_aws::dlq::required_queue_url(&sqs, &names.dlq(provider), &names.stage)
                    .await?;
            let count = redrive_max_receive_count(&sqs, &url)
                .await?
                .ok_or_else(|| {
                    LocalError::Aws(format!(
                        "queue `{}` has no redrive policy: run `payhook bootstrap` again",
                        names.queue(provider)
                    ))
                })?;
            max_receive_count = Some(max_receive_count.map_or(count, |c: u32| c.min(count)));
            let visibility = queue_visibility_timeout_secs(&sqs, &url).await?;
            visibility_timeout_secs =
                Some(visibility_timeout_secs.map_or(visibility, |v| v.min(visibility)));
            queue = queue.with_queue_url(provider, &url);
            providers.insert(
                provider,
                ProviderQueues {
                    queue: SqsConsumer::new(sqs.clone(), url),
                    dlq: SqsConsumer::new(sqs.clone(), dlq_url),
                },
            );
        }
        let events_dlq = SqsConsumer::new(
            sqs.clone(),
            payhook_aws::dlq::required_queue_url(&sqs, &names.events_dlq(), &names.stage).await?,
        );
        let mut rule_queues = Vec::new();
        for rule in rules {
            if rule.state != RuleState::Enabled {
                continue;
            }
            let url = payhook_aws::dlq::required_queue_url(
                &sqs,
                &names.rule_queue(&rule.name),
                &names.stage,
            )
            .await?;
            let retry = rule
                .targets
                .first()
                .and_then(|t| t.retry_policy)
                .unwrap_or(DEFAULT_RETRY_POLICY);
            rule_queues.push(RuleQueue {
                rule: rule.name.clone(),
                consumer: SqsConsumer::new(sqs.clone(), url),
                max_attempts: retry.maximum_retry_attempts.saturating_add(1),
            });
        }
        let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(sdk);
        let store = Arc::new(SerialisedStore {
            inner: DynamoStatusStore::new(dynamodb.clone()).with_table_name(&names.table),
            payments: DynamoPaymentStore::new(dynamodb).with_table_name(&names.table),
            lock: tokio::sync::Mutex::new(()),
        });
        let rule_stats = rule_queues
            .iter()
            .map(|r| (r.rule.clone(), RuleStats::default()))
            .collect();
        Ok(AwsPipeline {
            names,
            store,
            queue,
            bus: Arc::new(CountingBus::new(EventBridgeBus::new(
                payhook_aws::aws_sdk_eventbridge::Client::new(sdk),
            ))),
            providers,
            rules: rule_queues,
            events_dlq,
            max_receive_count: max_receive_count.unwrap_or(1),
            visibility_timeout_secs: visibility_timeout_secs.unwrap_or(0),
            rule_stats: Mutex::new(rule_stats),
            sqs,
        })
    }

    /// Per-provider depths, as the admin API shows them.
    pub(crate) async fn queue_stats(&self) -> Result<BTreeMap<Provider, QueueStats>, QueueError> {
        let mut stats = BTreeMap::new();
        for (provider, queues) in &self.providers {
            let depth = queues.queue.depth().await?;
            let dlq = queues.dlq.depth().await?;
            stats.insert(
                *provider,
                QueueStats {
                    visible: depth.visible,
                    in_flight: depth.in_flight,
                    delayed: depth.delayed,
                    dlq_depth: dlq.visible + dlq.in_flight + dlq.delayed,
                },
            );
        }
        Ok(stats)
    }

    /// Nothing waiting, in flight or delayed in any provider queue or rule queue (a failed
    /// message waiting out its visibility timeout counts as in flight).
    pub(crate) async fn queues_empty(&self) -> Result<bool, QueueError> {
        let consumers = self
            .providers
            .values()
            .map(|q| &q.queue)
            .chain(self.rules.iter().map(|r| &r.consumer));
        for consumer in consumers {
            let depth: QueueDepth = consumer.depth().await?;
            if !depth.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The rule counters.
    pub(crate) fn rule_stats(&self) -> BTreeMap<String, RuleStats> {
        self.rule_stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Deliveries sent to the events DLQ.
    pub(crate) fn dead_letters(&self) -> usize {
        self.rule_stats()
            .values()
            .map(|s| usize::try_from(s.dead_lettered).unwrap_or(usize::MAX))
            .sum()
    }

    fn count(&self, rule: &str, update: impl FnOnce(&mut RuleStats)) {
        if let Ok(mut stats) = self.rule_stats.lock() {
            update(stats.entry(rule.to_owned()).or_default());
        }
    }
}

/// One attribute of a queue (`GetQueueAttributes`), if it has it.
async fn queue_attribute(
    sqs: &SqsClient,
    url: &str,
    name: QueueAttributeName,
) -> Result<Option<String>, LocalError> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .map_err(|e| {
            LocalError::Aws(format!(
                "SQS GetQueueAttributes: {}",
                payhook_aws::aws_sdk_sqs::error::DisplayErrorContext(e)
            ))
        })?;
    Ok(output.attributes().and_then(|a| a.get(&name)).cloned())
}

/// The queue's `VisibilityTimeout`, seconds.
async fn queue_visibility_timeout_secs(sqs: &SqsClient, url: &str) -> Result<u32, LocalError> {
    queue_attribute(sqs, url, QueueAttributeName::VisibilityTimeout)
        .await?
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| LocalError::Aws(format!("queue {url} has no VisibilityTimeout")))
}

/// `maxReceiveCount` of the queue's redrive policy, if it has one.
async fn redrive_max_receive_count(sqs: &SqsClient, url: &str) -> Result<Option<u32>, LocalError> {
    let policy = queue_attribute(sqs, url, QueueAttributeName::RedrivePolicy)
        .await?
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok());
    Ok(policy.and_then(|p| match &p["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }))
}

/// A bus that counts the entries the inner bus accepted (the demo's "published" line).
#[derive(Debug)]
pub(crate) struct CountingBus {
    inner: EventBridgeBus,
    accepted: AtomicU64,
}

impl CountingBus {
    fn new(inner: EventBridgeBus) -> Self {
        CountingBus {
            inner,
            accepted: AtomicU64::new(0),
        }
    }

    /// Entries accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl EventBus for CountingBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let results = self.inner.put_events(entries).await?;
        let accepted = results
            .iter()
            .filter(|r| matches!(r, EntryResult::Accepted(_)))
            .count();
        self.accepted.fetch_add(accepted as u64, Ordering::Relaxed);
        Ok(results)
    }
}

/// Delivers one rule queue's messages to `target` until `shutdown` (see the module
/// documentation). `busy` is held up while a batch is being delivered.
pub(crate) async fn deliver_rule_queue(
    pipeline: Arc<AwsPipeline>,
    index: usize,
    target: Arc<dyn EventTarget>,
    busy: Arc<AtomicUsize>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(queue) = pipeline.rules.get(index) else {
        return;
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        let received = tokio::select! {
            _ = shutdown.changed() => break,
            r = queue.consumer.receive(10, RECEIVE_WAIT_SECS, Some(RULE_RETRY_VISIBILITY_SECS)) => r,
        };
        let messages = match received {
            Ok(m) if !m.is_empty() => m,
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(rule = %queue.rule, error = %e, "rule queue receive failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        busy.fetch_add(1, Ordering::AcqRel);
        let mut done: Vec<&str> = Vec::new();
        for message in &messages {
            let attempt = message.record.receive_count.max(1);
            if attempt == 1 {
                pipeline.count(&queue.rule, |s| s.matched += 1);
            }
            let outcome = match serde_json::from_str::<RoutedEvent>(&message.record.body) {
                Ok(routed) => target.deliver(routed, None).await,
                Err(e) => Err((false, format!("not a routed event: {e}"))),
            };
            match outcome {
                Ok(()) => {
                    pipeline.count(&queue.rule, |s| s.delivered += 1);
                    done.push(&message.receipt_handle);
                }
                Err((retryable, error)) => {
                    pipeline.count(&queue.rule, |s| s.failed_invocations += 1);
                    if retryable && attempt < queue.max_attempts {
                        // Comes back after its visibility timeout: the retry.
                        continue;
                    }
                    let letter = json!({
                        "rule": queue.rule,
                        "body": message.record.body,
                        "error": error,
                        "attempts": attempt,
                    });
                    match pipeline.events_dlq.send_standard(&letter.to_string()).await {
                        Ok(_) => {
                            pipeline.count(&queue.rule, |s| s.dead_lettered += 1);
                            done.push(&message.receipt_handle);
                        }
                        Err(e) => {
                            tracing::error!(rule = %queue.rule, error = %e, "events DLQ send failed; the delivery is retried");
                        }
                    }
                }
            }
        }
        if !done.is_empty() {
            match queue.consumer.delete(&done).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::error!(rule = %queue.rule, failed = n, "rule queue delete failed")
                }
                Err(e) => {
                    tracing::error!(rule = %queue.rule, error = %e, "rule queue delete failed")
                }
            }
        }
        busy.fetch_sub(1, Ordering::AcqRel);
    }
}
