//! A dashboard's widgets evaluated on a [`MetricSource`]: metric widgets become series (metrics,
//! metric math and `SEARCH` results, per period with their statistic) with their threshold
//! lines; log widgets become tables; the alarm widget becomes the alarms and their states.

use std::collections::{BTreeSet, HashMap};

use payhook_cloudwatch::math::{self, ExprKind};
use payhook_cloudwatch::metric::{self as metric_array, MetricEntry};
use payhook_cloudwatch::search::SearchQuery;
use serde_json::Value;

use super::alarms::{AlarmInstance, AlarmKind, AlarmState};
use super::expr::{self, Env, Labeled, Val};
use super::logs::{self, LogRecord, Table};
use super::metrics::{MetricId, MetricSource, Points, Stat};

/// CloudWatch's default series colours, in order.
pub(crate) const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// A series as drawn.
#[derive(Debug, Clone)]
pub(crate) struct DrawnSeries {
    /// Legend label.
    pub(crate) label: String,
    /// Six-digit hex colour.
    pub(crate) color: String,
    /// Datapoints by period start.
    pub(crate) points: Points,
}

/// A horizontal line: an annotation of the widget or an alarm's threshold.
#[derive(Debug, Clone)]
pub(crate) struct Threshold {
    /// The value.
    pub(crate) value: f64,
    /// Its label.
    pub(crate) label: String,
    /// Colour.
    pub(crate) color: String,
    /// `above`, `below` or none.
    pub(crate) fill: Option<String>,
    /// The alarm kinds whose threshold this is.
    pub(crate) alarms: Vec<String>,
}

/// One row of the alarm widget.
#[derive(Debug, Clone)]
pub(crate) struct AlarmRow {
    /// Alarm name.
    pub(crate) name: String,
    /// Kind title.
    pub(crate) title: String,
    /// Severity.
    pub(crate) severity: String,
    /// Condition (`> 1000`).
    pub(crate) condition: String,
    /// The state and how it was computed.
    pub(crate) state: AlarmState,
    /// Where the state comes from (`computed`, `CloudWatch`).
    pub(crate) origin: &'static str,
    /// The runbook link.
    pub(crate) runbook: String,
    /// The filled summary.
    pub(crate) summary: String,
}

/// What a widget shows.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// A metric widget.
    Chart {
        /// `timeSeries`, `singleValue`, `bar`, `pie`, `gauge`, `table`.
        view: String,
        /// Stacked areas.
        stacked: bool,
        /// The visible series.
        series: Vec<DrawnSeries>,
        /// Horizontal lines.
        thresholds: Vec<Threshold>,
        /// The widget's period (seconds).
        period: i64,
        /// Period starts of the time range.
        grid: Vec<i64>,
        /// `yAxis.left.min` / `max`.
        y_min: Option<f64>,
        /// See `y_min`.
        y_max: Option<f64>,
        /// Whether a total over the range is the sum of the points (Sum/SampleCount).
        additive: bool,
    },
    /// A text widget (rendered Markdown).
    Text {
        /// The Markdown source.
        markdown: String,
        /// `background: transparent` (a section header).
        transparent: bool,
    },
    /// The alarm widget.
    Alarms(Vec<AlarmRow>),
    /// A log widget.
    Logs {
        /// The query as filled.
        query: String,
        /// Its result.
        table: Table,
    },
    /// A widget type the preview does not draw.
    Unsupported,
}

/// A widget ready to draw.
#[derive(Debug, Clone)]
pub(crate) struct WidgetOut {
    /// Position in the dashboard's `widgets`.
    pub(crate) index: usize,
    /// `metric`, `text`, `log`, `alarm`, …
    pub(crate) kind: String,
    /// Title.
    pub(crate) title: String,
    /// Grid position and size.
    pub(crate) x: i64,
    /// See `x`.
    pub(crate) y: i64,
    /// See `x`.
    pub(crate) width: i64,
    /// See `x`.
    pub(crate) height: i64,
    /// Whether it drew data.
    pub(crate) has_data: bool,
    /// Why some or all of it has no data.
    pub(crate) notes: Vec<String>,
    /// How local equivalents were derived.
    pub(crate) provenance: Vec<String>,
    /// The content.
    pub(crate) body: Body,
}

impl WidgetOut {
    /// Series drawn with data (metric widgets), rows (log and alarm widgets).
    pub(crate) fn series_count(&self) -> usize {
        match &self.body {
            Body::Chart { series, .. } => series.iter().filter(|s| !s.points.is_empty()).count(),
            Body::Alarms(rows) => rows.len(),
            Body::Logs { table, .. } => table.rows.len(),
            Body::Text { .. } | Body::Unsupported => 0,
        }
    }

    /// Threshold lines drawn.
    pub(crate) fn threshold_count(&self) -> usize {
        match &self.body {
            Body::Chart { thresholds, .. } => thresholds.len(),
            _ => 0,
        }
    }
}

/// One entry of a metric widget's `metrics`.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    metric: Option<MetricId>,
    expression: Option<String>,
    label: Option<String>,
    visible: bool,
    color: Option<String>,
    stat: Option<String>,
    period: Option<i64>,
}

fn parse_entries(metrics: &[Value], notes: &mut Vec<String>) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut previous: Option<Vec<String>> = None;
    for (i, m) in metrics.iter().enumerate() {
        let parsed = match MetricEntry::from_value(m) {
            Ok(parsed) => parsed,
            Err(e) => {
                notes.push(format!("metrics[{i}]: {e}"));
                continue;
            }
        };
        let s = |k: &str| parsed.option_str(k).map(str::to_owned);
        let option = |k: &str| parsed.options.and_then(|o| o.get(k));
        let mut entry = Entry {
            id: s("id").unwrap_or_else(|| format!("auto_m{i}")),
            metric: None,
            expression: s("expression"),
            label: s("label"),
            visible: option("visible").and_then(Value::as_bool) != Some(false),
            color: s("color"),
            stat: s("stat"),
            period: option("period").and_then(Value::as_i64),
        };
        if entry.expression.is_none() {
            match metric_array::resolve(&parsed.strings(), previous.as_deref()) {
                Ok(resolved) => {
                    entry.metric = Some(MetricId::from_resolved(&resolved));
                    previous = Some(resolved);
                }
                Err(e) => {
                    notes.push(format!("metrics[{i}]: {e}"));
                    continue;
                }
            }
        }
        out.push(entry);
    }
    out
}

fn default_label(m: &MetricId) -> String {
    let mut parts = vec![m.name.clone()];
    parts.extend(m.dimensions.iter().map(|(_, v)| v.clone()));
    parts.join(" ")
}

struct WidgetEnv<'a> {
    source: &'a dyn MetricSource,
    entries: &'a [Entry],
    stat: String,
    period: i64,
    grid: Vec<i64>,
    cache: HashMap<String, Val>,
    depth: usize,
    referenced: BTreeSet<MetricId>,
    notes: Vec<String>,
    provenance: BTreeSet<String>,
}

impl WidgetEnv<'_> {
    fn fetch(&mut self, m: &MetricId, stat: &str, period: i64) -> Result<Points, String> {
        let parsed = Stat::parse(stat).ok_or_else(|| format!("statistic {stat} is not known"))?;
        self.referenced.insert(m.clone());
        if let Some(p) = self.source.provenance(m) {
            self.provenance
                .insert(format!("{} {}: {p}", m.namespace, m.name));
        }
        match self.source.fetch(m, parsed, period) {
            Some(points) => Ok(points),
            None => {
                self.notes.push(self.source.missing_note(m));
                Ok(Points::new())
            }
        }
    }
}

impl Env for WidgetEnv<'_> {
    fn id(&mut self, id: &str) -> Result<Val, String> {
        if let Some(v) = self.cache.get(id) {
            return Ok(v.clone());
        }
        let entry = self
            .entries
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| format!("no metric or expression with id {id}"))?
            .clone();
        let v = if let Some(m) = &entry.metric {
            let stat = entry.stat.clone().unwrap_or_else(|| self.stat.clone());
            let period = entry.period.unwrap_or(self.period);
            let points = self.fetch(m, &stat, period)?;
            Val::Ts(Labeled {
                label: entry.label.clone().unwrap_or_else(|| default_label(m)),
                points,
            })
        } else {
            if self.depth > 20 {
                return Err("expressions refer to each other in a loop".into());
            }
            self.depth += 1;
            let text = entry.expression.clone().unwrap_or_default();
            let result = expr::evaluate(&text, self);
            self.depth -= 1;
            result?
        };
        self.cache.insert(id.to_owned(), v.clone());
        Ok(v)
    }

    fn metrics(&mut self, filter: Option<&str>) -> Result<Vec<Labeled>, String> {
        let ids: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.metric.is_some() && filter.is_none_or(|f| e.id.contains(f)))
            .map(|e| e.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Val::Ts(t) = self.id(&id)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn search(&mut self, query: &str, stat: &str, period: i64) -> Result<Vec<Labeled>, String> {
        let q = SearchQuery::parse(query).map_err(|e| e.to_string())?;
        let namespace = q
            .searched_namespace()
            .map(str::to_owned)
            .ok_or("SEARCH without a {Namespace,…} schema is not evaluated by the preview")?;
        let found: Vec<MetricId> = self
            .source
            .list(&namespace)
            .into_iter()
            .filter(|m| q.matches(m))
            .collect();
        if found.is_empty() {
            self.notes
                .push(format!("SEARCH found no {namespace} metric for {query}"));
        }
        let mut out = Vec::new();
        for m in found {
            let points = self.fetch(&m, stat, period)?;
            out.push(Labeled {
                label: q.label_for(&m),
                points,
            });
        }
        Ok(out)
    }

    fn grid(&self) -> Vec<i64> {
        self.grid.clone()
    }
}

/// Everything a widget may need besides its own JSON.
pub(crate) struct Inputs<'a> {
    /// The metrics.
    pub(crate) source: &'a dyn MetricSource,
    /// The log records (`None`: logs are not available in this mode).
    pub(crate) logs: Option<&'a [LogRecord]>,
    /// Alarm kinds.
    pub(crate) kinds: &'a [AlarmKind],
    /// Alarms and their states (with where each state comes from).
    pub(crate) alarms: &'a [(AlarmInstance, AlarmState, &'static str)],
    /// Base of runbook links.
    pub(crate) runbook_base_url: &'a str,
}

fn num(v: &Value, key: &str, default: i64) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(default)
}

/// Evaluates one (filled) widget.
pub(crate) fn evaluate(index: usize, widget: &Value, inputs: &Inputs<'_>) -> WidgetOut {
    let props = widget.get("properties").cloned().unwrap_or(Value::Null);
    let kind = widget
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let title = props
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut out = WidgetOut {
        index,
        kind: kind.clone(),
        title,
        x: num(widget, "x", 0),
        y: num(widget, "y", 0),
        width: num(widget, "width", 6).clamp(1, 24),
        height: num(widget, "height", 6).clamp(1, 1000),
        has_data: false,
        notes: Vec::new(),
        provenance: Vec::new(),
        body: Body::Unsupported,
    };
    match kind.as_str() {
        "metric" => metric_widget(&props, inputs, &mut out),
        "text" => {
            out.body = Body::Text {
                markdown: props
                    .get("markdown")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                transparent: props.get("background").and_then(Value::as_str) == Some("transparent"),
            };
            out.has_data = true;
        }
        "log" => {
            let query = props
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match inputs.logs {
                Some(records) => {
                    let table = logs::run_query(&query, records);
                    out.notes.extend(table.notes.iter().cloned());
                    out.has_data = !table.rows.is_empty();
                    if !out.has_data {
                        let groups = logs::sources(&query);
                        out.notes.push(format!(
                            "no log event of {} matches the query",
                            if groups.is_empty() {
                                "the run".to_owned()
                            } else {
                                groups.join(", ")
                            }
                        ));
                    }
                    out.body = Body::Logs { query, table };
                }
                None => {
                    out.notes.push(
                        "Logs Insights is not queried by the --aws preview; run the query in the console"
                            .into(),
                    );
                    out.body = Body::Logs {
                        query,
                        table: Table::default(),
                    };
                }
            }
        }
        "alarm" => alarm_widget(&props, inputs, &mut out),
        other => out
            .notes
            .push(format!("{other} widgets are not drawn by the preview")),
    }
    out
}

fn alarm_widget(props: &Value, inputs: &Inputs<'_>, out: &mut WidgetOut) {
    let arns: Vec<&str> = props
        .get("alarms")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let states: Option<BTreeSet<&str>> = props
        .get("states")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let mut rows = Vec::new();
    for arn in arns {
        let name = arn.rsplit(":alarm:").next().unwrap_or(arn);
        match inputs.alarms.iter().find(|(a, _, _)| a.name == name) {
            Some((alarm, state, origin)) => {
                if states.as_ref().is_some_and(|s| !s.contains(state.state)) {
                    continue;
                }
                let kind = &inputs.kinds[alarm.kind];
                rows.push(AlarmRow {
                    name: alarm.name.clone(),
                    title: if alarm.resource.is_empty() {
                        kind.title.clone()
                    } else {
                        format!("{} ({})", kind.title, alarm.resource)
                    },
                    severity: kind.severity.clone(),
                    condition: super::alarms::condition(kind),
                    state: state.clone(),
                    origin,
                    runbook: format!("{}/runbooks/{}", inputs.runbook_base_url, kind.runbook),
                    summary: alarm.summary.clone(),
                });
            }
            None => out
                .notes
                .push(format!("{name} is not one of the alarms in alarms/")),
        }
    }
    let rank = |s: &str| match s {
        "ALARM" => 0,
        "INSUFFICIENT_DATA" => 1,
        _ => 2,
    };
    rows.sort_by(|a, b| {
        rank(a.state.state)
            .cmp(&rank(b.state.state))
            .then_with(|| a.name.cmp(&b.name))
    });
    out.has_data = rows.iter().any(|r| r.state.state != "INSUFFICIENT_DATA");
    if rows.is_empty() {
        out.notes.push("no alarm to show".into());
    }
    out.body = Body::Alarms(rows);
}

#[expect(
    clippy::too_many_lines,
    reason = "evaluates a metric widget's entries, math and alarm annotations in one environment that every step adds to"
)]
fn metric_widget(props: &Value, inputs: &Inputs<'_>, out: &mut WidgetOut) {
    let source = inputs.source;
    let mut notes = Vec::new();
    let metrics = props
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let entries = parse_entries(&metrics, &mut notes);
    let stat = props
        .get("stat")
        .and_then(Value::as_str)
        .unwrap_or("Average")
        .to_owned();
    let period = props
        .get("period")
        .and_then(Value::as_i64)
        .unwrap_or(300)
        .max(1);
    let grid = source.range().grid(period);
    let mut env = WidgetEnv {
        source,
        entries: &entries,
        stat: stat.clone(),
        period,
        grid: grid.clone(),
        cache: HashMap::new(),
        depth: 0,
        referenced: BTreeSet::new(),
        notes: Vec::new(),
        provenance: BTreeSet::new(),
    };
    let mut series = Vec::new();
    for e in &entries {
        // Hidden metrics still count for alarms and math: fetch them all.
        let result = env.id(&e.id);
        if !e.visible {
            if let Err(err) = result {
                notes.push(format!("{}: {err}", e.id));
            }
            continue;
        }
        match result {
            Ok(v) => {
                let label = e.label.clone().unwrap_or_default();
                for s in expr::into_series(v, &label, &grid) {
                    let color = match (&e.color, series.len()) {
                        (Some(c), _) => c.clone(),
                        (None, n) => PALETTE[n % PALETTE.len()].to_owned(),
                    };
                    series.push(DrawnSeries {
                        label: if s.label.is_empty() {
                            e.id.clone()
                        } else {
                            s.label
                        },
                        color,
                        points: s.points,
                    });
                }
            }
            Err(err) => notes.push(format!("{}: {err}", e.label.as_deref().unwrap_or(&e.id))),
        }
    }
    let referenced = std::mem::take(&mut env.referenced);
    notes.extend(std::mem::take(&mut env.notes));
    let provenance: Vec<String> = env.provenance.iter().cloned().collect();
    drop(env);

    let mut thresholds = annotations(props);
    // Math, not a bare `SEARCH(…)`: an expression whose tree is not one SEARCH call.
    let has_math = entries.iter().any(|e| {
        e.expression.as_deref().is_some_and(|x| {
            math::parse(x).map_or(true, |expr| {
                !matches!(&expr.kind, ExprKind::Call { name, .. } if name.eq_ignore_ascii_case("SEARCH"))
            })
        })
    });
    let mut kinds_drawn: Vec<usize> = Vec::new();
    for (alarm, _, _) in inputs.alarms {
        let kind = &inputs.kinds[alarm.kind];
        if kinds_drawn.contains(&alarm.kind) || alarm.metric_ids.is_empty() {
            continue;
        }
        let shown = alarm.metric_ids.iter().all(|m| referenced.contains(m));
        if !shown || (kind.is_math() && !has_math) {
            continue;
        }
        kinds_drawn.push(alarm.kind);
        match thresholds
            .iter_mut()
            .find(|t| (t.value - kind.threshold).abs() < 1e-9)
        {
            Some(t) => t.alarms.push(kind.kind.clone()),
            None => thresholds.push(Threshold {
                value: kind.threshold,
                label: format!("alarm {}: {}", kind.kind, super::alarms::condition(kind)),
                color: "#d62728".into(),
                fill: None,
                alarms: vec![kind.kind.clone()],
            }),
        }
    }
    let y = |k: &str| {
        props
            .pointer(&format!("/yAxis/left/{k}"))
            .and_then(Value::as_f64)
    };
    out.has_data = series.iter().any(|s| !s.points.is_empty());
    let mut seen = BTreeSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    out.notes = notes;
    out.provenance = provenance;
    out.body = Body::Chart {
        view: props
            .get("view")
            .and_then(Value::as_str)
            .unwrap_or("timeSeries")
            .to_owned(),
        stacked: props.get("stacked").and_then(Value::as_bool) == Some(true),
        series,
        thresholds,
        period,
        grid,
        y_min: y("min"),
        y_max: y("max"),
        additive: Stat::parse(&stat).is_some_and(Stat::is_additive),
    };
}

/// The widget's own horizontal annotations (bands become two lines).
fn annotations(props: &Value) -> Vec<Threshold> {
    let mut out = Vec::new();
    let items = props
        .pointer("/annotations/horizontal")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut push = |a: &Value| {
        if a.get("visible").and_then(Value::as_bool) == Some(false) {
            return;
        }
        if let Some(value) = a.get("value").and_then(Value::as_f64) {
            out.push(Threshold {
                value,
                label: a
                    .get("label")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                color: a
                    .get("color")
                    .and_then(Value::as_str)
                    .unwrap_or("#d62728")
                    .to_owned(),
                fill: a.get("fill").and_then(Value::as_str).map(str::to_owned),
                alarms: Vec::new(),
            });
        }
    };
    for item in &items {
        match item {
            Value::Array(band) => band.iter().for_each(&mut push),
            other => push(other),
        }
    }
    out
}

/// Every metric a widget could ask for, for sources that must fetch before drawing.
pub(crate) fn search_namespaces(widget: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let metrics = widget
        .pointer("/properties/metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for m in &metrics {
        let Some(text) = MetricEntry::from_value(m)
            .ok()
            .and_then(|e| e.option_str("expression"))
        else {
            continue;
        };
        let Ok(expr) = math::parse(text) else {
            continue;
        };
        expr.walk(&mut |node| {
            if let ExprKind::Call { name, args } = &node.kind
                && name.eq_ignore_ascii_case("SEARCH")
                && let Some(query) = args.first().and_then(|a| a.as_str())
                && let Ok(q) = SearchQuery::parse(query)
                && let Some(namespace) = q.searched_namespace()
            {
                out.insert(namespace.to_owned());
            }
        });
    }
    out
}
