//! Progress and telemetry of a write run: the line SIGUSR1 asks for, the
//! status line redrawn on a terminal, and the telemetry records appended to
//! `<log>/telemetry/<tape>-<start>.jsonl` (README, "Writing").

use std::fs::File;
use std::time::{Duration, Instant};

use crate::cli::CommonArgs;
use crate::config::Config;
use crate::units::Size;

/// Where the copy stands, for a progress line or a telemetry record.
#[derive(Clone, Copy)]
pub(super) struct Snapshot<'a> {
    pub(super) tape: &'a str,
    pub(super) file: u64,
    pub(super) position: Option<u64>,
    pub(super) fill: usize,
    pub(super) blocks: usize,
    pub(super) starved: u64,
}

/// The progress line and the telemetry records (README, "Writing").
pub(super) struct Progress {
    pub(super) started: Instant,
    last: Instant,
    last_bytes: u64,
    pub(super) total: u64,
    /// `<log>/telemetry/<tape>-<start>.jsonl`, a record every few seconds.
    pub(super) telemetry: Option<File>,
    last_record: Instant,
    record_bytes: u64,
    /// stderr is a terminal: a status line redrawn every second.
    pub(super) live: Option<Instant>,
}

const RECORD_EVERY: Duration = Duration::from_secs(5);
const LIVE_EVERY: Duration = Duration::from_secs(1);

impl Progress {
    pub(super) fn new(telemetry: Option<File>) -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            last_bytes: 0,
            total: 0,
            telemetry,
            last_record: now,
            record_bytes: 0,
            live: None,
        }
    }

    /// Redraw a status line on stderr while writing, when it is a terminal
    /// and nobody asked for quiet.
    pub(super) fn live(mut self, common: &CommonArgs) -> Progress {
        use std::io::IsTerminal;
        if common.quiet == 0 && std::io::stderr().is_terminal() {
            self.live = Some(Instant::now());
        }
        self
    }

    pub(super) fn live_due(&self) -> bool {
        self.live.is_some_and(|t| t.elapsed() >= LIVE_EVERY)
    }

    /// Erase the status line (before a log line or at the end).
    pub(super) fn clear(&self) {
        if self.live.is_some() {
            eprint!("\r\x1b[2K");
        }
    }

    pub(super) fn record_due(&self) -> bool {
        self.telemetry.is_some() && self.last_record.elapsed() >= RECORD_EVERY
    }

    /// Append one telemetry record; a record that cannot be written is
    /// reported once and telemetry stops (the tape must not wait for it).
    pub(super) fn record(&mut self, at: &Snapshot) {
        use std::io::Write as _;
        let now = Instant::now();
        let secs = now.duration_since(self.last_record).as_secs_f64().max(1e-3);
        let line = serde_json::json!({
            "time": crate::time::Utc::now().rfc3339(),
            "elapsed_s": now.duration_since(self.started).as_secs_f64(),
            "tape": at.tape,
            "file": at.file,
            "block": at.position,
            "bytes": self.total,
            "rate": ((self.total - self.record_bytes) as f64 / secs) as u64,
            "ring_fill": at.fill as f64 / at.blocks.max(1) as f64,
            "starvations": at.starved,
        });
        self.last_record = now;
        self.record_bytes = self.total;
        if let Some(f) = &mut self.telemetry
            && let Err(e) = writeln!(f, "{line}")
        {
            log::warn!("telemetry stops: {e}");
            self.telemetry = None;
        }
    }

    pub(super) fn line(&mut self, at: &Snapshot) -> String {
        let now = Instant::now();
        let current = (self.total - self.last_bytes) as f64
            / now.duration_since(self.last).as_secs_f64().max(1e-3);
        let average = self.total as f64 / now.duration_since(self.started).as_secs_f64().max(1e-3);
        self.last = now;
        self.last_bytes = self.total;
        format!(
            "{} written, {}/s now, {}/s average, ring {}% full, starved {} time(s), tape {} file {} block {}",
            Size(self.total).human(),
            Size(current as u64).human(),
            Size(average as u64).human(),
            at.fill * 100 / at.blocks.max(1),
            at.starved,
            at.tape,
            at.file,
            at.position.map_or("?".into(), |p| p.to_string())
        )
    }
}

/// `<log>/telemetry/<LABEL>-<start>.jsonl` opened for appending (README,
/// "Writing"); none, with a warning, when it cannot be.
pub(super) fn telemetry(config: &Config, label: &str) -> Option<File> {
    let dir = config.paths.log.join("telemetry");
    let path = dir.join(format!(
        "{label}-{}.jsonl",
        crate::time::Utc::now().compact()
    ));
    std::fs::create_dir_all(&dir)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        })
        .map_err(|e| log::warn!("no telemetry: {}: {e}", path.display()))
        .ok()
}
