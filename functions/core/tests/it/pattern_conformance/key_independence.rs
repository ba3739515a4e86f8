//! A match never depends on what the fields are called or in which order they are written:
//! renaming keys consistently in pattern and event (so that their sort order reverses) and
//! permuting the members of every object leaves every answer of the corpus unchanged, and a
//! property test checks `exists: false` beside other fields of the same array element against
//! a model of event-ruler's array consistency.

use std::collections::{BTreeMap, BTreeSet};

use payhook_pattern::Pattern;
use payhook_testkit::conformance::read_jsonl;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{eventbridge_dir, text_of};

// ---------------------------------------------------------------------------------------------
// JSON text as a tree that keeps what `serde_json::Value` drops: repeated keys, member order and
// the spelling of every scalar.

#[derive(Debug, Clone)]
enum Tree {
    /// A string, number, boolean or null, exactly as written.
    Scalar(String),
    Array(Vec<Tree>),
    /// Members in written order, repeats kept.
    Object(Vec<(String, Tree)>),
}

struct Reader<'t> {
    text: &'t str,
    at: usize,
}

impl Reader<'_> {
    fn read(text: &str) -> Option<Tree> {
        let mut reader = Reader { text, at: 0 };
        let tree = reader.value()?;
        reader.skip_space();
        (reader.at == text.len()).then_some(tree)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn value(&mut self) -> Option<Tree> {
        self.skip_space();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(|raw| Tree::Scalar(raw.to_owned())),
            _ => {
                let start = self.at;
                while self.peek().is_some_and(|b| !b",]} \t\r\n".contains(&b)) {
                    self.at += 1;
                }
                (self.at > start).then(|| Tree::Scalar(self.text[start..self.at].to_owned()))
            }
        }
    }

    /// A string token, quotes and escapes included.
    fn string(&mut self) -> Option<&str> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => break,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        Some(&self.text[start..self.at])
    }

    /// What stands between the opening byte at `self.at` and `close`: items separated by
    /// commas, each read by `item`.
    fn items<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.at += 1;
        let mut items = Vec::new();
        if self.eat(close) {
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(close) {
                return Some(items);
            }
            self.eat(b',').then_some(())?;
        }
    }

    fn array(&mut self) -> Option<Tree> {
        self.items(b']', Self::value).map(Tree::Array)
    }

    fn object(&mut self) -> Option<Tree> {
        self.items(b'}', |reader| {
            reader.skip_space();
            let key: String = serde_json::from_str(reader.string()?).ok()?;
            reader.eat(b':').then_some(())?;
            Some((key, reader.value()?))
        })
        .map(Tree::Object)
    }
}

impl Tree {
    fn render(&self, out: &mut String) {
        match self {
            Tree::Scalar(text) => out.push_str(text),
            Tree::Array(items) => render_list(out, ('[', ']'), items, |out, item| item.render(out)),
            Tree::Object(members) => render_list(out, ('{', '}'), members, |out, (key, value)| {
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                value.render(out);
            }),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.render(&mut out);
        out
    }

    fn each_key<'a>(&'a self, f: &mut impl FnMut(&'a str)) {
        match self {
            Tree::Scalar(_) => {}
            Tree::Array(items) => items.iter().for_each(|item| item.each_key(f)),
            Tree::Object(members) => {
                for (key, value) in members {
                    f(key);
                    value.each_key(f);
                }
            }
        }
    }

    /// The same tree with every key renamed and every object's members reordered; members
    /// under the same key keep their relative order (the last of a repeated pattern key wins).
    fn rewritten(&self, rename: &Renaming, order: Order) -> Tree {
        match self {
            Tree::Scalar(text) => Tree::Scalar(text.clone()),
            Tree::Array(items) => Tree::Array(
                items
                    .iter()
                    .map(|item| item.rewritten(rename, order))
                    .collect(),
            ),
            Tree::Object(members) => {
                let mut groups: Vec<(&str, Vec<&Tree>)> = Vec::new();
                for (key, value) in members {
                    match groups.iter_mut().find(|(k, _)| k == key) {
                        Some((_, values)) => values.push(value),
                        None => groups.push((key, vec![value])),
                    }
                }
                order.apply(&mut groups);
                Tree::Object(
                    groups
                        .into_iter()
                        .flat_map(|(key, values)| {
                            values
                                .into_iter()
                                .map(move |v| (rename.apply(key), v.rewritten(rename, order)))
                        })
                        .collect(),
                )
            }
        }
    }
}

fn render_list<T>(
    out: &mut String,
    (open, close): (char, char),
    items: &[T],
    mut render: impl FnMut(&mut String, &T),
) {
    out.push(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        render(out, item);
    }
    out.push(close);
}

/// How the distinct keys of an object are reordered.
#[derive(Debug, Clone, Copy)]
enum Order {
    AsWritten,
    Reversed,
    /// The first key moved to the end.
    Rotated,
}

impl Order {
    fn apply<T>(self, groups: &mut [T]) {
        match self {
            Order::AsWritten => {}
            Order::Reversed => groups.reverse(),
            Order::Rotated if !groups.is_empty() => groups.rotate_left(1),
            Order::Rotated => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Renaming.

/// Keys that are pattern syntax, not field names: never renamed, and never produced.
const RESERVED: [&str; 11] = [
    "$or",
    "anything-but",
    "cidr",
    "equals-ignore-case",
    "exactly",
    "exists",
    "numeric",
    "prefix",
    "suffix",
    "wildcard",
    "",
];

/// A bijection over the `.`-separated pieces of keys; pieces it does not know stay as they
/// are. Renaming piece by piece keeps dotted keys equal to the nesting they stand for.
#[derive(Debug, Default)]
struct Renaming(BTreeMap<String, String>);

impl Renaming {
    /// Renames the pieces of `keys` so that their order reverses (Java string order, the order
    /// event-ruler and our compiler sort fields in).
    fn reversing<'k>(keys: impl IntoIterator<Item = &'k str>) -> Renaming {
        let mut pieces: Vec<&str> = keys
            .into_iter()
            .flat_map(|key| key.split('.'))
            .filter(|piece| !RESERVED.contains(piece))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        pieces.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
        let count = pieces.len();
        Renaming(
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, piece)| (piece.to_owned(), format!("f{:04}", count - 1 - i)))
                .collect(),
        )
    }

    /// Over every key of a case's pattern and event.
    fn of_case(pattern: &Tree, event: &Tree) -> Renaming {
        let mut keys = Vec::new();
        pattern.each_key(&mut |k| keys.push(k));
        event.each_key(&mut |k| keys.push(k));
        Renaming::reversing(keys)
    }

    fn apply(&self, key: &str) -> String {
        key.split('.')
            .map(|piece| self.0.get(piece).map_or(piece, String::as_str))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// One way of rewriting a case: whether keys are renamed, and how members are reordered.
const REWRITES: [(bool, Order); 4] = [
    (true, Order::AsWritten),
    (false, Order::Reversed),
    (true, Order::Reversed),
    (false, Order::Rotated),
];

/// The case's pattern and event text through `rewrite`, as text exactly as written (repeated
/// keys, number spellings) and as the text of the parsed `serde_json` values.
struct Rewritten {
    pattern_text: String,
    event_text: String,
    pattern_value: Value,
    event_value: Value,
}

fn rewrite(case: &Value, (renamed, order): (bool, Order)) -> Option<Rewritten> {
    let pattern = Reader::read(&text_of(case, "pattern_raw", "pattern"))?;
    let event = Reader::read(&text_of(case, "event_raw", "event"))?;
    let rename = if renamed {
        Renaming::of_case(&pattern, &event)
    } else {
        Renaming::default()
    };
    let of_value = |value: &Value| {
        let tree = Reader::read(&value.to_string())?.rewritten(&rename, order);
        serde_json::from_str(&tree.text()).ok()
    };
    Some(Rewritten {
        pattern_value: of_value(&case["pattern"])?,
        event_value: of_value(&case["event"])?,
        pattern_text: pattern.rewritten(&rename, order).text(),
        event_text: event.rewritten(&rename, order).text(),
    })
}

#[test]
fn renaming_and_reordering_keys_never_changes_a_corpus_answer() {
    let Some(dir) = eventbridge_dir() else { return };
    let cases = read_jsonl(&dir.join("patterns.jsonl")).expect("patterns.jsonl reads");
    assert_eq!(
        cases.len(),
        super::EXPECTED_CASES,
        "the corpus changed size"
    );

    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("?");
        let expect = case["expect"].as_bool().expect("expect is a boolean");
        for how in REWRITES {
            let Some(rewritten) = rewrite(case, how) else {
                failures.push(format!("{id} {how:?}: could not be rewritten"));
                continue;
            };
            let by_text = Pattern::parse(&rewritten.pattern_text)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    p.matches_str(&rewritten.event_text)
                        .map_err(|e| e.to_string())
                });
            if by_text != Ok(expect) {
                failures.push(format!(
                    "{id} {how:?}: text: expected {expect}, got {by_text:?}\n  pattern {}\n  event {}",
                    rewritten.pattern_text, rewritten.event_text
                ));
            }
            let by_value = Pattern::from_value(&rewritten.pattern_value)
                .map(|p| p.matches(&rewritten.event_value))
                .map_err(|e| e.to_string());
            if by_value != Ok(expect) {
                failures.push(format!(
                    "{id} {how:?}: value: expected {expect}, got {by_value:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} rewritten cases changed their answer:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_renaming_reverses_field_order_and_keeps_dotted_keys_equal_to_nesting() {
    let rename = Renaming::reversing(["firstName", "ids", "detail", "state.status", "exists"]);
    assert!(rename.apply("ids") < rename.apply("firstName"));
    assert!(rename.apply("state") > rename.apply("status"));
    assert_eq!(
        rename.apply("detail.state.status"),
        ["detail", "state", "status"]
            .map(|k| rename.apply(k))
            .join(".")
    );
    assert_eq!(rename.apply("exists"), "exists");

    let case = json!({
        "pattern": {"x": [{"prefix": "a"}], "x.y": [1.0]},
        "pattern_raw": r#"{"x": ["a"], "x": [{"prefix": "a"}], "x.y": [1.0]}"#,
        "event": {"x": "ab"},
        "event_raw": r#"{"x": "ab", "x": {"y": 1e0}}"#,
    });
    let rewritten = rewrite(&case, (true, Order::Reversed)).expect("rewrites");
    let rename = Renaming::of_case(
        &Reader::read(&text_of(&case, "pattern_raw", "pattern")).expect("reads"),
        &Reader::read(&text_of(&case, "event_raw", "event")).expect("reads"),
    );
    let (x, y) = (rename.apply("x"), rename.apply("y"));
    assert!(x > y, "x sorted before y, so its new name sorts after");
    assert_eq!(
        rewritten.pattern_text,
        format!(r#"{{"{x}.{y}":[1.0],"{x}":["a"],"{x}":[{{"prefix":"a"}}]}}"#)
    );
    assert_eq!(
        rewritten.event_text,
        format!(r#"{{"{x}":"ab","{x}":{{"{y}":1e0}}}}"#)
    );
    assert_eq!(
        rewritten.pattern_value,
        json!({x.clone(): [{"prefix": "a"}], format!("{x}.{y}"): [1.0]})
    );
}

// ---------------------------------------------------------------------------------------------
// exists:false beside other fields of the same array element, against a model.

/// A field value in a generated element.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), Just(json!("x")), Just(json!("y"))]
}

/// What a generated pattern asks of one field of the element.
#[derive(Debug, Clone, Copy)]
enum Ask {
    /// `["x"]`
    Equals,
    /// `[{"exists": true}]`
    Present,
    /// `[{"exists": false}]`
    Absent,
    /// `[{"anything-but": "x"}, {"exists": false}]`
    NotXOrAbsent,
}

impl Ask {
    fn pattern(self) -> Value {
        match self {
            Ask::Equals => json!(["x"]),
            Ask::Present => json!([{"exists": true}]),
            Ask::Absent => json!([{"exists": false}]),
            Ask::NotXOrAbsent => json!([{"anything-but": "x"}, {"exists": false}]),
        }
    }

    /// Whether a present value satisfies the positive part of the ask.
    fn accepts(self, value: &Value) -> bool {
        match self {
            Ask::Equals => value == "x",
            Ask::Present => true,
            Ask::Absent => false,
            Ask::NotXOrAbsent => value != "x",
        }
    }

    fn may_be_absent(self) -> bool {
        matches!(self, Ask::Absent | Ask::NotXOrAbsent)
    }
}

fn ask() -> impl Strategy<Value = Ask> {
    prop_oneof![
        Just(Ask::Equals),
        Just(Ask::Present),
        Just(Ask::Absent),
        Just(Ask::NotXOrAbsent)
    ]
}

const FIELDS: [&str; 4] = ["a", "b", "c", "d"];

type Element = BTreeMap<usize, Value>;

/// event-ruler's array consistency, stated directly: each ask is met either by a value (all
/// the values from one element) or by absence; a field is absent when no element holds it that
/// agrees with the element the values came from, which is every element when no value was
/// used.
fn model(asks: &BTreeMap<usize, Ask>, elements: &[Element]) -> bool {
    let asks: Vec<(usize, Ask)> = asks.iter().map(|(f, a)| (*f, *a)).collect();
    // Each ask met by value (bit set) or by absence.
    (0u32..1 << asks.len()).any(|by_value| {
        let uses_value = |i: usize| by_value & (1 << i) != 0;
        if asks
            .iter()
            .enumerate()
            .any(|(i, (_, ask))| !uses_value(i) && !ask.may_be_absent())
        {
            return false;
        }
        let fits = |element: &Element| {
            asks.iter().enumerate().all(|(i, (field, ask))| {
                match (uses_value(i), element.get(field)) {
                    (true, Some(value)) => ask.accepts(value),
                    (true, None) => false,
                    (false, value) => value.is_none(),
                }
            })
        };
        if by_value == 0 {
            asks.iter()
                .all(|(field, _)| elements.iter().all(|e| !e.contains_key(field)))
        } else {
            elements.iter().any(fits)
        }
    })
}

fn event_of(elements: &[Element], names: &[&str], nested: bool) -> Value {
    let objects: Vec<Value> = elements
        .iter()
        .map(|element| {
            Value::Object(
                element
                    .iter()
                    .map(|(field, value)| (names[*field].to_owned(), value.clone()))
                    .collect(),
            )
        })
        .collect();
    // Arrays of arrays of objects are crushed out the same way as one array.
    let items = if nested {
        objects.chunks(2).map(|c| Value::from(c.to_vec())).collect()
    } else {
        objects
    };
    json!({"source": "payhook.test", "detail": {"items": items}})
}

fn pattern_of(asks: &BTreeMap<usize, Ask>, names: &[&str]) -> Value {
    let fields: serde_json::Map<String, Value> = asks
        .iter()
        .map(|(field, ask)| (names[*field].to_owned(), ask.pattern()))
        .collect();
    json!({"source": ["payhook.test"], "detail": {"items": fields}})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn exists_false_beside_sibling_fields_in_array_elements_follows_the_model(
        asks in prop::collection::btree_map(0..FIELDS.len(), ask(), 1..=FIELDS.len()),
        elements in prop::collection::vec(
            prop::collection::btree_map(0..FIELDS.len(), leaf(), 0..=FIELDS.len()),
            0..5,
        ),
        nested in any::<bool>(),
    ) {
        let expected = model(&asks, &elements);
        let reversed: Vec<&str> = FIELDS.iter().rev().copied().collect();
        for names in [&FIELDS[..], &reversed[..]] {
            let pattern = Pattern::from_value(&pattern_of(&asks, names)).expect("valid pattern");
            let event = event_of(&elements, names, nested);
            prop_assert_eq!(pattern.matches(&event), expected, "value, names {:?}", names);
            let text = event.to_string();
            prop_assert_eq!(
                pattern.matches_str(&text).expect("an object"),
                expected,
                "text, names {:?}",
                names
            );
        }
    }
}
