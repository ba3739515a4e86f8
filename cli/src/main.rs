//! The payhook command.

fn main() {}
