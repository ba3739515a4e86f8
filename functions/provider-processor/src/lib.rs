//! The provider processor Lambda's adapter between SQS event-source-mapping batches and the
//! [`payhook_core::processor::ProviderProcessor`] handler, and its configuration from the
//! environment ([`Config`]). The local stack builds the same `QueueRecord`s from its in-memory
//! queues.

use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
pub use payhook_aws::env::STATUS_TABLE_ENV;
use payhook_aws::env::{Env, EnvError};
use payhook_core::Provider;
use payhook_core::processor::{
    BatchOutcome, DEFAULT_MAX_RECEIVE_COUNT, ProcessError, ProcessorConfig, ProviderProcessor,
    QueueRecord, RecordOutcome, RecordTracing, TierThresholds,
};
use payhook_telemetry::{Annotation, Dimension, Invocation, InvocationHandle, Metric};
use tracing::Instrument as _;

/// The provider whose queue this deployment drains (required).
pub const PROVIDER_ENV: &str = "PROVIDER";
/// The EventBridge bus to publish to (default `payment-events`).
pub const EVENT_BUS_NAME_ENV: &str = "EVENT_BUS_NAME";
/// The queue's redrive `maxReceiveCount`: the receive on which a failure is final (default
/// [`DEFAULT_MAX_RECEIVE_COUNT`]).
pub const MAX_RECEIVE_COUNT_ENV: &str = "MAX_RECEIVE_COUNT";
/// The smallest amount (major units) of the `high` tier.
pub const TIER_HIGH_MIN_ENV: &str = "TIER_HIGH_MIN";
/// The smallest amount (major units) of the `medium` tier.
pub const TIER_MEDIUM_MIN_ENV: &str = "TIER_MEDIUM_MIN";

/// The provider processor's configuration, read once at cold start.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The handler's: provider, bus, receive count and tiers.
    pub processor: ProcessorConfig,
    /// The status table's name.
    pub status_table: String,
}

impl Config {
    /// Reads [`PROVIDER_ENV`], [`STATUS_TABLE_ENV`], [`EVENT_BUS_NAME_ENV`],
    /// [`MAX_RECEIVE_COUNT_ENV`], [`TIER_HIGH_MIN_ENV`] and [`TIER_MEDIUM_MIN_ENV`] through
    /// `lookup` (values trimmed, empty ones unset); an error names the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, EnvError> {
        let env = Env::new(lookup);
        let expected = "stripe, paypal or square";
        let provider = env.required(PROVIDER_ENV, expected)?;
        let provider: Provider = provider.parse().map_err(|e| EnvError::Invalid {
            name: PROVIDER_ENV,
            value: provider,
            reason: format!("{e}"),
        })?;
        let mut processor = ProcessorConfig::new(provider);
        if let Some(bus) = env.get(EVENT_BUS_NAME_ENV) {
            processor.event_bus = bus;
        }
        processor.max_receive_count =
            env.parse_or(MAX_RECEIVE_COUNT_ENV, DEFAULT_MAX_RECEIVE_COUNT)?;
        if processor.max_receive_count == 0 {
            return Err(invalid(MAX_RECEIVE_COUNT_ENV, "0", "must be at least 1"));
        }
        processor.tiers = tiers(&env)?;
        Ok(Config {
            processor,
            status_table: env.status_table(),
        })
    }
}

/// The tier thresholds: finite, not negative, `medium` no higher than `high`.
fn tiers(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<TierThresholds, EnvError> {
    let defaults = TierThresholds::default();
    let tiers = TierThresholds {
        high_min: env.parse_or(TIER_HIGH_MIN_ENV, defaults.high_min)?,
        medium_min: env.parse_or(TIER_MEDIUM_MIN_ENV, defaults.medium_min)?,
    };
    for (name, value) in [
        (TIER_HIGH_MIN_ENV, tiers.high_min),
        (TIER_MEDIUM_MIN_ENV, tiers.medium_min),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(invalid(
                name,
                &value.to_string(),
                "must be a finite amount of 0 or more",
            ));
        }
    }
    if tiers.medium_min > tiers.high_min {
        return Err(invalid(
            TIER_MEDIUM_MIN_ENV,
            &tiers.medium_min.to_string(),
            &format!("is above {TIER_HIGH_MIN_ENV} ({})", tiers.high_min),
        ));
    }
    Ok(tiers)
}

fn invalid(name: &'static str, value: &str, reason: &str) -> EnvError {
    EnvError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// One SQS message as the processor sees it.
pub fn queue_record(message: &SqsMessage) -> QueueRecord {
    QueueRecord {
        message_id: message.message_id.clone().unwrap_or_default(),
        body: message.body.clone().unwrap_or_default(),
        group_id: message
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_default(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1),
        trace_header: message.attributes.get("AWSTraceHeader").cloned(),
    }
}

/// `(message_id, receipt_handle)` of every record of a batch, for [`delay_retries`], and the
/// URL of the queue they came from (from the first record's `eventSourceARN`).
///
/// [`delay_retries`]: payhook_core::processor::delay_retries
pub fn deliveries(event: &SqsEvent) -> (Option<String>, Vec<(String, String)>) {
    let queue_url = event
        .records
        .first()
        .and_then(|m| m.event_source_arn.as_deref())
        .and_then(payhook_aws::consumer::queue_url_of_arn);
    let handles = event
        .records
        .iter()
        .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
        .collect();
    (queue_url, handles)
}

/// Every record of a batch, in order.
pub fn queue_records(event: &SqsEvent) -> Vec<QueueRecord> {
    event.records.iter().map(queue_record).collect()
}

/// The partial batch response: the failed records' message ids.
pub fn batch_response(outcome: &BatchOutcome) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome
        .failed_message_ids()
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// How the processor traces its records in Lambda and in the local stack: each record in a
/// subsegment of the webhook's own trace (its `AWSTraceHeader`), its log lines correlated by
/// the webhook id and that trace's id, and `PutEvents` carrying a header that names the record's
/// span, so the event processor continues the same trace.
pub fn record_tracing() -> RecordTracing {
    RecordTracing {
        span: Arc::new(|record: &QueueRecord, webhook_id: Option<&str>| {
            payhook_telemetry::webhook_record_span(
                &record.message_id,
                webhook_id,
                record.trace_header.as_deref(),
            )
        }),
        trace_header: Arc::new(payhook_telemetry::eventbridge_trace_header),
    }
}

/// Runs one batch through the processor inside a telemetry invocation: each record is logged
/// with its SQS message id as the correlation id, and the batch is counted
/// (`RecordsProcessed`, `RecordsSkipped`, `RecordsFailed`, `EventsPublished` by event type,
/// `PublishFailures`, `PaymentAmount` and `PaymentsByTier` by tier, `MessagesToDlq`).
/// `deadline_ms` is when the invocation ends (the claims' lease).
pub async fn invoke(
    processor: &ProviderProcessor,
    invocation: Invocation,
    records: &[QueueRecord],
    deadline_ms: i64,
) -> BatchOutcome {
    let inv = invocation.handle();
    let provider = processor.config().provider.as_str();
    inv.annotate(Annotation::Provider, provider);
    if let Some(first) = records.first() {
        inv.set_correlation_id(&first.message_id);
    }
    let outcome = processor
        .handle_batch(records, deadline_ms)
        .instrument(invocation.span().clone())
        .await;
    let span = invocation.span().clone();
    let _in_invocation = span.enter();
    let p = [(Dimension::Provider, provider)];
    let now_ms = payhook_core::ports::Clock::now_ms(&payhook_core::ports::SystemClock);
    for ((message_id, result), record) in outcome.records.iter().zip(records) {
        // The outcome's lines belong to the webhook's story, like those written handling it.
        let _webhook = outcome_webhook_id(result).map(|id| {
            payhook_telemetry::webhook_scope(id, record.trace_header.as_deref()).entered()
        });
        if let Some(lag) = queue_lag_ms(record, now_ms) {
            inv.metric(Metric::QueueLag, lag, &p);
        }
        record_outcome(&inv, provider, message_id, result, record);
    }
    drop(_in_invocation);
    invocation.finish_ok();
    outcome
}

/// Counts and logs one record's outcome.
fn record_outcome(
    inv: &InvocationHandle,
    provider: &str,
    message_id: &str,
    result: &RecordOutcome,
    record: &QueueRecord,
) {
    let p = [(Dimension::Provider, provider)];
    match result {
        RecordOutcome::Published {
            webhook_id,
            event_type,
            business_events,
            tier,
            amount,
        } => {
            inv.count(Metric::RecordsProcessed, &p);
            for business_event in business_events {
                inv.count(
                    Metric::EventsPublished,
                    &[
                        (Dimension::Provider, provider),
                        (Dimension::EventType, business_event.as_str()),
                    ],
                );
            }
            inv.metric(
                Metric::PaymentAmount,
                *amount,
                &[
                    (Dimension::Provider, provider),
                    (Dimension::Tier, tier.as_str()),
                ],
            );
            inv.count(Metric::PaymentsByTier, &[(Dimension::Tier, tier.as_str())]);
            tracing::info!(
                message_id,
                webhook_id,
                provider,
                event_type = event_type.as_str(),
                tier = tier.as_str(),
                receive_count = record.receive_count,
                "published to the bus"
            );
        }
        RecordOutcome::Settled { webhook_id, effect } => {
            inv.count(Metric::RecordsProcessed, &p);
            tracing::info!(
                message_id,
                webhook_id,
                provider,
                payment_effect = effect.as_str(),
                "nothing new for its payment; processed without publishing"
            );
        }
        RecordOutcome::Skipped { webhook_id, status } => {
            inv.count(Metric::RecordsSkipped, &p);
            tracing::info!(
                message_id,
                webhook_id,
                provider,
                status = status.as_str(),
                "already handled; acknowledged without publishing"
            );
        }
        RecordOutcome::Failed {
            webhook_id,
            error,
            final_attempt,
            retry_after_secs,
        } => {
            inv.count(Metric::RecordsFailed, &p);
            if matches!(
                error,
                ProcessError::Bus(_) | ProcessError::EntryRejected { .. }
            ) {
                inv.count(Metric::PublishFailures, &p);
            }
            let webhook_id = webhook_id.as_deref().unwrap_or("");
            if *final_attempt {
                inv.count(Metric::MessagesToDlq, &p);
                tracing::error!(message_id, webhook_id, provider, error_code = error.code(), error = %error, receive_count = record.receive_count, "last attempt failed; the message goes to the DLQ");
            } else {
                tracing::warn!(message_id, webhook_id, provider, error_code = error.code(), error = %error, receive_count = record.receive_count, retry_after_secs, "record failed; SQS will deliver it again after the retry delay");
            }
        }
    }
}

/// The webhook a record's outcome is about, when known.
fn outcome_webhook_id(outcome: &RecordOutcome) -> Option<&str> {
    match outcome {
        RecordOutcome::Published { webhook_id, .. }
        | RecordOutcome::Settled { webhook_id, .. }
        | RecordOutcome::Skipped { webhook_id, .. } => Some(webhook_id),
        RecordOutcome::Failed { webhook_id, .. } => webhook_id.as_deref(),
    }
}

/// Milliseconds from first receipt (the event's `received_at`) to now: how long the webhook
/// waited in the queue, retries included.
fn queue_lag_ms(record: &QueueRecord, now_ms: i64) -> Option<f64> {
    #[derive(serde::Deserialize)]
    struct Received<'a> {
        #[serde(borrow)]
        received_at: Option<std::borrow::Cow<'a, str>>,
    }
    let received: Received<'_> = serde_json::from_str(&record.body).ok()?;
    let at = payhook_core::event_processor::parse_rfc3339_ms(&received.received_at?)?;
    Some((now_ms - at).max(0) as f64)
}

/// The function as deployed: the processor composed from AWS adapters, built once at cold start
/// by `main.rs`.
#[derive(Debug)]
pub struct Lambda {
    processor: ProviderProcessor,
    sqs: payhook_aws::SdkClient<payhook_aws::aws_sdk_sqs::Client>,
    function: payhook_telemetry::FunctionTelemetry,
}

impl Lambda {
    /// The processor over the status table, the payment records, the bus and the SQS client
    /// that delays failed records' retries. No I/O: clients connect on first use.
    pub fn compose(
        aws: &payhook_aws::Adapters,
        config: Config,
        function: payhook_telemetry::FunctionTelemetry,
    ) -> Lambda {
        let processor = ProviderProcessor::new(
            aws.status_store(&config.status_table),
            aws.payment_store(&config.status_table),
            aws.event_bus(),
            Arc::new(payhook_core::ports::SystemClock),
            config.processor,
        )
        .with_tracing(record_tracing());
        Lambda {
            processor,
            sqs: aws.sqs(),
            function,
        }
    }

    /// One SQS batch, inside its telemetry invocation. The claims' lease ends when this
    /// invocation does (or when the messages become visible again, if sooner); failed records
    /// come back after their short retry delay, not the queue's visibility timeout.
    pub async fn handle(&self, event: lambda_runtime::LambdaEvent<SqsEvent>) -> SqsBatchResponse {
        let invocation = self
            .function
            .start_with(payhook_telemetry::lambda::invocation_context(
                &event.context,
            ));
        let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        let records = queue_records(&event.payload);
        let outcome = invoke(&self.processor, invocation, &records, deadline_ms).await;
        if let (Some(url), deliveries) = deliveries(&event.payload) {
            let queue = payhook_aws::SqsConsumer::new((*self.sqs).clone(), url);
            payhook_core::processor::delay_retries(&outcome, &deliveries, &queue).await;
        }
        batch_response(&outcome)
    }
}
