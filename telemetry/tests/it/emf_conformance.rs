//! The EMF validator against the conformance corpus (`emf/valid.jsonl`, `emf/invalid.jsonl`),
//! and the schema checker used on emitted documents against the corpus's own notes.

use payhook_telemetry::emf::{self, EmfRule};
use serde_json::Value;

use crate::support::{conformance_dir, read_jsonl, schema_errors};

#[test]
fn validator_accepts_every_valid_conformance_document() {
    let Some(dir) = conformance_dir() else { return };
    let docs = read_jsonl(&dir.join("emf/valid.jsonl"));
    assert_eq!(docs.len(), 10);
    for (i, doc) in docs.iter().enumerate() {
        emf::validate(doc).unwrap_or_else(|e| panic!("valid line {} rejected: {e:?}", i + 1));
        emf::validate_line(&doc.to_string())
            .unwrap_or_else(|e| panic!("valid line {} rejected as a line: {e:?}", i + 1));
    }
}

#[test]
fn validator_rejects_every_invalid_conformance_document_for_the_documented_reason() {
    let Some(dir) = conformance_dir() else { return };
    let docs = read_jsonl(&dir.join("emf/invalid.jsonl"));
    let why = read_jsonl(&dir.join("emf/invalid.why.jsonl"));
    assert_eq!(docs.len(), 12);
    assert_eq!(docs.len(), why.len());
    for (doc, why) in docs.iter().zip(&why) {
        let id = why["id"].as_str().expect("id");
        let expected = match id {
            "no-cloudwatchmetrics" => EmfRule::MissingDirectives,
            "timestamp-iso-string" => EmfRule::TimestampNotInteger,
            "timestamp-missing" => EmfRule::MissingTimestamp,
            "101-metric-definitions" => EmfRule::TooManyMetrics,
            "31-dimension-keys" => EmfRule::TooManyDimensions,
            "dimension-target-missing" => EmfRule::MissingDimensionValue,
            "dimension-value-not-string" => EmfRule::InvalidDimensionValue,
            "metric-value-string" => EmfRule::InvalidMetricValue,
            "metric-array-101-values" => EmfRule::TooManyValues,
            "nested-target" => EmfRule::MissingMetricValue,
            "dimensions-not-nested" => EmfRule::MalformedDimensions,
            "unit-not-cloudwatch" => EmfRule::InvalidUnit,
            other => panic!("invalid.why.jsonl has a new case {other:?}; map it to a rule"),
        };
        let violations = emf::validate(doc).expect_err(id);
        assert!(
            violations.iter().any(|v| v.rule == expected),
            "{id}: expected {expected:?}, got {violations:?}"
        );
    }
}

#[test]
fn schema_checker_agrees_with_the_corpus_notes() {
    let Some(dir) = conformance_dir() else { return };
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("emf/schema.json")).expect("schema"),
    )
    .expect("JSON");
    for (i, doc) in read_jsonl(&dir.join("emf/valid.jsonl")).iter().enumerate() {
        let errors = schema_errors(&schema, doc);
        assert!(errors.is_empty(), "valid line {}: {errors:?}", i + 1);
    }
    let docs = read_jsonl(&dir.join("emf/invalid.jsonl"));
    let why = read_jsonl(&dir.join("emf/invalid.why.jsonl"));
    for (doc, why) in docs.iter().zip(&why) {
        let by_schema = why["caught_by"]
            .as_str()
            .expect("caught_by")
            .contains("schema.json");
        let errors = schema_errors(&schema, doc);
        assert_eq!(
            !errors.is_empty(),
            by_schema,
            "{}: schema errors {errors:?}",
            why["id"]
        );
    }
}

#[test]
fn timestamps_outside_fourteen_days_back_or_two_hours_ahead_are_rejected() {
    let Some(dir) = conformance_dir() else { return };
    let mut doc = read_jsonl(&dir.join("emf/valid.jsonl"))[1].clone();
    let now: i64 = 1_767_225_600_000;
    for (offset_ms, ok) in [
        (0, true),
        (-13 * 86_400_000, true),
        (-15 * 86_400_000, false),
        (3_600_000, true),
        (3 * 3_600_000, false),
    ] {
        doc["_aws"]["Timestamp"] = (now + offset_ms).into();
        assert_eq!(
            emf::validate_timestamp_window(&doc, now).is_ok(),
            ok,
            "offset {offset_ms}"
        );
    }
}

#[test]
fn a_line_with_text_before_the_object_is_not_emf() {
    let Some(dir) = conformance_dir() else { return };
    let doc = &read_jsonl(&dir.join("emf/valid.jsonl"))[2];
    let line = format!("INFO {doc}");
    let err = emf::validate_line(&line).expect_err("prefixed line");
    assert_eq!(err[0].rule, EmfRule::NotJsonObject);
}

#[test]
fn oversized_lines_are_rejected() {
    let big = format!(
        "{{\"_aws\":{{\"Timestamp\":1,\"CloudWatchMetrics\":[]}},\"pad\":\"{}\"}}",
        "x".repeat(emf::MAX_DOCUMENT_BYTES)
    );
    assert_eq!(
        emf::validate_line(&big).expect_err("too large")[0].rule,
        EmfRule::TooLarge
    );
}
