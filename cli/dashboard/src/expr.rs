//! Metric math as CloudWatch evaluates it: an evaluator over the expression tree of
//! [`payhook_cloudwatch::math`] (the one parser `payhook check` also reads expressions with),
//! for arithmetic and comparisons between scalars and time series, array literals `[a, b]`,
//! `IF`, `FILL`, `METRICS()`, `SUM`/`AVG`/`MIN`/`MAX`/`ABS`/`CEIL`/`FLOOR`, and `SEARCH` (its
//! query read by [`payhook_cloudwatch::search::SearchQuery`], answered by the caller from the
//! metrics it knows).
//!
//! Semantics from the CloudWatch User Guide ("Use metric math"): missing values in a time series
//! count as 0 in arithmetic, a point whose division would be by zero is dropped, `IF` without a
//! false branch drops the point, and a condition is false when its value is 0.

use std::collections::BTreeSet;

use payhook_cloudwatch::math::{self, BinOp, Expr, ExprKind};

use super::metrics::Points;

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

fn apply_op(op: BinOp, a: f64, b: f64) -> Option<f64> {
    let truth = |c: bool| if c { 1.0 } else { 0.0 };
    let v = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => {
            if b == 0.0 {
                return None;
            }
            a / b
        }
        BinOp::Pow => a.powf(b),
        BinOp::Gt => truth(a > b),
        BinOp::Ge => truth(a >= b),
        BinOp::Lt => truth(a < b),
        BinOp::Le => truth(a <= b),
        BinOp::Eq => truth(a == b),
        BinOp::Ne => truth(a != b),
        BinOp::And => truth(a != 0.0 && b != 0.0),
        BinOp::Or => truth(a != 0.0 || b != 0.0),
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

fn binary(op: BinOp, l: Val, r: Val) -> Result<Val, String> {
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

/// Parses and evaluates the text of an expression in `env`.
pub(crate) fn evaluate(text: &str, env: &mut dyn Env) -> Result<Val, String> {
    if math::is_insights_query(text) {
        return Err("Metrics Insights queries are not evaluated by the preview".into());
    }
    let expr = math::parse(text).map_err(|e| e.to_string())?;
    eval(&expr, env)
}

/// Evaluates `expr` in `env`.
pub(crate) fn eval(expr: &Expr, env: &mut dyn Env) -> Result<Val, String> {
    match &expr.kind {
        ExprKind::Number(n) => Ok(Val::Scalar(*n)),
        ExprKind::String(s) => Ok(Val::Str(s.clone())),
        ExprKind::Name(id) => {
            if id.eq_ignore_ascii_case("REPEAT") || id.eq_ignore_ascii_case("LINEAR") {
                return Ok(Val::Str(id.to_ascii_uppercase()));
            }
            env.id(id)
        }
        ExprKind::Neg(e) => binary(BinOp::Mul, Val::Scalar(-1.0), eval(e, env)?),
        ExprKind::Binary { op, left, right } => {
            let l = eval(left, env)?;
            let r = eval(right, env)?;
            binary(*op, l, r)
        }
        ExprKind::Array(items) => {
            let mut series = Vec::new();
            for item in items {
                match eval(item, env)? {
                    Val::Ts(t) => series.push(t),
                    Val::Array(a) => series.extend(a),
                    Val::Scalar(_) | Val::Str(_) => {
                        return Err("an array […] holds time series, not numbers or strings".into());
                    }
                }
            }
            Ok(Val::Array(series))
        }
        ExprKind::Call { name, args } => {
            let vals = args
                .iter()
                .map(|a| eval(a, env))
                .collect::<Result<Vec<_>, _>>()?;
            call(&name.to_ascii_uppercase(), vals, env)
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
        let ast = math::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
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
    fn array_literals_combine_their_series() {
        let mut env = env();
        let out = run("SUM([errors, invocations])", &mut env);
        assert_eq!(out, BTreeMap::from([(0, 10.0), (60, 51.0)]));
        let out = run("MAX([FILL(errors, 0), invocations * 2])", &mut env);
        assert_eq!(out, BTreeMap::from([(0, 20.0), (60, 100.0), (120, 0.0)]));
        let nested = math::parse("[errors, 1]").map_err(|e| e.to_string());
        let nested = nested.and_then(|ast| eval(&ast, &mut env).map(|_| ()));
        assert!(nested.is_err(), "a number in an array: {nested:?}");
    }

    /// The preview's view of an expression: any id is a series, any search finds one.
    struct AnyMetric;

    impl Env for AnyMetric {
        fn id(&mut self, id: &str) -> Result<Val, String> {
            Ok(Val::Ts(Labeled {
                label: id.to_owned(),
                points: [(0, 1.0), (60, 2.0)].into_iter().collect(),
            }))
        }
        fn metrics(&mut self, filter: Option<&str>) -> Result<Vec<Labeled>, String> {
            Ok(vec![Labeled {
                label: filter.unwrap_or_default().to_owned(),
                points: [(0, 1.0)].into_iter().collect(),
            }])
        }
        fn search(&mut self, _: &str, _: &str, _: i64) -> Result<Vec<Labeled>, String> {
            self.metrics(None)
        }
        fn grid(&self) -> Vec<i64> {
            vec![0, 60, 120]
        }
    }

    /// Every `expression` string in a JSON tree.
    fn expressions(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match v {
                        serde_json::Value::String(text) if key == "expression" => {
                            out.push(text.clone())
                        }
                        other => expressions(other, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_expression_the_check_accepts_the_preview_evaluates() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut texts = Vec::new();
        for folder in ["dashboards", "alarms"] {
            let entries = std::fs::read_dir(root.join(folder)).unwrap_or_else(|e| panic!("{e}"));
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                if path.extension().is_some_and(|x| x == "json") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let value: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                    expressions(&value, &mut texts);
                }
            }
        }
        // The repository's own, and the array case the two parsers used to disagree on.
        texts.push("SUM([errors, invocations]) / 2".to_owned());
        texts.push("MAX([FILL(errors, 0), invocations])".to_owned());
        let mut evaluated = 0;
        for text in &texts {
            let analysis = payhook_cloudwatch::check::expression::analyse(text);
            if !analysis.problems.is_empty() || analysis.insights {
                continue;
            }
            if let Err(e) = evaluate(text, &mut AnyMetric) {
                panic!("`payhook check` accepts `{text}`, the preview cannot evaluate it: {e}");
            }
            evaluated += 1;
        }
        assert!(evaluated >= 20, "only {evaluated} expressions found");
    }
}
