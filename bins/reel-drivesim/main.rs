//! `reel-drivesim`: a sink that behaves like an LTO drive, for measuring
//! how often a writer makes a drive shoe-shine, without a drive.
//!
//! It reads stdin to its end in blocks, takes each block as fast as the
//! modelled drive would (README, "Simulated drive speed"; the rules are in
//! `reel_shared::tape::speed`), and throws the data away. Because it paces
//! itself in real time, the program upstream feels the backpressure a drive
//! gives, and its own buffering decides whether the drive keeps streaming.
//! At the end it reports on stderr what the drive did (bytes, time,
//! effective rate, backhitches, time repositioning, speeds used), and with
//! `--json` prints the same as one JSON object on stdout.
//!
//! Measuring a pipeline against the same modelled LTO-9 drive:
//!
//! ```text
//! tar cf - DIR | mbuffer -q -m 1G -P 90 -s 256k | reel-drivesim --model lto9 --json > mbuffer.json
//! tar cf - DIR | dd bs=256k iflag=fullblock 2>/dev/null | reel-drivesim --json > dd.json
//! kill -USR1 $(pidof reel-drivesim)      # one progress line on stderr, as dd does
//! ```
//!
//! A drive scaled down for quick tests takes its figures from flags; there
//! is no time-scale factor, just small numbers:
//!
//! ```text
//! reel-drivesim --native 4MB/s --min 2MB/s --steps 3 --buffer 2M --reposition 50ms < file
//! ```
//!
//! Exit codes: 0 at the end of input, 64 for a bad command line or
//! parameter file, 66 when the parameter file is missing, 74 when stdin
//! cannot be read.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use clap::builder::PossibleValuesParser;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::exit::{Exit, ExitError};
use reel_shared::tape::speed::{
    self, DriveModel, Fill, ModelStats, Motion, PRESETS, Paced, ProgressSignal, Rate, RealClock,
    SpeedParams,
};
use reel_shared::units::{Interval, Size};

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

    /// Top speed, like 408MB/s
    #[arg(long, value_name = "RATE")]
    native: Option<Rate>,

    /// Lowest speed-matching speed, like 177MB/s
    #[arg(long, value_name = "RATE")]
    min: Option<Rate>,

    /// Number of speeds, evenly spaced from --min to --native
    #[arg(long, value_name = "N")]
    steps: Option<u32>,

    /// The drive's buffer, like 1G
    #[arg(long, value_name = "SIZE")]
    buffer: Option<Size>,

    /// What one backhitch costs, like 3s or 50ms
    #[arg(long, value_name = "DURATION")]
    reposition: Option<Interval>,

    /// Buffer level at which the tape starts moving, like 50% or 512M
    #[arg(long, value_name = "FILL")]
    start: Option<Fill>,

    /// Buffer level below which the drive slows under the host's rate (0% never)
    #[arg(long, value_name = "FILL")]
    low_water: Option<Fill>,

    /// Over how long the drive measures the host's rate
    #[arg(long, value_name = "DURATION")]
    window: Option<Interval>,

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

/// The largest block accepted: far above any tape block size, and small
/// enough to allocate without thought.
const MAX_BLOCK: u64 = 64 << 20;

fn usage(message: impl Into<String>) -> anyhow::Error {
    ExitError::new(Exit::Usage, message).into()
}

/// The preset or parameter file, with the flags laid over it; and a name
/// for it in the summary.
fn settings(args: &Args) -> anyhow::Result<(SpeedParams, String)> {
    let (mut p, mut name) = match &args.params {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let p: SpeedParams = serde_json::from_str(&text)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            (p, path.display().to_string())
        }
        None => {
            let p = speed::preset(&args.model)
                .ok_or_else(|| usage(format!("--model: no preset {:?}", args.model)))?;
            (p, args.model.clone())
        }
    };
    let before = p.clone();
    if let Some(v) = args.native {
        p.native = v;
    }
    if let Some(v) = args.min {
        p.min = v;
    }
    if let Some(v) = args.steps {
        p.steps = v;
    }
    if let Some(v) = args.buffer {
        p.buffer = v;
    }
    if let Some(v) = args.reposition {
        p.reposition = v;
    }
    if let Some(v) = args.start {
        p.start = v;
    }
    if let Some(v) = args.low_water {
        p.low_water = v;
    }
    if let Some(v) = args.window {
        p.window = v;
    }
    if p != before {
        name.push_str(", adjusted");
    }
    p.validate().map_err(|e| {
        usage(format!(
            "drive parameters: {e} (set with --{} or in the --params file)",
            e.key.replace('_', "-")
        ))
    })?;
    Ok((p, name))
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let (params, name) = settings(&args)?;
    if args.print_params {
        reel_shared::outln!("{}", serde_json::to_string(&params)?)?;
        return Ok(Exit::Ok);
    }
    let block = args.block_size.0;
    if block == 0 || block > MAX_BLOCK {
        return Err(usage(format!(
            "--block-size: {} is not between 1 and {}",
            args.block_size,
            Size(MAX_BLOCK)
        )));
    }
    log::debug!(
        "{name}: {} steps from {} to {}, buffer {}, reposition {}, start at {}",
        params.steps,
        params.min,
        params.native,
        params.buffer,
        params.reposition,
        params.start
    );
    let model = DriveModel::new(params).map_err(|e| usage(e.to_string()))?;
    let signal = ProgressSignal::install().context("catching SIGUSR1")?;
    let mut paced = Paced::new(model, RealClock::start());
    let stats = speed::sink(
        &mut io::stdin().lock(),
        block as usize,
        &mut paced,
        |paced| {
            if signal.requested() {
                eprintln!("{}: {}", Args::NAME, progress(paced));
            }
        },
    )
    .context("reading stdin")?;
    summary(&name, paced.model().params(), &stats);
    if args.json {
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, &stats).context("writing stdout")?;
        writeln!(out).context("writing stdout")?;
        out.flush().context("writing stdout")?;
    }
    Ok(Exit::Ok)
}

/// One line on where the run stands, for SIGUSR1.
fn progress(paced: &mut Paced<RealClock>) -> String {
    let s = paced.stats_now();
    let model = paced.model();
    let tape = match model.motion() {
        Motion::Stopped { .. } => "tape stopped".to_string(),
        Motion::Repositioning { .. } => "tape repositioning".to_string(),
        Motion::Streaming { speed } => format!("tape at {}", speed.human()),
    };
    let fill = model.level() as f64 * 100.0 / model.params().buffer.0 as f64;
    format!(
        "{} in {:.1}s, {} on tape, {} average; {tape}, buffer {fill:.0}% full; {} backhitches ({:.1}s repositioning)",
        Size(s.bytes).human(),
        s.elapsed.as_secs_f64(),
        Size(s.written).human(),
        s.effective_rate.human(),
        s.backhitches,
        s.repositioning.as_secs_f64(),
    )
}

fn summary(name: &str, params: &SpeedParams, s: &ModelStats) {
    log::info!(
        "{} in {:.1}s ({} writes): {} effective, the drive ({name}) streams at up to {}",
        Size(s.bytes).human(),
        s.elapsed.as_secs_f64(),
        s.writes,
        s.effective_rate.human(),
        params.native.human(),
    );
    log::info!(
        "{} backhitches, {:.1}s repositioning, {:.1}s stopped, {:.1}s streaming, {} speed changes",
        s.backhitches,
        s.repositioning.as_secs_f64(),
        s.stopped.as_secs_f64(),
        s.streaming.as_secs_f64(),
        s.step_changes,
    );
    let used: Vec<String> = s
        .steps
        .iter()
        .rev()
        .filter(|st| st.time > Duration::ZERO)
        .map(|st| format!("{} {:.1}s", st.speed.human(), st.time.as_secs_f64()))
        .collect();
    if !used.is_empty() {
        log::info!("speeds used: {}", used.join(", "));
    }
}

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
