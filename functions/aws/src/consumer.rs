//! [`SqsConsumer`]: the receiving side of a queue, as an SQS event source mapping does it for
//! a Lambda: receive a batch (long poll, every system attribute), hand each message over as a
//! [`QueueRecord`], delete what succeeded. The local stack's processors use it when
//! `payhook serve --aws-endpoint URL` runs on an AWS-compatible endpoint, and its idle check
//! reads [`SqsConsumer::depth`].

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use payhook_core::ports::{MessageVisibility, QueueError};
use payhook_core::processor::QueueRecord;

use crate::error::describe;

/// Most messages one `ReceiveMessage` returns (SQS's limit).
pub const MAX_RECEIVE_BATCH: i32 = 10;

/// One received message: the record a handler sees and the handle that deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// What the handler gets (as in the Lambda's SQS event).
    pub record: QueueRecord,
    /// This delivery's receipt handle.
    pub receipt_handle: String,
    /// `SentTimestamp`, Unix milliseconds, when SQS gave it.
    pub sent_timestamp_ms: Option<i64>,
}

/// A queue's approximate depths (`GetQueueAttributes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// `ApproximateNumberOfMessages`: waiting to be received.
    pub visible: usize,
    /// `ApproximateNumberOfMessagesNotVisible`: received and not yet deleted.
    pub in_flight: usize,
    /// `ApproximateNumberOfMessagesDelayed`.
    pub delayed: usize,
}

impl QueueDepth {
    /// Nothing visible, in flight or delayed.
    pub fn is_empty(&self) -> bool {
        self.visible == 0 && self.in_flight == 0 && self.delayed == 0
    }
}

/// Receives from and deletes in one queue (FIFO or standard).
#[derive(Debug, Clone)]
pub struct SqsConsumer {
    client: Client,
    queue_url: String,
}

impl SqsConsumer {
    /// A consumer of `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsConsumer {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Receives up to `max` (1–10) messages, waiting up to `wait_secs` for the first;
    /// `visibility_secs` overrides the queue's visibility timeout for these deliveries.
    pub async fn receive(
        &self,
        max: i32,
        wait_secs: i32,
        visibility_secs: Option<i32>,
    ) -> Result<Vec<Received>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, MAX_RECEIVE_BATCH))
            .wait_time_seconds(wait_secs.max(0))
            .set_visibility_timeout(visibility_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(describe("SQS ReceiveMessage", &err)))?;
        Ok(output.messages().iter().filter_map(received).collect())
    }

    /// Deletes the deliveries `receipt_handles` (in batches of 10); returns how many SQS did not
    /// delete (they come back after their visibility timeout).
    pub async fn delete(&self, receipt_handles: &[&str]) -> Result<usize, QueueError> {
        let mut failed = 0;
        for chunk in receipt_handles.chunks(MAX_RECEIVE_BATCH as usize) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, handle)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(*handle)
                        .build()
                        .map_err(|err| {
                            QueueError::Unavailable(format!("DeleteMessageBatch: {err}"))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|err| QueueError::Unavailable(describe("SQS DeleteMessageBatch", &err)))?;
            failed += output.failed().len();
        }
        Ok(failed)
    }

    /// Makes the delivery `receipt_handle` visible again `timeout_secs` from now
    /// (`ChangeMessageVisibility`).
    pub async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout_secs: u32,
    ) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(timeout_secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|err| {
                QueueError::Unavailable(describe("SQS ChangeMessageVisibility", &err))
            })?;
        Ok(())
    }

    /// Sends `body` to this queue (a standard queue: no group, no deduplication id).
    pub async fn send_standard(&self, body: &str) -> Result<String, QueueError> {
        let output = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(describe("SQS SendMessage", &err)))?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }

    /// The queue's approximate depths.
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(describe("SQS GetQueueAttributes", &err)))?;
        let number = |name: QueueAttributeName| {
            output
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: number(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: number(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}

#[async_trait::async_trait]
impl MessageVisibility for SqsConsumer {
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout_secs: u32,
    ) -> Result<(), QueueError> {
        SqsConsumer::change_visibility(self, receipt_handle, timeout_secs).await
    }
}

/// The URL of the queue with `arn` (`arn:aws:sqs:{region}:{account}:{name}`), as an SQS event
/// record's `eventSourceARN` names it.
pub fn queue_url_of_arn(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let domain = if partition == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
}

/// Looks up a queue's URL by name (`GetQueueUrl`); `Ok(None)` when it does not exist.
pub async fn queue_url(client: &Client, name: &str) -> Result<Option<String>, QueueError> {
    match client.get_queue_url().queue_name(name).send().await {
        Ok(output) => Ok(output.queue_url().map(str::to_owned)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(err) => Err(QueueError::Unavailable(describe("SQS GetQueueUrl", &err))),
    }
}

fn received(message: &Message) -> Option<Received> {
    let attribute = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    };
    Some(Received {
        record: QueueRecord {
            message_id: message.message_id()?.to_owned(),
            body: message.body().unwrap_or_default().to_owned(),
            group_id: attribute(MessageSystemAttributeName::MessageGroupId)
                .unwrap_or_default()
                .to_owned(),
            receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            trace_header: attribute(MessageSystemAttributeName::AwsTraceHeader).map(str::to_owned),
        },
        receipt_handle: message.receipt_handle()?.to_owned(),
        sent_timestamp_ms: attribute(MessageSystemAttributeName::SentTimestamp)
            .and_then(|v| v.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_arn_gives_its_url() {
        assert_eq!(
            queue_url_of_arn("arn:aws:sqs:eu-west-1:123456789012:stripe.fifo").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/stripe.fifo")
        );
        assert_eq!(
            queue_url_of_arn("arn:aws:sns:eu-west-1:123456789012:topic"),
            None
        );
    }
}
