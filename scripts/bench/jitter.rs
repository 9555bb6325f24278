//! `jitter`: a byte source with an uneven rate, for the pacing benchmark.
//! Writes `--bytes` bytes to stdout at an average of `--rate`, the rate
//! drawn again every `--period` uniformly within ±`--spread` of it (a
//! cache shared with other work, a network source). With `--pause-every`,
//! it also stops sending at random moments, on average that often, each
//! time for between half of `--pause` and all of it (a disk busy
//! elsewhere). Deterministic by `--seed`.
//!
//!   cargo run --release --example jitter -- --rate 28MB/s --spread 0.4 --bytes 600M

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Parser;
use reel_shared::tape::speed::Rate;
use reel_shared::units::{Interval, Size};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "28MB/s")]
    rate: Rate,
    #[arg(long, default_value_t = 0.4)]
    spread: f64,
    #[arg(long, default_value = "250ms")]
    period: Interval,
    #[arg(long, default_value = "600M")]
    bytes: Size,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    pause_every: Option<Interval>,
    #[arg(long, default_value = "2s")]
    pause: Interval,
}

fn main() {
    let a = Args::parse();
    let mut state = a.seed.max(1);
    let mut next = move || {
        // xorshift64: enough for a reproducible rate schedule.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let chunk = vec![0x5au8; 64 << 10];
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let (mut sent, mut due) = (0u64, Duration::ZERO);
    let period = a.period.0.as_secs_f64();
    while sent < a.bytes.0 {
        if let Some(every) = a.pause_every
            && next() < period / every.0.as_secs_f64()
        {
            due += a.pause.0.mul_f64(0.5 + 0.5 * next());
        }
        let rate = a.rate.0 as f64 * (1.0 + a.spread * (2.0 * next() - 1.0));
        let mut left = (rate * period) as u64;
        let step = Duration::from_secs_f64(chunk.len() as f64 / rate);
        while left > 0 && sent < a.bytes.0 {
            let n = (chunk.len() as u64).min(left).min(a.bytes.0 - sent) as usize;
            due += step.mul_f64(n as f64 / chunk.len() as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            if out.write_all(&chunk[..n]).is_err() {
                return;
            }
            sent += n as u64;
            left -= n as u64;
        }
    }
}
