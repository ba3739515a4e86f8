//! A small JSON reader that keeps what `serde_json::Value` throws away and event patterns
//! need: duplicate keys in document order (EventBridge lets the last one win in a pattern, and
//! sees every one in an event) and the spelling of each number (`3.5e1`, `1E309`).
//!
//! Strings without escapes and every number's text borrow from the input, so reading an event
//! allocates only its objects and arrays.

use std::borrow::Cow;

/// Deepest nesting accepted, like `serde_json`'s default recursion limit.
pub(crate) const MAX_DEPTH: usize = 128;

/// A JSON value as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number with its text.
    Number(Number<'a>),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object; keys in document order, duplicates kept.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// A JSON number: its text as written and its nearest `f64` (infinite when out of range).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number<'a> {
    pub(crate) text: Cow<'a, str>,
    pub(crate) value: f64,
}

impl Number<'_> {
    /// True when the text names a non-zero number that `f64` cannot hold: it overflows to
    /// infinity (`1E309`) or underflows to zero (`1E-325`).
    pub(crate) fn loses_value(&self) -> bool {
        if !self.value.is_finite() {
            return true;
        }
        if self.value == 0.0 {
            let mantissa = self.text.split(['e', 'E']).next().unwrap_or_default();
            return mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
        }
        false
    }
}

impl Json<'_> {
    /// The JSON type's name, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// Converts a `serde_json::Value` (whose objects have already lost duplicate keys and whose
    /// numbers are re-spelled by `serde_json`).
    pub(crate) fn from_serde(value: &serde_json::Value) -> Json<'_> {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(Number {
                text: Cow::Owned(n.to_string()),
                value: n.as_f64().unwrap_or(f64::NAN),
            }),
            serde_json::Value::String(s) => Json::String(Cow::Borrowed(s)),
            serde_json::Value::Array(items) => {
                Json::Array(items.iter().map(Json::from_serde).collect())
            }
            serde_json::Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::from_serde(v)))
                    .collect(),
            ),
        }
    }

    /// Every object key that occurs more than once in the same object, as `path.key`.
    pub(crate) fn duplicate_keys(&self) -> Vec<String> {
        fn walk(value: &Json<'_>, path: &str, out: &mut Vec<String>) {
            match value {
                Json::Object(fields) => {
                    for (i, (key, child)) in fields.iter().enumerate() {
                        let here = if path.is_empty() {
                            key.to_string()
                        } else {
                            format!("{path}.{key}")
                        };
                        if fields[..i].iter().any(|(k, _)| k == key) && !out.contains(&here) {
                            out.push(here.clone());
                        }
                        walk(child, &here, out);
                    }
                }
                Json::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, &format!("{path}[{i}]"), out);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, "", &mut out);
        out
    }
}

/// Why a text is not JSON; `message` follows Jackson's wording (what AWS reports), and the
/// position is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub(crate) message: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (line {}, column {})",
            self.message, self.line, self.column
        )
    }
}

/// Parses one JSON document; anything but whitespace after it is an error.
pub(crate) fn parse(text: &str) -> Result<Json<'_>, JsonError> {
    parse_keeping(text, None)
}

/// Like [`parse`], but an object member whose key `keep` refuses is checked for syntax and
/// left out, so reading an event builds only the fields some pattern can look at (event-ruler
/// skips unused fields the same way).
pub(crate) fn parse_keeping<'a>(
    text: &'a str,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> Result<Json<'a>, JsonError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        keep,
    };
    parser.skip_ws();
    if parser.pos == parser.bytes.len() {
        return Err(parser.error("No content to map due to end-of-input"));
    }
    let value = parser.value()?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error(&format!(
            "Unexpected content after the JSON value: {}",
            parser.describe_here()
        )));
    }
    Ok(value)
}

struct Parser<'a, 'k> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    keep: Option<&'k dyn Fn(&str) -> bool>,
}

impl<'a> Parser<'a, '_> {
    fn error(&self, message: &str) -> JsonError {
        let before = &self.text[..self.char_boundary(self.pos)];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        JsonError {
            message: message.to_owned(),
            line,
            column,
        }
    }

    fn char_boundary(&self, mut pos: usize) -> usize {
        pos = pos.min(self.text.len());
        while !self.text.is_char_boundary(pos) {
            pos -= 1;
        }
        pos
    }

    /// `'x' (code 120)` for the character at the cursor, Jackson style.
    fn describe_here(&self) -> String {
        match self.text[self.char_boundary(self.pos)..].chars().next() {
            Some(c) => format!("('{c}' (code {}))", c as u32),
            None => "end-of-input".to_owned(),
        }
    }

    fn unexpected(&self, expecting: &str) -> JsonError {
        if self.pos >= self.bytes.len() {
            return self.error(&format!("Unexpected end-of-input: {expecting}"));
        }
        self.error(&format!(
            "Unexpected character {}: was expecting {expecting}",
            self.describe_here()
        ))
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self) -> Result<Json<'a>, JsonError> {
        match self.bytes.get(self.pos) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.literal(),
            None => Err(self.error("Unexpected end-of-input: expected a JSON value")),
        }
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("Nesting depth exceeds the maximum of {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Json<'a>, JsonError> {
        self.enter()?;
        self.pos += 1;
        let mut fields = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(self.unexpected("double-quote to start field name"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(self.unexpected("a colon to separate field name and value"));
            }
            self.pos += 1;
            self.skip_ws();
            if self.keep.is_some_and(|keep| !keep(&key)) {
                self.skip_value()?;
            } else {
                let value = self.value()?;
                fields.push((key, value));
            }
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Json::Object(fields));
                }
                _ => return Err(self.unexpected("comma to separate Object entries")),
            }
        }
    }

    fn array(&mut self) -> Result<Json<'a>, JsonError> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.unexpected("comma to separate Array entries")),
            }
        }
    }

    /// Checks one value's syntax without building containers.
    fn skip_value(&mut self) -> Result<(), JsonError> {
        match self.bytes.get(self.pos) {
            Some(b'{') => self.skip_container(b'}', "double-quote to start field name", "Object"),
            Some(b'[') => self.skip_container(b']', "", "Array"),
            Some(b'-' | b'0'..=b'9') => self.number_text().map(drop),
            Some(b'"') => self.skip_string(),
            _ => self.value().map(drop),
        }
    }

    /// Checks a string's syntax (escapes included) without unescaping it.
    fn skip_string(&mut self) -> Result<(), JsonError> {
        self.pos += 1;
        loop {
            self.pos = find_special(self.bytes, self.pos);
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.bytes.get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1;
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            self.hex4()?;
                        }
                        Some(&other) => {
                            return Err(self.error(&format!(
                                "Unrecognized character escape '{}' (code {other})",
                                other as char
                            )));
                        }
                        None => {
                            return Err(
                                self.error("Unexpected end-of-input in character escape sequence")
                            );
                        }
                    }
                }
                Some(&b) => return Err(self.control_char(b)),
                None => {
                    return Err(self.error(
                        "Unexpected end-of-input: was expecting closing quote for a string value",
                    ));
                }
            }
        }
    }

    /// Skips an object (`close` is `}`) or an array (`]`).
    fn skip_container(
        &mut self,
        close: u8,
        key_expected: &str,
        what: &str,
    ) -> Result<(), JsonError> {
        let object = close == b'}';
        self.enter()?;
        self.pos += 1;
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&close) {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            if object {
                if self.bytes.get(self.pos) != Some(&b'"') {
                    return Err(self.unexpected(key_expected));
                }
                self.skip_string()?;
                self.skip_ws();
                if self.bytes.get(self.pos) != Some(&b':') {
                    return Err(self.unexpected("a colon to separate field name and value"));
                }
                self.pos += 1;
                self.skip_ws();
            }
            self.skip_value()?;
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(&b) if b == close => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => {
                    return Err(self.unexpected(&format!("comma to separate {what} entries")));
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Json<'a>, JsonError> {
        let rest = &self.bytes[self.pos..];
        for (word, value) in [
            (&b"true"[..], Json::Bool(true)),
            (&b"false"[..], Json::Bool(false)),
            (&b"null"[..], Json::Null),
        ] {
            if rest.starts_with(word) && !rest.get(word.len()).is_some_and(|b| is_token_byte(*b)) {
                self.pos += word.len();
                return Ok(value);
            }
        }
        // Jackson reports the whole unrecognised token.
        let start = self.char_boundary(self.pos);
        let token: String = self.text[start..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
            .collect();
        if token.is_empty() {
            return Err(self.error(&format!(
                "Unexpected character {}: expected a valid value (JSON String, Number, Array, \
                 Object or token 'null', 'true' or 'false')",
                self.describe_here()
            )));
        }
        Err(self.error(&format!(
            "Unrecognized token '{token}': was expecting (JSON String, Number, Array, Object or \
             token 'null', 'true' or 'false')"
        )))
    }

    fn number(&mut self) -> Result<Json<'a>, JsonError> {
        let text = self.number_text()?;
        // The grammar checked by `number_text` is a subset of what `f64::from_str` accepts;
        // out-of-range values become infinity or zero, which callers check with `loses_value`.
        let value = text.parse::<f64>().unwrap_or(f64::NAN);
        Ok(Json::Number(Number {
            text: Cow::Borrowed(text),
            value,
        }))
    }

    /// Checks a number's syntax and returns its text.
    fn number_text(&mut self) -> Result<&'a str, JsonError> {
        let start = self.pos;
        let b = self.bytes;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => {
                i += 1;
                if b.get(i).is_some_and(u8::is_ascii_digit) {
                    self.pos = i;
                    return Err(self.error("Invalid numeric value: Leading zeroes not allowed"));
                }
            }
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => {
                self.pos = i;
                return Err(
                    self.error("Invalid numeric value: expected digit (0-9) to follow minus sign")
                );
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                self.pos = i;
                return Err(
                    self.error("Invalid numeric value: Decimal point not followed by a digit")
                );
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                self.pos = i;
                return Err(
                    self.error("Invalid numeric value: Exponent indicator not followed by a digit")
                );
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if b.get(i).is_some_and(|b| is_token_byte(*b)) {
            self.pos = i;
            return Err(self.error(&format!(
                "Unexpected character {} in numeric value",
                self.describe_here()
            )));
        }
        self.pos = i;
        Ok(&self.text[start..i])
    }

    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.pos += 1; // opening quote
        let start = self.pos;
        // Fast path: no escapes.
        self.pos = find_special(self.bytes, self.pos);
        match self.bytes.get(self.pos) {
            Some(b'"') => {
                let s = &self.text[start..self.pos];
                self.pos += 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(&b) if b < 0x20 => return Err(self.control_char(b)),
            _ => {}
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.error(
                    "Unexpected end-of-input: was expecting closing quote for a string value",
                ));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    self.pos += 1;
                    let Some(&e) = self.bytes.get(self.pos) else {
                        return Err(
                            self.error("Unexpected end-of-input in character escape sequence")
                        );
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            out.push(self.unicode_escape(unit)?);
                        }
                        other => {
                            self.pos -= 1;
                            return Err(self.error(&format!(
                                "Unrecognized character escape '{}' (code {other})",
                                other as char
                            )));
                        }
                    }
                }
                0x00..=0x1f => return Err(self.control_char(b)),
                _ => {
                    // Copy the run up to the next quote, backslash or control character.
                    let run_start = self.pos;
                    self.pos = find_special(self.bytes, self.pos);
                    out.push_str(&self.text[run_start..self.pos]);
                }
            }
        }
    }

    fn control_char(&self, b: u8) -> JsonError {
        self.error(&format!(
            "Illegal unquoted character ((CTRL-CHAR, code {b})): has to be escaped using \
             backslash to be included in string value"
        ))
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("Unexpected end-of-input in character escape sequence"))?;
        let mut unit: u16 = 0;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or_else(|| {
                self.error("Unexpected character in \\u escape: expected a hex-digit")
            })?;
            unit = unit * 16 + v as u16;
        }
        self.pos += 4;
        Ok(unit)
    }

    /// Decodes `\uXXXX`, pairing surrogates; a lone surrogate (legal in Java strings, not in
    /// Rust ones) becomes U+FFFD.
    fn unicode_escape(&mut self, unit: u16) -> Result<char, JsonError> {
        if (0xD800..0xDC00).contains(&unit) {
            if self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") {
                let save = self.pos;
                self.pos += 2;
                let low = self.hex4()?;
                if (0xDC00..0xE000).contains(&low) {
                    let c =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
                }
                self.pos = save;
            }
            return Ok('\u{FFFD}');
        }
        Ok(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'))
    }
}

/// Index of the first byte at or after `from` that ends a run of plain string content: a
/// quote, a backslash or a control character (`bytes.len()` if none). Looks at eight bytes at
/// a time: strings in events are mostly ids and timestamps tens of bytes long.
fn find_special(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        // The lowest flagged byte of each test is exact (borrows only flag bytes above it).
        let hits = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | x.wrapping_sub(ONES * 0x20) & !x)
            & HIGHS;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_duplicate_keys_in_order() {
        let v = parse(r#"{"x": ["y"], "x": ["z"]}"#).unwrap();
        let Json::Object(fields) = v else { panic!() };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].0, "x");
        assert_eq!(fields[1].0, "x");
    }

    #[test]
    fn keeps_number_text() {
        let v = parse("[3.5e1, 1E309, -0.0, 1E-325]").unwrap();
        let Json::Array(items) = v else { panic!() };
        let nums: Vec<_> = items
            .iter()
            .map(|i| match i {
                Json::Number(n) => n.clone(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(nums[0].text, "3.5e1");
        assert_eq!(nums[0].value, 35.0);
        assert!(!nums[0].loses_value());
        assert!(nums[1].loses_value());
        assert!(!nums[2].loses_value());
        assert!(nums[3].loses_value());
    }

    #[test]
    fn unescapes_strings_and_pairs_surrogates() {
        let v = parse(r#""a\"b\\c\u00e9\ud83d\ude80""#).unwrap();
        assert_eq!(v, Json::String(Cow::Owned("a\"b\\cé🚀".into())));
    }

    #[test]
    fn reports_jackson_style_errors() {
        let e = parse("this is valid json but not a dict").unwrap_err();
        assert!(
            e.message
                .starts_with("Unrecognized token 'this': was expecting")
        );
        let e = parse("{'bad': 'quotation'}").unwrap_err();
        assert_eq!(
            e.message,
            "Unexpected character (''' (code 39)): was expecting double-quote to start field name"
        );
        assert!(parse("{} x").is_err());
        assert!(parse("01").is_err());
        assert!(parse("[1,]").is_err());
        assert!(parse("\"a\nb\"").is_err());
    }

    #[test]
    fn skipped_members_are_checked_but_not_kept() {
        let keep = |k: &str| k != "skip";
        let v = parse_keeping(r#"{"skip": {"a": [1, "x\\n", {}]}, "k": 1}"#, Some(&keep)).unwrap();
        assert_eq!(
            v,
            Json::Object(vec![(
                Cow::Borrowed("k"),
                Json::Number(Number {
                    text: Cow::Borrowed("1"),
                    value: 1.0
                })
            )])
        );
        assert!(parse_keeping(r#"{"skip": [1,]}"#, Some(&keep)).is_err());
        assert!(parse_keeping(r#"{"skip": {"a" 1}}"#, Some(&keep)).is_err());
        assert!(parse_keeping(r#"{"skip": tru}"#, Some(&keep)).is_err());
        assert!(parse_keeping(r#"{"skip": "a\qb"}"#, Some(&keep)).is_err());
        assert!(parse_keeping(r#"{"skip": "a\u00zz"}"#, Some(&keep)).is_err());
        assert!(parse_keeping("{\"skip\": \"a\u{1}\"}", Some(&keep)).is_err());
        assert!(parse_keeping(r#"{"skip": "a\u00e9\"\\"}"#, Some(&keep)).is_ok());
    }

    #[test]
    fn finds_special_bytes_at_every_offset() {
        for len in 0..20 {
            for at in 0..=len {
                for special in [b'"', b'\\', b'\n', 0u8, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes.extend_from_slice("é€".as_bytes());
                    if at < len {
                        bytes[at] = special;
                    }
                    let expected = if at < len { at } else { bytes.len() };
                    assert_eq!(find_special(&bytes, 0), expected, "len {len} at {at}");
                }
            }
        }
        assert_eq!(find_special(b"ab\"cd\"", 3), 5);
    }

    #[test]
    fn limits_depth() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }
}
