//! Reading the folders and parsing their JSON files, noting repeated keys on the way (a JSON
//! parser keeps one of them silently, so a pasted block can override a setting unnoticed).

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::codes;
use super::report::Report;

/// The files of one folder: the ones with the expected extension, sorted, as paths relative to
/// the root. A missing folder, an unreadable entry and any other file (apart from `README.md`)
/// are reported.
pub(crate) fn folder_files(
    root: &Path,
    folder: &str,
    extension: &str,
    report: &mut Report,
) -> Vec<PathBuf> {
    let dir = root.join(folder);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            let message = if dir.exists() {
                format!("cannot read the folder: {e}")
            } else {
                format!(
                    "the folder {folder}/ is missing; payhook check expects dashboards/, alarms/, rules/ and runbooks/ under --root"
                )
            };
            let code = if dir.exists() {
                codes::UNEXPECTED_FILE
            } else {
                codes::MISSING_FILE
            };
            report.add(Path::new(folder), "$", code, message);
            return Vec::new();
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                report.add(
                    Path::new(folder),
                    "$",
                    codes::UNEXPECTED_FILE,
                    format!("cannot list the folder: {e}"),
                );
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = Path::new(folder).join(&name);
        let is_file = entry.path().is_file();
        if is_file && name.ends_with(&format!(".{extension}")) && name != "README.md" {
            files.push(rel);
        } else if name == "README.md" || name.starts_with('.') {
            // Documentation and hidden files (editor state, .gitkeep) are not deployed.
        } else if folder == "rules" && name == super::rules::RATES_FOLDER && !is_file {
            // The currency rates file, checked on its own (`rules::check_rates`).
        } else {
            report.add(
                &rel,
                "$",
                codes::UNEXPECTED_FILE,
                format!(
                    "only *.{extension} files (and README.md) belong in {folder}/; this {} is \
                     ignored by the deploy (a misspelt extension?)",
                    if is_file { "file" } else { "entry" }
                ),
            );
        }
    }
    files.sort();
    files
}

/// Reads and parses one JSON file, reporting unreadable or invalid JSON and repeated keys.
/// `None` when the file could not be parsed.
pub(crate) fn read(root: &Path, rel: &Path, report: &mut Report) -> Option<Value> {
    let text = match std::fs::read_to_string(root.join(rel)) {
        Ok(text) => text,
        Err(e) => {
            report.add(
                rel,
                "$",
                codes::UNEXPECTED_FILE,
                format!("cannot read the file: {e}"),
            );
            return None;
        }
    };
    match parse(&text) {
        Ok((value, duplicates)) => {
            for (path, key) in duplicates {
                report.add(
                    rel,
                    path,
                    codes::DUPLICATE_KEY,
                    format!("the key `{key}` appears more than once in this object; only the last one counts"),
                );
            }
            Some(value)
        }
        Err(e) => {
            report.add(
                rel,
                "$",
                codes::INVALID_JSON,
                format!("not valid JSON: {e}"),
            );
            None
        }
    }
}

/// Parses JSON text; also returns `(json path, key)` for every repeated key.
pub(crate) fn parse(text: &str) -> Result<(Value, Vec<(String, String)>), serde_json::Error> {
    let duplicates = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = Node {
        path: "$".to_owned(),
        duplicates: &duplicates,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok((value, duplicates.into_inner()))
}

/// Deserializes one JSON value at `path`.
struct Node<'a> {
    path: String,
    duplicates: &'a RefCell<Vec<(String, String)>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let node = Node {
                path: format!("{}[{}]", self.path, items.len()),
                duplicates: self.duplicates,
            };
            match seq.next_element_seed(node)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}.{key}", self.path);
            let value = map.next_value_seed(Node {
                path: path.clone(),
                duplicates: self.duplicates,
            })?;
            if object.insert(key.clone(), value).is_some() {
                self.duplicates.borrow_mut().push((path, key));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn repeated_keys_are_reported_with_their_path() {
        let (value, duplicates) = parse(r#"{"a": [{"b": 1, "b": 2}], "c": 3}"#).unwrap_or_default();
        assert_eq!(value["a"][0]["b"], 2);
        assert_eq!(duplicates, vec![("$.a[0].b".to_owned(), "b".to_owned())]);
    }

    #[test]
    fn trailing_garbage_is_invalid() {
        assert!(parse("{} {").is_err());
    }
}
