//! AWS adapters for payhook (being built).
