//! CloudWatch statistics ("CloudWatch statistics definitions" in the CloudWatch User Guide): one
//! reader of a statistic's name for `payhook check` (is it one CloudWatch accepts?) and the
//! dashboard preview (which aggregation to compute).
//!
//! Accepted: the basic five, `IQM`, percentiles and the trimmed / winsorized forms in short form
//! (`p99`, `p99.9`, `tm90`, `wm98`, `tc90`, `ts90`: bounds 0–100 with up to 10 decimals) and in
//! range form (`TM(2%:98%)`, `TM(150:1000)`, `WM(…)`, `TC(…)`, `TS(…)`, and the percentile rank
//! `PR(:300)`, which takes absolute bounds only).

use std::fmt;

/// A statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
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
    /// `IQM`: the mean of the values between the 25th and 75th percentiles.
    Iqm,
    /// `pNN` (0–100).
    Percentile(f64),
    /// `tm`/`wm`/`tc`/`ts` and `TM(…)`/`WM(…)`/`TC(…)`/`TS(…)`/`PR(…)`: a statistic over the
    /// values within bounds.
    Bounded {
        /// Which statistic.
        kind: Bounded,
        /// The lower bound, if any.
        low: Option<f64>,
        /// The upper bound, if any.
        high: Option<f64>,
        /// Whether the bounds are percentiles (`tm90`, `TM(10%:90%)`) rather than values
        /// (`TM(150:1000)`).
        percent: bool,
    },
}

/// The statistics over values within bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounded {
    /// `TM`: trimmed mean.
    TrimmedMean,
    /// `WM`: winsorized mean.
    WinsorizedMean,
    /// `TC`: trimmed count.
    TrimmedCount,
    /// `TS`: trimmed sum.
    TrimmedSum,
    /// `PR`: percentile rank (the share of values within the bounds).
    PercentileRank,
}

impl Bounded {
    /// The range form's prefix (`TM`, …).
    pub const fn prefix(self) -> &'static str {
        match self {
            Bounded::TrimmedMean => "TM",
            Bounded::WinsorizedMean => "WM",
            Bounded::TrimmedCount => "TC",
            Bounded::TrimmedSum => "TS",
            Bounded::PercentileRank => "PR",
        }
    }
}

/// The five basic statistics.
pub const BASIC: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

const SHORT: [(&str, Option<Bounded>); 5] = [
    ("p", None),
    ("tm", Some(Bounded::TrimmedMean)),
    ("wm", Some(Bounded::WinsorizedMean)),
    ("tc", Some(Bounded::TrimmedCount)),
    ("ts", Some(Bounded::TrimmedSum)),
];

const RANGE: [Bounded; 5] = [
    Bounded::TrimmedMean,
    Bounded::WinsorizedMean,
    Bounded::TrimmedCount,
    Bounded::TrimmedSum,
    Bounded::PercentileRank,
];

impl Statistic {
    /// Reads a statistic's name; `None` when CloudWatch would not accept it.
    pub fn parse(text: &str) -> Option<Statistic> {
        match text {
            "Sum" => return Some(Statistic::Sum),
            "Average" => return Some(Statistic::Average),
            "Minimum" => return Some(Statistic::Minimum),
            "Maximum" => return Some(Statistic::Maximum),
            "SampleCount" => return Some(Statistic::SampleCount),
            "IQM" => return Some(Statistic::Iqm),
            _ => {}
        }
        for (prefix, kind) in SHORT {
            if let Some(rest) = text.strip_prefix(prefix)
                && let Some(bound) = percent_number(rest)
            {
                return Some(match kind {
                    None => Statistic::Percentile(bound),
                    Some(kind) => Statistic::Bounded {
                        kind,
                        low: None,
                        high: Some(bound),
                        percent: true,
                    },
                });
            }
        }
        for kind in RANGE {
            let Some(range) = text
                .strip_prefix(kind.prefix())
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
            else {
                continue;
            };
            let (low, high) = range.split_once(':')?;
            if low.is_empty() && high.is_empty() {
                return None;
            }
            let percents = |b: &str| match b {
                "" => Some(None),
                _ => b.strip_suffix('%').and_then(percent_number).map(Some),
            };
            let absolute = |b: &str| match b {
                "" => Some(None),
                _ => plain_number(b).map(Some),
            };
            let bounded = |(low, high), percent| Statistic::Bounded {
                kind,
                low,
                high,
                percent,
            };
            let as_values = absolute(low).zip(absolute(high));
            if kind == Bounded::PercentileRank {
                return as_values.map(|b| bounded(b, false));
            }
            return match percents(low).zip(percents(high)) {
                Some(b) => Some(bounded(b, true)),
                None => as_values.map(|b| bounded(b, false)),
            };
        }
        None
    }

    /// Whether values of this statistic add up over time (a total over a range is their sum).
    pub fn is_additive(self) -> bool {
        matches!(self, Statistic::Sum | Statistic::SampleCount)
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Sum => f.write_str("Sum"),
            Statistic::Average => f.write_str("Average"),
            Statistic::Minimum => f.write_str("Minimum"),
            Statistic::Maximum => f.write_str("Maximum"),
            Statistic::SampleCount => f.write_str("SampleCount"),
            Statistic::Iqm => f.write_str("IQM"),
            Statistic::Percentile(p) => write!(f, "p{p}"),
            Statistic::Bounded {
                kind,
                low,
                high,
                percent,
            } => {
                let bound = |b: &Option<f64>| match (b, percent) {
                    (None, _) => String::new(),
                    (Some(v), true) => format!("{v}%"),
                    (Some(v), false) => format!("{v}"),
                };
                write!(f, "{}({}:{})", kind.prefix(), bound(low), bound(high))
            }
        }
    }
}

/// `0`–`100` with up to 10 decimals.
fn percent_number(text: &str) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let shaped = !whole.is_empty()
        && whole.len() <= 3
        && digits(whole)
        && digits(fraction)
        && fraction.len() <= 10
        && (!text.contains('.') || !fraction.is_empty());
    let value = text.parse::<f64>().ok()?;
    (shaped && (0.0..=100.0).contains(&value)).then_some(value)
}

/// A non-negative decimal number, optionally with an exponent (`150`, `0.005`, `1e3`).
fn plain_number(text: &str) -> Option<f64> {
    let value = text.parse::<f64>().ok()?;
    (text.starts_with(|c: char| c.is_ascii_digit()) && value.is_finite() && value >= 0.0)
        .then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_into_statistics_and_back() {
        for (text, shown) in [
            ("Sum", "Sum"),
            ("IQM", "IQM"),
            ("p99.9", "p99.9"),
            ("tm90", "TM(:90%)"),
            ("TM(10%:90%)", "TM(10%:90%)"),
            ("TM(150:1000)", "TM(150:1000)"),
            ("WM(:95%)", "WM(:95%)"),
            ("PR(:300)", "PR(:300)"),
        ] {
            let stat = Statistic::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(stat.to_string(), shown, "{text}");
            assert_eq!(Statistic::parse(shown), Some(stat), "{shown}");
        }
        for bad in [
            "sum",
            "p101",
            "TM(:)",
            "TM(10%:90)",
            "PR(10%:90%)",
            "tm",
            "p1.12345678901",
        ] {
            assert_eq!(Statistic::parse(bad), None, "{bad}");
        }
    }
}
