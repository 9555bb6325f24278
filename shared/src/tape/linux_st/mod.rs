//! The Linux SCSI tape driver (st) as a [`Drive`]: `/dev/nstN` (the
//! no-rewind device) through `read`, `write` and the `MTIOCTOP`, `MTIOCGET`
//! and `MTIOCPOS` ioctls.
//!
//! The kernel calls sit behind the small [`StSys`] trait ([`sys`]), so that
//! the part that needs care, turning st's signals into the plain results of
//! [`Drive`], is tested against a simulated tape. What st does and how it is
//! read here:
//!
//! - Positions are logical block addresses, which count filemarks: the
//!   driver option `MT_ST_SCSI2LOGICAL` is set at open (`open.rs`).
//! - Early warning: st fails a write with ENOSPC after the warning and then
//!   lets a trailer through, but whether the block that got ENOSPC is on tape
//!   differs (real drives: the crossing write succeeds and the next one gets
//!   ENOSPC unwritten; the kernel's scsi_debug emulator: ENOSPC for the
//!   crossing write although it is recorded). So after every ENOSPC the
//!   position is read and compared with where the write started
//!   (`transfer.rs`).
//! - Reading: a zero-byte read is a filemark, or at the end of data the
//!   status says `EOD`; ENOMEM means the block was larger than the buffer,
//!   and st has skipped it. In variable-block mode st refuses (EINVAL) a
//!   read larger than the drive's largest block, so a big buffer is read
//!   with a size the drive accepts (`transfer.rs`).
//! - Closing the device after a write makes st write a filemark, and st
//!   writes one before rewinding, seeking or spacing backward after a write:
//!   callers end their files with [`Drive::write_filemarks`] anyway.

mod open;
pub mod sys;
mod transfer;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

use std::fmt;

use nix::errno::Errno;

pub use open::{Clock, OpenOptions, SystemClock};
pub use sys::{Access, MtOp, MtStatus, RealSt, StSys};

use sys::{GMT_BOT, GMT_DR_OPEN, GMT_EOD, GMT_EOF, GMT_EOT, GMT_WR_PROT};

use super::{Drive, DriveStatus, Read, TapeError, Written};
use crate::scsi::encryption::{self, DriveKey};
use crate::scsi::mam::CartridgeMemory;
use crate::scsi::tapealert::TapeAlerts;
use crate::scsi::volume::VolumeStatistics;

/// A tape drive driven by the Linux st driver.
pub struct LinuxSt<S: StSys = RealSt> {
    device: String,
    sys: S,
    /// The logical block address, kept up to date by counting so that a
    /// write needs no ioctl; `None` after anything whose effect on the
    /// position is not certain, to be asked with `MTIOCPOS` when needed.
    pos: Option<u64>,
    /// A write met the early warning since the tape was last repositioned:
    /// every further write reports [`Written::EarlyWarning`].
    warned: bool,
    /// Opened read-only, or the tape is write-protected.
    write_protected: bool,
    variable_blocks: bool,
    /// The largest read st accepted after refusing a larger one (EINVAL:
    /// more than the drive's block limit), used for every later read.
    read_limit: Option<usize>,
    /// reel set a data key: it is cleared when the drive is let go.
    keyed: bool,
}

impl<S: StSys> fmt::Debug for LinuxSt<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinuxSt")
            .field("device", &self.device)
            .field("pos", &self.pos)
            .field("warned", &self.warned)
            .field("write_protected", &self.write_protected)
            .finish_non_exhaustive()
    }
}

impl LinuxSt<RealSt> {
    /// Open a real drive (`/dev/nst0`, or a `/dev/tape/by-id/…-nst` link),
    /// waiting for its tape as `options` say.
    pub fn open(device: &str, options: &OpenOptions) -> Result<Self, TapeError> {
        LinuxSt::open_with(
            device,
            options,
            |access| RealSt::open(device, access),
            &mut SystemClock::default(),
        )
    }

    /// Load the tape of a real drive that holds one unloaded, and open it
    /// (`reel mt load`): see [`LinuxSt::load_with`].
    pub fn load(device: &str, options: &OpenOptions) -> Result<Self, TapeError> {
        LinuxSt::load_with(
            device,
            options,
            |access| RealSt::open(device, access),
            &mut SystemClock::default(),
        )
    }
}

/// An st error as a [`TapeError`] naming the operation.
pub(super) fn st_error(op: &'static str, e: Errno) -> TapeError {
    match e {
        Errno::ENOMEDIUM => TapeError::NoTape,
        _ => TapeError::io(op, e.into()),
    }
}

/// The count of an `MTIOCTOP`, which st takes as an `int`.
fn count(op: MtOp, n: u64) -> Result<i32, TapeError> {
    i32::try_from(n).map_err(|_| {
        TapeError::Invalid(format!(
            "{}: {n} is more than st can take (at most {})",
            op.describe(),
            i32::MAX
        ))
    })
}

impl<S: StSys> LinuxSt<S> {
    /// The system layer, for tests that look behind the drive.
    #[cfg(test)]
    fn sys(&self) -> &S {
        &self.sys
    }

    /// One tape operation that moves the tape; `pos` is where it is known to
    /// end (`None`: ask the drive when it matters).
    fn moving(&mut self, op: MtOp, n: u64, pos: Option<u64>) -> Result<(), TapeError> {
        let n = count(op, n)?;
        // Whatever happens, the tape is no longer where the count was.
        self.pos = None;
        self.warned = false;
        self.sys
            .mtop(op, n)
            .map_err(|e| st_error(op.describe(), e))?;
        self.pos = pos;
        Ok(())
    }

    /// The position, from the count if known, else from the drive.
    fn here(&mut self) -> Result<u64, TapeError> {
        match self.pos {
            Some(p) => Ok(p),
            None => self.ask_position(),
        }
    }

    /// `MTIOCPOS`, which also resets the count.
    fn ask_position(&mut self) -> Result<u64, TapeError> {
        let p = self
            .sys
            .mtpos()
            .map_err(|e| st_error("read position (MTIOCPOS)", e))?;
        self.pos = Some(p);
        Ok(p)
    }
}

impl<S: StSys> Drive for LinuxSt<S> {
    fn device(&self) -> &str {
        &self.device
    }

    fn status(&mut self) -> Result<DriveStatus, TapeError> {
        let st = self.mtget()?;
        // READ POSITION fails on some drives while the position is lost;
        // the status is still worth showing then.
        let position = if st.online() {
            self.sys.mtpos().ok()
        } else {
            None
        };
        if position.is_some() {
            self.pos = position;
        }
        Ok(DriveStatus {
            online: st.online(),
            bot: st.has(GMT_BOT),
            eot: st.has(GMT_EOT),
            eod: st.has(GMT_EOD),
            filemark: st.has(GMT_EOF),
            write_protected: st.has(GMT_WR_PROT),
            door_open: st.has(GMT_DR_OPEN),
            file: st.file(),
            block: st.block(),
            position,
            block_size: st.block_size(),
            density: st.density(),
            volume: None,
        })
    }

    fn rewind(&mut self) -> Result<(), TapeError> {
        self.moving(MtOp::Rew, 1, Some(0))
    }

    fn forward_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        if n == 0 {
            return Ok(());
        }
        self.moving(MtOp::Fsf, n.into(), None)
    }

    fn back_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        if n == 0 {
            return Ok(());
        }
        self.moving(MtOp::Bsf, n.into(), None)
    }

    fn end_of_data(&mut self) -> Result<(), TapeError> {
        self.moving(MtOp::Eom, 1, None)
    }

    fn position(&mut self) -> Result<u64, TapeError> {
        self.ask_position()
    }

    fn seek(&mut self, block: u64) -> Result<(), TapeError> {
        self.moving(MtOp::Seek, block, Some(block))
    }

    fn write_filemarks(&mut self, n: u32) -> Result<Written, TapeError> {
        self.write_marks(MtOp::Weof, n)
    }

    fn write_filemarks_immediate(&mut self, n: u32) -> Result<Written, TapeError> {
        self.write_marks(MtOp::Weofi, n)
    }

    fn flush(&mut self) -> Result<Written, TapeError> {
        self.write_marks(MtOp::Weof, 0)
    }

    fn read_block(&mut self, buf: &mut [u8]) -> Result<Read, TapeError> {
        self.read_one(buf)
    }

    fn write_block(&mut self, data: &[u8]) -> Result<Written, TapeError> {
        self.write_one(data)
    }

    fn set_block_size(&mut self, size: u32) -> Result<(), TapeError> {
        let n = count(MtOp::SetBlk, size.into())?;
        self.sys
            .mtop(MtOp::SetBlk, n)
            .map_err(|e| st_error(MtOp::SetBlk.describe(), e))
    }

    /// The descriptor keeps the access it was opened with: after the tape
    /// of a read-only open is changed, open the drive again to write.
    fn load(&mut self) -> Result<(), TapeError> {
        // A count of 0 is a plain LOAD (st sends at least 1; higher values
        // drive some HP autoloaders).
        self.moving(MtOp::Load, 0, None)?;
        // st checks the tape after loading, as at open; a tape that needs
        // longer (calibration) is for a fresh open, which waits.
        let st = self.mtget()?;
        if !st.online() {
            return Err(if st.has(GMT_DR_OPEN) {
                TapeError::NoTape
            } else {
                TapeError::NotReady
            });
        }
        if st.has(GMT_WR_PROT) {
            self.write_protected = true;
        }
        self.prepare_tape()
    }

    fn unload(&mut self) -> Result<(), TapeError> {
        self.moving(MtOp::Offl, 1, None)
    }

    fn erase(&mut self, long: bool) -> Result<(), TapeError> {
        if self.write_protected {
            return Err(TapeError::WriteProtected);
        }
        // Where a drive leaves the tape after erasing is not the same for
        // all: ask when it matters.
        self.pos = None;
        self.warned = false;
        self.sys
            .mtop(MtOp::Erase, long.into())
            .map_err(|e| transfer::write_error(MtOp::Erase.describe(), e))
    }

    /// Read as [`crate::scsi::tapealert::read`] says, through SG_IO on the
    /// st descriptor; `None` also when st passes no SG_IO.
    fn tape_alerts(&mut self) -> Result<Option<TapeAlerts>, TapeError> {
        let sys = &mut self.sys;
        Ok(crate::scsi::tapealert::read(&self.device, |page, buf| {
            sys.log_sense(page, buf)
        }))
    }

    /// Through SG_IO on the st descriptor, as `stenc` does.
    fn set_encryption(&mut self, key: Option<&DriveKey>) -> Result<(), TapeError> {
        let sys = &mut self.sys;
        let r = encryption::apply(key, |cdb, data| sys.scsi(cdb, data));
        self.keyed = key.is_some() && r.is_ok();
        r.map_err(|m| {
            TapeError::io(
                "drive encryption",
                std::io::Error::other(format!("{}: {m}", self.device)),
            )
        })
    }

    fn encryption(&mut self) -> Result<Option<encryption::Status>, TapeError> {
        Ok(encryption::status(|cdb, buf| {
            self.sys.scsi(cdb, crate::scsi::sg_io::Data::In(buf))
        }))
    }

    fn volume_statistics(&mut self) -> Result<Option<VolumeStatistics>, TapeError> {
        let sys = &mut self.sys;
        Ok(crate::scsi::volume::read(&self.device, |page, buf| {
            sys.log_sense(page, buf)
        }))
    }

    fn cartridge_memory(&mut self) -> Result<Option<CartridgeMemory>, TapeError> {
        let mut buf = vec![0u8; 8192];
        match self.sys.read_attributes(&mut buf) {
            Ok(n) => Ok(Some(CartridgeMemory::from_attributes(&buf[..n]))),
            Err(e) => {
                log::debug!("{}: READ ATTRIBUTE: {e}", self.device);
                Ok(None)
            }
        }
    }
}

/// A key reel set does not outlive its use of the drive (a real drive
/// keeps it until cleared, a tape change or a power cycle).
impl<S: StSys> Drop for LinuxSt<S> {
    fn drop(&mut self) {
        if self.keyed
            && let Err(e) = self.set_encryption(None)
        {
            log::warn!("{e}");
        }
    }
}
