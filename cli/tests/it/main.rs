//! The `payhook` command's integration tests, in one binary (one link of the AWS SDK instead of
//! one per file): `bench`, `check` and its drift cases, the configuration and `send`, the dashboard
//! preview, the on-call tools against moto and the local stack, quarantine, `rules test`,
//! `serve` killed mid-batch, `sweep`, and `verify` over the signature vectors.

mod bench_command;
mod check_drift;
mod config_and_send;
mod dashboard_preview;
mod oncall_moto;
mod quarantine;
mod rules_test_command;
mod serve_sigkill;
mod support;
mod sweep;
mod verify_vectors;
