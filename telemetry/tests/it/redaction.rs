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

/// Every string a log line holds: its keys, its string values and its numbers as written.
pub(crate) fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                strings(x, out);
            }
        }
        Value::Null | Value::Bool(_) => {}
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

/// What the logs carry more of once every record's lines carry its correlation: a card followed
/// by its expiry and CVC, dotted or glued to a label, as a JSON number, e-mails URL-encoded or
/// JSON-escaped, secrets under field names longer than 64 bytes and inside embedded JSON. None
/// reaches a line; the ids on-call searches by (webhook id, trace id, request id) all do.
#[tokio::test]
async fn cards_with_expiry_encoded_emails_and_long_secret_keys_appear_in_no_log_line() {
    const TRACE_ID: &str = "1-67d3f2a1-234567890123456789abcdef";
    const REQUEST_ID: &str = "22345678-2234-4123-8234-123456789012";
    const WEBHOOK_ID: &str = "paypal:WH-4M0448861G563140B-9EX36365822141321";
    let long_key = format!("{}_signature", "provider_payload_field_".repeat(3));
    assert!(long_key.len() > 64);
    let h = Harness::with(|b| b.logger(LoggerConfig::default().with_log_event(true)));
    let f = h.function(FunctionKind::ProviderProcessor);
    let header = format!("Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=0");
    let event = json!({
        "Records": [{
            "messageId": REQUEST_ID,
            "messageAttributes": { long_key.as_str(): { "stringValue": SIGNING_KEY } },
            "note": format!("card {CARD} 12/29 cvc 123, payer jane.doe%40example.com"),
            "number": 4242424242424242_u64,
            "preview": format!("{{\"payer\":\"jane.doe\\u0040example.com\",\"signing_secret\":\"{SIGNING_KEY}\"}}"),
        }]
    });

    let inv = f.start(REQUEST_ID, Some(&header));
    inv.log_event(&event);
    inv.handle().set_correlation_id(WEBHOOK_ID);
    inv.run(async {
        tracing::info!(
            webhook_id = WEBHOOK_ID,
            note = "dotted 4242.4242.4242.4242, glued card4242424242424242exp1229",
            "payer JANE.DOE@EXAMPLE.COM paid with {CARD_SPACED} 1229 123; {long_key}={SIGNING_KEY}"
        );
        Ok::<_, TestError>(())
    })
    .await
    .expect("handler succeeds");

    let lines = h.log_lines();
    assert_eq!(
        lines.len(),
        2,
        "the event and the handler's line: {lines:?}"
    );
    let mut all = Vec::new();
    for line in &lines {
        strings(line, &mut all);
    }
    let text = all.join("\n");
    for secret in forbidden().iter().map(String::as_str).chain([
        "4242.4242.4242.4242",
        "card4242",
        "jane.doe%40example.com",
        "jane.doe\\u0040example.com",
        "JANE.DOE",
    ]) {
        assert!(!text.contains(secret), "{secret:?} leaked in {text}");
    }
    assert!(!lines[0].to_string().contains("4242424242424242"));
    let handler = &lines[1];
    assert_eq!(handler["webhook_id"], WEBHOOK_ID);
    assert_eq!(handler["correlation_id"], WEBHOOK_ID);
    assert_eq!(handler["xray_trace_id"], TRACE_ID);
    assert_eq!(handler["function_request_id"], REQUEST_ID);
    assert_eq!(lines[0]["message"]["Records"][0]["messageId"], REQUEST_ID);
    assert!(
        text.contains("[redacted-card] 12/29 cvc 123"),
        "the line still reads: {text}"
    );
}

#[tokio::test]
async fn card_numbers_logged_as_numbers_are_masked_and_other_numbers_kept() {
    let h = Harness::new();
    let f = h.function(FunctionKind::WebhookValidator);
    let inv = f.start("req-numbers", None);
    inv.run(async {
        async {
            tracing::info!(
                reference = 4_242_424_242_424_242_u64,
                amex = 378_282_246_310_005_i64,
                as_float = 4_242_424_242_424_242.0_f64,
                amount = 1999_u64,
                refund = -1999_i64,
                created_ms = 1_767_225_600_000_u64,
                not_luhn = 4_242_424_242_424_241_u64,
                rate = 0.25_f64,
                "numbers"
            );
        }
        .instrument(tracing::info_span!(
            "charge",
            card_on_span = 5_555_555_555_554_444_u64
        ))
        .await;
        Ok::<(), TestError>(())
    })
    .await
    .expect("handler succeeded");

    let lines = h.log_lines();
    let line = lines
        .iter()
        .find(|l| l["message"] == "numbers")
        .expect("the line");
    for key in ["reference", "amex", "as_float", "card_on_span"] {
        assert_eq!(line[key], "[redacted-card]", "{key} in {line}");
    }
    assert_eq!(line["amount"], 1999);
    assert_eq!(line["refund"], -1999);
    assert_eq!(line["created_ms"], 1_767_225_600_000_u64);
    assert_eq!(line["not_luhn"], 4_242_424_242_424_241_u64);
    assert_eq!(line["rate"], 0.25);
}
