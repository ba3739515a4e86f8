//! Dead-letter queues on SQS: look at them and move their messages back, for `payhook dlq`
//! and the local stack on an AWS endpoint.
//!
//! SQS has no way to look at a message without receiving it, so [`peek`] receives each message
//! with a short visibility timeout ([`LIST_VISIBILITY_SECS`]) and makes it visible again at once
//! (`ChangeMessageVisibility` to 0) once all are listed. The side effects: each listing adds one
//! to every listed message's `ApproximateReceiveCount` (a DLQ has no redrive policy, so nothing
//! moves because of it); for the moment of the listing, and up to [`LIST_VISIBILITY_SECS`] if
//! the caller dies before the reset, the messages are invisible to other readers; and in a FIFO
//! queue a message group with more messages than one receive returns shows only its head.
//!
//! [`redrive_queue`] moves every message back to its source queue, in order, each exactly once:
//! receive from the DLQ, `SendMessage` to the source queue with the same body, message group and
//! `AWSTraceHeader` and the deduplication id [`redrive_deduplication_id`]
//! (`{webhook_id}:redrive:{SentTimestamp}`), then `DeleteMessage` — only after the send
//! succeeded. The id is fresh (the original id is still inside SQS's 5-minute window when a
//! message dead-letters quickly) yet fixed for that DLQ message, so a redrive that dies between
//! the send and the delete and is run again within 5 minutes re-sends under the same id and SQS
//! drops the copy. When a send fails, the rest of that message group stays (order is kept).

use std::collections::{HashMap, HashSet};

use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
};
use payhook_core::Provider;
use serde::{Deserialize, Serialize};

/// What a redrive's per-message callback may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Longest SQS `MessageDeduplicationId` (owned by the core, which builds every re-send's id).
pub use payhook_core::sweeper::MAX_DEDUPLICATION_ID_CHARS;

/// How long a listing keeps the messages it received invisible before it resets them.
pub const LIST_VISIBILITY_SECS: i32 = 30;

/// How long a redrive holds a received message while it sends and deletes it.
pub const REDRIVE_VISIBILITY_SECS: i32 = 60;

/// Long-poll wait of each DLQ receive: an empty answer after it means the queue is drained.
pub const RECEIVE_WAIT_SECS: i32 = 1;

/// Messages one `ReceiveMessage` returns at most.
const RECEIVE_BATCH: i32 = 10;

/// A DLQ operation that could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DlqError {
    /// The queue does not exist.
    #[error(
        "no queue `{name}`: is stage `{stage}` deployed there, or created with \
         `payhook bootstrap --aws-endpoint URL`? (--stage, --region)"
    )]
    NoQueue {
        /// The queue's name.
        name: String,
        /// The stage it belongs to.
        stage: String,
    },
    /// SQS refused or could not be reached.
    #[error("{0}")]
    Sqs(String),
    /// Listed messages stayed invisible.
    #[error(
        "{0} listed message(s) could not be made visible again; they reappear by themselves \
         within {LIST_VISIBILITY_SECS} s"
    )]
    NotVisibleAgain(usize),
    /// The caller's per-message callback failed (a redrive stops there).
    #[error("{0}")]
    Callback(String),
}

impl DlqError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            DlqError::NoQueue { .. } => "queue_not_found",
            DlqError::Sqs(_) => "queue_unavailable",
            DlqError::NotVisibleAgain(_) => "messages_left_invisible",
            DlqError::Callback(_) => "callback_failed",
        }
    }
}

/// One dead-lettered message as `dlq list` shows it; also the item shape of the local admin
/// API's `GET /_payhook/dlq/{provider}` (`provider` may be left out there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqMessage {
    /// The provider whose DLQ holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// The SQS message id.
    pub message_id: String,
    /// The body's `webhook_id`, when the body is a canonical event.
    #[serde(default)]
    pub webhook_id: Option<String>,
    /// `MessageGroupId`: the payment.
    pub group_id: String,
    /// `ApproximateReceiveCount` (on AWS including the listing's own receive).
    #[serde(default)]
    pub receive_count: u32,
    /// `SentTimestamp`, Unix milliseconds.
    #[serde(default)]
    pub sent_timestamp_ms: Option<i64>,
    /// Whether someone holds it in flight (local stack only).
    #[serde(default)]
    pub in_flight: bool,
    /// The webhook's status in the table.
    #[serde(default)]
    pub status: Option<String>,
    /// The webhook's last processing error in the table.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// One message a redrive moved back; also the item shape of the local admin API's
/// `POST /_payhook/dlq/{provider}/redrive` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedrivenMessage {
    /// The provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// The message id (the DLQ's; SQS gives the re-sent message a new one).
    pub message_id: String,
    /// The body's `webhook_id`, when known.
    #[serde(default)]
    pub webhook_id: Option<String>,
    /// The message group, kept.
    pub group_id: String,
    /// The deduplication id it was re-sent with.
    #[serde(default)]
    pub deduplication_id: Option<String>,
}

/// The deduplication id a redriven message is re-sent with: `{webhook_id}:redrive:{sent_ms}`,
/// where `sent_ms` is the DLQ message's `SentTimestamp` (fixed for that message, so a repeated
/// redrive of the same message is deduplicated by SQS). Characters SQS does not allow become
/// `_`, and a long webhook id is cut so the whole fits in [`MAX_DEDUPLICATION_ID_CHARS`].
pub fn redrive_deduplication_id(webhook_id: &str, sent_ms: i64) -> String {
    payhook_core::sweeper::deduplication_id_with(webhook_id, "redrive", sent_ms)
}

/// The URL of queue `name` of stage `stage`; its absence is an error that says how a stage's
/// queues come to exist.
pub async fn required_queue_url(
    sqs: &SqsClient,
    name: &str,
    stage: &str,
) -> Result<String, DlqError> {
    match crate::consumer::queue_url(sqs, name).await {
        Ok(Some(url)) => Ok(url),
        Ok(None) => Err(DlqError::NoQueue {
            name: name.to_owned(),
            stage: stage.to_owned(),
        }),
        Err(e) => Err(DlqError::Sqs(e.to_string())),
    }
}

/// `ApproximateNumberOfMessages` + `…NotVisible` + `…Delayed`, if SQS answers.
pub async fn approximate_depth(sqs: &SqsClient, url: &str) -> Option<usize> {
    let depth = crate::SqsConsumer::new(sqs.clone(), url)
        .depth()
        .await
        .ok()?;
    Some(depth.visible + depth.in_flight + depth.delayed)
}

async fn receive(
    sqs: &SqsClient,
    url: &str,
    visibility_secs: i32,
) -> Result<Vec<Message>, DlqError> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(RECEIVE_BATCH)
        .visibility_timeout(visibility_secs)
        .wait_time_seconds(RECEIVE_WAIT_SECS)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map(|output| output.messages().to_vec())
        .map_err(|err| {
            DlqError::Sqs(format!(
                "SQS ReceiveMessage: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&err)
            ))
        })
}

fn attribute(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message
        .attributes()
        .and_then(|a| a.get(&name))
        .map(String::as_str)
}

fn webhook_id_of(body: Option<&str>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body?).ok()?;
    value.get("webhook_id")?.as_str().map(str::to_owned)
}

fn describe_message(message: &Message) -> DlqMessage {
    DlqMessage {
        provider: None,
        message_id: message.message_id().unwrap_or_default().to_owned(),
        webhook_id: webhook_id_of(message.body()),
        group_id: attribute(message, MessageSystemAttributeName::MessageGroupId)
            .unwrap_or_default()
            .to_owned(),
        receive_count: attribute(message, MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        sent_timestamp_ms: attribute(message, MessageSystemAttributeName::SentTimestamp)
            .and_then(|v| v.parse().ok()),
        in_flight: false,
        status: None,
        last_error: None,
    }
}

/// Receives up to `max` messages of the queue with a short visibility timeout, then makes
/// them all visible again (see the module documentation for the side effects).
pub async fn peek(sqs: &SqsClient, url: &str, max: usize) -> Result<Vec<DlqMessage>, DlqError> {
    let mut listed: Vec<DlqMessage> = Vec::new();
    // Latest receipt handle per message id: needed to make each visible again.
    let mut handles: HashMap<String, String> = HashMap::new();
    let outcome = async {
        while listed.len() < max {
            let batch = receive(sqs, url, LIST_VISIBILITY_SECS).await?;
            let mut new = 0;
            for message in &batch {
                let described = describe_message(message);
                let seen = handles.contains_key(&described.message_id);
                if let Some(handle) = message.receipt_handle() {
                    handles.insert(described.message_id.clone(), handle.to_owned());
                }
                if !seen && listed.len() < max {
                    listed.push(described);
                    new += 1;
                }
            }
            if new == 0 {
                break;
            }
        }
        Ok::<(), DlqError>(())
    }
    .await;
    // Reset visibility even when a receive failed part way.
    let reset = make_visible(sqs, url, &handles).await;
    outcome?;
    reset?;
    Ok(listed)
}

async fn make_visible(
    sqs: &SqsClient,
    url: &str,
    handles: &HashMap<String, String>,
) -> Result<(), DlqError> {
    let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = handles
        .values()
        .enumerate()
        .filter_map(|(i, handle)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .receipt_handle(handle)
                .visibility_timeout(0)
                .build()
                .ok()
        })
        .collect();
    let mut failed = 0;
    for chunk in entries.chunks(10) {
        let result = sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(chunk.to_vec()))
            .send()
            .await;
        match result {
            Ok(output) => failed += output.failed().len(),
            Err(_) => failed += chunk.len(),
        }
    }
    if failed > 0 {
        return Err(DlqError::NotVisibleAgain(failed));
    }
    Ok(())
}

/// Moves `dlq_url`'s messages to `source_url` (see the module documentation); returns how many
/// moved, adding what could not be moved to `failures`.
pub async fn redrive_queue(
    sqs: &SqsClient,
    provider: Provider,
    dlq_url: &str,
    source_url: &str,
    on_moved: &mut (dyn FnMut(&RedrivenMessage) -> Result<(), BoxError> + Send),
    failures: &mut Vec<String>,
) -> Result<usize, DlqError> {
    let mut moved: HashSet<String> = HashSet::new();
    // Groups with a message that could not be sent: their later messages stay, to keep order.
    let mut blocked: HashSet<String> = HashSet::new();
    loop {
        let batch = receive(sqs, dlq_url, REDRIVE_VISIBILITY_SECS).await?;
        if batch.is_empty() {
            break;
        }
        let mut progressed = false;
        for message in &batch {
            let described = describe_message(message);
            let group = described.group_id.clone();
            if group.is_empty() || blocked.contains(&group) {
                if group.is_empty() {
                    failures.push(format!(
                        "{provider} message {}: no MessageGroupId (not a FIFO message?)",
                        described.message_id
                    ));
                }
                continue;
            }
            let key = described
                .webhook_id
                .clone()
                .unwrap_or_else(|| described.message_id.clone());
            let sent_ms = described.sent_timestamp_ms.unwrap_or_default();
            let deduplication_id = redrive_deduplication_id(&key, sent_ms);
            let trace = attribute(message, MessageSystemAttributeName::AwsTraceHeader)
                .and_then(|header| {
                    MessageSystemAttributeValue::builder()
                        .data_type("String")
                        .string_value(header)
                        .build()
                        .ok()
                })
                .map(|value| {
                    HashMap::from([(MessageSystemAttributeNameForSends::AwsTraceHeader, value)])
                });
            let sent = sqs
                .send_message()
                .queue_url(source_url)
                .message_body(message.body().unwrap_or_default())
                .message_group_id(&group)
                .message_deduplication_id(&deduplication_id)
                .set_message_system_attributes(trace)
                .send()
                .await;
            if let Err(err) = sent {
                failures.push(format!(
                    "{provider} {key} (group {group}): SendMessage: {}; it and the rest of its \
                     group stay in the DLQ",
                    aws_sdk_sqs::error::DisplayErrorContext(&err)
                ));
                blocked.insert(group);
                continue;
            }
            let deleted = sqs
                .delete_message()
                .queue_url(dlq_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await;
            if let Err(err) = deleted {
                failures.push(format!(
                    "{provider} {key} (group {group}): sent back, but DeleteMessage on the DLQ \
                     failed ({}); run redrive again within 5 minutes and SQS drops the repeat",
                    aws_sdk_sqs::error::DisplayErrorContext(&err)
                ));
                continue;
            }
            progressed = true;
            if moved.insert(described.message_id.clone()) {
                on_moved(&RedrivenMessage {
                    provider: Some(provider),
                    message_id: described.message_id,
                    webhook_id: described.webhook_id,
                    group_id: group,
                    deduplication_id: Some(deduplication_id),
                })
                .map_err(|e| DlqError::Callback(e.to_string()))?;
            }
        }
        if !progressed {
            break;
        }
    }
    Ok(moved.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_stable_and_a_missing_queue_says_how_to_make_it() {
        let missing = DlqError::NoQueue {
            name: "payhook-dev-stripe-dlq.fifo".into(),
            stage: "dev".into(),
        };
        assert_eq!(missing.code(), "queue_not_found");
        assert!(
            missing
                .to_string()
                .contains("payhook bootstrap --aws-endpoint URL")
        );
        assert_eq!(DlqError::Sqs("x".into()).code(), "queue_unavailable");
        assert_eq!(
            DlqError::NotVisibleAgain(2).code(),
            "messages_left_invisible"
        );
        assert_eq!(DlqError::Callback("x".into()).code(), "callback_failed");
    }

    #[test]
    fn a_redrive_id_is_fixed_per_message_and_fits_sqs() {
        assert_eq!(
            redrive_deduplication_id("stripe:evt_1", 1_700_000_000_123),
            "stripe:evt_1:redrive:1700000000123"
        );
        let long = redrive_deduplication_id(&"x".repeat(400), 1);
        assert!(long.chars().count() <= MAX_DEDUPLICATION_ID_CHARS);
        // Characters SQS does not allow are replaced, and the cut keeps the suffix.
        let unusual = redrive_deduplication_id(&"x é".repeat(100), 1);
        assert!(unusual.len() <= MAX_DEDUPLICATION_ID_CHARS, "{unusual}");
        assert!(unusual.chars().all(|c| c.is_ascii_graphic()), "{unusual}");
        assert!(unusual.ends_with(":redrive:1"), "{unusual}");
    }
}
