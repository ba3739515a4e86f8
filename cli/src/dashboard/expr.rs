//! Metric math as CloudWatch evaluates it (the subset dashboards and alarms here use):
//! arithmetic and comparisons between scalars and time series, `IF`, `FILL`, `METRICS()`,
//! `SUM`/`AVG`/`MIN`/`MAX`/`ABS`/`CEIL`/`FLOOR`, and `SEARCH` (parsed here, answered by the
//! caller from the metrics it knows).
//!
//! Semantics from the CloudWatch User Guide ("Use metric math"): missing values in a time series
//! count as 0 in arithmetic, a point whose division would be by zero is dropped, `IF` without a
//! false branch drops the point, and a condition is false when its value is 0.

use std::collections::BTreeSet;

use super::metrics::{MetricId, Points};

/// A value of an expression.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// A number.
    Scalar(f64),
    /// One time series.
    Ts(Labeled),
    /// Several (from `METRICS()` or `SEARCH`).
    Array(Vec<Labeled>),
    /// A string argument (`SEARCH`'s query and stat, `METRICS`' filter).
    Str(String),
}

/// A time series with its label.
#[derive(Debug, Clone, Default)]
pub(crate) struct Labeled {
    /// The series' label.
    pub(crate) label: String,
    /// Datapoints by period start.
    pub(crate) points: Points,
}

/// What an expression can ask of the widget or alarm it sits in.
pub(crate) trait Env {
    /// The series with this id (a metric or another expression of the same widget).
    fn id(&mut self, id: &str) -> Result<Val, String>;
    /// Every metric (not expression) of the widget whose id contains `filter`.
    fn metrics(&mut self, filter: Option<&str>) -> Result<Vec<Labeled>, String>;
    /// The series of a `SEARCH(query, stat, period)`.
    fn search(&mut self, query: &str, stat: &str, period: i64) -> Result<Vec<Labeled>, String>;
    /// The period starts of the time range (what `FILL` fills).
    fn grid(&self) -> Vec<i64>;
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => {
                            // `\"` inside a search string is an exact-match quote: keep it.
                            if let Some(&next) = chars.get(i + 1) {
                                s.push(next);
                            }
                            i += 2;
                        }
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || chars[i] == '.'
                        || ((chars[i] == 'e' || chars[i] == 'E')
                            && chars
                                .get(i + 1)
                                .is_some_and(|n| n.is_ascii_digit() || *n == '-')))
                {
                    if chars[i] == 'e' || chars[i] == 'E' {
                        i += 1;
                    }
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                out.push(Tok::Num(
                    s.parse().map_err(|_| format!("bad number {s:?}"))?,
                ));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.as_str() {
                    "AND" | "and" => out.push(Tok::Op("&&")),
                    "OR" | "or" => out.push(Tok::Op("||")),
                    _ => out.push(Tok::Ident(word)),
                }
            }
            _ => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = match two.as_str() {
                    ">=" => Some(">="),
                    "<=" => Some("<="),
                    "==" => Some("=="),
                    "!=" => Some("!="),
                    "&&" => Some("&&"),
                    "||" => Some("||"),
                    _ => None,
                };
                if let Some(op) = op {
                    out.push(Tok::Op(op));
                    i += 2;
                    continue;
                }
                let op = match c {
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '^' => "^",
                    '>' => ">",
                    '<' => "<",
                    _ => return Err(format!("unexpected character {c:?}")),
                };
                out.push(Tok::Op(op));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub(crate) enum Ast {
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// A metric or expression id (or a keyword such as `REPEAT`).
    Id(String),
    /// A function call.
    Call(String, Vec<Ast>),
    /// A binary operation.
    Bin(&'static str, Box<Ast>, Box<Ast>),
    /// Unary minus.
    Neg(Box<Ast>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn precedence(op: &str) -> u8 {
    match op {
        "||" => 1,
        "&&" => 2,
        "==" | "!=" | ">" | ">=" | "<" | "<=" => 3,
        "+" | "-" => 4,
        "*" | "/" => 5,
        "^" => 6,
        _ => 0,
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expr(&mut self, min_prec: u8) -> Result<Ast, String> {
        let mut left = self.unary()?;
        while let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            let prec = precedence(op);
            if prec < min_prec {
                break;
            }
            self.pos += 1;
            let right = self.expr(prec + 1)?;
            left = Ast::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Ast, String> {
        if self.peek() == Some(&Tok::Op("-")) {
            self.pos += 1;
            return Ok(Ast::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Ast, String> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(Ast::Num(n)),
            Some(Tok::Str(s)) => Ok(Ast::Str(s)),
            Some(Tok::LParen) => {
                let e = self.expr(1)?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing )".into()),
                }
            }
            Some(Tok::Ident(name)) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek() == Some(&Tok::RParen) {
                        self.pos += 1;
                        return Ok(Ast::Call(name.to_ascii_uppercase(), args));
                    }
                    loop {
                        args.push(self.expr(1)?);
                        match self.next() {
                            Some(Tok::Comma) => continue,
                            Some(Tok::RParen) => break,
                            _ => return Err(format!("missing ) after the arguments of {name}")),
                        }
                    }
                    Ok(Ast::Call(name.to_ascii_uppercase(), args))
                } else {
                    Ok(Ast::Id(name))
                }
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// Parses an expression.
pub(crate) fn parse(text: &str) -> Result<Ast, String> {
    let mut p = Parser {
        toks: tokenize(text)?,
        pos: 0,
    };
    let ast = p.expr(1)?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks.get(p.pos)));
    }
    Ok(ast)
}

fn apply_op(op: &str, a: f64, b: f64) -> Option<f64> {
    let truth = |c: bool| if c { 1.0 } else { 0.0 };
    let v = match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => {
            if b == 0.0 {
                return None;
            }
            a / b
        }
        "^" => a.powf(b),
        ">" => truth(a > b),
        ">=" => truth(a >= b),
        "<" => truth(a < b),
        "<=" => truth(a <= b),
        "==" => truth(a == b),
        "!=" => truth(a != b),
        "&&" => truth(a != 0.0 && b != 0.0),
        "||" => truth(a != 0.0 || b != 0.0),
        _ => return None,
    };
    v.is_finite().then_some(v)
}

fn map_ts(ts: &Labeled, f: impl Fn(f64) -> Option<f64>) -> Labeled {
    Labeled {
        label: ts.label.clone(),
        points: ts
            .points
            .iter()
            .filter_map(|(&t, &v)| f(v).map(|v| (t, v)))
            .collect(),
    }
}

fn binary(op: &'static str, l: Val, r: Val) -> Result<Val, String> {
    Ok(match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => Val::Scalar(apply_op(op, a, b).unwrap_or(f64::NAN)),
        (Val::Ts(a), Val::Scalar(b)) => Val::Ts(map_ts(&a, |v| apply_op(op, v, b))),
        (Val::Scalar(a), Val::Ts(b)) => Val::Ts(map_ts(&b, |v| apply_op(op, a, v))),
        (Val::Ts(a), Val::Ts(b)) => {
            let keys: BTreeSet<i64> = a.points.keys().chain(b.points.keys()).copied().collect();
            let points = keys
                .into_iter()
                .filter_map(|t| {
                    let x = a.points.get(&t).copied().unwrap_or(0.0);
                    let y = b.points.get(&t).copied().unwrap_or(0.0);
                    apply_op(op, x, y).map(|v| (t, v))
                })
                .collect();
            Val::Ts(Labeled {
                label: a.label,
                points,
            })
        }
        (Val::Array(items), other) => Val::Array(
            items
                .into_iter()
                .map(|ts| match binary(op, Val::Ts(ts), other.clone())? {
                    Val::Ts(t) => Ok(t),
                    _ => Err("array arithmetic".to_owned()),
                })
                .collect::<Result<_, String>>()?,
        ),
        (other, Val::Array(items)) => Val::Array(
            items
                .into_iter()
                .map(|ts| match binary(op, other.clone(), Val::Ts(ts))? {
                    Val::Ts(t) => Ok(t),
                    _ => Err("array arithmetic".to_owned()),
                })
                .collect::<Result<_, String>>()?,
        ),
        (Val::Str(_), _) | (_, Val::Str(_)) => return Err("a string in arithmetic".into()),
    })
}

fn series_list(v: Val) -> Vec<Labeled> {
    match v {
        Val::Ts(t) => vec![t],
        Val::Array(a) => a,
        Val::Scalar(_) | Val::Str(_) => Vec::new(),
    }
}

fn reduce_array(name: &str, items: &[Labeled]) -> Labeled {
    let keys: BTreeSet<i64> = items
        .iter()
        .flat_map(|t| t.points.keys().copied())
        .collect();
    let points = keys
        .into_iter()
        .filter_map(|t| {
            let vs: Vec<f64> = items
                .iter()
                .filter_map(|s| s.points.get(&t).copied())
                .collect();
            reduce(name, &vs).map(|v| (t, v))
        })
        .collect();
    Labeled {
        label: name.to_owned(),
        points,
    }
}

fn reduce(name: &str, vs: &[f64]) -> Option<f64> {
    if vs.is_empty() {
        return None;
    }
    Some(match name {
        "SUM" => vs.iter().sum(),
        "AVG" => vs.iter().sum::<f64>() / vs.len() as f64,
        "MIN" => vs.iter().copied().fold(f64::INFINITY, f64::min),
        _ => vs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

fn fill(ts: &Labeled, how: &Val, grid: &[i64]) -> Result<Labeled, String> {
    let mut points = ts.points.clone();
    match how {
        Val::Scalar(v) => {
            for t in grid {
                points.entry(*t).or_insert(*v);
            }
        }
        Val::Str(k) if k.eq_ignore_ascii_case("REPEAT") => {
            let mut last = ts.points.values().next().copied();
            for t in grid {
                match ts.points.get(t) {
                    Some(v) => last = Some(*v),
                    None => {
                        if let Some(v) = last {
                            points.insert(*t, v);
                        }
                    }
                }
            }
        }
        _ => return Err("FILL's second argument must be a number or REPEAT".into()),
    }
    Ok(Labeled {
        label: ts.label.clone(),
        points,
    })
}

fn arg_str(args: &[Val], i: usize) -> Option<&str> {
    match args.get(i) {
        Some(Val::Str(s)) => Some(s),
        _ => None,
    }
}

/// Evaluates `ast` in `env`.
pub(crate) fn eval(ast: &Ast, env: &mut dyn Env) -> Result<Val, String> {
    match ast {
        Ast::Num(n) => Ok(Val::Scalar(*n)),
        Ast::Str(s) => Ok(Val::Str(s.clone())),
        Ast::Id(id) => {
            if id.eq_ignore_ascii_case("REPEAT") || id.eq_ignore_ascii_case("LINEAR") {
                return Ok(Val::Str(id.to_ascii_uppercase()));
            }
            env.id(id)
        }
        Ast::Neg(e) => binary("*", Val::Scalar(-1.0), eval(e, env)?),
        Ast::Bin(op, l, r) => {
            let l = eval(l, env)?;
            let r = eval(r, env)?;
            binary(op, l, r)
        }
        Ast::Call(name, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, env))
                .collect::<Result<Vec<_>, _>>()?;
            call(name, vals, env)
        }
    }
}

fn call(name: &str, mut args: Vec<Val>, env: &mut dyn Env) -> Result<Val, String> {
    match name {
        "METRICS" => Ok(Val::Array(env.metrics(arg_str(&args, 0))?)),
        "SEARCH" => {
            let query = arg_str(&args, 0).ok_or("SEARCH needs a query string")?;
            let stat = arg_str(&args, 1).ok_or("SEARCH needs a statistic")?;
            let period = match args.get(2) {
                Some(Val::Scalar(p)) => *p as i64,
                _ => return Err("SEARCH needs a period".into()),
            };
            Ok(Val::Array(env.search(query, stat, period)?))
        }
        "FILL" => {
            if args.len() != 2 {
                return Err("FILL takes 2 arguments".into());
            }
            let how = args.pop().unwrap_or(Val::Scalar(0.0));
            let grid = env.grid();
            match args.pop() {
                Some(Val::Ts(ts)) => Ok(Val::Ts(fill(&ts, &how, &grid)?)),
                Some(Val::Array(a)) => Ok(Val::Array(
                    a.iter()
                        .map(|ts| fill(ts, &how, &grid))
                        .collect::<Result<_, _>>()?,
                )),
                _ => Err("FILL's first argument must be a time series".into()),
            }
        }
        "IF" => {
            if !(2..=3).contains(&args.len()) {
                return Err("IF takes 2 or 3 arguments".into());
            }
            let mut it = args.into_iter();
            let cond = it.next().unwrap_or(Val::Scalar(0.0));
            let yes = it.next().unwrap_or(Val::Scalar(0.0));
            let no = it.next();
            let cond = match cond {
                Val::Ts(t) => t,
                Val::Scalar(c) => Labeled {
                    label: String::new(),
                    points: env.grid().into_iter().map(|t| (t, c)).collect(),
                },
                _ => return Err("IF's condition must be a time series".into()),
            };
            let pick = |v: &Val, t: i64| -> Option<f64> {
                match v {
                    Val::Scalar(s) => Some(*s),
                    Val::Ts(ts) => ts.points.get(&t).copied(),
                    _ => None,
                }
            };
            let label = match (&yes, &no) {
                (Val::Ts(t), _) | (_, Some(Val::Ts(t))) => t.label.clone(),
                _ => cond.label.clone(),
            };
            let points = cond
                .points
                .iter()
                .filter_map(|(&t, &c)| {
                    let v = if c != 0.0 {
                        pick(&yes, t)
                    } else {
                        no.as_ref().and_then(|n| pick(n, t))
                    };
                    v.map(|v| (t, v))
                })
                .collect();
            Ok(Val::Ts(Labeled { label, points }))
        }
        "SUM" | "AVG" | "MIN" | "MAX" => match args.pop() {
            Some(Val::Array(items)) => Ok(Val::Ts(reduce_array(name, &items))),
            Some(Val::Ts(ts)) => {
                let vs: Vec<f64> = ts.points.values().copied().collect();
                Ok(Val::Scalar(reduce(name, &vs).unwrap_or(f64::NAN)))
            }
            Some(Val::Scalar(s)) => Ok(Val::Scalar(s)),
            _ => Err(format!("{name} needs an argument")),
        },
        "ABS" | "CEIL" | "FLOOR" => {
            let f = |v: f64| -> Option<f64> {
                Some(match name {
                    "ABS" => v.abs(),
                    "CEIL" => v.ceil(),
                    _ => v.floor(),
                })
            };
            match args.pop() {
                Some(Val::Scalar(s)) => Ok(Val::Scalar(f(s).unwrap_or(f64::NAN))),
                Some(Val::Ts(ts)) => Ok(Val::Ts(map_ts(&ts, f))),
                Some(Val::Array(a)) => Ok(Val::Array(a.iter().map(|t| map_ts(t, f)).collect())),
                _ => Err(format!("{name} needs an argument")),
            }
        }
        other => Err(format!("{other}() is not evaluated by the preview")),
    }
}

/// Every series of a value (a scalar becomes a flat line over `grid`).
pub(crate) fn into_series(v: Val, label: &str, grid: &[i64]) -> Vec<Labeled> {
    match v {
        Val::Scalar(s) if s.is_finite() => vec![Labeled {
            label: label.to_owned(),
            points: grid.iter().map(|t| (*t, s)).collect(),
        }],
        Val::Ts(mut t) => {
            if !label.is_empty() {
                t.label = label.to_owned();
            }
            vec![t]
        }
        other => series_list(other),
    }
}

/// A parsed `SEARCH` query: `{Namespace,Dim1,Dim2} MetricName="X" Dim1="v" term`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SearchQuery {
    /// The namespace of the schema (`{…}`), if given.
    pub(crate) namespace: Option<String>,
    /// The exact dimension names of the schema, in the schema's order, if given.
    pub(crate) schema_dimensions: Option<Vec<String>>,
    /// `key="value"` (exact) and `key=value` (partial) terms.
    pub(crate) terms: Vec<(String, String, bool)>,
    /// Free-text terms, matched against the name and every dimension value.
    pub(crate) words: Vec<String>,
}

impl SearchQuery {
    /// Parses the query string of a `SEARCH`.
    pub(crate) fn parse(text: &str) -> Result<SearchQuery, String> {
        let mut q = SearchQuery::default();
        let mut rest = text.trim();
        if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}').ok_or("unterminated { in SEARCH")?;
            let mut parts = after[..end]
                .split(',')
                .map(|p| p.trim().trim_matches('"').to_owned());
            q.namespace = parts.next().filter(|n| !n.is_empty());
            q.schema_dimensions = Some(parts.filter(|p| !p.is_empty()).collect());
            rest = after[end + 1..].trim();
        }
        let chars: Vec<char> = rest.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
                if chars[i] == '"' {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        i += 1;
                    }
                }
                i += 1;
            }
            let key: String = chars[start..i.min(chars.len())].iter().collect();
            if i < chars.len() && chars[i] == '=' {
                i += 1;
                let (value, exact) = if chars.get(i) == Some(&'"') {
                    let vstart = i + 1;
                    let mut j = vstart;
                    while j < chars.len() && chars[j] != '"' {
                        j += 1;
                    }
                    let v: String = chars[vstart..j.min(chars.len())].iter().collect();
                    i = j + 1;
                    (v, true)
                } else {
                    let vstart = i;
                    while i < chars.len() && !chars[i].is_whitespace() {
                        i += 1;
                    }
                    (chars[vstart..i].iter().collect(), false)
                };
                q.terms
                    .push((key.trim_matches('"').to_owned(), value, exact));
            } else if !matches!(key.as_str(), "AND" | "and") {
                q.words.push(key.trim_matches('"').to_owned());
            }
        }
        Ok(q)
    }

    /// Whether `m` is a result of this query.
    pub(crate) fn matches(&self, m: &MetricId) -> bool {
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
        for (key, value, exact) in &self.terms {
            let Some(actual) = field(key) else {
                return false;
            };
            let ok = if *exact {
                &actual == value
            } else {
                actual.to_lowercase().contains(&value.to_lowercase())
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
    pub(crate) fn label_for(&self, m: &MetricId) -> String {
        let pinned: BTreeSet<&str> = self
            .terms
            .iter()
            .filter(|(_, _, exact)| *exact)
            .map(|(k, _, _)| k.as_str())
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;

    struct TestEnv {
        series: HashMap<String, Labeled>,
        grid: Vec<i64>,
    }

    impl Env for TestEnv {
        fn id(&mut self, id: &str) -> Result<Val, String> {
            self.series
                .get(id)
                .cloned()
                .map(Val::Ts)
                .ok_or_else(|| format!("no {id}"))
        }
        fn metrics(&mut self, filter: Option<&str>) -> Result<Vec<Labeled>, String> {
            let mut ids: Vec<&String> = self.series.keys().collect();
            ids.sort();
            Ok(ids
                .into_iter()
                .filter(|id| filter.is_none_or(|f| id.contains(f)))
                .map(|id| self.series[id].clone())
                .collect())
        }
        fn search(&mut self, _: &str, _: &str, _: i64) -> Result<Vec<Labeled>, String> {
            Ok(Vec::new())
        }
        fn grid(&self) -> Vec<i64> {
            self.grid.clone()
        }
    }

    fn ts(points: &[(i64, f64)]) -> Labeled {
        Labeled {
            label: String::new(),
            points: points.iter().copied().collect(),
        }
    }

    fn run(expr: &str, env: &mut TestEnv) -> BTreeMap<i64, f64> {
        let ast = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        match eval(&ast, env) {
            Ok(Val::Ts(t)) => t.points,
            other => panic!("{expr}: {other:?}"),
        }
    }

    fn env() -> TestEnv {
        TestEnv {
            series: HashMap::from([
                ("errors".to_owned(), ts(&[(60, 1.0)])),
                ("invocations".to_owned(), ts(&[(0, 10.0), (60, 50.0)])),
            ]),
            grid: vec![0, 60, 120],
        }
    }

    #[test]
    fn guarded_error_rate_is_zero_in_idle_periods_and_never_divides_by_zero() {
        let mut env = env();
        let out = run(
            "IF(FILL(invocations, 0) > 0, 100 * FILL(errors, 0) / FILL(invocations, 0), 0)",
            &mut env,
        );
        assert_eq!(out, BTreeMap::from([(0, 0.0), (60, 2.0), (120, 0.0)]));
    }

    #[test]
    fn an_unguarded_division_drops_the_zero_points() {
        let mut env = env();
        let out = run("100 * errors / FILL(invocations, 0)", &mut env);
        assert_eq!(out, BTreeMap::from([(0, 0.0), (60, 2.0)]));
    }

    #[test]
    fn metrics_and_sum_combine_every_series() {
        let mut env = env();
        let out = run("SUM(METRICS())", &mut env);
        assert_eq!(out, BTreeMap::from([(0, 10.0), (60, 51.0)]));
        let out = run("SUM(METRICS('err'))", &mut env);
        assert_eq!(out, BTreeMap::from([(60, 1.0)]));
    }

    #[test]
    fn if_without_false_branch_drops_points() {
        let mut env = env();
        let out = run("IF(invocations >= 20, invocations)", &mut env);
        assert_eq!(out, BTreeMap::from([(60, 50.0)]));
    }

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
    fn search_inside_an_expression_keeps_its_escaped_quotes() {
        let ast = parse(
            "SEARCH('{AWS/Events,EventBusName,RuleName} EventBusName=\\\"payment-events\\\" MetricName=\\\"MatchedEvents\\\"', 'Sum', 300)",
        );
        match ast {
            Ok(Ast::Call(name, args)) => {
                assert_eq!(name, "SEARCH");
                match &args[0] {
                    Ast::Str(s) => assert!(s.contains("EventBusName=\"payment-events\"")),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }
}
