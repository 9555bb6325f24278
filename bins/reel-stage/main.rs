//! `reel-stage`: copy scanned files onto the cache, hashing as it copies
//!
//! Not built yet (issue #5): the command line is final enough to document,
//! the work behind it is not. It checks the configuration and exits 69.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;

/// copy scanned files onto the cache, hashing as it copies
#[derive(Parser, Debug)]
#[command(name = "reel-stage", version, long_about = None)]
struct Args {
    /// Read manifests from stdin ("-") instead of the spool queue
    #[arg(long = "in", value_name = "-")]
    input: Option<PathBuf>,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    output: Option<PathBuf>,

    /// Limit reading from the source, in bytes per second (like 50M)
    #[arg(long, value_name = "RATE")]
    bwlimit: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-stage";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    log::debug!("{args:?}");
    cli::not_built(&args.common, Args::NAME, 5)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
