//! An EventBridge event-pattern matcher with AWS's semantics.
