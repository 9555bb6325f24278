//! The SMC command layer of an emulated medium changer (peripheral device
//! type 8) over reel's virtual library: a MOVE MEDIUM through the kernel is
//! a move in `library.json`, which `virtual:DIR` and the served drives see.
//!
//! The subset is what mtx and the kernel's ch send: INQUIRY (standard, VPD
//! 0x00, 0x80, 0x83), TEST UNIT READY, REQUEST SENSE, MODE SENSE(6/10)
//! pages 0x1D (element address assignment), 0x1E (transport geometry) and
//! 0x1F (device capabilities), READ ELEMENT STATUS with volume tags and
//! drive identifiers ([`elements`]), MOVE MEDIUM, INITIALIZE ELEMENT STATUS
//! (with and without range) and PREVENT/ALLOW MEDIUM REMOVAL.
//!
//! Element addresses:
//!
//! ```text
//! 0x0000              the medium transport (one)
//! 0x0001 + n          drive n (mtx's Data Transfer Element n)
//! 0x1000 + i          library.json's slots[i] (mtx's slot i + 1): the
//!                     storage slots, then the import/export slots
//! ```
//!
//! so mtx's numbering of slots and drives is the virtual library's. The
//! import/export slots must come after the storage slots in library.json,
//! as a library created by reel has them.

mod elements;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::bay::Bay;
use super::inquiry::{Names, answer, inquiry};
use super::sense::{Key, Reply, Sense};
use super::ssc::{DataBuf, Identity, Ssc};
use crate::changer::{Changer, ChangerError};
use crate::tape::TapeError;
use crate::vtl::{Inventory, Library, VirtualChanger};

pub const TRANSPORT: u16 = 0x0000;
pub const FIRST_DRIVE: u16 = 0x0001;
pub const FIRST_SLOT: u16 = 0x1000;

/// A drive that this process serves too: the changer closes and reopens
/// it around a move (see [`Bay`]).
pub type Served = Arc<Mutex<Ssc<Bay>>>;

/// One element of the library, by its mtx-style number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Element {
    Transport,
    Drive(u32),
    /// A slot, numbered from 1 as mtx numbers them (storage or mail).
    Slot(u32),
}

pub struct Smc {
    library: Library,
    changer: VirtualChanger,
    id: Identity,
    /// The unit serial number of each drive, by index: the device
    /// identifier READ ELEMENT STATUS gives with DVCID.
    drive_serials: Vec<String>,
    served: BTreeMap<u32, Served>,
    last: Option<Sense>,
}

pub(crate) fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

fn hardware(e: impl std::fmt::Display) -> Sense {
    log::warn!("changer: {e}");
    Sense::new(Key::HardwareError, 0x44, 0x00)
}

fn invalid_element() -> Sense {
    Sense::new(Key::IllegalRequest, 0x21, 0x01)
}

impl Smc {
    /// The changer of `library`; `drive_serials[n]` is what drive n's
    /// INQUIRY reports, and `served` the drives this process also serves.
    pub fn new(
        library: Library,
        id: Identity,
        drive_serials: Vec<String>,
        served: BTreeMap<u32, Served>,
    ) -> Result<Smc, TapeError> {
        let inv = {
            let _guard = library.lock()?;
            library.read()?
        };
        if inv
            .slots
            .windows(2)
            .any(|w| w[0].import_export && !w[1].import_export)
        {
            return Err(TapeError::Invalid(format!(
                "{}/library.json: the import/export slots must follow the storage slots",
                library.dir().display()
            )));
        }
        let device = format!("virtual:{}", library.dir().display());
        Ok(Smc {
            changer: VirtualChanger::new(library.clone(), device, Default::default()),
            library,
            id,
            drive_serials,
            served,
            last: None,
        })
    }

    fn inventory(&self) -> Result<Inventory, TapeError> {
        let _guard = self.library.lock()?;
        self.library.read()
    }

    fn drive_serial(&self, drive: u32) -> String {
        self.drive_serials
            .get(drive as usize)
            .cloned()
            .unwrap_or_else(|| super::default_serial(drive))
    }

    /// Carry out one command. The CDB is the initiator's, unchecked.
    pub fn execute(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        log::trace!("changer cdb {:02x?}, buffer {}", cdb, data.len());
        let reply = match cdb.first() {
            None => Reply::check(Sense::invalid_opcode()),
            Some(&op) => {
                let need = match op >> 5 {
                    0 => 6,
                    1 | 2 => 10,
                    4 => 16,
                    _ => 12,
                };
                if cdb.len() < need {
                    Reply::check(Sense::invalid_field())
                } else {
                    // ch puts the LUN in the top bits of byte 1 (SCSI-2).
                    let mut c = [0u8; 16];
                    c[..need].copy_from_slice(&cdb[..need]);
                    c[1] &= 0x1f;
                    self.dispatch(op, &c[..need], data)
                }
            }
        };
        if let Some(s) = reply.sense {
            log::debug!("changer cdb {cdb:02x?}: sense {s:?}");
        }
        if cdb.first() != Some(&0x03) {
            self.last = reply.sense;
        }
        reply
    }

    fn dispatch(&mut self, op: u8, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        match op {
            // TEST UNIT READY, INITIALIZE ELEMENT STATUS (with range),
            // PREVENT/ALLOW: the inventory is always known, nothing locks.
            0x00 | 0x07 | 0x37 | 0x1e => Reply::good(),
            0x03 => {
                let sense = self.last.take().unwrap_or(Sense::new(Key::NoSense, 0, 0));
                answer(data, &sense.bytes(), usize::from(cdb[4]))
            }
            0x12 => self.inquiry(cdb, data),
            0x1a => self.mode_sense(cdb, data, false),
            0x5a => self.mode_sense(cdb, data, true),
            0xb8 => match self.inventory() {
                Ok(inv) => elements::read_element_status(self, &inv, cdb, data),
                Err(e) => Reply::check(hardware(e)),
            },
            0xa5 => match self.move_medium(cdb) {
                Ok(()) => Reply::good(),
                Err(s) => Reply::check(s),
            },
            _ => Reply::check(Sense::invalid_opcode()),
        }
    }

    fn inquiry(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let who = Names {
            peripheral: 0x08,
            version: 0x05,
            vendor: &self.id.vendor,
            product: &self.id.product,
            revision: &self.id.revision,
            serial: &self.id.serial,
        };
        inquiry(cdb, &who, data)
    }

    fn mode_sense(&mut self, cdb: &[u8], data: &mut dyn DataBuf, ten: bool) -> Reply {
        let (pc, page) = (cdb[2] >> 6, cdb[2] & 0x3f);
        let alloc = if ten {
            be16(&cdb[7..9])
        } else {
            usize::from(cdb[4])
        };
        if pc == 3 {
            return Reply::check(Sense::new(Key::IllegalRequest, 0x39, 0x00));
        }
        let inv = match self.inventory() {
            Ok(inv) => inv,
            Err(e) => return Reply::check(hardware(e)),
        };
        // Changeable values (pc 1): none.
        let values = pc != 1;
        let mut pages = Vec::new();
        if page == 0x1d || page == 0x3f {
            let mail = inv.slots.iter().filter(|s| s.import_export).count() as u16;
            let storage = inv.slots.len() as u16 - mail;
            let mut p = vec![0x1d, 0x12];
            for (first, n) in [
                (TRANSPORT, 1),
                (FIRST_SLOT, storage),
                (FIRST_SLOT + storage, mail),
                (FIRST_DRIVE, inv.drives.len() as u16),
            ] {
                let (first, n) = if values { (first, n) } else { (0, 0) };
                p.extend(first.to_be_bytes());
                p.extend(n.to_be_bytes());
            }
            p.extend([0, 0]);
            pages.extend(p);
        }
        if page == 0x1e || page == 0x3f {
            pages.extend([0x1e, 0x02, 0, 0]);
        }
        if page == 0x1f || page == 0x3f {
            let mut p = vec![0u8; 20];
            p[0] = 0x1f;
            p[1] = 0x12;
            if values {
                // Storage in slots, mail slots and drives; moves from a
                // slot or mail slot anywhere but the transport, from a
                // drive to a slot or mail slot.
                p[2] = 0x0e;
                p[5] = 0x0e;
                p[6] = 0x0e;
                p[7] = 0x06;
            }
            pages.extend(p);
        }
        if pages.is_empty() {
            return Reply::check(Sense::invalid_field());
        }
        // No block descriptors: a changer has none.
        let v = if ten {
            let mut h = vec![0u8; 8];
            h.extend(pages);
            let len = (h.len() - 2) as u16;
            h[0..2].copy_from_slice(&len.to_be_bytes());
            h
        } else {
            let mut h = vec![0u8; 4];
            h.extend(pages);
            h[0] = (h.len() - 1) as u8;
            h
        };
        answer(data, &v, alloc)
    }

    /// The element at `address`, if there is one.
    pub(crate) fn element(inv: &Inventory, address: u16) -> Option<Element> {
        let drives = inv.drives.len() as u16;
        let slots = inv.slots.len() as u16;
        match address {
            TRANSPORT => Some(Element::Transport),
            a if (FIRST_DRIVE..FIRST_DRIVE + drives).contains(&a) => {
                Some(Element::Drive(u32::from(a - FIRST_DRIVE)))
            }
            a if (FIRST_SLOT..FIRST_SLOT + slots).contains(&a) => {
                Some(Element::Slot(u32::from(a - FIRST_SLOT) + 1))
            }
            _ => None,
        }
    }

    fn move_medium(&mut self, cdb: &[u8]) -> Result<(), Sense> {
        let [transport, from, to] = [2, 4, 6].map(|i| u16::from_be_bytes([cdb[i], cdb[i + 1]]));
        if cdb[10] & 0x01 != 0 {
            // INVERT: the virtual library's tapes have one side.
            return Err(Sense::invalid_field());
        }
        let inv = self.inventory().map_err(hardware)?;
        let (Some(Element::Transport), Some(src), Some(dst)) = (
            Self::element(&inv, transport),
            Self::element(&inv, from),
            Self::element(&inv, to),
        ) else {
            return Err(invalid_element());
        };
        let full = |e: Element| match e {
            Element::Drive(d) => inv.drives[d as usize].tape.is_some(),
            Element::Slot(s) => inv.slots[s as usize - 1].tape.is_some(),
            Element::Transport => false,
        };
        if !full(src) {
            return Err(Sense::new(Key::IllegalRequest, 0x3b, 0x0e));
        }
        if src == dst {
            return Ok(());
        }
        if full(dst) {
            return Err(Sense::new(Key::IllegalRequest, 0x3b, 0x0d));
        }
        log::info!("changer: move {src:?} to {dst:?}");
        let result = match (src, dst) {
            (Element::Slot(s), Element::Drive(d)) => self.at_drive(d, false, |c| c.load(s, d)),
            (Element::Drive(d), Element::Slot(s)) => self.at_drive(d, true, |c| c.unload(d, s)),
            (Element::Slot(a), Element::Slot(b)) => Ok(self.changer.transfer(a, b)),
            _ => return Err(invalid_element()),
        };
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(ChangerError::Refused(m))) => {
                // A drive another program holds, or one whose initiator
                // prevented removal: its tape cannot leave.
                log::warn!("changer: {m}");
                Err(Sense::new(Key::IllegalRequest, 0x53, 0x02))
            }
            Ok(Err(e)) => Err(hardware(e)),
            Err(e) => Err(hardware(e)),
        }
    }

    /// Run a move through drive `drive`, closing and reopening it around
    /// the move when this process serves it; `leaving`: the move takes the
    /// drive's tape out, which its PREVENT MEDIUM REMOVAL forbids. A drive
    /// whose tape changed reports it with a unit attention.
    fn at_drive(
        &mut self,
        drive: u32,
        leaving: bool,
        change: impl FnOnce(&mut VirtualChanger) -> Result<(), ChangerError>,
    ) -> Result<Result<(), ChangerError>, TapeError> {
        let changer = &mut self.changer;
        match self.served.get(&drive) {
            None => Ok(change(changer)),
            Some(ssc) => {
                let mut ssc = ssc.lock().unwrap_or_else(|p| p.into_inner());
                if leaving && ssc.removal_prevented() {
                    return Ok(Err(ChangerError::Refused(format!(
                        "drive {drive}: medium removal is prevented"
                    ))));
                }
                let out = ssc.drive().around(|| change(changer))?;
                if out.is_ok() {
                    ssc.medium_changed();
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests;
