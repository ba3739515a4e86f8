//! The per-invocation machinery, what Powertools' decorators do: set the invocation context for
//! log lines, count the cold start, buffer metrics, open the handler's subsegment, and on the
//! way out (success, error, panic or cancellation) log the failure, close the subsegment and
//! flush the metrics once.
//!
//! [`Telemetry`] is process-wide (the `tracing` subscriber, the log sink, the X-Ray exporter);
//! [`FunctionTelemetry`] is one function's view of it (service, names, metrics namespace and
//! sink, cold-start flag); an [`Invocation`] is one call. In Lambda, [`crate::lambda::service`]
//! drives it; `payhook serve` calls [`FunctionTelemetry::start`] and [`Invocation::run`] around
//! the in-process handlers, with file sinks.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Span as _, SpanContext, SpanKind, Status, TraceFlags, TraceState, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_sdk::trace::IdGenerator as _;
use opentelemetry_sdk::trace::SdkTracer;
use serde::Serialize;
use tracing::field::Empty;
use tracing::instrument::WithSubscriber;
use tracing::level_filters::LevelFilter;
use tracing::{Dispatch, Instrument, Level};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

use crate::catalogue::{Dimension, FunctionKind, Metric};
use crate::error::TelemetryError;
use crate::logger::{
    INVOCATION_TARGET, LogFilter, LogLayer, LoggerConfig, ProcessInfo, render_context_keys,
    with_pending_invocation, write_direct,
};
use crate::metrics::{
    DEFAULT_NAMESPACE, DirectiveCache, MetricRejected, MetricSet, MetricsConfig, NAMESPACE_ENV,
    cold_start_document,
};
use crate::redact::{REDACTED, is_sensitive_field, redact_json, redact_text};
use crate::sink::{Sink, StdoutSink};
use crate::span_layer::{self, SpanLayer};
use crate::tracer::{
    Annotation, RootSampler, RootSampling, TraceExport, Tracing, build_provider,
    parent_from_trace_header, xray_trace_id,
};

/// `POWERTOOLS_SERVICE_NAME`: the `service` key of logs and dimension of metrics.
pub const SERVICE_NAME_ENV: &str = "POWERTOOLS_SERVICE_NAME";
/// The Lambda function name variable.
pub const FUNCTION_NAME_ENV: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// The Lambda memory size variable.
pub const MEMORY_SIZE_ENV: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// The Lambda log group variable (linked from segments).
pub const LOG_GROUP_ENV: &str = "AWS_LAMBDA_LOG_GROUP_NAME";
/// The `service` used when nothing names one.
pub const DEFAULT_SERVICE: &str = "payhook";

/// An error that knows how it should be reported: a stable code for logs, metrics and HTTP
/// bodies, and whether retrying the same input can succeed (Lambda `Retryable` /
/// `NonRetryable`).
pub trait ClassifiedError: fmt::Display {
    /// A stable, machine-readable code (`invalid_signature`, `dynamodb_unavailable`, …).
    fn code(&self) -> &'static str;
    /// Whether the same input may succeed if tried again (a dependency was down, a lease was
    /// held) rather than failing again for the same reason (the input is bad).
    fn retryable(&self) -> bool;
}

impl<T: ClassifiedError + ?Sized> ClassifiedError for &T {
    fn code(&self) -> &'static str {
        (**self).code()
    }
    fn retryable(&self) -> bool {
        (**self).retryable()
    }
}

impl<T: ClassifiedError + ?Sized> ClassifiedError for Box<T> {
    fn code(&self) -> &'static str {
        (**self).code()
    }
    fn retryable(&self) -> bool {
        (**self).retryable()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A uniform number in `[0, 1)` for the debug-sampling draw (not cryptographic; std's
/// `RandomState` is randomly keyed per thread and changes key on every call).
fn random_unit() -> f64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Builds a [`Telemetry`].
#[derive(Debug)]
pub struct TelemetryBuilder {
    service: String,
    function_name: Option<String>,
    memory_size_mb: Option<u32>,
    log_group: Option<String>,
    logger: LoggerConfig,
    log_sink: Arc<dyn Sink>,
    trace_export: TraceExport,
    local_root_segments: bool,
    local_root_sampling: RootSampling,
}

impl Default for TelemetryBuilder {
    fn default() -> Self {
        Self {
            service: DEFAULT_SERVICE.to_owned(),
            function_name: None,
            memory_size_mb: None,
            log_group: None,
            logger: LoggerConfig::default(),
            log_sink: Arc::new(StdoutSink),
            trace_export: TraceExport::Disabled,
            local_root_segments: false,
            local_root_sampling: RootSampling::All,
        }
    }
}

impl TelemetryBuilder {
    /// Reads what Lambda and Powertools put in the environment: the service name, the
    /// function's name, memory size and log group, the logger variables, and the X-Ray daemon
    /// address (tracing is switched on).
    pub fn from_env(mut self) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(s) = var(SERVICE_NAME_ENV) {
            self.service = s;
        }
        self.function_name = var(FUNCTION_NAME_ENV);
        self.memory_size_mb = var(MEMORY_SIZE_ENV).and_then(|m| m.trim().parse().ok());
        self.log_group = var(LOG_GROUP_ENV);
        self.logger = LoggerConfig::from_env();
        self.trace_export = TraceExport::daemon_from_env();
        self
    }

    /// The `service` of log lines written outside any invocation.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// The logger's level, sampling and event logging.
    pub fn logger(mut self, logger: LoggerConfig) -> Self {
        self.logger = logger;
        self
    }

    /// Where log lines go (stdout by default).
    pub fn log_sink(mut self, sink: impl Sink) -> Self {
        self.log_sink = Arc::new(sink);
        self
    }

    /// Where segment documents go (disabled by default; [`TelemetryBuilder::from_env`] picks
    /// the daemon).
    pub fn trace_export(mut self, export: TraceExport) -> Self {
        self.trace_export = export;
        self
    }

    /// When `true`, an invocation without a trace header starts its own trace with a segment
    /// named after the function, standing in for the segment Lambda writes. For the local
    /// stack; leave it off in Lambda.
    pub fn local_root_segments(mut self, on: bool) -> Self {
        self.local_root_segments = on;
        self
    }

    /// Which of those local root traces are sampled (all of them by default).
    pub fn local_root_sampling(mut self, sampling: RootSampling) -> Self {
        self.local_root_sampling = sampling;
        self
    }

    /// Builds the subscriber and the exporter. Install the subscriber with
    /// [`Telemetry::set_global_default`] (or [`Telemetry::set_default`] in tests).
    pub fn build(self) -> Result<Telemetry, TelemetryError> {
        let tracing = build_provider(&self.trace_export, self.log_group.as_deref())?;
        let tracer = tracing
            .as_ref()
            .map(|t| t.provider.tracer("payhook-telemetry"));
        let process = Arc::new(ProcessInfo {
            service: self.service,
            sample_rate: self.logger.sample_rate(),
            function_name: self.function_name,
            memory_size_mb: self.memory_size_mb,
            invoked: AtomicBool::new(false),
        });
        let base = self.logger.env_filter();
        let info_enabled = base
            .max_level_hint()
            .is_none_or(|max| max >= LevelFilter::INFO);
        // One per-layer filter for both layers: the log filter lets every payhook span through
        // (so their fields reach the lines logged inside them), which includes every traced
        // one, and the span layer keeps a record only of a traced span. A second filter for the
        // span layer alone cost a filter check and a registry lookup at every span's creation,
        // enter, exit and close.
        let log_layer = LogLayer {
            sink: self.log_sink.clone(),
            process: process.clone(),
        };
        let span_layer = tracing.as_ref().map(|t| SpanLayer::new(t.buffer.clone()));
        let subscriber = tracing_subscriber::registry().with(
            log_layer.and_then(span_layer).with_filter(LogFilter {
                base,
                sampling: self.logger.sample_rate() > 0.0,
            }),
        );
        let dispatch = Dispatch::new(subscriber);
        for warning in self.logger.warnings() {
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::warn!(target: "payhook_telemetry::config", "{warning}");
            });
        }
        Ok(Telemetry {
            inner: Arc::new(TelemetryInner {
                dispatch,
                tracing,
                tracer,
                log_sink: self.log_sink,
                process,
                sample_rate: self.logger.sample_rate(),
                log_event: self.logger.log_event() && info_enabled,
                local_root_segments: self.local_root_segments,
                root_sampler: RootSampler::new(self.local_root_sampling),
            }),
        })
    }
}

struct TelemetryInner {
    dispatch: Dispatch,
    tracing: Option<Tracing>,
    tracer: Option<SdkTracer>,
    log_sink: Arc<dyn Sink>,
    process: Arc<ProcessInfo>,
    sample_rate: f64,
    log_event: bool,
    local_root_segments: bool,
    root_sampler: RootSampler,
}

/// The process-wide telemetry: the `tracing` subscriber that writes log lines and exports
/// spans. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<TelemetryInner>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("service", &self.inner.process.service)
            .field("tracing", &self.inner.tracing.is_some())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// A builder with stdout logs and tracing off.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::default()
    }

    /// What a Lambda function needs: configuration from the environment, logs on stdout, spans
    /// to the X-Ray daemon, installed as the global subscriber.
    pub fn init_lambda() -> Result<Telemetry, TelemetryError> {
        let telemetry = Telemetry::builder().from_env().build()?;
        telemetry.set_global_default()?;
        Ok(telemetry)
    }

    /// Installs the subscriber for the whole process.
    pub fn set_global_default(&self) -> Result<(), TelemetryError> {
        tracing::dispatcher::set_global_default(self.inner.dispatch.clone())
            .map_err(|_| TelemetryError::SubscriberAlreadySet)
    }

    /// Installs the subscriber for the current thread until the guard is dropped (tests,
    /// benches, single-threaded runtimes).
    pub fn set_default(&self) -> tracing::dispatcher::DefaultGuard {
        tracing::dispatcher::set_default(&self.inner.dispatch)
    }

    /// The subscriber, to install some other way.
    pub fn dispatch(&self) -> &Dispatch {
        &self.inner.dispatch
    }

    /// One function's telemetry.
    pub fn function(&self, config: FunctionConfig) -> FunctionTelemetry {
        let metrics = config.metrics_config();
        FunctionTelemetry {
            shared: Arc::new(FunctionShared {
                handler_name: format!("## {}", config.kind.as_str()),
                kind: config.kind,
                service: config.service,
                function_name: config.function_name,
                memory_size_mb: config.memory_size_mb.or(self.inner.process.memory_size_mb),
                function_arn: config.function_arn,
                metrics,
                metrics_sink: config.metrics_sink,
                cold: AtomicBool::new(true),
                flush: Mutex::new(Flush {
                    buf: String::with_capacity(1024),
                    ..Flush::default()
                }),
            }),
            telemetry: self.clone(),
        }
    }

    /// Exports the spans that have ended and not been exported yet, except those whose local
    /// parent is still open (another invocation's, in a process running several at once): they
    /// wait for it, up to ten seconds, to be nested in its document. Every finished invocation
    /// calls it; call it yourself after traced work outside invocations.
    pub fn flush(&self) {
        if let Some(t) = &self.inner.tracing {
            let _ = t.buffer.flush();
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(&self) {
        if let Some(t) = &self.inner.tracing {
            let _ = t.provider.shutdown();
        }
    }
}

/// One function's configuration: which function it is, its service and names, and where its
/// metrics go.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    kind: FunctionKind,
    service: String,
    function_name: String,
    memory_size_mb: Option<u32>,
    function_arn: Option<String>,
    namespace: String,
    default_dimensions: Vec<(String, String)>,
    metrics_sink: Arc<dyn Sink>,
}

impl FunctionConfig {
    /// Defaults: `service` and `function_name` are the function's logical name
    /// (`webhook-validator`), namespace `Payhook`, metrics on stdout.
    pub fn new(kind: FunctionKind) -> Self {
        Self {
            kind,
            service: kind.as_str().to_owned(),
            function_name: kind.as_str().to_owned(),
            memory_size_mb: None,
            function_arn: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            default_dimensions: Vec::new(),
            metrics_sink: Arc::new(StdoutSink),
        }
    }

    /// Reads `POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_METRICS_NAMESPACE`,
    /// `AWS_LAMBDA_FUNCTION_NAME` and `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub fn from_env(kind: FunctionKind) -> Result<Self, TelemetryError> {
        Self::from_lookup(kind, |k| std::env::var(k).ok())
    }

    /// As [`FunctionConfig::from_env`], through `lookup`.
    pub fn from_lookup(
        kind: FunctionKind,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let var = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let mut cfg = Self::new(kind);
        if let Some(s) = var(SERVICE_NAME_ENV) {
            cfg.service = s;
        }
        if let Some(n) = var(FUNCTION_NAME_ENV) {
            cfg.function_name = n;
        }
        cfg.memory_size_mb = var(MEMORY_SIZE_ENV).and_then(|m| m.trim().parse().ok());
        if let Some(ns) = var(NAMESPACE_ENV) {
            cfg = cfg.namespace(ns)?;
        }
        Ok(cfg)
    }

    /// The `service` key and dimension.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// The function's deployed name (`function_name` in logs and on `ColdStart`).
    pub fn function_name(mut self, name: impl Into<String>) -> Self {
        self.function_name = name.into();
        self
    }

    /// The function's memory size in MB.
    pub fn memory_size_mb(mut self, mb: u32) -> Self {
        self.memory_size_mb = Some(mb);
        self
    }

    /// The function's ARN (Lambda passes it per invocation too).
    pub fn function_arn(mut self, arn: impl Into<String>) -> Self {
        self.function_arn = Some(arn.into());
        self
    }

    /// The CloudWatch namespace; fails if CloudWatch would reject it.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Result<Self, TelemetryError> {
        let namespace = namespace.into();
        MetricsConfig::new(namespace.clone(), "x")?;
        self.namespace = namespace;
        Ok(self)
    }

    /// Adds a dimension to every metric; fails on a name or value CloudWatch would reject, a
    /// name the catalogue uses, or more than 30 dimensions per set.
    pub fn default_dimension(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, TelemetryError> {
        let (name, value) = (name.into(), value.into());
        let mut check = MetricsConfig::new(self.namespace.clone(), "x")?;
        for (n, v) in &self.default_dimensions {
            check = check.with_default_dimension(n.clone(), v.clone())?;
        }
        check.with_default_dimension(name.clone(), value.clone())?;
        self.default_dimensions.push((name, value));
        Ok(self)
    }

    /// Where EMF documents go (stdout by default).
    pub fn metrics_sink(mut self, sink: impl Sink) -> Self {
        self.metrics_sink = Arc::new(sink);
        self
    }

    fn metrics_config(&self) -> MetricsConfig {
        // Both were validated by the setters.
        let mut cfg = MetricsConfig::new(self.namespace.clone(), self.service.clone())
            .unwrap_or_else(|_| {
                MetricsConfig::new(DEFAULT_NAMESPACE, self.service.clone())
                    .expect("the default namespace is valid")
            });
        for (n, v) in &self.default_dimensions {
            if let Ok(next) = cfg.clone().with_default_dimension(n.clone(), v.clone()) {
                cfg = next;
            }
        }
        cfg
    }
}

pub(crate) struct FunctionShared {
    kind: FunctionKind,
    handler_name: String,
    service: String,
    function_name: String,
    memory_size_mb: Option<u32>,
    function_arn: Option<String>,
    metrics: MetricsConfig,
    metrics_sink: Arc<dyn Sink>,
    cold: AtomicBool,
    /// What flushing the metrics reuses from one invocation to the next.
    flush: Mutex<Flush>,
}

/// The EMF documents of the invocation being flushed, the directives already rendered for this
/// function's documents, and the last invocation's metric set, emptied (with its allocations)
/// for the next.
#[derive(Default)]
struct Flush {
    buf: String,
    directives: DirectiveCache,
    spare_metrics: Option<MetricSet>,
}

/// One function's telemetry: starts invocations. Cheap to clone.
#[derive(Clone)]
pub struct FunctionTelemetry {
    shared: Arc<FunctionShared>,
    telemetry: Telemetry,
}

impl fmt::Debug for FunctionTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionTelemetry")
            .field("kind", &self.shared.kind)
            .field("service", &self.shared.service)
            .field("function_name", &self.shared.function_name)
            .finish_non_exhaustive()
    }
}

/// What is known about one invocation when it starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct InvocationContext<'a> {
    /// The request id (`function_request_id`; Lambda's `Context::request_id`).
    pub request_id: &'a str,
    /// The X-Ray trace header of the invocation (`Context::xray_trace_id`), if any.
    pub trace_header: Option<&'a str>,
    /// The invoked function's ARN.
    pub function_arn: Option<&'a str>,
    /// The function's name, when it differs from the configured one.
    pub function_name: Option<&'a str>,
    /// The function's memory size in MB.
    pub memory_size_mb: Option<u32>,
}

impl FunctionTelemetry {
    /// Which function this is.
    pub fn kind(&self) -> FunctionKind {
        self.shared.kind
    }

    /// The process-wide telemetry.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Starts an invocation with a request id and, when there is one, the X-Ray trace header
    /// (`Root=…;Parent=…;Sampled=…`).
    pub fn start(&self, request_id: &str, trace_header: Option<&str>) -> Invocation {
        self.start_with(InvocationContext {
            request_id,
            trace_header,
            ..InvocationContext::default()
        })
    }

    /// Starts an invocation with everything Lambda tells about it.
    pub fn start_with(&self, cx: InvocationContext<'_>) -> Invocation {
        let shared = &self.shared;
        let tel = &self.telemetry.inner;
        let cold_start = shared.cold.swap(false, Ordering::Relaxed);
        tel.process.invoked.store(true, Ordering::Relaxed);
        let function_name = cx
            .function_name
            .filter(|n| !n.is_empty())
            .unwrap_or(&shared.function_name)
            .to_owned();

        let parent = cx.trace_header.and_then(parent_from_trace_header);
        let mut xray_trace_id_value = parent.as_ref().map(|p| p.trace_id());
        let mut parent_cx = parent
            .as_ref()
            .filter(|p| p.parent_id().is_some())
            .map(|p| p.span_context().clone());
        let mut root_segment = None;
        if parent.is_none() && tel.local_root_segments && tel.tracer.is_some() {
            let now_secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if !tel.root_sampler.sample(now_secs, random_unit) {
                // A trace of its own, not sampled: its log lines carry its id and everything
                // downstream is told `Sampled=0`, as API Gateway does for a request its
                // sampling rule passed over.
                let ids = XrayIdGenerator::default();
                let sc = SpanContext::new(
                    ids.new_trace_id(),
                    ids.new_span_id(),
                    TraceFlags::default(),
                    false,
                    TraceState::default(),
                );
                xray_trace_id_value = Some(xray_trace_id(sc.trace_id()));
                parent_cx = Some(sc);
            }
        }
        if parent.is_none()
            && parent_cx.is_none()
            && tel.local_root_segments
            && let Some(tracer) = &tel.tracer
        {
            let span = tracer
                .span_builder(function_name.clone())
                .with_kind(SpanKind::Server)
                .with_attributes([KeyValue::new("service.name", function_name.clone())])
                .start_with_context(tracer, &Context::new());
            let sc = span.span_context().clone();
            xray_trace_id_value = Some(xray_trace_id(sc.trace_id()));
            parent_cx = Some(sc);
            root_segment = Some(span);
        }

        let state = Arc::new(InvocationState {
            kind: shared.kind,
            service: shared.service.clone(),
            function_name,
            memory_size_mb: cx.memory_size_mb.or(shared.memory_size_mb),
            function_arn: cx
                .function_arn
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .or_else(|| shared.function_arn.clone()),
            request_id: cx.request_id.to_owned(),
            xray_trace_id: xray_trace_id_value,
            cold_start,
            debug_sampled: tel.sample_rate > 0.0 && random_unit() < tel.sample_rate,
            keys: Mutex::new(LogKeys::default()),
            metrics: Mutex::new(lock(&shared.flush).spare_metrics.take().unwrap_or_default()),
            annotations: Mutex::new(Vec::new()),
            context_keys: OnceLock::new(),
        });

        // Created under this telemetry's subscriber even when it is not the thread's default
        // (the local stack runs each function's futures `with_subscriber`).
        let span = tracing::dispatcher::with_default(&tel.dispatch, || {
            with_pending_invocation(state.clone(), || {
                tracing::info_span!(
                    target: INVOCATION_TARGET,
                    parent: None,
                    "invocation",
                    otel.name = shared.handler_name.as_str(),
                    otel.kind = "internal",
                    otel.status_code = Empty,
                    otel.status_description = Empty,
                )
            })
        });
        if let Some(parent) = parent_cx {
            span_layer::set_parent(&span, parent);
        }

        if cold_start {
            // In a document of its own, written at once (as Powertools does), so a cold start
            // is counted even if the invocation then times out.
            shared.metrics_sink.write_line(&cold_start_document(
                &shared.metrics,
                &state.function_name,
                now_ms(),
            ));
        }

        Invocation {
            state,
            function: self.clone(),
            span,
            root_segment,
            finished: false,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct LogKeys {
    pub(crate) correlation_id: Option<String>,
    pub(crate) appended: Vec<(&'static str, String)>,
}

/// What log lines, metrics and the subsegment of one invocation share.
pub(crate) struct InvocationState {
    kind: FunctionKind,
    pub(crate) service: String,
    pub(crate) function_name: String,
    pub(crate) memory_size_mb: Option<u32>,
    pub(crate) function_arn: Option<String>,
    pub(crate) request_id: String,
    pub(crate) xray_trace_id: Option<String>,
    pub(crate) cold_start: bool,
    pub(crate) debug_sampled: bool,
    keys: Mutex<LogKeys>,
    metrics: Mutex<MetricSet>,
    annotations: Mutex<Vec<(Annotation, String)>>,
    /// The log keys that never change during the invocation, rendered at its first line.
    context_keys: OnceLock<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InvocationState {
    pub(crate) fn log_keys(&self) -> MutexGuard<'_, LogKeys> {
        lock(&self.keys)
    }

    /// `,"service":…` to `,"function_request_id":…` of every log line of the invocation.
    pub(crate) fn context_keys(&self) -> &str {
        self.context_keys.get_or_init(|| render_context_keys(self))
    }
}

/// A handle on the running invocation for the handler: record metrics, annotate the trace, set
/// the correlation id. Cheap to clone; holds no span, so keeping it does not delay the flush.
#[derive(Clone)]
pub struct InvocationHandle {
    state: Arc<InvocationState>,
}

impl fmt::Debug for InvocationHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvocationHandle")
            .field("request_id", &self.state.request_id)
            .finish_non_exhaustive()
    }
}

impl InvocationHandle {
    /// Records one value of a catalogued metric; it is flushed when the invocation finishes.
    /// `dims` must name exactly the catalogue's dimensions for it, besides the implicit
    /// `service`; anything else is a bug (a debug assertion; dropped with a warning in release).
    pub fn metric(&self, metric: Metric, value: f64, dims: &[(Dimension, &str)]) {
        let def = metric.def();
        debug_assert!(
            def.functions.contains(&self.state.kind),
            "{} is not catalogued for {}",
            def.name,
            self.state.kind.as_str()
        );
        let result = lock(&self.state.metrics).add(metric, value, dims);
        match result {
            Ok(()) => {}
            Err(e @ MetricRejected::NotFinite(_)) => {
                tracing::warn!(target: "payhook_telemetry::metrics", error = %e, "metric dropped");
            }
            Err(e) => {
                debug_assert!(false, "{e}");
                tracing::warn!(target: "payhook_telemetry::metrics", error = %e, "metric dropped");
            }
        }
    }

    /// Records a count of one.
    pub fn count(&self, metric: Metric, dims: &[(Dimension, &str)]) {
        self.metric(metric, 1.0, dims);
    }

    /// Sets an X-Ray annotation on the handler's subsegment and the same key on every later
    /// log line of this invocation.
    pub fn annotate(&self, key: Annotation, value: &str) {
        let value = redact_text(value).into_owned();
        {
            let mut annotations = lock(&self.state.annotations);
            match annotations.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value.clone(),
                None => annotations.push((key, value.clone())),
            }
        }
        self.append_key(key.as_str(), &value);
    }

    /// Adds a key to every later log line of this invocation (Powertools' `append_keys`).
    /// Redacted like any other field.
    pub fn append_key(&self, key: &'static str, value: &str) {
        let value = if is_sensitive_field(key) {
            REDACTED.to_owned()
        } else {
            redact_text(value).into_owned()
        };
        let mut keys = self.state.log_keys();
        match keys.appended.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => keys.appended.push((key, value)),
        }
    }

    /// Sets the `correlation_id` of later log lines (the API Gateway request id, SQS message
    /// id or EventBridge event id).
    pub fn set_correlation_id(&self, id: &str) {
        self.state.log_keys().correlation_id = Some(redact_text(id).into_owned());
    }

    /// The current correlation id.
    pub fn correlation_id(&self) -> Option<String> {
        self.state.log_keys().correlation_id.clone()
    }

    /// The invocation's request id.
    pub fn request_id(&self) -> &str {
        &self.state.request_id
    }

    /// The invocation's X-Ray trace id (`1-…-…`), if it is traced.
    pub fn xray_trace_id(&self) -> Option<&str> {
        self.state.xray_trace_id.as_deref()
    }

    /// Whether this is the first invocation of the execution environment.
    pub fn is_cold_start(&self) -> bool {
        self.state.cold_start
    }
}

struct Failure {
    code: &'static str,
    message: String,
    retryable: bool,
}

/// One running invocation. Finish it with [`Invocation::run`], [`Invocation::finish_ok`] or
/// [`Invocation::finish_err`]; if it is dropped unfinished (a panic, a cancelled future) it
/// finishes as a failure (`panic` / `invocation_dropped`), so metrics and the subsegment are
/// still flushed.
pub struct Invocation {
    state: Arc<InvocationState>,
    function: FunctionTelemetry,
    span: tracing::Span,
    root_segment: Option<opentelemetry_sdk::trace::Span>,
    finished: bool,
}

impl fmt::Debug for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invocation")
            .field("request_id", &self.state.request_id)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Invocation {
    /// A handle for the handler.
    pub fn handle(&self) -> InvocationHandle {
        InvocationHandle {
            state: self.state.clone(),
        }
    }

    /// The invocation's span: log lines inside it carry the invocation context, spans inside it
    /// become subsegments under it. Instrument the handler's future with it (as
    /// [`Invocation::run`] does); clones delay the subsegment's export until they are dropped.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Logs the incoming event (redacted; the `body` of an API Gateway event is replaced
    /// whole) when `POWERTOOLS_LOGGER_LOG_EVENT` is on.
    pub fn log_event<T: Serialize + ?Sized>(&self, event: &T) {
        let tel = &self.function.telemetry.inner;
        if !tel.log_event {
            return;
        }
        let Ok(mut value) = serde_json::to_value(event) else {
            return;
        };
        redact_json(&mut value);
        write_direct(
            &*tel.log_sink,
            &self.state,
            Level::INFO,
            "payhook_telemetry::invocation:log_event",
            &value,
        );
    }

    /// Runs the handler's future inside the invocation, under this telemetry's subscriber (so it
    /// works whether or not that subscriber is the default), and finishes it with the outcome.
    pub async fn run<F, R, E>(self, handler: F) -> Result<R, E>
    where
        F: Future<Output = Result<R, E>>,
        E: ClassifiedError,
    {
        let dispatch = self.function.telemetry.inner.dispatch.clone();
        let out = handler
            .instrument(self.span.clone())
            .with_subscriber(dispatch)
            .await;
        match &out {
            Ok(_) => self.finish_ok(),
            Err(e) => self.finish_err(e),
        }
        out
    }

    /// Finishes a successful invocation: closes the subsegment, flushes the metrics.
    pub fn finish_ok(mut self) {
        self.finish_inner(None);
    }

    /// Finishes a failed invocation: logs the error (`error`, `error_code`, `retryable`) at
    /// ERROR, marks the subsegment as a fault, closes it, flushes the metrics.
    pub fn finish_err<E: ClassifiedError + ?Sized>(mut self, error: &E) {
        self.finish_inner(Some(Failure {
            code: error.code(),
            message: error.to_string(),
            retryable: error.retryable(),
        }));
    }

    fn finish_inner(&mut self, failure: Option<Failure>) {
        if self.finished {
            return;
        }
        self.finished = true;
        let span = std::mem::replace(&mut self.span, tracing::Span::none());
        if let Some(f) = &failure {
            let dispatch = &self.function.telemetry.inner.dispatch;
            tracing::dispatcher::with_default(dispatch, || {
                span.in_scope(|| {
                    tracing::error!(
                        target: INVOCATION_TARGET,
                        error = %f.message,
                        error_code = f.code,
                        retryable = f.retryable,
                        "Invocation failed"
                    );
                });
            });
            span.record("otel.status_code", "error");
            span.record("otel.status_description", f.code);
            // Becomes the subsegment's `cause.exceptions[]`, so the trace says what failed.
            span_layer::add_event(
                &span,
                Event::new(
                    "exception",
                    opentelemetry::time::now(),
                    vec![
                        KeyValue::new("exception.type", f.code),
                        KeyValue::new("exception.message", redact_text(&f.message).into_owned()),
                    ],
                    0,
                ),
            );
        }
        // As Powertools' Tracer does: `annotation.ColdStart = true` and
        // `annotation.Service = "…"` find these handler subsegments.
        let mut annotations = lock(&self.state.annotations);
        span_layer::set_attributes(
            &span,
            [
                KeyValue::new("annotation.ColdStart", self.state.cold_start),
                KeyValue::new("annotation.Service", self.state.service.clone()),
            ]
            .into_iter()
            .chain(
                annotations
                    .drain(..)
                    .map(|(key, value)| KeyValue::new(key.as_str(), value)),
            ),
        );
        drop(annotations);
        // Usually the last handle on the span: closing it exports the subsegment.
        drop(span);
        if let Some(mut root) = self.root_segment.take() {
            if let Some(f) = &failure {
                root.set_status(Status::error(f.code));
            }
            root.end();
        }
        // Export the invocation's spans together (one nested document per trace).
        self.function.telemetry.flush();
        let shared = &self.function.shared;
        let mut metrics = lock(&self.state.metrics);
        if !metrics.is_empty() {
            // Every document in one buffer, handed to the sink as one write.
            let mut flush = lock(&shared.flush);
            let Flush {
                buf,
                directives,
                spare_metrics,
            } = &mut *flush;
            buf.clear();
            metrics.encode_lines(&shared.metrics, now_ms(), buf, directives);
            metrics.clear();
            if spare_metrics.is_none() {
                *spare_metrics = Some(std::mem::take(&mut *metrics));
            }
            drop(metrics);
            shared.metrics_sink.write_lines(buf);
        }
    }
}

impl Drop for Invocation {
    fn drop(&mut self) {
        if !self.finished {
            let (code, message) = if std::thread::panicking() {
                ("panic", "the handler panicked")
            } else {
                (
                    "invocation_dropped",
                    "the invocation was dropped before it finished",
                )
            };
            self.finish_inner(Some(Failure {
                code,
                message: message.to_owned(),
                retryable: true,
            }));
        }
    }
}
