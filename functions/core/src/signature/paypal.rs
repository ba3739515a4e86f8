//! PayPal's self-verification of REST webhooks.
//!
//! PayPal signs `transmission_id|transmission_time|webhook_id|crc32(raw body)` (the CRC as an
//! unsigned decimal, `webhook_id` the receiver's own id) with RSASSA-PKCS1-v1_5 and the hash
//! named in `PAYPAL-AUTH-ALGO`, using the key of the certificate served at `PAYPAL-CERT-URL`.
//! Before anything is fetched the URL must be `https` on `paypal.com` or a subdomain
//! ([`check_cert_url`]) and the algorithm must be on the allow-list; the certificate must then
//! chain to the [`TrustAnchors`], be valid at "now" and carry a PayPal message-verification CN.
//! Verified certificates are cached by URL in a [`PaypalCertificateCache`] shared across
//! invocations, until they expire.
//!
//! The download itself is a port, [`CertificateFetcher`]: `payhook-aws` implements it over
//! HTTPS; [`StaticCertificateFetcher`] serves a fixed bundle (`payhook verify --cert-file`,
//! tests).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls_pki_types::SignatureVerificationAlgorithm;
use url::{Host, Url};

use super::certificate::{self, VerifiedLeaf};
use super::{SignatureError, clip, required_header};
use crate::Headers;

pub use super::certificate::TrustAnchors;

/// The transmission id header (part of the signed string).
pub const PAYPAL_TRANSMISSION_ID_HEADER: &str = "PAYPAL-TRANSMISSION-ID";
/// The transmission time header (part of the signed string).
pub const PAYPAL_TRANSMISSION_TIME_HEADER: &str = "PAYPAL-TRANSMISSION-TIME";
/// Where the signing certificate is published.
pub const PAYPAL_CERT_URL_HEADER: &str = "PAYPAL-CERT-URL";
/// The signature algorithm, e.g. `SHA256withRSA`.
pub const PAYPAL_AUTH_ALGO_HEADER: &str = "PAYPAL-AUTH-ALGO";
/// The base64 signature.
pub const PAYPAL_TRANSMISSION_SIG_HEADER: &str = "PAYPAL-TRANSMISSION-SIG";

/// Most certificates kept in a [`PaypalCertificateCache`]; PayPal uses a handful of URLs, so
/// this only bounds memory if many distinct PayPal URLs are sent.
pub const MAX_CACHED_CERTIFICATES: usize = 32;

/// Downloads what a `PAYPAL-CERT-URL` serves.
#[async_trait]
pub trait CertificateFetcher: Send + Sync {
    /// The PEM bundle at `url` (the leaf certificate followed by its intermediates), or why
    /// it could not be fetched. Only URLs that passed [`check_cert_url`] are asked for.
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, String>;
}

/// A fetcher that returns the same bundle for every URL (`payhook verify --cert-file`,
/// tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticCertificateFetcher(pub Vec<u8>);

impl StaticCertificateFetcher {
    /// Serves `bundle` (PEM: leaf first, then intermediates) for every URL.
    pub fn new(bundle: impl Into<Vec<u8>>) -> Self {
        StaticCertificateFetcher(bundle.into())
    }
}

#[async_trait]
impl CertificateFetcher for StaticCertificateFetcher {
    async fn fetch(&self, _url: &Url) -> Result<Vec<u8>, String> {
        Ok(self.0.clone())
    }
}

/// Verified PayPal signing certificates by URL, shared by every verification in the process
/// (and across Lambda invocations). A certificate is fetched and checked once, then reused
/// until the validity of its chain ends; failed checks are not cached.
pub struct PaypalCertificateCache {
    fetcher: Arc<dyn CertificateFetcher>,
    anchors: TrustAnchors,
    entries: Mutex<HashMap<String, Arc<VerifiedLeaf>>>,
}

impl PaypalCertificateCache {
    /// An empty cache that downloads with `fetcher` and trusts `anchors`.
    pub fn new(fetcher: Arc<dyn CertificateFetcher>, anchors: TrustAnchors) -> Self {
        PaypalCertificateCache {
            fetcher,
            anchors,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Number of certificates cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The verified leaf for `url` at `now_unix`, from the cache or freshly fetched.
    async fn leaf(&self, url: &Url, now_unix: i64) -> Result<Arc<VerifiedLeaf>, SignatureError> {
        if let Some(leaf) = self.cached(url, now_unix) {
            return Ok(leaf);
        }
        // The lock is not held across the download: two concurrent misses may both fetch,
        // which is harmless.
        let bundle = self
            .fetcher
            .fetch(url)
            .await
            .map_err(|e| SignatureError::CertFetchFailed(clip(&e)))?;
        let leaf = Arc::new(certificate::verify_bundle(
            &bundle,
            &self.anchors,
            now_unix,
        )?);
        self.store(url, Arc::clone(&leaf), now_unix);
        Ok(leaf)
    }

    fn cached(&self, url: &Url, now_unix: i64) -> Option<Arc<VerifiedLeaf>> {
        self.lock()
            .get(url.as_str())
            .filter(|leaf| leaf.is_valid_at(now_unix))
            .cloned()
    }

    fn store(&self, url: &Url, leaf: Arc<VerifiedLeaf>, now_unix: i64) {
        let mut entries = self.lock();
        if entries.len() >= MAX_CACHED_CERTIFICATES && !entries.contains_key(url.as_str()) {
            entries.retain(|_, cached| cached.is_valid_at(now_unix));
            if entries.len() >= MAX_CACHED_CERTIFICATES {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, cached)| cached.not_after())
                    .map(|(key, _)| key.clone());
                if let Some(key) = soonest {
                    entries.remove(&key);
                }
            }
        }
        entries.insert(url.as_str().to_owned(), leaf);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<VerifiedLeaf>>> {
        // The map is always left consistent, so a panic elsewhere does not poison it for us.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for PaypalCertificateCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaypalCertificateCache")
            .field("anchors", &self.anchors)
            .field("cached", &self.len())
            .finish_non_exhaustive()
    }
}

/// Verifies PayPal webhooks for one webhook id.
#[derive(Debug, Clone)]
pub struct PaypalVerifier {
    webhook_id: String,
    certificates: Arc<PaypalCertificateCache>,
}

impl PaypalVerifier {
    /// A verifier for the receiver's `webhook_id` (the literal `WEBHOOK_ID` for PayPal's
    /// simulator events), sharing the certificate cache.
    pub fn new(webhook_id: impl Into<String>, certificates: Arc<PaypalCertificateCache>) -> Self {
        PaypalVerifier {
            webhook_id: webhook_id.into(),
            certificates,
        }
    }

    /// Verifies one request over the raw `body`; `now_unix` (Unix seconds) is the time at
    /// which the certificate chain must be valid.
    ///
    /// Checks, in order: the webhook id is configured, the body is not empty, the five
    /// headers are present, the certificate URL is allowed, the algorithm is allowed, the
    /// signature is base64, then (fetching only now) the certificate, then the signature.
    pub async fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), SignatureError> {
        if self.webhook_id.is_empty() {
            return Err(SignatureError::NotConfigured("no PayPal webhook id"));
        }
        if body.is_empty() {
            return Err(SignatureError::EmptyBody);
        }
        let transmission_id = required_header(headers, PAYPAL_TRANSMISSION_ID_HEADER)?;
        let transmission_time = required_header(headers, PAYPAL_TRANSMISSION_TIME_HEADER)?;
        let cert_url = required_header(headers, PAYPAL_CERT_URL_HEADER)?;
        let auth_algo = required_header(headers, PAYPAL_AUTH_ALGO_HEADER)?;
        let transmission_sig = required_header(headers, PAYPAL_TRANSMISSION_SIG_HEADER)?;

        let cert_url = check_cert_url(cert_url)?;
        let algorithm = signature_algorithm(auth_algo)?;
        let signature = BASE64.decode(transmission_sig).map_err(|_| {
            SignatureError::MalformedHeader(format!("{PAYPAL_TRANSMISSION_SIG_HEADER}: not base64"))
        })?;

        let leaf = self.certificates.leaf(&cert_url, now_unix).await?;
        let signed = format!(
            "{transmission_id}|{transmission_time}|{}|{}",
            self.webhook_id,
            crc32fast::hash(body)
        );
        leaf.verify_signature(algorithm, signed.as_bytes(), &signature)
    }
}

/// Policy (d): `PAYPAL-CERT-URL` must parse as an `https` URL whose host is `paypal.com` or
/// ends with `.paypal.com` (the parsed host, compared case-insensitively; user info or a path
/// mentioning paypal.com does not count). Checked before anything is fetched.
pub fn check_cert_url(url: &str) -> Result<Url, SignatureError> {
    let not_allowed = |why: &str| SignatureError::CertUrlNotAllowed(why.to_owned());
    let parsed = Url::parse(url).map_err(|_| not_allowed("not a valid absolute URL"))?;
    if parsed.scheme() != "https" {
        return Err(not_allowed("the scheme must be https"));
    }
    // The URL parser lower-cases domain names; IP addresses never qualify.
    let allowed = match parsed.host() {
        Some(Host::Domain(host)) => {
            host == "paypal.com"
                || host
                    .strip_suffix(".paypal.com")
                    .is_some_and(|sub| !sub.is_empty() && !sub.ends_with('.'))
        }
        _ => false,
    };
    if allowed {
        Ok(parsed)
    } else {
        Err(not_allowed(
            "the host must be paypal.com or a subdomain of it",
        ))
    }
}

/// Policy (e): the allow-list of `PAYPAL-AUTH-ALGO` values, exactly spelt, and the
/// RSASSA-PKCS1-v1_5 verification each names.
fn signature_algorithm(
    name: &str,
) -> Result<&'static dyn SignatureVerificationAlgorithm, SignatureError> {
    match name {
        "SHA256withRSA" => Ok(webpki::ring::RSA_PKCS1_2048_8192_SHA256),
        "SHA384withRSA" => Ok(webpki::ring::RSA_PKCS1_2048_8192_SHA384),
        "SHA512withRSA" => Ok(webpki::ring::RSA_PKCS1_2048_8192_SHA512),
        other => Err(SignatureError::UnsupportedAlgorithm(clip(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_allow_list_is_exact() {
        assert!(signature_algorithm("SHA256withRSA").is_ok());
        assert!(signature_algorithm("SHA384withRSA").is_ok());
        assert!(signature_algorithm("SHA512withRSA").is_ok());
        for name in [
            "SHA1withRSA",
            "sha256withrsa",
            "SHA256withDSA",
            " SHA256withRSA",
            "",
        ] {
            assert!(matches!(
                signature_algorithm(name),
                Err(SignatureError::UnsupportedAlgorithm(_))
            ));
        }
    }
}
