//! The run directory: where a local run (`payhook serve`, `demo`, `bench`) writes what the
//! deployed stack would send to CloudWatch and X-Ray, one file each, and the demo its summary.

use std::path::PathBuf;

use payhook_devkit::unix_now;

/// The folder fresh run directories are made in, relative to the working directory.
pub const RUNS_DIR: &str = "runs";
/// The JSON log lines (Powertools' shape), one per line.
pub const LOGS_FILE: &str = "logs.jsonl";
/// The EMF metric documents, one per line.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The X-Ray segment documents, one per line.
pub const SEGMENTS_FILE: &str = "xray.jsonl";
/// The demo's report and requests.
pub const SUMMARY_FILE: &str = "summary.json";

/// A fresh run directory for a run of `kind` (`demo`, `serve`, `bench`): `runs/<kind>-<time>`.
pub fn fresh(kind: &str) -> PathBuf {
    PathBuf::from(format!("{RUNS_DIR}/{kind}-{}", unix_now()))
}
