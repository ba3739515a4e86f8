//! The Tracer: `tracing` spans become OpenTelemetry spans (through the span layer,
//! `span_layer.rs`), which `opentelemetry-aws` turns into X-Ray segment documents and sends to
//! the X-Ray daemon over UDP (`AWS_XRAY_DAEMON_ADDRESS`). The usual invocation's document (a handler subsegment
//! with its AWS calls, successful) is written directly instead (`segment.rs`), to the same
//! bytes.
//!
//! In Lambda, Lambda itself writes the function's segment; this crate writes **independent
//! subsegments** under it: one per handler (the invocation span) and one per AWS call
//! ([`aws_call_span`], `namespace: "aws"` with the service and operation named), with the trace
//! id and parent taken from the invocation's trace header (`lambda_runtime`'s
//! `Context::xray_trace_id`). Nothing is sent when the header says `Sampled=0` or when there is
//! no header, and spans outside an invocation are never sent (the [`InvocationSampler`]).
//! For the local stack, where nothing writes a function segment, an invocation without a trace
//! header can start its own trace with a segment named after the function.
//!
//! Which spans become subsegments: spans at INFO or above whose target starts with `payhook`
//! (the kit's own crates), inside an invocation. Spans of dependencies (the AWS SDK's
//! orchestrator, `lambda_runtime`'s request span) never do; wrap AWS calls in
//! [`aws_call_span`] instead. The handler subsegment carries Powertools' `ColdStart` and
//! `Service` annotations, the [`Annotation`]s set through the invocation handle, and on failure
//! `fault: true` with the error code as the exception.
//!
//! Trace context crosses SQS in the `AWSTraceHeader` system attribute and EventBridge in the
//! `TraceHeader` entry field: [`trace_header_for_current_span`] produces the value,
//! [`parent_from_trace_header`] reads it back.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use opentelemetry::trace::{
    Link, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_aws::trace::xray_propagator::{span_context_from_str, span_context_to_string};
use opentelemetry_aws::xray_exporter::{
    SegmentDocument, SegmentDocumentExporter, SegmentTranslator, XrayExporter,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample, SpanData, SpanExporter,
    SpanProcessor,
};
use tracing::field::Empty;

use crate::error::TelemetryError;
use crate::logger::SCOPE_TARGET;
use crate::sink::Sink;

/// `AWS_XRAY_DAEMON_ADDRESS`: where the X-Ray daemon listens (set by Lambda).
pub const DAEMON_ADDRESS_ENV: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The daemon address when the variable is not set: `127.0.0.1:2000`.
pub const DEFAULT_DAEMON_ADDRESS: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2000);
/// The SQS message system attribute that carries the trace header.
pub const SQS_TRACE_ATTRIBUTE: &str = "AWSTraceHeader";
/// The longest `TraceHeader` EventBridge accepts on a `PutEvents` entry.
pub const EVENTBRIDGE_TRACE_HEADER_MAX_LEN: usize = 500;
/// The span target of AWS call spans.
pub(crate) const AWS_TARGET: &str = "payhook_telemetry::aws";
/// The span target of per-record spans.
pub(crate) const RECORD_TARGET: &str = "payhook_telemetry::record";

/// An X-Ray annotation key: indexed, searchable with filter expressions
/// (`annotation.provider = "stripe"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Annotation {
    /// `provider`: `stripe`, `paypal`, `square`.
    Provider,
    /// `webhook_id`: `{provider}:{provider_event_id}`.
    WebhookId,
    /// `event_type`: the normalised event type.
    EventType,
    /// `tier`: the amount tier.
    Tier,
}

impl Annotation {
    /// Every annotation key.
    pub const ALL: [Annotation; 4] = [
        Annotation::Provider,
        Annotation::WebhookId,
        Annotation::EventType,
        Annotation::Tier,
    ];

    /// The key as it appears in segment documents and log lines.
    pub const fn as_str(self) -> &'static str {
        match self {
            Annotation::Provider => "provider",
            Annotation::WebhookId => "webhook_id",
            Annotation::EventType => "event_type",
            Annotation::Tier => "tier",
        }
    }
}

/// Where segment documents go.
#[derive(Debug, Clone)]
pub enum TraceExport {
    /// The X-Ray daemon's UDP port (Lambda, or a local daemon).
    Daemon(SocketAddr),
    /// One segment document per line into a sink (the local stack's `segments.jsonl`, tests).
    Sink(Arc<dyn Sink>),
    /// No tracing.
    Disabled,
}

impl TraceExport {
    /// The daemon at `AWS_XRAY_DAEMON_ADDRESS`, or `127.0.0.1:2000` when unset or unusable.
    pub fn daemon_from_env() -> Self {
        TraceExport::Daemon(
            std::env::var(DAEMON_ADDRESS_ENV)
                .ok()
                .and_then(|v| parse_daemon_address(&v))
                .unwrap_or(DEFAULT_DAEMON_ADDRESS),
        )
    }

    /// One segment document per line into `sink`.
    pub fn sink(sink: impl Sink) -> Self {
        TraceExport::Sink(Arc::new(sink))
    }
}

/// Parses `AWS_XRAY_DAEMON_ADDRESS` in both documented forms, `host:port` and
/// `tcp:host:port udp:host:port` (either order), and returns the UDP address. Written here
/// because `opentelemetry-aws`'s `XrayDaemonClient::default()` only understands a bare socket
/// address and panics when the socket cannot be opened.
pub fn parse_daemon_address(value: &str) -> Option<SocketAddr> {
    let value = value.trim();
    let udp = if value.starts_with("tcp:") || value.starts_with("udp:") {
        value
            .split_whitespace()
            .find_map(|part| part.strip_prefix("udp:"))?
    } else {
        value
    };
    if let Ok(addr) = udp.parse::<SocketAddr>() {
        return Some(addr);
    }
    let addrs: Vec<SocketAddr> = udp.to_socket_addrs().ok()?.collect();
    // The daemon client's socket is IPv4; prefer an IPv4 address.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

/// The daemon's UDP socket and a reused datagram buffer. What `opentelemetry-aws`'s
/// `XrayDaemonClient` does (a non-blocking socket connected to the daemon, one datagram per
/// document: the daemon header, then the document), with the buffer open to the direct encoder
/// (`segment.rs`) too.
#[derive(Debug)]
struct DaemonClient {
    socket: UdpSocket,
    datagram: Mutex<Vec<u8>>,
}

impl DaemonClient {
    const HEADER: &'static [u8] = b"{\"format\": \"json\", \"version\": 1}\n";

    fn new(addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.set_nonblocking(true)?;
        socket.connect(addr)?;
        let mut datagram = Vec::with_capacity(65_507);
        datagram.extend_from_slice(Self::HEADER);
        Ok(Self {
            socket,
            datagram: Mutex::new(datagram),
        })
    }

    /// Sends the document `write` appends after the header, unless it returns `false`.
    fn send(&self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> io::Result<bool> {
        let mut datagram = self.datagram.lock().unwrap_or_else(PoisonError::into_inner);
        datagram.truncate(Self::HEADER.len());
        let written = write(&mut datagram);
        let sent = if written {
            self.socket.send(&datagram).map(|_| true)
        } else {
            Ok(false)
        };
        datagram.truncate(Self::HEADER.len());
        sent
    }
}

/// Sends segment documents to the daemon, or writes them to a sink.
#[derive(Debug)]
enum SegmentClient {
    Daemon(DaemonClient),
    Sink(Arc<dyn Sink>, Mutex<Vec<u8>>),
}

impl SegmentClient {
    /// Sends (or writes) the one document `write` produces, unless it returns `false`; says
    /// whether there was one.
    fn send(&self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> io::Result<bool> {
        match self {
            SegmentClient::Daemon(client) => client.send(write),
            SegmentClient::Sink(sink, buf) => {
                let mut buf = buf.lock().unwrap_or_else(PoisonError::into_inner);
                buf.clear();
                if !write(&mut buf) {
                    return Ok(false);
                }
                // Documents are JSON written by serde_json or by the direct encoder: UTF-8.
                if let Ok(line) = std::str::from_utf8(&buf) {
                    sink.write_line(line);
                }
                Ok(true)
            }
        }
    }
}

/// The client as the translator's exporter sees it (shared with the direct encoder's path).
#[derive(Debug, Clone)]
struct SharedClient(Arc<SegmentClient>);

impl SegmentDocumentExporter for SharedClient {
    type Error = io::Error;

    async fn export_segment_documents(
        &self,
        batch: Vec<SegmentDocument<'_>>,
    ) -> Result<(), Self::Error> {
        for doc in batch {
            self.0.send(|out| {
                // Serialising into a Vec cannot fail.
                let _ = serde_json::to_writer(out, &doc);
                true
            })?;
        }
        Ok(())
    }
}

/// Which invocations without an upstream trace start a sampled trace of their own, when
/// [`crate::TelemetryBuilder::local_root_segments`] is on (the local stack, where the validator
/// stands in for API Gateway, which makes this decision in AWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootSampling {
    /// Every one: each webhook's trace can be looked at (`payhook trace`).
    #[default]
    All,
    /// X-Ray's default sampling rule, as API Gateway applies it to a deployed stage: the first
    /// request each second, then 5 % of the rest. The others still get a trace id (their log
    /// lines carry it) and pass `Sampled=0` on, so nothing of them is recorded or sent.
    XrayDefault,
}

impl RootSampling {
    /// Its name in configuration: `all` or `xray-default`.
    pub fn as_str(self) -> &'static str {
        match self {
            RootSampling::All => "all",
            RootSampling::XrayDefault => "xray-default",
        }
    }
}

impl fmt::Display for RootSampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RootSampling {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => Ok(RootSampling::All),
            "xray-default" => Ok(RootSampling::XrayDefault),
            other => Err(format!("`{other}` is not `all` or `xray-default`")),
        }
    }
}

/// The share of requests beyond the reservoir that X-Ray's default rule samples.
const XRAY_DEFAULT_FIXED_RATE: f64 = 0.05;

/// Decides, per invocation, whether a local root trace is sampled ([`RootSampling`]).
#[derive(Debug, Default)]
pub(crate) struct RootSampler {
    mode: RootSampling,
    /// The last second (since the epoch) whose reservoir of one request was taken.
    reservoir_second: AtomicU64,
}

impl RootSampler {
    pub(crate) fn new(mode: RootSampling) -> Self {
        Self {
            mode,
            reservoir_second: AtomicU64::new(u64::MAX),
        }
    }

    /// Whether the next root trace is sampled, at `now_secs` since the epoch; `random` is a
    /// uniform draw in [0, 1).
    pub(crate) fn sample(&self, now_secs: u64, random: impl FnOnce() -> f64) -> bool {
        match self.mode {
            RootSampling::All => true,
            RootSampling::XrayDefault => {
                let last = self.reservoir_second.load(Ordering::Relaxed);
                (last != now_secs
                    && self
                        .reservoir_second
                        .compare_exchange(last, now_secs, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok())
                    || random() < XRAY_DEFAULT_FIXED_RATE
            }
        }
    }
}

/// The sampling rule for Lambda: follow the invocation's trace header (`Sampled=1` → record,
/// `Sampled=0` → drop); drop every span that has no parent, except a server span, which only
/// the local stack creates (as the function segment Lambda would have written).
#[derive(Debug, Clone, Copy, Default)]
pub struct InvocationSampler;

impl ShouldSample for InvocationSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .map(|cx| cx.span().span_context().clone())
            .filter(SpanContext::is_valid);
        let (decision, trace_state) = match parent {
            Some(sc) => (
                if sc.is_sampled() {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                },
                sc.trace_state().clone(),
            ),
            None if *span_kind == SpanKind::Server => {
                (SamplingDecision::RecordAndSample, TraceState::default())
            }
            None => (SamplingDecision::Drop, TraceState::default()),
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state,
        }
    }
}

/// The tracer provider (for the local stack's function segments) and the span buffer it shares
/// with the span layer.
pub(crate) struct Tracing {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) buffer: Arc<SpanBuffer>,
}

/// Builds the tracer provider and span buffer for `export` (`None` when tracing is disabled).
pub(crate) fn build_provider(
    export: &TraceExport,
    log_group: Option<&str>,
) -> Result<Option<Tracing>, TelemetryError> {
    let client = Arc::new(match export {
        TraceExport::Daemon(addr) => {
            SegmentClient::Daemon(DaemonClient::new(*addr).map_err(TelemetryError::DaemonSocket)?)
        }
        TraceExport::Sink(sink) => SegmentClient::Sink(sink.clone(), Mutex::new(Vec::new())),
        TraceExport::Disabled => return Ok(None),
    });
    let mut translator = SegmentTranslator::new()
        .with_indexed_attrs(Annotation::ALL.iter().map(|a| a.as_str().to_owned()));
    if let Some(group) = log_group {
        translator = translator.with_log_group_name(group.to_owned());
    }
    let exporter = XrayExporter::new(SharedClient(client.clone()))
        .with_translator(translator.always_nest_subsegments());
    let buffer = Arc::new(SpanBuffer::new(exporter, client));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(InvocationSpanProcessor(buffer.clone()))
        .with_id_generator(XrayIdGenerator::default())
        .with_sampler(InvocationSampler)
        // No service.name: the translator would name every segment after it.
        .with_resource(Resource::builder_empty().build())
        .build();
    Ok(Some(Tracing { provider, buffer }))
}

/// At most this many spans go into one export (and so into one nested segment document), which
/// keeps every datagram far below the daemon's 64 kB.
pub const MAX_SPANS_PER_EXPORT: usize = 32;

/// At most this many ended spans wait for the invocation's flush; beyond it they are exported at
/// once (a handler with very many AWS calls).
const MAX_BUFFERED_SPANS: usize = 256;

/// Keeps the spans that end during an invocation and exports them together when it finishes
/// ([`Telemetry::flush`](crate::Telemetry::flush), called by [`crate::Invocation`]). Exported
/// together, a handler's AWS-call subsegments are nested in its own document, so an invocation
/// costs one datagram instead of one per span; nothing is left buffered when Lambda freezes the
/// environment after the response, and there is no background thread. Written here because the
/// SDK's simple processor exports span by span and its batch processor needs a thread and a
/// timer.
///
/// The span layer (`span_layer.rs`) and the SDK's tracer (through [`InvocationSpanProcessor`])
/// both put their ended spans here. The usual invocation's spans are written by the direct
/// encoder (`segment.rs`) into the client's buffer; every other batch goes through
/// `opentelemetry-aws`'s translator.
pub(crate) struct SpanBuffer {
    spans: Mutex<Vec<SpanData>>,
    exporter: Mutex<XrayExporter<SharedClient>>,
    /// Where the direct encoder's documents go.
    direct: Arc<SegmentClient>,
    /// Set when a resource with attributes is configured: the direct encoder writes none, so
    /// every batch is left to the translator.
    translator_only: AtomicBool,
    shut_down: AtomicBool,
}

impl SpanBuffer {
    fn new(exporter: XrayExporter<SharedClient>, direct: Arc<SegmentClient>) -> Self {
        Self {
            spans: Mutex::new(Vec::new()),
            exporter: Mutex::new(exporter),
            direct,
            translator_only: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
        }
    }

    /// Keeps an ended span until the next flush (only sampled spans are kept).
    pub(crate) fn push(&self, span: SpanData) {
        if !span.span_context.is_sampled() || self.shut_down.load(Ordering::Relaxed) {
            return;
        }
        let overflow = {
            let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
            spans.push(span);
            (spans.len() >= MAX_BUFFERED_SPANS).then(|| std::mem::take(&mut *spans))
        };
        if let Some(batch) = overflow {
            let _ = self.export(batch);
        }
    }

    /// Exports the kept spans, except those whose local parent is still open (see
    /// [`take_ready`]): they wait for the flush that has their parent, so that they are nested
    /// in its document.
    pub(crate) fn flush(&self) -> OTelSdkResult {
        self.flush_inner(false)
    }

    /// Exports every kept span.
    pub(crate) fn flush_all(&self) -> OTelSdkResult {
        self.flush_inner(true)
    }

    fn flush_inner(&self, all: bool) -> OTelSdkResult {
        let ready = {
            let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
            if spans.is_empty() {
                return Ok(());
            }
            match (!all)
                .then(|| take_ready(&mut spans, opentelemetry::time::now()))
                .flatten()
            {
                Some(ready) => ready,
                // Nothing held: exported in place, so the buffer keeps its capacity.
                None => return self.export_kept(&mut spans),
            }
        };
        // Some spans wait for their parent: the ready ones have left the buffer and are sent
        // without holding it, so other invocations can keep closing spans meanwhile.
        if ready.is_empty() {
            return Ok(());
        }
        self.export(ready)
    }

    /// Exports (and empties) `spans`, keeping the vector's capacity when it can.
    fn export_kept(&self, spans: &mut Vec<SpanData>) -> OTelSdkResult {
        if spans.is_empty() {
            return Ok(());
        }
        // The usual batch is written directly and the buffer kept, with its capacity, for the
        // next invocation.
        match self.send_direct(spans) {
            Ok(true) => {
                spans.clear();
                Ok(())
            }
            Ok(false) => self.export_translated(std::mem::take(spans)),
            Err(e) => {
                spans.clear();
                Err(e)
            }
        }
    }

    fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self.send_direct(&batch) {
            Ok(true) => Ok(()),
            Ok(false) => self.export_translated(batch),
            Err(e) => Err(e),
        }
    }

    /// Writes `batch` with the direct encoder, one datagram per document, if every span is a
    /// shape the encoder writes; a document too large for one datagram goes to the translator,
    /// which splits it.
    fn send_direct(&self, batch: &[SpanData]) -> Result<bool, OTelSdkError> {
        if self.translator_only.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let Some(documents) = crate::segment::plan(batch) else {
            return Ok(false);
        };
        let mut oversized = Vec::new();
        let mut result = Ok(true);
        for i in 0..documents.len() {
            let sent = self.direct.send(|out| {
                let start = out.len();
                documents.write(i, out);
                let fits = out.len() - start <= crate::segment::MAX_DOCUMENT;
                if !fits {
                    out.truncate(start);
                }
                fits
            });
            match sent {
                Ok(true) => {}
                Ok(false) => oversized.extend(documents.spans(i)),
                Err(e) => result = Err(OTelSdkError::InternalFailure(e.to_string())),
            }
        }
        if !oversized.is_empty() {
            self.export_translated(oversized)?;
        }
        result
    }

    fn export_translated(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        let exporter = self.exporter.lock().unwrap_or_else(PoisonError::into_inner);
        let mut result = Ok(());
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(MAX_SPANS_PER_EXPORT));
            // The X-Ray exporter never waits (UDP sends are non-blocking), so one poll completes it.
            let mut export = std::pin::pin!(exporter.export(batch));
            let mut cx = TaskContext::from_waker(Waker::noop());
            if let Poll::Ready(Err(e)) = export.as_mut().poll(&mut cx) {
                result = Err(e);
            }
            batch = rest;
        }
        result
    }
}

/// How long a span whose local parent is not among the kept spans waits for it: past this,
/// the parent is taken to have been exported already (a span that outlived it) and the span
/// goes out on its own, as an independent subsegment naming its parent.
const HOLD_FOR_PARENT: Duration = Duration::from_secs(10);

/// Whether any of `spans` is to be exported later: a span whose parent is a local span (not a
/// remote one from a trace header, and not none) that is not among `spans` and that ended less
/// than [`HOLD_FOR_PARENT`] before `now`, and every span under such a one. Its parent is still
/// open, in another invocation of the same process (the local stack runs many at once), and
/// exporting the span now would send it as a document of its own instead of nested in its
/// parent's. In Lambda, one invocation at a time, nothing is held: the handler's children end
/// before it does, and the handler's parent is Lambda's segment (remote).
///
/// `None` when nothing is held (the usual flush in Lambda: export `spans` as they are);
/// otherwise the spans ready to export, taken out of `spans`, which keeps the held ones in
/// their order. Only the ready spans move out, into a vector sized for them at once: in the
/// local stack most of the buffer is other invocations' open work, held at every flush.
fn take_ready(spans: &mut Vec<SpanData>, now: std::time::SystemTime) -> Option<Vec<SpanData>> {
    let key = crate::segment::span_key;
    let waits = |s: &SpanData| {
        s.parent_span_id != opentelemetry::SpanId::INVALID
            && !s.parent_span_is_remote
            && now
                .duration_since(s.end_time)
                .is_ok_and(|age| age < HOLD_FOR_PARENT)
    };
    // The usual flush (every local parent present, or none): found without hashing.
    let present_in =
        |spans: &[SpanData], k| spans.iter().any(|s| key(s, s.span_context.span_id()) == k);
    if spans.len() <= 64
        && !spans
            .iter()
            .any(|s| waits(s) && !present_in(spans, key(s, s.parent_span_id)))
    {
        return None;
    }
    // Each span's parent among `spans`, found once; then whether each is held, decided once
    // per span by walking up to the first span whose answer is known (a span under a present
    // parent waits if and only if that parent does).
    let mut index = SpanKeyMap::with_capacity_and_hasher(spans.len(), Default::default());
    index.extend(
        spans
            .iter()
            .enumerate()
            .map(|(i, s)| (key(s, s.span_context.span_id()), i)),
    );
    let parent: Vec<Option<usize>> = spans
        .iter()
        .map(|s| index.get(&key(s, s.parent_span_id)).copied())
        .collect();
    let mut held: Vec<Option<bool>> = vec![None; spans.len()];
    let mut chain = Vec::new();
    for i in 0..spans.len() {
        let mut at = i;
        let answer = loop {
            if let Some(known) = held[at] {
                break known;
            }
            chain.push(at);
            match parent[at] {
                None => break waits(&spans[at]),
                // A cycle of parents (ids reused) has no span waiting at its top.
                Some(_) if chain.len() > spans.len() => break false,
                Some(p) => at = p,
            }
        };
        for j in chain.drain(..) {
            held[j] = Some(answer);
        }
    }
    let ready_count = held.iter().filter(|h| **h == Some(false)).count();
    if ready_count == spans.len() {
        return None;
    }
    let mut ready = Vec::with_capacity(ready_count);
    let mut held = held.into_iter();
    ready.extend(spans.extract_if(.., |_| held.next() == Some(Some(false))));
    Some(ready)
}

/// A map keyed by [`crate::segment::span_key`].
type SpanKeyMap<V> = std::collections::HashMap<(u128, u64), V, BuildHasherDefault<SpanKeyHasher>>;

/// Hashes a [`crate::segment::span_key`] by folding its numbers with a multiply, without
/// SipHash's rounds: the spans in the buffer are this process's own, their ids drawn at
/// random, so the keys inserted are uniform already and cannot be chosen to collide (a
/// parent id read from a trace header is only ever looked up).
#[derive(Debug, Default)]
struct SpanKeyHasher(u64);

impl SpanKeyHasher {
    fn fold(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl std::hash::Hasher for SpanKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.fold(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.fold(n);
    }

    fn write_u128(&mut self, n: u128) {
        self.fold(n as u64);
        self.fold((n >> 64) as u64);
    }
}

impl fmt::Debug for SpanBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanBuffer").finish_non_exhaustive()
    }
}

/// The SDK tracer's view of the [`SpanBuffer`].
#[derive(Debug)]
struct InvocationSpanProcessor(Arc<SpanBuffer>);

impl SpanProcessor for InvocationSpanProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.0.push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.flush_all()
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let result = self.0.flush_all();
        self.0.shut_down.store(true, Ordering::Relaxed);
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        // The direct encoder writes no resource attributes: with any, the translator must.
        if !resource.is_empty() {
            self.0.translator_only.store(true, Ordering::Relaxed);
        }
        self.0
            .exporter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_resource(resource);
    }
}

/// A parsed X-Ray trace header (`Root=…;Parent=…;Sampled=…`, plus `Lineage` and unknown keys,
/// which are kept and forwarded).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceParent {
    span_context: SpanContext,
}

impl TraceParent {
    /// The trace id in X-Ray form (`1-5759e988-bd862e3fe1be46a994272793`).
    pub fn trace_id(&self) -> String {
        xray_trace_id(self.span_context.trace_id())
    }

    /// The parent segment or subsegment id (16 hex digits), if the header had one.
    pub fn parent_id(&self) -> Option<String> {
        let id = self.span_context.span_id();
        (id != opentelemetry::SpanId::INVALID).then(|| format!("{id:016x}"))
    }

    /// Whether the upstream chose to record this trace (`Sampled=1`).
    pub fn is_sampled(&self) -> bool {
        self.span_context.is_sampled()
    }

    /// The header again (`Root=…;Parent=…;Sampled=…[;Lineage=…]`); `None` without a parent.
    pub fn header(&self) -> Option<String> {
        span_context_to_string(&self.span_context)
    }

    /// The OpenTelemetry context with this as its remote parent.
    pub fn context(&self) -> Context {
        Context::new().with_remote_span_context(self.span_context.clone())
    }

    /// The underlying span context.
    pub fn span_context(&self) -> &SpanContext {
        &self.span_context
    }
}

/// Parses an X-Ray trace header (from `_X_AMZN_TRACE_ID`, `Context::xray_trace_id`, an SQS
/// record's `AWSTraceHeader` or an HTTP `X-Amzn-Trace-Id`). `None` when it has no valid `Root`.
pub fn parent_from_trace_header(header: &str) -> Option<TraceParent> {
    let header = header.trim();
    usual_trace_header(header)
        .or_else(|| span_context_from_str(header))
        .map(|span_context| TraceParent { span_context })
}

/// The header Lambda and SQS usually pass (`Root=1-…-…;Parent=…;Sampled=0|1`, lowercase hex,
/// nothing else), read without the propagator's allocations; the same span context
/// `span_context_from_str` makes of it. `None` for any other header (left to the propagator).
fn usual_trace_header(header: &str) -> Option<SpanContext> {
    let rest = header.strip_prefix("Root=1-")?;
    let (time, rest) = rest.split_at_checked(8)?;
    let rest = rest.strip_prefix('-')?;
    let (random, rest) = rest.split_at_checked(24)?;
    let rest = rest.strip_prefix(";Parent=")?;
    let (parent, rest) = rest.split_at_checked(16)?;
    let flags = match rest {
        ";Sampled=1" => TraceFlags::SAMPLED,
        ";Sampled=0" => TraceFlags::default(),
        _ => return None,
    };
    let trace_id = (lower_hex(time)? << 96) | lower_hex(random)?;
    let span_id = u64::try_from(lower_hex(parent)?).ok()?;
    if trace_id == 0 {
        return None;
    }
    Some(SpanContext::new(
        TraceId::from(trace_id),
        opentelemetry::SpanId::from(span_id),
        flags,
        true,
        // The propagator's (empty) trace state, built as it builds it.
        TraceState::from_key_value(Vec::<(String, String)>::new()).ok()?,
    ))
}

/// Up to 32 lowercase hex digits as a number (`None` for anything else).
fn lower_hex(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |n, b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u128::from(d))
    })
}

/// The X-Ray form of an OpenTelemetry trace id.
pub fn xray_trace_id(id: TraceId) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(35);
    out.push_str("1-");
    for (i, b) in id.to_bytes().iter().enumerate() {
        if i == 4 {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// The trace header naming the current span as parent, for an SQS `AWSTraceHeader` system
/// attribute or an EventBridge entry's `TraceHeader` (`Root=…;Parent=<this span>;Sampled=…`).
/// Call it inside the span of the AWS call that sends the message, so the consumer's trace
/// hangs under that call. `None` outside any trace.
pub fn trace_header_for_current_span() -> Option<String> {
    match crate::span_layer::current_context().filter(SpanContext::is_valid) {
        Some(sc) => span_context_to_string(&sc),
        None => span_context_to_string(Context::current().span().span_context()),
    }
}

/// [`trace_header_for_current_span`] for an EventBridge `PutEvents` entry: `None` if the header
/// is longer than EventBridge accepts (500 characters, possible with a long `Lineage`).
pub fn eventbridge_trace_header() -> Option<String> {
    trace_header_for_current_span().filter(|h| h.len() <= EVENTBRIDGE_TRACE_HEADER_MAX_LEN)
}

/// A span for one AWS API call, which becomes an X-Ray subsegment with `namespace: "aws"`,
/// named after the service (`"SQS"`, `"DynamoDB"`, `"EventBridge"`, `"SSM"`) and with
/// `aws.operation` set (`"SendMessage"`). Record `aws.queue.url`, `aws.table.name`,
/// `aws.region`, `aws.request_id` and `http.response.status_code` on it when known; mark a
/// failure with [`mark_span_failed`].
///
/// ```
/// # async fn send() {}
/// use tracing::Instrument;
/// let span = payhook_telemetry::aws_call_span("SQS", "SendMessage");
/// span.record("aws.queue.url", "https://sqs.us-east-1.amazonaws.com/123456789012/stripe.fifo");
/// async {
///     let _header = payhook_telemetry::trace_header_for_current_span(); // → AWSTraceHeader
///     send().await
/// }
/// .instrument(span);
/// ```
pub fn aws_call_span(service: &str, operation: &str) -> tracing::Span {
    tracing::info_span!(
        target: AWS_TARGET,
        "aws_call",
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_description = Empty,
        rpc.system = "aws-api",
        aws.service = service,
        aws.operation = operation,
        aws.region = Empty,
        aws.request_id = Empty,
        aws.queue.url = Empty,
        aws.table.name = Empty,
        http.response.status_code = Empty,
    )
}

/// A span for one SQS record: a subsegment in the **producer's** trace when the record carries
/// an `AWSTraceHeader` (each record of a batch can belong to a different trace), and inside the
/// span the record's message id is the log lines' `correlation_id`.
pub fn record_span(message_id: &str, trace_header: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        target: RECORD_TARGET,
        "record",
        otel.name = "## record",
        otel.status_code = Empty,
        otel.status_description = Empty,
        correlation_id = message_id,
    );
    if let Some(parent) = trace_header.and_then(parent_from_trace_header)
        && parent.parent_id().is_some()
    {
        crate::span_layer::set_parent(&span, parent.span_context);
    }
    span
}

/// [`record_span`] for a record that carries one webhook: a subsegment in the webhook's trace
/// (the producer's, from `trace_header`), in which log lines carry the webhook id as
/// `correlation_id` (the message id when the body names none) and the webhook's trace id as
/// `xray_trace_id`, whatever the invocation's, so a Logs Insights query on either finds the
/// webhook's whole story. The message id stays on the span and its lines as
/// `messaging.message_id`.
pub fn webhook_record_span(
    message_id: &str,
    webhook_id: Option<&str>,
    trace_header: Option<&str>,
) -> tracing::Span {
    let parent = trace_header.and_then(parent_from_trace_header);
    let trace_id = parent.as_ref().map(TraceParent::trace_id);
    let span = tracing::info_span!(
        target: RECORD_TARGET,
        "record",
        otel.name = "## record",
        otel.status_code = Empty,
        otel.status_description = Empty,
        correlation_id = webhook_id.unwrap_or(message_id),
        xray_trace_id = trace_id.as_deref(),
        messaging.message_id = message_id,
    );
    if let Some(parent) = parent
        && parent.parent_id().is_some()
    {
        crate::span_layer::set_parent(&span, parent.span_context);
    }
    span
}

/// A log-only scope (never a subsegment) for lines about one webhook written outside its
/// record span: `correlation_id` is the webhook id and `xray_trace_id` the webhook's trace (from
/// `trace_header`), as inside [`webhook_record_span`].
pub fn webhook_scope(webhook_id: &str, trace_header: Option<&str>) -> tracing::Span {
    let trace_id = trace_header
        .and_then(parent_from_trace_header)
        .map(|p| p.trace_id());
    tracing::info_span!(
        target: SCOPE_TARGET,
        "scope",
        correlation_id = webhook_id,
        xray_trace_id = trace_id.as_deref(),
    )
}

/// A log-only scope (never a subsegment) in which `correlation_id` is `id`.
pub fn correlation_scope(id: &str) -> tracing::Span {
    tracing::info_span!(target: SCOPE_TARGET, "scope", correlation_id = id)
}

/// Sets an X-Ray annotation on the current span (it shows on that subsegment).
pub fn annotate_current_span(key: Annotation, value: &str) {
    crate::span_layer::set_attributes(
        &tracing::Span::current(),
        [KeyValue::new(key.as_str(), value.to_owned())],
    );
}

/// Marks `span`'s subsegment as failed (`fault: true`), with a stable error code as the cause.
pub fn mark_span_failed(span: &tracing::Span, code: &'static str) {
    crate::span_layer::set_status(
        span,
        Status::Error {
            description: Cow::Borrowed(code),
        },
    );
}

/// Whether the span layer turns spans with this metadata into subsegments: spans of
/// payhook crates at INFO or above, except log-only scopes.
pub(crate) fn is_traced(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span()
        && meta.target().starts_with("payhook")
        && meta.target() != SCOPE_TARGET
        && *meta.level() <= tracing::Level::INFO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xray_default_sampling_takes_one_request_a_second_then_five_percent() {
        let sampler = RootSampler::new(RootSampling::XrayDefault);
        // The reservoir: the first request of each second, whatever the draw.
        assert!(sampler.sample(100, || 0.99));
        assert!(!sampler.sample(100, || 0.99));
        assert!(!sampler.sample(100, || 0.05));
        assert!(sampler.sample(100, || 0.049));
        assert!(sampler.sample(101, || 0.99));
        assert!(!sampler.sample(101, || 0.5));
        let all = RootSampler::new(RootSampling::All);
        assert!((0..10).all(|_| all.sample(100, || 0.99)));
        for mode in [RootSampling::All, RootSampling::XrayDefault] {
            assert_eq!(mode.as_str().parse::<RootSampling>(), Ok(mode));
        }
        assert!("sometimes".parse::<RootSampling>().is_err());
    }

    use crate::segment::tests::{LAMBDA_SEGMENT, aws_call, handler, named, trace_id};
    use crate::sink::MemorySink;

    /// A span buffer writing its documents to a memory sink, and the provider that owns it
    /// (dropping the provider shuts the buffer down).
    fn buffer() -> (Arc<SpanBuffer>, MemorySink, Tracing) {
        let sink = MemorySink::new();
        let tracing = build_provider(&TraceExport::sink(sink.clone()), None)
            .expect("provider")
            .expect("tracing on");
        (Arc::clone(&tracing.buffer), sink, tracing)
    }

    fn ended_now(mut span: SpanData, ago: Duration) -> SpanData {
        let length = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_default();
        span.end_time = std::time::SystemTime::now() - ago;
        span.start_time = span.end_time - length;
        span
    }

    #[test]
    fn spans_whose_local_parent_is_still_open_wait_for_it_and_are_nested_in_its_document() {
        let (buffer, sink, _provider) = buffer();
        let (a, b) = (trace_id(10), trace_id(20));
        let now = |s| ended_now(s, Duration::ZERO);
        // Invocation A's two calls have ended, its handler has not; invocation B finishes.
        buffer.push(now(aws_call(a, 2, 1, 10, 20)));
        buffer.push(now(aws_call(a, 3, 1, 30, 40)));
        buffer.push(now(aws_call(b, 2, 1, 10, 20)));
        buffer.push(now(handler(b, 0, 50, Vec::new())));
        buffer.flush().expect("flush");
        let docs = sink.json().expect("JSON");
        assert_eq!(docs.len(), 1, "{docs:#?}");
        assert_eq!(docs[0]["subsegments"].as_array().map(Vec::len), Some(1));
        // A finishes: its calls are nested in its handler's document, not sent on their own.
        buffer.push(now(handler(a, 0, 50, Vec::new())));
        buffer.flush().expect("flush");
        let docs = sink.json().expect("JSON");
        assert_eq!(docs.len(), 2, "{docs:#?}");
        assert_eq!(docs[1]["subsegments"].as_array().map(Vec::len), Some(2));
        assert_eq!(docs[1]["parent_id"], format!("{LAMBDA_SEGMENT:016x}"));
    }

    #[test]
    fn a_span_that_outlived_its_parent_goes_out_on_its_own_and_shutdown_sends_everything() {
        let (buffer, sink, _provider) = buffer();
        let t = trace_id(10);
        // Its parent (span 1) was exported long ago.
        buffer.push(ended_now(
            aws_call(t, 2, 1, 10, 20),
            HOLD_FOR_PARENT + Duration::from_secs(1),
        ));
        // A record and its call under a still-open local span 5.
        buffer.push(ended_now(
            named(t, 6, 5, "## record", (0, 50)),
            Duration::ZERO,
        ));
        buffer.push(ended_now(aws_call(t, 7, 6, 10, 20), Duration::ZERO));
        buffer.flush().expect("flush");
        let docs = sink.json().expect("JSON");
        assert_eq!(docs.len(), 1, "{docs:#?}");
        assert_eq!(docs[0]["name"], "SQS");
        assert_eq!(docs[0]["parent_id"], "0000000000000001");
        // What waits is sent at shutdown, as its own document with the call nested.
        buffer.flush_all().expect("flush");
        let docs = sink.json().expect("JSON");
        assert_eq!(docs.len(), 2, "{docs:#?}");
        assert_eq!(docs[1]["name"], "## record");
        assert_eq!(docs[1]["subsegments"][0]["name"], "DynamoDB");
    }

    #[test]
    fn take_ready_holds_exactly_the_spans_under_an_open_local_parent_in_a_full_buffer() {
        let fresh = |s| ended_now(s, Duration::ZERO);
        let mut spans = Vec::new();
        // 40 invocations: the even ones finished (handler 1 present), the odd ones still open
        // (handler 1 absent): a record 2 under the handler and a call 3 under the record.
        for n in 0..40u64 {
            let t = trace_id(100 + n);
            if n % 2 == 0 {
                spans.push(fresh(handler(t, 0, 50, Vec::new())));
            }
            spans.push(fresh(named(t, 2, 1, "## record", (0, 40))));
            spans.push(fresh(aws_call(t, 3, 2, 10, 20)));
        }
        // Two spans naming each other as parent (ids reused): nothing waits at the top of a
        // cycle, so neither is held.
        let t = trace_id(999);
        spans.push(fresh(aws_call(t, 7, 8, 10, 20)));
        spans.push(fresh(aws_call(t, 8, 7, 10, 20)));
        let total = spans.len();
        let ready = take_ready(&mut spans, std::time::SystemTime::now()).expect("some are held");
        assert_eq!(ready.len(), total - 40);
        let held = spans;
        assert_eq!(held.len(), 40, "the odd invocations' records and calls");
        let open: std::collections::HashSet<_> = (0..40u64)
            .filter(|n| n % 2 == 1)
            .map(|n| trace_id(100 + n))
            .collect();
        assert!(
            held.iter()
                .all(|s| open.contains(&s.span_context.trace_id())),
            "only open invocations wait"
        );
        assert!(
            !ready
                .iter()
                .any(|s| open.contains(&s.span_context.trace_id()))
        );
        // The held spans keep their order (each open invocation's record, then its call).
        let names: Vec<_> = held.iter().map(|s| s.name.as_ref()).collect();
        assert!(
            names.chunks(2).all(|pair| pair[0] == "## record"),
            "{names:?}"
        );
    }

    #[test]
    fn daemon_address_is_parsed_in_both_documented_forms() {
        assert_eq!(
            parse_daemon_address("169.254.79.2:2000"),
            Some("169.254.79.2:2000".parse().expect("addr"))
        );
        assert_eq!(
            parse_daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001"),
            Some("127.0.0.2:2001".parse().expect("addr"))
        );
        assert_eq!(
            parse_daemon_address("udp:127.0.0.2:2001 tcp:127.0.0.1:2000"),
            Some("127.0.0.2:2001".parse().expect("addr"))
        );
        assert_eq!(parse_daemon_address("tcp:127.0.0.1:2000"), None);
        assert_eq!(parse_daemon_address("not an address"), None);
    }

    #[test]
    fn trace_headers_round_trip_and_keep_lineage() {
        let h = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5";
        let p = parent_from_trace_header(h).expect("parsed");
        assert_eq!(p.trace_id(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(p.parent_id().as_deref(), Some("53995c3f42cd8ad8"));
        assert!(p.is_sampled());
        let again = p.header().expect("header");
        assert!(again.contains("Lineage=a87bd80c:1|68fd508a:5"), "{again}");
        assert_eq!(parent_from_trace_header(&again), Some(p));
    }

    #[test]
    fn usual_headers_are_read_as_the_propagator_reads_them() {
        for h in [
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
            "Root=1-00000000-000000000000000000000001;Parent=0000000000000000;Sampled=1",
            "Root=1-ffffffff-ffffffffffffffffffffffff;Parent=ffffffffffffffff;Sampled=0",
        ] {
            let ours = usual_trace_header(h).expect("the usual shape");
            assert_eq!(Some(ours), span_context_from_str(h), "{h}");
        }
        // Anything else is left to the propagator.
        for h in [
            "Root=1-5759E988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=1-5759e988-bd862e3fe1be46a99427279é;Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5",
        ] {
            assert_eq!(usual_trace_header(h), None, "{h}");
        }
    }

    #[test]
    fn trace_ids_are_written_in_xray_form() {
        let id = TraceId::from(0x5759_e988_bd86_2e3f_e1be_46a9_9427_2793_u128);
        assert_eq!(xray_trace_id(id), "1-5759e988-bd862e3fe1be46a994272793");
    }

    #[test]
    fn headers_without_a_root_are_rejected() {
        assert_eq!(parent_from_trace_header("Sampled=1;Self=foo"), None);
        assert_eq!(parent_from_trace_header(""), None);
    }
}
