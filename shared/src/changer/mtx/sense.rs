//! The SCSI sense data mtx prints when the library refuses a command.
//!
//! On a failure mtx writes the library's sense data to stderr, one field a
//! line (`mtx: Request Sense: Sense Key=Not Ready`,
//! `… Additional Sense Code = 04`), then its own verdict. The sense key is
//! what tells a library that is busy or was just opened (`Not Ready`,
//! `Unit Attention`: wait and ask again) from one that refuses the request
//! (`Illegal Request`: asking again will not help).

use std::fmt;

/// Lines mtx writes around the status that carry nothing reel needs.
pub(super) fn is_noise(line: &str) -> bool {
    line.contains("Request Sense:") || line.to_ascii_lowercase().starts_with("mode sense")
}

/// The last SCSI sense data mtx printed: why the library refused a command.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Sense {
    /// `Not Ready`, `Unit Attention`, `Illegal Request`, …
    pub key: Option<String>,
    /// Additional sense code and qualifier, as mtx prints them (hex).
    pub asc: Option<String>,
    pub ascq: Option<String>,
}

impl Sense {
    /// What the sense data in `text` says (the last report, when mtx printed
    /// several).
    pub(super) fn of(text: &str) -> Sense {
        let mut sense = Sense::default();
        for line in text.lines() {
            sense.note(line.trim());
        }
        sense
    }

    /// Take what a `Request Sense:` line says; false for other lines.
    pub(super) fn note(&mut self, line: &str) -> bool {
        let Some((_, item)) = line.split_once("Request Sense:") else {
            return false;
        };
        let Some((name, value)) = item.split_once('=') else {
            return true;
        };
        let value = Some(value.trim().to_string());
        match name.trim() {
            // A new report starts: forget the previous one's details.
            "Long Report" => *self = Sense::default(),
            "Sense Key" => self.key = value,
            "Additional Sense Code" => self.asc = value,
            "Additional Sense Qualifier" => self.ascq = value,
            _ => {}
        }
        true
    }

    /// `sense key Not Ready, ASC 04, ASCQ 12`, or None when there was none.
    pub(super) fn describe(&self) -> Option<String> {
        self.key.as_ref().map(|_| self.to_string())
    }

    /// The library is busy, initialising or was just changed: asking again
    /// later is the cure.
    pub(super) fn is_transient(&self) -> bool {
        matches!(self.key.as_deref(), Some("Not Ready" | "Unit Attention"))
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sense key {}", self.key.as_deref().unwrap_or("unknown"))?;
        if let Some(asc) = &self.asc {
            write!(f, ", ASC {asc}")?;
        }
        if let Some(ascq) = &self.ascq {
            write!(f, ", ASCQ {ascq}")?;
        }
        Ok(())
    }
}
