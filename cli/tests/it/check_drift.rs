//! `payhook check` passes on the repository's own dashboards, alarms, rules and runbooks, and
//! catches each kind of drift seeded into a copy of them, with the exact file, JSON path and
//! code. Its vocabularies (placeholders, alarm scopes, enums) agree with the Pulumi program's.
//!
//! Each drift test copies `dashboards/`, `alarms/`, `rules/` and `runbooks/` into its own
//! folder under `CARGO_TARGET_TMPDIR`, seeds one change and asserts the complete list of
//! findings, so a check that reports too much fails as surely as one that reports nothing.

use crate::support::payhook;
use std::path::{Path, PathBuf};
use std::process::Command;

use payhook::CliError;
use payhook::commands::check::{CheckArgs, Format, check_tree, check_tree_counted, run};
use payhook_cloudwatch::check::{FOLDERS, NAMESPACE, render_json, render_text, stack};
use payhook_testkit::conformance::workspace_root;
use serde_json::{Value, json};

/// A copy of the checked folders that a test may change.
struct Tree {
    root: PathBuf,
}

impl Tree {
    /// Copies the repository's folders into `CARGO_TARGET_TMPDIR/check_drift/<name>`.
    fn copy(name: &str) -> Tree {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("check_drift")
            .join(name);
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap();
        }
        for folder in FOLDERS {
            let from = workspace_root().join(folder);
            let to = root.join(folder);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(&from).unwrap() {
                let entry = entry.unwrap();
                if entry.path().is_file() {
                    std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        }
        Tree { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn json(&self, rel: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.path(rel)).unwrap()).unwrap()
    }

    fn edit_json(&self, rel: &str, edit: impl FnOnce(&mut Value)) {
        let mut value = self.json(rel);
        edit(&mut value);
        self.write(rel, &serde_json::to_string_pretty(&value).unwrap());
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    fn replace(&self, rel: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(rel)).unwrap();
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path(rel)).unwrap();
    }

    /// Asserts the findings are exactly `expected` (file, JSON path, code), in any order;
    /// returns the messages for further checks.
    fn assert_findings(&self, expected: &[(&str, &str, &str)]) -> Vec<String> {
        let findings = check_tree(&self.root);
        let mut got: Vec<(String, String, String)> = findings
            .iter()
            .map(|f| {
                (
                    f.file.to_string_lossy().replace('\\', "/"),
                    f.json_path.clone(),
                    f.code.to_owned(),
                )
            })
            .collect();
        let mut want: Vec<(String, String, String)> = expected
            .iter()
            .map(|(f, p, c)| ((*f).to_owned(), (*p).to_owned(), (*c).to_owned()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(
            got,
            want,
            "findings:\n{}",
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        findings.into_iter().map(|f| f.message).collect()
    }
}

const DASHBOARD: &str = "dashboards/payments.json";

/// The index of the dashboard widget with this title.
fn widget(tree: &Tree, title: &str) -> usize {
    tree.json(DASHBOARD)["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .position(|w| w["properties"]["title"] == title)
        .unwrap_or_else(|| panic!("no widget titled {title:?}"))
}

#[test]
fn the_repository_passes_payhook_check() {
    let findings = check_tree(&workspace_root());
    assert!(
        findings.is_empty(),
        "payhook check found problems in the repository:\n{}",
        findings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn payhook_check_binary_exits_0_on_the_repository() {
    let out = payhook()
        .args(["check", "--root"])
        .arg(workspace_root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("payhook check: ok"), "{stdout}");
}

#[test]
fn payhook_check_binary_reports_drift_as_json_and_exits_1() {
    let tree = Tree::copy("binary_json");
    let i = widget(&tree, "Webhooks received and accepted per provider");
    tree.edit_json(DASHBOARD, |d| d["widgets"][i]["width"] = json!(30));
    let out = payhook()
        .args(["check", "--format", "json", "--root"])
        .arg(&tree.root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert_eq!(codes, ["invalid_layout"], "{report}");
    assert_eq!(report["findings"][0]["file"], DASHBOARD);
    assert_eq!(
        report["findings"][0]["json_path"],
        format!("$.widgets[{i}].width")
    );
}

#[test]
fn text_and_json_reports_name_file_path_and_code_of_each_finding() {
    let tree = Tree::copy("reports");
    tree.edit_json(DASHBOARD, |d| d["widgets"][3]["width"] = json!(30));
    let (findings, checked) = check_tree_counted(&tree.root);
    assert_eq!(checked.dashboards, 1);
    assert!(
        checked.alarms >= 9 && checked.rules >= 5 && checked.runbooks >= 9,
        "{checked:?}"
    );

    let text = render_text(&findings, &checked);
    assert!(
        text.starts_with("dashboards/payments.json: $.widgets[3].width: width 30 is outside 1-24"),
        "{text}"
    );
    assert!(text.contains("[invalid_layout]"), "{text}");
    assert!(text.trim_end().ends_with("checked)"), "{text}");

    let report = render_json(&findings, &checked);
    assert_eq!(report["ok"], false);
    assert_eq!(report["counts"]["invalid_layout"], 1);
    assert_eq!(
        report["findings"][0],
        json!({
            "file": DASHBOARD,
            "json_path": "$.widgets[3].width",
            "code": "invalid_layout",
            "message": findings[0].message,
        })
    );
    let clean = render_text(&[], &checked);
    assert!(clean.starts_with("payhook check: ok ("), "{clean}");
}

#[test]
fn a_root_that_is_not_a_directory_is_a_usage_error() {
    let args = CheckArgs {
        root: Path::new(env!("CARGO_TARGET_TMPDIR")).join("check_drift/no such folder"),
        format: Format::Text,
    };
    assert!(matches!(run(args), Err(CliError::Usage(_))));
}

#[test]
fn a_renamed_metric_on_the_dashboard_is_not_in_the_catalogue() {
    let tree = Tree::copy("renamed_metric");
    let i = widget(&tree, "Webhooks received and accepted per provider");
    tree.edit_json(DASHBOARD, |d| {
        d["widgets"][i]["properties"]["metrics"][0][1] = json!("WebhookReceived");
    });
    let messages = tree.assert_findings(&[(
        DASHBOARD,
        &format!("$.widgets[{i}].properties.metrics[0]"),
        "unknown_metric",
    )]);
    assert!(
        messages[0].contains("did you mean `WebhooksReceived`"),
        "{messages:?}"
    );
}

#[test]
fn a_metric_filtered_on_a_service_that_never_emits_it_is_reported() {
    let tree = Tree::copy("wrong_service");
    let i = widget(&tree, "Webhooks received and accepted per provider");
    tree.edit_json(DASHBOARD, |d| {
        d["widgets"][i]["properties"]["metrics"][0][3] = json!("event-processor");
    });
    tree.assert_findings(&[(
        DASHBOARD,
        &format!("$.widgets[{i}].properties.metrics[0]"),
        "wrong_dimension_value",
    )]);
}

#[test]
fn a_search_with_a_wrong_dimension_set_selects_nothing() {
    let tree = Tree::copy("search_dimensions");
    let i = widget(&tree, "Webhooks rejected by reason");
    tree.replace(
        DASHBOARD,
        "{Payhook,service,provider,reason}",
        "{Payhook,service,reason}",
    );
    // The only widget with WebhooksRejected now draws nothing, so it is also off the dashboard.
    tree.assert_findings(&[
        (
            DASHBOARD,
            &format!("$.widgets[{i}].properties.metrics[0][0].expression"),
            "wrong_dimensions",
        ),
        (DASHBOARD, "$.widgets", "metric_not_on_dashboard"),
    ]);
}

#[test]
fn an_alarm_with_the_wrong_dimension_set_is_reported() {
    let tree = Tree::copy("alarm_dimensions");
    tree.edit_json("alarms/signature-failures.json", |a| {
        a["metric"]["dimensions"]
            .as_object_mut()
            .unwrap()
            .remove("provider");
    });
    let messages = tree.assert_findings(&[(
        "alarms/signature-failures.json",
        "$.metric.dimensions",
        "wrong_dimensions",
    )]);
    assert!(messages[0].contains("[provider, service]"), "{messages:?}");
}

#[test]
fn a_catalogue_metric_missing_from_the_dashboard_is_reported() {
    let tree = Tree::copy("metric_missing");
    let i = widget(&tree, "Duplicate events absorbed");
    tree.edit_json(DASHBOARD, |d| {
        d["widgets"].as_array_mut().unwrap().remove(i);
    });
    let messages = tree.assert_findings(&[(DASHBOARD, "$.widgets", "metric_not_on_dashboard")]);
    assert!(
        messages[0].contains("`DuplicateEventsAbsorbed`"),
        "{messages:?}"
    );
}

#[test]
fn a_misspelt_placeholder_is_unknown_and_a_fix_is_suggested() {
    let tree = Tree::copy("unknown_placeholder");
    let i = widget(&tree, "Queue depth (visible messages)");
    tree.edit_json(DASHBOARD, |d| {
        d["widgets"][i]["properties"]["metrics"][0][3] = json!("${queues.stripe}");
    });
    let messages = tree.assert_findings(&[(
        DASHBOARD,
        &format!("$.widgets[{i}].properties.metrics[0][3]"),
        "unknown_placeholder",
    )]);
    assert!(
        messages[0].contains("did you mean `${queue.stripe}`"),
        "{messages:?}"
    );
}

#[test]
fn an_alarm_placeholder_its_scope_does_not_fill_is_reported() {
    let tree = Tree::copy("placeholder_scope");
    tree.edit_json("alarms/queue-depth.json", |a| {
        a["summary"] = json!("${rule_name} has more than 1000 visible messages.");
    });
    tree.assert_findings(&[(
        "alarms/queue-depth.json",
        "$.summary",
        "placeholder_not_in_scope",
    )]);
}

#[test]
fn an_alarm_without_a_runbook_is_reported() {
    let tree = Tree::copy("alarm_without_runbook");
    let mut alarm = tree.json("alarms/queue-depth.json");
    alarm["kind"] = json!("queue-depth-critical");
    alarm["runbook"] = json!("queue-depth-critical.md");
    tree.write("alarms/queue-depth-critical.json", &alarm.to_string());
    tree.assert_findings(&[(
        "alarms/queue-depth-critical.json",
        "$.runbook",
        "missing_runbook",
    )]);
}

#[test]
fn a_runbook_without_an_alarm_is_an_orphan() {
    let tree = Tree::copy("runbook_without_alarm");
    tree.remove("alarms/queue-age.json");
    tree.assert_findings(&[("runbooks/queue-age.md", "$", "orphan_runbook")]);
}

#[test]
fn a_runbook_naming_a_widget_that_does_not_exist_is_reported() {
    let tree = Tree::copy("runbook_widget");
    tree.replace(
        "runbooks/signature-failures.md",
        "**Webhooks rejected by reason**, **Webhooks received",
        "**Webhooks rejected per reason**, **Webhooks received",
    );
    let messages =
        tree.assert_findings(&[("runbooks/signature-failures.md", "$", "unknown_widget")]);
    assert!(
        messages[0].contains("did you mean **Webhooks rejected by reason**"),
        "{messages:?}"
    );
}

#[test]
fn a_bad_statistic_on_a_dashboard_metric_is_reported() {
    let tree = Tree::copy("dashboard_stat");
    let i = widget(&tree, "Validation latency p50 / p99 (ms)");
    tree.edit_json(DASHBOARD, |d| {
        d["widgets"][i]["properties"]["metrics"][0][6]["stat"] = json!("Median");
    });
    tree.assert_findings(&[(
        DASHBOARD,
        &format!("$.widgets[{i}].properties.metrics[0][6].stat"),
        "invalid_stat",
    )]);
}

#[test]
fn a_bad_statistic_in_an_alarm_is_reported() {
    let tree = Tree::copy("alarm_stat");
    tree.edit_json("alarms/queue-depth.json", |a| {
        a["metric"]["stat"] = json!("Max")
    });
    let messages =
        tree.assert_findings(&[("alarms/queue-depth.json", "$.metric.stat", "invalid_stat")]);
    assert!(
        messages[0].contains("did you mean `Maximum`"),
        "{messages:?}"
    );
}

#[test]
fn a_bad_period_on_a_widget_is_reported() {
    let tree = Tree::copy("dashboard_period");
    let i = widget(&tree, "Webhooks received and accepted per provider");
    tree.edit_json(DASHBOARD, |d| {
        d["widgets"][i]["properties"]["period"] = json!(90)
    });
    tree.assert_findings(&[(
        DASHBOARD,
        &format!("$.widgets[{i}].properties.period"),
        "invalid_period",
    )]);
}

#[test]
fn a_period_finer_than_the_metric_is_stored_is_reported() {
    let tree = Tree::copy("period_resolution");
    let i = widget(&tree, "Validation latency p50 / p99 (ms)");
    // 10 s is a valid high-resolution period, but the catalogue stores this metric per minute.
    tree.edit_json(DASHBOARD, |d| {
        d["widgets"][i]["properties"]["metrics"][0][6]["period"] = json!(10);
    });
    let messages = tree.assert_findings(&[(
        DASHBOARD,
        &format!("$.widgets[{i}].properties.metrics[0][6].period"),
        "invalid_period",
    )]);
    assert!(messages[0].contains("60-second resolution"), "{messages:?}");
}

#[test]
fn a_bad_period_in_an_alarm_is_reported() {
    let tree = Tree::copy("alarm_period");
    tree.edit_json("alarms/lambda-error-rate.json", |a| {
        a["metrics"][0]["metric"]["period"] = json!(45)
    });
    tree.assert_findings(&[(
        "alarms/lambda-error-rate.json",
        "$.metrics[0].metric.period",
        "invalid_period",
    )]);
}

#[test]
fn an_invalid_rule_pattern_is_reported() {
    let tree = Tree::copy("rule_pattern");
    tree.edit_json("rules/high-value-payments.json", |r| {
        r["event_pattern"]["detail"]["amount"] = json!([{"numeric": [">=", "1000"]}]);
    });
    let messages = tree.assert_findings(&[(
        "rules/high-value-payments.json",
        "$.event_pattern",
        "invalid_event_pattern",
    )]);
    assert!(
        messages[0].starts_with("Event pattern is not valid"),
        "{messages:?}"
    );
}

#[test]
fn a_math_expression_referring_to_a_missing_id_is_reported() {
    let tree = Tree::copy("dashboard_math");
    let i = widget(&tree, "Error rate (%)");
    tree.edit_json(DASHBOARD, |d| {
        let expression = &mut d["widgets"][i]["properties"]["metrics"][2][0]["expression"];
        *expression = json!(expression.as_str().unwrap().replace("errors0", "error0"));
    });
    let messages = tree.assert_findings(&[(
        DASHBOARD,
        &format!("$.widgets[{i}].properties.metrics[2][0].expression"),
        "unknown_metric_id",
    )]);
    assert!(
        messages[0].contains("did you mean `errors0`"),
        "{messages:?}"
    );
}

#[test]
fn an_alarm_expression_referring_to_a_missing_id_is_reported() {
    let tree = Tree::copy("alarm_math");
    tree.edit_json("alarms/lambda-error-rate.json", |a| {
        a["metrics"][2]["expression"] = json!("100 * FILL(errors, 0) / FILL(invocation, 0)");
    });
    tree.assert_findings(&[(
        "alarms/lambda-error-rate.json",
        "$.metrics[2].expression",
        "unknown_metric_id",
    )]);
}

#[test]
fn a_widget_30_columns_wide_is_reported() {
    let tree = Tree::copy("widget_width");
    tree.edit_json(DASHBOARD, |d| d["widgets"][3]["width"] = json!(30));
    let messages = tree.assert_findings(&[(DASHBOARD, "$.widgets[3].width", "invalid_layout")]);
    assert!(messages[0].contains("1-24"), "{messages:?}");
}

#[test]
fn invalid_json_is_reported_once_at_the_file() {
    let tree = Tree::copy("invalid_json_alarm");
    let text = std::fs::read_to_string(tree.path("alarms/queue-depth.json")).unwrap();
    tree.write("alarms/queue-depth.json", &text[..text.len() / 2]);
    // Its runbook still counts as claimed: one finding, not an orphan runbook as well.
    tree.assert_findings(&[("alarms/queue-depth.json", "$", "invalid_json")]);
}

#[test]
fn an_unparsable_dashboard_is_reported_without_cascading() {
    let tree = Tree::copy("invalid_json_dashboard");
    tree.replace(DASHBOARD, "\"widgets\": [", "\"widgets\": [,");
    tree.assert_findings(&[(DASHBOARD, "$", "invalid_json")]);
}

/// The Python side's sets, printed as JSON by the deploy's own definitions.
const PYTHON_SETS: &str = r#"
import json
from payhook_infra import definitions as d, settings as s
print(json.dumps({
    "dashboard": sorted(d.dashboard_placeholders()),
    "dashboard_lists": sorted(d.DASHBOARD_LIST_PLACEHOLDERS),
    "alarm_global": sorted(d.ALARM_GLOBAL_PLACEHOLDERS),
    "alarm_scopes": {k: sorted(v) for k, v in d.ALARM_SCOPES.items()},
    "widget_types": list(d.WIDGET_TYPES),
    "severities": list(d.SEVERITIES),
    "comparisons": list(d.COMPARISONS),
    "missing_data": list(d.MISSING_DATA),
    "functions": list(s.FUNCTION_NAMES),
    "providers": list(s.PROVIDERS),
    "rules_bus": d.RULES_EVENT_BUS,
    "rules_dlq": d.RULES_DEAD_LETTER_QUEUE,
    "namespace": s.METRICS_NAMESPACE,
}))
"#;

fn sorted(items: impl IntoIterator<Item = impl ToString>) -> Vec<String> {
    let mut items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    items.sort();
    items
}

#[test]
fn placeholder_sets_and_vocabularies_agree_with_the_pulumi_program() {
    let python = workspace_root().join(".venv/bin/python");
    if !python.is_file() {
        payhook_testkit::skip::skip_test(&format!(
            "{} not found (run scripts/bootstrap-python.sh)",
            python.display()
        ));
        return;
    }
    let out = Command::new(&python)
        .args(["-c", PYTHON_SETS])
        .current_dir(workspace_root().join("infra"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Value = serde_json::from_slice(&out.stdout).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };

    assert_eq!(
        strings(&py["dashboard"]),
        sorted(stack::dashboard_placeholders())
    );
    assert_eq!(
        strings(&py["dashboard_lists"]),
        sorted(stack::dashboard_list_placeholders())
    );
    assert_eq!(
        strings(&py["alarm_global"]),
        sorted(stack::alarm_global_placeholders())
    );
    let scopes = py["alarm_scopes"].as_object().unwrap();
    assert_eq!(scopes.len(), stack::alarm_scopes().count());
    for (scope, extra) in stack::alarm_scopes() {
        assert_eq!(
            strings(&scopes[scope]),
            sorted(extra.iter()),
            "scope {scope}"
        );
    }
    assert_eq!(strings(&py["widget_types"]), stack::WIDGET_TYPES);
    assert_eq!(strings(&py["severities"]), stack::SEVERITIES);
    assert_eq!(strings(&py["comparisons"]), stack::COMPARISONS);
    assert_eq!(strings(&py["missing_data"]), stack::TREAT_MISSING_DATA);
    assert_eq!(strings(&py["functions"]), stack::function_names());
    assert_eq!(strings(&py["providers"]), stack::providers());
    assert_eq!(py["rules_bus"], stack::RULES_EVENT_BUS);
    assert_eq!(py["rules_dlq"], stack::RULES_DEAD_LETTER_QUEUE);
    assert_eq!(
        py["namespace"],
        payhook_telemetry::metrics::DEFAULT_NAMESPACE
    );
    assert_eq!(NAMESPACE, payhook_telemetry::metrics::DEFAULT_NAMESPACE);
    // The vocabulary file's providers are the domain's.
    let domain: Vec<&str> = payhook_core::Provider::ALL
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(stack::providers(), domain);
}
