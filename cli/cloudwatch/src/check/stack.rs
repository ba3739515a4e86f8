//! What the Pulumi program (`infra/payhook_infra/`) deploys and fills, as far as the checks need
//! it: the placeholders it fills in dashboards and alarms, the alarm scopes and how many
//! resources each covers, and the vocabularies its loader enforces.
//!
//! The placeholders come from `placeholders.json` at the repository root, the file
//! `infra/payhook_infra/definitions.py` reads too, so the two cannot drift. The other
//! vocabularies mirror `definitions.py`, `monitoring.py` and `settings.py`; the test
//! `placeholder_sets_and_vocabularies_agree_with_the_pulumi_program` in
//! `cli/tests/check_drift.rs` runs the Python definitions and fails when the two differ.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde::Deserialize;

/// The placeholder vocabulary file, as committed.
pub const PLACEHOLDERS_JSON: &str = include_str!("../../../../placeholders.json");

/// `placeholders.json`.
#[derive(Debug, Deserialize)]
struct Vocabulary {
    providers: Vec<String>,
    dashboard: DashboardVocabulary,
    alarm: AlarmVocabulary,
}

#[derive(Debug, Deserialize)]
struct DashboardVocabulary {
    strings: Vec<String>,
    per_provider: Vec<String>,
    per_function: Vec<String>,
    lists: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct AlarmVocabulary {
    global: Vec<String>,
    scopes: Vec<ScopeVocabulary>,
}

#[derive(Debug, Deserialize)]
struct ScopeVocabulary {
    scope: String,
    placeholders: Vec<String>,
}

static VOCABULARY: LazyLock<Vocabulary> = LazyLock::new(|| {
    // The file is part of the build; a test below parses it, so this cannot fail in a release.
    serde_json::from_str(PLACEHOLDERS_JSON).unwrap_or_else(|e| panic!("placeholders.json: {e}"))
});

/// List placeholders a dashboard may use, each only as a whole array element
/// (`"alarms": ["${alarm_arns}"]`).
pub fn dashboard_list_placeholders() -> &'static [String] {
    &VOCABULARY.dashboard.lists
}

/// Placeholders every alarm may use, whatever its scope.
pub fn alarm_global_placeholders() -> &'static [String] {
    &VOCABULARY.alarm.global
}

/// Alarm scopes, in the file's order, and the placeholders each adds to
/// [`alarm_global_placeholders`].
pub fn alarm_scopes() -> impl Iterator<Item = (&'static str, &'static [String])> {
    VOCABULARY
        .alarm
        .scopes
        .iter()
        .map(|s| (s.scope.as_str(), s.placeholders.as_slice()))
}

/// Widget types the deploy accepts (CloudWatch's five plus Lambda-backed `custom`).
pub const WIDGET_TYPES: [&str; 6] = ["metric", "text", "log", "alarm", "explorer", "custom"];

/// Alarm severities, most urgent first.
pub const SEVERITIES: [&str; 3] = ["critical", "high", "warning"];

/// Alarm comparison operators the format allows.
pub const COMPARISONS: [&str; 4] = [
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
];

/// `treat_missing_data` values.
pub const TREAT_MISSING_DATA: [&str; 4] = ["breaching", "notBreaching", "ignore", "missing"];

/// The event bus every rule file names.
pub const RULES_EVENT_BUS: &str = "payment-events";

/// The only EventBridge target dead-letter queue the stack creates.
pub const RULES_DEAD_LETTER_QUEUE: &str = "events-dlq";

/// The function of the validator, the `service` of its metrics.
const VALIDATOR: &str = "webhook-validator";

/// The event processor's logical name.
const EVENT_PROCESSOR: &str = "event-processor";

/// The sweeper's logical name.
const SWEEPER: &str = "sweeper";

/// Provider names (`stripe`, `paypal`, `square`).
pub fn providers() -> Vec<&'static str> {
    VOCABULARY.providers.iter().map(String::as_str).collect()
}

/// The logical names of the deployed functions, in deployment order: the validator, one
/// processor per provider (`stripe-processor`, …), the event processor, the sweeper. Each is
/// also the `service` dimension of the metrics that function emits.
pub fn function_names() -> Vec<String> {
    let mut names = vec![VALIDATOR.to_owned()];
    names.extend(providers().iter().map(|p| format!("{p}-processor")));
    names.push(EVENT_PROCESSOR.to_owned());
    names.push(SWEEPER.to_owned());
    names
}

/// The binary of a provider's processor.
const PROVIDER_PROCESSOR: &str = "provider-processor";

/// Which binary a deployed function runs, from its logical name: `webhook-validator`,
/// `provider-processor`, `event-processor` or `sweeper` (the telemetry catalogue's function
/// kinds).
pub fn function_kind(service: &str) -> Option<&'static str> {
    if service == VALIDATOR {
        Some(VALIDATOR)
    } else if service == EVENT_PROCESSOR {
        Some(EVENT_PROCESSOR)
    } else if service == SWEEPER {
        Some(SWEEPER)
    } else if providers()
        .iter()
        .any(|p| service.strip_suffix("-processor") == Some(p))
    {
        Some(PROVIDER_PROCESSOR)
    } else {
        None
    }
}

/// Every string placeholder a dashboard may use (`region`, `queue.stripe`,
/// `function.webhook-validator`, …), as `monitoring.dashboard_values` fills them.
pub fn dashboard_placeholders() -> BTreeSet<String> {
    let dashboard = &VOCABULARY.dashboard;
    let mut names: BTreeSet<String> = dashboard.strings.iter().cloned().collect();
    for provider in providers() {
        names.extend(
            dashboard
                .per_provider
                .iter()
                .map(|n| n.replace("{provider}", provider)),
        );
    }
    for function in function_names() {
        names.extend(
            dashboard
                .per_function
                .iter()
                .map(|n| n.replace("{function}", &function)),
        );
    }
    names
}

/// The placeholders an alarm of `scope` may use; `None` for an unknown scope.
pub fn alarm_placeholders(scope: &str) -> Option<BTreeSet<String>> {
    let (_, extra) = alarm_scopes().find(|(name, _)| *name == scope)?;
    Some(
        alarm_global_placeholders()
            .iter()
            .chain(extra.iter())
            .cloned()
            .collect(),
    )
}

/// Every placeholder any alarm scope provides.
pub fn all_alarm_placeholders() -> BTreeSet<String> {
    alarm_scopes()
        .flat_map(|(scope, _)| alarm_placeholders(scope).unwrap_or_default())
        .collect()
}

/// How many alarms one kind of `scope` becomes (`monitoring.scope_instances`).
pub fn scope_instances(scope: &str, rule_count: usize) -> usize {
    match scope {
        "queue" | "provider" => providers().len(),
        "dlq" => providers().len() + 1,
        "function" => function_names().len(),
        "rule" => rule_count,
        "api" => 1,
        _ => 0,
    }
}

/// The values a scope gives `${service}` or `${provider}`, one per alarm instance; `None` when
/// the scope does not provide that placeholder.
pub(crate) fn scope_values(scope: &str, placeholder: &str) -> Option<Vec<String>> {
    let providers = providers();
    match (scope, placeholder) {
        ("queue" | "provider", "provider") => {
            Some(providers.iter().map(|p| (*p).to_owned()).collect())
        }
        ("queue", "service") => Some(providers.iter().map(|p| format!("{p}-processor")).collect()),
        ("provider", "service") => Some(vec![VALIDATOR.to_owned()]),
        ("function", "service") => Some(function_names()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_file_expands_per_provider_and_function() {
        let names = dashboard_placeholders();
        for wanted in [
            "region",
            "queue.stripe",
            "dlq.square",
            "dlq.events",
            "function.webhook-validator",
            "log_group.paypal-processor",
            "log_group.api-access",
        ] {
            assert!(names.contains(wanted), "{wanted}");
        }
        assert!(!names.iter().any(|n| n.contains('{')));
        assert_eq!(dashboard_list_placeholders(), ["alarm_arns"]);
        assert_eq!(
            alarm_scopes().map(|(s, _)| s).collect::<Vec<_>>(),
            ["queue", "dlq", "function", "rule", "provider", "api"]
        );
        assert_eq!(
            function_kind("square-processor"),
            Some("provider-processor")
        );
        assert_eq!(function_kind("api-key-authorizer"), None);
    }
}
