//! `payhook-testkit`: what the workspace's tests and benches share, and nothing a running
//! payhook needs. Every crate takes it as a dev-dependency; the one normal dependency on it is
//! optional, behind `payhook-aws`'s `moto` feature (the moto harness skips by the same rule),
//! which only tests turn on.
//!
//! - [`conformance`]: where the shared conformance fixtures are (`../shared/conformance` beside
//!   the workspace, or `PAYHOOK_CONFORMANCE_DIR`), the workspace root, JSON Lines files.
//! - [`rng`]: a deterministic generator for tests over a pseudo-random corpus.
//! - [`skip`]: the one rule for a test that needs something from outside the repository and
//!   does not find it (a `SKIP` line by hand, a failure under `scripts/test.sh`).

pub mod conformance;
pub mod rng;
pub mod skip;
