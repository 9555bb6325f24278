//! `reel-restore`: find files in the catalog and restore them from tape
//!
//! Not built yet (issue #9): the command line is final enough to document,
//! the work behind it is not. It checks the configuration and exits 69.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;

/// find files in the catalog and restore them from tape
#[derive(Parser, Debug)]
#[command(name = "reel-restore", version, long_about = None)]
struct Args {
    /// Glob or path prefix of the files to restore
    #[arg(value_name = "PATTERN", required = true)]
    patterns: Vec<String>,

    /// Directory to restore into
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,

    /// Restore the versions verified at or before this time
    #[arg(long, value_name = "TIME")]
    at: Option<String>,

    /// Replace existing files
    #[arg(long)]
    overwrite: bool,

    /// List the tapes and positions that would be read, and the bytes
    #[arg(long)]
    dry_run: bool,

    /// Read the catalog from this tape instead of the catalog directory
    #[arg(long, value_name = "DEVICE")]
    from_tape: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-restore";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    log::debug!("{args:?}");
    cli::not_built(&args.common, Args::NAME, 9)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
