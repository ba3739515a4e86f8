//! An EventBridge event-pattern matcher with AWS's semantics, and the routing rules kept as
//! code in `rules/`.
//!
//! The `payment-events` bus routes each event the provider processors publish to the rules
//! whose pattern matches it. Pulumi creates those rules from `rules/*.json`; the
//! local stack routes with this matcher; tests assert which rules an event matches. So the
//! matcher follows AWS event-ruler (the library EventBridge uses), checked case by case against
//! a public corpus of EventBridge pattern cases (`functions/core/tests/it/pattern_conformance.rs`):
//!
//! - exact strings, numbers (compared by value: `[300]` matches `300.0`), booleans and `null`;
//!   a field's list is any-of, fields are all-of, nested objects and dotted keys are the same
//!   path (`{"a": {"b": ..}}` ≡ `{"a.b": ..}`), arrays in events match if any element does;
//! - `prefix`, `suffix` (both also `{"equals-ignore-case": ..}`), `equals-ignore-case`,
//!   `wildcard`, `anything-but` (values, `prefix`, `suffix`, `equals-ignore-case`, `wildcard`),
//!   `numeric` (comparisons and two-sided ranges), `exists`, `cidr` (IPv4 and IPv6), `$or`;
//! - array consistency: fields matched inside an array of objects must come from the same
//!   element, and a field asked to be absent (`exists: false`) must be absent from that
//!   element (from every element when no other field picked one), whatever the fields are
//!   called;
//! - validation with AWS's messages ([`PatternError`]), plus the three limits the service adds
//!   to the library: [`MAX_PATTERN_CHARS`], [`MAX_OR_COMBINATIONS`] and wildcard complexity
//!   ([`MAX_WILDCARD_COMPLEXITY`]).
//!
//! Patterns are compiled once into sorted, pre-split paths with pre-parsed numbers, CIDRs and
//! wildcards; matching a `serde_json::Value` does not allocate unless the event has arrays of
//! objects on a pattern's path.
//!
//! Pattern text ([`Pattern::parse`]) and event text ([`Pattern::matches_str`],
//! [`RuleSet::matching_str`]) are read by a small hand-written JSON reader rather than
//! `serde_json::Value`, because the semantics depend on what `Value` drops: repeated keys (the
//! last wins in a pattern, each counts in an event) and number spellings. Reading event text,
//! it builds only the members whose key can be part of a field name the patterns use, as
//! event-ruler does. `serde_json` features such as `preserve_order` or `arbitrary_precision`
//! are deliberately not used: they would change behaviour for every crate in the workspace.
//!
//! ```
//! use payhook_pattern::Pattern;
//!
//! let pattern = Pattern::parse(
//!     r#"{"source": [{"prefix": "payhook."}], "detail": {"amount": [{"numeric": [">=", 1000]}]}}"#,
//! )?;
//! let event = serde_json::json!({"source": "payhook.stripe", "detail": {"amount": 1500.0}});
//! assert!(pattern.matches(&event));
//! assert!(!pattern.matches_str(r#"{"source": "payhook.stripe", "detail": {"amount": 999}}"#)?);
//!
//! let err = Pattern::parse(r#"{"amount": 1000}"#).unwrap_err();
//! assert_eq!(err.code(), "invalid_event_pattern");
//! assert_eq!(
//!     err.to_string(),
//!     r#"Event pattern is not valid. Reason: "amount" must be an object or an array"#
//! );
//! # Ok::<(), payhook_pattern::PatternError>(())
//! ```

mod compile;
mod ip;
mod json;
mod matcher;
mod rules;
mod wildcard;

pub use rules::{
    DEFAULT_RETRY_POLICY, MAX_DESCRIPTION_CHARS, MAX_RULE_NAME_CHARS, MAX_TARGETS_PER_RULE,
    PORTABLE_MAX_DECIMALS, PORTABLE_NUMBER_LIMIT, RetryPolicy, RuleFile, RuleSet, RuleState,
    RuleTarget, RulesError, load_rules,
};

use compile::{CompileError, Compiled, NumberOperand};
use json::Json;

/// Longest event pattern accepted, in characters: the default of the EventBridge quota "Event
/// pattern size" (adjustable up to the API's hard maximum of 4,096, which we do not assume).
pub const MAX_PATTERN_CHARS: usize = 2048;

/// Most alternatives the `$or` expressions of one pattern may combine into (the product of
/// parallel `$or` branch counts); EventBridge rejects patterns beyond it.
pub const MAX_OR_COMBINATIONS: usize = 1000;

/// Most fields one alternative of a pattern may name (event-ruler's `MAXIMUM_RULE_SIZE`).
pub const MAX_FIELDS_PER_SUB_RULE: usize = 256;

/// Highest wildcard complexity accepted for one field: the most automaton states the field's
/// wildcards can be in at once. EventBridge rejects "too complex" wildcards at an undocumented
/// threshold; this cut-off sits between the two AWS-observed cases (rejected
/// `*:*:*:*:*:event-bus/*` scores 13, accepted `/Users/*/dir/dir/dir/dir/dir/doc.txt` 8).
pub const MAX_WILDCARD_COMPLEXITY: usize = 10;

/// What a [`PatternError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatternErrorKind {
    /// The event pattern is not valid (EventBridge's `InvalidEventPatternException`).
    InvalidPattern,
    /// The event given to [`Pattern::matches_str`] is not a JSON object.
    InvalidEvent,
}

/// A pattern EventBridge would reject, or an event that is not a JSON object.
///
/// Pattern errors read like AWS's: `Event pattern is not valid. Reason: …`, with event-ruler's
/// reason text where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", .kind.prefix(), .reason)]
pub struct PatternError {
    kind: PatternErrorKind,
    reason: String,
}

impl PatternErrorKind {
    fn prefix(self) -> &'static str {
        match self {
            PatternErrorKind::InvalidPattern => "Event pattern is not valid. Reason: ",
            PatternErrorKind::InvalidEvent => "Event is not valid: ",
        }
    }
}

impl PatternError {
    fn pattern(reason: impl Into<String>) -> PatternError {
        PatternError {
            kind: PatternErrorKind::InvalidPattern,
            reason: reason.into(),
        }
    }

    fn event(reason: impl Into<String>) -> PatternError {
        PatternError {
            kind: PatternErrorKind::InvalidEvent,
            reason: reason.into(),
        }
    }

    /// Stable machine code: `invalid_event_pattern` for a pattern, `invalid_event` for an
    /// event that is not a JSON object.
    pub fn code(&self) -> &'static str {
        match self.kind {
            PatternErrorKind::InvalidPattern => "invalid_event_pattern",
            PatternErrorKind::InvalidEvent => "invalid_event",
        }
    }

    /// Whether the pattern or the event was at fault.
    pub fn kind(&self) -> PatternErrorKind {
        self.kind
    }

    /// The reason alone, without the `Event pattern is not valid. Reason: ` prefix.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A validated, compiled EventBridge event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// Alternatives (one per `$or` combination), each a list of field constraints sorted by
    /// flattened name.
    sub_rules: Box<[Box<[matcher::Constraint]>]>,
    /// The numbers the pattern compares with, for portability checks of rules kept as code.
    numbers: Box<[NumberOperand]>,
    /// The `.`-separated pieces of every field name, sorted: event keys made of anything else
    /// cannot matter, so reading event text skips them.
    steps: Box<[Box<str>]>,
}

impl Pattern {
    /// Parses and validates a pattern from its JSON text, exactly as written: a repeated key
    /// counts once, its last occurrence winning, as on AWS.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        check_size(text.chars().count())?;
        let json = json::parse(text).map_err(|e| PatternError::pattern(e.to_string()))?;
        Pattern::from_json(&json)
    }

    /// Validates and compiles a pattern already parsed by `serde_json` (which has dropped
    /// repeated keys and iterates object keys in sorted order). Its size is that of its compact
    /// serialisation.
    pub fn from_value(value: &serde_json::Value) -> Result<Pattern, PatternError> {
        check_size(compact_chars(value))?;
        Pattern::from_json(&Json::from_serde(value))
    }

    fn from_json(json: &Json<'_>) -> Result<Pattern, PatternError> {
        let Compiled { sub_rules, numbers } = compile::compile(json).map_err(|e| match e {
            CompileError::Syntax(reason) | CompileError::Limit(reason) => {
                PatternError::pattern(reason)
            }
        })?;
        let steps = steps_of(
            sub_rules
                .iter()
                .flat_map(|rule| rule.iter().map(|c| &*c.path)),
        );
        Ok(Pattern {
            sub_rules: sub_rules.into_boxed_slice(),
            numbers: numbers.into_boxed_slice(),
            steps,
        })
    }

    /// Whether the event, given as JSON text, matches. Fails when the text is not a JSON object
    /// (as EventBridge's `TestEventPattern` does).
    pub fn matches_str(&self, event_json: &str) -> Result<bool, PatternError> {
        let event = parse_event(event_json, &self.steps)?;
        Ok(self.matches_json(&event))
    }

    /// Whether the event matches; anything but a JSON object matches nothing.
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        event.is_object()
            && self
                .sub_rules
                .iter()
                .any(|rule| matcher::matches_sub_rule(rule, event))
    }

    fn matches_json(&self, event: &Json<'_>) -> bool {
        self.sub_rules
            .iter()
            .any(|rule| matcher::matches_sub_rule(rule, event))
    }

    /// How many alternatives the pattern's `$or` expressions expand into (1 without `$or`).
    pub fn alternatives(&self) -> usize {
        self.sub_rules.len()
    }

    /// The flattened names of the fields the pattern tests (`detail.amount`), sorted, without
    /// repeats.
    pub fn field_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .sub_rules
            .iter()
            .flat_map(|rule| rule.iter().map(|c| &*c.path))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The numbers the pattern compares with, as written (`1e3`).
    fn number_texts(&self) -> impl Iterator<Item = (&str, f64)> {
        self.numbers.iter().map(|n| (n.text.as_str(), n.value))
    }
}

impl std::str::FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

fn check_size(chars: usize) -> Result<(), PatternError> {
    if chars > MAX_PATTERN_CHARS {
        return Err(PatternError::pattern(format!(
            "Event pattern is {chars} characters long; the maximum is {MAX_PATTERN_CHARS} (the \
             default \"Event pattern size\" quota of EventBridge)"
        )));
    }
    Ok(())
}

fn compact_chars(value: &serde_json::Value) -> usize {
    serde_json::to_string(value)
        .map(|s| s.chars().count())
        .unwrap_or(usize::MAX)
}

/// The sorted, distinct `.`-separated pieces of the given field names.
fn steps_of<'n>(names: impl Iterator<Item = &'n str>) -> Box<[Box<str>]> {
    let mut steps: Vec<Box<str>> = names.flat_map(|n| n.split('.')).map(Box::from).collect();
    steps.sort_unstable();
    steps.dedup();
    steps.into_boxed_slice()
}

/// Reads event text, leaving out object members whose key is not made of `steps` (such a key
/// can never be part of a field name the patterns look up).
fn parse_event<'t>(text: &'t str, steps: &[Box<str>]) -> Result<Json<'t>, PatternError> {
    // A handful of steps: a scan comparing lengths first beats a binary search of `memcmp`s,
    // and splitting bytes by hand beats `str::split` on keys this short.
    let keep = |key: &str| {
        key.as_bytes()
            .split(|b| *b == b'.')
            .all(|piece| steps.iter().any(|s| s.as_bytes() == piece))
    };
    let event =
        json::parse_keeping(text, Some(&keep)).map_err(|e| PatternError::event(e.to_string()))?;
    if !matches!(event, Json::Object(_)) {
        return Err(PatternError::event(format!(
            "an event must be a JSON object, not {} {}",
            article(event.type_name()),
            event.type_name()
        )));
    }
    Ok(event)
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn duplicate_keys_merge_nested_objects_and_last_leaf_wins() {
        let pattern = p(r#"{"d": {"a": ["1"]}, "d": {"b": ["2"], "a": ["3"]}}"#);
        assert!(pattern.matches(&json!({"d": {"a": "3", "b": "2"}})));
        assert!(!pattern.matches(&json!({"d": {"a": "1", "b": "2"}})));
    }

    #[test]
    fn or_with_a_single_branch_is_rejected_but_an_object_is_a_field() {
        assert!(Pattern::parse(r#"{"$or": [{"a": ["1"]}]}"#).is_err());
        let legacy = p(r#"{"$or": {"a": ["1"]}}"#);
        assert!(legacy.matches(&json!({"$or": {"a": "1"}})));
    }

    #[test]
    fn or_holding_operators_is_an_ordinary_field() {
        // event-ruler's backward compatibility: with operator keywords inside, `$or` is a
        // field name and its list a list of match expressions.
        let legacy = p(r#"{"$or": [{"prefix": "a"}, {"suffix": "z"}]}"#);
        assert!(legacy.matches(&json!({"$or": "abc"})));
        assert!(!legacy.matches(&json!({"$or": "bcd"})));
        let err =
            Pattern::parse(r#"{"$or": [{"numeric": ["1"]}, {"prefix": ["a"]}]}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_event_pattern");
    }

    #[test]
    fn or_combinations_are_counted_as_alternatives() {
        let pattern = p(
            r#"{"$or": [{"a": ["1"]}, {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}],
                "e": {"$or": [{"f": ["5"]}, {"g": ["6"]}]}}"#,
        );
        assert_eq!(pattern.alternatives(), 6);
        assert!(pattern.matches(&json!({"b": "2", "d": "4", "e": {"g": "6"}})));
        assert!(!pattern.matches(&json!({"b": "2", "e": {"g": "6"}})));
    }

    #[test]
    fn exact_ip_strings_match_any_spelling_of_the_address() {
        let pattern = p(r#"{"ip": ["2001:db8::1"]}"#);
        assert!(pattern.matches(&json!({"ip": "2001:0db8:0:0:0:0:0:1"})));
        assert!(!pattern.matches(&json!({"ip": "2001:db8::2"})));
    }

    #[test]
    fn events_that_are_not_objects_are_errors_in_text_and_misses_as_values() {
        let pattern = p(r#"{"a": [1]}"#);
        let err = pattern.matches_str("[1]").unwrap_err();
        assert_eq!(err.code(), "invalid_event");
        assert_eq!(err.kind(), PatternErrorKind::InvalidEvent);
        assert!(pattern.matches_str("{").is_err());
        assert!(!pattern.matches(&json!([1])));
    }

    #[test]
    fn repeated_event_keys_are_all_seen_in_text() {
        let pattern = p(r#"{"a": ["x"]}"#);
        assert!(pattern.matches_str(r#"{"a": "y", "a": "x"}"#).unwrap());
    }

    #[test]
    fn numbers_compare_by_value_and_exotic_spellings_by_text() {
        assert!(
            p(r#"{"x": [35.0]}"#)
                .matches_str(r#"{"x": 0.000035e6}"#)
                .unwrap()
        );
        assert!(
            p(r#"{"x": [1E400]}"#)
                .matches_str(r#"{"x": 1E400}"#)
                .unwrap()
        );
        assert!(
            !p(r#"{"x": [1E400]}"#)
                .matches_str(r#"{"x": 1E401}"#)
                .unwrap()
        );
        assert!(Pattern::parse(r#"{"x": [{"numeric": ["<", 1E-400]}]}"#).is_err());
    }

    #[test]
    fn exists_false_looks_at_the_element_its_siblings_matched_whatever_the_names() {
        let event = json!({"people": [{"name": "John", "ids": [1]}, {"name": "Anna"}]});
        // `ids` sorts after `name`, `aaa` before it: the answer must not change.
        for absent in ["ids", "aaa"] {
            let event = serde_json::from_str(&event.to_string().replace("ids", absent)).unwrap();
            let pattern = |name: &str| {
                p(&format!(
                    r#"{{"people": {{"name": ["{name}"], "{absent}": [{{"exists": false}}]}}}}"#
                ))
            };
            assert!(pattern("Anna").matches(&event), "{absent}");
            assert!(!pattern("John").matches(&event), "{absent}");
            let alone = p(&format!(
                r#"{{"people": {{"{absent}": [{{"exists": false}}]}}}}"#
            ));
            assert!(
                !alone.matches(&event),
                "{absent}: no sibling picks an element"
            );
        }
    }

    #[test]
    fn size_limit_counts_characters() {
        let long = format!(r#"{{"a": ["{}"]}}"#, "é".repeat(MAX_PATTERN_CHARS));
        let err = Pattern::parse(&long).unwrap_err();
        assert!(err.reason().contains("2048"), "{err}");
        let fits = format!(r#"{{"a": ["{}"]}}"#, "é".repeat(MAX_PATTERN_CHARS - 20));
        assert!(Pattern::parse(&fits).is_ok());
    }
}
