//! `{"wildcard": "arn:aws:s3:::bucket/*.png"}`: `*` matches any run of characters (including
//! none); `\*` is a literal star and `\\` a literal backslash.
//!
//! Matching works on bytes: a literal piece of valid UTF-8 can only match at character
//! boundaries of valid UTF-8, so this is the same as matching characters.

use std::collections::{HashSet, VecDeque};

/// A parsed wildcard: the literal pieces between stars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    /// Literal pieces; `pieces.len() == stars + 1`.
    pieces: Vec<Box<[u8]>>,
}

/// Parses a wildcard with event-ruler's rules and messages. Positions count bytes of the value
/// in quotes, as event-ruler does (`"a**"` fails "at pos 2").
pub(crate) fn parse(value: &str) -> Result<Wildcard, String> {
    let bytes = value.as_bytes();
    let mut pieces = Vec::new();
    let mut current = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'*' => {
                if bytes.get(i + 1) == Some(&b'*') {
                    return Err(format!("Consecutive wildcard characters at pos {}", i + 1));
                }
                pieces.push(std::mem::take(&mut current).into_boxed_slice());
            }
            b'\\' => match bytes.get(i + 1) {
                Some(&next @ (b'*' | b'\\')) => {
                    current.push(next);
                    i += 1;
                }
                _ => return Err(format!("Invalid escape character at pos {}", i + 1)),
            },
            b => current.push(b),
        }
        i += 1;
    }
    pieces.push(current.into_boxed_slice());
    Ok(Wildcard { pieces })
}

impl Wildcard {
    /// Whether the whole of `text` matches.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let text = text.as_bytes();
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return text.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return text == &first[..];
        };
        if text.len() < first.len() + last.len()
            || !text.starts_with(first)
            || !text.ends_with(last)
        {
            return false;
        }
        // Between the fixed ends, place each middle piece at its leftmost possible position:
        // with only `*` wildcards, leftmost placement never loses a match.
        let mut window = &text[first.len()..text.len() - last.len()];
        for piece in middle {
            if piece.is_empty() {
                continue;
            }
            match find(window, piece) {
                Some(at) => window = &window[at + piece.len()..],
                None => return false,
            }
        }
        true
    }

    /// The literal bytes of each piece and the star count, for the complexity estimate.
    fn tokens(&self) -> Vec<Option<u8>> {
        let mut out = Vec::new();
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                out.push(None);
            }
            out.extend(piece.iter().map(|b| Some(*b)));
        }
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    let first = needle[0];
    let last_start = haystack.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match haystack[i..=last_start].iter().position(|b| *b == first) {
            Some(p) => {
                i += p;
                if &haystack[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
            None => return None,
        }
    }
    None
}

/// The largest number of states a set of wildcards can be in at once while reading one input
/// (the subset construction of their union automaton), capped at `cap`.
///
/// This is our stand-in for event-ruler's `MachineComplexityEvaluator`, which the service uses
/// to reject "too complex" wildcard rules at an undocumented threshold. It is not the same
/// number, but it orders patterns the same way on the two AWS-observed data points: the
/// rejected `*:*:*:*:*:event-bus/*` scores 13 here (11 in event-ruler) and the accepted
/// `/Users/*/dir/dir/dir/dir/dir/doc.txt` scores 8 (7 in event-ruler).
pub(crate) fn complexity(wildcards: &[&Wildcard], cap: usize) -> usize {
    // One automaton per wildcard; a state is (wildcard, position in its tokens).
    let programs: Vec<Vec<Option<u8>>> = wildcards.iter().map(|w| w.tokens()).collect();
    let close = |set: &mut Vec<(usize, usize)>| {
        let mut i = 0;
        while i < set.len() {
            let (w, p) = set[i];
            if programs[w].get(p) == Some(&None) && !set.contains(&(w, p + 1)) {
                set.push((w, p + 1));
            }
            i += 1;
        }
        set.sort_unstable();
        set.dedup();
    };
    let mut alphabet: Vec<u8> = programs.iter().flatten().flatten().copied().collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    // A byte that appears in no pattern stands for all the others.
    if let Some(other) = (0u8..=255).find(|b| !alphabet.contains(b)) {
        alphabet.push(other);
    }

    let mut start: Vec<(usize, usize)> = (0..programs.len()).map(|w| (w, 0)).collect();
    close(&mut start);
    let mut seen: HashSet<Vec<(usize, usize)>> = HashSet::new();
    let mut queue = VecDeque::new();
    seen.insert(start.clone());
    queue.push_back(start);
    let mut max = 0;
    // Explored subsets are bounded too, so a pathological pattern cannot stall validation.
    const MAX_SUBSETS: usize = 20_000;
    while let Some(set) = queue.pop_front() {
        max = max.max(set.len());
        if max >= cap || seen.len() > MAX_SUBSETS {
            return cap;
        }
        for &byte in &alphabet {
            let mut next = Vec::new();
            for &(w, p) in &set {
                match programs[w].get(p) {
                    Some(None) => next.push((w, p)),
                    Some(Some(b)) if *b == byte => next.push((w, p + 1)),
                    _ => {}
                }
            }
            close(&mut next);
            if !next.is_empty() && seen.insert(next.clone()) {
                queue.push_back(next);
            }
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        parse(p).unwrap().matches(t)
    }

    #[test]
    fn stars_match_any_run() {
        assert!(m("*bc", "abcbc"));
        assert!(m("d*f", "deeeef"));
        assert!(!m("d*f", "deeeefx"));
        assert!(m("xy*", "xy"));
        assert!(m(
            "https://www.example.*/*9943",
            "https://www.example.com/image/481989943"
        ));
        assert!(m("*/dir/*", "a/dir/b"));
        assert!(!m("a*a", "a"));
        assert!(m("a*a", "aa"));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("*", ""));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(m(r"a\*\*\\.b", r"a**\.b"));
        assert!(!m(r"a\*", "ab"));
    }

    #[test]
    fn rejects_bad_wildcards_with_event_ruler_positions() {
        assert_eq!(
            parse("arn:aws:events:us-east-1:**:event-bus/*").unwrap_err(),
            "Consecutive wildcard characters at pos 26"
        );
        assert_eq!(
            parse(r"foo\bar").unwrap_err(),
            "Invalid escape character at pos 4"
        );
        assert!(parse("x\\").is_err());
    }

    #[test]
    fn complexity_separates_the_aws_data_points() {
        let rejected = parse("*:*:*:*:*:event-bus/*").unwrap();
        let accepted = parse("/Users/*/dir/dir/dir/dir/dir/doc.txt").unwrap();
        assert_eq!(complexity(&[&rejected], 100), 13);
        assert_eq!(complexity(&[&accepted], 100), 8);
        assert!(
            complexity(
                &[&parse("arn:aws:events:us-east-1:*:event-bus/*").unwrap()],
                100
            ) <= 5
        );
    }
}
