//! The local admin API's answers (`/_payhook/…`): what the stack's HTTP server writes and the
//! on-call commands (`payhook dlq`, `payhook quarantine`) read, so both sides share one shape.

use payhook_aws::dlq::{DlqMessage, RedrivenMessage};
use payhook_core::Provider;
use payhook_core::status::StatusItem;
use payhook_core::validator::ReplayOutcome;
use serde::{Deserialize, Serialize};

/// Default most messages `dlq list` shows per provider.
pub const DEFAULT_LIST_MAX: usize = 1000;

/// Default most items `quarantine list` and `replay --all` go through.
pub const DEFAULT_QUARANTINE_MAX: usize = 1000;

/// The local admin API's answer to `GET /_payhook/dlq/{provider}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalDlqList {
    /// The provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Its DLQ's messages, in queue order.
    pub messages: Vec<DlqMessage>,
}

/// The local admin API's answer to `POST /_payhook/dlq/{provider}/redrive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRedrive {
    /// How many messages moved.
    pub moved: usize,
    /// The moved messages, in order.
    #[serde(default)]
    pub messages: Vec<RedrivenMessage>,
}

/// One quarantined webhook as `list` shows it; also the item shape of the local admin API's
/// `GET /_payhook/quarantine`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineSummary {
    /// `{provider}:{event id}`.
    pub webhook_id: String,
    /// The provider.
    pub provider: Provider,
    /// The provider's event type (`unknown` when not even the envelope could be read).
    pub provider_event_type: String,
    /// The normaliser's code and message.
    #[serde(default)]
    pub reason: Option<String>,
    /// First receipt.
    pub received_at: String,
    /// Last change.
    pub updated_at: String,
    /// `inline` (in the item) or `s3` (in the quarantine bucket).
    pub body: String,
}

impl QuarantineSummary {
    /// The summary of `item`.
    pub fn of(item: &StatusItem) -> Self {
        QuarantineSummary {
            webhook_id: item.webhook_id.clone(),
            provider: item.provider,
            provider_event_type: item.provider_event_type.clone(),
            reason: item.quarantine_reason.clone(),
            received_at: item.received_at.clone(),
            updated_at: item.updated_at.clone(),
            body: if item.raw_body_key.is_some() {
                "s3"
            } else {
                "inline"
            }
            .to_owned(),
        }
    }
}

/// The local admin API's answer to `GET /_payhook/quarantine`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalQuarantineList {
    /// The quarantined webhooks, oldest change first.
    pub items: Vec<QuarantineSummary>,
}

/// What one replay did; also the local admin API's answer to
/// `POST /_payhook/quarantine/{webhook_id}/replay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// The webhook replayed.
    pub webhook_id: String,
    /// `queued`, `ignored`, `still_failing` or `not_quarantined`.
    pub outcome: String,
    /// The normaliser's code when still failing; the status when not quarantined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ReplayReport {
    /// The report of `outcome` for `webhook_id`.
    pub fn of(webhook_id: &str, outcome: &ReplayOutcome) -> Self {
        let (name, detail) = match outcome {
            ReplayOutcome::Queued { .. } => ("queued", None),
            ReplayOutcome::Ignored => ("ignored", None),
            ReplayOutcome::StillFailing { reason } => ("still_failing", Some((*reason).to_owned())),
            ReplayOutcome::NotQuarantined(status) => (
                "not_quarantined",
                Some(status.map_or_else(|| "no such webhook".to_owned(), |s| s.to_string())),
            ),
        };
        ReplayReport {
            webhook_id: webhook_id.to_owned(),
            outcome: name.to_owned(),
            detail,
        }
    }

    /// Whether the webhook still cannot be normalised.
    pub fn still_failing(&self) -> bool {
        self.outcome == "still_failing"
    }
}

/// The local admin API's answer to `GET /_payhook/quarantine/{webhook_id}`: the item, and the
/// body (base64) when it is kept in the blob store rather than in the item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalQuarantineItem {
    /// The status item.
    pub item: StatusItem,
    /// The raw body from the blob store, base64, when the item holds only its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use payhook_core::status::Status;

    #[test]
    fn replay_reports_name_the_outcome_and_what_failed() {
        let failing = ReplayReport::of(
            "stripe:evt_1",
            &ReplayOutcome::StillFailing {
                reason: "unsupported_currency",
            },
        );
        assert!(failing.still_failing());
        assert_eq!(failing.detail.as_deref(), Some("unsupported_currency"));
        let moved = ReplayReport::of(
            "stripe:evt_1",
            &ReplayOutcome::NotQuarantined(Some(Status::Queued)),
        );
        assert_eq!(
            (moved.outcome.as_str(), moved.detail.as_deref()),
            ("not_quarantined", Some("QUEUED"))
        );
        assert!(!moved.still_failing());
    }
}
