//! Matching a compiled pattern against an event, with event-ruler's semantics.
//!
//! A pattern is compiled (see `compile.rs`) into sub-rules (one per `$or` combination), each a
//! list of constraints sorted by flattened field name (`detail.amount`). An event field is a
//! *leaf*: a string, number, boolean or null reached by following the name's segments through
//! objects, where arrays are crossed transparently ("crushed out"). Dotted keys are the same as
//! nesting (`{"a.b": 1}` and `{"a": {"b": 1}}` both give the field `a.b`), as on AWS.
//!
//! Array consistency: every leaf remembers which element of each array of objects it came
//! through, and the leaves chosen for one sub-rule must agree on every array they share. The
//! search backtracks over the candidate leaves of each constraint, as event-ruler's `ACFinder`
//! does. `exists: false` means no leaf of the field agrees with the elements the sub-rule's
//! other fields were matched in (every element when they used none), so it is checked once
//! every value has been chosen. event-ruler checks it where the field's name falls in sorted
//! order, against only the fields sorted before it, so there the answer depends on the names;
//! here it never does, and it is event-ruler's answer whenever the absent fields sort last.
//!
//! Nothing here allocates unless the event has arrays of objects on a pattern's paths.

use super::ip::{self, Ip, IpRange};
use super::json::Json;
use super::wildcard::Wildcard;

/// One alternative in a field's value list.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    /// An exact string.
    Exact(Box<str>),
    /// An exact string that is an IP address literal: matches the same address in any
    /// spelling (event-ruler turns such values into a one-address range).
    ExactIp(IpRange),
    /// An exact number: equal by value, or (for numbers `f64` cannot hold) by spelling.
    ExactNumber { value: Option<f64>, text: Box<str> },
    /// `true`, `false` or `null`.
    Bool(bool),
    /// `null`.
    Null,
    /// `{"prefix": "..."}` (empty matches every string).
    Prefix(Box<str>),
    /// `{"prefix": {"equals-ignore-case": "..."}}`; stored case-folded.
    PrefixIgnoreCase(Box<[char]>),
    /// `{"suffix": "..."}`.
    Suffix(Box<str>),
    /// `{"suffix": {"equals-ignore-case": "..."}}`; stored case-folded.
    SuffixIgnoreCase(Box<[char]>),
    /// `{"equals-ignore-case": "..."}`; stored case-folded.
    EqualsIgnoreCase(Box<[char]>),
    /// `{"wildcard": "..."}`.
    Wildcard(Wildcard),
    /// `{"numeric": [...]}`, also exact `=`.
    Numeric(NumericRange),
    /// `{"cidr": "..."}`.
    Cidr(IpRange),
    /// `{"exists": true}`: any leaf.
    Exists,
    /// `{"anything-but": ...}` over strings: any leaf but these strings.
    AnythingButStrings(Box<[Box<str>]>),
    /// `{"anything-but": ...}` over numbers: any leaf but these numbers.
    AnythingButNumbers(Box<[f64]>),
    /// `{"anything-but": {"prefix": ...}}`.
    AnythingButPrefix(Box<[Box<str>]>),
    /// `{"anything-but": {"suffix": ...}}`.
    AnythingButSuffix(Box<[Box<str>]>),
    /// `{"anything-but": {"equals-ignore-case": ...}}`; stored case-folded.
    AnythingButIgnoreCase(Box<[Box<[char]>]>),
    /// `{"anything-but": {"wildcard": ...}}`.
    AnythingButWildcard(Box<[Wildcard]>),
}

/// A numeric interval; an absent bound is unbounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NumericRange {
    /// Lower bound and whether it is inclusive.
    pub(crate) low: Option<(f64, bool)>,
    /// Upper bound and whether it is inclusive.
    pub(crate) high: Option<(f64, bool)>,
}

impl NumericRange {
    fn contains(&self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        let above = match self.low {
            None => true,
            Some((b, true)) => x >= b,
            Some((b, false)) => x > b,
        };
        let below = match self.high {
            None => true,
            Some((t, true)) => x <= t,
            Some((t, false)) => x < t,
        };
        above && below
    }
}

/// An event leaf value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leaf<'e> {
    Null,
    Bool(bool),
    /// The value and, when the event was read from text, the number as written.
    Number(f64, Option<&'e str>),
    String(&'e str),
}

/// Simple case folding: `lower(upper(c))` when both are single characters, which equates what
/// Java's `equalsIgnoreCase` equates for the characters that matter (`ſ`/`s`, `K`/`k`).
pub(crate) fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut upper = c.to_uppercase();
    let u = match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    };
    let mut lower = u.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => u,
    }
}

/// `text` case-folded, for storing pattern operands.
pub(crate) fn folded(text: &str) -> Box<[char]> {
    text.chars().map(fold).collect()
}

fn eq_folded(text: &str, pattern: &[char]) -> bool {
    let mut chars = text.chars();
    for p in pattern {
        match chars.next() {
            Some(c) if fold(c) == *p => {}
            _ => return false,
        }
    }
    chars.next().is_none()
}

fn starts_folded(text: &str, pattern: &[char]) -> bool {
    let mut chars = text.chars();
    pattern
        .iter()
        .all(|p| chars.next().is_some_and(|c| fold(c) == *p))
}

fn ends_folded(text: &str, pattern: &[char]) -> bool {
    let mut chars = text.chars().rev();
    pattern
        .iter()
        .rev()
        .all(|p| chars.next().is_some_and(|c| fold(c) == *p))
}

impl Matcher {
    /// Whether this alternative accepts the leaf.
    pub(crate) fn matches(&self, leaf: Leaf<'_>) -> bool {
        match self {
            Matcher::Exact(s) => matches!(leaf, Leaf::String(t) if t == &**s),
            Matcher::ExactIp(range) => match leaf {
                Leaf::String(t) => ip::parse_ip(t).is_some_and(|ip| range.contains(ip)),
                _ => false,
            },
            Matcher::ExactNumber { value, text } => match leaf {
                Leaf::Number(x, spelled) => {
                    value.is_some_and(|v| v == x) || spelled.is_some_and(|s| s == &**text)
                }
                _ => false,
            },
            Matcher::Bool(b) => matches!(leaf, Leaf::Bool(x) if x == *b),
            Matcher::Null => matches!(leaf, Leaf::Null),
            Matcher::Prefix(p) => matches!(leaf, Leaf::String(t) if t.starts_with(&**p)),
            Matcher::PrefixIgnoreCase(p) => {
                matches!(leaf, Leaf::String(t) if starts_folded(t, p))
            }
            Matcher::Suffix(p) => matches!(leaf, Leaf::String(t) if t.ends_with(&**p)),
            Matcher::SuffixIgnoreCase(p) => matches!(leaf, Leaf::String(t) if ends_folded(t, p)),
            Matcher::EqualsIgnoreCase(p) => matches!(leaf, Leaf::String(t) if eq_folded(t, p)),
            Matcher::Wildcard(w) => matches!(leaf, Leaf::String(t) if w.matches(t)),
            Matcher::Numeric(range) => matches!(leaf, Leaf::Number(x, _) if range.contains(x)),
            Matcher::Cidr(range) => match leaf {
                Leaf::String(t) => ip::parse_ip(t).is_some_and(|ip: Ip| range.contains(ip)),
                _ => false,
            },
            Matcher::Exists => true,
            // anything-but accepts every present leaf that is not excluded, including null and
            // values of another type (AWS-validated).
            Matcher::AnythingButStrings(values) => match leaf {
                Leaf::String(t) => !values.iter().any(|v| &**v == t),
                _ => true,
            },
            Matcher::AnythingButNumbers(values) => match leaf {
                Leaf::Number(x, _) => !values.contains(&x),
                _ => true,
            },
            Matcher::AnythingButPrefix(values) => match leaf {
                Leaf::String(t) => !values.iter().any(|v| t.starts_with(&**v)),
                _ => true,
            },
            Matcher::AnythingButSuffix(values) => match leaf {
                Leaf::String(t) => !values.iter().any(|v| t.ends_with(&**v)),
                _ => true,
            },
            Matcher::AnythingButIgnoreCase(values) => match leaf {
                Leaf::String(t) => !values.iter().any(|v| eq_folded(t, v)),
                _ => true,
            },
            Matcher::AnythingButWildcard(values) => match leaf {
                Leaf::String(t) => !values.iter().any(|w| w.matches(t)),
                _ => true,
            },
        }
    }
}

/// One field of a sub-rule: its flattened name and the alternatives for its value.
#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    /// Flattened name, segments joined with `.`.
    pub(crate) path: Box<str>,
    /// Byte offsets of the dots in `path`, where an event key may end.
    pub(crate) dots: Box<[usize]>,
    /// The value alternatives (not counting `exists: false`).
    pub(crate) matchers: Box<[Matcher]>,
    /// Whether `{"exists": false}` is one of the alternatives.
    pub(crate) absent: bool,
}

/// A JSON event tree the matcher can walk: `serde_json::Value` or our own [`Json`].
pub(crate) trait Node: Sized {
    /// What this node is.
    fn view(&self) -> View<'_, Self>;
    /// The children of this object under exactly `key` (more than one when the event text
    /// repeats a key); nothing when this is not an object.
    fn children<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a Self>;
}

/// A node seen through [`Node::view`].
pub(crate) enum View<'a, N> {
    Leaf(Leaf<'a>),
    Array(&'a [N]),
    Object,
}

impl Node for serde_json::Value {
    fn view(&self) -> View<'_, Self> {
        match self {
            serde_json::Value::Null => View::Leaf(Leaf::Null),
            serde_json::Value::Bool(b) => View::Leaf(Leaf::Bool(*b)),
            serde_json::Value::Number(n) => {
                View::Leaf(Leaf::Number(n.as_f64().unwrap_or(f64::NAN), None))
            }
            serde_json::Value::String(s) => View::Leaf(Leaf::String(s)),
            serde_json::Value::Array(items) => View::Array(items),
            serde_json::Value::Object(_) => View::Object,
        }
    }

    fn children<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a Self> {
        match self {
            serde_json::Value::Object(map) => map.get(key),
            _ => None,
        }
        .into_iter()
    }
}

impl<'j> Node for Json<'j> {
    fn view(&self) -> View<'_, Self> {
        match self {
            Json::Null => View::Leaf(Leaf::Null),
            Json::Bool(b) => View::Leaf(Leaf::Bool(*b)),
            Json::Number(n) => View::Leaf(Leaf::Number(n.value, Some(&n.text))),
            Json::String(s) => View::Leaf(Leaf::String(s)),
            Json::Array(items) => View::Array(items),
            Json::Object(_) => View::Object,
        }
    }

    fn children<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a Self> {
        let fields: &'a [(std::borrow::Cow<'j, str>, Json<'j>)] = match self {
            Json::Object(fields) => fields,
            _ => &[],
        };
        fields.iter().filter(move |(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Array membership entry: (array identity, element index).
type Membership = (usize, usize);

/// What a walk over candidate leaves decided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Keep looking at further leaves.
    Continue,
    /// The whole sub-rule matched.
    Matched,
    /// A leaf agreeing with the chosen elements exists, which is all a presence probe asks.
    Present,
}

/// Why the leaves of a constraint are walked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// Find a leaf its matchers accept and go on to the next constraint with it.
    Match,
    /// Find whether any leaf agrees with the elements chosen, for `exists: false`.
    Probe,
}

/// Whether the sub-rule `constraints` matches the event object `root`.
pub(crate) fn matches_sub_rule<N: Node>(constraints: &[Constraint], root: &N) -> bool {
    let mut search = Search {
        constraints,
        root,
        chosen: Vec::new(),
        walk: Vec::new(),
        absent: Vec::new(),
    };
    search.run(0)
}

struct Search<'p, 'e, N> {
    constraints: &'p [Constraint],
    root: &'e N,
    /// Array elements fixed by the leaves chosen so far.
    chosen: Vec<Membership>,
    /// Array elements on the path of the walk in progress (one segment per open constraint).
    walk: Vec<Membership>,
    /// Constraints to be met by absence, checked once every value is chosen.
    absent: Vec<usize>,
}

fn id<N>(node: &N) -> usize {
    node as *const N as usize
}

impl<'p, 'e, N: Node> Search<'p, 'e, N> {
    /// Meets constraint `ci` and the ones after it: by a value, or else (where the constraint
    /// allows) by absence, which is deferred until every value has been chosen.
    fn run(&mut self, ci: usize) -> bool {
        let Some(constraint) = self.constraints.get(ci) else {
            return self.absences_hold();
        };
        if !constraint.matchers.is_empty() && self.walk_from_root(ci, Goal::Match) == Walk::Matched
        {
            return true;
        }
        if !constraint.absent {
            return false;
        }
        self.absent.push(ci);
        let matched = self.run(ci + 1);
        self.absent.pop();
        matched
    }

    /// Whether no field meant to be absent has a leaf that agrees with the chosen elements.
    fn absences_hold(&mut self) -> bool {
        (0..self.absent.len()).all(|k| {
            let ci = self.absent[k];
            self.walk_from_root(ci, Goal::Probe) != Walk::Present
        })
    }

    fn walk_from_root(&mut self, ci: usize, goal: Goal) -> Walk {
        let base = self.walk.len();
        let outcome = self.object(self.root, ci, 0, base, goal);
        self.walk.truncate(base);
        outcome
    }

    /// At object `node`, with `path[offset..]` still to follow.
    fn object(&mut self, node: &'e N, ci: usize, offset: usize, base: usize, goal: Goal) -> Walk {
        let constraints = self.constraints;
        let constraint = &constraints[ci];
        let path: &str = &constraint.path;
        for &dot in constraint.dots.iter().filter(|d| **d >= offset) {
            for child in node.children(&path[offset..dot]) {
                let w = self.descend(child, ci, dot + 1, base, goal);
                if w != Walk::Continue {
                    return w;
                }
            }
        }
        for child in node.children(&path[offset..]) {
            let w = self.target(child, ci, base, goal);
            if w != Walk::Continue {
                return w;
            }
        }
        Walk::Continue
    }

    /// Through an intermediate value towards `path[offset..]`.
    fn descend(&mut self, node: &'e N, ci: usize, offset: usize, base: usize, goal: Goal) -> Walk {
        match node.view() {
            View::Object => self.object(node, ci, offset, base, goal),
            View::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if matches!(item.view(), View::Leaf(_)) {
                        continue;
                    }
                    self.walk.push((id(node), i));
                    let w = self.descend(item, ci, offset, base, goal);
                    self.walk.pop();
                    if w != Walk::Continue {
                        return w;
                    }
                }
                Walk::Continue
            }
            View::Leaf(_) => Walk::Continue,
        }
    }

    /// The value at the full name: a leaf, or an array of leaves (and arrays of them).
    fn target(&mut self, node: &'e N, ci: usize, base: usize, goal: Goal) -> Walk {
        match node.view() {
            View::Leaf(leaf) => self.leaf(leaf, ci, base, goal),
            View::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let w = match item.view() {
                        // Scalars in an array carry only the memberships of the arrays of
                        // objects around them, as in event-ruler.
                        View::Leaf(leaf) => self.leaf(leaf, ci, base, goal),
                        View::Array(_) => {
                            self.walk.push((id(node), i));
                            let w = self.target(item, ci, base, goal);
                            self.walk.pop();
                            w
                        }
                        View::Object => Walk::Continue,
                    };
                    if w != Walk::Continue {
                        return w;
                    }
                }
                Walk::Continue
            }
            View::Object => Walk::Continue,
        }
    }

    fn leaf(&mut self, leaf: Leaf<'e>, ci: usize, base: usize, goal: Goal) -> Walk {
        let path_members = &self.walk[base..];
        let consistent = path_members
            .iter()
            .all(|(array, index)| self.chosen.iter().all(|(a, i)| a != array || i == index));
        if !consistent {
            return Walk::Continue;
        }
        if goal == Goal::Probe {
            return Walk::Present;
        }
        if !self.constraints[ci]
            .matchers
            .iter()
            .any(|m| m.matches(leaf))
        {
            return Walk::Continue;
        }
        let saved = self.chosen.len();
        for member in &self.walk[base..] {
            if !self.chosen.iter().any(|(a, _)| *a == member.0) {
                self.chosen.push(*member);
            }
        }
        let matched = self.run(ci + 1);
        self.chosen.truncate(saved);
        if matched {
            Walk::Matched
        } else {
            Walk::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_equates_cases() {
        assert!(eq_folded("ABC", &folded("aBc")));
        assert!(!eq_folded("defx", &folded("Def")));
        assert!(starts_folded("EvEnTb", &folded("EventB")));
        assert!(ends_folded("image.PNG", &folded(".png")));
        assert!(eq_folded("ſ", &folded("S")));
        assert!(eq_folded("ÉTÉ", &folded("été")));
    }

    #[test]
    fn numeric_ranges_respect_open_bounds_at_zero() {
        let open = NumericRange {
            low: Some((0.0, false)),
            high: Some((1.0, false)),
        };
        assert!(!open.contains(0.0));
        assert!(!open.contains(-0.0));
        assert!(open.contains(f64::MIN_POSITIVE));
        assert!(!open.contains(1.0));
        let closed = NumericRange {
            low: Some((0.0, true)),
            high: None,
        };
        assert!(closed.contains(-0.0));
        assert!(!closed.contains(f64::NAN));
    }
}
