//! Metric identities, statistics, period series and the [`MetricSource`] a preview is drawn
//! from (the local run's captured metrics, or CloudWatch).

use std::collections::BTreeMap;

use payhook_cloudwatch::statistic::Bounded;

pub(crate) use payhook_cloudwatch::metric::MetricId;

/// A CloudWatch statistic, read by [`payhook_cloudwatch::statistic`] (the reader `payhook check`
/// accepts statistics with).
pub(crate) use payhook_cloudwatch::statistic::Statistic as Stat;

/// Computing a statistic over raw samples.
pub(crate) trait Aggregate {
    /// Aggregates raw samples (none: no datapoint).
    fn aggregate(self, values: &[f64]) -> Option<f64>;
}

impl Aggregate for Stat {
    fn aggregate(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(match self {
            Stat::Sum => values.iter().sum(),
            Stat::Average => values.iter().sum::<f64>() / n,
            Stat::Minimum => sorted[0],
            Stat::Maximum => sorted[sorted.len() - 1],
            Stat::SampleCount => n,
            // Nearest rank, as CloudWatch reports for raw (non-distribution) samples.
            Stat::Percentile(p) => nearest_rank(&sorted, p),
            Stat::Iqm => mean(within(&sorted, Some(25.0), Some(75.0), true))?,
            Stat::Bounded {
                kind,
                low,
                high,
                percent,
            } => {
                let kept = within(&sorted, low, high, percent);
                match kind {
                    Bounded::TrimmedMean => mean(kept)?,
                    Bounded::TrimmedSum => kept.iter().sum(),
                    Bounded::TrimmedCount => kept.len() as f64,
                    Bounded::PercentileRank => 100.0 * kept.len() as f64 / n,
                    Bounded::WinsorizedMean => {
                        let floor = kept.first().copied()?;
                        let ceiling = kept.last().copied()?;
                        sorted.iter().map(|v| v.clamp(floor, ceiling)).sum::<f64>() / n
                    }
                }
            }
        })
    }
}

/// The value at percentile `p` of sorted samples (nearest rank).
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The sorted samples within the bounds: percentiles (by rank) or values.
fn within(sorted: &[f64], low: Option<f64>, high: Option<f64>, percent: bool) -> &[f64] {
    if percent {
        let n = sorted.len() as f64;
        let from = low.map_or(0, |p| ((p / 100.0) * n).floor() as usize);
        let to = high.map_or(sorted.len(), |p| ((p / 100.0) * n).ceil() as usize);
        sorted.get(from..to.min(sorted.len())).unwrap_or_default()
    } else {
        let from = low.map_or(0, |l| sorted.partition_point(|v| *v < l));
        let to = high.map_or(sorted.len(), |h| sorted.partition_point(|v| *v <= h));
        sorted.get(from..to).unwrap_or_default()
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Datapoints by period start (Unix seconds).
pub(crate) type Points = BTreeMap<i64, f64>;

/// The time range a preview covers, in Unix seconds (`end` inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeRange {
    /// First second.
    pub(crate) start: i64,
    /// Last second.
    pub(crate) end: i64,
}

impl TimeRange {
    /// Period starts from the one holding `start` to the one holding `end`.
    pub(crate) fn grid(&self, period: i64) -> Vec<i64> {
        let period = period.max(1);
        let first = self.start.div_euclid(period) * period;
        let last = self.end.div_euclid(period) * period;
        let mut out = Vec::new();
        let mut t = first;
        while t <= last && out.len() < 100_000 {
            out.push(t);
            t += period;
        }
        out
    }
}

/// Where the preview's numbers come from.
pub(crate) trait MetricSource {
    /// The metric aggregated with `stat` per `period` seconds over [`MetricSource::range`];
    /// `None` when the source has no data at all for this metric.
    fn fetch(&self, id: &MetricId, stat: Stat, period: i64) -> Option<Points>;
    /// Every metric of `namespace` the source knows (for `SEARCH`).
    fn list(&self, namespace: &str) -> Vec<MetricId>;
    /// The time range shown.
    fn range(&self) -> TimeRange;
    /// How the source got this metric when it is not a plain capture (a local equivalent).
    fn provenance(&self, id: &MetricId) -> Option<String>;
    /// Why the source has no data for `id`.
    fn missing_note(&self, id: &MetricId) -> String;
}

/// Raw samples `(Unix milliseconds, value)` aggregated per period with `stat`.
pub(crate) fn aggregate_samples(samples: &[(i64, f64)], stat: Stat, period: i64) -> Points {
    let period_ms = period.max(1) * 1000;
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for &(ts, v) in samples {
        let start = ts.div_euclid(period_ms) * period_ms / 1000;
        buckets.entry(start).or_default().push(v);
    }
    buckets
        .into_iter()
        .filter_map(|(t, vs)| stat.aggregate(&vs).map(|v| (t, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_follow_cloudwatch_names() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(Stat::parse("Sum").and_then(|s| s.aggregate(&v)), Some(20.0));
        assert_eq!(
            Stat::parse("Average").and_then(|s| s.aggregate(&v)),
            Some(4.0)
        );
        assert_eq!(
            Stat::parse("Minimum").and_then(|s| s.aggregate(&v)),
            Some(1.0)
        );
        assert_eq!(
            Stat::parse("Maximum").and_then(|s| s.aggregate(&v)),
            Some(10.0)
        );
        assert_eq!(
            Stat::parse("SampleCount").and_then(|s| s.aggregate(&v)),
            Some(5.0)
        );
        assert_eq!(Stat::parse("p50").and_then(|s| s.aggregate(&v)), Some(3.0));
        assert_eq!(Stat::parse("p99").and_then(|s| s.aggregate(&v)), Some(10.0));
        assert_eq!(
            Stat::parse("p99.9").and_then(|s| s.aggregate(&v)),
            Some(10.0)
        );
        assert_eq!(Stat::parse("p101"), None);
        assert_eq!(Stat::parse("sum"), None);
    }

    #[test]
    fn every_statistic_the_check_accepts_is_computed() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0, 6.0, 7.0, 8.0, 9.0, 5.0];
        let stat = |s: &str| Stat::parse(s).and_then(|s| s.aggregate(&v));
        assert_eq!(stat("IQM"), Some(5.5));
        assert_eq!(stat("tm80"), Some(4.5));
        assert_eq!(stat("TM(10%:90%)"), Some(5.5));
        assert_eq!(stat("TM(2:4)"), Some(3.0));
        assert_eq!(stat("tc50"), Some(5.0));
        assert_eq!(stat("ts50"), Some(15.0));
        assert_eq!(stat("WM(10%:90%)"), Some(5.5));
        assert_eq!(stat("PR(:3)"), Some(30.0));
    }

    #[test]
    fn samples_fall_into_their_period() {
        let samples = [(60_000, 1.0), (119_999, 2.0), (120_000, 5.0)];
        let points = aggregate_samples(&samples, Stat::Sum, 60);
        assert_eq!(points, BTreeMap::from([(60, 3.0), (120, 5.0)]));
    }
}
