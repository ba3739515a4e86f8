//! Payment records ([`payhook_core::payment`]) in the `webhook-processing` table, beside the
//! webhooks' status items: key `payment#{provider}:{payment_id}`, the record as JSON in
//! `record`, its write counter in `revision` (the condition of every write) and a TTL
//! refreshed on every change ([`DEFAULT_PAYMENT_RETENTION_SECS`]).
//!
//! A payment record has no `open_status`, so the open-items index never lists it, and its key
//! does not start with a provider name, so scans of webhook items skip it.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use payhook_core::Provider;
use payhook_core::payment::{
    DEFAULT_PAYMENT_RETENTION_SECS, PaymentRecord, PaymentStore, payment_key,
};
use payhook_core::status::StoreError;

use crate::error::describe;
use crate::status_store::{DEFAULT_TABLE_NAME, PARTITION_KEY, TTL_ATTRIBUTE};
use crate::traced::Traced;

const RECORD: &str = "record";
const REVISION: &str = "revision";

/// Payment records in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoPaymentStore {
    client: crate::SdkClient<Client>,
    table_name: String,
    retention_secs: i64,
}

impl DynamoPaymentStore {
    /// A store on the [`DEFAULT_TABLE_NAME`] table.
    pub fn new(client: impl Into<crate::SdkClient<Client>>) -> Self {
        DynamoPaymentStore {
            client: client.into(),
            table_name: DEFAULT_TABLE_NAME.to_owned(),
            retention_secs: DEFAULT_PAYMENT_RETENTION_SECS,
        }
    }

    /// The same store on another table (a stage's own).
    pub fn with_table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// Keeps each record this long after its last change instead of the default.
    pub fn with_retention_secs(mut self, retention_secs: i64) -> Self {
        self.retention_secs = retention_secs;
        self
    }
}

#[async_trait]
impl PaymentStore for DynamoPaymentStore {
    async fn get_payment(
        &self,
        provider: Provider,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let key = payment_key(provider, payment_id);
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(PARTITION_KEY, AttributeValue::S(key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::Unavailable(describe("DynamoDB GetItem", &err)))?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let json = item
            .get(RECORD)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("`{key}` has no `{RECORD}`")))?;
        let mut record: PaymentRecord =
            serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("`{key}`: {e}")))?;
        // The attribute is what the condition checks; it is the truth.
        record.revision = item
            .get(REVISION)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("`{key}` has no `{REVISION}`")))?;
        Ok(Some(record))
    }

    async fn put_payment(
        &self,
        record: &PaymentRecord,
        expected_revision: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(record)
            .map_err(|e| StoreError::Corrupt(format!("payment record: {e}")))?;
        let expires_at = now_ms.div_euclid(1000) + self.retention_secs;
        let put = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .item(PARTITION_KEY, AttributeValue::S(record.key()))
            .item(RECORD, AttributeValue::S(json))
            .item(REVISION, AttributeValue::N(record.revision.to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires_at.to_string()));
        let put = if expected_revision == 0 {
            put.condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", PARTITION_KEY)
        } else {
            put.condition_expression("#rev = :expected")
                .expression_attribute_names("#rev", REVISION)
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(expected_revision.to_string()),
                )
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(StoreError::Unavailable(describe("DynamoDB PutItem", &err))),
            },
        }
    }
}

#[async_trait]
impl<T: PaymentStore> PaymentStore for Traced<T> {
    async fn get_payment(
        &self,
        provider: Provider,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let span = payhook_telemetry::aws_call_span("DynamoDB", "GetItem");
        let result =
            tracing::Instrument::instrument(self.0.get_payment(provider, payment_id), span.clone())
                .await;
        if let Err(e) = &result {
            payhook_telemetry::mark_span_failed(&span, e.code());
        }
        result
    }

    async fn put_payment(
        &self,
        record: &PaymentRecord,
        expected_revision: u64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let span = payhook_telemetry::aws_call_span("DynamoDB", "PutItem");
        let result = tracing::Instrument::instrument(
            self.0.put_payment(record, expected_revision, now_ms),
            span.clone(),
        )
        .await;
        if let Err(e) = &result {
            payhook_telemetry::mark_span_failed(&span, e.code());
        }
        result
    }
}
