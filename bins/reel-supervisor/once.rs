//! `--once`: run every stage, as child processes, until nothing waits, then
//! say what was done and how to get it back. The README's first command.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use reel_shared::cli::CommonArgs;
use reel_shared::config::{Config, Source};
use reel_shared::exit::{Exit, ExitError};
use reel_shared::spool::{Queue, Spool};

/// The stages in pipeline order, with the queue each one takes from.
const STAGES: [(&str, Option<Queue>); 5] = [
    ("reel-scan", None),
    ("reel-stage", Some(Queue::Scanned)),
    ("reel-pack", Some(Queue::Staged)),
    ("reel-write", Some(Queue::Packed)),
    ("reel-verify", Some(Queue::Written)),
];

/// A stage program: next to this executable, else on PATH.
fn program(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|me| me.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

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

/// Run `supervisor.notify_command` with the event and a message appended
/// (also in `$REEL_EVENT` and `$REEL_MESSAGE`): a mail or webhook script.
/// Its failure is a warning, never the run's.
fn notify(config: &Config, event: &str, message: &str) {
    let Some(cmd) = &config.supervisor.notify_command else {
        return;
    };
    let Some((program, args)) = cmd.0.split_first() else {
        return;
    };
    let result = Command::new(program)
        .args(args)
        .arg(event)
        .arg(message)
        .env("REEL_EVENT", event)
        .env("REEL_MESSAGE", message)
        .current_dir(
            std::fs::canonicalize(&config.file)
                .ok()
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("/")),
        )
        .status();
    match result {
        Ok(s) if s.success() => {}
        Ok(s) => log::warn!("notify_command ({event}) exited with {s}"),
        Err(e) => log::warn!("notify_command ({event}): cannot run {program}: {e}"),
    }
}

fn full_tapes(config: &Config) -> Vec<String> {
    reel_shared::catalog::tape::all(&config.paths.catalog)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.state == reel_shared::catalog::tape::TapeState::Full)
        .map(|t| t.label)
        .collect()
}

fn waiting(spool: &Spool) -> anyhow::Result<usize> {
    let mut n = 0;
    for q in [Queue::Scanned, Queue::Staged, Queue::Packed, Queue::Written] {
        n += spool.list(q)?.len();
    }
    Ok(n)
}

/// SIGTERM or SIGINT: no new stage; the running one is asked to stop at
/// its safe point (it gets SIGTERM too) and waited for.
struct Stop {
    term: reel_shared::signals::Watched,
    int: reel_shared::signals::Watched,
}

impl Stop {
    fn install() -> anyhow::Result<Stop> {
        use nix::sys::signal::Signal;
        Ok(Stop {
            term: reel_shared::signals::watch(Signal::SIGTERM)?,
            int: reel_shared::signals::watch(Signal::SIGINT)?,
        })
    }

    fn asked(&self) -> bool {
        self.term.raised() || self.int.raised()
    }
}

fn run_stage(
    config: &Config,
    name: &str,
    common: &CommonArgs,
    stop: &Stop,
) -> anyhow::Result<Exit> {
    let mut cmd = Command::new(program(name));
    cmd.arg("--config").arg(&config.file);
    for _ in 0..common.quiet {
        cmd.arg("-q");
    }
    for _ in 0..common.verbose {
        cmd.arg("-v");
    }
    log::info!("running {name}");
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program(name).display()))?;
    let mut forwarded = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if stop.asked() && !forwarded {
            log::warn!("stopping: asking {name} to stop at its next safe point");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            forwarded = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let code = status.code().unwrap_or(128);
    Ok(match code {
        0 => Exit::Ok,
        1 => Exit::Skipped,
        65 => Exit::Data,
        69 => Exit::Unavailable,
        75 => Exit::TempFail,
        _ => {
            let exit = match code {
                64 => Exit::Usage,
                66 => Exit::NoInput,
                78 => Exit::Config,
                _ => Exit::Io,
            };
            return Err(ExitError::new(
                exit,
                format!("{name} failed with exit code {code}: see its messages above"),
            )
            .into());
        }
    })
}

pub fn run(common: &CommonArgs, config: &Config) -> anyhow::Result<Exit> {
    let spool = config.prepare_dirs()?;
    // One supervisor per spool.
    let lock_path = spool.root().join("supervisor.lock");
    let Some(_lock) = reel_shared::fsutil::lock_file(&lock_path, false)
        .with_context(|| format!("locking {}", lock_path.display()))?
    else {
        return Err(ExitError::new(
            Exit::TempFail,
            format!(
                "another reel-supervisor runs on this spool ({} is locked)",
                lock_path.display()
            ),
        )
        .into());
    };
    let stop = Stop::install()?;
    let full_before = full_tapes(config);
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
    loop {
        rounds += 1;
        for (name, from) in STAGES {
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
            let result = run_stage(config, name, common, &stop);
            for t in full_tapes(config) {
                if !full_before.contains(&t) {
                    notify(config, "tape-full", &format!("tape {t} is full"));
                }
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
            break;
        }
        if rounds >= 4 {
            return Err(ExitError::new(
                Exit::TempFail,
                format!("{left} item(s) still wait after {rounds} rounds: see `reel status`"),
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
    let tapes = reel_shared::catalog::tape::all(&config.paths.catalog)?;
    let config_arg = std::fs::canonicalize(&config.file)
        .unwrap_or_else(|_| config.file.clone())
        .display()
        .to_string();
    println!(
        "Backed up and verified. The catalog is in {}.",
        config.paths.catalog.display()
    );
    for t in &tapes {
        println!(
            "  tape {}: {} file(s) on tape, {} bytes, {:?}",
            t.label,
            t.files.saturating_sub(1),
            t.bytes,
            t.state
        );
    }
    println!("Find a file:       reel --config {config_arg} find 'PATTERN'");
    println!("Restore it:        reel-restore --config {config_arg} 'PATTERN' --to /tmp/restored");
    println!("What waits/failed: reel --config {config_arg} status");
    if failed > 0 || !problems.is_empty() {
        for p in &problems {
            log::warn!("{p}");
        }
        log::warn!("{failed} item(s) failed: `reel status` says why, `reel retry --all` retries");
        return Ok(Exit::Data);
    }
    Ok(Exit::Ok)
}
