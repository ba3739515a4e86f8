//! The webhook-validator handler: verify the provider's signature over the raw bytes,
//! normalise, record the idempotency item, enqueue on the provider's FIFO queue — and only
//! then acknowledge (DESIGN §1, §4–§6).
//!
//! | outcome | HTTP |
//! |---|---|
//! | queued | 202 `{"status":"queued"}` |
//! | duplicate / ignored type | 200 `{"status":"duplicate"}` / `{"status":"ignored"}` |
//! | malformed body | 400 with the normaliser's code |
//! | bad signature | 401 with the verifier's code |
//! | unknown provider | 404 `unknown_provider` |
//! | message over the queue's size | 413 `payload_too_large` |
//! | state store, queue, secrets or certificate download failing | 503 (the provider retries) |
//!
//! A retry whose first attempt recorded the item but failed before the enqueue finds the item
//! still `RECEIVED` and is enqueued again (with the same bytes, so SQS deduplicates it if the
//! first send did land), never dropped as a duplicate.

use std::sync::Arc;

use serde_json::json;

use crate::event::PaymentEvent;
use crate::headers::Headers;
use crate::normalise::{self, NormaliseError, Normalised};
use crate::ports::{
    Clock, ProviderSecrets, Queue, QueueError, QueueMessage, SecretError, SecretStore,
};
use crate::provider::{Provider, UnknownProvider};
use crate::signature::{
    PaypalCertificateCache, PaypalVerifier, STRIPE_DEFAULT_TOLERANCE_SECS, SignatureError,
    SquareVerifier, StripeVerifier,
};
use crate::status::{
    PutOutcome, Status, StatusItem, StatusStore, StoreError, Transition, TransitionOutcome,
    rfc3339_ms,
};

/// Settings of the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorConfig {
    /// Stripe timestamp tolerance in seconds (0 turns the age check off).
    pub stripe_tolerance_secs: u64,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            stripe_tolerance_secs: STRIPE_DEFAULT_TOLERANCE_SECS,
        }
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
    /// A verified event of a type payhook does not process.
    Ignored {
        /// Which webhook.
        webhook_id: String,
        /// Its provider.
        provider: Provider,
        /// The provider's event type.
        provider_event_type: String,
    },
}

impl Accepted {
    /// The webhook id of the delivery.
    pub fn webhook_id(&self) -> &str {
        match self {
            Accepted::Queued { event, .. } => &event.webhook_id,
            Accepted::Duplicate { webhook_id, .. } | Accepted::Ignored { webhook_id, .. } => {
                webhook_id
            }
        }
    }

    /// HTTP status and JSON body.
    pub fn response(&self) -> (u16, serde_json::Value) {
        match self {
            Accepted::Queued { event, .. } => (
                202,
                json!({"status": "queued", "webhook_id": event.webhook_id}),
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
                ..
            } => (
                200,
                json!({"status": "ignored", "webhook_id": webhook_id, "event_type": provider_event_type}),
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
    /// The body is not a well-formed event of a supported type.
    #[error("malformed payload: {0}")]
    Malformed(#[from] NormaliseError),
    /// The message to queue is larger than the queue accepts.
    #[error("the normalised event is {size} bytes, over the queue's {limit}-byte limit")]
    PayloadTooLarge {
        /// Message size.
        size: usize,
        /// Queue limit.
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
}

impl From<QueueError> for ValidatorError {
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::TooLarge { size, limit } => ValidatorError::PayloadTooLarge { size, limit },
            other => ValidatorError::Queue(other),
        }
    }
}

impl ValidatorError {
    /// The stable machine code used in HTTP bodies, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ValidatorError::UnknownProvider(_) => "unknown_provider",
            ValidatorError::Signature(e) => e.code(),
            ValidatorError::Malformed(e) => e.code(),
            ValidatorError::PayloadTooLarge { .. } => "payload_too_large",
            ValidatorError::Secrets(e) => e.code(),
            ValidatorError::StateStore(e) => e.code(),
            ValidatorError::Queue(e) => e.code(),
        }
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            ValidatorError::UnknownProvider(_) => 404,
            ValidatorError::Signature(SignatureError::EmptyBody) => 400,
            ValidatorError::Signature(e) if e.is_retryable() => 503,
            ValidatorError::Signature(_) => 401,
            ValidatorError::Malformed(_) => 400,
            ValidatorError::PayloadTooLarge { .. } => 413,
            ValidatorError::Secrets(_)
            | ValidatorError::StateStore(_)
            | ValidatorError::Queue(_) => 503,
        }
    }

    /// Whether the provider should retry (the failure is on our side).
    pub fn is_retryable(&self) -> bool {
        self.http_status() >= 500
    }

    /// Whether this is a signature failure (counted as `SignatureFailures`).
    pub fn is_signature_failure(&self) -> bool {
        matches!(self, ValidatorError::Signature(e) if !e.is_retryable() && *e != SignatureError::EmptyBody)
    }

    /// HTTP status and the JSON error body `{"error": code, "message": …}`.
    pub fn response(&self) -> (u16, serde_json::Value) {
        (
            self.http_status(),
            json!({"error": self.code(), "message": self.to_string()}),
        )
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
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator over the given ports.
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
        }
    }

    /// Handles one delivery: `Ok` is a 2xx, `Err` carries its status and code.
    pub async fn handle(&self, request: WebhookRequest<'_>) -> Result<Accepted, ValidatorError> {
        let provider: Provider = request.provider.parse()?;
        let now_ms = self.clock.now_ms();
        let secrets = self.secrets.provider_secrets(provider).await?;
        self.verify(provider, &secrets, request.headers, request.body, now_ms)
            .await?;

        let mut event = match normalise::normalise(provider, request.body)? {
            Normalised::Event(event) => event,
            Normalised::Ignored {
                webhook_id,
                provider_event_type,
                ..
            } => {
                return self
                    .record_ignored(provider, webhook_id, provider_event_type, now_ms)
                    .await;
            }
        };

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
        );
        item.event_type = Some(event.event_type.as_str().to_owned());
        item.payment_id = Some(event.payment_id.clone());
        item.amount_minor = Some(event.amount_minor);
        item.currency = Some(event.currency.clone());

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
        Ok(Accepted::Queued {
            event: Box::new(event),
            message_id,
        })
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
                .verify(headers, body, now_unix)
                .await
            }
        }
    }

    async fn record_ignored(
        &self,
        provider: Provider,
        webhook_id: String,
        provider_event_type: String,
        now_ms: i64,
    ) -> Result<Accepted, ValidatorError> {
        let item = StatusItem::new(
            webhook_id.clone(),
            provider,
            provider_event_type.clone(),
            Status::Ignored,
            now_ms,
        );
        self.store.put_new(&item).await?;
        Ok(Accepted::Ignored {
            webhook_id,
            provider,
            provider_event_type,
        })
    }
}
