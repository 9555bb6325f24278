//! `reel-write`: stream archives onto tape through a memory ring
//!
//! Not built yet (issue #7): the command line is final enough to document,
//! the work behind it is not. It checks the configuration and exits 69.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;

/// stream archives onto tape through a memory ring
#[derive(Parser, Debug)]
#[command(name = "reel-write", version, long_about = None)]
struct Args {
    /// Tape device: /dev/nstN or virtual:<dir>[#n]
    #[arg(short = 'f', long, value_name = "DEVICE", conflicts_with = "drive")]
    device: Option<String>,

    /// A [[drive]] from pipeline.toml
    #[arg(long, value_name = "NAME")]
    drive: Option<String>,

    /// Read manifests from stdin ("-") instead of the spool queue
    #[arg(long = "in", value_name = "-")]
    input: Option<PathBuf>,

    /// Write a plain byte stream from stdin to tape, like mbuffer
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-write";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    log::debug!("{args:?}");
    cli::not_built(&args.common, Args::NAME, 7)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
