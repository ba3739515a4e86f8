//! Every vector of the shared signature corpus (`../shared/conformance/signatures/`) through the
//! verifiers, plus the behaviours the corpus does not pin down on its own: secret rotation,
//! the tolerance switch, the PayPal certificate cache and the certificate URL policy.
//!
//! Run with `cargo test -p payhook-core --test signature_conformance`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use payhook_core::conformance::{conformance_dir, read_jsonl};
use payhook_core::signature::{
    CertificateFetcher, PaypalCertificateCache, PaypalVerifier, STRIPE_DEFAULT_TOLERANCE_SECS,
    SignatureError, SquareVerifier, StaticCertificateFetcher, StripeVerifier, TrustAnchors,
    check_cert_url,
};
use payhook_core::{Headers, Secret};
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
            let cache = PaypalCertificateCache::new(
                Arc::new(StaticCertificateFetcher::new(bundle)),
                anchors,
            );
            PaypalVerifier::new(str_field(v, "webhook_id"), Arc::new(cache))
                .verify(&headers, body, v["now"].as_i64().expect("paypal `now`"))
                .await
        }
        other => panic!("{}: unknown provider {other}", v["id"]),
    }
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

/// Counts fetches and serves one bundle (or fails).
struct CountingFetcher {
    bundle: Result<Vec<u8>, String>,
    fetches: AtomicUsize,
}

impl CountingFetcher {
    fn new(bundle: Result<Vec<u8>, String>) -> Arc<Self> {
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
    async fn fetch(&self, _url: &url::Url) -> Result<Vec<u8>, String> {
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
    let verifier = PaypalVerifier::new(str_field(&v, "webhook_id"), Arc::clone(&cache));
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
    let again = PaypalVerifier::new(str_field(&v, "webhook_id"), Arc::clone(&cache));
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
async fn paypal_rejected_certificates_are_not_cached() {
    let Some(dir) = signatures_dir() else { return };
    let v = vector(&dir, "paypal-022");
    let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
    let fetcher = CountingFetcher::new(Ok(bundle));
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    let verifier = PaypalVerifier::new(str_field(&v, "webhook_id"), Arc::clone(&cache));
    let headers = headers_of(&v);
    let body = str_field(&v, "body").as_bytes();
    let now = v["now"].as_i64().expect("now");
    for _ in 0..2 {
        assert_eq!(
            verifier
                .verify(&headers, body, now)
                .await
                .map_err(|e| e.code()),
            Err("cert_untrusted")
        );
    }
    assert_eq!(fetcher.fetches(), 2);
    assert!(cache.is_empty());
}

#[tokio::test]
async fn paypal_cert_url_is_checked_before_any_fetch() {
    let Some(dir) = signatures_dir() else { return };
    for id in ["paypal-004", "paypal-005", "paypal-006"] {
        let v = vector(&dir, id);
        let (bundle, anchors) = paypal_bundle_and_anchors(&dir, &v);
        let fetcher = CountingFetcher::new(Ok(bundle));
        let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
        let result = PaypalVerifier::new(str_field(&v, "webhook_id"), cache)
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
    let fetcher = CountingFetcher::new(Err("connection reset".into()));
    let cache = Arc::new(PaypalCertificateCache::new(fetcher.clone(), anchors));
    let err = PaypalVerifier::new(str_field(&v, "webhook_id"), cache)
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
    let result = PaypalVerifier::new("", cache)
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
    let verify = |anchors: TrustAnchors| {
        let cache = PaypalCertificateCache::new(
            Arc::new(StaticCertificateFetcher::new(bundle.clone())),
            anchors,
        );
        let verifier = PaypalVerifier::new(str_field(&v, "webhook_id"), Arc::new(cache));
        let headers = headers_of(&v);
        let body = str_field(&v, "body").as_bytes().to_vec();
        let now = v["now"].as_i64().expect("now");
        async move { verifier.verify(&headers, &body, now).await }
    };
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
    let allowed = [
        "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://paypal.com/cert.pem",
        "https://API.SANDBOX.PAYPAL.COM/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:443/v1/notifications/certs/CERT-1",
    ];
    for url in allowed {
        assert!(check_cert_url(url).is_ok(), "{url} is allowed");
    }
    let rejected = [
        "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        "https://evil.example.com/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://evilpaypal.com/cert.pem",
        "https://paypal.com@evil.example/cert.pem",
        "https://evil.example/api.paypal.com/cert.pem",
        "https://evil.example/?host=api.paypal.com",
        "https://paypal.com.evil.example/",
        "https://.paypal.com/cert.pem",
        "https://api.paypal.com./cert.pem",
        "https://192.0.2.1/cert.pem",
        "ftp://api.paypal.com/cert.pem",
        "file:///etc/paypal.com",
        "api.paypal.com/v1/notifications/certs/CERT-1",
        "",
        "not a url",
    ];
    for url in rejected {
        assert_eq!(
            check_cert_url(url).map_err(|e| e.code()),
            Err("cert_url_not_allowed"),
            "{url} is rejected"
        );
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
    let verifier = PaypalVerifier::new("WH-1", cache);
    let headers = Headers::new();
    let future = verifier.verify(&headers, b"{}", 0);
    assert_send(&future);
}
