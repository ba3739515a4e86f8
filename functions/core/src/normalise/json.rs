//! A sparse, borrowing JSON reader: one pass over the body that keeps only the keys a
//! normaliser reads and skips everything else.
//!
//! A provider's webhook body is mostly fields payhook never looks at (a Stripe PaymentIntent
//! has some sixty keys, of which seven matter). Building a `serde_json::Value` of the whole body
//! allocates a map entry and a `String` for each of them, and that was most of the validator's
//! time. Here each normaliser declares the keys it reads as a [`Schema`] tree; the reader
//! ([`parse`]) keeps those (strings borrowed from the body unless they contain escapes) and lets
//! serde skip the rest, still checking that the whole body is well-formed JSON.
//!
//! The result reads like the JSON it came from, for the normalisers' error messages: a kept key
//! holds its value's real kind (a string where an object was expected is still "expected a JSON
//! object"). Within an object the last copy of a repeated key wins, as in `serde_json`; at the
//! top level a repeated declared key is an error, as with a derived envelope struct.
//!
//! A key read without being declared is a bug the tests catch: [`Fields::get`] panics in debug
//! builds when its key is not in the object's schema.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The keys of one JSON object that a normaliser reads, each with what is read inside it.
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) keys: &'static [(&'static str, Node)],
}

/// What is read inside a declared key.
#[derive(Debug)]
pub(crate) enum Node {
    /// The value itself (a string, number, boolean or null); an object or array here is kept
    /// only as its kind.
    Leaf,
    /// An object, with the keys read in it.
    Object(&'static Schema),
    /// An array, with what is read in each element.
    Array(&'static Node),
}

/// An object with no declared keys (a [`Node::Leaf`] that turned out to be an object).
static OPAQUE: Schema = Schema { keys: &[] };

/// A JSON value, kept as far as its schema reads it.
#[derive(Debug)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// A non-negative integer (as `serde_json` reads it).
    PosInt(u64),
    /// A negative integer.
    NegInt(i64),
    /// A number with a fraction or an exponent (its value is never read).
    Float,
    Str(Cow<'a, str>),
    /// The elements (empty when the array was declared a leaf).
    Array(Vec<Json<'a>>),
    Object(Fields<'a>),
}

/// The declared keys of one JSON object that were present.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    schema: &'static Schema,
    entries: Vec<(&'static str, Json<'a>)>,
}

impl<'a> Fields<'a> {
    /// The value of `key` (`null` included).
    ///
    /// # Panics
    ///
    /// In debug builds, when `key` is not declared in this object's schema: the reader dropped
    /// it, so its absence here would be a lie.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        debug_assert!(
            std::ptr::eq(self.schema, &OPAQUE) || self.schema.keys.iter().any(|(k, _)| *k == key),
            "the normaliser reads `{key}`, which its schema does not declare"
        );
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The value of `key` unless it is absent or `null` (as an `Option` field of a derived
    /// struct reads it).
    pub(crate) fn present(&self, key: &str) -> Option<&Json<'a>> {
        self.get(key).filter(|v| !v.is_null())
    }
}

impl<'a> Json<'a> {
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// The integer, when it fits an `i64` (as `serde_json::Value::as_i64`).
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match *self {
            Json::PosInt(n) => i64::try_from(n).ok(),
            Json::NegInt(n) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_object(&self) -> Option<&Fields<'a>> {
        match self {
            Json::Object(fields) => Some(fields),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// How deep [`parse`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Every declared key, at every level.
    Full,
    /// Only the top level's declared keys, each as a leaf (the envelope's id and type): the
    /// body is checked the same way, its payload skipped.
    TopLevel,
}

/// Reads `body`, keeping the keys `schema` declares. The body must be one JSON value (only
/// whitespace after it); a declared key repeated at the top level is an error.
pub(crate) fn parse<'a>(
    body: &'a [u8],
    schema: &'static Schema,
    depth: Depth,
) -> serde_json::Result<Json<'a>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Seed {
        object: schema,
        element: None,
        unique_keys: true,
        top_level_only: depth == Depth::TopLevel,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// How to read one value: the keys kept if it is an object, what is read in each element if
/// it is an array.
#[derive(Clone, Copy)]
struct Seed {
    object: &'static Schema,
    element: Option<&'static Node>,
    /// A repeated declared key is an error (the top level) rather than last-wins.
    unique_keys: bool,
    /// The object's declared values are read as leaves ([`Depth::TopLevel`]).
    top_level_only: bool,
}

impl Seed {
    fn of(node: &'static Node) -> Seed {
        let (object, element) = match node {
            Node::Leaf => (&OPAQUE, None),
            Node::Object(schema) => (*schema, None),
            Node::Array(element) => (&OPAQUE, Some(*element)),
        };
        Seed {
            object,
            element,
            unique_keys: false,
            top_level_only: false,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::PosInt(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        // serde_json reads non-negative integers as u64; keep the same split as `Value`.
        Ok(match u64::try_from(v) {
            Ok(n) => Json::PosInt(n),
            Err(_) => Json::NegInt(v),
        })
    }

    fn visit_f64<E>(self, _: f64) -> Result<Json<'de>, E> {
        Ok(Json::Float)
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let Some(element) = self.element else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Json::Array(Vec::new()));
        };
        let seed = Seed::of(element);
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(seed)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let schema = self.object;
        let mut entries: Vec<(&'static str, Json<'de>)> = Vec::new();
        while let Some(index) = map.next_key_seed(KeySeed(schema))? {
            let Some(index) = index else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let (key, node) = &schema.keys[index];
            let node = if self.top_level_only {
                &Node::Leaf
            } else {
                node
            };
            let value = map.next_value_seed(Seed::of(node))?;
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some(_) if self.unique_keys => return Err(de::Error::duplicate_field(key)),
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Json::Object(Fields { schema, entries }))
    }
}

/// Reads a key and answers its index in the schema, or `None` for a key not read.
struct KeySeed(&'static Schema);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.keys.iter().position(|(k, _)| *k == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ITEM: Node = Node::Object(&Schema {
        keys: &[("code", Node::Leaf)],
    });
    static INNER: Schema = Schema {
        keys: &[("id", Node::Leaf), ("items", Node::Array(&ITEM))],
    };
    static TOP: Schema = Schema {
        keys: &[("a", Node::Leaf), ("inner", Node::Object(&INNER))],
    };

    fn fields<'a>(body: &'a str, depth: Depth) -> Fields<'a> {
        match parse(body.as_bytes(), &TOP, depth).expect("valid JSON") {
            Json::Object(fields) => fields,
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn keeps_declared_keys_borrowed_and_skips_the_rest() {
        let body = r#"{"skip": {"a": [1, {"x": "y"}]}, "a": "text",
            "inner": {"id": "in_1", "other": 5, "items": [{"code": "c1", "n": 1}, 7]}}"#;
        let top = fields(body, Depth::Full);
        assert!(matches!(
            top.get("a"),
            Some(Json::Str(Cow::Borrowed("text")))
        ));
        assert_eq!(top.entries.len(), 2, "only declared keys are kept");
        let inner = top.get("inner").and_then(Json::as_object).expect("object");
        assert_eq!(inner.get("id").and_then(Json::as_str), Some("in_1"));
        let items = inner.get("items").and_then(Json::as_array).expect("array");
        assert_eq!(items.len(), 2);
        let first = items[0].as_object().expect("object");
        assert_eq!(first.get("code").and_then(Json::as_str), Some("c1"));
        assert_eq!(first.entries.len(), 1);
        assert_eq!(items[1].as_i64(), Some(7));
    }

    #[test]
    fn values_keep_their_kind_where_a_leaf_is_not_a_scalar() {
        let top = fields(
            r#"{"a": {"deep": [1]}, "inner": "not an object"}"#,
            Depth::Full,
        );
        let a = top.get("a").expect("kept");
        assert!(a.as_object().is_some_and(|o| o.entries.is_empty()));
        assert!(top.get("inner").is_some_and(|v| v.as_str().is_some()));
        let top = fields(r#"{"a": [1, 2]}"#, Depth::Full);
        assert!(top.get("a").and_then(Json::as_array).is_some());
    }

    #[test]
    fn escaped_strings_are_unescaped_and_numbers_read_as_serde_json_does() {
        let top = fields(r#"{"a": "tab\there \u00e9"}"#, Depth::Full);
        assert_eq!(top.get("a").and_then(Json::as_str), Some("tab\there é"));
        for (text, expected) in [
            ("0", Some(0)),
            ("-3", Some(-3)),
            ("9223372036854775807", Some(i64::MAX)),
            ("9223372036854775808", None),
            ("1.0", None),
            ("1e2", None),
        ] {
            let body = format!(r#"{{"a": {text}}}"#);
            assert_eq!(
                fields(&body, Depth::Full).get("a").and_then(Json::as_i64),
                expected,
                "{text}"
            );
        }
        assert!(fields(r#"{"a": null}"#, Depth::Full).present("a").is_none());
        assert!(
            fields(r#"{"a": null}"#, Depth::Full)
                .get("a")
                .is_some_and(Json::is_null)
        );
    }

    #[test]
    fn a_repeated_key_is_an_error_at_the_top_and_the_last_copy_below() {
        let body = r#"{"a": 1, "a": 2}"#;
        let err = parse(body.as_bytes(), &TOP, Depth::Full).expect_err("duplicate");
        assert!(err.to_string().contains("duplicate field `a`"), "{err}");
        assert!(parse(body.as_bytes(), &TOP, Depth::TopLevel).is_err());
        // An undeclared key may repeat anywhere.
        assert!(parse(br#"{"b": 1, "b": 2}"#, &TOP, Depth::Full).is_ok());
        let top = fields(r#"{"inner": {"id": "first", "id": "last"}}"#, Depth::Full);
        let inner = top.get("inner").and_then(Json::as_object).expect("object");
        assert_eq!(inner.get("id").and_then(Json::as_str), Some("last"));
    }

    #[test]
    fn the_top_level_depth_reads_declared_objects_as_leaves() {
        let top = fields(r#"{"inner": {"id": "x"}}"#, Depth::TopLevel);
        let inner = top.get("inner").and_then(Json::as_object).expect("object");
        assert!(inner.entries.is_empty());
    }

    #[test]
    fn the_whole_body_must_be_well_formed() {
        for bad in [
            r#"{"skip": [1, }"#,
            r#"{"a": "x"} trailing"#,
            r#"{"skip": "\x"}"#,
            r#"{"a": 1"#,
        ] {
            assert!(parse(bad.as_bytes(), &TOP, Depth::Full).is_err(), "{bad}");
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "does not declare")]
    fn reading_an_undeclared_key_is_a_bug_caught_in_debug_builds() {
        let top = fields(r#"{"a": 1}"#, Depth::Full);
        let _ = top.get("undeclared");
    }
}
