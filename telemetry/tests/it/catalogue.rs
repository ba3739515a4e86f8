//! The metric catalogue: the names the issue asks for, with their units and dimensions, and
//! the JSON export dashboards and alarms are checked against.

use payhook_telemetry::{
    Dimension, FunctionKind, Metric, Resolution, Unit, catalogue, catalogue_json,
};
use serde_json::json;

use Dimension::*;
use FunctionKind::*;

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table of every catalogued metric with its unit, dimensions and function, checked by one loop"
)]
fn catalogue_declares_every_metric_the_kit_emits_with_unit_dimensions_and_function() {
    let expected: &[(&str, Unit, &[Dimension], FunctionKind)] = &[
        (
            "WebhooksReceived",
            Unit::Count,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "WebhooksAccepted",
            Unit::Count,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "WebhooksDuplicate",
            Unit::Count,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "WebhooksIgnored",
            Unit::Count,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "TestModeWebhooksIgnored",
            Unit::Count,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "WebhooksQuarantined",
            Unit::Count,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "UnratedPayments",
            Unit::Count,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "WebhooksRejected",
            Unit::Count,
            &[Service, Provider, Reason],
            WebhookValidator,
        ),
        (
            "SignatureFailures",
            Unit::Count,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "ValidationLatency",
            Unit::Milliseconds,
            &[Service, Provider],
            WebhookValidator,
        ),
        (
            "RecordsProcessed",
            Unit::Count,
            &[Service, Provider],
            ProviderProcessor,
        ),
        (
            "RecordsSkipped",
            Unit::Count,
            &[Service, Provider],
            ProviderProcessor,
        ),
        (
            "RecordsFailed",
            Unit::Count,
            &[Service, Provider],
            ProviderProcessor,
        ),
        (
            "EventsPublished",
            Unit::Count,
            &[Service, Provider, EventType],
            ProviderProcessor,
        ),
        (
            "PublishFailures",
            Unit::Count,
            &[Service, Provider],
            ProviderProcessor,
        ),
        (
            "PaymentAmount",
            Unit::None,
            &[Service, Provider, Tier],
            ProviderProcessor,
        ),
        (
            "PaymentsByTier",
            Unit::Count,
            &[Service, Tier],
            ProviderProcessor,
        ),
        (
            "MessagesToDlq",
            Unit::Count,
            &[Service, Provider],
            ProviderProcessor,
        ),
        (
            "EventsProcessed",
            Unit::Count,
            &[Service, Rule],
            EventProcessor,
        ),
        (
            "DuplicateEventsAbsorbed",
            Unit::Count,
            &[Service],
            EventProcessor,
        ),
        (
            "EndToEndLatency",
            Unit::Milliseconds,
            &[Service, Provider],
            EventProcessor,
        ),
        (
            "ColdStart",
            Unit::Count,
            &[Service, FunctionName],
            WebhookValidator,
        ),
    ];
    for (name, unit, dims, function) in expected {
        let def = Metric::from_name(name)
            .unwrap_or_else(|| panic!("{name} is not catalogued"))
            .def();
        assert_eq!(def.unit, *unit, "{name}");
        assert_eq!(def.dimension_sets, &[*dims][..], "{name}");
        assert!(def.functions.contains(function), "{name}");
    }
    assert_eq!(
        Metric::ColdStart.def().functions,
        &FunctionKind::ALL[..],
        "every function counts its cold starts"
    );
}

#[test]
fn catalogue_entries_are_well_formed() {
    let mut names: Vec<&str> = catalogue().iter().map(|d| d.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "names are unique");
    for (i, def) in catalogue().iter().enumerate() {
        assert_eq!(
            Metric::ALL[i],
            def.metric,
            "catalogue order matches the enum"
        );
        assert_eq!(def.metric.def().name, def.name);
        assert!(
            def.name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase())
        );
        assert!(
            def.name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{}",
            def.name
        );
        assert!(Unit::from_name(def.unit.as_str()) == Some(def.unit));
        assert!(!def.functions.is_empty(), "{}", def.name);
        assert!(!def.description.is_empty(), "{}", def.name);
        assert!(!def.dimension_sets.is_empty(), "{}", def.name);
        for set in def.dimension_sets {
            assert_eq!(set.first(), Some(&Service), "{}: service leads", def.name);
            assert!(set.len() <= 30);
        }
        assert_eq!(def.resolution, Resolution::Standard, "{}", def.name);
    }
}

#[test]
fn catalogue_exports_as_json_for_dashboards_and_alarms() {
    let exported = catalogue_json();
    assert_eq!(exported["default_namespace"], "Payhook");
    let metrics = exported["metrics"].as_array().expect("metrics");
    assert_eq!(metrics.len(), catalogue().len());
    let rejected = metrics
        .iter()
        .find(|m| m["name"] == "WebhooksRejected")
        .expect("WebhooksRejected");
    assert_eq!(
        rejected,
        &json!({
            "name": "WebhooksRejected",
            "unit": "Count",
            "storage_resolution": 60,
            "dimensions": [["service", "provider", "reason"]],
            "functions": ["webhook-validator"],
            "description": Metric::WebhooksRejected.def().description,
        })
    );
    let latency = metrics
        .iter()
        .find(|m| m["name"] == "EndToEndLatency")
        .expect("EndToEndLatency");
    assert_eq!(latency["unit"], "Milliseconds");
    assert_eq!(latency["functions"], json!(["event-processor"]));
}
