//! A stage program run as a child process: where it is found, its stderr
//! captured line by line, and what its exit code asks of the supervisor
//! (docs/exit-codes.md §4).

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::cli::{self, CommonArgs};
use crate::config::Config;
use crate::exit::Exit;
use crate::spool::Queue;
use anyhow::Context;
use serde::Serialize;

/// The stages in pipeline order, with the queue each one takes from.
pub const STAGES: [(&str, Option<Queue>); 5] = [
    ("reel-scan", None),
    ("reel-stage", Some(Queue::Scanned)),
    ("reel-pack", Some(Queue::Staged)),
    ("reel-write", Some(Queue::Packed)),
    ("reel-verify", Some(Queue::Written)),
];

/// The queue `stage` takes its work from.
pub fn input_of(stage: &str) -> Option<Queue> {
    STAGES
        .iter()
        .find(|(name, _)| *name == stage)
        .and_then(|(_, q)| *q)
}

/// The directory of the configuration file: relative paths in it, and the
/// notify command, work from there.
pub fn config_dir(config: &Config) -> PathBuf {
    std::fs::canonicalize(&config.file)
        .ok()
        .and_then(|f| f.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Run `supervisor.notify_command` with the event and a message appended
/// (also in `$REEL_EVENT` and `$REEL_MESSAGE`): a mail or webhook script.
/// Its failure is a warning, never the run's.
pub fn notify(config: &Config, event: &str, message: &str) {
    log::info!("event {event}: {message}");
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
        .current_dir(config_dir(config))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
    match result {
        Ok(s) if s.success() => {}
        Ok(s) => log::warn!("notify_command ({event}) exited with {s}"),
        Err(e) => log::warn!("notify_command ({event}): cannot run {program}: {e}"),
    }
}

/// What a stage's end asks of the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: done.
    Done,
    /// 1: done, some items skipped (the stage said which).
    Skipped,
    /// 65: bad data; the stage moved the items to failed/.
    Data,
    /// 69: no drive, no tape, wrong tape: wait for the operator, retry.
    Unavailable,
    /// 74, or killed by a signal we did not send: retry with backoff.
    Io,
    /// 75: busy, cache full: retry later.
    TempFail,
    /// 64, 66, 78: a usage, input or configuration error: stop.
    Stop(Exit),
}

pub fn outcome(status: ExitStatus) -> Outcome {
    match status.code() {
        Some(0) => Outcome::Done,
        Some(1) => Outcome::Skipped,
        Some(65) => Outcome::Data,
        Some(69) => Outcome::Unavailable,
        Some(75) => Outcome::TempFail,
        Some(64) => Outcome::Stop(Exit::Usage),
        Some(66) => Outcome::Stop(Exit::NoInput),
        Some(78) => Outcome::Stop(Exit::Config),
        _ => Outcome::Io,
    }
}

/// A warning or error line a child wrote, kept for `reel status`.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub time: String,
    pub stage: String,
    pub line: String,
}

/// The last problems of all children, newest last.
pub type Problems = Arc<Mutex<VecDeque<Problem>>>;
const PROBLEMS_KEPT: usize = 20;

pub fn remember(problems: &Problems, stage: &str, line: String) {
    let mut p = problems.lock().unwrap_or_else(|e| e.into_inner());
    if p.len() == PROBLEMS_KEPT {
        p.pop_front();
    }
    p.push_back(Problem {
        time: crate::time::Utc::from_system(SystemTime::now()).rfc3339(),
        stage: stage.to_string(),
        line,
    });
}

/// A running stage.
pub struct Running {
    pub stage: &'static str,
    /// The job it does: `scan:home`, `stage`, `pack`, `write:drive0`…
    pub job: String,
    pub drive: Option<String>,
    pub args: Vec<String>,
    pub child: std::process::Child,
    pub since: SystemTime,
    /// The last line it wrote: what it is doing.
    pub last: Arc<Mutex<String>>,
    /// SIGTERM was sent by us.
    pub stopped: bool,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal);
    }

    /// What the planner knows of it.
    pub fn planned(&self) -> super::Child {
        super::Child {
            job: self.job.clone(),
            stage: self.stage,
            drive: self.drive.clone(),
        }
    }

    pub fn last_line(&self) -> String {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Start `stage` with `args` after `--config` and the verbosity flags.
/// With `problems`, its stderr is read line by line, logged and remembered;
/// without, it goes straight to ours (a terminal keeps its live lines).
pub fn spawn(
    config: &Config,
    common: &CommonArgs,
    stage: &'static str,
    job: String,
    drive: Option<String>,
    args: Vec<String>,
    problems: Option<&Problems>,
) -> anyhow::Result<Running> {
    let path = cli::sibling_program(stage);
    let mut cmd = Command::new(&path);
    cmd.arg("--config").arg(&config.file);
    common.pass_verbosity(&mut cmd);
    cmd.args(&args).stdin(Stdio::null());
    // Should the supervisor die (even by SIGKILL), the stage is asked to
    // stop at its next safe point rather than run on unsupervised.
    let parent = std::process::id() as libc::pid_t;
    // The stages that move no tape yield the CPU to those that do.
    let nicer = match stage {
        "reel-scan" | "reel-stage" | "reel-pack" => {
            libc::c_int::from(config.supervisor.background_nice.min(19))
        }
        _ => 0,
    };
    // SIGUSR1 starts ignored: forwarded to a reel-write that has not yet
    // installed its handler, it is lost instead of killing it (its default
    // action). The handler, once installed, replaces the disposition.
    // SAFETY: prctl, getppid, signal, raise, getpriority and setpriority
    // are system calls without locks or allocation; no memory is touched.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if nicer > 0 {
                let now = libc::getpriority(libc::PRIO_PROCESS, 0);
                libc::setpriority(libc::PRIO_PROCESS, 0, (now + nicer).min(19));
            }
            libc::signal(libc::SIGUSR1, libc::SIG_IGN);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
    if problems.is_some() {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    }
    log::info!("starting {stage} {}", args.join(" "));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    let last = Arc::new(Mutex::new(String::new()));
    if let (Some(problems), Some(stderr)) = (problems, child.stderr.take()) {
        let (last, problems) = (last.clone(), problems.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { break };
                // A live status line ends in \r: keep its newest part.
                let text = String::from_utf8_lossy(&line);
                let text = text.rsplit('\r').find(|s| !s.trim().is_empty());
                let Some(text) = text.map(str::trim_end) else {
                    continue;
                };
                if text.contains(": error: ") {
                    log::error!("{text}");
                    remember(&problems, stage, text.to_string());
                } else if text.contains(": warning: ") {
                    log::warn!("{text}");
                    remember(&problems, stage, text.to_string());
                } else {
                    log::info!("{text}");
                }
                *last.lock().unwrap_or_else(|e| e.into_inner()) = text.to_string();
            }
        });
    }
    Ok(Running {
        stage,
        job,
        drive,
        args,
        child,
        since: SystemTime::now(),
        last,
        stopped: false,
    })
}
