//! The error of this crate's provisioning helpers, and how AWS SDK errors are described in the
//! ports' `Unavailable` variants.

use aws_smithy_types::error::display::DisplayErrorContext;

/// Creating a table or a queue failed ([`create_table`](crate::create_table),
/// [`create_fifo_queue_with_dlq`](crate::create_fifo_queue_with_dlq)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// The arguments cannot describe a valid resource (e.g. a FIFO queue name without `.fifo`).
    #[error("invalid resource definition: {0}")]
    Invalid(String),
    /// AWS refused or could not be reached.
    #[error("AWS call failed: {0}")]
    Aws(String),
    /// The resource did not become ready in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

impl ProvisionError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ProvisionError::Invalid(_) => "invalid_resource_definition",
            ProvisionError::Aws(_) => "aws_call_failed",
            ProvisionError::Timeout(_) => "provision_timeout",
        }
    }
}

/// `"{service} {operation}: {error and its sources}"`, for logs and `Unavailable` messages.
pub(crate) fn describe(operation: &str, err: &(dyn std::error::Error + 'static)) -> String {
    format!("{operation}: {}", DisplayErrorContext(err))
}
