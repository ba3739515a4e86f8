//! PayPal's self-verification of REST webhooks.
//!
//! PayPal signs `transmission_id|transmission_time|webhook_id|crc32(raw body)` (the CRC as an
//! unsigned decimal, `webhook_id` the receiver's own id) with RSASSA-PKCS1-v1_5 and the hash
//! named in `PAYPAL-AUTH-ALGO`, using the key of the certificate served at `PAYPAL-CERT-URL`.
//! Before anything is fetched the URL must be `https://<PayPal API host>/v1/notifications/…`
//! with nothing else in it ([`check_cert_url`]; sandbox hosts only for a
//! [`PaypalEnvironment::Sandbox`] stage) and the algorithm must be on the allow-list; the
//! certificate must then chain to the [`TrustAnchors`], be valid at "now" and carry a PayPal
//! message-verification CN. Verified certificates are cached by normalised URL in a
//! [`PaypalCertificateCache`] shared across invocations, until they expire; a URL that PayPal
//! answers with a client error, or whose certificate fails the checks, is remembered as refused
//! for [`NEGATIVE_CACHE_SECS`].
//!
//! **Freshness.** The signature binds the body only through its CRC32, which is not a MAC: from
//! one genuine delivery anyone can write a different body with the same CRC32. So
//! `PAYPAL-TRANSMISSION-TIME` must be within a tolerance of now, either way
//! ([`DEFAULT_PAYPAL_TOLERANCE_SECS`]), and the validator refuses a transmission id it has seen
//! with a different body. PayPal sends each retry as a new transmission: a new
//! `PAYPAL-TRANSMISSION-ID` (a version-1 UUID minted at the transmission time) and a new
//! `PAYPAL-TRANSMISSION-TIME`, signed afresh, so genuine retries — up to 25 over 3 days — pass
//! the tolerance, and the event id deduplicates them.
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
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
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

/// How long a certificate URL that was refused (a 4xx from PayPal, or a certificate that
/// failed the checks) is answered from the cache before it is asked again.
pub const NEGATIVE_CACHE_SECS: i64 = 300;

/// Default tolerance between `PAYPAL-TRANSMISSION-TIME` and now, either way, in seconds. PayPal
/// signs each delivery attempt when it sends it, so only network delay and clock skew count.
pub const DEFAULT_PAYPAL_TOLERANCE_SECS: u64 = 300;

/// Longest `PAYPAL-TRANSMISSION-ID` accepted (PayPal's are 36-character UUIDs); it becomes part
/// of a table key.
pub const MAX_TRANSMISSION_ID_CHARS: usize = 128;

/// Where the stage's PayPal webhooks come from, which decides the certificate hosts accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PaypalEnvironment {
    /// Live PayPal: certificates from `api.paypal.com` / `api-m.paypal.com` only.
    #[default]
    Live,
    /// The PayPal sandbox: the sandbox API hosts as well as the live ones.
    Sandbox,
}

/// PayPal's live REST API hosts.
const LIVE_HOSTS: [&str; 2] = ["api.paypal.com", "api-m.paypal.com"];
/// PayPal's sandbox REST API hosts.
const SANDBOX_HOSTS: [&str; 2] = ["api.sandbox.paypal.com", "api-m.sandbox.paypal.com"];
/// The path every PayPal certificate URL lives under (`/v1/notifications/certs/CERT-…`).
const CERT_PATH_PREFIX: &str = "/v1/notifications/";

impl PaypalEnvironment {
    /// The spelling in configuration (`live`, `sandbox`).
    pub const fn as_str(self) -> &'static str {
        match self {
            PaypalEnvironment::Live => "live",
            PaypalEnvironment::Sandbox => "sandbox",
        }
    }

    /// Whether certificates may come from `host` (lower case, as the URL parser gives it).
    fn allows_host(self, host: &str) -> bool {
        LIVE_HOSTS.contains(&host)
            || (self == PaypalEnvironment::Sandbox && SANDBOX_HOSTS.contains(&host))
    }
}

impl std::str::FromStr for PaypalEnvironment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(PaypalEnvironment::Live),
            "sandbox" => Ok(PaypalEnvironment::Sandbox),
            other => Err(format!(
                "PayPal environment `{}` is neither `live` nor `sandbox`",
                clip(other)
            )),
        }
    }
}

impl fmt::Display for PaypalEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a certificate could not be downloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL answered, but not with a certificate: a client error (4xx), a redirect, or a
    /// body over the size limit. Retrying will not help; the request is refused.
    #[error("{0}")]
    Rejected(String),
    /// The URL could not be reached, timed out, or PayPal answered with a server error (5xx):
    /// on PayPal's side or the network's, so the provider should retry.
    #[error("{0}")]
    Unavailable(String),
}

/// Downloads what a `PAYPAL-CERT-URL` serves.
#[async_trait]
pub trait CertificateFetcher: Send + Sync {
    /// The PEM bundle at `url` (the leaf certificate followed by its intermediates), or why
    /// it could not be fetched. Only URLs that passed [`check_cert_url`] are asked for.
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, FetchError>;
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
    async fn fetch(&self, _url: &Url) -> Result<Vec<u8>, FetchError> {
        Ok(self.0.clone())
    }
}

/// Verified PayPal signing certificates by normalised URL, shared by every verification in the
/// process (and across Lambda invocations). A certificate is fetched and checked once, then
/// reused until the validity of its chain ends. A URL whose answer was refused (a 4xx, or a
/// certificate that failed a check) is remembered for [`NEGATIVE_CACHE_SECS`], so refused
/// requests cannot make the function download again and again; network failures and 5xx are
/// not remembered (the provider's retry should find PayPal back).
pub struct PaypalCertificateCache {
    fetcher: Arc<dyn CertificateFetcher>,
    anchors: TrustAnchors,
    entries: Mutex<HashMap<String, CacheEntry>>,
}

#[derive(Debug, Clone)]
enum CacheEntry {
    Verified(Arc<VerifiedLeaf>),
    Refused { error: SignatureError, until: i64 },
}

impl CacheEntry {
    /// Whether the entry still answers at `now_unix`.
    fn is_live_at(&self, now_unix: i64) -> bool {
        match self {
            CacheEntry::Verified(leaf) => leaf.is_valid_at(now_unix),
            CacheEntry::Refused { until, .. } => now_unix < *until,
        }
    }

    /// When the entry stops answering.
    fn ends_at(&self) -> i64 {
        match self {
            CacheEntry::Verified(leaf) => leaf.not_after(),
            CacheEntry::Refused { until, .. } => *until,
        }
    }
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

    /// Number of URLs cached (verified or refused).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The verified leaf for `url` (already normalised by [`check_cert_url`]) at `now_unix`,
    /// from the cache or freshly fetched.
    async fn leaf(&self, url: &Url, now_unix: i64) -> Result<Arc<VerifiedLeaf>, SignatureError> {
        if let Some(entry) = self.cached(url, now_unix) {
            return match entry {
                CacheEntry::Verified(leaf) => Ok(leaf),
                CacheEntry::Refused { error, .. } => Err(error),
            };
        }
        // The lock is not held across the download: two concurrent misses may both fetch,
        // which is harmless.
        let verified = match self.fetcher.fetch(url).await {
            Ok(bundle) => certificate::verify_bundle(&bundle, &self.anchors, now_unix),
            Err(FetchError::Unavailable(why)) => {
                return Err(SignatureError::CertFetchFailed(clip(&why)));
            }
            Err(FetchError::Rejected(why)) => Err(SignatureError::CertNotAvailable(clip(&why))),
        };
        match verified {
            Ok(leaf) => {
                let leaf = Arc::new(leaf);
                self.store(url, CacheEntry::Verified(Arc::clone(&leaf)), now_unix);
                Ok(leaf)
            }
            Err(error) => {
                let until = now_unix.saturating_add(NEGATIVE_CACHE_SECS);
                self.store(
                    url,
                    CacheEntry::Refused {
                        error: error.clone(),
                        until,
                    },
                    now_unix,
                );
                Err(error)
            }
        }
    }

    fn cached(&self, url: &Url, now_unix: i64) -> Option<CacheEntry> {
        self.lock()
            .get(url.as_str())
            .filter(|entry| entry.is_live_at(now_unix))
            .cloned()
    }

    fn store(&self, url: &Url, entry: CacheEntry, now_unix: i64) {
        let mut entries = self.lock();
        if entries.len() >= MAX_CACHED_CERTIFICATES && !entries.contains_key(url.as_str()) {
            entries.retain(|_, cached| cached.is_live_at(now_unix));
            if entries.len() >= MAX_CACHED_CERTIFICATES {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, cached)| cached.ends_at())
                    .map(|(key, _)| key.clone());
                if let Some(key) = soonest {
                    entries.remove(&key);
                }
            }
        }
        entries.insert(url.as_str().to_owned(), entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CacheEntry>> {
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
    environment: PaypalEnvironment,
    tolerance_secs: u64,
}

impl PaypalVerifier {
    /// A verifier for the receiver's `webhook_id` (the literal `WEBHOOK_ID` for PayPal's
    /// simulator events), sharing the certificate cache; live PayPal, with the default
    /// tolerance of [`DEFAULT_PAYPAL_TOLERANCE_SECS`].
    pub fn new(webhook_id: impl Into<String>, certificates: Arc<PaypalCertificateCache>) -> Self {
        PaypalVerifier {
            webhook_id: webhook_id.into(),
            certificates,
            environment: PaypalEnvironment::Live,
            tolerance_secs: DEFAULT_PAYPAL_TOLERANCE_SECS,
        }
    }

    /// Accepts certificates from `environment`'s hosts (sandbox hosts only for
    /// [`PaypalEnvironment::Sandbox`]).
    pub fn with_environment(mut self, environment: PaypalEnvironment) -> Self {
        self.environment = environment;
        self
    }

    /// Sets the tolerance between the transmission time and now, either way, in seconds.
    pub fn with_tolerance(mut self, tolerance_secs: u64) -> Self {
        self.tolerance_secs = tolerance_secs;
        self
    }

    /// Verifies one request over the raw `body`; `now_unix` (Unix seconds) is the time at
    /// which the certificate chain must be valid and the transmission time must be near.
    ///
    /// Checks, in order: the webhook id is configured, the body is not empty, the five
    /// headers are present (the transmission id of a sane length, the time RFC 3339), the
    /// certificate URL is allowed, the algorithm is allowed, the signature is base64, then
    /// (fetching only now) the certificate, then the signature, then the transmission time's
    /// distance from now (after the signature, as Stripe's SDKs order it, so a refused old
    /// delivery is known to be genuine).
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
        let transmission_id = transmission_id(headers)?;
        let transmission_time = required_header(headers, PAYPAL_TRANSMISSION_TIME_HEADER)?;
        let cert_url = required_header(headers, PAYPAL_CERT_URL_HEADER)?;
        let auth_algo = required_header(headers, PAYPAL_AUTH_ALGO_HEADER)?;
        let transmission_sig = required_header(headers, PAYPAL_TRANSMISSION_SIG_HEADER)?;

        let sent_at = parse_transmission_time(transmission_time)?;
        let cert_url = check_cert_url(cert_url, self.environment)?;
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
        leaf.verify_signature(algorithm, signed.as_bytes(), &signature)?;

        let distance = (i128::from(now_unix) - i128::from(sent_at)).unsigned_abs();
        if distance > u128::from(self.tolerance_secs) {
            return Err(SignatureError::TimestampOutOfTolerance {
                timestamp: sent_at,
                now: now_unix,
                tolerance_secs: self.tolerance_secs,
            });
        }
        Ok(())
    }
}

/// `PAYPAL-TRANSMISSION-ID`, present and of a sane length (it becomes part of a table key).
pub fn transmission_id(headers: &Headers) -> Result<&str, SignatureError> {
    let id = required_header(headers, PAYPAL_TRANSMISSION_ID_HEADER)?;
    if id.chars().count() > MAX_TRANSMISSION_ID_CHARS {
        return Err(SignatureError::MalformedHeader(format!(
            "{PAYPAL_TRANSMISSION_ID_HEADER}: longer than {MAX_TRANSMISSION_ID_CHARS} characters"
        )));
    }
    Ok(id)
}

/// `PAYPAL-TRANSMISSION-TIME` (RFC 3339, e.g. `2015-05-18T15:45:13Z`) in Unix seconds.
fn parse_transmission_time(value: &str) -> Result<i64, SignatureError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            SignatureError::MalformedHeader(format!(
                "{PAYPAL_TRANSMISSION_TIME_HEADER}: not an RFC 3339 time"
            ))
        })
}

/// Policy (d), tightened: `PAYPAL-CERT-URL` must be exactly
/// `https://<host>[:443]/v1/notifications/…` where `<host>` is one of PayPal's REST API hosts
/// for `environment` (`api.paypal.com`, `api-m.paypal.com`; with
/// [`PaypalEnvironment::Sandbox`] also `api.sandbox.paypal.com`, `api-m.sandbox.paypal.com`),
/// compared on the parsed host; no user info, no other port, no query, no fragment. Real
/// deliveries use `/v1/notifications/certs/CERT-…`; the prefix is `/v1/notifications/` because
/// PayPal's Java SDK recorded a genuine sandbox delivery under `/v1/notifications/test`.
/// Checked before anything is fetched; the returned URL is the normalised form (lower-case
/// host, no default port, dot segments resolved) that the certificate cache is keyed by.
pub fn check_cert_url(url: &str, environment: PaypalEnvironment) -> Result<Url, SignatureError> {
    let not_allowed = |why: &str| SignatureError::CertUrlNotAllowed(why.to_owned());
    let parsed = Url::parse(url).map_err(|_| not_allowed("not a valid absolute URL"))?;
    if parsed.scheme() != "https" {
        return Err(not_allowed("the scheme must be https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(not_allowed("user info is not allowed"));
    }
    // The parser drops the scheme's default port, so an explicit `:443` reads as `None` here.
    if parsed.port().is_some() {
        return Err(not_allowed("the port must be 443"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(not_allowed("a query or fragment is not allowed"));
    }
    // The URL parser lower-cases domain names; IP addresses never qualify.
    let host_allowed = match parsed.host() {
        Some(Host::Domain(host)) => environment.allows_host(host),
        _ => false,
    };
    if !host_allowed {
        return Err(not_allowed(match environment {
            PaypalEnvironment::Live => "the host must be api.paypal.com or api-m.paypal.com",
            PaypalEnvironment::Sandbox => "the host must be one of PayPal's REST API hosts",
        }));
    }
    let path = parsed.path();
    if path
        .strip_prefix(CERT_PATH_PREFIX)
        .is_none_or(str::is_empty)
    {
        return Err(not_allowed("the path must be under /v1/notifications/"));
    }
    Ok(parsed)
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

    #[test]
    fn environments_are_spelt_live_and_sandbox_both_ways() {
        for (environment, name) in [
            (PaypalEnvironment::Live, "live"),
            (PaypalEnvironment::Sandbox, "sandbox"),
        ] {
            assert_eq!(environment.as_str(), name);
            assert_eq!(environment.to_string(), name);
            assert_eq!(name.parse::<PaypalEnvironment>(), Ok(environment));
        }
        assert_eq!(PaypalEnvironment::default(), PaypalEnvironment::Live);
        assert_eq!(
            "Live".parse::<PaypalEnvironment>(),
            Err("PayPal environment `Live` is neither `live` nor `sandbox`".to_owned())
        );
    }

    #[test]
    fn a_transmission_id_of_128_characters_is_accepted_and_129_is_malformed() {
        let with_id =
            |id: &str| -> Headers { [(PAYPAL_TRANSMISSION_ID_HEADER, id)].into_iter().collect() };
        // Characters, not bytes: 128 two-byte characters are within the limit.
        let at_limit = "é".repeat(MAX_TRANSMISSION_ID_CHARS);
        assert_eq!(transmission_id(&with_id(&at_limit)), Ok(at_limit.as_str()));
        assert_eq!(
            transmission_id(&with_id(&"a".repeat(MAX_TRANSMISSION_ID_CHARS + 1))),
            Err(SignatureError::MalformedHeader(
                "PAYPAL-TRANSMISSION-ID: longer than 128 characters".into()
            ))
        );
        assert_eq!(
            transmission_id(&with_id("")),
            Err(SignatureError::MissingHeader(PAYPAL_TRANSMISSION_ID_HEADER))
        );
    }
}
