//! The checker behind `payhook check`: the observability files kept as code (`dashboards/`,
//! `alarms/`, `rules/`, `runbooks/`) are checked before anything is deployed, so a dashboard that
//! would silently show nothing or an alarm without a runbook is a failing check, not a surprise
//! during an incident.
//! The command (in the `payhook` CLI) parses its arguments, builds the [`Context`] from the
//! crates this one does not depend on, calls [`check_root`] and prints [`render_text`] or
//! [`render_json`]: exit 0 when there is nothing to report, 1 when there are findings, 2 on a
//! [`CheckError`].
//!
//! Every problem is a [`Finding`]: the file (relative to `--root`), the JSON path inside it
//! (`$.widgets[3].properties.metrics[0]`), a stable [`codes`] value and a message that says
//! what is wrong and what is accepted. What is checked:
//!
//! - **Every file parses**: `*.json` in `dashboards/`, `alarms/` and `rules/` is JSON without
//!   repeated keys; anything else there (apart from `README.md`) is reported, because Pulumi
//!   would silently ignore it.
//! - **Dashboards** follow CloudWatch's dashboard body structure (`../shared/conformance/
//!   cloudwatch/NOTES.md`): widget types and their required properties, the 24-column grid,
//!   metric arrays (namespace, name, dimension pairs, the `"."` shorthand, a trailing options
//!   object), ids, metric math (syntax, known functions, referenced ids, no cycles),
//!   `SEARCH(…)`, statistics, periods, colours, annotations, log and alarm widgets.
//! - **Alarms** follow `alarms/README.md`: fields, scope, severity, comparison, statistics,
//!   periods, units, evaluation periods against datapoints and the period limit, missing-data
//!   treatment, metric math queries (exactly one returned, no `SEARCH`).
//! - **Rules** load with [`payhook_pattern::load_rules`] (pattern validity and the rule
//!   format) and satisfy what the Pulumi program additionally requires.
//! - **Cross-checks**: every alarm has its runbook and every runbook an alarm; every custom
//!   metric (namespace `Payhook`) and dimension set on a dashboard or alarm is in the telemetry
//!   catalogue (`telemetry/src/catalogue.rs`, passed in as a [`Catalogue`]), with `service` and
//!   `provider` values that really emit it; every catalogue metric is on a dashboard; every
//!   placeholder is one the Pulumi program fills ([`stack`]), with a suggestion when it looks
//!   misspelled; AWS resource dimensions use the placeholder of their resource; links into the
//!   repository resolve; runbooks name widgets that exist and keep their sections in order; the
//!   alarm status widget can hold every alarm the stack creates.
//!
//! The vocabularies Pulumi enforces (placeholders, alarm scopes, widget types, severities,
//! comparisons, missing-data values) live in [`stack`]; the placeholders are read from
//! `placeholders.json`, which `infra/payhook_infra/definitions.py` reads too, and
//! `cli/tests/check_drift.rs` compares the rest with the Python definitions so the two cannot
//! drift apart.
//!
//! Written by hand, and why: AWS publishes no JSON Schema for `DashboardBody` (the notes above),
//! and no crate parses CloudWatch metric math, so the structure rules live here and expressions
//! are read with this crate's [`crate::math`] parser, the one the dashboard preview evaluates
//! with; JSON is read with `serde_json` through a visitor that also records repeated keys, which
//! `serde_json::Value` would drop silently.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod alarms;
mod dashboards;
pub mod expression;
mod json;
mod metrics;
mod placeholders;
mod report;
mod rules;
mod runbooks;
mod shape;
pub mod stack;
mod vocabulary;

pub use metrics::{Catalogue, CatalogueMetric, NAMESPACE};
use report::Report;

/// The folders `payhook check` reads, relative to the root.
pub const FOLDERS: [&str; 4] = ["dashboards", "alarms", "rules", "runbooks"];

/// Loads the currency rates file's JSON as the validator does (`Rates::from_json` of the domain
/// crate); the error is the loader's message.
pub type RatesLoader<'a> = &'a dyn Fn(&str) -> Result<(), String>;

/// What the checks take from the code rather than the checked files, from crates this one does
/// not depend on: the telemetry catalogue and the currency rates loader.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The telemetry catalogue.
    pub catalogue: &'a Catalogue,
    /// The currency rates loader.
    pub rates: RatesLoader<'a>,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("catalogue", &self.catalogue)
            .finish_non_exhaustive()
    }
}

/// Why the checker could not run at all (as opposed to findings about the files).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The root is not a directory.
    #[error(
        "--root {}: not a directory (it should hold dashboards/, alarms/, rules/ and runbooks/)",
        .0.display()
    )]
    NotADirectory(PathBuf),
}

impl CheckError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CheckError::NotADirectory(_) => "not_a_directory",
        }
    }
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file, relative to the checked root (`dashboards/payments.json`); a folder for
    /// findings about a whole folder.
    pub file: PathBuf,
    /// Where in the file: a JSON path such as `$.widgets[3].properties.metrics[0]`, or `$` for
    /// the whole file (Markdown files always use `$` and give the line in the message).
    pub json_path: String,
    /// A stable machine-readable code, one of [`codes`].
    pub code: &'static str,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {} [{}]",
            display_path(&self.file),
            self.json_path,
            self.message,
            self.code
        )
    }
}

/// How many files of each kind were checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Dashboard bodies in `dashboards/`.
    pub dashboards: usize,
    /// Alarm kinds in `alarms/`.
    pub alarms: usize,
    /// Rules in `rules/`.
    pub rules: usize,
    /// Runbooks in `runbooks/` (without the README).
    pub runbooks: usize,
}

/// The stable codes of [`Finding::code`].
pub mod codes {
    /// A `.json` file is not valid JSON.
    pub const INVALID_JSON: &str = "invalid_json";
    /// An object repeats a key (JSON parsers silently keep only one of them).
    pub const DUPLICATE_KEY: &str = "duplicate_key";
    /// A file or folder the deploy would ignore, or could not be read.
    pub const UNEXPECTED_FILE: &str = "unexpected_file";
    /// The currency rates file does not load (codes, exponents, rates).
    pub const INVALID_RATES: &str = "invalid_rates";
    /// A required folder or file is missing.
    pub const MISSING_FILE: &str = "missing_file";
    /// A value has the wrong JSON type.
    pub const WRONG_TYPE: &str = "wrong_type";
    /// A required property is absent.
    pub const MISSING_PROPERTY: &str = "missing_property";
    /// A property that the format does not have (often a typo).
    pub const UNKNOWN_PROPERTY: &str = "unknown_property";
    /// A value outside its allowed set or range.
    pub const INVALID_VALUE: &str = "invalid_value";
    /// A widget type CloudWatch (or the deploy) does not accept.
    pub const INVALID_WIDGET_TYPE: &str = "invalid_widget_type";
    /// A widget position or size outside the 24-column grid.
    pub const INVALID_LAYOUT: &str = "invalid_layout";
    /// A malformed entry of a widget's `metrics` array.
    pub const INVALID_METRIC_ARRAY: &str = "invalid_metric_array";
    /// A metric or expression id that does not start with a lower-case letter.
    pub const INVALID_METRIC_ID: &str = "invalid_metric_id";
    /// The same id twice in one widget or alarm.
    pub const DUPLICATE_METRIC_ID: &str = "duplicate_metric_id";
    /// A math expression refers to an id that no metric or expression has.
    pub const UNKNOWN_METRIC_ID: &str = "unknown_metric_id";
    /// A math or search expression that CloudWatch would reject.
    pub const INVALID_EXPRESSION: &str = "invalid_expression";
    /// A statistic name CloudWatch (or the deploy) does not accept.
    pub const INVALID_STAT: &str = "invalid_stat";
    /// A period CloudWatch does not accept, or finer than the metric is stored.
    pub const INVALID_PERIOD: &str = "invalid_period";
    /// A unit that is not a CloudWatch unit.
    pub const INVALID_UNIT: &str = "invalid_unit";
    /// A colour that is not a six-digit hex colour.
    pub const INVALID_COLOR: &str = "invalid_color";
    /// An annotation CloudWatch would reject.
    pub const INVALID_ANNOTATION: &str = "invalid_annotation";
    /// Evaluation periods, datapoints to alarm and period do not fit together.
    pub const INVALID_EVALUATION: &str = "invalid_evaluation";
    /// The alarm status widget would get more alarms than it can show.
    pub const TOO_MANY_ALARMS: &str = "too_many_alarms";
    /// A `Payhook` metric that is not in the telemetry catalogue.
    pub const UNKNOWN_METRIC: &str = "unknown_metric";
    /// A `Payhook` metric used with a dimension set it is not emitted with.
    pub const WRONG_DIMENSIONS: &str = "wrong_dimensions";
    /// A dimension value that no emitted metric or deployed resource has.
    pub const WRONG_DIMENSION_VALUE: &str = "wrong_dimension_value";
    /// An alarm selects a unit the metric is not emitted in.
    pub const WRONG_UNIT: &str = "wrong_unit";
    /// A catalogue metric (and dimension set) that no dashboard shows.
    pub const METRIC_NOT_ON_DASHBOARD: &str = "metric_not_on_dashboard";
    /// A `${…}` placeholder that the Pulumi program does not fill.
    pub const UNKNOWN_PLACEHOLDER: &str = "unknown_placeholder";
    /// A `${…}` that does not follow the placeholder syntax.
    pub const MALFORMED_PLACEHOLDER: &str = "malformed_placeholder";
    /// A placeholder where it is not filled (a list placeholder inside text, a key, a field
    /// that is not templated).
    pub const MISPLACED_PLACEHOLDER: &str = "misplaced_placeholder";
    /// An alarm placeholder that its scope does not provide.
    pub const PLACEHOLDER_NOT_IN_SCOPE: &str = "placeholder_not_in_scope";
    /// An alarm whose runbook does not exist.
    pub const MISSING_RUNBOOK: &str = "missing_runbook";
    /// A runbook that no alarm links to.
    pub const ORPHAN_RUNBOOK: &str = "orphan_runbook";
    /// A link to a file of the repository that does not exist.
    pub const BROKEN_LINK: &str = "broken_link";
    /// A runbook without the required sections in the required order.
    pub const RUNBOOK_SECTIONS: &str = "runbook_sections";
    /// A runbook names a dashboard widget that no dashboard has.
    pub const UNKNOWN_WIDGET: &str = "unknown_widget";
    /// A rule file breaks the rule format or what the deploy requires.
    pub const INVALID_RULE: &str = "invalid_rule";
    /// A rule's event pattern is one EventBridge would reject.
    pub const INVALID_EVENT_PATTERN: &str = "invalid_event_pattern";
}

/// Checks the tree under `root` and returns every finding, sorted by file (in discovery order
/// within a file). An empty vector means the files are ready to deploy.
pub fn check_tree(root: &Path, context: Context<'_>) -> Vec<Finding> {
    check_tree_counted(root, context).0
}

/// [`check_tree`] plus how many files of each kind were checked.
pub fn check_tree_counted(root: &Path, context: Context<'_>) -> (Vec<Finding>, Checked) {
    let mut report = Report::default();
    let mut checked = Checked::default();
    let catalogue = context.catalogue;

    let rules = rules::check(root, context.rates, &mut report);
    checked.rules = rules.names.len();
    let alarms = alarms::check(catalogue, root, &rules, &mut report);
    checked.alarms = alarms.files;
    let dashboards = dashboards::check(catalogue, root, &alarms, &mut report);
    checked.dashboards = dashboards.files;
    checked.runbooks = runbooks::check(root, &alarms, &dashboards, &mut report);
    metrics::check_coverage(catalogue, root, &dashboards, &mut report);

    (report.into_sorted(), checked)
}

/// [`check_tree_counted`] for a root that must be a directory (what `payhook check` runs).
pub fn check_root(
    root: &Path,
    context: Context<'_>,
) -> Result<(Vec<Finding>, Checked), CheckError> {
    if !root.is_dir() {
        return Err(CheckError::NotADirectory(root.to_path_buf()));
    }
    Ok(check_tree_counted(root, context))
}

/// The text report: one line per finding, then a summary line.
pub fn render_text(findings: &[Finding], checked: &Checked) -> String {
    let mut out = String::new();
    for finding in findings {
        out.push_str(&finding.to_string());
        out.push('\n');
    }
    let files = findings
        .iter()
        .map(|f| &f.file)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let scope = format!(
        "{} dashboard(s), {} alarm kind(s), {} rule(s), {} runbook(s)",
        checked.dashboards, checked.alarms, checked.rules, checked.runbooks
    );
    if findings.is_empty() {
        out.push_str(&format!("payhook check: ok ({scope})\n"));
    } else {
        out.push_str(&format!(
            "payhook check: {} finding(s) in {files} file(s) ({scope} checked)\n",
            findings.len()
        ));
    }
    out
}

/// The JSON report: `{"ok": bool, "checked": {…}, "findings": [{file, json_path, code,
/// message}]}`.
pub fn render_json(findings: &[Finding], checked: &Checked) -> Value {
    let mut by_code: BTreeMap<&str, usize> = BTreeMap::new();
    for finding in findings {
        *by_code.entry(finding.code).or_default() += 1;
    }
    json!({
        "ok": findings.is_empty(),
        "checked": {
            "dashboards": checked.dashboards,
            "alarms": checked.alarms,
            "rules": checked.rules,
            "runbooks": checked.runbooks,
        },
        "counts": by_code,
        "findings": findings
            .iter()
            .map(|f| json!({
                "file": display_path(&f.file),
                "json_path": f.json_path,
                "code": f.code,
                "message": f.message,
            }))
            .collect::<Vec<_>>(),
    })
}

/// A relative path with `/` separators, as written in the repository's docs.
fn display_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}
