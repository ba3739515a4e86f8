//! Redaction: the last line of defence that keeps secrets and personal data out of every log
//! line. Every string the logger writes (messages, event fields, span fields, appended keys,
//! error texts, the logged Lambda event) passes through here.
//!
//! Two rules, both conservative (a false positive costs a `[redacted]`, a false negative a leak):
//! - **by key**: a field whose name says it holds a secret, a signature, a credential, a card, an
//!   e-mail address or a raw body is replaced whole ([`is_sensitive_key`]);
//! - **by value**: inside any string, e-mail addresses, card numbers (13–19 digits, Luhn-valid,
//!   starting 2–6), provider secrets (`whsec_…`, `sk_live_…`, …), `Bearer` tokens, long hex
//!   strings (HMAC digests, ≥ 40 chars) and long base64 strings (signatures, ≥ 40 chars with
//!   upper case, lower case and digits) are masked ([`redact_text`]).

use std::borrow::Cow;

use serde_json::Value;

/// What a value under a sensitive key becomes.
pub const REDACTED: &str = "[redacted]";
/// What an e-mail address inside a string becomes.
pub const REDACTED_EMAIL: &str = "[redacted-email]";
/// What a card number inside a string becomes.
pub const REDACTED_CARD: &str = "[redacted-card]";
/// What a secret, token, signature or digest inside a string becomes.
pub const REDACTED_SECRET: &str = "[redacted-secret]";

/// Substrings of a normalised key (lower case, `-`, `_`, `.` and spaces removed) that mark it
/// as sensitive.
const SENSITIVE_KEY_PARTS: &[&str] = &[
    "secret",
    "signature",
    "password",
    "passwd",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "cardnumber",
    "cvc",
    "cvv",
    "email",
    "privatekey",
    "transmissionsig",
    "hmac",
    "credential",
];

/// Normalised keys that are sensitive as a whole word.
const SENSITIVE_KEYS: &[&str] = &["pan", "sig", "body", "rawbody", "card", "iban"];

/// Prefixes of provider secrets and keys (Stripe webhook secrets and API keys).
const SECRET_PREFIXES: &[&str] = &["whsec_", "sk_live_", "sk_test_", "rk_live_", "rk_test_"];

/// Minimum length of a hex or base64 run treated as a digest or signature.
const LONG_TOKEN_MIN: usize = 40;

/// Whether a field with this name must never have its value logged.
pub fn is_sensitive_key(key: &str) -> bool {
    let mut norm = [0u8; 64];
    let mut n = 0;
    for b in key.bytes() {
        if matches!(b, b'-' | b'_' | b'.' | b' ') {
            continue;
        }
        if n == norm.len() {
            break;
        }
        norm[n] = b.to_ascii_lowercase();
        n += 1;
    }
    let norm = &norm[..n];
    SENSITIVE_KEYS.iter().any(|k| k.as_bytes() == norm)
        || SENSITIVE_KEY_PARTS
            .iter()
            .any(|p| norm.windows(p.len()).any(|w| w == p.as_bytes()))
}

/// [`is_sensitive_key`] for the `'static` field names of `tracing` call sites, remembered per
/// thread: the logger asks for every field of every line.
pub(crate) fn is_sensitive_field(name: &'static str) -> bool {
    const SLOTS: usize = 64;
    thread_local! {
        static CACHE: std::cell::RefCell<[(usize, usize, bool); SLOTS]> =
            const { std::cell::RefCell::new([(0, 0, false); SLOTS]) };
    }
    let key = (name.as_ptr() as usize, name.len());
    let slot = (key.0 >> 3 ^ key.1) % SLOTS;
    CACHE.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return is_sensitive_key(name);
        };
        let (ptr, len, sensitive) = cache[slot];
        if (ptr, len) == key {
            return sensitive;
        }
        let sensitive = is_sensitive_key(name);
        cache[slot] = (key.0, key.1, sensitive);
        sensitive
    })
}

/// Whether `s` may contain something [`redact_text`] masks; one cheap pass that lets most
/// strings through untouched. It looks for what every masked pattern needs: an `@`, 13 digits,
/// or a run of token characters that is long (a digest or signature), contains `_` (a
/// provider secret) or is the word `Bearer`.
fn may_need_redaction(b: &[u8]) -> bool {
    let mut digits = 0usize;
    let mut run_start = 0usize;
    let mut underscore = false;
    let suspicious_run = |run: &[u8], underscore: bool| {
        run.len() >= LONG_TOKEN_MIN
            || (underscore && run.len() > 6)
            || run.eq_ignore_ascii_case(b"bearer")
    };
    for (i, &c) in b.iter().enumerate() {
        if c == b'@' {
            return true;
        }
        if c.is_ascii_digit() {
            digits += 1;
        }
        if is_token_byte(c) {
            underscore |= c == b'_';
        } else {
            if suspicious_run(&b[run_start..i], underscore) {
                return true;
            }
            run_start = i + 1;
            underscore = false;
        }
    }
    digits >= 13 || suspicious_run(&b[run_start.min(b.len())..], underscore)
}

/// Masks e-mail addresses, card numbers, secrets, tokens, digests and signatures inside `s`.
/// Returns `s` unchanged (borrowed) when there is nothing to mask.
pub fn redact_text(s: &str) -> Cow<'_, str> {
    if !may_need_redaction(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    redact_scan(s)
}

/// The full scan behind [`redact_text`].
fn redact_scan(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let mut ranges: Vec<(usize, usize, &'static str)> = Vec::new();
    find_emails(b, &mut ranges);
    find_cards(b, &mut ranges);
    find_tokens(b, &mut ranges);
    if ranges.is_empty() {
        return Cow::Borrowed(s);
    }
    ranges.sort_unstable_by_key(|r| r.0);
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (start, end, placeholder) in ranges {
        if end <= last {
            continue;
        }
        if start < last {
            // Overlaps the previous match: widen it, one placeholder is enough.
            last = end;
            continue;
        }
        out.push_str(&s[last..start]);
        out.push_str(placeholder);
        last = end;
    }
    out.push_str(&s[last..]);
    Cow::Owned(out)
}

/// Redacts a JSON value in place: values under sensitive keys are replaced whole, every other
/// string is passed through [`redact_text`]. Object keys that themselves look like an e-mail
/// address or secret are replaced too.
pub fn redact_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(r) = redact_text(s) {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => {
            let needs_key_rewrite = map.keys().any(|k| matches!(redact_text(k), Cow::Owned(_)));
            if needs_key_rewrite {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(redact_text(&k).into_owned(), v);
                }
            }
            for (k, v) in map.iter_mut() {
                if is_sensitive_key(k) {
                    if !v.is_null() {
                        *v = Value::String(REDACTED.to_owned());
                    }
                } else {
                    redact_json(v);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn is_email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_email_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

fn find_emails(b: &[u8], out: &mut Vec<(usize, usize, &'static str)>) {
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'@' {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > 0 && is_email_local(b[start - 1]) {
            start -= 1;
        }
        let mut end = i + 1;
        while end < b.len() && is_email_domain(b[end]) {
            end += 1;
        }
        // Trailing dots belong to the sentence, not the domain.
        while end > i + 1 && b[end - 1] == b'.' {
            end -= 1;
        }
        let domain = &b[i + 1..end];
        let tld_ok = domain
            .iter()
            .rposition(|&c| c == b'.')
            .map(|dot| {
                let tld = &domain[dot + 1..];
                dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
            })
            .unwrap_or(false);
        if start < i && tld_ok {
            out.push((start, end, REDACTED_EMAIL));
            i = end;
        } else {
            i += 1;
        }
    }
}

fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (idx, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if idx % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn find_cards(b: &[u8], out: &mut Vec<(usize, usize, &'static str)>) {
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if !(b[i].is_ascii_digit() && boundary) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = [0u8; 19];
        let mut count = 0usize;
        let mut j = i;
        let mut end = i;
        while j < b.len() {
            if b[j].is_ascii_digit() {
                if count < digits.len() {
                    digits[count] = b[j] - b'0';
                }
                count += 1;
                j += 1;
                end = j;
            } else if matches!(b[j], b' ' | b'-') && j + 1 < b.len() && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        let followed_by_word = end < b.len() && b[end].is_ascii_alphanumeric();
        if (13..=19).contains(&count)
            && !followed_by_word
            && (2..=6).contains(&digits[0])
            && luhn_valid(&digits[..count])
        {
            out.push((start, end, REDACTED_CARD));
        }
        i = end.max(i + 1);
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'/')
}

fn find_tokens(b: &[u8], out: &mut Vec<(usize, usize, &'static str)>) {
    let mut i = 0;
    while i < b.len() {
        if !is_token_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        let word = &b[start..i];
        // Base64 padding belongs to the word; any other '=' separates a key from its value.
        while i < b.len() && b[i] == b'=' && i - start < word.len() + 2 {
            i += 1;
        }
        if word.eq_ignore_ascii_case(b"bearer") && i < b.len() && b[i] == b' ' {
            // The credential is everything up to the next whitespace, whatever its alphabet.
            let mut t = i;
            while t < b.len() && b[t] == b' ' {
                t += 1;
            }
            let token_start = t;
            while t < b.len() && !b[t].is_ascii_whitespace() && b[t] != b'"' {
                t += 1;
            }
            if t > token_start {
                out.push((token_start, t, REDACTED_SECRET));
            }
            i = t;
            continue;
        }
        let secret_prefix = SECRET_PREFIXES
            .iter()
            .any(|p| word.len() > p.len() && word.starts_with(p.as_bytes()));
        let long_hex = word.len() >= LONG_TOKEN_MIN && word.iter().all(u8::is_ascii_hexdigit);
        let long_b64 = word.len() >= LONG_TOKEN_MIN
            && word.iter().any(u8::is_ascii_uppercase)
            && word.iter().any(u8::is_ascii_lowercase)
            && word.iter().any(u8::is_ascii_digit);
        if secret_prefix || long_hex || long_b64 {
            out.push((start, i, REDACTED_SECRET));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_keys_are_recognised_in_any_spelling() {
        for k in [
            "Stripe-Signature",
            "x-square-hmacsha256-signature",
            "PAYPAL-TRANSMISSION-SIG",
            "x-api-key",
            "Authorization",
            "signing_secret",
            "card_number",
            "customer.email",
            "body",
            "password",
        ] {
            assert!(is_sensitive_key(k), "{k}");
        }
        for k in [
            "provider",
            "webhook_id",
            "correlation_id",
            "xray_trace_id",
            "x-amzn-trace-id",
            "paypal-cert-url",
            "error_code",
            "amount",
        ] {
            assert!(!is_sensitive_key(k), "{k}");
        }
    }

    #[test]
    fn emails_cards_and_secrets_are_masked_inside_text() {
        let s = "mail jane.doe+shop@example.co.uk, card 4242 4242 4242 4242, key whsec_abc123DEF, \
                 sig t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd";
        let r = redact_text(s);
        assert!(!r.contains("jane.doe"), "{r}");
        assert!(!r.contains("4242 4242"), "{r}");
        assert!(!r.contains("whsec_abc123DEF"), "{r}");
        assert!(!r.contains("5257a869e7"), "{r}");
        assert!(
            r.contains(REDACTED_EMAIL) && r.contains(REDACTED_CARD),
            "{r}"
        );
        assert!(r.contains("t=1492774577"), "timestamps stay readable: {r}");
    }

    #[test]
    fn ordinary_identifiers_are_left_alone() {
        for s in [
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "989ffbf8-9ace-4817-a57c-e4dd734019ee",
            "arn:aws:lambda:us-east-1:123456789012:function:payhook-webhook-validator",
            "received at 1767225600000 ms",
            "amount 1999 USD",
        ] {
            assert_eq!(redact_text(s), s);
        }
    }

    #[test]
    fn luhn_invalid_digit_runs_are_not_cards() {
        assert_eq!(
            redact_text("order 4242424242424241"),
            "order 4242424242424241"
        );
        assert_eq!(redact_text("4000056655665556"), REDACTED_CARD);
    }

    #[test]
    fn bearer_tokens_and_base64_signatures_are_masked() {
        let r = redact_text("Authorization: Bearer abc.def");
        assert!(!r.contains("abc"), "{r}");
        let r = redact_text("sig=2kRE5qRU2tR+tBGlDwMEw2avJ7QM4ikPYD/PJ3bd9Og= ok");
        assert!(!r.contains("2kRE5q"), "{r}");
    }

    #[test]
    fn the_quick_check_never_skips_a_string_the_full_scan_would_change() {
        // Strings assembled from pieces of the patterns and near misses, so both are common.
        let pieces = [
            "jane.doe@example.com",
            "a@b",
            "@",
            ".",
            " ",
            "-",
            "=",
            "_",
            "x",
            "Bearer ",
            "bearer",
            "4242424242424242",
            "4242 4242 4242 4242",
            "42424242",
            "1767225600000",
            "whsec_",
            "sk_live_",
            "abc",
            "ABC",
            "0123456789abcdef0123456789abcdef",
            "Zz9+/",
            "payment_intent",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut checked_matches = 0;
        for _ in 0..20_000 {
            let count = (next() % 8) as usize;
            let text: String = (0..count)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            let full = redact_scan(&text);
            if matches!(full, Cow::Owned(_)) {
                checked_matches += 1;
                assert!(may_need_redaction(text.as_bytes()), "skipped {text:?}");
            }
            assert_eq!(redact_text(&text), full);
        }
        assert!(checked_matches > 100, "the corpus exercises the patterns");
    }

    #[test]
    fn json_is_redacted_by_key_and_by_value() {
        let mut v = serde_json::json!({
            "headers": {"Stripe-Signature": "t=1,v1=ff", "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793"},
            "body": "{\"email\":\"a@b.example\"}",
            "note": ["contact bob@example.com"],
        });
        redact_json(&mut v);
        assert_eq!(v["headers"]["Stripe-Signature"], REDACTED);
        assert_eq!(v["body"], REDACTED);
        assert_eq!(v["note"][0], format!("contact {REDACTED_EMAIL}"));
        assert_eq!(
            v["headers"]["x-amzn-trace-id"],
            "Root=1-5759e988-bd862e3fe1be46a994272793"
        );
    }
}
