//! Webhook signature verification for Stripe, Square and PayPal.
//!
//! The webhook-validator calls one of these verifiers first, on the raw request bytes and the
//! request headers, before anything parses the body. Each follows its provider's algorithm and
//! the shared policy decisions of the signature conformance vectors
//! (`../shared/conformance/signatures/README.md`):
//!
//! - an empty body is rejected for every provider ([`SignatureError::EmptyBody`]);
//! - [`StripeVerifier`]: `Stripe-Signature`, HMAC-SHA256 over `"{t}.{body}"`, any `v1` may
//!   match any configured secret (rotation), only the age of `t` is checked
//!   ([`STRIPE_DEFAULT_TOLERANCE_SECS`]); one HMAC per secret whatever the header holds, and at
//!   most [`MAX_V1_SIGNATURES`] `v1` values compared;
//! - [`SquareVerifier`]: `x-square-hmacsha256-signature`, base64 HMAC-SHA256 over the
//!   notification URL followed by the body; the legacy SHA-1 header is not accepted;
//! - [`PaypalVerifier`]: RSASSA-PKCS1-v1_5 over
//!   `transmission_id|transmission_time|webhook_id|crc32(body)`, with the certificate behind
//!   `PAYPAL-CERT-URL` (checked by [`check_cert_url`] before any fetch, chained to
//!   [`TrustAnchors`], cached by its normalised URL in a [`PaypalCertificateCache`]), and the
//!   transmission time within [`DEFAULT_PAYPAL_TOLERANCE_SECS`] of now either way. CRC32 is not
//!   a MAC: anyone holding one genuine delivery can write another body with the same CRC, so
//!   the validator also refuses a transmission id seen before with a different body.
//!
//! Missing configuration (no secret, no notification URL, no webhook id) fails closed with
//! [`SignatureError::NotConfigured`]. MACs are compared in constant time by `ring`.
//!
//! ```
//! use payhook_core::signature::StripeVerifier;
//! use payhook_core::{Headers, Secret};
//!
//! let secret = Secret::new("whsec_example");
//! let body = br#"{"id":"evt_1"}"#;
//! let header = StripeVerifier::sign(&secret, 1_700_000_000, body);
//! let headers: Headers = [("Stripe-Signature", header)].into_iter().collect();
//! let verifier = StripeVerifier::new(vec![secret]);
//! assert!(verifier.verify(&headers, body, 1_700_000_010).is_ok());
//! ```

mod certificate;
pub mod paypal;
pub mod square;
pub mod stripe;

pub use paypal::{
    CertificateFetcher, DEFAULT_PAYPAL_TOLERANCE_SECS, FetchError, PaypalCertificateCache,
    PaypalEnvironment, PaypalVerifier, StaticCertificateFetcher, TrustAnchors, check_cert_url,
};
pub use square::SquareVerifier;
pub use stripe::{MAX_V1_SIGNATURES, StripeVerifier, VerifyStats};

/// Stripe's default tolerance on the age of `t`, in seconds (the SDKs' `DEFAULT_TOLERANCE`).
pub const STRIPE_DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Longest piece of request-supplied text kept in an error, so errors stay log-sized.
const MAX_ERROR_DETAIL_CHARS: usize = 80;

/// Why a webhook signature was not accepted.
///
/// [`code`](SignatureError::code) is the stable machine code used in HTTP bodies, logs and
/// metrics. Only [`CertFetchFailed`](SignatureError::CertFetchFailed) is on our side
/// ([`is_retryable`](SignatureError::is_retryable)); everything else rejects the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A required signature header is absent or empty.
    #[error("missing signature header `{0}`")]
    MissingHeader(&'static str),
    /// A signature header is present but cannot be parsed.
    #[error("malformed signature header: {0}")]
    MalformedHeader(String),
    /// `Stripe-Signature` carries no `v1` element (other schemes such as `v0` are ignored).
    #[error("no signature with the expected scheme v1")]
    NoV1Signature,
    /// No configured secret or certificate produced any of the signatures sent.
    #[error("no signature matches the payload")]
    NoMatchingSignature,
    /// The Stripe timestamp is older than the tolerance.
    #[error("timestamp {timestamp} is more than {tolerance_secs} s older than now ({now})")]
    TimestampTooOld {
        /// `t` from the header, Unix seconds.
        timestamp: i64,
        /// The verifier's "now", Unix seconds.
        now: i64,
        /// The tolerance that was exceeded, seconds.
        tolerance_secs: u64,
    },
    /// `PAYPAL-TRANSMISSION-TIME` is further from now than the tolerance, either way.
    #[error("transmission time {timestamp} is more than {tolerance_secs} s away from now ({now})")]
    TimestampOutOfTolerance {
        /// The transmission time, Unix seconds.
        timestamp: i64,
        /// The verifier's "now", Unix seconds.
        now: i64,
        /// The tolerance that was exceeded, seconds.
        tolerance_secs: u64,
    },
    /// `PAYPAL-CERT-URL` is not `https://<PayPal API host>/v1/notifications/…` (see
    /// [`check_cert_url`]).
    #[error("certificate URL not allowed: {0}")]
    CertUrlNotAllowed(String),
    /// The certificate could not be downloaded (network failure, or PayPal answered 5xx); the
    /// provider should retry later.
    #[error("certificate could not be fetched: {0}")]
    CertFetchFailed(String),
    /// The certificate URL answered with a client error (4xx) or something that is not a
    /// certificate: no retry will make it verify.
    #[error("certificate not available: {0}")]
    CertNotAvailable(String),
    /// The certificate (or an intermediate) is outside its validity period at "now".
    #[error("certificate is outside its validity period")]
    CertExpired,
    /// The certificate does not chain to a trust anchor, or cannot be parsed.
    #[error("certificate is not trusted: {0}")]
    CertUntrusted(String),
    /// The certificate's subject CN is not `messageverificationcerts.….paypal.com`.
    #[error("certificate common name `{0}` is not a PayPal message-verification name")]
    CertNameMismatch(String),
    /// The signature algorithm is not on the allow-list.
    #[error("unsupported signature algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The request body is empty (rejected for every provider).
    #[error("the request body is empty")]
    EmptyBody,
    /// The verifier lacks its secret, key, notification URL or webhook id: fails closed.
    #[error("signature verification is not configured: {0}")]
    NotConfigured(&'static str),
}

impl SignatureError {
    /// The stable snake_case machine code.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader(_) => "missing_header",
            SignatureError::MalformedHeader(_) => "malformed_header",
            SignatureError::NoV1Signature => "no_v1_signature",
            SignatureError::NoMatchingSignature => "no_matching_signature",
            SignatureError::TimestampTooOld { .. } => "timestamp_too_old",
            SignatureError::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            SignatureError::CertUrlNotAllowed(_) => "cert_url_not_allowed",
            SignatureError::CertFetchFailed(_) => "cert_fetch_failed",
            SignatureError::CertNotAvailable(_) => "cert_not_available",
            SignatureError::CertExpired => "cert_expired",
            SignatureError::CertUntrusted(_) => "cert_untrusted",
            SignatureError::CertNameMismatch(_) => "cert_name_mismatch",
            SignatureError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            SignatureError::EmptyBody => "empty_body",
            SignatureError::NotConfigured(_) => "not_configured",
        }
    }

    /// Whether the failure is on our side and the provider should retry (only a certificate
    /// that could not be fetched).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SignatureError::CertFetchFailed(_))
    }

    /// The HTTP status for this failure on its own: 503 when retryable, otherwise 401.
    pub fn http_status(&self) -> u16 {
        if self.is_retryable() { 503 } else { 401 }
    }
}

/// The signature headers `provider` puts on every delivery: a request without one of them is
/// not that provider's, whatever else it holds.
pub fn required_headers(provider: crate::Provider) -> &'static [&'static str] {
    match provider {
        crate::Provider::Stripe => &[stripe::STRIPE_SIGNATURE_HEADER],
        crate::Provider::Square => &[square::SQUARE_SIGNATURE_HEADER],
        crate::Provider::Paypal => &[
            paypal::PAYPAL_TRANSMISSION_ID_HEADER,
            paypal::PAYPAL_TRANSMISSION_TIME_HEADER,
            paypal::PAYPAL_CERT_URL_HEADER,
            paypal::PAYPAL_AUTH_ALGO_HEADER,
            paypal::PAYPAL_TRANSMISSION_SIG_HEADER,
        ],
    }
}

/// The value of a required header; absent and empty are the same failure.
fn required_header<'h>(
    headers: &'h crate::Headers,
    name: &'static str,
) -> Result<&'h str, SignatureError> {
    headers
        .get(name)
        .filter(|value| !value.is_empty())
        .ok_or(SignatureError::MissingHeader(name))
}

/// Request-supplied text cut to a log-friendly length for an error message.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(200);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_ERROR_DETAIL_CHARS + 1);
    }

    #[test]
    fn only_fetch_failures_are_retryable() {
        assert!(SignatureError::CertFetchFailed("timeout".into()).is_retryable());
        assert_eq!(
            SignatureError::CertFetchFailed("timeout".into()).http_status(),
            503
        );
        assert!(!SignatureError::NoMatchingSignature.is_retryable());
        assert_eq!(SignatureError::NotConfigured("x").http_status(), 401);
    }

    #[test]
    fn each_provider_requires_its_signature_headers() {
        assert_eq!(
            required_headers(crate::Provider::Stripe),
            ["Stripe-Signature"]
        );
        assert_eq!(
            required_headers(crate::Provider::Square),
            ["x-square-hmacsha256-signature"]
        );
        assert_eq!(
            required_headers(crate::Provider::Paypal),
            [
                "PAYPAL-TRANSMISSION-ID",
                "PAYPAL-TRANSMISSION-TIME",
                "PAYPAL-CERT-URL",
                "PAYPAL-AUTH-ALGO",
                "PAYPAL-TRANSMISSION-SIG"
            ]
        );
    }
}
