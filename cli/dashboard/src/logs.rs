//! Logs Insights queries run over the run's captured log lines: `SOURCE`, `fields`, `filter`,
//! `sort`, `limit`, `display` and `stats … by …` (count, sum, avg, min, max), with the
//! comparison, `and`/`or`/`not`, `like`, `in` and `ispresent()` of the query language. Nested
//! JSON is reachable with dots (`record.status`), as Logs Insights flattens it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One captured log event.
#[derive(Debug, Clone)]
pub(crate) struct LogRecord {
    /// The log group it belongs to (`/aws/lambda/<function>`, the API's access log group).
    pub(crate) group: String,
    /// Its time, Unix milliseconds.
    pub(crate) ts_ms: i64,
    /// The JSON event (Powertools keys, or an access-log record).
    pub(crate) fields: Map<String, Value>,
}

impl LogRecord {
    /// A field by Logs Insights name: `@timestamp`, `@message`, `@log`, or a dotted path.
    fn get(&self, name: &str) -> Value {
        match name {
            "@timestamp" => Value::from(self.ts_ms),
            "@message" => Value::String(Value::Object(self.fields.clone()).to_string()),
            "@log" | "@logStream" => Value::String(self.group.clone()),
            _ => {
                if let Some(v) = self.fields.get(name) {
                    return v.clone();
                }
                let mut parts = name.split('.');
                let first = parts.next().unwrap_or_default();
                let mut cur = match self.fields.get(first) {
                    Some(v) => v,
                    None => return Value::Null,
                };
                for p in parts {
                    cur = match cur.get(p) {
                        Some(v) => v,
                        None => return Value::Null,
                    };
                }
                cur.clone()
            }
        }
    }
}

/// A query's result: column names and rows of display strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    /// Column names.
    pub(crate) columns: Vec<String>,
    /// Rows, one cell per column.
    pub(crate) rows: Vec<Vec<String>>,
    /// Parts of the query the preview does not run.
    pub(crate) notes: Vec<String>,
}

/// A `stats` aggregation: function, argument (`None` for `*`), output column.
type Aggregation = (String, Option<String>, String);

#[derive(Debug, Clone)]
enum Command {
    Fields(Vec<String>),
    Filter(Cond),
    Sort(Vec<(String, bool)>),
    Limit(usize),
    Stats(Vec<Aggregation>, Vec<String>),
}

#[derive(Debug, Clone)]
enum Operand {
    Field(String),
    Lit(Value),
    Regex(String),
    List(Vec<Value>),
}

#[derive(Debug, Clone)]
enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Cmp(Operand, String, Operand),
    Present(String),
    Truthy(Operand),
}

/// Splits on `|` outside quotes and regex literals.
fn split_pipes(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in query.chars() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    cur.push(c);
                }
                // A regex literal follows `like` (`/a|b/` must not split the query).
                '/' if cur.trim_end().to_ascii_lowercase().ends_with("like") => {
                    quote = Some('/');
                    cur.push(c);
                }
                '|' => out.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            },
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['\'', '"', '`'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_owned();
        }
    }
    s.to_owned()
}

fn split_commas(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Tokens of a filter expression.
fn filter_tokens(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '/' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(format!("unterminated {c}"));
            }
            out.push(chars[i..=j].iter().collect());
            i = j + 1;
        } else if "()[],".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else if "=!<>".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["!=", "<=", ">=", "=="].contains(&two.as_str()) {
                out.push(two);
                i += 2;
            } else {
                out.push(c.to_string());
                i += 1;
            }
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"()[],=!<>\"'".contains(chars[i])
            {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

struct CondParser {
    toks: Vec<String>,
    pos: usize,
}

impl CondParser {
    fn peek_is(&self, word: &str) -> bool {
        self.toks
            .get(self.pos)
            .is_some_and(|t| t.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut left = self.and()?;
        while self.peek_is("or") {
            self.pos += 1;
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut left = self.not()?;
        while self.peek_is("and") {
            self.pos += 1;
            left = Cond::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.peek_is("not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Cond, String> {
        if self.peek_is("(") {
            self.pos += 1;
            let c = self.or()?;
            if self.next().as_deref() != Some(")") {
                return Err("missing )".into());
            }
            return Ok(c);
        }
        if self.peek_is("ispresent") {
            self.pos += 1;
            if self.next().as_deref() != Some("(") {
                return Err("ispresent needs (".into());
            }
            let field = self.next().ok_or("ispresent needs a field")?;
            if self.next().as_deref() != Some(")") {
                return Err("missing )".into());
            }
            return Ok(Cond::Present(field));
        }
        let left = self.operand()?;
        let op = match self.toks.get(self.pos) {
            Some(t) if ["=", "==", "!=", "<", "<=", ">", ">="].contains(&t.as_str()) => t.clone(),
            Some(t) if t.eq_ignore_ascii_case("like") || t.eq_ignore_ascii_case("in") => {
                t.to_ascii_lowercase()
            }
            Some(t) if t.eq_ignore_ascii_case("not") => {
                self.pos += 1;
                if !self.peek_is("like") && !self.peek_is("in") {
                    return Err("expected like or in after not".into());
                }
                let op = self.next().unwrap_or_default().to_ascii_lowercase();
                let right = self.operand()?;
                return Ok(Cond::Not(Box::new(Cond::Cmp(left, op, right))));
            }
            _ => return Ok(Cond::Truthy(left)),
        };
        self.pos += 1;
        let right = self.operand()?;
        Ok(Cond::Cmp(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let t = self.next().ok_or("unexpected end of filter")?;
        if t == "[" {
            let mut items = Vec::new();
            loop {
                match self.next().as_deref() {
                    Some("]") => break,
                    Some(",") => {}
                    Some(v) => items.push(literal(v)),
                    None => return Err("missing ]".into()),
                }
            }
            return Ok(Operand::List(items));
        }
        if t.starts_with('/') && t.len() >= 2 {
            return Ok(Operand::Regex(t[1..t.len() - 1].to_owned()));
        }
        if t.starts_with('"') || t.starts_with('\'') {
            return Ok(Operand::Lit(Value::String(unquote(&t))));
        }
        if let Ok(n) = t.parse::<f64>() {
            return Ok(Operand::Lit(Value::from(n)));
        }
        match t.as_str() {
            "true" => Ok(Operand::Lit(Value::Bool(true))),
            "false" => Ok(Operand::Lit(Value::Bool(false))),
            _ => Ok(Operand::Field(t.trim_matches('`').to_owned())),
        }
    }
}

fn literal(t: &str) -> Value {
    if let Ok(n) = t.parse::<f64>() {
        Value::from(n)
    } else {
        Value::String(unquote(t))
    }
}

fn parse_commands(query: &str) -> (Vec<String>, Vec<Command>, Vec<String>) {
    let mut sources = Vec::new();
    let mut commands = Vec::new();
    let mut notes = Vec::new();
    for part in split_pipes(query) {
        let (word, rest) = match part.split_once(char::is_whitespace) {
            Some((w, r)) => (w.to_ascii_lowercase(), r.trim().to_owned()),
            None => (part.to_ascii_lowercase(), String::new()),
        };
        match word.as_str() {
            "source" => sources.push(unquote(&rest)),
            "fields" | "display" => commands.push(Command::Fields(split_commas(&rest))),
            "filter" => {
                let parsed = filter_tokens(&rest).and_then(|toks| {
                    let mut p = CondParser { toks, pos: 0 };
                    let c = p.or()?;
                    if p.pos != p.toks.len() {
                        return Err(format!("unexpected {:?}", p.toks.get(p.pos)));
                    }
                    Ok(c)
                });
                match parsed {
                    Ok(c) => commands.push(Command::Filter(c)),
                    Err(e) => notes.push(format!("filter {rest:?} not run: {e}")),
                }
            }
            "sort" => {
                let keys = split_commas(&rest)
                    .into_iter()
                    .map(|k| {
                        let mut it = k.split_whitespace();
                        let field = it.next().unwrap_or_default().to_owned();
                        let desc = it.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
                        (field, desc)
                    })
                    .collect();
                commands.push(Command::Sort(keys));
            }
            "limit" => match rest.trim().parse() {
                Ok(n) => commands.push(Command::Limit(n)),
                Err(_) => notes.push(format!("limit {rest:?} not understood")),
            },
            "stats" => match parse_stats(&rest) {
                Some((aggs, by)) => commands.push(Command::Stats(aggs, by)),
                None => notes.push(format!("stats {rest:?} not run by the preview")),
            },
            other => notes.push(format!("`{other}` is not run by the preview")),
        }
    }
    (sources, commands, notes)
}

/// `count(*) as n, avg(x) by a, b` → aggregations `(function, argument, output name)` and keys.
fn parse_stats(rest: &str) -> Option<(Vec<Aggregation>, Vec<String>)> {
    let lower = rest.to_ascii_lowercase();
    let (aggs_text, by_text) = match lower.find(" by ") {
        Some(i) => (&rest[..i], Some(&rest[i + 4..])),
        None => (rest, None),
    };
    let mut aggs = Vec::new();
    for a in split_commas(aggs_text) {
        let (expr, name) = match a.to_ascii_lowercase().find(" as ") {
            Some(i) => (a[..i].trim().to_owned(), Some(a[i + 4..].trim().to_owned())),
            None => (a.trim().to_owned(), None),
        };
        let open = expr.find('(')?;
        let func = expr[..open].trim().to_ascii_lowercase();
        if !["count", "sum", "avg", "min", "max"].contains(&func.as_str()) {
            return None;
        }
        let arg = expr[open + 1..].trim_end_matches(')').trim().to_owned();
        let arg = (arg != "*" && !arg.is_empty()).then_some(arg);
        let name = name.unwrap_or_else(|| expr.clone());
        aggs.push((func, arg, name));
    }
    let by = by_text.map(split_commas).unwrap_or_default();
    if by.iter().any(|b| b.contains('(')) {
        return None;
    }
    Some((aggs, by))
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    if let (Some(x), Some(y)) = (as_f64(a), as_f64(b))
        && (a.is_number() || b.is_number())
    {
        return x.partial_cmp(&y);
    }
    Some(display(a).cmp(&display(b)))
}

fn eval_operand(op: &Operand, r: &LogRecord) -> Value {
    match op {
        Operand::Field(f) => r.get(f),
        Operand::Lit(v) => v.clone(),
        Operand::Regex(s) => Value::String(s.clone()),
        Operand::List(items) => Value::Array(items.clone()),
    }
}

fn holds(c: &Cond, r: &LogRecord) -> bool {
    match c {
        Cond::And(a, b) => holds(a, r) && holds(b, r),
        Cond::Or(a, b) => holds(a, r) || holds(b, r),
        Cond::Not(a) => !holds(a, r),
        Cond::Present(f) => !r.get(f).is_null(),
        Cond::Truthy(o) => match eval_operand(o, r) {
            Value::Null => false,
            Value::Bool(b) => b,
            v => as_f64(&v).is_none_or(|n| n != 0.0),
        },
        Cond::Cmp(l, op, rt) => {
            let a = eval_operand(l, r);
            let b = eval_operand(rt, r);
            match op.as_str() {
                "like" => {
                    let hay = display(&a);
                    let needle = display(&b);
                    !a.is_null() && like(&hay, &needle, matches!(rt, Operand::Regex(_)))
                }
                "in" => match &b {
                    Value::Array(items) => items
                        .iter()
                        .any(|i| compare(&a, i) == Some(Ordering::Equal)),
                    _ => false,
                },
                _ => match compare(&a, &b) {
                    None => false,
                    Some(ord) => match op.as_str() {
                        "=" | "==" => ord == Ordering::Equal,
                        "!=" => ord != Ordering::Equal,
                        "<" => ord == Ordering::Less,
                        "<=" => ord != Ordering::Greater,
                        ">" => ord == Ordering::Greater,
                        ">=" => ord != Ordering::Less,
                        _ => false,
                    },
                },
            }
        }
    }
}

/// `like`: a substring, or a regex literal reduced to its plain-text alternatives
/// (`/a|b/`); regex metacharacters beyond `|`, `^` and `$` are matched literally.
fn like(hay: &str, needle: &str, regex: bool) -> bool {
    if !regex {
        return hay.contains(needle);
    }
    let (needle, ci) = match needle.strip_prefix("(?i)") {
        Some(n) => (n, true),
        None => (needle, false),
    };
    needle.split('|').any(|alt| {
        let anchored_start = alt.starts_with('^');
        let anchored_end = alt.ends_with('$') && !alt.ends_with("\\$");
        let core = alt.trim_start_matches('^').trim_end_matches('$');
        let (h, n) = if ci {
            (hay.to_lowercase(), core.to_lowercase())
        } else {
            (hay.to_owned(), core.to_owned())
        };
        match (anchored_start, anchored_end) {
            (true, true) => h == n,
            (true, false) => h.starts_with(&n),
            (false, true) => h.ends_with(&n),
            (false, false) => h.contains(&n),
        }
    })
}

/// A value as a table cell.
pub(crate) fn display(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn cell(field: &str, r: &LogRecord) -> String {
    if field == "@timestamp" {
        return iso_ms(r.ts_ms);
    }
    display(&r.get(field))
}

/// `2026-01-01T00:00:00.000Z` for Unix milliseconds.
pub(crate) fn iso_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// The log groups a query reads (`SOURCE '…'`), empty when it names none.
pub(crate) fn sources(query: &str) -> Vec<String> {
    parse_commands(query).0
}

/// Runs `query` over `records`.
#[expect(
    clippy::too_many_lines,
    reason = "a Logs Insights pipeline: filter, then each command in order over one shared table state"
)]
pub(crate) fn run_query(query: &str, records: &[LogRecord]) -> Table {
    let (sources, commands, notes) = parse_commands(query);
    let wanted: BTreeSet<&str> = sources.iter().map(String::as_str).collect();
    let mut rows: Vec<&LogRecord> = records
        .iter()
        .filter(|r| wanted.is_empty() || wanted.contains(r.group.as_str()))
        .collect();
    if !notes.is_empty() {
        // A query the preview cannot run: the sources' error lines, newest first.
        rows.retain(|r| {
            matches!(
                r.get("level").as_str(),
                Some("ERROR" | "CRITICAL" | "FATAL")
            )
        });
        rows.sort_by_key(|r| std::cmp::Reverse(r.ts_ms));
        let columns: Vec<String> = ["@timestamp", "@log", "level", "message", "error"]
            .map(str::to_owned)
            .to_vec();
        let out_rows = rows
            .iter()
            .take(100)
            .map(|r| columns.iter().map(|c| cell(c, r)).collect())
            .collect();
        let mut notes = notes;
        notes.push("showing the sources' ERROR lines instead".into());
        return Table {
            columns,
            rows: out_rows,
            notes,
        };
    }
    let mut columns: Vec<String> = Vec::new();
    let mut table_rows: Option<Vec<Vec<String>>> = None;
    let mut limit: Option<usize> = None;
    for command in &commands {
        match command {
            Command::Fields(f) => {
                if table_rows.is_none() {
                    columns = f.clone();
                }
            }
            Command::Filter(c) => rows.retain(|r| holds(c, r)),
            Command::Sort(keys) => {
                if let Some(tr) = table_rows.as_mut() {
                    let idx: Vec<(usize, bool)> = keys
                        .iter()
                        .filter_map(|(k, d)| columns.iter().position(|c| c == k).map(|i| (i, *d)))
                        .collect();
                    tr.sort_by(|a, b| {
                        for (i, desc) in &idx {
                            let o = compare(&literal(&a[*i]), &literal(&b[*i]))
                                .unwrap_or(Ordering::Equal);
                            let o = if *desc { o.reverse() } else { o };
                            if o != Ordering::Equal {
                                return o;
                            }
                        }
                        Ordering::Equal
                    });
                } else {
                    rows.sort_by(|a, b| {
                        for (k, desc) in keys {
                            let o = compare(&a.get(k), &b.get(k)).unwrap_or(Ordering::Equal);
                            let o = if *desc { o.reverse() } else { o };
                            if o != Ordering::Equal {
                                return o;
                            }
                        }
                        Ordering::Equal
                    });
                }
            }
            Command::Limit(n) => limit = Some(*n),
            Command::Stats(aggs, by) => {
                let mut groups: BTreeMap<Vec<String>, Vec<&LogRecord>> = BTreeMap::new();
                for r in &rows {
                    let key: Vec<String> = by.iter().map(|b| display(&r.get(b))).collect();
                    groups.entry(key).or_default().push(r);
                }
                columns = by.clone();
                columns.extend(aggs.iter().map(|(_, _, name)| name.clone()));
                let out = groups
                    .into_iter()
                    .map(|(key, members)| {
                        let mut row = key;
                        for (func, arg, _) in aggs {
                            let values: Vec<f64> = match arg {
                                Some(a) => {
                                    members.iter().filter_map(|r| as_f64(&r.get(a))).collect()
                                }
                                None => Vec::new(),
                            };
                            let v = match func.as_str() {
                                "count" => match arg {
                                    Some(a) => {
                                        members.iter().filter(|r| !r.get(a).is_null()).count()
                                            as f64
                                    }
                                    None => members.len() as f64,
                                },
                                "sum" => values.iter().sum(),
                                "avg" if !values.is_empty() => {
                                    values.iter().sum::<f64>() / values.len() as f64
                                }
                                "min" => values.iter().copied().fold(f64::NAN, f64::min),
                                "max" => values.iter().copied().fold(f64::NAN, f64::max),
                                _ => f64::NAN,
                            };
                            row.push(if v.is_finite() {
                                super::html::number(v)
                            } else {
                                String::new()
                            });
                        }
                        row
                    })
                    .collect();
                table_rows = Some(out);
            }
        }
    }
    let mut out_rows = match table_rows {
        Some(tr) => tr,
        None => {
            if columns.is_empty() {
                columns = vec!["@timestamp".into(), "@message".into()];
            }
            rows.iter()
                .map(|r| columns.iter().map(|c| cell(c, r)).collect())
                .collect()
        }
    };
    if let Some(n) = limit {
        out_rows.truncate(n);
    }
    Table {
        columns,
        rows: out_rows,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(group: &str, ts: i64, json: Value) -> LogRecord {
        LogRecord {
            group: group.into(),
            ts_ms: ts,
            fields: json.as_object().cloned().unwrap_or_default(),
        }
    }

    fn records() -> Vec<LogRecord> {
        vec![
            record(
                "g1",
                1,
                serde_json::json!({"level": "INFO", "message": "ok", "service": "a"}),
            ),
            record(
                "g1",
                2,
                serde_json::json!({"level": "ERROR", "message": "boom", "service": "a"}),
            ),
            record(
                "g2",
                3,
                serde_json::json!({"type": "platform.report", "record": {"status": "timeout"}, "service": "b"}),
            ),
            record(
                "g3",
                4,
                serde_json::json!({"level": "ERROR", "message": "elsewhere"}),
            ),
        ]
    }

    #[test]
    fn filter_sort_limit_as_the_dashboards_error_query() {
        let t = run_query(
            "SOURCE 'g1' | SOURCE 'g2' | fields @timestamp, service, message, record.status\n| filter level = \"ERROR\" or (type = \"platform.report\" and record.status != \"success\")\n| sort @timestamp desc\n| limit 100",
            &records(),
        );
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        assert_eq!(
            t.columns,
            ["@timestamp", "service", "message", "record.status"]
        );
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][1], "b");
        assert_eq!(t.rows[0][3], "timeout");
        assert_eq!(t.rows[1][2], "boom");
    }

    #[test]
    fn a_missing_field_never_compares_equal_or_unequal() {
        let t = run_query("filter record.status != \"success\"", &records());
        assert_eq!(t.rows.len(), 1);
    }

    #[test]
    fn an_unsupported_query_shows_the_error_lines() {
        let t = run_query(
            "SOURCE 'g1' | parse message 'b*m' as x | display x",
            &records(),
        );
        assert_eq!(t.rows.len(), 1);
        assert!(t.rows[0].contains(&"boom".to_owned()));
        assert!(t.notes.iter().any(|n| n.contains("parse")));
    }

    #[test]
    fn stats_count_by_groups_rows() {
        let t = run_query("stats count(*) as n by level | sort n desc", &records());
        assert_eq!(t.columns, ["level", "n"]);
        assert_eq!(t.rows[0], vec!["ERROR".to_owned(), "2".to_owned()]);
    }

    #[test]
    fn numeric_comparisons_and_like() {
        let rs = vec![
            record(
                "api",
                1,
                serde_json::json!({"status": 202, "path": "/webhooks/stripe"}),
            ),
            record(
                "api",
                2,
                serde_json::json!({"status": 401, "path": "/webhooks/paypal"}),
            ),
        ];
        assert_eq!(run_query("filter status >= 400", &rs).rows.len(), 1);
        assert_eq!(
            run_query("filter path like /stripe|square/", &rs)
                .rows
                .len(),
            1
        );
        assert_eq!(run_query("filter status in [202, 500]", &rs).rows.len(), 1);
    }
}
