//! `reel-scan`: find what is not yet verified on tape and queue it in
//! `scanned/`. The work is `reel_shared::scan`; this file parses the flags.

use std::path::PathBuf;

use clap::Parser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::scan::{self, Options};

/// Find files new or changed since they were last verified on tape
#[derive(Parser, Debug)]
#[command(name = "reel-scan", version, long_about = None)]
struct Args {
    /// Scan these streams from pipeline.toml (default: all)
    #[arg(long, value_name = "NAME")]
    stream: Vec<String>,

    /// Scan these directories (a directory that is a stream's source uses that stream)
    #[arg(value_name = "SOURCE", conflicts_with = "stream")]
    sources: Vec<PathBuf>,

    /// Also compare content hashes of files whose size and mtime match
    #[arg(long)]
    checksum: bool,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    output: Option<String>,

    /// Cut a manifest after this many records (it is also cut at pack.archive_size bytes)
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    batch_records: u64,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-scan";
    const WRITES_METRICS: bool = true;
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.load_config()?;
    let options = Options {
        streams: args.stream,
        sources: args.sources,
        checksum: args.checksum,
        to_stdout: cli::dash_flag("--out", args.output.as_deref())?,
        batch_records: args.batch_records,
    };
    scan::run(&config, &options)
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
