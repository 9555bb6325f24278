//! The exit codes every reel program uses (docs/exit-codes.md), and how an error
//! chain maps to one.
//!
//! The codes come from BSD's sysexits.h, so that a supervisor, a cron job or
//! a shell script can tell "try again later" (75) from "fix the config" (78)
//! without reading stderr. The library never exits; programs return an
//! [`anyhow::Error`] and [`Exit::of`] finds the code by walking the chain for
//! the first error that knows its own meaning.

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

    /// The exit code for an error chain: the first error in it that carries
    /// a meaning decides; an error nobody classified is an I/O-ish failure.
    pub fn of(err: &anyhow::Error) -> Exit {
        for cause in err.chain() {
            if let Some(e) = cause.downcast_ref::<ExitError>() {
                return e.exit;
            }
            if cause.is::<crate::config::ConfigError>() {
                return Exit::Config;
            }
            if cause.is::<crate::manifest::ManifestError>() {
                return Exit::Data;
            }
            if let Some(e) = cause.downcast_ref::<crate::spool::SpoolError>() {
                return e.exit();
            }
            if let Some(e) = cause.downcast_ref::<crate::catalog::CatalogError>() {
                return e.exit();
            }
            if let Some(e) = cause.downcast_ref::<crate::tape::TapeError>() {
                return e.exit();
            }
            if let Some(e) = cause.downcast_ref::<crate::changer::ChangerError>() {
                return e.exit();
            }
            if let Some(e) = cause.downcast_ref::<io::Error>() {
                return Exit::of_io(e);
            }
        }
        Exit::Io
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
    use anyhow::Context;

    #[test]
    fn chain_decides_the_code() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::NotFound)).context("opening x");
        assert_eq!(Exit::of(&e), Exit::NoInput);
        let e: anyhow::Error = Err::<(), _>(io::Error::from_raw_os_error(libc::ENOSPC))
            .context("writing the cache")
            .unwrap_err();
        assert_eq!(Exit::of(&e), Exit::TempFail);
        let e = anyhow::Error::new(ExitError::new(Exit::Unavailable, "no tape"));
        assert_eq!(Exit::of(&e), Exit::Unavailable);
        assert_eq!(Exit::of(&anyhow::anyhow!("something")), Exit::Io);
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("stdout");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("x")));
    }
}
