//! The routing rules kept as code in `rules/*.json`: their file format ([`RuleFile`]), the
//! loader that validates them ([`load_rules`]) and the set that routes events with them
//! ([`RuleSet`]). Pulumi creates the EventBridge rules from the same files; the format is
//! documented in `rules/README.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::json;
use super::{Json, Pattern, PatternError, check_size, parse_event, steps_of};

/// Longest rule name (botocore `RuleName`: 1–64 of `[.\-_A-Za-z0-9]`).
pub const MAX_RULE_NAME_CHARS: usize = 64;

/// Longest rule description (botocore `RuleDescription`).
pub const MAX_DESCRIPTION_CHARS: usize = 512;

/// Most targets one rule may have (the EventBridge "Targets per rule" quota).
pub const MAX_TARGETS_PER_RULE: usize = 5;

/// Largest magnitude a number in a rule may have. event-ruler takes any double, but the user
/// guide has documented ±5.0e9 (and before that ±1.0e9); rules kept as code stay inside it.
pub const PORTABLE_NUMBER_LIMIT: f64 = 5.0e9;

/// Most digits after the decimal point a number in a rule may have (the user guide's limit).
pub const PORTABLE_MAX_DECIMALS: usize = 6;

/// EventBridge's retry policy when a target does not set one.
pub const DEFAULT_RETRY_POLICY: RetryPolicy = RetryPolicy {
    maximum_retry_attempts: 185,
    maximum_event_age_seconds: 86_400,
};

/// Range of `maximum_retry_attempts` EventBridge accepts.
const RETRY_ATTEMPTS: std::ops::RangeInclusive<u32> = 0..=185;

/// Range of `maximum_event_age_seconds` EventBridge accepts.
const EVENT_AGE_SECONDS: std::ops::RangeInclusive<u32> = 60..=86_400;

/// One file of `rules/`: an EventBridge rule and its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rule name, unique on the bus; also the file's name (`{name}.json`).
    pub name: String,
    /// What the rule is for (at most [`MAX_DESCRIPTION_CHARS`] characters).
    pub description: String,
    /// The bus the rule is on (`payment-events`).
    pub event_bus: String,
    /// Whether EventBridge routes with it.
    pub state: RuleState,
    /// The event pattern.
    pub event_pattern: serde_json::Value,
    /// Where matching events go (1 to [`MAX_TARGETS_PER_RULE`]).
    pub targets: Vec<RuleTarget>,
}

/// `ENABLED` or `DISABLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleState {
    /// Events are routed with the rule.
    Enabled,
    /// The rule exists but routes nothing.
    Disabled,
}

/// One target of a rule: a Lambda function of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTarget {
    /// Target id, unique within the rule (`[.\-_A-Za-z0-9]{1,64}`).
    pub id: String,
    /// The function the stack deploys under this logical name (`event-processor`).
    pub function: String,
    /// How EventBridge retries delivery; [`DEFAULT_RETRY_POLICY`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// Logical name of the SQS queue that receives events EventBridge gave up on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<String>,
}

/// A target's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0–185).
    pub maximum_retry_attempts: u32,
    /// Oldest an event may get while being retried, in seconds (60–86,400).
    pub maximum_event_age_seconds: u32,
}

/// A rule file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The directory or a file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON, or not in the rule file format.
    #[error("{}: {message}", .path.display())]
    Format {
        /// The rule file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A field breaks one of EventBridge's (or this project's) rules.
    #[error("{}: {field}: {message}", .path.display())]
    Invalid {
        /// The rule file.
        path: PathBuf,
        /// The offending field (`name`, `targets[0].id`, …).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The event pattern is not valid.
    #[error("{}: event_pattern: {source}", .path.display())]
    Pattern {
        /// The rule file.
        path: PathBuf,
        /// Why EventBridge would reject it.
        source: PatternError,
    },
    /// Two files declare the same rule name.
    #[error("rule name `{name}` is used by both {} and {}", .first.display(), .second.display())]
    DuplicateName {
        /// The name.
        name: String,
        /// The file that used it first.
        first: PathBuf,
        /// The file that used it again.
        second: PathBuf,
    },
}

impl RulesError {
    /// Stable machine code: `rules_unreadable` for I/O, `invalid_rule` otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            RulesError::Io { .. } => "rules_unreadable",
            _ => "invalid_rule",
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty() && name.chars().count() <= max && name.chars().all(is_name_char)
}

fn invalid(path: &Path, field: impl Into<String>, message: impl Into<String>) -> RulesError {
    RulesError::Invalid {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

/// Whether a number as written stays within the documented EventBridge range and precision.
fn portable_number(text: &str, value: f64) -> bool {
    if value.is_nan() || value.abs() > PORTABLE_NUMBER_LIMIT {
        return false;
    }
    // Digits after the point once the exponent is applied (trailing zeros do not count).
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (text, 0),
    };
    let fraction = mantissa
        .split_once('.')
        .map(|(_, f)| f.trim_end_matches('0').len())
        .unwrap_or(0);
    let decimals = (fraction as i64 - exponent).max(0);
    decimals <= PORTABLE_MAX_DECIMALS as i64
}

/// Reads, validates and compiles one rule file.
fn load_rule(path: &Path) -> Result<(RuleFile, Pattern), RulesError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |message: String| RulesError::Format {
        path: path.to_path_buf(),
        message,
    };
    let raw = json::parse(&text).map_err(|e| format(format!("not JSON: {e}")))?;
    let duplicates = raw.duplicate_keys();
    if !duplicates.is_empty() {
        return Err(format(format!(
            "repeated keys {} (EventBridge would silently keep only the last one)",
            duplicates.join(", ")
        )));
    }
    let rule: RuleFile = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;

    if !valid_name(&rule.name, MAX_RULE_NAME_CHARS) {
        return Err(invalid(
            path,
            "name",
            format!(
                "`{}` must be 1 to {MAX_RULE_NAME_CHARS} characters of A-Z, a-z, 0-9, '.', '-' \
                 and '_'",
                rule.name
            ),
        ));
    }
    if path.file_stem().and_then(|s| s.to_str()) != Some(rule.name.as_str()) {
        return Err(invalid(
            path,
            "name",
            format!(
                "the file must be named after the rule: `{}.json`",
                rule.name
            ),
        ));
    }
    let description_chars = rule.description.chars().count();
    if description_chars > MAX_DESCRIPTION_CHARS {
        return Err(invalid(
            path,
            "description",
            format!("{description_chars} characters; at most {MAX_DESCRIPTION_CHARS}"),
        ));
    }
    if rule.event_bus.is_empty()
        || rule.event_bus.len() > 256
        || !rule.event_bus.chars().all(|c| is_name_char(c) || c == '/')
    {
        return Err(invalid(
            path,
            "event_bus",
            format!("`{}` is not an event bus name", rule.event_bus),
        ));
    }
    check_targets(path, &rule.targets)?;

    // Compile from our own reading of the file, so key order is the file's.
    let pattern_json = match &raw {
        Json::Object(fields) => fields
            .iter()
            .find(|(k, _)| k == "event_pattern")
            .map(|(_, v)| v),
        _ => None,
    };
    let pattern = pattern_json
        .ok_or_else(|| format("missing field `event_pattern`".to_owned()))
        .and_then(|json| {
            check_size(super::compact_chars(&rule.event_pattern))
                .and_then(|()| Pattern::from_json(json))
                .map_err(|source| RulesError::Pattern {
                    path: path.to_path_buf(),
                    source,
                })
        })?;
    if let Some((text, _)) = pattern
        .number_texts()
        .find(|(t, v)| !portable_number(t, *v))
    {
        return Err(invalid(
            path,
            "event_pattern",
            format!(
                "the number {text} is outside ±{PORTABLE_NUMBER_LIMIT:e} or has more than \
                 {PORTABLE_MAX_DECIMALS} decimals, the range the EventBridge documentation \
                 guarantees"
            ),
        ));
    }
    Ok((rule, pattern))
}

fn check_targets(path: &Path, targets: &[RuleTarget]) -> Result<(), RulesError> {
    if targets.is_empty() || targets.len() > MAX_TARGETS_PER_RULE {
        return Err(invalid(
            path,
            "targets",
            format!(
                "{} targets; a rule needs 1 to {MAX_TARGETS_PER_RULE}",
                targets.len()
            ),
        ));
    }
    for (i, target) in targets.iter().enumerate() {
        let field = |name: &str| format!("targets[{i}].{name}");
        if !valid_name(&target.id, 64) {
            return Err(invalid(
                path,
                field("id"),
                format!(
                    "`{}` must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '-' and '_'",
                    target.id
                ),
            ));
        }
        if targets[..i].iter().any(|t| t.id == target.id) {
            return Err(invalid(
                path,
                field("id"),
                format!("`{}` is used twice", target.id),
            ));
        }
        if target.function.trim().is_empty() {
            return Err(invalid(path, field("function"), "must name a function"));
        }
        if let Some(policy) = &target.retry_policy {
            if !RETRY_ATTEMPTS.contains(&policy.maximum_retry_attempts) {
                return Err(invalid(
                    path,
                    field("retry_policy.maximum_retry_attempts"),
                    format!("{} is outside 0..=185", policy.maximum_retry_attempts),
                ));
            }
            if !EVENT_AGE_SECONDS.contains(&policy.maximum_event_age_seconds) {
                return Err(invalid(
                    path,
                    field("retry_policy.maximum_event_age_seconds"),
                    format!("{} is outside 60..=86400", policy.maximum_event_age_seconds),
                ));
            }
        }
        if target
            .dead_letter_queue
            .as_deref()
            .is_some_and(|q| q.trim().is_empty())
        {
            return Err(invalid(
                path,
                field("dead_letter_queue"),
                "must name a queue",
            ));
        }
    }
    Ok(())
}

/// Loads every `*.json` file of `dir` (other files, such as `README.md`, are skipped), in file
/// name order, and validates each: the format, a unique name of 1–64 characters of
/// `[.\-_A-Za-z0-9]` that is also the file name, a description of at most 512 characters, 1–5
/// targets with valid ids and retry policies, a valid event pattern, and numbers within the
/// documented EventBridge range.
pub fn load_rules(dir: &Path) -> Result<Vec<(PathBuf, RuleFile, Pattern)>, RulesError> {
    let io = |source| RulesError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();

    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut rules = Vec::with_capacity(paths.len());
    for path in paths {
        let (rule, pattern) = load_rule(&path)?;
        if let Some(first) = seen.get(&rule.name) {
            return Err(RulesError::DuplicateName {
                name: rule.name,
                first: first.clone(),
                second: path,
            });
        }
        seen.insert(rule.name.clone(), path.clone());
        rules.push((path, rule, pattern));
    }
    Ok(rules)
}

/// Named patterns that route events: what the `payment-events` bus does with `rules/`.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// Sorted by name.
    rules: Vec<(String, Pattern)>,
    /// Every piece of every field name of every rule (see `Pattern::steps`).
    steps: Box<[Box<str>]>,
}

impl RuleSet {
    /// A set of the given rules.
    pub fn new(rules: impl IntoIterator<Item = (String, Pattern)>) -> RuleSet {
        let mut rules: Vec<(String, Pattern)> = rules.into_iter().collect();
        rules.sort_by(|a, b| a.0.cmp(&b.0));
        let steps = steps_of(rules.iter().flat_map(|(_, p)| p.steps.iter().map(|s| &**s)));
        RuleSet { rules, steps }
    }

    /// The `ENABLED` rules of a [`load_rules`] result (disabled rules route nothing on AWS).
    pub fn from_loaded(loaded: &[(PathBuf, RuleFile, Pattern)]) -> RuleSet {
        RuleSet::new(
            loaded
                .iter()
                .filter(|(_, rule, _)| rule.state == RuleState::Enabled)
                .map(|(_, rule, pattern)| (rule.name.clone(), pattern.clone())),
        )
    }

    /// Loads `dir` with [`load_rules`] and keeps the enabled rules.
    pub fn load(dir: &Path) -> Result<RuleSet, RulesError> {
        Ok(RuleSet::from_loaded(&load_rules(dir)?))
    }

    /// Names of the rules the event matches, in name order.
    pub fn matching(&self, event: &serde_json::Value) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|(_, pattern)| pattern.matches(event))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Like [`matching`](RuleSet::matching), for event JSON text (read once for all rules);
    /// fails when the text is not a JSON object.
    pub fn matching_str(&self, event_json: &str) -> Result<Vec<&str>, PatternError> {
        let event = parse_event(event_json, &self.steps)?;
        Ok(self
            .rules
            .iter()
            .filter(|(_, pattern)| pattern.matches_json(&event))
            .map(|(name, _)| name.as_str())
            .collect())
    }

    /// The rule of that name.
    pub fn get(&self, name: &str) -> Option<&Pattern> {
        self.rules
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.rules[i].1)
    }

    /// The rule names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|(n, _)| n.as_str())
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_numbers_are_within_range_and_precision() {
        assert!(portable_number("1000", 1000.0));
        assert!(portable_number("0.000001", 1e-6));
        assert!(portable_number("1.5e-5", 1.5e-5));
        assert!(!portable_number("1.5e-6", 1.5e-6));
        assert!(!portable_number("0.0000001", 1e-7));
        assert!(portable_number("5e9", 5e9));
        assert!(!portable_number("5000000001", 5_000_000_001.0));
        assert!(portable_number("1.2300000", 1.23));
    }

    #[test]
    fn rule_set_reports_names_in_order() {
        let set = RuleSet::new([
            ("b".to_owned(), Pattern::parse(r#"{"a": [1]}"#).unwrap()),
            (
                "a".to_owned(),
                Pattern::parse(r#"{"a": [{"numeric": [">", 0]}]}"#).unwrap(),
            ),
        ]);
        let event = serde_json::json!({"a": 1});
        assert_eq!(set.matching(&event), ["a", "b"]);
        assert_eq!(set.matching_str(r#"{"a": 2}"#).unwrap(), ["a"]);
        assert!(set.get("b").is_some());
        assert_eq!(set.names().collect::<Vec<_>>(), ["a", "b"]);
    }
}
