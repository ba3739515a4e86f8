//! IAM proven against the code. The test `tests/iam_in_moto.rs` loads each function's policy,
//! as the Pulumi program renders it (`infra/tests/iam_moto.py` runs the program under Pulumi's
//! mocks), into a moto server as the only policy of a user of its own, turns moto's IAM
//! enforcement on, and runs that function's real code path in-process with those credentials:
//! the validator accepting a new webhook and a duplicate, the provider processor draining its
//! queue and recreating a missing status item, the event processor recording `PROCESSED`. A
//! policy missing an action the code calls fails it; the test shows that for one action of
//! each function.
//!
//! Run: `cargo nextest run -p payhook-infra-iam` (needs `.venv`, `scripts/bootstrap-python.sh`).
