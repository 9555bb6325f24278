//! The SSC command layer of one emulated tape drive (peripheral device type
//! 1): CDBs in, data and sense out, over any [`Drive`] — in `reel-tcmu` a
//! drive of reel's virtual library, so that what st writes is a normal
//! `virtual:DIR` tape. It knows nothing of the ring: the data buffer is a
//! [`DataBuf`], which the unit tests fill from a `Vec`.
//!
//! The subset is what st and mt send: INQUIRY (standard, VPD 0x00, 0x80,
//! 0x83), TEST UNIT READY, REQUEST SENSE, READ BLOCK LIMITS, MODE
//! SENSE/SELECT (6 and 10) with a block descriptor, READ(6)/WRITE(6)
//! variable and fixed, WRITE FILEMARKS(6), SPACE(6 and 16), REWIND,
//! LOAD/UNLOAD, READ POSITION (short and long), LOCATE(10 and 16), ERASE,
//! PREVENT/ALLOW MEDIUM REMOVAL and REPORT DENSITY SUPPORT, plus what tells of the drive's and the
//! tape's health: LOG SENSE (`health.rs`) and READ/WRITE ATTRIBUTE, the
//! cartridge memory (`mam.rs`), and data encryption through SECURITY
//! PROTOCOL IN/OUT ([`crypto`]). The [`Drive`] trait's results become the sense real
//! drives give: a filemark read is NO SENSE with FM, the end of data BLANK
//! CHECK 0x00/0x05, a block shorter or longer than asked ILI with the
//! residue, a write past the early warning NO SENSE with EOM 0x00/0x02.
//! After a tape change (a changer move, a LOAD that brings a tape online)
//! the next command but INQUIRY, REQUEST SENSE and REPORT LUNS gets UNIT
//! ATTENTION 0x28/0x00 once, which tells st to forget its position; while
//! removal is prevented the changer leaves the tape where it is.

pub mod crypto;
mod health;
mod mam;
mod pages;
mod transfer;

pub use health::flag;

use super::inquiry::answer;
use super::sense::{Key, Reply, Sense};
use crate::tape::{Drive, Read, TapeError, Written};
use crate::vtl::{Image, VirtualDrive};

/// The cartridge in a drive, for what the drive tells of it (its memory,
/// the volume statistics): a virtual tape's image, `None` without a tape.
pub trait Cartridge {
    fn cartridge(&mut self) -> Option<&mut Image>;
}

impl Cartridge for VirtualDrive {
    fn cartridge(&mut self) -> Option<&mut Image> {
        self.image_mut()
    }
}

/// The data buffer of one command: the initiator's data for a data-out
/// command, the room for the answer of a data-in one.
pub trait DataBuf {
    /// Its length in bytes.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Append the initiator's data (data-out) to `to`.
    fn gather(&self, to: &mut Vec<u8>);
    /// Copy the answer in (data-in), as much as fits; returns the bytes copied.
    fn scatter(&mut self, from: &[u8]) -> usize;
}

impl DataBuf for Vec<u8> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn gather(&self, to: &mut Vec<u8>) {
        to.extend_from_slice(self);
    }
    fn scatter(&mut self, from: &[u8]) -> usize {
        let n = from.len().min(self.len());
        self[..n].copy_from_slice(&from[..n]);
        n
    }
}

/// Who the drive says it is, and its limits.
#[derive(Debug, Clone)]
pub struct Identity {
    /// 8 characters, padded.
    pub vendor: String,
    /// 16 characters, padded.
    pub product: String,
    /// 4 characters, padded.
    pub revision: String,
    /// The unit serial number (VPD 0x80), also in the device identifier.
    pub serial: String,
    /// The largest block READ BLOCK LIMITS reports (1 MiB: what passes
    /// through tcm_loop).
    pub max_block: u32,
    /// The density code of the block descriptor (0x60: LTO-9).
    pub density: u8,
}

impl Identity {
    pub fn new(serial: &str) -> Identity {
        Identity {
            vendor: "REEL".into(),
            product: "VIRTUAL LTO".into(),
            revision: "0001".into(),
            serial: serial.into(),
            max_block: 1 << 20,
            density: 0x60,
        }
    }
}

/// The largest block the emulator reads from its drive (the virtual
/// drive's own limit): a longer one is not reported as the right ILI.
const READ_ROOM: usize = 16 << 20;

pub struct Ssc<D: Drive + Cartridge> {
    drive: D,
    id: Identity,
    /// Bytes per block; 0 is variable-block mode.
    block_size: u32,
    /// The sense of the last CHECK CONDITION, for REQUEST SENSE.
    last: Option<Sense>,
    /// The tape changed (a move by the changer, a LOAD): the next command
    /// but INQUIRY, REQUEST SENSE and REPORT LUNS gets UNIT ATTENTION, as
    /// st expects to forget its position.
    attention: bool,
    /// PREVENT MEDIUM REMOVAL is in force: the changer must not take the
    /// tape out.
    prevent: bool,
    /// Error counters and TapeAlert flags.
    health: health::Health,
    /// The data encryption key and modes (SECURITY PROTOCOL OUT).
    crypto: crypto::Crypto,
    scratch: Vec<u8>,
    out: Vec<u8>,
}

fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// The sense for a [`TapeError`]; `op` says what was being done (a read
/// error and a write error have their own ASC).
fn sense_of(e: &TapeError, op: Op) -> Sense {
    match e {
        TapeError::NoTape => Sense::new(Key::NotReady, 0x3a, 0x00),
        TapeError::NotReady => Sense::new(Key::NotReady, 0x04, 0x01),
        TapeError::Busy(_) => Sense::new(Key::NotReady, 0x04, 0x00),
        TapeError::WriteProtected => Sense::new(Key::DataProtect, 0x27, 0x00),
        TapeError::EndOfMedium => Sense::new(Key::VolumeOverflow, 0x00, 0x02).eom(),
        TapeError::Invalid(_) | TapeError::BlockTooLarge { .. } => Sense::invalid_field(),
        TapeError::Unsupported(_) => Sense::invalid_opcode(),
        TapeError::NoDevice(_) => Sense::new(Key::HardwareError, 0x44, 0x00),
        TapeError::Io { .. } => match op {
            Op::Read => Sense::new(Key::MediumError, 0x11, 0x00),
            Op::Write => Sense::new(Key::MediumError, 0x0c, 0x00),
            Op::Other => Sense::new(Key::MediumError, 0x00, 0x00),
        },
    }
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
    Other,
}

impl<D: Drive + Cartridge> Ssc<D> {
    pub fn new(drive: D, id: Identity) -> Ssc<D> {
        Ssc {
            drive,
            id,
            block_size: 0,
            last: None,
            attention: false,
            prevent: false,
            health: health::Health::default(),
            crypto: crypto::Crypto::default(),
            scratch: Vec::new(),
            out: Vec::new(),
        }
    }

    pub fn drive(&mut self) -> &mut D {
        &mut self.drive
    }

    /// The tape in the drive changed behind the initiator's back (the
    /// changer moved one in or out): report it once, with UNIT ATTENTION
    /// 0x28/0x00 (not ready to ready change, medium may have changed).
    pub fn medium_changed(&mut self) {
        self.attention = true;
        self.health.new_load();
        self.crypto.demounted();
    }

    /// Whether an initiator prevented medium removal (PREVENT ALLOW MEDIUM
    /// REMOVAL with prevent set), which the changer honours.
    pub fn removal_prevented(&self) -> bool {
        self.prevent
    }

    /// Carry out one command. The CDB is the initiator's, unchecked.
    pub fn execute(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        log::trace!("cdb {:02x?}, buffer {}", cdb, data.len());
        let reply = match cdb.first() {
            None => Reply::check(Sense::invalid_opcode()),
            Some(_) if cdb.len() < 6 => Reply::check(Sense::invalid_field()),
            // INQUIRY, REQUEST SENSE and REPORT LUNS pass a unit attention.
            Some(&op) if self.attention && !matches!(op, 0x12 | 0x03 | 0xa0) => {
                self.attention = false;
                Reply::check(Sense::new(Key::UnitAttention, 0x28, 0x00))
            }
            Some(&op) => self.dispatch(op, cdb, data),
        };
        if let Some(s) = reply.sense {
            log::debug!("cdb {cdb:02x?}: sense {s:?}");
        }
        // REQUEST SENSE hands the last sense over once.
        if cdb.first() != Some(&0x03) {
            self.last = reply.sense;
        }
        reply
    }

    fn dispatch(&mut self, op: u8, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let need = match op >> 5 {
            0 => 6,
            1 | 2 => 10,
            4 => 16,
            5 => 12,
            _ => 6,
        };
        if cdb.len() < need {
            return Reply::check(Sense::invalid_field());
        }
        match op {
            0x00 => self.ready(),
            0x01 => self.simple(Op::Other, |d| d.rewind()),
            0x03 => self.request_sense(cdb, data),
            0x05 => self.block_limits(data),
            0x08 => self.read6(cdb, data),
            0x0a => self.write6(cdb, data),
            0x10 => self.write_filemarks(cdb),
            0x11 => self.space6(cdb),
            0x12 => self.inquiry(cdb, data),
            0x15 => self.mode_select(cdb, data, false),
            0x55 => self.mode_select(cdb, data, true),
            0x1a => self.mode_sense(cdb, data, false),
            0x5a => self.mode_sense(cdb, data, true),
            0x19 => {
                let long = cdb[1] & 0x01 != 0;
                self.simple(Op::Write, |d| d.erase(long))
            }
            0x1b => self.load_unload(cdb),
            0x1e => {
                // PREVENT field 01: prevent; 00: allow (10 and 11 are
                // obsolete for a tape drive, taken as they read).
                self.prevent = cdb[4] & 0x03 != 0;
                Reply::good()
            }
            0x2b => {
                let address = u64::from(u32::from_be_bytes([cdb[3], cdb[4], cdb[5], cdb[6]]));
                self.locate(cdb[1] & 0x02 != 0, cdb[8], address)
            }
            0x92 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&cdb[4..12]);
                if (cdb[1] >> 3) & 0x07 != 0 {
                    return Reply::check(Sense::invalid_field());
                }
                self.locate(cdb[1] & 0x02 != 0, cdb[3], u64::from_be_bytes(a))
            }
            0x34 => self.read_position(cdb, data),
            0x44 => self.report_density(cdb, data),
            0x4d => self.log_sense(cdb, data),
            0xa2 => self.security_in(cdb, data),
            0xb5 => self.security_out(cdb, data),
            0x8c => self.read_attribute(cdb, data),
            0x8d => self.write_attribute(cdb, data),
            0x91 => {
                let mut c = [0u8; 8];
                c.copy_from_slice(&cdb[4..12]);
                self.space(cdb[1] & 0x0f, i64::from_be_bytes(c))
            }
            _ => Reply::check(Sense::invalid_opcode()),
        }
    }

    /// Count a failed read or write and raise its TapeAlert flags.
    fn failed(&mut self, e: &TapeError, op: Op) {
        match (e, op) {
            (TapeError::Io { .. }, Op::Read) => {
                self.health.read_failures += 1;
                self.health
                    .raise(&[flag::HARD_ERROR, flag::MEDIA, flag::READ_FAILURE]);
            }
            (TapeError::Io { .. }, Op::Write) => {
                self.health.write_failures += 1;
                self.health
                    .raise(&[flag::HARD_ERROR, flag::MEDIA, flag::WRITE_FAILURE]);
            }
            (TapeError::WriteProtected, _) => self.health.raise(&[flag::WRITE_PROTECT]),
            _ => {}
        }
    }

    fn simple(&mut self, op: Op, f: impl FnOnce(&mut D) -> Result<(), TapeError>) -> Reply {
        match f(&mut self.drive) {
            Ok(()) => Reply::good(),
            Err(e) => Reply::check(sense_of(&e, op)),
        }
    }

    fn ready(&mut self) -> Reply {
        match self.drive.status() {
            Ok(s) if s.online => Reply::good(),
            Ok(s) if s.door_open => Reply::check(sense_of(&TapeError::NoTape, Op::Other)),
            Ok(_) => Reply::check(sense_of(&TapeError::NotReady, Op::Other)),
            Err(e) => Reply::check(sense_of(&e, Op::Other)),
        }
    }

    fn request_sense(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let sense = self.last.take().unwrap_or(Sense::new(Key::NoSense, 0, 0));
        answer(data, &sense.bytes(), usize::from(cdb[4]))
    }

    fn space6(&mut self, cdb: &[u8]) -> Reply {
        let raw = be24(&cdb[2..5]);
        // 24-bit two's complement.
        let count = i64::from(((raw << 8) as i32) >> 8);
        self.space(cdb[1] & 0x07, count)
    }

    /// SPACE(6) and SPACE(16): blocks (code 0), filemarks (1) or to the
    /// end of data (3).
    fn space(&mut self, code: u8, count: i64) -> Reply {
        match code {
            0 => self.space_blocks(count),
            1 => self.space_filemarks(count),
            3 => self.simple(Op::Other, |d| d.end_of_data()),
            _ => Reply::check(Sense::invalid_field()),
        }
    }

    /// The sense for hitting BOT while spacing back.
    fn bot(left: i64) -> Reply {
        Reply::check(Sense::new(Key::NoSense, 0x00, 0x04).eom().info(left))
    }

    fn space_filemarks(&mut self, count: i64) -> Reply {
        for i in 0..count.unsigned_abs() {
            let left = count.unsigned_abs() as i64 - i as i64;
            let step = if count > 0 {
                self.drive.forward_filemarks(1)
            } else {
                self.drive.back_filemarks(1)
            };
            if let Err(e) = step {
                let status = self.drive.status().unwrap_or_default();
                return match e {
                    TapeError::Io { .. } if count > 0 && status.eod => {
                        Reply::check(Sense::new(Key::BlankCheck, 0x00, 0x05).info(left))
                    }
                    TapeError::Io { .. } if count < 0 && status.position == Some(0) => {
                        Self::bot(left)
                    }
                    e => Reply::check(sense_of(&e, Op::Other).info(left)),
                };
            }
        }
        Reply::good()
    }

    fn space_blocks(&mut self, count: i64) -> Reply {
        if count > 0 {
            if self.scratch.len() < READ_ROOM {
                self.scratch.resize(READ_ROOM, 0);
            }
            for i in 0..count {
                let left = count - i;
                match self.drive.read_block(&mut self.scratch) {
                    Ok(Read::Data(_)) => {}
                    Ok(Read::Filemark) => {
                        return Reply::check(
                            Sense::new(Key::NoSense, 0x00, 0x01).filemark().info(left),
                        );
                    }
                    Ok(Read::EndOfData) => {
                        return Reply::check(Sense::new(Key::BlankCheck, 0x00, 0x05).info(left));
                    }
                    Err(e) => return Reply::check(sense_of(&e, Op::Read).info(left)),
                }
            }
            return Reply::good();
        }
        for i in 0..count.unsigned_abs() {
            let left = count.unsigned_abs() as i64 - i as i64;
            let here = match self.drive.position() {
                Ok(0) => return Self::bot(left),
                Ok(p) => p,
                Err(e) => return Reply::check(sense_of(&e, Op::Other).info(left)),
            };
            // Is the object behind the head a filemark? Step onto it and
            // read it (a data block does not fit the empty buffer).
            let behind = match self.drive.seek(here - 1) {
                Ok(()) => self.drive.read_block(&mut []),
                Err(e) => Err(e),
            };
            if let Err(e) = self.drive.seek(here - 1) {
                return Reply::check(sense_of(&e, Op::Other).info(left));
            }
            match behind {
                Ok(Read::Filemark) => {
                    // Stop on the BOT side of the filemark.
                    return Reply::check(
                        Sense::new(Key::NoSense, 0x00, 0x01).filemark().info(left),
                    );
                }
                Ok(_) | Err(TapeError::BlockTooLarge { .. }) => {}
                Err(e) => return Reply::check(sense_of(&e, Op::Other).info(left)),
            }
        }
        Reply::good()
    }

    fn load_unload(&mut self, cdb: &[u8]) -> Reply {
        if cdb[4] & 0x01 != 0 {
            // A tape that comes online is a not ready to ready change.
            let was = self.drive.status().is_ok_and(|s| s.online);
            let reply = self.simple(Op::Other, |d| d.load());
            if reply.sense.is_none() && !was && self.drive.status().is_ok_and(|s| s.online) {
                self.medium_changed();
            }
            reply
        } else {
            self.simple(Op::Other, |d| d.unload())
        }
    }

    fn locate(&mut self, change_partition: bool, partition: u8, address: u64) -> Reply {
        if change_partition && partition != 0 {
            return Reply::check(Sense::new(Key::IllegalRequest, 0x24, 0x00));
        }
        match self.drive.seek(address) {
            Ok(()) => Reply::good(),
            Err(TapeError::Io { .. }) if self.drive.status().is_ok_and(|s| s.eod) => {
                Reply::check(Sense::new(Key::BlankCheck, 0x00, 0x05))
            }
            Err(e) => Reply::check(sense_of(&e, Op::Other)),
        }
    }

    fn read_position(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let status = match self.drive.status() {
            Ok(s) if s.online => s,
            Ok(s) if s.door_open => return Reply::check(sense_of(&TapeError::NoTape, Op::Other)),
            Ok(_) => return Reply::check(sense_of(&TapeError::NotReady, Op::Other)),
            Err(e) => return Reply::check(sense_of(&e, Op::Other)),
        };
        let position = status.position.unwrap_or(0);
        let flags = if position == 0 { 0x80 } else { 0 } | if status.eot { 0x40 } else { 0 };
        match cdb[1] & 0x1f {
            0 | 1 => {
                let mut v = vec![0u8; 20];
                v[0] = flags;
                let p = (position as u32).to_be_bytes();
                v[4..8].copy_from_slice(&p);
                v[8..12].copy_from_slice(&p);
                answer(data, &v, 20)
            }
            6 => {
                let mut v = vec![0u8; 32];
                v[0] = flags;
                v[8..16].copy_from_slice(&position.to_be_bytes());
                match status.file {
                    Some(f) => v[16..24].copy_from_slice(&f.to_be_bytes()),
                    // Mark the file number unknown (MPU).
                    None => v[0] |= 0x08,
                }
                answer(data, &v, 32)
            }
            _ => Reply::check(Sense::invalid_field()),
        }
    }
}
