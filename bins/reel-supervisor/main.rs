//! `reel-supervisor`: the daemon that runs the stages when there is work.
//!
//! Built so far: `--once` (once.rs), which runs every stage as a child
//! process until the pipeline is empty. The daemon itself (schedules,
//! inotify, throttling, signals) is issue #10's rest and not built yet.

mod once;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::{Exit, ExitError};
use reel_shared::spool::Queue;

/// The daemon: watches the sources and runs the stages when there is work.
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
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.load_config()?;
    if args.once {
        return once::run(&args.common, &config);
    }
    let spool = config.prepare_dirs()?;
    log::info!("config {}", config.file.display());
    log::info!("spool {}", spool.root().display());
    for q in Queue::ALL {
        log::info!("  {q:<9} {} items", spool.list(q)?.len());
    }
    Err(ExitError::new(
        Exit::Unavailable,
        "the daemon is not built yet (issue #10); `reel-supervisor --once` runs the pipeline until it is empty",
    )
    .into())
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
