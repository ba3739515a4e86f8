//! The ports the handlers are written against, each with a small in-memory implementation. The
//! AWS adapters live in `payhook-aws`; the SQS FIFO emulator `payhook serve` runs on is
//! `payhook-memory`'s; the tests and benches use the ones here.
//!
//! | port | in memory | in AWS (`payhook-aws`) |
//! |---|---|---|
//! | [`SecretStore`] | [`MemorySecretStore`] | `SsmSecretStore` |
//! | [`Queue`], [`MessageVisibility`] | [`MemoryQueue`] (records and deduplicates) | `SqsFifoQueue`, `SqsConsumer` |
//! | [`EventBus`] | [`RecordingBus`] | `EventBridgeBus` |
//! | [`Clock`] | [`FixedClock`] ([`SystemClock`] is the real one) | — |
//! | [`StatusStore`](crate::status::StatusStore) | [`MemoryStatusStore`](crate::status::MemoryStatusStore) | `DynamoStatusStore` |
//! | [`PaymentStore`](crate::payment::PaymentStore) | [`MemoryPaymentStore`](crate::payment::MemoryPaymentStore) | `DynamoPaymentStore` |
//! | [`BlobStore`](crate::blob::BlobStore) | [`MemoryBlobStore`](crate::blob::MemoryBlobStore) | `S3BlobStore` |
//!
//! The last three stay beside what they store (the status machine's item and transitions, the
//! payment record, the quarantine keys): their in-memory stores apply the same conditions as
//! the domain's own rules, and moving them here would split each rule from its store.

mod bus;
mod clock;
mod queue;
mod secrets;

pub use bus::{
    BusEntry, BusError, EntryResult, EventBus, PAYMENT_EVENTS_BUS, PUT_EVENTS_MAX_ENTRIES,
    RecordingBus,
};
pub use clock::{Clock, FixedClock, SystemClock};
pub use queue::{
    MemoryQueue, MessageVisibility, Queue, QueueError, QueueMessage, SQS_MAX_MESSAGE_BYTES,
};
pub use secrets::{MemorySecretStore, ProviderSecrets, SecretError, SecretStore};
