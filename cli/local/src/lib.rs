//! `payhook-local`: the whole pipeline on one machine — the same handlers as the Lambdas,
//! wired to in-memory stand-ins (or the AWS adapters on moto/LocalStack) for API Gateway, SQS
//! FIFO, EventBridge and DynamoDB ([`stack`]), the front door and admin API ([`http`],
//! [`admin`]), injected faults ([`faults`]), the X-Ray daemon stand-in ([`xray`]), the run
//! directory ([`run_dir`]), the books of a run ([`books`]) and the demo's run ([`demo`]), and
//! the configuration they run with ([`config`]). The `payhook` CLI (`cli/src/commands/`) parses
//! arguments and prints; everything it runs is here.

pub mod admin;
pub mod aws;
pub mod books;
pub mod config;
pub mod demo;
pub mod faults;
pub mod http;
pub mod run_dir;
pub mod sink;
pub mod stack;
pub mod stage;
pub mod xray;

use payhook_devkit::DevkitError;

/// A failure of the local stack. [`LocalError::code`] is stable; the message is for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The configuration (file, environment override or a file it names) is missing or
    /// invalid, or would be overwritten.
    #[error("{0}")]
    Config(String),
    /// The routing rules cannot be loaded.
    #[error("{0}")]
    Rules(String),
    /// A file, folder or socket could not be read, written or bound.
    #[error("{0}")]
    Io(String),
    /// A call to the AWS-compatible endpoint failed, or the stage there is not as expected.
    #[error("{0}")]
    Aws(String),
    /// The running stack could not answer (a store, queue or bus call failed).
    #[error("{0}")]
    Stack(String),
    /// A quarantined webhook could not be replayed.
    #[error("{0}")]
    Replay(String),
    /// The developer kit failed (payloads, signing, the demo CA, the HTTP client).
    #[error(transparent)]
    Devkit(#[from] DevkitError),
}

impl LocalError {
    /// The stable code of this error (the kit's own code for [`LocalError::Devkit`]).
    pub fn code(&self) -> &'static str {
        match self {
            LocalError::Config(_) => "local.config_invalid",
            LocalError::Rules(_) => "local.rules_invalid",
            LocalError::Io(_) => "local.io_failed",
            LocalError::Aws(_) => "local.aws_failed",
            LocalError::Stack(_) => "local.stack_failed",
            LocalError::Replay(_) => "local.replay_failed",
            LocalError::Devkit(e) => e.code(),
        }
    }

    /// Whether the caller's input is at fault (the CLI says `usage error`), rather than
    /// something the stack needed.
    pub fn is_usage(&self) -> bool {
        match self {
            LocalError::Config(_) | LocalError::Rules(_) => true,
            LocalError::Devkit(e) => e.is_usage(),
            _ => false,
        }
    }
}

impl From<payhook_aws::dlq::DlqError> for LocalError {
    fn from(e: payhook_aws::dlq::DlqError) -> Self {
        LocalError::Aws(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_config_and_rules_are_usage_errors() {
        let all = [
            (
                LocalError::Config(String::new()),
                "local.config_invalid",
                true,
            ),
            (
                LocalError::Rules(String::new()),
                "local.rules_invalid",
                true,
            ),
            (LocalError::Io(String::new()), "local.io_failed", false),
            (LocalError::Aws(String::new()), "local.aws_failed", false),
            (
                LocalError::Stack(String::new()),
                "local.stack_failed",
                false,
            ),
            (
                LocalError::Replay(String::new()),
                "local.replay_failed",
                false,
            ),
            (
                LocalError::Devkit(DevkitError::Invalid(String::new())),
                "devkit.invalid_input",
                true,
            ),
        ];
        for (error, code, usage) in &all {
            assert_eq!(error.code(), *code);
            assert_eq!(error.is_usage(), *usage);
        }
    }
}
