//! `reel-stage`: copy scanned files onto the cache (the RAID0 array),
//! hashing as it copies, never leaving a torn copy. The work is
//! `reel_shared::stage`; this file parses the flags.

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, PipeArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::stage::{self, Options};
use reel_shared::units::Size;

/// Copy scanned files onto the cache, hashing as it copies
#[derive(Parser, Debug)]
#[command(name = "reel-stage", version, long_about = None)]
struct Args {
    #[command(flatten)]
    pipe: PipeArgs,

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
    const WRITES_METRICS: bool = true;
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.load_config()?;
    let options = Options {
        from_stdin: args.pipe.from_stdin()?,
        to_stdout: args.pipe.to_stdout()?,
        bwlimit: args.bwlimit.map(|r| r.0),
        retries: args.retries,
        jobs: args.jobs,
    };
    stage::run(&config, &options)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
