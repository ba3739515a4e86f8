//! `dashboards/*.json`: CloudWatch dashboard bodies (`DashboardBody` of `PutDashboard`) with
//! the deploy's placeholders, checked against the "Dashboard Body Structure and Syntax" of the
//! CloudWatch API reference as summarised in `../shared/conformance/cloudwatch/NOTES.md`, and
//! against the metric catalogue.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::metric::{self, EntryError, MetricEntry};
use serde_json::{Map, Value};

use super::alarms::Alarms;
use super::codes;
use super::expression::{self, Search};
use super::json;
use super::metrics::{self, Catalogue, NAMESPACE, Origin, Shown, Use};
use super::placeholders;
use super::report::{FileReport, Report, index, key, list, type_name};
use super::shape;
use super::stack;
use super::vocabulary::{self, closest};

/// What the dashboards hold, for the checks that come after them.
#[derive(Debug, Default)]
pub(crate) struct Dashboards {
    /// How many dashboard files there are.
    pub(crate) files: usize,
    /// The ones that parsed.
    pub(crate) parsed: Vec<PathBuf>,
    /// Whether every file parsed (otherwise what the dashboards show is unknown).
    pub(crate) complete: bool,
    /// Every widget title.
    pub(crate) titles: Vec<String>,
    /// Every catalogue metric and dimension set some widget shows.
    pub(crate) shown: Vec<Shown>,
}

/// Most widgets in one dashboard body.
const MAX_WIDGETS: usize = 500;
/// Most metrics and expressions in one widget.
const MAX_METRICS_PER_WIDGET: usize = 500;
/// Most alarms in an alarm status widget.
const MAX_ALARMS_PER_WIDGET: usize = 100;
/// Columns of the dashboard grid.
const GRID_COLUMNS: u64 = 24;

const BODY_PROPERTIES: [&str; 5] = ["widgets", "variables", "start", "end", "periodOverride"];
const WIDGET_PROPERTIES: [&str; 6] = ["type", "x", "y", "width", "height", "properties"];
const METRIC_WIDGET_PROPERTIES: [&str; 21] = [
    "accountId",
    "annotations",
    "end",
    "labels",
    "legend",
    "liveData",
    "metrics",
    "period",
    "region",
    "setPeriodToTimeRange",
    "singleValueFullPrecision",
    "sparkline",
    "stacked",
    "start",
    "stat",
    "table",
    "timezone",
    "title",
    "trend",
    "view",
    "yAxis",
];
const METRIC_OPTIONS: [&str; 9] = [
    "accountId",
    "color",
    "id",
    "label",
    "period",
    "region",
    "stat",
    "visible",
    "yAxis",
];
const EXPRESSION_OPTIONS: [&str; 10] = [
    "accountId",
    "color",
    "expression",
    "id",
    "label",
    "period",
    "region",
    "stat",
    "visible",
    "yAxis",
];
const VIEWS: [&str; 6] = ["timeSeries", "singleValue", "gauge", "bar", "pie", "table"];

/// Checks every dashboard.
pub(crate) fn check(
    catalogue: &Catalogue,
    root: &Path,
    alarms: &Alarms,
    report: &mut Report,
) -> Dashboards {
    let files = json::folder_files(root, "dashboards", "json", report);
    let mut dashboards = Dashboards {
        files: files.len(),
        complete: true,
        ..Dashboards::default()
    };
    if files.is_empty() && root.join("dashboards").is_dir() {
        report.add(
            Path::new("dashboards"),
            "$",
            codes::MISSING_FILE,
            "dashboards/ holds no dashboard body (*.json)",
        );
    }
    for rel in files {
        let Some(body) = json::read(root, &rel, report) else {
            dashboards.complete = false;
            continue;
        };
        let mut file = report.file(&rel);
        let mut board = Board {
            catalogue,
            root,
            file: &mut file,
            alarm_count: alarms.deployed,
            dashboards: &mut dashboards,
        };
        board.body(&rel, &body);
        dashboards.parsed.push(rel);
    }
    dashboards
}

struct Board<'a, 'r> {
    catalogue: &'a Catalogue,
    root: &'a Path,
    file: &'a mut FileReport<'r>,
    alarm_count: Option<usize>,
    dashboards: &'a mut Dashboards,
}

impl Board<'_, '_> {
    fn body(&mut self, rel: &Path, body: &Value) {
        let stem = rel
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem.is_empty()
            || stem.len() > 200
            || !stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.file.add(
                "$",
                codes::INVALID_VALUE,
                format!(
                    "the file name `{stem}` becomes the dashboard name: use 1-200 letters, digits, \
                     `-` and `_`"
                ),
            );
        }
        placeholders::check_dashboard(body, self.file);
        self.links(body);
        let Some(map) = shape::object(body, "$", "a dashboard body", self.file) else {
            return;
        };
        shape::unknown_properties(map, "$", &BODY_PROPERTIES, "a dashboard body", self.file);
        self.time_range(map);
        shape::one_of(
            map,
            "periodOverride",
            "$",
            &["auto", "inherit"],
            false,
            "",
            self.file,
        );
        if let Some(variables) = shape::array(map, "variables", "$", self.file) {
            self.variables(variables);
        }
        match shape::property(map, "widgets", "$", true, "a dashboard body", self.file) {
            Some(Value::Array(widgets)) => {
                if widgets.len() > MAX_WIDGETS {
                    self.file.add(
                        "$.widgets",
                        codes::INVALID_VALUE,
                        format!(
                            "{} widgets; a dashboard holds at most {MAX_WIDGETS}",
                            widgets.len()
                        ),
                    );
                }
                for (i, widget) in widgets.iter().enumerate() {
                    self.widget(widget, &index("$.widgets", i));
                }
            }
            Some(other) => self.file.add(
                "$.widgets",
                codes::WRONG_TYPE,
                format!("`widgets` must be an array, not {}", type_name(other)),
            ),
            None => {}
        }
    }

    /// `${runbook_base_url}/<path>` links point at files of this repository.
    fn links(&mut self, body: &Value) {
        let root = self.root;
        let file = &mut *self.file;
        placeholders::walk_strings(body, "$", &mut |path, text, _| {
            let marker = "${runbook_base_url}/";
            let mut rest = text;
            while let Some(at) = rest.find(marker) {
                let tail = &rest[at + marker.len()..];
                let end = tail
                    .find(|c: char| {
                        c.is_whitespace()
                            || matches!(c, ')' | '"' | '\'' | ']' | '>' | '#' | '?' | '`')
                    })
                    .unwrap_or(tail.len());
                let target = &tail[..end];
                if !target.is_empty() && !root.join(target.trim_end_matches('/')).exists() {
                    file.add(
                        path,
                        codes::BROKEN_LINK,
                        format!("the link `${{runbook_base_url}}/{target}` points at `{target}`, which is not in the repository"),
                    );
                }
                rest = tail;
            }
        });
    }

    fn time_range(&mut self, map: &Map<String, Value>) {
        let start = shape::string(map, "start", "$", false, "", self.file);
        if let Some(start) = start
            && !(is_relative_time(start) || is_iso_time(start))
        {
            self.file.add(
                "$.start",
                codes::INVALID_VALUE,
                format!(
                    "`{start}` is neither a relative time (`-PT3H`, `-P7D`) nor an ISO 8601 time"
                ),
            );
        }
        if let Some(end) = shape::string(map, "end", "$", false, "", self.file) {
            if start.is_none_or(|s| !is_iso_time(s)) {
                self.file.add(
                    "$.end",
                    codes::INVALID_VALUE,
                    "`end` is allowed only together with an absolute (ISO 8601) `start`",
                );
            } else if !is_iso_time(end) {
                self.file.add(
                    "$.end",
                    codes::INVALID_VALUE,
                    format!("`{end}` is not an ISO 8601 time"),
                );
            }
        }
    }

    fn variables(&mut self, variables: &[Value]) {
        if variables.len() > 25 {
            self.file.add(
                "$.variables",
                codes::INVALID_VALUE,
                format!("{} variables; a dashboard has at most 25", variables.len()),
            );
        }
        for (i, variable) in variables.iter().enumerate() {
            self.variable(variable, &index("$.variables", i));
        }
    }

    /// One dashboard variable at `path`.
    fn variable(&mut self, variable: &Value, path: &str) {
        let what = "a dashboard variable";
        let Some(map) = shape::object(variable, path, what, self.file) else {
            return;
        };
        shape::unknown_properties(
            map,
            path,
            &[
                "type",
                "property",
                "pattern",
                "inputType",
                "id",
                "label",
                "defaultValue",
                "values",
                "search",
                "populateFrom",
                "visible",
            ],
            what,
            self.file,
        );
        let kind = shape::one_of(
            map,
            "type",
            path,
            &["property", "pattern"],
            true,
            what,
            self.file,
        );
        if let Some(kind) = kind {
            shape::non_empty(map, kind, path, true, what, self.file);
        }
        let input = shape::one_of(
            map,
            "inputType",
            path,
            &["input", "select", "radio"],
            true,
            what,
            self.file,
        );
        if let Some(id) = shape::non_empty(map, "id", path, true, what, self.file)
            && (id.len() > 32
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            self.file.add(
                &key(path, "id"),
                codes::INVALID_VALUE,
                "a variable id is 1-32 characters of 0-9 A-Z a-z - _",
            );
        }
        if shape::string(map, "label", path, false, what, self.file)
            .is_some_and(|l| l.chars().count() > 30)
        {
            self.file.add(
                &key(path, "label"),
                codes::INVALID_VALUE,
                "a variable label is at most 30 characters",
            );
        }
        shape::boolean(map, "visible", path, self.file);
        let values = shape::array(map, "values", path, self.file);
        if values.is_some_and(|v| v.is_empty() || v.len() > 500) {
            self.file.add(
                &key(path, "values"),
                codes::INVALID_VALUE,
                "`values` holds 1-500 entries",
            );
        }
        let search = shape::string(map, "search", path, false, what, self.file);
        if search.is_some_and(|s| s.len() > 2048) {
            self.file.add(
                &key(path, "search"),
                codes::INVALID_VALUE,
                "`search` is at most 2048 characters",
            );
        }
        if matches!(input, Some("select" | "radio")) && values.is_none() {
            if search.is_none() {
                self.file.add(
                    path,
                    codes::MISSING_PROPERTY,
                    "a select or radio variable needs `values` or a `search` with `populateFrom`",
                );
            } else {
                shape::non_empty(map, "populateFrom", path, true, what, self.file);
            }
        }
    }

    fn widget(&mut self, widget: &Value, path: &str) {
        let Some(map) = shape::object(widget, path, "a widget", self.file) else {
            return;
        };
        shape::unknown_properties(map, path, &WIDGET_PROPERTIES, "a widget", self.file);
        if let Some(title) = map
            .get("properties")
            .and_then(|p| p.get("title"))
            .and_then(Value::as_str)
        {
            self.dashboards.titles.push(title.to_owned());
        }
        let kind = match shape::string(map, "type", path, true, "a widget", self.file) {
            Some(kind) if stack::WIDGET_TYPES.contains(&kind) => Some(kind),
            Some(kind) => {
                let hint = closest(kind, stack::WIDGET_TYPES.iter().copied())
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                self.file.add(
                    &key(path, "type"),
                    codes::INVALID_WIDGET_TYPE,
                    format!(
                        "`{kind}` is not a widget type{hint}; use one of {}",
                        list(stack::WIDGET_TYPES)
                    ),
                );
                None
            }
            None => None,
        };
        self.layout(map, path);
        let properties = match shape::property(map, "properties", path, true, "a widget", self.file)
        {
            Some(value) => {
                shape::object(value, &key(path, "properties"), "`properties`", self.file)
            }
            None => None,
        };
        let (Some(kind), Some(properties)) = (kind, properties) else {
            return;
        };
        let path = key(path, "properties");
        match kind {
            "metric" => self.metric_widget(properties, &path),
            "text" => self.text_widget(properties, &path),
            "log" => self.log_widget(properties, &path),
            "alarm" => self.alarm_widget(properties, &path),
            "explorer" => self.explorer_widget(properties, &path),
            _ => self.custom_widget(properties, &path),
        }
    }

    fn layout(&mut self, map: &Map<String, Value>, path: &str) {
        let mut field = |name: &str, range: (u64, u64), why: &str| -> Option<u64> {
            let value = map.get(name)?;
            let at = key(path, name);
            let n = shape::integer(value, &at, name, self.file)?;
            if n < range.0 || n > range.1 {
                let bound = if range.1 == u64::MAX {
                    format!("at least {}", range.0)
                } else {
                    format!("{}-{}", range.0, range.1)
                };
                self.file.add(
                    &at,
                    codes::INVALID_LAYOUT,
                    format!("{name} {n} is outside {bound} ({why})"),
                );
                return None;
            }
            Some(n)
        };
        let x = field(
            "x",
            (0, GRID_COLUMNS - 1),
            "the grid has 24 columns, numbered 0-23",
        );
        field("y", (0, u64::MAX), "rows are numbered from 0");
        let width = field("width", (1, GRID_COLUMNS), "the grid is 24 columns wide");
        field("height", (1, 1000), "CloudWatch's limit");
        if map.contains_key("x") != map.contains_key("y") {
            self.file.add(
                path,
                codes::INVALID_LAYOUT,
                "give both `x` and `y` (a position) or neither (the next free place)",
            );
        }
        let width_given = map.contains_key("width");
        if let (Some(x), Some(width)) = (x, if width_given { width } else { Some(6) })
            && x + width > GRID_COLUMNS
        {
            self.file.add(
                path,
                codes::INVALID_LAYOUT,
                format!(
                    "x {x} + width {width} = {} runs past the 24-column grid",
                    x + width
                ),
            );
        }
    }

    fn text_widget(&mut self, map: &Map<String, Value>, path: &str) {
        let what = "a text widget";
        shape::unknown_properties(map, path, &["markdown", "background"], what, self.file);
        shape::string(map, "markdown", path, true, what, self.file);
        shape::one_of(
            map,
            "background",
            path,
            &["solid", "transparent"],
            false,
            what,
            self.file,
        );
    }

    fn log_widget(&mut self, map: &Map<String, Value>, path: &str) {
        let what = "a log widget";
        shape::unknown_properties(
            map,
            path,
            &["accountId", "query", "region", "stacked", "title", "view"],
            what,
            self.file,
        );
        shape::non_empty(map, "region", path, true, what, self.file);
        shape::string(map, "title", path, false, what, self.file);
        shape::one_of(
            map,
            "view",
            path,
            &["table", "timeSeries", "bar", "pie"],
            false,
            what,
            self.file,
        );
        shape::boolean(map, "stacked", path, self.file);
        let Some(query) = shape::non_empty(map, "query", path, true, what, self.file) else {
            return;
        };
        let at = key(path, "query");
        if !query.trim_start().starts_with("SOURCE '") {
            self.file.add(
                &at,
                codes::INVALID_VALUE,
                "a dashboard Logs Insights query starts with its log groups: `SOURCE '<group>' | …`",
            );
            return;
        }
        let mut rest = query;
        while let Some(start) = rest.find("SOURCE '") {
            let after = &rest[start + 8..];
            let Some(end) = after.find('\'') else {
                self.file.add(
                    &at,
                    codes::INVALID_VALUE,
                    "a `SOURCE '` is not closed with `'`",
                );
                return;
            };
            metrics::check_resource_dimension(
                "LogGroupName",
                &after[..end],
                Origin::Dashboard,
                &at,
                self.file,
            );
            rest = &after[end + 1..];
        }
    }

    fn alarm_widget(&mut self, map: &Map<String, Value>, path: &str) {
        let what = "an alarm status widget";
        shape::unknown_properties(
            map,
            path,
            &["alarms", "sortBy", "states", "title"],
            what,
            self.file,
        );
        shape::string(map, "title", path, false, what, self.file);
        shape::one_of(
            map,
            "sortBy",
            path,
            &["default", "stateUpdatedTimestamp", "timestamp"],
            false,
            what,
            self.file,
        );
        if let Some(states) = shape::array(map, "states", path, self.file) {
            for (i, state) in states.iter().enumerate() {
                if !matches!(state.as_str(), Some("ALARM" | "INSUFFICIENT_DATA" | "OK")) {
                    self.file.add(
                        &index(&key(path, "states"), i),
                        codes::INVALID_VALUE,
                        format!("{state} is not an alarm state: use `ALARM`, `INSUFFICIENT_DATA` or `OK`"),
                    );
                }
            }
        }
        let at = key(path, "alarms");
        let Some(alarms) = shape::property(map, "alarms", path, true, what, self.file) else {
            return;
        };
        let Value::Array(alarms) = alarms else {
            self.file.add(
                &at,
                codes::WRONG_TYPE,
                format!("`alarms` must be an array, not {}", type_name(alarms)),
            );
            return;
        };
        let mut count = Some(0usize);
        for (i, arn) in alarms.iter().enumerate() {
            let here = index(&at, i);
            match arn.as_str() {
                Some(text)
                    if placeholders::whole(text).is_some_and(|n| {
                        stack::dashboard_list_placeholders().iter().any(|l| l == n)
                    }) =>
                {
                    count = count.zip(self.alarm_count).map(|(c, n)| c + n);
                }
                Some(text) if is_alarm_arn(text) => count = count.map(|c| c + 1),
                Some(text) => {
                    self.file.add(
                        &here,
                        codes::INVALID_VALUE,
                        format!(
                            "`{text}` is not an alarm ARN (`arn:aws:cloudwatch:<region>:<account>:alarm:<name>`); \
                             use `${{alarm_arns}}` for the stack's alarms"
                        ),
                    );
                    count = count.map(|c| c + 1);
                }
                None => self
                    .file
                    .add(&here, codes::WRONG_TYPE, "an alarm ARN must be a string"),
            }
        }
        match count {
            Some(0) => self.file.add(&at, codes::INVALID_VALUE, "an alarm status widget needs 1-100 alarms; this one would have none"),
            Some(n) if n > MAX_ALARMS_PER_WIDGET => self.file.add(
                &at,
                codes::TOO_MANY_ALARMS,
                format!(
                    "this widget would list {n} alarms (the alarm kinds in alarms/ applied to every \
                     resource of their scope); an alarm status widget shows at most \
                     {MAX_ALARMS_PER_WIDGET} and the deploy fails above that"
                ),
            ),
            _ => {}
        }
    }

    fn explorer_widget(&mut self, map: &Map<String, Value>, path: &str) {
        let what = "a metrics explorer widget";
        shape::unknown_properties(
            map,
            path,
            &[
                "aggregateBy",
                "labels",
                "metrics",
                "period",
                "region",
                "splitBy",
                "title",
                "widgetOptions",
            ],
            what,
            self.file,
        );
        self.period(map, path);
        match shape::property(map, "labels", path, true, what, self.file) {
            Some(Value::Array(labels)) => {
                for (i, label) in labels.iter().enumerate() {
                    let here = index(&key(path, "labels"), i);
                    if let Some(label) = shape::object(label, &here, "a label", self.file) {
                        shape::non_empty(label, "key", &here, true, "a label", self.file);
                    }
                }
            }
            Some(other) => self.file.add(
                &key(path, "labels"),
                codes::WRONG_TYPE,
                format!("`labels` must be an array, not {}", type_name(other)),
            ),
            None => {}
        }
        let at = key(path, "metrics");
        match shape::property(map, "metrics", path, true, what, self.file) {
            Some(Value::Array(items)) => {
                if items.is_empty() || items.len() > 100 {
                    self.file.add(
                        &at,
                        codes::INVALID_VALUE,
                        "a metrics explorer widget has 1-100 metrics",
                    );
                }
                let mut types = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let here = index(&at, i);
                    let Some(metric) = shape::object(item, &here, "an explorer metric", self.file)
                    else {
                        continue;
                    };
                    shape::unknown_properties(
                        metric,
                        &here,
                        &["metricName", "resourceType", "stat"],
                        "an explorer metric",
                        self.file,
                    );
                    shape::non_empty(
                        metric,
                        "metricName",
                        &here,
                        true,
                        "an explorer metric",
                        self.file,
                    );
                    if let Some(t) = shape::non_empty(
                        metric,
                        "resourceType",
                        &here,
                        true,
                        "an explorer metric",
                        self.file,
                    ) {
                        types.insert(t.to_owned());
                    }
                    self.stat(metric, &here);
                }
                if types.len() > 1 {
                    self.file.add(
                        &at,
                        codes::INVALID_VALUE,
                        format!(
                            "all metrics of an explorer widget use one resourceType, not {}",
                            list(&types)
                        ),
                    );
                }
            }
            Some(other) => self.file.add(
                &at,
                codes::WRONG_TYPE,
                format!("`metrics` must be an array, not {}", type_name(other)),
            ),
            None => {}
        }
    }

    fn custom_widget(&mut self, map: &Map<String, Value>, path: &str) {
        let what = "a custom widget";
        shape::unknown_properties(
            map,
            path,
            &["endpoint", "params", "updateOn", "title"],
            what,
            self.file,
        );
        if let Some(endpoint) = shape::non_empty(map, "endpoint", path, true, what, self.file)
            && (!endpoint.starts_with("arn:") || !endpoint.contains(":lambda:"))
        {
            self.file.add(
                &key(path, "endpoint"),
                codes::INVALID_VALUE,
                "`endpoint` is the ARN of the Lambda function that draws the widget",
            );
        }
    }

    fn stat(&mut self, map: &Map<String, Value>, path: &str) -> Option<String> {
        let stat = shape::string(map, "stat", path, false, "", self.file)?;
        if vocabulary::is_statistic(stat) {
            return Some(stat.to_owned());
        }
        let hint = closest(stat, vocabulary::BASIC_STATISTICS.iter().copied())
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        self.file.add(
            &key(path, "stat"),
            codes::INVALID_STAT,
            format!(
                "`{stat}` is not a CloudWatch statistic{hint}: use SampleCount, Average, Sum, Minimum, \
                 Maximum, a percentile (p99, p99.9), tm/wm/tc/ts forms (tm90, TM(10%:90%)), PR(a:b) \
                 or IQM"
            ),
        );
        None
    }

    fn period(&mut self, map: &Map<String, Value>, path: &str) -> Option<(u64, String)> {
        let value = map.get("period")?;
        let at = key(path, "period");
        let period = shape::integer(value, &at, "period", self.file)?;
        if vocabulary::is_dashboard_period(period) {
            Some((period, at))
        } else {
            self.file.add(
                &at,
                codes::INVALID_PERIOD,
                format!("period {period} is not a CloudWatch period: use 1, 5, 10, 30 or a multiple of 60 seconds"),
            );
            None
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one check per property of a metric widget, in order, over the same map and report"
    )]
    fn metric_widget(&mut self, map: &Map<String, Value>, path: &str) {
        let what = "a metric widget";
        shape::unknown_properties(map, path, &METRIC_WIDGET_PROPERTIES, what, self.file);
        shape::non_empty(map, "region", path, true, what, self.file);
        for flag in [
            "stacked",
            "liveData",
            "sparkline",
            "setPeriodToTimeRange",
            "singleValueFullPrecision",
            "trend",
        ] {
            shape::boolean(map, flag, path, self.file);
        }
        shape::string(map, "title", path, false, what, self.file);
        shape::string(map, "accountId", path, false, what, self.file);
        let view = shape::one_of(map, "view", path, &VIEWS, false, what, self.file);
        self.stat(map, path);
        let period = self.period(map, path);
        if let Some(legend) = map.get("legend") {
            let at = key(path, "legend");
            if let Some(legend) = shape::object(legend, &at, "`legend`", self.file) {
                shape::unknown_properties(legend, &at, &["position"], "`legend`", self.file);
                shape::one_of(
                    legend,
                    "position",
                    &at,
                    &["right", "bottom", "hidden"],
                    false,
                    "",
                    self.file,
                );
            }
        }
        if let Some(zone) = shape::string(map, "timezone", path, false, what, self.file) {
            let ok = zone.len() == 5
                && zone.starts_with(['+', '-'])
                && zone[1..].chars().all(|c| c.is_ascii_digit());
            if !ok {
                self.file.add(
                    &key(path, "timezone"),
                    codes::INVALID_VALUE,
                    format!("timezone `{zone}` must be + or - and four digits (`+0130`)"),
                );
            }
        }
        self.y_axis(map, path, view == Some("gauge"));
        if let Some(table) = map.get("table") {
            let at = key(path, "table");
            if let Some(table) = shape::object(table, &at, "`table`", self.file) {
                shape::unknown_properties(
                    table,
                    &at,
                    &[
                        "layout",
                        "stickySummary",
                        "showTimeSeriesData",
                        "summaryColumns",
                    ],
                    "`table`",
                    self.file,
                );
                shape::one_of(
                    table,
                    "layout",
                    &at,
                    &["vertical", "horizontal"],
                    false,
                    "",
                    self.file,
                );
                shape::boolean(table, "stickySummary", &at, self.file);
                shape::boolean(table, "showTimeSeriesData", &at, self.file);
                if let Some(columns) = shape::array(table, "summaryColumns", &at, self.file) {
                    for (i, column) in columns.iter().enumerate() {
                        if !matches!(column.as_str(), Some("MIN" | "MAX" | "SUM" | "AVG")) {
                            self.file.add(
                                &index(&key(&at, "summaryColumns"), i),
                                codes::INVALID_VALUE,
                                "summary columns are `MIN`, `MAX`, `SUM` and `AVG`",
                            );
                        }
                    }
                }
            }
        }
        let alarm_annotation = self.annotations(map, path);
        match map.get("metrics") {
            Some(Value::Array(entries)) => {
                if alarm_annotation {
                    self.file.add(
                        &key(path, "metrics"),
                        codes::INVALID_ANNOTATION,
                        "a widget with an alarm annotation cannot also have a `metrics` array",
                    );
                }
                self.metrics(entries, &key(path, "metrics"), period);
            }
            Some(other) => self.file.add(
                &key(path, "metrics"),
                codes::WRONG_TYPE,
                format!(
                    "`metrics` must be an array of arrays, not {}",
                    type_name(other)
                ),
            ),
            None if !alarm_annotation => self.file.add(
                path,
                codes::MISSING_PROPERTY,
                "a metric widget needs `metrics` (or an alarm annotation)",
            ),
            None => {}
        }
    }

    fn y_axis(&mut self, map: &Map<String, Value>, path: &str, gauge: bool) {
        let at = key(path, "yAxis");
        let axes = map
            .get("yAxis")
            .and_then(|v| shape::object(v, &at, "`yAxis`", self.file));
        if let Some(axes) = axes {
            shape::unknown_properties(axes, &at, &["left", "right"], "`yAxis`", self.file);
            for side in ["left", "right"] {
                let Some(axis) = axes.get(side) else { continue };
                let here = key(&at, side);
                let Some(axis) = shape::object(axis, &here, "an axis", self.file) else {
                    continue;
                };
                shape::unknown_properties(
                    axis,
                    &here,
                    &["min", "max", "label", "showUnits"],
                    "an axis",
                    self.file,
                );
                let min = shape::number(axis, "min", &here, self.file);
                let max = shape::number(axis, "max", &here, self.file);
                shape::string(axis, "label", &here, false, "", self.file);
                shape::boolean(axis, "showUnits", &here, self.file);
                if let (Some(min), Some(max)) = (min, max)
                    && min >= max
                {
                    self.file.add(
                        &here,
                        codes::INVALID_VALUE,
                        format!("min {min} is not below max {max}"),
                    );
                }
            }
        }
        let bounded = axes
            .and_then(|a| a.get("left"))
            .and_then(Value::as_object)
            .is_some_and(|left| left.contains_key("min") && left.contains_key("max"));
        if gauge && !bounded {
            self.file.add(
                path,
                codes::MISSING_PROPERTY,
                "a gauge needs `yAxis.left.min` and `yAxis.left.max`",
            );
        }
    }

    /// Checks `annotations`; returns whether it holds an alarm annotation.
    fn annotations(&mut self, map: &Map<String, Value>, path: &str) -> bool {
        let at = key(path, "annotations");
        let Some(annotations) = map
            .get("annotations")
            .and_then(|v| shape::object(v, &at, "`annotations`", self.file))
        else {
            return false;
        };
        shape::unknown_properties(
            annotations,
            &at,
            &["alarms", "horizontal", "vertical"],
            "`annotations`",
            self.file,
        );
        let mut alarm = false;
        if let Some(alarms) = shape::array(annotations, "alarms", &at, self.file) {
            alarm = !alarms.is_empty();
            if alarms.len() > 1 {
                self.file.add(
                    &key(&at, "alarms"),
                    codes::INVALID_ANNOTATION,
                    "a widget has at most one alarm annotation",
                );
            }
            if alarm
                && (annotations.contains_key("horizontal") || annotations.contains_key("vertical"))
            {
                self.file.add(&at, codes::INVALID_ANNOTATION, "a widget has either an alarm annotation or horizontal/vertical annotations, not both");
            }
            for (i, arn) in alarms.iter().enumerate() {
                if !arn.as_str().is_some_and(is_alarm_arn) {
                    self.file.add(
                        &index(&key(&at, "alarms"), i),
                        codes::INVALID_ANNOTATION,
                        "an alarm annotation is an alarm ARN",
                    );
                }
            }
        }
        for (direction, fills) in [
            ("horizontal", ["above", "below", "none"]),
            ("vertical", ["before", "after", "none"]),
        ] {
            let Some(items) = shape::array(annotations, direction, &at, self.file) else {
                continue;
            };
            let list_path = key(&at, direction);
            for (i, item) in items.iter().enumerate() {
                let here = index(&list_path, i);
                match item {
                    Value::Array(band) => {
                        if band.len() != 2 {
                            self.file.add(
                                &here,
                                codes::INVALID_ANNOTATION,
                                "a band annotation is an array of exactly two annotations",
                            );
                        }
                        for (j, edge) in band.iter().enumerate() {
                            self.annotation(edge, &index(&here, j), direction, &fills);
                        }
                    }
                    other => self.annotation(other, &here, direction, &fills),
                }
            }
        }
        alarm
    }

    fn annotation(&mut self, value: &Value, path: &str, direction: &str, fills: &[&str]) {
        let what = "an annotation";
        let Some(map) = shape::object(value, path, what, self.file) else {
            return;
        };
        let known: &[&str] = if direction == "horizontal" {
            &["value", "label", "color", "fill", "yAxis", "visible"]
        } else {
            &["value", "label", "color", "fill", "visible"]
        };
        shape::unknown_properties(map, path, known, what, self.file);
        match (
            direction,
            shape::property(map, "value", path, true, what, self.file),
        ) {
            ("horizontal", Some(Value::Number(_))) | (_, None) => {}
            ("horizontal", Some(_)) => self.file.add(
                &key(path, "value"),
                codes::INVALID_ANNOTATION,
                "a horizontal annotation's value is a number",
            ),
            (_, Some(Value::String(t))) if is_iso_time(t) => {}
            (_, Some(_)) => self.file.add(
                &key(path, "value"),
                codes::INVALID_ANNOTATION,
                "a vertical annotation's value is an ISO 8601 time",
            ),
        }
        shape::string(map, "label", path, false, what, self.file);
        self.color(map, path);
        shape::one_of(map, "fill", path, fills, false, what, self.file);
        shape::one_of(
            map,
            "yAxis",
            path,
            &["left", "right"],
            false,
            what,
            self.file,
        );
        shape::boolean(map, "visible", path, self.file);
    }

    fn color(&mut self, map: &Map<String, Value>, path: &str) {
        if let Some(color) = shape::string(map, "color", path, false, "", self.file)
            && !vocabulary::is_hex_color(color)
        {
            self.file.add(
                &key(path, "color"),
                codes::INVALID_COLOR,
                format!("`{color}` is not a six-digit hex colour such as `#d62728` (CloudWatch rejects colour names)"),
            );
        }
    }

    /// The `metrics` array of a metric widget.
    fn metrics(&mut self, entries: &[Value], path: &str, widget_period: Option<(u64, String)>) {
        if entries.len() > MAX_METRICS_PER_WIDGET {
            self.file.add(
                path,
                codes::INVALID_VALUE,
                format!(
                    "{} metrics; a widget holds at most {MAX_METRICS_PER_WIDGET}",
                    entries.len()
                ),
            );
        }
        // First pass: shapes, ids and the metrics themselves; expressions are checked once
        // every id of the widget is known (they may refer to later entries).
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        let mut expressions: Vec<(String, String, Option<String>)> = Vec::new();
        let mut previous: Option<Vec<String>> = None;
        for (i, entry) in entries.iter().enumerate() {
            let here = index(path, i);
            let (strings, options) = match MetricEntry::from_value(entry) {
                Ok(parsed) => (parsed.strings(), parsed.options),
                Err(EntryError::NotAnArray) => {
                    self.file.add(
                        &here,
                        codes::INVALID_METRIC_ARRAY,
                        format!(
                            "each entry of `metrics` is an array, not {}",
                            type_name(entry)
                        ),
                    );
                    continue;
                }
                Err(error @ EntryError::Trailing) => {
                    self.file
                        .add(&here, codes::INVALID_METRIC_ARRAY, error.to_string());
                    continue;
                }
            };
            let options_path = index(&here, strings.len());
            if let Some(options) = options
                && let Some(id) = self.options(options, &options_path, strings.is_empty())
                && let Some(first) = ids.insert(id.clone(), options_path.clone())
            {
                self.file.add(
                    &key(&options_path, "id"),
                    codes::DUPLICATE_METRIC_ID,
                    format!(
                        "the id `{id}` is already used at {first}; ids are unique within a widget"
                    ),
                );
            }
            if strings.is_empty() {
                match options.and_then(|o| o.get("expression")) {
                    Some(Value::String(expression)) => expressions.push((
                        key(&options_path, "expression"),
                        expression.clone(),
                        options.and_then(|o| o.get("id")).and_then(Value::as_str).map(str::to_owned),
                    )),
                    Some(other) => self.file.add(&key(&options_path, "expression"), codes::WRONG_TYPE, format!("`expression` must be a string, not {}", type_name(other))),
                    None => self.file.add(&here, codes::INVALID_METRIC_ARRAY, "an entry without namespace and metric name must be an expression: [{\"expression\": \"…\", \"id\": \"…\"}]"),
                }
                continue;
            }
            if options.is_some_and(|o| o.contains_key("expression")) {
                self.file.add(&here, codes::INVALID_METRIC_ARRAY, "an expression stands alone: [{\"expression\": \"…\"}], without namespace and metric name");
                continue;
            }
            let Some(resolved) = self.resolve(&strings, previous.as_deref(), &here) else {
                continue;
            };
            // An invalid period is reported where it is written; only valid ones are
            // compared with the metric's storage resolution.
            let period = match options.and_then(|o| o.get("period")) {
                Some(p) => p
                    .as_u64()
                    .filter(|p| vocabulary::is_dashboard_period(*p))
                    .map(|p| (p, key(&options_path, "period"))),
                None => widget_period.clone(),
            };
            self.metric(&resolved, &here, period);
            previous = Some(resolved);
        }
        self.expressions(&expressions, &ids);
    }

    /// The options object of an entry; returns its id when it has a valid one.
    fn options(
        &mut self,
        options: &Map<String, Value>,
        path: &str,
        expression: bool,
    ) -> Option<String> {
        let what = if expression {
            "an expression"
        } else {
            "a metric's options"
        };
        let known: &[&str] = if expression {
            &EXPRESSION_OPTIONS
        } else {
            &METRIC_OPTIONS
        };
        shape::unknown_properties(options, path, known, what, self.file);
        shape::string(options, "label", path, false, what, self.file);
        shape::string(options, "region", path, false, what, self.file);
        shape::string(options, "accountId", path, false, what, self.file);
        shape::boolean(options, "visible", path, self.file);
        shape::one_of(
            options,
            "yAxis",
            path,
            &["left", "right"],
            false,
            what,
            self.file,
        );
        self.color(options, path);
        self.stat(options, path);
        self.period(options, path);
        let id = shape::string(options, "id", path, false, what, self.file)?;
        if vocabulary::is_metric_id(id) {
            Some(id.to_owned())
        } else {
            self.file.add(
                &key(path, "id"),
                codes::INVALID_METRIC_ID,
                format!("the id `{id}` must start with a lower-case letter and hold only letters, digits and `_`"),
            );
            None
        }
    }

    /// Namespace, name and dimension pairs, with `"."` replaced by the previous entry's value
    /// ([`metric::resolve`], the reader the dashboard preview uses too).
    fn resolve(
        &mut self,
        strings: &[&str],
        previous: Option<&[String]>,
        path: &str,
    ) -> Option<Vec<String>> {
        match metric::resolve(strings, previous) {
            Ok(resolved) => Some(resolved),
            Err(error) => {
                let at = error
                    .position()
                    .map_or_else(|| path.to_owned(), |i| index(path, i));
                self.file
                    .add(&at, codes::INVALID_METRIC_ARRAY, error.to_string());
                None
            }
        }
    }

    /// One resolved metric: against the catalogue (custom metrics) or the stack's resources.
    fn metric(&mut self, resolved: &[String], path: &str, period: Option<(u64, String)>) {
        let dimensions: Vec<(&str, Option<&str>)> = resolved[2..]
            .chunks(2)
            .map(|pair| (pair[0].as_str(), Some(pair[1].as_str())))
            .collect();
        if resolved[0] == NAMESPACE {
            let used = Use {
                path,
                dimensions_path: path,
                name: &resolved[1],
                dimensions,
                origin: Origin::Dashboard,
                period,
                unit: None,
            };
            if let Some(shown) = metrics::check_custom(self.catalogue, &used, self.file) {
                self.dashboards.shown.push(shown);
            }
        } else {
            for (name, value) in dimensions {
                metrics::check_resource_dimension(
                    name,
                    value.unwrap_or_default(),
                    Origin::Dashboard,
                    path,
                    self.file,
                );
            }
        }
    }

    /// Every expression of a widget, once all ids are known.
    fn expressions(
        &mut self,
        expressions: &[(String, String, Option<String>)],
        ids: &BTreeMap<String, String>,
    ) {
        let mut insights = 0;
        let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, text, id) in expressions {
            let analysis = expression::analyse(text);
            for problem in &analysis.problems {
                self.file.add(path, problem.code, problem.message.clone());
            }
            if analysis.insights {
                insights += 1;
                if insights > 1 {
                    self.file.add(
                        path,
                        codes::INVALID_EXPRESSION,
                        "a widget holds at most one Metrics Insights query",
                    );
                }
            }
            let mut missing = BTreeSet::new();
            for reference in &analysis.references {
                if !ids.contains_key(reference) && missing.insert(reference.clone()) {
                    let hint = closest(reference, ids.keys().map(String::as_str))
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default();
                    self.file.add(
                        path,
                        codes::UNKNOWN_METRIC_ID,
                        format!(
                            "the expression refers to `{reference}`, but no metric or expression in this \
                             widget has that id{hint}; ids here: {}",
                            list(ids.keys())
                        ),
                    );
                }
            }
            for search in &analysis.searches {
                self.search(search, path);
            }
            if let Some(id) = id {
                graph.insert(id.clone(), analysis.references.clone());
            }
        }
        for (path, _, id) in expressions {
            let Some(id) = id else { continue };
            if let Some(cycle) = expression::cycle_from(id, &graph) {
                self.file.add(
                    path,
                    codes::INVALID_EXPRESSION,
                    format!(
                        "the expression `{id}` depends on itself ({})",
                        cycle.join(" → ")
                    ),
                );
            }
        }
    }

    /// A `SEARCH` on a dashboard: its schema and filters against the catalogue and the stack.
    fn search(&mut self, search: &Search, path: &str) {
        let Some(schema) = &search.schema else {
            self.file.add(
                path,
                codes::INVALID_EXPRESSION,
                "write SEARCH with its schema, `SEARCH('{Namespace,Dim1,Dim2} MetricName=\"Name\" …', 'Stat', period)`, \
                 so the dimension set is exact and can be checked (dashboards/README.md)",
            );
            return;
        };
        let Some((namespace, dimensions)) = schema.split_first() else {
            return;
        };
        for (name, value) in &search.filters {
            if !dimensions.contains(name) {
                self.file.add(
                    path,
                    codes::WRONG_DIMENSIONS,
                    format!("the search filters on `{name}`, which is not in its schema {{{}}}; it would match nothing", schema.join(",")),
                );
            } else if namespace != NAMESPACE {
                metrics::check_resource_dimension(name, value, Origin::Dashboard, path, self.file);
            }
        }
        if namespace != NAMESPACE {
            return;
        }
        let Some(name) = &search.metric_name else {
            self.file.add(
                path,
                codes::INVALID_EXPRESSION,
                format!("a SEARCH over `{NAMESPACE}` names its metric (MetricName=\"…\") so it can be checked against the catalogue"),
            );
            return;
        };
        let used = Use {
            path,
            dimensions_path: path,
            name,
            dimensions: dimensions
                .iter()
                .map(|d| {
                    let value = search
                        .filters
                        .iter()
                        .find(|(n, _)| n == d)
                        .map(|(_, v)| v.as_str());
                    (d.as_str(), value)
                })
                .collect(),
            origin: Origin::Dashboard,
            period: None,
            unit: None,
        };
        if let Some(shown) = metrics::check_custom(self.catalogue, &used, self.file) {
            self.dashboards.shown.push(shown);
        }
    }
}

fn is_alarm_arn(text: &str) -> bool {
    text.starts_with("arn:") && text.contains(":cloudwatch:") && text.contains(":alarm:")
}

/// `-PT3H`, `-PT5M`, `-P7D`, `-P3M`, `-P1W`, `-PT1H30M`.
fn is_relative_time(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("-P") else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let parts_ok = |part: &str, units: &str| {
        let mut digits = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                digits += 1;
            } else if units.contains(c) && digits > 0 {
                digits = 0;
            } else {
                return false;
            }
        }
        digits == 0
    };
    let time_ok = time.is_none_or(|t| !t.is_empty() && parts_ok(t, "HMS"));
    parts_ok(date, "YMWD") && time_ok && !(date.is_empty() && time.is_none())
}

/// `2018-12-17T06:00:00.000Z` and other ISO 8601 date-times (the date and `T` are checked).
fn is_iso_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 11
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && bytes[7] == b'-'
        && bytes[8..10].iter().all(u8::is_ascii_digit)
        && bytes[10] == b'T'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_times() {
        for ok in ["-PT3H", "-PT5M", "-P7D", "-P3M", "-PT1H30M", "-P1W"] {
            assert!(is_relative_time(ok), "{ok}");
        }
        for bad in ["PT3H", "-P", "-PT", "-PTH", "-P3X", "3h"] {
            assert!(!is_relative_time(bad), "{bad}");
        }
        assert!(is_iso_time("2018-12-17T06:00:00.000Z"));
        assert!(!is_iso_time("2018-12-17"));
    }
}
