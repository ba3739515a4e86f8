//! payhook's one CloudWatch model, shared by `payhook check` (analysis) and the dashboard
//! renderer (evaluation).
