//! `${name}` placeholders: the syntax of `infra/payhook_infra/placeholders.py` (a lower-case
//! name, optionally `group.key`), and the checks that every one is filled by the deploy.

use serde_json::Value;

use super::codes;
use super::report::{FileReport, index, key};
use super::stack;

/// One `${…}` in a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// A well-formed placeholder; the name without `${` and `}`.
    Name(&'a str),
    /// Text starting with `${` that is not a placeholder (`${Region}`, `${queue_name`).
    Malformed(&'a str),
}

/// Every `${…}` in `text`, in order.
pub(crate) fn scan(text: &str) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(offset) = text[rest..].find("${") {
        let start = rest + offset;
        let end = text[start..]
            .find('}')
            .map_or(text.len(), |i| start + i + 1);
        let candidate = &text[start..end];
        match candidate
            .strip_prefix("${")
            .and_then(|c| c.strip_suffix('}'))
            .filter(|name| valid_name(name))
        {
            Some(name) => found.push(Found::Name(name)),
            None => found.push(Found::Malformed(candidate)),
        }
        rest = end;
    }
    found
}

/// `[a-z][a-z0-9_]*` optionally followed by `.` and `[a-z0-9][a-z0-9_-]*`.
fn valid_name(name: &str) -> bool {
    let (head, tail) = match name.split_once('.') {
        Some((head, tail)) => (head, Some(tail)),
        None => (name, None),
    };
    let head_ok = head.starts_with(|c: char| c.is_ascii_lowercase())
        && head
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let tail_ok = tail.is_none_or(|t| {
        t.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    });
    head_ok && tail_ok
}

/// The placeholder name when `text` is exactly one placeholder (`"${queue.stripe}"`).
pub(crate) fn whole(text: &str) -> Option<&str> {
    match scan(text).as_slice() {
        [Found::Name(name)] if text.len() == name.len() + 3 => Some(name),
        _ => None,
    }
}

/// Whether `text` holds any `${`.
pub(crate) fn has_any(text: &str) -> bool {
    text.contains("${")
}

/// ` (did you mean ${x}?)` when a known name is close to `name`.
pub(crate) fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a String>) -> String {
    super::vocabulary::closest(name, known.into_iter().map(String::as_str))
        .map(|k| format!(" (did you mean `${{{k}}}`?)"))
        .unwrap_or_default()
}

/// Calls `visit(path, text, is_array_element)` for every string value under `value`.
pub(crate) fn walk_strings(value: &Value, path: &str, visit: &mut dyn FnMut(&str, &str, bool)) {
    walk(value, path, false, visit);
}

fn walk(value: &Value, path: &str, in_array: bool, visit: &mut dyn FnMut(&str, &str, bool)) {
    match value {
        Value::String(text) => visit(path, text, in_array),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &index(path, i), true, visit);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                walk(item, &key(path, name), false, visit);
            }
        }
        _ => {}
    }
}

/// Calls `visit(path_of_key, key)` for every object key under `value`.
fn walk_keys(value: &Value, path: &str, visit: &mut dyn FnMut(&str, &str)) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_keys(item, &index(path, i), visit);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                let here = key(path, name);
                visit(&here, name);
                walk_keys(item, &here, visit);
            }
        }
        _ => {}
    }
}

/// Placeholders in a dashboard body: well formed, filled by the deploy, list placeholders only
/// as whole array elements, none in keys (keys are never filled).
pub(crate) fn check_dashboard(body: &Value, file: &mut FileReport<'_>) {
    let strings = stack::dashboard_placeholders();
    let lists = stack::dashboard_list_placeholders();
    let known: Vec<&String> = strings.iter().chain(lists.iter()).collect();
    walk_strings(body, "$", &mut |path, text, in_array| {
        for found in scan(text) {
            match found {
                Found::Malformed(raw) => file.add(
                    path,
                    codes::MALFORMED_PLACEHOLDER,
                    format!(
                        "`{raw}` is not a placeholder: write `${{name}}` or `${{group.key}}` in \
                         lower case (see dashboards/README.md)"
                    ),
                ),
                Found::Name(name) if lists.iter().any(|l| l == name) => {
                    if !(in_array && whole(text) == Some(name)) {
                        file.add(
                            path,
                            codes::MISPLACED_PLACEHOLDER,
                            format!(
                                "the list placeholder `${{{name}}}` must be a whole array element \
                                 on its own, e.g. `\"alarms\": [\"${{{name}}}\"]`"
                            ),
                        );
                    }
                }
                Found::Name(name) if strings.contains(name) => {}
                Found::Name(name) => file.add(
                    path,
                    codes::UNKNOWN_PLACEHOLDER,
                    format!(
                        "`${{{name}}}` is not a placeholder the deploy fills{}; the filled ones \
                         are listed in dashboards/README.md",
                        did_you_mean(name, known.iter().copied())
                    ),
                ),
            }
        }
    });
    check_keys(body, file);
}

/// No placeholder in object keys: the deploy fills values only.
fn check_keys(value: &Value, file: &mut FileReport<'_>) {
    walk_keys(value, "$", &mut |path, name| {
        if has_any(name) {
            file.add(
                path,
                codes::MISPLACED_PLACEHOLDER,
                format!("`{name}`: placeholders are filled in values only, never in keys"),
            );
        }
    });
}

/// Placeholders in an alarm file: only in `summary`, `metric` and `metrics`, each provided by
/// the alarm's scope (`scope` is `None` when the scope itself is invalid: then only the
/// syntax and the global set are checked).
pub(crate) fn check_alarm(
    alarm: &serde_json::Map<String, Value>,
    scope: Option<&str>,
    file: &mut FileReport<'_>,
) {
    let everything = stack::all_alarm_placeholders();
    let allowed = scope.and_then(stack::alarm_placeholders);
    for (field, value) in alarm {
        let path = key("$", field);
        if field == "$comment" {
            continue;
        }
        let templated = matches!(field.as_str(), "summary" | "metric" | "metrics");
        walk_strings(value, &path, &mut |path, text, _| {
            for found in scan(text) {
                match found {
                    _ if !templated => file.add(
                        path,
                        codes::MISPLACED_PLACEHOLDER,
                        format!(
                            "placeholders are filled only in `summary`, `metric` and `metrics`; \
                             `{field}` would keep `{text}` as written"
                        ),
                    ),
                    Found::Malformed(raw) => file.add(
                        path,
                        codes::MALFORMED_PLACEHOLDER,
                        format!(
                            "`{raw}` is not a placeholder: write `${{name}}` in lower case (see \
                             alarms/README.md)"
                        ),
                    ),
                    Found::Name(name) if !everything.contains(name) => file.add(
                        path,
                        codes::UNKNOWN_PLACEHOLDER,
                        format!(
                            "`${{{name}}}` is not a placeholder the deploy fills{}; see the \
                             scope table in alarms/README.md",
                            did_you_mean(name, &everything)
                        ),
                    ),
                    Found::Name(name) => {
                        if let (Some(allowed), Some(scope)) = (&allowed, scope)
                            && !allowed.contains(name)
                        {
                            file.add(
                                path,
                                codes::PLACEHOLDER_NOT_IN_SCOPE,
                                format!(
                                    "`${{{name}}}` is not provided for scope `{scope}`; \
                                     available: {}",
                                    super::report::list(
                                        allowed.iter().map(|a| format!("${{{a}}}"))
                                    )
                                ),
                            );
                        }
                    }
                }
            }
        });
    }
    check_keys(&Value::Object(alarm.clone()), file);
}

#[cfg(test)]
mod tests {
    use super::{Found, scan, whole};

    #[test]
    fn scanning_follows_the_python_syntax() {
        assert_eq!(
            scan("a ${region}/${queue.stripe} ${function.webhook-validator}"),
            vec![
                Found::Name("region"),
                Found::Name("queue.stripe"),
                Found::Name("function.webhook-validator")
            ]
        );
        assert_eq!(scan("${Region}"), vec![Found::Malformed("${Region}")]);
        assert_eq!(
            scan("x ${queue_name"),
            vec![Found::Malformed("${queue_name")]
        );
        assert_eq!(scan("${a.b.c}"), vec![Found::Malformed("${a.b.c}")]);
        assert_eq!(scan("$ {region} $region"), vec![]);
    }

    #[test]
    fn whole_is_one_placeholder_and_nothing_else() {
        assert_eq!(whole("${alarm_arns}"), Some("alarm_arns"));
        assert_eq!(whole("x${alarm_arns}"), None);
        assert_eq!(whole("${a}${b}"), None);
    }
}
