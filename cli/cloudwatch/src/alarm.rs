//! The alarm kinds of `alarms/*.json` (format in `alarms/README.md`): one typed model of a file,
//! and the field names of the format. `payhook check` walks the raw JSON against the field
//! lists (so it can say where a wrong field is); the dashboard preview deserialises a checked
//! file into [`AlarmKind`] and evaluates it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The fields of an alarm file.
pub const FIELDS: [&str; 14] = [
    "kind",
    "title",
    "scope",
    "severity",
    "summary",
    "runbook",
    "metric",
    "metrics",
    "threshold",
    "comparison",
    "evaluation_periods",
    "datapoints_to_alarm",
    "treat_missing_data",
    "$comment",
];

/// The fields of a `metric` (of the file, or of a query).
pub const METRIC_FIELDS: [&str; 6] = [
    "namespace",
    "metric_name",
    "dimensions",
    "stat",
    "period",
    "unit",
];

/// The fields of one query of `metrics`.
pub const QUERY_FIELDS: [&str; 6] = [
    "id",
    "metric",
    "expression",
    "label",
    "return_data",
    "period",
];

/// One metric of an alarm file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AlarmMetric {
    /// `AWS/SQS`, `Payhook`, …
    pub namespace: String,
    /// The metric name.
    pub metric_name: String,
    /// Dimension name → value (may hold placeholders).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// The statistic.
    pub stat: String,
    /// The period in seconds.
    pub period: i64,
    /// The unit the alarm selects, if any.
    #[serde(default)]
    pub unit: Option<String>,
}

/// One query of a metric math alarm.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AlarmQuery {
    /// The query id (what expressions refer to).
    pub id: String,
    /// The metric, for a metric query.
    #[serde(default)]
    pub metric: Option<AlarmMetric>,
    /// The metric math, for an expression query.
    #[serde(default)]
    pub expression: Option<String>,
    /// The label.
    #[serde(default)]
    pub label: Option<String>,
    /// Whether this is the series the alarm evaluates (exactly one query).
    #[serde(default)]
    pub return_data: bool,
    /// The period of an expression query.
    #[serde(default)]
    pub period: Option<i64>,
}

/// An alarm kind: one file of `alarms/`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AlarmKind {
    /// `queue-depth`, …
    pub kind: String,
    /// Human title.
    pub title: String,
    /// What the kind is applied to: `queue`, `dlq`, `function`, `rule`, `provider`, `api`.
    pub scope: String,
    /// `critical`, `high`, `warning`.
    pub severity: String,
    /// One sentence, with placeholders.
    pub summary: String,
    /// `<kind>.md`.
    pub runbook: String,
    /// A single metric.
    #[serde(default)]
    pub metric: Option<AlarmMetric>,
    /// Metric math queries.
    #[serde(default)]
    pub metrics: Vec<AlarmQuery>,
    /// The threshold.
    pub threshold: f64,
    /// `GreaterThanThreshold`, …
    pub comparison: String,
    /// N of M-of-N.
    pub evaluation_periods: usize,
    /// M of M-of-N (defaults to N).
    #[serde(default)]
    pub datapoints_to_alarm: Option<usize>,
    /// `breaching`, `notBreaching`, `ignore`, `missing`.
    pub treat_missing_data: String,
}

impl AlarmKind {
    /// The comparison as an operator: `>`, `>=`, `<`, `<=`.
    pub fn operator(&self) -> &'static str {
        match self.comparison.as_str() {
            "GreaterThanThreshold" => ">",
            "GreaterThanOrEqualToThreshold" => ">=",
            "LessThanThreshold" => "<",
            _ => "<=",
        }
    }

    /// Whether `v` breaches the threshold.
    pub fn breaches(&self, v: f64) -> bool {
        match self.comparison.as_str() {
            "GreaterThanThreshold" => v > self.threshold,
            "GreaterThanOrEqualToThreshold" => v >= self.threshold,
            "LessThanThreshold" => v < self.threshold,
            _ => v <= self.threshold,
        }
    }

    /// The period the alarm is evaluated at: its metric's, or the longest of its queries'.
    pub fn period(&self) -> i64 {
        self.metric
            .as_ref()
            .map(|m| m.period)
            .or_else(|| {
                self.metrics
                    .iter()
                    .filter_map(|q| q.metric.as_ref().map(|m| m.period))
                    .max()
            })
            .unwrap_or(60)
    }

    /// Whether the alarm evaluates metric math (not a single metric).
    pub fn is_math(&self) -> bool {
        self.metric.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_alarm_file_reads_into_the_model_and_its_math_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../alarms");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let kind: AlarmKind =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert_eq!(kind.is_math(), !kind.metrics.is_empty(), "{path:?}");
            for expression in kind.metrics.iter().filter_map(|q| q.expression.as_deref()) {
                crate::math::parse(expression).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            }
            assert!(
                crate::check::stack::COMPARISONS.contains(&kind.comparison.as_str()),
                "{path:?}"
            );
            read += 1;
        }
        assert!(read > 0);
    }

    #[test]
    fn comparisons_become_operators_and_breaches() {
        let text = r#"{"kind": "k", "title": "t", "scope": "api", "severity": "high",
            "summary": "s", "runbook": "k.md", "metric": {"namespace": "AWS/SQS",
            "metric_name": "M", "stat": "Sum", "period": 300}, "threshold": 5,
            "comparison": "GreaterThanOrEqualToThreshold", "evaluation_periods": 1,
            "treat_missing_data": "notBreaching"}"#;
        let kind: AlarmKind = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kind.operator(), ">=");
        assert!(kind.breaches(5.0) && !kind.breaches(4.9));
        assert_eq!(kind.period(), 300);
        assert!(!kind.is_math());
    }
}
