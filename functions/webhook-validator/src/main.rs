//! The webhook-validator Lambda binary (placeholder until wired).
fn main() {}
