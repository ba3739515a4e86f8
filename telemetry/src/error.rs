//! The crate's error type: configuration problems found when telemetry is set up. Once set up,
//! telemetry never fails a handler; write errors are dropped.

/// Why telemetry could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A metrics namespace that CloudWatch would reject.
    #[error(
        "invalid metrics namespace {0:?}: use 1-255 characters from [A-Za-z0-9._#:/-], not starting with ':'"
    )]
    InvalidNamespace(String),
    /// A default dimension name that is empty, too long, reserved or already in the catalogue.
    #[error("invalid default dimension name {0:?}: {1}")]
    InvalidDimensionName(String, &'static str),
    /// A default dimension value that CloudWatch would reject.
    #[error("invalid value for default dimension {0:?}: use 1-1024 printable ASCII characters")]
    InvalidDimensionValue(String),
    /// Default dimensions plus a catalogue dimension set would exceed 30 dimensions.
    #[error(
        "too many dimensions: {0} default dimensions leave no room for the catalogue's sets (at most 30 per set)"
    )]
    TooManyDimensions(usize),
    /// The global tracing subscriber was already set by someone else.
    #[error("a global tracing subscriber is already installed")]
    SubscriberAlreadySet,
    /// The X-Ray daemon's UDP socket could not be set up.
    #[error("cannot open the X-Ray daemon client socket: {0}")]
    DaemonSocket(#[source] std::io::Error),
}

impl TelemetryError {
    /// A stable machine-readable code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            TelemetryError::InvalidNamespace(_) => "invalid_namespace",
            TelemetryError::InvalidDimensionName(..) => "invalid_dimension_name",
            TelemetryError::InvalidDimensionValue(_) => "invalid_dimension_value",
            TelemetryError::TooManyDimensions(_) => "too_many_dimensions",
            TelemetryError::SubscriberAlreadySet => "subscriber_already_set",
            TelemetryError::DaemonSocket(_) => "daemon_socket",
        }
    }
}
