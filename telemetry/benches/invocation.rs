//! Benchmark: the telemetry cost of one webhook-validator invocation: start (context, trace
//! header), three log lines, five metrics flushed as EMF, three spans exported as X-Ray
//! subsegments to a real UDP socket standing in for the daemon.
//! Run with `cargo bench -p payhook-telemetry --bench invocation`; the figure goes in
//! `telemetry/BENCHMARKS.md`.
//!
//! `not_sampled_thread_cpu_time` is the same invocation with a trace header that says
//! `Sampled=0`, as most invocations behind API Gateway's default sampling rule are.
//!
//! The same run measures the floor the UDP figure is compared with: the kernel's cost of
//! sending the same datagram (the daemon protocol's header and the invocation's segment
//! document) on a connected socket to the same stand-in daemon, and nothing else. What a
//! machine charges for a loopback send varies severalfold between CPUs and kernels, so the
//! telemetry's own work is the figure minus that floor.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::{Criterion, criterion_group, criterion_main};
use payhook_telemetry::{
    DiscardSink, FunctionConfig, FunctionKind, MemorySink, Telemetry, TraceExport,
};

// The measured work, shared with the test that pins the output bytes (`tests/it/output_bytes.rs`).
mod workload;
use workload::one_invocation;

fn trace_header() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    format!("Root=1-{secs:08x}-00c0ffee123456789abcdef0;Parent=53995c3f42cd8ad8;Sampled=1")
}

/// The datagram one invocation sends to the daemon: the protocol's header line and the
/// segment document the workload produces.
fn one_datagram(header: &str) -> Vec<u8> {
    let segments = MemorySink::new();
    let telemetry = Telemetry::builder()
        .log_sink(DiscardSink)
        .trace_export(TraceExport::sink(segments.clone()))
        .build()
        .expect("telemetry");
    let _guard = telemetry.set_default();
    let function = telemetry
        .function(FunctionConfig::new(FunctionKind::WebhookValidator).metrics_sink(DiscardSink));
    one_invocation(&function, header);
    let documents = segments.lines();
    assert_eq!(documents.len(), 1, "one invocation sends one document");
    let mut datagram = b"{\"format\": \"json\", \"version\": 1}\n".to_vec();
    datagram.extend_from_slice(documents[0].as_bytes());
    datagram
}

/// Times `routine` by the thread's CPU clock.
fn thread_cpu_time(b: &mut criterion::Bencher<'_>, mut routine: impl FnMut()) {
    b.iter_custom(|iters| {
        let start = ThreadTime::now();
        for _ in 0..iters {
            routine();
        }
        start.elapsed()
    });
}

fn invocation(c: &mut Criterion) {
    // The stand-in daemon drains its socket every few milliseconds rather than waking for
    // each datagram, so the figure is the function's cost (building and sending the document),
    // not the scheduling of a reader thread on the same two cores.
    let daemon = UdpSocket::bind("127.0.0.1:0").expect("bind the stand-in daemon");
    daemon.set_nonblocking(true).expect("non-blocking");
    let addr = daemon.local_addr().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let mut received = 0u64;
            while !stop.load(Ordering::Relaxed) {
                while daemon.recv(&mut buf).is_ok() {
                    received += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            received
        })
    };

    let header = trace_header();
    let mut group = c.benchmark_group("invocation_telemetry");
    for (name, export) in [
        ("udp_daemon", TraceExport::Daemon(addr)),
        ("segments_discarded", TraceExport::sink(DiscardSink)),
    ] {
        let telemetry = Telemetry::builder()
            .log_sink(DiscardSink)
            .trace_export(export)
            .build()
            .expect("telemetry");
        let _guard = telemetry.set_default();
        let function = telemetry.function(
            FunctionConfig::new(FunctionKind::WebhookValidator).metrics_sink(DiscardSink),
        );
        group.bench_function(name, |b| b.iter(|| one_invocation(&function, &header)));
        if name == "udp_daemon" {
            // The same work timed by the thread's CPU clock: on a machine shared with other
            // builds, wall time also counts the time the thread waited for a core.
            group.bench_function("udp_daemon_thread_cpu_time", |b| {
                thread_cpu_time(b, || one_invocation(&function, &header));
            });
            // The invocation most requests are in AWS: API Gateway's default sampling rule
            // traces the first request each second and 5 % of the rest, and the others reach
            // the function with `Sampled=0` (logs and metrics as usual, nothing sent).
            let not_sampled = header.replace(";Sampled=1", ";Sampled=0");
            group.bench_function("not_sampled_thread_cpu_time", |b| {
                thread_cpu_time(b, || one_invocation(&function, &not_sampled));
            });
        }
    }

    // The floor: the same datagram sent on a connected socket, timed the same way.
    let datagram = one_datagram(&header);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    socket
        .connect(addr)
        .expect("connect to the stand-in daemon");
    group.bench_function("floor_udp_send_thread_cpu_time", |b| {
        thread_cpu_time(b, || {
            socket
                .send(std::hint::black_box(&datagram))
                .expect("send the datagram");
        });
    });
    group.finish();
    println!(
        "floor: one {}-byte datagram to the stand-in daemon per invocation",
        datagram.len()
    );

    stop.store(true, Ordering::Relaxed);
    let received = drain.join().expect("drain thread");
    assert!(received > 0, "the daemon received subsegments");
}

criterion_group!(benches, invocation);
criterion_main!(benches);
