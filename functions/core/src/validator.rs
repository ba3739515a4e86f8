//! The webhook-validator handler: check the request's shape, verify the provider's signature
//! over the raw bytes, refuse replays, normalise, record the idempotency item, enqueue on the
//! provider's FIFO queue — and only then acknowledge.
//!
//! | outcome | HTTP |
//! |---|---|
//! | queued | 202 `{"status":"queued"}` |
//! | duplicate / ignored (unsupported type, test mode) | 200 `{"status":"duplicate"}` / `{"status":"ignored","reason":…}` |
//! | malformed body | 400 with the normaliser's code |
//! | bad signature, stale or replayed delivery | 401 with the verifier's code, `timestamp_out_of_tolerance`, `transmission_replayed` or `event_too_old` |
//! | unknown provider / provider not configured on this stage | 404 `unknown_provider` / `provider_not_configured` |
//! | body over the limit, message over the queue's size | 413 `payload_too_large` |
//! | verified but not normalisable | 202 `{"status":"quarantined"}`: kept whole as `QUARANTINED` (a body over [`MAX_QUARANTINED_BODY_BYTES`] in the blob store, else 503) |
//! | state store, queue, blob store, secrets or certificate download failing | 503 (the provider retries) |
//!
//! Error bodies carry the stable code, a fixed message for that code and the request id; the
//! details (an AWS error, a parser's complaint) go only to the log line with the same request
//! id, so nothing internal reaches an unauthenticated caller.
//!
//! The work done for a request is bounded before anything expensive runs: the body size is
//! checked first, then that the provider's signature headers are there, and only then are the
//! provider's secrets read and its signature verified.
//!
//! A retry whose first attempt recorded the item but failed before the enqueue finds the item
//! still `RECEIVED` and is enqueued again (with the same bytes, so SQS deduplicates it if the
//! first send did land), never dropped as a duplicate.
//!
//! **Replays.** Stripe signs a timestamp, checked against its tolerance. PayPal signs a
//! transmission time (checked against its tolerance either way) but binds the body only through
//! CRC32, so a transmission id is remembered with its body's digest (a
//! [`TransmissionRecord`]) and refused with another body. Square signs no time at all. For
//! every provider the event's own time (signed, inside the body) must be younger than the
//! idempotency record's retention less [`EVENT_AGE_MARGIN_SECS`]: an event old enough for its
//! record to have expired is refused (`event_too_old`) instead of processed again.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use crate::blob::{BlobError, BlobStore, quarantine_key};
use crate::currency::Rates;
use crate::event::PaymentEvent;
use crate::event_processor::parse_rfc3339_ms;
use crate::headers::Headers;
use crate::normalise::{self, NormaliseError, Normalised};
use crate::ports::{
    Clock, ProviderSecrets, Queue, QueueError, QueueMessage, SecretError, SecretStore,
};
use crate::provider::{Provider, UnknownProvider};
use crate::signature::paypal::{PAYPAL_TRANSMISSION_ID_HEADER, transmission_id};
use crate::signature::{
    DEFAULT_PAYPAL_TOLERANCE_SECS, PaypalCertificateCache, PaypalEnvironment, PaypalVerifier,
    STRIPE_DEFAULT_TOLERANCE_SECS, SignatureError, SquareVerifier, StripeVerifier,
    required_headers,
};
use crate::status::{
    DEFAULT_IDEMPOTENCY_RETENTION_SECS, EVENT_AGE_MARGIN_SECS, PutOutcome, Status, StatusItem,
    StatusStore, StoreError, Transition, TransitionOutcome, TransmissionOutcome,
    TransmissionRecord, max_event_age_secs, rfc3339_ms, trace_id_of_header,
};

/// Default largest request body, in bytes. Provider events are a few KiB; a body this large is
/// refused before any signature work.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The shortest window in which a genuine event must still be accepted: the longest automatic
/// retry schedule of the three providers (Stripe and PayPal retry for up to 3 days).
pub const LONGEST_PROVIDER_RETRY_SECS: i64 = 3 * 24 * 60 * 60;

/// Largest raw body a quarantine record keeps inline (base64 in the status item, under
/// DynamoDB's 400 KB item limit with room for the other attributes). A larger one goes to the
/// validator's blob store ([`Validator::with_quarantine_blobs`]), or is answered 503 without one.
pub const MAX_QUARANTINED_BODY_BYTES: usize = 280 * 1024;

/// How much longer than the transmission-time window a PayPal transmission record is kept.
pub const TRANSMISSION_RECORD_MARGIN_SECS: i64 = 60 * 60;

/// Settings of the validator. [`ValidatorConfig::validate`] is called before a validator is
/// built, in the Lambda and in the local stack alike.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorConfig {
    /// Stripe timestamp tolerance in seconds (0 turns the age check off, and is refused unless
    /// [`stripe_allow_no_tolerance`](Self::stripe_allow_no_tolerance) is set).
    pub stripe_tolerance_secs: u64,
    /// The explicit switch that lets `stripe_tolerance_secs` be 0.
    pub stripe_allow_no_tolerance: bool,
    /// Answer Stripe test-mode events (`livemode: false`) 200 `ignored` instead of queueing them.
    pub stripe_require_livemode: bool,
    /// Largest distance between `PAYPAL-TRANSMISSION-TIME` and now, either way, in seconds.
    pub paypal_tolerance_secs: u64,
    /// Live PayPal or the sandbox: which certificate hosts are accepted.
    pub paypal_environment: PaypalEnvironment,
    /// How long a status item (the idempotency record) is kept after first receipt, in
    /// seconds; events older than this less [`EVENT_AGE_MARGIN_SECS`] are refused.
    pub idempotency_retention_secs: i64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Reporting rates (and currencies added) from the rates file: `amount_reporting`.
    pub rates: Arc<Rates>,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            stripe_tolerance_secs: STRIPE_DEFAULT_TOLERANCE_SECS,
            stripe_allow_no_tolerance: false,
            stripe_require_livemode: false,
            paypal_tolerance_secs: DEFAULT_PAYPAL_TOLERANCE_SECS,
            paypal_environment: PaypalEnvironment::Live,
            idempotency_retention_secs: DEFAULT_IDEMPOTENCY_RETENTION_SECS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            rates: Arc::new(Rates::bundled().unwrap_or_else(|_| Rates::usd_only())),
        }
    }
}

/// A validator setting that would weaken a guarantee.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid validator configuration: {0}")]
pub struct ValidatorConfigError(pub String);

impl ValidatorConfig {
    /// Refuses settings that would open a replay window or lose genuine retries.
    pub fn validate(&self) -> Result<(), ValidatorConfigError> {
        let fail = |why: String| Err(ValidatorConfigError(why));
        if self.stripe_tolerance_secs == 0 && !self.stripe_allow_no_tolerance {
            return fail(
                "a Stripe tolerance of 0 turns off the replay check; set the allow_no_tolerance \
                 switch to mean it"
                    .into(),
            );
        }
        if self.paypal_tolerance_secs == 0 {
            return fail("the PayPal tolerance must be at least 1 second".into());
        }
        let max_age = max_event_age_secs(self.idempotency_retention_secs);
        if max_age < LONGEST_PROVIDER_RETRY_SECS {
            return fail(format!(
                "an idempotency retention of {} s accepts events only up to {max_age} s old, \
                 less than the providers' retry window of {LONGEST_PROVIDER_RETRY_SECS} s; it \
                 must be at least {} s",
                self.idempotency_retention_secs,
                LONGEST_PROVIDER_RETRY_SECS + EVENT_AGE_MARGIN_SECS
            ));
        }
        if self.max_body_bytes == 0 {
            return fail("the body limit must be at least 1 byte".into());
        }
        Ok(())
    }

    /// How long a PayPal transmission record is kept: the whole window in which the
    /// transmission verifies (the tolerance either side of its time) and a margin.
    pub fn transmission_record_secs(&self) -> i64 {
        let tolerance = i64::try_from(self.paypal_tolerance_secs).unwrap_or(i64::MAX / 4);
        tolerance
            .saturating_mul(2)
            .saturating_add(TRANSMISSION_RECORD_MARGIN_SECS)
    }
}

/// One webhook delivery as the validator sees it.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The `{provider}` path segment, unparsed.
    pub provider: &'a str,
    /// Request headers.
    pub headers: &'a Headers,
    /// The raw body (already base64-decoded if API Gateway encoded it).
    pub body: &'a [u8],
    /// The X-Ray trace header to carry onto the queue (`AWSTraceHeader`).
    pub trace_header: Option<&'a str>,
}

/// Why a verified delivery was acknowledged without being queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredReason {
    /// An event type payhook does not process.
    UnsupportedEventType,
    /// A Stripe test-mode event on a stage that requires live mode.
    TestMode,
}

impl IgnoredReason {
    /// The stable code in the response, the log and the metric.
    pub const fn as_str(self) -> &'static str {
        match self {
            IgnoredReason::UnsupportedEventType => "unsupported_event_type",
            IgnoredReason::TestMode => "test_mode",
        }
    }
}

/// A delivery that was acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Verified, recorded and durably queued.
    Queued {
        /// The normalised event as queued.
        event: Box<PaymentEvent>,
        /// The queue's message id.
        message_id: String,
    },
    /// Seen before and already queued or further along.
    Duplicate {
        /// Which webhook.
        webhook_id: String,
        /// Its provider.
        provider: Provider,
        /// Where it is now.
        status: Status,
    },
    /// A verified body that could not be normalised, kept whole in the status table
    /// (`QUARANTINED`) to be replayed once it can be.
    Quarantined {
        /// Which webhook (`{provider}:{event id}`, or `{provider}:unreadable-{digest}` when not
        /// even the envelope can be read).
        webhook_id: String,
        /// Its provider.
        provider: Provider,
        /// The normaliser's code.
        reason: &'static str,
    },
    /// A verified event that is acknowledged but not processed.
    Ignored {
        /// Which webhook.
        webhook_id: String,
        /// Its provider.
        provider: Provider,
        /// The provider's event type.
        provider_event_type: String,
        /// Why it is not processed.
        reason: IgnoredReason,
    },
}

impl Accepted {
    /// The webhook id of the delivery.
    pub fn webhook_id(&self) -> &str {
        match self {
            Accepted::Queued { event, .. } => &event.webhook_id,
            Accepted::Duplicate { webhook_id, .. }
            | Accepted::Ignored { webhook_id, .. }
            | Accepted::Quarantined { webhook_id, .. } => webhook_id,
        }
    }

    /// HTTP status and JSON body.
    pub fn response(&self) -> (u16, serde_json::Value) {
        match self {
            Accepted::Queued { event, .. } => (
                202,
                json!({"status": "queued", "webhook_id": event.webhook_id}),
            ),
            Accepted::Quarantined {
                webhook_id, reason, ..
            } => (
                202,
                json!({"status": "quarantined", "webhook_id": webhook_id, "reason": reason}),
            ),
            Accepted::Duplicate {
                webhook_id, status, ..
            } => (
                200,
                json!({"status": "duplicate", "webhook_id": webhook_id, "state": status.as_str()}),
            ),
            Accepted::Ignored {
                webhook_id,
                provider_event_type,
                reason,
                ..
            } => (
                200,
                json!({"status": "ignored", "webhook_id": webhook_id, "event_type": provider_event_type, "reason": reason.as_str()}),
            ),
        }
    }
}

/// Why a delivery was not acknowledged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidatorError {
    /// The path named no known provider.
    #[error(transparent)]
    UnknownProvider(#[from] UnknownProvider),
    /// The signature did not verify (or its certificate could not be fetched).
    #[error("signature rejected: {0}")]
    Signature(#[from] SignatureError),
    /// A PayPal transmission id already seen with a different body: a forgery built from a
    /// captured delivery.
    #[error("PayPal transmission `{transmission_id}` was already received with another body")]
    TransmissionReplayed {
        /// The transmission id (signed, so PayPal's).
        transmission_id: String,
    },
    /// A verified event older than its idempotency record would still be kept.
    #[error("the event happened at {occurred_at}, more than {max_age_secs} s ago")]
    EventTooOld {
        /// The event's own time.
        occurred_at: String,
        /// The oldest age accepted, seconds.
        max_age_secs: i64,
    },
    /// The body is not a well-formed event of a supported type.
    #[error("malformed payload: {0}")]
    Malformed(#[from] NormaliseError),
    /// The body, or the message to queue, is larger than accepted.
    #[error("{size} bytes is over the {limit}-byte limit")]
    PayloadTooLarge {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// A verified body that cannot be normalised is larger than one status item can keep
    /// (DynamoDB's 400 KB) and no blob store is configured: answered 503 so the provider
    /// retries, and alarmed with the other 5xx answers, rather than acknowledged and lost.
    #[error(
        "the body ({size} bytes) cannot be normalised and is over the {limit} bytes a quarantine record keeps"
    )]
    QuarantineUnavailable {
        /// Body size.
        size: usize,
        /// What one quarantine record keeps.
        limit: usize,
    },
    /// Provider secrets could not be read (or none are configured).
    #[error(transparent)]
    Secrets(#[from] SecretError),
    /// The status store failed.
    #[error(transparent)]
    StateStore(#[from] StoreError),
    /// The queue failed.
    #[error(transparent)]
    Queue(QueueError),
    /// The blob store keeping large quarantined bodies failed (or is needed and missing).
    #[error(transparent)]
    QuarantineBlobs(#[from] BlobError),
}

impl From<QueueError> for ValidatorError {
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::TooLarge { size, limit } => ValidatorError::PayloadTooLarge { size, limit },
            other @ QueueError::Unavailable(_) => ValidatorError::Queue(other),
        }
    }
}

impl ValidatorError {
    /// The stable machine code used in HTTP bodies, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ValidatorError::UnknownProvider(_) => "unknown_provider",
            ValidatorError::Signature(e) => e.code(),
            ValidatorError::TransmissionReplayed { .. } => "transmission_replayed",
            ValidatorError::EventTooOld { .. } => "event_too_old",
            ValidatorError::Malformed(e) => e.code(),
            ValidatorError::PayloadTooLarge { .. } => "payload_too_large",
            ValidatorError::QuarantineUnavailable { .. } => "quarantine_unavailable",
            ValidatorError::Secrets(e) => e.code(),
            ValidatorError::StateStore(e) => e.code(),
            ValidatorError::Queue(e) => e.code(),
            ValidatorError::QuarantineBlobs(e) => e.code(),
        }
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            ValidatorError::UnknownProvider(_)
            | ValidatorError::Secrets(SecretError::NotConfigured(_)) => 404,
            ValidatorError::Signature(SignatureError::EmptyBody) => 400,
            ValidatorError::Signature(e) if e.is_retryable() => 503,
            ValidatorError::Signature(_)
            | ValidatorError::TransmissionReplayed { .. }
            | ValidatorError::EventTooOld { .. } => 401,
            ValidatorError::Malformed(_) => 400,
            ValidatorError::PayloadTooLarge { .. } => 413,
            ValidatorError::Secrets(_)
            | ValidatorError::StateStore(_)
            | ValidatorError::Queue(_)
            | ValidatorError::QuarantineBlobs(_)
            | ValidatorError::QuarantineUnavailable { .. } => 503,
        }
    }

    /// Whether the provider should retry (the failure is on our side).
    pub fn is_retryable(&self) -> bool {
        self.http_status() >= 500
    }

    /// Whether this is a refusal of the delivery's authenticity (counted as
    /// `SignatureFailures`): a signature that did not verify, a stale or replayed delivery.
    pub fn is_signature_failure(&self) -> bool {
        match self {
            ValidatorError::Signature(e) => !e.is_retryable() && *e != SignatureError::EmptyBody,
            ValidatorError::TransmissionReplayed { .. } | ValidatorError::EventTooOld { .. } => {
                true
            }
            _ => false,
        }
    }

    /// HTTP status and the JSON error body: the code, its fixed message and the request id.
    pub fn response(&self, request_id: Option<&str>) -> (u16, serde_json::Value) {
        (self.http_status(), error_body(self.code(), request_id))
    }
}

/// The JSON error body for `code`: `{"error": code, "message": <fixed text>, "request_id": …}`.
/// Only fixed text: whatever detail an error holds (an AWS error, a parser's complaint, an
/// echoed header) belongs in the log line that carries the same request id.
pub fn error_body(code: &str, request_id: Option<&str>) -> serde_json::Value {
    json!({"error": code, "message": public_message(code), "request_id": request_id})
}

/// The fixed human message for an error code.
pub fn public_message(code: &str) -> &'static str {
    match code {
        "unknown_provider" => "No webhook provider of that name; use stripe, paypal or square.",
        "provider_not_configured" => "This provider is not configured on this stage.",
        "payload_too_large" => "The request body is larger than accepted.",
        "empty_body" => "The request body is empty.",
        "invalid_base64" => "The request body is flagged base64 but is not valid base64.",
        "missing_header" => "A signature header the provider always sends is missing.",
        "malformed_header" => "A signature header cannot be parsed.",
        "no_v1_signature" => "The Stripe-Signature header carries no v1 signature.",
        "no_matching_signature" => "The signature does not match the request body.",
        "timestamp_too_old" => "The signature's timestamp is older than the tolerance.",
        "timestamp_out_of_tolerance" => "The transmission time is too far from now.",
        "transmission_replayed" => "This transmission was already received with another body.",
        "event_too_old" => "The event is older than this endpoint accepts.",
        "cert_url_not_allowed" => "The certificate URL is not one of PayPal's.",
        "cert_not_available" => "The certificate URL did not serve a certificate.",
        "cert_fetch_failed" => "The signing certificate could not be fetched; retry later.",
        "cert_expired" => "The signing certificate is outside its validity period.",
        "cert_untrusted" => "The signing certificate is not trusted.",
        "cert_name_mismatch" => "The signing certificate is not a PayPal message certificate.",
        "unsupported_algorithm" => "The signature algorithm is not accepted.",
        "not_configured" => "Signature verification is not configured for this provider.",
        "invalid_json" => "The body is not valid JSON.",
        "missing_field" => "The event lacks a field its type requires.",
        "invalid_field" => "A field of the event has an invalid value.",
        "invalid_amount" => "The event's amount is not valid.",
        "unsupported_currency" => "The event's currency is not supported.",
        "secret_store_unavailable"
        | "state_store_unavailable"
        | "state_store_corrupt"
        | "queue_unavailable"
        | "quarantine_unavailable"
        | "blob_store_unavailable"
        | "blob_store_not_configured"
        | "blob_missing" => "The webhook could not be stored; retry later.",
        _ => "The request was not accepted.",
    }
}

/// The webhook-validator handler over its ports.
pub struct Validator {
    secrets: Arc<dyn SecretStore>,
    store: Arc<dyn StatusStore>,
    queue: Arc<dyn Queue>,
    paypal_certificates: Arc<PaypalCertificateCache>,
    clock: Arc<dyn Clock>,
    config: ValidatorConfig,
    quarantine_blobs: Option<Arc<dyn BlobStore>>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator over the given ports; `config` should have passed
    /// [`ValidatorConfig::validate`] (the Lambda and the local stack refuse to start otherwise).
    pub fn new(
        secrets: Arc<dyn SecretStore>,
        store: Arc<dyn StatusStore>,
        queue: Arc<dyn Queue>,
        paypal_certificates: Arc<PaypalCertificateCache>,
        clock: Arc<dyn Clock>,
        config: ValidatorConfig,
    ) -> Self {
        Validator {
            secrets,
            store,
            queue,
            paypal_certificates,
            clock,
            config,
            quarantine_blobs: None,
        }
    }

    /// Keeps quarantined bodies over [`MAX_QUARANTINED_BODY_BYTES`] in `blobs` (the item then
    /// holds their key) instead of answering them 503; replays read them back from there.
    pub fn with_quarantine_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.quarantine_blobs = Some(blobs);
        self
    }

    /// The checks before the body is read as an event: its size and shape, its signature and,
    /// for PayPal, that its transmission id carries no other body. Returns the time the
    /// delivery is handled at.
    async fn authenticate(
        &self,
        provider: Provider,
        request: &WebhookRequest<'_>,
    ) -> Result<i64, ValidatorError> {
        let limit = self.config.max_body_bytes;
        if request.body.len() > limit {
            return Err(ValidatorError::PayloadTooLarge {
                size: request.body.len(),
                limit,
            });
        }
        check_request_shape(provider, request.headers, request.body)?;
        let now_ms = self.clock.now_ms();
        let secrets = self.secrets.provider_secrets(provider).await?;
        self.verify(provider, &secrets, request.headers, request.body, now_ms)
            .await?;
        if provider == Provider::Paypal {
            self.check_transmission(request.headers, request.body, now_ms)
                .await?;
        }
        Ok(now_ms)
    }

    /// Handles one delivery: `Ok` is a 2xx, `Err` carries its status and code.
    pub async fn handle(&self, request: WebhookRequest<'_>) -> Result<Accepted, ValidatorError> {
        let provider: Provider = request.provider.parse()?;
        let now_ms = self.authenticate(provider, &request).await?;

        let normalised = match normalise::normalise_with(provider, request.body, &self.config.rates)
        {
            Ok(normalised) => normalised,
            // Verified, so the provider's: kept, never answered 4xx and lost.
            Err(reason) => {
                return self
                    .quarantine(provider, request.body, &reason, now_ms)
                    .await;
            }
        };
        let mut event = match normalised {
            Normalised::Event(event) => event,
            Normalised::Ignored {
                webhook_id,
                provider_event_type,
                ..
            } => {
                return self
                    .record_ignored(
                        provider,
                        webhook_id,
                        provider_event_type,
                        IgnoredReason::UnsupportedEventType,
                        now_ms,
                    )
                    .await;
            }
        };
        self.check_event_age(&event, now_ms)?;
        if provider == Provider::Stripe
            && self.config.stripe_require_livemode
            && event.livemode != Some(true)
        {
            return self
                .record_ignored(
                    provider,
                    event.webhook_id,
                    event.provider_event_type,
                    IgnoredReason::TestMode,
                    now_ms,
                )
                .await;
        }

        // The size is known before anything is recorded: received_at has a fixed width.
        event.received_at = Some(rfc3339_ms(now_ms));
        let mut body = event.to_json();
        let limit = self.queue.max_message_bytes();
        if body.len() > limit {
            return Err(ValidatorError::PayloadTooLarge {
                size: body.len(),
                limit,
            });
        }

        let mut item = StatusItem::new(
            event.webhook_id.clone(),
            provider,
            event.provider_event_type.clone(),
            Status::Received,
            now_ms,
        )
        .with_retention_secs(now_ms, self.config.idempotency_retention_secs);
        item.event_type = Some(event.event_type.as_str().to_owned());
        item.payment_id = Some(event.payment_id.clone());
        item.amount_minor = Some(event.amount_minor);
        item.currency = Some(event.currency.clone());
        item.trace_id = request.trace_header.and_then(trace_id_of_header);
        // Kept while the item is open: the sweeper enqueues a webhook stuck RECEIVED again
        // with exactly these bytes.
        item.message_body = Some(body.clone());

        match self.store.put_new(&item).await? {
            PutOutcome::Created => {}
            PutOutcome::Exists(existing) if existing.status == Status::Received => {
                // The first attempt stopped between the record and the enqueue: enqueue the
                // same bytes again (first receipt time kept).
                tracing::info!(webhook_id = %event.webhook_id, "re-enqueueing a webhook recorded but not confirmed queued");
                event.received_at = Some(existing.received_at.clone());
                body = event.to_json();
            }
            PutOutcome::Exists(existing) => {
                return Ok(Accepted::Duplicate {
                    webhook_id: existing.webhook_id,
                    provider,
                    status: existing.status,
                });
            }
        }

        let message = QueueMessage {
            provider,
            group_id: event.payment_id.clone(),
            deduplication_id: event.webhook_id.clone(),
            body,
            trace_header: request.trace_header.map(str::to_owned),
        };
        let message_id = self.queue.send(message).await?;

        let queued = Transition::new(Status::Queued, &[Status::Received], self.clock.now_ms());
        match self.store.transition(&event.webhook_id, &queued).await {
            Ok(TransitionOutcome::Applied(_)) | Ok(TransitionOutcome::Rejected(_)) => {}
            // The message is durably queued; the processor also claims RECEIVED items, so the
            // acknowledgement stands.
            Err(err) => {
                tracing::warn!(webhook_id = %event.webhook_id, error = %err, error_code = err.code(), "queued, but marking QUEUED failed");
            }
        }
        Ok(Accepted::Queued { event, message_id })
    }

    async fn verify(
        &self,
        provider: Provider,
        secrets: &ProviderSecrets,
        headers: &Headers,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(), SignatureError> {
        let now_unix = now_ms.div_euclid(1000);
        match provider {
            Provider::Stripe => StripeVerifier::new(secrets.signing_secrets.clone())
                .with_tolerance(self.config.stripe_tolerance_secs)
                .verify(headers, body, now_unix),
            Provider::Square => SquareVerifier::new(
                secrets.signing_secrets.clone(),
                secrets.notification_url.clone().unwrap_or_default(),
            )
            .verify(headers, body),
            Provider::Paypal => {
                PaypalVerifier::new(
                    secrets.webhook_id.clone().unwrap_or_default(),
                    Arc::clone(&self.paypal_certificates),
                )
                .with_environment(self.config.paypal_environment)
                .with_tolerance(self.config.paypal_tolerance_secs)
                .verify(headers, body, now_unix)
                .await
            }
        }
    }

    /// A verified PayPal transmission id may only ever carry one body: the same body again is
    /// the same delivery (handled as any repeat), another body is a forgery that kept the CRC32.
    async fn check_transmission(
        &self,
        headers: &Headers,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(), ValidatorError> {
        let id = transmission_id(headers)?;
        let now_unix = now_ms.div_euclid(1000);
        let record = TransmissionRecord::new(
            id,
            body,
            now_unix.saturating_add(self.config.transmission_record_secs()),
        );
        match self.store.record_transmission(&record, now_unix).await? {
            TransmissionOutcome::Recorded | TransmissionOutcome::SameBody => Ok(()),
            TransmissionOutcome::DifferentBody => {
                tracing::warn!(
                    header = PAYPAL_TRANSMISSION_ID_HEADER,
                    transmission_id = id,
                    "a PayPal transmission id came again with another body"
                );
                Err(ValidatorError::TransmissionReplayed {
                    transmission_id: id.to_owned(),
                })
            }
        }
    }

    /// Refuses an event old enough that its idempotency record may be gone.
    fn check_event_age(&self, event: &PaymentEvent, now_ms: i64) -> Result<(), ValidatorError> {
        let max_age_secs = max_event_age_secs(self.config.idempotency_retention_secs);
        let too_old = match parse_rfc3339_ms(&event.occurred_at) {
            Some(at) => now_ms.saturating_sub(at) > max_age_secs.saturating_mul(1000),
            // The normaliser wrote it; unreadable means something is badly wrong: refuse.
            None => true,
        };
        if too_old {
            return Err(ValidatorError::EventTooOld {
                occurred_at: event.occurred_at.clone(),
                max_age_secs,
            });
        }
        Ok(())
    }

    /// Keeps a verified body that cannot be normalised, whole, with the reason.
    async fn quarantine(
        &self,
        provider: Provider,
        body: &[u8],
        reason: &NormaliseError,
        now_ms: i64,
    ) -> Result<Accepted, ValidatorError> {
        let blobs = match &self.quarantine_blobs {
            Some(blobs) => Some(blobs),
            None if body.len() > MAX_QUARANTINED_BODY_BYTES => {
                return Err(ValidatorError::QuarantineUnavailable {
                    size: body.len(),
                    limit: MAX_QUARANTINED_BODY_BYTES,
                });
            }
            None => None,
        };
        let (webhook_id, provider_event_type) = match normalise::envelope(provider, body) {
            Ok((event_id, event_type)) => (
                PaymentEvent::make_webhook_id(provider, &event_id),
                event_type,
            ),
            Err(_) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, body);
                let id = format!("unreadable-{}", &hex::encode(digest.as_ref())[..32]);
                (
                    PaymentEvent::make_webhook_id(provider, &id),
                    "unknown".to_owned(),
                )
            }
        };
        let mut item = StatusItem::new(
            webhook_id.clone(),
            provider,
            provider_event_type,
            Status::Quarantined,
            now_ms,
        )
        .with_retention_secs(now_ms, self.config.idempotency_retention_secs);
        item.quarantine_reason = Some(format!("{}: {reason}", reason.code()));
        match blobs {
            Some(blobs) if body.len() > MAX_QUARANTINED_BODY_BYTES => {
                // Written before the item: an item never points at an object not yet there.
                // A crash in between leaves an object no item names; the lifecycle rule ends it.
                let key = quarantine_key(provider, body);
                blobs.put(&key, body).await?;
                item.raw_body_key = Some(key);
            }
            _ => item.raw_body = Some(BASE64.encode(body)),
        }
        match self.store.put_new(&item).await? {
            PutOutcome::Created => {
                tracing::warn!(
                    webhook_id = %webhook_id,
                    error_code = reason.code(),
                    error = %reason,
                    "a verified webhook could not be normalised: quarantined"
                );
                Ok(Accepted::Quarantined {
                    webhook_id,
                    provider,
                    reason: reason.code(),
                })
            }
            PutOutcome::Exists(existing) => Ok(Accepted::Duplicate {
                webhook_id: existing.webhook_id,
                provider,
                status: existing.status,
            }),
        }
    }

    /// Re-runs normalisation on a quarantined webhook with the current code and rates file and
    /// queues it if it now succeeds. The item leaves `QUARANTINED` with a conditional write, so
    /// a webhook is replayed once however often this is called; the queue message keeps the
    /// first receipt time and the webhook id as deduplication id.
    pub async fn replay_quarantined(
        &self,
        webhook_id: &str,
    ) -> Result<ReplayOutcome, ValidatorError> {
        let item = match self.store.get(webhook_id).await? {
            Some(item) if item.status == Status::Quarantined => item,
            other => return Ok(ReplayOutcome::NotQuarantined(other.map(|i| i.status))),
        };
        let body = self.quarantined_body(&item).await?;
        let now_ms = self.clock.now_ms();
        let mut event = match normalise::normalise_with(item.provider, &body, &self.config.rates) {
            Err(reason) => {
                return Ok(ReplayOutcome::StillFailing {
                    reason: reason.code(),
                });
            }
            Ok(Normalised::Ignored { .. }) => {
                let ignored = Transition::new(Status::Ignored, &[Status::Quarantined], now_ms);
                self.store.transition(webhook_id, &ignored).await?;
                return Ok(ReplayOutcome::Ignored);
            }
            Ok(Normalised::Event(event)) => event,
        };
        event.received_at = Some(item.received_at.clone());
        let message = QueueMessage {
            provider: item.provider,
            group_id: event.payment_id.clone(),
            deduplication_id: event.webhook_id.clone(),
            body: event.to_json(),
            trace_header: None,
        };
        // Sent before the item moves: a crash in between leaves it QUARANTINED, and the next
        // replay sends the same bytes again, which the FIFO queue deduplicates.
        self.queue.send(message).await?;
        let queued = Transition::new(Status::Queued, &[Status::Quarantined], self.clock.now_ms());
        self.store.transition(webhook_id, &queued).await?;
        Ok(ReplayOutcome::Queued {
            webhook_id: event.webhook_id.clone(),
        })
    }

    /// A quarantined item's raw body: inline, or from the blob store under its key.
    async fn quarantined_body(&self, item: &StatusItem) -> Result<Vec<u8>, ValidatorError> {
        if let Some(key) = &item.raw_body_key {
            let blobs = self
                .quarantine_blobs
                .as_ref()
                .ok_or(BlobError::NotConfigured)?;
            return Ok(blobs
                .get(key)
                .await?
                .ok_or_else(|| BlobError::Missing(key.clone()))?);
        }
        let body = item
            .raw_body
            .as_deref()
            .and_then(|b| BASE64.decode(b).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "`{}` is quarantined without its body",
                    item.webhook_id
                ))
            })?;
        Ok(body)
    }

    async fn record_ignored(
        &self,
        provider: Provider,
        webhook_id: String,
        provider_event_type: String,
        reason: IgnoredReason,
        now_ms: i64,
    ) -> Result<Accepted, ValidatorError> {
        let item = StatusItem::new(
            webhook_id.clone(),
            provider,
            provider_event_type.clone(),
            Status::Ignored,
            now_ms,
        )
        .with_retention_secs(now_ms, self.config.idempotency_retention_secs);
        self.store.put_new(&item).await?;
        Ok(Accepted::Ignored {
            webhook_id,
            provider,
            provider_event_type,
            reason,
        })
    }
}

/// What replaying a quarantined webhook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// It normalises now: queued (once: the item left `QUARANTINED` with this replay).
    Queued {
        /// The event's webhook id (the item's, unless its envelope was unreadable before).
        webhook_id: String,
    },
    /// It normalises to an event type payhook does not process: recorded `IGNORED`.
    Ignored,
    /// It still cannot be normalised; it stays quarantined.
    StillFailing {
        /// The normaliser's code now.
        reason: &'static str,
    },
    /// No such item, or it is not (or no longer) quarantined.
    NotQuarantined(Option<Status>),
}

/// The request looks like `provider`'s before any secret is read: a body, and every signature
/// header that provider always sends.
fn check_request_shape(
    provider: Provider,
    headers: &Headers,
    body: &[u8],
) -> Result<(), SignatureError> {
    if body.is_empty() {
        return Err(SignatureError::EmptyBody);
    }
    for name in required_headers(provider) {
        if headers.get(name).is_none_or(str::is_empty) {
            return Err(SignatureError::MissingHeader(name));
        }
    }
    Ok(())
}
