//! [`DynamoStatusStore`]: the `webhook-processing` table in DynamoDB.
//!
//! Every write is conditional and single-item, so DynamoDB's own atomicity is what keeps a
//! payment from being processed twice:
//!
//! - [`put_new`](StatusStore::put_new) is a `PutItem` with `attribute_not_exists(webhook_id)`;
//! - [`transition`](StatusStore::transition) is one `UpdateItem` whose condition expression is
//!   [`Transition::allows`] and whose update expression sets exactly what [`Transition::apply`]
//!   sets (`ADD` for the attempt counter and the matched-rules string set).
//!
//! - [`record_transmission`](StatusStore::record_transmission) is a `PutItem` of a small record
//!   under [`TRANSMISSION_KEY_PREFIX`](payhook_core::status::TRANSMISSION_KEY_PREFIX) with
//!   `attribute_not_exists(webhook_id) OR expires_at < :now` (an expired record that DynamoDB's
//!   TTL has not deleted yet counts as absent).
//!
//! - [`list_by_status`](StatusStore::list_by_status) is a `Query` of the sparse global
//!   secondary index [`OPEN_STATUS_INDEX`]: its partition key [`OPEN_STATUS_ATTRIBUTE`] is
//!   written (equal to `status`) only while an item is open ([`Status::is_open`]) and removed
//!   when it reaches `PROCESSED` or `IGNORED`, so the index holds the few items still moving,
//!   sorted by `updated_at`, and a stuck-item or quarantine listing never scans the table. The
//!   index projects keys only (the items' event bodies are not copied on every write); each
//!   listed item is then read with a strongly consistent `GetItem` and kept only if it is still
//!   in the listed state. Items written before the index existed are absent from it until their
//!   next transition.
//!
//! When a condition fails, the item as it is comes back with the error
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), or from a strongly consistent read.
//! The item's TTL (`expires_at`) is written once, when the item is created: no transition moves
//! it, so the idempotency record lives exactly its retention after first receipt.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CreateGlobalSecondaryIndexAction,
    GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use payhook_core::status::{
    PageCursor, PutOutcome, Status, StatusItem, StatusPage, StatusQuery, StatusStore, StoreError,
    Transition, TransitionOutcome, TransmissionOutcome, TransmissionRecord, compare_bodies,
    is_webhook_key,
};

use crate::error::{ProvisionError, describe};

/// The table's default name.
pub const DEFAULT_TABLE_NAME: &str = "webhook-processing";

/// The table's partition key (a string: `"{provider}:{provider_event_id}"`).
pub const PARTITION_KEY: &str = "webhook_id";

/// The table's TTL attribute (Unix seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The sparse global secondary index of open items, by state and last change.
pub const OPEN_STATUS_INDEX: &str = "open-status-updated-at";

/// The index's partition key: the item's status while it is open, absent once it is final.
pub const OPEN_STATUS_ATTRIBUTE: &str = "open_status";

/// The index's sort key (RFC 3339 with milliseconds, so string order is time order).
pub const OPEN_STATUS_SORT_KEY: &str = "updated_at";

/// How long [`create_table`] waits for a new table to become `ACTIVE`.
pub const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

const PROVIDER: &str = "provider";
const STATUS: &str = "status";
const PROVIDER_EVENT_TYPE: &str = "provider_event_type";
const EVENT_TYPE: &str = "event_type";
const PAYMENT_ID: &str = "payment_id";
const AMOUNT_MINOR: &str = "amount_minor";
const CURRENCY: &str = "currency";
const TIER: &str = "tier";
const PAYMENT_EFFECT: &str = "payment_effect";
const TRACE_ID: &str = "trace_id";
const MATCHED_RULES: &str = "matched_rules";
const ATTEMPTS: &str = "attempts";
const LAST_ERROR: &str = "last_error";
const LEASE_UNTIL_MS: &str = "lease_until_ms";
const RECEIVED_AT: &str = "received_at";
const UPDATED_AT: &str = "updated_at";
const QUEUED_AT: &str = "queued_at";
const PUBLISHED_AT: &str = "published_at";
const PROCESSED_AT: &str = "processed_at";
const BODY_SHA256: &str = "body_sha256";
const QUARANTINE_REASON: &str = "quarantine_reason";
const RAW_BODY: &str = "raw_body";
const RAW_BODY_KEY: &str = "raw_body_key";
const MESSAGE_BODY: &str = "message_body";

/// Attempts at `put_new` when the existing item vanishes (TTL) between the failed condition and
/// the read that should return it.
const PUT_NEW_ATTEMPTS: usize = 3;

/// The `webhook-processing` table in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoStatusStore {
    client: crate::SdkClient<Client>,
    table_name: String,
}

impl DynamoStatusStore {
    /// A store on the [`DEFAULT_TABLE_NAME`] table.
    pub fn new(client: impl Into<crate::SdkClient<Client>>) -> Self {
        DynamoStatusStore {
            client: client.into(),
            table_name: DEFAULT_TABLE_NAME.to_owned(),
        }
    }

    /// Uses the table `name` instead (a stage-suffixed name, a test's own table).
    pub fn with_table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// The table this store reads and writes.
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// Every item of the table, by a paginated, strongly consistent `Scan`. For the local stack
    /// on an AWS-compatible endpoint (its admin API and the demo's books); a deployed table is
    /// read item by item or through its metrics, never scanned whole.
    pub async fn scan(&self) -> Result<Vec<StatusItem>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table_name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|err| StoreError::Unavailable(describe("DynamoDB Scan", &err)))?;
            for attributes in output.items() {
                // The table also holds other records (PayPal transmissions): only webhooks.
                let is_webhook = attributes
                    .get(PARTITION_KEY)
                    .and_then(|key| key.as_s().ok())
                    .is_some_and(|key| is_webhook_key(key));
                if is_webhook {
                    items.push(item_from_attributes(attributes)?);
                }
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(items)
    }

    async fn consistent_get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .key(PARTITION_KEY, AttributeValue::S(webhook_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| StoreError::Unavailable(describe("DynamoDB GetItem", &err)))?;
        output.item().map(item_from_attributes).transpose()
    }
}

#[async_trait]
impl StatusStore for DynamoStatusStore {
    async fn get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError> {
        self.consistent_get(webhook_id).await
    }

    async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError> {
        for _ in 0..PUT_NEW_ATTEMPTS {
            let result = self
                .client
                .put_item()
                .table_name(&self.table_name)
                .set_item(Some(item_to_attributes(item)))
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", PARTITION_KEY)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(PutOutcome::Created),
                Err(err) => err,
            };
            let existing = match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    failed.item().map(item_from_attributes).transpose()?
                }
                _ => return Err(StoreError::Unavailable(describe("DynamoDB PutItem", &err))),
            };
            let existing = match existing {
                Some(existing) => Some(existing),
                None => self.consistent_get(&item.webhook_id).await?,
            };
            if let Some(existing) = existing {
                return Ok(PutOutcome::Exists(Box::new(existing)));
            }
        }
        Err(StoreError::Unavailable(format!(
            "DynamoDB PutItem: `{}` kept conflicting without being readable",
            item.webhook_id
        )))
    }

    async fn transition(
        &self,
        webhook_id: &str,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        let Some(update) = UpdateSpec::for_transition(transition) else {
            // Nothing can satisfy an empty condition: report the item as it is.
            let current = self.consistent_get(webhook_id).await?;
            return Ok(TransitionOutcome::Rejected(current.map(Box::new)));
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .key(PARTITION_KEY, AttributeValue::S(webhook_id.to_owned()))
            .update_expression(update.update_expression)
            .condition_expression(update.condition_expression)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes() {
                Some(attributes) => Ok(TransitionOutcome::Applied(Box::new(item_from_attributes(
                    attributes,
                )?))),
                None => Err(StoreError::Corrupt(format!(
                    "UpdateItem on `{webhook_id}` returned no attributes"
                ))),
            },
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    let current = match failed.item() {
                        Some(attributes) => Some(item_from_attributes(attributes)?),
                        None => self.consistent_get(webhook_id).await?,
                    };
                    Ok(TransitionOutcome::Rejected(current.map(Box::new)))
                }
                _ => Err(StoreError::Unavailable(describe(
                    "DynamoDB UpdateItem",
                    &err,
                ))),
            },
        }
    }

    async fn record_transmission(
        &self,
        record: &TransmissionRecord,
        now_unix: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .item(PARTITION_KEY, AttributeValue::S(record.key.clone()))
            .item(BODY_SHA256, AttributeValue::S(record.body_sha256.clone()))
            .item(TTL_ATTRIBUTE, number(record.expires_at))
            .condition_expression("attribute_not_exists(#id) OR #expires < :now")
            .expression_attribute_names("#id", PARTITION_KEY)
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", number(now_unix))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(TransmissionOutcome::Recorded),
            Err(err) => err,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(StoreError::Unavailable(describe("DynamoDB PutItem", &err)));
        };
        let seen = match failed.item() {
            Some(attributes) => attributes.clone(),
            None => self
                .client
                .get_item()
                .table_name(&self.table_name)
                .key(PARTITION_KEY, AttributeValue::S(record.key.clone()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|err| StoreError::Unavailable(describe("DynamoDB GetItem", &err)))?
                .item
                .unwrap_or_default(),
        };
        let seen = TransmissionRecord {
            key: record.key.clone(),
            body_sha256: required_string(&seen, BODY_SHA256)?,
            expires_at: optional_number(&seen, TTL_ATTRIBUTE)?.unwrap_or(0),
        };
        Ok(compare_bodies(&seen, record))
    }

    async fn list_by_status(&self, query: &StatusQuery) -> Result<StatusPage, StoreError> {
        if !query.status.is_open() {
            // Final states are not in the index.
            return Ok(StatusPage::default());
        }
        let limit = i32::try_from(query.limit.max(1)).unwrap_or(i32::MAX);
        let start = query.after.as_ref().map(|after| {
            HashMap::from([
                (
                    PARTITION_KEY.to_owned(),
                    AttributeValue::S(after.webhook_id.clone()),
                ),
                (OPEN_STATUS_ATTRIBUTE.to_owned(), status_value(query.status)),
                (
                    OPEN_STATUS_SORT_KEY.to_owned(),
                    AttributeValue::S(after.updated_at.clone()),
                ),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(OPEN_STATUS_INDEX)
            .key_condition_expression("#open = :status AND #updated < :before")
            .expression_attribute_names("#open", OPEN_STATUS_ATTRIBUTE)
            .expression_attribute_names("#updated", OPEN_STATUS_SORT_KEY)
            .expression_attribute_values(":status", status_value(query.status))
            .expression_attribute_values(
                ":before",
                AttributeValue::S(payhook_core::status::rfc3339_ms(query.updated_before_ms)),
            )
            .scan_index_forward(true)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| StoreError::Unavailable(describe("DynamoDB Query", &err)))?;
        let mut page = StatusPage::default();
        for keys in output.items() {
            let webhook_id = required_string(keys, PARTITION_KEY)?;
            // The index is eventually consistent: keep what the item itself still says.
            if let Some(item) = self.consistent_get(&webhook_id).await?
                && query.matches(&item)
            {
                page.items.push(item);
            }
        }
        page.next = match output.last_evaluated_key() {
            Some(key) if !key.is_empty() => Some(PageCursor {
                updated_at: required_string(key, OPEN_STATUS_SORT_KEY)?,
                webhook_id: required_string(key, PARTITION_KEY)?,
            }),
            _ => None,
        };
        Ok(page)
    }
}

/// The expressions of one `UpdateItem`, with exactly the placeholders they use (DynamoDB rejects
/// unused ones).
#[derive(Debug, Default)]
struct UpdateSpec {
    update_expression: String,
    condition_expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl UpdateSpec {
    /// `None` when the transition's condition can never hold (no `from` states, no lease
    /// takeover).
    #[expect(
        clippy::too_many_lines,
        reason = "translates each field of a transition into its DynamoDB condition and update clause, in the order of Transition::allows and Transition::apply"
    )]
    fn for_transition(t: &Transition) -> Option<UpdateSpec> {
        let mut spec = UpdateSpec::default();

        // Condition: `Transition::allows`, on an item that exists.
        let mut alternatives = Vec::new();
        if !t.from.is_empty() {
            let placeholders: Vec<String> = t
                .from
                .iter()
                .enumerate()
                .map(|(i, status)| spec.value(&format!(":from{i}"), status_value(*status)))
                .collect();
            alternatives.push(format!(
                "{} IN ({})",
                spec.name("#status", STATUS),
                placeholders.join(", ")
            ));
        }
        if let Some(expired_at) = t.or_lease_expired_at_ms {
            let status = spec.name("#status", STATUS);
            let processing = spec.value(":processing", status_value(Status::Processing));
            let lease = spec.name("#lease", LEASE_UNTIL_MS);
            let expired_at = spec.value(":lease_expired_at", number(expired_at));
            alternatives.push(format!(
                "({status} = {processing} AND (attribute_not_exists({lease}) OR {lease} < {expired_at}))"
            ));
        }
        if alternatives.is_empty() {
            return None;
        }
        spec.condition_expression = format!(
            "attribute_exists({}) AND ({})",
            spec.name("#id", PARTITION_KEY),
            alternatives.join(" OR ")
        );
        if let Some(attempt) = t.if_attempt {
            // Only the claim that counted this attempt may change what it holds.
            let attempts = spec.name("#attempts", ATTEMPTS);
            let attempt = spec.value(":attempt", number(i64::from(attempt)));
            spec.condition_expression
                .push_str(&format!(" AND {attempts} = {attempt}"));
        }

        // Update: `Transition::apply`.
        let at = payhook_core::status::rfc3339_ms(t.now_ms);
        let mut set = vec![
            format!(
                "{} = {}",
                spec.name("#status", STATUS),
                spec.value(":to", status_value(t.to))
            ),
            format!(
                "{} = {}",
                spec.name("#updated_at", UPDATED_AT),
                spec.value(":at", AttributeValue::S(at.clone()))
            ),
        ];
        let mut remove = Vec::new();
        let mut add = Vec::new();
        let open = spec.name("#open", OPEN_STATUS_ATTRIBUTE);
        if t.to.is_open() {
            // The index follows the status; `:to` is already registered above.
            set.push(format!("{open} = :to"));
        } else {
            remove.push(open);
            remove.push(spec.name("#message_body", MESSAGE_BODY));
        }
        match t.lease_until_ms {
            Some(lease) => set.push(format!(
                "{} = {}",
                spec.name("#lease", LEASE_UNTIL_MS),
                spec.value(":lease", number(lease))
            )),
            None => remove.push(spec.name("#lease", LEASE_UNTIL_MS)),
        }
        if t.increment_attempts {
            add.push(format!(
                "{} {}",
                spec.name("#attempts", ATTEMPTS),
                spec.value(":one", AttributeValue::N("1".to_owned()))
            ));
        }
        if let Some(tier) = &t.tier {
            set.push(format!(
                "{} = {}",
                spec.name("#tier", TIER),
                spec.value(":tier", AttributeValue::S(tier.clone()))
            ));
        }
        if let Some(effect) = &t.payment_effect {
            set.push(format!(
                "{} = {}",
                spec.name("#payment_effect", PAYMENT_EFFECT),
                spec.value(":payment_effect", AttributeValue::S(effect.clone()))
            ));
        }
        if let Some(rules) = string_set(&t.add_matched_rules) {
            // ADD on a string set is a union: concurrent additions are never lost.
            add.push(format!(
                "{} {}",
                spec.name("#matched_rules", MATCHED_RULES),
                spec.value(":rules", rules)
            ));
        }
        if let Some(error) = &t.last_error {
            set.push(format!(
                "{} = {}",
                spec.name("#last_error", LAST_ERROR),
                spec.value(":last_error", AttributeValue::S(error.clone()))
            ));
        }
        if let Some(published) = t.published_at_ms
            && t.to != Status::Published
        {
            let name = spec.name("#published_at", PUBLISHED_AT);
            let value = spec.value(
                ":published_at",
                AttributeValue::S(payhook_core::status::rfc3339_ms(published)),
            );
            set.push(format!("{name} = if_not_exists({name}, {value})"));
        }
        let stamp = match t.to {
            Status::Queued => Some(QUEUED_AT),
            Status::Published => Some(PUBLISHED_AT),
            Status::Processed => Some(PROCESSED_AT),
            _ => None,
        };
        if let Some(stamp) = stamp {
            // The first time a state is reached is what the timestamps record; repeats (a
            // second rule recorded on a PROCESSED item) keep it.
            let name = spec.name("#stamp", stamp);
            let at = spec.value(":at", AttributeValue::S(at));
            set.push(format!("{name} = if_not_exists({name}, {at})"));
        }

        let mut clauses = vec![format!("SET {}", set.join(", "))];
        if !remove.is_empty() {
            clauses.push(format!("REMOVE {}", remove.join(", ")));
        }
        if !add.is_empty() {
            clauses.push(format!("ADD {}", add.join(", ")));
        }
        spec.update_expression = clauses.join(" ");
        Some(spec)
    }

    /// Registers `#placeholder` for `attribute` and returns the placeholder.
    fn name(&mut self, placeholder: &str, attribute: &str) -> String {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        placeholder.to_owned()
    }

    /// Registers `:placeholder` for `value` and returns the placeholder.
    fn value(&mut self, placeholder: &str, value: AttributeValue) -> String {
        self.values.insert(placeholder.to_owned(), value);
        placeholder.to_owned()
    }
}

fn status_value(status: Status) -> AttributeValue {
    AttributeValue::S(status.as_str().to_owned())
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A string set of `values`, deduplicated and sorted; `None` when empty (DynamoDB has no empty
/// sets).
fn string_set(values: &[String]) -> Option<AttributeValue> {
    let unique: BTreeSet<&String> = values.iter().collect();
    (!unique.is_empty()).then(|| AttributeValue::Ss(unique.into_iter().cloned().collect()))
}

/// One item's attributes. Absent options and empty rule lists are left out, as DynamoDB wants.
fn item_to_attributes(item: &StatusItem) -> HashMap<String, AttributeValue> {
    let mut attributes = HashMap::new();
    let mut put = |name: &str, value: AttributeValue| {
        attributes.insert(name.to_owned(), value);
    };
    let s = |value: &str| AttributeValue::S(value.to_owned());
    put(PARTITION_KEY, s(&item.webhook_id));
    put(PROVIDER, s(item.provider.as_str()));
    put(STATUS, status_value(item.status));
    put(PROVIDER_EVENT_TYPE, s(&item.provider_event_type));
    put(ATTEMPTS, number(item.attempts));
    put(RECEIVED_AT, s(&item.received_at));
    put(UPDATED_AT, s(&item.updated_at));
    put(TTL_ATTRIBUTE, number(item.expires_at));
    let optional_strings = [
        (EVENT_TYPE, &item.event_type),
        (PAYMENT_ID, &item.payment_id),
        (CURRENCY, &item.currency),
        (TIER, &item.tier),
        (PAYMENT_EFFECT, &item.payment_effect),
        (TRACE_ID, &item.trace_id),
        (LAST_ERROR, &item.last_error),
        (QUEUED_AT, &item.queued_at),
        (PUBLISHED_AT, &item.published_at),
        (PROCESSED_AT, &item.processed_at),
        (QUARANTINE_REASON, &item.quarantine_reason),
        (RAW_BODY, &item.raw_body),
        (RAW_BODY_KEY, &item.raw_body_key),
        (MESSAGE_BODY, &item.message_body),
    ];
    if item.status.is_open() {
        put(OPEN_STATUS_ATTRIBUTE, status_value(item.status));
    }
    for (name, value) in optional_strings {
        if let Some(value) = value {
            put(name, s(value));
        }
    }
    if let Some(amount) = item.amount_minor {
        put(AMOUNT_MINOR, number(amount));
    }
    if let Some(lease) = item.lease_until_ms {
        put(LEASE_UNTIL_MS, number(lease));
    }
    if let Some(rules) = string_set(&item.matched_rules) {
        put(MATCHED_RULES, rules);
    }
    attributes
}

/// Reads an item back; anything missing or mistyped is [`StoreError::Corrupt`].
fn item_from_attributes(
    attributes: &HashMap<String, AttributeValue>,
) -> Result<StatusItem, StoreError> {
    let webhook_id = required_string(attributes, PARTITION_KEY)?;
    let corrupt = |what: String| StoreError::Corrupt(format!("`{webhook_id}`: {what}"));
    let provider = required_string(attributes, PROVIDER)?
        .parse()
        .map_err(|err| corrupt(format!("{err}")))?;
    let status = required_string(attributes, STATUS)?.parse()?;
    let mut matched_rules = match attributes.get(MATCHED_RULES) {
        None => Vec::new(),
        Some(AttributeValue::Ss(rules)) => rules.clone(),
        Some(AttributeValue::L(rules)) => rules
            .iter()
            .map(|rule| {
                rule.as_s()
                    .cloned()
                    .map_err(|_| corrupt(format!("`{MATCHED_RULES}` holds a non-string")))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(corrupt(format!("`{MATCHED_RULES}` is not a string set"))),
    };
    matched_rules.sort();
    matched_rules.dedup();
    Ok(StatusItem {
        provider,
        status,
        provider_event_type: required_string(attributes, PROVIDER_EVENT_TYPE)?,
        event_type: optional_string(attributes, EVENT_TYPE)?,
        payment_id: optional_string(attributes, PAYMENT_ID)?,
        amount_minor: optional_number(attributes, AMOUNT_MINOR)?,
        currency: optional_string(attributes, CURRENCY)?,
        tier: optional_string(attributes, TIER)?,
        payment_effect: optional_string(attributes, PAYMENT_EFFECT)?,
        trace_id: optional_string(attributes, TRACE_ID)?,
        matched_rules,
        attempts: optional_number(attributes, ATTEMPTS)?.unwrap_or(0),
        last_error: optional_string(attributes, LAST_ERROR)?,
        lease_until_ms: optional_number(attributes, LEASE_UNTIL_MS)?,
        received_at: required_string(attributes, RECEIVED_AT)?,
        updated_at: required_string(attributes, UPDATED_AT)?,
        queued_at: optional_string(attributes, QUEUED_AT)?,
        published_at: optional_string(attributes, PUBLISHED_AT)?,
        processed_at: optional_string(attributes, PROCESSED_AT)?,
        expires_at: optional_number(attributes, TTL_ATTRIBUTE)?
            .ok_or_else(|| corrupt(format!("`{TTL_ATTRIBUTE}` is missing")))?,
        quarantine_reason: optional_string(attributes, QUARANTINE_REASON)?,
        raw_body: optional_string(attributes, RAW_BODY)?,
        raw_body_key: optional_string(attributes, RAW_BODY_KEY)?,
        message_body: optional_string(attributes, MESSAGE_BODY)?,
        webhook_id,
    })
}

fn optional_string(
    attributes: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<String>, StoreError> {
    match attributes.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
        Some(_) => Err(StoreError::Corrupt(format!("`{name}` is not a string"))),
    }
}

fn required_string(
    attributes: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<String, StoreError> {
    optional_string(attributes, name)?
        .ok_or_else(|| StoreError::Corrupt(format!("`{name}` is missing")))
}

fn optional_number<T: std::str::FromStr>(
    attributes: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match attributes.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(value)) => value
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("`{name}` = {value} is out of range"))),
        Some(_) => Err(StoreError::Corrupt(format!("`{name}` is not a number"))),
    }
}

/// Creates the `webhook-processing` table `name` if it does not exist: partition key
/// [`PARTITION_KEY`], on-demand billing, the sparse index [`OPEN_STATUS_INDEX`], TTL on
/// [`TTL_ATTRIBUTE`]. Waits (up to [`TABLE_ACTIVE_TIMEOUT`]) until the table and its index are
/// `ACTIVE`. Safe to run again; a table created before the index gets it added.
pub async fn create_table(client: &Client, name: &str) -> Result<(), ProvisionError> {
    let invalid = |err: aws_smithy_types::error::operation::BuildError| {
        ProvisionError::Invalid(err.to_string())
    };
    let created = client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attribute_definitions()?))
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(PARTITION_KEY)
                .key_type(KeyType::Hash)
                .build()
                .map_err(invalid)?,
        )
        .global_secondary_indexes(open_status_index()?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    if let Err(err) = created {
        let exists = err
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        if !exists {
            return Err(ProvisionError::Aws(describe("DynamoDB CreateTable", &err)));
        }
    }
    let table = wait_active(client, name).await?;
    let indexed = table
        .global_secondary_indexes()
        .iter()
        .any(|index| index.index_name() == Some(OPEN_STATUS_INDEX));
    if !indexed {
        add_open_status_index(client, name).await?;
    }
    enable_ttl(client, name).await
}

/// The key attributes of the table and its index (all strings).
fn attribute_definitions() -> Result<Vec<AttributeDefinition>, ProvisionError> {
    [PARTITION_KEY, OPEN_STATUS_ATTRIBUTE, OPEN_STATUS_SORT_KEY]
        .into_iter()
        .map(|attribute| {
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|err| ProvisionError::Invalid(err.to_string()))
        })
        .collect()
}

/// [`OPEN_STATUS_INDEX`]: open state → last change, keys only.
fn open_status_index() -> Result<GlobalSecondaryIndex, ProvisionError> {
    let invalid = |err: aws_smithy_types::error::operation::BuildError| {
        ProvisionError::Invalid(err.to_string())
    };
    GlobalSecondaryIndex::builder()
        .index_name(OPEN_STATUS_INDEX)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(OPEN_STATUS_ATTRIBUTE)
                .key_type(KeyType::Hash)
                .build()
                .map_err(invalid)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(OPEN_STATUS_SORT_KEY)
                .key_type(KeyType::Range)
                .build()
                .map_err(invalid)?,
        )
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(invalid)
}

/// Adds [`OPEN_STATUS_INDEX`] to a table created without it and waits until it is `ACTIVE`.
async fn add_open_status_index(client: &Client, name: &str) -> Result<(), ProvisionError> {
    let index = open_status_index()?;
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(OPEN_STATUS_INDEX)
        .set_key_schema(Some(index.key_schema().to_vec()))
        .set_projection(index.projection().cloned())
        .build()
        .map_err(|err| ProvisionError::Invalid(err.to_string()))?;
    client
        .update_table()
        .table_name(name)
        .set_attribute_definitions(Some(attribute_definitions()?))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().create(create).build(),
        )
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("DynamoDB UpdateTable", &err)))?;
    wait_active(client, name).await.map(|_| ())
}

/// Waits until the table and every index of it are `ACTIVE`; returns its description.
async fn wait_active(client: &Client, name: &str) -> Result<TableDescription, ProvisionError> {
    let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|err| ProvisionError::Aws(describe("DynamoDB DescribeTable", &err)))?;
        if let Some(table) = described.table() {
            let indexes_active = table.global_secondary_indexes().iter().all(|index| {
                index
                    .index_status()
                    .is_none_or(|status| *status == IndexStatus::Active)
            });
            if table.table_status() == Some(&TableStatus::Active) && indexes_active {
                return Ok(table.clone());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ProvisionError::Timeout(format!(
                "table `{name}` and its indexes to become ACTIVE"
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Turns TTL on [`TTL_ATTRIBUTE`] on unless it is on (or being turned on).
async fn enable_ttl(client: &Client, name: &str) -> Result<(), ProvisionError> {
    let invalid = |err: aws_smithy_types::error::operation::BuildError| {
        ProvisionError::Invalid(err.to_string())
    };
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|err| ProvisionError::Aws(describe("DynamoDB DescribeTimeToLive", &err)))?;
    let ttl_on = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if !ttl_on {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(invalid)?,
            )
            .send()
            .await
            .map_err(|err| ProvisionError::Aws(describe("DynamoDB UpdateTimeToLive", &err)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use payhook_core::Provider;

    use super::*;

    fn full_item() -> StatusItem {
        let mut item = StatusItem::new(
            "stripe:evt_1",
            Provider::Stripe,
            "payment_intent.succeeded",
            Status::Published,
            1_767_225_600_000,
        );
        item.event_type = Some("payment.succeeded".into());
        item.payment_id = Some("pi_1".into());
        item.amount_minor = Some(-1_999);
        item.currency = Some("EUR".into());
        item.tier = Some("high".into());
        item.payment_effect = Some("transition".into());
        item.trace_id = Some("1-67a0b0c0-0123456789abcdef01234567".into());
        item.matched_rules = vec!["audit".into(), "high-value".into()];
        item.attempts = 2;
        item.last_error = Some("bus throttled".into());
        item.lease_until_ms = Some(1_767_225_660_000);
        item.queued_at = Some("2026-01-01T00:00:00.100Z".into());
        item.published_at = Some("2026-01-01T00:00:00.200Z".into());
        item.processed_at = Some("2026-01-01T00:00:00.300Z".into());
        item.raw_body_key = Some("quarantine/stripe/ab12".into());
        item.message_body = Some(r#"{"webhook_id":"stripe:evt_1"}"#.into());
        item
    }

    #[test]
    fn every_field_survives_the_attribute_codec() {
        let item = full_item();
        assert_eq!(
            item_from_attributes(&item_to_attributes(&item)).unwrap(),
            item
        );
        let bare = StatusItem::new("paypal:WH-1", Provider::Paypal, "x", Status::Received, 0);
        let attributes = item_to_attributes(&bare);
        assert!(!attributes.contains_key(MATCHED_RULES), "no empty sets");
        assert_eq!(item_from_attributes(&attributes).unwrap(), bare);
    }

    #[test]
    fn unknown_status_is_corrupt_not_a_panic() {
        let mut attributes = item_to_attributes(&full_item());
        attributes.insert(STATUS.into(), AttributeValue::S("DONE".into()));
        assert!(matches!(
            item_from_attributes(&attributes),
            Err(StoreError::Corrupt(_))
        ));
        attributes.remove(STATUS);
        assert!(matches!(
            item_from_attributes(&attributes),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn every_placeholder_is_used_by_an_expression() {
        let mut t = Transition::new(Status::Processing, &[Status::Queued, Status::Failed], 5_000);
        t.or_lease_expired_at_ms = Some(5_000);
        t.lease_until_ms = Some(65_000);
        t.increment_attempts = true;
        t.tier = Some("low".into());
        t.payment_effect = Some("stale".into());
        t.add_matched_rules = vec!["b".into(), "a".into(), "b".into()];
        t.last_error = Some("retry".into());
        for t in [
            t.clone(),
            Transition::new(Status::Published, &[Status::Processing], 1),
        ] {
            let spec = UpdateSpec::for_transition(&t).unwrap();
            let text = format!("{} {}", spec.update_expression, spec.condition_expression);
            for placeholder in spec.names.keys().chain(spec.values.keys()) {
                assert!(
                    text.contains(placeholder.as_str()),
                    "{placeholder} unused in {text}"
                );
            }
        }
    }

    #[test]
    fn a_transition_from_nothing_has_no_condition_to_send() {
        assert!(UpdateSpec::for_transition(&Transition::new(Status::Queued, &[], 1)).is_none());
    }

    #[test]
    fn the_open_status_index_key_follows_the_status_and_goes_when_final() {
        let open = item_to_attributes(&full_item());
        assert_eq!(
            open.get(OPEN_STATUS_ATTRIBUTE),
            Some(&AttributeValue::S("PUBLISHED".into()))
        );
        let mut done = full_item();
        done.status = Status::Processed;
        assert!(!item_to_attributes(&done).contains_key(OPEN_STATUS_ATTRIBUTE));

        let queued =
            UpdateSpec::for_transition(&Transition::new(Status::Queued, &[Status::Received], 1))
                .unwrap();
        assert!(
            queued.update_expression.contains("#open = :to"),
            "{}",
            queued.update_expression
        );
        let processed = UpdateSpec::for_transition(&Transition::new(
            Status::Processed,
            &[Status::Published],
            1,
        ))
        .unwrap();
        let remove = processed
            .update_expression
            .split("REMOVE")
            .nth(1)
            .unwrap_or_default();
        assert!(
            remove.contains("#open") && remove.contains("#message_body"),
            "{}",
            processed.update_expression
        );
    }
}
