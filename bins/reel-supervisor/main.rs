//! `reel-supervisor`: the daemon that runs the stages when there is work.
//!
//! It runs every stage as a child process (child.rs): as a daemon
//! (daemon.rs, with inotify in watch.rs), or with `--once` (once.rs) until
//! the pipeline is empty.

mod child;
mod daemon;
mod once;
mod watch;

use anyhow::Context;
use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::{Exit, ExitError};
use reel_shared::spool::Spool;

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
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.load_config()?;
    if args.once {
        return once::run(&args.common, &config);
    }
    daemon::check_sources(&config);
    daemon::run(&args.common, config)
}

/// One supervisor per spool: `<spool>/supervisor.lock`, held while it runs.
fn lock_spool(spool: &Spool) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    let path = spool.root().join("supervisor.lock");
    match reel_shared::fsutil::lock_file(&path, false)
        .with_context(|| format!("locking {}", path.display()))?
    {
        Some(lock) => {
            // What a supervisor that died left: its pid must not be
            // signalled by `reel status --live`.
            let _ = std::fs::remove_file(spool.root().join("supervisor.json"));
            Ok(lock)
        }
        None => Err(ExitError::new(
            Exit::TempFail,
            format!(
                "another reel-supervisor runs on this spool ({} is locked)",
                path.display()
            ),
        )
        .into()),
    }
}

/// The labels of the tapes the catalog knows as full.
fn full_tapes(config: &reel_shared::config::Config) -> Vec<String> {
    reel_shared::catalog::tape::all(&config.paths.catalog)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.state == reel_shared::catalog::tape::TapeState::Full)
        .map(|t| t.label)
        .collect()
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
