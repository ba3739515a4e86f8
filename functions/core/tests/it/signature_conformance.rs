//! Every vector of the shared signature corpus (`../shared/conformance/signatures/`) through the
//! verifiers, plus the behaviours the corpus does not pin down on its own: secret rotation,
//! the tolerance switch, the PayPal certificate cache and the certificate URL policy.
//!
//! Run with `cargo test -p payhook-core --test it signature_conformance::`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use payhook_core::signature::paypal::{MAX_CACHED_CERTIFICATES, NEGATIVE_CACHE_SECS};
use payhook_core::signature::{
    CertificateFetcher, FetchError, PaypalCertificateCache, PaypalEnvironment, PaypalVerifier,
    STRIPE_DEFAULT_TOLERANCE_SECS, SignatureError, SquareVerifier, StaticCertificateFetcher,
    StripeVerifier, TrustAnchors, check_cert_url,
};
use payhook_core::{Headers, Secret};
use payhook_testkit::conformance::{conformance_dir, read_jsonl};
use serde_json::Value;

/// The corpus size the README states; the test fails if fewer vectors were exercised.
const EXPECTED_VECTORS: usize = 78;
const EXPECTED_STRIPE: usize = 31;
const EXPECTED_SQUARE: usize = 19;
const EXPECTED_PAYPAL: usize = 28;

/// The vector's `reason_code` as this library's `SignatureError::code()`.
///
/// | vector `reason_code` | `code()` | why they differ |
/// |---|---|---|
/// | `timestamp_outside_tolerance` | `timestamp_too_old` | only age is checked (Policy b) |
/// | `signature_mismatch`, `wrong_key`, `url_mismatch`, `body_tampered`, `body_reformatted`, `crc_mismatch`, `crc_format`, `wrong_webhook_id` | `no_matching_signature` | each changes the signed bytes; a MAC or RSA check sees only "does not match" |
/// | `config_error` | `not_configured` | empty Square key or URL fails closed |
/// | `legacy_header_not_supported` | `missing_header` | the legacy header is not read, so the SHA-256 one is missing (Policy c) |
/// | `cert_url_not_https`, `cert_url_not_paypal` | `cert_url_not_allowed` | one policy, two causes (Policy d) |
/// | `cert_cn_not_paypal` | `cert_name_mismatch` | |
/// | `algo_unsupported` | `unsupported_algorithm` | Policy e |
///
/// Every other code is the same on both sides. An unknown code fails the test, so a new kind
/// of vector gets a deliberate mapping.
fn expected_code(reason_code: &str) -> Option<&'static str> {
    Some(match reason_code {
        "missing_header" | "legacy_header_not_supported" => "missing_header",
        "malformed_header" => "malformed_header",
        "no_v1_signature" => "no_v1_signature",
        "no_matching_signature"
        | "signature_mismatch"
        | "wrong_key"
        | "url_mismatch"
        | "body_tampered"
        | "body_reformatted"
        | "crc_mismatch"
        | "crc_format"
        | "wrong_webhook_id" => "no_matching_signature",
        "timestamp_outside_tolerance" => "timestamp_too_old",
        "empty_body" => "empty_body",
        "config_error" => "not_configured",
        "cert_url_not_https" | "cert_url_not_paypal" => "cert_url_not_allowed",
        "cert_expired" => "cert_expired",
        "cert_untrusted" => "cert_untrusted",
        "cert_cn_not_paypal" => "cert_name_mismatch",
        "algo_unsupported" => "unsupported_algorithm",
        _ => return None,
    })
}

fn signatures_dir() -> Option<PathBuf> {
    conformance_dir().map(|dir| dir.join("signatures"))
}

fn vectors(dir: &Path) -> Vec<Value> {
    read_jsonl(&dir.join("vectors.jsonl")).expect("vectors.jsonl is readable JSON Lines")
}

fn vector(dir: &Path, id: &str) -> Value {
    vectors(dir)
        .into_iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("vector {id} is in the corpus"))
}

fn str_field<'v>(v: &'v Value, field: &str) -> &'v str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: `{field}` is a string", v["id"]))
}

fn headers_of(v: &Value) -> Headers {
    v["headers"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: `headers` is an object", v["id"]))
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str().unwrap_or_default()))
        .collect()
}

fn read_pem(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// What `PAYPAL-CERT-URL` serves for a PayPal vector (the `secret` leaf, then every
/// `trust_chain_files` entry but the last) and the trust anchor (the last entry).
fn paypal_bundle_and_anchors(dir: &Path, v: &Value) -> (Vec<u8>, TrustAnchors) {
    let leaf = str_field(v, "secret")
        .strip_prefix("file:")
        .unwrap_or_else(|| panic!("{}: secret is `file:<pem>`", v["id"]));
    let chain: Vec<&str> = v["trust_chain_files"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: trust_chain_files is a list", v["id"]))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (anchor, intermediates) = chain
        .split_last()
        .unwrap_or_else(|| panic!("{}: trust_chain_files is not empty", v["id"]));
    let mut bundle = read_pem(dir, leaf);
    for file in intermediates {
        bundle.push(b'\n');
        bundle.extend(read_pem(dir, file));
    }
    let anchors = TrustAnchors::from_pem(&read_pem(dir, anchor)).expect("trust anchor PEM");
    (bundle, anchors)
}

async fn run_vector(dir: &Path, v: &Value) -> Result<(), SignatureError> {
    let headers = headers_of(v);
    let body = str_field(v, "body").as_bytes();
    match str_field(v, "provider") {
        "stripe" => {
            let tolerance = v["tolerance_s"].as_u64().unwrap_or(0);
            StripeVerifier::new(vec![Secret::new(str_field(v, "secret"))])
                .with_tolerance(tolerance)
                .verify(&headers, body, v["now"].as_i64().expect("stripe `now`"))
        }
        "square" => SquareVerifier::new(
            vec![Secret::new(str_field(v, "secret"))],
            str_field(v, "url"),
        )
        .verify(&headers, body),
        "paypal" => {
            let (bundle, anchors) = paypal_bundle_and_anchors(dir, v);
            verify_paypal_vector(v, bundle, anchors).await
        }
        other => panic!("{}: unknown provider {other}", v["id"]),
    }
}

/// PayPal vector `v` as delivered, through a verifier whose certificate URL serves `bundle` and
/// which trusts `anchors`.
async fn verify_paypal_vector(
    v: &Value,
    bundle: Vec<u8>,
    anchors: TrustAnchors,
) -> Result<(), SignatureError> {
    let cache =
        PaypalCertificateCache::new(Arc::new(StaticCertificateFetcher::new(bundle)), anchors);
    sandbox_verifier(str_field(v, "webhook_id"), Arc::new(cache))
        .verify(
            &headers_of(v),
            str_field(v, "body").as_bytes(),
            v["now"].as_i64().expect("paypal `now`"),
        )
        .await
}

#[tokio::test]
async fn every_signature_vector_gives_its_expected_result() {
    let Some(dir) = signatures_dir() else { return };
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for v in vectors(&dir) {
        let id = str_field(&v, "id").to_owned();
        *seen
            .entry(str_field(&v, "provider").to_owned())
            .or_default() += 1;
        let result = run_vector(&dir, &v).await;
        let reason_code = str_field(&v, "reason_code");
        match (str_field(&v, "expect"), &result) {
            ("valid", Ok(())) => {}
            ("invalid", Err(err)) => match expected_code(reason_code) {
                Some(code) if code == err.code() => {}
                Some(code) => failures.push(format!(
                    "{id}: rejected as {} ({err}), expected {code} (vector reason {reason_code})",
                    err.code()
                )),
                None => failures.push(format!(
                    "{id}: reason_code {reason_code} has no mapping; rejected as {}",
                    err.code()
                )),
            },
            (expect, _) => failures.push(format!("{id}: expected {expect}, got {result:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "vectors disagree:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        seen.get("stripe").copied(),
        Some(EXPECTED_STRIPE),
        "{seen:?}"
    );
    assert_eq!(
        seen.get("square").copied(),
        Some(EXPECTED_SQUARE),
        "{seen:?}"
    );
    assert_eq!(
        seen.get("paypal").copied(),
        Some(EXPECTED_PAYPAL),
        "{seen:?}"
    );
    assert_eq!(seen.values().sum::<usize>(), EXPECTED_VECTORS);
}

fn stripe_headers(value: &str) -> Headers {
    [("Stripe-Signature", value)].into_iter().collect()
}

#[test]
fn stripe_rotation_accepts_either_secret() {
    let old = Secret::new("whsec_old_secret");
    let new = Secret::new("whsec_new_secret");
    let body = br#"{"id":"evt_rotation"}"#;
    let t = 1_735_689_600;
    // During a roll Stripe sends one v1 per active secret.
    let signed_old = StripeVerifier::sign(&old, t, body);
    let signed_new = StripeVerifier::sign(&new, t, body);
    let v1_new = signed_new.split_once(",v1=").expect("v1 element").1;
    let both = stripe_headers(&format!("{signed_old},v1={v1_new}"));

    for secrets in [
        vec![old.clone()],
        vec![new.clone()],
        vec![old.clone(), new.clone()],
    ] {
        assert_eq!(StripeVerifier::new(secrets).verify(&both, body, t), Ok(()));
    }
    // A receiver holding both secrets accepts a header signed by only one of them.
    let both_secrets = StripeVerifier::new(vec![old.clone(), new.clone()]);
    assert_eq!(
        both_secrets.verify(&stripe_headers(&signed_old), body, t),
        Ok(())
    );
    assert_eq!(
        both_secrets.verify(&stripe_headers(&signed_new), body, t),
        Ok(())
    );
    // A secret that is in neither v1 does not.
    let other = StripeVerifier::new(vec![Secret::new("whsec_other")]);
    assert_eq!(
        other.verify(&both, body, t),
        Err(SignatureError::NoMatchingSignature)
    );
}

#[test]
fn stripe_tolerance_zero_disables_age_check() {
    let secret = Secret::new("whsec_test_secret");
    let body = br#"{"id":"evt_old"}"#;
    let now = 1_735_689_600;
    let header = stripe_headers(&StripeVerifier::sign(&secret, 12_345, body));

    let default = StripeVerifier::new(vec![secret.clone()]);
    assert_eq!(default.tolerance_secs(), STRIPE_DEFAULT_TOLERANCE_SECS);
    assert_eq!(
        default.verify(&header, body, now),
        Err(SignatureError::TimestampTooOld {
            timestamp: 12_345,
            now,
            tolerance_secs: STRIPE_DEFAULT_TOLERANCE_SECS
        })
    );
    let off = StripeVerifier::new(vec![secret]).with_tolerance(0);
    assert_eq!(off.verify(&header, body, now), Ok(()));
}

#[test]
fn stripe_age_equal_to_tolerance_passes_and_one_more_second_fails() {
    let secret = Secret::new("whsec_test_secret");
    let body = b"{}";
    let header = stripe_headers(&StripeVerifier::sign(&secret, 1_000, body));
    let verifier = StripeVerifier::new(vec![secret]).with_tolerance(10);
    assert_eq!(verifier.verify(&header, body, 1_010), Ok(()));
    assert_eq!(verifier.verify(&header, body, 990), Ok(()), "future passes");
    assert_eq!(
        verifier.verify(&header, body, 1_011).map_err(|e| e.code()),
        Err("timestamp_too_old")
    );
}

/// A verifier for the corpus's PayPal vectors, all delivered from the PayPal sandbox.
fn sandbox_verifier(webhook_id: &str, cache: Arc<PaypalCertificateCache>) -> PaypalVerifier {
    PaypalVerifier::new(webhook_id, cache).with_environment(PaypalEnvironment::Sandbox)
}

/// Counts fetches and serves one bundle (or fails).
struct CountingFetcher {
    bundle: Result<Vec<u8>, FetchError>,
    fetches: AtomicUsize,
}

impl CountingFetcher {
    fn new(bundle: Result<Vec<u8>, FetchError>) -> Arc<Self> {
        Arc::new(CountingFetcher {
            bundle,
            fetches: AtomicUsize::new(0),
        })
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CertificateFetcher for CountingFetcher {
    async fn fetch(&self, _url: &url::Url) -> Result<Vec<u8>, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.bundle.clone()
    }
}

fn with_cert_url(headers: &Headers, url: &str) -> Headers {
    headers
        .iter()
        .map(|(name, value)| {
            if name.eq_ignore_ascii_case("PAYPAL-CERT-URL") {
                (name, url)
            } else {
                (name, value)
            }
        })
        .collect()
}

/// `synthetic_paypal_leaf.pem`'s notAfter (2035-01-01T00:00:00Z).
const SYNTHETIC_LEAF_NOT_AFTER: i64 = 2_051_222_400;

#[tokio::test]
async fn paypal_certificate_is_cached_by_url_until_not_after() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-018");
    let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let fetcher = CountingFetcher::new(Ok(bundle));
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    // A tolerance reaching the certificate's notAfter, so the cache's own expiry is what shows.
    let verifier = sandbox_verifier(str_field(&v, "webhook_id"), Arc::clone(&cache))
        .with_tolerance(10 * 365 * 24 * 3600);
    let headers = headers_of(&v);
    let body = str_field(&v, "body").as_bytes();
    let now = v["now"].as_i64().expect("now");

    assert_eq!(verifier.verify(&headers, body, now).await, Ok(()));
    assert_eq!(verifier.verify(&headers, body, now).await, Ok(()));
    assert_eq!(
        fetcher.fetches(),
        1,
        "the second verification used the cache"
    );
    assert_eq!(cache.len(), 1);

    // Another verifier sharing the cache (another invocation) does not fetch either.
    let again = sandbox_verifier(str_field(&v, "webhook_id"), Arc::clone(&cache));
    assert_eq!(again.verify(&headers, body, now).await, Ok(()));
    assert_eq!(fetcher.fetches(), 1);

    // The key is the URL: another PayPal URL is fetched on its own.
    let other_url = with_cert_url(
        &headers,
        "https://api.paypal.com/v1/notifications/certs/CERT-other",
    );
    assert_eq!(verifier.verify(&other_url, body, now).await, Ok(()));
    assert_eq!(fetcher.fetches(), 2);
    assert_eq!(cache.len(), 2);

    // Still cached at notAfter itself; one second later it is fetched again (and, being the
    // same certificate, is now expired).
    assert_eq!(
        verifier
            .verify(&headers, body, SYNTHETIC_LEAF_NOT_AFTER)
            .await,
        Ok(())
    );
    assert_eq!(fetcher.fetches(), 2);
    assert_eq!(
        verifier
            .verify(&headers, body, SYNTHETIC_LEAF_NOT_AFTER + 1)
            .await,
        Err(SignatureError::CertExpired)
    );
    assert_eq!(fetcher.fetches(), 3);
}

#[tokio::test]
async fn paypal_refused_certificates_are_remembered_for_a_while() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-022");
    let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let fetcher = CountingFetcher::new(Ok(bundle));
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    let verifier = sandbox_verifier(str_field(&v, "webhook_id"), Arc::clone(&cache))
        .with_tolerance(u64::try_from(NEGATIVE_CACHE_SECS).unwrap() + 10);
    let headers = headers_of(&v);
    let body = str_field(&v, "body").as_bytes();
    let now = v["now"].as_i64().expect("now");
    for at in [now, now + NEGATIVE_CACHE_SECS - 1] {
        assert_eq!(
            verifier
                .verify(&headers, body, at)
                .await
                .map_err(|e| e.code()),
            Err("cert_untrusted")
        );
    }
    assert_eq!(fetcher.fetches(), 1, "the refusal was remembered");
    assert_eq!(cache.len(), 1);
    assert_eq!(
        verifier
            .verify(&headers, body, now + NEGATIVE_CACHE_SECS)
            .await
            .map_err(|e| e.code()),
        Err("cert_untrusted")
    );
    assert_eq!(fetcher.fetches(), 2, "asked again once the refusal expired");
}

#[tokio::test]
async fn paypal_certificate_url_answering_4xx_is_refused_not_retried_and_remembered() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-018");
    let (_, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let fetcher = CountingFetcher::new(Err(FetchError::Rejected("HTTP 404 Not Found".into())));
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    let verifier = sandbox_verifier(str_field(&v, "webhook_id"), cache);
    let headers = headers_of(&v);
    let body = str_field(&v, "body").as_bytes();
    let now = v["now"].as_i64().expect("now");
    for _ in 0..3 {
        let err = verifier.verify(&headers, body, now).await.unwrap_err();
        assert_eq!(err.code(), "cert_not_available");
        assert_eq!(err.http_status(), 401);
        assert!(!err.is_retryable());
    }
    assert_eq!(fetcher.fetches(), 1);
}

/// Serves `bundle` for the URLs whose path ends in `CERT-good` and answers 404 for every other
/// one; counts every fetch.
struct GoodOrNotFoundFetcher {
    bundle: Vec<u8>,
    fetches: AtomicUsize,
}

#[async_trait]
impl CertificateFetcher for GoodOrNotFoundFetcher {
    async fn fetch(&self, url: &url::Url) -> Result<Vec<u8>, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if url.path().ends_with("/CERT-good") {
            Ok(self.bundle.clone())
        } else {
            Err(FetchError::Rejected("HTTP 404 Not Found".into()))
        }
    }
}

#[tokio::test]
async fn paypal_a_full_certificate_cache_drops_expired_entries_then_the_one_ending_soonest() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-018");
    let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let fetcher = Arc::new(GoodOrNotFoundFetcher {
        bundle,
        fetches: AtomicUsize::new(0),
    });
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    let verifier =
        sandbox_verifier(str_field(&v, "webhook_id"), Arc::clone(&cache)).with_tolerance(3600);
    let headers = headers_of(&v);
    let body = str_field(&v, "body").as_bytes();
    let now = v["now"].as_i64().expect("now");
    let fetches = || fetcher.fetches.load(Ordering::SeqCst);
    let url = |name: &str| format!("https://api.paypal.com/v1/notifications/certs/CERT-{name}");
    let verify = |name: String, at: i64| {
        let headers = with_cert_url(&headers, &url(&name));
        let verifier = &verifier;
        async move {
            verifier
                .verify(&headers, body, at)
                .await
                .map_err(|e| e.code())
        }
    };
    assert!(cache.is_empty());

    // The verified certificate (valid until 2035), then 31 refusals, the one refused at
    // `now + i` remembered until `now + i + NEGATIVE_CACHE_SECS`: the cache is full.
    assert_eq!(verify("good".into(), now).await, Ok(()));
    assert!(!cache.is_empty());
    for i in 0..31 {
        assert_eq!(
            verify(format!("{i}"), now + i).await,
            Err("cert_not_available")
        );
    }
    assert_eq!(cache.len(), MAX_CACHED_CERTIFICATES);
    assert_eq!(fetches(), 32);

    // Each new URL makes room by dropping the entry that ends soonest: refusals 0 to 7, in
    // that order, never the certificate.
    let later = now + 40;
    for i in 0..8 {
        assert_eq!(
            verify(format!("new-{i}"), later).await,
            Err("cert_not_available")
        );
        assert_eq!(cache.len(), MAX_CACHED_CERTIFICATES);
    }
    assert_eq!(fetches(), 40);
    assert_eq!(verify("good".into(), later).await, Ok(()));
    for name in (8..31)
        .map(|i| i.to_string())
        .chain((0..8).map(|i| format!("new-{i}")))
    {
        assert_eq!(verify(name, later).await, Err("cert_not_available"));
    }
    assert_eq!(
        fetches(),
        40,
        "every entry but refusals 0 to 7 is still cached"
    );
    assert_eq!(verify("0".into(), later).await, Err("cert_not_available"));
    assert_eq!(fetches(), 41, "refusal 0 was dropped");

    // Refusal 8 made room for it. When refusals 9 to 20 have expired, a new URL sweeps out
    // those twelve and drops nothing live.
    let swept_at = now + 20 + NEGATIVE_CACHE_SECS;
    assert_eq!(
        verify("sweeper".into(), swept_at).await,
        Err("cert_not_available")
    );
    assert_eq!(cache.len(), MAX_CACHED_CERTIFICATES - 12 + 1);
    assert_eq!(fetches(), 42);
    assert_eq!(verify("good".into(), swept_at).await, Ok(()));
    assert_eq!(
        verify("21".into(), swept_at).await,
        Err("cert_not_available")
    );
    assert_eq!(fetches(), 42);
}

/// The certificate bundles a URL may serve are read up to 64 KiB: the synthetic leaf padded with
/// blank lines (text outside a PEM block is skipped) to exactly that size verifies, one byte
/// more is refused before it is parsed.
#[tokio::test]
async fn paypal_certificate_bundle_of_exactly_64_kib_is_read_and_one_byte_more_is_refused() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-018");
    let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let verify = |len: usize| {
        let mut padded = bundle.clone();
        padded.resize(len, b'\n');
        verify_paypal_vector(&v, padded, anchors.clone())
    };
    assert_eq!(verify(64 * 1024).await, Ok(()));
    assert_eq!(
        verify(64 * 1024 + 1).await,
        Err(SignatureError::CertUntrusted(
            "certificate bundle is larger than 65536 bytes".into()
        ))
    );
}

#[tokio::test]
async fn paypal_certificate_cache_is_keyed_by_the_normalised_url() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-018");
    let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let fetcher = CountingFetcher::new(Ok(bundle));
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    let verifier = sandbox_verifier(str_field(&v, "webhook_id"), Arc::clone(&cache));
    let headers = headers_of(&v);
    let body = str_field(&v, "body").as_bytes();
    let now = v["now"].as_i64().expect("now");
    // The signed string carries the header as sent, so each spelling below is a request of its
    // own; the certificate behind them is one, fetched once.
    for url in [
        "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://API-M.SANDBOX.PAYPAL.COM/v1/notifications/certs/CERT-1",
        "https://api-m.sandbox.paypal.com:443/v1/notifications/certs/CERT-1",
        "https://api-m.sandbox.paypal.com/v1/notifications/certs/x/../CERT-1",
    ] {
        assert_eq!(
            verifier
                .verify(&with_cert_url(&headers, url), body, now)
                .await,
            Ok(()),
            "{url}"
        );
    }
    assert_eq!(fetcher.fetches(), 1);
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn paypal_transmission_time_must_be_within_the_tolerance_either_way() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-018");
    let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let cache = Arc::new(PaypalCertificateCache::new(
        Arc::new(StaticCertificateFetcher::new(bundle)),
        anchors,
    ));
    let verifier = sandbox_verifier(str_field(&v, "webhook_id"), cache).with_tolerance(300);
    let headers = headers_of(&v);
    let body = str_field(&v, "body").as_bytes();
    // PAYPAL-TRANSMISSION-TIME is 2025-12-31T23:59:59Z.
    let sent = 1_767_225_599;
    for now in [sent - 300, sent, sent + 300] {
        assert_eq!(verifier.verify(&headers, body, now).await, Ok(()), "{now}");
    }
    for now in [sent - 301, sent + 301, sent + 30 * 86_400] {
        let err = verifier.verify(&headers, body, now).await.unwrap_err();
        assert_eq!(err.code(), "timestamp_out_of_tolerance", "{now}");
        assert_eq!(err.http_status(), 401);
    }
    let garbled = headers
        .iter()
        .map(|(name, value)| {
            let value = if name.eq_ignore_ascii_case("PAYPAL-TRANSMISSION-TIME") {
                "yesterday"
            } else {
                value
            };
            (name, value)
        })
        .collect::<Headers>();
    assert_eq!(
        verifier
            .verify(&garbled, body, sent)
            .await
            .map_err(|e| e.code()),
        Err("malformed_header")
    );
}

/// PayPal sends every delivery attempt, retries included, as a new transmission: the recorded
/// genuine deliveries show `PAYPAL-TRANSMISSION-ID` is a version-1 (time-based) UUID minted at
/// `PAYPAL-TRANSMISSION-TIME`, so a retry, sent later, carries a new id and a new time, signed
/// afresh. That is why the transmission-time tolerance never refuses a genuine retry, and why
/// the event id, not the transmission id, is what deduplicates retries.
#[test]
fn paypal_transmission_ids_are_minted_at_the_transmission_time() {
    let Some(dir) = signatures_dir() else { return };
    let mut checked = 0;
    for v in vectors(&dir) {
        if str_field(&v, "provider") != "paypal" || str_field(&v, "source").starts_with("synthetic")
        {
            continue;
        }
        let headers = headers_of(&v);
        let id = headers.get("PAYPAL-TRANSMISSION-ID").expect("id");
        let time = headers.get("PAYPAL-TRANSMISSION-TIME").expect("time");
        // Vectors that tamper with the id on purpose are not deliveries PayPal made.
        let Some(minted) = uuid_v1_unix_seconds(id) else {
            continue;
        };
        let sent =
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .expect("RFC 3339")
                .unix_timestamp();
        assert_eq!(
            minted, sent,
            "{}: id {id} minted at {minted}, sent at {sent}",
            v["id"]
        );
        checked += 1;
    }
    assert!(
        checked >= 4,
        "the real PayPal deliveries were checked ({checked})"
    );
}

/// Unix seconds of a version-1 UUID's timestamp (100 ns intervals since 1582-10-15).
fn uuid_v1_unix_seconds(id: &str) -> Option<i64> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.is_ascii() || &hex[12..13] != "1" {
        return None;
    }
    let time_low = u64::from_str_radix(&hex[0..8], 16).ok()?;
    let time_mid = u64::from_str_radix(&hex[8..12], 16).ok()?;
    let time_hi = u64::from_str_radix(&hex[13..16], 16).ok()?;
    let ticks = (time_hi << 48) | (time_mid << 32) | time_low;
    const GREGORIAN_TO_UNIX_TICKS: u64 = 0x01B2_1DD2_1381_4000;
    i64::try_from(ticks.checked_sub(GREGORIAN_TO_UNIX_TICKS)? / 10_000_000).ok()
}

#[tokio::test]
async fn paypal_cert_url_is_checked_before_any_fetch() {
    let Some(dir) = signatures_dir() else { return };
    for id in ["paypal-004", "paypal-005", "paypal-006"] {
        let v = vector(&dir, id);
        let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
        let fetcher = CountingFetcher::new(Ok(bundle));
        let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
        let result = sandbox_verifier(str_field(&v, "webhook_id"), cache)
            .verify(
                &headers_of(&v),
                str_field(&v, "body").as_bytes(),
                v["now"].as_i64().expect("now"),
            )
            .await;
        assert_eq!(
            result.map_err(|e| e.code()),
            Err("cert_url_not_allowed"),
            "{id}"
        );
        assert_eq!(fetcher.fetches(), 0, "{id}: nothing was fetched");
    }
}

#[tokio::test]
async fn paypal_fetch_failure_is_retryable() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-018");
    let (_, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let fetcher = CountingFetcher::new(Err(FetchError::Unavailable("connection reset".into())));
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    let err = sandbox_verifier(str_field(&v, "webhook_id"), cache)
        .verify(
            &headers_of(&v),
            str_field(&v, "body").as_bytes(),
            v["now"].as_i64().expect("now"),
        )
        .await
        .expect_err("no certificate, no verification");
    assert_eq!(err.code(), "cert_fetch_failed");
    assert!(err.is_retryable());
    assert_eq!(err.http_status(), 503);
    assert_eq!(fetcher.fetches(), 1);
}

#[tokio::test]
async fn paypal_unconfigured_webhook_id_fails_closed() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-018");
    let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let fetcher = CountingFetcher::new(Ok(bundle));
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    let result = sandbox_verifier("", cache)
        .verify(
            &headers_of(&v),
            str_field(&v, "body").as_bytes(),
            1_767_225_600,
        )
        .await;
    assert_eq!(result.map_err(|e| e.code()), Err("not_configured"));
    assert_eq!(fetcher.fetches(), 0);
}

#[tokio::test]
async fn paypal_sdk_era_certificates_chain_only_with_the_digicert_ev_root_added() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-001");
    let (bundle, _) = paypal_bundle_and_anchors(&dir, &v);
    let verify = |anchors: TrustAnchors| verify_paypal_vector(&v, bundle.clone(), anchors);
    // Mozilla's store has dropped DigiCert High Assurance EV Root CA, which the PayPal SDKs
    // bundle for these certificates.
    assert_eq!(
        verify(TrustAnchors::mozilla()).await.map_err(|e| e.code()),
        Err("cert_untrusted")
    );
    let extended = TrustAnchors::mozilla()
        .with_pem(&read_pem(&dir, "digicert_high_assurance_ev_root_ca.pem"))
        .expect("DigiCert root PEM");
    assert_eq!(extended.len(), TrustAnchors::mozilla().len() + 1);
    assert_eq!(verify(extended).await, Ok(()));
}

#[test]
fn cert_url_policy_cases() {
    let live = [
        "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
        "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
        "https://API.PAYPAL.COM/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:443/v1/notifications/certs/CERT-1",
    ];
    let sandbox_only = [
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://API.SANDBOX.PAYPAL.COM/v1/notifications/certs/CERT-1",
    ];
    for url in live {
        assert!(
            check_cert_url(url, PaypalEnvironment::Live).is_ok(),
            "{url} is allowed"
        );
        assert!(
            check_cert_url(url, PaypalEnvironment::Sandbox).is_ok(),
            "{url} is allowed"
        );
    }
    for url in sandbox_only {
        assert!(
            check_cert_url(url, PaypalEnvironment::Sandbox).is_ok(),
            "{url} (sandbox)"
        );
        assert_eq!(
            check_cert_url(url, PaypalEnvironment::Live).map_err(|e| e.code()),
            Err("cert_url_not_allowed"),
            "{url} is refused on a live stage"
        );
    }
    let rejected = [
        "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://evil.example.com/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://evilpaypal.com/cert.pem",
        "https://paypal.com/v1/notifications/certs/CERT-1",
        "https://www.paypal.com/v1/notifications/certs/CERT-1",
        "https://uploads.paypal.com/v1/notifications/certs/CERT-1",
        "https://paypal.com@evil.example/cert.pem",
        "https://user@api.paypal.com/v1/notifications/certs/CERT-1",
        "https://user:pw@api.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:80/v1/notifications/certs/CERT-1",
        "https://api.paypal.com/v1/notifications/certs/CERT-1?x=1",
        "https://api.paypal.com/v1/notifications/certs/CERT-1?",
        "https://api.paypal.com/v1/notifications/certs/CERT-1#frag",
        "https://api.paypal.com/v1/oauth2/token",
        "https://api.paypal.com/v1/notifications/",
        "https://api.paypal.com/v1/notifications/certs/../../oauth2/token",
        "https://api.paypal.com/cert.pem",
        "https://evil.example/api.paypal.com/cert.pem",
        "https://evil.example/?host=api.paypal.com",
        "https://.paypal.com/cert.pem",
        "https://api.paypal.com./v1/notifications/certs/CERT-1",
        "https://192.0.2.1/v1/notifications/certs/CERT-1",
        "ftp://api.paypal.com/v1/notifications/certs/CERT-1",
        "file:///etc/paypal.com",
        "api.paypal.com/v1/notifications/certs/CERT-1",
        "",
        "not a url",
    ];
    for url in rejected {
        for environment in [PaypalEnvironment::Live, PaypalEnvironment::Sandbox] {
            assert_eq!(
                check_cert_url(url, environment).map_err(|e| e.code()),
                Err("cert_url_not_allowed"),
                "{url} is rejected ({environment})"
            );
        }
    }
}

#[test]
fn trust_anchors_mozilla_is_not_empty() {
    let anchors = TrustAnchors::mozilla();
    assert!(!anchors.is_empty());
    assert!(anchors.len() > 100, "Mozilla ships well over 100 roots");
}

#[test]
fn error_codes_are_stable_and_only_fetch_failures_retry() {
    let all = [
        (SignatureError::MissingHeader("h"), "missing_header"),
        (
            SignatureError::MalformedHeader("m".into()),
            "malformed_header",
        ),
        (SignatureError::NoV1Signature, "no_v1_signature"),
        (SignatureError::NoMatchingSignature, "no_matching_signature"),
        (
            SignatureError::TimestampTooOld {
                timestamp: 0,
                now: 1,
                tolerance_secs: 0,
            },
            "timestamp_too_old",
        ),
        (
            SignatureError::CertUrlNotAllowed("u".into()),
            "cert_url_not_allowed",
        ),
        (
            SignatureError::CertFetchFailed("f".into()),
            "cert_fetch_failed",
        ),
        (
            SignatureError::CertNotAvailable("n".into()),
            "cert_not_available",
        ),
        (
            SignatureError::TimestampOutOfTolerance {
                timestamp: 0,
                now: 1,
                tolerance_secs: 0,
            },
            "timestamp_out_of_tolerance",
        ),
        (SignatureError::CertExpired, "cert_expired"),
        (SignatureError::CertUntrusted("t".into()), "cert_untrusted"),
        (
            SignatureError::CertNameMismatch("n".into()),
            "cert_name_mismatch",
        ),
        (
            SignatureError::UnsupportedAlgorithm("a".into()),
            "unsupported_algorithm",
        ),
        (SignatureError::EmptyBody, "empty_body"),
        (SignatureError::NotConfigured("c"), "not_configured"),
    ];
    for (err, code) in all {
        assert_eq!(err.code(), code);
        assert_eq!(err.is_retryable(), code == "cert_fetch_failed", "{code}");
    }
}

#[test]
fn paypal_verification_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let cache = Arc::new(PaypalCertificateCache::new(
        Arc::new(StaticCertificateFetcher::new(Vec::new())),
        TrustAnchors::mozilla(),
    ));
    let verifier = sandbox_verifier("WH-1", cache);
    let headers = Headers::new();
    let future = verifier.verify(&headers, b"{}", 0);
    assert_send(&future);
}
