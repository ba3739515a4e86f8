//! Square's `x-square-hmacsha256-signature`: base64 of HMAC-SHA256, keyed with the
//! subscription's signature key, over the notification URL immediately followed by the raw
//! body.
//!
//! The URL must be the one configured on the subscription, byte for byte (behind API Gateway:
//! the public URL including the stage path). There is no timestamp, so replays are stopped by
//! de-duplicating on the event id, not here. The legacy SHA-1 `x-square-signature` header is
//! not supported: a request carrying only that header is rejected as missing its signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;
use subtle::ConstantTimeEq as _;

use super::{SignatureError, required_header};
use crate::{Headers, Secret};

/// The header Square signs with (HMAC-SHA256).
pub const SQUARE_SIGNATURE_HEADER: &str = "x-square-hmacsha256-signature";

/// Verifies Square webhooks for one subscription.
#[derive(Debug, Clone)]
pub struct SquareVerifier {
    signature_keys: Vec<Secret>,
    notification_url: String,
}

impl SquareVerifier {
    /// A verifier for the subscription's signature keys (several while one is replaced) and
    /// its notification URL exactly as configured in Square.
    pub fn new(signature_keys: Vec<Secret>, notification_url: impl Into<String>) -> Self {
        SquareVerifier {
            signature_keys,
            notification_url: notification_url.into(),
        }
    }

    /// Verifies one request over the raw `body` exactly as received.
    ///
    /// Checks, in order: a key and the URL are configured, the body is not empty, the header
    /// is present and is base64, and some key produces it.
    pub fn verify(&self, headers: &Headers, body: &[u8]) -> Result<(), SignatureError> {
        let keys: Vec<hmac::Key> = self
            .signature_keys
            .iter()
            .filter(|key| !key.is_empty())
            .map(|key| hmac::Key::new(hmac::HMAC_SHA256, key.expose().as_bytes()))
            .collect();
        if keys.is_empty() {
            return Err(SignatureError::NotConfigured("no Square signature key"));
        }
        if self.notification_url.is_empty() {
            return Err(SignatureError::NotConfigured("no Square notification URL"));
        }
        if body.is_empty() {
            return Err(SignatureError::EmptyBody);
        }
        let value = required_header(headers, SQUARE_SIGNATURE_HEADER)?;
        let signature = BASE64.decode(value).map_err(|_| {
            SignatureError::MalformedHeader(format!("{SQUARE_SIGNATURE_HEADER}: not base64"))
        })?;

        if keys.iter().any(|key| {
            bool::from(
                sign_url_and_body(key, &self.notification_url, body)
                    .as_ref()
                    .ct_eq(&signature),
            )
        }) {
            Ok(())
        } else {
            Err(SignatureError::NoMatchingSignature)
        }
    }

    /// Signs `body` as Square would for `notification_url`; returns the base64 value of
    /// `x-square-hmacsha256-signature` (for `payhook send` and tests).
    pub fn sign(key: &Secret, notification_url: &str, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key.expose().as_bytes());
        BASE64.encode(sign_url_and_body(&key, notification_url, body))
    }
}

/// HMAC-SHA256 of the notification URL's UTF-8 bytes followed by the body, with no
/// separator; both are fed as they are, not copied into one message first.
fn sign_url_and_body(key: &hmac::Key, notification_url: &str, body: &[u8]) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    context.update(notification_url.as_bytes());
    context.update(body);
    context.sign()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_round_trips_and_url_is_signed() {
        let key = Secret::new("square-key");
        let url = "https://example.com/prod/webhooks/square";
        let signature = SquareVerifier::sign(&key, url, b"{}");
        let headers: Headers = [(SQUARE_SIGNATURE_HEADER, signature)].into_iter().collect();
        assert_eq!(
            SquareVerifier::new(vec![key.clone()], url).verify(&headers, b"{}"),
            Ok(())
        );
        assert_eq!(
            SquareVerifier::new(vec![key], "https://example.com/webhooks/square")
                .verify(&headers, b"{}"),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_url_then_the_body() {
        // Computed independently of the verifier: HMAC-SHA256 over the two joined, as Square
        // documents it. A signature one byte short, or of the body alone, does not verify.
        let key = Secret::new("square-key");
        let url = "https://example.com/prod/webhooks/square";
        let body = br#"{"type":"payment.updated"}"#;
        let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, b"square-key");
        let joined = [url.as_bytes(), body].concat();
        let expected = BASE64.encode(hmac::sign(&hmac_key, &joined));
        assert_eq!(SquareVerifier::sign(&key, url, body), expected);
        let verifier = SquareVerifier::new(vec![Secret::new("old"), key], url);
        let raw = hmac::sign(&hmac_key, &joined);
        for (value, ok) in [
            (expected.clone(), true),
            (BASE64.encode(&raw.as_ref()[..31]), false),
            (BASE64.encode(hmac::sign(&hmac_key, body)), false),
        ] {
            let headers: Headers = [(SQUARE_SIGNATURE_HEADER, value)].into_iter().collect();
            assert_eq!(verifier.verify(&headers, body).is_ok(), ok);
        }
    }

    #[test]
    fn non_base64_signature_is_malformed() {
        let headers: Headers = [(SQUARE_SIGNATURE_HEADER, "not base64!")]
            .into_iter()
            .collect();
        let verifier = SquareVerifier::new(vec![Secret::new("k")], "https://example.com/");
        assert_eq!(
            verifier.verify(&headers, b"{}").map_err(|e| e.code()),
            Err("malformed_header")
        );
    }
}
