//! The local stack: the same handlers as the Lambdas, wired to in-memory stand-ins for API
//! Gateway, SQS FIFO, EventBridge and DynamoDB, with logs, EMF metrics and X-Ray segments
//! written into a run directory.

pub mod admin;
pub mod aws;
pub mod bus;
pub mod faults;
pub mod http;
pub mod sink;
pub mod stack;
pub mod xray;
