//! Metric identities, statistics, period series and the [`MetricSource`] a preview is drawn
//! from (the local run's captured metrics, or CloudWatch).

use std::collections::BTreeMap;
use std::fmt;

pub(crate) use payhook_cloudwatch::metric::MetricId;

/// A CloudWatch statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stat {
    /// `Sum`.
    Sum,
    /// `Average`.
    Average,
    /// `Minimum`.
    Minimum,
    /// `Maximum`.
    Maximum,
    /// `SampleCount`.
    SampleCount,
    /// `pNN` (0–100).
    Percentile(f64),
}

impl Stat {
    /// Parses `Sum`, `Average`, `Minimum`, `Maximum`, `SampleCount` or `pNN[.N]`.
    pub(crate) fn parse(text: &str) -> Option<Stat> {
        match text {
            "Sum" => Some(Stat::Sum),
            "Average" => Some(Stat::Average),
            "Minimum" => Some(Stat::Minimum),
            "Maximum" => Some(Stat::Maximum),
            "SampleCount" => Some(Stat::SampleCount),
            _ => {
                let p: f64 = text.strip_prefix('p')?.parse().ok()?;
                (0.0..=100.0).contains(&p).then_some(Stat::Percentile(p))
            }
        }
    }

    /// Whether values of this statistic add up over time (a total over a range is their sum).
    pub(crate) fn is_additive(self) -> bool {
        matches!(self, Stat::Sum | Stat::SampleCount)
    }

    /// Aggregates raw samples (none: no datapoint).
    pub(crate) fn aggregate(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        Some(match self {
            Stat::Sum => values.iter().sum(),
            Stat::Average => values.iter().sum::<f64>() / n,
            Stat::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
            Stat::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Stat::SampleCount => n,
            Stat::Percentile(p) => {
                // Nearest rank, as CloudWatch reports for raw (non-distribution) samples.
                let mut sorted = values.to_vec();
                sorted.sort_by(f64::total_cmp);
                let rank = ((p / 100.0) * n).ceil().max(1.0) as usize;
                sorted[rank.min(sorted.len()) - 1]
            }
        })
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Sum => f.write_str("Sum"),
            Stat::Average => f.write_str("Average"),
            Stat::Minimum => f.write_str("Minimum"),
            Stat::Maximum => f.write_str("Maximum"),
            Stat::SampleCount => f.write_str("SampleCount"),
            Stat::Percentile(p) => write!(f, "p{p}"),
        }
    }
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
    fn samples_fall_into_their_period() {
        let samples = [(60_000, 1.0), (119_999, 2.0), (120_000, 5.0)];
        let points = aggregate_samples(&samples, Stat::Sum, 60);
        assert_eq!(points, BTreeMap::from([(60, 3.0), (120, 5.0)]));
    }
}
