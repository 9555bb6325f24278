//! `reel-write`: stream packed archives onto tape through a memory ring.
//!
//! For each `packed` item: the archive is read by a thread into the ring
//! (page-aligned blocks, big reads) and written one block per write() to
//! the drive, one tape file per archive, closed by a filemark — the sync
//! point — before the `written` item is published with the tape, the tape
//! file number and the start block of every member. Before the first
//! archive the tape's label is read and its end of data compared with the
//! catalog (invariant 6). SIGUSR1 prints a progress line; SIGTERM and
//! SIGINT finish the current archive's block, close the tape file and stop.
//!
//! Built so far: the ring with its start mark, label and end-of-data check,
//! writing, written manifests, tape state, telemetry line, early warning.
//! `--raw` writes stdin as one tape file, like mbuffer (`--unlabelled`:
//! onto any tape, after its end of data, without label or catalog).

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, DriveArgs, PipeArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::write;

/// Stream archives onto tape through a memory ring
#[derive(Parser, Debug)]
#[command(name = "reel-write", version, long_about = None)]
struct Args {
    #[command(flatten)]
    drive: DriveArgs,

    #[command(flatten)]
    pipe: PipeArgs,

    /// Write a plain byte stream from stdin as one tape file, like mbuffer
    /// (`tar cf - DIR | reel-write --raw`); no manifests
    #[arg(long, conflicts_with_all = ["input", "output"])]
    raw: bool,

    /// With --raw: write after the end of data of whatever tape is in the
    /// drive, without reading its label or touching the catalog, as dd or
    /// mbuffer would (nothing on the tape is overwritten); the stream stops
    /// at the early warning
    #[arg(long, requires = "raw")]
    unlabelled: bool,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-write";
    const WRITES_METRICS: bool = true;
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    if args.unlabelled {
        return write::run_unlabelled(&args.common, &args.drive);
    }
    if args.raw {
        return write::run_raw(&args.common, &args.drive);
    }
    write::run(&args.common, &args.drive, &args.pipe)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
