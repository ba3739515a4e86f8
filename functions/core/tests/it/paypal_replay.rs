//! PayPal authenticity end to end through the validator, built from the signature conformance
//! vector `paypal-018` (a genuine-shaped `PAYMENT.CAPTURE.COMPLETED` signed by a throw-away
//! PayPal CA): a body forged to keep the CRC32 of a captured delivery is refused, and so is the
//! captured delivery replayed after the transmission-time tolerance.
//!
//! PayPal signs `transmission_id|transmission_time|webhook_id|crc32(body)`. CRC32 is linear
//! over GF(2), so anyone holding one delivery can write another body with the same CRC32; these
//! tests do exactly that and check that the signature layer alone would accept it, so the
//! refusal shown is the validator's replay check, not luck.

use std::path::Path;
use std::sync::Arc;

use payhook_core::ports::{FixedClock, MemoryQueue, MemorySecretStore, ProviderSecrets};
use payhook_core::signature::{
    PaypalCertificateCache, PaypalEnvironment, PaypalVerifier, StaticCertificateFetcher,
    TrustAnchors,
};
use payhook_core::status::{MemoryStatusStore, StatusStore};
use payhook_core::validator::{Accepted, Validator, ValidatorConfig, WebhookRequest};
use payhook_core::{Headers, Provider};
use payhook_testkit::conformance::{conformance_dir, read_jsonl};
use serde_json::Value;

/// The vector: its headers, body, certificate bundle and trust anchor, and its "now".
struct Delivery {
    headers: Headers,
    body: Vec<u8>,
    webhook_id: String,
    bundle: Vec<u8>,
    anchors: TrustAnchors,
    now_ms: i64,
}

fn delivery() -> Option<Delivery> {
    let dir = conformance_dir()?.join("signatures");
    let v = read_jsonl(&dir.join("vectors.jsonl"))
        .expect("vectors.jsonl")
        .into_iter()
        .find(|v| v["id"] == "paypal-018")
        .expect("paypal-018 is in the corpus");
    let pem = |file: &str| std::fs::read(Path::new(&dir).join(file)).expect("PEM");
    let text = |field: &str| v[field].as_str().expect(field).to_owned();
    let chain: Vec<&str> = v["trust_chain_files"]
        .as_array()
        .expect("chain")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (anchor, intermediates) = chain.split_last().expect("anchor");
    let mut bundle = pem(text("secret").strip_prefix("file:").expect("file:"));
    for file in intermediates {
        bundle.extend(pem(file));
    }
    Some(Delivery {
        headers: v["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(n, val)| (n.as_str(), val.as_str().unwrap_or_default()))
            .collect(),
        body: text("body").into_bytes(),
        webhook_id: text("webhook_id"),
        bundle,
        anchors: TrustAnchors::from_pem(&pem(anchor)).expect("anchor"),
        now_ms: v["now"].as_i64().expect("now") * 1000,
    })
}

impl Delivery {
    fn certificates(&self) -> Arc<PaypalCertificateCache> {
        Arc::new(PaypalCertificateCache::new(
            Arc::new(StaticCertificateFetcher::new(self.bundle.clone())),
            self.anchors.clone(),
        ))
    }

    fn validator(&self, store: Arc<MemoryStatusStore>, now_ms: i64) -> Validator {
        let secrets = MemorySecretStore::new().with(
            Provider::Paypal,
            ProviderSecrets {
                webhook_id: Some(self.webhook_id.clone()),
                ..Default::default()
            },
        );
        let config = ValidatorConfig {
            paypal_environment: PaypalEnvironment::Sandbox,
            ..ValidatorConfig::default()
        };
        Validator::new(
            Arc::new(secrets),
            store,
            Arc::new(MemoryQueue::new()),
            self.certificates(),
            Arc::new(FixedClock(now_ms)),
            config,
        )
    }
}

async fn send(
    v: &Validator,
    headers: &Headers,
    body: &[u8],
) -> Result<Accepted, payhook_core::validator::ValidatorError> {
    v.handle(WebhookRequest {
        provider: "paypal",
        headers,
        body,
        trace_header: None,
    })
    .await
}

/// `genuine` with its event id and amount changed, and a filler field whose 64 characters
/// (each `A` or `C`, one bit apart) are solved for so the CRC32 equals `genuine`'s.
fn forge_same_crc32(genuine: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(genuine).expect("UTF-8");
    let mut event: Value = serde_json::from_str(text).expect("JSON");
    event["id"] = "WH-FORGED-0000001".into();
    event["resource"]["id"] = "FORGED0CAPTURE01".into();
    event["resource"]["amount"]["value"] = "99999.00".into();
    event["resource"]["amount"]["currency_code"] = "USD".into();
    const FILLER: usize = 64;
    event["zz"] = "A".repeat(FILLER).into();
    let base = serde_json::to_vec(&event).expect("JSON");
    let start = base
        .windows(FILLER)
        .position(|w| w.iter().all(|b| *b == b'A'))
        .expect("filler");

    // For messages of one length, crc(a ^ b) = crc(a) ^ crc(b) ^ crc(0…0): each filler
    // position flipped from A to C adds a fixed delta; find the set of flips whose deltas sum
    // to the difference between the two CRCs (Gaussian elimination over GF(2)).
    let crc = |bytes: &[u8]| crc32fast::hash(bytes);
    let base_crc = crc(&base);
    let target = base_crc ^ crc(genuine);
    let deltas: Vec<u32> = (0..FILLER)
        .map(|i| {
            let mut flipped = base.clone();
            flipped[start + i] = b'C';
            crc(&flipped) ^ base_crc
        })
        .collect();
    let mut basis: Vec<(u32, u64)> = Vec::new(); // (vector, which positions make it)
    for (i, delta) in deltas.iter().enumerate() {
        let mut v = (*delta, 1u64 << i);
        for (b, mask) in &basis {
            if v.0 ^ b < v.0 {
                v = (v.0 ^ b, v.1 ^ mask);
            }
        }
        if v.0 != 0 {
            basis.push(v);
            basis.sort_by_key(|(vector, _)| std::cmp::Reverse(*vector));
        }
    }
    let mut rest = (target, 0u64);
    for (b, mask) in &basis {
        if rest.0 ^ b < rest.0 {
            rest = (rest.0 ^ b, rest.1 ^ mask);
        }
    }
    assert_eq!(rest.0, 0, "the filler spans every CRC difference");
    let mut forged = base;
    for i in 0..FILLER {
        if rest.1 & (1 << i) != 0 {
            forged[start + i] = b'C';
        }
    }
    assert_eq!(crc(&forged), crc(genuine));
    assert_ne!(forged, genuine);
    forged
}

#[tokio::test]
async fn body_forged_to_keep_a_captured_deliverys_crc32_is_refused_as_a_replayed_transmission() {
    let Some(d) = delivery() else { return };
    let forged = forge_same_crc32(&d.body);

    // The signature alone cannot tell them apart: that is the attack.
    let verifier = PaypalVerifier::new(d.webhook_id.as_str(), d.certificates())
        .with_environment(PaypalEnvironment::Sandbox);
    assert_eq!(
        verifier.verify(&d.headers, &forged, d.now_ms / 1000).await,
        Ok(())
    );

    let store = Arc::new(MemoryStatusStore::new());
    let v = d.validator(store.clone(), d.now_ms);
    let genuine = send(&v, &d.headers, &d.body).await.unwrap();
    assert_eq!(genuine.response().0, 202);

    // The forgery a few seconds later, with the captured headers.
    let later = d.validator(store.clone(), d.now_ms + 5_000);
    let err = send(&later, &d.headers, &forged).await.unwrap_err();
    assert_eq!(
        (err.http_status(), err.code()),
        (401, "transmission_replayed")
    );
    assert!(err.is_signature_failure());
    assert!(
        store
            .get("paypal:WH-FORGED-0000001")
            .await
            .unwrap()
            .is_none(),
        "nothing of the forgery was recorded"
    );

    // The same transmission with the same body (a proxy's retry) is the same delivery.
    let again = send(&later, &d.headers, &d.body).await.unwrap();
    assert_eq!(again.response().0, 200);
    assert_eq!(again.response().1["status"], "duplicate");
}

#[tokio::test]
async fn captured_delivery_or_its_forgery_after_the_tolerance_is_refused_as_stale() {
    let Some(d) = delivery() else { return };
    let tolerance_ms =
        i64::try_from(ValidatorConfig::default().paypal_tolerance_secs).unwrap() * 1000;
    // The vector's transmission time is one second before its "now".
    let sent_ms = d.now_ms - 1000;
    let store = Arc::new(MemoryStatusStore::new());
    for body in [d.body.clone(), forge_same_crc32(&d.body)] {
        let v = d.validator(store.clone(), sent_ms + tolerance_ms + 1000);
        let err = send(&v, &d.headers, &body).await.unwrap_err();
        assert_eq!(
            (err.http_status(), err.code()),
            (401, "timestamp_out_of_tolerance")
        );
    }
    // Days later, with the transmission record long gone, the same holds.
    let v = d.validator(
        Arc::new(MemoryStatusStore::new()),
        d.now_ms + 40 * 86_400_000,
    );
    let err = send(&v, &d.headers, &d.body).await.unwrap_err();
    assert_eq!(err.code(), "timestamp_out_of_tolerance");
}

#[tokio::test]
async fn a_live_stage_refuses_certificates_from_sandbox_hosts() {
    let Some(d) = delivery() else { return };
    let secrets = MemorySecretStore::new().with(
        Provider::Paypal,
        ProviderSecrets {
            webhook_id: Some(d.webhook_id.clone()),
            ..Default::default()
        },
    );
    let live = Validator::new(
        Arc::new(secrets),
        Arc::new(MemoryStatusStore::new()),
        Arc::new(MemoryQueue::new()),
        d.certificates(),
        Arc::new(FixedClock(d.now_ms)),
        ValidatorConfig::default(),
    );
    let err = send(&live, &d.headers, &d.body).await.unwrap_err();
    assert_eq!(
        (err.http_status(), err.code()),
        (401, "cert_url_not_allowed")
    );
}
