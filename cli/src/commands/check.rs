//! `payhook check`: argument parsing and printing around the checker of
//! [`payhook_cloudwatch::check`], which reads `dashboards/`, `alarms/`, `rules/` and `runbooks/`
//! and says what is wrong before anything is deployed. Exit 0 when there is nothing to report,
//! 1 when there are findings, 2 on a usage error.
//!
//! The checker does not depend on the telemetry or domain crates (they bring the Lambda runtime
//! and the crypto stack); this module hands it what it needs of them: the metric catalogue
//! ([`catalogue`]) and the currency rates loader.

use std::path::{Path, PathBuf};

use payhook_cloudwatch::check::{
    self as checker, Catalogue, CatalogueMetric, Checked, Context, Finding,
};
use payhook_telemetry::{Resolution, Unit};

use crate::CliError;

use payhook_cloudwatch::check::{render_json, render_text};

/// Arguments of `payhook check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The repository root: the folder holding dashboards/, alarms/, rules/ and runbooks/.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output format of `payhook check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per finding (`file: json path: message [code]`) and a summary line.
    Text,
    /// One JSON document: `{"ok", "checked", "findings": [{file, json_path, code, message}]}`.
    Json,
}

/// The telemetry catalogue (`telemetry/src/catalogue.rs`) as the checker reads it.
pub fn catalogue() -> Catalogue {
    Catalogue {
        metrics: payhook_telemetry::catalogue()
            .iter()
            .map(|def| CatalogueMetric {
                name: def.name.to_owned(),
                unit: def.unit.as_str().to_owned(),
                standard_resolution: def.resolution == Resolution::Standard,
                dimension_sets: def
                    .dimension_sets
                    .iter()
                    .map(|set| set.iter().map(|d| d.as_str().to_owned()).collect())
                    .collect(),
                functions: def
                    .functions
                    .iter()
                    .map(|f| f.as_str().to_owned())
                    .collect(),
            })
            .collect(),
        units: Unit::ALL.iter().map(|u| u.as_str().to_owned()).collect(),
    }
}

/// Loads the currency rates as the validator does.
fn load_rates(json: &str) -> Result<(), String> {
    payhook_core::currency::Rates::from_json(json)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks the tree under `root` (see [`payhook_cloudwatch::check::check_tree`]).
pub fn check_tree(root: &Path) -> Vec<Finding> {
    check_tree_counted(root).0
}

/// [`check_tree`] plus how many files of each kind were checked.
pub fn check_tree_counted(root: &Path) -> (Vec<Finding>, Checked) {
    let catalogue = catalogue();
    checker::check_tree_counted(
        root,
        Context {
            catalogue: &catalogue,
            rates: &load_rates,
        },
    )
}

/// Runs `payhook check`: prints the findings in the chosen format and returns the exit code (0
/// nothing found, 1 findings). A root that is not a directory is a usage error (exit 2).
pub fn run(args: CheckArgs) -> Result<i32, CliError> {
    let catalogue = catalogue();
    let context = Context {
        catalogue: &catalogue,
        rates: &load_rates,
    };
    let (findings, checked) =
        checker::check_root(&args.root, context).map_err(|e| CliError::Usage(e.to_string()))?;
    match args.format {
        Format::Text => print!("{}", render_text(&findings, &checked)),
        Format::Json => println!("{}", render_json(&findings, &checked)),
    }
    Ok(if findings.is_empty() { 0 } else { 1 })
}
