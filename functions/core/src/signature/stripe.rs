//! Stripe's `Stripe-Signature` scheme: `t=<unix>,v1=<hex>[,v1=<hex>…]`, where each `v1` is the
//! lowercase hex HMAC-SHA256 of `"{t}.{raw body}"` keyed with the whole `whsec_…` secret.
//!
//! Parsing follows the SDKs (split on `,`, then on the first `=`, no trimming); only `v1`
//! counts, so a `v0` test-mode signature can never downgrade the check. Several secrets may be
//! configured while one is rolled: any secret matching any `v1` passes.

use ring::hmac;

use super::{STRIPE_DEFAULT_TOLERANCE_SECS, SignatureError, required_header};
use crate::{Headers, Secret};

/// The header Stripe signs with.
pub const STRIPE_SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Length of an HMAC-SHA256 tag; `v1` values of any other length cannot match.
const TAG_LEN: usize = 32;

/// Verifies Stripe webhooks against one or more endpoint secrets.
#[derive(Debug, Clone)]
pub struct StripeVerifier {
    secrets: Vec<Secret>,
    tolerance_secs: u64,
}

impl StripeVerifier {
    /// A verifier holding the endpoint secrets (several during a rotation), with the default
    /// tolerance of [`STRIPE_DEFAULT_TOLERANCE_SECS`]. Secrets are used exactly as given.
    pub fn new(secrets: Vec<Secret>) -> Self {
        StripeVerifier {
            secrets,
            tolerance_secs: STRIPE_DEFAULT_TOLERANCE_SECS,
        }
    }

    /// Sets the tolerance on the age of `t`, in seconds. `0` turns the age check off.
    ///
    /// Only age is checked: a request fails when `now - t > tolerance`; a timestamp in the
    /// future passes, as in every Stripe SDK.
    pub fn with_tolerance(mut self, tolerance_secs: u64) -> Self {
        self.tolerance_secs = tolerance_secs;
        self
    }

    /// The tolerance in seconds (`0`: the age check is off).
    pub fn tolerance_secs(&self) -> u64 {
        self.tolerance_secs
    }

    /// Verifies one request: the raw `body` exactly as received and `now_unix` in Unix seconds.
    ///
    /// Checks, in order: a usable secret is configured, the body is not empty, the header is
    /// present and well-formed, it carries a `v1`, some `v1` matches some secret, and `t` is
    /// within the tolerance (the signature is checked before the timestamp, as stripe-python
    /// and stripe-node do).
    pub fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), SignatureError> {
        // An empty secret would make an HMAC anyone can compute: it is no secret at all.
        let keys: Vec<hmac::Key> = self
            .secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .map(|secret| hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes()))
            .collect();
        if keys.is_empty() {
            return Err(SignatureError::NotConfigured("no Stripe endpoint secret"));
        }
        if body.is_empty() {
            return Err(SignatureError::EmptyBody);
        }
        let header = ParsedHeader::parse(required_header(headers, STRIPE_SIGNATURE_HEADER)?)?;

        let payload = signed_payload(header.timestamp, body);
        // One HMAC per (secret, distinct v1): the header's size bounds the work.
        let matched = keys.iter().any(|key| {
            header
                .v1_signatures
                .iter()
                .any(|candidate| hmac::verify(key, &payload, candidate).is_ok())
        });
        if !matched {
            return Err(SignatureError::NoMatchingSignature);
        }

        if self.tolerance_secs > 0 {
            // i128: `t` comes from the request and may be any i64.
            let age = i128::from(now_unix) - i128::from(header.timestamp);
            if age > i128::from(self.tolerance_secs) {
                return Err(SignatureError::TimestampTooOld {
                    timestamp: header.timestamp,
                    now: now_unix,
                    tolerance_secs: self.tolerance_secs,
                });
            }
        }
        Ok(())
    }

    /// Signs `body` as Stripe would at `timestamp`; returns the whole header value
    /// `t={timestamp},v1={hex}` (for `payhook send` and tests).
    pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
        let tag = hmac::sign(&key, &signed_payload(timestamp, body));
        format!("t={timestamp},v1={}", hex::encode(tag.as_ref()))
    }
}

/// `"{t}.{body}"`, with `t` printed as the SDKs print the parsed integer.
fn signed_payload(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let prefix = format!("{timestamp}.");
    let mut payload = Vec::with_capacity(prefix.len() + body.len());
    payload.extend_from_slice(prefix.as_bytes());
    payload.extend_from_slice(body);
    payload
}

/// The parts of `Stripe-Signature` that matter.
#[derive(Debug)]
struct ParsedHeader {
    timestamp: i64,
    /// Distinct `v1` values that decode to a tag-sized byte string.
    v1_signatures: Vec<Vec<u8>>,
}

impl ParsedHeader {
    fn parse(value: &str) -> Result<Self, SignatureError> {
        let malformed = |why: &str| {
            SignatureError::MalformedHeader(format!("{STRIPE_SIGNATURE_HEADER}: {why}"))
        };
        let mut timestamp = None;
        let mut saw_v1 = false;
        let mut v1_signatures: Vec<Vec<u8>> = Vec::new();
        for element in value.split(',') {
            // As stripe-go: an element without `=` makes the whole header invalid.
            let (key, val) = element
                .split_once('=')
                .ok_or_else(|| malformed("an element has no `=`"))?;
            match key {
                "t" => {
                    // The SDKs disagree on a repeated `t` (first or last wins): refuse it.
                    if timestamp.is_some() {
                        return Err(malformed("more than one `t`"));
                    }
                    // The value is not echoed: nothing from a signature header goes to logs.
                    let t = val
                        .parse::<i64>()
                        .map_err(|_| malformed("the timestamp is not an integer"))?;
                    timestamp = Some(t);
                }
                "v1" => {
                    saw_v1 = true;
                    // Values that are not hex of the right length cannot match (stripe-go
                    // skips them too); one valid v1 among junk still passes.
                    if let Ok(bytes) = hex::decode(val)
                        && bytes.len() == TAG_LEN
                        && !v1_signatures.contains(&bytes)
                    {
                        v1_signatures.push(bytes);
                    }
                }
                // v0 and unknown schemes are ignored, so they cannot downgrade the check.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or_else(|| malformed("no `t=` timestamp"))?;
        if !saw_v1 {
            return Err(SignatureError::NoV1Signature);
        }
        Ok(ParsedHeader {
            timestamp,
            v1_signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> Headers {
        [(STRIPE_SIGNATURE_HEADER, value)].into_iter().collect()
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let secret = Secret::new("whsec_unit");
        let header = StripeVerifier::sign(&secret, 100, b"{}");
        assert!(header.starts_with("t=100,v1="));
        let verifier = StripeVerifier::new(vec![secret]);
        assert_eq!(verifier.verify(&headers(&header), b"{}", 100), Ok(()));
    }

    #[test]
    fn empty_secrets_fail_closed() {
        let header = StripeVerifier::sign(&Secret::new(""), 100, b"{}");
        let verifier = StripeVerifier::new(vec![Secret::new("")]);
        assert_eq!(
            verifier
                .verify(&headers(&header), b"{}", 100)
                .map_err(|e| e.code()),
            Err("not_configured")
        );
        let verifier = StripeVerifier::new(Vec::new());
        assert!(matches!(
            verifier.verify(&headers(&header), b"{}", 100),
            Err(SignatureError::NotConfigured(_))
        ));
    }

    #[test]
    fn repeated_timestamp_is_malformed() {
        let secret = Secret::new("whsec_unit");
        let header = format!("{},t=1", StripeVerifier::sign(&secret, 100, b"{}"));
        let verifier = StripeVerifier::new(vec![secret]);
        assert!(matches!(
            verifier.verify(&headers(&header), b"{}", 100),
            Err(SignatureError::MalformedHeader(_))
        ));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let secret = Secret::new("whsec_unit");
        let verifier = StripeVerifier::new(vec![secret.clone()]);
        let header = StripeVerifier::sign(&secret, i64::MIN, b"{}");
        assert!(matches!(
            verifier.verify(&headers(&header), b"{}", i64::MAX),
            Err(SignatureError::TimestampTooOld { .. })
        ));
        let header = StripeVerifier::sign(&secret, i64::MAX, b"{}");
        assert_eq!(verifier.verify(&headers(&header), b"{}", i64::MIN), Ok(()));
    }
}
