//! What several of the command's integration tests need.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The `payhook` binary this test run built.
pub(crate) fn payhook() -> Command {
    Command::new(env!("CARGO_BIN_EXE_payhook"))
}

/// A fresh, empty folder for one test, under `area` (the test module) in the test run's
/// temporary directory; unique per process, call and moment.
pub(crate) fn scratch_in(area: &str, name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(area)
        .join(format!(
            "{name}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
