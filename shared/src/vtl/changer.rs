//! The virtual library as a [`Changer`]: moves tapes between slots and
//! drives in `library.json`, refusing what a real library refuses (an empty
//! source, a full destination) and never pulling a tape out of a drive that
//! a program is using.

use super::library::{Inventory, Library};
use crate::changer::{Changer, ChangerError, ChangerStatus, DriveElement, SlotElement};
use crate::tape::TapeError;

pub struct VirtualChanger {
    device: String,
    library: Library,
    /// The shape new tapes take (`insert` of a barcode never seen).
    spec: super::library::LibrarySpec,
}

impl VirtualChanger {
    pub fn new(library: Library, device: String, spec: super::library::LibrarySpec) -> Self {
        VirtualChanger {
            device,
            library,
            spec,
        }
    }

    /// The operator's hand: take the tape out of `slot` (it leaves the
    /// library; its data stays in the library's directory). Its barcode.
    pub fn remove(&mut self, slot: u32) -> Result<String, ChangerError> {
        let mut taken = String::new();
        self.update(|inv| {
            let s = Self::check_slot(inv, slot)?;
            taken = inv.slots[s]
                .tape
                .take()
                .ok_or_else(|| ChangerError::Refused(format!("slot {slot} is empty")))?;
            Ok(())
        })?;
        Ok(taken)
    }

    /// The operator's hand: put the tape `barcode` into the empty `slot`:
    /// one taken out before, or a new blank one.
    pub fn insert(&mut self, slot: u32, barcode: &str) -> Result<(), ChangerError> {
        crate::tape::label::check_label(barcode).map_err(tape_error)?;
        let dir = self.library.tape_dir(barcode);
        let spec = self.spec;
        self.update(|inv| {
            let s = Self::check_slot(inv, slot)?;
            let inside = inv
                .slots
                .iter()
                .map(|x| &x.tape)
                .chain(inv.drives.iter().map(|d| &d.tape))
                .any(|t| t.as_deref() == Some(barcode));
            if inside {
                return Err(ChangerError::Refused(format!(
                    "{barcode} is in the library already"
                )));
            }
            if let Some(t) = &inv.slots[s].tape {
                return Err(ChangerError::Refused(format!(
                    "slot {slot} already holds {t}"
                )));
            }
            if !dir.join("meta.json").exists() {
                super::image::Image::create(&dir, barcode, spec.capacity, spec.early_warning)
                    .map_err(tape_error)?;
            }
            inv.slots[s].tape = Some(barcode.to_string());
            Ok(())
        })
    }
}

fn tape_error(e: TapeError) -> ChangerError {
    match e {
        TapeError::Busy(m) => ChangerError::Refused(format!("the drive is in use: {m}")),
        other => ChangerError::Refused(other.to_string()),
    }
}

impl VirtualChanger {
    /// Run `change` on the inventory under the library lock and save it.
    fn update(
        &mut self,
        change: impl FnOnce(&mut Inventory) -> Result<(), ChangerError>,
    ) -> Result<(), ChangerError> {
        let _guard = self.library.lock().map_err(tape_error)?;
        let mut inv = self.library.read().map_err(tape_error)?;
        change(&mut inv)?;
        self.library.write(&inv).map_err(tape_error)
    }

    fn check_slot(inv: &Inventory, slot: u32) -> Result<usize, ChangerError> {
        if slot == 0 || slot as usize > inv.slots.len() {
            return Err(ChangerError::Refused(format!(
                "no slot {slot}: slots are numbered 1 to {}",
                inv.slots.len()
            )));
        }
        Ok(slot as usize - 1)
    }

    fn check_drive(inv: &Inventory, drive: u32) -> Result<usize, ChangerError> {
        if drive as usize >= inv.drives.len() {
            return Err(ChangerError::Refused(format!(
                "no drive {drive}: drives are numbered 0 to {}",
                inv.drives.len() - 1
            )));
        }
        Ok(drive as usize)
    }
}

impl Changer for VirtualChanger {
    fn device(&self) -> &str {
        &self.device
    }

    fn status(&mut self) -> Result<ChangerStatus, ChangerError> {
        let _guard = self.library.lock().map_err(tape_error)?;
        let inv = self.library.read().map_err(tape_error)?;
        Ok(ChangerStatus {
            drives: inv
                .drives
                .iter()
                .enumerate()
                .map(|(i, d)| DriveElement {
                    index: i as u32,
                    full: d.tape.is_some(),
                    barcode: d.tape.clone(),
                    source_slot: d.source_slot,
                    serial: None,
                })
                .collect(),
            slots: inv
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| SlotElement {
                    number: i as u32 + 1,
                    full: s.tape.is_some(),
                    barcode: s.tape.clone(),
                    import_export: s.import_export,
                })
                .collect(),
        })
    }

    fn load(&mut self, slot: u32, drive: u32) -> Result<(), ChangerError> {
        let library = self.library.clone();
        self.update(|inv| {
            let s = Self::check_slot(inv, slot)?;
            let d = Self::check_drive(inv, drive)?;
            let _in_use = library.lock_drive(drive).map_err(tape_error)?;
            if let Some(t) = &inv.drives[d].tape {
                return Err(ChangerError::Refused(format!(
                    "drive {drive} already holds {t}"
                )));
            }
            let tape = inv.slots[s]
                .tape
                .take()
                .ok_or_else(|| ChangerError::Refused(format!("slot {slot} is empty")))?;
            // A tape in a drive is ready at once unless it must calibrate;
            // its cartridge memory counts the load.
            let mut image =
                super::image::Image::open(&library.tape_dir(&tape)).map_err(tape_error)?;
            if let Some(c) = image.meta.faults.calibrate.take() {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                image.meta.not_ready_until = Some(now + c.0.as_secs_f64());
            }
            image.meta.life.loaded();
            image.save().map_err(tape_error)?;
            // The drive keeps what is its own (its TapeAlert flags).
            inv.drives[d] = super::library::DriveState {
                tape: Some(tape),
                source_slot: Some(slot),
                alerts: std::mem::take(&mut inv.drives[d].alerts),
                ..Default::default()
            };
            Ok(())
        })
    }

    fn unload(&mut self, drive: u32, slot: u32) -> Result<(), ChangerError> {
        let library = self.library.clone();
        self.update(|inv| {
            let s = Self::check_slot(inv, slot)?;
            let d = Self::check_drive(inv, drive)?;
            let _in_use = library.lock_drive(drive).map_err(tape_error)?;
            if let Some(t) = &inv.slots[s].tape {
                return Err(ChangerError::Refused(format!(
                    "slot {slot} already holds {t}"
                )));
            }
            let tape = inv.drives[d]
                .tape
                .take()
                .ok_or_else(|| ChangerError::Refused(format!("drive {drive} is empty")))?;
            inv.drives[d] = super::library::DriveState {
                alerts: std::mem::take(&mut inv.drives[d].alerts),
                ..Default::default()
            };
            inv.slots[s].tape = Some(tape);
            Ok(())
        })
    }

    fn transfer(&mut self, from: u32, to: u32) -> Result<(), ChangerError> {
        self.update(|inv| {
            let f = Self::check_slot(inv, from)?;
            let t = Self::check_slot(inv, to)?;
            if let Some(tape) = &inv.slots[t].tape {
                return Err(ChangerError::Refused(format!(
                    "slot {to} already holds {tape}"
                )));
            }
            let tape = inv.slots[f]
                .tape
                .take()
                .ok_or_else(|| ChangerError::Refused(format!("slot {from} is empty")))?;
            inv.slots[t].tape = Some(tape);
            Ok(())
        })
    }
}
