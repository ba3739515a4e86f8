//! Builds the repository's `rules/`, `dashboards/`, `alarms/` and `runbooks/` into the binary
//! (see `src/defaults.rs`), so `payhook` works from any directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The folders built in, relative to the workspace root.
const DIRS: [&str; 4] = ["rules", "dashboards", "alarms", "runbooks"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.parent().expect("cli/ is inside the workspace");
    let mut paths = Vec::new();
    for dir in DIRS {
        let dir = root.join(dir);
        println!("cargo::rerun-if-changed={}", dir.display());
        files(&dir, &mut paths);
    }
    paths.sort();
    let mut code =
        String::from("/// Every built-in file: its path under the workspace root, and its text.\n");
    code.push_str("pub static FILES: &[(&str, &str)] = &[\n");
    for path in &paths {
        let relative = path.strip_prefix(root).expect("under the root");
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        // Directories are re-scanned on change of their own entries only: each file too.
        println!("cargo::rerun-if-changed={}", path.display());
        writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("defaults.rs"), code).expect("OUT_DIR is writable");
}
