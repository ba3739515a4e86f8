//! The event-processor Lambda's adapter: the routed event (`{"rule", "event"}`, made by each
//! rule target's input transformer) through [`payhook_core::event_processor::EventProcessor`],
//! inside a telemetry invocation, and its configuration from the environment ([`Config`]).

pub use payhook_aws::env::STATUS_TABLE_ENV;
use payhook_aws::env::{Env, EnvError};
use payhook_core::event_processor::{
    EventProcessor, EventProcessorError, ProcessedOutcome, RoutedEvent,
};
use payhook_telemetry::{Annotation, ClassifiedError, Dimension, Invocation, Metric};

/// The event processor's configuration, read once at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The status table's name.
    pub status_table: String,
}

impl Config {
    /// Reads [`STATUS_TABLE_ENV`] through `lookup` (trimmed; empty means unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, EnvError> {
        let env = Env::new(lookup);
        Ok(Config {
            status_table: env.status_table(),
        })
    }
}

/// A failed delivery, classified for the runtime: retryable ones make EventBridge (or the
/// local bus) deliver again.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryFailed(pub EventProcessorError);

impl std::fmt::Display for DeliveryFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DeliveryFailed {}

impl ClassifiedError for DeliveryFailed {
    fn code(&self) -> &'static str {
        self.0.code()
    }

    fn retryable(&self) -> bool {
        self.0.is_retryable()
    }
}

/// Parses a delivered payload into a routed event.
pub fn routed_event(payload: serde_json::Value) -> Result<RoutedEvent, DeliveryFailed> {
    serde_json::from_value(payload)
        .map_err(|e| DeliveryFailed(EventProcessorError::Malformed(e.to_string())))
}

/// Records one routed event inside a telemetry invocation: the correlation id is the webhook
/// id (the EventBridge event id when the detail names none); `EventsProcessed` (by rule), `DuplicateEventsAbsorbed` and
/// `EndToEndLatency` are counted.
pub async fn invoke(
    processor: &EventProcessor,
    invocation: Invocation,
    routed: &RoutedEvent,
) -> Result<ProcessedOutcome, DeliveryFailed> {
    let inv = invocation.handle();
    let detail = routed.event.get("detail");
    // The webhook's id correlates its whole story across the three functions; the EventBridge
    // event id stays on the lines as `event_id`.
    if let Some(id) = routed.event.get("id").and_then(|v| v.as_str()) {
        inv.set_correlation_id(id);
        inv.append_key("event_id", id);
    }
    if let Some(webhook_id) = detail
        .and_then(|d| d.get("webhook_id"))
        .and_then(|v| v.as_str())
    {
        inv.set_correlation_id(webhook_id);
    }
    inv.append_key("rule", &routed.rule);
    for (key, annotation) in [
        ("webhook_id", Annotation::WebhookId),
        ("provider", Annotation::Provider),
        ("event_type", Annotation::EventType),
        ("tier", Annotation::Tier),
    ] {
        if let Some(v) = detail.and_then(|d| d.get(key)).and_then(|v| v.as_str()) {
            inv.annotate(annotation, v);
        }
    }
    invocation
        .run(async {
            let outcome = processor.handle(routed).await.map_err(DeliveryFailed)?;
            match &outcome {
                ProcessedOutcome::Recorded {
                    webhook_id,
                    provider,
                    rule,
                    end_to_end_ms,
                } => {
                    inv.count(Metric::EventsProcessed, &[(Dimension::Rule, rule)]);
                    if let Some(ms) = end_to_end_ms {
                        inv.metric(
                            Metric::EndToEndLatency,
                            *ms as f64,
                            &[(Dimension::Provider, provider.as_str())],
                        );
                    }
                    tracing::info!(webhook_id, rule, end_to_end_ms, "recorded PROCESSED");
                }
                ProcessedOutcome::Absorbed { webhook_id, rule } => {
                    inv.count(Metric::DuplicateEventsAbsorbed, &[]);
                    tracing::info!(webhook_id, rule, "repeated delivery absorbed");
                }
            }
            Ok(outcome)
        })
        .await
}

/// The function as deployed: the event processor over the status table, built once at cold
/// start by `main.rs`.
#[derive(Debug)]
pub struct Lambda {
    processor: EventProcessor,
    function: payhook_telemetry::FunctionTelemetry,
}

impl Lambda {
    /// The event processor over the status table. No I/O: the client connects on first use.
    pub fn compose(
        aws: &payhook_aws::Adapters,
        config: Config,
        function: payhook_telemetry::FunctionTelemetry,
    ) -> Lambda {
        Lambda {
            processor: EventProcessor::new(
                aws.status_store(&config.status_table),
                std::sync::Arc::new(payhook_core::ports::SystemClock),
            ),
            function,
        }
    }

    /// One routed event, inside its telemetry invocation; a retryable failure is returned as
    /// the Lambda error that makes EventBridge deliver again.
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<(), lambda_runtime::Diagnostic> {
        use payhook_telemetry::lambda::{diagnostic, invocation_context};
        let invocation = self.function.start_with(invocation_context(&event.context));
        let routed = routed_event(event.payload).map_err(|e| diagnostic(&e))?;
        invoke(&self.processor, invocation, &routed)
            .await
            .map(|_| ())
            .map_err(|e| diagnostic(&e))
    }
}
