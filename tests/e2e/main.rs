//! End-to-end tests over HTTP on loopback: the whole pipeline (API Gateway stand-in, validator,
//! FIFO queues, processors, bus, event processor, status store) as `payhook serve` runs it;
//! the Lambda binaries under a Runtime API stand-in; and the crate graph's dependency rules of
//! ARCHITECTURE.md (`architecture`), checked against `cargo metadata`.

mod architecture;
mod authenticity;
mod aws;
mod books;
mod currencies;
mod delivery;
mod front_door;
mod lambda_binaries;
mod lambda_harness;
mod recovery;
mod redaction;
mod support;
mod tracing;
