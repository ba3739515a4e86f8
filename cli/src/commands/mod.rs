//! The commands: each parses its arguments (clap), runs what the libraries offer
//! (`payhook-local` in `cli/local`, `payhook-devkit` in `cli/devkit`, the AWS adapters and the
//! CloudWatch model) and prints the answer. `main.rs` dispatches to them.

pub mod bench;
pub mod bootstrap;
pub mod check;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod oncall;
pub mod quarantine;
pub mod rules_cmd;
pub mod send;
pub mod serve;
pub mod sweep;
pub mod trace;
pub mod verify;
