//! The validator Lambda's adapter tests, in one binary: its configuration from the environment
//! and API Gateway proxy events in and out.

mod config_from_env;
mod proxy_events;
