//! The repository's `rules/`, `dashboards/`, `alarms/` and `runbooks/`, built into the binary
//! (by `build.rs`), so the CLI works from any directory: a command whose default folder (such as
//! `rules`) is not in the working directory uses the built-in copy instead.
//!
//! Everything that reads those folders takes a path, so the built-in copy is written once to a
//! folder of the system's temporary directory named after its content (a new build with other
//! files writes a new folder) and that folder's path is used.
//!
//! A folder given explicitly (`--rules-dir my-rules`) that does not exist is an error as
//! before: only the default names fall back.

use std::hash::{Hash as _, Hasher as _};
use std::io;
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/defaults.rs"));

/// `requested` when it exists; the built-in copy of the same folder when `requested` is the
/// default name `default` (e.g. `rules`) and is not in the working directory; else `requested`
/// (its reader then reports it missing).
pub fn resolve(requested: &Path, default: &str) -> io::Result<PathBuf> {
    if requested.exists() || requested != Path::new(default) || !is_built_in(default) {
        return Ok(requested.to_path_buf());
    }
    let root = materialise()?;
    eprintln!(
        "payhook: no `{default}` folder here: using the built-in one ({})",
        root.join(default).display()
    );
    Ok(root.join(default))
}

/// [`resolve`] for `--rules-dir`, as a command's error.
pub fn rules_dir(requested: &Path) -> Result<PathBuf, crate::CliError> {
    folder(requested, "rules")
}

/// [`resolve`] for any built-in folder (`dashboards`, `alarms`, …), as a command's error.
pub fn folder(requested: &Path, default: &str) -> Result<PathBuf, crate::CliError> {
    resolve(requested, default)
        .map_err(|e| crate::CliError::Failed(format!("cannot write the built-in {default}: {e}")))
}

/// Whether `folder` is one of the built-in folders.
pub fn is_built_in(folder: &str) -> bool {
    FILES
        .iter()
        .any(|(name, _)| name.split('/').next() == Some(folder))
}

/// Writes the built-in files (once per content) and returns the folder that holds them.
pub fn materialise() -> io::Result<PathBuf> {
    let root = std::env::temp_dir().join(format!("payhook-defaults-{:016x}", content_hash()));
    if root.join(".complete").is_file() {
        return Ok(root);
    }
    // Written aside and renamed into place, so a concurrent run never reads half a folder.
    let staging = std::env::temp_dir().join(format!(
        "payhook-defaults-{:016x}.{}",
        content_hash(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    for (name, text) in FILES {
        let path = staging.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    std::fs::write(staging.join(".complete"), "")?;
    match std::fs::rename(&staging, &root) {
        Ok(()) => Ok(root),
        // Another run got there first with the same content.
        Err(_) if root.join(".complete").is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(root)
        }
        Err(e) => Err(e),
    }
}

/// A hash of every built-in file's name and text.
fn content_hash() -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    FILES.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_folders_hold_the_repositorys_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (name, text) in FILES {
            let on_disk = std::fs::read_to_string(root.join(name)).expect(name);
            assert_eq!(&on_disk, text, "{name}");
        }
        for folder in ["rules", "dashboards", "alarms", "runbooks"] {
            assert!(is_built_in(folder), "{folder}");
        }
        assert!(
            FILES
                .iter()
                .any(|(n, _)| *n == "rules/currencies/rates.json")
        );
    }

    #[test]
    fn a_default_name_missing_here_resolves_to_a_complete_built_in_copy() {
        // The working directory of a test is the crate's, which has no `rules` of its own.
        assert!(!Path::new("rules").exists());
        let dir = resolve(Path::new("rules"), "rules").unwrap();
        assert!(dir.ends_with("rules"), "{}", dir.display());
        let rules = payhook_pattern::load_rules(&dir).unwrap();
        let built_in = FILES
            .iter()
            .filter(|(n, _)| {
                n.starts_with("rules/") && n.ends_with(".json") && n.matches('/').count() == 1
            })
            .count();
        assert_eq!(rules.len(), built_in);
        assert!(
            dir.parent()
                .unwrap()
                .join("dashboards/payments.json")
                .is_file()
        );
        // The same content resolves to the same folder.
        assert_eq!(resolve(Path::new("rules"), "rules").unwrap(), dir);
    }

    #[test]
    fn an_explicit_folder_that_does_not_exist_is_not_replaced() {
        let dir = resolve(Path::new("my-rules"), "rules").unwrap();
        assert_eq!(dir, Path::new("my-rules"));
    }
}
