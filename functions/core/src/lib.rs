//! `payhook-core`: the domain of payhook, with no AWS SDK in it.
//!
//! Providers and their [`signature`] rules, [`normalise`]-ation into the canonical
//! [`PaymentEvent`], the [`status`] machine of the `webhook-processing` table, the [`payment`]
//! state, the [`ports`] the handlers are written against (with in-memory adapters), and the
//! webhook [`validator`] handler itself. (The EventBridge pattern matcher is its own crate,
//! `payhook-pattern`: nothing here routes events.) The same handler code runs inside
//! Lambda (with `payhook-aws` adapters) and inside `payhook serve` (with the in-memory ones).

pub mod blob;
pub mod currency;
pub mod event;
pub mod event_processor;
pub mod headers;
pub mod normalise;
pub mod payment;
pub mod ports;
pub mod processor;
pub mod provider;
pub mod secret;
pub mod signature;
pub mod status;
pub mod sweeper;
pub mod tier;
pub mod validator;

pub use event::{EventType, PaymentEvent};
pub use headers::Headers;
pub use provider::Provider;
pub use secret::Secret;
