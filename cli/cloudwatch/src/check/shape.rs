//! Small helpers for checking the shape of JSON objects: required and unknown properties,
//! types, enumerations. Each reports what it finds and returns the value when it is usable.

use serde_json::{Map, Value};

use super::codes;
use super::report::{FileReport, key, list, type_name};
use super::vocabulary::closest;

/// `value` as an object, or a `wrong_type` finding.
pub(crate) fn object<'v>(
    value: &'v Value,
    path: &str,
    what: &str,
    file: &mut FileReport<'_>,
) -> Option<&'v Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        other => {
            file.add(
                path,
                codes::WRONG_TYPE,
                format!("{what} must be an object, not {}", type_name(other)),
            );
            None
        }
    }
}

/// Reports every property of `map` not in `known`, with a suggestion for typos.
pub(crate) fn unknown_properties(
    map: &Map<String, Value>,
    path: &str,
    known: &[&str],
    what: &str,
    file: &mut FileReport<'_>,
) {
    for name in map.keys() {
        if !known.contains(&name.as_str()) {
            let hint = closest(name, known.iter().copied())
                .map(|k| format!("did you mean `{k}`? "))
                .unwrap_or_default();
            file.add(
                &key(path, name),
                codes::UNKNOWN_PROPERTY,
                format!(
                    "{what} has no property `{name}` ({hint}known: {})",
                    list(known)
                ),
            );
        }
    }
}

/// The property `name`; a `missing_property` finding when it is required and absent.
pub(crate) fn property<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &str,
    required: bool,
    what: &str,
    file: &mut FileReport<'_>,
) -> Option<&'v Value> {
    let value = map.get(name);
    if value.is_none() && required {
        file.add(
            path,
            codes::MISSING_PROPERTY,
            format!("{what} needs the property `{name}`"),
        );
    }
    value
}

/// A string property (`wrong_type` when it is something else).
pub(crate) fn string<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &str,
    required: bool,
    what: &str,
    file: &mut FileReport<'_>,
) -> Option<&'v str> {
    let value = property(map, name, path, required, what, file)?;
    match value {
        Value::String(s) => Some(s),
        other => {
            file.add(
                &key(path, name),
                codes::WRONG_TYPE,
                format!("`{name}` must be a string, not {}", type_name(other)),
            );
            None
        }
    }
}

/// A non-empty string property.
pub(crate) fn non_empty<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &str,
    required: bool,
    what: &str,
    file: &mut FileReport<'_>,
) -> Option<&'v str> {
    let value = string(map, name, path, required, what, file)?;
    if value.trim().is_empty() {
        file.add(
            &key(path, name),
            codes::INVALID_VALUE,
            format!("`{name}` must not be empty"),
        );
        return None;
    }
    Some(value)
}

/// An optional boolean property.
pub(crate) fn boolean(
    map: &Map<String, Value>,
    name: &str,
    path: &str,
    file: &mut FileReport<'_>,
) -> Option<bool> {
    match map.get(name)? {
        Value::Bool(b) => Some(*b),
        other => {
            file.add(
                &key(path, name),
                codes::WRONG_TYPE,
                format!("`{name}` must be true or false, not {}", type_name(other)),
            );
            None
        }
    }
}

/// An optional number property.
pub(crate) fn number(
    map: &Map<String, Value>,
    name: &str,
    path: &str,
    file: &mut FileReport<'_>,
) -> Option<f64> {
    match map.get(name)? {
        Value::Number(n) => n.as_f64(),
        other => {
            file.add(
                &key(path, name),
                codes::WRONG_TYPE,
                format!("`{name}` must be a number, not {}", type_name(other)),
            );
            None
        }
    }
}

/// A non-negative integer (not a boolean, not a fraction), or `None` with a `wrong_type`
/// finding at `path`.
pub(crate) fn integer(
    value: &Value,
    path: &str,
    name: &str,
    file: &mut FileReport<'_>,
) -> Option<u64> {
    match value {
        Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f >= 0.0 && f.fract() == 0.0 && f < 1e15) =>
        {
            n.as_f64().map(|f| f as u64)
        }
        other => {
            file.add(
                path,
                codes::WRONG_TYPE,
                format!("`{name}` must be a non-negative whole number, not {other}"),
            );
            None
        }
    }
}

/// A string property that must be one of `allowed`.
pub(crate) fn one_of<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &str,
    allowed: &[&str],
    required: bool,
    what: &str,
    file: &mut FileReport<'_>,
) -> Option<&'v str> {
    let value = string(map, name, path, required, what, file)?;
    if allowed.contains(&value) {
        Some(value)
    } else {
        let hint = closest(value, allowed.iter().copied())
            .map(|k| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        file.add(
            &key(path, name),
            codes::INVALID_VALUE,
            format!(
                "`{name}` is `{value}`{hint}; it must be one of {}",
                list(allowed)
            ),
        );
        None
    }
}

/// An optional array property (`wrong_type` when it is something else).
pub(crate) fn array<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &str,
    file: &mut FileReport<'_>,
) -> Option<&'v Vec<Value>> {
    match map.get(name)? {
        Value::Array(items) => Some(items),
        other => {
            file.add(
                &key(path, name),
                codes::WRONG_TYPE,
                format!("`{name}` must be an array, not {}", type_name(other)),
            );
            None
        }
    }
}
