//! Faults on demand for the emulated library: what `reel-tcmu fault` sets
//! on a tape of the virtual library, kept in its `meta.json` (the virtual
//! drive carries them out: an unreadable block, a write that fails, a
//! write-protect tab, "becoming ready" for a while after the next load).
//! A drive that needs cleaning is the serving program's flag instead
//! ([`super::Options::needs_cleaning`]), since it belongs to the drive.

use std::path::Path;

use anyhow::{Context, bail};

use crate::units::Interval;
use crate::vtl::{Faults, Image, Library};

/// What to change on one tape; `None` and empty lists leave a fault as it
/// is.
#[derive(Debug, Clone, Default)]
pub struct TapeFaults {
    /// Start from no faults at all.
    pub clear: bool,
    /// Blocks (logical addresses) that read as a medium error.
    pub read_errors: Vec<u64>,
    /// The block at which a write fails with a medium error.
    pub write_error: Option<u64>,
    /// Not ready for this long after the next load (calibration).
    pub calibrate: Option<Interval>,
    /// Set or clear the write-protect tab.
    pub write_protect: Option<bool>,
}

/// Apply `change` to the tape `barcode` of the library at `dir`, which must
/// sit in a slot: a served drive holds its tape's state in memory and would
/// write over the change. Returns the tape's faults and protection now.
pub fn set(dir: &Path, barcode: &str, change: &TapeFaults) -> anyhow::Result<(Faults, bool)> {
    let library = Library::open(dir)?;
    let _guard = library.lock()?;
    let inv = library.read()?;
    if let Some(d) = inv
        .drives
        .iter()
        .position(|d| d.tape.as_deref() == Some(barcode))
    {
        bail!(
            "{barcode} is in drive {d}: move it to a slot first (a drive keeps its tape's state while it holds it)"
        );
    }
    if !inv.slots.iter().any(|s| s.tape.as_deref() == Some(barcode)) {
        bail!("{}: no tape {barcode:?} in a slot", dir.display());
    }
    let tape = library.tape_dir(barcode);
    let mut image = Image::open(&tape).with_context(|| tape.display().to_string())?;
    if change.clear {
        image.meta.faults = Faults::default();
        image.meta.write_protected = false;
    }
    let faults = &mut image.meta.faults;
    for &b in &change.read_errors {
        if !faults.read_errors.contains(&b) {
            faults.read_errors.push(b);
        }
    }
    if change.write_error.is_some() {
        faults.write_error_at = change.write_error;
    }
    if change.calibrate.is_some() {
        faults.calibrate = change.calibrate;
    }
    if let Some(on) = change.write_protect {
        image.meta.write_protected = on;
    }
    image.save()?;
    Ok((image.meta.faults.clone(), image.meta.write_protected))
}

/// `reel-tcmu fault`'s flags.
#[derive(clap::Args, Debug)]
pub struct FaultArgs {
    /// The tape's barcode
    barcode: String,
    /// Remove every fault and the write protection first
    #[arg(long)]
    clear: bool,
    /// Reading the block at this logical address gives a medium error;
    /// repeatable
    #[arg(long, value_name = "BLOCK")]
    read_error: Vec<u64>,
    /// Writing a block at this logical address gives a medium error
    #[arg(long, value_name = "BLOCK")]
    write_error: Option<u64>,
    /// After its next load the drive reports NOT READY, becoming ready
    /// (04/01), for this long, as a new LTO tape calibrates
    #[arg(long, value_name = "DURATION")]
    calibrate: Option<Interval>,
    /// Set the write-protect tab
    #[arg(long, conflicts_with = "writable")]
    write_protect: bool,
    /// Clear the write-protect tab
    #[arg(long)]
    writable: bool,
}

impl FaultArgs {
    /// Set the faults on the tape of the library at `library` and print
    /// what it has now.
    pub fn run(self, library: &Path) -> anyhow::Result<crate::exit::Exit> {
        let change = TapeFaults {
            clear: self.clear,
            read_errors: self.read_error,
            write_error: self.write_error,
            calibrate: self.calibrate,
            write_protect: (self.write_protect || self.writable).then_some(self.write_protect),
        };
        let (now, protected) = set(library, &self.barcode, &change)?;
        crate::outln!("{}: {}", self.barcode, describe(&now, protected))?;
        Ok(crate::exit::Exit::Ok)
    }
}

/// A tape's faults and protection in one line, for the operator.
pub fn describe(faults: &Faults, protected: bool) -> String {
    let mut parts = Vec::new();
    if !faults.read_errors.is_empty() {
        let blocks: Vec<String> = faults.read_errors.iter().map(u64::to_string).collect();
        parts.push(format!("read errors at block {}", blocks.join(", ")));
    }
    if let Some(b) = faults.write_error_at {
        parts.push(format!("a write error at block {b}"));
    }
    if let Some(c) = faults.calibrate {
        parts.push(format!("not ready for {c} after its next load"));
    }
    if !faults.flip.is_empty() {
        parts.push(format!("{} flipped byte(s)", faults.flip.len()));
    }
    if protected {
        parts.push("write protected".into());
    }
    if parts.is_empty() {
        "no faults".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtl::LibrarySpec;

    #[test]
    fn faults_are_set_on_a_tape_in_a_slot_and_refused_for_one_in_a_drive() {
        let dir = tempfile::tempdir().unwrap();
        let spec = LibrarySpec::default();
        let inv = Library::open_or_create(dir.path(), &spec)
            .unwrap()
            .read()
            .unwrap();
        let in_drive = inv.drives[0].tape.clone().unwrap();
        let in_slot = inv.slots.iter().find_map(|s| s.tape.clone()).unwrap();
        let err = set(dir.path(), &in_drive, &TapeFaults::default()).unwrap_err();
        assert!(err.to_string().contains("is in drive 0"), "{err}");
        assert!(set(dir.path(), "NOSUCH", &TapeFaults::default()).is_err());
        let change = TapeFaults {
            read_errors: vec![0],
            write_protect: Some(true),
            ..TapeFaults::default()
        };
        let (faults, protected) = set(dir.path(), &in_slot, &change).unwrap();
        assert_eq!(faults.read_errors, [0]);
        assert!(protected);
        assert_eq!(
            describe(&faults, protected),
            "read errors at block 0; write protected"
        );
        let tape = Library::open(dir.path()).unwrap().tape_dir(&in_slot);
        let image = Image::open(&tape).unwrap();
        assert!(image.meta.write_protected);
        let (_, protected) = set(
            dir.path(),
            &in_slot,
            &TapeFaults {
                clear: true,
                ..TapeFaults::default()
            },
        )
        .unwrap();
        assert!(!protected);
        assert!(
            Image::open(&tape)
                .unwrap()
                .meta
                .faults
                .read_errors
                .is_empty()
        );
    }
}
