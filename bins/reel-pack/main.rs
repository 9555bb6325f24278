//! `reel-pack`: pack staged files into uncompressed pax tar archives, each
//! up to `archive_size`, with a per-member index (docs/tape-format.md §4).
//!
//! For each `staged` item: members are ordered (`pack.order`), cut into
//! archives, and each archive is written to `<cache>/archives/<id>.tar`
//! (under a temporary name, renamed when complete): `REEL-ARCHIVE.txt`
//! first, the members, `REEL-INDEX.jsonl` last, padded to whole tape blocks.
//! Every staged copy's SHA-256 is checked in the one read that packs it; a
//! mismatch fails the item (exit 65): the cache must not silently corrupt a
//! backup. One `packed` item per archive is published, then the staged item
//! is finished.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, PipeArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::pack;

/// Pack staged files into pax tar archives with a per-member index
#[derive(Parser, Debug)]
#[command(name = "reel-pack", version, long_about = None)]
struct Args {
    #[command(flatten)]
    pipe: PipeArgs,

    /// Write the archive itself to stdout (one archive per input item, for
    /// `reel-pack --raw | reel-write --raw`); needs --manifest
    #[arg(long, requires = "manifest", conflicts_with = "output")]
    raw: bool,

    /// With --raw: where to write the packed manifest
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-pack";
    const WRITES_METRICS: bool = true;
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.load_config()?;
    let from_stdin = args.pipe.from_stdin()?;
    let to_stdout = args.pipe.to_stdout()?;
    let settings = pack::Settings::from_config(&config, args.raw, args.manifest);
    pack::run(&config, &settings, from_stdin, to_stdout)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
