//! `--once`: run every stage, as child processes, until nothing waits, then
//! say what was done and how to get it back. The README's first command.
//! The stages are decided by the daemon's rules (`supervise::plan`), told
//! how far the run has got ([`Once`]): with `[supervisor] overlap` side by
//! side as their inputs allow (staging starts on the scan's first
//! manifest, packing on an archive's worth staged, the tape on
//! `tape_start_threshold` packed), else one at a time in pipeline order;
//! either way the tape is read back in one pass after the last write (or
//! sooner, to free a full cache).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::CommonArgs;
use crate::config::{Config, Source};
use crate::exit::{Exit, ExitError};
use crate::spool::{Queue, Spool};
use anyhow::Context;

use super::child::{self, Outcome, Running, notify};
use super::full_tapes;
use super::plan::{Child, Once, Plan, QueueView, Start, World};

/// A sample tree for a stream whose source does not exist yet, when it lies
/// in the configuration's own directory (the default `var/sample`): a few
/// hundred files, some large, and the names that trip naive tools.
fn sample_tree(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::create_dir_all(dir)?;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for d in 0..8 {
        let sub = dir.join(format!("project-{d}"));
        std::fs::create_dir_all(sub.join("notes"))?;
        for f in 0..40 {
            let len = (next() % 30_000) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| b"abcdefghij \n"[(next() % 12) as usize])
                .collect();
            std::fs::write(sub.join(format!("file-{f:03}.txt")), text)?;
        }
        std::fs::write(sub.join("notes/README"), format!("project {d}\n"))?;
    }
    let big: Vec<u8> = (0..6_000_000).map(|_| next() as u8).collect();
    std::fs::write(dir.join("big.bin"), &big)?;
    std::fs::write(dir.join("big-copy.bin"), &big)?;
    std::fs::write(
        dir.join(std::ffi::OsStr::from_bytes(b"odd \xff name\twith tab")),
        "odd",
    )?;
    std::fs::write(dir.join("-leading-dash"), "dash")?;
    std::os::unix::fs::symlink("project-0/notes/README", dir.join("link-to-readme"))?;
    std::fs::hard_link(dir.join("project-1/file-000.txt"), dir.join("hard-link"))?;
    Ok(())
}

/// Every item in the pipeline's queues, by queue: a round that leaves this
/// as it was made no progress.
fn pipeline(spool: &Spool) -> anyhow::Result<Vec<(Queue, String)>> {
    let mut out = Vec::new();
    for q in [Queue::Scanned, Queue::Staged, Queue::Packed, Queue::Written] {
        out.extend(spool.list(q)?.into_iter().map(|id| (q, id)));
    }
    Ok(out)
}

/// SIGTERM or SIGINT: no new stage; the running one is asked to stop at
/// its safe point (it gets SIGTERM too) and waited for.
struct Stop {
    term: crate::signals::Watched,
    int: crate::signals::Watched,
}

impl Stop {
    fn install() -> anyhow::Result<Stop> {
        use nix::sys::signal::Signal;
        Ok(Stop {
            term: crate::signals::watch(Signal::SIGTERM)?,
            int: crate::signals::watch(Signal::SIGINT)?,
        })
    }

    fn asked(&self) -> bool {
        self.term.raised() || self.int.raised()
    }
}

/// How often the run looks at its children and the queues.
const TICK: Duration = Duration::from_millis(100);

/// A `--once` run: its stages, decided by the daemon's rules
/// (`supervise::plan`, with [`Once`]), one at a time or side by side.
struct Run<'a> {
    config: &'a Config,
    common: &'a CommonArgs,
    spool: &'a Spool,
    children: Vec<Running>,
    /// Streams not yet scanned (each is scanned once).
    next_scan: BTreeMap<String, Instant>,
    views: HashMap<Queue, QueueView>,
    idle: HashMap<String, (Vec<String>, Instant)>,
    throttled: bool,
    /// Stages that found bad data.
    problems: Vec<String>,
    /// Full tapes already told of.
    announced: Vec<String>,
    alerts_told: BTreeMap<String, u64>,
    started: std::time::SystemTime,
    /// A stage failed in a way that ends the run: its error, returned once
    /// the others have stopped.
    failure: Option<anyhow::Error>,
    /// The run stalled once (`Once::stalled`).
    stalled: bool,
    /// The stages' warnings and errors, when their lines are read.
    lines: child::Problems,
}

impl Run<'_> {
    fn view(&mut self, q: Queue) -> anyhow::Result<QueueView> {
        super::view(self.spool, &mut self.views, q)
    }

    fn running(&self, stage: &str) -> bool {
        self.children.iter().any(|c| c.stage == stage)
    }

    fn plan(&mut self) -> anyhow::Result<Plan> {
        let cache = &self.config.paths.cache;
        let usage = crate::fsutil::fs_usage(cache)
            .with_context(|| format!("reading the space of {}", cache.display()))?;
        let (scanned, staged) = (self.view(Queue::Scanned)?, self.view(Queue::Staged)?);
        let (packed, written) = (self.view(Queue::Packed)?, self.view(Queue::Written)?);
        let staged_final = self.next_scan.is_empty()
            && !self.running("reel-scan")
            && !self.running("reel-stage")
            && scanned.ids.is_empty();
        let packed_final = staged_final && !self.running("reel-pack") && staged.ids.is_empty();
        let children: Vec<Child> = self.children.iter().map(Running::planned).collect();
        let plan = super::plan(&World {
            config: self.config,
            now: Instant::now(),
            wall: std::time::SystemTime::now(),
            next_scan: &self.next_scan,
            cache: usage,
            throttled: self.throttled,
            scanned: &scanned,
            staged: &staged,
            packed: &packed,
            written: &written,
            children: &children,
            backoff: &HashMap::new(),
            idle: &self.idle,
            once: Some(Once {
                staged_final,
                packed_final,
                stalled: self.stalled,
            }),
        });
        if plan.throttled && !self.throttled {
            log::info!(
                "cache {} above high_water: staging waits until it drains below low_water",
                cache.display()
            );
        }
        self.throttled = plan.throttled;
        Ok(plan)
    }

    fn start(&mut self, start: Start) -> anyhow::Result<()> {
        if let Start::Scan { stream, .. } = &start {
            self.next_scan.remove(stream);
        }
        let (stage, drive, args) = start.program();
        let job = start.job();
        // One at a time, a stage has the terminal (its live line); side by
        // side, their lines are read and logged whole, one after another.
        let lines = self.config.supervisor.overlap.then_some(&self.lines);
        let c = child::spawn(self.config, self.common, stage, job, drive, args, lines)?;
        self.children.push(c);
        Ok(())
    }

    fn stop_all(&mut self, why: &str) {
        if self.children.iter().any(|c| !c.stopped) {
            log::warn!("{why}");
        }
        for c in &mut self.children {
            if !c.stopped {
                c.signal(nix::sys::signal::Signal::SIGTERM);
                c.stopped = true;
            }
        }
    }

    /// Collect the stages that ended and act on their exit codes.
    fn reap(&mut self) -> anyhow::Result<()> {
        let mut i = 0;
        while i < self.children.len() {
            let Some(status) = self.children[i].child.try_wait()? else {
                i += 1;
                continue;
            };
            let c = self.children.swap_remove(i);
            let name = c.stage;
            for t in full_tapes(self.config) {
                if !self.announced.contains(&t) {
                    notify(self.config, "tape-full", &format!("tape {t} is full"));
                    self.announced.push(t);
                }
            }
            for m in super::drive_alerts(self.config, self.started, &mut self.alerts_told) {
                notify(self.config, "drive-alert", &m);
            }
            let out = child::outcome(status);
            if let Some(q) = child::input_of(name) {
                let ids = self.spool.list(q).unwrap_or_default();
                self.idle.insert(c.job.clone(), (ids, Instant::now()));
            }
            match out {
                Outcome::Done | Outcome::Skipped | Outcome::TempFail => {}
                Outcome::Data => {
                    let m = format!("{name} found bad data (see its log)");
                    notify(self.config, "failure", &m);
                    self.problems.push(m);
                }
                Outcome::Unavailable => {
                    let m = format!("{name} needs a tape or a drive; what waits stays queued");
                    notify(self.config, "tape-needed", &m);
                    self.fail(ExitError::new(Exit::Unavailable, m).into());
                }
                Outcome::Io | Outcome::Stop(_) if c.stopped && status.code().is_none() => {}
                failed @ (Outcome::Io | Outcome::Stop(_)) => {
                    let exit = match failed {
                        Outcome::Stop(e) => e,
                        _ => Exit::Io,
                    };
                    let e: anyhow::Error = ExitError::new(
                        exit,
                        format!("{name} failed ({status}): see its messages above"),
                    )
                    .into();
                    notify(self.config, "failure", &format!("{e:#}"));
                    self.fail(e);
                }
            }
        }
        Ok(())
    }

    /// End the run with `e` once the other stages have stopped.
    fn fail(&mut self, e: anyhow::Error) {
        if self.failure.is_none() {
            self.failure = Some(e);
        }
        self.stop_all("a stage failed: asking the others to stop at their next safe point");
    }
}

pub fn run(common: &CommonArgs, config: &Config) -> anyhow::Result<Exit> {
    let spool = config.prepare_dirs()?;
    let _lock = super::lock_spool(&spool)?;
    let stop = Stop::install()?;
    let full_before = full_tapes(config);
    let started = std::time::SystemTime::now();
    let file = std::fs::canonicalize(&config.file).unwrap_or_else(|_| config.file.clone());
    let home = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    for s in &config.streams {
        if let Source::Local(dir) = &s.source
            && !dir.exists()
            && std::path::absolute(dir).is_ok_and(|d| d.starts_with(&home))
        {
            log::info!(
                "stream {}: {} does not exist: writing a sample tree there",
                s.name,
                dir.display()
            );
            sample_tree(dir)
                .with_context(|| format!("writing the sample tree in {}", dir.display()))?;
        }
    }
    let mut run = Run {
        config,
        common,
        spool: &spool,
        children: Vec::new(),
        next_scan: config
            .streams
            .iter()
            .map(|s| (s.name.clone(), Instant::now()))
            .collect(),
        views: HashMap::new(),
        idle: HashMap::new(),
        throttled: false,
        problems: Vec::new(),
        announced: full_before,
        alerts_told: std::collections::BTreeMap::new(),
        started,
        failure: None,
        stalled: false,
        lines: child::Problems::default(),
    };
    let mut lifecycle_done = false;
    // The pipeline as it was when nothing last ran: if nothing moved since,
    // what still waits is stuck.
    let mut quiet_at: Option<Vec<(Queue, String)>> = None;
    let mut stopping = false;
    loop {
        if stop.asked() && !stopping {
            stopping = true;
            run.stop_all("stopping: asking the running stages to stop at their next safe point");
        }
        run.reap()?;
        if stopping || run.failure.is_some() {
            if !run.children.is_empty() {
                std::thread::sleep(TICK);
                continue;
            }
            if let Some(e) = run.failure.take() {
                return Err(e);
            }
            log::warn!("stopped by a signal; what waits stays queued for the next run");
            return Ok(Exit::Ok);
        }
        let plan = run.plan()?;
        if config.supervisor.overlap {
            for start in plan.start.iter().cloned() {
                run.start(start)?;
            }
        } else if run.children.is_empty()
            && let Some(first) = plan.start.first()
        {
            // One stage at a time: the first the plan names (pipeline
            // order), until its queue is empty.
            run.start(first.clone())?;
        }
        if !run.children.is_empty() {
            std::thread::sleep(TICK);
            continue;
        }
        // Nothing runs, and nothing could start.
        let now = pipeline(&spool)?;
        if now.is_empty() {
            // Once per run, with the pipeline empty: expire what the
            // policies let go, and queue again the copies a lost or
            // suspect tape took with it.
            if !lifecycle_done {
                lifecycle_done = true;
                if super::end_of_pass(config, &spool) > 0 {
                    continue;
                }
            }
            break;
        }
        if quiet_at.as_ref() == Some(&now) {
            let held: Vec<String> = plan.held.iter().map(|(j, w)| format!("{j}: {w}")).collect();
            let why = if held.is_empty() {
                String::new()
            } else {
                format!(" ({})", held.join("; "))
            };
            return Err(ExitError::new(
                Exit::TempFail,
                format!(
                    "{} item(s) still wait and no stage moved any since it last ran{why}: see `reel status`",
                    now.len()
                ),
            )
            .into());
        }
        // Work moved since the stages that left it last ran: they may take
        // it now (a stage that found the cache full, say), and what waits
        // goes below the thresholds.
        if !run.stalled {
            log::info!(
                "{} item(s) wait and nothing runs: packing and writing what waits, and reading the tape back to free the cache",
                now.len()
            );
        }
        quiet_at = Some(now);
        run.stalled = true;
        run.idle.clear();
    }
    let problems = run.problems;
    let failed = spool.list(Queue::Failed)?.len();
    notify(
        config,
        "finished",
        &format!("the pipeline is empty; {failed} item(s) in failed/"),
    );
    let tapes = crate::catalog::tapes::all(&config.paths.catalog)?;
    let config_arg = std::fs::canonicalize(&config.file)
        .unwrap_or_else(|_| config.file.clone())
        .display()
        .to_string();
    crate::outln!(
        "Backed up and verified. The catalog is in {}.",
        config.paths.catalog.display()
    )?;
    for t in &tapes {
        crate::outln!(
            "  tape {}: {} file(s) on tape, {} bytes, {:?}",
            t.label,
            t.files.saturating_sub(1),
            t.bytes,
            t.state
        )?;
    }
    crate::outln!("Find a file:       reel --config {config_arg} find 'PATTERN'")?;
    crate::outln!(
        "Restore it:        reel-restore --config {config_arg} 'PATTERN' --to /tmp/restored"
    )?;
    crate::outln!("What waits/failed: reel --config {config_arg} status")?;
    if failed > 0 || !problems.is_empty() {
        for p in &problems {
            log::warn!("{p}");
        }
        log::warn!("{failed} item(s) failed: `reel status` says why, `reel retry --all` retries");
        return Ok(Exit::Data);
    }
    Ok(Exit::Ok)
}
