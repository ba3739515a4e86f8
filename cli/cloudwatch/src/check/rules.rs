//! `rules/*.json`: every file through the loader the local stack routes with
//! ([`payhook_pattern::load_rules`]: the rule format, pattern validity with EventBridge's
//! semantics, portable numbers), plus what the deploy requires on top (`definitions.parse_rule`:
//! the bus, the functions targets may name, the one target dead-letter queue). Each file is also
//! checked on its own, so every broken file is reported, not only the first one the loader
//! stops at. The currency rates file `rules/currencies/rates.json` is checked with the loader
//! the validator uses (`payhook_core::currency::Rates::from_json`, passed in as a
//! [`RatesLoader`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use payhook_pattern::{Pattern, RulesError, load_rules};
use serde_json::{Map, Value};

use super::RatesLoader;
use super::codes;
use super::json;
use super::report::{FileReport, Report, index, key, list};
use super::shape;
use super::stack;

/// What the rule files hold, for the alarm checks (one `rule`-scope alarm per rule).
#[derive(Debug, Default)]
pub(crate) struct Rules {
    /// Rule names, one per file that parsed.
    pub(crate) names: Vec<String>,
    /// Whether every rule file parsed.
    pub(crate) complete: bool,
}

const RULE_FIELDS: [&str; 6] = [
    "name",
    "description",
    "event_bus",
    "state",
    "event_pattern",
    "targets",
];
const TARGET_FIELDS: [&str; 4] = ["id", "function", "retry_policy", "dead_letter_queue"];
const RETRY_FIELDS: [&str; 2] = ["maximum_retry_attempts", "maximum_event_age_seconds"];

/// The folder of `rules/` holding the currency rates file (not a rule).
pub(crate) const RATES_FOLDER: &str = "currencies";
/// The currency rates file, relative to the root.
const RATES_FILE: &str = "rules/currencies/rates.json";

/// Checks the currency rates file as the validator loads it (its absence fails the build,
/// which embeds it).
fn check_rates(root: &Path, rates: RatesLoader<'_>, report: &mut Report) {
    let rel = Path::new(RATES_FILE);
    if !root.join(rel).is_file() {
        return;
    }
    let Some(value) = json::read(root, rel, report) else {
        return;
    };
    if let Err(e) = rates(&value.to_string()) {
        report.add(rel, "$", codes::INVALID_RATES, e);
    }
}

/// Checks every rule file.
pub(crate) fn check(root: &Path, rates: RatesLoader<'_>, report: &mut Report) -> Rules {
    check_rates(root, rates, report);
    let files = json::folder_files(root, "rules", "json", report);
    let mut rules = Rules {
        complete: true,
        ..Rules::default()
    };
    for rel in &files {
        let Some(value) = json::read(root, rel, report) else {
            rules.complete = false;
            continue;
        };
        let stem = rel
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut file = report.file(rel);
        rules
            .names
            .push(check_rule(&value, &stem, &mut file).unwrap_or(stem));
    }
    let dir = root.join("rules");
    if dir.is_dir()
        && let Err(error) = load_rules(&dir)
    {
        let (file, path, code) = locate(&error, root);
        // The loader stops at its first problem; the per-file checks above usually found
        // the same one with a more precise path.
        if !report.has_findings_for(&file) {
            report.add(&file, path, code, error.to_string());
        }
        if matches!(error, RulesError::Io { .. }) {
            rules.complete = false;
        }
    }
    rules
}

/// The file, JSON path and code of a loader error.
fn locate(error: &RulesError, root: &Path) -> (PathBuf, String, &'static str) {
    let relative = |p: &Path| {
        p.strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.to_path_buf())
    };
    match error {
        RulesError::Io { path, .. } => (relative(path), "$".to_owned(), codes::UNEXPECTED_FILE),
        RulesError::Format { path, .. } => (relative(path), "$".to_owned(), codes::INVALID_RULE),
        RulesError::Invalid { path, field, .. } => {
            (relative(path), key("$", field), codes::INVALID_RULE)
        }
        RulesError::Pattern { path, .. } => (
            relative(path),
            "$.event_pattern".to_owned(),
            codes::INVALID_EVENT_PATTERN,
        ),
        RulesError::DuplicateName { second, .. } => {
            (relative(second), "$.name".to_owned(), codes::INVALID_RULE)
        }
    }
}

/// `[.\-_A-Za-z0-9]{1,64}`: EventBridge rule and target names.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// One rule file; returns its name.
fn check_rule(value: &Value, stem: &str, file: &mut FileReport<'_>) -> Option<String> {
    let what = "a rule file";
    let map = shape::object(value, "$", what, file)?;
    shape::unknown_properties(map, "$", &RULE_FIELDS, what, file);
    let name = shape::string(map, "name", "$", true, what, file);
    if let Some(name) = name {
        if !valid_name(name) {
            file.add("$.name", codes::INVALID_RULE, format!("`{name}` must be 1-64 characters of A-Z a-z 0-9 . - _ (an EventBridge rule name)"));
        } else if name != stem {
            file.add(
                "$.name",
                codes::INVALID_RULE,
                format!("`{name}` must equal the file name `{stem}`"),
            );
        }
    }
    if shape::string(map, "description", "$", true, what, file)
        .is_some_and(|d| d.chars().count() > 512)
    {
        file.add(
            "$.description",
            codes::INVALID_RULE,
            "a rule description is at most 512 characters",
        );
    }
    if let Some(bus) = shape::string(map, "event_bus", "$", true, what, file)
        && bus != stack::RULES_EVENT_BUS
    {
        file.add(
            "$.event_bus",
            codes::INVALID_RULE,
            format!(
                "`{bus}`: every rule is on the `{}` bus (the deploy maps it to the stage's bus)",
                stack::RULES_EVENT_BUS
            ),
        );
    }
    shape::one_of(
        map,
        "state",
        "$",
        &["ENABLED", "DISABLED"],
        true,
        what,
        file,
    );
    match shape::property(map, "event_pattern", "$", true, what, file) {
        Some(pattern @ Value::Object(fields)) if !fields.is_empty() => {
            if let Err(error) = Pattern::from_value(pattern) {
                file.add(
                    "$.event_pattern",
                    codes::INVALID_EVENT_PATTERN,
                    error.to_string(),
                );
            }
        }
        Some(_) => file.add(
            "$.event_pattern",
            codes::INVALID_EVENT_PATTERN,
            "an event pattern is a non-empty JSON object",
        ),
        None => {}
    }
    match shape::property(map, "targets", "$", true, what, file) {
        Some(Value::Array(targets)) => {
            if targets.is_empty() || targets.len() > 5 {
                file.add(
                    "$.targets",
                    codes::INVALID_RULE,
                    format!(
                        "{} targets; a rule has 1-5 (an EventBridge limit)",
                        targets.len()
                    ),
                );
            }
            let mut ids = BTreeSet::new();
            for (i, target) in targets.iter().enumerate() {
                let path = index("$.targets", i);
                if let Some(target) = shape::object(target, &path, "a target", file) {
                    check_target(target, &path, &mut ids, file);
                }
            }
        }
        Some(_) => file.add("$.targets", codes::WRONG_TYPE, "`targets` must be an array"),
        None => {}
    }
    name.map(str::to_owned)
}

fn check_target(
    target: &Map<String, Value>,
    path: &str,
    ids: &mut BTreeSet<String>,
    file: &mut FileReport<'_>,
) {
    let what = "a target";
    shape::unknown_properties(target, path, &TARGET_FIELDS, what, file);
    if let Some(id) = shape::string(target, "id", path, true, what, file) {
        if !valid_name(id) {
            file.add(
                &key(path, "id"),
                codes::INVALID_RULE,
                format!("`{id}` must be 1-64 characters of A-Z a-z 0-9 . - _"),
            );
        } else if !ids.insert(id.to_owned()) {
            file.add(
                &key(path, "id"),
                codes::INVALID_RULE,
                format!("the target id `{id}` is used twice in this rule"),
            );
        }
    }
    if let Some(function) = shape::string(target, "function", path, true, what, file) {
        let functions = stack::function_names();
        if !functions.iter().any(|f| f == function) {
            file.add(
                &key(path, "function"),
                codes::INVALID_RULE,
                format!(
                    "`{function}` is not a function the stack deploys; use one of {}",
                    list(&functions)
                ),
            );
        }
    }
    if let Some(policy) = target.get("retry_policy") {
        let at = key(path, "retry_policy");
        if let Some(policy) = shape::object(policy, &at, "`retry_policy`", file) {
            shape::unknown_properties(policy, &at, &RETRY_FIELDS, "`retry_policy`", file);
            for (field, low, high) in [
                ("maximum_retry_attempts", 0, 185),
                ("maximum_event_age_seconds", 60, 86_400),
            ] {
                let Some(value) = shape::property(policy, field, &at, true, "`retry_policy`", file)
                else {
                    continue;
                };
                let here = key(&at, field);
                if let Some(n) = shape::integer(value, &here, field, file)
                    && (n < low || n > high)
                {
                    file.add(
                        &here,
                        codes::INVALID_RULE,
                        format!("{field} {n} is outside {low}-{high} (an EventBridge limit)"),
                    );
                }
            }
        }
    }
    if let Some(queue) = shape::string(target, "dead_letter_queue", path, false, what, file)
        && queue != stack::RULES_DEAD_LETTER_QUEUE
    {
        file.add(
            &key(path, "dead_letter_queue"),
            codes::INVALID_RULE,
            format!(
                "`{queue}`: the only target dead-letter queue the stack creates is `{}`",
                stack::RULES_DEAD_LETTER_QUEUE
            ),
        );
    }
}
