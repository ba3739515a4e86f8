//! What the Pulumi program (`infra/payhook_infra/`) deploys and fills, as far as the checks need
//! it: the placeholders it fills in dashboards and alarms, the alarm scopes and how many
//! resources each covers, and the vocabularies its loader enforces.
//!
//! These mirror `definitions.py`, `monitoring.py` and `settings.py`; the test
//! `placeholder_sets_and_vocabularies_agree_with_the_pulumi_program` in
//! `cli/tests/check_drift.rs` runs the Python definitions and fails when the two differ.

use std::collections::BTreeSet;

use payhook_core::Provider;
use payhook_telemetry::FunctionKind;

/// List placeholders a dashboard may use, each only as a whole array element
/// (`"alarms": ["${alarm_arns}"]`).
pub const DASHBOARD_LIST_PLACEHOLDERS: [&str; 1] = ["alarm_arns"];

/// Placeholders every alarm may use, whatever its scope.
pub const ALARM_GLOBAL_PLACEHOLDERS: [&str; 6] = [
    "region",
    "stage",
    "prefix",
    "api_name",
    "table_name",
    "event_bus_name",
];

/// Alarm scopes and the placeholders each adds to [`ALARM_GLOBAL_PLACEHOLDERS`].
pub const ALARM_SCOPES: [(&str, &[&str]); 6] = [
    (
        "queue",
        &[
            "provider",
            "queue_name",
            "dlq_name",
            "function_name",
            "service",
        ],
    ),
    ("dlq", &["dlq", "queue_name", "source"]),
    ("function", &["function_name", "service", "log_group_name"]),
    ("rule", &["rule_name"]),
    ("provider", &["provider", "function_name", "service"]),
    ("api", &[]),
];

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
    Provider::ALL.iter().map(|p| p.as_str()).collect()
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

/// Which binary a deployed function runs, from its logical name.
pub fn function_kind(service: &str) -> Option<FunctionKind> {
    if service == VALIDATOR {
        Some(FunctionKind::WebhookValidator)
    } else if service == EVENT_PROCESSOR {
        Some(FunctionKind::EventProcessor)
    } else if service == SWEEPER {
        Some(FunctionKind::Sweeper)
    } else if providers()
        .iter()
        .any(|p| service.strip_suffix("-processor") == Some(p))
    {
        Some(FunctionKind::ProviderProcessor)
    } else {
        None
    }
}

/// Every string placeholder a dashboard may use (`region`, `queue.stripe`,
/// `function.webhook-validator`, …), as `monitoring.dashboard_values` fills them.
pub fn dashboard_placeholders() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [
        "region",
        "stage",
        "prefix",
        "api_name",
        "table_name",
        "event_bus_name",
        "runbook_base_url",
        "dashboard_name",
        "dlq.events",
        "log_group.api-access",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for provider in providers() {
        names.insert(format!("queue.{provider}"));
        names.insert(format!("dlq.{provider}"));
    }
    for function in function_names() {
        names.insert(format!("function.{function}"));
        names.insert(format!("log_group.{function}"));
    }
    names
}

/// The placeholders an alarm of `scope` may use; `None` for an unknown scope.
pub fn alarm_placeholders(scope: &str) -> Option<BTreeSet<String>> {
    let (_, extra) = ALARM_SCOPES.iter().find(|(name, _)| *name == scope)?;
    Some(
        ALARM_GLOBAL_PLACEHOLDERS
            .iter()
            .chain(extra.iter())
            .map(|s| (*s).to_owned())
            .collect(),
    )
}

/// Every placeholder any alarm scope provides.
pub fn all_alarm_placeholders() -> BTreeSet<String> {
    ALARM_SCOPES
        .iter()
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
