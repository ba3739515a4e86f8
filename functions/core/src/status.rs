//! The status machine of one webhook in the `webhook-processing` table, the
//! [`StatusStore`] port that persists it with conditional writes, and its in-memory adapter.
//!
//! `RECEIVED → QUEUED → PROCESSING → PUBLISHED → PROCESSED`, plus `IGNORED` and `FAILED`.
//! Every change is a [`Transition`]: a conditional write that only applies when the item is in
//! one of the expected states (or holds an expired `PROCESSING` lease), so concurrent or
//! repeated deliveries cannot move a webhook twice.
//!
//! Items that can still move ([`Status::is_open`]: every state but `PROCESSED` and `IGNORED`)
//! are listed by state, oldest change first, with [`StatusStore::list_by_status`]: the sweeper
//! finds stuck webhooks and `payhook quarantine list` the quarantined ones that way (in
//! DynamoDB a sparse index holds only the open items, so the list never scans the table).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::provider::Provider;

/// How long a webhook's status item — its idempotency record — is kept after its first receipt,
/// by default: far longer than any provider's automatic retries (Stripe up to 3 days, PayPal 25
/// attempts over 3 days, Square up to 24 hours). The validator's
/// `idempotency_retention_secs` sets it per stage; the TTL is set once, when the item is
/// created, and no later transition moves it.
pub const DEFAULT_IDEMPOTENCY_RETENTION_SECS: i64 = 30 * 24 * 60 * 60;

/// How much younger than the idempotency retention an event must be to be accepted: room for
/// the provider's clock running ahead of ours. With retention `R`, an event whose own time is
/// `t` is refused from `t + R − EVENT_AGE_MARGIN_SECS` on (`event_too_old`); its first receipt
/// `r` was no earlier than `t − EVENT_AGE_MARGIN_SECS`, so its record lives until at least
/// `r + R ≥ t + R − EVENT_AGE_MARGIN_SECS`: a replay is either refused or finds the record.
pub const EVENT_AGE_MARGIN_SECS: i64 = 24 * 60 * 60;

/// The oldest event accepted under a retention of `retention_secs` (see
/// [`EVENT_AGE_MARGIN_SECS`] for why this closes every replay window).
pub const fn max_event_age_secs(retention_secs: i64) -> i64 {
    retention_secs - EVENT_AGE_MARGIN_SECS
}

/// Key prefix of the records that remember which body a PayPal transmission carried; they live
/// in the same table as the status items, whose keys always start with a provider name.
pub const TRANSMISSION_KEY_PREFIX: &str = "paypal-transmission#";

/// The trace id (`Root`, `1-…-…`) of an X-Ray trace header
/// (`Root=1-…-…;Parent=…;Sampled=1`).
pub fn trace_id_of_header(header: &str) -> Option<String> {
    header
        .split(';')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(key, _)| *key == "Root")
        .map(|(_, root)| root.to_owned())
        .filter(|root| !root.is_empty())
}

/// Whether `key` is a webhook's status item (`{provider}:{event id}`) rather than another
/// record kept in the same table.
pub fn is_webhook_key(key: &str) -> bool {
    key.split_once(':')
        .is_some_and(|(provider, _)| provider.parse::<Provider>().is_ok())
}

/// Where a webhook is in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Verified and recorded; not yet confirmed on the queue.
    Received,
    /// Durably on the provider's FIFO queue.
    Queued,
    /// Claimed by a processor that holds a lease.
    Processing,
    /// Published to the `payment-events` bus.
    Published,
    /// Recorded by the event processor: the final state of a payment event.
    Processed,
    /// An event type payhook does not process; acknowledged so the provider stops retrying.
    Ignored,
    /// The last attempt before the DLQ failed.
    Failed,
    /// Verified, but the body could not be normalised: kept whole with the reason, answered
    /// 202 so the provider stops retrying, alarmed, and replayable once the code or the rates
    /// file can normalise it.
    Quarantined,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 8] = [
        Status::Received,
        Status::Queued,
        Status::Processing,
        Status::Published,
        Status::Processed,
        Status::Ignored,
        Status::Failed,
        Status::Quarantined,
    ];

    /// The states a webhook can still leave, by itself or by a repair or a replay: all but
    /// `PROCESSED` and `IGNORED`. Only these are listed by [`StatusStore::list_by_status`].
    pub const fn is_open(self) -> bool {
        !matches!(self, Status::Processed | Status::Ignored)
    }

    /// The stored spelling (`QUEUED`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Received => "RECEIVED",
            Status::Queued => "QUEUED",
            Status::Processing => "PROCESSING",
            Status::Published => "PUBLISHED",
            Status::Processed => "PROCESSED",
            Status::Ignored => "IGNORED",
            Status::Failed => "FAILED",
            Status::Quarantined => "QUARANTINED",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status `{s}`")))
    }
}

/// One row of the `webhook-processing` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusItem {
    /// Partition key: `"{provider}:{provider_event_id}"`.
    pub webhook_id: String,
    /// Which provider sent it.
    pub provider: Provider,
    /// Current state.
    pub status: Status,
    /// The provider's event type.
    pub provider_event_type: String,
    /// The normalised event type, when the webhook was normalised into one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The payment (FIFO message group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Amount in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    /// ISO 4217 currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Amount tier (`high`, `medium`, `low`), set by the processor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The X-Ray trace the webhook's journey is recorded in (`1-…-…`, from the validator's
    /// trace header), so on-call can go from the item to the trace and the logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// What the webhook did to its payment's state (`transition`, `unchanged`, `stale`), set
    /// by the processor; see [`crate::payment::Effect`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_effect: Option<String>,
    /// Names of the EventBridge rules that matched, set by the event processor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched_rules: Vec<String>,
    /// Processing attempts (claims) so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last processing error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Unix milliseconds until which a `PROCESSING` claim is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<i64>,
    /// First receipt (RFC 3339, ms); reused on retries so the queued bytes are identical.
    pub received_at: String,
    /// Last change (RFC 3339, ms).
    pub updated_at: String,
    /// When it reached `QUEUED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<String>,
    /// When it reached `PUBLISHED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    /// When it reached `PROCESSED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
    /// DynamoDB TTL attribute (Unix seconds).
    pub expires_at: i64,
    /// Why a `QUARANTINED` body could not be normalised (the normaliser's code and message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_reason: Option<String>,
    /// A `QUARANTINED` webhook's raw body, base64, exactly as verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<String>,
    /// Where a `QUARANTINED` body too large for the item is kept instead of `raw_body`: its
    /// key in the quarantine blob store (the S3 bucket as deployed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_body_key: Option<String>,
    /// The queue message's body (the canonical event JSON) as the validator sends it, kept
    /// while the item is open so a webhook stuck `RECEIVED` can be enqueued again with the
    /// same bytes; dropped when the item reaches `PROCESSED` or `IGNORED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

impl StatusItem {
    /// A new item in `status`, first received at `now_ms`.
    pub fn new(
        webhook_id: impl Into<String>,
        provider: Provider,
        provider_event_type: impl Into<String>,
        status: Status,
        now_ms: i64,
    ) -> Self {
        let at = rfc3339_ms(now_ms);
        StatusItem {
            webhook_id: webhook_id.into(),
            provider,
            status,
            provider_event_type: provider_event_type.into(),
            event_type: None,
            payment_id: None,
            amount_minor: None,
            currency: None,
            tier: None,
            trace_id: None,
            payment_effect: None,
            matched_rules: Vec::new(),
            attempts: 0,
            last_error: None,
            lease_until_ms: None,
            received_at: at.clone(),
            updated_at: at,
            queued_at: None,
            published_at: None,
            processed_at: None,
            expires_at: now_ms.div_euclid(1000) + DEFAULT_IDEMPOTENCY_RETENTION_SECS,
            quarantine_reason: None,
            raw_body: None,
            raw_body_key: None,
            message_body: None,
        }
    }

    /// Keeps the item `retention_secs` after its first receipt instead of the default.
    pub fn with_retention_secs(mut self, now_ms: i64, retention_secs: i64) -> Self {
        self.expires_at = now_ms.div_euclid(1000) + retention_secs;
        self
    }
}

/// What a PayPal transmission carried: its id (as signed) and the SHA-256 of its body. Kept in
/// the status table under [`TRANSMISSION_KEY_PREFIX`] until `expires_at`, which is longer than
/// the transmission-time tolerance, so within the window in which a transmission verifies, its
/// id can only ever come with one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransmissionRecord {
    /// The table key: [`TRANSMISSION_KEY_PREFIX`] + the transmission id.
    pub key: String,
    /// Lower-case hex SHA-256 of the raw body.
    pub body_sha256: String,
    /// Unix seconds after which the record no longer counts (and DynamoDB may delete it).
    pub expires_at: i64,
}

impl TransmissionRecord {
    /// The record of `transmission_id` carrying `body`, kept until `expires_at` (Unix seconds).
    pub fn new(transmission_id: &str, body: &[u8], expires_at: i64) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, body);
        TransmissionRecord {
            key: format!("{TRANSMISSION_KEY_PREFIX}{transmission_id}"),
            body_sha256: hex::encode(digest.as_ref()),
            expires_at,
        }
    }
}

/// What the table said about a transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmissionOutcome {
    /// First seen: recorded now.
    Recorded,
    /// Seen before with the same body: a repeat of the same delivery.
    SameBody,
    /// Seen before with another body: a forgery built from a captured delivery.
    DifferentBody,
}

/// A conditional change of state.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The new state.
    pub to: Status,
    /// The states the item must be in for the change to apply.
    pub from: Vec<Status>,
    /// Also apply when the item is `PROCESSING` with a lease that ended before this instant
    /// (Unix ms): a crashed attempt's claim can be taken over.
    pub or_lease_expired_at_ms: Option<i64>,
    /// Apply only while the item's `attempts` is this: the claim that counted this attempt
    /// still holds the item, so an attempt whose lease ended and was taken over cannot change
    /// what the attempt after it holds.
    pub if_attempt: Option<u32>,
    /// When the change happens (Unix ms).
    pub now_ms: i64,
    /// The lease to hold (only for `PROCESSING`).
    pub lease_until_ms: Option<i64>,
    /// Count one more processing attempt.
    pub increment_attempts: bool,
    /// Tier to record.
    pub tier: Option<String>,
    /// Payment effect to record (see [`StatusItem::payment_effect`]).
    pub payment_effect: Option<String>,
    /// Matched rules to add (deduplicated, kept sorted).
    pub add_matched_rules: Vec<String>,
    /// Error to record (`FAILED`, or a retry's cause).
    pub last_error: Option<String>,
    /// When the event was put on the bus (Unix ms), recorded as `published_at` unless the item
    /// already has one: the event processor can record `PROCESSED` before the processor has
    /// recorded `PUBLISHED` (a fast bus, or a processor that crashed after `PutEvents`). Ignored
    /// on a transition to `PUBLISHED`, which stamps its own time.
    pub published_at_ms: Option<i64>,
}

impl Transition {
    /// A change to `to` from any of `from` at `now_ms`, with nothing else set.
    pub fn new(to: Status, from: &[Status], now_ms: i64) -> Self {
        Transition {
            to,
            from: from.to_vec(),
            or_lease_expired_at_ms: None,
            if_attempt: None,
            now_ms,
            lease_until_ms: None,
            increment_attempts: false,
            tier: None,
            payment_effect: None,
            add_matched_rules: Vec::new(),
            last_error: None,
            published_at_ms: None,
        }
    }

    /// Whether `item` satisfies the condition.
    pub fn allows(&self, item: &StatusItem) -> bool {
        self.if_attempt
            .is_none_or(|attempt| item.attempts == attempt)
            && self.allows_state(item)
    }

    fn allows_state(&self, item: &StatusItem) -> bool {
        self.from.contains(&item.status)
            || matches!(
                (self.or_lease_expired_at_ms, item.status, item.lease_until_ms),
                (Some(now), Status::Processing, Some(lease)) if lease < now
            )
            || matches!(
                (
                    self.or_lease_expired_at_ms,
                    item.status,
                    item.lease_until_ms
                ),
                (Some(_), Status::Processing, None)
            )
    }

    /// Applies the change to `item` (the caller has checked [`Transition::allows`]).
    pub fn apply(&self, item: &mut StatusItem) {
        let at = rfc3339_ms(self.now_ms);
        item.status = self.to;
        item.updated_at = at.clone();
        item.lease_until_ms = self.lease_until_ms;
        if self.increment_attempts {
            item.attempts += 1;
        }
        if let Some(tier) = &self.tier {
            item.tier = Some(tier.clone());
        }
        if let Some(effect) = &self.payment_effect {
            item.payment_effect = Some(effect.clone());
        }
        for rule in &self.add_matched_rules {
            if !item.matched_rules.contains(rule) {
                item.matched_rules.push(rule.clone());
            }
        }
        item.matched_rules.sort();
        if let Some(err) = &self.last_error {
            item.last_error = Some(err.clone());
        }
        if !self.to.is_open() {
            // The bytes are only needed while the webhook may have to be enqueued again.
            item.message_body = None;
        }
        if let Some(published) = self.published_at_ms
            && self.to != Status::Published
        {
            item.published_at
                .get_or_insert_with(|| rfc3339_ms(published));
        }
        // The first time a state is reached is what the timestamps record; repeats keep it.
        let stamp = match self.to {
            Status::Queued => Some(&mut item.queued_at),
            Status::Published => Some(&mut item.published_at),
            Status::Processed => Some(&mut item.processed_at),
            _ => None,
        };
        if let Some(slot) = stamp {
            slot.get_or_insert(at);
        }
    }
}

/// Default most items one [`StatusStore::list_by_status`] page holds.
pub const DEFAULT_LIST_PAGE_SIZE: usize = 100;

/// Where a [`StatusStore::list_by_status`] page ended: the next page starts after this item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageCursor {
    /// The last listed item's `updated_at`.
    pub updated_at: String,
    /// The last listed item's id.
    pub webhook_id: String,
}

/// Which items [`StatusStore::list_by_status`] lists: those in `status` whose last change was
/// before `updated_before_ms`, oldest change first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusQuery {
    /// The state (an open one: [`Status::is_open`]; final states are never listed).
    pub status: Status,
    /// Only items last changed before this instant (Unix ms).
    pub updated_before_ms: i64,
    /// The most items in one page (at least 1).
    pub limit: usize,
    /// Continue after this item (the previous page's [`StatusPage::next`]).
    pub after: Option<PageCursor>,
}

impl StatusQuery {
    /// The first page of items in `status` last changed before `updated_before_ms`.
    pub fn new(status: Status, updated_before_ms: i64) -> Self {
        StatusQuery {
            status,
            updated_before_ms,
            limit: DEFAULT_LIST_PAGE_SIZE,
            after: None,
        }
    }

    /// Whether `item` belongs to this listing (ignoring paging).
    pub fn matches(&self, item: &StatusItem) -> bool {
        item.status == self.status
            && self.status.is_open()
            && item.updated_at < rfc3339_ms(self.updated_before_ms)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusPage {
    /// The items, oldest change first.
    pub items: Vec<StatusItem>,
    /// Where the next page starts; `None` when this was the last.
    pub next: Option<PageCursor>,
}

/// The result of creating an item.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// The item did not exist and was written.
    Created,
    /// An item with that id already exists; here it is.
    Exists(Box<StatusItem>),
}

/// The result of a conditional transition.
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionOutcome {
    /// The condition held; the item as written.
    Applied(Box<StatusItem>),
    /// The condition failed; the item as it is (`None` when there is no such item).
    Rejected(Option<Box<StatusItem>>),
}

/// A status store failure: the caller answers 503 / retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backing store could not be reached or refused the call.
    #[error("status store unavailable: {0}")]
    Unavailable(String),
    /// A stored item could not be read back.
    #[error("status item is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "state_store_unavailable",
            StoreError::Corrupt(_) => "state_store_corrupt",
        }
    }
}

/// The `webhook-processing` table.
#[async_trait]
pub trait StatusStore: Send + Sync {
    /// Reads one item.
    async fn get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError>;
    /// Writes `item` only if no item with its id exists.
    async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError>;
    /// Applies `transition` to the item only if its condition holds.
    async fn transition(
        &self,
        webhook_id: &str,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError>;
    /// Records `record` unless a record with its key that has not expired at `now_unix` exists;
    /// then compares the bodies. One conditional write: two racing deliveries of one
    /// transmission id cannot both be [`TransmissionOutcome::Recorded`].
    async fn record_transmission(
        &self,
        record: &TransmissionRecord,
        now_unix: i64,
    ) -> Result<TransmissionOutcome, StoreError>;

    /// One page of the items in `query.status` last changed before `query.updated_before_ms`,
    /// oldest change first. A store that cannot list (a test double) says so with
    /// [`StoreError::Unavailable`]; the stores payhook runs on all list.
    async fn list_by_status(&self, query: &StatusQuery) -> Result<StatusPage, StoreError> {
        Err(StoreError::Unavailable(format!(
            "this status store cannot list {} items",
            query.status
        )))
    }
}

/// The in-memory status store used by `payhook serve` and tests: one mutex, so every
/// conditional write is atomic exactly as DynamoDB's are.
///
/// Items are boxed: the table grows by doubling while a run writes tens of thousands, and each
/// doubling then moves a pointer per item instead of the whole item (a few hundred bytes).
#[derive(Debug, Default)]
pub struct MemoryStatusStore {
    items: Mutex<HashMap<String, Box<StatusItem>>>,
    transmissions: Mutex<HashMap<String, TransmissionRecord>>,
}

impl MemoryStatusStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every item (for stats and reconciliation).
    pub async fn snapshot(&self) -> Vec<StatusItem> {
        let mut items: Vec<StatusItem> = self
            .items
            .lock()
            .await
            .values()
            .map(|item| StatusItem::clone(item))
            .collect();
        items.sort_by(|a, b| a.webhook_id.cmp(&b.webhook_id));
        items
    }
}

#[async_trait]
impl StatusStore for MemoryStatusStore {
    async fn get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError> {
        Ok(self
            .items
            .lock()
            .await
            .get(webhook_id)
            .map(|item| StatusItem::clone(item)))
    }

    async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError> {
        let mut items = self.items.lock().await;
        match items.get(&item.webhook_id) {
            Some(existing) => Ok(PutOutcome::Exists(existing.clone())),
            None => {
                items.insert(item.webhook_id.clone(), Box::new(item.clone()));
                Ok(PutOutcome::Created)
            }
        }
    }

    async fn transition(
        &self,
        webhook_id: &str,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        let mut items = self.items.lock().await;
        match items.get_mut(webhook_id) {
            Some(item) if transition.allows(item) => {
                transition.apply(item);
                Ok(TransitionOutcome::Applied(item.clone()))
            }
            Some(item) => Ok(TransitionOutcome::Rejected(Some(item.clone()))),
            None => Ok(TransitionOutcome::Rejected(None)),
        }
    }

    async fn record_transmission(
        &self,
        record: &TransmissionRecord,
        now_unix: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        let mut transmissions = self.transmissions.lock().await;
        match transmissions.get(&record.key) {
            Some(seen) if seen.expires_at >= now_unix => Ok(compare_bodies(seen, record)),
            _ => {
                transmissions.insert(record.key.clone(), record.clone());
                Ok(TransmissionOutcome::Recorded)
            }
        }
    }

    async fn list_by_status(&self, query: &StatusQuery) -> Result<StatusPage, StoreError> {
        let items = self.items.lock().await;
        let mut listed: Vec<&StatusItem> = items
            .values()
            .map(|item| &**item)
            .filter(|item| query.matches(item))
            .filter(|item| {
                query
                    .after
                    .as_ref()
                    .is_none_or(|after| &cursor_of(item) > after)
            })
            .collect();
        listed.sort_by_key(|item| cursor_of(item));
        let limit = query.limit.max(1);
        let more = listed.len() > limit;
        listed.truncate(limit);
        Ok(StatusPage {
            next: more
                .then(|| listed.last().map(|item| cursor_of(item)))
                .flatten(),
            items: listed.into_iter().cloned().collect(),
        })
    }
}

/// Up to `max` items of `query` (from its first page on), following the pages.
pub async fn list_up_to(
    store: &dyn StatusStore,
    mut query: StatusQuery,
    max: usize,
) -> Result<Vec<StatusItem>, StoreError> {
    let mut items = Vec::new();
    while items.len() < max {
        query.limit = query.limit.min(max - items.len()).max(1);
        let page = store.list_by_status(&query).await?;
        items.extend(page.items);
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    items.truncate(max);
    Ok(items)
}

/// The cursor that lists after `item`.
pub fn cursor_of(item: &StatusItem) -> PageCursor {
    PageCursor {
        updated_at: item.updated_at.clone(),
        webhook_id: item.webhook_id.clone(),
    }
}

/// Whether `seen` (already recorded) carried the same body as `record`.
pub fn compare_bodies(
    seen: &TransmissionRecord,
    record: &TransmissionRecord,
) -> TransmissionOutcome {
    if seen.body_sha256 == record.body_sha256 {
        TransmissionOutcome::SameBody
    } else {
        TransmissionOutcome::DifferentBody
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-01-01T00:00:00.000Z`).
///
/// Every status write stamps one or two of these, so the usual range (1970 to the end of
/// 9999) is written by hand; anything else goes through `time`'s formatter.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    /// 10000-01-01T00:00:00Z in Unix milliseconds.
    const YEAR_10000_MS: i64 = 253_402_300_800_000;
    if !(0..YEAR_10000_MS).contains(&unix_ms) {
        return rfc3339_ms_by_time(unix_ms);
    }
    let (days, ms_of_day) = (unix_ms / 86_400_000, unix_ms % 86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (secs, ms) = (ms_of_day / 1000, ms_of_day % 1000);
    let mut out = [0u8; 24];
    let mut put = |at: usize, n: i64, width: usize| {
        let mut n = n;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, secs / 3600, 2);
    put(14, secs / 60 % 60, 2);
    put(17, secs % 60, 2);
    put(20, ms, 3);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        out[at] = c;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// (year, month, day) of the proleptic Gregorian calendar for days since 1970-01-01, for
/// `days` ≥ 0 (H. Hinnant's `civil_from_days`, over 400-year eras).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// [`rfc3339_ms`] through `time`'s formatter (before 1970, or past 9999: the Unix epoch
/// outside what `time` represents).
fn rfc3339_ms_by_time(unix_ms: i64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&fmt).unwrap_or_default()
}

#[async_trait]
impl<S: StatusStore + ?Sized> StatusStore for std::sync::Arc<S> {
    async fn get(&self, webhook_id: &str) -> Result<Option<StatusItem>, StoreError> {
        (**self).get(webhook_id).await
    }

    async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError> {
        (**self).put_new(item).await
    }

    async fn transition(
        &self,
        webhook_id: &str,
        transition: &Transition,
    ) -> Result<TransitionOutcome, StoreError> {
        (**self).transition(webhook_id, transition).await
    }

    async fn record_transmission(
        &self,
        record: &TransmissionRecord,
        now_unix: i64,
    ) -> Result<TransmissionOutcome, StoreError> {
        (**self).record_transmission(record, now_unix).await
    }

    async fn list_by_status(&self, query: &StatusQuery) -> Result<StatusPage, StoreError> {
        (**self).list_by_status(query).await
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn rfc3339_ms_writes_what_times_formatter_writes() {
        let mut checked = 0;
        // Every boundary that matters (epoch, leap days of 2000 and 2024, 2100 that is not
        // one, a year's and the range's last millisecond) and a walk over the whole range
        // whose step (about 143 days, odd in every unit) varies every field.
        let edges = [
            0,
            951_782_400_000,
            951_868_799_999,
            1_709_164_800_000,
            4_107_542_400_000,
            4_107_628_800_000,
            1_767_225_599_999,
            253_402_300_799_999,
        ];
        let walk = (0..253_402_300_800_000_i64).step_by(12_345_678_901);
        for ms in edges.into_iter().chain(walk) {
            assert_eq!(rfc3339_ms(ms), rfc3339_ms_by_time(ms), "{ms}");
            checked += 1;
        }
        assert!(checked > 20_000);
        // Outside 1970..=9999 it is `time`'s answer.
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_ms(253_402_300_800_000),
            rfc3339_ms_by_time(253_402_300_800_000)
        );
    }

    use super::*;

    fn item(status: Status) -> StatusItem {
        StatusItem::new(
            "stripe:evt_1",
            Provider::Stripe,
            "x",
            status,
            1_767_225_600_000,
        )
    }

    #[test]
    fn rfc3339_has_milliseconds_and_z() {
        assert_eq!(rfc3339_ms(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
    }

    #[tokio::test]
    async fn conditional_transition_applies_once() {
        let store = MemoryStatusStore::new();
        assert_eq!(
            store.put_new(&item(Status::Received)).await.unwrap(),
            PutOutcome::Created
        );
        assert!(matches!(
            store.put_new(&item(Status::Received)).await.unwrap(),
            PutOutcome::Exists(_)
        ));
        let t = Transition::new(Status::Queued, &[Status::Received], 1);
        assert!(matches!(
            store.transition("stripe:evt_1", &t).await.unwrap(),
            TransitionOutcome::Applied(_)
        ));
        assert!(matches!(
            store.transition("stripe:evt_1", &t).await.unwrap(),
            TransitionOutcome::Rejected(Some(_))
        ));
    }

    #[test]
    fn expired_lease_can_be_taken_over() {
        let mut it = item(Status::Processing);
        it.lease_until_ms = Some(1_000);
        let mut t = Transition::new(Status::Processing, &[Status::Queued], 2_000);
        assert!(!t.allows(&it));
        t.or_lease_expired_at_ms = Some(999);
        assert!(!t.allows(&it), "a lease still held is not taken");
        t.or_lease_expired_at_ms = Some(1_001);
        assert!(t.allows(&it));
    }

    #[test]
    fn a_transition_for_one_attempt_leaves_another_attempts_claim_alone() {
        let mut it = item(Status::Processing);
        it.attempts = 2;
        let mut release = Transition::new(Status::Queued, &[Status::Processing], 2_000);
        release.if_attempt = Some(1);
        assert!(
            !release.allows(&it),
            "attempt 1 cannot release attempt 2's claim"
        );
        release.if_attempt = Some(2);
        assert!(release.allows(&it));
    }

    async fn stored(store: &MemoryStatusStore, id: &str, status: Status, at_ms: i64) {
        let item = StatusItem::new(id, Provider::Stripe, "x", status, at_ms);
        assert_eq!(store.put_new(&item).await.unwrap(), PutOutcome::Created);
    }

    #[tokio::test]
    async fn listing_by_status_pages_oldest_first_and_stops_at_the_cutoff() {
        let store = MemoryStatusStore::new();
        stored(&store, "stripe:evt_c", Status::Received, 3_000).await;
        stored(&store, "stripe:evt_a", Status::Received, 1_000).await;
        stored(&store, "stripe:evt_b", Status::Received, 2_000).await;
        stored(&store, "stripe:evt_new", Status::Received, 9_000).await;
        stored(&store, "stripe:evt_q", Status::Queued, 1_000).await;

        let mut query = StatusQuery::new(Status::Received, 5_000);
        query.limit = 2;
        let first = store.list_by_status(&query).await.unwrap();
        let ids: Vec<&str> = first.items.iter().map(|i| i.webhook_id.as_str()).collect();
        assert_eq!(ids, ["stripe:evt_a", "stripe:evt_b"]);
        query.after = first.next.clone();
        assert!(query.after.is_some(), "a third item is left");
        let second = store.list_by_status(&query).await.unwrap();
        let ids: Vec<&str> = second.items.iter().map(|i| i.webhook_id.as_str()).collect();
        assert_eq!(ids, ["stripe:evt_c"], "the cutoff leaves evt_new out");
        assert_eq!(second.next, None);
    }

    #[tokio::test]
    async fn a_final_state_drops_the_message_body_and_is_never_listed() {
        let store = MemoryStatusStore::new();
        let mut item = item(Status::Published);
        item.message_body = Some("{}".into());
        store.put_new(&item).await.unwrap();
        let done = Transition::new(Status::Processed, &[Status::Published], 2_000_000_000_000);
        let TransitionOutcome::Applied(done) =
            store.transition("stripe:evt_1", &done).await.unwrap()
        else {
            panic!("the transition applies");
        };
        assert_eq!(done.message_body, None);
        let listed = store
            .list_by_status(&StatusQuery::new(Status::Processed, i64::MAX / 2))
            .await
            .unwrap();
        assert!(listed.items.is_empty());
    }

    #[test]
    fn the_retention_and_the_event_age_margin_are_thirty_days_and_one_day() {
        assert_eq!(DEFAULT_IDEMPOTENCY_RETENTION_SECS, 2_592_000);
        assert_eq!(EVENT_AGE_MARGIN_SECS, 86_400);
        assert_eq!(
            max_event_age_secs(DEFAULT_IDEMPOTENCY_RETENTION_SECS),
            2_505_600
        );
        assert_eq!(max_event_age_secs(345_600), 259_200);
    }

    #[test]
    fn a_new_item_is_kept_for_the_retention_after_its_first_receipt() {
        let it = item(Status::Received);
        assert_eq!(it.expires_at, 1_767_225_600 + 2_592_000);
        assert_eq!(it.received_at, "2026-01-01T00:00:00.000Z");
        assert_eq!(it.updated_at, it.received_at);
        let kept = it.with_retention_secs(1_767_225_600_999, 345_600);
        assert_eq!(kept.expires_at, 1_767_225_600 + 345_600);
    }

    #[test]
    fn the_trace_id_is_the_root_of_the_trace_header() {
        assert_eq!(
            trace_id_of_header(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            )
            .as_deref(),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(
            trace_id_of_header("Parent=53995c3f42cd8ad8; Root=1-a-b ;Sampled=0").as_deref(),
            Some("1-a-b")
        );
        assert_eq!(
            trace_id_of_header("Parent=53995c3f42cd8ad8;Sampled=1"),
            None
        );
        assert_eq!(trace_id_of_header("Root=;Parent=53995c3f42cd8ad8"), None);
        assert_eq!(trace_id_of_header(""), None);
    }

    #[test]
    fn only_provider_prefixed_keys_are_webhook_items() {
        for key in ["stripe:evt_1", "paypal:WH-1", "square:abc"] {
            assert!(is_webhook_key(key), "{key}");
        }
        for key in [
            "paypal-transmission#8c1a",
            "adyen:evt_1",
            "Stripe:evt_1",
            "stripe",
            "",
        ] {
            assert!(!is_webhook_key(key), "{key}");
        }
    }

    #[test]
    fn statuses_are_stored_in_upper_case_and_read_back() {
        let names: Vec<String> = Status::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "RECEIVED",
                "QUEUED",
                "PROCESSING",
                "PUBLISHED",
                "PROCESSED",
                "IGNORED",
                "FAILED",
                "QUARANTINED"
            ]
        );
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(
            "queued".parse::<Status>(),
            Err(StoreError::Corrupt("unknown status `queued`".into()))
        );
    }

    #[test]
    fn only_processed_and_ignored_are_final() {
        let open: Vec<Status> = Status::ALL.into_iter().filter(|s| s.is_open()).collect();
        assert_eq!(
            open,
            [
                Status::Received,
                Status::Queued,
                Status::Processing,
                Status::Published,
                Status::Failed,
                Status::Quarantined
            ]
        );
    }

    #[test]
    fn store_errors_have_stable_codes() {
        assert_eq!(
            StoreError::Unavailable("x".into()).code(),
            "state_store_unavailable"
        );
        assert_eq!(
            StoreError::Corrupt("x".into()).code(),
            "state_store_corrupt"
        );
    }

    #[test]
    fn a_transition_needs_both_the_state_and_the_attempt() {
        let mut it = item(Status::Queued);
        it.attempts = 1;
        let mut t = Transition::new(Status::Processing, &[Status::Queued], 2_000);
        assert!(t.allows(&it));
        t.if_attempt = Some(1);
        assert!(t.allows(&it));
        it.status = Status::Published;
        assert!(!t.allows(&it), "the right attempt in the wrong state");
        it.status = Status::Queued;
        it.attempts = 2;
        assert!(!t.allows(&it), "the right state for another attempt");
    }

    #[test]
    fn a_lease_is_taken_over_only_from_processing() {
        let mut t = Transition::new(Status::Processing, &[Status::Queued], 2_000);
        t.or_lease_expired_at_ms = Some(2_000);
        let mut held = item(Status::Processing);
        held.lease_until_ms = Some(1_999);
        assert!(t.allows(&held), "an ended lease");
        held.lease_until_ms = Some(2_000);
        assert!(
            !t.allows(&held),
            "a lease ending this instant is still held"
        );
        held.lease_until_ms = None;
        assert!(t.allows(&held), "a PROCESSING item without a lease");
        for status in [Status::Published, Status::Failed, Status::Received] {
            let mut other = item(status);
            other.lease_until_ms = Some(1);
            assert!(!t.allows(&other), "{status}");
            other.lease_until_ms = None;
            assert!(!t.allows(&other), "{status} without a lease");
        }
        t.or_lease_expired_at_ms = None;
        held.lease_until_ms = None;
        assert!(!t.allows(&held), "no take-over asked for");
    }

    #[test]
    fn a_transition_records_what_it_carries() {
        let mut it = item(Status::Queued);
        it.attempts = 2;
        it.matched_rules = vec!["b-rule".into()];
        it.message_body = Some("{}".into());
        it.lease_until_ms = Some(5);
        let mut t = Transition::new(Status::Processing, &[Status::Queued], 1_767_225_601_250);
        t.lease_until_ms = Some(1_767_225_631_250);
        t.increment_attempts = true;
        t.tier = Some("high".into());
        t.payment_effect = Some("transition".into());
        t.add_matched_rules = vec!["c-rule".into(), "a-rule".into(), "b-rule".into()];
        t.last_error = Some("bus_unavailable".into());
        t.apply(&mut it);
        assert_eq!(it.status, Status::Processing);
        assert_eq!(it.updated_at, "2026-01-01T00:00:01.250Z");
        assert_eq!(it.received_at, "2026-01-01T00:00:00.000Z");
        assert_eq!(it.lease_until_ms, Some(1_767_225_631_250));
        assert_eq!(it.attempts, 3);
        assert_eq!(it.tier.as_deref(), Some("high"));
        assert_eq!(it.payment_effect.as_deref(), Some("transition"));
        assert_eq!(it.matched_rules, ["a-rule", "b-rule", "c-rule"]);
        assert_eq!(it.last_error.as_deref(), Some("bus_unavailable"));
        assert_eq!(it.message_body.as_deref(), Some("{}"), "still open");
        assert_eq!(
            (&it.queued_at, &it.published_at, &it.processed_at),
            (&None, &None, &None)
        );

        // A transition that carries nothing keeps what the item has, but not its lease.
        let bare = Transition::new(Status::Queued, &[Status::Processing], 1_767_225_602_000);
        bare.apply(&mut it);
        assert_eq!(it.attempts, 3);
        assert_eq!(it.lease_until_ms, None);
        assert_eq!(it.tier.as_deref(), Some("high"));
        assert_eq!(it.payment_effect.as_deref(), Some("transition"));
        assert_eq!(it.matched_rules, ["a-rule", "b-rule", "c-rule"]);
        assert_eq!(it.last_error.as_deref(), Some("bus_unavailable"));
        assert_eq!(it.queued_at.as_deref(), Some("2026-01-01T00:00:02.000Z"));
    }

    #[test]
    fn ignored_also_drops_the_message_body() {
        let mut it = item(Status::Quarantined);
        it.message_body = Some("{}".into());
        Transition::new(Status::Failed, &[Status::Quarantined], 2_000).apply(&mut it);
        assert_eq!(it.message_body.as_deref(), Some("{}"), "FAILED is open");
        Transition::new(Status::Ignored, &[Status::Failed], 3_000).apply(&mut it);
        assert_eq!(it.message_body, None);
    }

    #[test]
    fn each_state_is_stamped_the_first_time_it_is_reached() {
        let mut it = item(Status::Received);
        Transition::new(Status::Queued, &[Status::Received], 1_000).apply(&mut it);
        Transition::new(Status::Queued, &[Status::Queued], 2_000).apply(&mut it);
        assert_eq!(it.queued_at.as_deref(), Some("1970-01-01T00:00:01.000Z"));
        Transition::new(Status::Published, &[Status::Queued], 3_000).apply(&mut it);
        Transition::new(Status::Published, &[Status::Published], 4_000).apply(&mut it);
        assert_eq!(it.published_at.as_deref(), Some("1970-01-01T00:00:03.000Z"));
        Transition::new(Status::Processed, &[Status::Published], 5_000).apply(&mut it);
        Transition::new(Status::Processed, &[Status::Processed], 6_000).apply(&mut it);
        assert_eq!(it.processed_at.as_deref(), Some("1970-01-01T00:00:05.000Z"));
        assert_eq!(it.queued_at.as_deref(), Some("1970-01-01T00:00:01.000Z"));
        assert_eq!(it.published_at.as_deref(), Some("1970-01-01T00:00:03.000Z"));
        assert_eq!(it.updated_at, "1970-01-01T00:00:06.000Z");
    }

    #[test]
    fn the_put_time_is_published_at_unless_published_stamps_its_own() {
        let mut early = item(Status::Queued);
        let mut processed = Transition::new(Status::Processed, &[Status::Queued], 9_000);
        processed.published_at_ms = Some(7_250);
        processed.apply(&mut early);
        assert_eq!(
            early.published_at.as_deref(),
            Some("1970-01-01T00:00:07.250Z")
        );
        assert_eq!(
            early.processed_at.as_deref(),
            Some("1970-01-01T00:00:09.000Z")
        );

        let mut it = item(Status::Processing);
        let mut published = Transition::new(Status::Published, &[Status::Processing], 8_000);
        published.published_at_ms = Some(7_250);
        published.apply(&mut it);
        assert_eq!(it.published_at.as_deref(), Some("1970-01-01T00:00:08.000Z"));
        processed.apply(&mut it);
        assert_eq!(
            it.published_at.as_deref(),
            Some("1970-01-01T00:00:08.000Z"),
            "a recorded PUBLISHED time is kept"
        );
    }

    #[tokio::test]
    async fn the_store_applies_a_transition_only_when_it_is_allowed() {
        let store = MemoryStatusStore::new();
        store.put_new(&item(Status::Received)).await.unwrap();
        let refused = Transition::new(Status::Processing, &[Status::Queued], 2_000);
        let TransitionOutcome::Rejected(Some(as_is)) =
            store.transition("stripe:evt_1", &refused).await.unwrap()
        else {
            panic!("a RECEIVED item is not claimed from QUEUED");
        };
        assert_eq!(*as_is, item(Status::Received));
        assert_eq!(
            store.get("stripe:evt_1").await.unwrap(),
            Some(item(Status::Received))
        );
        assert_eq!(
            store.transition("stripe:evt_2", &refused).await.unwrap(),
            TransitionOutcome::Rejected(None)
        );
        assert_eq!(store.get("stripe:evt_2").await.unwrap(), None);

        let queued = Transition::new(Status::Queued, &[Status::Received], 2_000);
        let TransitionOutcome::Applied(written) =
            store.transition("stripe:evt_1", &queued).await.unwrap()
        else {
            panic!("RECEIVED → QUEUED applies");
        };
        assert_eq!(written.status, Status::Queued);
        assert_eq!(store.get("stripe:evt_1").await.unwrap(), Some(*written));
    }

    #[tokio::test]
    async fn put_new_never_overwrites_and_returns_the_item_there() {
        let store = MemoryStatusStore::new();
        let first = item(Status::Received);
        assert_eq!(store.put_new(&first).await.unwrap(), PutOutcome::Created);
        let mut second = item(Status::Ignored);
        second.provider_event_type = "y".into();
        assert_eq!(
            store.put_new(&second).await.unwrap(),
            PutOutcome::Exists(Box::new(first.clone()))
        );
        assert_eq!(store.snapshot().await, [first]);
    }

    #[tokio::test]
    async fn the_snapshot_holds_every_item_in_id_order() {
        let store = MemoryStatusStore::new();
        stored(&store, "stripe:evt_b", Status::Processed, 1_000).await;
        stored(&store, "paypal:WH-1", Status::Queued, 2_000).await;
        stored(&store, "stripe:evt_a", Status::Ignored, 3_000).await;
        let ids: Vec<String> = store
            .snapshot()
            .await
            .into_iter()
            .map(|i| i.webhook_id)
            .collect();
        assert_eq!(ids, ["paypal:WH-1", "stripe:evt_a", "stripe:evt_b"]);
    }

    #[tokio::test]
    async fn a_transmission_id_keeps_its_body_until_its_record_expires() {
        let store = MemoryStatusStore::new();
        let first = TransmissionRecord::new("tx-1", b"{\"a\":1}", 1_000);
        assert_eq!(
            first.body_sha256,
            "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
        assert_eq!(first.key, "paypal-transmission#tx-1");
        let same = TransmissionRecord::new("tx-1", b"{\"a\":1}", 2_000);
        let other = TransmissionRecord::new("tx-1", b"{\"a\":2}", 2_000);
        assert_eq!(
            store.record_transmission(&first, 900).await.unwrap(),
            TransmissionOutcome::Recorded
        );
        assert_eq!(
            store.record_transmission(&same, 950).await.unwrap(),
            TransmissionOutcome::SameBody
        );
        assert_eq!(
            store.record_transmission(&other, 1_000).await.unwrap(),
            TransmissionOutcome::DifferentBody,
            "the record still counts at its expiry second"
        );
        assert_eq!(
            store
                .record_transmission(&TransmissionRecord::new("tx-2", b"{\"a\":2}", 2_000), 1_000)
                .await
                .unwrap(),
            TransmissionOutcome::Recorded,
            "another transmission id"
        );
        assert_eq!(
            store.record_transmission(&other, 1_001).await.unwrap(),
            TransmissionOutcome::Recorded,
            "an expired record no longer counts"
        );
        assert_eq!(
            store.record_transmission(&first, 1_500).await.unwrap(),
            TransmissionOutcome::DifferentBody,
            "the new record replaced the expired one"
        );
    }

    #[tokio::test]
    async fn a_page_ends_where_the_next_begins_and_the_last_page_says_so() {
        let store = MemoryStatusStore::new();
        // Two items changed in the same millisecond: the id orders them.
        stored(&store, "stripe:evt_b", Status::Queued, 1_000).await;
        stored(&store, "stripe:evt_a", Status::Queued, 1_000).await;
        stored(&store, "stripe:evt_c", Status::Queued, 2_000).await;
        let mut query = StatusQuery::new(Status::Queued, 2_001);
        query.limit = 1;
        let mut pages = Vec::new();
        loop {
            let page = store.list_by_status(&query).await.unwrap();
            let ids: Vec<String> = page.items.iter().map(|i| i.webhook_id.clone()).collect();
            pages.push((ids, page.next.clone()));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
            assert!(pages.len() < 10, "the listing ends");
        }
        let cursor = |at: &str, id: &str| {
            Some(PageCursor {
                updated_at: at.into(),
                webhook_id: id.into(),
            })
        };
        assert_eq!(
            pages,
            [
                (
                    vec!["stripe:evt_a".to_owned()],
                    cursor("1970-01-01T00:00:01.000Z", "stripe:evt_a")
                ),
                (
                    vec!["stripe:evt_b".to_owned()],
                    cursor("1970-01-01T00:00:01.000Z", "stripe:evt_b")
                ),
                (vec!["stripe:evt_c".to_owned()], None),
            ]
        );

        // A page exactly as large as what is left is the last one.
        let mut query = StatusQuery::new(Status::Queued, 2_001);
        query.limit = 3;
        let page = store.list_by_status(&query).await.unwrap();
        assert_eq!(page.items.len(), 3);
        assert_eq!(page.next, None);
        // A limit of 0 lists one.
        query.limit = 0;
        let page = store.list_by_status(&query).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(
            page.next,
            cursor("1970-01-01T00:00:01.000Z", "stripe:evt_a")
        );
    }

    #[tokio::test]
    async fn an_item_changed_at_the_cutoff_is_not_listed() {
        let store = MemoryStatusStore::new();
        stored(&store, "stripe:evt_a", Status::Failed, 1_000).await;
        stored(&store, "stripe:evt_b", Status::Failed, 2_000).await;
        stored(&store, "stripe:evt_i", Status::Ignored, 500).await;
        let listed = store
            .list_by_status(&StatusQuery::new(Status::Failed, 2_000))
            .await
            .unwrap();
        let ids: Vec<&str> = listed.items.iter().map(|i| i.webhook_id.as_str()).collect();
        assert_eq!(ids, ["stripe:evt_a"]);
        let query = StatusQuery::new(Status::Ignored, 2_000);
        assert!(!query.matches(&store.get("stripe:evt_i").await.unwrap().unwrap()));
        assert!(StatusQuery::new(Status::Failed, 1_001).matches(&item_at(Status::Failed, 1_000)));
        assert!(!StatusQuery::new(Status::Queued, 1_001).matches(&item_at(Status::Failed, 1_000)));
    }

    fn item_at(status: Status, at_ms: i64) -> StatusItem {
        StatusItem::new("stripe:evt_1", Provider::Stripe, "x", status, at_ms)
    }

    #[tokio::test]
    async fn list_up_to_follows_the_pages_up_to_the_most_asked_for() {
        let store = std::sync::Arc::new(MemoryStatusStore::new());
        for (n, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let at = 1_000 * (i64::try_from(n).unwrap() + 1);
            stored(&store, &format!("stripe:evt_{id}"), Status::Received, at).await;
        }
        let ids = |items: Vec<StatusItem>| -> Vec<String> {
            items.into_iter().map(|i| i.webhook_id).collect()
        };
        let mut query = StatusQuery::new(Status::Received, 10_000);
        query.limit = 2;
        let all = list_up_to(&store, query.clone(), 100).await.unwrap();
        assert_eq!(
            ids(all),
            [
                "stripe:evt_a",
                "stripe:evt_b",
                "stripe:evt_c",
                "stripe:evt_d",
                "stripe:evt_e"
            ]
        );
        let three = list_up_to(&store, query.clone(), 3).await.unwrap();
        assert_eq!(ids(three), ["stripe:evt_a", "stripe:evt_b", "stripe:evt_c"]);
        let one = list_up_to(store.as_ref(), query.clone(), 1).await.unwrap();
        assert_eq!(ids(one), ["stripe:evt_a"]);
        assert!(list_up_to(&store, query, 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_shared_store_is_the_store_it_shares() {
        let inner = std::sync::Arc::new(MemoryStatusStore::new());
        let shared: std::sync::Arc<dyn StatusStore> = inner.clone();
        let store: &dyn StatusStore = &shared;
        assert_eq!(
            store.put_new(&item(Status::Received)).await.unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store.get("stripe:evt_1").await.unwrap(),
            Some(item(Status::Received))
        );
        let queued = Transition::new(Status::Queued, &[Status::Received], 1_767_225_601_000);
        let TransitionOutcome::Applied(written) =
            store.transition("stripe:evt_1", &queued).await.unwrap()
        else {
            panic!("RECEIVED → QUEUED applies");
        };
        assert_eq!(written.status, Status::Queued);
        let record = TransmissionRecord::new("tx-1", b"{}", 2_000);
        assert_eq!(
            store.record_transmission(&record, 1_000).await.unwrap(),
            TransmissionOutcome::Recorded
        );
        assert_eq!(
            store.record_transmission(&record, 1_000).await.unwrap(),
            TransmissionOutcome::SameBody
        );
        let page = store
            .list_by_status(&StatusQuery::new(Status::Queued, 1_767_225_602_000))
            .await
            .unwrap();
        assert_eq!(page.items, [*written]);
        assert_eq!(inner.snapshot().await, page.items);
    }

    /// A store that does not list, as test doubles are.
    struct NoListing;

    #[async_trait]
    impl StatusStore for NoListing {
        async fn get(&self, _: &str) -> Result<Option<StatusItem>, StoreError> {
            Ok(None)
        }
        async fn put_new(&self, _: &StatusItem) -> Result<PutOutcome, StoreError> {
            Ok(PutOutcome::Created)
        }
        async fn transition(
            &self,
            _: &str,
            _: &Transition,
        ) -> Result<TransitionOutcome, StoreError> {
            Ok(TransitionOutcome::Rejected(None))
        }
        async fn record_transmission(
            &self,
            _: &TransmissionRecord,
            _: i64,
        ) -> Result<TransmissionOutcome, StoreError> {
            Ok(TransmissionOutcome::Recorded)
        }
    }

    #[tokio::test]
    async fn a_store_that_cannot_list_says_so() {
        assert_eq!(
            NoListing
                .list_by_status(&StatusQuery::new(Status::Failed, 1_000))
                .await,
            Err(StoreError::Unavailable(
                "this status store cannot list FAILED items".into()
            ))
        );
    }

    /// A store that records the page sizes it is asked for.
    #[derive(Default)]
    struct PageLog {
        inner: MemoryStatusStore,
        limits: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl StatusStore for PageLog {
        async fn get(&self, id: &str) -> Result<Option<StatusItem>, StoreError> {
            self.inner.get(id).await
        }
        async fn put_new(&self, item: &StatusItem) -> Result<PutOutcome, StoreError> {
            self.inner.put_new(item).await
        }
        async fn transition(
            &self,
            id: &str,
            transition: &Transition,
        ) -> Result<TransitionOutcome, StoreError> {
            self.inner.transition(id, transition).await
        }
        async fn record_transmission(
            &self,
            record: &TransmissionRecord,
            now_unix: i64,
        ) -> Result<TransmissionOutcome, StoreError> {
            self.inner.record_transmission(record, now_unix).await
        }
        async fn list_by_status(&self, query: &StatusQuery) -> Result<StatusPage, StoreError> {
            self.limits.lock().await.push(query.limit);
            self.inner.list_by_status(query).await
        }
    }

    #[tokio::test]
    async fn list_up_to_reads_no_more_than_it_returns() {
        let store = PageLog::default();
        for (n, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let at = 1_000 * (i64::try_from(n).unwrap() + 1);
            stored(
                &store.inner,
                &format!("stripe:evt_{id}"),
                Status::Received,
                at,
            )
            .await;
        }
        let mut query = StatusQuery::new(Status::Received, 10_000);
        query.limit = 2;
        assert_eq!(list_up_to(&store, query.clone(), 3).await.unwrap().len(), 3);
        assert_eq!(
            *store.limits.lock().await,
            [2, 1],
            "two pages: 2 items, then 1"
        );
        store.limits.lock().await.clear();
        assert!(list_up_to(&store, query, 0).await.unwrap().is_empty());
        assert!(
            store.limits.lock().await.is_empty(),
            "nothing read for none"
        );
    }
}
