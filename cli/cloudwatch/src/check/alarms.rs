//! `alarms/*.json`: one alarm kind per file, in the format of `alarms/README.md` (what the
//! deploy's loader `definitions.parse_alarm` accepts), with CloudWatch's `PutMetricAlarm`
//! limits from `../shared/conformance/cloudwatch/NOTES.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::alarm::{FIELDS, METRIC_FIELDS, QUERY_FIELDS};
use serde_json::{Map, Value};

use super::codes;
use super::expression;
use super::json;
use super::metrics::{self, Catalogue, NAMESPACE, Origin, Use};
use super::placeholders;
use super::report::{FileReport, Report, index, key, list, type_name};
use super::rules::Rules;
use super::shape;
use super::stack;
use super::vocabulary::{self, closest};

/// What the alarm files hold, for the checks that come after them.
#[derive(Debug, Default)]
pub(crate) struct Alarms {
    /// How many alarm files there are.
    pub(crate) files: usize,
    /// Runbook file name → the alarm files that link to it. An alarm file that cannot be read
    /// claims `<file name>.md`, the runbook it has to name.
    pub(crate) runbooks: BTreeMap<String, Vec<PathBuf>>,
    /// How many alarms the deploy creates from these files; `None` when that cannot be known
    /// (a file that does not parse, an invalid scope, rules that do not load).
    pub(crate) deployed: Option<usize>,
}

/// Characters in a summary (the description adds severity and runbook link; ≤ 1024 in all).
const MAX_SUMMARY: usize = 400;
/// Queries in one metric math alarm.
const MAX_QUERIES: usize = 20;
/// Metric queries, and expression queries, in one alarm.
const MAX_OF_EACH: usize = 10;
/// Characters in one expression.
const MAX_EXPRESSION: usize = 2048;

/// Checks every alarm file.
pub(crate) fn check(
    catalogue: &Catalogue,
    root: &Path,
    rules: &Rules,
    report: &mut Report,
) -> Alarms {
    let files = json::folder_files(root, "alarms", "json", report);
    let runbooks_dir = root.join("runbooks");
    let mut alarms = Alarms {
        files: files.len(),
        deployed: rules.complete.then_some(0),
        ..Alarms::default()
    };
    for rel in files {
        let stem = rel
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(value) = json::read(root, &rel, report) else {
            alarms
                .runbooks
                .entry(format!("{stem}.md"))
                .or_default()
                .push(rel);
            alarms.deployed = None;
            continue;
        };
        let mut file = report.file(&rel);
        let checked = check_alarm(catalogue, &value, &stem, &runbooks_dir, &mut file);
        let runbook = checked.runbook.unwrap_or_else(|| format!("{stem}.md"));
        alarms.runbooks.entry(runbook).or_default().push(rel);
        alarms.deployed = alarms
            .deployed
            .zip(checked.scope)
            .map(|(n, scope)| n + stack::scope_instances(&scope, rules.names.len()));
    }
    alarms
}

/// What one alarm file contributes.
struct Checked {
    runbook: Option<String>,
    scope: Option<String>,
}

#[expect(
    clippy::too_many_lines,
    reason = "an alarm file's top-level properties checked in one pass, in the order of the file format, each check a few lines on the same map and report"
)]
fn check_alarm(
    catalogue: &Catalogue,
    value: &Value,
    stem: &str,
    runbooks_dir: &Path,
    file: &mut FileReport<'_>,
) -> Checked {
    let mut checked = Checked {
        runbook: None,
        scope: None,
    };
    let what = "an alarm file";
    let Some(map) = shape::object(value, "$", what, file) else {
        return checked;
    };
    shape::unknown_properties(map, "$", &FIELDS, what, file);

    let kind = shape::non_empty(map, "kind", "$", true, what, file);
    if let Some(kind) = kind {
        let kebab = kind.starts_with(|c: char| c.is_ascii_lowercase())
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !kebab {
            file.add(
                "$.kind",
                codes::INVALID_VALUE,
                format!("`{kind}` must be lower-case kebab-case"),
            );
        } else if kind != stem {
            file.add(
                "$.kind",
                codes::INVALID_VALUE,
                format!("`{kind}` must equal the file name `{stem}` (the kind is part of every alarm name)"),
            );
        }
    }
    shape::non_empty(map, "title", "$", true, what, file);
    if let Some(summary) = shape::non_empty(map, "summary", "$", true, what, file) {
        let length = summary.chars().count();
        if length > MAX_SUMMARY {
            file.add(
                "$.summary",
                codes::INVALID_VALUE,
                format!(
                    "the summary is {length} characters; at most {MAX_SUMMARY}, so the alarm \
                     description (severity, summary, runbook link) stays within 1024"
                ),
            );
        }
    }
    if let Some(runbook) = shape::non_empty(map, "runbook", "$", true, what, file) {
        checked.runbook = Some(runbook.to_owned());
        let expected = format!("{}.md", kind.unwrap_or(stem));
        if runbook != expected {
            file.add(
                "$.runbook",
                codes::INVALID_VALUE,
                format!("`{runbook}` must be `{expected}`, the runbook of this alarm kind (alarms/README.md)"),
            );
        }
        if runbook.contains('/') || !runbooks_dir.join(runbook).is_file() {
            file.add(
                "$.runbook",
                codes::MISSING_RUNBOOK,
                format!(
                    "runbooks/{runbook} does not exist: every alarm's description links to its \
                     runbook (<runbookBaseUrl>/runbooks/{runbook}), so write it (runbooks/README.md \
                     lists the sections)"
                ),
            );
        }
    }
    let scopes: Vec<&str> = stack::alarm_scopes().map(|(s, _)| s).collect();
    let scope = shape::one_of(map, "scope", "$", &scopes, true, what, file);
    checked.scope = scope.map(str::to_owned);
    shape::one_of(map, "severity", "$", &stack::SEVERITIES, true, what, file);

    let period = match (map.get("metric"), map.get("metrics")) {
        (Some(metric), None) => check_metric(catalogue, metric, "$.metric", scope, file),
        (None, Some(queries)) => check_queries(catalogue, queries, scope, file),
        (Some(_), Some(_)) => {
            file.add(
                "$",
                codes::INVALID_VALUE,
                "give exactly one of `metric` (one metric) and `metrics` (metric math), not both",
            );
            None
        }
        (None, None) => {
            file.add(
                "$",
                codes::MISSING_PROPERTY,
                "an alarm needs `metric` (one metric) or `metrics` (metric math)",
            );
            None
        }
    };

    match map.get("threshold") {
        Some(Value::Number(_)) => {}
        Some(other) => file.add(
            "$.threshold",
            codes::WRONG_TYPE,
            format!("`threshold` must be a number, not {}", type_name(other)),
        ),
        None => file.add(
            "$",
            codes::MISSING_PROPERTY,
            "an alarm file needs the property `threshold`",
        ),
    }
    shape::one_of(
        map,
        "comparison",
        "$",
        &stack::COMPARISONS,
        true,
        what,
        file,
    );
    shape::one_of(
        map,
        "treat_missing_data",
        "$",
        &stack::TREAT_MISSING_DATA,
        true,
        what,
        file,
    );
    evaluation(map, period, file);
    placeholders::check_alarm(map, scope, file);
    checked
}

/// Evaluation periods, datapoints to alarm and the period limit.
fn evaluation(map: &Map<String, Value>, period: Option<u64>, file: &mut FileReport<'_>) {
    let evaluation =
        match shape::property(map, "evaluation_periods", "$", true, "an alarm file", file) {
            Some(value) => {
                match shape::integer(value, "$.evaluation_periods", "evaluation_periods", file) {
                    Some(0) => {
                        file.add(
                            "$.evaluation_periods",
                            codes::INVALID_EVALUATION,
                            "`evaluation_periods` must be at least 1",
                        );
                        None
                    }
                    other => other,
                }
            }
            None => None,
        };
    if let Some(value) = map.get("datapoints_to_alarm") {
        let datapoints =
            shape::integer(value, "$.datapoints_to_alarm", "datapoints_to_alarm", file);
        if let (Some(datapoints), Some(evaluation)) = (datapoints, evaluation)
            && (datapoints < 1 || datapoints > evaluation)
        {
            file.add(
                "$.datapoints_to_alarm",
                codes::INVALID_EVALUATION,
                format!(
                    "datapoints_to_alarm {datapoints} must be between 1 and evaluation_periods \
                     ({evaluation}): it is the M of M out of N"
                ),
            );
        }
    }
    if let (Some(period), Some(evaluation)) = (period, evaluation) {
        let limit = if period < 3600 { 86_400 } else { 604_800 };
        if period.saturating_mul(evaluation) > limit {
            file.add(
                "$.evaluation_periods",
                codes::INVALID_EVALUATION,
                format!(
                    "period {period} s × evaluation_periods {evaluation} = {} s; CloudWatch allows \
                     at most {limit} s (one day, or a week for periods of an hour or more)",
                    period * evaluation
                ),
            );
        }
    }
}

/// The `dimensions` of a metric object as name and value, and whether every one is valid.
fn metric_dimensions<'a>(
    map: &'a Map<String, Value>,
    dimensions_path: &str,
    file: &mut FileReport<'_>,
) -> (Vec<(&'a str, Option<&'a str>)>, bool) {
    let Some(value) = map.get("dimensions") else {
        return (Vec::new(), true);
    };
    let mut dimensions: Vec<(&str, Option<&str>)> = Vec::new();
    let mut dimensions_ok = true;
    match value {
        Value::Object(pairs) => {
            if pairs.len() > 30 {
                file.add(
                    dimensions_path,
                    codes::INVALID_VALUE,
                    "a metric has at most 30 dimensions",
                );
            }
            for (name, value) in pairs {
                match value.as_str() {
                    Some(v) if !v.is_empty() => dimensions.push((name, Some(v))),
                    _ => {
                        dimensions_ok = false;
                        file.add(
                            &key(dimensions_path, name),
                            codes::INVALID_VALUE,
                            "a dimension value is a non-empty string",
                        );
                    }
                }
            }
        }
        other => {
            dimensions_ok = false;
            file.add(
                dimensions_path,
                codes::WRONG_TYPE,
                format!(
                    "`dimensions` must be an object of name → value, not {}",
                    type_name(other)
                ),
            );
        }
    }
    (dimensions, dimensions_ok)
}

/// One `metric` object; returns its period when valid.
fn check_metric(
    catalogue: &Catalogue,
    value: &Value,
    path: &str,
    scope: Option<&str>,
    file: &mut FileReport<'_>,
) -> Option<u64> {
    let what = "a metric";
    let map = shape::object(value, path, what, file)?;
    shape::unknown_properties(map, path, &METRIC_FIELDS, what, file);
    let namespace = shape::non_empty(map, "namespace", path, true, what, file);
    if namespace.is_some_and(|n| n.starts_with(':')) {
        file.add(
            &key(path, "namespace"),
            codes::INVALID_VALUE,
            "a namespace may not start with `:`",
        );
    }
    let name = shape::non_empty(map, "metric_name", path, true, what, file);
    let dimensions_path = key(path, "dimensions");
    let (dimensions, dimensions_ok) = metric_dimensions(map, &dimensions_path, file);
    if let Some(stat) = shape::string(map, "stat", path, true, what, file)
        && !vocabulary::is_alarm_statistic(stat)
    {
        let hint = closest(stat, vocabulary::BASIC_STATISTICS.iter().copied())
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        file.add(
            &key(path, "stat"),
            codes::INVALID_STAT,
            format!(
                "`{stat}` is not an alarm statistic{hint}: use SampleCount, Average, Sum, \
                 Minimum, Maximum or a percentile p0-p100 such as p99 or p99.9"
            ),
        );
    }
    let period = period(map, path, true, file);
    let unit = shape::string(map, "unit", path, false, what, file);
    let mut unit_ok = true;
    if let Some(unit) = unit
        && !catalogue.units.iter().any(|u| u == unit)
    {
        unit_ok = false;
        let hint = closest(unit, catalogue.units.iter().map(String::as_str))
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        file.add(
            &key(path, "unit"),
            codes::INVALID_UNIT,
            format!("`{unit}` is not a CloudWatch unit{hint}; units are spelled as CloudWatch spells them (`Milliseconds`, `Count/Second`)"),
        );
    }
    let (Some(namespace), Some(name)) = (namespace, name) else {
        return period;
    };
    if !dimensions_ok {
        return period;
    }
    if namespace == NAMESPACE {
        let name_path = key(path, "metric_name");
        let used = Use {
            path: &name_path,
            dimensions_path: &dimensions_path,
            name,
            dimensions,
            origin: Origin::Alarm(scope),
            period: period.map(|p| (p, key(path, "period"))),
            unit: unit.filter(|_| unit_ok).map(|u| (u, key(path, "unit"))),
        };
        metrics::check_custom(catalogue, &used, file);
    } else {
        for (name, value) in dimensions {
            metrics::check_resource_dimension(
                name,
                value.unwrap_or_default(),
                Origin::Alarm(scope),
                &key(&dimensions_path, name),
                file,
            );
        }
    }
    period
}

/// An alarm `period` (10, 20, 30 or a multiple of 60).
fn period(
    map: &Map<String, Value>,
    path: &str,
    required: bool,
    file: &mut FileReport<'_>,
) -> Option<u64> {
    let value = shape::property(map, "period", path, required, "a metric", file)?;
    let at = key(path, "period");
    let period = shape::integer(value, &at, "period", file)?;
    if vocabulary::is_alarm_period(period) {
        Some(period)
    } else {
        file.add(
            &at,
            codes::INVALID_PERIOD,
            format!("period {period} is not an alarm period: use 10, 20 or 30 (high-resolution metrics) or a multiple of 60 seconds"),
        );
        None
    }
}

/// The `metrics` queries of a metric math alarm; returns the period the limit is computed with.
#[expect(
    clippy::too_many_lines,
    reason = "validates the query list, then its expression graph; the second pass needs the ids, counts and periods the first gathers"
)]
fn check_queries(
    catalogue: &Catalogue,
    value: &Value,
    scope: Option<&str>,
    file: &mut FileReport<'_>,
) -> Option<u64> {
    let Value::Array(queries) = value else {
        file.add(
            "$.metrics",
            codes::WRONG_TYPE,
            format!(
                "`metrics` must be an array of queries, not {}",
                type_name(value)
            ),
        );
        return None;
    };
    if queries.is_empty() || queries.len() > MAX_QUERIES {
        file.add(
            "$.metrics",
            codes::INVALID_VALUE,
            format!(
                "{} queries; a metric math alarm has 1-{MAX_QUERIES}",
                queries.len()
            ),
        );
    }
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut expressions: Vec<(String, String, String)> = Vec::new();
    let (mut stats, mut maths, mut returned) = (0, 0, 0);
    let mut first_period = None;
    let mut expression_period = None;
    for (i, query) in queries.iter().enumerate() {
        let path = index("$.metrics", i);
        let what = "a query";
        let Some(map) = shape::object(query, &path, what, file) else {
            continue;
        };
        shape::unknown_properties(map, &path, &QUERY_FIELDS, what, file);
        let id = shape::non_empty(map, "id", &path, true, what, file);
        if let Some(id) = id {
            if !vocabulary::is_metric_id(id) {
                file.add(
                    &key(&path, "id"),
                    codes::INVALID_METRIC_ID,
                    format!("the id `{id}` must start with a lower-case letter and hold only letters, digits and `_`"),
                );
            } else if let Some(first) = ids.insert(id.to_owned(), path.clone()) {
                file.add(
                    &key(&path, "id"),
                    codes::DUPLICATE_METRIC_ID,
                    format!("the id `{id}` is already used at {first}"),
                );
            }
        }
        shape::string(map, "label", &path, false, what, file);
        if shape::boolean(map, "return_data", &path, file) == Some(true) {
            returned += 1;
        }
        match (map.get("metric"), map.get("expression")) {
            (Some(metric), None) => {
                stats += 1;
                let period = check_metric(catalogue, metric, &key(&path, "metric"), scope, file);
                first_period = first_period.or(period);
                if map.contains_key("period") {
                    file.add(
                        &key(&path, "period"),
                        codes::INVALID_VALUE,
                        "a metric query's period belongs in its `metric`",
                    );
                }
            }
            (None, Some(expression)) => {
                maths += 1;
                let at = key(&path, "expression");
                match expression.as_str() {
                    Some(text) if (1..=MAX_EXPRESSION).contains(&text.chars().count()) => {
                        expressions.push((at, text.to_owned(), id.unwrap_or_default().to_owned()));
                    }
                    Some(_) => file.add(
                        &at,
                        codes::INVALID_EXPRESSION,
                        format!("an expression is 1-{MAX_EXPRESSION} characters"),
                    ),
                    None => file.add(&at, codes::WRONG_TYPE, "`expression` must be a string"),
                }
                if map.contains_key("period") {
                    expression_period = expression_period.or(period(map, &path, false, file));
                }
            }
            (Some(_), Some(_)) => file.add(
                &path,
                codes::INVALID_VALUE,
                "a query has exactly one of `metric` and `expression`, not both",
            ),
            (None, None) => file.add(
                &path,
                codes::MISSING_PROPERTY,
                "a query needs `metric` or `expression`",
            ),
        }
    }
    if returned != 1 {
        file.add(
            "$.metrics",
            codes::INVALID_VALUE,
            format!(
                "exactly one query must have `return_data: true` (the single series the alarm \
                 evaluates); {returned} do"
            ),
        );
    }
    if stats > MAX_OF_EACH || maths > MAX_OF_EACH {
        file.add(
            "$.metrics",
            codes::INVALID_VALUE,
            format!("at most {MAX_OF_EACH} metric queries and {MAX_OF_EACH} expressions"),
        );
    }
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, text, id) in &expressions {
        let analysis = expression::analyse(text);
        for problem in &analysis.problems {
            file.add(path, problem.code, problem.message.clone());
        }
        if !analysis.searches.is_empty() {
            file.add(
                path,
                codes::INVALID_EXPRESSION,
                "alarms cannot use SEARCH: an alarm evaluates exactly one time series",
            );
        }
        let mut missing = BTreeSet::new();
        for reference in &analysis.references {
            if !ids.contains_key(reference) && missing.insert(reference.clone()) {
                let hint = closest(reference, ids.keys().map(String::as_str))
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                file.add(
                    path,
                    codes::UNKNOWN_METRIC_ID,
                    format!(
                        "the expression refers to `{reference}`, but no query has that id{hint}; ids: {}",
                        list(ids.keys())
                    ),
                );
            }
        }
        if !id.is_empty() {
            graph.insert(id.clone(), analysis.references);
        }
    }
    for (path, _, id) in &expressions {
        if let Some(cycle) = expression::cycle_from(id, &graph) {
            file.add(
                path,
                codes::INVALID_EXPRESSION,
                format!(
                    "the expression `{id}` depends on itself ({})",
                    cycle.join(" → ")
                ),
            );
        }
    }
    first_period.or(expression_period).or(Some(60))
}
