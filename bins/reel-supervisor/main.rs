//! `reel-supervisor`: the daemon that runs the stages when there is work.
//!
//! The work is `reel_shared::supervise`; this file parses the flags.

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::supervise;

/// The daemon: watches the sources and runs the stages when there is work.
///
/// Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration
/// (a bad one is refused), SIGUSR1 asks a running reel-write for its
/// telemetry line. `reel status` shows what it does.
#[derive(Parser, Debug)]
#[command(name = "reel-supervisor", version, long_about = None)]
struct Args {
    /// Run everything that is waiting until the pipeline is empty, then exit
    #[arg(long)]
    once: bool,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-supervisor";
    const WRITES_METRICS: bool = true;
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.load_config()?;
    supervise::run(&args.common, config, args.once)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
