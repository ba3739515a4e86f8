//! `payhook rules test`: evaluates an EventBridge pattern (or every rule in `rules/`) against an
//! event with the same matcher the local stack routes with. Exit 0 match, 1 no match, 2 invalid
//! pattern or usage error.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use payhook_pattern::{Pattern, RuleSet};
use serde_json::json;

use crate::CliError;

/// `payhook rules …`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Does a pattern (or which rule in rules/) match an event?
    Test(RulesTestArgs),
}

/// Arguments of `payhook rules test`.
#[derive(Debug, Args)]
pub struct RulesTestArgs {
    /// The event pattern as JSON text, or @FILE. Without it every rule in --rules-dir is tried.
    #[arg(long)]
    pattern: Option<String>,
    /// The event as JSON text, or @FILE.
    #[arg(long)]
    event: String,
    /// Where the rule files are (used without --pattern).
    #[arg(long, default_value = "rules")]
    rules_dir: PathBuf,
}

/// `JSON` stays as is; `@FILE` is read.
fn text_or_file(value: &str) -> Result<String, CliError> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {path}: {e}"))),
        None => Ok(value.to_owned()),
    }
}

/// Runs `payhook rules …`; returns the exit code.
pub fn run(command: RulesCommand) -> Result<i32, CliError> {
    let RulesCommand::Test(args) = command;
    let event = text_or_file(&args.event)?;
    match &args.pattern {
        Some(pattern) => {
            let pattern = match Pattern::parse(&text_or_file(pattern)?) {
                Ok(p) => p,
                Err(e) => {
                    println!(
                        "{}",
                        json!({"valid": false, "error": e.code(), "message": e.to_string()})
                    );
                    return Ok(2);
                }
            };
            let matched = pattern
                .matches_str(&event)
                .map_err(|e| CliError::Usage(format!("--event is not a JSON object: {e}")))?;
            println!("{}", json!({"match": matched}));
            Ok(if matched { 0 } else { 1 })
        }
        None => {
            let dir = crate::defaults::rules_dir(&args.rules_dir)?;
            let rules = RuleSet::load(&dir)
                .map_err(|e| CliError::Usage(format!("rules in {}: {e}", dir.display())))?;
            let names = rules
                .matching_str(&event)
                .map_err(|e| CliError::Usage(format!("--event is not a JSON object: {e}")))?;
            for name in &names {
                println!("{name}");
            }
            Ok(if names.is_empty() { 1 } else { 0 })
        }
    }
}
