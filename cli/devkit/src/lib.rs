//! `payhook-devkit`: what a developer needs to imitate the providers — realistic webhook
//! payloads and their signatures ([`payloads`]), the local PayPal demo CA ([`democa`]), the
//! HTTP client that posts webhooks and calls the local stack's admin API ([`http`]), and the
//! traffic plan of `payhook demo` ([`plan`]). It knows no local stack and no command: the
//! `payhook` CLI (`cli/src/commands/`) and the local stack (`cli/local`) build on it.

pub mod democa;
pub mod http;
pub mod payloads;
pub mod plan;

use std::path::Path;

/// A failure of the developer kit. [`DevkitError::code`] is stable; the message is for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevkitError {
    /// What the caller asked for cannot be built or sent as given: an unknown event type, an
    /// amount its currency cannot carry, a missing or unusable signing key, a URL that is not
    /// an absolute http(s) URL.
    #[error("{0}")]
    Invalid(String),
    /// The system's secure random generator failed (or was asked for nothing).
    #[error("{0}")]
    Random(String),
    /// Signing, serialising a payload or generating the demo CA failed.
    #[error("{0}")]
    Crypto(String),
    /// A file could not be written.
    #[error("{0}")]
    Write(String),
    /// TLS could not be set up for the HTTP client.
    #[error("{0}")]
    Tls(String),
    /// A request got no (complete) answer in time.
    #[error("{0}")]
    NoResponse(String),
}

impl DevkitError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            DevkitError::Invalid(_) => "devkit.invalid_input",
            DevkitError::Random(_) => "devkit.random_failed",
            DevkitError::Crypto(_) => "devkit.crypto_failed",
            DevkitError::Write(_) => "devkit.write_failed",
            DevkitError::Tls(_) => "devkit.tls_setup_failed",
            DevkitError::NoResponse(_) => "devkit.no_response",
        }
    }

    /// Whether the caller's input is at fault (the CLI says `usage error`), rather than
    /// something the kit needed.
    pub fn is_usage(&self) -> bool {
        matches!(self, DevkitError::Invalid(_))
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Writes `bytes` to `path`; `private` files are created readable by their owner only (Unix).
pub fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), DevkitError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(|e| DevkitError::Write(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_only_invalid_input_is_a_usage_error() {
        let all = [
            (DevkitError::Invalid(String::new()), "devkit.invalid_input"),
            (DevkitError::Random(String::new()), "devkit.random_failed"),
            (DevkitError::Crypto(String::new()), "devkit.crypto_failed"),
            (DevkitError::Write(String::new()), "devkit.write_failed"),
            (DevkitError::Tls(String::new()), "devkit.tls_setup_failed"),
            (DevkitError::NoResponse(String::new()), "devkit.no_response"),
        ];
        for (error, code) in &all {
            assert_eq!(error.code(), *code);
            assert_eq!(error.is_usage(), *code == "devkit.invalid_input");
        }
    }
}
