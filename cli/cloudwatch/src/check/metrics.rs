//! Metrics against what really exists: custom (`Payhook`) metrics against the telemetry
//! catalogue, their `service` / `provider` / `function_name` values against the functions that
//! emit them, AWS resource dimensions against the placeholders of their resources, and the
//! catalogue against the dashboards (every metric shown somewhere).
//!
//! CloudWatch matches a metric by its exact dimension set, so a dashboard asking for
//! `WebhooksReceived` by `{service}` alone draws nothing when the code emits it by
//! `{service, provider}`: that is drift, and it is caught here.

use std::collections::BTreeSet;
use std::path::Path;

use super::codes;
use super::dashboards::Dashboards;
use super::placeholders::{self, Found};
use super::report::{FileReport, Report, list};
use super::stack;

/// The namespace of the custom metrics (`POWERTOOLS_METRICS_NAMESPACE` as deployed; the
/// telemetry crate's default namespace, which `cli/tests/check_drift.rs` compares with this).
pub const NAMESPACE: &str = "Payhook";

/// The telemetry catalogue (`telemetry/src/catalogue.rs`) as the checks read it: every custom
/// metric the code emits and the units CloudWatch knows. The caller builds it from the
/// telemetry crate, which this crate does not depend on (it brings the Lambda runtime).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// Every `Payhook` metric.
    pub metrics: Vec<CatalogueMetric>,
    /// Every CloudWatch unit name (`Count`, `Milliseconds`, …).
    pub units: Vec<String>,
}

/// One metric of the [`Catalogue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueMetric {
    /// `WebhooksReceived`, …
    pub name: String,
    /// The unit it is emitted in.
    pub unit: String,
    /// Whether it is stored at 60-second (standard) resolution.
    pub standard_resolution: bool,
    /// Every dimension set it is emitted with, each as dimension names.
    pub dimension_sets: Vec<Vec<String>>,
    /// The function kinds that emit it (`webhook-validator`, `provider-processor`,
    /// `event-processor`, `sweeper`; see [`super::stack::function_kind`]).
    pub functions: Vec<String>,
}

/// Where a metric is used: on a dashboard, or in an alarm of a scope (`None`: invalid scope).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin<'a> {
    /// A dashboard widget.
    Dashboard,
    /// An alarm file.
    Alarm(Option<&'a str>),
}

/// One use of a custom metric.
#[derive(Debug)]
pub(crate) struct Use<'a> {
    /// Where the metric is named (reported for an unknown metric).
    pub(crate) path: &'a str,
    /// Where its dimensions are (reported for a wrong set or value).
    pub(crate) dimensions_path: &'a str,
    /// The metric name.
    pub(crate) name: &'a str,
    /// Dimension names with their values; `None` for a `SEARCH` schema dimension without a
    /// filter (any value).
    pub(crate) dimensions: Vec<(&'a str, Option<&'a str>)>,
    /// Where it is used.
    pub(crate) origin: Origin<'a>,
    /// The period it is read with, and where that period is written.
    pub(crate) period: Option<(u64, String)>,
    /// The unit an alarm selects, and where.
    pub(crate) unit: Option<(&'a str, String)>,
}

/// A catalogue metric with one of its dimension sets, as `(name, sorted dimension names)`.
pub(crate) type Shown = (String, Vec<String>);

fn dimension_names(set: &[String]) -> Vec<String> {
    let mut names: Vec<String> = set.to_vec();
    names.sort();
    names
}

/// Checks one use of a `Payhook` metric; returns what it shows when name and dimension set are
/// in the catalogue.
pub(crate) fn check_custom(
    catalogue: &Catalogue,
    used: &Use<'_>,
    file: &mut FileReport<'_>,
) -> Option<Shown> {
    let Some(def) = catalogue.metrics.iter().find(|d| d.name == used.name) else {
        let hint = super::vocabulary::closest(
            used.name,
            catalogue.metrics.iter().map(|d| d.name.as_str()),
        )
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
        file.add(
            used.path,
            codes::UNKNOWN_METRIC,
            format!(
                "`{NAMESPACE}` metric `{}` is not in the telemetry catalogue{hint}: the code never \
                 emits it, so this draws nothing (see telemetry/src/catalogue.rs)",
                used.name
            ),
        );
        return None;
    };
    let mut wanted: Vec<String> = used
        .dimensions
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    wanted.sort();
    let sets: Vec<Vec<String>> = def
        .dimension_sets
        .iter()
        .map(|s| dimension_names(s))
        .collect();
    if !sets.contains(&wanted) {
        file.add(
            used.dimensions_path,
            codes::WRONG_DIMENSIONS,
            format!(
                "`{}` is emitted with the dimension set {}, not [{}]; CloudWatch matches the exact \
                 set, so this selects no data",
                def.name,
                sets.iter()
                    .map(|s| format!("[{}]", s.join(", ")))
                    .collect::<Vec<_>>()
                    .join(" or "),
                wanted.join(", ")
            ),
        );
        return None;
    }
    check_values(def, used, file);
    if let Some((period, path)) = &used.period
        && *period < 60
        && def.standard_resolution
    {
        file.add(
            path,
            codes::INVALID_PERIOD,
            format!(
                "`{}` is stored at 60-second resolution; a {period}-second period has no data",
                def.name
            ),
        );
    }
    if let Some((unit, path)) = &used.unit
        && *unit != def.unit
    {
        file.add(
            path,
            codes::WRONG_UNIT,
            format!(
                "`{}` is emitted in `{}`; selecting unit `{unit}` matches no data",
                def.name, def.unit
            ),
        );
    }
    Some((def.name.clone(), wanted))
}

/// `service`, `provider` and `function_name` values name something that emits the metric.
fn check_values(def: &CatalogueMetric, used: &Use<'_>, file: &mut FileReport<'_>) {
    let service = used
        .dimensions
        .iter()
        .find(|(n, _)| *n == "service")
        .and_then(|(_, v)| *v);
    for (name, value) in &used.dimensions {
        let Some(value) = value else { continue };
        match *name {
            "service" => {
                let services = resolved(value, "service", used.origin, file, used.dimensions_path);
                check_services(def, &services, used.dimensions_path, file);
            }
            "provider" => {
                let providers = stack::providers();
                for provider in resolved(value, "provider", used.origin, file, used.dimensions_path)
                {
                    if !providers.contains(&provider.as_str()) {
                        file.add(
                            used.dimensions_path,
                            codes::WRONG_DIMENSION_VALUE,
                            format!(
                                "provider `{provider}` is not a provider; metrics carry one of {}",
                                list(&providers)
                            ),
                        );
                    }
                }
            }
            "function_name" => check_function_name(value, service, used, file),
            _ => {}
        }
    }
}

/// The literal values a `service` / `provider` dimension takes: itself when written literally,
/// or what the alarm's scope fills `${service}` / `${provider}` with. Other placeholders are
/// reported (the deploy has no other value for these dimensions).
fn resolved(
    value: &str,
    dimension: &str,
    origin: Origin<'_>,
    file: &mut FileReport<'_>,
    path: &str,
) -> Vec<String> {
    if !placeholders::has_any(value) {
        return vec![value.to_owned()];
    }
    match (origin, placeholders::whole(value)) {
        (Origin::Alarm(Some(scope)), Some(name)) if name == dimension => {
            // Not provided by the scope: reported as `placeholder_not_in_scope`.
            stack::scope_values(scope, dimension).unwrap_or_default()
        }
        (Origin::Alarm(None), _) => Vec::new(),
        _ if has_unknown_placeholder(value, origin) => Vec::new(),
        (Origin::Dashboard, _) => {
            file.add(
                path,
                codes::WRONG_DIMENSION_VALUE,
                format!(
                    "`{dimension}` is written literally on dashboards (`{value}` is not one of its \
                     values): the deploy fills no placeholder for it"
                ),
            );
            Vec::new()
        }
        (Origin::Alarm(Some(_)), _) => {
            file.add(
                path,
                codes::WRONG_DIMENSION_VALUE,
                format!("`{dimension}` must be written literally or as `${{{dimension}}}`, not `{value}`"),
            );
            Vec::new()
        }
    }
}

/// The services (one, or one per alarm instance) emit the metric.
fn check_services(
    def: &CatalogueMetric,
    services: &[String],
    path: &str,
    file: &mut FileReport<'_>,
) {
    let emitters: Vec<String> = stack::function_names()
        .into_iter()
        .filter(|f| stack::function_kind(f).is_some_and(|k| def.functions.iter().any(|d| d == k)))
        .collect();
    let unknown: Vec<&String> = services
        .iter()
        .filter(|s| stack::function_kind(s).is_none())
        .collect();
    let silent: Vec<&String> = services
        .iter()
        .filter(|s| stack::function_kind(s).is_some_and(|k| !def.functions.iter().any(|d| d == k)))
        .collect();
    if !unknown.is_empty() {
        file.add(
            path,
            codes::WRONG_DIMENSION_VALUE,
            format!(
                "service {} is not a deployed function; `{}` is emitted by {}",
                list(&unknown),
                def.name,
                list(&emitters)
            ),
        );
    }
    if !silent.is_empty() {
        file.add(
            path,
            codes::WRONG_DIMENSION_VALUE,
            format!(
                "`{}` is emitted by {} only; {} {} never {} it{}",
                def.name,
                list(&emitters),
                if silent.len() > 1 {
                    "services"
                } else {
                    "service"
                },
                list(&silent),
                if silent.len() > 1 { "have" } else { "has" },
                if services.len() > 1 {
                    " (the values the alarm's scope gives `${service}`)"
                } else {
                    ""
                }
            ),
        );
    }
}

/// `function_name` (of `ColdStart`) is the deployed name of the function in `service`.
fn check_function_name(
    value: &str,
    service: Option<&str>,
    used: &Use<'_>,
    file: &mut FileReport<'_>,
) {
    if has_unknown_placeholder(value, used.origin) {
        return;
    }
    let expected = match used.origin {
        Origin::Dashboard => match service {
            Some(service) if !placeholders::has_any(service) => format!("function.{service}"),
            _ => return,
        },
        Origin::Alarm(_) => "function_name".to_owned(),
    };
    if placeholders::whole(value) != Some(expected.as_str()) {
        file.add(
            used.dimensions_path,
            codes::WRONG_DIMENSION_VALUE,
            format!(
                "function_name is the deployed name of the function in `service`: write \
                 `${{{expected}}}`, not `{value}`"
            ),
        );
    }
}

/// Whether `value` holds a placeholder that is malformed or unknown where it is used (already
/// reported by the placeholder checks).
fn has_unknown_placeholder(value: &str, origin: Origin<'_>) -> bool {
    let known = match origin {
        Origin::Dashboard => stack::dashboard_placeholders(),
        Origin::Alarm(Some(scope)) => stack::alarm_placeholders(scope).unwrap_or_default(),
        Origin::Alarm(None) => stack::all_alarm_placeholders(),
    };
    placeholders::scan(value).iter().any(|found| match found {
        Found::Malformed(_) => true,
        Found::Name(name) => !known.contains(*name),
    })
}

/// AWS resource dimensions and the placeholders that name their resources, on dashboards and
/// in alarms. A literal name would match one stage only.
const RESOURCE_DIMENSIONS: [(&str, &[&str], &[&str]); 8] = [
    ("FunctionName", &["function."], &["function_name"]),
    (
        "QueueName",
        &["queue.", "dlq."],
        &["queue_name", "dlq_name"],
    ),
    ("LogGroupName", &["log_group."], &["log_group_name"]),
    ("ApiName", &["api_name"], &["api_name"]),
    ("Stage", &["stage"], &["stage"]),
    ("TableName", &["table_name"], &["table_name"]),
    ("EventBusName", &["event_bus_name"], &["event_bus_name"]),
    ("RuleName", &[], &["rule_name"]),
];

/// A resource dimension (`QueueName`, `FunctionName`, …) is exactly one placeholder of its
/// resource kind, so it names this stage's resource.
pub(crate) fn check_resource_dimension(
    dimension: &str,
    value: &str,
    origin: Origin<'_>,
    path: &str,
    file: &mut FileReport<'_>,
) {
    let Some((_, on_dashboards, in_alarms)) =
        RESOURCE_DIMENSIONS.iter().find(|(d, _, _)| *d == dimension)
    else {
        return;
    };
    let families = match origin {
        Origin::Dashboard => *on_dashboards,
        Origin::Alarm(_) => *in_alarms,
    };
    if families.is_empty() || has_unknown_placeholder(value, origin) {
        return;
    }
    let fits = |name: &str| {
        families.iter().any(|f| {
            if f.ends_with('.') {
                name.starts_with(f)
            } else {
                name == *f
            }
        })
    };
    if placeholders::whole(value).is_some_and(fits) {
        return;
    }
    let expected = list(families.iter().map(|f| {
        if f.ends_with('.') {
            format!("${{{f}…}}")
        } else {
            format!("${{{f}}}")
        }
    }));
    let problem = if placeholders::has_any(value) {
        format!("`{value}` is not the placeholder of a {dimension}")
    } else {
        format!("`{value}` is written literally and would match one stage only")
    };
    file.add(
        path,
        codes::WRONG_DIMENSION_VALUE,
        format!("{dimension}: {problem}; use {expected}"),
    );
}

/// Every catalogue metric, with each of its dimension sets, is on some dashboard.
pub(crate) fn check_coverage(
    catalogue: &Catalogue,
    root: &Path,
    dashboards: &Dashboards,
    report: &mut Report,
) {
    if !dashboards.complete || !root.join("dashboards").is_dir() {
        // A dashboard that does not parse (or no folder) is reported already; what it shows
        // cannot be known.
        return;
    }
    let (file, path) = match dashboards.parsed.as_slice() {
        [only] => (only.clone(), "$.widgets"),
        _ => (Path::new("dashboards").to_path_buf(), "$"),
    };
    let shown: BTreeSet<&Shown> = dashboards.shown.iter().collect();
    for def in &catalogue.metrics {
        for set in &def.dimension_sets {
            let key = (def.name.clone(), dimension_names(set));
            if !shown.contains(&key) {
                report.add(
                    &file,
                    path,
                    codes::METRIC_NOT_ON_DASHBOARD,
                    format!(
                        "catalogue metric `{}` with dimensions [{}] is on no dashboard; add a \
                         widget (a full metric array, or a SEARCH with `{{{NAMESPACE},{}}}` and \
                         MetricName=\"{}\")",
                        def.name,
                        key.1.join(", "),
                        key.1.join(","),
                        def.name
                    ),
                );
            }
        }
    }
}
