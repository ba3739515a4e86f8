//! A validator for CloudWatch Embedded Metric Format documents: AWS's JSON schema plus the
//! prose rules the schema leaves out (`../shared/conformance/emf/SPEC.md` §1-§4). CloudWatch
//! gives no feedback on a bad document (it only counts `EMFValidationErrors`), so every
//! document this crate writes is checked against this in tests, and `payhook check` can run it
//! over captured metrics.
//!
//! Rules checked by [`validate`]: the root is an object; `_aws` is an object with an integer
//! `Timestamp` and a `CloudWatchMetrics` array; each directive has a valid `Namespace`
//! (1-255 characters from `[A-Za-z0-9._#:/-]`, not starting with `:`), a non-empty
//! `Dimensions` array of dimension sets (arrays of at most 30 strings of 1-250 characters),
//! and a `Metrics` array of at most 100 definitions (`Name` of 1-250 characters, `Unit` one of
//! the 27 CloudWatch units, `StorageResolution` 1 or 60, one resolution per name); every
//! referenced member exists at the root (names are not paths); dimension values are strings of
//! 1-1024 characters; metric values are numbers or arrays of 1-100 numbers.
//! [`validate_line`] adds the size limit and that the line is a bare JSON object;
//! [`validate_timestamp_window`] the 14-days-past / 2-hours-future window.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::catalogue::Unit;
use crate::metrics::{
    MAX_DIMENSION_NAME_LEN, MAX_DIMENSION_VALUE_LEN, MAX_DIMENSIONS_PER_SET,
    MAX_METRICS_PER_DOCUMENT, MAX_VALUES_PER_METRIC, is_valid_namespace,
};

/// The largest EMF log line the kit writes (the spec's 256 KB; PutLogEvents now takes 1 MB).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The longest metric name accepted (PutMetricData takes 255; aws-embedded-metrics 250).
pub const MAX_METRIC_NAME_LEN: usize = 250;
/// How far in the past a timestamp may be (PutLogEvents rejects older events).
pub const MAX_TIMESTAMP_PAST_MS: i64 = 14 * 24 * 3600 * 1000;
/// How far in the future a timestamp may be.
pub const MAX_TIMESTAMP_FUTURE_MS: i64 = 2 * 3600 * 1000;

/// Which rule a document breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmfRule {
    /// The line is not a single bare JSON object.
    NotJsonObject,
    /// The line is larger than [`MAX_DOCUMENT_BYTES`].
    TooLarge,
    /// `_aws` is missing or not an object.
    MissingMetadata,
    /// `_aws.Timestamp` is missing.
    MissingTimestamp,
    /// `_aws.Timestamp` is not an integer number of milliseconds.
    TimestampNotInteger,
    /// `_aws.Timestamp` is outside the window CloudWatch Logs accepts.
    TimestampOutOfWindow,
    /// `_aws.CloudWatchMetrics` is missing or not an array.
    MissingDirectives,
    /// A directive is not an object or lacks a member.
    MalformedDirective,
    /// The namespace is not a string CloudWatch accepts.
    InvalidNamespace,
    /// `Dimensions` is not a non-empty array of arrays of strings.
    MalformedDimensions,
    /// A dimension set has more than 30 keys.
    TooManyDimensions,
    /// A dimension key is empty or longer than 250 characters.
    InvalidDimensionName,
    /// A dimension key names no root member.
    MissingDimensionValue,
    /// A dimension value is not a string of 1-1024 characters.
    InvalidDimensionValue,
    /// `Metrics` is not an array of objects with a `Name`.
    MalformedMetrics,
    /// More than 100 metric definitions in one directive.
    TooManyMetrics,
    /// A metric name is empty or too long.
    InvalidMetricName,
    /// A unit that is not one of CloudWatch's 27.
    InvalidUnit,
    /// A storage resolution other than 1 or 60, or two resolutions for one name.
    InvalidStorageResolution,
    /// A metric name that names no root member.
    MissingMetricValue,
    /// A metric value that is not a number or an array of numbers.
    InvalidMetricValue,
    /// A metric array with more than 100 (or no) values.
    TooManyValues,
}

impl EmfRule {
    /// A stable code for the rule.
    pub fn code(self) -> &'static str {
        match self {
            EmfRule::NotJsonObject => "not_json_object",
            EmfRule::TooLarge => "too_large",
            EmfRule::MissingMetadata => "missing_metadata",
            EmfRule::MissingTimestamp => "missing_timestamp",
            EmfRule::TimestampNotInteger => "timestamp_not_integer",
            EmfRule::TimestampOutOfWindow => "timestamp_out_of_window",
            EmfRule::MissingDirectives => "missing_directives",
            EmfRule::MalformedDirective => "malformed_directive",
            EmfRule::InvalidNamespace => "invalid_namespace",
            EmfRule::MalformedDimensions => "malformed_dimensions",
            EmfRule::TooManyDimensions => "too_many_dimensions",
            EmfRule::InvalidDimensionName => "invalid_dimension_name",
            EmfRule::MissingDimensionValue => "missing_dimension_value",
            EmfRule::InvalidDimensionValue => "invalid_dimension_value",
            EmfRule::MalformedMetrics => "malformed_metrics",
            EmfRule::TooManyMetrics => "too_many_metrics",
            EmfRule::InvalidMetricName => "invalid_metric_name",
            EmfRule::InvalidUnit => "invalid_unit",
            EmfRule::InvalidStorageResolution => "invalid_storage_resolution",
            EmfRule::MissingMetricValue => "missing_metric_value",
            EmfRule::InvalidMetricValue => "invalid_metric_value",
            EmfRule::TooManyValues => "too_many_values",
        }
    }
}

/// One broken rule, with where in the document it is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmfViolation {
    /// The rule.
    pub rule: EmfRule,
    /// A JSON-pointer-like location (`/_aws/CloudWatchMetrics/0/Metrics/3`).
    pub path: String,
}

impl fmt::Display for EmfViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.rule.code(), self.path)
    }
}

struct Check {
    violations: Vec<EmfViolation>,
}

impl Check {
    fn fail(&mut self, rule: EmfRule, path: impl Into<String>) {
        self.violations.push(EmfViolation {
            rule,
            path: path.into(),
        });
    }
}

/// Validates one EMF document (already parsed). Returns every violation found.
pub fn validate(doc: &Value) -> Result<(), Vec<EmfViolation>> {
    let mut c = Check {
        violations: Vec::new(),
    };
    match doc.as_object() {
        None => c.fail(EmfRule::NotJsonObject, ""),
        Some(root) => check_root(root, &mut c),
    }
    if c.violations.is_empty() {
        Ok(())
    } else {
        Err(c.violations)
    }
}

/// Validates one log line: a bare JSON object (nothing before or after it), at most
/// [`MAX_DOCUMENT_BYTES`], and a valid document. Returns the parsed document.
pub fn validate_line(line: &str) -> Result<Value, Vec<EmfViolation>> {
    let violation = |rule| {
        vec![EmfViolation {
            rule,
            path: String::new(),
        }]
    };
    if line.len() > MAX_DOCUMENT_BYTES {
        return Err(violation(EmfRule::TooLarge));
    }
    let trimmed = line.trim_end_matches(['\n', '\r']);
    if !trimmed.starts_with('{') {
        return Err(violation(EmfRule::NotJsonObject));
    }
    let doc: Value =
        serde_json::from_str(trimmed).map_err(|_| violation(EmfRule::NotJsonObject))?;
    validate(&doc)?;
    Ok(doc)
}

/// Checks that `_aws.Timestamp` lies in the window CloudWatch Logs accepts relative to
/// `now_ms`: no more than 14 days old and no more than 2 hours ahead.
pub fn validate_timestamp_window(doc: &Value, now_ms: i64) -> Result<(), EmfViolation> {
    let ts = doc
        .pointer("/_aws/Timestamp")
        .and_then(Value::as_i64)
        .ok_or(EmfViolation {
            rule: EmfRule::TimestampNotInteger,
            path: "/_aws/Timestamp".into(),
        })?;
    if ts < now_ms - MAX_TIMESTAMP_PAST_MS || ts > now_ms + MAX_TIMESTAMP_FUTURE_MS {
        return Err(EmfViolation {
            rule: EmfRule::TimestampOutOfWindow,
            path: "/_aws/Timestamp".into(),
        });
    }
    Ok(())
}

fn check_root(root: &Map<String, Value>, c: &mut Check) {
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        c.fail(EmfRule::MissingMetadata, "/_aws");
        return;
    };
    match aws.get("Timestamp") {
        None => c.fail(EmfRule::MissingTimestamp, "/_aws/Timestamp"),
        Some(t) if !(t.is_u64() || t.is_i64()) => {
            c.fail(EmfRule::TimestampNotInteger, "/_aws/Timestamp")
        }
        Some(_) => {}
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        c.fail(EmfRule::MissingDirectives, "/_aws/CloudWatchMetrics");
        return;
    };
    let mut resolutions: HashMap<&str, i64> = HashMap::new();
    for (i, directive) in directives.iter().enumerate() {
        let path = format!("/_aws/CloudWatchMetrics/{i}");
        match directive.as_object() {
            None => c.fail(EmfRule::MalformedDirective, path),
            Some(d) => check_directive(d, root, &path, &mut resolutions, c),
        }
    }
}

fn check_directive<'a>(
    d: &'a Map<String, Value>,
    root: &Map<String, Value>,
    path: &str,
    resolutions: &mut HashMap<&'a str, i64>,
    c: &mut Check,
) {
    match d.get("Namespace") {
        None => c.fail(EmfRule::MalformedDirective, format!("{path}/Namespace")),
        Some(Value::String(ns)) if is_valid_namespace(ns) => {}
        Some(_) => c.fail(EmfRule::InvalidNamespace, format!("{path}/Namespace")),
    }
    match d.get("Dimensions") {
        None => c.fail(EmfRule::MalformedDirective, format!("{path}/Dimensions")),
        Some(dims) => check_dimensions(dims, root, &format!("{path}/Dimensions"), c),
    }
    match d.get("Metrics") {
        None => c.fail(EmfRule::MalformedDirective, format!("{path}/Metrics")),
        Some(metrics) => check_metrics(metrics, root, &format!("{path}/Metrics"), resolutions, c),
    }
}

fn check_dimensions(dims: &Value, root: &Map<String, Value>, path: &str, c: &mut Check) {
    let Some(sets) = dims.as_array().filter(|s| !s.is_empty()) else {
        c.fail(EmfRule::MalformedDimensions, path);
        return;
    };
    for (i, set) in sets.iter().enumerate() {
        let set_path = format!("{path}/{i}");
        let Some(keys) = set.as_array() else {
            c.fail(EmfRule::MalformedDimensions, set_path);
            continue;
        };
        if keys.len() > MAX_DIMENSIONS_PER_SET {
            c.fail(EmfRule::TooManyDimensions, set_path.clone());
        }
        for (k, key) in keys.iter().enumerate() {
            let key_path = format!("{set_path}/{k}");
            let Some(key) = key.as_str() else {
                c.fail(EmfRule::MalformedDimensions, key_path);
                continue;
            };
            if key.is_empty() || key.chars().count() > MAX_DIMENSION_NAME_LEN {
                c.fail(EmfRule::InvalidDimensionName, key_path);
                continue;
            }
            match root.get(key) {
                None => c.fail(EmfRule::MissingDimensionValue, format!("/{key}")),
                Some(Value::String(v))
                    if !v.is_empty() && v.chars().count() <= MAX_DIMENSION_VALUE_LEN => {}
                Some(_) => c.fail(EmfRule::InvalidDimensionValue, format!("/{key}")),
            }
        }
    }
}

fn check_metrics<'a>(
    metrics: &'a Value,
    root: &Map<String, Value>,
    path: &str,
    resolutions: &mut HashMap<&'a str, i64>,
    c: &mut Check,
) {
    let Some(defs) = metrics.as_array() else {
        c.fail(EmfRule::MalformedMetrics, path);
        return;
    };
    if defs.len() > MAX_METRICS_PER_DOCUMENT {
        c.fail(EmfRule::TooManyMetrics, path);
    }
    for (i, def) in defs.iter().enumerate() {
        let def_path = format!("{path}/{i}");
        let Some(def) = def.as_object() else {
            c.fail(EmfRule::MalformedMetrics, def_path);
            continue;
        };
        let Some(name) = def.get("Name").and_then(Value::as_str) else {
            c.fail(EmfRule::MalformedMetrics, format!("{def_path}/Name"));
            continue;
        };
        if name.is_empty() || name.chars().count() > MAX_METRIC_NAME_LEN {
            c.fail(EmfRule::InvalidMetricName, format!("{def_path}/Name"));
        }
        if let Some(unit) = def.get("Unit")
            && unit.as_str().and_then(Unit::from_name).is_none()
        {
            c.fail(EmfRule::InvalidUnit, format!("{def_path}/Unit"));
        }
        if let Some(res) = def.get("StorageResolution") {
            match res.as_i64() {
                Some(r @ (1 | 60)) => {
                    if let Some(prev) = resolutions.insert(name, r)
                        && prev != r
                    {
                        c.fail(
                            EmfRule::InvalidStorageResolution,
                            format!("{def_path}/StorageResolution"),
                        );
                    }
                }
                _ => c.fail(
                    EmfRule::InvalidStorageResolution,
                    format!("{def_path}/StorageResolution"),
                ),
            }
        }
        // References are member names, never paths: "A.a" must be a root key of that name.
        match root.get(name) {
            None => c.fail(EmfRule::MissingMetricValue, format!("/{name}")),
            Some(Value::Number(_)) => {}
            Some(Value::Array(values)) => {
                if values.is_empty() || values.len() > MAX_VALUES_PER_METRIC {
                    c.fail(EmfRule::TooManyValues, format!("/{name}"));
                }
                if !values.iter().all(Value::is_number) {
                    c.fail(EmfRule::InvalidMetricValue, format!("/{name}"));
                }
            }
            Some(_) => c.fail(EmfRule::InvalidMetricValue, format!("/{name}")),
        }
    }
}
