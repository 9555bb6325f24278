//! A medium changer driven over SG_IO on its `/dev/sgN` (device string
//! `sg:/dev/sgN`), without mtx: READ ELEMENT STATUS with volume tags and
//! drive identifiers (DVCID), MOVE MEDIUM. Slots are numbered as mtx
//! numbers them, so a configuration carries over: storage elements 1 to N
//! in address order, then the import/export elements; drives 0 to D-1 in
//! address order. The drive identifiers tell which `/dev/nstN` is which
//! drive element (`DriveElement::serial`).
//!
//! Libraries differ, and these are handled: a changer that refuses DVCID
//! is asked again without it (its drives then have no serial); the
//! allocation length stays below 64 KiB, which libraries that read only
//! its low 16 bits take the same way; a library that is NOT READY while it
//! takes inventory is `ChangerError::NotReady` (exit 75: the supervisor
//! comes back later).

use super::mtx::RetryPolicy;
use super::{Changer, ChangerError, ChangerStatus, DriveElement, SlotElement};
use crate::scsi::ascii_field;
use crate::scsi::sg_io::{Scsi, SgDevice, SgError};

/// SMC element type codes.
const TRANSPORT: u8 = 1;
const STORAGE: u8 = 2;
const IMPORT_EXPORT: u8 = 3;
const DATA_TRANSFER: u8 = 4;

/// One element as READ ELEMENT STATUS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub kind: u8,
    pub address: u16,
    pub full: bool,
    /// Where the medium came from (SVALID).
    pub source: Option<u16>,
    /// The primary volume tag, trimmed.
    pub barcode: Option<String>,
    /// The device identifier (DVCID), trimmed.
    pub identifier: Option<String>,
}

fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

/// Parse a READ ELEMENT STATUS answer (SMC-3 6.10): a header, then one
/// page per run of elements of a type, each with its descriptors.
pub fn parse_element_status(data: &[u8]) -> Result<Vec<Element>, String> {
    if data.len() < 8 {
        return Err(format!("{} bytes: shorter than its header", data.len()));
    }
    let available = u32::from_be_bytes([0, data[5], data[6], data[7]]) as usize;
    let end = (8 + available).min(data.len());
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= end {
        let page = &data[at..];
        let kind = page[0] & 0x0f;
        let (pvoltag, avoltag) = (page[1] & 0x80 != 0, page[1] & 0x40 != 0);
        let len = be16(&page[2..4]);
        let bytes = u32::from_be_bytes([0, page[5], page[6], page[7]]) as usize;
        if len < 12 {
            return Err(format!("element descriptor length {len} at byte {at}"));
        }
        let body_end = (at + 8 + bytes).min(end);
        let mut d = at + 8;
        while d + len <= body_end {
            let e = &data[d..d + len];
            let mut tag_at = 12;
            let barcode = if pvoltag && len >= tag_at + 36 {
                let b = ascii_field(&e[tag_at..tag_at + 32]);
                tag_at += 36;
                b
            } else {
                None
            };
            if avoltag && len >= tag_at + 36 {
                tag_at += 36;
            }
            // The device identifier, when the descriptor has room for it.
            let identifier = (kind == DATA_TRANSFER && len >= tag_at + 4)
                .then(|| {
                    let n = usize::from(e[tag_at + 3]);
                    e.get(tag_at + 4..tag_at + 4 + n).and_then(ascii_field)
                })
                .flatten();
            out.push(Element {
                kind,
                address: u16::from_be_bytes([e[0], e[1]]),
                full: e[2] & 0x01 != 0,
                source: (e[9] & 0x80 != 0).then(|| u16::from_be_bytes([e[10], e[11]])),
                barcode,
                identifier,
            });
            d += len;
        }
        at = body_end.max(at + 8);
        if bytes == 0 {
            break;
        }
    }
    Ok(out)
}

/// The elements in mtx's numbering.
struct Numbered {
    transport: u16,
    /// Drive index → element.
    drives: Vec<Element>,
    /// Slot number - 1 → element (storage, then import/export).
    slots: Vec<Element>,
}

impl Numbered {
    fn of(mut all: Vec<Element>) -> Numbered {
        all.sort_by_key(|e| e.address);
        let of = |k: u8| {
            all.iter()
                .filter(|e| e.kind == k)
                .cloned()
                .collect::<Vec<_>>()
        };
        let mut slots = of(STORAGE);
        slots.extend(of(IMPORT_EXPORT));
        Numbered {
            transport: of(TRANSPORT).first().map_or(0, |e| e.address),
            drives: of(DATA_TRANSFER),
            slots,
        }
    }

    fn slot_number(&self, address: u16) -> Option<u32> {
        self.slots
            .iter()
            .position(|s| s.address == address)
            .map(|i| i as u32 + 1)
    }

    fn status(&self) -> ChangerStatus {
        ChangerStatus {
            drives: self
                .drives
                .iter()
                .enumerate()
                .map(|(i, e)| DriveElement {
                    index: i as u32,
                    full: e.full,
                    barcode: e.barcode.clone().filter(|_| e.full),
                    source_slot: e.source.and_then(|a| self.slot_number(a)),
                    serial: e.identifier.clone(),
                })
                .collect(),
            slots: self
                .slots
                .iter()
                .enumerate()
                .map(|(i, e)| SlotElement {
                    number: i as u32 + 1,
                    full: e.full,
                    barcode: e.barcode.clone().filter(|_| e.full),
                    import_export: e.kind == IMPORT_EXPORT,
                })
                .collect(),
        }
    }
}

/// A changer over any [`Scsi`] device.
pub struct SgChanger<S: Scsi> {
    device: String,
    scsi: S,
    /// How often and how patiently a library that is not ready (taking
    /// inventory) is asked again.
    retry: RetryPolicy,
}

impl SgChanger<SgDevice> {
    /// Open the changer's generic SCSI node.
    pub fn open(path: &std::path::Path) -> Result<SgChanger<SgDevice>, ChangerError> {
        let scsi = SgDevice::open(path, std::time::Duration::from_secs(10 * 60)).map_err(|e| {
            ChangerError::Io {
                op: format!("opening {}", path.display()),
                source: e.into(),
            }
        })?;
        Ok(SgChanger::new(format!("sg:{}", path.display()), scsi))
    }
}

impl<S: Scsi> SgChanger<S> {
    pub fn new(device: String, scsi: S) -> SgChanger<S> {
        SgChanger {
            device,
            scsi,
            retry: RetryPolicy::default(),
        }
    }

    /// Ask a library that is not ready again this often and this patiently.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Send one command, again while the library answers NOT READY (an
    /// inventory after its door was closed takes minutes): the command
    /// was not carried out, so sending it again is safe.
    fn patient<T>(
        &mut self,
        mut f: impl FnMut(&mut S) -> Result<T, SgError>,
    ) -> Result<T, SgError> {
        let mut attempt = 0;
        loop {
            match f(&mut self.scsi) {
                Err(e)
                    if attempt < self.retry.retries
                        && e.decoded().is_some_and(|s| {
                            s.key == crate::scsi::sense::key::NOT_READY && !s.no_medium()
                        }) =>
                {
                    attempt += 1;
                    log::info!(
                        "{} is not ready ({e}); asking again in {:?} ({attempt} of {})",
                        self.device,
                        self.retry.delay,
                        self.retry.retries
                    );
                    std::thread::sleep(self.retry.delay);
                }
                other => return other,
            }
        }
    }

    fn error(&self, what: &str, e: SgError) -> ChangerError {
        let m = format!("{}: {what}: {e}", self.device);
        match e.sense() {
            Some((0x02, _, _)) => ChangerError::NotReady(m),
            Some(_) => ChangerError::Refused(m),
            None => match e {
                SgError::Os(errno) => ChangerError::Io {
                    op: format!("{}: {what}", self.device),
                    source: errno.into(),
                },
                _ => ChangerError::Refused(m),
            },
        }
    }

    /// Every element, with volume tags, and drive identifiers when the
    /// library gives them.
    pub fn elements(&mut self) -> Result<Vec<Element>, ChangerError> {
        // Below 64 KiB: the same number read as 16 or 24 bits.
        let mut buf = vec![0u8; 0xfff0];
        let alloc = (buf.len() as u32).to_be_bytes();
        let mut cdb = [
            0xb8, 0x10, 0, 0, 0xff, 0xff, 0x01, alloc[1], alloc[2], alloc[3], 0, 0,
        ];
        let n = match self.patient(|s| s.data_in(&cdb, &mut buf)) {
            Ok(n) => n,
            // Some libraries refuse DVCID: ask without it.
            Err(e) if matches!(e.sense(), Some((0x05, 0x24, _))) => {
                cdb[6] = 0;
                self.patient(|s| s.data_in(&cdb, &mut buf))
                    .map_err(|e| self.error("READ ELEMENT STATUS", e))?
            }
            Err(e) => return Err(self.error("READ ELEMENT STATUS", e)),
        };
        parse_element_status(&buf[..n]).map_err(|m| {
            ChangerError::Refused(format!("{}: READ ELEMENT STATUS: {m}", self.device))
        })
    }

    fn numbered(&mut self) -> Result<Numbered, ChangerError> {
        Ok(Numbered::of(self.elements()?))
    }

    fn move_medium(
        &mut self,
        what: &str,
        from: u16,
        to: u16,
        n: &Numbered,
    ) -> Result<(), ChangerError> {
        let (t, f, d) = (
            n.transport.to_be_bytes(),
            from.to_be_bytes(),
            to.to_be_bytes(),
        );
        let cdb = [0xa5, 0, t[0], t[1], f[0], f[1], d[0], d[1], 0, 0, 0, 0];
        self.patient(|s| s.no_data(&cdb))
            .map_err(|e| self.error(&format!("MOVE MEDIUM ({what})"), e))
    }

    fn slot(&self, n: &Numbered, slot: u32) -> Result<u16, ChangerError> {
        n.slots
            .get((slot as usize).wrapping_sub(1))
            .map(|e| e.address)
            .ok_or_else(|| {
                ChangerError::Refused(format!(
                    "{}: no slot {slot} (the library has {})",
                    self.device,
                    n.slots.len()
                ))
            })
    }

    fn drive(&self, n: &Numbered, drive: u32) -> Result<u16, ChangerError> {
        n.drives
            .get(drive as usize)
            .map(|e| e.address)
            .ok_or_else(|| {
                ChangerError::Refused(format!(
                    "{}: no drive {drive} (the library has {})",
                    self.device,
                    n.drives.len()
                ))
            })
    }
}

impl<S: Scsi> Changer for SgChanger<S> {
    fn device(&self) -> &str {
        &self.device
    }

    fn status(&mut self) -> Result<ChangerStatus, ChangerError> {
        Ok(self.numbered()?.status())
    }

    fn load(&mut self, slot: u32, drive: u32) -> Result<(), ChangerError> {
        let n = self.numbered()?;
        let (from, to) = (self.slot(&n, slot)?, self.drive(&n, drive)?);
        self.move_medium(&format!("slot {slot} to drive {drive}"), from, to, &n)
    }

    fn unload(&mut self, drive: u32, slot: u32) -> Result<(), ChangerError> {
        let n = self.numbered()?;
        let (from, to) = (self.drive(&n, drive)?, self.slot(&n, slot)?);
        self.move_medium(&format!("drive {drive} to slot {slot}"), from, to, &n)
    }

    fn transfer(&mut self, from: u32, to: u32) -> Result<(), ChangerError> {
        let n = self.numbered()?;
        let (a, b) = (self.slot(&n, from)?, self.slot(&n, to)?);
        self.move_medium(&format!("slot {from} to slot {to}"), a, b, &n)
    }
}

#[cfg(test)]
mod tests;
