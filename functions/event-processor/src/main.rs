//! The event-processor Lambda binary (wired in the next step).
fn main() {}
