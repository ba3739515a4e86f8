//! [`SqsFifoQueue`]: the providers' FIFO queues in SQS (one per provider, deduplicated by
//! webhook id, grouped by payment).
//!
//! The validator sends each verified webhook to its provider's queue with
//! `MessageGroupId` = payment id (one payment's events stay in order) and
//! `MessageDeduplicationId` = webhook id; the X-Ray trace header crosses in the `AWSTraceHeader`
//! message system attribute. [`create_fifo_queue_with_dlq`] makes a queue and its DLQ.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageSystemAttributeNameForSends, MessageSystemAttributeValue, QueueAttributeName,
};
use payhook_core::Provider;
use payhook_core::ports::{Queue, QueueError, QueueMessage, SQS_MAX_MESSAGE_BYTES};

use crate::error::{ProvisionError, describe};

/// The suffix SQS requires of FIFO queue names.
pub const FIFO_SUFFIX: &str = ".fifo";

/// How long a dead-letter queue keeps messages: 14 days, SQS's maximum.
pub const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 60 * 60;

/// A provider's default queue name: `stripe.fifo`, `paypal.fifo`, `square.fifo`.
pub fn default_queue_name(provider: Provider) -> String {
    format!("{provider}{FIFO_SUFFIX}")
}

/// The dead-letter queue's name for the FIFO queue `name`: `stripe.fifo` → `stripe-dlq.fifo`.
pub fn dlq_name(name: &str) -> String {
    let base = name.strip_suffix(FIFO_SUFFIX).unwrap_or(name);
    format!("{base}-dlq{FIFO_SUFFIX}")
}

/// The providers' FIFO queues in SQS, one queue URL per provider.
#[derive(Debug, Clone)]
pub struct SqsFifoQueue {
    client: crate::SdkClient<Client>,
    queue_urls: HashMap<Provider, String>,
    max_message_bytes: usize,
}

impl SqsFifoQueue {
    /// A queue with no provider URLs yet (add them with [`SqsFifoQueue::with_queue_url`]);
    /// messages up to [`SQS_MAX_MESSAGE_BYTES`].
    pub fn new(client: impl Into<crate::SdkClient<Client>>) -> Self {
        SqsFifoQueue {
            client: client.into(),
            queue_urls: HashMap::new(),
            max_message_bytes: SQS_MAX_MESSAGE_BYTES,
        }
    }

    /// Sends `provider`'s messages to `queue_url`.
    pub fn with_queue_url(mut self, provider: Provider, queue_url: impl Into<String>) -> Self {
        self.queue_urls.insert(provider, queue_url.into());
        self
    }

    /// Refuses bodies larger than `bytes` (a queue configured below SQS's maximum).
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Looks up each provider's queue URL by name (`GetQueueUrl`), e.g. with
    /// [`default_queue_name`].
    pub async fn from_queue_names(
        client: Client,
        names: impl IntoIterator<Item = (Provider, String)>,
    ) -> Result<Self, QueueError> {
        let mut queue = SqsFifoQueue::new(client);
        for (provider, name) in names {
            let output = queue
                .client
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .map_err(|err| QueueError::Unavailable(describe("SQS GetQueueUrl", &err)))?;
            let url = output.queue_url().ok_or_else(|| {
                QueueError::Unavailable(format!("SQS GetQueueUrl: no URL for `{name}`"))
            })?;
            queue.queue_urls.insert(provider, url.to_owned());
        }
        Ok(queue)
    }

    /// The queue URL `provider`'s messages go to, if configured.
    pub fn queue_url(&self, provider: Provider) -> Option<&str> {
        self.queue_urls.get(&provider).map(String::as_str)
    }
}

#[async_trait]
impl Queue for SqsFifoQueue {
    fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    async fn send(&self, message: QueueMessage) -> Result<String, QueueError> {
        let limit = self.max_message_bytes();
        if message.size() > limit {
            return Err(QueueError::TooLarge {
                size: message.size(),
                limit,
            });
        }
        let queue_url = self.queue_url(message.provider).ok_or_else(|| {
            QueueError::Unavailable(format!("no queue configured for {}", message.provider))
        })?;
        let trace_header = message.trace_header.map(|header| {
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(header)
                .build()
                .map_err(|err| QueueError::Unavailable(format!("AWSTraceHeader: {err}")))
        });
        let output = self
            .client
            .send_message()
            .queue_url(queue_url)
            .message_group_id(message.group_id)
            .message_deduplication_id(message.deduplication_id)
            .message_body(message.body)
            .set_message_system_attributes(trace_header.transpose()?.map(|value| {
                HashMap::from([(MessageSystemAttributeNameForSends::AwsTraceHeader, value)])
            }))
            .send()
            .await
            .map_err(|err| QueueError::Unavailable(describe("SQS SendMessage", &err)))?;
        output
            .message_id()
            .map(str::to_owned)
            .ok_or_else(|| QueueError::Unavailable("SQS SendMessage returned no message id".into()))
    }
}

/// Creates the FIFO queue `name` (must end in `.fifo`) with content-based deduplication and the
/// given visibility timeout, and its dead-letter queue [`dlq_name`]`(name)` (FIFO, 14-day
/// retention) that receives a message after `max_receive_count` receives. Returns
/// `(queue_url, dlq_url)`. Safe to run again with the same arguments.
pub async fn create_fifo_queue_with_dlq(
    client: &Client,
    name: &str,
    max_receive_count: u32,
    visibility_timeout_secs: u32,
) -> Result<(String, String), ProvisionError> {
    if !name.ends_with(FIFO_SUFFIX) {
        return Err(ProvisionError::Invalid(format!(
            "FIFO queue name `{name}` must end in `{FIFO_SUFFIX}`"
        )));
    }
    if max_receive_count == 0 {
        return Err(ProvisionError::Invalid(
            "max_receive_count must be at least 1".into(),
        ));
    }
    let dlq_url = create_queue(
        client,
        &dlq_name(name),
        [
            (QueueAttributeName::FifoQueue, "true".to_owned()),
            (
                QueueAttributeName::ContentBasedDeduplication,
                "true".to_owned(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                DLQ_RETENTION_SECONDS.to_string(),
            ),
        ],
    )
    .await?;
    let dlq_arn = crate::provision::queue_arn(client, &dlq_url, &dlq_name(name)).await?;
    let redrive_policy = crate::provision::redrive_policy(&dlq_arn, max_receive_count);
    let queue_url = create_queue(
        client,
        name,
        [
            (QueueAttributeName::FifoQueue, "true".to_owned()),
            (
                QueueAttributeName::ContentBasedDeduplication,
                "true".to_owned(),
            ),
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive_policy),
        ],
    )
    .await?;
    Ok((queue_url, dlq_url))
}

async fn create_queue(
    client: &Client,
    name: &str,
    attributes: impl IntoIterator<Item = (QueueAttributeName, String)>,
) -> Result<String, ProvisionError> {
    client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.into_iter().collect()))
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("SQS CreateQueue", &err)))?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| ProvisionError::Aws(format!("SQS CreateQueue: no URL for `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_the_design() {
        assert_eq!(default_queue_name(Provider::Paypal), "paypal.fifo");
        assert_eq!(dlq_name("stripe.fifo"), "stripe-dlq.fifo");
    }
}
