//! Powertools-compatible telemetry for payhook (being built).
