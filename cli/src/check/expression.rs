//! Metric math and search expressions: a small parser for CloudWatch's expression syntax
//! ("Use metric math" in the CloudWatch User Guide) that finds syntax errors, unknown functions
//! and wrong argument counts, the ids an expression refers to, and what each `SEARCH(…)`
//! selects (its `{Namespace,Dim…}` schema, `MetricName` and filters) so the dimension sets can
//! be compared with the metric catalogue.

use std::collections::{BTreeMap, BTreeSet};

use super::vocabulary::{self, MATH_KEYWORDS, math_function};

/// What an expression refers to and what is wrong with it.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    /// Ids the expression reads (`errors`, `invocations`), with repeats.
    pub(crate) references: Vec<String>,
    /// Every `SEARCH(…)` in it.
    pub(crate) searches: Vec<Search>,
    /// Whether it is a Metrics Insights query (`SELECT …`), which is not parsed further.
    pub(crate) insights: bool,
    /// Problems: syntax, unknown functions and names, argument counts (code
    /// `invalid_expression`), bad `SEARCH` statistics and periods.
    pub(crate) problems: Vec<Problem>,
}

/// One problem in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// A `codes` value.
    pub(crate) code: &'static str,
    /// What is wrong.
    pub(crate) message: String,
}

/// One `SEARCH('{Namespace,Dim1,Dim2} MetricName="Name" Dim1="value"', 'Stat', period)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Search {
    /// `{Namespace,Dim1,…}`: the namespace and the exact dimension set, when given.
    pub(crate) schema: Option<Vec<String>>,
    /// The `MetricName="…"` term, when given.
    pub(crate) metric_name: Option<String>,
    /// Other `Key="value"` terms.
    pub(crate) filters: Vec<(String, String)>,
}

/// Analyses one expression.
pub(crate) fn analyse(expression: &str) -> Analysis {
    let mut analysis = Analysis::default();
    let trimmed = expression.trim_start();
    if trimmed
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("SELECT "))
    {
        analysis.insights = true;
        return analysis;
    }
    if expression.trim().is_empty() {
        analysis
            .problems
            .push(syntax("the expression is empty".to_owned()));
        return analysis;
    }
    let tokens = match tokenize(expression) {
        Ok(tokens) => tokens,
        Err(message) => {
            analysis.problems.push(syntax(message));
            return analysis;
        }
    };
    let mut parser = Parser {
        tokens: &tokens,
        position: 0,
        analysis: &mut analysis,
    };
    match parser.expression() {
        Ok(_) => {
            if let Some(extra) = tokens.get(parser.position) {
                let message = format!("unexpected {} at character {}", extra.token, extra.at + 1);
                analysis.problems.push(syntax(message));
            }
        }
        Err(message) => analysis.problems.push(syntax(message)),
    }
    analysis
}

fn syntax(message: String) -> Problem {
    Problem {
        code: super::codes::INVALID_EXPRESSION,
        message,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Text(String),
    Name(String),
    Symbol(&'static str),
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Number(n) => write!(f, "number `{n}`"),
            Token::Text(t) => write!(f, "string '{t}'"),
            Token::Name(n) => write!(f, "`{n}`"),
            Token::Symbol(s) => write!(f, "`{s}`"),
        }
    }
}

#[derive(Debug)]
struct Located {
    token: Token,
    at: usize,
}

const SYMBOLS: [&str; 18] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "^", "(", ")", "[", "]", ",",
];

fn tokenize(text: &str) -> Result<Vec<Located>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i;
        if c.is_whitespace() {
            i += 1;
        } else if matches!(c, '\'' | '"' | '“' | '”') {
            let close = match c {
                '“' => '”',
                other => other,
            };
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "the string starting at character {} is not closed",
                            at + 1
                        ));
                    }
                    Some('\\') => {
                        if let Some(next) = chars.get(i + 1) {
                            value.push(*next);
                        }
                        i += 2;
                    }
                    Some(ch) if *ch == close => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        value.push(*ch);
                        i += 1;
                    }
                }
            }
            tokens.push(Located {
                token: Token::Text(value),
                at,
            });
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                i += 1;
            }
            if chars.get(i).is_some_and(|c| *c == 'e' || *c == 'E') {
                let mut j = i + 1;
                if chars.get(j).is_some_and(|c| *c == '+' || *c == '-') {
                    j += 1;
                }
                if chars.get(j).is_some_and(char::is_ascii_digit) {
                    i = j;
                    while chars.get(i).is_some_and(char::is_ascii_digit) {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i].iter().collect();
            let value = literal
                .parse::<f64>()
                .map_err(|_| format!("`{literal}` at character {} is not a number", at + 1))?;
            tokens.push(Located {
                token: Token::Number(value),
                at,
            });
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            tokens.push(Located {
                token: Token::Name(name),
                at,
            });
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(symbol) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                return Err(format!(
                    "unexpected character `{c}` at character {}",
                    at + 1
                ));
            };
            i += symbol.chars().count();
            tokens.push(Located {
                token: Token::Symbol(symbol),
                at,
            });
        }
    }
    Ok(tokens)
}

/// The parsed shape the checks need: literals (for `SEARCH` arguments) and everything else.
#[derive(Debug)]
enum Node {
    Number(f64),
    Text(String),
    Other,
}

struct Parser<'a> {
    tokens: &'a [Located],
    position: usize,
    analysis: &'a mut Analysis,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|t| &t.token)
    }

    fn at(&self) -> usize {
        self.tokens
            .get(self.position)
            .map_or_else(|| self.tokens.last().map_or(0, |t| t.at + 1), |t| t.at)
            + 1
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Name(n)) if n == word) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, symbol: &str, context: &str) -> Result<(), String> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(token) => format!(
                    "expected `{symbol}` {context} at character {}, found {token}",
                    self.at()
                ),
                None => format!("expected `{symbol}` {context}, but the expression ends"),
            })
        }
    }

    fn expression(&mut self) -> Result<Node, String> {
        let mut left = self.and()?;
        while self.eat_symbol("||") || self.eat_word("OR") {
            self.and()?;
            left = Node::Other;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut left = self.comparison()?;
        while self.eat_symbol("&&") || self.eat_word("AND") {
            self.comparison()?;
            left = Node::Other;
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Node, String> {
        let mut left = self.sum()?;
        while ["==", "!=", "<=", ">=", "<", ">"]
            .iter()
            .any(|s| self.eat_symbol(s))
        {
            self.sum()?;
            left = Node::Other;
        }
        Ok(left)
    }

    fn sum(&mut self) -> Result<Node, String> {
        let mut left = self.product()?;
        while self.eat_symbol("+") || self.eat_symbol("-") {
            self.product()?;
            left = Node::Other;
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Node, String> {
        let mut left = self.power()?;
        while self.eat_symbol("*") || self.eat_symbol("/") {
            self.power()?;
            left = Node::Other;
        }
        Ok(left)
    }

    fn power(&mut self) -> Result<Node, String> {
        let mut left = self.unary()?;
        while self.eat_symbol("^") {
            self.unary()?;
            left = Node::Other;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, String> {
        if self.eat_symbol("-") {
            return match self.unary()? {
                Node::Number(n) => Ok(Node::Number(-n)),
                _ => Ok(Node::Other),
            };
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, String> {
        let at = self.at();
        let Some(token) = self.peek().cloned() else {
            return Err("the expression ends where a value is expected".to_owned());
        };
        self.position += 1;
        match token {
            Token::Number(n) => Ok(Node::Number(n)),
            Token::Text(t) => Ok(Node::Text(t)),
            Token::Symbol("(") => {
                self.expression()?;
                self.expect(")", "to close the parenthesis")?;
                Ok(Node::Other)
            }
            Token::Symbol("[") => {
                if !self.eat_symbol("]") {
                    self.expression()?;
                    while self.eat_symbol(",") {
                        self.expression()?;
                    }
                    self.expect("]", "to close the array")?;
                }
                Ok(Node::Other)
            }
            Token::Name(name) if self.peek() == Some(&Token::Symbol("(")) => {
                self.position += 1;
                let mut arguments = Vec::new();
                if !self.eat_symbol(")") {
                    arguments.push(self.expression()?);
                    while self.eat_symbol(",") {
                        arguments.push(self.expression()?);
                    }
                    self.expect(")", &format!("to close {name}("))?;
                }
                self.call(&name, &arguments, at);
                Ok(Node::Other)
            }
            Token::Name(name) if name == "AND" || name == "OR" => Err(format!(
                "`{name}` at character {at} needs a value before it"
            )),
            Token::Name(name) => {
                if MATH_KEYWORDS.contains(&name.as_str()) || math_function(&name).is_some() {
                    // `FILL(m, REPEAT)`, `SORT(METRICS(), AVG, DESC)`.
                } else if name.starts_with(|c: char| c.is_ascii_lowercase()) {
                    self.analysis.references.push(name);
                } else {
                    self.analysis.problems.push(syntax(format!(
                        "`{name}` at character {at} is neither an id (ids start with a lower-case \
                         letter) nor a metric math keyword"
                    )));
                }
                Ok(Node::Other)
            }
            Token::Symbol(symbol) => Err(format!("unexpected `{symbol}` at character {at}")),
        }
    }

    fn call(&mut self, name: &str, arguments: &[Node], at: usize) {
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
            self.analysis.problems.push(syntax(message));
            return;
        };
        if arguments.len() < min || arguments.len() > max {
            let expected = match (min, max) {
                (min, max) if min == max => format!("{min}"),
                (min, usize::MAX) => format!("at least {min}"),
                (min, max) => format!("{min} to {max}"),
            };
            self.analysis.problems.push(syntax(format!(
                "{name} takes {expected} argument(s), not {}",
                arguments.len()
            )));
            return;
        }
        if name == "SEARCH" {
            self.search(arguments);
        }
    }

    fn search(&mut self, arguments: &[Node]) {
        match &arguments[0] {
            Node::Text(text) => self.analysis.searches.push(parse_search(text)),
            _ => self.analysis.problems.push(syntax(
                "the first argument of SEARCH must be the search expression as a quoted string"
                    .to_owned(),
            )),
        }
        match &arguments[1] {
            Node::Text(stat) if vocabulary::is_statistic(stat) => {}
            Node::Text(stat) => self.analysis.problems.push(Problem {
                code: super::codes::INVALID_STAT,
                message: format!(
                    "`{stat}` (the SEARCH statistic) is not a CloudWatch statistic: use SampleCount, \
                     Average, Sum, Minimum, Maximum or a percentile such as p99"
                ),
            }),
            _ => self.analysis.problems.push(syntax(
                "the second argument of SEARCH must be the statistic as a quoted string ('Sum')".to_owned(),
            )),
        }
        match &arguments[2] {
            Node::Number(period)
                if period.fract() == 0.0
                    && *period >= 1.0
                    && vocabulary::is_dashboard_period(*period as u64) => {}
            Node::Number(period) => self.analysis.problems.push(Problem {
                code: super::codes::INVALID_PERIOD,
                message: format!(
                    "the SEARCH period {period} is not a CloudWatch period: use 1, 5, 10, 30 or a \
                     multiple of 60 seconds"
                ),
            }),
            _ => self.analysis.problems.push(syntax(
                "the third argument of SEARCH must be the period in seconds".to_owned(),
            )),
        }
    }
}

/// A cycle through `start` in the id graph, as the ids along it.
pub(crate) fn cycle_from(
    start: &str,
    graph: &BTreeMap<String, Vec<String>>,
) -> Option<Vec<String>> {
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

/// Splits a search expression into its schema, `MetricName` and `Key="value"` filters.
pub(crate) fn parse_search(text: &str) -> Search {
    let mut search = Search::default();
    let mut rest = text.trim();
    if let Some(inner) = rest.strip_prefix('{')
        && let Some(end) = inner.find('}')
    {
        search.schema = Some(
            inner[..end]
                .split(',')
                .map(|part| part.trim().trim_matches('"').to_owned())
                .collect(),
        );
        rest = &inner[end + 1..];
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() || chars[i] == '(' || chars[i] == ')' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && !chars[i].is_whitespace()
            && !matches!(chars[i], '=' | '(' | ')' | '"')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if chars.get(i) == Some(&'=') {
            i += 1;
            let mut value = String::new();
            if chars.get(i) == Some(&'"') {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    if let Some(c) = chars.get(i) {
                        value.push(*c);
                    }
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ')' {
                    value.push(chars[i]);
                    i += 1;
                }
            }
            if word == "MetricName" {
                search.metric_name = Some(value);
            } else {
                search.filters.push((word, value));
            }
        } else if chars.get(i) == Some(&'"') {
            // A quoted free-text term: skip it.
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            i += 1;
        }
    }
    search
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
