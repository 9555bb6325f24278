//! `reel-drivesim`: a sink that behaves like an LTO drive, for measuring
//! how often a writer makes a drive shoe-shine, without a drive. The work,
//! and how to use it, is `reel_shared::tape::speed::sim`; this file parses
//! the flags.

use std::path::PathBuf;

use clap::Parser;
use clap::builder::PossibleValuesParser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::Exit;
use reel_shared::tape::speed::PRESETS;
use reel_shared::tape::speed::sim::{self, Options, Overrides};
use reel_shared::units::Size;

/// A sink that behaves like an LTO drive: reads stdin at the pace the
/// modelled drive would take it, then reports backhitches and rates.
#[derive(Parser, Debug)]
#[command(name = "reel-drivesim", version)]
struct Args {
    /// The drive to model
    #[arg(long, value_name = "NAME", default_value = "lto9",
          value_parser = PossibleValuesParser::new(PRESETS.iter().copied()))]
    model: String,

    /// Take every parameter from this JSON file instead of a preset (fields: native, min, steps, buffer, reposition, and optionally start, low_water, window)
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    params: Option<PathBuf>,

    #[command(flatten)]
    overrides: Overrides,

    /// Bytes per write the drive receives: stdin is read in blocks this large
    #[arg(long, value_name = "SIZE", default_value = "256K")]
    block_size: Size,

    /// Print the final statistics as one JSON object on stdout
    #[arg(long)]
    json: bool,

    /// Print the drive's parameters (after --model, --params and the
    /// flags) as JSON, the form a virtual tape's meta.json `speed` takes,
    /// and exit without reading stdin
    #[arg(long)]
    print_params: bool,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-drivesim";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    sim::run(&Options {
        model: args.model,
        params: args.params,
        overrides: args.overrides,
        block_size: args.block_size,
        json: args.json,
        print_params: args.print_params,
    })
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
