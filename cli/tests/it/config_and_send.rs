//! The local stack's configuration (`payhook config init`, `PAYHOOK_…` overrides), the demo
//! PayPal CA, the payload builders and `payhook send`, checked against payhook-core's own
//! normaliser and verifiers and against a real HTTP server on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use payhook::CliError;
use payhook::commands::config::{self as config_command, ConfigArgs};
use payhook::commands::send::{self, SendArgs};
use payhook_core::normalise::{Normalised, normalise};
use payhook_core::signature::{
    PaypalCertificateCache, PaypalEnvironment, PaypalVerifier, SignatureError, SquareVerifier,
    StaticCertificateFetcher, StripeVerifier, TrustAnchors,
};
use payhook_core::{EventType, Headers, Provider};
use payhook_devkit::DevkitError;
use payhook_devkit::democa::{DEMO_LEAF_COMMON_NAME, DemoCa};
use payhook_devkit::payloads::{self, PayloadSpec};
use payhook_local::LocalError;
use payhook_local::config::{self, CONFIG_FILE_NAME, CONFIG_KEYS, Config};
use serde_json::Value;

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    crate::support::scratch_in("config_and_send", name)
}

/// One demo CA for the whole binary: RSA key generation is the slow part of `config init`.
fn shared_ca() -> DemoCa {
    static CA: OnceLock<DemoCa> = OnceLock::new();
    CA.get_or_init(|| DemoCa::generate(payhook_devkit::unix_now()).unwrap())
        .clone()
}

/// `payhook config init` into `dir`, reusing the shared demo CA.
fn init(dir: &Path, port: u16, force: bool) -> Result<Config, LocalError> {
    config::init_with_ca(dir, port, force, || Ok(shared_ca()))
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn headers_of(pairs: &[(String, String)]) -> Headers {
    pairs.iter().cloned().collect()
}

// --- configuration -------------------------------------------------------------------------

#[test]
fn init_writes_a_config_that_loads_back_identically() {
    let dir = scratch("round-trip");
    let written = config::init(&dir, 9001, false, NOW).unwrap();
    let loaded = Config::load_with_env(Some(&dir.join(CONFIG_FILE_NAME)), no_env).unwrap();
    assert_eq!(loaded, written);
    assert_eq!(
        loaded.square.notification_url,
        format!(
            "http://127.0.0.1:9001/webhooks/square?key={}",
            loaded.api.square_key.expose()
        ),
        "Square signs the URL it was given, key included"
    );
    assert_eq!(
        loaded.registered_url(Provider::Square),
        loaded.square.notification_url
    );
    let keys: std::collections::HashSet<&str> = Provider::ALL
        .iter()
        .map(|&p| loaded.api_key(p).expose())
        .collect();
    assert_eq!(
        keys.len(),
        3,
        "one key per provider, each with its own quota"
    );
    assert!(
        loaded.stripe.signing_secrets[0]
            .expose()
            .starts_with("whsec_")
    );
    assert_eq!(loaded.stripe.signing_secrets[0].expose().len(), 6 + 64);
    assert!(loaded.api.key.expose().starts_with("phk_"));
    assert_eq!(loaded.api.daily_quota, 10_000);
    assert_eq!(loaded.queues.visibility_timeout_seconds, 5);
    assert_eq!(loaded.queues.max_receive_count, 5);
    assert_eq!(loaded.aws.stage, "local");
    // Files are absolute (anchored at the config's folder) after loading.
    assert_eq!(
        loaded.paypal.cert_file.as_deref(),
        Some(dir.join("paypal-demo-chain.pem").as_path())
    );
}

#[test]
fn init_generates_different_secrets_each_time() {
    let a = init(&scratch("fresh-a"), 8787, false).unwrap();
    let b = init(&scratch("fresh-b"), 8787, false).unwrap();
    assert_ne!(a.api.key, b.api.key);
    assert_ne!(a.stripe.signing_secrets, b.stripe.signing_secrets);
    assert_ne!(a.square.signature_key, b.square.signature_key);
    assert_ne!(a.paypal.webhook_id, b.paypal.webhook_id);
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let dir = scratch("no-overwrite");
    let first = init(&dir, 8787, false).unwrap();
    let before = std::fs::read(dir.join(CONFIG_FILE_NAME)).unwrap();
    let err = init(&dir, 8787, false).unwrap_err();
    assert!(matches!(err, LocalError::Config(_)), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(std::fs::read(dir.join(CONFIG_FILE_NAME)).unwrap(), before);

    let second = init(&dir, 8787, true).unwrap();
    assert_ne!(second.api.key, first.api.key);
}

#[test]
fn init_refuses_when_only_a_demo_pem_exists() {
    let dir = scratch("pem-exists");
    std::fs::write(dir.join("paypal-demo-key.pem"), b"keep me").unwrap();
    assert!(init(&dir, 8787, false).is_err());
    assert_eq!(
        std::fs::read(dir.join("paypal-demo-key.pem")).unwrap(),
        b"keep me"
    );
}

#[tokio::test]
async fn config_init_command_writes_then_refuses() {
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        config: config_command::ConfigCommand,
    }
    let dir = scratch("init-command");
    let parse = |extra: &[&str]| {
        let mut argv = vec!["config", "init", "--dir", dir.to_str().unwrap()];
        argv.extend_from_slice(extra);
        ConfigArgs {
            command: Cli::parse_from(argv).config,
        }
    };
    assert_eq!(
        config_command::run(parse(&["--port", "9555"]))
            .await
            .unwrap(),
        0
    );
    let loaded = Config::load_with_env(Some(&dir.join(CONFIG_FILE_NAME)), no_env).unwrap();
    assert_eq!(
        loaded.webhook_url(Provider::Stripe),
        "http://127.0.0.1:9555/webhooks/stripe"
    );
    assert!(matches!(
        config_command::run(parse(&[])).await,
        Err(CliError::Usage(_))
    ));
    assert_eq!(config_command::run(parse(&["--force"])).await.unwrap(), 0);
    let show = Cli::parse_from([
        "config",
        "show",
        "--config",
        dir.join(CONFIG_FILE_NAME).to_str().unwrap(),
    ]);
    let show = ConfigArgs {
        command: show.config,
    };
    assert_eq!(config_command::run(show).await.unwrap(), 0);
}

#[cfg(unix)]
#[test]
fn secrets_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch("private");
    init(&dir, 8787, false).unwrap();
    for name in [CONFIG_FILE_NAME, "paypal-demo-key.pem"] {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is readable by others: {mode:o}");
    }
}

#[test]
fn generated_file_documents_every_key_and_its_env_var() {
    let dir = scratch("documented");
    init(&dir, 8787, false).unwrap();
    let text = std::fs::read_to_string(dir.join(CONFIG_FILE_NAME)).unwrap();
    for key in &CONFIG_KEYS {
        assert!(
            text.contains(&key.env_var()),
            "{} undocumented",
            key.env_var()
        );
        assert!(
            text.contains(&format!("\n{} = ", key.key))
                || text.contains(&format!("\n# {} = ", key.key)),
            "{} missing",
            key.key
        );
    }
    assert!(text.contains("comma-separated"));
}

#[test]
fn environment_overrides_every_kind_of_key() {
    let dir = scratch("env");
    init(&dir, 8787, false).unwrap();
    std::fs::write(dir.join("other-ca.pem"), b"not used here").unwrap();
    let env: HashMap<&str, &str> = [
        ("PAYHOOK_API_KEY", "phk_from_env"),
        ("PAYHOOK_API_DAILY_QUOTA", "3"),
        ("PAYHOOK_STRIPE_SIGNING_SECRETS", "whsec_new, whsec_old"),
        ("PAYHOOK_STRIPE_TOLERANCE_SECONDS", "0"),
        ("PAYHOOK_STRIPE_ALLOW_NO_TOLERANCE", "true"),
        ("PAYHOOK_STRIPE_REQUIRE_LIVEMODE", "true"),
        ("PAYHOOK_PAYPAL_ENVIRONMENT", "sandbox"),
        ("PAYHOOK_API_IDEMPOTENCY_RETENTION_SECONDS", "864000"),
        (
            "PAYHOOK_SQUARE_NOTIFICATION_URL",
            "https://example.com/prod/webhooks/square",
        ),
        ("PAYHOOK_PAYPAL_TRUST_ANCHOR_FILE", "other-ca.pem"),
        ("PAYHOOK_PROCESSING_TIER_HIGH_MIN", "2500.5"),
        ("PAYHOOK_QUEUES_MAX_RECEIVE_COUNT", "2"),
        ("PAYHOOK_AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
    ]
    .into_iter()
    .collect();
    let loaded = Config::load_with_env(Some(&dir.join(CONFIG_FILE_NAME)), |name| {
        env.get(name).map(|v| (*v).to_owned())
    })
    .unwrap();
    assert_eq!(loaded.api.key.expose(), "phk_from_env");
    assert_eq!(loaded.api.daily_quota, 3);
    let secrets: Vec<&str> = loaded
        .stripe
        .signing_secrets
        .iter()
        .map(|s| s.expose())
        .collect();
    assert_eq!(secrets, ["whsec_new", "whsec_old"]);
    let validator = loaded.validator_config();
    assert_eq!(validator.stripe_tolerance_secs, 0);
    assert!(validator.stripe_allow_no_tolerance && validator.stripe_require_livemode);
    assert_eq!(validator.paypal_environment, PaypalEnvironment::Sandbox);
    assert_eq!(validator.idempotency_retention_secs, 864_000);
    assert_eq!(
        loaded.square.notification_url,
        "https://example.com/prod/webhooks/square"
    );
    // Relative paths from the environment are anchored at the config's folder too.
    assert_eq!(
        loaded.paypal.trust_anchor_file.as_deref(),
        Some(dir.join("other-ca.pem").as_path())
    );
    assert_eq!(loaded.tier_thresholds().high_min, 2500.5);
    assert_eq!(loaded.tier_thresholds().medium_min, 100.0);
    assert_eq!(
        loaded.fifo_queue_config(Provider::Paypal).max_receive_count,
        Some(2)
    );
    assert_eq!(
        loaded.aws.endpoint_url.as_deref(),
        Some("http://127.0.0.1:5000")
    );
}

#[test]
fn config_path_comes_from_payhook_config_when_not_given() {
    let dir = scratch("config-env");
    let written = init(&dir, 8787, false).unwrap();
    let path = dir.join(CONFIG_FILE_NAME);
    let loaded = Config::load_with_env(None, |name| {
        (name == config::CONFIG_PATH_ENV).then(|| path.display().to_string())
    })
    .unwrap();
    assert_eq!(loaded, written);
}

#[test]
fn missing_config_file_says_to_run_config_init() {
    let dir = scratch("missing");
    let err = Config::load_with_env(Some(&dir.join(CONFIG_FILE_NAME)), no_env).unwrap_err();
    assert!(matches!(err, LocalError::Config(_)));
    assert!(err.to_string().contains("payhook config init"), "{err}");
}

#[test]
fn invalid_values_are_all_reported_at_once() {
    let text = r#"
[api]
key = ""
[stripe]
signing_secrets = []
[square]
signature_key = "k"
notification_url = "not a url"
[paypal]
webhook_id = "WH1"
cert_url = "http://evil.example/cert.pem"
cert_file = "nowhere.pem"
[queues]
max_receive_count = 0
"#;
    let err = Config::from_toml_with_env(text, Path::new("x/payhook.toml"), no_env)
        .unwrap_err()
        .to_string();
    for expected in [
        "api.key",
        "stripe.signing_secrets",
        "square.notification_url",
        "paypal.cert_url",
        "paypal.cert_file",
        "queues.max_receive_count",
    ] {
        assert!(err.contains(expected), "{expected} not reported in: {err}");
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    let base = r#"
[api]
key = "phk_x"
[stripe]
signing_secrets = ["whsec_x"]
[square]
signature_key = "k"
[paypal]
webhook_id = "WH1"
"#;
    let path = Path::new("payhook.toml");
    assert!(Config::from_toml_with_env(base, path, no_env).is_ok());
    let typo = format!("{base}[queues]\nmax_recieve_count = 3\n");
    let err = Config::from_toml_with_env(&typo, path, no_env).unwrap_err();
    assert!(err.to_string().contains("max_recieve_count"), "{err}");
    let wrong = base.replace("[\"whsec_x\"]", "\"whsec_x\"");
    assert!(Config::from_toml_with_env(&wrong, path, no_env).is_err());
    let bad_env = Config::from_toml_with_env(base, path, |name| {
        (name == "PAYHOOK_API_DAILY_QUOTA").then(|| "lots".to_owned())
    })
    .unwrap_err();
    assert!(bad_env.to_string().contains("PAYHOOK_API_DAILY_QUOTA"));
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let text = r#"
[api]
key = "phk_x"
[stripe]
signing_secrets = ["whsec_x"]
[square]
signature_key = "k"
[paypal]
webhook_id = "WH1"
"#;
    let config = Config::from_toml_with_env(text, Path::new("payhook.toml"), no_env).unwrap();
    assert_eq!(config.api.daily_quota, config::DEFAULT_DAILY_QUOTA);
    assert_eq!(config.stripe.tolerance_seconds, 300);
    assert_eq!(
        config.square.notification_url,
        "http://127.0.0.1:8787/webhooks/square"
    );
    assert_eq!(config.paypal.cert_url, config::DEMO_PAYPAL_CERT_URL);
    assert_eq!(config.paypal.trust_anchor_file, None);
    assert_eq!(
        config.paypal_trust_anchors().unwrap().len(),
        TrustAnchors::mozilla().len()
    );
    assert_eq!(config.aws.region, "us-east-1");
    assert!(matches!(
        config.paypal_certificate_bundle(),
        Err(LocalError::Config(_))
    ));
}

#[tokio::test]
async fn provider_secrets_feed_the_secret_store() {
    use payhook_core::ports::SecretStore as _;
    let config = init(&scratch("secrets"), 8787, false).unwrap();
    let store = config.secret_store();
    let stripe = store.provider_secrets(Provider::Stripe).await.unwrap();
    assert_eq!(stripe.signing_secrets, config.stripe.signing_secrets);
    let square = store.provider_secrets(Provider::Square).await.unwrap();
    assert_eq!(
        square.signing_secrets,
        vec![config.square.signature_key.clone()]
    );
    assert_eq!(
        square.notification_url.as_deref(),
        Some(config.square.notification_url.as_str())
    );
    let paypal = store.provider_secrets(Provider::Paypal).await.unwrap();
    assert_eq!(
        paypal.webhook_id.as_deref(),
        Some(config.paypal.webhook_id.as_str())
    );
}

// --- the demo PayPal CA --------------------------------------------------------------------

fn paypal_sign_with(key_pem: &str, webhook_id: &str, body: &[u8]) -> Headers {
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject as _;
    let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let (id, time) = (
        "8e0a5e50-e6e5-11f0-9a5c-9f3c3ba1c2d4",
        "2026-01-01T00:00:00Z",
    );
    let message = format!("{id}|{time}|{webhook_id}|{}", crc32fast::hash(body));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .unwrap();
    [
        ("PAYPAL-TRANSMISSION-ID", id.to_owned()),
        ("PAYPAL-TRANSMISSION-TIME", time.to_owned()),
        ("PAYPAL-CERT-URL", config::DEMO_PAYPAL_CERT_URL.to_owned()),
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA".to_owned()),
        (
            "PAYPAL-TRANSMISSION-SIG",
            base64::engine::general_purpose::STANDARD.encode(signature),
        ),
    ]
    .into_iter()
    .collect()
}

/// A verifier of the demo CA's signatures whose transmission-time tolerance spans the
/// certificate's whole validity, so what these tests vary is the certificate's own checks.
fn paypal_verifier(ca: &DemoCa, anchors: TrustAnchors, webhook_id: &str) -> PaypalVerifier {
    let fetcher = Arc::new(StaticCertificateFetcher::new(ca.chain_pem.as_bytes()));
    PaypalVerifier::new(
        webhook_id,
        Arc::new(PaypalCertificateCache::new(fetcher, anchors)),
    )
    .with_tolerance(400 * 86_400)
}

#[tokio::test]
async fn demo_ca_signed_webhook_verifies_with_the_paypal_verifier() {
    let ca = DemoCa::generate(NOW).unwrap();
    assert!(!format!("{ca:?}").contains(&ca.leaf_key_pem));
    let body = br#"{"id":"WH-1","event_type":"PAYMENT.CAPTURE.COMPLETED"}"#;
    let headers = paypal_sign_with(&ca.leaf_key_pem, "WH-DEMO", body);
    let anchors = TrustAnchors::from_pem(ca.ca_pem.as_bytes()).unwrap();

    let verifier = paypal_verifier(&ca, anchors.clone(), "WH-DEMO");
    assert_eq!(verifier.verify(&headers, body, NOW).await, Ok(()));
    // Valid from a day before "now" to a year after.
    assert_eq!(verifier.verify(&headers, body, NOW - 86_000).await, Ok(()));
    let later = paypal_verifier(&ca, anchors.clone(), "WH-DEMO");
    assert_eq!(
        later.verify(&headers, body, NOW + 366 * 86_400).await,
        Err(SignatureError::CertExpired)
    );
    // The signature covers the body and the webhook id.
    assert_eq!(
        verifier.verify(&headers, b"{\"id\":\"WH-2\"}", NOW).await,
        Err(SignatureError::NoMatchingSignature)
    );
    let other_id = paypal_verifier(&ca, anchors, "WH-OTHER");
    assert_eq!(
        other_id.verify(&headers, body, NOW).await,
        Err(SignatureError::NoMatchingSignature)
    );
    // The demo CA is not trusted by default, and another demo CA does not vouch for it.
    let mozilla = paypal_verifier(&ca, TrustAnchors::mozilla(), "WH-DEMO");
    assert!(matches!(
        mozilla.verify(&headers, body, NOW).await,
        Err(SignatureError::CertUntrusted(_))
    ));
    let stranger = DemoCa::generate(NOW).unwrap();
    let foreign = paypal_verifier(
        &ca,
        TrustAnchors::from_pem(stranger.ca_pem.as_bytes()).unwrap(),
        "WH-DEMO",
    );
    assert!(matches!(
        foreign.verify(&headers, body, NOW).await,
        Err(SignatureError::CertUntrusted(_))
    ));
}

#[test]
fn demo_certificates_say_they_are_demo_only() {
    use x509_parser::prelude::*;
    let ca = DemoCa::generate(NOW).unwrap();
    for (pem, cn) in [
        (&ca.chain_pem, DEMO_LEAF_COMMON_NAME),
        (&ca.ca_pem, "payhook local demo CA"),
    ] {
        let (_, pem) = parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let subject = cert.subject().to_string();
        assert!(subject.contains(&format!("CN={cn}")), "{subject}");
        assert!(subject.contains("O=payhook LOCAL DEMO ONLY"), "{subject}");
        let rsa = cert.public_key().parsed().unwrap();
        assert!(
            matches!(rsa, x509_parser::public_key::PublicKey::RSA(ref k) if k.key_size() == 2048)
        );
        assert_eq!(cert.validity().not_before.timestamp(), NOW - 86_400);
    }
}

// --- payloads ------------------------------------------------------------------------------

/// Every buildable type and what it must normalise to (`None`: acknowledged and ignored).
fn expectations() -> Vec<(Provider, &'static str, Option<EventType>)> {
    use EventType::*;
    vec![
        (
            Provider::Stripe,
            "payment_intent.succeeded",
            Some(PaymentSucceeded),
        ),
        (
            Provider::Stripe,
            "payment_intent.payment_failed",
            Some(PaymentFailed),
        ),
        (
            Provider::Stripe,
            "payment_intent.processing",
            Some(PaymentPending),
        ),
        (
            Provider::Stripe,
            "payment_intent.canceled",
            Some(PaymentCanceled),
        ),
        (Provider::Stripe, "charge.refunded", Some(RefundSucceeded)),
        (
            Provider::Stripe,
            "charge.dispute.created",
            Some(DisputeOpened),
        ),
        (
            Provider::Stripe,
            "charge.dispute.closed",
            Some(DisputeClosed),
        ),
        (Provider::Stripe, "customer.created", None),
        (
            Provider::Paypal,
            "PAYMENT.CAPTURE.COMPLETED",
            Some(PaymentSucceeded),
        ),
        (
            Provider::Paypal,
            "PAYMENT.CAPTURE.DENIED",
            Some(PaymentFailed),
        ),
        (
            Provider::Paypal,
            "PAYMENT.CAPTURE.PENDING",
            Some(PaymentPending),
        ),
        (
            Provider::Paypal,
            "PAYMENT.CAPTURE.REFUNDED",
            Some(RefundSucceeded),
        ),
        (
            Provider::Paypal,
            "CUSTOMER.DISPUTE.CREATED",
            Some(DisputeOpened),
        ),
        (
            Provider::Paypal,
            "CUSTOMER.DISPUTE.RESOLVED",
            Some(DisputeClosed),
        ),
        (Provider::Paypal, "CHECKOUT.ORDER.APPROVED", None),
        (Provider::Square, "payment.created", Some(PaymentPending)),
        (Provider::Square, "payment.updated", Some(PaymentSucceeded)),
        (Provider::Square, "refund.created", Some(RefundPending)),
        (Provider::Square, "refund.updated", Some(RefundSucceeded)),
        (Provider::Square, "dispute.created", Some(DisputeOpened)),
        (
            Provider::Square,
            "dispute.state.updated",
            Some(DisputeClosed),
        ),
        (Provider::Square, "order.created", None),
    ]
}

#[test]
fn expectations_cover_every_buildable_type() {
    for provider in Provider::ALL {
        let listed: Vec<&str> = expectations()
            .into_iter()
            .filter(|(p, _, _)| *p == provider)
            .map(|(_, t, _)| t)
            .collect();
        assert_eq!(listed, payloads::event_types(provider));
        assert_eq!(
            payloads::event_types(provider).last().copied(),
            Some(payloads::unsupported_event_type(provider))
        );
    }
}

#[test]
fn every_built_payload_normalises_to_its_event_payment_and_amount() {
    for (provider, event_type, expected) in expectations() {
        for payment_id in [None, Some("PAYHOOK-PAY-0001")] {
            let mut spec = PayloadSpec::new(provider)
                .event_type(event_type)
                .amount("25.00", "usd")
                .at(NOW);
            spec.payment_id = payment_id.map(str::to_owned);
            let payload = payloads::build(&spec).unwrap();
            let case = format!("{provider} {event_type} {payment_id:?}");
            if let Some(id) = payment_id {
                assert_eq!(payload.payment_id, id, "{case}");
            }
            match (normalise(provider, &payload.body).unwrap(), expected) {
                (Normalised::Event(event), Some(expected)) => {
                    assert_eq!(event.event_type, expected, "{case}");
                    assert_eq!(event.provider_event_type, event_type, "{case}");
                    assert_eq!(event.payment_id, payload.payment_id, "{case}");
                    assert_eq!(event.amount_minor, 2500, "{case}");
                    assert_eq!(event.amount, 25.0, "{case}");
                    assert_eq!(event.currency, "USD", "{case}");
                    assert_eq!(event.webhook_id, payload.webhook_id(), "{case}");
                    assert_eq!(event.occurred_at, "2026-01-01T00:00:00.000Z", "{case}");
                }
                (Normalised::Ignored { webhook_id, .. }, None) => {
                    assert_eq!(webhook_id, payload.webhook_id(), "{case}");
                }
                (other, expected) => panic!("{case}: {other:?}, expected {expected:?}"),
            }
        }
    }
}

#[test]
fn amounts_convert_exactly_with_each_providers_exponent() {
    let cases = [
        (Provider::Stripe, "1500", "JPY", 1500),
        (Provider::Stripe, "12.34", "KWD", 12_340),
        (Provider::Stripe, "9900", "ISK", 990_000),
        (Provider::Paypal, "1500", "JPY", 1500),
        (Provider::Paypal, "600.99", "MXN", 60_099),
        (Provider::Paypal, "0.05", "USD", 5),
        (Provider::Square, "9900", "ISK", 9900),
        (Provider::Square, "1.005", "BHD", 1005),
    ];
    for (provider, amount, currency, minor) in cases {
        let spec = PayloadSpec::new(provider).amount(amount, currency);
        let payload = payloads::build(&spec).unwrap();
        assert_eq!(
            payload.amount_minor, minor,
            "{provider} {amount} {currency}"
        );
        let event = normalise(provider, &payload.body).unwrap();
        let event = event.event().unwrap();
        assert_eq!(event.amount_minor, minor, "{provider} {amount} {currency}");
        assert_eq!(event.currency, currency);
    }
    // Stripe's three-decimal and PayPal's JPY refuse what cannot be expressed.
    for (provider, amount, currency) in [
        (Provider::Stripe, "1.5", "JPY"),
        (Provider::Paypal, "2.515", "USD"),
        (Provider::Square, "-1", "USD"),
        (Provider::Stripe, "1e3", "USD"),
        (Provider::Stripe, "10", "XYZ"),
    ] {
        let spec = PayloadSpec::new(provider).amount(amount, currency);
        assert!(
            matches!(payloads::build(&spec), Err(DevkitError::Invalid(_))),
            "{provider} {amount} {currency}"
        );
    }
}

#[test]
fn event_ids_are_unique_and_in_the_providers_format() {
    for provider in Provider::ALL {
        let ids: std::collections::HashSet<String> = (0..200)
            .map(|_| {
                payloads::build(&PayloadSpec::new(provider))
                    .unwrap()
                    .event_id
            })
            .collect();
        assert_eq!(ids.len(), 200, "{provider}");
        let id = ids.iter().next().unwrap();
        match provider {
            Provider::Stripe => assert!(id.starts_with("evt_") && id.len() == 28, "{id}"),
            Provider::Paypal => assert!(id.starts_with("WH-") && id.len() == 38, "{id}"),
            Provider::Square => assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4),
        }
    }
}

#[test]
fn square_status_override_makes_a_failed_payment() {
    let spec = PayloadSpec::new(Provider::Square)
        .event_type("payment.updated")
        .status("FAILED");
    let payload = payloads::build(&spec).unwrap();
    let normalised = normalise(Provider::Square, &payload.body).unwrap();
    let event = normalised.event().unwrap();
    assert_eq!(event.event_type, EventType::PaymentFailed);
    assert_eq!(event.failure_code.as_deref(), Some("CARD_DECLINED"));
    let stripe = PayloadSpec::new(Provider::Stripe).status("FAILED");
    assert!(matches!(
        payloads::build(&stripe),
        Err(DevkitError::Invalid(_))
    ));
}

#[test]
fn envelopes_have_the_providers_shape() {
    let body = |provider, event_type: &str| -> Value {
        let spec = PayloadSpec::new(provider).event_type(event_type);
        serde_json::from_slice(&payloads::build(&spec).unwrap().body).unwrap()
    };
    let stripe = body(Provider::Stripe, "charge.refunded");
    assert_eq!(stripe["object"], "event");
    assert_eq!(stripe["data"]["object"]["object"], "charge");
    assert_eq!(stripe["data"]["previous_attributes"]["amount_refunded"], 0);
    assert_eq!(stripe["livemode"], false);
    let paypal = body(Provider::Paypal, "PAYMENT.CAPTURE.REFUNDED");
    assert_eq!(paypal["resource_type"], "refund");
    assert_eq!(paypal["event_version"], "1.0");
    let up = paypal["resource"]["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "up")
        .unwrap();
    assert!(
        up["href"]
            .as_str()
            .unwrap()
            .contains("/v2/payments/captures/")
    );
    let square = body(Provider::Square, "refund.updated");
    assert_eq!(square["data"]["type"], "refund");
    assert_eq!(
        square["data"]["id"],
        square["data"]["object"]["refund"]["id"]
    );
    assert!(square["merchant_id"].is_string());
}

// --- signing -------------------------------------------------------------------------------

async fn verify(config: &Config, provider: Provider, headers: &Headers, body: &[u8], now: i64) {
    let result = match provider {
        Provider::Stripe => StripeVerifier::new(config.stripe.signing_secrets.clone())
            .with_tolerance(config.stripe.tolerance_seconds)
            .verify(headers, body, now),
        Provider::Square => SquareVerifier::new(
            vec![config.square.signature_key.clone()],
            config.square.notification_url.clone(),
        )
        .verify(headers, body),
        Provider::Paypal => {
            PaypalVerifier::new(
                config.paypal.webhook_id.clone(),
                config.paypal_certificate_cache().unwrap(),
            )
            .verify(headers, body, now)
            .await
        }
    };
    assert_eq!(result, Ok(()), "{provider}");
}

#[tokio::test]
async fn every_signed_payload_verifies_with_the_matching_verifier() {
    let now = payhook_devkit::unix_now();
    let config = init(&scratch("signed"), 8787, false).unwrap();
    let signer = config.signer().unwrap();
    for (provider, event_type, _) in expectations() {
        let payload =
            payloads::build(&PayloadSpec::new(provider).event_type(event_type).at(now)).unwrap();
        let headers = headers_of(&signer.sign(provider, &payload.body, now).unwrap());
        verify(&config, provider, &headers, &payload.body, now).await;
        // A signer made again from the configuration signs the same way.
        let headers = headers_of(
            &config
                .signer()
                .unwrap()
                .sign(provider, &payload.body, now)
                .unwrap(),
        );
        verify(&config, provider, &headers, &payload.body, now).await;
    }
}

#[test]
fn signing_headers_have_the_providers_names_and_shapes() {
    let now = NOW;
    let config = init(&scratch("header-shapes"), 8787, false).unwrap();
    let signer = config.signer().unwrap();
    let names = |provider| -> Vec<(String, String)> { signer.sign(provider, b"{}", now).unwrap() };
    let stripe = names(Provider::Stripe);
    assert_eq!(stripe[0].0, "Stripe-Signature");
    assert!(stripe[0].1.starts_with(&format!("t={now},v1=")));
    assert_eq!(
        names(Provider::Square)[0].0,
        "x-square-hmacsha256-signature"
    );
    let paypal: HashMap<String, String> = names(Provider::Paypal).into_iter().collect();
    assert_eq!(paypal["PAYPAL-AUTH-ALGO"], "SHA256withRSA");
    assert_eq!(paypal["PAYPAL-CERT-URL"], config.paypal.cert_url);
    assert_eq!(paypal["PAYPAL-TRANSMISSION-TIME"], "2026-01-01T00:00:00Z");
    assert!(uuid::Uuid::parse_str(&paypal["PAYPAL-TRANSMISSION-ID"]).is_ok());
    assert_ne!(
        names(Provider::Paypal)[0].1,
        paypal["PAYPAL-TRANSMISSION-ID"],
        "each delivery has its own transmission id"
    );
}

#[test]
fn paypal_signing_without_a_key_is_a_usage_error() {
    let mut config = init(&scratch("no-key"), 8787, false).unwrap();
    config.paypal.signing_key_file = None;
    let signer = config.signer().unwrap();
    assert!(signer.sign(Provider::Stripe, b"{}", NOW).is_ok());
    assert!(matches!(
        signer.sign(Provider::Paypal, b"{}", NOW),
        Err(DevkitError::Invalid(_))
    ));
}

// --- payhook send against a loopback server ------------------------------------------------

#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    query: Option<String>,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// A tiny HTTP server on 127.0.0.1:0 that records every request and answers `status`;
/// also counts the TCP connections it accepted.
async fn start_server(status: u16) -> (SocketAddr, Arc<Mutex<Vec<Recorded>>>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let server_log = Arc::clone(&log);
    let accepted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::Relaxed);
            let log = Arc::clone(&server_log);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let log = Arc::clone(&log);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        log.lock().unwrap().push(Recorded {
                            path: parts.uri.path().to_owned(),
                            query: parts.uri.query().map(str::to_owned),
                            headers: parts.headers,
                            body: body.to_vec(),
                        });
                        let answer =
                            format!(r#"{{"status":"queued","n":{}}}"#, log.lock().unwrap().len());
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(answer)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, log, connections)
}

fn send_args(argv: &[&str]) -> SendArgs {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        send: SendArgs,
    }
    let mut full = vec!["send"];
    full.extend_from_slice(argv);
    Cli::parse_from(full).send
}

fn lines(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn to_headers(map: &http::HeaderMap) -> Headers {
    map.iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn send_posts_signed_payloads_to_the_local_stack_url() {
    let (addr, log, _) = start_server(202).await;
    let dir = scratch("send");
    let config = init(&dir, addr.port(), false).unwrap();
    let config_path = dir.join(CONFIG_FILE_NAME);
    for provider in Provider::ALL {
        let args = send_args(&[
            provider.as_str(),
            "--config",
            config_path.to_str().unwrap(),
            "--count",
            "3",
            "--payment-id",
            "PAYHOOK-PAY-0042",
            "--amount",
            "1234.50",
        ]);
        let mut out = Vec::new();
        assert_eq!(send::run_with_output(args, &mut out).await.unwrap(), 0);
        let printed = lines(&out);
        assert_eq!(printed.len(), 3);
        for line in &printed {
            assert_eq!(line["status"], 202);
            assert_eq!(line["response"]["status"], "queued");
            assert_eq!(line["provider"], provider.as_str());
            assert_eq!(line["payment_id"], "PAYHOOK-PAY-0042");
            assert_eq!(line["amount_minor"], 123_450);
        }
        let ids: std::collections::HashSet<&str> = printed
            .iter()
            .map(|l| l["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 3, "each send is a new event");

        let recorded: Vec<Recorded> = std::mem::take(&mut *log.lock().unwrap());
        assert_eq!(recorded.len(), 3);
        for request in recorded {
            assert_eq!(request.path, format!("/webhooks/{provider}"));
            let key = config.api_key(provider).expose();
            assert_eq!(
                request.query,
                Some(format!("key={key}")),
                "the key rides in the URL"
            );
            assert!(!request.headers.contains_key("x-api-key"));
            assert_eq!(request.headers["content-type"], "application/json");
            let headers = to_headers(&request.headers);
            verify(
                &config,
                provider,
                &headers,
                &request.body,
                payhook_devkit::unix_now(),
            )
            .await;
            let event = normalise(provider, &request.body).unwrap();
            assert_eq!(event.event().unwrap().payment_id, "PAYHOOK-PAY-0042");
        }
    }
}

#[tokio::test]
async fn send_reports_non_2xx_with_exit_1_and_honours_to_and_api_key() {
    let (addr, log, _) = start_server(503).await;
    let dir = scratch("send-503");
    init(&dir, 8787, false).unwrap();
    let to = format!("http://{addr}/prod/webhooks/stripe");
    let args = send_args(&[
        "stripe",
        "--config",
        dir.join(CONFIG_FILE_NAME).to_str().unwrap(),
        "--to",
        &to,
        "--api-key",
        "phk_override",
        "--key-in-header",
        "--event-type",
        "charge.dispute.created",
    ]);
    let mut out = Vec::new();
    assert_eq!(send::run_with_output(args, &mut out).await.unwrap(), 1);
    assert_eq!(lines(&out)[0]["status"], 503);
    let recorded = log.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, "/prod/webhooks/stripe");
    assert_eq!(recorded[0].headers["x-api-key"], "phk_override");
    assert_eq!(
        recorded[0].query, None,
        "with --key-in-header the URL carries no key"
    );
}

#[tokio::test]
async fn send_without_a_listener_fails_and_bad_arguments_are_usage_errors() {
    // Bind then drop: the port is very likely closed for the moment of the test.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = scratch("send-errors");
    init(&dir, closed.port(), false).unwrap();
    let config_path = dir.join(CONFIG_FILE_NAME);
    let config_arg = config_path.to_str().unwrap();

    let refused = send::run_with_output(
        send_args(&["stripe", "--config", config_arg]),
        &mut Vec::new(),
    )
    .await;
    assert!(matches!(refused, Err(CliError::Failed(_))), "{refused:?}");

    for bad in [
        vec![
            "stripe",
            "--config",
            config_arg,
            "--event-type",
            "invoice.paid",
        ],
        vec!["paypal", "--config", config_arg, "--amount", "1.234"],
        vec![
            "square",
            "--config",
            config_arg,
            "--to",
            "ftp://example.com/x",
        ],
        vec!["stripe", "--config", "/nonexistent/payhook.toml"],
    ] {
        let result = send::run_with_output(send_args(&bad), &mut Vec::new()).await;
        assert!(
            matches!(result, Err(CliError::Usage(_))),
            "{bad:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn sender_reuses_connections_for_many_requests() {
    let (addr, log, connections) = start_server(200).await;
    let config = init(&scratch("sender"), addr.port(), false).unwrap();
    let sender = config.sender().unwrap();
    let url = config.webhook_url(Provider::Square);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let sender = sender.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let payload = payloads::build(&PayloadSpec::new(Provider::Square)).unwrap();
                let (status, _) = sender
                    .send(&url, Provider::Square, payload.body)
                    .await
                    .unwrap();
                assert_eq!(status, 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(log.lock().unwrap().len(), 200);
    // Keep-alive: a handful of connections for 200 requests, not one each.
    let opened = connections.load(Ordering::Relaxed);
    assert!(opened <= 50, "{opened} connections for 200 requests");
    // A raw post with a tampered signature goes out as given.
    let (status, body) = sender
        .post(
            &url,
            &[("x-square-hmacsha256-signature".into(), "AAAA".into())],
            "{}",
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("queued"));
    let last = log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.headers["x-square-hmacsha256-signature"], "AAAA");
}
