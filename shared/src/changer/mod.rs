//! Tape libraries (README, "Tapes, drives and libraries"): one [`Changer`]
//! trait, implemented by a virtual library (beside the virtual drive) and by
//! [`mtx`], which runs the real `mtx` program.
//!
//! Numbering follows mtx, because that is what sysadmins type: drives from
//! 0 (`Data Transfer Element 0`), storage slots from 1 (`Storage Element 1`),
//! import/export (mail) slots numbered among the storage slots.

pub mod mtx;
pub mod sg;

use serde::Serialize;

use crate::exit::Exit;

/// One drive of a library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriveElement {
    pub index: u32,
    pub full: bool,
    /// The volume tag (barcode) of the loaded tape, if it has one.
    pub barcode: Option<String>,
    /// The slot the loaded tape came from, when the library knows.
    pub source_slot: Option<u32>,
    /// The drive's serial number, when the library reports drive
    /// identifiers (READ ELEMENT STATUS with DVCID; mtx does not show them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

/// One storage or import/export slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotElement {
    pub number: u32,
    pub full: bool,
    pub barcode: Option<String>,
    pub import_export: bool,
}

/// What is where in a library.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangerStatus {
    pub drives: Vec<DriveElement>,
    pub slots: Vec<SlotElement>,
}

/// Where a tape is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Drive(u32),
    Slot(u32),
}

impl ChangerStatus {
    /// Where the tape with this barcode is.
    pub fn find(&self, barcode: &str) -> Option<Location> {
        if let Some(d) = self
            .drives
            .iter()
            .find(|d| d.barcode.as_deref() == Some(barcode))
        {
            return Some(Location::Drive(d.index));
        }
        self.slots
            .iter()
            .find(|s| s.barcode.as_deref() == Some(barcode))
            .map(|s| Location::Slot(s.number))
    }

    /// The first empty storage slot (not a mail slot).
    pub fn free_slot(&self) -> Option<u32> {
        self.slots
            .iter()
            .find(|s| !s.full && !s.import_export)
            .map(|s| s.number)
    }

    /// Where the tape in drive `drive` goes back to: the slot it came from
    /// while that is empty, else the first empty storage slot. `None` when
    /// the drive is empty or unknown, or no slot is free.
    pub fn home_slot(&self, drive: u32) -> Option<u32> {
        let d = self.drives.iter().find(|d| d.index == drive && d.full)?;
        d.source_slot
            .filter(|s| self.slots.iter().any(|x| x.number == *s && !x.full))
            .or_else(|| self.free_slot())
    }
}

/// Cleaning cartridges carry a `CLN` barcode prefix by convention.
pub fn is_cleaning(barcode: &str) -> bool {
    barcode.starts_with("CLN")
}

/// Why a changer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangerError {
    #[error("the library is not ready: {0}")]
    NotReady(String),
    #[error("{0}")]
    Refused(String),
    #[error("cannot parse `mtx status` output, line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
}

impl ChangerError {
    pub fn exit(&self) -> Exit {
        match self {
            ChangerError::NotReady(_) => Exit::TempFail,
            ChangerError::Refused(_) => Exit::Unavailable,
            ChangerError::Parse { .. } | ChangerError::Command { .. } => Exit::Unavailable,
            ChangerError::Io { .. } => Exit::Io,
        }
    }
}

/// A tape library.
pub trait Changer: Send {
    /// The device string it was opened with.
    fn device(&self) -> &str;

    fn status(&mut self) -> Result<ChangerStatus, ChangerError>;

    /// Move the tape in `slot` into drive `drive`.
    fn load(&mut self, slot: u32, drive: u32) -> Result<(), ChangerError>;

    /// Move the tape in drive `drive` into `slot`.
    fn unload(&mut self, drive: u32, slot: u32) -> Result<(), ChangerError>;

    /// Move a tape from one slot to another (for example to a mail slot).
    fn transfer(&mut self, from: u32, to: u32) -> Result<(), ChangerError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(number: u32, full: bool) -> SlotElement {
        SlotElement {
            number,
            full,
            barcode: None,
            import_export: false,
        }
    }

    #[test]
    fn a_tape_goes_home_to_its_slot_else_to_the_first_free_one() {
        let mut st = ChangerStatus {
            drives: vec![DriveElement {
                index: 0,
                full: true,
                barcode: Some("A00001L9".into()),
                source_slot: Some(3),
                serial: None,
            }],
            slots: vec![slot(1, true), slot(2, false), slot(3, false)],
        };
        assert_eq!(st.home_slot(0), Some(3));
        st.slots[2].full = true; // its slot was filled meanwhile
        assert_eq!(st.home_slot(0), Some(2));
        st.slots[1].full = true;
        assert_eq!(st.home_slot(0), None, "no room");
        st.slots[1] = SlotElement {
            import_export: true,
            ..slot(2, false)
        };
        assert_eq!(st.home_slot(0), None, "never a mail slot");
        st.drives[0].full = false;
        assert_eq!(st.home_slot(0), None, "nothing to put back");
        assert_eq!(st.home_slot(7), None, "no such drive");
    }
}
