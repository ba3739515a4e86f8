//! Metrics as CloudWatch identifies them, and the metric arrays of a dashboard widget's
//! `metrics` property: `[Namespace, MetricName, DimName, DimValue, …, {options}]`, where `"."`
//! repeats the value at the same position of the previous metric. One reader of those arrays
//! ([`MetricEntry::from_value`] and [`resolve`]) serves `payhook check`, which reports what is
//! wrong with an entry, and the dashboard preview, which draws the metric it names.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

/// The most dimensions a metric may have.
pub const MAX_DIMENSIONS: usize = 30;

/// A metric: namespace, name and dimensions (sorted by name, as CloudWatch identifies them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricId {
    /// `Payhook`, `AWS/SQS`, …
    pub namespace: String,
    /// `WebhooksReceived`, …
    pub name: String,
    /// `(name, value)` pairs sorted by name.
    pub dimensions: Vec<(String, String)>,
}

impl MetricId {
    /// A metric id; the dimensions are sorted here (a repeated name keeps its first value).
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        dimensions: impl IntoIterator<Item = (String, String)>,
    ) -> MetricId {
        let mut dimensions: Vec<(String, String)> = dimensions.into_iter().collect();
        dimensions.sort();
        dimensions.dedup_by(|a, b| a.0 == b.0);
        MetricId {
            namespace: namespace.into(),
            name: name.into(),
            dimensions,
        }
    }

    /// The metric a resolved array names (see [`resolve`]).
    pub fn from_resolved(resolved: &[String]) -> MetricId {
        MetricId::new(
            resolved.first().cloned().unwrap_or_default(),
            resolved.get(1).cloned().unwrap_or_default(),
            resolved
                .get(2..)
                .unwrap_or_default()
                .chunks(2)
                .filter_map(|c| Some((c.first()?.clone(), c.get(1)?.clone()))),
        )
    }

    /// The value of dimension `name`.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for MetricId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.namespace, self.name)?;
        for (n, v) in &self.dimensions {
            write!(f, " {n}={v}")?;
        }
        Ok(())
    }
}

/// One entry of a widget's `metrics`, split into its leading strings and its options object.
#[derive(Debug, Clone, Copy)]
pub struct MetricEntry<'a> {
    /// The leading strings: namespace, metric name, dimension pairs (none for an expression).
    pub strings: &'a [Value],
    /// The options object at the end, if any.
    pub options: Option<&'a Map<String, Value>>,
}

/// Why an entry of `metrics` is not `[strings…, {options}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The entry is not an array.
    #[error("each entry of `metrics` is an array")]
    NotAnArray,
    /// Something other than one options object follows the strings.
    #[error(
        "a metric is [Namespace, MetricName, DimName, DimValue, …] with at most one options object at the end"
    )]
    Trailing,
}

impl<'a> MetricEntry<'a> {
    /// Splits one entry of `metrics`.
    pub fn from_value(value: &'a Value) -> Result<MetricEntry<'a>, EntryError> {
        let Value::Array(items) = value else {
            return Err(EntryError::NotAnArray);
        };
        let count = items.iter().take_while(|v| v.is_string()).count();
        let (strings, rest) = items.split_at(count);
        let options = match rest {
            [] => None,
            [Value::Object(options)] => Some(options),
            _ => return Err(EntryError::Trailing),
        };
        Ok(MetricEntry { strings, options })
    }

    /// The leading strings.
    pub fn strings(&self) -> Vec<&'a str> {
        self.strings.iter().filter_map(Value::as_str).collect()
    }

    /// A string option (`id`, `expression`, `label`, `stat`, …).
    pub fn option_str(&self, key: &str) -> Option<&'a str> {
        self.options?.get(key)?.as_str()
    }

    /// Whether the entry is a math or search expression (`[{"expression": …}]`).
    pub fn is_expression(&self) -> bool {
        self.options.is_some_and(|o| o.contains_key("expression"))
    }
}

/// Why the strings of a metric array do not name a metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricArrayError {
    /// `"."` with no previous metric to repeat from.
    #[error(
        "`\".\"` repeats the value at the same position of the previous valid metric, and there is none"
    )]
    NothingToRepeat {
        /// The position of the `"."`.
        position: usize,
    },
    /// Fewer than two strings.
    #[error("a metric needs at least a namespace and a metric name")]
    TooShort,
    /// A dimension name without its value.
    #[error("the dimension `{name}` has no value: dimensions come in name/value pairs")]
    DimensionWithoutValue {
        /// The dimension name.
        name: String,
    },
    /// More than [`MAX_DIMENSIONS`] dimensions.
    #[error("a metric has at most {MAX_DIMENSIONS} dimensions")]
    TooManyDimensions,
    /// An empty (or blank) string.
    #[error("namespace, metric name and dimensions must not be empty")]
    Empty {
        /// The position of the empty string.
        position: usize,
    },
    /// A namespace starting with `:`.
    #[error("a namespace may not start with `:`")]
    ColonNamespace,
    /// The same dimension twice.
    #[error("the dimension `{name}` is given twice")]
    RepeatedDimension {
        /// The dimension name.
        name: String,
    },
}

impl MetricArrayError {
    /// The position in the array the error is about; `None` for the array as a whole.
    pub fn position(&self) -> Option<usize> {
        match self {
            MetricArrayError::NothingToRepeat { position }
            | MetricArrayError::Empty { position } => Some(*position),
            MetricArrayError::ColonNamespace => Some(0),
            _ => None,
        }
    }
}

/// Namespace, name and dimension pairs of a metric array, with `"."` replaced by the previous
/// valid metric's value at the same position.
pub fn resolve(
    strings: &[&str],
    previous: Option<&[String]>,
) -> Result<Vec<String>, MetricArrayError> {
    let mut resolved = Vec::with_capacity(strings.len());
    for (position, s) in strings.iter().enumerate() {
        if *s == "." {
            let value = previous
                .and_then(|p| p.get(position))
                .ok_or(MetricArrayError::NothingToRepeat { position })?;
            resolved.push(value.clone());
        } else {
            resolved.push((*s).to_owned());
        }
    }
    if resolved.len() < 2 {
        return Err(MetricArrayError::TooShort);
    }
    if resolved.len() % 2 != 0 {
        return Err(MetricArrayError::DimensionWithoutValue {
            name: resolved[resolved.len() - 1].clone(),
        });
    }
    if (resolved.len() - 2) / 2 > MAX_DIMENSIONS {
        return Err(MetricArrayError::TooManyDimensions);
    }
    if let Some(position) = resolved.iter().position(|s| s.trim().is_empty()) {
        return Err(MetricArrayError::Empty { position });
    }
    if resolved[0].starts_with(':') {
        return Err(MetricArrayError::ColonNamespace);
    }
    let mut seen = BTreeSet::new();
    for pair in resolved[2..].chunks(2) {
        if !seen.insert(pair[0].as_str()) {
            return Err(MetricArrayError::RepeatedDimension {
                name: pair[0].clone(),
            });
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dots_repeat_the_previous_metric() {
        let first = resolve(&["AWS/SQS", "NumberOfMessagesSent", "QueueName", "a"], None);
        let first = first.unwrap_or_default();
        let second = resolve(&[".", "NumberOfMessagesDeleted", ".", "."], Some(&first));
        assert_eq!(
            second.map(|r| MetricId::from_resolved(&r)),
            Ok(MetricId::new(
                "AWS/SQS",
                "NumberOfMessagesDeleted",
                [("QueueName".to_owned(), "a".to_owned())]
            ))
        );
    }

    #[test]
    fn malformed_arrays_say_what_and_where() {
        let cases: [(&[&str], MetricArrayError); 6] = [
            (&["."], MetricArrayError::NothingToRepeat { position: 0 }),
            (&["AWS/SQS"], MetricArrayError::TooShort),
            (
                &["AWS/SQS", "X", "QueueName"],
                MetricArrayError::DimensionWithoutValue {
                    name: "QueueName".into(),
                },
            ),
            (&["AWS/SQS", " "], MetricArrayError::Empty { position: 1 }),
            (&[":x", "X"], MetricArrayError::ColonNamespace),
            (
                &["N", "X", "a", "1", "a", "2"],
                MetricArrayError::RepeatedDimension { name: "a".into() },
            ),
        ];
        for (strings, wanted) in cases {
            assert_eq!(resolve(strings, None), Err(wanted), "{strings:?}");
        }
    }

    #[test]
    fn entries_split_into_strings_and_options() {
        let v = json!(["AWS/SQS", "X", {"id": "m1"}]);
        let entry = MetricEntry::from_value(&v);
        assert_eq!(
            entry.map(|e| e.strings()).unwrap_or_default(),
            ["AWS/SQS", "X"]
        );
        assert_eq!(
            MetricEntry::from_value(&v)
                .ok()
                .and_then(|e| e.option_str("id")),
            Some("m1")
        );
        assert_eq!(
            MetricEntry::from_value(&json!(["A", {}, "B"])).err(),
            Some(EntryError::Trailing)
        );
        assert_eq!(
            MetricEntry::from_value(&json!({})).err(),
            Some(EntryError::NotAnArray)
        );
    }
}
