//! The page: one self-contained HTML document (inline CSS and SVG, no script, nothing fetched)
//! laid out on CloudWatch's 24-column grid. Every widget element carries `data-widget-index`,
//! `data-widget-type`, `data-has-data`, `data-series` and `data-thresholds`, so tests (and a
//! headless browser) can check what it drew.

use std::fmt::Write as _;

use super::widgets::{AlarmRow, Body, DrawnSeries, Threshold, WidgetOut};

/// Page width the layout is computed for (pixels).
const PAGE_WIDTH: f64 = 1376.0;
/// Gap between widgets.
const GAP: f64 = 8.0;
/// Height of one grid row.
const ROW: f64 = 46.0;
/// Height of a widget's title bar.
const TITLE: f64 = 26.0;
/// Time series of at most this many periods are drawn as columns.
const COLUMN_PERIODS: usize = 3;

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number for people: no trailing zeros, at most 3 decimals (fewer for large values).
pub(crate) fn number(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let decimals = if v.abs() >= 100.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// A compact number for axes: `1.2k`, `3M`.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", number(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", number(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", number(v / 1e3))
    } else {
        number(v)
    }
}

/// `HH:MM` (UTC) of Unix seconds.
fn hhmm(t: i64) -> String {
    let s = t.rem_euclid(86_400);
    format!("{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

/// `YYYY-MM-DD HH:MM:SS UTC` of Unix seconds.
pub(crate) fn utc(t: i64) -> String {
    super::logs::iso_ms(t * 1000)
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
        + " UTC"
}

/// Inline Markdown: code spans, bold, links (text is escaped first).
fn inline(md: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = md.chars().collect();
    let mut i = 0;
    let mut bold = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '`'
            && let Some(end) = chars[i + 1..].iter().position(|&x| x == '`')
        {
            let code: String = chars[i + 1..i + 1 + end].iter().collect();
            let _ = write!(out, "<code>{}</code>", esc(&code));
            i += end + 2;
            continue;
        }
        if c == '*' && chars.get(i + 1) == Some(&'*') {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            i += 2;
            continue;
        }
        if c == '[' {
            let rest: String = chars[i..].iter().collect();
            if let Some(close) = rest.find("](")
                && let Some(end) = rest[close + 2..].find(')')
            {
                let text = &rest[1..close];
                let url = &rest[close + 2..close + 2 + end];
                let _ = write!(out, "<a href=\"{}\">{}</a>", esc(url), inline(text));
                i += rest[..close + 2 + end + 1].chars().count();
                continue;
            }
        }
        out.push_str(&esc(&c.to_string()));
        i += 1;
    }
    if bold {
        out.push_str("</strong>");
    }
    out
}

/// The Markdown subset of text widgets: headings, paragraphs, lists, inline code, bold, links.
pub(crate) fn markdown(md: &str) -> String {
    let mut out = String::new();
    let mut in_list = false;
    let mut para: Vec<String> = Vec::new();
    let flush = |para: &mut Vec<String>, out: &mut String| {
        if !para.is_empty() {
            let _ = write!(out, "<p>{}</p>", inline(&para.join(" ")));
            para.clear();
        }
    };
    for line in md.lines() {
        let t = line.trim_end();
        let item = t
            .trim_start()
            .strip_prefix("- ")
            .or_else(|| t.trim_start().strip_prefix("* "));
        if let Some(item) = item {
            flush(&mut para, &mut out);
            if !in_list {
                out.push_str("<ul>");
                in_list = true;
            }
            let _ = write!(out, "<li>{}</li>", inline(item));
            continue;
        }
        if in_list {
            out.push_str("</ul>");
            in_list = false;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && t[level..].starts_with(' ') {
            flush(&mut para, &mut out);
            let _ = write!(out, "<h{level}>{}</h{level}>", inline(t[level..].trim()));
        } else if t.trim().is_empty() {
            flush(&mut para, &mut out);
        } else {
            para.push(t.trim().to_owned());
        }
    }
    flush(&mut para, &mut out);
    if in_list {
        out.push_str("</ul>");
    }
    out
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;background:#f2f3f3;color:#16191f;font:13px/1.4 "Amazon Ember","Helvetica Neue",Roboto,Arial,sans-serif}
header.page{background:#232f3e;color:#fff;padding:14px 12px 12px}
header.page h1{margin:0 0 4px;font-size:19px;font-weight:600}
header.page .meta{color:#d5dbdb;font-size:12px}
header.page .meta b{color:#fff}
.score{display:inline-block;margin-left:8px;padding:1px 8px;border-radius:10px;background:#1d8102;color:#fff;font-weight:600}
.score.partial{background:#b7791f}
main{max-width:1400px;padding:12px}
h2.dash{margin:6px 0 10px;font-size:16px}
.grid{display:grid;grid-template-columns:repeat(24,minmax(0,1fr));grid-auto-rows:46px;gap:8px}
.widget{background:#fff;border:1px solid #d5dbdb;border-radius:2px;box-shadow:0 1px 1px rgba(0,28,36,.15);display:flex;flex-direction:column;overflow:hidden;min-width:0}
.widget.text.transparent{background:transparent;border:none;box-shadow:none}
.wt{height:26px;flex:none;padding:4px 8px 0;font-weight:600;font-size:13px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.wt .nodata{font-weight:400;color:#687078;font-size:11px;margin-left:6px;padding:0 5px;border:1px solid #aab7b8;border-radius:8px}
.wb{flex:1;min-height:0;position:relative;padding:0 6px;overflow:hidden}
.wb svg{display:block;width:100%;height:auto}
.wb svg text{font-size:10px;fill:#545b64}
.wb svg .tl{font-size:10px;fill:#d62728;paint-order:stroke;stroke:#fff;stroke-width:3px}
.wb svg .vl{font-size:9px;fill:#16191f}
.legend{flex:none;display:flex;flex-wrap:wrap;gap:1px 12px;padding:2px 8px 4px;font-size:11px;max-height:64px;overflow:auto;color:#16191f}
.legend span.k{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
.legend .v{color:#545b64;margin-left:3px}
.legend .empty{color:#aab7b8}
.wnote{flex:none;padding:1px 8px 3px;font-size:11px;color:#687078;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.nd{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;text-align:center;padding:8px 14px;color:#545b64;font-size:12px}
.nd span{background:rgba(255,255,255,.92);padding:4px 8px;border-radius:2px}
.text .wb{padding:4px 10px;overflow:auto}
.text h1{font-size:18px;margin:2px 0 4px}.text h2{font-size:16px;margin:10px 0 0}.text h3{font-size:14px;margin:4px 0}
.text p{margin:2px 0}
.text code{background:#f2f3f3;padding:0 3px;border-radius:2px;font-size:12px}
.text.transparent h2{border-bottom:1px solid #aab7b8;padding-bottom:2px;margin-top:12px}
a{color:#0073bb}
.alarms{display:flex;flex-wrap:wrap;gap:6px;padding:4px 8px;overflow:auto;align-content:flex-start}
.atile{width:222px;border:1px solid #d5dbdb;border-left:5px solid #1d8102;padding:2px 6px;font-size:11px;line-height:1.3}
.atile .n{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.atile.ALARM{border-left-color:#d13212;background:#fdf3f1}
.atile.INSUFFICIENT_DATA{border-left-color:#879596;background:#f7f7f7}
.state{font-weight:700}.ALARM .state{color:#d13212}.OK .state{color:#1d8102}.INSUFFICIENT_DATA .state{color:#687078}
.logs{overflow:auto;height:100%}
.logs table{border-collapse:collapse;width:100%;font:11px/1.3 Menlo,Consolas,monospace}
.logs th{position:sticky;top:0;background:#fafafa;text-align:left;border-bottom:1px solid #d5dbdb;padding:2px 4px}
.logs td{border-bottom:1px solid #eaeded;padding:2px 4px;vertical-align:top;max-width:260px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.values{display:flex;flex-wrap:wrap;gap:10px 24px;padding:8px}
.values .big{font-size:28px;font-weight:300}
.values .lab{font-size:11px;color:#545b64}
table.series{border-collapse:collapse;font-size:11px;margin:4px}
table.series td,table.series th{padding:1px 8px;border-bottom:1px solid #eaeded;text-align:right}
table.series td:first-child,table.series th:first-child{text-align:left}
footer{padding:4px 24px 24px;font-size:12px;color:#545b64;max-width:1400px}
footer li{margin:2px 0}
"#;

/// Pixel size of a widget of `width` × `height` grid cells.
fn widget_px(width: i64, height: i64) -> (f64, f64) {
    let col = (PAGE_WIDTH - 23.0 * GAP) / 24.0;
    (
        width as f64 * col + (width - 1) as f64 * GAP,
        height as f64 * ROW + (height - 1) as f64 * GAP,
    )
}

/// Round numbers for an axis from 0 (or `min`) to at least `max`.
fn nice_ticks(min: f64, max: f64) -> (f64, f64, Vec<f64>) {
    let span = (max - min).max(f64::EPSILON);
    let raw = span / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let lo = (min / step).floor() * step;
    let hi = (max / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut t = lo;
    while t <= hi + step / 2.0 && ticks.len() < 12 {
        ticks.push(t);
        t += step;
    }
    (lo, hi.max(lo + step), ticks)
}

/// A summary value for the legend: the total for additive statistics, else the maximum.
fn summary(s: &DrawnSeries, additive: bool) -> Option<f64> {
    if s.points.is_empty() {
        return None;
    }
    Some(if additive {
        s.points.values().sum()
    } else {
        s.points.values().copied().fold(f64::NEG_INFINITY, f64::max)
    })
}

struct ChartArgs<'a> {
    w: f64,
    h: f64,
    series: &'a [DrawnSeries],
    thresholds: &'a [Threshold],
    stacked: bool,
    period: i64,
    grid: &'a [i64],
    y_min: Option<f64>,
    y_max: Option<f64>,
}

#[expect(
    clippy::too_many_lines,
    reason = "draws one chart (stacking, scale, thresholds, axes, series, annotations) in one coordinate frame that every step reads"
)]
fn time_series_svg(a: &ChartArgs<'_>) -> String {
    let (left, right, top, bottom) = (42.0, 10.0, 8.0, 18.0);
    let pw = (a.w - left - right).max(10.0);
    let ph = (a.h - top - bottom).max(10.0);
    let period = a.period.max(1) as f64;
    let first = a.grid.first().copied().unwrap_or(0) as f64;
    let last = a.grid.last().copied().unwrap_or(0) as f64;
    let (x0, x1) = (first - period / 2.0, last + period / 2.0);
    let xs = |t: f64| left + (t - x0) / (x1 - x0).max(1.0) * pw;

    // Stacking: cumulative values per timestamp, in series order.
    let mut base: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    let mut layers: Vec<Vec<(i64, f64, f64)>> = Vec::new();
    for s in a.series {
        let layer: Vec<(i64, f64, f64)> = s
            .points
            .iter()
            .map(|(&t, &v)| {
                if a.stacked {
                    let b = base.get(&t).copied().unwrap_or(0.0);
                    base.insert(t, b + v);
                    (t, b, b + v)
                } else {
                    (t, 0.0, v)
                }
            })
            .collect();
        layers.push(layer);
    }
    let data_max = layers
        .iter()
        .flatten()
        .map(|p| p.2)
        .fold(f64::NEG_INFINITY, f64::max);
    let data_min = layers
        .iter()
        .flatten()
        .map(|p| p.2)
        .fold(f64::INFINITY, f64::min);
    let has = data_max.is_finite();
    let mut hi = if has { data_max } else { 1.0 };
    // Show a threshold unless it would flatten the data into the floor.
    for t in a.thresholds {
        if t.value > hi
            && (!has || data_max <= 0.0 && t.value <= 10.0 || t.value <= 4.0 * data_max.max(0.0))
        {
            hi = t.value * 1.1;
        }
    }
    let lo = a.y_min.unwrap_or(if has { data_min.min(0.0) } else { 0.0 });
    if let Some(m) = a.y_max {
        hi = m;
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let (lo, hi, ticks) = nice_ticks(lo, hi);
    let ys = |v: f64| top + ph - (v - lo) / (hi - lo) * ph;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\">",
        w = a.w,
        h = a.h
    );
    for t in &ticks {
        let y = ys(*t);
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeded\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + pw,
            left - 4.0,
            y + 3.0,
            esc(&compact(*t))
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#aab7b8\"/>",
        left + pw,
        top + ph,
        top + ph
    );
    // A run of a few periods is drawn as columns (one per series and period): a line through
    // one or two points says little.
    let n = a.grid.len();
    let columns = n <= COLUMN_PERIODS;
    // Time labels: at most 6, on period starts (the whole period under a column).
    let every = n.div_ceil(6).max(1);
    for (i, t) in a.grid.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = xs(*t as f64);
        let label = if columns {
            format!("{}–{} UTC", hhmm(*t), hhmm(*t + a.period))
        } else {
            hhmm(*t)
        };
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#aab7b8\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top + ph,
            top + ph + 3.0,
            top + ph + 13.0,
            label
        );
    }
    for th in a.thresholds {
        let off_scale = th.value > hi;
        let y = if off_scale { top } else { ys(th.value.max(lo)) };
        if let Some(fill) = &th.fill {
            let (y_a, y_b) = match fill.as_str() {
                "above" => (top, y),
                "below" => (y, top + ph),
                _ => (y, y),
            };
            if y_b > y_a {
                let _ = write!(
                    svg,
                    "<rect x=\"{left}\" y=\"{y_a:.1}\" width=\"{pw:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.08\"/>",
                    y_b - y_a,
                    esc(&th.color)
                );
            }
        }
        let label = if off_scale {
            format!("↑ {} (above the data)", th.label)
        } else {
            th.label.clone()
        };
        let _ = write!(
            svg,
            "<line class=\"threshold\" data-value=\"{}\" data-alarms=\"{}\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"/><text class=\"tl\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            number(th.value),
            esc(&th.alarms.join(" ")),
            left + pw,
            esc(&th.color),
            left + pw - 2.0,
            (y - 3.0).max(top + 8.0),
            esc(&label)
        );
    }
    if columns {
        let drawn: Vec<usize> = (0..a.series.len())
            .filter(|i| !layers[*i].is_empty())
            .collect();
        let k = if a.stacked { 1 } else { drawn.len().max(1) };
        let slot = pw / n.max(1) as f64;
        let bw = (slot * 0.8 / k as f64).min(36.0);
        for (pos, &i) in drawn.iter().enumerate() {
            let s = &a.series[i];
            let color = esc(&s.color);
            let mut d = String::new();
            let mut labels = String::new();
            for (t, b, v) in &layers[i] {
                let offset = if a.stacked { 0.0 } else { pos as f64 };
                let x = xs(*t as f64) - k as f64 * bw / 2.0 + offset * bw;
                let (y0, mut y1) = (ys(*b), ys(*v));
                // A zero is a hairline, not nothing.
                if (y0 - y1).abs() < 1.0 {
                    y1 = y0 - 1.0;
                }
                let _ = write!(
                    d,
                    "M{x:.1} {y0:.1} V{y1:.1} h{:.1} V{y0:.1} Z ",
                    (bw - 1.0).max(1.0)
                );
                if !a.stacked && bw >= 14.0 {
                    let _ = write!(
                        labels,
                        "<text class=\"vl\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                        x + bw / 2.0,
                        y1 - 2.0,
                        esc(&compact(*v - *b))
                    );
                }
            }
            let _ = write!(
                svg,
                "<path class=\"series column\" data-label=\"{}\" data-points=\"{}\" d=\"{}\" fill=\"{color}\"><title>{}</title></path>{labels}",
                esc(&s.label),
                layers[i].len(),
                d.trim_end(),
                esc(&s.label)
            );
        }
        svg.push_str("</svg>");
        return svg;
    }
    for (s, layer) in a.series.iter().zip(&layers) {
        if layer.is_empty() {
            continue;
        }
        let color = esc(&s.color);
        let mut d = String::new();
        for (i, (t, _, v)) in layer.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1} ",
                if i == 0 { "M" } else { "L" },
                xs(*t as f64),
                ys(*v)
            );
        }
        if layer.len() == 1 {
            d.push_str("h0.01");
        }
        if a.stacked {
            let mut area = d.clone();
            for (t, b, _) in layer.iter().rev() {
                let _ = write!(area, "L{:.1} {:.1} ", xs(*t as f64), ys(*b));
            }
            let _ = write!(
                svg,
                "<path class=\"area\" d=\"{}Z\" fill=\"{color}\" fill-opacity=\"0.25\" stroke=\"none\"/>",
                area.trim_end()
            );
        }
        let _ = write!(
            svg,
            "<path class=\"series\" data-label=\"{}\" data-points=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>",
            esc(&s.label),
            layer.len(),
            d.trim_end()
        );
        if layer.len() <= 60 {
            for (t, _, v) in layer {
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"><title>{}: {}</title></circle>",
                    xs(*t as f64),
                    ys(*v),
                    esc(&s.label),
                    number(*v)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

fn bar_svg(w: f64, h: f64, series: &[DrawnSeries], additive: bool) -> String {
    let (left, top, bottom) = (42.0, 14.0, 30.0);
    let pw = (w - left - 10.0).max(10.0);
    let ph = (h - top - bottom).max(10.0);
    let values: Vec<f64> = series
        .iter()
        .map(|s| summary(s, additive).unwrap_or(0.0))
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max).max(1.0);
    let (lo, hi, ticks) = nice_ticks(0.0, max);
    let ys = |v: f64| top + ph - (v - lo) / (hi - lo) * ph;
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\">"
    );
    for t in &ticks {
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eaeded\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + pw,
            left - 4.0,
            ys(*t) + 3.0,
            compact(*t),
            y = ys(*t)
        );
    }
    let n = series.len().max(1) as f64;
    let slot = pw / n;
    let bw = (slot * 0.6).min(60.0);
    for (i, (s, v)) in series.iter().zip(&values).enumerate() {
        let x = left + slot * i as f64 + (slot - bw) / 2.0;
        let y = ys(*v);
        let _ = write!(
            svg,
            "<path class=\"series bar\" data-label=\"{}\" data-points=\"{}\" d=\"M{x:.1} {:.1} V{y:.1} h{bw:.1} V{:.1} Z\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            esc(&s.label),
            s.points.len(),
            top + ph,
            top + ph,
            esc(&s.color),
            x + bw / 2.0,
            y - 3.0,
            number(*v),
            x + bw / 2.0,
            top + ph + 12.0,
            esc(&truncate(&s.label, (slot / 6.0) as usize))
        );
    }
    svg.push_str("</svg>");
    svg
}

fn pie_svg(w: f64, h: f64, series: &[DrawnSeries], additive: bool) -> String {
    let values: Vec<f64> = series
        .iter()
        .map(|s| summary(s, additive).unwrap_or(0.0).max(0.0))
        .collect();
    let total: f64 = values.iter().sum();
    let r = (h.min(w) / 2.0 - 8.0).max(10.0);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\">"
    );
    let mut angle = -std::f64::consts::FRAC_PI_2;
    for (s, v) in series.iter().zip(&values) {
        if total <= 0.0 || *v <= 0.0 {
            continue;
        }
        let sweep = v / total * std::f64::consts::TAU;
        let (x0, y0) = (cx + r * angle.cos(), cy + r * angle.sin());
        angle += sweep.min(std::f64::consts::TAU - 1e-6);
        let (x1, y1) = (cx + r * angle.cos(), cy + r * angle.sin());
        let large = i32::from(sweep > std::f64::consts::PI);
        let _ = write!(
            svg,
            "<path class=\"series slice\" data-label=\"{}\" d=\"M{cx:.1} {cy:.1} L{x0:.1} {y0:.1} A{r:.1} {r:.1} 0 {large} 1 {x1:.1} {y1:.1} Z\" fill=\"{}\"><title>{}: {}</title></path>",
            esc(&s.label),
            esc(&s.color),
            esc(&s.label),
            number(*v)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn truncate(s: &str, max: usize) -> String {
    let max = max.max(4);
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn legend(series: &[DrawnSeries], additive: bool) -> String {
    let mut out = String::from("<div class=\"legend\">");
    for s in series {
        match summary(s, additive) {
            Some(v) => {
                let _ = write!(
                    out,
                    "<span><span class=\"k\" style=\"background:{}\"></span>{}<span class=\"v\">{}{}</span></span>",
                    esc(&s.color),
                    esc(&s.label),
                    if additive { "Σ " } else { "max " },
                    number(v)
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<span class=\"empty\"><span class=\"k\" style=\"background:#d5dbdb\"></span>{} (no data)</span>",
                    esc(&s.label)
                );
            }
        }
    }
    out.push_str("</div>");
    out
}

fn alarm_tiles(rows: &[AlarmRow]) -> String {
    let mut out = String::from("<div class=\"alarms\">");
    for r in rows {
        let value = r
            .state
            .latest
            .map(number)
            .unwrap_or_else(|| "no data".into());
        let _ = write!(
            out,
            "<div class=\"atile {state}\" data-alarm=\"{name}\" data-state=\"{state}\" data-breaching=\"{breaching}\" title=\"{summary}\"><div class=\"n\">{name}</div><span class=\"state\">{state}</span> · {sev} · latest {value} (alarm {cond}) · <a href=\"{rb}\">runbook</a>{origin}</div>",
            breaching = r.state.breaching,
            state = r.state.state,
            name = esc(&r.name),
            summary = esc(&format!(
                "{}: {}{}",
                r.title,
                r.summary,
                r.state
                    .reason
                    .as_ref()
                    .map(|x| format!(" — {x}"))
                    .unwrap_or_default()
            )),
            sev = esc(&r.severity),
            value = esc(&value),
            cond = esc(&r.condition),
            rb = esc(&r.runbook),
            origin = if r.origin == "computed" {
                String::new()
            } else {
                format!(" · {}", esc(r.origin))
            }
        );
    }
    out.push_str("</div>");
    out
}

fn log_table(table: &super::logs::Table) -> String {
    let mut out = String::from("<div class=\"logs\"><table><thead><tr>");
    for c in &table.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        out.push_str("<tr>");
        for c in row {
            let _ = write!(
                out,
                "<td title=\"{t}\">{t}</td>",
                t = esc(&truncate(c, 300))
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

fn values_block(series: &[DrawnSeries], additive: bool) -> String {
    let mut out = String::from("<div class=\"values\">");
    for s in series {
        let v = if additive {
            summary(s, true)
        } else {
            s.points.values().next_back().copied()
        };
        let _ = write!(
            out,
            "<div><div class=\"big\" style=\"color:{}\">{}</div><div class=\"lab\">{}</div></div>",
            esc(&s.color),
            v.map(number).unwrap_or_else(|| "–".into()),
            esc(&s.label)
        );
    }
    out.push_str("</div>");
    out
}

fn series_table(series: &[DrawnSeries]) -> String {
    let mut out = String::from(
        "<table class=\"series\"><tr><th>label</th><th>last</th><th>min</th><th>max</th><th>sum</th></tr>",
    );
    for s in series {
        let vs: Vec<f64> = s.points.values().copied().collect();
        let cell = |v: Option<f64>| v.map(number).unwrap_or_else(|| "–".into());
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.label),
            cell(vs.last().copied()),
            cell(vs.iter().copied().reduce(f64::min)),
            cell(vs.iter().copied().reduce(f64::max)),
            cell((!vs.is_empty()).then(|| vs.iter().sum()))
        );
    }
    out.push_str("</table>");
    out
}

/// One widget's element.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per widget body kind writes that kind's element inside the frame and notes written around the match"
)]
pub(crate) fn widget(dashboard: &str, w: &WidgetOut) -> String {
    let (pw, ph) = widget_px(w.width, w.height);
    let view = match &w.body {
        Body::Chart { view, .. } => view.clone(),
        Body::Logs { .. } => "table".into(),
        _ => String::new(),
    };
    let transparent = matches!(
        w.body,
        Body::Text {
            transparent: true,
            ..
        }
    );
    let mut out = String::new();
    let _ = write!(
        out,
        "<div class=\"widget {kind}{tr}\" id=\"{dash}-w{idx}\" data-dashboard=\"{dash}\" data-widget-index=\"{idx}\" data-widget-type=\"{kind}\" data-has-data=\"{has}\" data-series=\"{series}\" data-thresholds=\"{th}\" data-view=\"{view}\" data-title=\"{title}\" style=\"grid-column:{col} / span {span};grid-row:{row} / span {rows}\">",
        kind = esc(&w.kind),
        tr = if transparent { " transparent" } else { "" },
        dash = esc(dashboard),
        idx = w.index,
        has = w.has_data,
        series = w.series_count(),
        th = w.threshold_count(),
        view = esc(&view),
        title = esc(&w.title),
        col = w.x.clamp(0, 23) + 1,
        span = w.width,
        row = w.y.max(0) + 1,
        rows = w.height,
    );
    let note_html = |notes: &[String]| -> String {
        notes
            .iter()
            .take(3)
            .map(|n| esc(n))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    if !w.title.is_empty() {
        let _ = write!(
            out,
            "<div class=\"wt\" title=\"{t}\">{t}{nd}</div>",
            t = esc(&w.title),
            nd = if w.has_data {
                ""
            } else {
                "<span class=\"nodata\">no data</span>"
            }
        );
    }
    match &w.body {
        Body::Chart {
            view,
            stacked,
            series,
            thresholds,
            period,
            grid,
            y_min,
            y_max,
            additive,
        } => {
            let columns = ((pw - 16.0) / 170.0).floor().max(1.0) as usize;
            let legend_rows = series.len().div_ceil(columns).min(4) as f64;
            let legend_h = legend_rows * 16.0 + 6.0;
            let has_foot = (w.has_data && !w.notes.is_empty()) || !w.provenance.is_empty();
            let foot_h = if has_foot { 20.0 } else { 0.0 };
            let chart_h = (ph - TITLE - legend_h - foot_h - 6.0).max(40.0);
            let chart_w = pw - 12.0;
            out.push_str("<div class=\"wb\">");
            match view.as_str() {
                "singleValue" | "gauge" => out.push_str(&values_block(series, *additive)),
                "table" => out.push_str(&series_table(series)),
                "bar" => out.push_str(&bar_svg(chart_w, chart_h, series, *additive)),
                "pie" => out.push_str(&pie_svg(chart_w, chart_h, series, *additive)),
                _ => out.push_str(&time_series_svg(&ChartArgs {
                    w: chart_w,
                    h: chart_h,
                    series,
                    thresholds,
                    stacked: *stacked,
                    period: *period,
                    grid,
                    y_min: *y_min,
                    y_max: *y_max,
                })),
            }
            if !w.has_data {
                let _ = write!(
                    out,
                    "<div class=\"nd\"><span>{}</span></div>",
                    note_html(&w.notes)
                );
            }
            out.push_str("</div>");
            if !series.is_empty() {
                out.push_str(&legend(series, *additive));
            }
            let mut foot: Vec<String> = Vec::new();
            if w.has_data {
                foot.extend(w.notes.iter().take(2).cloned());
            }
            if !w.provenance.is_empty() {
                foot.push(format!("local equivalent — {}", w.provenance.join("; ")));
            }
            if !foot.is_empty() {
                let _ = write!(
                    out,
                    "<div class=\"wnote\" title=\"{}\">{}</div>",
                    esc(&foot.join("\n")),
                    esc(&truncate(&foot.join(" · "), (pw / 5.5) as usize))
                );
            }
        }
        Body::Text { markdown: md, .. } => {
            let _ = write!(out, "<div class=\"wb\">{}</div>", markdown(md));
        }
        Body::Alarms(rows) => {
            out.push_str(&alarm_tiles(rows));
            if !w.notes.is_empty() {
                let _ = write!(out, "<div class=\"wnote\">{}</div>", note_html(&w.notes));
            }
        }
        Body::Logs { query, table } => {
            out.push_str("<div class=\"wb\">");
            if table.columns.is_empty() || table.rows.is_empty() {
                let _ = write!(
                    out,
                    "<div class=\"nd\"><span>{}</span></div>",
                    note_html(&w.notes)
                );
            } else {
                out.push_str(&log_table(table));
            }
            out.push_str("</div>");
            let _ = write!(
                out,
                "<div class=\"wnote\" title=\"{}\">{} rows · Logs Insights query run over the captured logs</div>",
                esc(query),
                table.rows.len()
            );
        }
        Body::Unsupported => {
            let _ = write!(
                out,
                "<div class=\"wb\"><div class=\"nd\"><span>{}</span></div></div>",
                note_html(&w.notes)
            );
        }
    }
    out.push_str("</div>");
    out
}

/// One dashboard: its heading and its grid of widgets.
pub(crate) fn dashboard(name: &str, title: &str, widgets: &[WidgetOut]) -> String {
    let mut out = String::new();
    let with = widgets.iter().filter(|w| w.has_data).count();
    let _ = write!(
        out,
        "<section class=\"dashboard\" data-dashboard=\"{n}\" data-widgets=\"{total}\" data-widgets-with-data=\"{with}\"><h2 class=\"dash\">{t}</h2><div class=\"grid\">",
        n = esc(name),
        t = esc(title),
        total = widgets.len(),
    );
    for w in widgets {
        out.push_str(&widget(name, w));
    }
    out.push_str("</div></section>");
    out
}

/// The whole page.
pub(crate) fn page(
    title: &str,
    meta: &str,
    with_data: usize,
    total: usize,
    body: &str,
    footer: &[String],
) -> String {
    let mut out = String::with_capacity(body.len() + 8192);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=1400\"><title>{t}</title><style>{CSS}</style></head><body>\n<header class=\"page\"><h1>{t}</h1><div class=\"meta\">{meta}<span class=\"score{partial}\" data-widgets=\"{total}\" data-widgets-with-data=\"{with_data}\">{with_data} of {total} widgets drew data</span></div></header>\n<main>{body}</main>\n",
        t = esc(title),
        partial = if with_data < total { " partial" } else { "" },
    );
    if !footer.is_empty() {
        out.push_str("<footer><ul>");
        for f in footer {
            let _ = write!(out, "<li>{}</li>", esc(f));
        }
        out.push_str("</ul></footer>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_subset_renders_headings_code_and_links() {
        let html =
            markdown("# payhook `local`\nSee [runbooks](../runbooks/) & **this**.\n- a\n- b");
        assert_eq!(
            html,
            "<h1>payhook <code>local</code></h1><p>See <a href=\"../runbooks/\">runbooks</a> &amp; <strong>this</strong>.</p><ul><li>a</li><li>b</li></ul>"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(13.0), "13");
        assert_eq!(number(0.0051), "0.005");
        assert_eq!(number(12.345), "12.35");
        assert_eq!(number(1234.56), "1234.6");
        assert_eq!(compact(25000.0), "25k");
    }
}
