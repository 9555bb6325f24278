//! The virtual tape library (README, "Tapes, drives and libraries"; its files:
//! docs/tape-format.md §10.9): a directory that behaves like a tape library
//! with drives, slots and tapes, for tests and demos. Each tape is a directory
//! with one plain file per tape file, so `tar -tvf
//! <dir>/tapes/<BARCODE>/000001` reads an archive directly.
//!
//! Device strings: `virtual:<dir>` is the library as a changer, and its
//! drive 0 as a drive; `virtual:<dir>#<n>` is drive `n`. A library that does
//! not exist yet is created on first use ([`LibrarySpec`]).

mod changer;
mod drive;
mod image;
mod library;

pub use changer::VirtualChanger;
pub use drive::VirtualDrive;
pub use image::{Faults, FileLayout, Flip, HostAttribute, Image, Life, Meta, medium_serial};
pub use library::{DriveState, Inventory, Library, LibrarySpec, SlotState};

use std::path::Path;

use crate::tape::TapeError;

/// Open drive `drive` of the library at `dir`, creating the library if
/// needed.
pub fn open_drive(dir: &Path, drive: u32, spec: &LibrarySpec) -> Result<VirtualDrive, TapeError> {
    let library = Library::open_or_create(dir, spec)?;
    let device = if drive == 0 {
        format!("virtual:{}", dir.display())
    } else {
        format!("virtual:{}#{drive}", dir.display())
    };
    VirtualDrive::open(library, drive, device)
}

/// Open the library at `dir` as a changer, creating it if needed.
pub fn open_changer(dir: &Path, spec: &LibrarySpec) -> Result<VirtualChanger, TapeError> {
    let library = Library::open_or_create(dir, spec)?;
    Ok(VirtualChanger::new(
        library,
        format!("virtual:{}", dir.display()),
        *spec,
    ))
}

#[cfg(test)]
mod tests;
