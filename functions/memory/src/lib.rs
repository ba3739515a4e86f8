//! `payhook-memory`: in-memory emulators of the AWS services between payhook's Lambdas, the
//! counterparts of `payhook-aws`'s adapters, for `payhook serve` (no AWS account) and for the
//! tests that hold the pipeline's delivery guarantees.
//!
//! - [`sqs`]: SQS FIFO queues with AWS's semantics (message groups, the deduplication window,
//!   visibility timeouts, receive counts, redrive to a FIFO dead-letter queue, long polling);
//!   [`MemorySqs`](sqs::MemorySqs) implements `payhook-core`'s queue ports as
//!   `payhook_aws::SqsFifoQueue` and `payhook_aws::SqsConsumer` do.
//! - [`eventbridge`]: an EventBridge bus that routes with `payhook-pattern`'s matcher and
//!   delivers with each rule's retry policy and a dead-letter list;
//!   [`MemoryBus`](eventbridge::MemoryBus) implements `payhook-core`'s bus port as
//!   `payhook_aws::EventBridgeBus` does.
//!
//! The small fakes of the ports (a queue that only records, a recording bus, fixed clocks,
//! secrets, the status, payment and blob stores) stay beside the ports in `payhook-core`: the
//! handlers' own tests use them. This crate holds what emulates a service's behaviour.
//!
//! The tests here include the pipeline's crash, race and lease tests (`tests/it/pipeline`): they
//! run `payhook-core`'s handlers over these queues, and `payhook-core` cannot take this crate as
//! a dev-dependency (it depends on `payhook-core`).

pub mod eventbridge;
pub mod sqs;
