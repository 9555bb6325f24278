//! `reel-tcmu`: serve a drive of reel's virtual library as a SCSI tape
//! drive through the kernel's TCMU user backstore, so that st binds to it
//! (`/dev/nstN`) and what it writes is a normal `virtual:DIR` tape. The
//! work is `reel_shared::tcmu`; this file parses the flags.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::tcmu::{self, Options};

/// Serve one tape drive of a virtual library over TCMU (the user backstore
/// of the Linux SCSI target) until SIGTERM or SIGINT. Set up the backstore
/// and the tcm_loop LUN in configfs after it started.
#[derive(Parser, Debug)]
#[command(name = "reel-tcmu", version)]
struct Args {
    /// The TCMU device's UIO node (its /sys/class/uio/uioN/name is
    /// tcm-user/<hba>/<device>/…)
    #[arg(long, value_name = "DEV")]
    uio: PathBuf,

    /// The virtual library directory (created if missing)
    #[arg(long, value_name = "DIR")]
    library: PathBuf,

    /// Which drive of the library to serve
    #[arg(long, value_name = "N", default_value_t = 0)]
    drive: u32,

    /// The unit serial number INQUIRY reports (default REEL + the drive
    /// number)
    #[arg(long, value_name = "SERIAL")]
    serial: Option<String>,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-tcmu";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    tcmu::run(&Options {
        serial: args
            .serial
            .unwrap_or_else(|| format!("REEL{:06}", args.drive)),
        uio: args.uio,
        library: args.library,
        drive: args.drive,
    })
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
