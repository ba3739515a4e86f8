//! CloudWatch's vocabulary: statistics, periods, ids, colours and the metric math functions,
//! from `../shared/conformance/cloudwatch/NOTES.md`, the CloudWatch User Guide ("CloudWatch
//! statistics definitions", "Use metric math") and the alarm format of `alarms/README.md`.

use crate::statistic::{self, Statistic};

/// The five basic statistics.
pub(crate) const BASIC_STATISTICS: [&str; 5] = statistic::BASIC;

/// Metric math functions (all written in upper case) and how many arguments each takes
/// (`usize::MAX`: open-ended).
pub(crate) const MATH_FUNCTIONS: &[(&str, usize, usize)] = &[
    ("ABS", 1, 1),
    ("ANOMALY_DETECTION_BAND", 1, 2),
    ("AVG", 1, 1),
    ("CEIL", 1, 1),
    ("CONCAT", 1, usize::MAX),
    ("DATAPOINT_COUNT", 1, 1),
    ("DATE", 1, 1),
    ("DAY", 1, 1),
    ("DB_PERF_INSIGHTS", 1, usize::MAX),
    ("DIFF", 1, 1),
    ("DIFF_TIME", 1, 1),
    ("EPOCH", 1, 1),
    ("FILL", 2, 2),
    ("FIRST", 1, 1),
    ("FLOOR", 1, 1),
    ("HOUR", 1, 1),
    ("IF", 2, 3),
    ("INSIGHT_RULE_METRIC", 2, 2),
    ("LAMBDA", 1, usize::MAX),
    ("LAST", 1, 1),
    ("LOG", 1, 1),
    ("LOG10", 1, 1),
    ("MAX", 1, 1),
    ("METRIC_COUNT", 1, 1),
    ("METRICS", 0, 1),
    ("MIN", 1, 1),
    ("MINUTE", 1, 1),
    ("MONTH", 1, 1),
    ("PERIOD", 1, 1),
    ("RATE", 1, 1),
    ("REMOVE_EMPTY", 1, 1),
    ("RUNNING_SUM", 1, 1),
    ("SEARCH", 3, 3),
    ("SERVICE_QUOTA", 1, 1),
    ("SLICE", 2, 3),
    ("SORT", 3, 4),
    ("STDDEV", 1, 1),
    ("SUM", 1, 1),
    ("TIME_SERIES", 1, 1),
    ("YEAR", 1, 1),
];

/// Bare upper-case words metric math accepts as arguments: `FILL(m, REPEAT)`,
/// `SORT(METRICS(), AVG, DESC)`.
pub(crate) const MATH_KEYWORDS: [&str; 4] = ["REPEAT", "LINEAR", "ASC", "DESC"];

/// A statistic a dashboard may use: one [`Statistic::parse`] reads (the basic five, `IQM`,
/// percentiles and the trimmed / winsorized forms), the reader the dashboard preview uses too.
pub(crate) fn is_statistic(stat: &str) -> bool {
    Statistic::parse(stat).is_some()
}

/// A statistic an alarm file may use: the basic five or a percentile `p0`–`p100` with at most
/// two decimals, as the deploy's loader accepts (`alarms/README.md`).
pub(crate) fn is_alarm_statistic(stat: &str) -> bool {
    if BASIC_STATISTICS.contains(&stat) {
        return true;
    }
    let Some(rest) = stat.strip_prefix('p') else {
        return false;
    };
    if rest == "100" {
        return true;
    }
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    (1..=2).contains(&whole.len())
        && whole.chars().all(|c| c.is_ascii_digit())
        && (!rest.contains('.') || (1..=2).contains(&fraction.len()))
        && fraction.chars().all(|c| c.is_ascii_digit())
}

/// A dashboard period: 1, 5, 10, 30 (high-resolution metrics) or a positive multiple of 60.
pub(crate) fn is_dashboard_period(seconds: u64) -> bool {
    matches!(seconds, 1 | 5 | 10 | 30) || (seconds > 0 && seconds.is_multiple_of(60))
}

/// An alarm period: 10, 20, 30 (high-resolution metrics) or a positive multiple of 60.
pub(crate) fn is_alarm_period(seconds: u64) -> bool {
    matches!(seconds, 10 | 20 | 30) || (seconds > 0 && seconds.is_multiple_of(60))
}

/// A metric or expression id: a lower-case letter, then letters, digits and `_`.
pub(crate) fn is_metric_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A six-digit HTML hex colour (`#d62728`).
pub(crate) fn is_hex_color(color: &str) -> bool {
    color
        .strip_prefix('#')
        .is_some_and(|hex| hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The metric math function `name`, with its argument counts.
pub(crate) fn math_function(name: &str) -> Option<(usize, usize)> {
    MATH_FUNCTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, min, max)| (*min, *max))
}

/// The candidate `name` most likely is a typo of: the same word in another case, the closest by
/// edit distance when close enough, or the one it abbreviates (`Max` → `Maximum`).
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().filter(|c| *c != name).collect();
    if let Some(same) = candidates.iter().find(|c| c.eq_ignore_ascii_case(name)) {
        return Some(same);
    }
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let by_distance = candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c);
    by_distance.or_else(|| {
        let lower = name.to_ascii_lowercase();
        (lower.len() >= 3)
            .then(|| {
                candidates
                    .iter()
                    .find(|c| c.to_ascii_lowercase().starts_with(&lower))
                    .copied()
            })
            .flatten()
    })
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_follow_the_cloudwatch_definitions() {
        for ok in [
            "Sum",
            "p99",
            "p99.9",
            "p0",
            "p100",
            "tm90",
            "wm98",
            "tc90",
            "ts90",
            "IQM",
            "TM(2%:98%)",
            "TM(150:1000)",
            "WM(10%:90%)",
            "TC(0.005:0.030)",
            "TS(80%:)",
            "PR(:300)",
            "PR(100:2000)",
        ] {
            assert!(is_statistic(ok), "{ok}");
        }
        for bad in [
            "Median",
            "P99",
            "p101",
            "p",
            "sum",
            "TM()",
            "PR(10%:)",
            "TM(2%:98)",
            "p99.",
        ] {
            assert!(!is_statistic(bad), "{bad}");
        }
    }

    #[test]
    fn alarm_statistics_are_the_loaders() {
        for ok in ["Maximum", "p99", "p99.9", "p0", "p100", "p50.25"] {
            assert!(is_alarm_statistic(ok), "{ok}");
        }
        for bad in ["tm90", "p99.999", "p100.0", "p", "Median", "p999"] {
            assert!(!is_alarm_statistic(bad), "{bad}");
        }
    }

    #[test]
    fn periods() {
        assert!(is_dashboard_period(60) && is_dashboard_period(1) && is_dashboard_period(300));
        assert!(!is_dashboard_period(90) && !is_dashboard_period(0) && !is_dashboard_period(20));
        assert!(is_alarm_period(20) && is_alarm_period(3600));
        assert!(!is_alarm_period(5) && !is_alarm_period(90));
    }

    #[test]
    fn closest_suggests_typos_only() {
        let known = ["queue.stripe", "queue.paypal", "region"];
        assert_eq!(closest("queues.stripe", known), Some("queue.stripe"));
        assert_eq!(closest("regoin", known), Some("region"));
        assert_eq!(closest("table", known), None);
        assert_eq!(closest("Max", ["Minimum", "Maximum"]), Some("Maximum"));
        assert_eq!(closest("sum", ["Sum", "Average"]), Some("Sum"));
    }
}
