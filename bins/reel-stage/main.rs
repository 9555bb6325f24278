//! `reel-stage`: copy scanned files onto the cache (the RAID0 array),
//! hashing as it copies, never leaving a torn copy. The work is
//! `reel_shared::stage`; this file parses the flags.

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::stage::{self, Options};
use reel_shared::units::Size;

/// Copy scanned files onto the cache, hashing as it copies
#[derive(Parser, Debug)]
#[command(name = "reel-stage", version, long_about = None)]
struct Args {
    /// Read manifests from stdin ("-") instead of the spool queue
    #[arg(long = "in", value_name = "-")]
    input: Option<String>,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    output: Option<String>,

    /// Read sources at most this fast, in bytes per second (like 50M)
    #[arg(long, value_name = "RATE")]
    bwlimit: Option<Size>,

    /// Copy a file that changes during its copy this many more times before giving up on it
    #[arg(long, default_value_t = 3, value_name = "N")]
    retries: u32,

    /// Files copied at once
    #[arg(long, default_value_t = 8, value_name = "N")]
    jobs: usize,

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
    let config = args.common.load_config()?;
    let options = Options {
        from_stdin: cli::dash_flag("--in", args.input.as_deref())?,
        to_stdout: cli::dash_flag("--out", args.output.as_deref())?,
        bwlimit: args.bwlimit.map(|r| r.0),
        retries: args.retries,
        jobs: args.jobs,
    };
    stage::run(&config, &options)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
