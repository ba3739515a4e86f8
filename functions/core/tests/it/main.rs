//! `payhook-core`'s integration tests, in one binary (one link instead of one per file), a
//! module per area: normalisation (samples and properties), the EventBridge patterns and the
//! routing rules, the payment state, PayPal replay, the processing guarantees, the signature
//! verifiers (conformance vectors and properties), the sweeper and the validator handler.
//!
//! Run one area with `cargo test -p payhook-core --test it <module>::`.

mod normalise_properties;
mod normalise_samples;
mod pattern_conformance;
mod payment_state;
mod paypal_replay;
mod processing_guarantees;
mod signature_conformance;
mod signature_properties;
mod sweeper;
mod validator_handler;
