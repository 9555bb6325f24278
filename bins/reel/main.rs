//! `reel`: the front door for people.
//!
//! `reel status` and `reel retry` read and repair the spool, `reel config`
//! checks or prints configuration, and `reel <stage> …` runs `reel-<stage> …`
//! (found next to this executable, else on PATH), with the long stage names
//! (scan, stage-to-cache, tar-pack, tape-write, readback-verify) as aliases.
//! The commands are `reel_shared::front`; this file parses the flags.

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::front::{self, Command};

/// Back up file trees to LTO tape: the front door to reel's programs.
#[derive(Parser, Debug)]
#[command(name = "reel", version, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    front::run(args.command, &args.common)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
