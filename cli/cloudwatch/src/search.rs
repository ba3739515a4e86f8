//! The query of a `SEARCH('{Namespace,Dim1,Dim2} MetricName="Name" Dim1="value" word', …)`:
//! one parser for both readers. `payhook check` compares the schema, the metric name and the
//! filters with the metric catalogue; the dashboard preview selects the metrics a query
//! matches ([`SearchQuery::matches`]) and labels them as CloudWatch does
//! ([`SearchQuery::label_for`]).
//!
//! The query language ("CloudWatch search expression syntax" in the CloudWatch User Guide): an
//! optional schema `{Namespace,Dim…}` that pins the namespace and the exact dimension set,
//! then terms: `Key="value"` matches exactly, `Key=value` matches a part of the value, a bare or
//! quoted word matches a part of the metric name or of any dimension value. `AND`, `OR`, `NOT`
//! and parentheses group terms; every term must match (the preview does not evaluate `OR` or
//! `NOT`, and no dashboard here uses them).

use std::collections::BTreeSet;

use crate::metric::MetricId;

/// A parsed search query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// The namespace of the schema (`{Payhook,…}`), when a schema with a namespace is given.
    pub namespace: Option<String>,
    /// The exact dimension names of the schema, in the schema's order, when a schema is given.
    pub schema_dimensions: Option<Vec<String>>,
    /// `Key="value"` (exact) and `Key=value` (partial) terms, `MetricName` included.
    pub terms: Vec<Term>,
    /// Free-text words, matched against the metric name and every dimension value.
    pub words: Vec<String>,
}

/// One `Key=value` term of a [`SearchQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// `MetricName`, `Namespace` or a dimension name.
    pub key: String,
    /// The value, unquoted.
    pub value: String,
    /// Whether the value was quoted (an exact match) rather than bare (a partial match).
    pub exact: bool,
}

/// Why a text is not a search query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// `{` without its `}`.
    #[error("the schema `{{…` of the SEARCH query is not closed with `}}`")]
    UnclosedSchema,
}

impl SearchQuery {
    /// Parses the query string of a `SEARCH`.
    pub fn parse(text: &str) -> Result<SearchQuery, SearchError> {
        let mut q = SearchQuery::default();
        let mut rest = text.trim();
        if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}').ok_or(SearchError::UnclosedSchema)?;
            let mut parts = after[..end]
                .split(',')
                .map(|p| p.trim().trim_matches('"').to_owned());
            q.namespace = parts.next().filter(|n| !n.is_empty());
            q.schema_dimensions = Some(parts.filter(|p| !p.is_empty()).collect());
            rest = &after[end + 1..];
        }
        let chars: Vec<char> = rest.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_whitespace() || chars[i] == '(' || chars[i] == ')' {
                i += 1;
                continue;
            }
            let (word, was_quoted) = if chars[i] == '"' {
                (quoted(&chars, &mut i), true)
            } else {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '=' | '(' | ')' | '"')
                {
                    i += 1;
                }
                (chars[start..i].iter().collect::<String>(), false)
            };
            if chars.get(i) == Some(&'=') {
                i += 1;
                let (value, exact) = if chars.get(i) == Some(&'"') {
                    (quoted(&chars, &mut i), true)
                } else {
                    let start = i;
                    while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ')' {
                        i += 1;
                    }
                    (chars[start..i].iter().collect(), false)
                };
                q.terms.push(Term {
                    key: word,
                    value,
                    exact,
                });
            } else if !word.is_empty()
                && (was_quoted
                    || !matches!(word.as_str(), "AND" | "and" | "OR" | "or" | "NOT" | "not"))
            {
                q.words.push(word);
            }
        }
        Ok(q)
    }

    /// The schema as written: the namespace, then the dimension names; `None` without a schema.
    pub fn schema(&self) -> Option<Vec<String>> {
        let dimensions = self.schema_dimensions.as_ref()?;
        Some(
            std::iter::once(self.namespace.clone().unwrap_or_default())
                .chain(dimensions.iter().cloned())
                .collect(),
        )
    }

    /// The value of the `MetricName` term (the last one when it is repeated).
    pub fn metric_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .rev()
            .find(|t| t.key == "MetricName")
            .map(|t| t.value.as_str())
    }

    /// The terms other than `MetricName`, as `(key, value)`.
    pub fn filters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.terms
            .iter()
            .filter(|t| t.key != "MetricName")
            .map(|t| (t.key.as_str(), t.value.as_str()))
    }

    /// The namespace searched: the schema's, or a `Namespace=` term's.
    pub fn searched_namespace(&self) -> Option<&str> {
        self.namespace.as_deref().or_else(|| {
            self.terms
                .iter()
                .find(|t| t.key == "Namespace")
                .map(|t| t.value.as_str())
        })
    }

    /// Whether `m` is a result of this query.
    pub fn matches(&self, m: &MetricId) -> bool {
        if let Some(ns) = &self.namespace
            && &m.namespace != ns
        {
            return false;
        }
        if let Some(dims) = &self.schema_dimensions {
            let have: BTreeSet<&str> = m.dimensions.iter().map(|(n, _)| n.as_str()).collect();
            let want: BTreeSet<&str> = dims.iter().map(String::as_str).collect();
            if have != want {
                return false;
            }
        }
        let field = |key: &str| -> Option<String> {
            match key {
                "MetricName" => Some(m.name.clone()),
                "Namespace" => Some(m.namespace.clone()),
                _ => m.dimension(key).map(str::to_owned),
            }
        };
        for term in &self.terms {
            let Some(actual) = field(&term.key) else {
                return false;
            };
            let ok = if term.exact {
                actual == term.value
            } else {
                actual.to_lowercase().contains(&term.value.to_lowercase())
            };
            if !ok {
                return false;
            }
        }
        self.words.iter().all(|w| {
            let w = w.to_lowercase();
            m.name.to_lowercase().contains(&w)
                || m.dimensions
                    .iter()
                    .any(|(_, v)| v.to_lowercase().contains(&w))
        })
    }

    /// The label CloudWatch would give a result: the dimension values the query leaves open,
    /// with the metric name first when the query does not pin it.
    pub fn label_for(&self, m: &MetricId) -> String {
        let pinned: BTreeSet<&str> = self
            .terms
            .iter()
            .filter(|t| t.exact)
            .map(|t| t.key.as_str())
            .collect();
        let mut parts = Vec::new();
        if !pinned.contains("MetricName") {
            parts.push(m.name.clone());
        }
        // Keep the schema's order when there is one.
        let order: Vec<String> = match &self.schema_dimensions {
            Some(dims) => dims.clone(),
            None => m.dimensions.iter().map(|(n, _)| n.clone()).collect(),
        };
        for n in order {
            if !pinned.contains(n.as_str())
                && let Some(v) = m.dimension(&n)
            {
                parts.push(v.to_owned());
            }
        }
        if parts.is_empty() {
            m.name.clone()
        } else {
            parts.join(" ")
        }
    }
}

/// Reads a `"…"` string starting at `chars[*i]` (the opening quote); a backslash keeps the
/// character after it.
fn quoted(chars: &[char], i: &mut usize) -> String {
    let mut value = String::new();
    *i += 1;
    while *i < chars.len() && chars[*i] != '"' {
        if chars[*i] == '\\' {
            *i += 1;
        }
        if let Some(c) = chars.get(*i) {
            value.push(*c);
        }
        *i += 1;
    }
    *i += 1;
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_queries_match_the_exact_schema_and_terms() {
        let q = SearchQuery::parse(
            "{Payhook,service,provider,reason} MetricName=\"WebhooksRejected\" service=\"webhook-validator\"",
        )
        .unwrap_or_default();
        let dims = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect::<Vec<_>>()
        };
        let hit = MetricId::new(
            "Payhook",
            "WebhooksRejected",
            dims(&[
                ("service", "webhook-validator"),
                ("provider", "stripe"),
                ("reason", "bad_sig"),
            ]),
        );
        let wrong_set = MetricId::new(
            "Payhook",
            "WebhooksRejected",
            dims(&[("service", "webhook-validator"), ("provider", "stripe")]),
        );
        assert!(q.matches(&hit));
        assert!(!q.matches(&wrong_set));
        assert_eq!(q.label_for(&hit), "stripe bad_sig");
    }

    #[test]
    fn schema_metric_name_filters_and_words() {
        let q = SearchQuery::parse(
            "{AWS/Lambda, FunctionName} (MetricName=\"Errors\" AND FunctionName=pay) \"stripe proc\" NOT",
        )
        .unwrap_or_default();
        assert_eq!(
            q.schema(),
            Some(vec!["AWS/Lambda".to_owned(), "FunctionName".to_owned()])
        );
        assert_eq!(q.metric_name(), Some("Errors"));
        assert_eq!(
            q.filters().collect::<Vec<_>>(),
            vec![("FunctionName", "pay")]
        );
        assert_eq!(q.words, vec!["stripe proc".to_owned()]);
        assert_eq!(
            SearchQuery::parse("{AWS/SQS MetricName=\"x\""),
            Err(SearchError::UnclosedSchema)
        );
        assert_eq!(SearchQuery::parse("Errors").map(|q| q.schema()), Ok(None));
    }
}
