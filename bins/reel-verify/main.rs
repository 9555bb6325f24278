//! `reel-verify`: read archives back from tape, re-hash every member, record
//! them in the catalog (invariants 1 and 2 in ARCHITECTURE.md; docs/catalog.md
//! §2).

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, DriveArgs, PipeArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::verify;

/// Read archives back from tape, re-hash every member, record them in the catalog
#[derive(Parser, Debug)]
#[command(name = "reel-verify", version, long_about = None)]
struct Args {
    #[command(flatten)]
    drive: DriveArgs,

    #[command(flatten)]
    pipe: PipeArgs,

    /// Audit a whole tape against the catalog instead: every recorded
    /// member read back and re-hashed; the result goes to `reel tapes`
    #[arg(long, value_name = "LABEL", conflicts_with_all = ["input", "output"])]
    tape: Option<String>,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-verify";
    const WRITES_METRICS: bool = true;
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    if let Some(tape) = &args.tape {
        return verify::audit(&args.common, &args.drive, tape);
    }
    verify::run(&args.common, &args.drive, &args.pipe)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
