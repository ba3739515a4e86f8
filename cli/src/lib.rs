//! `payhook`: the command for developers and on-call — the local stack, signature checks,
//! rule tests and the on-call tools. The binary (`main.rs`) parses arguments and dispatches to
//! the command modules ([`commands`]), which argue, run the libraries (`payhook-local`,
//! `payhook-devkit`, `payhook-dashboard`) and print; the libraries' typed errors become a
//! [`CliError`] here, at the exit-code boundary.

pub mod commands;
pub mod defaults;

/// A failure of the command itself (exit 2), as opposed to a negative answer (exit 1).
#[derive(Debug)]
pub enum CliError {
    /// Wrong or missing arguments or files.
    Usage(String),
    /// Something the command needed failed (network, AWS, file system).
    Failed(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "usage error: {m}"),
            CliError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for CliError {}

impl CliError {
    /// A library's error: a usage error when the caller's input is at fault, else a failure.
    fn from_library(usage: bool, error: impl std::fmt::Display) -> CliError {
        if usage {
            CliError::Usage(error.to_string())
        } else {
            CliError::Failed(error.to_string())
        }
    }
}

impl From<payhook_devkit::DevkitError> for CliError {
    fn from(e: payhook_devkit::DevkitError) -> Self {
        CliError::from_library(e.is_usage(), e)
    }
}

impl From<payhook_local::LocalError> for CliError {
    fn from(e: payhook_local::LocalError) -> Self {
        CliError::from_library(e.is_usage(), e)
    }
}

impl From<payhook_dashboard::DashboardError> for CliError {
    fn from(e: payhook_dashboard::DashboardError) -> Self {
        CliError::from_library(e.is_usage(), e)
    }
}

impl From<payhook_aws::dlq::DlqError> for CliError {
    fn from(e: payhook_aws::dlq::DlqError) -> Self {
        CliError::Failed(e.to_string())
    }
}
