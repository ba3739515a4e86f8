//! Nothing secret is ever written: a webhook carrying an e-mail address and a card number, with
//! its signature header, goes through the whole pipeline (and a forged copy is rejected), and
//! none of those values, nor any configured secret, appears in a log line, an EMF document or
//! an X-Ray segment.

use payhook_core::Provider;
use payhook_devkit::payloads::PayloadSpec;
use serde_json::json;

use crate::support::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_signature_card_number_or_email_reaches_logs_metrics_or_traces() {
    let h = Harness::start("redaction", |_| {}).await;
    let p = h.payload(PayloadSpec::new(Provider::Stripe).amount("19.99", "USD"));
    let mut body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    body["data"]["object"]["receipt_email"] = json!("jane.doe@example.com");
    body["data"]["object"]["payment_method_details"] =
        json!({"card": {"number": "4242424242424242", "cvc": "123"}});
    body["data"]["object"]["description"] =
        json!("card 4242 4242 4242 4242 for jane.doe@example.com");
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = h
        .sender
        .signer()
        .sign(Provider::Stripe, &bytes, payhook_devkit::unix_now())
        .unwrap();
    let signature = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("stripe-signature"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let url = h.url(Provider::Stripe);
    let (status, _) = h.sender.post(&url, &headers, bytes.clone()).await.unwrap();
    assert_eq!(status, 202);
    let mut forged = bytes.clone();
    forged.push(b' ');
    let (status, _) = h.sender.post(&url, &headers, forged).await.unwrap();
    assert_eq!(status, 401);
    h.idle().await;
    h.stack.shutdown().await;

    let config = h.stack.config();
    let v1 = signature.split("v1=").nth(1).unwrap().to_owned();
    let mut forbidden = vec![
        signature.clone(),
        v1,
        "4242424242424242".to_owned(),
        "4242 4242 4242 4242".to_owned(),
        "jane.doe@example.com".to_owned(),
        config.api.key.expose().to_owned(),
        config.square.signature_key.expose().to_owned(),
    ];
    forbidden.extend(
        config
            .stripe
            .signing_secrets
            .iter()
            .map(|s| s.expose().to_owned()),
    );

    let mut lines = 0;
    for file in ["logs.jsonl", "metrics.jsonl", "xray.jsonl"] {
        let text = std::fs::read_to_string(h.stack.run_dir().join(file)).unwrap();
        lines += text.lines().count();
        for value in &forbidden {
            assert!(!text.contains(value.as_str()), "{file} contains `{value}`");
        }
    }
    let logs = std::fs::read_to_string(h.stack.run_dir().join("logs.jsonl")).unwrap();
    assert!(
        logs.contains(&p.webhook_id()),
        "the webhook was logged (by id)"
    );
    assert!(
        logs.contains("no_matching_signature"),
        "the forgery was logged by its code"
    );
    assert!(lines > 5);
}
