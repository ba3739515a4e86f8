//! `payhook trace WEBHOOK_ID [--run-dir DIR]`: one webhook's trace drawn as a waterfall in the
//! terminal, from the X-Ray segments the local stack received (`xray.jsonl` in its run
//! directory), so a developer sees the picture the X-Ray console would show for that trace.
//!
//! The drawing is `payhook_dashboard::trace` (`cli/dashboard/src/trace.rs`); this command finds
//! the run directory, reads its `xray.jsonl` and prints.

use std::path::{Path, PathBuf};

use clap::Args;

use payhook_local::run_dir::{RUNS_DIR, SEGMENTS_FILE};

use crate::CliError;

/// Arguments of `payhook trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The webhook, as `{provider}:{event id}` (e.g. `stripe:evt_…`).
    webhook_id: String,
    /// The run directory holding `xray.jsonl` (default: the newest `runs/*` directory).
    #[arg(long)]
    run_dir: Option<PathBuf>,
}

/// Runs `payhook trace`; exit 0 when the webhook's trace was drawn, 1 when no segment names it.
pub fn run(args: TraceArgs) -> Result<i32, CliError> {
    let run_dir = match args.run_dir {
        Some(dir) => dir,
        None => newest_run_dir(Path::new(RUNS_DIR))?,
    };
    let path = run_dir.join(SEGMENTS_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    match payhook_dashboard::trace::waterfall(&text, &args.webhook_id)? {
        Some(picture) => {
            print!("{picture}");
            Ok(0)
        }
        None => {
            eprintln!(
                "no segment in {} is annotated with webhook_id {} (was it sampled, and is this the run that received it?)",
                path.display(),
                args.webhook_id
            );
            Ok(1)
        }
    }
}

/// The newest directory under `runs` (the demo's and `serve`'s default place).
fn newest_run_dir(runs: &Path) -> Result<PathBuf, CliError> {
    let entries = std::fs::read_dir(runs).map_err(|e| {
        CliError::Usage(format!(
            "no --run-dir and cannot read {}: {e}",
            runs.display()
        ))
    })?;
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(SEGMENTS_FILE).is_file())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .ok_or_else(|| CliError::Usage(format!("no run with xray.jsonl under {}", runs.display())))
}
