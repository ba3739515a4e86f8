//! The full reconciliation: the demo's mix of traffic balances its books.

use payhook_local::demo::{DemoOptions, DemoRun};
use payhook_testkit::conformance::workspace_root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_traffic_reconciles_every_accepted_webhook() {
    // What `payhook demo` does: the run, then the dashboard page with the run's traces.
    let run_dir = crate::support::run_dir("demo");
    let DemoRun {
        report,
        accepted_ids,
    } = payhook_local::demo::run(&DemoOptions {
        run_dir: run_dir.clone(),
        rules_dir: workspace_root().join("rules"),
        timeout: 60,
        aws_endpoint: None,
    })
    .await
    .expect("demo runs");
    payhook_dashboard::run_page(
        &workspace_root().join("dashboards"),
        &workspace_root().join("alarms"),
        &run_dir,
        &accepted_ids,
    )
    .expect("the dashboard page is drawn");
    assert!(report.balanced(), "{report:#?}");
    assert_eq!(report.accepted, report.processed + report.failed);
    assert_eq!(report.failed, 1, "the one poison message");
    assert_eq!(report.dlq, 1);
    assert_eq!(
        report.absorbed, 1,
        "the crashed attempt's event, published again"
    );
    // The three deliveries sent three times each at once: every copy is acknowledged, either
    // as a duplicate or (while the first copy is still being enqueued) as queued again, which
    // the queue's deduplication absorbs; balanced() above proves each was processed once.
    let extra_queued = report.by_status.get(&202).copied().unwrap_or(0) - report.accepted;
    assert_eq!(report.duplicates + extra_queued, 6, "{report:#?}");
    assert_eq!(report.ignored, 3);
    // The Square payment's fee update, its two updates for refunds and the late copy of its
    // approved version change nothing: PROCESSED without a business event.
    assert_eq!(report.settled, 4, "{report:#?}");
    // Its books, and the Stripe and PayPal payments' (captured, fully refunded): one
    // payment.succeeded each, and exactly the refunds sent.
    assert_eq!(report.payments_checked, 3, "{report:#?}");
    assert_eq!(report.business_events.get("payment.succeeded"), Some(&3));
    assert_eq!(report.business_events.get("payment.refunded"), Some(&4));
    assert_eq!(report.by_status.get(&403), Some(&1));
    assert_eq!(report.by_status.get(&401), Some(&3), "{report:#?}");
    // Every webhook's trace drawn as a waterfall the dashboard page links to; the webhook whose
    // processor crashed after publishing shows both attempts and the event processor in one
    // trace.
    let page = std::fs::read_to_string(run_dir.join("dashboard.html")).unwrap();
    let svgs: Vec<String> = std::fs::read_dir(run_dir.join("traces"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(
        svgs.len(),
        report.accepted,
        "one waterfall per accepted webhook"
    );
    assert_eq!(page.matches("href=\"traces/").count(), report.accepted);
    assert!(
        svgs.iter()
            .any(|svg| svg.matches(">## record<").count() >= 2
                && svg.contains(">## event-processor<")
                && svg.contains(">webhook-validator<")),
        "a retried webhook's attempts are in its one trace"
    );
    for name in ["logs.jsonl", "metrics.jsonl", "xray.jsonl", "summary.json"] {
        let path = run_dir.join(name);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{name} written");
    }
}
