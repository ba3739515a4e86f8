//! Locating the shared conformance fixtures (`../shared/conformance/` beside the project, or
//! `PAYHOOK_CONFORMANCE_DIR`). Used by tests, benches and `payhook` self-checks; the fixtures
//! are others' public data and are read in place, never copied into the project.

use std::path::{Path, PathBuf};

/// Environment variable that points at another copy of the conformance folder.
pub const CONFORMANCE_DIR_ENV: &str = "PAYHOOK_CONFORMANCE_DIR";

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The conformance folder, if present. When it is absent this prints why and returns `None`
/// so the caller can skip; under `CI=true` its absence is a failure (panics).
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os(CONFORMANCE_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/conformance"));
    if dir.is_dir() {
        return Some(dir);
    }
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
    assert!(
        !ci,
        "conformance fixtures not found at {} (set {CONFORMANCE_DIR_ENV}); they are required under CI=true",
        dir.display()
    );
    eprintln!(
        "SKIP: conformance fixtures not found at {} (set {CONFORMANCE_DIR_ENV} to run these tests)",
        dir.display()
    );
    None
}

/// Reads a JSON Lines file into values, one per non-empty line.
pub fn read_jsonl(path: &Path) -> std::io::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .collect()
}
