//! `reel-verify`: read archives back from tape, re-hash every member, record
//! them in the catalog (invariants 1 and 2 in ARCHITECTURE.md; docs/catalog.md
//! §2).

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::verify;

/// read archives back from tape, re-hash every member, record them in the catalog
#[derive(Parser, Debug)]
#[command(name = "reel-verify", version, long_about = None)]
struct Args {
    /// Tape device: /dev/nstN or virtual:<dir>[#n]
    #[arg(short = 'f', long, value_name = "DEVICE", conflicts_with = "drive")]
    device: Option<String>,

    /// A [[drive]] from pipeline.toml
    #[arg(long, value_name = "NAME")]
    drive: Option<String>,

    /// Read manifests from stdin ("-") instead of the spool queue
    #[arg(long = "in", value_name = "-")]
    input: Option<String>,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    output: Option<String>,

    /// Audit a whole tape against the catalog instead: every recorded
    /// member read back and re-hashed; the result goes to `reel tapes`
    #[arg(long, value_name = "LABEL", conflicts_with_all = ["input", "output"])]
    tape: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-verify";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    if let Some(tape) = &args.tape {
        return verify::audit(
            &args.common,
            args.device.as_deref(),
            args.drive.as_deref(),
            tape,
        );
    }
    verify::run(
        &args.common,
        args.device.as_deref(),
        args.drive.as_deref(),
        cli::dash_flag("--in", args.input.as_deref())?,
        cli::dash_flag("--out", args.output.as_deref())?,
    )
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
