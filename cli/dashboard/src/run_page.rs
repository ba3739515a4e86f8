//! The page of a local run, as `payhook demo` leaves it in the run directory: the dashboards
//! drawn from the run's metrics ([`crate::render_local`]) with a list of the run's webhooks,
//! each linked to its trace drawn as an SVG waterfall in [`TRACES_DIR`].

use std::path::Path;

use crate::{DASHBOARD_FILE, DashboardError};

/// Where each sampled webhook's waterfall is written, beside the dashboard page.
pub const TRACES_DIR: &str = "traces";

/// Draws `dashboards_dir`'s dashboards (thresholds and alarms from `alarms_dir`) from the run in
/// `run_dir`, draws each of `webhook_ids`' traces found in the run's `xray.jsonl` as a waterfall
/// in [`TRACES_DIR`], and writes the page, linking to them, as [`DASHBOARD_FILE`] in `run_dir`.
pub fn run_page(
    dashboards_dir: &Path,
    alarms_dir: &Path,
    run_dir: &Path,
    webhook_ids: &[String],
) -> Result<(), DashboardError> {
    let page = crate::render_local(dashboards_dir, alarms_dir, run_dir)?;
    let page = with_trace_links(page, &trace_waterfalls(run_dir, webhook_ids)?);
    std::fs::write(run_dir.join(DASHBOARD_FILE), page)
        .map_err(|e| DashboardError::Write(format!("dashboard page: {e}")))
}

/// Draws each sampled webhook's trace (from the run's `xray.jsonl`) as an SVG waterfall in
/// [`TRACES_DIR`]; returns `(webhook id, file name)` of those drawn.
fn trace_waterfalls(
    run_dir: &Path,
    webhook_ids: &[String],
) -> Result<Vec<(String, String)>, DashboardError> {
    let dir = run_dir.join(TRACES_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| DashboardError::Write(format!("traces: {e}")))?;
    let segments = run_dir.join(payhook_local::run_dir::SEGMENTS_FILE);
    let mut drawn = Vec::new();
    for id in webhook_ids {
        let Some(svg) = crate::trace::waterfall_svg_from_file(&segments, id) else {
            continue;
        };
        let file: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
            + ".svg";
        std::fs::write(dir.join(&file), svg)
            .map_err(|e| DashboardError::Write(format!("trace {id}: {e}")))?;
        drawn.push((id.clone(), file));
    }
    Ok(drawn)
}

/// The dashboard page with a list of the sampled webhooks, each linked to its waterfall.
fn with_trace_links(page: String, drawn: &[(String, String)]) -> String {
    if drawn.is_empty() {
        return page;
    }
    let mut section = String::from(
        "<section id=\"traces\"><h2>Traces of this run's webhooks</h2>\
         <p>Each webhook's journey as X-Ray would draw it: validator, queue, processor record, bus, \
         event processor (<code>payhook trace WEBHOOK_ID</code> prints the same in a terminal).</p><ul>",
    );
    for (id, file) in drawn {
        section.push_str(&format!(
            "<li><a href=\"{TRACES_DIR}/{file}\">{}</a></li>",
            id.replace('&', "&amp;").replace('<', "&lt;")
        ));
    }
    section.push_str("</ul></section>");
    match page.rfind("</body>") {
        Some(at) => format!("{}{section}{}", &page[..at], &page[at..]),
        None => page + &section,
    }
}
