//! The `payment-events` bus through EventBridge `PutEvents`, implementing
//! [`payhook_core::ports::EventBus`]. Each entry carries the X-Ray `TraceHeader`; partial
//! failures are reported entry by entry so the processor fails exactly the records whose
//! entries were rejected.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use payhook_core::ports::{BusEntry, BusError, EntryResult, EventBus, PUT_EVENTS_MAX_ENTRIES};

/// An EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: crate::SdkClient<Client>,
}

impl EventBridgeBus {
    /// A bus client; the bus name comes with each entry.
    pub fn new(client: impl Into<crate::SdkClient<Client>>) -> Self {
        EventBridgeBus {
            client: client.into(),
        }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        if entries.len() > PUT_EVENTS_MAX_ENTRIES {
            return Err(BusError(format!(
                "{} entries in one PutEvents call; the limit is {PUT_EVENTS_MAX_ENTRIES}",
                entries.len()
            )));
        }
        let request_entries = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&e.event_bus)
                    .source(&e.source)
                    .detail_type(&e.detail_type)
                    .detail(&e.detail)
                    .set_trace_header(e.trace_header.clone())
                    .build()
            })
            .collect::<Vec<_>>();
        let output = self
            .client
            .put_events()
            .set_entries(Some(request_entries))
            .send()
            .await
            .map_err(|e| {
                BusError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
            })?;
        let results = output.entries();
        if results.len() != entries.len() {
            return Err(BusError(format!(
                "PutEvents returned {} results for {} entries",
                results.len(),
                entries.len()
            )));
        }
        Ok(results
            .iter()
            .map(|r| match (r.event_id(), r.error_code()) {
                (Some(id), None) => EntryResult::Accepted(id.to_owned()),
                (_, code) => EntryResult::Failed {
                    code: code.unwrap_or("Unknown").to_owned(),
                    message: r
                        .error_message()
                        .unwrap_or("no event id returned")
                        .to_owned(),
                },
            })
            .collect())
    }
}
