//! `payhook bench`: a small load run of the real binary, the load generator in a process of
//! its own, ends with every webhook accepted and processed once and the books balanced.

use serde_json::Value;

use crate::support::{payhook, scratch_in};

#[test]
fn a_small_bench_run_processes_every_webhook_once_and_reports_the_stack_alone() {
    let run_dir = scratch_in("bench_command", "small");
    let output = payhook()
        .args(["bench", "--requests", "240", "--concurrency", "4"])
        .args(["--max-seconds", "60", "--rules-dir"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules"))
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .expect("run payhook bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "payhook bench failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("the report is JSON");
    assert_eq!(report["requests"], 240);
    assert_eq!(report["accepted"], 240, "{report:#}");
    assert_eq!(report["not_accepted"], 0);
    let books = &report["reconciliation"];
    assert_eq!(books["processed"], 240, "{books:#}");
    assert_eq!(books["failed"], 0);
    assert_eq!(books["dlq"], 0);
    assert_eq!(books["problems"], serde_json::json!([]));
    assert_eq!(books["idle"], true);
    for key in [
        "ingress_per_second",
        "end_to_end_per_second",
        "peak_rss_mb",
        "stack_cpu_us_per_webhook",
        "load_cpu_us_per_request",
    ] {
        assert!(
            report[key].as_f64().unwrap_or(0.0) > 0.0,
            "{key}: {report:#}"
        );
    }
    let p = &report["latency_ms"];
    assert!(p["p50"].as_f64() <= p["p99"].as_f64() && p["p99"].as_f64() <= p["max"].as_f64());
    let saved: Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("bench.json")).expect("bench.json in the run directory"),
    )
    .expect("bench.json is JSON");
    assert_eq!(saved["accepted"], 240);
}

#[test]
fn a_bench_of_no_requests_is_a_usage_error() {
    let output = payhook()
        .args(["bench", "--requests", "0"])
        .output()
        .expect("run payhook bench");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--requests must be 1..="));
}
