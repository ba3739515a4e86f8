//! `payhook rules test` agrees with every case of the EventBridge conformance corpus, exits 2 on
//! every invalid pattern, and names the rules in rules/ that match an event.

use crate::support::payhook;

use payhook_testkit::conformance::{conformance_dir, read_jsonl, workspace_root};
use serde_json::Value;

fn raw_or_json(case: &Value, raw: &str, parsed: &str) -> String {
    case.get(raw)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| case[parsed].to_string())
}

#[test]
fn every_corpus_case_agrees_through_payhook_rules_test() {
    let Some(dir) = conformance_dir() else { return };
    let cases = read_jsonl(&dir.join("eventbridge/patterns.jsonl")).unwrap();
    assert_eq!(cases.len(), 204);
    let mut wrong = Vec::new();
    for case in &cases {
        let out = payhook()
            .args(["rules", "test", "--pattern"])
            .arg(raw_or_json(case, "pattern_raw", "pattern"))
            .arg("--event")
            .arg(raw_or_json(case, "event_raw", "event"))
            .output()
            .unwrap();
        let want = if case["expect"] == true { 0 } else { 1 };
        if out.status.code() != Some(want) {
            wrong.push(format!(
                "{}: exit {:?}, want {want}: {}",
                case["id"],
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_invalid_pattern_exits_2_through_payhook_rules_test() {
    let Some(dir) = conformance_dir() else { return };
    let cases = read_jsonl(&dir.join("eventbridge/invalid.jsonl")).unwrap();
    assert_eq!(cases.len(), 57);
    let mut wrong = Vec::new();
    for case in &cases {
        let out = payhook()
            .args(["rules", "test", "--pattern"])
            .arg(raw_or_json(case, "pattern_raw", "pattern"))
            .args(["--event", r#"{"source":"x"}"#])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if out.status.code() != Some(2) || report["message"].as_str().is_none_or(str::is_empty) {
            wrong.push(format!("{}: exit {:?}", case["id"], out.status.code()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn without_a_pattern_the_matching_rules_in_rules_dir_are_printed() {
    let event = r#"{"version":"0","id":"1","detail-type":"payment.succeeded","source":"payhook.stripe",
        "account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],
        "detail":{"webhook_id":"stripe:evt_1","provider":"stripe","event_type":"payment.succeeded",
        "payment_id":"pi_1","amount_minor":500000,"amount":5000.0,"amount_reporting":5000.0,"currency":"USD","tier":"high"}}"#;
    let out = payhook()
        .args(["rules", "test", "--event", event, "--rules-dir"])
        .arg(workspace_root().join("rules"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "high-value-payments"
    );
    let unmatched = r#"{"source":"other","detail-type":"x","detail":{}}"#;
    let out = payhook()
        .args(["rules", "test", "--event", unmatched, "--rules-dir"])
        .arg(workspace_root().join("rules"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn outside_the_repository_the_built_in_rules_answer() {
    let empty = std::env::temp_dir().join(format!("payhook-no-rules-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let event = serde_json::json!({
        "source": "payhook.stripe", "detail-type": "payment.refunded",
        "detail": {"amount": 12.0, "currency": "USD", "event_type": "refund.succeeded"}
    });
    let out = payhook()
        .current_dir(&empty)
        .args(["rules", "test", "--event"])
        .arg(event.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("refunds"), "{stdout}");
    // A folder named explicitly is never replaced by the built-in one.
    let out = payhook()
        .current_dir(&empty)
        .args(["rules", "test", "--rules-dir", "mine", "--event"])
        .arg(event.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&empty).unwrap();
}
