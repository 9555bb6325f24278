//! `reel-pack`: pack staged files into pax tar archives with a per-member index
//!
//! Not built yet (issue #6): the command line is final enough to document,
//! the work behind it is not. It checks the configuration and exits 69.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;

/// pack staged files into pax tar archives with a per-member index
#[derive(Parser, Debug)]
#[command(name = "reel-pack", version, long_about = None)]
struct Args {
    /// Read manifests from stdin ("-") instead of the spool queue
    #[arg(long = "in", value_name = "-")]
    input: Option<PathBuf>,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    output: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-pack";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    log::debug!("{args:?}");
    cli::not_built(&args.common, Args::NAME, 6)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
