//! Locating the shared conformance fixtures (`../shared/conformance/` beside the project, or
//! `PAYHOOK_CONFORMANCE_DIR`). Used by tests and benches; the fixtures
//! are others' public data and are read in place, never copied into the project.

use std::path::{Path, PathBuf};

/// Environment variable that points at another copy of the conformance folder.
pub const CONFORMANCE_DIR_ENV: &str = "PAYHOOK_CONFORMANCE_DIR";

/// The workspace root (the folder above this crate's).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The conformance folder: [`CONFORMANCE_DIR_ENV`] if set and not empty, else
/// `../shared/conformance` beside the workspace. `None` when it is absent, after
/// [`skip_test`](crate::skip::skip_test) (which fails the test under the test command).
pub fn conformance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os(CONFORMANCE_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/conformance"));
    if dir.is_dir() {
        return Some(dir);
    }
    crate::skip::skip_test(&format!(
        "conformance fixtures not found at {} (put the shared folder beside the repository, or \
         set {CONFORMANCE_DIR_ENV} to a copy)",
        dir.display()
    ));
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
