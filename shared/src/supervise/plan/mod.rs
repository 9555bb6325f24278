//! What the supervisor's daemon decides at each tick, as a pure function of
//! what it sees ([`World`]) and the time: which stages to start, which work
//! it holds back on purpose and why. The daemon gathers the world (queue
//! listings, cache usage, its children, backoffs), calls [`plan`], and
//! carries the answer out; nothing here reads a file, a clock or a process.
//!
//! The rules (README, "The supervisor"):
//! - scan a stream when its time is up (its schedule, or a change seen);
//! - stage what was scanned unless the cache is above `high_water` (and,
//!   once there, until it is back below `low_water`);
//! - pack when an archive's worth is staged, or the oldest staged item has
//!   waited `max_wait`, and the cache has room for the oldest item's
//!   archives;
//! - on each free drive, verify what was written first (it frees the
//!   cache), else write when `tape_start_threshold` is packed or the oldest
//!   packed item has waited `max_wait`, no more writers than packed items;
//! - one user per drive, one instance of each other job; a job in backoff
//!   waits for it, and a job whose last clean run left its input queue as
//!   it is now is not run again until the queue changes or
//!   `retry.backoff` has passed.
//!
//! `--once` uses the same rules with [`Once`]: it packs and writes what
//! waits, below the thresholds, as soon as nothing more can come to it or
//! the cache is full, and verifies only when nothing is left to write (one
//! pass of the tape) or the cache is full.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::units::Size;

/// What one queue holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueueView {
    pub ids: Vec<String>,
    /// Bytes of content its items carry.
    pub bytes: u64,
    /// When its oldest item was written.
    pub oldest: Option<SystemTime>,
    /// The cache the first (oldest) item needs (`fsutil::cache_need`).
    pub first_need: u64,
}

/// A child the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub job: String,
    pub stage: &'static str,
    pub drive: Option<String>,
}

/// Everything a tick's decisions depend on.
pub struct World<'a> {
    pub config: &'a Config,
    /// The monotonic clock (scan times, backoffs) and the wall clock (the
    /// age of queue items), both "now".
    pub now: Instant,
    pub wall: SystemTime,
    /// Per stream: when its next scan is due.
    pub next_scan: &'a BTreeMap<String, Instant>,
    /// The cache file system: bytes used, bytes in all.
    pub cache: (u64, u64),
    /// Staging was held back by the water marks at the last tick.
    pub throttled: bool,
    pub scanned: &'a QueueView,
    pub staged: &'a QueueView,
    pub packed: &'a QueueView,
    pub written: &'a QueueView,
    pub children: &'a [Child],
    /// Per job in backoff: until when.
    pub backoff: &'a HashMap<String, Instant>,
    /// Per job: the input listing its last clean run left, and when.
    pub idle: &'a HashMap<String, (Vec<String>, Instant)>,
    /// A `--once` run, and how far it has got; `None` for the daemon.
    pub once: Option<Once>,
}

/// How far a `--once` run has got: which queues nothing more can reach.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Once {
    /// Every scan has run and nothing is being scanned or staged: what is
    /// staged is all there will be, packed whatever its size.
    pub staged_final: bool,
    /// Nor is anything being packed: what is packed is written whatever
    /// its size.
    pub packed_final: bool,
    /// The run came to a point where nothing ran and nothing could start
    /// (a stage found the cache full, say): from then on what waits goes
    /// below the thresholds, and the tape is read back to free the cache.
    pub stalled: bool,
}

/// A stage to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// `reel-scan --stream <stream>`; its next scan is due at `next`.
    Scan {
        stream: String,
        next: Instant,
    },
    Stage,
    Pack,
    Verify {
        drive: String,
    },
    Write {
        drive: String,
    },
}

impl Start {
    /// The program that does it, the drive it takes, and its arguments.
    pub fn program(&self) -> (&'static str, Option<String>, Vec<String>) {
        match self {
            Start::Scan { stream, .. } => {
                ("reel-scan", None, vec!["--stream".into(), stream.clone()])
            }
            Start::Stage => ("reel-stage", None, Vec::new()),
            Start::Pack => ("reel-pack", None, Vec::new()),
            Start::Verify { drive } => (
                "reel-verify",
                Some(drive.clone()),
                vec!["--drive".into(), drive.clone()],
            ),
            Start::Write { drive } => (
                "reel-write",
                Some(drive.clone()),
                vec!["--drive".into(), drive.clone()],
            ),
        }
    }

    /// The job's name, as the daemon and `reel status` know it.
    pub fn job(&self) -> String {
        match self {
            Start::Scan { stream, .. } => format!("scan:{stream}"),
            Start::Stage => "stage".into(),
            Start::Pack => "pack".into(),
            Start::Verify { .. } => "verify".into(),
            Start::Write { drive } => format!("write:{drive}"),
        }
    }
}

/// A tick's decisions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub start: Vec<Start>,
    /// Jobs with work waiting that are held back on purpose, and why.
    pub held: BTreeMap<String, String>,
    /// Staging is held back by the water marks (for the next tick).
    pub throttled: bool,
}

/// What to start now.
pub fn plan(w: &World) -> Plan {
    let mut p = Plan::default();
    // Jobs running, and those this plan starts.
    let mut busy: HashSet<String> = w.children.iter().map(|c| c.job.clone()).collect();
    let may_start = |busy: &HashSet<String>, job: &str, ids: &[String]| -> bool {
        if busy.contains(job) {
            return false;
        }
        if w.backoff.get(job).is_some_and(|until| w.now < *until) {
            return false;
        }
        !w.idle.get(job).is_some_and(|(left, when)| {
            left == ids
                && w.now.saturating_duration_since(*when) < w.config.supervisor.retry.backoff.0
        })
    };
    let waited = |v: &QueueView| {
        v.oldest.is_some_and(|t| {
            w.wall.duration_since(t).unwrap_or(Duration::ZERO) >= w.config.supervisor.max_wait.0
        })
    };
    // Scans: no input queue, only a running scan or a backoff holds one.
    for (stream, due) in w.next_scan {
        let job = format!("scan:{stream}");
        if *due > w.now || !may_start(&busy, &job, &[]) {
            continue;
        }
        let Some(s) = w.config.streams.iter().find(|x| &x.name == stream) else {
            continue;
        };
        let every = s.schedule.unwrap_or(w.config.supervisor.scan_interval);
        busy.insert(job);
        p.start.push(Start::Scan {
            stream: stream.clone(),
            next: w.now + every.0,
        });
    }
    // Staging.
    let (used, total) = w.cache;
    let high = w.config.cache.high_water.bytes(total);
    let low = w.config.cache.low_water.bytes(total);
    p.throttled = used >= high || (w.throttled && used >= low);
    if !w.scanned.ids.is_empty() {
        if p.throttled {
            p.held.insert(
                "stage".into(),
                format!(
                    "the cache is above high_water ({} of {} used) until it drains below low_water",
                    Size(used).human(),
                    Size(total).human()
                ),
            );
        } else if may_start(&busy, "stage", &w.scanned.ids) {
            busy.insert("stage".into());
            p.start.push(Start::Stage);
        }
    }
    // Packing.
    let mut cache_full = p.throttled || w.once.is_some_and(|o| o.stalled);
    let archive = w.config.archive_size().0;
    if !w.staged.ids.is_empty() {
        let free = total.saturating_sub(used);
        // `--once` packs what waits when nothing more can come, or when
        // staging waits for the cache.
        let all = w
            .once
            .is_some_and(|o| o.staged_final || o.stalled || p.throttled);
        if w.staged.bytes < archive && !waited(w.staged) && !all {
            let why = below(
                w,
                "staged",
                w.staged,
                "an archive (pack.archive_size)",
                archive,
            );
            p.held.insert("pack".into(), why);
        } else if free < w.staged.first_need {
            cache_full = true;
            p.held.insert(
                "pack".into(),
                format!(
                    "no room in the cache for the oldest staged item's archives ({} needed, {} free): waits for writing and verifying to free it",
                    Size(w.staged.first_need).human(),
                    Size(free).human()
                ),
            );
        } else if may_start(&busy, "pack", &w.staged.ids) {
            busy.insert("pack".into());
            p.start.push(Start::Pack);
        }
    }
    // The drives: verify first (it frees the cache), then write.
    let mut writers = w
        .children
        .iter()
        .filter(|c| c.stage == "reel-write")
        .count();
    // `--once` reads the tape back in one pass after its last write,
    // unless the cache must be freed first.
    let verify_now = match w.once {
        None => true,
        Some(o) => cache_full || (o.packed_final && w.packed.ids.is_empty() && writers == 0),
    };
    for drive in w.config.drives.iter().map(|d| &d.name) {
        if w.children.iter().any(|c| c.drive.as_ref() == Some(drive)) {
            continue;
        }
        if !w.written.ids.is_empty() && verify_now && may_start(&busy, "verify", &w.written.ids) {
            busy.insert("verify".into());
            p.start.push(Start::Verify {
                drive: drive.clone(),
            });
            continue;
        }
        let job = format!("write:{drive}");
        if w.packed.ids.len() <= writers {
            continue;
        }
        let threshold = w.config.tape_start_threshold().0;
        // And writes what waits when nothing more can come, or when the
        // cache must be freed.
        let all = w.once.is_some_and(|o| o.packed_final || cache_full);
        if w.packed.bytes < threshold && !waited(w.packed) && !all {
            let why = below(
                w,
                "packed",
                w.packed,
                "supervisor.tape_start_threshold",
                threshold,
            );
            p.held.insert(job, why);
        } else if may_start(&busy, &job, &w.packed.ids) {
            busy.insert(job);
            writers += 1;
            p.start.push(Start::Write {
                drive: drive.clone(),
            });
        }
    }
    p
}

/// Why a queue's work waits below its threshold, and until when (a time,
/// not a countdown: the status file changes only when this does).
fn below(w: &World, queue: &str, v: &QueueView, threshold: &str, bytes: u64) -> String {
    let until = v
        .oldest
        .map(|t| crate::time::Utc::from_system(t + w.config.supervisor.max_wait.0).rfc3339())
        .unwrap_or_else(|| "?".into());
    format!(
        "{} {queue}, below {threshold} ({}): waits until {until} (supervisor.max_wait after the oldest)",
        Size(v.bytes).human(),
        Size(bytes).human(),
    )
}

#[cfg(test)]
mod tests;
