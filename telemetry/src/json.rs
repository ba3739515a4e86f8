//! Small, allocation-free JSON writing helpers shared by the log and EMF encoders. Both write
//! their documents by hand (rather than through `serde_json::Value`) to keep key order stable
//! and the per-invocation cost low; string escaping follows RFC 8259.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal (with quotes).
pub(crate) fn push_str(buf: &mut String, s: &str) {
    buf.push('"');
    push_str_contents(buf, s);
    buf.push('"');
}

/// Appends the escaped contents of a JSON string literal (without quotes).
pub(crate) fn push_str_contents(buf: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // Most strings need no escaping: copy them in one go.
    if !needs_escape(bytes) {
        buf.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        buf.push_str(&s[start..i]);
        match escape {
            Some(e) => buf.push_str(e),
            None => {
                let _ = write!(buf, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    buf.push_str(&s[start..]);
}

/// Whether some byte of `bytes` must be escaped in a JSON string: a control character (below
/// 0x20), `"` or `\\`. Eight bytes at a time, as one 64-bit word: most strings written are
/// short (keys, ids, names), and a byte loop, or one the compiler vectorises, spends more on
/// its setup than on the bytes.
#[inline]
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    let word_at = |at: usize| {
        let mut word = [0_u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        escape_flags(u64::from_ne_bytes(word))
    };
    if bytes.len() < 8 {
        return bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    }
    let mut at = 0;
    while at + 8 < bytes.len() {
        if word_at(at) != 0 {
            return true;
        }
        at += 8;
    }
    // The last eight bytes, overlapping the word before when the length is not a multiple.
    word_at(bytes.len() - 8) != 0
}

/// Non-zero when a byte of `word` is below 0x20, `"` or `\\`. Each test is the classic
/// "has a byte less than n" (`(w - n·0x01…) & !w & 0x80…`, with n = 0x20, or n = 1 after an
/// XOR with the byte sought): a borrow can only leave a byte that is itself a match, so the
/// word's answer is exact even though the flag of a byte above a match may be wrong.
#[inline(always)]
fn escape_flags(word: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGH
}

/// Appends `"key":` .
pub(crate) fn push_key(buf: &mut String, key: &str) {
    push_str(buf, key);
    buf.push(':');
}

/// Appends a finite number in the shortest form that round-trips (integers without `.0`);
/// non-finite numbers become `null`, which JSON can represent and EMF validators reject.
pub(crate) fn push_f64(buf: &mut String, v: f64) {
    if !v.is_finite() {
        buf.push_str("null");
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        push_i64(buf, v as i64);
    } else if let Some(thousandths) = as_thousandths(v) {
        // What `{v}` writes, without the formatting machinery: the value is the double
        // nearest to a decimal of at most three places and fifteen significant digits, which
        // no shorter decimal shares, so that decimal is its shortest form.
        if v < 0.0 {
            buf.push('-');
        }
        let magnitude = thousandths.unsigned_abs();
        push_u64(buf, magnitude / 1000);
        let mut fraction = magnitude % 1000;
        let mut digits = 3;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        buf.push('.');
        for place in (0..digits).rev() {
            buf.push(char::from(b'0' + (fraction / 10_u64.pow(place) % 10) as u8));
        }
    } else {
        let _ = write!(buf, "{v}");
    }
}

/// `v` × 1000 as an integer, when `v` (not whole, below 10^12 in magnitude) is the double
/// nearest to that many thousandths.
fn as_thousandths(v: f64) -> Option<i64> {
    if v.abs() >= 1e12 {
        return None;
    }
    let scaled = (v * 1000.0).round();
    // The division is correctly rounded: equal to `v` exactly when the decimal parses to `v`.
    (scaled / 1000.0 == v).then_some(scaled as i64)
}

/// Appends an integer.
pub(crate) fn push_i64(buf: &mut String, v: i64) {
    if v < 0 {
        buf.push('-');
    }
    push_u64(buf, v.unsigned_abs());
}

/// Appends an unsigned integer (digits written directly: this runs for every timestamp, line
/// number and metric value).
pub(crate) fn push_u64(buf: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        buf.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_strings_parse_back_to_the_original() {
        for s in [
            "plain",
            "quote \" back \\ slash",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}",
            "é€😀",
        ] {
            let mut buf = String::new();
            push_str(&mut buf, s);
            let back: String = serde_json::from_str(&buf).expect("valid JSON string");
            assert_eq!(back, s);
        }
    }

    #[test]
    fn the_word_at_a_time_check_finds_exactly_the_bytes_to_escape() {
        let byte_by_byte = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        // Every byte value at every position of strings up to 17 bytes long, in a background
        // of letters and of bytes just above each class (0x20, '#', ']', 0x80, 0xff).
        for len in 1..=17 {
            for background in [b'a', 0x20, b'#', b']', 0x80, 0xff, b'!'] {
                for at in 0..len {
                    for value in 0..=255_u8 {
                        let mut bytes = vec![background; len];
                        bytes[at] = value;
                        assert_eq!(needs_escape(&bytes), byte_by_byte(&bytes), "{bytes:?}");
                    }
                }
            }
        }
        let mut rng = payhook_testkit::rng::XorShift::new(0x5eed);
        for _ in 0..20_000 {
            let len = (rng.next_u64() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.next_u64() % 4 {
                    0 => (rng.next_u64() % 256) as u8,
                    _ => b' ' + (rng.next_u64() % 95) as u8,
                })
                .collect();
            assert_eq!(needs_escape(&bytes), byte_by_byte(&bytes), "{bytes:?}");
        }
        assert!(!needs_escape(b""));
    }

    #[test]
    fn integers_are_written_in_full() {
        for v in [0_i64, 7, -7, 10, 1_767_225_600_000, i64::MIN, i64::MAX] {
            let mut buf = String::new();
            push_i64(&mut buf, v);
            assert_eq!(buf, v.to_string());
        }
        let mut buf = String::new();
        push_u64(&mut buf, u64::MAX);
        assert_eq!(buf, u64::MAX.to_string());
    }

    #[test]
    fn short_decimals_are_written_as_display_writes_them() {
        let mut rng = payhook_testkit::rng::XorShift::new(0xf10a7);
        let mut values = vec![
            12.5,
            0.1,
            -0.25,
            0.001,
            999_999_999_999.999,
            1e-7,
            0.1 + 0.2,
        ];
        for _ in 0..50_000 {
            let thousandths =
                (rng.next_u64() % 2_000_000_000_000_000) as i64 - 1_000_000_000_000_000;
            values.push(thousandths as f64 / 1000.0);
            values.push(f64::from_bits(rng.next_u64()));
            values.push((rng.next_u64() % 100_000) as f64 / 100.0);
        }
        for v in values
            .into_iter()
            .filter(|v| v.is_finite() && v.fract() != 0.0)
        {
            let mut buf = String::new();
            push_f64(&mut buf, v);
            assert_eq!(buf, format!("{v}"), "{v:e}");
        }
    }

    #[test]
    fn numbers_are_valid_json() {
        for v in [0.0, 1.0, -3.0, 42.7, 1e-7, 1e21, 123456789.125] {
            let mut buf = String::new();
            push_f64(&mut buf, v);
            let back: f64 = serde_json::from_str(&buf).expect("valid JSON number");
            assert_eq!(back, v);
        }
        let mut buf = String::new();
        push_f64(&mut buf, f64::NAN);
        assert_eq!(buf, "null");
    }
}
