//! `--once`: run every stage, as child processes, until nothing waits, then
//! say what was done and how to get it back. The README's first command.

use std::path::Path;

use crate::cli::CommonArgs;
use crate::config::{Config, Source};
use crate::exit::{Exit, ExitError};
use crate::spool::{Queue, Spool};
use anyhow::Context;

use super::child::{self, Outcome, notify};
use super::full_tapes;

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

fn waiting(spool: &Spool) -> anyhow::Result<usize> {
    Ok(pipeline(spool)?.len())
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

fn run_stage(
    config: &Config,
    name: &'static str,
    common: &CommonArgs,
    stop: &Stop,
) -> anyhow::Result<Exit> {
    let mut child = child::spawn(config, common, name, name.into(), None, Vec::new(), None)?;
    let status = loop {
        if let Some(status) = child.child.try_wait()? {
            break status;
        }
        if stop.asked() && !child.stopped {
            log::warn!("stopping: asking {name} to stop at its next safe point");
            child.signal(nix::sys::signal::Signal::SIGTERM);
            child.stopped = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Ok(match child::outcome(status) {
        Outcome::Done => Exit::Ok,
        Outcome::Skipped => Exit::Skipped,
        Outcome::Data => Exit::Data,
        Outcome::Unavailable => Exit::Unavailable,
        Outcome::TempFail => Exit::TempFail,
        failed @ (Outcome::Io | Outcome::Stop(_)) => {
            let exit = match failed {
                Outcome::Stop(e) => e,
                _ => Exit::Io,
            };
            return Err(ExitError::new(
                exit,
                format!("{name} failed ({status}): see its messages above"),
            )
            .into());
        }
    })
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
    let mut rounds = 0;
    let mut problems = Vec::new();
    let mut announced = full_before;
    let mut alerts_told = std::collections::BTreeMap::new();
    let mut lifecycle_done = false;
    loop {
        rounds += 1;
        let before = pipeline(&spool)?;
        for (name, from) in child::STAGES {
            if let Some(q) = from
                && spool.list(q)?.is_empty()
            {
                continue;
            }
            if rounds > 1 && from.is_none() {
                continue; // one scan per run
            }
            if stop.asked() {
                log::warn!("stopped by a signal; what waits stays queued for the next run");
                return Ok(Exit::Ok);
            }
            // The stage rewrote the metrics as it exited (one killed
            // leaves them to the next stage, and to this run's own exit).
            let result = run_stage(config, name, common, &stop);
            for t in full_tapes(config) {
                if !announced.contains(&t) {
                    notify(config, "tape-full", &format!("tape {t} is full"));
                    announced.push(t);
                }
            }
            for m in super::drive_alerts(config, started, &mut alerts_told) {
                notify(config, "drive-alert", &m);
            }
            match result {
                Err(e) => {
                    notify(config, "failure", &format!("{e:#}"));
                    return Err(e);
                }
                Ok(Exit::Unavailable) => {
                    let m = format!("{name} needs a tape or a drive; what waits stays queued");
                    notify(config, "tape-needed", &m);
                    return Err(ExitError::new(Exit::Unavailable, m).into());
                }
                Ok(Exit::Data) => {
                    let m = format!("{name} found bad data (see its log)");
                    notify(config, "failure", &m);
                    problems.push(m);
                }
                Ok(_) => {}
            }
        }
        let left = waiting(&spool)?;
        if left == 0 {
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
        // Round after round while work moves (a small cache takes many);
        // a round that moved nothing would only repeat itself.
        if pipeline(&spool)? == before {
            return Err(ExitError::new(
                Exit::TempFail,
                format!(
                    "{left} item(s) still wait and round {rounds} moved none: see `reel status`"
                ),
            )
            .into());
        }
    }
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
