//! The redactor over generated log records: card numbers (Luhn-valid, written every way they
//! are printed), e-mail addresses (plain, URL-encoded, JSON-escaped, upper case) and secrets
//! under sensitive keys (short and long key names) are placed as values, inside longer strings,
//! inside embedded JSON, as keys and as numbers, at any depth; none survives in any spelling,
//! and the identifiers on-call searches by (webhook, payment, trace and request ids,
//! timestamps, amounts) all do.

use payhook_telemetry::redact::{is_sensitive_key, redact_json};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::redaction::strings;

// ---------------------------------------------------------------------------------------------
// What must never survive.

/// One sensitive item and the forms it must not appear in after redaction.
#[derive(Debug, Clone)]
enum Sensitive {
    /// A card number (its digits) as written in the record.
    Card { digits: String, written: String },
    /// An e-mail address (lower case, plain) as written in the record.
    Email { plain: String, written: String },
    /// A secret with nothing secret-looking about it, safe only under its key.
    Keyed { key: String, secret: String },
    /// A provider secret, recognisable by its prefix wherever it is.
    Provider { secret: String },
}

/// A Luhn-valid card number: 13–19 digits starting 2–6.
fn card_digits() -> impl Strategy<Value = String> {
    (2u8..=6, 13usize..=19).prop_flat_map(|(first, len)| {
        prop::collection::vec(0u8..=9, len - 2).prop_map(move |middle| {
            let mut digits = vec![first];
            digits.extend(middle);
            digits.push(luhn_check_digit(&digits));
            digits.iter().map(|d| char::from(b'0' + d)).collect()
        })
    })
}

/// The digit that makes `payload` followed by it Luhn-valid.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            match (i % 2 == 0, d * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => d,
            }
        })
        .sum();
    u8::try_from((10 - sum % 10) % 10).unwrap_or(0)
}

/// The digits in groups of four as cards print them, a short tail joined to the group before.
fn groups(digits: &str) -> Vec<&str> {
    let mut groups: Vec<&str> = Vec::new();
    let mut rest = digits;
    while !rest.is_empty() {
        let take = if rest.len() < 7 { rest.len() } else { 4 };
        let (group, tail) = rest.split_at(take);
        groups.push(group);
        rest = tail;
    }
    groups
}

/// A word written against the digits (`card4242…`, `…4242exp`).
fn label() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "card", "Card", "CARD", "pan", "number", "visa", "exp", "cvc", "ccnum", "Nummer",
    ])
}

/// An expiry as `MM/YY` or `MMYY`.
fn expiry() -> impl Strategy<Value = (String, String)> {
    (1u8..=12, 26u8..=35).prop_map(|(m, y)| (format!("{m:02}/{y}"), format!("{m:02}{y}")))
}

fn written_card() -> impl Strategy<Value = Sensitive> {
    (
        card_digits(),
        0usize..10,
        label(),
        label(),
        expiry(),
        100u16..=9999,
        prop::sample::select(vec![" ", "/", " exp ", "|", ", ", " - "]),
    )
        .prop_map(|(digits, form, before, after, (mm_yy, mmyy), cvc, sep)| {
            let grouped = |s: &str| groups(&digits).join(s);
            let written = match form {
                0 => digits.clone(),
                1 => grouped(" "),
                2 => grouped("-"),
                3 => grouped("."),
                4 => grouped(if cvc % 2 == 0 { "+" } else { "%20" }),
                5 => format!("{before}{digits}"),
                6 => format!("{digits}{after}{mmyy}"),
                7 => format!("{digits}{sep}{mm_yy}"),
                8 => format!("{}{sep}{cvc}", grouped(" ")),
                _ => format!("{digits}{mmyy}{cvc:03}"),
            };
            Sensitive::Card { digits, written }
        })
}

fn written_email() -> impl Strategy<Value = Sensitive> {
    (
        "[a-z][a-z0-9]{2,8}([._+-][a-z0-9]{1,6})?",
        "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z]{2,6}){1,2}",
        0usize..6,
    )
        .prop_map(|(local, domain, form)| {
            let plain = format!("{local}@{domain}");
            let url_local = local.replace('+', "%2B");
            let written = match form {
                0 => plain.clone(),
                1 => format!("{url_local}%40{domain}"),
                2 => format!("{url_local}%2540{domain}"),
                3 => format!("{local}\\u0040{domain}"),
                4 => plain.to_uppercase(),
                _ => format!("mailto:{}", plain.to_uppercase()),
            };
            Sensitive::Email { plain, written }
        })
}

/// A field name that says it holds a secret: a short one, or a long generated one (longer
/// than 64 bytes before the word that makes it sensitive).
fn sensitive_key() -> impl Strategy<Value = String> {
    let parts = prop::sample::select(vec![
        "signing_secret",
        "Stripe-Signature",
        "x-api-key",
        "password",
        "customer_email",
        "card_number",
        "cvc",
        "Authorization",
        "apiKey",
        "private_key",
        "access_token",
        "paypal-transmission-sig",
        "x-square-hmacsha256-signature",
        "client.secret",
    ]);
    let words = prop::sample::select(vec!["order", "meta", "field", "provider", "nested", "map"]);
    let whole = prop::sample::select(vec!["pan", "sig", "card", "body", "iban"]);
    prop_oneof![
        parts.clone().prop_map(str::to_owned),
        whole.prop_map(str::to_owned),
        (prop::collection::vec(words, 14..20), parts)
            .prop_map(|(words, part)| { format!("{}_{part}", words.join("_")) }),
    ]
}

fn keyed_secret() -> impl Strategy<Value = Sensitive> {
    (sensitive_key(), "sq0wbk-[A-Za-z0-9]{12,20}")
        .prop_map(|(key, secret)| Sensitive::Keyed { key, secret })
}

fn provider_secret() -> impl Strategy<Value = Sensitive> {
    (
        prop::sample::select(vec!["whsec_", "sk_live_", "rk_test_"]),
        "[A-Za-z0-9]{16,32}",
    )
        .prop_map(|(prefix, rest)| Sensitive::Provider {
            secret: format!("{prefix}{rest}"),
        })
}

fn sensitive() -> impl Strategy<Value = Sensitive> {
    prop_oneof![
        3 => written_card(),
        2 => written_email(),
        2 => keyed_secret(),
        1 => provider_secret(),
    ]
}

// ---------------------------------------------------------------------------------------------
// What must always survive.

fn hex(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(b"0123456789abcdef".to_vec()), len)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
}

/// Identifiers and values payhook logs and on-call searches by.
fn safe_token() -> impl Strategy<Value = String> {
    let base62 = "[A-Za-z0-9]{24}";
    let paypal_segment = "([0-9]{1,4}[A-Z]{1,3}){3}[0-9]{2,5}";
    prop_oneof![
        base62.prop_map(|id| format!("stripe:evt_{id}")),
        base62.prop_map(|id| format!("pi_{id}")),
        (paypal_segment, paypal_segment).prop_map(|(a, b)| format!("paypal:WH-{a}-{b}")),
        (hex(8), hex(24)).prop_map(|(t, r)| format!("1-{t}-{r}")),
        (hex(8), hex(24), hex(16))
            .prop_map(|(t, r, p)| format!("Root=1-{t}-{r};Parent={p};Sampled=1")),
        (hex(8), hex(4), hex(3), hex(3), hex(12))
            .prop_map(|(a, b, c, d, e)| format!("{a}-{b}-4{c}-a{d}-{e}")),
        (
            2024u16..2031,
            1u8..=12,
            1u8..=28,
            0u8..24,
            0u8..60,
            0u16..1000
        )
            .prop_map(|(y, mo, d, h, mi, ms)| format!(
                "{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{mi:02}.{ms:03}Z"
            )),
        (
            1u32..100_000,
            prop::sample::select(vec!["USD", "EUR", "GBP"])
        )
            .prop_map(|(cents, cur)| format!("{}.{:02} {cur}", cents / 100, cents % 100)),
        (1_700_000_000_000u64..1_900_000_000_000).prop_map(|ms| ms.to_string()),
        "[A-Za-z0-9]{22}".prop_map(|id| format!("square:{id}")),
    ]
    .prop_filter("tokens hold no provider-secret prefix", |t| {
        !t.contains("_live_") && !t.contains("_test_")
    })
}

/// Field names that say nothing about their values.
fn neutral_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "note",
        "detail",
        "data",
        "items",
        "object",
        "metadata",
        "description",
        "reference",
        "value",
        "number",
        "nested",
        "context",
    ])
}

// ---------------------------------------------------------------------------------------------
// Records.

/// Where in the record an item is written.
#[derive(Debug, Clone, Copy)]
enum Placement {
    Value,
    InText,
    InArray,
    AsKey,
    EmbeddedJson,
    EscapedEmbeddedJson,
    QueryString,
    Number,
}

fn placement() -> impl Strategy<Value = Placement> {
    prop::sample::select(vec![
        Placement::Value,
        Placement::InText,
        Placement::InArray,
        Placement::AsKey,
        Placement::EmbeddedJson,
        Placement::EscapedEmbeddedJson,
        Placement::QueryString,
        Placement::Number,
    ])
}

/// How a sensitive item and its neighbours are joined inside a sentence.
fn glue() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![", ", " | ", " for ", " (", "; ", " and "])
}

/// The item written at its placement, as a JSON value to nest in the record.
fn place(item: &Sensitive, at: Placement, key: &str, safe: &str, glue: &str) -> Value {
    let (field, text) = match item {
        Sensitive::Card { written, .. } | Sensitive::Email { written, .. } => {
            (key.to_owned(), written.clone())
        }
        Sensitive::Provider { secret } => (key.to_owned(), secret.clone()),
        Sensitive::Keyed { key, secret } => {
            return place_keyed(key, secret, at, safe, glue);
        }
    };
    match (at, item) {
        (Placement::Number, Sensitive::Card { digits, .. }) => {
            json!({ field: digits.parse::<u64>().unwrap_or_default(), "id": safe })
        }
        (Placement::InText, _) => json!({ field: format!("{safe}{glue}{text}{glue}{safe}") }),
        (Placement::InArray, _) => json!([safe, text]),
        (Placement::AsKey, _) => json!({ text: 1, "id": safe }),
        (Placement::EmbeddedJson, _) => {
            json!({ field: json!({ "note": text, "id": safe }).to_string() })
        }
        (Placement::EscapedEmbeddedJson, _) => {
            let inner = json!({ "note": text, "id": safe }).to_string();
            json!({ field: json!({ "body_preview": inner }).to_string() })
        }
        (Placement::QueryString, _) => {
            json!({ field: format!("https://example.test/cb?ref={text}&id={safe}") })
        }
        _ => json!({ field: text, "id": safe }),
    }
}

/// A secret written under its sensitive key, in the form the placement stands for.
fn place_keyed(key: &str, secret: &str, at: Placement, safe: &str, glue: &str) -> Value {
    let in_text = |text: String| json!({ "note": format!("{safe}{glue}{text}{glue}{safe}") });
    match at {
        Placement::Value | Placement::Number => json!({ key: secret, "id": safe }),
        Placement::InArray => json!([{ key: [secret, { "value": secret }] }, safe]),
        Placement::AsKey => json!({ key: { "value": secret, "nested": [secret] }, "id": safe }),
        Placement::InText if key.contains('-') => in_text(format!("{key}: {secret}\r\n")),
        Placement::InText => in_text(format!("Config {{ {key}: {secret:?} }}")),
        Placement::EmbeddedJson => in_text(json!({ key: secret }).to_string()),
        Placement::EscapedEmbeddedJson => {
            let inner = json!({ key: secret }).to_string();
            in_text(json!({ "body_preview": inner }).to_string())
        }
        Placement::QueryString => in_text(format!("https://example.test/cb?{key}={secret}&x=1")),
    }
}

/// Wraps a value in `depth` objects and arrays.
fn nest(mut value: Value, wrappers: &[(bool, &str)]) -> Value {
    for (as_array, key) in wrappers {
        value = if *as_array {
            json!([value])
        } else {
            json!({ *key: value })
        };
    }
    value
}

/// A log record holding the items, each at its placement and depth, next to safe fields.
#[derive(Debug, Clone)]
struct Record {
    value: Value,
    items: Vec<Sensitive>,
    safe: Vec<String>,
}

fn record() -> impl Strategy<Value = Record> {
    let entry = (
        sensitive(),
        placement(),
        neutral_key(),
        safe_token(),
        glue(),
        prop::collection::vec((any::<bool>(), neutral_key()), 0..4),
    );
    (
        prop::collection::vec(entry, 1..6),
        safe_token(),
        safe_token(),
    )
        .prop_map(|(entries, webhook, trace)| {
            let mut fields = serde_json::Map::new();
            fields.insert("correlation_id".into(), json!(webhook));
            fields.insert("xray_trace_id".into(), json!(trace));
            fields.insert("amount".into(), json!(1999));
            let mut items = Vec::new();
            let mut safe = vec![webhook, trace];
            for (i, (item, at, key, token, glue, wrappers)) in entries.into_iter().enumerate() {
                let placed = place(&item, at, key, &token, glue);
                fields.insert(format!("part{i}"), nest(placed, &wrappers));
                items.push(item);
                safe.push(token);
            }
            Record {
                value: Value::Object(fields),
                items,
                safe,
            }
        })
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// A string with every spelling of `@` and every card separator undone, lower case.
fn decoded(s: &str) -> String {
    s.to_lowercase()
        .replace("\\\\u0040", "@")
        .replace("\\u0040", "@")
        .replace("%2540", "@")
        .replace("%40", "@")
        .replace("%2b", "+")
}

fn digits_only(s: &str) -> String {
    s.replace("%20", "").replace([' ', '-', '.', '+'], "")
}

/// Why `item` is still readable in `s`, if it is.
fn leak(item: &Sensitive, s: &str) -> Option<&'static str> {
    match item {
        Sensitive::Card { digits, written } => {
            if s.contains(written.as_str()) {
                Some("card as written")
            } else if digits_only(s).contains(digits.as_str()) {
                Some("card digits")
            } else {
                None
            }
        }
        Sensitive::Email { plain, .. } => decoded(s).contains(plain.as_str()).then_some("e-mail"),
        Sensitive::Keyed { secret, .. } | Sensitive::Provider { secret } => {
            s.contains(secret.as_str()).then_some("secret")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_card_email_or_secret_survives_redaction_and_identifiers_do(record in record()) {
        let mut redacted = record.value.clone();
        redact_json(&mut redacted);
        let mut all = Vec::new();
        strings(&redacted, &mut all);
        all.push(redacted.to_string());
        for item in &record.items {
            for s in &all {
                if let Some(what) = leak(item, s) {
                    prop_assert!(false, "{what} of {item:?} survived in {s:?}");
                }
            }
        }
        for token in &record.safe {
            prop_assert!(
                all.iter().any(|s| s.contains(token.as_str())),
                "{token:?} did not survive: {redacted}"
            );
        }
        prop_assert_eq!(&redacted["amount"], &json!(1999));
    }

    #[test]
    fn records_of_identifiers_only_are_left_unchanged(
        tokens in prop::collection::vec((neutral_key(), safe_token()), 1..8),
        glue in glue(),
    ) {
        let sentence = tokens.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(glue);
        let mut fields = serde_json::Map::new();
        for (i, (key, token)) in tokens.iter().enumerate() {
            fields.insert(format!("{key}{i}"), json!(token));
        }
        fields.insert("message".into(), json!(sentence));
        fields.insert("ids".into(), json!(tokens.iter().map(|(_, t)| t).collect::<Vec<_>>()));
        let record = Value::Object(fields);
        let mut redacted = record.clone();
        redact_json(&mut redacted);
        prop_assert_eq!(redacted, record);
    }

    #[test]
    fn generated_sensitive_keys_are_recognised(key in sensitive_key()) {
        prop_assert!(is_sensitive_key(&key), "{key}");
    }
}

#[test]
fn generated_cards_are_luhn_valid() {
    assert_eq!(
        luhn_check_digit(&[4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4, 2, 4]),
        2
    );
    assert_eq!(
        luhn_check_digit(&[3, 7, 8, 2, 8, 2, 2, 4, 6, 3, 1, 0, 0, 0]),
        5
    );
    assert_eq!(groups("4242424242424"), ["4242", "4242", "42424"]);
    assert_eq!(
        groups("4242424242424242424"),
        ["4242", "4242", "4242", "4242", "424"]
    );
}
