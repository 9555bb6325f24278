//! Opening drives and changers from device strings (DESIGN.md §7): the one
//! place that knows which implementation serves `/dev/nst0`, `/dev/sg5` or
//! `virtual:<dir>[#n]`.

use crate::changer::{Changer, ChangerError};
use crate::config::{Config, Device};
use crate::tape::{Drive, TapeError};
use crate::vtl::{self, LibrarySpec};

/// The shape of a virtual library created on first use: tapes of the
/// capacity of the configured drive on that library, if any.
pub fn library_spec(config: Option<&Config>, device: &Device) -> LibrarySpec {
    let Device::Virtual { dir, .. } = device else {
        return LibrarySpec::default();
    };
    let same_library = |d: &Device| matches!(d, Device::Virtual { dir: other, .. } if other == dir);
    let mut spec = config
        .and_then(|c| c.drives.iter().find(|d| same_library(&d.device)))
        .map(|d| LibrarySpec::with_capacity(d.capacity))
        .unwrap_or_default();
    if let Some(c) = config {
        if let Some(slots) = c
            .changers
            .iter()
            .find(|ch| same_library(&ch.device))
            .and_then(|ch| ch.slots)
        {
            spec.slots = slots;
        }
        spec.drives = spec
            .drives
            .max(c.drives.iter().filter(|d| same_library(&d.device)).count() as u32);
    }
    spec
}

/// Open a drive.
pub fn open_drive(device: &Device, spec: &LibrarySpec) -> Result<Box<dyn Drive>, TapeError> {
    match device {
        Device::Virtual { dir, drive } => Ok(Box::new(vtl::open_drive(dir, *drive, spec)?)),
        Device::Node(_) => Err(TapeError::Unsupported(
            "a real tape drive (the Linux st driver is not built yet)",
        )),
    }
}

/// Open a changer.
pub fn open_changer(device: &Device, spec: &LibrarySpec) -> Result<Box<dyn Changer>, ChangerError> {
    match device {
        Device::Virtual { dir, .. } => vtl::open_changer(dir, spec)
            .map(|c| Box::new(c) as Box<dyn Changer>)
            .map_err(|e| ChangerError::Refused(e.to_string())),
        Device::Node(path) => Err(ChangerError::Refused(format!(
            "{}: mtx changers are not built yet",
            path.display()
        ))),
    }
}
