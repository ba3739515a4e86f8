//! Faults the local stack can inject so tests and the demo can break things on purpose: a bus
//! that rejects one payment's events (a poison message) and a processor that crashes after
//! PutEvents (mid-batch).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus};

/// What to break.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// PutEvents entries of these payment ids are rejected (`InternalFailure`) until cleared.
    pub reject_payments: Arc<Mutex<Vec<String>>>,
    /// The first batch that publishes an event of one of these payment ids crashes right after
    /// PutEvents: nothing of that batch is acknowledged (as when a Lambda dies).
    pub crash_after_publish: Arc<Mutex<Vec<String>>>,
}

impl Faults {
    /// Rejects `payment_id`'s events from now on.
    pub fn reject_payment(&self, payment_id: &str) {
        if let Ok(mut v) = self.reject_payments.lock() {
            v.push(payment_id.to_owned());
        }
    }

    /// Stops rejecting every payment.
    pub fn clear_rejections(&self) {
        if let Ok(mut v) = self.reject_payments.lock() {
            v.clear();
        }
    }

    /// Crashes the next batch that publishes `payment_id`'s event.
    pub fn crash_once_after_publishing(&self, payment_id: &str) {
        if let Ok(mut v) = self.crash_after_publish.lock() {
            v.push(payment_id.to_owned());
        }
    }
}

fn payment_of(entry: &BusEntry) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&entry.detail)
        .ok()?
        .get("payment_id")?
        .as_str()
        .map(str::to_owned)
}

/// The error a crash-after-publish fault makes PutEvents return; the poller that sees it in a
/// batch's outcome acknowledges nothing of that batch.
pub const INJECTED_CRASH: &str = "injected crash after PutEvents";

/// A bus wrapper that applies [`Faults`].
pub struct FaultyBus {
    inner: Arc<dyn EventBus>,
    faults: Faults,
}

impl std::fmt::Debug for FaultyBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyBus").finish_non_exhaustive()
    }
}

impl FaultyBus {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn EventBus>, faults: Faults) -> Self {
        FaultyBus { inner, faults }
    }
}

#[async_trait]
impl EventBus for FaultyBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let rejected: Vec<String> = self
            .faults
            .reject_payments
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        if !rejected.is_empty()
            && entries
                .iter()
                .any(|e| payment_of(e).is_some_and(|p| rejected.contains(&p)))
        {
            return Ok(entries
                .iter()
                .map(|_| EntryResult::Failed {
                    code: "InternalFailure".into(),
                    message: "injected fault: this payment's events are rejected".into(),
                })
                .collect());
        }
        let result = self.inner.put_events(entries).await?;
        // Each entry's detail is parsed only while a crash is armed, not on every publish.
        if let Ok(mut crash) = self.faults.crash_after_publish.lock()
            && !crash.is_empty()
            && let Some(pos) = entries
                .iter()
                .filter_map(payment_of)
                .find_map(|p| crash.iter().position(|c| *c == p))
        {
            crash.remove(pos);
            return Err(BusError(INJECTED_CRASH.into()));
        }
        Ok(result)
    }
}
