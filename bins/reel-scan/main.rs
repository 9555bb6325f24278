//! `reel-scan`: find files new or changed since they were last verified on tape
//!
//! Not built yet (issue #4): the command line is final enough to document,
//! the work behind it is not. It checks the configuration and exits 69.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;

/// find files new or changed since they were last verified on tape
#[derive(Parser, Debug)]
#[command(name = "reel-scan", version, long_about = None)]
struct Args {
    /// Scan these streams from pipeline.toml (default: all)
    #[arg(long, value_name = "NAME")]
    stream: Vec<String>,

    /// Scan these directories instead of configured streams
    #[arg(value_name = "SOURCE")]
    sources: Vec<PathBuf>,

    /// Also compare content hashes of files whose size and mtime match
    #[arg(long)]
    checksum: bool,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    output: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-scan";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    log::debug!("{args:?}");
    cli::not_built(&args.common, Args::NAME, 4)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
