//! The virtual library's inventory: `library.json` (format
//! `reel-virtual-library/1`), which tape sits in which drive or slot.
//!
//! ```text
//! <dir>/library.json            drives, slots (storage and mail), what is where
//! <dir>/library.lock            held while library.json is read and rewritten
//! <dir>/drive-<n>.lock          held by whoever uses drive n (one user at a time)
//! <dir>/tapes/<BARCODE>/        one tape (see image.rs)
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};

use super::image::Image;
use crate::fsutil::{lock_file, write_atomic};
use crate::tape::TapeError;
use crate::units::Size;

pub const LIBRARY_FORMAT: &str = "reel-virtual-library/1";

/// The shape of a library created on first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibrarySpec {
    pub drives: u32,
    /// Storage slots; each starts with a blank tape, except that the tape of
    /// slot 1 starts in drive 0.
    pub slots: u32,
    /// Import/export (mail) slots after the storage slots, empty.
    pub mail_slots: u32,
    pub capacity: Size,
    pub early_warning: Size,
}

impl Default for LibrarySpec {
    fn default() -> Self {
        LibrarySpec::with_capacity(Size(1 << 30))
    }
}

impl LibrarySpec {
    /// The default shape with tapes of `capacity`; the early-warning margin
    /// is 1/64 of it (at least 1 MiB), room for an archive's trailer.
    pub fn with_capacity(capacity: Size) -> Self {
        LibrarySpec {
            drives: 1,
            slots: 8,
            mail_slots: 1,
            capacity,
            early_warning: Size((capacity.0 / 64).max(1 << 20).min(capacity.0 / 2)),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveState {
    pub tape: Option<String>,
    pub source_slot: Option<u32>,
    /// Unloaded by the drive (mt offline) but not yet taken out.
    #[serde(default)]
    pub ejected: bool,
    /// Where the head was left (logical block), so that, as with a real
    /// non-rewinding device, the next program continues from there.
    #[serde(default)]
    pub position: Option<u64>,
    /// The TapeAlert flags the drive reports (by number, 1 to 64), as a
    /// test or an operator sets them: 20 is "cleaning required".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotState {
    pub tape: Option<String>,
    #[serde(default)]
    pub import_export: bool,
}

/// `library.json`. Slot number `n` (from 1, as mtx counts) is `slots[n-1]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    pub format: String,
    pub drives: Vec<DriveState>,
    pub slots: Vec<SlotState>,
}

/// A virtual library directory.
#[derive(Debug, Clone)]
pub struct Library {
    dir: PathBuf,
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> TapeError {
    move |e| TapeError::io(op, e)
}

impl Library {
    /// Open the library at `dir`, creating it with `spec` if it does not
    /// exist yet.
    pub fn open_or_create(dir: &Path, spec: &LibrarySpec) -> Result<Library, TapeError> {
        let lib = Library {
            dir: dir.to_path_buf(),
        };
        std::fs::create_dir_all(dir).map_err(io("creating the virtual library"))?;
        let _guard = lib.lock()?;
        if !lib.inventory_path().exists() {
            lib.create(spec)?;
        }
        Ok(lib)
    }

    /// Open an existing library.
    pub fn open(dir: &Path) -> Result<Library, TapeError> {
        let lib = Library {
            dir: dir.to_path_buf(),
        };
        if !lib.inventory_path().exists() {
            return Err(TapeError::Invalid(format!(
                "{}: not a virtual library (no library.json)",
                dir.display()
            )));
        }
        Ok(lib)
    }

    fn create(&self, spec: &LibrarySpec) -> Result<(), TapeError> {
        let mut inv = Inventory {
            format: LIBRARY_FORMAT.into(),
            drives: vec![DriveState::default(); spec.drives.max(1) as usize],
            slots: Vec::new(),
        };
        for n in 1..=spec.slots.max(1) {
            let barcode = format!("V{n:05}L9");
            let mut image = Image::create(
                &self.tape_dir(&barcode),
                &barcode,
                spec.capacity,
                spec.early_warning,
            )?;
            if n == 1 {
                // Drive 0 starts with it loaded: its first load.
                image.meta.life.loaded();
                image.save()?;
            }
            inv.slots.push(SlotState {
                tape: Some(barcode),
                import_export: false,
            });
        }
        for _ in 0..spec.mail_slots {
            inv.slots.push(SlotState {
                tape: None,
                import_export: true,
            });
        }
        // Drive 0 starts with the first tape loaded.
        inv.drives[0].tape = inv.slots[0].tape.take();
        inv.drives[0].source_slot = Some(1);
        self.write(&inv)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn inventory_path(&self) -> PathBuf {
        self.dir.join("library.json")
    }

    pub fn tape_dir(&self, barcode: &str) -> PathBuf {
        self.dir.join("tapes").join(barcode)
    }

    pub fn drive_lock_path(&self, drive: u32) -> PathBuf {
        self.dir.join(format!("drive-{drive}.lock"))
    }

    /// Hold while reading and rewriting the inventory.
    pub fn lock(&self) -> Result<Flock<File>, TapeError> {
        let path = self.dir.join("library.lock");
        Ok(lock_file(&path, true)
            .map_err(io("locking the virtual library"))?
            .expect("a waiting lock is always taken"))
    }

    /// Take drive `n`'s user lock without waiting.
    pub fn lock_drive(&self, drive: u32) -> Result<Flock<File>, TapeError> {
        let path = self.drive_lock_path(drive);
        lock_file(&path, false)
            .map_err(io("locking a virtual drive"))?
            .ok_or_else(|| TapeError::Busy(format!("lock {} is held", path.display())))
    }

    pub fn read(&self) -> Result<Inventory, TapeError> {
        let path = self.inventory_path();
        let text = std::fs::read_to_string(&path).map_err(io("reading library.json"))?;
        let inv: Inventory = serde_json::from_str(&text)
            .map_err(|e| TapeError::Invalid(format!("{}: {e}", path.display())))?;
        if inv.format != LIBRARY_FORMAT {
            return Err(TapeError::Invalid(format!(
                "{}: format {:?}, expected {LIBRARY_FORMAT:?}",
                path.display(),
                inv.format
            )));
        }
        Ok(inv)
    }

    pub fn write(&self, inv: &Inventory) -> Result<(), TapeError> {
        let text = serde_json::to_vec_pretty(inv).expect("inventory serializes");
        write_atomic(&self.inventory_path(), &text).map_err(io("writing library.json"))
    }
}
