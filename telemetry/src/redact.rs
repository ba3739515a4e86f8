//! Redaction: the last line of defence that keeps secrets and personal data out of every log
//! line. Every string the logger writes (messages, event fields, span fields, appended keys,
//! error texts, the logged Lambda event) passes through here.
//!
//! Three rules, all conservative (a false positive costs a `[redacted]`, a false negative a leak):
//! - **by key**: a field whose name says it holds a secret, a signature, a credential, a card, an
//!   e-mail address or a raw body is replaced whole, however long the name
//!   ([`is_sensitive_key`]);
//! - **by key inside text**: the value of such a key written into a string is masked too:
//!   `key=value` (query strings, form bodies), `"key": value` (embedded JSON, escaped or not),
//!   `key: "value"` (`Debug` output) and `Header-Name: value` (header lines);
//! - **by value**: inside any string, e-mail addresses (`@` written plain, as `%40`, `%2540` or
//!   `\u0040`), card numbers, provider secrets (`whsec_…`, `sk_live_…`, …), `Bearer` tokens,
//!   long hex strings (HMAC digests, ≥ 40 chars) and long base64 strings (signatures, ≥ 40 chars
//!   with upper case, lower case and digits) are masked ([`redact_text`]), and so are numbers
//!   that are card numbers: in the logged JSON ([`redact_json`]) and as log fields.
//!
//! A card number is 13–19 digits, Luhn-valid, starting 2–6, written plain or in groups of 3–6
//! digits joined by one space, `-`, `+`, `%20` or `.`. It may start at any
//! group of a longer run of digits (`qty 1 4242 …`), be followed by more groups or by its
//! expiry (`MMYY`, then maybe the CVC) glued on, and be glued to a label (`card4242…`,
//! `…4242exp`).
//! Digits glued to a short or all-hex run of letters are part of an identifier (an X-Ray trace
//! id, a UUID, a PayPal `WH-…` id) and are left alone: 13 digits in a row inside random
//! characters are chance, not a card.

use std::borrow::Cow;
use std::ops::RangeInclusive;

use serde_json::Value;

/// What a value under a sensitive key becomes.
pub const REDACTED: &str = "[redacted]";
/// What an e-mail address inside a string becomes.
pub const REDACTED_EMAIL: &str = "[redacted-email]";
/// What a card number inside a string becomes.
pub const REDACTED_CARD: &str = "[redacted-card]";
/// What a secret, token, signature or digest inside a string becomes.
pub const REDACTED_SECRET: &str = "[redacted-secret]";

/// Substrings of a normalised key (lower case, punctuation and spaces removed) that mark it as
/// sensitive.
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

/// The spellings of `@` in an e-mail address: plain, URL-encoded (once and twice) and
/// JSON-escaped.
const AT_SIGNS: &[&[u8]] = &[b"@", b"%40", b"%2540", b"\\u0040"];

/// How many digits a card number has (ISO/IEC 7812).
const CARD_DIGITS: RangeInclusive<usize> = 13..=19;
/// The first digit of the card numbers masked (Mastercard's 2-series to Discover's 6).
const CARD_FIRST_DIGITS: RangeInclusive<u8> = 2..=6;
/// Digits in each group of a card number printed in groups (4-4-4-4, Amex's 4-6-5, 4-4-4-4-3);
/// other groupings (a UUID's 8-4-4, a date's 4-2-2) are not card numbers.
const CARD_GROUP: RangeInclusive<usize> = 3..=6;
/// The shortest run of letters glued to digits that reads as a label (`card4242…`,
/// `…4242exp`) rather than as part of an identifier (`…9EX3636…` in a PayPal id); see
/// [`is_card_edge`].
const LABEL_MIN: usize = 3;

/// Byte ranges to mask, each with its placeholder.
type Found = Vec<(usize, usize, &'static str)>;

/// Whether a field with this name must never have its value logged. The name is compared
/// without its punctuation, spaces and case, whatever its length.
pub fn is_sensitive_key(key: &str) -> bool {
    is_sensitive_key_bytes(key.as_bytes())
}

fn is_sensitive_key_bytes(key: &[u8]) -> bool {
    const INLINE: usize = 64;
    let normalised = key
        .iter()
        .filter(|b| b.is_ascii_alphanumeric() || !b.is_ascii())
        .map(u8::to_ascii_lowercase);
    let mut inline = [0u8; INLINE];
    let spilled: Vec<u8>;
    let norm: &[u8] = if key.len() <= INLINE {
        let mut n = 0;
        for (slot, b) in inline.iter_mut().zip(normalised) {
            *slot = b;
            n += 1;
        }
        &inline[..n]
    } else {
        // A long name (a flattened path, a generated key) is compared whole, never cut short.
        spilled = normalised.collect();
        &spilled
    };
    // Keys inside text are checked for every `=` and `:`: compare a part only where its first
    // byte is.
    SENSITIVE_KEYS.iter().any(|k| k.as_bytes() == norm)
        || (0..norm.len()).any(|i| {
            SENSITIVE_KEY_PARTS
                .iter()
                .any(|p| p.as_bytes()[0] == norm[i] && norm[i..].starts_with(p.as_bytes()))
        })
}

/// [`is_sensitive_key`] for the `'static` field names of `tracing` call sites, remembered per
/// thread: the logger asks for every field of every line.
///
/// The names are remembered in a small open-addressed table keyed by the name's address and
/// length, so two hot names never evict each other (a direct-mapped table did, in some builds,
/// whenever the linker placed two of them on one slot). A name that finds no free slot within a
/// few probes is judged afresh each time, which is correct, only slower.
pub(crate) fn is_sensitive_field(name: &'static str) -> bool {
    const SLOTS: usize = 128;
    const PROBES: usize = 8;
    thread_local! {
        static CACHE: std::cell::RefCell<[(usize, usize, bool); SLOTS]> =
            const { std::cell::RefCell::new([(0, 0, false); SLOTS]) };
    }
    // A reference's address is never 0, so (0, _) marks a free slot.
    let key = (name.as_ptr() as usize, name.len());
    let mixed = (key.0 as u64 ^ (key.1 as u64).rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let home = (mixed >> 57) as usize % SLOTS;
    CACHE.with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else {
            return is_sensitive_key(name);
        };
        for probe in 0..PROBES {
            let slot = (home + probe) % SLOTS;
            let (ptr, len, sensitive) = cache[slot];
            if (ptr, len) == key {
                return sensitive;
            }
            if ptr == 0 {
                let sensitive = is_sensitive_key(name);
                cache[slot] = (key.0, key.1, sensitive);
                return sensitive;
            }
        }
        is_sensitive_key(name)
    })
}

/// A byte that can be part of a token ([`is_token_byte`]).
const TOKEN: u8 = 1;
/// An ASCII digit.
const DIGIT: u8 = 2;
/// What may join the digit groups of a card number (counted generously).
const CARD_JOIN: u8 = 4;
/// `@`, `%`, `\\`, `=` and `:`: an e-mail address or a key's separator may start here.
const SPECIAL: u8 = 8;

/// The classes of each byte, for [`may_need_redaction`]: one table lookup per byte instead of a
/// chain of comparisons (it reads every string the logger writes).
static BYTE_CLASS: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut class = 0;
        if is_token_byte(c) {
            class |= TOKEN;
        }
        if c.is_ascii_digit() {
            class |= DIGIT;
        }
        if matches!(c, b' ' | b'-' | b'+' | b'.' | b'%') {
            class |= CARD_JOIN;
        }
        if matches!(c, b'@' | b'%' | b'\\' | b'=' | b':') {
            class |= SPECIAL;
        }
        table[i] = class;
        i += 1;
    }
    table
}

/// Whether `s` may contain something [`redact_text`] masks; one cheap pass that lets most
/// strings through untouched. It looks for what every masked pattern needs: an `@` in any
/// spelling, a sensitive key before a `=` or `:`, 13 digits in one run of digit groups, or a
/// run of token characters that [`find_tokens`] would mask (long and all hex or mixed-case
/// with digits, a provider secret's prefix, the word `Bearer`). Request ids, trace ids,
/// webhook ids and timestamps pass without the full scan.
fn may_need_redaction(b: &[u8]) -> bool {
    // Digits in the current run of digit groups; anything that can separate a card's groups
    // (`separator_len`, counted generously) continues it.
    let mut card_digits = 0usize;
    let mut run_start = 0usize;
    let mut separators = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let class = BYTE_CLASS[usize::from(c)];
        if class == TOKEN {
            // A letter, `_` or `/`: it ends a run of digit groups and continues a token run,
            // and so do the letters after it; step over them all.
            card_digits = 0;
            i += 1;
            while i < b.len() && BYTE_CLASS[usize::from(b[i])] == TOKEN {
                i += 1;
            }
            continue;
        }
        if class & SPECIAL != 0 {
            match c {
                b'@' => return true,
                b'%' | b'\\' if at_sign_len(b, i) > 0 => return true,
                b'=' | b':' => separators = true,
                _ => {}
            }
        }
        if class & DIGIT != 0 {
            card_digits += 1;
            if card_digits >= *CARD_DIGITS.start() {
                return true;
            }
        } else if class & CARD_JOIN == 0 {
            card_digits = 0;
        }
        if class & TOKEN == 0 {
            if is_maskable_token(&b[run_start..i]) {
                return true;
            }
            run_start = i + 1;
        }
        i += 1;
    }
    // Keys are judged last, and only when nothing else calls for the full scan, which judges
    // them anyway.
    is_maskable_token(&b[run_start.min(b.len())..]) || (separators && has_sensitive_value(b))
}

/// The shortest word [`is_maskable_token`] can mask: `bearer`, or a secret's prefix with at
/// least one character after it.
const MASKABLE_MIN: usize = {
    let mut min = b"bearer".len();
    let mut i = 0;
    while i < SECRET_PREFIXES.len() {
        if SECRET_PREFIXES[i].len() + 1 < min {
            min = SECRET_PREFIXES[i].len() + 1;
        }
        i += 1;
    }
    if LONG_TOKEN_MIN < min {
        LONG_TOKEN_MIN
    } else {
        min
    }
};

/// Whether [`find_tokens`] masks `word` (a whole run of token bytes) or what follows it (a
/// bearer credential).
fn is_maskable_token(word: &[u8]) -> bool {
    // Most runs are short words: settle them on their length alone.
    word.len() >= MASKABLE_MIN && (word.eq_ignore_ascii_case(b"bearer") || is_masked_word(word))
}

/// Whether [`find_tokens`] masks `word` itself: a provider secret, a long digest or token.
fn is_masked_word(word: &[u8]) -> bool {
    SECRET_PREFIXES
        .iter()
        .any(|p| word.len() > p.len() && word.starts_with(p.as_bytes()))
        || (word.len() >= LONG_TOKEN_MIN
            && (word.iter().all(u8::is_ascii_hexdigit)
                || (word.iter().any(u8::is_ascii_uppercase)
                    && word.iter().any(u8::is_ascii_lowercase)
                    && word.iter().any(u8::is_ascii_digit))))
}

/// Masks e-mail addresses, card numbers, secrets, tokens, digests, signatures and the values of
/// sensitive keys inside `s`. Returns `s` unchanged (borrowed) when there is nothing to mask.
pub fn redact_text(s: &str) -> Cow<'_, str> {
    if !may_need_redaction(s.as_bytes()) {
        return Cow::Borrowed(s);
    }
    redact_scan(s)
}

/// The full scan behind [`redact_text`].
fn redact_scan(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let mut ranges: Found = Vec::new();
    find_key_values(b, &mut ranges);
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
/// string is passed through [`redact_text`] and integers that are card numbers are replaced.
/// Object keys that themselves hold an e-mail address, a card number or a secret are replaced
/// too.
pub fn redact_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(r) = redact_text(s) {
                *s = r;
            }
        }
        Value::Number(n) => {
            if n.as_u64().is_some_and(is_card_number) {
                *value = Value::String(REDACTED_CARD.to_owned());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => {
            if map.keys().any(|k| matches!(redact_text(k), Cow::Owned(_))) {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    redact_entry(&k, &mut v);
                    map.insert(redact_text(&k).into_owned(), v);
                }
            } else {
                map.iter_mut().for_each(|(k, v)| redact_entry(k, v));
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// Redacts the value of one object entry, by its key as written (a key that was itself masked is
/// judged by what it was, not by its placeholder).
fn redact_entry(key: &str, value: &mut Value) {
    if is_sensitive_key(key) {
        if !value.is_null() {
            *value = Value::String(REDACTED.to_owned());
        }
    } else {
        redact_json(value);
    }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']')
}

fn has_sensitive_value(b: &[u8]) -> bool {
    b.iter()
        .enumerate()
        .any(|(i, c)| matches!(c, b'=' | b':') && sensitive_value_at(b, i).is_some())
}

fn find_key_values(b: &[u8], out: &mut Found) {
    for (i, &c) in b.iter().enumerate() {
        if matches!(c, b'=' | b':')
            && let Some((start, end)) = sensitive_value_at(b, i)
        {
            out.push((start, end, REDACTED));
        }
    }
}

/// The value of a sensitive key written into text with the separator at `sep`, as a byte
/// range: `key=value`, `"key": value`, `key: "value"` or a header line `Header-Name: value`.
/// A bare `key: text` is prose (`invalid_signature: no v1 signature matched`), not a value.
fn sensitive_value_at(b: &[u8], sep: usize) -> Option<(usize, usize)> {
    let (key, key_quoted) = key_before(b, sep)?;
    let colon = b[sep] == b':';
    let mut start = sep + 1;
    if colon {
        while b.get(start) == Some(&b' ') {
            start += 1;
        }
    }
    let value_quoted = opening_quote(&b[start..]).is_some();
    let header_line = colon && !key_quoted && !value_quoted && key.contains(&b'-');
    if colon && !key_quoted && !value_quoted && !header_line {
        return None;
    }
    if !is_sensitive_key_bytes(key) {
        return None;
    }
    let (start, end) = value_span(b, start, header_line);
    (end > start).then_some((start, end))
}

/// The key just before the separator at `sep` (without its quotes) and whether it was quoted:
/// `key`, `"key"`, `'key'`, or `\"key\"` inside escaped JSON.
fn key_before(b: &[u8], sep: usize) -> Option<(&[u8], bool)> {
    let mut end = sep;
    let quoted = end > 0 && matches!(b[end - 1], b'"' | b'\'');
    if quoted {
        end -= 1;
        while end > 0 && b[end - 1] == b'\\' {
            end -= 1;
        }
    }
    let mut start = end;
    while start > 0 && is_key_byte(b[start - 1]) {
        start -= 1;
    }
    (start < end).then(|| (&b[start..end], quoted))
}

/// The quote a value opens with: `"`, `'`, or `\"` inside escaped JSON.
fn opening_quote(rest: &[u8]) -> Option<&'static [u8]> {
    [b"\\\"".as_slice(), b"\"", b"'"]
        .into_iter()
        .find(|q| rest.starts_with(q))
}

/// The bytes of a value that starts at `start`: the inside of its quotes, the whole of a JSON
/// object or array, the rest of a header line, or a bare word up to the next delimiter.
fn value_span(b: &[u8], start: usize, header_line: bool) -> (usize, usize) {
    let rest = &b[start..];
    if let Some(quote) = opening_quote(rest) {
        let inner = start + quote.len();
        return (inner, inner + closing_quote(&b[inner..], quote));
    }
    if matches!(rest.first(), Some(b'{' | b'[')) {
        return (start, start + matching_bracket(rest));
    }
    let ends_value = |c: &u8| {
        if header_line {
            matches!(c, b'\r' | b'\n')
        } else {
            c.is_ascii_whitespace()
                || matches!(
                    c,
                    b'&' | b',' | b';' | b'"' | b'\'' | b'}' | b']' | b')' | b'\\'
                )
        }
    };
    (
        start,
        start + rest.iter().position(ends_value).unwrap_or(rest.len()),
    )
}

/// Where the string opened by `quote` ends inside `s` (all of `s` when it never closes).
fn closing_quote(s: &[u8], quote: &[u8]) -> usize {
    if quote.len() > 1 {
        // `\"…\"`: the next escaped quote closes it.
        return s.windows(2).position(|w| w == quote).unwrap_or(s.len());
    }
    let mut escaped = false;
    for (i, &c) in s.iter().enumerate() {
        match c {
            b'\\' => escaped = !escaped,
            _ if c == quote[0] && !escaped => return i,
            _ => escaped = false,
        }
    }
    s.len()
}

/// The length of the JSON object or array `s` opens with, its nested strings skipped (all of
/// `s` when it never closes).
fn matching_bracket(s: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'"' => i += closing_quote(&s[i + 1..], b"\"") + 1,
            _ => {}
        }
        i += 1;
    }
    s.len()
}

/// The length of the `@` spelled at `i` (see [`AT_SIGNS`]), or 0.
fn at_sign_len(b: &[u8], i: usize) -> usize {
    let rest = &b[i..];
    AT_SIGNS
        .iter()
        .find(|at| rest.starts_with(at))
        .map_or(0, |at| at.len())
}

fn is_email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_email_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

fn find_emails(b: &[u8], out: &mut Found) {
    let mut i = 0;
    while i < b.len() {
        let at = if matches!(b[i], b'@' | b'%' | b'\\') {
            at_sign_len(b, i)
        } else {
            0
        };
        if at == 0 {
            i += 1;
            continue;
        }
        // `\\u0040` escaped twice: the extra backslashes belong to the `@`.
        let mut local_end = i;
        while local_end > 0 && b[local_end - 1] == b'\\' {
            local_end -= 1;
        }
        let mut start = local_end;
        while start > 0 && is_email_local(b[start - 1]) {
            start -= 1;
        }
        let domain_start = i + at;
        let mut end = domain_start;
        while end < b.len() && is_email_domain(b[end]) {
            end += 1;
        }
        // Trailing dots belong to the sentence, not the domain.
        while end > domain_start && b[end - 1] == b'.' {
            end -= 1;
        }
        if start < local_end && has_tld(&b[domain_start..end]) {
            out.push((start, end, REDACTED_EMAIL));
            i = end;
        } else {
            i += 1;
        }
    }
}

/// Whether a domain ends in a top-level domain of two letters or more after a named host.
fn has_tld(domain: &[u8]) -> bool {
    domain.iter().rposition(|&c| c == b'.').is_some_and(|dot| {
        let tld = &domain[dot + 1..];
        dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
    })
}

/// Whether digits glued after a card number read as its expiry (`MMYY`), alone or followed by
/// its CVC. A glued CVC alone is not recognised: it cannot be told from the card's own digits.
fn is_card_trailer(d: &[u8]) -> bool {
    matches!(d.len(), 4 | 7 | 8)
        && matches!((d[0], d[1]), (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2'))
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

/// Whether a JSON integer is a card number.
pub(crate) fn is_card_number(n: u64) -> bool {
    // 13 to 19 digits: most numbers logged (amounts, counts, statuses, epoch milliseconds up
    // to the year 2286) stop here.
    if !(1_000_000_000_000..=9_999_999_999_999_999_999).contains(&n) {
        return false;
    }
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut rest = n;
    while rest > 0 {
        digits[len] = (rest % 10) as u8;
        rest /= 10;
        len += 1;
    }
    let digits = &mut digits[..len];
    digits.reverse();
    CARD_DIGITS.contains(&len) && CARD_FIRST_DIGITS.contains(&digits[0]) && luhn_valid(digits)
}

fn find_cards(b: &[u8], out: &mut Found) {
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let (end, digits) = digit_run_end(b, i);
            if digits >= *CARD_DIGITS.start() && !is_xray_segment_id(b, i, end) {
                cards_in_run(b, i, end, out);
            }
            i = end;
        } else {
            // The digits of a `%XX` escape start no number.
            i += url_escape_len(&b[i..]).max(1);
        }
    }
}

/// Whether `b[start..end]` is the 16-hex-digit segment id of an X-Ray trace header field
/// (`Parent=…`, `Self=…`), which can happen to be all digits and Luhn-valid.
fn is_xray_segment_id(b: &[u8], start: usize, end: usize) -> bool {
    end - start == 16
        && (b[..start].ends_with(b"Parent=") || b[..start].ends_with(b"Self="))
        && b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// The length of the URL escape (`%XX`) `s` starts with, or 0.
fn url_escape_len(s: &[u8]) -> usize {
    match s {
        [b'%', h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => 3,
        _ => 0,
    }
}

/// The end of the run of digit groups that starts at `start`, and how many digits it holds.
fn digit_run_end(b: &[u8], start: usize) -> (usize, usize) {
    let (mut j, mut digits) = (start, 0);
    loop {
        let group = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        digits += j - group;
        match separator_len(b, j, j - group) {
            0 => return (j, digits),
            len => j += len,
        }
    }
}

/// The length of the separator at `i` that joins a group of `group_len` digits to the next
/// group as card numbers are printed (one space, `-`, `+`, `%20`, or a `.` between groups of
/// [`CARD_GROUP`] digits), or 0 when the run of digits ends at `i`.
fn separator_len(b: &[u8], i: usize, group_len: usize) -> usize {
    let len = match b.get(i) {
        Some(b' ' | b'-' | b'+') => 1,
        Some(b'%') if b[i..].starts_with(b"%20") => 3,
        Some(b'.')
            if CARD_GROUP.contains(&group_len)
                && CARD_GROUP.contains(&leading_digits(&b[i + 1..], *CARD_GROUP.end() + 1)) =>
        {
            1
        }
        _ => return 0,
    };
    if b.get(i + len).is_some_and(u8::is_ascii_digit) {
        len
    } else {
        0
    }
}

/// How many digits `s` starts with, counted up to `max`.
fn leading_digits(s: &[u8], max: usize) -> usize {
    s.iter()
        .take(max)
        .take_while(|c| c.is_ascii_digit())
        .count()
}

/// Masks the card numbers in the run of digit groups `b[start..end]`.
fn cards_in_run(b: &[u8], start: usize, end: usize, out: &mut Found) {
    // A label glued in front must be a word of its own (`card4242…`), not the tail of an
    // identifier (`…9EXY3636…`).
    let letters = b[..start]
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let word_starts = letters == start || !b[start - letters - 1].is_ascii_alphanumeric();
    let after_escape = start >= 3 && url_escape_len(&b[start - 3..]) == 3;
    let may_start = after_escape || (word_starts && is_card_edge(b[..start].iter().rev()));
    let may_end = is_card_edge(b[end..].iter());
    let mut g = start;
    while g < end {
        let card = if g > start || may_start {
            card_at(b, g, end, may_end)
        } else {
            None
        };
        g = match card {
            Some(card_end) => {
                out.push((g, card_end, REDACTED_CARD));
                card_end
            }
            None => g + leading_digits(&b[g..end], end),
        };
        while g < end && !b[g].is_ascii_digit() {
            g += url_escape_len(&b[g..]).max(1);
        }
    }
}

/// Whether a run of digits may begin or end a card on the side whose bytes are `beside`
/// (nearest first): at punctuation or the string's edge, or glued to a label of [`LABEL_MIN`]
/// letters or more that are not all hex digits, and more than that when all upper case (the
/// letter runs of base-36 identifiers such as PayPal's `WH-COC1105…`).
fn is_card_edge<'a>(beside: impl Iterator<Item = &'a u8>) -> bool {
    let (mut letters, mut hex, mut upper) = (0, true, true);
    for c in beside.take_while(|c| c.is_ascii_alphabetic()) {
        letters += 1;
        hex &= c.is_ascii_hexdigit();
        upper &= c.is_ascii_uppercase();
    }
    letters == 0 || (letters >= LABEL_MIN && !hex && (!upper || letters > LABEL_MIN))
}

/// The end of the card number that starts at the group `g` of a run ending at `run_end`, if
/// there is one: the longest Luhn-valid prefix of [`CARD_DIGITS`] digits that is one group, or
/// groups of [`CARD_GROUP`] digits, or the start of its first group with the rest of the group
/// its expiry and CVC (masked with it). It may end with the run only when `may_end`.
fn card_at(b: &[u8], g: usize, run_end: usize, may_end: bool) -> Option<usize> {
    if !CARD_FIRST_DIGITS.contains(&(b[g] - b'0')) {
        return None;
    }
    let first_group_end = g + leading_digits(&b[g..run_end], run_end);
    let mut digits = [0u8; *CARD_DIGITS.end()];
    let (mut n, mut group_len, mut groups) = (0, 0, 1);
    let mut card = None;
    let mut j = g;
    while j < run_end && n < digits.len() {
        if !b[j].is_ascii_digit() {
            if !CARD_GROUP.contains(&group_len) {
                break;
            }
            j += url_escape_len(&b[j..]).max(1);
            (group_len, groups) = (0, groups + 1);
            continue;
        }
        digits[n] = b[j] - b'0';
        (n, group_len, j) = (n + 1, group_len + 1, j + 1);
        let end = if j == run_end || !b[j].is_ascii_digit() {
            if groups > 1 && !CARD_GROUP.contains(&group_len) {
                continue;
            }
            j
        } else if groups == 1 && is_card_trailer(&b[j..first_group_end]) {
            first_group_end
        } else {
            continue;
        };
        if CARD_DIGITS.contains(&n) && (end < run_end || may_end) && luhn_valid(&digits[..n]) {
            card = Some(end);
        }
    }
    card
}

const fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'/')
}

fn find_tokens(b: &[u8], out: &mut Found) {
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
        if is_masked_word(word) {
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
            "paypal:WH-4M0448861G563140B-9EX36365822141321",
            "paypal:WH-COC11055RA711503B-4YM959094A144403T",
            "Root=1-65432101-234567890123abcdef012345;Parent=53995c3f42cd8ad8;Sampled=1",
            "processed at 2025-03-14T09:26:53.589Z, published 2025-03-14T09:26:54.001Z",
            "client 192.168.100.200 on 10.0.0.1, version 1.2.3",
            "invalid_signature: no v1 signature matched",
            "error: signature_mismatch (signature: invalid)",
        ] {
            assert_eq!(redact_text(s), s);
        }
    }

    #[test]
    fn an_all_digit_xray_parent_id_is_not_a_card() {
        // 3195217954985353 is Luhn-valid; as a trace header's Parent id it is an identifier.
        let header = "Root=1-00000000-000000000000000000000000;Parent=3195217954985353;Sampled=1";
        assert_eq!(redact_text(header), header);
        assert_eq!(redact_text("card 3195217954985353"), "card [redacted-card]");
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
            "%40",
            "%2540",
            "\\u0040",
            "%20",
            "example.com",
            "4242.4242.4242.4242",
            "card",
            "1229",
            "12/29",
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "1-6763a1b2-0123456789abcdef01234567",
            "stripe:evt_1NxYzAbC",
            "2026-12-03T10:00:00.123Z",
            "-",
            "+",
            ".",
            "7",
            "signing_secret",
            "x-api-key",
            "=",
            ": ",
            "\"",
            "{",
            "}",
        ];
        let mut rng = payhook_testkit::rng::XorShift::new(0x2545_f491_4f6c_dd1d_u64);
        let mut next = || rng.next_u64();
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

    /// The pre-check as it was written before the byte-class table: the new one must answer
    /// exactly as this one does.
    fn may_need_redaction_by_comparisons(b: &[u8]) -> bool {
        let mut card_digits = 0usize;
        let mut run_start = 0usize;
        let mut separators = false;
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'@' => return true,
                b'%' | b'\\' if at_sign_len(b, i) > 0 => return true,
                b'=' | b':' => separators = true,
                _ => {}
            }
            if c.is_ascii_digit() {
                card_digits += 1;
                if card_digits >= *CARD_DIGITS.start() {
                    return true;
                }
            } else if !matches!(c, b' ' | b'-' | b'+' | b'.' | b'%') {
                card_digits = 0;
            }
            if !is_token_byte(c) {
                let word = &b[run_start..i];
                if word.eq_ignore_ascii_case(b"bearer") || is_masked_word(word) {
                    return true;
                }
                run_start = i + 1;
            }
        }
        let word = &b[run_start.min(b.len())..];
        word.eq_ignore_ascii_case(b"bearer")
            || is_masked_word(word)
            || (separators && has_sensitive_value(b))
    }

    #[test]
    fn the_byte_class_pre_check_answers_as_the_comparisons_did() {
        // Pieces that reach every branch (each class of byte, the spellings of `@`, secret
        // prefixes, long hex and base64 runs, card-like digit groups, keys and separators),
        // glued at random, and every byte value once.
        let pieces: &[&[u8]] = &[
            b"a",
            b"Z",
            b"7",
            b"4242",
            b"_",
            b"+",
            b"/",
            b" ",
            b"-",
            b".",
            b"%",
            b"%40",
            b"%2540",
            b"\\u0040",
            b"\\",
            b"@",
            b"=",
            b":",
            b"\"",
            b"whsec_",
            b"sk_live_",
            b"rk_test_",
            b"Bearer",
            b"bEaReR",
            b"token",
            b"x-api-key",
            b"\xff",
            b"\xc3\xa9",
            b"0123456789abcdef0123456789abcdef01234567",
            b"AbC9xYz0AbC9xYz0AbC9xYz0AbC9xYz0AbC9xYz0",
            b"\t",
            b"\n",
            b"\0",
        ];
        let mut rng = payhook_testkit::rng::XorShift::new(0x9e37_79b9_7f4a_7c15_u64);
        let mut next = || rng.next_u64();
        let mut both = [0usize; 2];
        for _ in 0..50_000 {
            let count = (next() % 12) as usize;
            let text: Vec<u8> = (0..count)
                .flat_map(|_| {
                    pieces[(next() % pieces.len() as u64) as usize]
                        .iter()
                        .copied()
                })
                .collect();
            let expected = may_need_redaction_by_comparisons(&text);
            assert_eq!(
                may_need_redaction(&text),
                expected,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            both[usize::from(expected)] += 1;
        }
        assert!(
            both[0] > 1_000 && both[1] > 1_000,
            "both answers exercised: {both:?}"
        );
        for byte in 0..=255u8 {
            for text in [
                vec![byte],
                vec![b'a', byte, b'a'],
                [b"whsec_x".as_slice(), &[byte]].concat(),
            ] {
                assert_eq!(
                    may_need_redaction(&text),
                    may_need_redaction_by_comparisons(&text)
                );
            }
        }
    }

    #[test]
    fn field_names_are_judged_as_keys_however_many_there_are() {
        // More names than the table has slots, sensitive and not, each asked several times
        // (the first time fills a slot, the next ones read it, or judge afresh once the table
        // is full); a name that shares a prefix of another's bytes is a different key.
        let names: Vec<&'static str> = (0..300)
            .map(|i| {
                let name = match i % 4 {
                    0 => format!("field_{i}"),
                    1 => format!("client_secret_{i}"),
                    2 => format!("x{i}-api-key"),
                    _ => format!("amount{i}"),
                };
                &*Box::leak(name.into_boxed_str())
            })
            .collect();
        // Every prefix of one name: one address, many lengths, some sensitive (`sig`,
        // `signature…`) and some not.
        let whole: &'static str = "signature_header_of_the_request";
        let prefixes: Vec<&'static str> = (1..=whole.len()).map(|n| &whole[..n]).collect();
        for _ in 0..3 {
            for name in prefixes.iter().chain(&names).copied() {
                assert_eq!(is_sensitive_field(name), is_sensitive_key(name), "{name}");
            }
        }
        assert!(is_sensitive_field(whole) && !is_sensitive_field(&whole[..4]));
    }

    #[test]
    fn ids_and_timestamps_skip_the_full_scan() {
        for text in [
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "Root=1-6763a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1",
            "stripe:evt_1NxYzAbCdEfGh",
            "2026-12-03T10:00:00.123Z",
            "payment.succeeded tier high amount 4999.00 USD",
        ] {
            assert!(!may_need_redaction(text.as_bytes()), "{text}");
        }
        for text in ["4242 4242 4242 4242", "whsec_abc123", "Bearer x"] {
            assert!(may_need_redaction(text.as_bytes()), "{text}");
        }
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
    #[test]
    fn sensitive_keys_longer_than_64_bytes_are_recognised() {
        let prefix = "metadata_field_generated_from_a_flattened_provider_payload_path_";
        assert!(prefix.len() >= 64);
        for suffix in [
            "signature",
            "password",
            "customer_email",
            "card_number",
            "api_key",
        ] {
            let key = format!("{prefix}{suffix}");
            assert!(is_sensitive_key(&key), "{key}");
        }
        assert!(is_sensitive_key("card[number]"));
        assert!(!is_sensitive_key(&format!("{prefix}{prefix}")));
    }

    #[test]
    fn cards_followed_by_their_expiry_or_cvc_are_masked() {
        for s in [
            "4242424242424242 12/29",
            "4242 4242 4242 4242 12/29 123",
            "4242-4242-4242-4242 1229",
            "4242424242424242 123",
            "42424242424242421229",
            "42424242424242421229345",
            "378282246310005 1229 1234",
        ] {
            let r = redact_text(s);
            assert!(r.starts_with(REDACTED_CARD), "{s:?} became {r:?}");
        }
    }

    #[test]
    fn dotted_cards_and_cards_glued_to_labels_are_masked() {
        for (s, rest) in [
            ("4242.4242.4242.4242", ""),
            ("3782.822463.10005", ""),
            ("4242+4242+4242+4242", ""),
            ("4242%204242%204242%204242", ""),
            ("card4242424242424242", "card"),
            ("Card4242424242424242exp1229", "Card"),
            ("4242424242424242visa", ""),
            ("qty 1 4242 4242 4242 4242", "qty 1 "),
        ] {
            let r = redact_text(s);
            assert!(
                r.starts_with(&format!("{rest}{REDACTED_CARD}")),
                "{s:?} became {r:?}"
            );
        }
    }

    #[test]
    fn digits_glued_to_identifier_letters_are_not_cards() {
        for s in [
            "WH-COC41055123456789-6RW800890C634293G",
            "1-5759e988-4242424242424242abcdef012345",
            "x4242424242424242",
            "ab4242424242424242",
        ] {
            assert_eq!(redact_text(s), s);
        }
    }

    #[test]
    fn encoded_and_upper_case_emails_are_masked() {
        for s in [
            "jane.doe%40example.com",
            "jane.doe%2Bshop%40example.co.uk",
            "jane.doe%2540example.com",
            "jane.doe\\u0040example.com",
            "jane.doe\\\\u0040example.com",
            "JANE.DOE@EXAMPLE.COM",
        ] {
            let r = redact_text(s);
            assert_eq!(r, REDACTED_EMAIL, "{s:?}");
        }
        assert_eq!(
            redact_text("https://example.test/cb?email=jane%40example.com&ok=1"),
            format!("https://example.test/cb?email={REDACTED}&ok=1")
        );
    }

    #[test]
    fn values_of_sensitive_keys_written_inside_text_are_masked() {
        for (s, expected) in [
            (
                "signing_secret=sq0wbk-plain&next=1",
                "signing_secret=[redacted]&next=1",
            ),
            (
                r#"{"password":"hunter2","user":"u1"}"#,
                r#"{"password":"[redacted]","user":"u1"}"#,
            ),
            (
                r#"{\"password\": \"hunter2\"}"#,
                r#"{\"password\": \"[redacted]\"}"#,
            ),
            (
                r#"{"card": {"cvc": "123"}, "id": "pi_1"}"#,
                r#"{"card": [redacted], "id": "pi_1"}"#,
            ),
            (
                r#"Config { signing_secret: "sq0wbk-plain" }"#,
                r#"Config { signing_secret: "[redacted]" }"#,
            ),
            (
                "x-api-key: k3y-value\r\nhost: a",
                "x-api-key: [redacted]\r\nhost: a",
            ),
        ] {
            assert_eq!(redact_text(s), expected);
        }
    }

    #[test]
    fn card_numbers_written_as_json_numbers_are_masked() {
        let mut v = serde_json::json!({
            "number": 4242424242424242_u64,
            "amount": 1999,
            "created": 1767225600000_u64,
            "sequence": 1884949646046769612_u64,
        });
        redact_json(&mut v);
        assert_eq!(v["number"], REDACTED_CARD);
        assert_eq!(v["amount"], 1999);
        assert_eq!(v["created"], 1767225600000_u64);
        assert_eq!(v["sequence"], 1884949646046769612_u64);
    }
}
