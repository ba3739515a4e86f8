//! The webhook-validator Lambda (being built).
