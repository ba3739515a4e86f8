//! IAM proven against the code. The test `tests/iam_in_moto/` loads each function's policy,
//! as the Pulumi program renders it (`infra/tests/iam_moto.py` runs the program under Pulumi's
//! mocks), into a moto server as the only policy of a user of its own, turns moto's IAM
//! enforcement on, and runs that function's real code path in-process with those credentials:
//! the validator accepting a new webhook and a duplicate, a PayPal transmission (its record) and
//! a quarantined body; the provider processor draining its queue, recreating a missing status
//! item, taking over the claim of a crashed attempt, giving a failed record its retry delay,
//! failing until the message is dead-lettered and processing it once redriven; the event
//! processor recording `PROCESSED` and refusing an event whose status item is gone. A policy
//! missing an action the code calls fails it (shown for one action of each function), and every
//! action a policy grants must be needed by one of these paths, or be listed with the reason no
//! path on moto can show it (Lambda's logs and traces, the event source mapping, KMS behind SSM,
//! a race).
//!
//! Run: `cargo nextest run -p payhook-infra-iam` (needs `.venv`, `scripts/bootstrap-python.sh`).
