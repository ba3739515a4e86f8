//! The provider-processor Lambda binary (wired in the next step).
fn main() {}
