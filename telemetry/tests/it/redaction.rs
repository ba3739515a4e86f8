//! Nothing secret reaches a log line: a signature header, a webhook secret, a card number and an
//! e-mail address are fed through every path into the logs (event fields, span fields, the
//! message, appended keys, the error of a failed invocation, the logged Lambda event, the
//! runtime's diagnostic), and no string in any line contains them.

use payhook_telemetry::lambda::diagnostic;
use payhook_telemetry::{FunctionKind, LoggerConfig};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::support::{Harness, TestError};

const WEBHOOK_SECRET: &str = "whsec_5f8a1c0b9d2e4f6a8b0c1d2e3f4a5b6c";
const SIGNATURE_DIGEST: &str = "5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd";
const SQUARE_SIGNATURE: &str = "2kRE5qRU2tR+tBGlDwMEw2avJ7QM4ikPYD/PJ3bd9Og=";
const CARD: &str = "4242424242424242";
const CARD_SPACED: &str = "4242 4242 4242 4242";
const EMAIL: &str = "jane.doe+shop@example.com";
const SIGNING_KEY: &str = "sq0wbk-plain-looking-key";

fn stripe_signature_header() -> String {
    format!(
        "t=1492774577,v1={SIGNATURE_DIGEST},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    )
}

fn forbidden() -> Vec<String> {
    vec![
        WEBHOOK_SECRET.to_owned(),
        SIGNATURE_DIGEST.to_owned(),
        SQUARE_SIGNATURE.to_owned(),
        CARD.to_owned(),
        CARD_SPACED.to_owned(),
        EMAIL.to_owned(),
        "jane.doe".to_owned(),
        SIGNING_KEY.to_owned(),
    ]
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                strings(x, out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn secrets_fed_through_the_pipeline_appear_in_no_log_line() {
    let h = Harness::with(|b| b.logger(LoggerConfig::default().with_log_event(true)));
    let f = h.function(FunctionKind::WebhookValidator);
    let event = json!({
        "resource": "/webhooks/{provider}",
        "headers": {
            "Stripe-Signature": stripe_signature_header(),
            "x-square-hmacsha256-signature": SQUARE_SIGNATURE,
            "x-api-key": "k3y-value",
            "Content-Type": "application/json"
        },
        "multiValueHeaders": {"Stripe-Signature": [stripe_signature_header()]},
        "requestContext": {"requestId": "req-1"},
        "queryStringParameters": {"notify": EMAIL},
        "body": format!("{{\"receipt_email\":\"{EMAIL}\",\"card\":{{\"number\":\"{CARD}\"}}}}"),
    });

    let inv = f.start("req-1", None);
    inv.log_event(&event);
    let handle = inv.handle();
    let result = inv
        .run(async {
            handle.append_key("customer", EMAIL);
            async {
                tracing::info!(
                    signing_secret = WEBHOOK_SECRET,
                    signature_key = SIGNING_KEY,
                    header = %stripe_signature_header(),
                    "verifying with {WEBHOOK_SECRET} against {}",
                    stripe_signature_header()
                );
                tracing::warn!(
                    customer_email = EMAIL,
                    note = %format!("card {CARD_SPACED} of {EMAIL} declined"),
                    "card {CARD} of {EMAIL} declined; square sig {SQUARE_SIGNATURE}"
                );
            }
            .instrument(tracing::info_span!(
                "verify",
                stripe_signature = %stripe_signature_header(),
                payer = EMAIL
            ))
            .await;
            Err::<(), _>(TestError {
                code: "invalid_signature",
                retryable: false,
                message: format!("no v1 signature matched {SIGNATURE_DIGEST} (secret {WEBHOOK_SECRET}) for {EMAIL}"),
            })
        })
        .await;

    let lines = h.log_lines();
    assert!(
        lines.len() >= 4,
        "event, two handler lines, the error: {lines:?}"
    );
    let mut all = Vec::new();
    for line in &lines {
        strings(line, &mut all);
    }
    for secret in forbidden() {
        for s in &all {
            assert!(!s.contains(&secret), "{secret:?} leaked in {s:?}");
        }
    }
    // The lines still say what happened.
    assert!(
        all.iter()
            .any(|s| s.starts_with("verifying with [redacted-secret]"))
    );
    assert!(
        all.iter()
            .any(|s| s.contains("[redacted-card] of [redacted-email] declined"))
    );
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("error line");
    assert_eq!(error["error_code"], "invalid_signature");

    let err = result.expect_err("handler failed");
    let diag = diagnostic(&err);
    for secret in forbidden() {
        assert!(
            !diag.error_message.contains(&secret),
            "{secret:?} leaked in the diagnostic"
        );
    }
}
