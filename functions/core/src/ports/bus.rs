//! The `payment-events` EventBridge bus as a port, the entry the provider processors put on it,
//! and a bus that only records (`payhook_aws::EventBridgeBus` is the AWS adapter; the local
//! stack's routing bus is `payhook-local`'s).

use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The bus every processor publishes to.
pub const PAYMENT_EVENTS_BUS: &str = "payment-events";

/// EventBridge's largest batch for one `PutEvents` call.
pub const PUT_EVENTS_MAX_ENTRIES: usize = 10;

/// One `PutEvents` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusEntry {
    /// The bus name.
    pub event_bus: String,
    /// `payhook.<provider>`.
    pub source: String,
    /// The normalised event type (`payment.succeeded`).
    pub detail_type: String,
    /// The canonical event plus its tier, as JSON text.
    pub detail: String,
    /// X-Ray trace header (`TraceHeader`).
    pub trace_header: Option<String>,
}

/// The result for one entry of a `PutEvents` call (EventBridge reports them one by one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    /// Accepted; the bus's event id.
    Accepted(String),
    /// Rejected; EventBridge's error code and message.
    Failed {
        /// `ErrorCode` (e.g. `InternalFailure`, `ThrottlingException`).
        code: String,
        /// `ErrorMessage`.
        message: String,
    },
}

/// The bus could not be called at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event bus unavailable: {0}")]
pub struct BusError(pub String);

impl BusError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        "event_bus_unavailable"
    }
}

/// An EventBridge bus.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Puts up to [`PUT_EVENTS_MAX_ENTRIES`] entries; one result per entry, in order.
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError>;
}

/// A bus that records what it is given (tests, benches).
#[derive(Debug, Default)]
pub struct RecordingBus {
    entries: Mutex<Vec<BusEntry>>,
}

impl RecordingBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything put so far, in order.
    pub fn entries(&self) -> Vec<BusEntry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let mut all = self
            .entries
            .lock()
            .map_err(|_| BusError("recording bus poisoned".into()))?;
        let start = all.len();
        all.extend(entries.iter().cloned());
        Ok((start..all.len())
            .map(|i| EntryResult::Accepted(format!("rec-{i}")))
            .collect())
    }
}

#[async_trait]
impl<B: EventBus + ?Sized> EventBus for std::sync::Arc<B> {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        (**self).put_events(entries).await
    }
}
