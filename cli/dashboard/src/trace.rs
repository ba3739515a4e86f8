//! A webhook's X-Ray trace drawn as a waterfall, from the segments the local stack received
//! (`xray.jsonl` in its run directory): in text ([`waterfall`], what `payhook trace` prints)
//! or as SVG ([`waterfall_svg_from_file`], what the demo's dashboard page links to).
//!
//! The segments are found by the `webhook_id` annotation the handlers put on their
//! subsegments; every trace holding one is drawn whole, with its segments and subsegments (and
//! the subsegments sent on their own, joined to their parent by `parent_id`) as one tree in
//! start order: offset from the trace's start, duration, and a bar on a common time scale.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::DashboardError;

/// Width of the bar column of the text waterfall, in characters.
pub const BAR_WIDTH: usize = 40;

/// One segment or subsegment, flattened out of the documents.
#[derive(Debug, Clone)]
struct Span {
    id: String,
    parent: Option<String>,
    trace_id: String,
    name: String,
    operation: Option<String>,
    start: f64,
    end: f64,
    fault: bool,
    webhook_id: Option<String>,
}

/// Every span of every document (one JSON segment or independent subsegment per line).
fn parse(text: &str) -> Result<Vec<Span>, DashboardError> {
    let mut spans = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let doc: Value = serde_json::from_str(line)
            .map_err(|e| DashboardError::Input(format!("xray.jsonl line {}: {e}", n + 1)))?;
        let trace_id = doc["trace_id"].as_str().unwrap_or_default().to_owned();
        let parent = doc["parent_id"].as_str().map(str::to_owned);
        flatten(&doc, parent, &trace_id, &mut spans);
    }
    Ok(spans)
}

fn flatten(doc: &Value, parent: Option<String>, trace_id: &str, out: &mut Vec<Span>) {
    let id = doc["id"].as_str().unwrap_or_default().to_owned();
    let start = doc["start_time"].as_f64().unwrap_or_default();
    out.push(Span {
        id: id.clone(),
        parent,
        trace_id: trace_id.to_owned(),
        name: doc["name"].as_str().unwrap_or_default().to_owned(),
        operation: doc["aws"]["operation"].as_str().map(str::to_owned),
        start,
        end: doc["end_time"].as_f64().unwrap_or(start),
        fault: doc["fault"].as_bool() == Some(true) || doc["error"].as_bool() == Some(true),
        webhook_id: doc["annotations"]["webhook_id"].as_str().map(str::to_owned),
    });
    for child in doc["subsegments"].as_array().into_iter().flatten() {
        flatten(child, Some(id.clone()), trace_id, out);
    }
}

/// Every trace holding a span annotated with `webhook_id`, in the order they appear.
fn traces_of<'a>(spans: &'a [Span], webhook_id: &str) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    spans
        .iter()
        .filter(|s| s.webhook_id.as_deref() == Some(webhook_id))
        .map(|s| s.trace_id.as_str())
        .filter(|t| seen.insert(*t))
        .collect()
}

/// The text waterfall of every trace in `xray_jsonl` (the text of an `xray.jsonl`) holding a
/// span annotated with `webhook_id`; `None` when none does, an error when a line is not JSON.
pub fn waterfall(xray_jsonl: &str, webhook_id: &str) -> Result<Option<String>, DashboardError> {
    Ok(waterfall_of(&parse(xray_jsonl)?, webhook_id))
}

fn waterfall_of(spans: &[Span], webhook_id: &str) -> Option<String> {
    let traces = traces_of(spans, webhook_id);
    if traces.is_empty() {
        return None;
    }
    let mut out = String::new();
    for trace in traces {
        let members: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
        draw_trace(&mut out, trace, &members);
    }
    Some(out)
}

/// One line of a waterfall: a span at its depth in the tree, its label, and where it sits on
/// the trace's time line (seconds from the trace's start).
struct Row<'a> {
    depth: usize,
    label: String,
    offset: f64,
    duration: f64,
    span: &'a Span,
}

/// A trace laid out: its total duration (seconds) and its rows in tree and start order.
fn layout<'a>(spans: &[&'a Span]) -> (f64, Vec<Row<'a>>) {
    let start = spans.iter().map(|s| s.start).fold(f64::INFINITY, f64::min);
    let end = spans
        .iter()
        .map(|s| s.end)
        .fold(f64::NEG_INFINITY, f64::max);
    let total = (end - start).max(1e-6);
    let ids: HashSet<&str> = spans.iter().map(|s| s.id.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&Span>> = BTreeMap::new();
    for span in spans {
        // A parent outside this file (API Gateway's, Lambda's own) makes the span a root here.
        let parent = span.parent.as_deref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(span);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| a.start.total_cmp(&b.start));
    }
    let mut lines = Vec::new();
    collect(&children, None, 0, &mut lines);
    let rows = lines
        .into_iter()
        .map(|(depth, span)| Row {
            depth,
            label: match &span.operation {
                Some(op) => format!("{} {op}", span.name),
                None => span.name.clone(),
            },
            offset: span.start - start,
            duration: span.end - span.start,
            span,
        })
        .collect();
    (total, rows)
}

fn draw_trace(out: &mut String, trace: &str, spans: &[&Span]) {
    let (total, rows) = layout(spans);
    let _ = writeln!(out, "trace {trace}  ({:.2} ms)", total * 1000.0);
    for row in rows {
        let from = ((row.offset / total) * BAR_WIDTH as f64).floor() as usize;
        let len = ((row.duration / total) * BAR_WIDTH as f64).ceil() as usize;
        let from = from.min(BAR_WIDTH - 1);
        let len = len.clamp(1, BAR_WIDTH - from);
        let bar = format!("{}{}", " ".repeat(from), "█".repeat(len));
        let label = format!("{}{}", "  ".repeat(row.depth), row.label);
        let fault = if row.span.fault { "  ✗ fault" } else { "" };
        let _ = writeln!(
            out,
            "  {label:<44} {:>9.2} ms {:>8.2} ms  |{bar:<BAR_WIDTH$}|{fault}",
            row.offset * 1000.0,
            row.duration * 1000.0,
        );
    }
}

/// The webhook's traces as one SVG waterfall (the picture `payhook trace` prints, for the demo's
/// dashboard page); `None` when no segment names the webhook.
pub fn waterfall_svg_from_file(xray_jsonl: &Path, webhook_id: &str) -> Option<String> {
    let text = std::fs::read_to_string(xray_jsonl).ok()?;
    let spans = parse(&text).ok()?;
    waterfall_svg(&spans, webhook_id)
}

fn waterfall_svg(spans: &[Span], webhook_id: &str) -> Option<String> {
    const ROW: f64 = 22.0;
    const LABEL: f64 = 320.0;
    const BARS: f64 = 560.0;
    let traces = traces_of(spans, webhook_id);
    if traces.is_empty() {
        return None;
    }
    let mut body = String::new();
    let mut y = 0.0;
    for trace in traces {
        let members: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
        let (total, rows) = layout(&members);
        y += ROW;
        let _ = writeln!(
            body,
            r#"<text x="4" y="{:.0}" font-weight="bold">trace {} ({:.2} ms)</text>"#,
            y - 6.0,
            escape(trace),
            total * 1000.0
        );
        for row in rows {
            y += ROW;
            let x = LABEL + row.offset / total * BARS;
            let w = (row.duration / total * BARS).max(1.0);
            let colour = if row.span.fault { "#d13212" } else { "#1f77b4" };
            let _ = writeln!(
                body,
                r##"<text x="{:.0}" y="{:.0}">{}</text><rect x="{x:.1}" y="{:.0}" width="{w:.1}" height="{:.0}" fill="{colour}"><title>{} — {:.2} ms at +{:.2} ms</title></rect><text x="{:.0}" y="{:.0}" fill="#555">{:.2} ms</text>"##,
                4 + row.depth * 14,
                y - 6.0,
                escape(&row.label),
                y - ROW + 4.0,
                ROW - 8.0,
                escape(&row.label),
                row.duration * 1000.0,
                row.offset * 1000.0,
                LABEL + BARS + 8.0,
                y - 6.0,
                row.duration * 1000.0,
            );
        }
        y += ROW / 2.0;
    }
    let width = LABEL + BARS + 90.0;
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" font-family=\"monospace\" font-size=\"12\">\n<title>{}</title>\n{body}</svg>\n",
        y + 4.0,
        escape(webhook_id)
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn collect<'a>(
    children: &BTreeMap<Option<&str>, Vec<&'a Span>>,
    parent: Option<&str>,
    depth: usize,
    out: &mut Vec<(usize, &'a Span)>,
) {
    for span in children.get(&parent).into_iter().flatten() {
        out.push((depth, span));
        collect(children, Some(span.id.as_str()), depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r###"{"name":"webhook-validator","id":"a1","trace_id":"1-1","start_time":10.000,"end_time":10.004,"subsegments":[{"name":"## webhook-validator","id":"a2","start_time":10.0005,"end_time":10.0035,"annotations":{"webhook_id":"stripe:evt_1"},"subsegments":[{"name":"SQS","id":"a3","start_time":10.001,"end_time":10.002,"namespace":"aws","aws":{"operation":"SendMessage"}}]}]}
{"type":"subsegment","name":"## provider-processor","id":"b1","trace_id":"1-1","parent_id":"a2","start_time":10.010,"end_time":10.020,"fault":true}
{"type":"subsegment","name":"EventBridge","id":"b2","trace_id":"1-1","parent_id":"b1","start_time":10.012,"end_time":10.013,"aws":{"operation":"PutEvents"}}
{"name":"webhook-validator","id":"c1","trace_id":"1-2","start_time":11.0,"end_time":11.001,"subsegments":[{"name":"## webhook-validator","id":"c2","start_time":11.0,"end_time":11.001,"annotations":{"webhook_id":"stripe:evt_2"}}]}
"###;

    #[test]
    fn the_webhooks_trace_is_drawn_whole_in_start_order_with_its_children_nested() {
        let spans = parse(RUN).unwrap();
        let picture = waterfall_of(&spans, "stripe:evt_1").unwrap();
        let lines: Vec<&str> = picture.lines().collect();
        assert!(lines[0].starts_with("trace 1-1"), "{picture}");
        let names: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split("  ").find(|p| !p.is_empty()).unwrap().trim())
            .collect();
        assert_eq!(
            names,
            [
                "webhook-validator",
                "## webhook-validator",
                "SQS SendMessage",
                "## provider-processor",
                "EventBridge PutEvents"
            ],
            "{picture}"
        );
        assert!(lines[4].contains("✗ fault"), "{picture}");
        assert!(
            !picture.contains("1-2"),
            "another webhook's trace is left out"
        );
        // The processor starts 10 ms into the 20 ms trace: its bar starts half-way.
        let bar = lines[4].split('|').nth(1).unwrap();
        assert_eq!(bar.chars().take_while(|c| *c == ' ').count(), BAR_WIDTH / 2);
    }

    #[test]
    fn the_svg_waterfall_draws_the_same_rows_with_faults_marked() {
        let spans = parse(RUN).unwrap();
        let svg = waterfall_svg(&spans, "stripe:evt_1").unwrap();
        assert!(svg.starts_with("<svg "), "{svg}");
        for label in [
            "webhook-validator",
            "## webhook-validator",
            "SQS SendMessage",
            "## provider-processor",
            "EventBridge PutEvents",
        ] {
            assert!(svg.contains(&format!(">{label}<")), "{label}: {svg}");
        }
        assert_eq!(svg.matches("<rect ").count(), 5, "{svg}");
        assert_eq!(svg.matches("#d13212").count(), 1, "the one fault: {svg}");
        assert!(!svg.contains("1-2"), "another webhook's trace is left out");
        assert!(waterfall_svg(&spans, "stripe:evt_missing").is_none());
    }

    #[test]
    fn a_webhook_no_segment_names_draws_nothing() {
        let spans = parse(RUN).unwrap();
        assert!(waterfall_of(&spans, "stripe:evt_missing").is_none());
        assert!(waterfall("not json", "stripe:evt_1").is_err());
    }
}
