//! Metric math: one lexer and one parser for the expression language of CloudWatch's metric
//! math ("Use metric math" in the CloudWatch User Guide), producing an [`Expr`] tree.
//!
//! The grammar, loosest binding first:
//!
//! ```text
//! expression  = and { ("||" | "OR") and }
//! and         = comparison { ("&&" | "AND") comparison }
//! comparison  = sum { ("==" | "!=" | "<=" | ">=" | "<" | ">") sum }
//! sum         = product { ("+" | "-") product }
//! product     = power { ("*" | "/") power }
//! power       = unary { "^" unary }
//! unary       = "-" unary | primary
//! primary     = number | string | "(" expression ")" | "[" [ expression { "," expression } ] "]"
//!             | name "(" [ expression { "," expression } ] ")" | name
//! ```
//!
//! Every binary operator is left-associative. Strings take `'…'`, `"…"` or typographic `“…”`
//! quotes, and a backslash keeps the character after it (`\"` inside a `SEARCH` query stays an
//! exact-match quote). `AND` / `OR` may also be written `and` / `or`. A name followed by `(` is
//! a call (`SEARCH(…)` is a call like any other; its first argument is read by
//! [`crate::search::SearchQuery`]); any other name is an id or a keyword (`REPEAT`, `DESC`).
//!
//! The tree has two readers: `payhook check` walks it for the ids an expression refers to, the
//! functions it calls and their argument counts; the dashboard preview evaluates it on time
//! series. Both get the same tree from the same text, so an expression the check accepts is one
//! the preview can read.

use std::fmt;

/// A parsed expression: what it is and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The node.
    pub kind: ExprKind,
    /// Where the node starts in the text, as a 1-based character position (for messages).
    pub at: usize,
}

/// The kinds of [`Expr`] node.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A number literal.
    Number(f64),
    /// A string literal, unescaped.
    String(String),
    /// A bare name: a metric or expression id (`errors`) or a keyword (`REPEAT`, `DESC`).
    Name(String),
    /// A function call, with the name as written (`FILL`, `SEARCH`).
    Call {
        /// The function name as written.
        name: String,
        /// The arguments in order.
        args: Vec<Expr>,
    },
    /// An array literal `[a, b]`.
    Array(Vec<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinOp,
        /// Its left operand.
        left: Box<Expr>,
        /// Its right operand.
        right: Box<Expr>,
    },
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `||` / `OR`.
    Or,
    /// `&&` / `AND`.
    And,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `^`.
    Pow,
}

impl BinOp {
    /// The operator's symbol (`&&` for `AND`).
    pub const fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
        }
    }
}

/// Why a text is not a metric math expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What is wrong and where (`expected `)` … at character 9`).
    pub message: String,
}

impl ParseError {
    fn new(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
        }
    }
}

/// Whether `text` is a Metrics Insights query (`SELECT …`), a different language that the
/// metric math parser does not read.
pub fn is_insights_query(text: &str) -> bool {
    text.trim_start()
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("SELECT "))
}

/// Parses one metric math expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::new("the expression is empty"));
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        position: 0,
    };
    let expr = parser.expression()?;
    if let Some(extra) = tokens.get(parser.position) {
        return Err(ParseError::new(format!(
            "unexpected {} at character {}",
            extra.token,
            extra.at + 1
        )));
    }
    Ok(expr)
}

impl Expr {
    /// The value of a number literal, with unary minus folded in (`-60` is `Some(-60.0)`).
    pub fn as_number(&self) -> Option<f64> {
        match &self.kind {
            ExprKind::Number(n) => Some(*n),
            ExprKind::Neg(inner) => inner.as_number().map(|n| -n),
            _ => None,
        }
    }

    /// The value of a string literal.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ExprKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// Visits this node and every node below it, parents before children, left to right.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a Expr)) {
        visit(self);
        match &self.kind {
            ExprKind::Number(_) | ExprKind::String(_) | ExprKind::Name(_) => {}
            ExprKind::Call { args, .. } | ExprKind::Array(args) => {
                for arg in args {
                    arg.walk(visit);
                }
            }
            ExprKind::Neg(inner) => inner.walk(visit),
            ExprKind::Binary { left, right, .. } => {
                left.walk(visit);
                right.walk(visit);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Text(String),
    Name(String),
    Symbol(&'static str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    /// 0-based character index.
    at: usize,
}

const SYMBOLS: [&str; 18] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "^", "(", ")", "[", "]", ",",
];

fn tokenize(text: &str) -> Result<Vec<Located>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i;
        if c.is_whitespace() {
            i += 1;
        } else if matches!(c, '\'' | '"' | '“' | '”') {
            let (value, end) = lex_text(&chars, at)?;
            i = end;
            tokens.push(Located {
                token: Token::Text(value),
                at,
            });
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let (value, end) = lex_number(&chars, at)?;
            i = end;
            tokens.push(Located {
                token: Token::Number(value),
                at,
            });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_')
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
                return Err(ParseError::new(format!(
                    "unexpected character `{c}` at character {}",
                    at + 1
                )));
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

/// The quoted string opening at `chars[at]` (`'`, `"` or curly quotes; a backslash escapes the next
/// character): its value and the index after its closing quote.
fn lex_text(chars: &[char], at: usize) -> Result<(String, usize), ParseError> {
    let close = match chars[at] {
        '“' => '”',
        other => other,
    };
    let mut value = String::new();
    let mut i = at + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(ParseError::new(format!(
                    "the string starting at character {} is not closed",
                    at + 1
                )));
            }
            Some('\\') => {
                if let Some(next) = chars.get(i + 1) {
                    value.push(*next);
                }
                i += 2;
            }
            Some(ch) if *ch == close => return Ok((value, i + 1)),
            Some(ch) => {
                value.push(*ch);
                i += 1;
            }
        }
    }
}

/// The number starting at `chars[at]` (digits and dots, then an optional exponent): its value
/// and the index after it.
fn lex_number(chars: &[char], at: usize) -> Result<(f64, usize), ParseError> {
    let mut i = at;
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
    let literal: String = chars[at..i].iter().collect();
    let value = literal.parse::<f64>().map_err(|_| {
        ParseError::new(format!(
            "`{literal}` at character {} is not a number",
            at + 1
        ))
    })?;
    Ok((value, i))
}

/// The words that are operators: `AND`/`and` and `OR`/`or`.
fn word_operator(name: &str) -> Option<BinOp> {
    match name {
        "AND" | "and" => Some(BinOp::And),
        "OR" | "or" => Some(BinOp::Or),
        _ => None,
    }
}

struct Parser<'a> {
    tokens: &'a [Located],
    position: usize,
}

/// The operator levels, loosest first.
const LEVELS: [&[BinOp]; 6] = [
    &[BinOp::Or],
    &[BinOp::And],
    &[
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Le,
        BinOp::Ge,
        BinOp::Lt,
        BinOp::Gt,
    ],
    &[BinOp::Add, BinOp::Sub],
    &[BinOp::Mul, BinOp::Div],
    &[BinOp::Pow],
];

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|t| &t.token)
    }

    /// The 1-based character position of the next token (one past the end at the end).
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

    /// Takes the next token when it is one of `ops`.
    fn eat_operator(&mut self, ops: &[BinOp]) -> Option<BinOp> {
        let op = match self.peek()? {
            Token::Symbol(s) => ops.iter().find(|op| op.symbol() == *s).copied(),
            Token::Name(n) => word_operator(n).filter(|op| ops.contains(op)),
            _ => None,
        }?;
        self.position += 1;
        Some(op)
    }

    fn expect(&mut self, symbol: &str, context: &str) -> Result<(), ParseError> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            Err(ParseError::new(match self.peek() {
                Some(token) => format!(
                    "expected `{symbol}` {context} at character {}, found {token}",
                    self.at()
                ),
                None => format!("expected `{symbol}` {context}, but the expression ends"),
            }))
        }
    }

    fn expression(&mut self) -> Result<Expr, ParseError> {
        self.level(0)
    }

    fn level(&mut self, level: usize) -> Result<Expr, ParseError> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.level(level + 1)?;
        while let Some(op) = self.eat_operator(ops) {
            let right = self.level(level + 1)?;
            left = Expr {
                at: left.at,
                kind: ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                },
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let at = self.at();
        if self.eat_symbol("-") {
            let inner = self.unary()?;
            return Ok(Expr {
                kind: ExprKind::Neg(Box::new(inner)),
                at,
            });
        }
        self.primary()
    }

    /// Comma-separated expressions up to `close` (already past the opening bracket).
    fn list(&mut self, close: &str, context: &str) -> Result<Vec<Expr>, ParseError> {
        let mut items = Vec::new();
        if !self.eat_symbol(close) {
            items.push(self.expression()?);
            while self.eat_symbol(",") {
                items.push(self.expression()?);
            }
            self.expect(close, context)?;
        }
        Ok(items)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.at();
        let Some(token) = self.peek().cloned() else {
            return Err(ParseError::new(
                "the expression ends where a value is expected",
            ));
        };
        self.position += 1;
        let kind = match token {
            Token::Number(n) => ExprKind::Number(n),
            Token::Text(t) => ExprKind::String(t),
            Token::Symbol("(") => {
                let inner = self.expression()?;
                self.expect(")", "to close the parenthesis")?;
                return Ok(inner);
            }
            Token::Symbol("[") => ExprKind::Array(self.list("]", "to close the array")?),
            Token::Name(name) if self.peek() == Some(&Token::Symbol("(")) => {
                self.position += 1;
                let args = self.list(")", &format!("to close {name}("))?;
                ExprKind::Call { name, args }
            }
            Token::Name(name) if word_operator(&name).is_some() => {
                return Err(ParseError::new(format!(
                    "`{name}` at character {at} needs a value before it"
                )));
            }
            Token::Name(name) => ExprKind::Name(name),
            Token::Symbol(symbol) => {
                return Err(ParseError::new(format!(
                    "unexpected `{symbol}` at character {at}"
                )));
            }
        };
        Ok(Expr { kind, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str, at: usize) -> Expr {
        Expr {
            kind: ExprKind::Name(n.to_owned()),
            at,
        }
    }

    #[test]
    fn operators_bind_as_cloudwatch_documents() {
        // `a + b * c ^ 2` is `a + (b * (c ^ 2))`.
        let e = parse("a + b * c ^ 2").unwrap_or_else(|e| panic!("{e}"));
        let ExprKind::Binary { op, left, right } = e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(op, BinOp::Add);
        assert_eq!(*left, name("a", 1));
        let ExprKind::Binary { op, right, .. } = &right.kind else {
            panic!("{right:?}")
        };
        assert_eq!(*op, BinOp::Mul);
        assert!(matches!(
            right.kind,
            ExprKind::Binary { op: BinOp::Pow, .. }
        ));
    }

    #[test]
    fn word_operators_in_either_case() {
        for text in ["a AND b", "a and b", "a && b"] {
            let e = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(
                matches!(e.kind, ExprKind::Binary { op: BinOp::And, .. }),
                "{text}"
            );
        }
        let e = parse("a OR b").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(e.kind, ExprKind::Binary { op: BinOp::Or, .. }));
    }

    #[test]
    fn arrays_calls_strings_and_positions() {
        let e = parse("SUM([m1, m2])").unwrap_or_else(|e| panic!("{e}"));
        let ExprKind::Call { name: f, args } = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(f, "SUM");
        assert_eq!(
            args[0].kind,
            ExprKind::Array(vec![name("m1", 6), name("m2", 10)])
        );
        let s = parse("“curly” ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.as_str(), Some("curly"));
        let n = parse("--1e+3").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.as_number(), Some(1000.0));
        assert_eq!(parse("[]").map(|e| e.kind), Ok(ExprKind::Array(Vec::new())));
    }

    #[test]
    fn insights_queries_are_recognised() {
        assert!(is_insights_query(" select AVG(x) FROM SCHEMA(\"AWS/EC2\")"));
        assert!(!is_insights_query("SELECTED"));
    }

    #[test]
    fn search_inside_an_expression_keeps_its_escaped_quotes() {
        let ast = parse(
            "SEARCH('{AWS/Events,EventBusName,RuleName} EventBusName=\\\"payment-events\\\" MetricName=\\\"MatchedEvents\\\"', 'Sum', 300)",
        )
        .map(|e| e.kind);
        match ast {
            Ok(ExprKind::Call { name, args }) => {
                assert_eq!(name, "SEARCH");
                match &args[0].kind {
                    ExprKind::String(s) => assert!(s.contains("EventBusName=\"payment-events\"")),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }
}
