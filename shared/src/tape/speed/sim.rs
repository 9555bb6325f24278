//! `reel-drivesim`'s work: a sink that behaves like an LTO drive, for measuring
//! how often a writer makes a drive shoe-shine, without a drive.
//!
//! It reads stdin to its end in blocks, takes each block as fast as the
//! modelled drive would (README, "Simulated drive speed"; the rules are in
//! [`super`]), and throws the data away. Because it paces
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

use super::{
    DriveModel, Fill, ModelStats, Motion, Paced, ProgressSignal, Rate, RealClock, SpeedParams,
};
use crate::exit::{Exit, ExitError};
use crate::units::{Interval, Size};

/// Flags laid over a preset or a parameter file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Overrides {
    /// Top speed, like 408MB/s
    #[arg(long, value_name = "RATE")]
    pub native: Option<Rate>,

    /// Lowest speed-matching speed, like 177MB/s
    #[arg(long, value_name = "RATE")]
    pub min: Option<Rate>,

    /// Number of speeds, evenly spaced from --min to --native
    #[arg(long, value_name = "N")]
    pub steps: Option<u32>,

    /// The drive's buffer, like 1G
    #[arg(long, value_name = "SIZE")]
    pub buffer: Option<Size>,

    /// What one backhitch costs, like 3s or 50ms
    #[arg(long, value_name = "DURATION")]
    pub reposition: Option<Interval>,

    /// Buffer level at which the tape starts moving, like 50% or 512M
    #[arg(long, value_name = "FILL")]
    pub start: Option<Fill>,

    /// Buffer level below which the drive slows under the host's rate (0% never)
    #[arg(long, value_name = "FILL")]
    pub low_water: Option<Fill>,

    /// Over how long the drive measures the host's rate
    #[arg(long, value_name = "DURATION")]
    pub window: Option<Interval>,
}

/// What `reel-drivesim` was asked (its flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// A preset's name.
    pub model: String,
    /// A JSON parameter file, instead of the preset.
    pub params: Option<PathBuf>,
    /// Flags laid over either.
    pub overrides: Overrides,
    /// Bytes per read of stdin (per write the drive receives).
    pub block_size: Size,
    /// The final statistics as JSON on stdout.
    pub json: bool,
    /// Print the parameters and exit without reading stdin.
    pub print_params: bool,
}

/// The largest block accepted: far above any tape block size, and small
/// enough to allocate without thought.
const MAX_BLOCK: u64 = 64 << 20;

fn usage(message: impl Into<String>) -> anyhow::Error {
    ExitError::new(Exit::Usage, message).into()
}

/// The preset or parameter file, with the flags laid over it; and a name
/// for it in the summary.
fn settings(o: &Options) -> anyhow::Result<(SpeedParams, String)> {
    let (mut p, mut name) = match &o.params {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let p: SpeedParams = serde_json::from_str(&text)
                .map_err(|e| usage(format!("{}: {e}", path.display())))?;
            (p, path.display().to_string())
        }
        None => {
            let p = super::preset(&o.model)
                .ok_or_else(|| usage(format!("--model: no preset {:?}", o.model)))?;
            (p, o.model.clone())
        }
    };
    let before = p.clone();
    if let Some(v) = o.overrides.native {
        p.native = v;
    }
    if let Some(v) = o.overrides.min {
        p.min = v;
    }
    if let Some(v) = o.overrides.steps {
        p.steps = v;
    }
    if let Some(v) = o.overrides.buffer {
        p.buffer = v;
    }
    if let Some(v) = o.overrides.reposition {
        p.reposition = v;
    }
    if let Some(v) = o.overrides.start {
        p.start = v;
    }
    if let Some(v) = o.overrides.low_water {
        p.low_water = v;
    }
    if let Some(v) = o.overrides.window {
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

/// Take stdin as the drive `o` describes would, then report.
pub fn run(o: &Options) -> anyhow::Result<Exit> {
    let (params, name) = settings(o)?;
    if o.print_params {
        crate::outln!("{}", serde_json::to_string(&params)?)?;
        return Ok(Exit::Ok);
    }
    let block = o.block_size.0;
    if block == 0 || block > MAX_BLOCK {
        return Err(usage(format!(
            "--block-size: {} is not between 1 and {}",
            o.block_size,
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
    let stats = super::sink(
        &mut io::stdin().lock(),
        block as usize,
        &mut paced,
        |paced| {
            if signal.requested() {
                eprintln!("reel-drivesim: {}", progress(paced));
            }
        },
    )
    .context("reading stdin")?;
    summary(&name, paced.model().params(), &stats);
    if o.json {
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

/// What the drive did, on stderr.
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
