//! Collecting findings, and building the JSON paths they point at.

use std::path::{Path, PathBuf};

use super::Finding;

/// Every finding of one run.
#[derive(Debug, Default)]
pub(crate) struct Report {
    findings: Vec<Finding>,
}

impl Report {
    /// Records a finding.
    pub(crate) fn add(
        &mut self,
        file: &Path,
        json_path: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            file: file.to_path_buf(),
            json_path: json_path.into(),
            code,
            message: message.into(),
        });
    }

    /// A reporter for one file.
    pub(crate) fn file(&mut self, file: &Path) -> FileReport<'_> {
        FileReport {
            report: self,
            file: file.to_path_buf(),
        }
    }

    /// Whether anything was reported about `file`.
    pub(crate) fn has_findings_for(&self, file: &Path) -> bool {
        self.findings.iter().any(|f| f.file == file)
    }

    /// The findings, grouped by file (stable: discovery order within a file).
    pub(crate) fn into_sorted(mut self) -> Vec<Finding> {
        self.findings.sort_by(|a, b| a.file.cmp(&b.file));
        self.findings
    }
}

/// Findings about one file.
#[derive(Debug)]
pub(crate) struct FileReport<'a> {
    report: &'a mut Report,
    file: PathBuf,
}

impl FileReport<'_> {
    /// Records a finding at `json_path` of this file.
    pub(crate) fn add(&mut self, json_path: &str, code: &'static str, message: impl Into<String>) {
        let file = self.file.clone();
        self.report.add(&file, json_path, code, message);
    }
}

/// `$.a` + `b` → `$.a.b`.
pub(crate) fn key(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// `$.a` + 3 → `$.a[3]`.
pub(crate) fn index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// A JSON type's name, for messages.
pub(crate) fn type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
pub(crate) fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items
        .into_iter()
        .map(|i| format!("`{}`", i.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}
