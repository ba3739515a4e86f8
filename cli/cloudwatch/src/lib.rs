//! payhook's one CloudWatch model, shared by `payhook check` (analysis) and the dashboard
//! renderer (evaluation).
//!
//! - [`math`]: the metric math lexer and parser, producing one expression tree ([`math::Expr`])
//!   that the check walks and the preview evaluates.
//! - [`search`]: the query language of `SEARCH(…)`.
//! - [`metric`]: metric identities and the metric arrays of dashboard widgets (`"."` included).
//! - [`statistic`]: the statistics CloudWatch accepts (`Sum`, `p99`, `TM(10%:90%)`, …).
//! - [`alarm`]: the alarm file format of `alarms/`.
//! - [`check`]: the checker of `dashboards/`, `alarms/`, `rules/` and `runbooks/` behind
//!   `payhook check`, with the placeholder vocabulary of `placeholders.json`.
//!
//! No AWS SDK, HTTP or cryptography here: this is the model of the files, read the same way by
//! every tool that reads them.

pub mod alarm;
pub mod check;
pub mod math;
pub mod metric;
pub mod search;
pub mod statistic;
