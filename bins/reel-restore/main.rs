//! `reel-restore`: find files in the catalog and restore them from tape,
//! seeking straight to each member (docs/tape-format.md §5).

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, DriveArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::restore;

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

    /// Restore the versions taken from the source at or before this time
    #[arg(long, value_name = "TIME")]
    at: Option<String>,

    /// Replace existing files
    #[arg(long)]
    overwrite: bool,

    /// List the tapes and positions that would be read, and the bytes
    #[arg(long)]
    dry_run: bool,

    /// No catalog: restore from the tape in DEVICE by what it says of
    /// itself (its REEL-TAPE.jsonl, else its archives' indexes)
    #[arg(long, value_name = "DEVICE")]
    from_tape: Option<String>,

    #[command(flatten)]
    drive: DriveArgs,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-restore";
    /// Its files are the user's: the modes on tape, the user's umask for
    /// directories it makes on the way.
    const PRIVATE: bool = false;
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    restore::run(
        &args.common,
        restore::Options {
            patterns: args.patterns,
            from_tape: args.from_tape,
            to: args.to,
            at: args.at,
            overwrite: args.overwrite,
            dry_run: args.dry_run,
            drive: args.drive,
        },
    )
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
