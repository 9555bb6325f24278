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
    /// Starvations of the archives streamed before the current one.
    pub(super) starved_before: u64,
    /// `<log>/telemetry/<tape>-<start>.jsonl`: a `start` record, one every
    /// few seconds, an `end` record (when the run leaves the tape or ends).
    telemetry: Option<File>,
    /// The telemetry session: its tape, when it began, the run's bytes
    /// then, and the last ring fill seen.
    session: Option<(String, Instant, u64)>,
    last_fill: f64,
    last_record: Instant,
    record_bytes: u64,
    /// stderr is a terminal: a status line redrawn every second.
    pub(super) live: Option<Instant>,
}

const RECORD_EVERY: Duration = Duration::from_secs(5);
const LIVE_EVERY: Duration = Duration::from_secs(1);

impl Progress {
    /// Progress of a run that starts on `tape`, its telemetry in `telemetry`.
    pub(super) fn new(telemetry: Option<File>, tape: &str) -> Progress {
        let now = Instant::now();
        let mut p = Progress {
            started: now,
            last: now,
            last_bytes: 0,
            total: 0,
            starved_before: 0,
            telemetry: None,
            session: None,
            last_fill: 0.0,
            last_record: now,
            record_bytes: 0,
            live: None,
        };
        p.switch(telemetry, tape);
        p
    }

    /// The run goes on on `tape`: the current telemetry session ends (its
    /// `end` record), the next begins in `telemetry` (its `start` record).
    pub(super) fn switch(&mut self, telemetry: Option<File>, tape: &str) {
        self.end_session();
        self.telemetry = telemetry;
        let now = Instant::now();
        self.session = Some((tape.to_string(), now, self.total));
        self.last_record = now;
        self.record_bytes = self.total;
        self.event("start", 0);
    }

    /// The `end` record of the current session: its exact bytes, time and
    /// average rate.
    fn end_session(&mut self) {
        if let Some((_, began, bytes0)) = &self.session {
            let bytes = self.total - bytes0;
            let secs = began.elapsed().as_secs_f64().max(1e-3);
            self.event("end", (bytes as f64 / secs) as u64);
        }
        self.session = None;
    }

    /// A `start` or `end` record.
    fn event(&mut self, event: &str, rate: u64) {
        let Some((tape, began, bytes0)) = &self.session else {
            return;
        };
        let line = serde_json::json!({
            "event": event,
            "time": crate::time::Utc::now().rfc3339(),
            "elapsed_s": began.elapsed().as_secs_f64(),
            "tape": tape,
            "bytes": self.total - bytes0,
            "rate": rate,
            "ring_fill": self.last_fill,
            "starvations": self.starved_before,
        });
        self.write(&line);
    }

    fn write(&mut self, line: &serde_json::Value) {
        use std::io::Write as _;
        // One write() per line (formatting straight into the file made
        // one per token), so that a reader never sees part of a line.
        if let Some(f) = &mut self.telemetry
            && let Err(e) = f.write_all(format!("{line}\n").as_bytes())
        {
            log::warn!("telemetry stops: {e}");
            self.telemetry = None;
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

    /// What the ring looked like at the end of an archive (for the `end`
    /// record), and its starvations, counted from then on.
    pub(super) fn archive_done(&mut self, fill: f64, starved: u64) {
        self.last_fill = fill;
        self.starved_before += starved;
    }

    pub(super) fn record_due(&self) -> bool {
        self.telemetry.is_some() && self.last_record.elapsed() >= RECORD_EVERY
    }

    /// Append one telemetry record; a record that cannot be written is
    /// reported once and telemetry stops (the tape must not wait for it).
    pub(super) fn record(&mut self, at: &Snapshot) {
        let now = Instant::now();
        let secs = now.duration_since(self.last_record).as_secs_f64().max(1e-3);
        let (began, bytes0) = self
            .session
            .as_ref()
            .map_or((self.started, 0), |(_, b, n)| (*b, *n));
        self.last_fill = at.fill as f64 / at.blocks.max(1) as f64;
        let line = serde_json::json!({
            "time": crate::time::Utc::now().rfc3339(),
            "elapsed_s": now.duration_since(began).as_secs_f64(),
            "tape": at.tape,
            "file": at.file,
            "block": at.position,
            "bytes": self.total - bytes0,
            "rate": ((self.total - self.record_bytes) as f64 / secs) as u64,
            "ring_fill": self.last_fill,
            "starvations": self.starved_before + at.starved,
        });
        self.last_record = now;
        self.record_bytes = self.total;
        self.write(&line);
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

impl Drop for Progress {
    /// However the run ends, its telemetry says where it stopped.
    fn drop(&mut self) {
        self.end_session();
    }
}

/// `<log>/telemetry/<LABEL>-<start>.jsonl` opened for appending (README,
/// "Writing"); none, with a warning, when it cannot be.
pub(super) fn telemetry(config: &Config, label: &str) -> Option<File> {
    let dir = config.paths.log.join("telemetry");
    let stem = format!("{label}-{}", crate::time::Utc::now().compact());
    if let Err(e) = std::fs::create_dir_all(&dir) {
        log::warn!("no telemetry: {}: {e}", dir.display());
        return None;
    }
    // One file per session: a second run on the same tape within the same
    // second gets `-2`, and so on (they sort after the first).
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}.jsonl")
        } else {
            format!("{stem}-{n}.jsonl")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => return Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                log::warn!("no telemetry: {}: {e}", path.display());
                return None;
            }
        }
    }
    log::warn!("no telemetry: {} has 999 sessions of {stem}", dir.display());
    None
}
