//! The span layer: what becomes of a traced `tracing` span (see [`crate::tracer`] for which
//! ones are). It keeps, in the span's registry extensions, just what a segment document needs
//! (name, kind, ids, start and end time, attributes, events, status) and, when a sampled span
//! closes, hands it to the invocation's span buffer as the SDK's [`SpanData`], which the direct
//! encoder (`segment.rs`) or `opentelemetry-aws`'s translator writes.
//!
//! It does what `tracing-opentelemetry`'s layer did in front of `opentelemetry_sdk`'s tracer,
//! with the same results (the parent, the sampling decision, the ids, the attributes, the
//! status and when each can still change) for a fraction of the cost: no span builder, no SDK
//! span, no OpenTelemetry context attached at each enter. A span is *started* (its ids and
//! sampling decision fixed) when it is first entered, used as a parent or asked for its context;
//! until then its parent can be replaced ([`set_parent`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_sdk::trace::{IdGenerator as _, SpanData, SpanEvents, SpanLinks};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::logger::INVOCATION_TARGET;
use crate::tracer::{RECORD_TARGET, SpanBuffer, is_traced};

/// The SDK's default limits, which the exported spans keep.
const MAX_ATTRIBUTES: usize = 128;
const MAX_EVENTS: usize = 128;
const MAX_EVENT_ATTRIBUTES: usize = 128;

/// The `tracing` fields that set the span's name, kind and status instead of an attribute.
const NAME_FIELD: &str = "otel.name";
const KIND_FIELD: &str = "otel.kind";
const STATUS_CODE_FIELD: &str = "otel.status_code";
const STATUS_DESCRIPTION_FIELD: &str = "otel.status_description";

/// Whether a span's ids and sampling decision are fixed yet.
enum Identity {
    /// Not started; the parent (invalid for a root) can still change.
    Pending { parent: SpanContext },
    /// Started: its own context, and its parent's.
    Started {
        context: SpanContext,
        parent: SpanContext,
    },
}

/// What one traced span records, in its registry extensions.
pub(crate) struct SpanRecord {
    name: Cow<'static, str>,
    kind: SpanKind,
    start: SystemTime,
    /// The last exit (a span entered several times ends at its last exit).
    end: Option<SystemTime>,
    attributes: Vec<KeyValue>,
    dropped_attributes: u32,
    events: Vec<Event>,
    dropped_events: u32,
    status: Status,
    identity: Identity,
}

impl SpanRecord {
    fn started(&self) -> bool {
        matches!(self.identity, Identity::Started { .. })
    }

    /// Started and not sampled: nothing it records can be exported any more, so nothing is
    /// kept (its context still is, for the trace headers it propagates).
    fn dropped(&self) -> bool {
        matches!(&self.identity, Identity::Started { context, .. } if !context.is_sampled())
    }

    fn push_attribute(&mut self, kv: KeyValue) {
        if self.dropped() {
            return;
        }
        // Before the start the SDK's builder keeps every attribute (cut to the limit at the
        // start); after it, the span counts the ones beyond the limit as dropped.
        if !self.started() || self.attributes.len() < MAX_ATTRIBUTES {
            self.attributes.push(kv);
        } else {
            self.dropped_attributes += 1;
        }
    }

    fn set_status(&mut self, status: Status) {
        // Before the start the last status set wins; after it, only a "higher" one (the SDK's
        // order: Ok > Error > Unset).
        if !self.started() || status > self.status {
            self.status = status;
        }
    }

    fn apply(&mut self, updates: Updates) {
        if self.dropped() {
            return;
        }
        if !self.started() {
            if let Some(name) = updates.name {
                self.name = name;
            }
            if let Some(kind) = updates.kind {
                self.kind = kind;
            }
        }
        if let Some(status) = updates.status {
            self.set_status(status);
        }
        for kv in updates.attributes {
            self.push_attribute(kv);
        }
    }

    /// Adds an event (the failure's exception).
    pub(crate) fn add_event(&mut self, mut event: Event) {
        if self.dropped() {
            return;
        }
        if self.started() && self.events.len() >= MAX_EVENTS {
            self.dropped_events += 1;
            return;
        }
        if self.started() {
            event.dropped_attributes_count = cut(&mut event.attributes, MAX_EVENT_ATTRIBUTES);
        }
        self.events.push(event);
    }
}

fn cut<T>(items: &mut Vec<T>, limit: usize) -> u32 {
    let dropped = items.len().saturating_sub(limit);
    items.truncate(limit);
    u32::try_from(dropped).unwrap_or(u32::MAX)
}

/// What a span's fields say: name, kind, status and attributes.
#[derive(Default)]
struct Updates {
    name: Option<Cow<'static, str>>,
    kind: Option<SpanKind>,
    status: Option<Status>,
    attributes: Vec<KeyValue>,
}

fn span_kind(s: &str) -> Option<SpanKind> {
    [
        ("server", SpanKind::Server),
        ("client", SpanKind::Client),
        ("producer", SpanKind::Producer),
        ("consumer", SpanKind::Consumer),
        ("internal", SpanKind::Internal),
    ]
    .into_iter()
    .find_map(|(name, kind)| s.eq_ignore_ascii_case(name).then_some(kind))
}

fn status(s: &str) -> Status {
    if s.eq_ignore_ascii_case("ok") {
        Status::Ok
    } else if s.eq_ignore_ascii_case("error") {
        Status::error("")
    } else {
        Status::Unset
    }
}

impl Updates {
    fn special(&mut self, name: &str, value: &str) -> bool {
        match name {
            NAME_FIELD => self.name = Some(Cow::Owned(value.to_owned())),
            KIND_FIELD => self.kind = span_kind(value),
            STATUS_CODE_FIELD => self.status = Some(status(value)),
            STATUS_DESCRIPTION_FIELD => self.status = Some(Status::error(value.to_owned())),
            _ => return false,
        }
        true
    }
}

impl Visit for Updates {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.special(field.name(), value) {
            self.attributes
                .push(KeyValue::new(field.name(), attribute_text(value)));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if !self.special(field.name(), &text) {
            self.attributes.push(KeyValue::new(field.name(), text));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut chain: Vec<StringValue> = Vec::new();
        let mut next = value.source();
        while let Some(err) = next {
            chain.push(err.to_string().into());
            next = err.source();
        }
        let message = value.to_string();
        // As OpenTelemetry's exception conventions name them, then the field and its chain.
        self.attributes
            .push(KeyValue::new("exception.message", message.clone()));
        self.attributes.push(KeyValue::new(
            "exception.stacktrace",
            Value::Array(Array::String(chain.clone())),
        ));
        self.attributes.push(KeyValue::new(field.name(), message));
        self.attributes.push(KeyValue::new(
            Key::new(format!("{}.chain", field.name())),
            Value::Array(Array::String(chain)),
        ));
    }
}

/// The text every AWS call span records (the RPC system, the services and operations payhook
/// calls) as static text, so the span and log layers borrow it instead of copying it; `None`
/// for anything else. None of it is sensitive: the log layer does not redact it.
pub(crate) fn known_text(value: &str) -> Option<&'static str> {
    Some(match value {
        "aws-api" => "aws-api",
        "DynamoDB" => "DynamoDB",
        "SQS" => "SQS",
        "EventBridge" => "EventBridge",
        "SSM" => "SSM",
        "S3" => "S3",
        "GetItem" => "GetItem",
        "PutItem" => "PutItem",
        "UpdateItem" => "UpdateItem",
        "DeleteItem" => "DeleteItem",
        "Query" => "Query",
        "TransactWriteItems" => "TransactWriteItems",
        "SendMessage" => "SendMessage",
        "ReceiveMessage" => "ReceiveMessage",
        "DeleteMessage" => "DeleteMessage",
        "ChangeMessageVisibility" => "ChangeMessageVisibility",
        "PutEvents" => "PutEvents",
        "GetParameters" => "GetParameters",
        "GetParameter" => "GetParameter",
        "GetObject" => "GetObject",
        "PutObject" => "PutObject",
        _ => return None,
    })
}

/// A string attribute: [`known_text`] borrowed, anything else copied.
fn attribute_text(value: &str) -> StringValue {
    known_text(value).map_or_else(|| StringValue::from(value.to_owned()), StringValue::from)
}

/// The layer (installed behind the [`crate::tracer::is_traced`] filter).
pub(crate) struct SpanLayer {
    ids: XrayIdGenerator,
    scope: InstrumentationScope,
    buffer: Arc<SpanBuffer>,
}

impl SpanLayer {
    pub(crate) fn new(buffer: Arc<SpanBuffer>) -> Self {
        Self {
            ids: XrayIdGenerator::default(),
            // The scope the SDK's tracer gave its spans.
            scope: InstrumentationScope::builder("payhook-telemetry").build(),
            buffer,
        }
    }

    /// Fixes the span's ids and sampling decision, as the SDK's tracer with the
    /// [`crate::tracer::InvocationSampler`] does, and returns its context.
    fn start<'r>(&self, record: &'r mut SpanRecord) -> &'r SpanContext {
        if let Identity::Pending { parent } = &mut record.identity {
            let parent = std::mem::replace(parent, SpanContext::empty_context());
            let span_id = self.ids.new_span_id();
            // The sampler's decision: follow a parent; without one keep only a server span
            // (the local stack's function segment).
            let (trace_id, sampled, state) = if parent.is_valid() {
                let state = parent.trace_state().clone();
                (parent.trace_id(), parent.is_sampled(), state)
            } else {
                let sampled = record.kind == SpanKind::Server;
                (self.ids.new_trace_id(), sampled, TraceState::default())
            };
            // As the SDK's tracer: a kept span has its parent's flags with `sampled` set, a
            // dropped one none.
            let flags = if sampled {
                parent.trace_flags().with_sampled(true)
            } else {
                TraceFlags::default()
            };
            let context = SpanContext::new(trace_id, span_id, flags, false, state);
            record.dropped_attributes = cut(&mut record.attributes, MAX_ATTRIBUTES);
            record.dropped_events = cut(&mut record.events, MAX_EVENTS);
            for event in &mut record.events {
                event.dropped_attributes_count = cut(&mut event.attributes, MAX_EVENT_ATTRIBUTES);
            }
            record.identity = Identity::Started { context, parent };
        }
        match &record.identity {
            Identity::Started { context, .. } => context,
            Identity::Pending { .. } => unreachable!("started above"),
        }
    }

    /// The started context of the span `id`, if this layer records it.
    fn context_of<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<SpanContext>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = ctx.span(id)?;
        let mut ext = span.extensions_mut();
        let record = ext.get_mut::<SpanRecord>()?;
        Some(self.start(record).clone())
    }

    /// The parent `tracing-opentelemetry` chose: an explicit parent this layer records, or for
    /// a contextual span the innermost entered traced span (else the thread's current
    /// OpenTelemetry context); an explicit root, or an explicit parent not traced, has none.
    fn parent_of<S>(&self, attrs: &Attributes<'_>, ctx: &Context<'_, S>) -> SpanContext
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if let Some(parent) = attrs.parent()
            && let Some(sc) = self.context_of(parent, ctx)
        {
            return sc;
        }
        if !attrs.is_contextual() {
            return SpanContext::empty_context();
        }
        // The innermost entered span that is traced (spans the filter lets through for the
        // log layer's sake, such as log scopes, are passed over).
        if let Some(current) = ctx.lookup_current()
            && let Some(sc) = current
                .scope()
                .find_map(|span| self.context_of(&span.id(), ctx))
        {
            return sc;
        }
        opentelemetry::Context::current()
            .span()
            .span_context()
            .clone()
    }

    fn export(&self, mut record: SpanRecord) {
        self.start(&mut record);
        let Identity::Started { context, parent } = record.identity else {
            return;
        };
        if !context.is_sampled() {
            return;
        }
        let mut events = SpanEvents::default();
        events.events = record.events;
        events.dropped_count = record.dropped_events;
        let end = record.end.unwrap_or_else(opentelemetry::time::now);
        self.buffer.push(SpanData {
            parent_span_id: parent.span_id(),
            parent_span_is_remote: parent.is_valid() && parent.is_remote(),
            span_context: context,
            span_kind: record.kind,
            name: record.name,
            start_time: record.start,
            end_time: end,
            attributes: record.attributes,
            dropped_attributes_count: record.dropped_attributes,
            events,
            links: SpanLinks::default(),
            status: record.status,
            instrumentation_scope: self.scope.clone(),
        });
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // The layer shares the log layer's filter, which lets more spans through than are
        // traced: only a traced span gets a record (the later callbacks find none on others).
        if !is_traced(attrs.metadata()) {
            return;
        }
        let parent = self.parent_of(attrs, &ctx);
        let Some(span) = ctx.span(id) else {
            return;
        };
        let meta = attrs.metadata();
        if parent.is_valid() && !parent.is_sampled() && !REPARENTED_TARGETS.contains(&meta.target())
        {
            // Its parent is not sampled and no other parent can be given to it, so neither is
            // it, whatever it records: its ids are fixed now and its fields not read. (Most
            // invocations in AWS are not sampled: the default rule traces one request a second
            // and 5 % of the rest.)
            let context = SpanContext::new(
                parent.trace_id(),
                self.ids.new_span_id(),
                TraceFlags::default(),
                false,
                parent.trace_state().clone(),
            );
            span.extensions_mut().insert(SpanRecord {
                name: Cow::Borrowed(meta.name()),
                kind: SpanKind::Internal,
                start: SystemTime::UNIX_EPOCH,
                end: None,
                attributes: Vec::new(),
                dropped_attributes: 0,
                events: Vec::new(),
                dropped_events: 0,
                status: Status::Unset,
                identity: Identity::Started { context, parent },
            });
            return;
        }
        // Room for every field the span declares (most become attributes), in one allocation.
        let mut updates = Updates {
            attributes: Vec::with_capacity(attrs.metadata().fields().len()),
            ..Updates::default()
        };
        attrs.record(&mut updates);
        let Updates {
            name,
            kind,
            status,
            attributes,
        } = updates;
        span.extensions_mut().insert(SpanRecord {
            name: name.unwrap_or(Cow::Borrowed(attrs.metadata().name())),
            kind: kind.unwrap_or(SpanKind::Internal),
            start: opentelemetry::time::now(),
            end: None,
            attributes,
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            status: status.unwrap_or(Status::Unset),
            identity: Identity::Pending { parent },
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        let Some(record) = ext.get_mut::<SpanRecord>() else {
            return;
        };
        if record.dropped() {
            return;
        }
        let mut updates = Updates::default();
        values.record(&mut updates);
        record.apply(updates);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        // Started at the first enter, as `tracing-opentelemetry` did (it attached the span's
        // context): a parent set after that no longer applies.
        let _ = self.context_of(id, &ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        if let Some(record) = span.extensions_mut().get_mut::<SpanRecord>()
            && !record.dropped()
        {
            record.end = Some(opentelemetry::time::now());
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let record = span.extensions_mut().remove::<SpanRecord>();
        if let Some(record) = record {
            self.export(record);
        }
    }
}

/// Runs `f` on the record of `span` (and the layer), if the span is traced and its subscriber
/// has this layer.
fn with_record<T>(
    span: &tracing::Span,
    f: impl FnOnce(&SpanLayer, &mut SpanRecord) -> T,
) -> Option<T> {
    span.with_subscriber(|(id, dispatch)| with_record_in(dispatch, id, f))
        .flatten()
}

fn with_record_in<T>(
    dispatch: &Dispatch,
    id: &Id,
    f: impl FnOnce(&SpanLayer, &mut SpanRecord) -> T,
) -> Option<T> {
    let layer = dispatch.downcast_ref::<SpanLayer>()?;
    let registry = dispatch.downcast_ref::<Registry>()?;
    let span = registry.span(id)?;
    let mut ext = span.extensions_mut();
    let record = ext.get_mut::<SpanRecord>()?;
    Some(f(layer, record))
}

/// The targets of the spans [`set_parent`] is used on (an invocation's, an SQS record's): a
/// span of another target keeps the parent it was created with, so its sampling decision is
/// known as soon as its parent's is.
const REPARENTED_TARGETS: [&str; 2] = [INVOCATION_TARGET, RECORD_TARGET];

/// Makes `parent` the parent of `span`, unless it has started.
pub(crate) fn set_parent(span: &tracing::Span, parent: SpanContext) {
    debug_assert!(
        span.metadata()
            .is_none_or(|m| REPARENTED_TARGETS.contains(&m.target())),
        "set_parent on a span whose target is not in REPARENTED_TARGETS: {:?}",
        span.metadata().map(|m| m.target())
    );
    with_record(span, |_, record| {
        if let Identity::Pending { parent: slot } = &mut record.identity {
            *slot = parent;
        }
    });
}

/// Adds attributes to `span`.
pub(crate) fn set_attributes(span: &tracing::Span, kvs: impl IntoIterator<Item = KeyValue>) {
    with_record(span, |_, record| {
        for kv in kvs {
            record.push_attribute(kv);
        }
    });
}

/// Sets the status of `span`.
pub(crate) fn set_status(span: &tracing::Span, status: Status) {
    with_record(span, |_, record| record.set_status(status));
}

/// Adds an event to `span`.
pub(crate) fn add_event(span: &tracing::Span, event: Event) {
    with_record(span, |_, record| record.add_event(event));
}

/// The context of the innermost traced span around (or at) the current span, started; `None`
/// outside traced spans.
pub(crate) fn current_context() -> Option<SpanContext> {
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let current = dispatch.current_span();
        let id = current.id()?;
        let span = registry.span(id)?;
        span.scope()
            .find_map(|s| with_record_in(dispatch, &s.id(), |layer, r| layer.start(r).clone()))
    })
}
