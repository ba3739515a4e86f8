//! The dependency rules of `ARCHITECTURE.md` ("Crates, and what each may depend on"), checked
//! against `cargo metadata`: the table in that file is the rule, this test only reads it.
//!
//! Run: `cargo nextest run -p payhook-e2e --test e2e architecture::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One row of the table.
#[derive(Debug)]
struct Rule {
    folder: String,
    may: BTreeSet<String>,
    tests_may: BTreeSet<String>,
    never: Vec<String>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The backticked names of a cell (`—` is none).
fn names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The rows between the `dependency-rules` markers of `ARCHITECTURE.md`.
fn rules() -> BTreeMap<String, Rule> {
    let text = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md at the workspace root");
    let start = text
        .find("<!-- dependency-rules")
        .expect("the dependency-rules marker");
    let end = text
        .find("<!-- /dependency-rules -->")
        .expect("the closing marker");
    let mut rules = BTreeMap::new();
    let mut above: BTreeSet<String> = BTreeSet::new();
    for line in text[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 5, "five cells: {line}");
        let name = names(cells[0]).pop().expect("a crate name");
        let may: BTreeSet<String> = if cells[2] == "every crate above" {
            above.clone()
        } else {
            names(cells[2]).into_iter().collect()
        };
        let rule = Rule {
            folder: names(cells[1]).pop().expect("a folder"),
            may,
            tests_may: names(cells[3]).into_iter().collect(),
            never: names(cells[4]),
        };
        above.insert(name.clone());
        assert!(rules.insert(name.clone(), rule).is_none(), "{name} twice");
    }
    assert!(rules.len() >= 10, "the table was read: {rules:?}");
    rules
}

/// `cargo metadata` for this platform, without touching the network.
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let host = std::env::var("TARGET").unwrap_or_else(|_| host_triple());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The host triple, from `rustc -vV`.
fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// `pattern` with an optional trailing `*`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// The workspace: each crate's manifest folder (relative), its workspace dependencies by kind
/// (`normal`, `build`, `dev`), and every package its normal dependencies reach.
struct Workspace {
    folders: BTreeMap<String, String>,
    edges: Edges,
    reach: BTreeMap<String, BTreeSet<String>>,
}

fn workspace() -> Workspace {
    let meta = metadata();
    let root = workspace_root().canonicalize().unwrap();
    let packages: BTreeMap<String, &Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p))
        .collect();
    let name_of = |id: &str| packages[id]["name"].as_str().unwrap().to_owned();
    let members: BTreeSet<String> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    let nodes: BTreeMap<String, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap().to_owned(), n))
        .collect();
    // Edges that are followed for what a crate reaches: everything but a member's dev-deps.
    let runtime_deps = |id: &str| -> Vec<String> {
        nodes[id]["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                !members.contains(id)
                    || d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].as_str() != Some("dev"))
            })
            .map(|d| d["pkg"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut ws = Workspace {
        folders: BTreeMap::new(),
        edges: BTreeMap::new(),
        reach: BTreeMap::new(),
    };
    for id in &members {
        let name = name_of(id);
        let manifest = PathBuf::from(packages[id]["manifest_path"].as_str().unwrap());
        let folder = manifest
            .parent()
            .unwrap()
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        ws.folders.insert(name.clone(), folder);
        let mut edges = BTreeSet::new();
        for dep in nodes[id.as_str()]["deps"].as_array().unwrap() {
            let pkg = dep["pkg"].as_str().unwrap();
            if !members.contains(pkg) {
                continue;
            }
            for kind in dep["dep_kinds"].as_array().unwrap() {
                let kind = kind["kind"].as_str().unwrap_or("normal").to_owned();
                edges.insert((name_of(pkg), kind));
            }
        }
        ws.edges.insert(name.clone(), edges);
        let mut seen = BTreeSet::new();
        let mut stack = runtime_deps(id);
        while let Some(next) = stack.pop() {
            if seen.insert(next.clone()) {
                stack.extend(runtime_deps(&next));
            }
        }
        ws.reach
            .insert(name, seen.iter().map(|id| name_of(id)).collect());
    }
    ws
}

#[test]
fn every_crate_has_a_row_with_its_folder() {
    let rules = rules();
    let ws = workspace();
    let members: BTreeSet<&String> = ws.folders.keys().collect();
    let rows: BTreeSet<&String> = rules.keys().collect();
    assert_eq!(
        members, rows,
        "ARCHITECTURE.md lists exactly the workspace's crates"
    );
    for (name, rule) in &rules {
        assert_eq!(&ws.folders[name], &rule.folder, "{name}'s folder");
    }
}

#[test]
fn workspace_dependencies_are_the_allowed_ones() {
    let rules = rules();
    let ws = workspace();
    let mut wrong = Vec::new();
    for (name, edges) in &ws.edges {
        let rule = &rules[name];
        for (dep, kind) in edges {
            let allowed = match kind.as_str() {
                "dev" => rule.may.contains(dep) || rule.tests_may.contains(dep),
                _ => rule.may.contains(dep),
            };
            if !allowed {
                wrong.push(format!("{name} → {dep} ({kind})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "edges ARCHITECTURE.md does not allow: {wrong:#?}"
    );
}

#[test]
fn no_crate_reaches_what_it_must_never_reach() {
    let rules = rules();
    let ws = workspace();
    let mut wrong = Vec::new();
    for (name, rule) in &rules {
        for package in &ws.reach[name] {
            if let Some(pattern) = rule.never.iter().find(|p| matches(p, package)) {
                wrong.push(format!("{name} reaches {package} (`{pattern}`)"));
            }
        }
    }
    assert!(wrong.is_empty(), "forbidden packages reached: {wrong:#?}");
}

/// Workspace edges: each crate's dependencies on workspace crates, with their kinds.
type Edges = BTreeMap<String, BTreeSet<(String, String)>>;

/// A cycle of `edges` (as the path that closes it), if any. A crate's dev-dependency on itself
/// (to turn on a feature for its own tests) is not a cycle between crates.
fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &Edges,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        path.push(node.to_owned());
        for (dep, _) in edges.get(node).into_iter().flatten() {
            if dep == node {
                continue;
            }
            match state.get(dep.as_str()).copied().unwrap_or(0) {
                1 => {
                    let mut cycle = path.clone();
                    cycle.push(dep.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(dep, edges, state, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for name in edges.keys() {
        if state.get(name.as_str()).copied().unwrap_or(0) == 0
            && let Some(cycle) = visit(name, edges, &mut state, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_crate_graph_has_no_cycle_even_through_tests() {
    let ws = workspace();
    if let Some(cycle) = find_cycle(&ws.edges) {
        panic!("a cycle: {}", cycle.join(" → "));
    }
}

#[test]
fn a_cycle_through_a_dev_dependency_is_found_and_a_self_edge_is_not_one() {
    let edge = |to: &str, kind: &str| (to.to_owned(), kind.to_owned());
    let mut edges = Edges::new();
    edges.insert("a".into(), [edge("b", "normal"), edge("a", "dev")].into());
    edges.insert("b".into(), [edge("c", "normal")].into());
    edges.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&edges), None);
    edges.get_mut("c").unwrap().insert(edge("a", "dev"));
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn the_table_reader_and_the_patterns_are_what_the_rules_mean() {
    assert!(matches("aws-*", "aws-sdk-sqs"));
    assert!(matches("aws-sdk-*", "aws-sdk-sqs"));
    assert!(!matches("aws-sdk-*", "aws-config"));
    assert!(matches("rsa", "rsa"));
    assert!(!matches("rsa", "rsa-der"));
    assert_eq!(names("`a`, `b-*`"), vec!["a", "b-*"]);
    assert!(names("—").is_empty());
    // "every crate above" in the CLI's row.
    let rules = rules();
    assert!(rules["payhook"].may.contains("payhook-core"));
    assert!(!rules["payhook"].may.contains("payhook-e2e"));
}
