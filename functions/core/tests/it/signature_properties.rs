//! Property tests for the signature verifiers: arbitrary headers and bodies never panic and
//! always come back as a typed error with a known code; signing and verifying round-trip; any
//! change to a signed body is rejected.
//!
//! Run with `cargo test -p payhook-core --test it signature_properties::`.

use std::sync::Arc;

use payhook_core::signature::{
    PaypalCertificateCache, PaypalEnvironment, PaypalVerifier, SignatureError, SquareVerifier,
    StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::{Headers, Secret};
use payhook_testkit::conformance::{conformance_dir, read_jsonl};
use proptest::prelude::*;
use serde_json::Value;

const KNOWN_CODES: [&str; 15] = [
    "missing_header",
    "timestamp_out_of_tolerance",
    "cert_not_available",
    "malformed_header",
    "no_v1_signature",
    "no_matching_signature",
    "timestamp_too_old",
    "cert_url_not_allowed",
    "cert_fetch_failed",
    "cert_expired",
    "cert_untrusted",
    "cert_name_mismatch",
    "unsupported_algorithm",
    "empty_body",
    "not_configured",
];

fn assert_rejected_with_known_code(result: Result<(), SignatureError>) {
    match result {
        Err(err) => assert!(
            KNOWN_CODES.contains(&err.code()),
            "unknown code {}",
            err.code()
        ),
        Ok(()) => panic!("arbitrary input verified"),
    }
}

/// Header names: the ones the verifiers read (in any case) and arbitrary ones.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Stripe-Signature".to_owned()),
        Just("stripe-signature".to_owned()),
        Just("x-square-hmacsha256-signature".to_owned()),
        Just("x-square-signature".to_owned()),
        Just("PAYPAL-TRANSMISSION-ID".to_owned()),
        Just("paypal-transmission-time".to_owned()),
        Just("PAYPAL-CERT-URL".to_owned()),
        Just("PAYPAL-AUTH-ALGO".to_owned()),
        Just("PAYPAL-TRANSMISSION-SIG".to_owned()),
        "\\PC{0,24}",
    ]
}

/// Header values: Stripe-like element lists, base64-like strings and arbitrary text.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[tv01 ,=a-f0-9+-]{0,160}",
        "(t=-?[0-9]{0,20},)?(v[01]=[0-9a-f]{0,70},?){0,4}",
        "[A-Za-z0-9+/=]{0,90}",
        "\\PC{0,120}",
    ]
}

fn arbitrary_headers() -> impl Strategy<Value = Headers> {
    prop::collection::vec((header_name(), header_value()), 0..8)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

fn non_empty_body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..512)
}

proptest! {
    #[test]
    fn stripe_never_panics_on_arbitrary_requests(
        headers in arbitrary_headers(),
        body in body(),
        secrets in prop::collection::vec("\\PC{0,40}", 0..3),
        now in any::<i64>(),
        tolerance in prop_oneof![Just(0u64), Just(300u64), any::<u64>()],
    ) {
        let verifier = StripeVerifier::new(secrets.into_iter().map(Secret::new).collect())
            .with_tolerance(tolerance);
        assert_rejected_with_known_code(verifier.verify(&headers, &body, now));
    }

    #[test]
    fn square_never_panics_on_arbitrary_requests(
        headers in arbitrary_headers(),
        body in body(),
        keys in prop::collection::vec("\\PC{0,40}", 0..3),
        url in "\\PC{0,60}",
    ) {
        let verifier = SquareVerifier::new(keys.into_iter().map(Secret::new).collect(), url);
        assert_rejected_with_known_code(verifier.verify(&headers, &body));
    }

    #[test]
    fn stripe_signatures_round_trip_and_any_body_change_is_rejected(
        secret in "\\PC{1,40}",
        timestamp in any::<i64>(),
        body in non_empty_body(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let secret = Secret::new(secret);
        let headers: Headers =
            [("Stripe-Signature", StripeVerifier::sign(&secret, timestamp, &body))]
                .into_iter()
                .collect();
        let verifier = StripeVerifier::new(vec![secret]).with_tolerance(0);
        prop_assert_eq!(verifier.verify(&headers, &body, timestamp), Ok(()));

        let mut tampered = body.clone();
        tampered[flip.index(body.len())] ^= 1 << bit;
        prop_assert_eq!(
            verifier.verify(&headers, &tampered, timestamp),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn square_signatures_round_trip_and_any_body_change_is_rejected(
        key in "\\PC{1,40}",
        url in "https://[a-z]{1,12}\\.example/[a-z/]{0,20}",
        body in non_empty_body(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let key = Secret::new(key);
        let headers: Headers = [(
            "x-square-hmacsha256-signature",
            SquareVerifier::sign(&key, &url, &body),
        )]
        .into_iter()
        .collect();
        let verifier = SquareVerifier::new(vec![key], url.as_str());
        prop_assert_eq!(verifier.verify(&headers, &body), Ok(()));

        let mut tampered = body.clone();
        tampered[flip.index(body.len())] ^= 1 << bit;
        prop_assert_eq!(
            verifier.verify(&headers, &tampered),
            Err(SignatureError::NoMatchingSignature)
        );
    }
}

/// The synthetic PayPal vector `paypal-018`: a real certificate chain and a valid signature,
/// so arbitrary requests get past the URL and algorithm checks into certificate and signature
/// handling.
struct PaypalFixture {
    verifier: PaypalVerifier,
    headers: Headers,
    body: Vec<u8>,
    now: i64,
}

fn paypal_fixture() -> Option<PaypalFixture> {
    let dir = conformance_dir()?.join("signatures");
    let vectors = read_jsonl(&dir.join("vectors.jsonl")).expect("vectors.jsonl");
    let v = vectors
        .into_iter()
        .find(|v| v["id"] == "paypal-018")
        .expect("paypal-018 is in the corpus");
    let pem = |file: &str| std::fs::read(dir.join(file)).expect("PEM fixture");
    let leaf = v["secret"]
        .as_str()
        .and_then(|s| s.strip_prefix("file:"))
        .expect("secret is file:<pem>");
    let anchor = v["trust_chain_files"][0].as_str().expect("anchor file");
    let cache = PaypalCertificateCache::new(
        Arc::new(StaticCertificateFetcher::new(pem(leaf))),
        TrustAnchors::from_pem(&pem(anchor)).expect("anchor PEM"),
    );
    let headers = v["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(n, val)| (n.as_str(), val.as_str().unwrap_or_default()))
        .collect();
    Some(PaypalFixture {
        verifier: PaypalVerifier::new(
            v["webhook_id"].as_str().expect("webhook_id"),
            Arc::new(cache),
        )
        .with_environment(PaypalEnvironment::Sandbox),
        headers,
        body: field_bytes(&v, "body"),
        now: v["now"].as_i64().expect("now"),
    })
}

fn field_bytes(v: &Value, field: &str) -> Vec<u8> {
    v[field].as_str().expect("string field").as_bytes().to_vec()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// PayPal headers that pass the URL policy and (mostly) the algorithm allow-list, with
/// arbitrary ids, times and signatures.
fn paypal_headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    (
        "\\PC{0,40}",
        "\\PC{0,30}",
        prop_oneof![
            Just("https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1".to_owned()),
            Just("https://api.paypal.com/v1/notifications/certs/CERT-2".to_owned()),
            "\\PC{0,60}",
        ],
        prop_oneof![
            Just("SHA256withRSA".to_owned()),
            Just("SHA384withRSA".to_owned()),
            Just("SHA512withRSA".to_owned()),
            "\\PC{0,16}",
        ],
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(bytes)
            }),
            "\\PC{0,80}",
        ],
    )
        .prop_map(|(id, time, url, algo, sig)| {
            vec![
                ("PAYPAL-TRANSMISSION-ID", id),
                ("PAYPAL-TRANSMISSION-TIME", time),
                ("PAYPAL-CERT-URL", url),
                ("PAYPAL-AUTH-ALGO", algo),
                ("PAYPAL-TRANSMISSION-SIG", sig),
            ]
        })
}

#[test]
fn paypal_never_panics_on_arbitrary_requests() {
    let Some(fixture) = paypal_fixture() else {
        return;
    };
    let rt = runtime();
    proptest!(|(
        mut pairs in paypal_headers(),
        extra in prop::collection::vec((header_name(), header_value()), 0..3),
        drop in prop::option::of(0usize..5),
        body in body(),
        now in prop_oneof![Just(fixture.now), any::<i64>()],
    )| {
        if let Some(i) = drop {
            pairs.remove(i);
        }
        let headers: Headers = pairs
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .chain(extra)
            .collect();
        assert_rejected_with_known_code(
            rt.block_on(fixture.verifier.verify(&headers, &body, fixture.now)),
        );
        assert_rejected_with_known_code(rt.block_on(fixture.verifier.verify(&headers, &body, now)));
    });
}

#[test]
fn paypal_any_body_change_is_rejected() {
    let Some(fixture) = paypal_fixture() else {
        return;
    };
    let rt = runtime();
    assert_eq!(
        rt.block_on(
            fixture
                .verifier
                .verify(&fixture.headers, &fixture.body, fixture.now)
        ),
        Ok(()),
        "the fixture itself verifies"
    );
    proptest!(|(flip in any::<prop::sample::Index>(), bit in 0u8..8)| {
        let mut tampered = fixture.body.clone();
        tampered[flip.index(fixture.body.len())] ^= 1 << bit;
        prop_assert_eq!(
            rt.block_on(fixture.verifier.verify(&fixture.headers, &tampered, fixture.now)),
            Err(SignatureError::NoMatchingSignature)
        );
    });
}
