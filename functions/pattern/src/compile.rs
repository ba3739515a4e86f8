//! Validating and compiling an event pattern, following event-ruler's `JsonRuleCompiler`
//! (rule by rule, with its error messages) plus the checks the EventBridge service adds.
//!
//! The pattern is read in document order, as event-ruler's streaming parser does: each leaf
//! list is written under its flattened name (`detail.amount`) into every sub-rule built so far,
//! replacing an earlier list of that name (so a repeated key's last value wins), and each
//! `$or` forks the sub-rules once per branch. When that fails and the pattern has a `$or` key,
//! event-ruler retries with `$or` as an ordinary field name (its legacy compiler); so do we.

use std::borrow::Cow;

use super::ip;
use super::json::{Json, Number};
use super::matcher::{Constraint, Matcher, NumericRange, folded};
use super::wildcard::{self, Wildcard};
use super::{MAX_FIELDS_PER_SUB_RULE, MAX_OR_COMBINATIONS, MAX_WILDCARD_COMPLEXITY};

/// The `$or` keyword.
const OR: &str = "$or";

/// Field names that may not appear inside a `$or` branch (event-ruler's
/// `RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP`).
const RESERVED_IN_OR: &[&str] = &[
    "exactly",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "regex",
    "not-wildcard",
    "not-equals-ignore-case",
    "date-after",
    "date-on-or-after",
    "date-before",
    "date-on-or-before",
    "in-date-range",
    "ip-address-in-range",
    "ip-address-not-in-range",
];

/// Why a pattern does not compile.
#[derive(Debug)]
pub(crate) enum CompileError {
    /// event-ruler itself rejects it.
    Syntax(String),
    /// event-ruler accepts it but the EventBridge service does not (limits).
    Limit(String),
}

/// A number a pattern compares with (numeric operands, anything-but numbers), kept for the
/// rules-as-code portability lint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumberOperand {
    pub(crate) text: String,
    pub(crate) value: f64,
}

/// The compiled pattern: sub-rules (ORed) of constraints (ANDed), sorted by name.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) sub_rules: Vec<Box<[Constraint]>>,
    pub(crate) numbers: Vec<NumberOperand>,
}

/// The values of one leaf list.
#[derive(Debug, Clone)]
struct Values {
    matchers: Vec<Matcher>,
    absent: bool,
}

/// One sub-rule under construction: flattened name → index into `Builder::values`.
type SubRule = Vec<(String, usize)>;

struct Builder {
    or_enabled: bool,
    values: Vec<Values>,
    numbers: Vec<NumberOperand>,
    /// Set when the `$or` expansion passes the service limit; compilation stops there.
    too_many: bool,
}

pub(crate) fn compile(root: &Json<'_>) -> Result<Compiled, CompileError> {
    let Json::Object(fields) = root else {
        return Err(CompileError::Syntax("Filter is not an object".to_owned()));
    };
    match compile_with(fields, true) {
        Err(CompileError::Syntax(message)) if has_or_key(root) => {
            compile_with(fields, false).map_err(|legacy| match legacy {
                // Report the problem as the `$or`-aware reading saw it.
                CompileError::Syntax(_) => CompileError::Syntax(message),
                limit @ CompileError::Limit(_) => limit,
            })
        }
        other => other,
    }
}

fn has_or_key(value: &Json<'_>) -> bool {
    match value {
        Json::Object(fields) => fields.iter().any(|(k, v)| k == OR || has_or_key(v)),
        Json::Array(items) => items.iter().any(has_or_key),
        _ => false,
    }
}

fn compile_with(
    fields: &[(Cow<'_, str>, Json<'_>)],
    or_enabled: bool,
) -> Result<Compiled, CompileError> {
    let mut builder = Builder {
        or_enabled,
        values: Vec::new(),
        numbers: Vec::new(),
        too_many: false,
    };
    let mut rules: Vec<SubRule> = Vec::new();
    let mut path = Vec::new();
    builder
        .object(&mut rules, &mut path, fields, false)
        .map_err(CompileError::Syntax)?;
    if builder.too_many {
        return Err(CompileError::Limit(format!(
            "The $or expressions in this pattern combine into more than {MAX_OR_COMBINATIONS} \
             alternatives; EventBridge allows at most {MAX_OR_COMBINATIONS}"
        )));
    }

    let mut sub_rules = Vec::with_capacity(rules.len());
    for rule in rules {
        if rule.len() > MAX_FIELDS_PER_SUB_RULE {
            return Err(CompileError::Syntax(format!(
                "Size of rule exceeds max value of {MAX_FIELDS_PER_SUB_RULE}"
            )));
        }
        let mut constraints: Vec<Constraint> = rule
            .into_iter()
            .map(|(name, index)| {
                let values = &builder.values[index];
                let dots = name
                    .bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'.')
                    .map(|(i, _)| i)
                    .collect();
                Constraint {
                    path: name.into_boxed_str(),
                    dots,
                    matchers: values.matchers.clone().into_boxed_slice(),
                    absent: values.absent,
                }
            })
            .collect();
        // event-ruler's machine takes the fields in Java string order (UTF-16 code units).
        constraints.sort_by(|a, b| a.path.encode_utf16().cmp(b.path.encode_utf16()));
        for constraint in &constraints {
            check_wildcard_complexity(constraint)?;
        }
        sub_rules.push(constraints.into_boxed_slice());
    }
    Ok(Compiled {
        sub_rules,
        numbers: builder.numbers,
    })
}

fn check_wildcard_complexity(constraint: &Constraint) -> Result<(), CompileError> {
    let wildcards: Vec<&Wildcard> = constraint
        .matchers
        .iter()
        .filter_map(|m| match m {
            Matcher::Wildcard(w) => Some(w),
            _ => None,
        })
        .collect();
    if wildcards.is_empty() {
        return Ok(());
    }
    if wildcard::complexity(&wildcards, MAX_WILDCARD_COMPLEXITY + 1) > MAX_WILDCARD_COMPLEXITY {
        return Err(CompileError::Limit(
            "Rule is too complex - try using fewer wildcard characters or fewer repeating \
             character sequences after a wildcard character"
                .to_owned(),
        ));
    }
    Ok(())
}

/// JSON text of a value the way Jackson's `getText()` shows it in messages.
fn token_text(value: Option<&Json<'_>>) -> String {
    match value {
        None => "]".to_owned(),
        Some(Json::Null) => "null".to_owned(),
        Some(Json::Bool(b)) => b.to_string(),
        Some(Json::Number(n)) => n.text.to_string(),
        Some(Json::String(s)) => s.to_string(),
        Some(Json::Array(_)) => "[".to_owned(),
        Some(Json::Object(_)) => "{".to_owned(),
    }
}

impl Builder {
    fn object(
        &mut self,
        rules: &mut Vec<SubRule>,
        path: &mut Vec<String>,
        fields: &[(Cow<'_, str>, Json<'_>)],
        inside_or: bool,
    ) -> Result<(), String> {
        if fields.is_empty() {
            return Err("Empty objects are not allowed".to_owned());
        }
        for (key, value) in fields {
            if self.too_many {
                return Ok(());
            }
            if self.or_enabled && key == OR {
                self.or(rules, path, value)?;
                continue;
            }
            if inside_or && RESERVED_IN_OR.contains(&key.as_ref()) {
                return Err(format!(
                    "{key} is Ruler reserved fieldName which cannot be used inside {OR}."
                ));
            }
            match value {
                Json::Object(inner) => {
                    path.push(key.to_string());
                    self.object(rules, path, inner, inside_or)?;
                    path.pop();
                }
                Json::Array(items) => {
                    let mut name = path.join(".");
                    if !path.is_empty() {
                        name.push('.');
                    }
                    name.push_str(key);
                    self.leaf_list(rules, name, items)?;
                }
                _ => return Err(format!("\"{key}\" must be an object or an array")),
            }
        }
        Ok(())
    }

    fn or(
        &mut self,
        rules: &mut Vec<SubRule>,
        path: &mut Vec<String>,
        value: &Json<'_>,
    ) -> Result<(), String> {
        let Json::Array(branches) = value else {
            return Err(format!("It must be an Array followed with {OR}."));
        };
        let current = std::mem::take(rules);
        for branch in branches {
            let Json::Object(fields) = branch else {
                return Err(format!(
                    "Only JSON object is allowed in array of {OR} relationship."
                ));
            };
            let mut forked = current.clone();
            if forked.is_empty() {
                forked.push(SubRule::new());
            }
            self.object(&mut forked, path, fields, true)?;
            rules.extend(forked);
            if rules.len() > MAX_OR_COMBINATIONS {
                self.too_many = true;
                return Ok(());
            }
        }
        if branches.len() < 2 {
            return Err(format!(
                "There must have at least 2 Objects in {OR} relationship."
            ));
        }
        Ok(())
    }

    fn leaf_list(
        &mut self,
        rules: &mut Vec<SubRule>,
        name: String,
        items: &[Json<'_>],
    ) -> Result<(), String> {
        let mut values = Values {
            matchers: Vec::with_capacity(items.len()),
            absent: false,
        };
        for item in items {
            match item {
                Json::Object(op) => match self.operator(op)? {
                    Some(m) => values.matchers.push(m),
                    None => values.absent = true,
                },
                Json::String(s) => values.matchers.push(match ip::parse_ip(s) {
                    Some(addr) => Matcher::ExactIp(ip::IpRange::single(addr)),
                    None => Matcher::Exact(s.as_ref().into()),
                }),
                // Not noted for the portability lint: an exact number outside the comparable
                // range (an account id, say) still matches by its spelling.
                Json::Number(n) => {
                    values.matchers.push(Matcher::ExactNumber {
                        value: (!n.loses_value()).then_some(n.value),
                        text: n.text.as_ref().into(),
                    });
                }
                Json::Bool(b) => values.matchers.push(Matcher::Bool(*b)),
                Json::Null => values.matchers.push(Matcher::Null),
                Json::Array(_) => {
                    return Err(
                        "Match value must be String, number, true, false, or null".to_owned()
                    );
                }
            }
        }
        if items.is_empty() {
            return Err("Empty arrays are not allowed".to_owned());
        }
        let index = self.values.len();
        self.values.push(values);
        if rules.is_empty() {
            rules.push(SubRule::new());
        }
        for rule in rules.iter_mut() {
            match rule.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = index,
                None => rule.push((name.clone(), index)),
            }
        }
        Ok(())
    }

    fn note(&mut self, n: &Number<'_>) {
        self.numbers.push(NumberOperand {
            text: n.text.to_string(),
            value: n.value,
        });
    }

    /// A finite operand for a numeric comparison or anything-but.
    fn operand(&mut self, value: Option<&Json<'_>>, what: &str) -> Result<f64, String> {
        match value {
            Some(Json::Number(n)) => {
                if n.loses_value() {
                    return Err(format!(
                        "Value of {what} must be a number a double can represent (it \
                         overflows to infinity or underflows to zero): {}",
                        n.text
                    ));
                }
                self.note(n);
                Ok(n.value)
            }
            _ => Err(format!("Value of {what} must be numeric")),
        }
    }

    /// One operator object; `None` stands for `{"exists": false}`.
    fn operator(&mut self, op: &[(Cow<'_, str>, Json<'_>)]) -> Result<Option<Matcher>, String> {
        let Some((name, value)) = op.first() else {
            return Err("Match expression name not found".to_owned());
        };
        let only_key = || -> Result<(), String> {
            if op.len() > 1 {
                Err("Only one key allowed in match expression".to_owned())
            } else {
                Ok(())
            }
        };
        let matcher = match name.as_ref() {
            "exactly" => match value {
                Json::String(s) => Matcher::Exact(s.as_ref().into()),
                _ => return Err("exact match pattern must be a string".to_owned()),
            },
            "prefix" | "suffix" => {
                let prefix = name == "prefix";
                match value {
                    Json::Object(inner) => {
                        let s = ignore_case_operand(inner, name)?;
                        if prefix {
                            Matcher::PrefixIgnoreCase(folded(s))
                        } else {
                            Matcher::SuffixIgnoreCase(folded(s))
                        }
                    }
                    Json::String(s) if prefix => Matcher::Prefix(s.as_ref().into()),
                    Json::String(s) => Matcher::Suffix(s.as_ref().into()),
                    _ => return Err(format!("{name} match pattern must be a string")),
                }
            }
            "equals-ignore-case" => match value {
                Json::String(s) => Matcher::EqualsIgnoreCase(folded(s)),
                _ => return Err("equals-ignore-case match pattern must be a string".to_owned()),
            },
            "wildcard" => match value {
                Json::String(s) => Matcher::Wildcard(wildcard::parse(s)?),
                _ => return Err("wildcard match pattern must be a string".to_owned()),
            },
            "cidr" => match value {
                // event-ruler's message names `prefix` here; say which operator too.
                Json::String(s) => Matcher::Cidr(ip::parse_cidr(s)?),
                _ => {
                    return Err(
                        "prefix match pattern must be a string (the value of cidr must \
                                be a string such as \"10.0.0.0/24\")"
                            .to_owned(),
                    );
                }
            },
            "numeric" => match value {
                Json::Array(items) => Matcher::Numeric(self.numeric(items)?),
                _ => return Err("Value of numeric must be an array.".to_owned()),
            },
            "exists" => {
                let exists = match value {
                    Json::Bool(b) => *b,
                    _ => {
                        return Err("exists match pattern must be either true or false.".to_owned());
                    }
                };
                only_key()?;
                return Ok(exists.then_some(Matcher::Exists));
            }
            "anything-but" => self.anything_but(value)?,
            other => return Err(format!("Unrecognized match type {other}")),
        };
        only_key()?;
        Ok(Some(matcher))
    }

    fn numeric(&mut self, items: &[Json<'_>]) -> Result<NumericRange, String> {
        let mut it = items.iter();
        let first = it.next();
        let Some(Json::String(op)) = first else {
            return Err(format!(
                "Invalid member in numeric match: {}",
                token_text(first)
            ));
        };
        let too_many = "Too many elements in numeric expression";
        match op.as_ref() {
            "=" => {
                let v = self.operand(it.next(), "equals")?;
                if it.next().is_some() {
                    return Err(too_many.to_owned());
                }
                Ok(NumericRange {
                    low: Some((v, true)),
                    high: Some((v, true)),
                })
            }
            "<" | "<=" => {
                let v = self.operand(it.next(), op)?;
                if it.next().is_some() {
                    return Err(format!(
                        "{too_many} (a range must give its lower bound, > or >=, first)"
                    ));
                }
                Ok(NumericRange {
                    low: None,
                    high: Some((v, op == "<=")),
                })
            }
            ">" | ">=" => {
                let bottom = self.operand(it.next(), op)?;
                let low = Some((bottom, op == ">="));
                let Some(next) = it.next() else {
                    return Ok(NumericRange { low, high: None });
                };
                let Json::String(op2) = next else {
                    return Err(format!(
                        "Bad value in numeric range: {}",
                        token_text(Some(next))
                    ));
                };
                if op2 != "<" && op2 != "<=" {
                    return Err(format!("Bad numeric range operator: {op2}"));
                }
                let top = self.operand(it.next(), op2)?;
                if it.next().is_some() {
                    return Err("Too many terms in numeric range expression".to_owned());
                }
                if bottom >= top {
                    return Err("Bottom must be less than top".to_owned());
                }
                Ok(NumericRange {
                    low,
                    high: Some((top, op2 == "<=")),
                })
            }
            other => Err(format!("Unrecognized numeric range operator: {other}")),
        }
    }

    fn anything_but(&mut self, value: &Json<'_>) -> Result<Matcher, String> {
        #[derive(PartialEq, Clone, Copy)]
        enum Kind {
            Values,
            IgnoreCase,
            Prefix,
            Suffix,
            Wildcard,
        }
        let (kind, token, extra) = match value {
            Json::Object(inner) => {
                let Some((op, token)) = inner.first() else {
                    return Err("Anything-But expression name not found".to_owned());
                };
                let kind = match op.as_ref() {
                    "equals-ignore-case" => Kind::IgnoreCase,
                    "prefix" => Kind::Prefix,
                    "suffix" => Kind::Suffix,
                    "wildcard" => Kind::Wildcard,
                    other => return Err(format!("Unsupported anything-but pattern: {other}")),
                };
                (kind, token, inner.len() > 1)
            }
            other => (Kind::Values, other, false),
        };
        let items: &[Json<'_>] = match token {
            Json::Array(items) => items,
            Json::String(_) | Json::Number(_) => std::slice::from_ref(token),
            _ => {
                return Err(
                    "Value of anything-but must be an array or single string/number value."
                        .to_owned(),
                );
            }
        };
        let matcher = if kind == Kind::Values {
            self.anything_but_values(items)?
        } else {
            let mut texts: Vec<&str> = Vec::with_capacity(items.len());
            for item in items {
                let Json::String(s) = item else {
                    return Err(match kind {
                        Kind::IgnoreCase => "Inside anything-but/equals-ignore-case list, \
                                             number|start|null|boolean is not supported."
                            .to_owned(),
                        Kind::Wildcard => "wildcard match pattern must be a string".to_owned(),
                        _ => "prefix/suffix match pattern must be a string".to_owned(),
                    });
                };
                if matches!(kind, Kind::Prefix | Kind::Suffix) && s.is_empty() {
                    return Err("Null prefix/suffix not allowed".to_owned());
                }
                texts.push(s);
            }
            match kind {
                Kind::IgnoreCase => {
                    Matcher::AnythingButIgnoreCase(texts.iter().map(|t| folded(t)).collect())
                }
                Kind::Prefix => {
                    Matcher::AnythingButPrefix(texts.iter().map(|t| (*t).into()).collect())
                }
                Kind::Suffix => {
                    Matcher::AnythingButSuffix(texts.iter().map(|t| (*t).into()).collect())
                }
                _ => Matcher::AnythingButWildcard(
                    texts
                        .iter()
                        .map(|t| wildcard::parse(t))
                        .collect::<Result<Vec<_>, _>>()?
                        .into_boxed_slice(),
                ),
            }
        };
        if extra {
            return Err("Only one key allowed in match expression".to_owned());
        }
        Ok(matcher)
    }

    /// `anything-but` over plain values: all strings or all numbers.
    fn anything_but_values(&mut self, items: &[Json<'_>]) -> Result<Matcher, String> {
        let mut strings = Vec::new();
        let mut numbers = Vec::new();
        for item in items {
            match item {
                Json::String(s) => strings.push(s.as_ref().into()),
                Json::Number(_) => numbers.push(self.operand(Some(item), "anything-but")?),
                _ => {
                    return Err(
                        "Inside anything but list, start|null|boolean is not supported.".to_owned(),
                    );
                }
            }
        }
        if strings.is_empty() == numbers.is_empty() {
            return Err(
                "Inside anything but list, either all values are number or string, \
                 mixed type is not supported"
                    .to_owned(),
            );
        }
        Ok(if numbers.is_empty() {
            Matcher::AnythingButStrings(strings.into_boxed_slice())
        } else {
            Matcher::AnythingButNumbers(numbers.into_boxed_slice())
        })
    }
}

/// The string inside `{"prefix": {"equals-ignore-case": "..."}}` (or suffix).
fn ignore_case_operand<'v>(
    inner: &'v [(Cow<'_, str>, Json<'_>)],
    op: &str,
) -> Result<&'v str, String> {
    let label = if op == "prefix" { "Prefix" } else { "Suffix" };
    let Some((name, value)) = inner.first() else {
        return Err(format!("{label} expression name not found"));
    };
    if name != "equals-ignore-case" {
        return Err(format!("Unsupported {op} pattern: {name}"));
    }
    let Json::String(s) = value else {
        return Err("equals-ignore-case match pattern must be a string".to_owned());
    };
    if inner.len() > 1 {
        return Err("Only one key allowed in match expression".to_owned());
    }
    Ok(s)
}
