//! A direct encoder for the segment documents of the usual invocation: a handler subsegment with
//! its AWS calls nested in it, successful, annotated with strings, booleans and integers. It
//! writes the bytes `opentelemetry-aws`'s translator and serialiser write for the same spans
//! (`tests/it/output_bytes.rs` pins them, and the tests below compare both encoders span for
//! span), in a fifth of the time and without building the translator's intermediate documents.
//!
//! Anything else (a failure, an event, an HTTP status, another attribute, deeper nesting, a
//! name or annotation the translator would reject or rewrite, a trace id near the edge of the
//! window X-Ray accepts, several traces in one export) is left to the translator: [`encode`]
//! returns `false` and writes nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;

use crate::tracer::Annotation;

/// The translator drops a trace whose id is older than 30 days or more than 5 minutes ahead;
/// the encoder leaves ids within an hour (past) or a minute (future) of either edge to it.
const OLDEST_TRACE_SECS: u64 = 30 * 24 * 3600 - 3600;
const NEWEST_TRACE_SECS: u64 = 5 * 60 - 60;
/// The translator's limits on annotation values and on annotations per document.
const MAX_ANNOTATION_STRING: usize = 1000;
const MAX_ANNOTATIONS: usize = 16;
/// The longest (sub)segment name the translator accepts.
const MAX_NAME: usize = 200;

/// One value of an annotation, as the translator writes it.
#[derive(Clone, Copy)]
enum AnnotationValue<'a> {
    Bool(bool),
    Int(i64),
    Str(&'a str),
}

/// What the document of one span says, read from its attributes.
struct Subsegment<'a> {
    span: &'a SpanData,
    name: &'a str,
    namespace: Option<&'static str>,
    operation: Option<&'a str>,
    /// How many of the span's attributes are annotations ([`annotations`] lists them).
    annotation_count: usize,
    start: f64,
    end: f64,
}

fn seconds(t: SystemTime) -> Option<f64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

/// Characters every name may hold (ASCII letters and digits, space and the translator's
/// symbols); other names are left to the translator's own check.
fn is_plain_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _.:/%&#=+-@".contains(&b))
}

/// An annotation key the translator takes as it is (no dot, so never an attribute it maps).
fn is_plain_annotation_key(key: &str) -> bool {
    (1..=500).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn annotation_value(value: &Value) -> Option<AnnotationValue<'_>> {
    match value {
        Value::Bool(b) => Some(AnnotationValue::Bool(*b)),
        Value::I64(i) => Some(AnnotationValue::Int(*i)),
        Value::String(s) if s.as_str().len() <= MAX_ANNOTATION_STRING => {
            Some(AnnotationValue::Str(s.as_str()))
        }
        _ => None,
    }
}

fn string_value(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Reads one span, or `None` when it is not a shape this encoder writes.
fn read_span(span: &SpanData) -> Option<Subsegment<'_>> {
    let remote = match span.span_kind {
        SpanKind::Internal => false,
        SpanKind::Client => true,
        _ => return None,
    };
    if span.status != Status::Unset
        || !span.events.events.is_empty()
        || span.events.dropped_count != 0
        || !span.links.links.is_empty()
        || span.span_context.span_id() == SpanId::INVALID
    {
        return None;
    }
    let (start, end) = (seconds(span.start_time)?, seconds(span.end_time)?);
    if end < start {
        return None;
    }
    let mut aws_api = false;
    let mut aws_service = None;
    let mut operation = None;
    let mut keys = [""; MAX_ANNOTATIONS];
    let mut count = 0;
    for KeyValue { key, value, .. } in &span.attributes {
        match key.as_str() {
            "rpc.system" if string_value(value) == Some("aws-api") => aws_api = true,
            "aws.service" => aws_service = Some(string_value(value).filter(|s| !s.is_empty())?),
            "aws.operation" => operation = Some(string_value(value)?),
            key => {
                let key = match key.strip_prefix("annotation.") {
                    Some(k) => k,
                    None if Annotation::ALL.iter().any(|a| a.as_str() == key) => key,
                    None => return None,
                };
                if !is_plain_annotation_key(key)
                    || count == MAX_ANNOTATIONS
                    || keys[..count].contains(&key)
                {
                    return None;
                }
                annotation_value(value)?;
                keys[count] = key;
                count += 1;
            }
        }
    }
    // Named after the AWS service it calls, as the translator names it.
    let name = aws_service.unwrap_or(span.name.as_ref());
    if !is_plain_name(name) || (aws_api && aws_service.is_none()) {
        return None;
    }
    let namespace = if aws_api || aws_service.is_some() {
        Some("aws")
    } else if remote {
        Some("remote")
    } else {
        None
    };
    Some(Subsegment {
        span,
        name,
        namespace,
        operation,
        annotation_count: count,
        start,
        end,
    })
}

/// The annotations of a span [`read_span`] accepted, in order: every attribute but the AWS
/// call's own.
fn annotations(span: &SpanData) -> impl Iterator<Item = (&str, AnnotationValue<'_>)> {
    span.attributes
        .iter()
        .filter_map(|KeyValue { key, value, .. }| {
            let key = key.as_str();
            if matches!(key, "rpc.system" | "aws.service" | "aws.operation") {
                return None;
            }
            let key = key.strip_prefix("annotation.").unwrap_or(key);
            Some((key, annotation_value(value)?))
        })
}

fn push_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn push_hex_id(out: &mut Vec<u8>, id: SpanId) {
    push_hex(out, &id.to_bytes());
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

/// Writes one (sub)segment; `top` for the document's own subsegment (with its type, trace id
/// and parent), `nested` the subsegments written inside it.
fn write_subsegment(
    out: &mut Vec<u8>,
    s: &Subsegment<'_>,
    top: bool,
    nested: &[Subsegment<'_>],
    precursors: &[SpanId],
) {
    out.extend_from_slice(if top {
        b"{\"type\":\"subsegment\",\"name\":"
    } else {
        b"{\"name\":"
    });
    push_json(out, s.name);
    out.extend_from_slice(b",\"id\":\"");
    push_hex_id(out, s.span.span_context.span_id());
    if top {
        let trace = s.span.span_context.trace_id().to_bytes();
        out.extend_from_slice(b"\",\"trace_id\":\"1-");
        push_hex(out, &trace[..4]);
        out.push(b'-');
        push_hex(out, &trace[4..]);
    }
    out.extend_from_slice(b"\",\"start_time\":");
    push_json(out, &s.start);
    out.extend_from_slice(b",\"end_time\":");
    push_json(out, &s.end);
    if top {
        out.extend_from_slice(b",\"parent_id\":\"");
        push_hex_id(out, s.span.parent_span_id);
        out.push(b'"');
    }
    if let Some(ns) = s.namespace {
        out.extend_from_slice(b",\"namespace\":\"");
        out.extend_from_slice(ns.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"aws\":{\"xray\":{\"sdk\":\"opentelemetry for rust\"}");
    if let Some(op) = s.operation {
        out.extend_from_slice(b",\"operation\":");
        push_json(out, op);
    }
    out.push(b'}');
    if s.annotation_count > 0 {
        out.extend_from_slice(b",\"annotations\":{");
        for (i, (key, value)) in annotations(s.span).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json(out, key);
            out.push(b':');
            match value {
                AnnotationValue::Bool(b) => push_json(out, &b),
                AnnotationValue::Int(n) => push_json(out, &n),
                AnnotationValue::Str(v) => push_json(out, v),
            }
        }
        out.push(b'}');
    }
    if !nested.is_empty() {
        out.extend_from_slice(b",\"subsegments\":[");
        // The translator's precursors: each subsegment lists the siblings that ended before it
        // started, as long as none overlapped (an overlapping one starts no chain of its own).
        let mut chain: [SpanId; 32] = [SpanId::INVALID; 32];
        let mut chained = 0;
        let mut last_end: Option<f64> = None;
        for (i, child) in nested.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let follows = last_end.is_none_or(|end| end <= child.start);
            let before = if follows { &chain[..chained] } else { &[][..] };
            write_subsegment(out, child, false, &[], before);
            if follows && chained < chain.len() {
                last_end = Some(child.end);
                chain[chained] = child.span.span_context.span_id();
                chained += 1;
            }
        }
        out.push(b']');
    }
    if !precursors.is_empty() {
        out.extend_from_slice(b",\"precursor_ids\":[");
        for (i, id) in precursors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            push_hex_id(out, *id);
            out.push(b'"');
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// Appends to `out` the one segment document the translator would make of `batch` and returns
/// `true`; returns `false` (and leaves `out` alone) when the batch is not one trace's subsegment
/// with its direct children in the shapes described in the module documentation.
pub(crate) fn encode(batch: &[SpanData], out: &mut Vec<u8>) -> bool {
    const MAX_SPANS: usize = 32;
    if batch.is_empty() || batch.len() > MAX_SPANS {
        return false;
    }
    let trace_id = batch[0].span_context.trace_id();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let trace_secs = u64::from(u32::from_be_bytes(
        trace_id.to_bytes()[..4].try_into().unwrap_or([0; 4]),
    ));
    if trace_secs <= now.saturating_sub(OLDEST_TRACE_SECS) || trace_secs >= now + NEWEST_TRACE_SECS
    {
        return false;
    }
    let in_batch = |id: SpanId| batch.iter().any(|s| s.span_context.span_id() == id);
    // The root: the one span whose parent is outside the batch (Lambda's segment).
    let mut root = None;
    for (i, span) in batch.iter().enumerate() {
        if span.span_context.trace_id() != trace_id {
            return false;
        }
        if !in_batch(span.parent_span_id) {
            if root.is_some() || span.parent_span_id == SpanId::INVALID {
                return false;
            }
            root = Some(i);
        }
    }
    let Some(root) = root else {
        return false;
    };
    let root_id = batch[root].span_context.span_id();
    let Some(top) = read_span(&batch[root]) else {
        return false;
    };
    let mut children: Vec<Subsegment<'_>> = Vec::with_capacity(batch.len() - 1);
    for (i, span) in batch.iter().enumerate() {
        if i == root {
            continue;
        }
        // Deeper nesting, or two spans with one id, is the translator's.
        if span.parent_span_id != root_id || span.span_context.span_id() == root_id {
            return false;
        }
        match read_span(span) {
            Some(s) => children.push(s),
            None => return false,
        }
    }
    children.sort_by(|a, b| a.start.total_cmp(&b.start));
    // Siblings that started at the same instant are ordered by the translator's tree; leave it
    // to it, as spans sharing an id.
    if children.windows(2).any(|w| {
        w[0].start == w[1].start
            || w[0].span.span_context.span_id() == w[1].span.span_context.span_id()
    }) {
        return false;
    }
    write_subsegment(out, &top, true, &children, &[]);
    true
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_aws::xray_exporter::SegmentTranslator;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    const LAMBDA_SEGMENT: u64 = 0x5399_5c3f_42cd_8ad8;

    fn trace_id(age_secs: u64) -> TraceId {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            - age_secs;
        TraceId::from(u128::from(secs as u32) << 96 | 0x00c0_ffee_1234_5678_9abc_def0)
    }

    fn span(
        trace: TraceId,
        id: u64,
        parent: u64,
        kind: SpanKind,
        name: &'static str,
        (start_us, end_us): (u64, u64),
        attributes: Vec<KeyValue>,
    ) -> SpanData {
        let base = UNIX_EPOCH + Duration::from_nanos(1_767_225_600_123_456_789);
        SpanData {
            span_context: SpanContext::new(
                trace,
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: parent == LAMBDA_SEGMENT,
            span_kind: kind,
            name: Cow::Borrowed(name),
            start_time: base + Duration::from_micros(start_us),
            end_time: base + Duration::from_micros(end_us),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("payhook-telemetry").build(),
        }
    }

    fn aws_call(trace: TraceId, id: u64, parent: u64, start: u64, end: u64) -> SpanData {
        span(
            trace,
            id,
            parent,
            SpanKind::Client,
            "aws_call",
            (start, end),
            vec![
                KeyValue::new("rpc.system", "aws-api"),
                KeyValue::new(
                    "aws.service",
                    if id.is_multiple_of(2) {
                        "SQS"
                    } else {
                        "DynamoDB"
                    },
                ),
                KeyValue::new("aws.operation", "SendMessage"),
            ],
        )
    }

    fn handler(trace: TraceId, start: u64, end: u64, attributes: Vec<KeyValue>) -> SpanData {
        span(
            trace,
            1,
            LAMBDA_SEGMENT,
            SpanKind::Internal,
            "## webhook-validator",
            (start, end),
            attributes,
        )
    }

    fn annotations() -> Vec<KeyValue> {
        vec![
            KeyValue::new("annotation.ColdStart", true),
            KeyValue::new("annotation.Service", "webhook-validator"),
            KeyValue::new("provider", "st\"ri\\pe\u{1}\u{8}é"),
            KeyValue::new("webhook_id", "stripe:evt_1"),
            KeyValue::new("annotation.attempt", 3_i64),
        ]
    }

    /// What `opentelemetry-aws` writes for the batch.
    fn translated(batch: &[SpanData]) -> Vec<String> {
        let translator = SegmentTranslator::new()
            .with_indexed_attrs(Annotation::ALL.iter().map(|a| a.as_str().to_owned()))
            .always_nest_subsegments();
        translator
            .translate_spans(batch)
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    fn direct(batch: &[SpanData]) -> Option<String> {
        let mut out = Vec::new();
        encode(batch, &mut out).then(|| String::from_utf8(out).expect("UTF-8"))
    }

    /// The direct encoder writes the batch, byte for byte as the translator does.
    fn assert_same(batch: &[SpanData]) {
        let ours = direct(batch).unwrap_or_else(|| panic!("not encoded directly: {batch:?}"));
        assert_eq!(vec![ours], translated(batch));
    }

    #[test]
    fn the_usual_invocation_is_written_as_the_translator_writes_it() {
        let t = trace_id(10);
        // The bench's shape: a handler and two calls, one after the other.
        assert_same(&[
            aws_call(t, 2, 1, 10, 20),
            aws_call(t, 3, 1, 30, 45),
            handler(t, 0, 50, annotations()),
        ]);
        // No calls, no annotations.
        assert_same(&[handler(t, 0, 50, Vec::new())]);
        // Calls ending where the next starts, overlapping, out of order in the batch, a remote
        // call that is not AWS's, an internal child, more than a few siblings.
        let mut batch = vec![
            aws_call(t, 4, 1, 30, 60),
            aws_call(t, 2, 1, 10, 20),
            aws_call(t, 3, 1, 20, 40),
            span(
                t,
                5,
                1,
                SpanKind::Client,
                "GET example",
                (61, 70),
                Vec::new(),
            ),
            span(
                t,
                6,
                1,
                SpanKind::Internal,
                "normalise",
                (70, 71),
                Vec::new(),
            ),
            handler(t, 0, 80, annotations()),
        ];
        for i in 0..20 {
            batch.push(aws_call(t, 10 + i, 1, 100 + 10 * i, 105 + 10 * i));
        }
        assert_same(&batch);
        // A handler with only its indexed attributes; an old but accepted trace.
        let old = trace_id(20 * 24 * 3600);
        assert_same(&[
            aws_call(old, 2, 1, 10, 20),
            handler(old, 0, 50, vec![KeyValue::new("tier", "high")]),
        ]);
    }

    #[test]
    fn other_shapes_are_left_to_the_translator() {
        let t = trace_id(10);
        let mut failed = handler(t, 0, 50, Vec::new());
        failed.status = Status::error("queue_unavailable");
        let mut with_http = aws_call(t, 2, 1, 10, 20);
        with_http
            .attributes
            .push(KeyValue::new("http.response.status_code", 500_i64));
        let refused: Vec<Vec<SpanData>> = vec![
            vec![failed],
            vec![with_http, handler(t, 0, 50, Vec::new())],
            // Grandchildren.
            vec![
                aws_call(t, 3, 2, 12, 13),
                aws_call(t, 2, 1, 10, 20),
                handler(t, 0, 50, Vec::new()),
            ],
            // Siblings starting together.
            vec![
                aws_call(t, 2, 1, 10, 20),
                aws_call(t, 3, 1, 10, 20),
                handler(t, 0, 50, Vec::new()),
            ],
            // Two roots, two traces, a dropped trace, a server span, a float annotation, an
            // unknown attribute, a name the translator refuses.
            vec![handler(t, 0, 50, Vec::new()), handler(t, 0, 50, Vec::new())],
            vec![
                aws_call(trace_id(20), 2, 1, 10, 20),
                handler(t, 0, 50, Vec::new()),
            ],
            vec![handler(trace_id(31 * 24 * 3600), 0, 50, Vec::new())],
            vec![span(
                t,
                1,
                LAMBDA_SEGMENT,
                SpanKind::Server,
                "fn",
                (0, 5),
                Vec::new(),
            )],
            vec![handler(
                t,
                0,
                5,
                vec![KeyValue::new("annotation.ratio", 0.5)],
            )],
            vec![handler(
                t,
                0,
                5,
                vec![KeyValue::new("messaging.message_id", "m")],
            )],
            vec![span(
                t,
                1,
                LAMBDA_SEGMENT,
                SpanKind::Internal,
                "a|b",
                (0, 5),
                Vec::new(),
            )],
        ];
        for batch in refused {
            assert_eq!(direct(&batch), None, "{batch:?}");
        }
    }
}
