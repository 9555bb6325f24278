//! Running the `mtx` program: one argument vector, no shell, bounded retries.
//!
//! A library answers "not ready" while it scans its inventory after power-on
//! or after its door was closed, and "unit attention" on the first command
//! after such a change; both clear by themselves within minutes. Those
//! failures are retried after a delay ([`RetryPolicy`]); any other failure is
//! reported at once as [`ChangerError::Command`], with the command line, the
//! exit status and one line from mtx's stderr.
//!
//! mtx exits 1 for every failure and explains on stderr: SCSI sense data
//! (`mtx: Request Sense: Sense Key=Not Ready`), then a last line such as
//! `READ ELEMENT STATUS Command Failed`. The sense key decides whether a
//! retry can help; without one, the wording of the message does.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::sense::{Sense, is_noise};
use crate::changer::ChangerError;

/// How often and how patiently to retry a command the library was not ready
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first one.
    pub retries: u32,
    /// The wait before each retry.
    pub delay: Duration,
}

impl Default for RetryPolicy {
    /// Three minutes in all: a library's inventory scan after its door was
    /// closed takes one to a few minutes.
    fn default() -> Self {
        RetryPolicy {
            retries: 12,
            delay: Duration::from_secs(15),
        }
    }
}

/// Where to look for a program given by name when it is not on PATH: `mtx`
/// lives in sbin, which the PATH of a non-root user often lacks.
const SBIN: [&str; 3] = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/// Run `<program> -f <device> <args…>` until it succeeds, fails for good or
/// runs out of retries; the text it printed on stdout when it succeeds.
pub(super) fn run(
    program: &Path,
    device: &str,
    args: &[String],
    retry: RetryPolicy,
) -> Result<String, ChangerError> {
    let mut argv = vec!["-f".to_string(), device.to_string()];
    argv.extend(args.iter().cloned());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (used, output) = spawn(program, &argv)?;
        let command = command_line(&used, &argv);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let failure = Failure::of(&stdout, &stderr);
        if !failure.transient {
            return Err(ChangerError::Command {
                command,
                status: output.status.to_string(),
                stderr: failure.summary,
            });
        }
        if attempt > retry.retries {
            return Err(ChangerError::NotReady(format!(
                "{device}: {} (`{command}` failed {attempt} times)",
                failure.summary
            )));
        }
        log::info!(
            "{device} is not ready ({}); retrying in {:?} ({attempt} of {})",
            failure.summary,
            retry.delay,
            retry.retries
        );
        std::thread::sleep(retry.delay);
    }
}

/// Start the program and wait for it; the path that was run, and what it
/// did. A bare name is looked for on PATH and then in the sbin directories.
fn spawn(program: &Path, argv: &[String]) -> Result<(PathBuf, Output), ChangerError> {
    let bare = program.components().count() == 1 && program.is_relative();
    let mut candidates = vec![program.to_path_buf()];
    if bare {
        candidates.extend(SBIN.iter().map(|dir| Path::new(dir).join(program)));
    }
    for candidate in &candidates {
        match Command::new(candidate).args(argv).output() {
            Ok(output) => return Ok((candidate.clone(), output)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ChangerError::Io {
                    op: format!("running `{}`", command_line(candidate, argv)),
                    source,
                });
            }
        }
    }
    let looked = if bare {
        format!(
            "`{}` is not on PATH nor in {}",
            program.display(),
            SBIN.join(", ")
        )
    } else {
        format!("`{}` does not exist", program.display())
    };
    Err(ChangerError::Command {
        command: command_line(program, argv),
        status: "not started".into(),
        stderr: format!("{looked}; install the `mtx` package (it provides the mtx program)"),
    })
}

/// Why mtx failed, in one line, and whether waiting can help.
struct Failure {
    transient: bool,
    summary: String,
}

impl Failure {
    fn of<'a>(stdout: &'a str, stderr: &'a str) -> Failure {
        let sense = Sense::of(stderr);
        // The last stderr line that is not sense data is mtx's own verdict
        // (`READ ELEMENT STATUS Command Failed`, `cannot open SCSI device …`).
        // stdout only holds progress (`Loading media from …`), so it is a
        // last resort.
        let verdict = |text: &'a str| {
            text.lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty() && !is_noise(l))
        };
        let verdict = verdict(stderr).or_else(|| verdict(stdout));
        let summary = match (verdict, sense.describe()) {
            (Some(v), Some(s)) => format!("{v} ({s})"),
            (Some(v), None) => v.to_string(),
            (None, Some(s)) => s,
            (None, None) => "no message".to_string(),
        };
        let transient = if sense.key.is_some() {
            sense.is_transient()
        } else {
            let text = verdict.unwrap_or("").to_ascii_lowercase();
            [
                "not ready",
                "unit attention",
                "becoming ready",
                "command failed",
            ]
            .iter()
            .any(|w| text.contains(w))
        };
        Failure { transient, summary }
    }
}

/// The command as a person would type it, for error messages.
pub(super) fn command_line(program: &Path, argv: &[String]) -> String {
    let mut line = quote(&program.to_string_lossy());
    for arg in argv {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
