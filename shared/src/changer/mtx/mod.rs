//! A real tape library, driven through the `mtx` program (README, "Tapes,
//! drives and libraries").
//!
//! reel does not speak SCSI to the changer itself: `mtx` already knows the
//! quirks of many libraries, and sysadmins know its commands and numbering.
//! [`Mtx`] runs `mtx -f <device> status | load | unload | transfer` with an
//! argument vector (never through a shell, so no device name or number is
//! ever interpreted), retries while the library is still initialising
//! (`run.rs`), and parses the status (`parse.rs`).
//!
//! Before a move it asks for the status and refuses what cannot work (a load
//! from an empty slot, into a full drive, an unload into a full slot) with a
//! message naming slot, drive and barcode: mtx would fail too, but with a
//! SCSI sense dump and element addresses nobody recognises.

mod parse;
mod run;
mod sense;

#[cfg(test)]
mod parse_props;
#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use parse::parse_status;
pub use run::RetryPolicy;

use super::{Changer, ChangerError, ChangerStatus, DriveElement, SlotElement};
use parse::count;

/// A tape library at a changer device (`/dev/sg5`, `/dev/sch0`), through
/// the `mtx` program.
#[derive(Debug, Clone)]
pub struct Mtx {
    device: String,
    program: PathBuf,
    retry: RetryPolicy,
}

impl Mtx {
    /// The library at `device`, using `mtx` from PATH (or `/usr/sbin`,
    /// `/sbin`) and the default [`RetryPolicy`].
    pub fn new(device: impl Into<String>) -> Self {
        Mtx {
            device: device.into(),
            program: PathBuf::from("mtx"),
            retry: RetryPolicy::default(),
        }
    }

    /// Run this program instead of `mtx` (a path, or a name to look up on
    /// PATH).
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// Retry "not ready" failures this often and this patiently.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// Run `mtx -f <device> <args…>`; what it printed on stdout.
    fn mtx(&self, args: &[String]) -> Result<String, ChangerError> {
        run::run(&self.program, &self.device, args, self.retry)
    }

    /// Run a move command and discard its chatter (`Loading media from
    /// Storage Element 3 into drive 0...done`).
    fn mtx_move(&self, verb: &str, a: u32, b: u32) -> Result<(), ChangerError> {
        self.mtx(&[verb.to_string(), a.to_string(), b.to_string()])
            .map(drop)
    }

    fn drive<'s>(
        &self,
        status: &'s ChangerStatus,
        index: u32,
    ) -> Result<&'s DriveElement, ChangerError> {
        status
            .drives
            .iter()
            .find(|d| d.index == index)
            .ok_or_else(|| {
                self.refuse(format!(
                    "{} has no drive {index} (it has {}, numbered from 0)",
                    self.device,
                    count(status.drives.len() as u64, "drive"),
                ))
            })
    }

    fn slot<'s>(
        &self,
        status: &'s ChangerStatus,
        number: u32,
    ) -> Result<&'s SlotElement, ChangerError> {
        status
            .slots
            .iter()
            .find(|s| s.number == number)
            .ok_or_else(|| {
                self.refuse(format!(
                    "{} has no slot {number} (it has {}, numbered from 1)",
                    self.device,
                    count(status.slots.len() as u64, "slot"),
                ))
            })
    }

    fn refuse(&self, message: String) -> ChangerError {
        ChangerError::Refused(message)
    }
}

impl Changer for Mtx {
    fn device(&self) -> &str {
        &self.device
    }

    fn status(&mut self) -> Result<ChangerStatus, ChangerError> {
        let text = self.mtx(&["status".to_string()])?;
        parse_status(&text).map_err(|e| match e {
            ChangerError::NotReady(reason) => {
                ChangerError::NotReady(format!("{}: {reason}", self.device))
            }
            ChangerError::Parse { line, message } => ChangerError::Parse {
                line,
                message: format!("{message} (from `mtx -f {} status`)", self.device),
            },
            other => other,
        })
    }

    fn load(&mut self, slot: u32, drive: u32) -> Result<(), ChangerError> {
        let status = self.status()?;
        let s = self.slot(&status, slot)?;
        let d = self.drive(&status, drive)?;
        if !s.full {
            return Err(self.refuse(format!(
                "cannot load slot {slot} of {} into drive {drive}: the slot is empty",
                self.device
            )));
        }
        if d.full {
            return Err(self.refuse(format!(
                "cannot load slot {slot} ({}) into drive {drive} of {}: the drive already holds {}; \
                 unload it first",
                tape(s.barcode.as_deref()),
                self.device,
                drive_contents(d),
            )));
        }
        self.mtx_move("load", slot, drive)
    }

    fn unload(&mut self, drive: u32, slot: u32) -> Result<(), ChangerError> {
        let status = self.status()?;
        let d = self.drive(&status, drive)?;
        let s = self.slot(&status, slot)?;
        if !d.full {
            return Err(self.refuse(format!(
                "cannot unload drive {drive} of {}: the drive is empty",
                self.device
            )));
        }
        if s.full {
            return Err(self.refuse(format!(
                "cannot unload drive {drive} of {} ({}) into slot {slot}: the slot already holds {}",
                self.device,
                tape(d.barcode.as_deref()),
                tape(s.barcode.as_deref()),
            )));
        }
        // mtx takes the slot first: `unload <slot> <drive>`.
        self.mtx_move("unload", slot, drive)
    }

    fn transfer(&mut self, from: u32, to: u32) -> Result<(), ChangerError> {
        if from == to {
            return Err(self.refuse(format!(
                "cannot transfer slot {from} of {} to itself",
                self.device
            )));
        }
        let status = self.status()?;
        let f = self.slot(&status, from)?;
        let t = self.slot(&status, to)?;
        if !f.full {
            return Err(self.refuse(format!(
                "cannot transfer from slot {from} of {}: the slot is empty",
                self.device
            )));
        }
        if t.full {
            return Err(self.refuse(format!(
                "cannot transfer slot {from} ({}) of {} to slot {to}: that slot already holds {}",
                tape(f.barcode.as_deref()),
                self.device,
                tape(t.barcode.as_deref()),
            )));
        }
        self.mtx_move("transfer", from, to)
    }
}

/// `tape 000057L5`, or `a tape without barcode`.
fn tape(barcode: Option<&str>) -> String {
    match barcode {
        Some(b) => format!("tape {b}"),
        None => "a tape without barcode".to_string(),
    }
}

fn drive_contents(d: &DriveElement) -> String {
    match d.source_slot {
        Some(slot) => format!("{} (from slot {slot})", tape(d.barcode.as_deref())),
        None => tape(d.barcode.as_deref()),
    }
}
