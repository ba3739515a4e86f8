//! Integration tests of payhook-telemetry, one module per area. Run with
//! `cargo test -p payhook-telemetry`.

mod catalogue;
mod emf_conformance;
mod invocation;
mod lambda;
mod logs;
mod metrics;
mod output_bytes;
mod redaction;
mod redaction_properties;
mod support;
mod traces;
#[path = "../../benches/workload/mod.rs"]
mod workload;
