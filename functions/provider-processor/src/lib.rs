//! The provider processor Lambda's adapter between SQS event-source-mapping batches and the
//! [`payhook_core::processor::ProviderProcessor`] handler, and its configuration from the
//! environment. The local stack builds the same `QueueRecord`s from its in-memory queues.

use std::str::FromStr;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use payhook_core::Provider;
use payhook_core::processor::{
    BatchOutcome, DEFAULT_MAX_RECEIVE_COUNT, ProcessError, ProcessorConfig, ProviderProcessor,
    QueueRecord, RecordOutcome, TierThresholds,
};
use payhook_telemetry::{Annotation, Dimension, Invocation, Metric};
use tracing::Instrument as _;

/// A configuration value is missing or wrong (the function cannot start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

fn parse<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
) -> Result<T, ConfigError> {
    match lookup(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("{key}=`{v}` is not valid"))),
    }
}

/// Reads `PROVIDER`, `EVENT_BUS_NAME`, `MAX_RECEIVE_COUNT`, `TIER_HIGH_MIN`, `TIER_MEDIUM_MIN`.
pub fn config_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ProcessorConfig, ConfigError> {
    let provider: Provider = lookup("PROVIDER")
        .ok_or_else(|| ConfigError("PROVIDER is not set (stripe, paypal or square)".into()))?
        .parse()
        .map_err(|e| ConfigError(format!("PROVIDER: {e}")))?;
    let mut config = ProcessorConfig::new(provider);
    if let Some(bus) = lookup("EVENT_BUS_NAME") {
        config.event_bus = bus;
    }
    config.max_receive_count = parse(&lookup, "MAX_RECEIVE_COUNT", DEFAULT_MAX_RECEIVE_COUNT)?;
    let defaults = TierThresholds::default();
    config.tiers = TierThresholds {
        high_min: parse(&lookup, "TIER_HIGH_MIN", defaults.high_min)?,
        medium_min: parse(&lookup, "TIER_MEDIUM_MIN", defaults.medium_min)?,
    };
    if config.tiers.medium_min > config.tiers.high_min {
        return Err(ConfigError("TIER_MEDIUM_MIN is above TIER_HIGH_MIN".into()));
    }
    Ok(config)
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
        if let Some(lag) = queue_lag_ms(record, now_ms) {
            inv.metric(Metric::QueueLag, lag, &p);
        }
        match result {
            RecordOutcome::Published {
                webhook_id,
                event_type,
                tier,
                amount,
            } => {
                inv.count(Metric::RecordsProcessed, &p);
                inv.count(
                    Metric::EventsPublished,
                    &[
                        (Dimension::Provider, provider),
                        (Dimension::EventType, event_type.as_str()),
                    ],
                );
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
                    tracing::warn!(message_id, webhook_id, provider, error_code = error.code(), error = %error, receive_count = record.receive_count, "record failed; SQS will deliver it again");
                }
            }
        }
    }
    drop(_in_invocation);
    invocation.finish_ok();
    outcome
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
