//! Reading and writing blocks and filemarks, where st's signals become the
//! results of [`Drive`](crate::tape::Drive).
//!
//! Writing near the end of the tape. st's documented rule: the write that
//! meets the early warning returns its full count, the next one fails with
//! ENOSPC, the one after (a trailer) goes through, and from then on ENOSPC
//! and success alternate until the physical end. The kernel's scsi_debug
//! emulator instead fails the crossing write with ENOSPC although it recorded
//! the block. So an ENOSPC says "early warning" but not whether the block is
//! on tape; only the position can tell. The fast path counts the position
//! itself (no ioctl per block); after an ENOSPC it asks `MTIOCPOS`:
//!
//! - the position moved past the block: it is on tape → `EarlyWarning`;
//! - it did not: st refused it before sending it; try once more (the
//!   trailer allowance) → `EarlyWarning` if that gets it on tape;
//! - a second ENOSPC without progress: the tape is full → `EndOfMedium`.
//!
//! A block is therefore reported written only when its write returned the
//! full count or the position proves it is on tape, and it is never written
//! twice. On a real drive the crossing write gives no sign at all, so the
//! warning shows on the block after it. Filemarks (`MTWEOF`) follow the same
//! rules.
//!
//! Reading with a big buffer. In variable-block mode st refuses a read
//! larger than the drive's largest block (READ BLOCK LIMITS: 8 MiB or
//! 16 MiB - 1 on LTO drives, 1 MiB on scsi_debug) with EINVAL before the
//! tape moves, and st does not tell that limit. Callers read with a buffer
//! as large as any block reel writes (16 MiB), so on EINVAL the read is
//! tried again with the next smaller size (16 MiB - 1, then halving), and
//! the size that worked is kept for later reads.

use nix::errno::Errno;

use super::sys::{GMT_EOD, GMT_EOT, MtOp, StSys};
use super::{LinuxSt, count, st_error};
use crate::tape::{Read, TapeError, Written};

/// An error of an operation that writes: st answers EACCES when the tape
/// (or the open mode) does not allow writing.
pub(super) fn write_error(op: &'static str, e: Errno) -> TapeError {
    match e {
        Errno::EACCES | Errno::EROFS => TapeError::WriteProtected,
        _ => st_error(op, e),
    }
}

/// The smallest read size tried after st refused a larger one: a drive
/// whose largest block is smaller than this is not one reel can use.
const MIN_READ_LIMIT: usize = 64 * 1024;

impl<S: StSys> LinuxSt<S> {
    pub(super) fn write_one(&mut self, data: &[u8]) -> Result<Written, TapeError> {
        if self.write_protected {
            return Err(TapeError::WriteProtected);
        }
        if data.is_empty() {
            // st writes nothing for a zero-byte write; a caller meaning an
            // empty block would lose it silently.
            return Err(TapeError::Invalid(
                "write: a tape block cannot be empty".to_string(),
            ));
        }
        let start = self.here()?;
        let mut retried = false;
        loop {
            match self.sys.write(data) {
                Ok(n) if n == data.len() => return Ok(self.wrote(start + 1)),
                Ok(n) => {
                    self.pos = None;
                    return Err(TapeError::io(
                        "write",
                        std::io::Error::other(format!(
                            "the drive took {n} of {} bytes; a tape block is all or nothing",
                            data.len()
                        )),
                    ));
                }
                Err(Errno::ENOSPC) => {
                    if self.after_enospc("write", start, 1, &mut retried)? == 0 {
                        return Ok(Written::EarlyWarning);
                    }
                }
                Err(e) => {
                    self.pos = None;
                    return Err(write_error("write", e));
                }
            }
        }
    }

    /// `n` filemarks by `op`: `MTWEOF` (waiting for them to reach the
    /// tape; of 0, a flush) or `MTWEOFI` (not waiting).
    pub(super) fn write_marks(&mut self, op: MtOp, n: u32) -> Result<Written, TapeError> {
        if self.write_protected {
            return Err(TapeError::WriteProtected);
        }
        let start = self.here()?;
        let want = u64::from(n);
        let mut left = want;
        let mut retried = false;
        loop {
            match self.sys.mtop(op, count(op, left)?) {
                Ok(()) => return Ok(self.wrote(start + want)),
                Err(Errno::ENOSPC) => {
                    left = self.after_enospc(op.describe(), start, want, &mut retried)?;
                    if left == 0 {
                        return Ok(Written::EarlyWarning);
                    }
                }
                Err(e) => {
                    self.pos = None;
                    return Err(write_error(op.describe(), e));
                }
            }
        }
    }

    /// A write succeeded and the tape is at `pos`.
    fn wrote(&mut self, pos: u64) -> Written {
        self.pos = Some(pos);
        if self.warned {
            Written::EarlyWarning
        } else {
            Written::Ok
        }
    }

    /// After a write of `want` blocks or filemarks from `start` failed with
    /// ENOSPC: how many are still to be written (0: all are on tape), or
    /// `EndOfMedium` when a retry was already made.
    fn after_enospc(
        &mut self,
        op: &'static str,
        start: u64,
        want: u64,
        retried: &mut bool,
    ) -> Result<u64, TapeError> {
        self.warned = true;
        let now = self.ask_position()?;
        let done = match now.checked_sub(start) {
            Some(done) if done <= want => done,
            _ => {
                self.pos = None;
                return Err(TapeError::io(
                    op,
                    std::io::Error::other(format!(
                        "at the end of the tape the position went from {start} to {now} on a write of {want}"
                    )),
                ));
            }
        };
        if done == want {
            return Ok(0);
        }
        if *retried {
            return Err(TapeError::EndOfMedium);
        }
        *retried = true;
        Ok(want - done)
    }

    pub(super) fn read_one(&mut self, buf: &mut [u8]) -> Result<Read, TapeError> {
        if buf.is_empty() {
            // A zero-byte read returns 0 and would look like a filemark.
            return Err(TapeError::Invalid("read: the buffer is empty".to_string()));
        }
        let mut len = buf.len().min(self.read_limit.unwrap_or(usize::MAX));
        let got = loop {
            match self.sys.read(&mut buf[..len]) {
                Err(Errno::EINVAL) if len > MIN_READ_LIMIT => {
                    len = if len > 0xff_ffff {
                        0xff_ffff
                    } else {
                        (len / 2).next_power_of_two()
                    };
                }
                got => break got,
            }
        };
        if len < buf.len() && got != Err(Errno::EINVAL) {
            self.read_limit = Some(len);
        }
        match got {
            Ok(0) => {
                // A filemark (st moves past it) or the end of data (it does
                // not, and says EOD; after data with no filemark, EOT).
                let st = self.mtget()?;
                if st.has(GMT_EOD) || st.has(GMT_EOT) {
                    Ok(Read::EndOfData)
                } else {
                    self.pos = self.pos.map(|p| p + 1);
                    Ok(Read::Filemark)
                }
            }
            Ok(n) => {
                self.pos = self.pos.map(|p| p + 1);
                Ok(Read::Data(n))
            }
            Err(Errno::ENOMEM) => {
                // st has read the block (only the drive knows its size) and
                // is past it.
                self.pos = None;
                Err(TapeError::BlockTooLarge { buffer: len })
            }
            // Reading on at the end of data: two zero-byte reads, then EIO.
            Err(Errno::EIO) if self.mtget()?.has(GMT_EOD) => Ok(Read::EndOfData),
            Err(e) => {
                self.pos = None;
                Err(st_error("read", e))
            }
        }
    }
}
