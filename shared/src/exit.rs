//! The exit codes every reel program uses (docs/exit-codes.md), and how an error
//! chain maps to one.
//!
//! The codes come from BSD's sysexits.h, so that a supervisor, a cron job or
//! a shell script can tell "try again later" (75) from "fix the config" (78)
//! without reading stderr. The library never exits: each module's error type
//! says its own code (`SpoolError::exit`, `CatalogError::exit`, …), and
//! programs return an [`anyhow::Error`] whose code `cli::exit_of` finds by
//! walking the chain for the first error that knows its meaning. This module
//! knows none of them: it sits beneath every other.

use std::io;

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Done, but some items were skipped (each was reported on stderr).
    Skipped = 1,
    /// The command line was wrong.
    Usage = 64,
    /// A verification mismatch, or a corrupt manifest or archive.
    Data = 65,
    /// An input file or directory is missing.
    NoInput = 66,
    /// No drive, no tape, the wrong tape, or a part not built yet.
    Unavailable = 69,
    /// An I/O error.
    Io = 74,
    /// Temporary: drive busy, cache full, tape still calibrating.
    TempFail = 75,
    /// The configuration is wrong.
    Config = 78,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the supervisor does about it, for help texts and `reel status`.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "done",
            Exit::Skipped => "done, some items skipped",
            Exit::Usage => "usage error",
            Exit::Data => "data error",
            Exit::NoInput => "input missing",
            Exit::Unavailable => "unavailable",
            Exit::Io => "I/O error",
            Exit::TempFail => "temporary failure",
            Exit::Config => "configuration error",
        }
    }

    /// The exit code for a bare I/O error.
    pub fn of_io(e: &io::Error) -> Exit {
        match e.kind() {
            io::ErrorKind::NotFound => Exit::NoInput,
            io::ErrorKind::StorageFull | io::ErrorKind::WouldBlock => Exit::TempFail,
            _ if e.raw_os_error() == Some(libc::ENOSPC) => Exit::TempFail,
            _ => Exit::Io,
        }
    }
}

/// An error that states its exit code outright, for the cases no typed error
/// covers (`reel-write: no tape in drive` is 69 whatever caused it).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    pub exit: Exit,
    pub message: String,
}

impl ExitError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        ExitError {
            exit,
            message: message.into(),
        }
    }
}

/// True when the chain holds a broken pipe: the reader of our stdout went
/// away (`reel find | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pipe_is_recognised() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("stdout");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("x")));
    }
}
