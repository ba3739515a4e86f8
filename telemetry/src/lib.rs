//! `payhook-telemetry`: Powertools-compatible logs, EMF metrics and X-Ray traces for payhook's
//! Lambdas, and the per-invocation wrapper that ties them together.
//!
//! Every function (and `payhook serve`, which runs the same handlers in-process) uses it the
//! same way: build one [`Telemetry`] per process, one [`FunctionTelemetry`] per function, and run
//! each invocation inside an [`Invocation`]. Inside, handlers log with plain `tracing` macros,
//! record catalogued metrics through the [`InvocationHandle`], and wrap AWS calls in
//! [`aws_call_span`].
//!
//! ```
//! use payhook_telemetry::{
//!     Annotation, ClassifiedError, Dimension, FunctionConfig, FunctionKind, MemorySink, Metric,
//!     Telemetry, TraceExport,
//! };
//!
//! #[derive(Debug)]
//! struct QueueDown;
//! impl std::fmt::Display for QueueDown {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("SendMessage timed out")
//!     }
//! }
//! impl std::error::Error for QueueDown {}
//! impl ClassifiedError for QueueDown {
//!     fn code(&self) -> &'static str { "queue_unavailable" }
//!     fn retryable(&self) -> bool { true }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! // The local stack's set-up; a Lambda calls `Telemetry::init_lambda()` instead.
//! let (logs, metrics, segments) = (MemorySink::new(), MemorySink::new(), MemorySink::new());
//! let telemetry = Telemetry::builder()
//!     .log_sink(logs.clone())
//!     .trace_export(TraceExport::sink(segments.clone()))
//!     .local_root_segments(true)
//!     .build()?;
//! let _guard = telemetry.set_default();
//! let validator = telemetry.function(
//!     FunctionConfig::new(FunctionKind::WebhookValidator).metrics_sink(metrics.clone()),
//! );
//!
//! let invocation = validator.start("req-1", None);
//! let inv = invocation.handle();
//! invocation
//!     .run(async {
//!         inv.annotate(Annotation::Provider, "stripe");
//!         inv.count(Metric::WebhooksReceived, &[(Dimension::Provider, "stripe")]);
//!         tracing::info!(webhook_id = "stripe:evt_1", "webhook accepted");
//!         Ok::<_, QueueDown>(())
//!     })
//!     .await?;
//!
//! let line = &logs.json()?[0];
//! assert_eq!(line["function_request_id"], "req-1");
//! assert_eq!(line["provider"], "stripe");
//! assert!(metrics.lines().iter().any(|doc| doc.contains("\"WebhooksReceived\":1")));
//! // One document: the local function segment with the handler subsegment nested in it.
//! assert_eq!(segments.json()?[0]["subsegments"][0]["name"], "## webhook-validator");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
#![doc = include_str!("../docs/provenance.md")]

pub mod catalogue;
pub mod emf;
pub mod error;
pub mod invocation;
mod json;
pub mod lambda;
pub mod logger;
pub mod metrics;
pub mod redact;
mod segment;
pub mod sink;
mod span_layer;
pub mod tracer;

pub use catalogue::{
    Dimension, FunctionKind, Metric, MetricDef, Resolution, Unit, catalogue, catalogue_json,
};
pub use error::TelemetryError;
pub use invocation::{
    ClassifiedError, FunctionConfig, FunctionTelemetry, Invocation, InvocationContext,
    InvocationHandle, Telemetry, TelemetryBuilder,
};
pub use logger::LoggerConfig;
pub use metrics::{MetricSet, MetricsConfig};
pub use sink::{DiscardSink, FileSink, MemorySink, Sink, StdoutSink};
pub use tracer::{
    Annotation, RootSampling, TraceExport, TraceParent, annotate_current_span, aws_call_span,
    correlation_scope, eventbridge_trace_header, mark_span_failed, parent_from_trace_header,
    record_span, trace_header_for_current_span, webhook_record_span, webhook_scope,
};
