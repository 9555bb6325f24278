//! `reel-supervisor`: the daemon that runs the stages when there is work.
//!
//! Not built yet (issue #10). What runs today: it loads and checks the
//! configuration, creates the spool (all queues), cache, catalog and log
//! directories with their modes, reports what waits in each queue, and exits
//! 69 because the stages behind it do not exist yet.

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
    let spool = config.prepare_dirs()?;
    log::info!("config {}", config.file.display());
    log::info!("spool {}", spool.root().display());
    for q in Queue::ALL {
        log::info!("  {q:<9} {} items", spool.list(q)?.len());
    }
    let what = if args.once { "--once" } else { "the daemon" };
    Err(ExitError::new(
        Exit::Unavailable,
        format!("{what} is not built yet (issue #10): the stages it runs do not exist yet; see README.md"),
    )
    .into())
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
