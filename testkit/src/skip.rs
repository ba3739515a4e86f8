//! The one rule for a test that needs something from outside the repository (the conformance
//! fixtures, a moto server, Chromium, the Python venv) and does not find it. Run by hand, such a
//! test prints a `SKIP:` line and passes; under the test command (`scripts/test.sh`, which sets
//! [`STRICT_ENV`]) it fails. Either way the skip is appended to the file named by [`LOG_ENV`],
//! so the test command can count and list them at the end.
//!
//! ```no_run
//! # fn chromium() -> Option<std::path::PathBuf> { None }
//! let Some(chromium) = chromium() else {
//!     payhook_testkit::skip::skip_test("chromium not found (apt-get install -y chromium)");
//!     return;
//! };
//! # let _ = chromium;
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Set (to anything but empty or `0`) by the test command: a test that would skip
/// fails instead.
pub const STRICT_ENV: &str = "PAYHOOK_STRICT_TESTS";

/// A file each skip is appended to, one `test<TAB>reason` line per skip (set by the test
/// command, which prints the count and the lines at the end).
pub const LOG_ENV: &str = "PAYHOOK_SKIP_LOG";

/// Whether tests run strictly: a missing outside part is a failure, not a skip.
pub fn strict() -> bool {
    strict_value(std::env::var(STRICT_ENV).ok().as_deref())
}

/// [`strict`] for a given value of [`STRICT_ENV`]: unset, empty and `0` are lenient; any other
/// value (`false` and typos included) is strict, as in `scripts/test.sh`.
pub fn strict_value(value: Option<&str>) -> bool {
    !matches!(value, None | Some("" | "0"))
}

/// Skips the calling test because `reason` (what is missing and how to get it): records the
/// skip in the [`LOG_ENV`] file, then panics with `reason` under [`strict`] mode, or prints
/// `SKIP: <test>: <reason>` and returns so the caller can return early.
pub fn skip_test(reason: &str) {
    let log = std::env::var_os(LOG_ENV)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from);
    if let Err(failure) = record_skip(&current_test(), reason, strict(), log.as_deref()) {
        panic!("{failure}");
    }
}

/// [`skip_test`] with its inputs given: appends the skip to `log`, then the failure message
/// under `strict`, else prints the `SKIP` line.
fn record_skip(test: &str, reason: &str, strict: bool, log: Option<&Path>) -> Result<(), String> {
    if let Some(log) = log {
        // One short write per line: concurrent test processes append whole lines.
        let line = format!("{test}\t{reason}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(err) = written {
            eprintln!("could not record the skip in {}: {err}", log.display());
        }
    }
    if strict {
        return Err(format!(
            "{test}: {reason} ({STRICT_ENV} is set: a missing outside part fails the test)"
        ));
    }
    eprintln!("SKIP: {test}: {reason}");
    Ok(())
}

/// The running test's name (libtest names each test's thread after it), else the test
/// binary's.
fn current_test() -> String {
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "a test".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unset_empty_and_zero_are_lenient() {
        for lenient in [None, Some(""), Some("0")] {
            assert!(!strict_value(lenient), "{lenient:?}");
        }
        for strict in [Some("1"), Some("true"), Some("false"), Some(" 0 ")] {
            assert!(strict_value(strict), "{strict:?}");
        }
    }

    /// Records `skips` in a fresh log: each one's result, and the log's text.
    fn record_all(strict: bool, skips: &[(&str, &str)]) -> (Vec<Result<(), String>>, String) {
        let log =
            std::env::temp_dir().join(format!("payhook-skip-{strict}-{}", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let results = skips
            .iter()
            .map(|(test, reason)| record_skip(test, reason, strict, Some(&log)))
            .collect();
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        (results, text)
    }

    #[test]
    fn a_lenient_skip_is_logged_and_lets_the_test_return() {
        let skips = [
            ("t1", "moto_server not found"),
            ("t2", "chromium not found"),
        ];
        let (results, log) = record_all(false, &skips);
        assert_eq!(results, [Ok(()), Ok(())]);
        assert_eq!(log, "t1\tmoto_server not found\nt2\tchromium not found\n");
    }

    #[test]
    fn a_strict_skip_is_logged_and_fails_naming_the_test_and_the_reason() {
        let (results, log) = record_all(true, &[("t1", "conformance fixtures not found")]);
        let failure = results[0].clone().unwrap_err();
        assert!(
            failure.starts_with("t1: conformance fixtures not found"),
            "{failure}"
        );
        assert!(failure.contains(STRICT_ENV), "{failure}");
        assert_eq!(log, "t1\tconformance fixtures not found\n");
    }

    #[test]
    fn current_test_is_named_after_the_test_thread() {
        assert_eq!(
            current_test(),
            "skip::tests::current_test_is_named_after_the_test_thread"
        );
    }
}
