//! `reel-tcmu`: serve the drives and the changer of reel's virtual library
//! as SCSI devices through the kernel's TCMU user backstore, so that st
//! binds to the drives (`/dev/nstN`), ch and sg to the changer, and what
//! they write and move is a normal `virtual:DIR` library. The work is
//! `reel_shared::tcmu`; this file parses the flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::tcmu::faults::FaultArgs;
use reel_shared::tcmu::{self, Options};
use reel_shared::units::Size;

/// Serve drives and the changer of a virtual library over TCMU (the user
/// backstore of the Linux SCSI target) until SIGTERM or SIGINT, one thread
/// per device. Drive N reports the serial REEL00000N. Set up the backstores
/// and the tcm_loop LUNs in configfs after it started.
#[derive(Parser, Debug)]
#[command(name = "reel-tcmu", version)]
struct Args {
    /// The virtual library directory (created if missing)
    #[arg(long, value_name = "DIR")]
    library: PathBuf,

    /// Serve drive N of the library on the TCMU device's UIO node (its
    /// /sys/class/uio/uioN/name is tcm-user/<hba>/<device>/…); repeatable
    #[arg(long, value_name = "N=DEV", value_parser = drive_arg)]
    drive: Vec<(u32, PathBuf)>,

    /// Serve the library's changer on this UIO node
    #[arg(long, value_name = "DEV")]
    changer: Option<PathBuf>,

    /// Each tape's capacity when the library is created now (default 1G;
    /// the early warning comes 1/64 of it, at least 1M, before the end)
    #[arg(long, value_name = "SIZE")]
    capacity: Option<Size>,

    /// Drive N reports TapeAlert 20, "cleaning required", until the
    /// program stops; repeatable
    #[arg(long, value_name = "N")]
    needs_cleaning: Vec<u32>,

    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Set faults on a tape of the library that sits in a slot (kept in
    /// its meta.json), instead of serving; prints the tape's faults now
    Fault(FaultArgs),
}

fn drive_arg(s: &str) -> Result<(u32, PathBuf), String> {
    let (n, dev) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected N=/dev/uioX"))?;
    let n = n
        .parse()
        .map_err(|e| format!("{n:?}: not a drive number: {e}"))?;
    Ok((n, PathBuf::from(dev)))
}

impl Program for Args {
    const NAME: &'static str = "reel-tcmu";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    if let Some(Command::Fault(f)) = args.command {
        return f.run(&args.library);
    }
    tcmu::run(&Options {
        library: args.library,
        drives: args.drive,
        changer: args.changer,
        capacity: args.capacity,
        needs_cleaning: args.needs_cleaning,
    })
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
