//! What each function does, run as a given user: the validator's deliveries, the processor's
//! batches (with the event source mapping's and `main.rs`'s SQS calls around them), the event
//! processor's recording, a redrive, the sweeper's repair of a stranded webhook, and each
//! function's paths for the every-action check.

use std::sync::Arc;

use payhook_aws::aws_config::SdkConfig;
use payhook_aws::aws_sdk_sqs::error::DisplayErrorContext;
use payhook_aws::consumer::Received;
use payhook_aws::dlq::redrive_deduplication_id;
use payhook_aws::moto::unique_name;
use payhook_aws::provision::StackNames;
use payhook_aws::{
    DynamoPaymentStore, DynamoStatusStore, EventBridgeBus, S3BlobStore, SqsConsumer, SqsFifoQueue,
    SsmSecretStore, s3_client,
};
use payhook_core::event_processor::EventProcessor;
use payhook_core::ports::{MessageVisibility, QueueError, SystemClock};
use payhook_core::processor::{ProcessorConfig, ProviderProcessor, RecordOutcome, delay_retries};
use payhook_core::status::{Status, StatusStore as _, Transition, TransitionOutcome};
use payhook_core::validator::{Accepted, Validator, WebhookRequest};
use payhook_core::{Headers, Provider};
use payhook_devkit::payloads::{self, PayloadSpec};
use payhook_testkit::conformance::workspace_root;
use serde_json::Value;

use crate::assert_all_published;
use crate::stage::Stage;

impl Stage {
    /// The validator, as `main.rs` wires it, running as `user`.
    pub(crate) async fn validator(&self, user: &str) -> Validator {
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
        .with_quarantine_blobs(Arc::new(S3BlobStore::new(
            s3_client(&sdk),
            self.names.quarantine_bucket(),
        )))
    }

    /// A signed Stripe delivery through the validator running as `user`.
    pub(crate) async fn deliver(&self, user: &str) -> Result<Accepted, String> {
        self.deliver_new(user, Provider::Stripe).await
    }

    /// A new signed delivery of `provider`'s default event through the validator running as
    /// `user`, then the provider's retry of it (a duplicate).
    pub(crate) async fn deliver_new(
        &self,
        user: &str,
        provider: Provider,
    ) -> Result<Accepted, String> {
        let payload = payloads::build(&PayloadSpec::new(provider)).expect("payload");
        self.deliver_body(user, provider, &payload.body).await
    }

    /// `body`, signed for `provider`, through the validator running as `user`, twice: the
    /// second is the provider's retry and must be a duplicate. Returns the first answer.
    pub(crate) async fn deliver_body(
        &self,
        user: &str,
        provider: Provider,
        body: &[u8],
    ) -> Result<Accepted, String> {
        let signer = self.config.signer().expect("signer");
        let headers: Headers = signer
            .sign(provider, body, payhook_devkit::unix_now())
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
    pub(crate) async fn process_queue(
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
    pub(crate) async fn try_process_queue(
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
        let deadline = payhook_devkit::unix_now() * 1000 + 60_000;
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
    pub(crate) async fn dead_letters(&self, provider: Provider) -> Vec<Received> {
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
    pub(crate) async fn redrive(&self, provider: Provider) -> usize {
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

    /// The validator's paths as `user`: a new Stripe webhook (recorded `QUEUED`), a PayPal
    /// transmission and a quarantined body, each with its retry. The queues are emptied after.
    pub(crate) async fn validator_paths(&self, user: &str) -> Result<(), String> {
        let result = async {
            let stripe = self.deliver_new(user, Provider::Stripe).await?;
            let status = self.status(stripe.webhook_id()).await;
            if status != Status::Queued {
                return Err(format!("{} is {status:?}, not QUEUED", stripe.webhook_id()));
            }
            self.deliver_new(user, Provider::Paypal).await?;
            // Kept in the item, and one too large for it, kept in the quarantine bucket.
            for body in [
                quarantined_body(&unique_name("evt_quarantine")),
                oversized_quarantined_body(&unique_name("evt_quarantine_big")),
            ] {
                match self
                    .deliver_body(user, Provider::Stripe, body.as_bytes())
                    .await?
                {
                    Accepted::Quarantined { .. } => {}
                    other => return Err(format!("not quarantined: {other:?}")),
                }
            }
            Ok(())
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
    /// status item expired, one taken over from a crashed attempt, and a record it cannot read
    /// (failed, given its retry delay). The queue is emptied after.
    pub(crate) async fn processor_paths(&self, user: &str) -> Result<(), String> {
        let result = async {
            // A new webhook, one whose item expired, one a crashed attempt had claimed.
            for (drop_items, crashed) in [(false, false), (true, false), (false, true)] {
                let accepted = self.deliver("webhook-validator").await.expect("validator");
                if crashed {
                    self.crashed_claim(accepted.webhook_id()).await;
                }
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
    pub(crate) async fn event_processor_paths(&self, user: &str) -> Result<(), String> {
        let rule_queues: Vec<String> = payhook_pattern::load_rules(&workspace_root().join("rules"))
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

    /// What a processor that crashed after claiming `webhook_id` leaves behind, written by the
    /// observer: the item `PROCESSING`, one attempt counted, under a lease that has ended.
    pub(crate) async fn crashed_claim(&self, webhook_id: &str) {
        let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&self.sdk("observer").await);
        let store = DynamoStatusStore::new(dynamodb).with_table_name(self.names.table.clone());
        let now_ms = payhook_devkit::unix_now() * 1000;
        let mut claim = Transition::new(Status::Processing, &[Status::Queued], now_ms);
        claim.lease_until_ms = Some(now_ms - 1);
        claim.increment_attempts = true;
        let outcome = store
            .transition(webhook_id, &claim)
            .await
            .expect("UpdateItem");
        assert!(
            matches!(outcome, TransitionOutcome::Applied(_)),
            "{outcome:?}"
        );
    }

    /// A message on `provider`'s queue that is no canonical event, sent by the observer.
    pub(crate) async fn send_unreadable(&self, provider: Provider) {
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

    /// The first event a rule delivered (its stand-in queue, read by the observer), recorded
    /// by the event processor running as `user`.
    pub(crate) async fn record_routed_event(&self, user: &str) -> Result<(), String> {
        let observer = payhook_aws::aws_sdk_sqs::Client::new(&self.sdk("observer").await);
        let mut delivered = None;
        for rule in payhook_pattern::load_rules(&workspace_root().join("rules")).expect("rules") {
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
pub(crate) fn quarantined_body(event_id: &str) -> String {
    format!(
        r#"{{"id":"{event_id}","object":"event","type":"payment_intent.succeeded","created":{},"data":{{"object":{{"id":"pi_iam"}}}}}}"#,
        payhook_devkit::unix_now()
    )
}

/// [`quarantined_body`] padded past what a status item keeps inline: the quarantine bucket
/// keeps it.
pub(crate) fn oversized_quarantined_body(event_id: &str) -> String {
    let mut event: Value = serde_json::from_str(&quarantined_body(event_id)).expect("JSON");
    event["pad"] = "x"
        .repeat(payhook_core::validator::MAX_QUARANTINED_BODY_BYTES + 1)
        .into();
    event.to_string()
}

/// A Stripe webhook the validator recorded `RECEIVED` 20 minutes ago with the message it was
/// about to send, and never sent (written by the observer).
async fn stranded_received(stage: &Stage) -> String {
    let payload = payloads::build(&PayloadSpec::new(Provider::Stripe)).expect("payload");
    let rates = payhook_core::currency::Rates::bundled().expect("rates");
    let Ok(payhook_core::normalise::Normalised::Event(mut event)) =
        payhook_core::normalise::normalise_with(Provider::Stripe, &payload.body, &rates)
    else {
        panic!("the default Stripe payload normalises");
    };
    let received_ms = payhook_devkit::unix_now() * 1000 - 20 * 60_000;
    event.received_at = Some(payhook_core::status::rfc3339_ms(received_ms));
    let mut item = payhook_core::status::StatusItem::new(
        event.webhook_id.clone(),
        Provider::Stripe,
        event.provider_event_type.clone(),
        Status::Received,
        received_ms,
    );
    item.payment_id = Some(event.payment_id.clone());
    item.message_body = Some(event.to_json());
    let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&stage.sdk("observer").await);
    DynamoStatusStore::new(dynamodb)
        .with_table_name(stage.names.table.clone())
        .put_new(&item)
        .await
        .expect("the stranded item");
    event.webhook_id
}

impl Stage {
    /// The sweeper's path as `user`, wired as its `main.rs` wires it: a webhook stranded
    /// `RECEIVED` is listed through the open-status index, read, enqueued again and marked
    /// `QUEUED`. A repair the policy refuses is an `Err`. The queue is emptied after.
    pub(crate) async fn sweeper_paths(&self, user: &str) -> Result<(), String> {
        let webhook_id = stranded_received(self).await;
        let sdk = self.sdk(user).await;
        let dynamodb = payhook_aws::aws_sdk_dynamodb::Client::new(&sdk);
        let payments =
            DynamoPaymentStore::new(dynamodb.clone()).with_table_name(self.names.table.clone());
        let store = DynamoStatusStore::new(dynamodb).with_table_name(self.names.table.clone());
        let mut queue = SqsFifoQueue::new(payhook_aws::aws_sdk_sqs::Client::new(&sdk));
        for provider in Provider::ALL {
            queue = queue.with_queue_url(provider, self.queue_url(provider).await);
        }
        let sweeper = payhook_core::sweeper::Sweeper::new(
            Arc::new(store),
            Arc::new(payments),
            Arc::new(queue),
            Arc::new(SystemClock),
            payhook_core::sweeper::SweeperConfig::default(),
        );
        let result = match sweeper.sweep().await {
            Ok(report) => match report.stuck.iter().find(|s| s.webhook_id == webhook_id) {
                Some(stuck) if stuck.action == payhook_core::sweeper::Action::Reenqueued => Ok(()),
                other => Err(format!("{webhook_id} not re-enqueued: {other:?}")),
            },
            Err(e) => Err(format!("{e:?}")),
        };
        self.purge(&[self.names.queue(Provider::Stripe)]).await;
        result
    }
}

/// A provider processor as `main.rs` wires it, on `sdk`'s credentials.
pub(crate) fn processor(
    sdk: &SdkConfig,
    names: &StackNames,
    provider: Provider,
) -> ProviderProcessor {
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
