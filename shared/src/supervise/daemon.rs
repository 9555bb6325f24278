//! The daemon: scans each stream on its schedule and when inotify sees a
//! change, and runs each stage as a child process when its input queue
//! holds enough work (README, "The supervisor"; docs/exit-codes.md §4).
//!
//! Rules, checked every half second (decided by [`plan`](super::plan)):
//! - scan a stream when its interval is up, or a few seconds after inotify
//!   saw a change under it (`min_age` later, so the new files qualify);
//! - stage what was scanned unless the cache is above `high_water` (and,
//!   once there, until it is back below `low_water`);
//! - pack when an archive's worth is staged, or the oldest staged item has
//!   waited `max_wait`, and the cache has room for one archive;
//! - write when `tape_start_threshold` is packed or the oldest packed item
//!   has waited `max_wait`: one `reel-write` per free drive;
//! - verify what was written, on a free drive (`[verify] when` is the
//!   verifier's business);
//! - one user per drive, one instance of each other stage; a stage that
//!   ended leaving its queue as it was is not rerun until the queue
//!   changes or `retry.backoff` has passed.
//!
//! Exit codes (docs/exit-codes.md §4) drive the reaction: retry with backoff (74),
//! retry later (75), wait for a tape and tell the operator (69), report
//! failed items (65), stop (64, 66, 78).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use crate::cli::CommonArgs;
use crate::config::{Config, Source};
use crate::exit::Exit;
use crate::spool::{Queue, Spool};
use crate::supervise::{self, QueueView, Start};
use crate::units::Size;
use anyhow::Context;
use nix::sys::signal::Signal;
use serde_json::json;

use super::child::{self, Outcome, Problems, Running};
use super::inotify::Watcher;

const TICK: Duration = Duration::from_millis(500);
/// Quiet time after an inotify event before the scan starts.
const SETTLE: Duration = Duration::from_secs(2);

/// A job's retry state after a failed run.
struct Backoff {
    failures: u32,
    until: Instant,
    told: bool,
}

pub struct Signals {
    term: crate::signals::Watched,
    int: crate::signals::Watched,
    hup: crate::signals::Watched,
    usr1: crate::signals::Watched,
}

impl Signals {
    pub fn install() -> anyhow::Result<Signals> {
        use crate::signals::watch;
        Ok(Signals {
            term: watch(Signal::SIGTERM)?,
            int: watch(Signal::SIGINT)?,
            hup: watch(Signal::SIGHUP)?,
            usr1: watch(Signal::SIGUSR1)?,
        })
    }
}

struct Daemon {
    common: CommonArgs,
    config: Config,
    spool: Spool,
    children: Vec<Running>,
    /// Per stream: when its next scan is due.
    next_scan: BTreeMap<String, Instant>,
    watcher: Option<Watcher>,
    views: HashMap<Queue, QueueView>,
    /// Per job: the input listing its last clean run left, and when.
    idle: HashMap<String, (Vec<String>, Instant)>,
    backoff: HashMap<String, Backoff>,
    problems: Problems,
    /// Full tapes already told of.
    full: Vec<String>,
    /// Drives' TapeAlert flags already told of.
    alerts_told: BTreeMap<String, u64>,
    /// Staging is held back by the cache water marks.
    throttled: bool,
    /// Per job with work waiting that the last round did not start on
    /// purpose: why (below a threshold, no room). `reel status` shows it;
    /// it also tells a watcher that a round saw the work and chose to wait.
    held: BTreeMap<String, String>,
    started: SystemTime,
    stopping: bool,
    exit: Exit,
    status_text: String,
}

pub fn run(common: &CommonArgs, config: Config) -> anyhow::Result<Exit> {
    let spool = config.prepare_dirs()?;
    let _lock = super::lock_spool(&spool)?;
    let signals = Signals::install()?;
    let full = super::full_tapes(&config);
    let mut d = Daemon {
        common: common.clone(),
        watcher: None,
        next_scan: BTreeMap::new(),
        config,
        spool,
        children: Vec::new(),
        views: HashMap::new(),
        idle: HashMap::new(),
        backoff: HashMap::new(),
        problems: Problems::default(),
        full,
        alerts_told: BTreeMap::new(),
        throttled: false,
        held: BTreeMap::new(),
        started: SystemTime::now(),
        stopping: false,
        exit: Exit::Ok,
        status_text: String::new(),
    };
    d.configure();
    log::info!(
        "supervising spool {} with {} ({} stream(s), {} drive(s))",
        d.spool.root().display(),
        d.config.file.display(),
        d.config.streams.len(),
        d.config.drives.len()
    );
    let result = d.main_loop(&signals);
    d.write_status();
    result
}

impl Daemon {
    /// (Re)read what follows from the configuration: scan times, watches.
    fn configure(&mut self) {
        let now = Instant::now();
        let names: Vec<String> = self.config.streams.iter().map(|s| s.name.clone()).collect();
        self.next_scan.retain(|k, _| names.contains(k));
        for n in names {
            self.next_scan.entry(n).or_insert(now);
        }
        self.watcher = match Watcher::new(&self.config) {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!("inotify unavailable ({e}): changes are found by the periodic scan");
                None
            }
        };
    }

    fn main_loop(&mut self, signals: &Signals) -> anyhow::Result<Exit> {
        loop {
            if (signals.term.take() || signals.int.take()) && !self.stopping {
                log::info!("stopping: no new work; running stages stop at their next safe point");
                self.stop_children();
            }
            self.reap()?;
            if self.stopping {
                if self.children.is_empty() {
                    log::info!("stopped");
                    return Ok(self.exit);
                }
            } else {
                if signals.hup.take() {
                    self.reload();
                }
                if signals.usr1.take() {
                    // Safe at any age: children start with SIGUSR1 ignored.
                    for c in self.children.iter().filter(|c| c.stage == "reel-write") {
                        log::debug!(
                            "SIGUSR1 to {} {} (pid {})",
                            c.stage,
                            c.args.join(" "),
                            c.pid()
                        );
                        c.signal(Signal::SIGUSR1);
                    }
                }
                self.notice_changes();
                if let Err(e) = self.plan() {
                    log::error!("{e:#}");
                    child::remember(&self.problems, "reel-supervisor", format!("{e:#}"));
                    self.backoff_all();
                }
            }
            self.write_status();
            std::thread::sleep(TICK);
        }
    }

    fn stop_children(&mut self) {
        self.stopping = true;
        for c in &mut self.children {
            c.signal(Signal::SIGTERM);
            c.stopped = true;
        }
    }

    /// SIGHUP: read pipeline.toml again; a bad one is refused and the one
    /// running is kept.
    fn reload(&mut self) {
        let common = CommonArgs {
            config: Some(self.config.file.clone()),
            ..self.common.clone()
        };
        match common.load_config() {
            Ok(new) if new.paths.spool != self.config.paths.spool => {
                log::error!(
                    "reload refused: paths.spool changed ({} → {}); restart the supervisor to move it",
                    self.config.paths.spool.display(),
                    new.paths.spool.display()
                );
            }
            Ok(new) => {
                log::info!("reloaded {}", new.file.display());
                self.config = new;
                self.configure();
            }
            Err(e) => {
                let m = format!("reload refused, the running configuration is kept: {e:#}");
                log::error!("{m}");
                child::remember(&self.problems, "reel-supervisor", m.clone());
                child::notify(&self.config, "failure", &m);
            }
        }
    }

    fn notice_changes(&mut self) {
        let Some(w) = &mut self.watcher else { return };
        let changed = w.changed();
        for s in changed {
            let Some(stream) = self.config.streams.iter().find(|x| x.name == s) else {
                continue;
            };
            let soon = Instant::now() + SETTLE + stream.min_age.0;
            let due = self.next_scan.entry(s.clone()).or_insert(soon);
            if *due > soon {
                log::debug!("stream {s}: changes seen, scanning in {soon:?}");
                *due = soon;
            }
        }
    }

    /// Collect ended children and act on their exit codes.
    fn reap(&mut self) -> anyhow::Result<()> {
        let mut i = 0;
        while i < self.children.len() {
            let Some(status) = self.children[i].child.try_wait()? else {
                i += 1;
                continue;
            };
            let c = self.children.swap_remove(i);
            let took = c.since.elapsed().unwrap_or_default();
            let what = format!("{} {}", c.stage, c.args.join(" "));
            log::info!("{what} ended: {status} after {:.1}s", took.as_secs_f64());
            let out = if c.stopped && status.code().is_none() {
                Outcome::TempFail
            } else {
                child::outcome(status)
            };
            self.react(&c, out);
            // A stage rewrites the metrics as it exits; one killed cannot.
            if status.code().is_none() {
                crate::metrics::write(&self.config);
            }
        }
        Ok(())
    }

    fn react(&mut self, c: &Running, out: Outcome) {
        let retry = &self.config.supervisor.retry;
        let what = format!("{} {}", c.stage, c.args.join(" "))
            .trim_end()
            .to_string();
        match out {
            Outcome::Done | Outcome::Skipped | Outcome::Data => {
                self.backoff.remove(&c.job);
                if let Some(q) = child::input_of(c.stage) {
                    let ids = self.spool.list(q).unwrap_or_default();
                    self.idle.insert(c.job.clone(), (ids, Instant::now()));
                }
                if out == Outcome::Data {
                    child::notify(
                        &self.config,
                        "failure",
                        &format!("{what}: bad data; the items are in failed/ (`reel status`)"),
                    );
                }
                // The pipeline has run dry after a verify: the end of a
                // pass (nothing else runs while it uses the drive).
                if c.stage == "reel-verify"
                    && out == Outcome::Done
                    && self.children.is_empty()
                    && [Queue::Scanned, Queue::Staged, Queue::Packed, Queue::Written]
                        .iter()
                        .all(|&q| self.spool.list(q).is_ok_and(|l| l.is_empty()))
                {
                    super::end_of_pass(&self.config, &self.spool);
                }
                if c.stage == "reel-write" {
                    let full = super::full_tapes(&self.config);
                    let line = c.last_line();
                    child::notify(&self.config, "tape-run-done", &format!("{what}: {line}"));
                    for t in full {
                        if !self.full.contains(&t) {
                            child::notify(&self.config, "tape-full", &format!("tape {t} is full"));
                            self.full.push(t);
                        }
                    }
                    for m in super::drive_alerts(&self.config, self.started, &mut self.alerts_told)
                    {
                        child::notify(&self.config, "drive-alert", &m);
                    }
                }
            }
            Outcome::Unavailable | Outcome::Io | Outcome::TempFail => {
                let b = self.backoff.entry(c.job.clone()).or_insert(Backoff {
                    failures: 0,
                    until: Instant::now(),
                    told: false,
                });
                b.failures += 1;
                let base = retry.backoff.0;
                let wait = match out {
                    Outcome::TempFail => base,
                    _ => base
                        .saturating_mul(1 << (b.failures - 1).min(20))
                        .min(retry.max_backoff.0),
                };
                b.until = Instant::now() + wait;
                let line = c.last_line();
                log::warn!(
                    "{what} failed ({out:?}, {} time(s) in a row): retrying in {}s",
                    b.failures,
                    wait.as_secs()
                );
                if !b.told {
                    if out == Outcome::Unavailable {
                        b.told = true;
                        child::notify(
                            &self.config,
                            "tape-needed",
                            &format!("{what} needs a tape or a drive: {line}"),
                        );
                    } else if b.failures >= retry.attempts {
                        b.told = true;
                        child::notify(
                            &self.config,
                            "failure",
                            &format!("{what} failed {} times in a row: {line}", b.failures),
                        );
                    }
                }
            }
            Outcome::Stop(exit) => {
                let m = format!(
                    "{what} failed with exit code {}: {}; stopping",
                    exit.code(),
                    c.last_line()
                );
                log::error!("{m}");
                child::notify(&self.config, "failure", &m);
                self.exit = exit;
                self.stop_children();
            }
        }
    }

    fn backoff_all(&mut self) {
        let until = Instant::now() + self.config.supervisor.retry.backoff.0;
        for job in ["stage", "pack"] {
            self.backoff.insert(
                job.into(),
                Backoff {
                    failures: 1,
                    until,
                    told: true,
                },
            );
        }
    }

    fn view(&mut self, q: Queue) -> anyhow::Result<QueueView> {
        super::view(&self.spool, &mut self.views, q)
    }

    fn start(
        &mut self,
        stage: &'static str,
        job: String,
        drive: Option<String>,
        args: Vec<String>,
    ) -> anyhow::Result<()> {
        let c = child::spawn(
            &self.config,
            &self.common,
            stage,
            job,
            drive,
            args,
            Some(&self.problems),
        )?;
        self.children.push(c);
        Ok(())
    }

    /// Start what has work and may run (the decisions: `supervise::plan`).
    fn plan(&mut self) -> anyhow::Result<()> {
        let cache = self.config.paths.cache.clone();
        let usage = crate::fsutil::fs_usage(&cache)
            .with_context(|| format!("reading the space of {}", cache.display()))?;
        let (scanned, staged) = (self.view(Queue::Scanned)?, self.view(Queue::Staged)?);
        let (packed, written) = (self.view(Queue::Packed)?, self.view(Queue::Written)?);
        let children: Vec<supervise::Child> = self.children.iter().map(Running::planned).collect();
        let backoff = self
            .backoff
            .iter()
            .map(|(job, b)| (job.clone(), b.until))
            .collect();
        let plan = supervise::plan(&supervise::World {
            config: &self.config,
            now: Instant::now(),
            wall: SystemTime::now(),
            next_scan: &self.next_scan,
            cache: usage,
            throttled: self.throttled,
            scanned: &scanned,
            staged: &staged,
            packed: &packed,
            written: &written,
            children: &children,
            backoff: &backoff,
            idle: &self.idle,
            once: None,
        });
        if plan.throttled != self.throttled {
            let (used, total) = usage;
            if plan.throttled {
                log::warn!(
                    "cache {} above high_water ({} of {}): staging waits until it drains below low_water",
                    cache.display(),
                    Size(used).human(),
                    Size(total).human()
                );
            } else {
                log::info!("cache {} below low_water: staging resumes", cache.display());
            }
            self.throttled = plan.throttled;
        }
        for (job, why) in &plan.held {
            log::debug!("{job} waits: {why}");
        }
        self.held = plan.held;
        for start in plan.start {
            if let Start::Scan { stream, next } = &start {
                self.next_scan.insert(stream.clone(), *next);
            }
            let (stage, drive, args) = start.program();
            self.start(stage, start.job(), drive, args)?;
        }
        Ok(())
    }

    /// `<spool>/supervisor.json`: what `reel status` shows of the daemon.
    fn write_status(&mut self) {
        let now = Instant::now();
        let at = |t: Instant| {
            let d = t.saturating_duration_since(now);
            crate::time::Utc::from_system(SystemTime::now() + d).rfc3339()
        };
        let problems: Vec<_> = self
            .problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        let doc = json!({
            "pid": std::process::id(),
            "config": self.config.file,
            "started": crate::time::Utc::from_system(self.started).rfc3339(),
            "state": if self.stopping {
                if self.children.is_empty() { "stopped" } else { "stopping" }
            } else { "running" },
            "children": self.children.iter().map(|c| json!({
                "stage": c.stage,
                "job": c.job,
                "drive": c.drive,
                "pid": c.pid(),
                "args": c.args,
                "since": crate::time::Utc::from_system(c.since).rfc3339(),
                "doing": c.last_line(),
            })).collect::<Vec<_>>(),
            "next_scan": self.next_scan.iter().map(|(s, t)| json!({
                "stream": s,
                "at": at(*t),
            })).collect::<Vec<_>>(),
            "waiting": self.backoff.iter().filter(|(_, b)| b.until > now).map(|(job, b)| json!({
                "job": job,
                "failures": b.failures,
                "retry_at": at(b.until),
            })).collect::<Vec<_>>(),
            "staging_throttled": self.throttled,
            "held": self.held.iter().map(|(job, why)| json!({
                "job": job,
                "why": why,
            })).collect::<Vec<_>>(),
            "watches": self.watcher.as_ref().map_or(0, Watcher::count),
            "problems": problems,
        });
        let text = format!("{doc:#}\n");
        if text == self.status_text {
            return;
        }
        let path = self.spool.root().join("supervisor.json");
        match crate::fsutil::write_atomic(&path, text.as_bytes()) {
            Ok(()) => self.status_text = text,
            Err(e) => log::warn!("writing {}: {e}", path.display()),
        }
    }
}

/// Local sources that do not exist: said once at start, scanned anyway
/// (the scan reports them as failures, which stops nothing else).
pub fn check_sources(config: &Config) {
    for s in &config.streams {
        if let Source::Local(dir) = &s.source
            && !dir.exists()
        {
            log::warn!("stream {}: source {} does not exist", s.name, dir.display());
        }
    }
}
