//! A direct encoder for the segment documents of the usual invocations: a handler subsegment
//! with its AWS calls nested in it (and, in a provider processor, a record subsegment per
//! message with its calls), or the local stack's function segment around them; successful,
//! annotated with strings, booleans and integers. For a handler with its calls it writes the
//! bytes `opentelemetry-aws`'s translator and serialiser write for the same spans
//! (`tests/it/output_bytes.rs` pins them, and the tests below compare both encoders span for
//! span), in a fifth of the time and without building the translator's intermediate
//! documents. Deeper trees it nests at every level, where the translator nests one level and
//! sends each deeper subsegment as a document of its own; the tests below check that both
//! describe the same subsegments with the same parents, traces and precursors.
//!
//! Anything else (a failure, an event, an HTTP status, another attribute, a name or annotation
//! the translator would reject or rewrite, a trace id near the edge of the window X-Ray
//! accepts) is left to the translator: [`plan`] returns `None` and nothing is written.

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
/// Attributes the translator leaves out of the document (see [`read_span`]).
const IGNORED_ATTRIBUTES: [&str; 3] = ["correlation_id", "xray_trace_id", "messaging.message_id"];
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
    /// A server span: the function segment the local stack writes where Lambda would.
    segment: bool,
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
    let (remote, segment) = match span.span_kind {
        SpanKind::Internal => (false, false),
        SpanKind::Client => (true, false),
        SpanKind::Server => (false, true),
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
            // A segment's service is its name (the translator would name it after a different
            // one).
            "service.name" if segment && string_value(value) == Some(span.name.as_ref()) => {}
            // Log-correlation fields of payhook's record spans: not indexed, not mapped, and
            // with metadata off the translator writes nothing of them.
            key if IGNORED_ATTRIBUTES.contains(&key) => {}
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
    if !is_plain_name(name)
        || (aws_api && aws_service.is_none())
        || (segment && (aws_api || aws_service.is_some() || operation.is_some()))
    {
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
        segment,
    })
}

/// The annotations of a span [`read_span`] accepted, in order: every attribute but the AWS
/// call's own.
fn annotations(span: &SpanData) -> impl Iterator<Item = (&str, AnnotationValue<'_>)> {
    span.attributes
        .iter()
        .filter_map(|KeyValue { key, value, .. }| {
            let key = key.as_str();
            if matches!(
                key,
                "rpc.system" | "aws.service" | "aws.operation" | "service.name"
            ) || IGNORED_ATTRIBUTES.contains(&key)
            {
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

/// A JSON string: copied between quotes when nothing in it needs escaping (names, ids,
/// operations: nearly always), else escaped by `serde_json` as before.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if crate::json::needs_escape(s.as_bytes()) {
        push_json(out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn push_hex_id(out: &mut Vec<u8>, id: SpanId) {
    push_hex(out, &id.to_bytes());
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Ids are at most 16 bytes (a span id 8, a trace id's parts 4 and 12); written through a
    // buffer, so the output grows once rather than checking its capacity per digit.
    debug_assert!(bytes.len() <= 16, "an id of {} bytes", bytes.len());
    let mut digits = [0_u8; 32];
    for (pair, b) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    out.extend_from_slice(&digits[..2 * bytes.len().min(16)]);
}

/// How a document's own (top-level) entry is written.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    /// A segment: the local stack's function segment, which starts its trace (no type, no
    /// parent).
    Segment,
    /// An independent subsegment: its type, trace id and parent written out.
    Subsegment,
    /// Inside another entry: the enclosing one gives its trace and parent.
    Nested,
}

/// Writes one (sub)segment at `level` and, nested in it, its children in `plan` (each with the
/// siblings that ended before it started as its precursors).
fn write_subsegment(
    out: &mut Vec<u8>,
    plan: &Documents<'_>,
    node: usize,
    level: Level,
    precursors: &[SpanId],
) {
    let s = &plan.nodes[node];
    out.extend_from_slice(match level {
        Level::Subsegment => b"{\"type\":\"subsegment\",\"name\":",
        Level::Segment | Level::Nested => b"{\"name\":",
    });
    push_json_str(out, s.name);
    out.extend_from_slice(b",\"id\":\"");
    push_hex_id(out, s.span.span_context.span_id());
    if level != Level::Nested {
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
    if level == Level::Subsegment {
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
        push_json_str(out, op);
    }
    out.push(b'}');
    if s.annotation_count > 0 {
        out.extend_from_slice(b",\"annotations\":{");
        for (i, (key, value)) in annotations(s.span).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, key);
            out.push(b':');
            match value {
                AnnotationValue::Bool(b) => push_json(out, &b),
                AnnotationValue::Int(n) => push_json(out, &n),
                AnnotationValue::Str(v) => push_json_str(out, v),
            }
        }
        out.push(b'}');
    }
    let children = plan.children(node);
    if !children.is_empty() {
        out.extend_from_slice(b",\"subsegments\":[");
        let mut chain = Precursors::default();
        for (i, &child) in children.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let before = chain.before(&plan.nodes[child]);
            write_subsegment(out, plan, child, Level::Nested, before);
            chain.ended(&plan.nodes[child]);
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

/// The translator's precursors among the children of one parent, taken in start order: each
/// lists the siblings that ended before it started, as long as none overlapped (an overlapping
/// one starts no chain of its own).
#[derive(Default)]
struct Precursors {
    ids: Vec<SpanId>,
    last_end: Option<f64>,
    /// Whether the sibling just asked about followed the chain.
    follows: bool,
}

impl Precursors {
    fn before(&mut self, s: &Subsegment<'_>) -> &[SpanId] {
        self.follows = self.last_end.is_none_or(|end| end <= s.start);
        if self.follows { &self.ids } else { &[] }
    }

    fn ended(&mut self, s: &Subsegment<'_>) {
        if self.follows {
            self.last_end = Some(s.end);
            self.ids.push(s.span.span_context.span_id());
        }
    }
}

/// The most spans written directly in one batch (the span buffer exports at 256).
const MAX_SPANS: usize = 256;
/// The deepest nesting written directly.
const MAX_DEPTH: usize = 16;
/// The largest document sent as one datagram: the daemon takes 64 KiB, header included.
pub(crate) const MAX_DOCUMENT: usize = 60 * 1024;

/// The documents the direct encoder writes for one batch: every span whose parent is in the
/// batch nested in that parent, at any depth, and one document per remaining span (a root):
/// Lambda's handler subsegment under the function segment Lambda writes, the local stack's
/// function segment, or a span whose parent ended in an earlier batch. The translator writes
/// the same subsegments, each with the same parent, trace and precursors, but nests only one
/// level and sends deeper ones as documents of their own (a provider processor's batch of ten
/// records would be some forty datagrams instead of one).
pub(crate) struct Documents<'a> {
    nodes: Vec<Subsegment<'a>>,
    /// The children of each node, in start order: `edges[first[i]..first[i + 1]]`.
    edges: Vec<usize>,
    first: Vec<usize>,
    /// The roots, each with its precursors among the roots under the same parent.
    roots: Vec<(usize, Vec<SpanId>)>,
}

impl<'a> Documents<'a> {
    fn children(&self, node: usize) -> &[usize] {
        &self.edges[self.first[node]..self.first[node + 1]]
    }

    /// Whether every span is under a root (a cycle of parents has none), no deeper than
    /// [`MAX_DEPTH`].
    fn is_whole(&self) -> bool {
        let mut reached = 0;
        // A tree pushes each node once: room for all of them up front.
        let mut stack: Vec<(usize, usize)> = Vec::with_capacity(self.nodes.len());
        stack.extend(self.roots.iter().map(|(r, _)| (*r, 1)));
        while let Some((node, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return false;
            }
            reached += 1;
            stack.extend(self.children(node).iter().map(|&c| (c, depth + 1)));
        }
        reached == self.nodes.len()
    }

    /// How many documents: one per root.
    pub(crate) fn len(&self) -> usize {
        self.roots.len()
    }

    /// Appends document `i` to `out`.
    pub(crate) fn write(&self, i: usize, out: &mut Vec<u8>) {
        let (root, precursors) = &self.roots[i];
        let level = if self.nodes[*root].segment {
            Level::Segment
        } else {
            Level::Subsegment
        };
        write_subsegment(out, self, *root, level, precursors);
    }

    /// The spans of document `i` (its root and everything under it), for the translator when
    /// the document is too large for one datagram.
    pub(crate) fn spans(&self, i: usize) -> Vec<SpanData> {
        let mut spans = Vec::new();
        let mut stack = vec![self.roots[i].0];
        while let Some(node) = stack.pop() {
            spans.push(self.nodes[node].span.clone());
            stack.extend_from_slice(self.children(node));
        }
        spans
    }
}

/// Plans the documents of `batch`, or returns `None` when a span is not in the shapes
/// described in the module documentation (the translator then writes the whole batch).
pub(crate) fn plan(batch: &[SpanData]) -> Option<Documents<'_>> {
    if batch.is_empty() || batch.len() > MAX_SPANS {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut checked_trace = None;
    let mut nodes = Vec::with_capacity(batch.len());
    for span in batch {
        let trace_id = span.span_context.trace_id();
        if checked_trace != Some(trace_id) {
            let trace_secs = u64::from(u32::from_be_bytes(
                trace_id.to_bytes()[..4].try_into().unwrap_or([0; 4]),
            ));
            if trace_secs <= now.saturating_sub(OLDEST_TRACE_SECS)
                || trace_secs >= now + NEWEST_TRACE_SECS
            {
                return None;
            }
            checked_trace = Some(trace_id);
        }
        nodes.push(read_span(span)?);
    }
    // Each span's parent in the batch, found by (trace, span id); two spans with one id are
    // the translator's.
    let key = span_key;
    let mut index: Vec<(_, usize)> = batch
        .iter()
        .enumerate()
        .map(|(i, s)| (key(s, s.span_context.span_id()), i))
        .collect();
    index.sort_unstable_by_key(|(k, _)| *k);
    if index.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    let find = |k| {
        index
            .binary_search_by_key(&k, |(k, _)| *k)
            .ok()
            .map(|at| index[at].1)
    };
    let mut parent = vec![None; batch.len()];
    let mut roots = Vec::new();
    for (i, span) in batch.iter().enumerate() {
        match find(key(span, span.parent_span_id)) {
            Some(p) if !nodes[i].segment => parent[i] = Some(p),
            // A segment is only ever a root: the local stack's, which has no parent.
            Some(_) => return None,
            None if nodes[i].segment == (span.parent_span_id == SpanId::INVALID) => roots.push(i),
            None => return None,
        }
    }
    // Children grouped by parent, each group in start order.
    let mut order: Vec<usize> = (0..batch.len()).filter(|&i| parent[i].is_some()).collect();
    order.sort_by(|&a, &b| {
        parent[a]
            .cmp(&parent[b])
            .then(nodes[a].start.total_cmp(&nodes[b].start))
    });
    let mut first = vec![0; batch.len() + 1];
    for &i in &order {
        if let Some(p) = parent[i] {
            first[p + 1] += 1;
        }
    }
    for i in 0..batch.len() {
        first[i + 1] += first[i];
    }
    // Roots under one parent are siblings too: grouped by (trace, parent), in start order.
    roots.sort_by(|&a, &b| {
        key(&batch[a], batch[a].parent_span_id)
            .cmp(&key(&batch[b], batch[b].parent_span_id))
            .then(nodes[a].start.total_cmp(&nodes[b].start))
    });
    // Siblings that started at the same instant are ordered by the translator's tree; leave
    // them to it.
    let same_start = |a: usize, b: usize| nodes[a].start == nodes[b].start;
    if order
        .windows(2)
        .any(|w| parent[w[0]] == parent[w[1]] && same_start(w[0], w[1]))
        || roots.windows(2).any(|w| {
            key(&batch[w[0]], batch[w[0]].parent_span_id)
                == key(&batch[w[1]], batch[w[1]].parent_span_id)
                && same_start(w[0], w[1])
        })
    {
        return None;
    }
    let roots = root_precursors(batch, &nodes, &roots);
    let documents = Documents {
        nodes,
        edges: order,
        first,
        roots,
    };
    documents.is_whole().then_some(documents)
}

/// A span's (trace, `id`) as numbers: `id` is its own id or its parent's.
pub(crate) fn span_key(s: &SpanData, id: SpanId) -> (u128, u64) {
    (
        u128::from_be_bytes(s.span_context.trace_id().to_bytes()),
        u64::from_be_bytes(id.to_bytes()),
    )
}

/// Each of `roots` (grouped by parent, in start order) with its precursors among the roots
/// under the same parent.
fn root_precursors(
    batch: &[SpanData],
    nodes: &[Subsegment<'_>],
    roots: &[usize],
) -> Vec<(usize, Vec<SpanId>)> {
    let mut with_precursors = Vec::with_capacity(roots.len());
    let mut chain = Precursors::default();
    let mut group = None;
    for &r in roots {
        let g = span_key(&batch[r], batch[r].parent_span_id);
        if group != Some(g) {
            group = Some(g);
            chain = Precursors::default();
        }
        let before = chain.before(&nodes[r]).to_vec();
        chain.ended(&nodes[r]);
        with_precursors.push((r, before));
    }
    with_precursors
}

/// Appends to `out` the one document of `batch` and returns `true`; `false` (and `out` left
/// alone) when the batch is not one tree in the shapes the direct encoder writes.
#[cfg(test)]
pub(crate) fn encode(batch: &[SpanData], out: &mut Vec<u8>) -> bool {
    match plan(batch) {
        Some(documents) if documents.len() == 1 => {
            documents.write(0, out);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_aws::xray_exporter::SegmentTranslator;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    pub(crate) const LAMBDA_SEGMENT: u64 = 0x5399_5c3f_42cd_8ad8;

    pub(crate) fn trace_id(age_secs: u64) -> TraceId {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            - age_secs;
        TraceId::from(u128::from(secs as u32) << 96 | 0x00c0_ffee_1234_5678_9abc_def0)
    }

    pub(crate) fn span(
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

    pub(crate) fn aws_call(trace: TraceId, id: u64, parent: u64, start: u64, end: u64) -> SpanData {
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

    pub(crate) fn handler(
        trace: TraceId,
        start: u64,
        end: u64,
        attributes: Vec<KeyValue>,
    ) -> SpanData {
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
            // Siblings starting together.
            vec![
                aws_call(t, 2, 1, 10, 20),
                aws_call(t, 3, 1, 10, 20),
                handler(t, 0, 50, Vec::new()),
            ],
            // Two spans with one id, two traces (two documents), a dropped trace, a server
            // span under Lambda's segment, a float annotation, an unknown attribute, a name the
            // translator refuses.
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
                vec![KeyValue::new("db.system", "dynamodb")],
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

    /// Every entry of `documents` as one flat map: (trace, id) → the entry without its nested ones, with
    /// the trace and parent a nested entry takes from the entry around it written out.
    fn flattened(documents: &[String]) -> std::collections::BTreeMap<String, serde_json::Value> {
        fn walk(
            entry: &serde_json::Value,
            trace: &serde_json::Value,
            parent: Option<&serde_json::Value>,
            out: &mut std::collections::BTreeMap<String, serde_json::Value>,
        ) {
            let mut flat = entry.clone();
            let map = flat.as_object_mut().expect("an entry is an object");
            map.remove("subsegments");
            map.remove("type");
            map.insert("trace_id".into(), trace.clone());
            if let Some(parent) = parent {
                map.insert("parent_id".into(), parent.clone());
            }
            let id = format!("{trace} {}", entry["id"]);
            assert!(out.insert(id, flat).is_none(), "one entry per span");
            for child in entry["subsegments"].as_array().into_iter().flatten() {
                walk(child, trace, Some(&entry["id"]), out);
            }
        }
        let mut out = std::collections::BTreeMap::new();
        for doc in documents {
            let doc: serde_json::Value = serde_json::from_str(doc).expect("JSON");
            walk(&doc, &doc["trace_id"], doc.get("parent_id"), &mut out);
        }
        out
    }

    fn documents(batch: &[SpanData]) -> Option<Vec<String>> {
        let plan = plan(batch)?;
        Some(
            (0..plan.len())
                .map(|i| {
                    let mut out = Vec::new();
                    plan.write(i, &mut out);
                    String::from_utf8(out).expect("UTF-8")
                })
                .collect(),
        )
    }

    pub(crate) fn named(
        trace: TraceId,
        id: u64,
        parent: u64,
        name: &'static str,
        at: (u64, u64),
    ) -> SpanData {
        span(trace, id, parent, SpanKind::Internal, name, at, Vec::new())
    }

    /// The local stack's function segment: a server span without a parent, its service named.
    fn local_segment(
        trace: TraceId,
        id: u64,
        name: &'static str,
        service: &'static str,
        at: (u64, u64),
    ) -> SpanData {
        let mut segment = span(
            trace,
            id,
            0,
            SpanKind::Server,
            name,
            at,
            vec![KeyValue::new("service.name", service)],
        );
        segment.parent_span_id = SpanId::INVALID;
        segment
    }

    /// A provider processor's batch: the handler, and per record its span with four calls.
    fn processor_batch(t: TraceId, records: u64) -> Vec<SpanData> {
        let mut batch = Vec::new();
        for r in 0..records {
            let (id, start) = (100 + r * 10, 1000 * r + 10);
            for c in 0..4 {
                batch.push(aws_call(
                    t,
                    id + 1 + c,
                    id,
                    start + 10 * c,
                    start + 10 * c + 8,
                ));
            }
            let mut record = named(t, id, 1, "## record", (start, start + 50));
            record.attributes = vec![
                KeyValue::new("correlation_id", "stripe:evt_1"),
                KeyValue::new("xray_trace_id", "1-5759e988-bd862e3fe1be46a994272793"),
                KeyValue::new("messaging.message_id", "m-1"),
            ];
            batch.push(record);
        }
        batch.push(handler(t, 0, 1000 * records + 100, annotations()));
        batch
    }

    #[test]
    fn nested_trees_describe_every_span_as_the_translator_does_in_one_document_each() {
        let t = trace_id(10);
        let local = || {
            let segment = local_segment(t, 7, "webhook-validator", "webhook-validator", (0, 90));
            let mut handler = handler(t, 1, 80, annotations());
            handler.parent_span_id = SpanId::from(7);
            vec![
                aws_call(t, 2, 1, 10, 20),
                aws_call(t, 3, 1, 30, 45),
                handler,
                segment,
            ]
        };
        let other = trace_id(30);
        let mut several = processor_batch(t, 2);
        several.extend(processor_batch(other, 1));
        // Calls whose record ended in an earlier batch: roots under one parent, precursors
        // among them.
        let orphans = vec![
            aws_call(t, 2, 9, 10, 20),
            aws_call(t, 3, 9, 20, 30),
            aws_call(t, 4, 9, 25, 40),
            aws_call(t, 5, 8, 10, 12),
        ];
        // Three levels under the handler, more than 32 siblings.
        let mut deep = vec![
            handler(t, 0, 5000, Vec::new()),
            named(t, 2, 1, "## record", (10, 4000)),
            named(t, 3, 2, "normalise", (20, 3000)),
        ];
        for i in 0..40 {
            deep.push(aws_call(t, 10 + i, 3, 30 + 10 * i, 35 + 10 * i));
        }
        for (batch, expected) in [
            (processor_batch(t, 10), 1),
            (local(), 1),
            (several, 2),
            (orphans, 4),
            (deep, 1),
        ] {
            let ours = documents(&batch).unwrap_or_else(|| panic!("not written: {batch:?}"));
            assert_eq!(ours.len(), expected, "{ours:#?}");
            let theirs = translated(&batch);
            assert_eq!(
                flattened(&ours),
                flattened(&theirs),
                "{ours:#?}\n{theirs:#?}"
            );
            assert_eq!(flattened(&ours).len(), batch.len());
        }
        // The local function segment is a segment: no type, no parent.
        let ours: serde_json::Value =
            serde_json::from_str(&documents(&local()).expect("written")[0]).expect("JSON");
        assert_eq!(ours.get("type"), None);
        assert_eq!(ours.get("parent_id"), None);
        assert_eq!(ours["subsegments"][0]["name"], "## webhook-validator");
        assert_eq!(ours["subsegments"][0]["subsegments"][0]["name"], "SQS");
    }

    #[test]
    fn trees_the_encoder_cannot_vouch_for_are_left_to_the_translator() {
        let t = trace_id(10);
        let cycle = vec![named(t, 2, 3, "a", (0, 5)), named(t, 3, 2, "b", (1, 4))];
        let mut segment_under_a_span = span(t, 5, 1, SpanKind::Server, "fn", (0, 5), Vec::new());
        segment_under_a_span.parent_span_id = SpanId::from(1);
        let named_otherwise = local_segment(t, 5, "fn", "other", (0, 5));
        let mut too_deep = vec![handler(t, 0, 100, Vec::new())];
        for depth in 0..MAX_DEPTH as u64 {
            too_deep.push(named(t, 2 + depth, 1 + depth, "level", (depth, 99 - depth)));
        }
        let root_siblings_together = vec![aws_call(t, 2, 9, 10, 20), aws_call(t, 3, 9, 10, 30)];
        let refused = vec![
            cycle,
            vec![handler(t, 0, 50, Vec::new()), segment_under_a_span],
            vec![named_otherwise],
            too_deep,
            root_siblings_together,
            processor_batch(t, 60),
        ];
        for batch in refused {
            assert!(plan(&batch).is_none(), "{batch:?}");
        }
        // One level less is written.
        let mut deep = vec![handler(t, 0, 100, Vec::new())];
        for depth in 0..MAX_DEPTH as u64 - 1 {
            deep.push(named(t, 2 + depth, 1 + depth, "level", (depth, 99 - depth)));
        }
        assert!(plan(&deep).is_some());
    }
}
