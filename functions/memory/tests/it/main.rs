//! `payhook-memory`'s integration tests, in one binary: the SQS FIFO emulation against AWS's
//! delivery semantics (`memory_sqs`), and the pipeline's guarantees under crashes, races and
//! leases over these queues (`pipeline`).
//!
//! Run one area with `cargo test -p payhook-memory --test it <module>::`.

mod memory_sqs;
mod pipeline;
