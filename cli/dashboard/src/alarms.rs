//! The alarms of `alarms/*.json` (format in `alarms/README.md`), applied per resource as Pulumi
//! applies them, and evaluated on the preview's metrics as CloudWatch would: the last
//! `evaluation_periods` periods, `datapoints_to_alarm` of them breaching, missing data treated
//! as the file says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub(crate) use payhook_cloudwatch::alarm::AlarmKind;
use payhook_cloudwatch::alarm::AlarmMetric;

use super::expr::{self, Env, Labeled, Val};
use super::metrics::{MetricId, MetricSource, Points, Stat};
use super::names::{self, Names, functions, providers};
use crate::DashboardError;

/// The alarm's condition as drawn: `> 1000`, `>= 1`, …
pub(crate) fn condition(kind: &AlarmKind) -> String {
    format!(
        "{} {}",
        kind.operator(),
        super::html::number(kind.threshold)
    )
}

/// Reads every `*.json` of `dir`, sorted by name.
pub(crate) fn load_kinds(dir: &Path) -> Result<Vec<AlarmKind>, DashboardError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DashboardError::Input(format!("alarms directory {}: {e}", dir.display())))?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .map_err(|e| DashboardError::Input(format!("{}: {e}", p.display())))?;
            serde_json::from_str(&text)
                .map_err(|e| DashboardError::Input(format!("{}: {e}", p.display())))
        })
        .collect()
}

/// A query with its placeholders filled: id, metric (with statistic and period), expression,
/// and whether it is the series the alarm evaluates.
type FilledQuery = (
    String,
    Option<(MetricId, String, i64)>,
    Option<String>,
    bool,
);

/// One alarm: a kind applied to one resource.
#[derive(Debug, Clone)]
pub(crate) struct AlarmInstance {
    /// Index into the kinds.
    pub(crate) kind: usize,
    /// `payhook-<stage>-<kind>[-<resource>]`.
    pub(crate) name: String,
    /// The resource (`stripe`, `webhook-validator`, a rule), empty for the API.
    pub(crate) resource: String,
    /// The summary with its placeholders filled.
    pub(crate) summary: String,
    /// The filled single metric, or the filled queries.
    metric: Option<MetricId>,
    queries: Vec<FilledQuery>,
    stat: String,
    /// Every metric the alarm reads.
    pub(crate) metric_ids: Vec<MetricId>,
}

/// An alarm's computed state.
#[derive(Debug, Clone)]
pub(crate) struct AlarmState {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub(crate) state: &'static str,
    /// The latest datapoint, if any.
    pub(crate) latest: Option<f64>,
    /// Breaching datapoints in the evaluation window.
    pub(crate) breaching: usize,
    /// Why (a metric missing, an expression failing).
    pub(crate) reason: Option<String>,
}

fn fill_metric(m: &AlarmMetric, vars: &BTreeMap<String, String>) -> MetricId {
    let mut unknown = Vec::new();
    MetricId::new(
        m.namespace.clone(),
        m.metric_name.clone(),
        m.dimensions
            .iter()
            .map(|(k, v)| (k.clone(), names::fill_text(v, vars, &mut unknown))),
    )
}

/// Every alarm the stack would have: each kind applied to each resource of its scope.
#[expect(
    clippy::too_many_lines,
    reason = "one match arm per alarm scope lists that scope's resources; the arms share the placeholder closure built above them"
)]
pub(crate) fn instances(
    kinds: &[AlarmKind],
    names: &Names,
    rules: &BTreeSet<String>,
) -> Vec<AlarmInstance> {
    let mut out = Vec::new();
    for (k, kind) in kinds.iter().enumerate() {
        let mut resources: Vec<(String, BTreeMap<String, String>)> = Vec::new();
        let common = names.common_placeholders();
        let with = |pairs: Vec<(&str, String)>| {
            let mut m = common.clone();
            m.extend(pairs.into_iter().map(|(a, b)| (a.to_owned(), b)));
            m
        };
        match kind.scope.as_str() {
            "queue" => {
                for p in providers() {
                    let f = format!("{p}-processor");
                    resources.push((
                        p.to_owned(),
                        with(vec![
                            ("provider", p.to_owned()),
                            ("queue_name", names.queue(p)),
                            ("dlq_name", names.dlq(p)),
                            ("function_name", names.function(&f)),
                            ("service", f),
                        ]),
                    ));
                }
            }
            "dlq" => {
                for d in providers().chain(["events"]) {
                    let source = if d == "events" {
                        "EventBridge rule targets and event-processor".to_owned()
                    } else {
                        names.queue(d)
                    };
                    resources.push((
                        d.to_owned(),
                        with(vec![
                            ("dlq", d.to_owned()),
                            ("queue_name", names.dlq(d)),
                            ("source", source),
                        ]),
                    ));
                }
            }
            "function" => {
                for f in functions() {
                    resources.push((
                        f.to_owned(),
                        with(vec![
                            ("function_name", names.function(f)),
                            ("service", f.to_owned()),
                            ("log_group_name", names.log_group(f)),
                        ]),
                    ));
                }
            }
            "rule" => {
                for r in rules {
                    resources.push((r.clone(), with(vec![("rule_name", r.clone())])));
                }
            }
            "provider" => {
                for p in providers() {
                    resources.push((
                        p.to_owned(),
                        with(vec![
                            ("provider", p.to_owned()),
                            ("function_name", names.function("webhook-validator")),
                            ("service", "webhook-validator".to_owned()),
                        ]),
                    ));
                }
            }
            _ => resources.push((String::new(), common.clone())),
        }
        for (resource, vars) in resources {
            let name = if resource.is_empty() {
                format!("{}-{}", names.prefix(), kind.kind)
            } else {
                format!("{}-{}-{resource}", names.prefix(), kind.kind)
            };
            let mut unknown = Vec::new();
            let summary = names::fill_text(&kind.summary, &vars, &mut unknown);
            let metric = kind.metric.as_ref().map(|m| fill_metric(m, &vars));
            let queries: Vec<_> = kind
                .metrics
                .iter()
                .map(|q| {
                    (
                        q.id.clone(),
                        q.metric
                            .as_ref()
                            .map(|m| (fill_metric(m, &vars), m.stat.clone(), m.period)),
                        q.expression.clone(),
                        q.return_data,
                    )
                })
                .collect();
            let mut metric_ids: Vec<MetricId> = metric.iter().cloned().collect();
            metric_ids.extend(
                queries
                    .iter()
                    .filter_map(|q| q.1.as_ref().map(|m| m.0.clone())),
            );
            out.push(AlarmInstance {
                kind: k,
                name,
                resource,
                summary,
                metric,
                queries,
                stat: kind
                    .metric
                    .as_ref()
                    .map(|m| m.stat.clone())
                    .unwrap_or_default(),
                metric_ids,
            });
        }
    }
    out
}

struct AlarmEnv<'a> {
    source: &'a dyn MetricSource,
    queries: &'a [FilledQuery],
    grid: Vec<i64>,
    depth: usize,
}

impl Env for AlarmEnv<'_> {
    fn id(&mut self, id: &str) -> Result<Val, String> {
        let q = self
            .queries
            .iter()
            .find(|q| q.0 == id)
            .ok_or_else(|| format!("no query {id}"))?;
        if let Some((m, stat, period)) = &q.1 {
            let stat = Stat::parse(stat).ok_or_else(|| format!("bad statistic {stat}"))?;
            let points = self.source.fetch(m, stat, *period).unwrap_or_default();
            return Ok(Val::Ts(Labeled {
                label: id.to_owned(),
                points,
            }));
        }
        let e =
            q.2.as_deref()
                .ok_or_else(|| format!("{id} has no metric"))?;
        if self.depth > 20 {
            return Err("expressions refer to each other in a loop".into());
        }
        self.depth += 1;
        let v = expr::evaluate(e, self);
        self.depth -= 1;
        v
    }

    fn metrics(&mut self, filter: Option<&str>) -> Result<Vec<Labeled>, String> {
        let ids: Vec<String> = self
            .queries
            .iter()
            .filter(|q| q.1.is_some() && filter.is_none_or(|f| q.0.contains(f)))
            .map(|q| q.0.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            if let Val::Ts(t) = self.id(&id)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn search(&mut self, _: &str, _: &str, _: i64) -> Result<Vec<Labeled>, String> {
        Err("an alarm cannot use SEARCH".into())
    }

    fn grid(&self) -> Vec<i64> {
        self.grid.clone()
    }
}

/// The alarm's evaluated series (at its period over the source's range).
fn alarm_series(
    kind: &AlarmKind,
    alarm: &AlarmInstance,
    source: &dyn MetricSource,
) -> Result<Points, String> {
    let period = kind.period();
    if let Some(m) = &alarm.metric {
        let stat =
            Stat::parse(&alarm.stat).ok_or_else(|| format!("bad statistic {}", alarm.stat))?;
        return Ok(source.fetch(m, stat, period).unwrap_or_default());
    }
    let ret = alarm
        .queries
        .iter()
        .find(|q| q.3)
        .ok_or("no query returns data")?;
    let mut env = AlarmEnv {
        source,
        queries: &alarm.queries,
        grid: source.range().grid(period),
        depth: 0,
    };
    match env.id(&ret.0)? {
        Val::Ts(t) => Ok(t.points),
        Val::Scalar(s) => Ok(env.grid.iter().map(|t| (*t, s)).collect()),
        _ => Err("the returned query is not one time series".into()),
    }
}

/// Evaluates one alarm over the last periods of the source's range.
pub(crate) fn evaluate(
    kind: &AlarmKind,
    alarm: &AlarmInstance,
    source: &dyn MetricSource,
) -> AlarmState {
    let series = match alarm_series(kind, alarm, source) {
        Ok(s) => s,
        Err(e) => {
            return AlarmState {
                state: "INSUFFICIENT_DATA",
                latest: None,
                breaching: 0,
                reason: Some(e),
            };
        }
    };
    let grid = source.range().grid(kind.period());
    let n = kind.evaluation_periods.max(1);
    let m = kind.datapoints_to_alarm.unwrap_or(n).clamp(1, n);
    let window: Vec<Option<f64>> = grid
        .iter()
        .rev()
        .take(n)
        .map(|t| series.get(t).copied())
        .collect();
    let present = window.iter().flatten().count();
    let latest = series.values().next_back().copied();
    let breaching = window
        .iter()
        .filter(|v| match v {
            Some(v) => kind.breaches(*v),
            None => kind.treat_missing_data == "breaching",
        })
        .count();
    let state = if present == 0 && matches!(kind.treat_missing_data.as_str(), "missing" | "ignore")
    {
        "INSUFFICIENT_DATA"
    } else if breaching >= m {
        "ALARM"
    } else {
        "OK"
    };
    let reason = (present == 0).then(|| {
        alarm
            .metric_ids
            .iter()
            .map(|id| source.missing_note(id))
            .collect::<Vec<_>>()
            .join("; ")
    });
    AlarmState {
        state,
        latest,
        breaching,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alarm_file_parses_and_applies_to_its_resources() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../alarms");
        let kinds = load_kinds(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!kinds.is_empty());
        let names = Names::local(String::new(), None);
        let rules = BTreeSet::from(["refunds".to_owned()]);
        let all = instances(&kinds, &names, &rules);
        let queue_depth: Vec<_> = all
            .iter()
            .filter(|a| kinds[a.kind].kind == "queue-depth")
            .collect();
        assert_eq!(queue_depth.len(), 3);
        assert_eq!(
            queue_depth[0].metric_ids[0].dimension("QueueName"),
            Some("stripe.fifo")
        );
        assert!(
            all.iter()
                .any(|a| a.name == "payhook-local-dlq-not-empty-events")
        );
        assert!(
            all.iter()
                .any(|a| a.name == "payhook-local-eventbridge-failed-invocations-refunds")
        );
    }
}
