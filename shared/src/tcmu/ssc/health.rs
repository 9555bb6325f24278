//! What a served drive tells of its health through LOG SENSE: the pages
//! sg_logs and backup software read (supported pages 0x00, write and read
//! error counters 0x02 and 0x03, TapeAlert response 0x12, volume statistics
//! 0x17, TapeAlert 0x2E).
//!
//! TapeAlert flags are numbered 1 to 64 as SSC numbers them. A flag raised
//! by an event (a read or write failure, a write to a protected tape) stays
//! raised until page 0x2E is read whole, which clears it, as drives do
//! (reading only its header, as sg_logs does first, clears nothing); page 0x12
//! shows the same flags without clearing them. A standing condition (the
//! drive needs cleaning) stays raised until it ends. A tape change starts
//! the error counters and the event flags again. The page control field is
//! not told apart: thresholds and cumulative values read the same.

use super::{Cartridge, DataBuf, Drive, Key, Reply, Sense, Ssc, be16};
use crate::tcmu::inquiry::{answer, padded};
use crate::vtl::medium_serial;

/// TapeAlert flag numbers (SSC-4 annex).
pub mod flag {
    pub const HARD_ERROR: u8 = 3;
    pub const MEDIA: u8 = 4;
    pub const READ_FAILURE: u8 = 5;
    pub const WRITE_FAILURE: u8 = 6;
    pub const WRITE_PROTECT: u8 = 9;
    pub const CLEANING_REQUIRED: u8 = 20;
}

/// The log pages a served drive has, in order.
const PAGES: [u8; 6] = [0x00, 0x02, 0x03, 0x12, 0x17, 0x2e];

/// Flag `n` (1..=64) as a bit: flag 1 is the most significant, as in page
/// 0x12 and the cartridge memory's TapeAlert attribute.
fn bit(n: u8) -> u64 {
    1u64 << (64 - u32::from(n))
}

/// Error counters and TapeAlert flags of the current load.
#[derive(Debug, Default, Clone)]
pub(super) struct Health {
    /// Raised by events since page 0x2E was last read.
    raised: u64,
    /// Standing conditions.
    standing: u64,
    pub(super) read_failures: u64,
    pub(super) write_failures: u64,
}

impl Health {
    /// All flags now up.
    pub(super) fn flags(&self) -> u64 {
        self.raised | self.standing
    }

    pub(super) fn raise(&mut self, flags: &[u8]) {
        for &f in flags {
            self.raised |= bit(f);
        }
    }

    pub(super) fn set_standing(&mut self, f: u8, on: bool) {
        if on {
            self.standing |= bit(f);
        } else {
            self.standing &= !bit(f);
        }
    }

    /// A tape change: counters and event flags start again.
    pub(super) fn new_load(&mut self) {
        *self = Health {
            standing: self.standing,
            ..Health::default()
        };
    }
}

/// One log parameter: code, control byte, value.
fn param(out: &mut Vec<u8>, code: u16, control: u8, value: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    out.push(control);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

/// A counter parameter (binary, 8 bytes).
fn counter(out: &mut Vec<u8>, code: u16, value: u64) {
    param(out, code, 0x02, &value.to_be_bytes());
}

/// A string parameter (ASCII format list).
fn ascii(out: &mut Vec<u8>, code: u16, value: &str, len: usize) {
    param(out, code, 0x01, &padded(value, len));
}

const MB: u64 = 1_000_000;

impl<D: Drive + Cartridge> Ssc<D> {
    /// TapeAlert "cleaning required" (flag 20) on or off, as a drive that needs cleaning
    /// reports it until it is cleaned.
    pub fn set_needs_cleaning(&mut self, on: bool) {
        self.health.set_standing(flag::CLEANING_REQUIRED, on);
    }

    /// The TapeAlert flags now up, flag 1 the most significant bit.
    pub fn tape_alerts(&self) -> u64 {
        self.health.flags()
    }

    pub(super) fn log_sense(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let (page, subpage) = (cdb[2] & 0x3f, cdb[3]);
        let pointer = be16(&cdb[5..7]) as u16;
        let alloc = be16(&cdb[7..9]);
        if subpage != 0 || !PAGES.contains(&page) {
            return Reply::check(Sense::invalid_field());
        }
        let mut params = Vec::new();
        match page {
            0x00 => params.extend_from_slice(&PAGES),
            0x02 => self.error_counters(&mut params, self.health.write_failures, true),
            0x03 => self.error_counters(&mut params, self.health.read_failures, false),
            0x12 => param(&mut params, 0, 0x03, &self.health.flags().to_be_bytes()),
            0x17 => {
                if let Err(reply) = self.volume_statistics(&mut params) {
                    return reply;
                }
            }
            _ => {
                let flags = self.health.flags();
                for n in 1..=64u8 {
                    param(
                        &mut params,
                        u16::from(n),
                        0x03,
                        &[u8::from(flags & bit(n) != 0)],
                    );
                }
                // Read whole, the event flags go down; sg_logs first asks
                // for the 4-byte header alone to learn the length.
                if alloc >= 4 + params.len() {
                    self.health.raised = 0;
                }
            }
        }
        if page != 0x00 && pointer != 0 {
            params = from_pointer(&params, pointer);
        }
        let mut v = vec![page, 0];
        v.extend_from_slice(&(params.len() as u16).to_be_bytes());
        v.extend(params);
        answer(data, &v, alloc)
    }

    /// Write (0x02) or read (0x03) error counters of the current load:
    /// nothing is ever corrected on a virtual tape, so every error counted
    /// is uncorrected.
    fn error_counters(&mut self, out: &mut Vec<u8>, failures: u64, write: bool) {
        let bytes = self.drive.cartridge().map_or(0, |i| {
            if write {
                i.meta.life.load_written
            } else {
                i.meta.life.load_read
            }
        });
        for code in 0..=4 {
            counter(out, code, 0);
        }
        counter(out, 5, bytes);
        counter(out, 6, failures);
    }

    /// Volume statistics of the tape in the drive.
    fn volume_statistics(&mut self, out: &mut Vec<u8>) -> Result<(), Reply> {
        let health = self.health.clone();
        let Some(image) = self.drive.cartridge() else {
            return Err(Reply::check(Sense::new(Key::NotReady, 0x3a, 0x00)));
        };
        let life = &image.meta.life;
        param(out, 0x0000, 0x03, &[1]); // page valid
        counter(out, 0x0001, life.loads);
        counter(out, 0x0004, health.write_failures);
        counter(out, 0x0009, health.read_failures);
        counter(out, 0x000c, health.write_failures);
        counter(out, 0x000d, health.read_failures);
        counter(out, 0x000e, life.load_written / MB);
        counter(out, 0x000f, life.load_read / MB);
        counter(out, 0x0010, life.written / MB);
        counter(out, 0x0011, life.read / MB);
        counter(out, 0x0016, image.meta.capacity.0 / MB);
        counter(out, 0x0017, image.used() / MB);
        ascii(out, 0x0040, &medium_serial(&image.meta.barcode), 32);
        ascii(out, 0x0042, &image.meta.barcode, 32);
        ascii(out, 0x0043, "REEL", 8);
        Ok(())
    }
}

/// The parameters of `params` whose code is `pointer` or above.
fn from_pointer(params: &[u8], pointer: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= params.len() {
        let end = (at + 4 + usize::from(params[at + 3])).min(params.len());
        if u16::from_be_bytes([params[at], params[at + 1]]) >= pointer {
            out.extend_from_slice(&params[at..end]);
        }
        at = end;
    }
    out
}
