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
    // Most strings need no escaping: copy them in one go. (A fold rather than `any`, so the
    // check has no early exit and the compiler can vectorise it.)
    let needs_escape = bytes.iter().fold(false, |acc, &b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
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
    } else {
        let _ = write!(buf, "{v}");
    }
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
