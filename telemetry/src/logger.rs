//! The Logger: a `tracing-subscriber` layer that writes one Powertools-compatible JSON object per
//! line, so Logs Insights queries written for Powertools work unchanged.
//!
//! Keys, in order: `level`, `location`, `message`, `timestamp` (RFC 3339, UTC, milliseconds),
//! `service`, `cold_start`, `function_name`, `function_memory_size`, `function_arn`,
//! `function_request_id`, `xray_trace_id`, `correlation_id` (always present, `null` when
//! unknown), then the event's own fields, the fields of the spans it is in (inside the
//! invocation), and the keys appended for the invocation (annotations). Levels are written as
//! Lambda's JSON log format spells them (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`), so Lambda's
//! own log-level filtering understands them.
//!
//! Level: `POWERTOOLS_LOG_LEVEL`, else `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` (full
//! `EnvFilter` directives), else `INFO`. `POWERTOOLS_LOGGER_SAMPLE_RATE` turns on DEBUG for
//! that fraction of invocations. `POWERTOOLS_LOGGER_LOG_EVENT=true` logs each incoming event
//! (redacted). Every string goes through [`crate::redact`] before it is written.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::invocation::InvocationState;
use crate::json;
use crate::redact::{REDACTED, REDACTED_CARD, is_card_number, is_sensitive_field, redact_text};
use crate::sink::Sink;
use crate::span_layer::known_text;

/// `POWERTOOLS_LOG_LEVEL`: the log level, as Powertools names it.
pub const LOG_LEVEL_ENV: &str = "POWERTOOLS_LOG_LEVEL";
/// `AWS_LAMBDA_LOG_LEVEL`: the level set by Lambda's advanced logging controls.
pub const LAMBDA_LOG_LEVEL_ENV: &str = "AWS_LAMBDA_LOG_LEVEL";
/// `RUST_LOG`: `EnvFilter` directives, the last fallback.
pub const RUST_LOG_ENV: &str = "RUST_LOG";
/// `POWERTOOLS_LOGGER_SAMPLE_RATE`: the fraction of invocations logged at DEBUG.
pub const SAMPLE_RATE_ENV: &str = "POWERTOOLS_LOGGER_SAMPLE_RATE";
/// `POWERTOOLS_LOGGER_LOG_EVENT`: log each incoming event when `true`.
pub const LOG_EVENT_ENV: &str = "POWERTOOLS_LOGGER_LOG_EVENT";

/// Log keys the logger owns; fields with these names are not copied into the line (except
/// `correlation_id`, which a span or event may override, e.g. per SQS record). Powertools'
/// `sampling_rate` is added after them when debug sampling is on.
pub const RESERVED_KEYS: [&str; 12] = [
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "correlation_id",
];

/// Field-name prefixes that are instructions to other layers, not data worth logging.
const SKIPPED_FIELD_PREFIXES: [&str; 4] = ["otel.", "rpc.", "code.", "log."];

/// The span target of an invocation span (see [`crate::invocation`]).
pub(crate) const INVOCATION_TARGET: &str = "payhook_telemetry::invocation";
/// The span target of log-only scopes (per-record correlation ids) that are not subsegments.
pub(crate) const SCOPE_TARGET: &str = "payhook_telemetry::scope";

/// How the logger is configured: level, sampling, event logging.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggerConfig {
    directives: String,
    sample_rate: f64,
    log_event: bool,
    warnings: Vec<String>,
}

impl Default for LoggerConfig {
    fn default() -> Self {
        Self {
            directives: "info".to_owned(),
            sample_rate: 0.0,
            log_event: false,
            warnings: Vec::new(),
        }
    }
}

impl LoggerConfig {
    /// Reads the Powertools variables from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the Powertools variables through `lookup` (for tests and the local stack).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut cfg = Self::default();
        let level = [LOG_LEVEL_ENV, LAMBDA_LOG_LEVEL_ENV]
            .into_iter()
            .find_map(|var| {
                let raw = lookup(var)?;
                let raw = raw.trim();
                if raw.is_empty() {
                    return None;
                }
                match level_directive(raw) {
                    Some(d) => Some(d.to_owned()),
                    None => {
                        cfg.warnings
                            .push(format!("{var}={raw:?} is not a log level; ignored"));
                        None
                    }
                }
            })
            .or_else(|| {
                let raw = lookup(RUST_LOG_ENV)?;
                match EnvFilter::try_new(&raw) {
                    Ok(_) if !raw.trim().is_empty() => Some(raw),
                    Ok(_) => None,
                    Err(e) => {
                        cfg.warnings.push(format!(
                            "{RUST_LOG_ENV}={raw:?} is not valid ({e}); ignored"
                        ));
                        None
                    }
                }
            });
        if let Some(level) = level {
            cfg.directives = level;
        }
        if let Some(raw) = lookup(SAMPLE_RATE_ENV) {
            match raw.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => cfg.sample_rate = r,
                _ => cfg.warnings.push(format!(
                    "{SAMPLE_RATE_ENV}={raw:?} is not a number between 0 and 1; ignored"
                )),
            }
        }
        if let Some(raw) = lookup(LOG_EVENT_ENV) {
            cfg.log_event = matches!(raw.trim().to_ascii_lowercase().as_str(), "true" | "1");
        }
        cfg
    }

    /// Sets the level or `EnvFilter` directives (`"debug"`, `"info,payhook_core=debug"`).
    pub fn with_level(mut self, directives: impl Into<String>) -> Self {
        self.directives = directives.into();
        self
    }

    /// Sets the fraction of invocations logged at DEBUG (0.0-1.0).
    pub fn with_sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = rate.clamp(0.0, 1.0);
        self
    }

    /// Logs every incoming event (redacted) when `true`.
    pub fn with_log_event(mut self, on: bool) -> Self {
        self.log_event = on;
        self
    }

    /// The `EnvFilter` directives in force.
    pub fn directives(&self) -> &str {
        &self.directives
    }

    /// The debug sampling rate.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// Whether incoming events are logged.
    pub fn log_event(&self) -> bool {
        self.log_event
    }

    /// Problems found in the environment (logged as warnings once the logger is installed).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub(crate) fn env_filter(&self) -> EnvFilter {
        EnvFilter::try_new(&self.directives).unwrap_or_else(|_| EnvFilter::new("info"))
    }
}

/// Maps a Powertools / Lambda level name to an `EnvFilter` directive.
fn level_directive(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "CRITICAL" | "FATAL" => "error",
        _ => return None,
    })
}

/// What log lines outside any invocation say about the process (init phase, background work).
#[derive(Debug)]
pub(crate) struct ProcessInfo {
    pub(crate) service: String,
    pub(crate) sample_rate: f64,
    pub(crate) function_name: Option<String>,
    pub(crate) memory_size_mb: Option<u32>,
    pub(crate) invoked: AtomicBool,
}

/// Marks the invocation span; holds the state the log lines inside it draw on.
pub(crate) struct InvocationExt(pub(crate) Arc<InvocationState>);

thread_local! {
    /// Hands an invocation's state to the layer while its span is being created, so the layer
    /// can attach it to the span without a global registry.
    static PENDING_INVOCATION: RefCell<Option<Arc<InvocationState>>> = const { RefCell::new(None) };
    static LINE_BUFFER: RefCell<String> = RefCell::new(String::with_capacity(512));
    /// An event's message and fields, kept with their allocations from one line to the next.
    static EVENT_SCRATCH: RefCell<EventScratch> = RefCell::new(EventScratch::default());
}

/// Runs `f` on this thread's `scratch`, or on a fresh one when it is in use already (a sink
/// that logs while its own line is being written gets a scratch of its own).
fn with_scratch<T: Default, R>(
    scratch: &'static std::thread::LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    scratch.with(|cell| match cell.try_borrow_mut() {
        Ok(mut held) => f(&mut held),
        Err(_) => f(&mut T::default()),
    })
}

/// Field strings longer than this are not kept for reuse.
const MAX_SPARE_STRING: usize = 1024;
/// At most this many field strings are kept for reuse.
const MAX_SPARE_STRINGS: usize = 16;

/// What [`LogLayer::on_event`] fills for each event, reused so that a line costs no
/// allocations for its message, its field list and (usually) its field values.
#[derive(Default)]
struct EventScratch {
    message: String,
    fields: Fields,
    spare: Vec<String>,
}

impl EventScratch {
    /// Empties the scratch, keeping the field strings for the next event.
    fn clear(&mut self) {
        self.message.clear();
        for (_, value) in self.fields.drain(..) {
            if let FieldValue::Str(s) = value
                && s.capacity() <= MAX_SPARE_STRING
                && self.spare.len() < MAX_SPARE_STRINGS
            {
                self.spare.push(s);
            }
        }
    }
}

/// Creates `make_span()` with `state` attached to it by the log layer.
pub(crate) fn with_pending_invocation<T>(
    state: Arc<InvocationState>,
    make_span: impl FnOnce() -> T,
) -> T {
    PENDING_INVOCATION.with(|p| *p.borrow_mut() = Some(state));
    let out = make_span();
    // If no log layer took it (no subscriber installed), don't leak it into the next span.
    PENDING_INVOCATION.with(|p| p.borrow_mut().take());
    out
}

#[derive(Debug, Clone)]
enum FieldValue {
    Str(String),
    /// Text that is never sensitive and never changes (a redaction marker, an AWS service's
    /// or operation's name): borrowed, not copied.
    Static(&'static str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl FieldValue {
    fn write(&self, buf: &mut String) {
        match self {
            FieldValue::Str(s) => json::push_str(buf, s),
            FieldValue::Static(s) => json::push_str(buf, s),
            FieldValue::I64(v) => json::push_i64(buf, *v),
            FieldValue::U64(v) => json::push_u64(buf, *v),
            FieldValue::F64(v) => json::push_f64(buf, *v),
            FieldValue::Bool(v) => buf.push_str(if *v { "true" } else { "false" }),
        }
    }
}

type Fields = Vec<(&'static str, FieldValue)>;

/// The fields recorded on a span, already redacted.
struct SpanFields(Fields);

struct FieldVisitor<'a> {
    fields: &'a mut Fields,
    message: Option<&'a mut String>,
    /// Empty strings to write values into, instead of allocating.
    spare: Option<&'a mut Vec<String>>,
}

impl FieldVisitor<'_> {
    fn skip(name: &str) -> bool {
        SKIPPED_FIELD_PREFIXES.iter().any(|p| name.starts_with(p))
    }

    fn put(&mut self, name: &'static str, value: FieldValue) {
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            self.fields.push((name, value));
        }
    }

    fn spare_string(&mut self) -> String {
        let mut s = self
            .spare
            .as_deref_mut()
            .and_then(Vec::pop)
            .unwrap_or_default();
        s.clear();
        s
    }

    fn put_str(&mut self, name: &'static str, value: &str) {
        if is_sensitive_field(name) {
            return self.put(name, FieldValue::Static(REDACTED));
        }
        if let Some(known) = known_text(value) {
            return self.put(name, FieldValue::Static(known));
        }
        let redacted = redact_text(value);
        let value = match redacted {
            Cow::Borrowed(text) => {
                let mut s = self.spare_string();
                s.push_str(text);
                s
            }
            Cow::Owned(redacted) => redacted,
        };
        self.put(name, FieldValue::Str(value));
    }

    /// As [`FieldVisitor::put_str`], for a value already written into a string of its own.
    fn put_owned(&mut self, name: &'static str, value: String) {
        if is_sensitive_field(name) {
            return self.put_str(name, REDACTED);
        }
        let value = match redact_text(&value) {
            Cow::Borrowed(_) => value,
            Cow::Owned(redacted) => redacted,
        };
        self.put(name, FieldValue::Str(value));
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name == "message"
            && let Some(msg) = self.message.as_deref_mut()
        {
            let _ = write!(msg, "{value:?}");
            return;
        }
        if Self::skip(name) {
            return;
        }
        let mut s = self.spare_string();
        let _ = write!(s, "{value:?}");
        self.put_owned(name, s);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if name == "message"
            && let Some(msg) = self.message.as_deref_mut()
        {
            msg.push_str(value);
            return;
        }
        if Self::skip(name) {
            return;
        }
        self.put_str(name, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if Self::skip(field.name()) {
            return;
        }
        let mut s = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(s, ": {cause}");
            source = cause.source();
        }
        self.put_str(field.name(), &s);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_number(field, FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_number(field, FieldValue::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record_number(field, FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_number(field, FieldValue::Bool(value));
    }
}

impl FieldVisitor<'_> {
    fn record_number(&mut self, field: &Field, value: FieldValue) {
        let name = field.name();
        if Self::skip(name) {
            return;
        }
        if is_sensitive_field(name) {
            self.put(name, FieldValue::Static(REDACTED));
        } else if number_is_card(&value) {
            // As a card number inside a string or a JSON number of the logged event is.
            self.put(name, FieldValue::Static(REDACTED_CARD));
        } else {
            self.put(name, value);
        }
    }
}

/// Whether a number logged as a field is a card number (13–19 digits, Luhn-valid, starting
/// 2–6): as an unsigned or signed integer, or as a float holding a whole number.
fn number_is_card(value: &FieldValue) -> bool {
    match *value {
        FieldValue::U64(n) => is_card_number(n),
        FieldValue::I64(n) => u64::try_from(n).is_ok_and(is_card_number),
        // A whole float is checked as that integer: exact up to 2^53, which holds every
        // card number of up to 15 digits and the 16-digit ones up to 9007….
        FieldValue::F64(v) => {
            v.fract() == 0.0 && (1e12..1e19).contains(&v) && is_card_number(v as u64)
        }
        FieldValue::Str(_) | FieldValue::Static(_) | FieldValue::Bool(_) => false,
    }
}

/// The per-layer filter of the log layer: the configured level, plus DEBUG inside invocations
/// chosen by `POWERTOOLS_LOGGER_SAMPLE_RATE`, plus every payhook span (so their fields reach
/// the lines logged inside them whatever the level).
pub(crate) struct LogFilter {
    pub(crate) base: EnvFilter,
    pub(crate) sampling: bool,
}

fn invocation_is_sampled<S>(cx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(current) = cx.lookup_current() else {
        return false;
    };
    for span in current.scope() {
        if let Some(inv) = span.extensions().get::<InvocationExt>() {
            return inv.0.debug_sampled;
        }
    }
    false
}

impl<S> Filter<S> for LogFilter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        if meta.is_span() && meta.target().starts_with("payhook") {
            return true;
        }
        if Filter::<S>::enabled(&self.base, meta, cx) {
            return true;
        }
        self.sampling
            && meta.is_event()
            && *meta.level() <= Level::DEBUG
            && invocation_is_sampled(cx)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() && meta.target().starts_with("payhook") {
            return Interest::always();
        }
        let base = Filter::<S>::callsite_enabled(&self.base, meta);
        if self.sampling && !base.is_always() && meta.is_event() && *meta.level() <= Level::DEBUG {
            return Interest::sometimes();
        }
        base
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Payhook's INFO spans (the invocation span above all) must exist whatever the level,
        // or log lines would lose their invocation context.
        let floor = if self.sampling {
            LevelFilter::DEBUG
        } else {
            LevelFilter::INFO
        };
        Filter::<S>::max_level_hint(&self.base).map(|b| b.max(floor))
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        Filter::<S>::on_new_span(&self.base, attrs, id, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        Filter::<S>::on_record(&self.base, id, values, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        Filter::<S>::on_enter(&self.base, id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        Filter::<S>::on_exit(&self.base, id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        Filter::<S>::on_close(&self.base, id, ctx);
    }
}

/// The layer that writes log lines.
pub(crate) struct LogLayer {
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) process: Arc<ProcessInfo>,
}

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        if attrs.metadata().target() == INVOCATION_TARGET
            && let Some(state) = PENDING_INVOCATION.with(|p| p.borrow_mut().take())
        {
            ext.insert(InvocationExt(state));
        }
        let mut fields = Vec::new();
        attrs.record(&mut FieldVisitor {
            fields: &mut fields,
            message: None,
            spare: None,
        });
        if !fields.is_empty() {
            ext.insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanFields>() {
            Some(f) => values.record(&mut FieldVisitor {
                fields: &mut f.0,
                message: None,
                spare: None,
            }),
            None => {
                let mut fields = Vec::new();
                values.record(&mut FieldVisitor {
                    fields: &mut fields,
                    message: None,
                    spare: None,
                });
                if !fields.is_empty() {
                    ext.insert(SpanFields(fields));
                }
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        with_scratch(&EVENT_SCRATCH, |scratch| {
            self.write_event(event, &ctx, scratch);
            scratch.clear();
        });
    }
}

impl LogLayer {
    fn write_event<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, scratch: &mut EventScratch)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let EventScratch {
            message,
            fields,
            spare,
        } = scratch;
        event.record(&mut FieldVisitor {
            fields,
            message: Some(message),
            spare: Some(spare),
        });
        let message = redact_text(message);

        // The spans between the event and its invocation (innermost first), and the invocation.
        let mut spans = Vec::new();
        let mut invocation: Option<Arc<InvocationState>> = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(inv) = span.extensions().get::<InvocationExt>() {
                    invocation = Some(inv.0.clone());
                    break;
                }
                spans.push(span);
            }
        }

        let meta = event.metadata();
        with_scratch(&LINE_BUFFER, |buf| {
            buf.clear();
            write_line(
                buf,
                LineParts {
                    meta,
                    message: &message,
                    fields,
                    spans: &spans,
                    invocation: invocation.as_deref(),
                    process: &self.process,
                },
            );
            self.sink.write_line(buf);
        });
    }
}

struct LineParts<'a, 'b, S>
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    meta: &'a Metadata<'a>,
    message: &'a str,
    fields: &'a Fields,
    spans: &'a [tracing_subscriber::registry::SpanRef<'b, S>],
    invocation: Option<&'a InvocationState>,
    process: &'a ProcessInfo,
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Appends the current time as RFC 3339 UTC with milliseconds (`2026-01-01T00:00:00.000Z`).
/// The date and time up to the second are formatted once a second per thread.
pub(crate) fn push_timestamp(buf: &mut String) {
    thread_local! {
        /// The last second formatted, and its `"YYYY-MM-DDTHH:MM:SS` (with the opening quote).
        static SECOND: std::cell::RefCell<(i64, String)> =
            const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    SECOND.with_borrow_mut(|(cached, prefix)| {
        if *cached != secs {
            let now = time::OffsetDateTime::from_unix_timestamp(secs)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let mut text = *b"\"0000-00-00T00:00:00";
            let mut put = |at: usize, width: usize, mut v: u32| {
                for i in (0..width).rev() {
                    text[at + i] = b'0' + (v % 10) as u8;
                    v /= 10;
                }
            };
            put(1, 4, now.year().clamp(0, 9999) as u32);
            put(6, 2, u32::from(u8::from(now.month())));
            put(9, 2, u32::from(now.day()));
            put(12, 2, u32::from(now.hour()));
            put(15, 2, u32::from(now.minute()));
            put(18, 2, u32::from(now.second()));
            // Only ASCII digits were written into an ASCII template; checked once a second.
            prefix.clear();
            prefix.push_str(std::str::from_utf8(&text).unwrap_or("\"1970-01-01T00:00:00"));
            *cached = secs;
        }
        buf.push_str(prefix);
    });
    let millis = since_epoch.subsec_millis();
    buf.push('.');
    for digit in [millis / 100, millis / 10 % 10, millis % 10] {
        buf.push(char::from(b'0' + digit as u8));
    }
    buf.push_str("Z\"");
}

/// The keys of an invocation's lines that stay the same all through it, from `service` to
/// `function_request_id`, rendered once per invocation ([`InvocationState::context_keys`]).
pub(crate) fn render_context_keys(inv: &InvocationState) -> String {
    let mut buf = String::with_capacity(256);
    buf.push_str(",\"service\":");
    json::push_str(&mut buf, &inv.service);
    buf.push_str(",\"cold_start\":");
    buf.push_str(if inv.cold_start { "true" } else { "false" });
    buf.push_str(",\"function_name\":");
    json::push_str(&mut buf, &inv.function_name);
    buf.push_str(",\"function_memory_size\":");
    match inv.memory_size_mb {
        Some(m) => json::push_u64(&mut buf, u64::from(m)),
        None => buf.push_str("null"),
    }
    buf.push_str(",\"function_arn\":");
    push_opt_str(&mut buf, inv.function_arn.as_deref());
    buf.push_str(",\"function_request_id\":");
    json::push_str(&mut buf, &inv.request_id);
    buf
}

fn push_opt_str(buf: &mut String, v: Option<&str>) {
    match v {
        Some(s) => json::push_str(buf, s),
        None => buf.push_str("null"),
    }
}

fn write_line<S>(buf: &mut String, p: LineParts<'_, '_, S>)
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    // A correlation id or trace id set on a span or the event (per SQS record: the webhook id
    // and the webhook's own trace) wins over the invocation's.
    let correlation_override = innermost_field(&p, "correlation_id");
    let trace_override = innermost_field(&p, "xray_trace_id");

    buf.push_str("{\"level\":\"");
    buf.push_str(level_name(p.meta.level()));
    buf.push_str("\",\"location\":\"");
    json::push_str_contents(buf, p.meta.module_path().unwrap_or_else(|| p.meta.target()));
    if let Some(line) = p.meta.line() {
        buf.push(':');
        json::push_u64(buf, u64::from(line));
    }
    buf.push_str("\",\"message\":");
    json::push_str(buf, p.message);
    buf.push_str(",\"timestamp\":");
    push_timestamp(buf);

    let mut written = Written::default();
    match p.invocation {
        Some(inv) => {
            buf.push_str(inv.context_keys());
            buf.push_str(",\"xray_trace_id\":");
            push_opt_str(
                buf,
                trace_override.as_deref().or(inv.xray_trace_id.as_deref()),
            );
            let keys = inv.log_keys();
            buf.push_str(",\"correlation_id\":");
            push_opt_str(
                buf,
                correlation_override
                    .as_deref()
                    .or(keys.correlation_id.as_deref()),
            );
            push_sampling_rate(buf, p.process);
            write_fields(buf, p.fields, &mut written);
            for span in p.spans {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    write_fields(buf, &f.0, &mut written);
                }
            }
            for (k, v) in &keys.appended {
                if !written.contains(k) {
                    buf.push(',');
                    json::push_key(buf, k);
                    json::push_str(buf, v);
                }
            }
        }
        None => {
            let process = p.process;
            buf.push_str(",\"service\":");
            json::push_str(buf, &process.service);
            buf.push_str(",\"cold_start\":");
            buf.push_str(if process.invoked.load(Ordering::Relaxed) {
                "false"
            } else {
                "true"
            });
            buf.push_str(",\"function_name\":");
            push_opt_str(buf, process.function_name.as_deref());
            buf.push_str(",\"function_memory_size\":");
            match process.memory_size_mb {
                Some(m) => json::push_u64(buf, u64::from(m)),
                None => buf.push_str("null"),
            }
            buf.push_str(",\"function_arn\":null,\"function_request_id\":null,\"xray_trace_id\":");
            push_opt_str(buf, trace_override.as_deref());
            buf.push_str(",\"correlation_id\":");
            push_opt_str(buf, correlation_override.as_deref());
            push_sampling_rate(buf, p.process);
            write_fields(buf, p.fields, &mut written);
            for span in p.spans {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    write_fields(buf, &f.0, &mut written);
                }
            }
        }
    }
    buf.push('}');
}

/// Powertools adds `sampling_rate` to every line when debug sampling is configured.
fn push_sampling_rate(buf: &mut String, process: &ProcessInfo) {
    if process.sample_rate > 0.0 {
        buf.push_str(",\"sampling_rate\":");
        json::push_f64(buf, process.sample_rate);
    }
}

/// `key` as the event sets it, else as the innermost span that sets it does.
fn innermost_field<S>(p: &LineParts<'_, '_, S>, key: &str) -> Option<String>
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    field_str(p.fields, key).or_else(|| {
        p.spans.iter().find_map(|span| {
            span.extensions()
                .get::<SpanFields>()
                .and_then(|f| field_str(&f.0, key))
        })
    })
}

fn field_str(fields: &Fields, key: &str) -> Option<String> {
    fields.iter().find_map(|(k, v)| match v {
        FieldValue::Str(s) if *k == key => Some(s.clone()),
        FieldValue::Static(s) if *k == key => Some((*s).to_owned()),
        _ => None,
    })
}

/// The keys already written to a line (fields of inner spans and the event win over outer ones).
#[derive(Default)]
struct Written {
    inline: [&'static str; 16],
    len: usize,
    more: Vec<&'static str>,
}

impl Written {
    fn contains(&self, key: &str) -> bool {
        self.inline[..self.len].contains(&key) || self.more.contains(&key)
    }

    fn push(&mut self, key: &'static str) {
        if self.len < self.inline.len() {
            self.inline[self.len] = key;
            self.len += 1;
        } else {
            self.more.push(key);
        }
    }
}

fn write_fields(buf: &mut String, fields: &Fields, written: &mut Written) {
    for (k, v) in fields {
        if RESERVED_KEYS.contains(k) || written.contains(k) {
            continue;
        }
        written.push(k);
        buf.push(',');
        json::push_key(buf, k);
        v.write(buf);
    }
}

/// Writes one log line straight to the sink, for records that are not `tracing` events: the
/// incoming Lambda event, which Powertools logs as the line's `message` (a JSON object rather
/// than a field value).
pub(crate) fn write_direct(
    sink: &dyn Sink,
    inv: &InvocationState,
    level: Level,
    location: &str,
    message: &serde_json::Value,
) {
    let mut buf = String::with_capacity(1024);
    buf.push_str("{\"level\":\"");
    buf.push_str(level_name(&level));
    buf.push_str("\",\"location\":");
    json::push_str(&mut buf, location);
    buf.push_str(",\"message\":");
    buf.push_str(&message.to_string());
    buf.push_str(",\"timestamp\":");
    push_timestamp(&mut buf);
    let correlation_id = inv.log_keys().correlation_id.clone();
    let base = serde_json::json!({
        "service": inv.service,
        "cold_start": inv.cold_start,
        "function_name": inv.function_name,
        "function_memory_size": inv.memory_size_mb,
        "function_arn": inv.function_arn,
        "function_request_id": inv.request_id,
        "xray_trace_id": inv.xray_trace_id,
        "correlation_id": correlation_id,
    });
    for k in &RESERVED_KEYS[4..] {
        buf.push(',');
        json::push_key(&mut buf, k);
        buf.push_str(&base[*k].to_string());
    }
    buf.push('}');
    sink.write_line(&buf);
}

#[cfg(test)]
mod tests {
    use time::format_description::well_known::Rfc3339;

    use super::push_timestamp;

    #[test]
    fn timestamps_are_rfc3339_utc_milliseconds_of_now() {
        for _ in 0..3 {
            let before = time::OffsetDateTime::now_utc();
            let mut buf = String::new();
            push_timestamp(&mut buf);
            let after = time::OffsetDateTime::now_utc();
            let text: String = serde_json::from_str(&buf).expect("a JSON string");
            assert_eq!(text.len(), "2026-01-01T00:00:00.000Z".len(), "{text}");
            assert!(text.ends_with('Z'), "{text}");
            let at = time::OffsetDateTime::parse(&text, &Rfc3339).expect("RFC 3339");
            let floor =
                |t: time::OffsetDateTime| t.replace_nanosecond(t.millisecond() as u32 * 1_000_000);
            assert!(floor(before).expect("ms") <= at && at <= after, "{text}");
            // Within the same second the cached date is reused.
            std::thread::sleep(std::time::Duration::from_millis(7));
        }
    }
}
