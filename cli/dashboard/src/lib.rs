//! `payhook-dashboard`: draws the CloudWatch dashboards of `dashboards/` into one
//! self-contained HTML page (inline CSS and SVG, no script, nothing fetched), so a dashboard
//! change can be seen before it is deployed, and on-call can open one file when the console is
//! slow. `payhook dashboard` (`cli/src/commands/dashboard.rs`) parses its arguments, calls
//! [`preview_local`] or [`preview_aws`] and prints; `payhook demo` writes [`run_page`]'s page.
//!
//! The numbers come from one of two places:
//!
//! - **a local run** ([`preview_local`], what `payhook demo` writes): the EMF documents of
//!   `metrics.jsonl` extracted as CloudWatch would, plus local equivalents of the metrics AWS
//!   publishes itself (Lambda, API Gateway, SQS, EventBridge, DynamoDB, EMF errors), derived
//!   from the run's logs, X-Ray segments and `summary.json` (the table is in `local.rs`); log
//!   widgets run their Logs Insights query over the captured logs;
//! - **CloudWatch** ([`preview_aws`]): `GetMetricData` for a deployed stage, and the deployed
//!   alarms' states.
//!
//! Either way the placeholders are filled with that stack's names (`dashboards/README.md`), each
//! metric is aggregated per period with its statistic, metric math (`IF`, `FILL`, `METRICS()`,
//! arithmetic…) and `SEARCH` are evaluated, the thresholds of the alarms in `alarms/` are drawn
//! as lines on the widgets showing their metric, and the alarm widget shows every alarm with its
//! state computed from the same metrics. A widget without data says why ("no local data for
//! AWS/DynamoDB …"). Every widget element carries `data-widget-index`, `data-widget-type`,
//! `data-has-data`, `data-series` and `data-thresholds`. A webhook's X-Ray trace is drawn as a
//! waterfall, in text or SVG, by [`trace`].
//!
//! Written by hand (no charting or templating crate): the SVG is a few lines per chart, and the
//! page must stay one file with nothing to load.
//!
//! ```no_run
//! # fn main() -> Result<(), payhook_dashboard::DashboardError> {
//! use std::path::Path;
//! let html = payhook_dashboard::render_local(
//!     Path::new("dashboards"),
//!     Path::new("alarms"),
//!     Path::new("runs/demo-1767225600"),
//! )?;
//! std::fs::write("runs/demo-1767225600/dashboard.html", html).ok();
//! # Ok(())
//! # }
//! ```

mod alarms;
mod aws;
mod expr;
mod html;
mod local;
mod logs;
mod metrics;
mod names;
mod run_page;
pub mod trace;
mod widgets;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use payhook_aws::aws_config::SdkConfig;
use serde_json::Value;

use self::alarms::{AlarmInstance, AlarmKind, AlarmState};
use self::logs::LogRecord;
use self::metrics::{MetricSource, TimeRange};
use self::names::Names;
use self::widgets::{Inputs, WidgetOut};

pub use self::run_page::{TRACES_DIR, run_page};

/// A failure to draw the dashboards. [`DashboardError::code`] is stable; the message is for
/// people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// A dashboard, alarm or run file (or its folder) is missing or not what it should be.
    #[error("{0}")]
    Input(String),
    /// A CloudWatch call failed.
    #[error("{0}")]
    Aws(String),
    /// The page or a trace drawing could not be written.
    #[error("{0}")]
    Write(String),
}

impl DashboardError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            DashboardError::Input(_) => "dashboard.input_invalid",
            DashboardError::Aws(_) => "dashboard.aws_failed",
            DashboardError::Write(_) => "dashboard.write_failed",
        }
    }

    /// Whether the caller's input is at fault (the CLI says `usage error`), rather than
    /// something the drawing needed.
    pub fn is_usage(&self) -> bool {
        matches!(self, DashboardError::Input(_))
    }
}

/// The page's file name inside a run directory.
pub const DASHBOARD_FILE: &str = "dashboard.html";

/// The time range `--aws` shows when neither `--since-minutes` nor the dashboard's `start` says.
pub const DEFAULT_SINCE_MINUTES: u64 = 180;

/// One widget as drawn.
#[derive(Debug, Clone)]
pub struct WidgetSummary {
    /// The dashboard (file name without `.json`).
    pub dashboard: String,
    /// Position in the dashboard's `widgets`.
    pub index: usize,
    /// `metric`, `text`, `log`, `alarm`, …
    pub kind: String,
    /// The widget's title.
    pub title: String,
    /// Whether it drew data.
    pub has_data: bool,
    /// Series with data (metric widgets) or rows (log and alarm widgets).
    pub series: usize,
    /// Threshold lines drawn.
    pub thresholds: usize,
    /// Why some or all of it has no data.
    pub notes: Vec<String>,
}

impl WidgetSummary {
    /// What a widget without data says: its title (else its kind) and why (`title — note`).
    pub fn no_data(&self) -> String {
        format!(
            "{} — {}",
            if self.title.is_empty() {
                &self.kind
            } else {
                &self.title
            },
            self.notes
                .first()
                .map(String::as_str)
                .unwrap_or("nothing to show")
        )
    }
}

/// A rendered page and what it shows.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The HTML page.
    pub html: String,
    /// Every widget of every dashboard, in order.
    pub widgets: Vec<WidgetSummary>,
    /// Problems reading the inputs (also listed on the page).
    pub warnings: Vec<String>,
}

impl Preview {
    /// Metric, log and alarm widgets (text widgets carry no data).
    pub fn data_widgets(&self) -> impl Iterator<Item = &WidgetSummary> {
        self.widgets.iter().filter(|w| w.kind != "text")
    }

    /// How many metric, log and alarm widgets drew data.
    pub fn with_data(&self) -> usize {
        self.data_widgets().filter(|w| w.has_data).count()
    }

    /// How many metric, log and alarm widgets there are.
    pub fn total(&self) -> usize {
        self.data_widgets().count()
    }
}

struct Dashboard {
    stem: String,
    body: Value,
}

fn load_dashboards(dir: &Path) -> Result<Vec<Dashboard>, DashboardError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        DashboardError::Input(format!("dashboards directory {}: {e}", dir.display()))
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(DashboardError::Input(format!(
            "no *.json dashboard in {}",
            dir.display()
        )));
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| DashboardError::Input(format!("{}: {e}", p.display())))?;
            let body = serde_json::from_str(&text)
                .map_err(|e| DashboardError::Input(format!("{}: {e}", p.display())))?;
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Dashboard { stem, body })
        })
        .collect()
}

/// The repository root as a `file://` URL (runbook and source links), from `dashboards/`.
fn repository_url(dashboards_dir: &Path) -> String {
    std::fs::canonicalize(dashboards_dir)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .and_then(|p| url::Url::from_directory_path(p).ok())
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| "..".to_owned())
}

/// Rule names from the `rules/` next to `dashboards/`, for the per-rule alarms.
fn sibling_rules(dashboards_dir: &Path) -> BTreeSet<String> {
    let Some(dir) = std::fs::canonicalize(dashboards_dir)
        .ok()
        .and_then(|p| p.parent().map(|r| r.join("rules")))
    else {
        return BTreeSet::new();
    };
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `-PT3H` → 180 (minutes); `None` for anything else.
fn relative_start_minutes(start: &str) -> Option<u64> {
    let rest = start.strip_prefix("-P")?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut minutes = 0u64;
    if let Some(d) = days.strip_suffix('D') {
        minutes += d.parse::<u64>().ok()? * 1440;
    } else if let Some(w) = days.strip_suffix('W') {
        minutes += w.parse::<u64>().ok()? * 10_080;
    } else if !days.is_empty() {
        return None;
    }
    let mut num = String::new();
    for c in time.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: u64 = num.parse().ok()?;
            num.clear();
            minutes += match c {
                'H' => n * 60,
                'M' => n,
                'S' => n.div_ceil(60),
                _ => return None,
            };
        }
    }
    (minutes > 0).then_some(minutes)
}

/// What every render needs besides the metrics.
struct RenderSpec<'a> {
    dashboards: &'a [Dashboard],
    kinds: &'a [AlarmKind],
    names: &'a Names,
    rules: &'a BTreeSet<String>,
    logs: Option<&'a [LogRecord]>,
    /// Real alarm states by name (CloudWatch), overriding the computed ones.
    states: &'a HashMap<String, String>,
    title: String,
    meta: String,
    footer: Vec<String>,
}

fn render(spec: &RenderSpec<'_>, source: &dyn MetricSource) -> Preview {
    let instances = alarms::instances(spec.kinds, spec.names, spec.rules);
    let evaluated: Vec<(AlarmInstance, AlarmState, &'static str)> = instances
        .into_iter()
        .map(|a| {
            let computed = alarms::evaluate(&spec.kinds[a.kind], &a, source);
            match spec.states.get(&a.name) {
                Some(real) => {
                    let state = match real.as_str() {
                        "ALARM" => "ALARM",
                        "OK" => "OK",
                        _ => "INSUFFICIENT_DATA",
                    };
                    (a, AlarmState { state, ..computed }, "CloudWatch")
                }
                None => (a, computed, "computed"),
            }
        })
        .collect();
    let mut arns: Vec<String> = evaluated
        .iter()
        .map(|(a, _, _)| spec.names.alarm_arn(&a.name))
        .collect();
    arns.sort();
    let inputs = Inputs {
        source,
        logs: spec.logs,
        kinds: spec.kinds,
        alarms: &evaluated,
        runbook_base_url: &spec.names.runbook_base_url,
    };
    let mut warnings = Vec::new();
    let mut summaries = Vec::new();
    let mut body = String::new();
    for d in spec.dashboards {
        let dashboard_name = format!("{}-{}", spec.names.prefix(), d.stem);
        let values = spec.names.dashboard_placeholders(&dashboard_name);
        let mut unknown = Vec::new();
        let filled = names::fill_value(&d.body, &values, &arns, &mut unknown);
        unknown.sort();
        unknown.dedup();
        for u in unknown {
            warnings.push(format!(
                "dashboards/{}.json: unknown placeholder ${{{u}}}",
                d.stem
            ));
        }
        let outs: Vec<WidgetOut> = filled
            .get("widgets")
            .and_then(Value::as_array)
            .map(|ws| {
                ws.iter()
                    .enumerate()
                    .map(|(i, w)| widgets::evaluate(i, w, &inputs))
                    .collect()
            })
            .unwrap_or_default();
        for w in &outs {
            summaries.push(WidgetSummary {
                dashboard: d.stem.clone(),
                index: w.index,
                kind: w.kind.clone(),
                title: w.title.clone(),
                has_data: w.has_data,
                series: w.series_count(),
                thresholds: w.threshold_count(),
                notes: w.notes.clone(),
            });
        }
        body.push_str(&html::dashboard(
            &d.stem,
            &format!("{dashboard_name} ({}.json)", d.stem),
            &outs,
        ));
    }
    let mut preview = Preview {
        html: String::new(),
        widgets: summaries,
        warnings: warnings.clone(),
    };
    let mut footer = spec.footer.clone();
    footer.extend(warnings);
    for w in preview.data_widgets().filter(|w| !w.has_data) {
        footer.push(format!("no data: {}", w.no_data()));
    }
    preview.html = html::page(
        &spec.title,
        &spec.meta,
        preview.with_data(),
        preview.total(),
        &body,
        &footer,
    );
    preview
}

/// Draws `dashboards_dir`'s dashboards from the local run in `run_dir` (what `payhook demo`
/// wrote) and returns the HTML page. Thresholds and alarms come from `alarms_dir`.
pub fn render_local(
    dashboards_dir: &Path,
    alarms_dir: &Path,
    run_dir: &Path,
) -> Result<String, DashboardError> {
    Ok(preview_local(dashboards_dir, alarms_dir, run_dir, None)?.html)
}

/// [`render_local`] with what was drawn, and the stage name to fill in (default `local`).
pub fn preview_local(
    dashboards_dir: &Path,
    alarms_dir: &Path,
    run_dir: &Path,
    stage: Option<&str>,
) -> Result<Preview, DashboardError> {
    let dashboards = load_dashboards(dashboards_dir)?;
    let kinds = alarms::load_kinds(alarms_dir)?;
    let names = Names::local(repository_url(dashboards_dir), stage);
    let run = local::LocalRun::load(run_dir, &names)?;
    let mut rules = sibling_rules(dashboards_dir);
    rules.extend(run.rules.iter().cloned());
    let range = run.range();
    let run_name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| run_dir.display().to_string());
    let mut meta = format!(
        "local run <b>{}</b> · stage {} · {} · {} → {} · {} metrics captured or derived",
        html::esc(&run_name),
        html::esc(&names.stage),
        html::esc(&names.region),
        html::utc(range.start),
        html::utc(range.end),
        run.metric_count(),
    );
    if let Some(h) = &run.headline {
        meta.push_str(&format!(" · {}", html::esc(h)));
    }
    meta.push_str(" · ");
    let mut footer = run.warnings.clone();
    footer.push(
        "AWS-published metrics are local equivalents derived from the run (each widget says from what); \
         the run is seconds long, so most series have one point per period."
            .to_owned(),
    );
    let states = HashMap::new();
    let spec = RenderSpec {
        dashboards: &dashboards,
        kinds: &kinds,
        names: &names,
        rules: &rules,
        logs: Some(&run.logs),
        states: &states,
        title: "payhook dashboard preview".to_owned(),
        meta,
        footer,
    };
    let mut preview = render(&spec, &run);
    preview.warnings.extend(run.warnings.iter().cloned());
    Ok(preview)
}

/// Draws the dashboards from a deployed stage's CloudWatch metrics (`config` says where: AWS,
/// or moto/LocalStack through its endpoint). `since_minutes` defaults to the dashboard's
/// `start`.
pub async fn preview_aws(
    config: &SdkConfig,
    dashboards_dir: &Path,
    alarms_dir: &Path,
    stage: &str,
    since_minutes: Option<u64>,
) -> Result<Preview, DashboardError> {
    let dashboards = load_dashboards(dashboards_dir)?;
    let kinds = alarms::load_kinds(alarms_dir)?;
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| payhook_aws::DEFAULT_REGION.to_owned());
    let names = Names::deployed(stage, &region, repository_url(dashboards_dir));
    let since = since_minutes
        .or_else(|| {
            dashboards.iter().find_map(|d| {
                d.body
                    .get("start")
                    .and_then(Value::as_str)
                    .and_then(relative_start_minutes)
            })
        })
        .unwrap_or(DEFAULT_SINCE_MINUTES);
    let now = payhook_devkit::unix_now();
    let since_secs = i64::try_from(since.saturating_mul(60)).unwrap_or(i64::MAX / 2);
    let range = TimeRange {
        start: now - since_secs,
        end: now,
    };
    let client = aws_sdk_cloudwatch::Client::new(config);
    let mut source = aws::CloudWatchSource::new(range);
    let mut rules = sibling_rules(dashboards_dir);
    let no_states = HashMap::new();
    // Pass 1 finds the namespaces SEARCH looks in; pass 2 everything to fetch.
    let extra: BTreeSet<String> = dashboards
        .iter()
        .flat_map(|d| {
            d.body
                .get("widgets")
                .and_then(Value::as_array)
                .map(|ws| {
                    ws.iter()
                        .flat_map(widgets::search_namespaces)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .chain(["AWS/Events".to_owned()])
        .collect();
    source.list_asked(&client, &extra).await;
    for m in source.list("AWS/Events") {
        if let Some(rule) = m.dimension("RuleName")
            && m.dimension("EventBusName") == Some(names.bus().as_str())
        {
            rules.insert(rule.to_owned());
        }
    }
    let recording = RenderSpec {
        dashboards: &dashboards,
        kinds: &kinds,
        names: &names,
        rules: &rules,
        logs: None,
        states: &no_states,
        title: String::new(),
        meta: String::new(),
        footer: Vec::new(),
    };
    let _ = render(&recording, &source);
    source.list_asked(&client, &BTreeSet::new()).await;
    let _ = render(&recording, &source);
    source.fetch_asked(&client).await;
    let states = match aws::alarm_states(&client, &format!("{}-", names.prefix())).await {
        Ok(s) => s,
        Err(e) => {
            source.errors.push(e.to_string());
            HashMap::new()
        }
    };
    let endpoint = config
        .endpoint_url()
        .map(|u| format!(" via {u}"))
        .unwrap_or_default();
    let meta = format!(
        "CloudWatch{} · stage <b>{}</b> · {} · {} → {} · {} deployed alarms found · ",
        html::esc(&endpoint),
        html::esc(stage),
        html::esc(&region),
        html::utc(range.start),
        html::utc(range.end),
        states.len()
    );
    let final_spec = RenderSpec {
        states: &states,
        title: format!("payhook dashboard — {}", names.prefix()),
        meta,
        footer: source.errors.clone(),
        ..recording
    };
    let mut preview = render(&final_spec, &source);
    preview.warnings.extend(source.errors.iter().cloned());
    Ok(preview)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_only_input_is_a_usage_error() {
        let all = [
            (
                DashboardError::Input(String::new()),
                "dashboard.input_invalid",
                true,
            ),
            (
                DashboardError::Aws(String::new()),
                "dashboard.aws_failed",
                false,
            ),
            (
                DashboardError::Write(String::new()),
                "dashboard.write_failed",
                false,
            ),
        ];
        for (error, code, usage) in &all {
            assert_eq!(error.code(), *code);
            assert_eq!(error.is_usage(), *usage);
        }
    }

    #[test]
    fn relative_starts_become_minutes() {
        assert_eq!(relative_start_minutes("-PT3H"), Some(180));
        assert_eq!(relative_start_minutes("-PT15M"), Some(15));
        assert_eq!(relative_start_minutes("-P1D"), Some(1440));
        assert_eq!(relative_start_minutes("-P1DT1H"), Some(1500));
        assert_eq!(relative_start_minutes("2026-01-01T00:00:00Z"), None);
    }

    #[test]
    fn the_preview_fills_every_placeholder_of_the_vocabulary_file() {
        use payhook_cloudwatch::check::stack;
        let names = names::Names::local(String::new(), None);
        let filled: BTreeSet<String> = names.dashboard_placeholders("d").into_keys().collect();
        assert_eq!(filled, stack::dashboard_placeholders());
        let common: BTreeSet<String> = names.common_placeholders().into_keys().collect();
        let global: BTreeSet<String> = stack::alarm_global_placeholders().iter().cloned().collect();
        assert_eq!(common, global);
    }
}
