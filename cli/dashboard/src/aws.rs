//! CloudWatch as a metric source (`--aws`): `ListMetrics` for the namespaces `SEARCH`
//! expressions look in, then one `GetMetricData` per 500 metrics for everything the widgets and
//! alarms read (aggregated by CloudWatch with each metric's statistic and period), and
//! `DescribeAlarms` for the deployed alarms' real states. Metric math and `SEARCH` are evaluated
//! here on the fetched series, the same way as for a local run.
//!
//! Rendering asks the source synchronously, so the preview runs in passes: a recording pass
//! notes what is asked for, the fetch answers it, and the final pass draws.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};

use super::metrics::{MetricId, MetricSource, Points, Stat, TimeRange};
use crate::DashboardError;

/// `GetMetricData` takes at most this many queries per call.
const MAX_QUERIES_PER_CALL: usize = 500;

type Key = (MetricId, String, i64);

/// CloudWatch's answers, and the questions of the recording pass.
#[derive(Debug)]
pub(crate) struct CloudWatchSource {
    range: TimeRange,
    listed: BTreeMap<String, Vec<MetricId>>,
    fetched: HashMap<Key, Points>,
    recording: bool,
    asked_namespaces: RefCell<BTreeSet<String>>,
    asked: RefCell<BTreeSet<Key>>,
    /// Calls that failed (shown on the page).
    pub(crate) errors: Vec<String>,
}

impl CloudWatchSource {
    /// A source for `range` that records what it is asked.
    pub(crate) fn new(range: TimeRange) -> CloudWatchSource {
        CloudWatchSource {
            range,
            listed: BTreeMap::new(),
            fetched: HashMap::new(),
            recording: true,
            asked_namespaces: RefCell::new(BTreeSet::new()),
            asked: RefCell::new(BTreeSet::new()),
            errors: Vec::new(),
        }
    }

    /// Lists the metrics of every namespace a `SEARCH` looked in (or `extra`).
    pub(crate) async fn list_asked(&mut self, client: &Client, extra: &BTreeSet<String>) {
        let namespaces: BTreeSet<String> = self
            .asked_namespaces
            .borrow()
            .iter()
            .chain(extra)
            .cloned()
            .collect();
        for ns in namespaces {
            if self.listed.contains_key(&ns) {
                continue;
            }
            let mut found = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let result = client
                    .list_metrics()
                    .namespace(&ns)
                    .set_next_token(token.clone())
                    .send()
                    .await;
                match result {
                    Ok(out) => {
                        for m in out.metrics() {
                            found.push(MetricId::new(
                                m.namespace().unwrap_or_default(),
                                m.metric_name().unwrap_or_default(),
                                m.dimensions().iter().map(|d| {
                                    (
                                        d.name().unwrap_or_default().to_owned(),
                                        d.value().unwrap_or_default().to_owned(),
                                    )
                                }),
                            ));
                        }
                        token = out.next_token().map(str::to_owned);
                        if token.is_none() {
                            break;
                        }
                    }
                    Err(e) => {
                        self.errors.push(format!(
                            "ListMetrics {ns}: {}",
                            aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
                        ));
                        break;
                    }
                }
            }
            found.sort();
            found.dedup();
            self.listed.insert(ns, found);
        }
    }

    /// Fetches everything asked so far with `GetMetricData`.
    pub(crate) async fn fetch_asked(&mut self, client: &Client) {
        let asked: Vec<Key> = self
            .asked
            .borrow()
            .iter()
            .filter(|k| !self.fetched.contains_key(*k))
            .cloned()
            .collect();
        // Percentiles in their own calls: a backend that rejects one does not lose the rest.
        let (percentiles, basic): (Vec<Key>, Vec<Key>) =
            asked.into_iter().partition(|k| k.1.starts_with('p'));
        for group in [basic, percentiles] {
            for chunk in group.chunks(MAX_QUERIES_PER_CALL) {
                self.fetch_chunk(client, chunk).await;
            }
        }
        self.recording = false;
    }

    async fn fetch_chunk(&mut self, client: &Client, keys: &[Key]) {
        let longest = keys.iter().map(|k| k.2).max().unwrap_or(60).max(60);
        let start = self.range.start.div_euclid(longest) * longest;
        let end = self.range.end + 1;
        let queries: Vec<MetricDataQuery> = keys
            .iter()
            .enumerate()
            .map(|(i, (id, stat, period))| {
                let metric = Metric::builder()
                    .namespace(&id.namespace)
                    .metric_name(&id.name)
                    .set_dimensions(Some(
                        id.dimensions
                            .iter()
                            .map(|(n, v)| Dimension::builder().name(n).value(v).build())
                            .collect(),
                    ))
                    .build();
                MetricDataQuery::builder()
                    .id(format!("q{i}"))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(i32::try_from(*period).unwrap_or(60))
                            .stat(stat)
                            .build(),
                    )
                    .return_data(true)
                    .build()
            })
            .collect();
        let mut token: Option<String> = None;
        let mut results: HashMap<usize, Points> = HashMap::new();
        loop {
            let sent = client
                .get_metric_data()
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .scan_by(ScanBy::TimestampAscending)
                .set_metric_data_queries(Some(queries.clone()))
                .set_next_token(token.clone())
                .send()
                .await;
            let out = match sent {
                Ok(out) => out,
                Err(e) => {
                    self.errors.push(format!(
                        "GetMetricData ({} metrics): {}",
                        keys.len(),
                        aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
                    ));
                    return;
                }
            };
            for r in out.metric_data_results() {
                let Some(i) = r
                    .id()
                    .and_then(|id| id.strip_prefix('q'))
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                let Some((_, stat, period)) = keys.get(i) else {
                    continue;
                };
                let entry = results.entry(i).or_default();
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    let slot = t.secs().div_euclid(*period) * period;
                    let merged = match (entry.get(&slot), Stat::parse(stat)) {
                        (Some(old), Some(s)) if s.is_additive() => old + v,
                        (Some(old), Some(Stat::Maximum)) => old.max(*v),
                        (Some(old), Some(Stat::Minimum)) => old.min(*v),
                        _ => *v,
                    };
                    entry.insert(slot, merged);
                }
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        for (i, key) in keys.iter().enumerate() {
            self.fetched
                .insert(key.clone(), results.remove(&i).unwrap_or_default());
        }
    }
}

impl MetricSource for CloudWatchSource {
    fn fetch(&self, id: &MetricId, stat: Stat, period: i64) -> Option<Points> {
        let key = (id.clone(), stat.to_string(), period);
        if self.recording {
            self.asked.borrow_mut().insert(key);
            return None;
        }
        self.fetched.get(&key).filter(|p| !p.is_empty()).cloned()
    }

    fn list(&self, namespace: &str) -> Vec<MetricId> {
        if self.recording {
            self.asked_namespaces
                .borrow_mut()
                .insert(namespace.to_owned());
        }
        self.listed.get(namespace).cloned().unwrap_or_default()
    }

    fn range(&self) -> TimeRange {
        self.range
    }

    fn provenance(&self, _: &MetricId) -> Option<String> {
        None
    }

    fn missing_note(&self, id: &MetricId) -> String {
        format!("CloudWatch has no datapoints for {id} in this time range")
    }
}

/// The states of the deployed alarms whose names start with `prefix`.
pub(crate) async fn alarm_states(
    client: &Client,
    prefix: &str,
) -> Result<HashMap<String, String>, DashboardError> {
    let mut states = HashMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                DashboardError::Aws(format!(
                    "DescribeAlarms: {}",
                    aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
                ))
            })?;
        for a in out.metric_alarms() {
            if let (Some(name), Some(state)) = (a.alarm_name(), a.state_value()) {
                states.insert(name.to_owned(), state.as_str().to_owned());
            }
        }
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(states)
}
