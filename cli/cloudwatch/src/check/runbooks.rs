//! `runbooks/*.md`: one runbook per alarm kind. Each runbook belongs to an alarm (an orphan is
//! usually a renamed or deleted alarm), keeps the sections of `runbooks/README.md` in order,
//! names dashboard widgets that exist, and links to files that exist.

use std::path::Path;

use super::alarms::Alarms;
use super::codes;
use super::dashboards::Dashboards;
use super::json;
use super::report::{Report, list};

/// The sections every runbook has, in this order (`runbooks/README.md`).
pub(crate) const SECTIONS: [&str; 9] = [
    "What fired and why it matters",
    "Impact on payments",
    "First five minutes",
    "Logs Insights queries",
    "X-Ray filter expressions",
    "Dashboard widgets",
    "Mitigations",
    "Escalation",
    "Confirm recovery",
];

/// The section whose bold spans are dashboard widget titles.
const WIDGETS_SECTION: &str = "Dashboard widgets";

/// Checks every runbook; returns how many there are (without the README).
pub(crate) fn check(
    root: &Path,
    alarms: &Alarms,
    dashboards: &Dashboards,
    report: &mut Report,
) -> usize {
    let files = json::folder_files(root, "runbooks", "md", report);
    let alarms_present = root.join("alarms").is_dir();
    for rel in &files {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if alarms_present && !alarms.runbooks.contains_key(&name) {
            let kind = name.trim_end_matches(".md");
            report.add(
                rel,
                "$",
                codes::ORPHAN_RUNBOOK,
                format!(
                    "no alarm links to this runbook: alarms/{kind}.json (with `\"runbook\": \"{name}\"`) \
                     is missing, or the alarm was renamed; delete the runbook or restore its alarm"
                ),
            );
        }
        let Some(text) = read(root, rel, report) else {
            continue;
        };
        sections(rel, &text, report);
        if dashboards.complete && !dashboards.parsed.is_empty() {
            widgets(rel, &text, &dashboards.titles, report);
        }
        links(root, rel, &text, report);
    }
    let readme = Path::new("runbooks").join("README.md");
    if root.join(&readme).is_file()
        && let Some(text) = read(root, &readme, report)
    {
        links(root, &readme, &text, report);
    }
    files.len()
}

fn read(root: &Path, rel: &Path, report: &mut Report) -> Option<String> {
    match std::fs::read_to_string(root.join(rel)) {
        Ok(text) => Some(text),
        Err(e) => {
            report.add(
                rel,
                "$",
                codes::UNEXPECTED_FILE,
                format!("cannot read the file: {e}"),
            );
            None
        }
    }
}

/// Level-two headings with their line numbers, outside code blocks.
fn headings(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && let Some(heading) = line.strip_prefix("## ") {
            found.push((number + 1, heading.trim()));
        }
    }
    found
}

fn sections(rel: &Path, text: &str, report: &mut Report) {
    let found: Vec<&str> = headings(text).into_iter().map(|(_, h)| h).collect();
    let head: Vec<&str> = found.iter().copied().take(SECTIONS.len()).collect();
    if head != SECTIONS {
        let missing: Vec<&str> = SECTIONS
            .iter()
            .copied()
            .filter(|s| !found.contains(s))
            .collect();
        let problem = if missing.is_empty() {
            "the sections are out of order".to_owned()
        } else {
            format!("missing {}", list(&missing))
        };
        report.add(
            rel,
            "$",
            codes::RUNBOOK_SECTIONS,
            format!(
                "{problem}: a runbook starts with the sections {} in this order (runbooks/README.md); \
                 found {}",
                list(SECTIONS),
                list(&found)
            ),
        );
    }
    if !text.contains("```") {
        report.add(
            rel,
            "$",
            codes::RUNBOOK_SECTIONS,
            "a runbook carries copy-paste queries and commands in code blocks (```); this one has none",
        );
    }
}

/// The text of the `## Dashboard widgets` section, with its first line number.
fn widgets_section(text: &str) -> Option<(usize, String)> {
    let mut lines = text
        .lines()
        .enumerate()
        .skip_while(|(_, l)| l.trim() != format!("## {WIDGETS_SECTION}"));
    let (start, _) = lines.next()?;
    let body: Vec<&str> = lines
        .take_while(|(_, l)| !l.starts_with("## "))
        .map(|(_, l)| l)
        .collect();
    Some((start + 2, body.join("\n")))
}

/// The bold spans (`**Widget title**`) of the widgets section name dashboard widgets.
fn widgets(rel: &Path, text: &str, titles: &[String], report: &mut Report) {
    let Some((first_line, section)) = widgets_section(text) else {
        return;
    };
    let mut rest = section.as_str();
    let mut consumed = 0;
    while let Some(open) = rest.find("**") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("**") else { break };
        let title = after[..close]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let line = first_line + section[..consumed + open].matches('\n').count();
        let known = titles.iter().any(|t| {
            let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
            t == title || t.starts_with(&format!("{title} ("))
        });
        if !title.is_empty() && !known {
            let hint = super::vocabulary::closest(&title, titles.iter().map(String::as_str))
                .map(|k| format!(" (did you mean **{k}**?)"))
                .unwrap_or_default();
            report.add(
                rel,
                "$",
                codes::UNKNOWN_WIDGET,
                format!(
                    "line {line}: the section `{WIDGETS_SECTION}` names the widget **{title}**, but no \
                     dashboard widget has that title{hint}; on-call would look for it in vain"
                ),
            );
        }
        consumed += open + 2 + close + 2;
        rest = &after[close + 2..];
    }
}

/// Relative Markdown links (`[text](../alarms/)`) point at files that exist.
fn links(root: &Path, rel: &Path, text: &str, report: &mut Report) {
    let base = rel.parent().unwrap_or(Path::new(""));
    for (number, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(open) = rest.find("](") {
            let after = &rest[open + 2..];
            let Some(close) = after.find(')') else { break };
            let target = after[..close].trim();
            rest = &after[close + 1..];
            let external = target.is_empty()
                || target.starts_with('#')
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.contains("${");
            if external {
                continue;
            }
            let path = target.split(['#', '?']).next().unwrap_or_default();
            if !root.join(base).join(path).exists() {
                report.add(
                    rel,
                    "$",
                    codes::BROKEN_LINK,
                    format!(
                        "line {}: the link `{target}` points at a file that does not exist",
                        number + 1
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{headings, widgets_section};

    #[test]
    fn headings_in_code_blocks_do_not_count() {
        let text = "# T\n## A\n```\n## not a heading\n```\n## B\n";
        assert_eq!(headings(text), vec![(2, "A"), (6, "B")]);
    }

    #[test]
    fn the_widgets_section_ends_at_the_next_heading() {
        let text = "## Dashboard widgets\n\n**A**, **B\nC**.\n## Mitigations\n**D**";
        assert_eq!(
            widgets_section(text),
            Some((2, "\n**A**, **B\nC**.".to_owned()))
        );
    }
}
