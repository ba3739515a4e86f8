//! Stripe's `Stripe-Signature` scheme: `t=<unix>,v1=<hex>[,v1=<hex>…]`, where each `v1` is the
//! lowercase hex HMAC-SHA256 of `"{t}.{raw body}"` keyed with the whole `whsec_…` secret.
//!
//! Parsing follows the SDKs (split on `,`, then on the first `=`, no trimming); only `v1`
//! counts, so a `v0` test-mode signature can never downgrade the check. Several secrets may be
//! configured while one is rolled: any secret matching any `v1` passes.

use ring::hmac;
use subtle::ConstantTimeEq as _;

use super::{STRIPE_DEFAULT_TOLERANCE_SECS, SignatureError, required_header};
use crate::{Headers, Secret};

/// The header Stripe signs with.
pub const STRIPE_SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Length of an HMAC-SHA256 tag; `v1` values of any other length cannot match.
const TAG_LEN: usize = 32;

/// Most distinct `v1` values compared per request; later ones are ignored. Stripe sends one
/// `v1` per active endpoint secret (two while a secret is rolled), so a genuine header never
/// comes near this, and a header stuffed with hundreds costs no more than one with eight.
pub const MAX_V1_SIGNATURES: usize = 8;

/// Longest `Stripe-Signature` value parsed (API Gateway itself caps all headers at 10 KiB); a
/// genuine one is a few hundred bytes.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 8 * 1024;

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
        self.verify_with_stats(headers, body, now_unix).0
    }

    /// [`verify`](Self::verify), also saying how much work it did: one HMAC-SHA256 over the
    /// body per configured secret, whatever the header holds, and at most
    /// [`MAX_V1_SIGNATURES`] `v1` values compared with each.
    pub fn verify_with_stats(
        &self,
        headers: &Headers,
        body: &[u8],
        now_unix: i64,
    ) -> (Result<(), SignatureError>, VerifyStats) {
        let mut stats = VerifyStats::default();
        let result = self.verify_counting(headers, body, now_unix, &mut stats);
        (result, stats)
    }

    fn verify_counting(
        &self,
        headers: &Headers,
        body: &[u8],
        now_unix: i64,
        stats: &mut VerifyStats,
    ) -> Result<(), SignatureError> {
        // An empty secret would make an HMAC anyone can compute: it is no secret at all.
        let mut keys = self
            .secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .peekable();
        if keys.peek().is_none() {
            return Err(SignatureError::NotConfigured("no Stripe endpoint secret"));
        }
        if body.is_empty() {
            return Err(SignatureError::EmptyBody);
        }
        let header = ParsedHeader::parse(required_header(headers, STRIPE_SIGNATURE_HEADER)?)?;

        // One HMAC per secret, then constant-time comparisons with the (bounded) candidates:
        // the header's size cannot multiply the work over the body.
        let mut matched = false;
        for secret in keys {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
            let tag = sign_payload(&key, header.timestamp, body);
            stats.hmacs += 1;
            for candidate in &header.v1_signatures {
                stats.comparisons += 1;
                // `|=`, not `||`: every candidate is compared, so timing says nothing about which
                // one matched.
                matched |= bool::from(tag.as_ref().ct_eq(candidate));
            }
        }
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
        let tag = sign_payload(&key, timestamp, body);
        format!("t={timestamp},v1={}", hex::encode(tag.as_ref()))
    }
}

/// How much work one verification did (for tests and benches of the cost bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// HMAC-SHA256 computations over the body.
    pub hmacs: usize,
    /// Tag comparisons (32 bytes each).
    pub comparisons: usize,
}

/// HMAC-SHA256 of `"{t}.{body}"`, with `t` printed as the SDKs print the parsed integer; the
/// body is fed as it is, not copied.
fn sign_payload(key: &hmac::Key, timestamp: i64, body: &[u8]) -> hmac::Tag {
    let mut context = hmac::Context::with_key(key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    context.sign()
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
        if value.len() > MAX_SIGNATURE_HEADER_BYTES {
            return Err(malformed("longer than 8 KiB"));
        }
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
                    if v1_signatures.len() < MAX_V1_SIGNATURES
                        && val.len() == 2 * TAG_LEN
                        && let Ok(bytes) = hex::decode(val)
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
    fn hundreds_of_v1_entries_cost_one_hmac_per_secret_and_a_bounded_compare() {
        let secrets = vec![Secret::new("whsec_old"), Secret::new("whsec_new")];
        let body = vec![b'x'; 2048];
        let genuine = StripeVerifier::sign(&secrets[1], 100, &body);
        let junk: String = (0..110u32)
            .map(|i| format!(",v1={}", hex::encode([i.to_le_bytes(); 8].concat())))
            .collect();
        let verifier = StripeVerifier::new(secrets);

        let (result, stats) = verifier.verify_with_stats(&headers(&genuine), &body, 100);
        assert_eq!(result, Ok(()));
        assert_eq!(
            stats,
            VerifyStats {
                hmacs: 2,
                comparisons: 2
            }
        );

        // The genuine signature after 110 junk entries is past the bound: ignored, so refused,
        // at the same cost as a header with eight entries.
        let stuffed = format!("t=100{junk},{}", &genuine["t=100,".len()..]);
        let (result, stats) = verifier.verify_with_stats(&headers(&stuffed), &body, 100);
        assert_eq!(result, Err(SignatureError::NoMatchingSignature));
        assert_eq!(
            stats,
            VerifyStats {
                hmacs: 2,
                comparisons: 2 * MAX_V1_SIGNATURES
            }
        );

        // Within the bound, any position still matches (a rotation sends one per secret).
        let rotated = format!("{genuine}{}", &junk[..junk.len() / 20]);
        let (result, stats) = verifier.verify_with_stats(&headers(&rotated), &body, 100);
        assert_eq!(result, Ok(()));
        assert_eq!(stats.hmacs, 2);

        // Past 8 KiB the header is not parsed at all.
        let oversized = format!("{genuine},v0={}", "0".repeat(MAX_SIGNATURE_HEADER_BYTES));
        let (result, stats) = verifier.verify_with_stats(&headers(&oversized), &body, 100);
        assert!(matches!(result, Err(SignatureError::MalformedHeader(_))));
        assert_eq!(stats.hmacs, 0);
    }

    #[test]
    fn a_header_of_exactly_8_kib_is_parsed_and_one_byte_more_is_malformed() {
        let secret = Secret::new("whsec_unit");
        let genuine = StripeVerifier::sign(&secret, 100, b"{}");
        let padded = |len: usize| {
            let header = format!("{genuine},v0=");
            let pad = "0".repeat(len - header.len());
            header + &pad
        };
        let verifier = StripeVerifier::new(vec![secret]);
        let at_limit = padded(MAX_SIGNATURE_HEADER_BYTES);
        assert_eq!(at_limit.len(), 8192);
        assert_eq!(verifier.verify(&headers(&at_limit), b"{}", 100), Ok(()));
        assert_eq!(
            verifier.verify(
                &headers(&padded(MAX_SIGNATURE_HEADER_BYTES + 1)),
                b"{}",
                100
            ),
            Err(SignatureError::MalformedHeader(
                "Stripe-Signature: longer than 8 KiB".into()
            ))
        );
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
