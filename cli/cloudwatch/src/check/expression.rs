//! Metric math and search expressions as `payhook check` sees them: an analysis over the tree
//! that [`crate::math::parse`] builds (the parser the dashboard preview evaluates
//! with), finding syntax errors, unknown functions and wrong argument counts, the ids an
//! expression refers to, and what each `SEARCH(…)` selects (its `{Namespace,Dim…}` schema,
//! `MetricName` and filters, read by [`crate::search::SearchQuery`]) so the
//! dimension sets can be compared with the metric catalogue.

use std::collections::{BTreeMap, BTreeSet};

use crate::math::{self, Expr, ExprKind};
use crate::search::SearchQuery;

use super::vocabulary::{self, MATH_KEYWORDS, math_function};

/// What an expression refers to and what is wrong with it.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Ids the expression reads (`errors`, `invocations`), with repeats.
    pub references: Vec<String>,
    /// Every `SEARCH(…)` in it.
    pub searches: Vec<Search>,
    /// Whether it is a Metrics Insights query (`SELECT …`), which is not parsed further.
    pub insights: bool,
    /// Problems: syntax, unknown functions and names, argument counts (code
    /// `invalid_expression`), bad `SEARCH` statistics and periods.
    pub problems: Vec<Problem>,
}

/// One problem in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A `codes` value.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// One `SEARCH('{Namespace,Dim1,Dim2} MetricName="Name" Dim1="value"', 'Stat', period)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    /// `{Namespace,Dim1,…}`: the namespace and the exact dimension set, when given.
    pub schema: Option<Vec<String>>,
    /// The `MetricName="…"` term, when given.
    pub metric_name: Option<String>,
    /// Other `Key="value"` terms.
    pub filters: Vec<(String, String)>,
}

/// Analyses one expression.
pub fn analyse(expression: &str) -> Analysis {
    let mut analysis = Analysis::default();
    if math::is_insights_query(expression) {
        analysis.insights = true;
        return analysis;
    }
    match math::parse(expression) {
        Ok(expr) => analysis.visit(&expr),
        Err(error) => analysis.problems.push(syntax(error.message)),
    }
    analysis
}

fn syntax(message: String) -> Problem {
    Problem {
        code: super::codes::INVALID_EXPRESSION,
        message,
    }
}

impl Analysis {
    /// Walks the tree in source order; a call is judged after its arguments, so problems come
    /// in the order they are written.
    fn visit(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Number(_) | ExprKind::String(_) => {}
            ExprKind::Name(name) => self.name(name, expr.at),
            ExprKind::Array(items) => items.iter().for_each(|item| self.visit(item)),
            ExprKind::Neg(inner) => self.visit(inner),
            ExprKind::Binary { left, right, .. } => {
                self.visit(left);
                self.visit(right);
            }
            ExprKind::Call { name, args } => {
                args.iter().for_each(|arg| self.visit(arg));
                self.call(name, args, expr.at);
            }
        }
    }

    fn name(&mut self, name: &str, at: usize) {
        if MATH_KEYWORDS.contains(&name) || math_function(name).is_some() {
            // `FILL(m, REPEAT)`, `SORT(METRICS(), AVG, DESC)`.
        } else if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            self.references.push(name.to_owned());
        } else {
            self.problems.push(syntax(format!(
                "`{name}` at character {at} is neither an id (ids start with a lower-case \
                 letter) nor a metric math keyword"
            )));
        }
    }

    fn call(&mut self, name: &str, arguments: &[Expr], at: usize) {
        let Some((min, max)) = math_function(name) else {
            let upper = name.to_ascii_uppercase();
            let message = if math_function(&upper).is_some() {
                format!("metric math functions are written in upper case: `{upper}`, not `{name}`")
            } else {
                let known = vocabulary::MATH_FUNCTIONS.iter().map(|(n, _, _)| *n);
                let hint = vocabulary::closest(&upper, known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                format!("unknown metric math function `{name}` at character {at}{hint}")
            };
            self.problems.push(syntax(message));
            return;
        };
        if arguments.len() < min || arguments.len() > max {
            let expected = match (min, max) {
                (min, max) if min == max => format!("{min}"),
                (min, usize::MAX) => format!("at least {min}"),
                (min, max) => format!("{min} to {max}"),
            };
            self.problems.push(syntax(format!(
                "{name} takes {expected} argument(s), not {}",
                arguments.len()
            )));
            return;
        }
        if name == "SEARCH" {
            self.search(arguments);
        }
    }

    fn search(&mut self, arguments: &[Expr]) {
        match arguments[0].as_str().map(SearchQuery::parse) {
            Some(Ok(query)) => self.searches.push(Search::from(&query)),
            Some(Err(error)) => self.problems.push(syntax(error.to_string())),
            None => self.problems.push(syntax(
                "the first argument of SEARCH must be the search expression as a quoted string"
                    .to_owned(),
            )),
        }
        match arguments[1].as_str() {
            Some(stat) if vocabulary::is_statistic(stat) => {}
            Some(stat) => self.problems.push(Problem {
                code: super::codes::INVALID_STAT,
                message: format!(
                    "`{stat}` (the SEARCH statistic) is not a CloudWatch statistic: use SampleCount, \
                     Average, Sum, Minimum, Maximum or a percentile such as p99"
                ),
            }),
            None => self.problems.push(syntax(
                "the second argument of SEARCH must be the statistic as a quoted string ('Sum')".to_owned(),
            )),
        }
        match arguments[2].as_number() {
            Some(period)
                if period.fract() == 0.0
                    && period >= 1.0
                    && vocabulary::is_dashboard_period(period as u64) => {}
            Some(period) => self.problems.push(Problem {
                code: super::codes::INVALID_PERIOD,
                message: format!(
                    "the SEARCH period {period} is not a CloudWatch period: use 1, 5, 10, 30 or a \
                     multiple of 60 seconds"
                ),
            }),
            None => self.problems.push(syntax(
                "the third argument of SEARCH must be the period in seconds".to_owned(),
            )),
        }
    }
}

impl From<&SearchQuery> for Search {
    fn from(query: &SearchQuery) -> Search {
        Search {
            schema: query.schema(),
            metric_name: query.metric_name().map(str::to_owned),
            filters: query
                .filters()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

/// A cycle through `start` in the id graph, as the ids along it.
pub fn cycle_from(start: &str, graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        start: &str,
        graph: &BTreeMap<String, Vec<String>>,
        trail: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                trail.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                trail.push(next.clone());
                if visit(next, start, graph, trail, seen) {
                    return true;
                }
                trail.pop();
            }
        }
        false
    }
    let mut trail = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    visit(start, start, graph, &mut trail, &mut seen).then_some(trail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_of_a_guarded_rate() {
        let a = analyse(
            "IF(FILL(invocations, 0) > 0, 100 * FILL(errors, 0) / FILL(invocations, 0), 0)",
        );
        assert_eq!(a.problems, vec![]);
        assert_eq!(a.references, vec!["invocations", "errors", "invocations"]);
    }

    #[test]
    fn keywords_arrays_and_logic_parse() {
        for ok in [
            "SORT(METRICS(), AVG, DESC, 10)",
            "FILL(m1, REPEAT) + -m2 ^ 2",
            "SUM([m1, m2]) / 2",
            "IF(m1 > 15 AND m2 > 15 || m3 != 0, 1, 0)",
            "SUM(METRICS(\"errors\"))",
            "SELECT MAX(CPUUtilization) FROM SCHEMA(\"AWS/EC2\", InstanceId)",
        ] {
            let a = analyse(ok);
            assert_eq!(a.problems, vec![], "{ok}");
        }
    }

    #[test]
    fn errors_are_explained() {
        let cases = [
            ("FILL(m1, 0", "expected `)`"),
            ("fill(m1, 0)", "upper case: `FILL`"),
            ("FILLL(m1, 0)", "did you mean `FILL`"),
            ("IF(m1)", "IF takes 2 to 3 argument(s), not 1"),
            ("m1 +", "ends where a value is expected"),
            ("m1 m2", "unexpected `m2`"),
            ("Errors / 2", "neither an id"),
            ("m1 $ 2", "unexpected character `$`"),
        ];
        for (expression, wanted) in cases {
            let a = analyse(expression);
            assert!(
                a.problems.iter().any(|p| p.message.contains(wanted)),
                "{expression}: {:?}",
                a.problems
            );
        }
    }

    #[test]
    fn search_is_split_into_schema_metric_and_filters() {
        let a = analyse(
            "SEARCH('{Payhook,service,provider,reason} MetricName=\"WebhooksRejected\" service=\"webhook-validator\"', 'Sum', 300)",
        );
        assert_eq!(a.problems, vec![]);
        assert_eq!(
            a.searches,
            vec![Search {
                schema: Some(vec![
                    "Payhook".into(),
                    "service".into(),
                    "provider".into(),
                    "reason".into()
                ]),
                metric_name: Some("WebhooksRejected".into()),
                filters: vec![("service".into(), "webhook-validator".into())],
            }]
        );
        let bad =
            analyse("SEARCH('{AWS/Lambda,FunctionName} MetricName=\"Errors\"', 'Median', 90)");
        let codes: Vec<_> = bad.problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, vec!["invalid_stat", "invalid_period"]);
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let graph: BTreeMap<String, Vec<String>> = [
            ("e1".to_owned(), vec!["m1".to_owned(), "e2".to_owned()]),
            ("e2".to_owned(), vec!["e1".to_owned()]),
            ("e3".to_owned(), vec!["m1".to_owned()]),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            cycle_from("e1", &graph),
            Some(vec!["e1".into(), "e2".into(), "e1".into()])
        );
        assert_eq!(cycle_from("e3", &graph), None);
    }
}
