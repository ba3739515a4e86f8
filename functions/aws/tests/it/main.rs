//! Integration tests: the adapters against a real moto server, and the certificate fetcher
//! against HTTPS on loopback. Without moto installed the AWS tests print `SKIP` (they fail under
//! the test command, `scripts/test.sh`).

mod blob_store;
mod certificate_fetcher;
mod config;
mod event_bus;
mod eventbridge_rules;
mod payment_store;
mod queue;
mod secrets;
mod status_store;
mod support;
