//! The Tracer against a real UDP socket standing in for the X-Ray daemon, and the propagation
//! helpers for SQS and EventBridge.

use payhook_telemetry::{
    Annotation, FunctionKind, FunctionTelemetry, aws_call_span, parent_from_trace_header,
    record_span, trace_header_for_current_span,
};
use serde_json::Value;
use tracing::Instrument;

use crate::support::{
    FakeDaemon, Harness, TestError, fresh_trace_header, is_hex, is_xray_trace_id,
};

const DAEMON_HEADER: &[u8] = b"{\"format\": \"json\", \"version\": 1}\n";

/// A function whose segments go over UDP to a fake daemon, and the harness it runs in (kept
/// alive for the test).
fn traced_to_daemon(kind: FunctionKind) -> (FakeDaemon, Harness, FunctionTelemetry) {
    let daemon = FakeDaemon::bind();
    let h = Harness::with(|b| b.trace_export(daemon.export()));
    let f = h.function(kind);
    (daemon, h, f)
}

/// Splits each datagram into the daemon header and the segment document.
fn documents(datagrams: Vec<Vec<u8>>) -> Vec<Value> {
    datagrams
        .into_iter()
        .map(|d| {
            assert!(
                d.starts_with(DAEMON_HEADER),
                "datagram without the daemon header: {}",
                String::from_utf8_lossy(&d)
            );
            assert!(d.len() <= 64 * 1024);
            serde_json::from_slice(&d[DAEMON_HEADER.len()..]).expect("segment document is JSON")
        })
        .collect()
}

/// The subsegments of every document, nested ones included: a nested subsegment gets its
/// trace id and parent id from the document it is nested in (X-Ray leaves them implicit).
fn flatten(docs: &[Value]) -> Vec<Value> {
    fn walk(doc: &Value, enclosing: Option<(&Value, &Value)>, out: &mut Vec<Value>) {
        let mut doc = doc.clone();
        let obj = doc.as_object_mut().expect("a document is an object");
        if let Some((trace_id, parent_id)) = enclosing {
            assert!(
                obj.get("trace_id").is_none() && obj.get("parent_id").is_none(),
                "nested subsegments inherit their ids: {obj:?}"
            );
            obj.insert("trace_id".into(), trace_id.clone());
            obj.insert("parent_id".into(), parent_id.clone());
        }
        let nested = obj.remove("subsegments");
        let (trace_id, id) = (obj["trace_id"].clone(), obj["id"].clone());
        out.push(doc);
        for sub in nested
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(sub, Some((&trace_id, &id)), out);
        }
    }
    let mut out = Vec::new();
    for doc in docs {
        walk(doc, None, &mut out);
    }
    out
}

fn by_name<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {docs:?}"))
}

fn assert_well_formed(doc: &Value) {
    let id = doc["id"].as_str().expect("id");
    assert!(is_hex(id, 16), "id {id}");
    assert!(
        is_xray_trace_id(doc["trace_id"].as_str().expect("trace_id")),
        "{doc}"
    );
    let start = doc["start_time"].as_f64().expect("start_time in seconds");
    let end = doc["end_time"].as_f64().expect("end_time in seconds");
    assert!(end >= start, "end before start: {doc}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        (now - start).abs() < 60.0,
        "start_time is epoch seconds: {start}"
    );
    if let Some(parent) = doc.get("parent_id") {
        assert!(is_hex(parent.as_str().expect("parent_id"), 16), "{doc}");
    }
}

#[tokio::test]
async fn handler_and_aws_call_subsegments_reach_the_daemon_chained_under_lambdas_segment() {
    let (daemon, _h, f) = traced_to_daemon(FunctionKind::WebhookValidator);
    let (header, trace_id, lambda_segment) = fresh_trace_header(true);
    let inv = f.start("r1", Some(&header));
    let handle = inv.handle();
    let mut propagated = None;
    inv.run(async {
        handle.annotate(Annotation::Provider, "stripe");
        handle.annotate(Annotation::WebhookId, "stripe:evt_1");
        handle.annotate(Annotation::EventType, "payment.succeeded");
        handle.annotate(Annotation::Tier, "high");
        // Spans of payhook crates become subsegments; this test stands in for one.
        async {}
            .instrument(tracing::info_span!(target: "payhook_core::normalise", "normalise"))
            .await;
        let span = aws_call_span("SQS", "SendMessage");
        span.record(
            "aws.queue.url",
            "https://sqs.us-east-1.amazonaws.com/123456789012/stripe.fifo",
        );
        async {
            propagated = trace_header_for_current_span();
        }
        .instrument(span)
        .await;
        Ok::<_, TestError>(())
    })
    .await
    .expect("ok");

    // One datagram: the handler's subsegment with the calls nested in it.
    let sent = documents(daemon.datagrams());
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["type"], "subsegment", "never a competing segment");
    let docs = flatten(&sent);
    assert_eq!(docs.len(), 3, "{docs:?}");
    for doc in &docs {
        assert_well_formed(doc);
        assert_eq!(doc["trace_id"], trace_id.as_str(), "{doc}");
    }
    let handler = by_name(&docs, "## webhook-validator");
    let normalise = by_name(&docs, "normalise");
    let sqs = by_name(&docs, "SQS");
    assert_eq!(handler["parent_id"], lambda_segment.as_str());
    assert_eq!(normalise["parent_id"], handler["id"]);
    assert_eq!(sqs["parent_id"], handler["id"]);
    assert!(sqs["start_time"].as_f64() >= handler["start_time"].as_f64());
    assert!(sqs["end_time"].as_f64() <= handler["end_time"].as_f64());
    assert_eq!(sqs["namespace"], "aws");
    assert_eq!(sqs["aws"]["operation"], "SendMessage");
    assert_eq!(
        sqs["aws"]["queue_url"],
        "https://sqs.us-east-1.amazonaws.com/123456789012/stripe.fifo"
    );
    let annotations = &handler["annotations"];
    assert_eq!(annotations["ColdStart"], true, "as Powertools annotates");
    assert_eq!(annotations["Service"], "webhook-validator");
    assert_eq!(annotations["provider"], "stripe");
    assert_eq!(annotations["webhook_id"], "stripe:evt_1");
    assert_eq!(annotations["event_type"], "payment.succeeded");
    assert_eq!(annotations["tier"], "high");

    // The AWSTraceHeader for the message names the SQS call as the parent.
    let propagated = propagated.expect("a trace header inside the call");
    let parsed = parent_from_trace_header(&propagated).expect("parses");
    assert_eq!(parsed.trace_id(), trace_id);
    assert_eq!(parsed.parent_id().as_deref(), sqs["id"].as_str());
    assert!(parsed.is_sampled());
    assert!(propagated.len() <= payhook_telemetry::tracer::EVENTBRIDGE_TRACE_HEADER_MAX_LEN);
}

#[tokio::test]
async fn failed_invocations_mark_the_handler_subsegment_as_a_fault() {
    let (daemon, _h, f) = traced_to_daemon(FunctionKind::ProviderProcessor);
    let (header, _, _) = fresh_trace_header(true);
    let _ = f
        .start("r1", Some(&header))
        .run(async {
            Err::<(), _>(TestError {
                code: "publish_failed",
                retryable: true,
                message: "PutEvents failed".into(),
            })
        })
        .await;
    let docs = documents(daemon.datagrams());
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["fault"], true, "{}", docs[0]);
    let exception = &docs[0]["cause"]["exceptions"][0];
    assert_eq!(exception["type"], "publish_failed", "{}", docs[0]);
    assert_eq!(exception["message"], "PutEvents failed");
}

#[tokio::test]
async fn nothing_is_sent_when_the_trace_header_says_not_sampled() {
    let (daemon, h, f) = traced_to_daemon(FunctionKind::WebhookValidator);
    let (header, trace_id, _) = fresh_trace_header(false);
    f.start("r1", Some(&header))
        .run(async {
            async {}
                .instrument(aws_call_span("DynamoDB", "PutItem"))
                .await;
            tracing::info!("handled");
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    assert!(daemon.datagrams().is_empty());
    // The logs still carry the trace id, as Powertools' do.
    assert_eq!(h.log_lines()[0]["xray_trace_id"], trace_id.as_str());
}

#[tokio::test]
async fn nothing_is_sent_outside_an_invocation_or_without_a_trace_header() {
    let daemon = FakeDaemon::bind();
    let h = Harness::with(|b| b.trace_export(daemon.export()));
    async {}
        .instrument(aws_call_span("SSM", "GetParameter"))
        .await;
    let f = h.function(FunctionKind::WebhookValidator);
    f.start("r1", None)
        .run(async {
            async {}
                .instrument(aws_call_span("SQS", "SendMessage"))
                .await;
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    assert!(daemon.datagrams().is_empty());
}

/// A producer's header that sampled its trace (`trace` in this second, `Parent=parent`), and
/// the trace id it names.
fn producer_header(trace: u128, parent: &str) -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = format!("Root=1-{secs:08x}-{trace:024x};Parent={parent};Sampled=1");
    let trace_id = parent_from_trace_header(&header)
        .expect("parses")
        .trace_id();
    (header, trace_id)
}

#[tokio::test]
async fn an_sqs_record_continues_the_producers_trace() {
    let (daemon, _h, f) = traced_to_daemon(FunctionKind::ProviderProcessor);
    let (invocation_header, invocation_trace, _) = fresh_trace_header(true);
    let (producer, producer_trace) = producer_header(0xfeed_u128, "0badc0ffee000001");
    f.start("r1", Some(&invocation_header))
        .run(async {
            async {
                async {}
                    .instrument(aws_call_span("EventBridge", "PutEvents"))
                    .await;
            }
            .instrument(record_span("msg-1", Some(&producer)))
            .await;
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    let sent = documents(daemon.datagrams());
    assert_eq!(sent.len(), 2, "one document per trace: {sent:?}");
    let docs = flatten(&sent);
    assert_eq!(docs.len(), 3, "{docs:?}");
    let record = by_name(&docs, "## record");
    let put = by_name(&docs, "EventBridge");
    let handler = by_name(&docs, "## provider-processor");
    assert_eq!(record["trace_id"], producer_trace.as_str());
    assert_eq!(record["parent_id"], "0badc0ffee000001");
    assert_eq!(put["trace_id"], producer_trace.as_str());
    assert_eq!(put["parent_id"], record["id"]);
    assert_eq!(handler["trace_id"], invocation_trace.as_str());
}

#[tokio::test]
async fn a_sampled_record_inside_an_invocation_not_sampled_is_still_traced_in_full() {
    // The invocation says `Sampled=0` (as most do behind API Gateway's default rule): its
    // spans record nothing and send nothing, but a record whose producer sampled its trace
    // is traced with everything its spans record, and headers carry each decision on.
    let (daemon, _h, f) = traced_to_daemon(FunctionKind::ProviderProcessor);
    let (invocation_header, invocation_trace, _) = fresh_trace_header(false);
    let (producer, producer_trace) = producer_header(0xcafe_u128, "0badc0ffee000003");
    let (mut outside, mut inside) = (None, None);
    f.start("r1", Some(&invocation_header))
        .run(async {
            let call = aws_call_span("DynamoDB", "GetItem");
            async { outside = payhook_telemetry::eventbridge_trace_header() }
                .instrument(call)
                .await;
            async {
                let put = aws_call_span("EventBridge", "PutEvents");
                async { inside = payhook_telemetry::eventbridge_trace_header() }
                    .instrument(put)
                    .await;
            }
            .instrument(record_span("msg-1", Some(&producer)))
            .await;
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    let docs = flatten(&documents(daemon.datagrams()));
    assert_eq!(
        docs.len(),
        2,
        "the record and its call, nothing else: {docs:?}"
    );
    let record = by_name(&docs, "## record");
    let put = by_name(&docs, "EventBridge");
    assert_eq!(record["trace_id"], producer_trace.as_str());
    assert_eq!(put["parent_id"], record["id"]);
    assert_eq!(put["aws"]["operation"], "PutEvents");
    let outside = parent_from_trace_header(&outside.expect("a header")).expect("parses");
    assert_eq!(outside.trace_id(), invocation_trace);
    assert!(!outside.is_sampled(), "the invocation's decision goes on");
    let inside = parent_from_trace_header(&inside.expect("a header")).expect("parses");
    assert_eq!(inside.trace_id(), producer_trace);
    assert!(inside.is_sampled());
    assert_eq!(inside.parent_id().as_deref(), put["id"].as_str());
}

#[tokio::test]
async fn a_webhook_record_carries_the_webhooks_trace_on_to_the_next_hop() {
    let (daemon, _h, f) = traced_to_daemon(FunctionKind::ProviderProcessor);
    let (invocation_header, _, _) = fresh_trace_header(true);
    let (producer, producer_trace) = producer_header(0xbeef_u128, "0badc0ffee000002");
    let mut forwarded = None;
    f.start("r1", Some(&invocation_header))
        .run(async {
            async {
                let put = aws_call_span("EventBridge", "PutEvents");
                async { forwarded = payhook_telemetry::eventbridge_trace_header() }
                    .instrument(put)
                    .await;
            }
            .instrument(payhook_telemetry::webhook_record_span(
                "msg-1",
                Some("stripe:evt_1"),
                Some(&producer),
            ))
            .await;
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    let docs = flatten(&documents(daemon.datagrams()));
    let record = by_name(&docs, "## record");
    let put = by_name(&docs, "EventBridge");
    assert_eq!(record["trace_id"], producer_trace.as_str());
    assert_eq!(record["parent_id"], "0badc0ffee000002");
    let forwarded = forwarded.expect("a header for the entry");
    let next = parent_from_trace_header(&forwarded).expect("parses");
    assert_eq!(
        next.trace_id(),
        producer_trace,
        "the next hop joins the webhook's trace"
    );
    assert_eq!(
        next.parent_id().as_deref(),
        put["id"].as_str(),
        "under the PutEvents call"
    );
}

#[tokio::test]
async fn the_local_stack_starts_its_own_trace_with_a_function_segment() {
    let h = Harness::with(|b| b.local_root_segments(true));
    let f = h.function(FunctionKind::EventProcessor);
    let inv = f.start("r1", None);
    let trace_id = inv.handle().xray_trace_id().expect("a trace").to_owned();
    inv.run(async {
        tracing::info!("processing");
        async {}
            .instrument(aws_call_span("DynamoDB", "UpdateItem"))
            .await;
        Ok::<_, TestError>(())
    })
    .await
    .expect("ok");
    let written = h.segment_docs();
    assert_eq!(written.len(), 1, "{written:?}");
    let docs = flatten(&written);
    assert_eq!(docs.len(), 3, "{docs:?}");
    for doc in &docs {
        assert_well_formed(doc);
        assert_eq!(doc["trace_id"], trace_id.as_str());
    }
    let segment = by_name(&docs, "event-processor");
    assert!(segment.get("type").is_none() && segment.get("parent_id").is_none());
    let handler = by_name(&docs, "## event-processor");
    assert_eq!(handler["parent_id"], segment["id"]);
    assert_eq!(by_name(&docs, "DynamoDB")["parent_id"], handler["id"]);
    assert_eq!(h.log_lines()[0]["xray_trace_id"], trace_id.as_str());
}

#[tokio::test]
async fn with_xray_default_sampling_the_local_stack_traces_the_first_request_of_a_second_and_few_others()
 {
    let h = Harness::with(|b| {
        b.local_root_segments(true)
            .local_root_sampling(payhook_telemetry::RootSampling::XrayDefault)
    });
    let f = h.function(FunctionKind::WebhookValidator);
    let mut traces = Vec::new();
    for n in 0..60 {
        let inv = f.start(&format!("r{n}"), None);
        let trace_id = inv.handle().xray_trace_id().expect("a trace id").to_owned();
        let mut header = None;
        inv.run(async {
            tracing::info!("received");
            async { header = payhook_telemetry::eventbridge_trace_header() }
                .instrument(aws_call_span("SQS", "SendMessage"))
                .await;
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
        let header = parent_from_trace_header(&header.expect("a header")).expect("parses");
        assert_eq!(header.trace_id(), trace_id, "one trace per request");
        traces.push((trace_id, header.is_sampled()));
    }
    // Every request has a trace of its own, and its log line names it.
    let lines = h.log_lines();
    for (trace_id, _) in &traces {
        assert!(
            lines
                .iter()
                .any(|l| l["xray_trace_id"] == trace_id.as_str()),
            "{trace_id}"
        );
    }
    // The first takes the second's reservoir; of the other 59, 5 % on average (at most one
    // more reservoir if the loop crossed a second). Twenty would be a 1-in-10^10 draw.
    assert!(traces[0].1, "the first request of a second is sampled");
    let sampled: Vec<_> = traces.iter().filter(|(_, s)| *s).map(|(t, _)| t).collect();
    assert!(sampled.len() < 20, "{} of 60 sampled", sampled.len());
    // Exactly the sampled ones were sent, each with its segment.
    let docs = flatten(&h.segment_docs());
    let mut sent: Vec<_> = docs
        .iter()
        .filter(|d| d["name"] == "webhook-validator")
        .map(|d| d["trace_id"].as_str().expect("trace id").to_owned())
        .collect();
    sent.sort();
    let mut expected: Vec<_> = sampled.into_iter().cloned().collect();
    expected.sort();
    assert_eq!(sent, expected);
}

#[tokio::test]
async fn lineage_and_unknown_keys_are_forwarded() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let (header, _, _) = fresh_trace_header(true);
    let header = format!("{header};Lineage=a87bd80c:1|68fd508a:5");
    let mut forwarded = None;
    f.start("r1", Some(&header))
        .run(async {
            async { forwarded = trace_header_for_current_span() }
                .instrument(aws_call_span("SQS", "SendMessage"))
                .await;
            Ok::<_, TestError>(())
        })
        .await
        .expect("ok");
    let forwarded = forwarded.expect("header");
    assert!(
        forwarded.contains("Lineage=a87bd80c:1|68fd508a:5"),
        "{forwarded}"
    );
}

#[test]
fn no_trace_header_outside_a_trace() {
    let _h = Harness::new();
    assert_eq!(trace_header_for_current_span(), None);
}

#[test]
fn a_call_span_entered_twice_ends_at_its_last_exit_not_when_it_is_dropped() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let (header, _, _) = fresh_trace_header(true);
    let invocation = f.start("r1", Some(&header));
    let seconds = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64()
    };
    let (between_enters, after_last_exit) = {
        let _handler = invocation.span().enter();
        let call = aws_call_span("SQS", "SendMessage");
        drop(call.enter());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let between = seconds();
        std::thread::sleep(std::time::Duration::from_millis(2));
        drop(call.enter());
        let after = seconds();
        // Still open: it ends when dropped, at the time of its last exit.
        std::thread::sleep(std::time::Duration::from_millis(2));
        (between, after)
    };
    invocation.finish_ok();
    let docs = h.segments.json().expect("segment documents are JSON");
    let call = &docs[0]["subsegments"][0];
    assert_eq!(call["name"], "SQS", "{docs:?}");
    let end = call["end_time"].as_f64().expect("end_time");
    assert!(end > between_enters, "ended at its first exit: {call}");
    assert!(end <= after_last_exit, "ended when dropped: {call}");
}
