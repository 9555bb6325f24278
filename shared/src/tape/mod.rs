//! Tape drives (README, "Tapes, drives and libraries"; positions:
//! docs/tape-format.md §1): one [`Drive`] trait for everything that touches a
//! tape, implemented by the kernel st driver ([`linux_st`]) and by a
//! directory-backed virtual drive ([`crate::vtl`]) for tests and demos.
//!
//! Positions are SCSI *logical block addresses*: data blocks and filemarks
//! both count, from 0 at the beginning of tape (BOT). Three files of 5
//! blocks, each closed by a filemark, end at address 18; `forward_filemarks(1)`
//! from BOT lands on address 6.
//!
//! Two things are results, not errors, because a backup must act on them
//! rather than give up: the early warning near the end of the tape
//! ([`Written::EarlyWarning`]: the block is on tape, finish the archive and
//! close the tape), and on reading, a filemark or the end of data
//! ([`Read::Filemark`], [`Read::EndOfData`]).

pub mod label;
pub mod linux_st;
pub mod selftest;
pub mod session;
pub mod sg;
pub mod spans;
pub mod speed;
pub mod stream;

use std::io;

use serde::Serialize;

use crate::exit::Exit;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// On tape.
    Ok,
    /// On tape, and the drive is past its early-warning point: there is room
    /// for a trailer (finish the archive, write a filemark, close the tape),
    /// not for another archive.
    EarlyWarning,
}

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A block of this many bytes.
    Data(usize),
    /// A filemark: the end of a tape file. The position is now at the start
    /// of the next file.
    Filemark,
    /// Nothing more is written on this tape. The position does not move.
    EndOfData,
}

/// What `mt status` tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriveStatus {
    /// A tape is loaded and ready.
    pub online: bool,
    /// At the beginning of the tape.
    pub bot: bool,
    /// Past the early-warning point near the end of the tape.
    pub eot: bool,
    /// At the end of the recorded data.
    pub eod: bool,
    /// Just past a filemark (mt's `EOF`).
    pub filemark: bool,
    pub write_protected: bool,
    /// No tape, door open.
    pub door_open: bool,
    /// Tape file number (`None`: unknown, as after a load without rewind).
    pub file: Option<u64>,
    /// Block number inside the current file.
    pub block: Option<u64>,
    /// Logical block address.
    pub position: Option<u64>,
    /// Bytes per block; 0 means variable-block mode.
    pub block_size: u32,
    /// The density code the drive reports (0x60 for LTO-9 media).
    pub density: Option<u8>,
    /// The barcode or label of the loaded tape, when the drive knows it
    /// (the virtual drive does; a real drive does not).
    pub volume: Option<String>,
}

/// Why a tape operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TapeError {
    #[error("no tape in the drive")]
    NoTape,
    #[error("{0}: no such drive")]
    NoDevice(String),
    #[error("the drive is not ready (loading, or calibrating a new tape); try again later")]
    NotReady,
    #[error("the tape is write-protected")]
    WriteProtected,
    #[error("end of tape: no room for this write")]
    EndOfMedium,
    #[error(
        "a block larger than the read buffer of {buffer} bytes was skipped; read with a buffer as large as the largest block"
    )]
    BlockTooLarge { buffer: usize },
    #[error("{0} is not supported by this drive")]
    Unsupported(&'static str),
    #[error("the drive is in use by another program ({0})")]
    Busy(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl TapeError {
    pub fn io(op: &'static str, source: io::Error) -> Self {
        TapeError::Io { op, source }
    }

    /// The exit code a program ends with for this error (docs/exit-codes.md §2).
    pub fn exit(&self) -> Exit {
        match self {
            TapeError::NoTape
            | TapeError::NoDevice(_)
            | TapeError::WriteProtected
            | TapeError::Unsupported(_) => Exit::Unavailable,
            TapeError::EndOfMedium => Exit::Unavailable,
            TapeError::NotReady | TapeError::Busy(_) => Exit::TempFail,
            TapeError::BlockTooLarge { .. } => Exit::Data,
            TapeError::Invalid(_) => Exit::Usage,
            TapeError::Io { .. } => Exit::Io,
        }
    }
}

/// A tape drive with a tape (or none) in it.
///
/// Semantics follow the Linux st driver in variable-block mode, with its
/// surprises turned into plain results. Every implementation must pass the
/// drive self-test (`reel mt selftest`).
pub trait Drive: Send {
    /// The device string it was opened with (`/dev/nst0`, `virtual:…#0`).
    fn device(&self) -> &str;

    fn status(&mut self) -> Result<DriveStatus, TapeError>;

    /// To the beginning of the tape.
    fn rewind(&mut self) -> Result<(), TapeError>;

    /// Space forward over `n` filemarks: at the start of the file after the
    /// `n`-th (mt `fsf`). Hitting the end of data first is an error.
    fn forward_filemarks(&mut self, n: u32) -> Result<(), TapeError>;

    /// Space backward over `n` filemarks: just before (on the BOT side of)
    /// the `n`-th filemark (mt `bsf`). Hitting BOT first is an error.
    fn back_filemarks(&mut self, n: u32) -> Result<(), TapeError>;

    /// To the end of the recorded data, ready to append (mt `eod`).
    fn end_of_data(&mut self) -> Result<(), TapeError>;

    /// The current logical block address (mt `tell`).
    fn position(&mut self) -> Result<u64, TapeError>;

    /// To a logical block address (mt `seek`).
    fn seek(&mut self, block: u64) -> Result<(), TapeError>;

    /// Write `n` filemarks at the current position, and wait until they
    /// and everything before them are on the medium (the drive's buffer
    /// empties, so that a streaming tape stops).
    fn write_filemarks(&mut self, n: u32) -> Result<Written, TapeError>;

    /// Write `n` filemarks without waiting for them, or the data before
    /// them, to reach the medium (WRITE FILEMARKS with IMMED set; st's
    /// `MTWEOFI`): the drive goes on streaming from its buffer. Until a
    /// [`Drive::flush`] returns, none of it is known to be on tape; a power
    /// cut may lose it. A drive that cannot tell them apart waits.
    fn write_filemarks_immediate(&mut self, n: u32) -> Result<Written, TapeError> {
        self.write_filemarks(n)
    }

    /// Wait until everything written so far is on the medium (WRITE
    /// FILEMARKS of 0 filemarks, waiting; st's `MTWEOF` of 0).
    fn flush(&mut self) -> Result<Written, TapeError> {
        self.write_filemarks(0)
    }

    /// Read one block into `buf`. A block larger than `buf` fails with
    /// [`TapeError::BlockTooLarge`] and is skipped, as st does.
    fn read_block(&mut self, buf: &mut [u8]) -> Result<Read, TapeError>;

    /// Write one block. Writing anywhere but at the end of data discards
    /// everything after the write, as on a real tape.
    fn write_block(&mut self, data: &[u8]) -> Result<Written, TapeError>;

    /// Write `blocks` in order, each one tape block, as one request where
    /// the drive can take that (the virtual drive: one vectored write to
    /// its file); otherwise one [`Drive::write_block`] each, stopping after
    /// the block that meets the early warning. How many were written, and
    /// how the last one ended.
    fn write_blocks(&mut self, blocks: &[&[u8]]) -> Result<(usize, Written), TapeError> {
        write_one_by_one(self, blocks)
    }

    /// Whether the drive moves a tape that stops, and must reposition,
    /// when its buffer runs dry: every real drive, and a virtual one with
    /// a speed model. One that does not (a virtual drive on disk) gains
    /// nothing from the ring's start mark or pacing, so reel-write starts
    /// it at once and writes as fast as it takes.
    fn moves_tape(&self) -> bool {
        true
    }

    /// How many blocks [`Drive::write_blocks`] takes to advantage in one
    /// call: 1 unless the drive writes them as one request.
    fn blocks_per_write(&self) -> usize {
        1
    }

    /// Bytes per block; 0 for variable-block mode (what reel uses).
    fn set_block_size(&mut self, size: u32) -> Result<(), TapeError>;

    /// Load the tape in the drive (after an unload or at power-on).
    fn load(&mut self) -> Result<(), TapeError>;

    /// Rewind and eject.
    fn unload(&mut self) -> Result<(), TapeError>;

    /// Erase from the current position to the end of the tape. `long` also
    /// overwrites the rest of the medium (hours on LTO); short just writes
    /// the end of data here.
    fn erase(&mut self, long: bool) -> Result<(), TapeError>;

    /// The largest block the drive accepts, when it can tell.
    fn max_block_size(&mut self) -> Result<Option<u32>, TapeError> {
        Ok(None)
    }

    /// The TapeAlert flags the drive reports now, read without clearing
    /// them; `None` when it cannot tell.
    fn tape_alerts(&mut self) -> Result<Option<crate::scsi::tapealert::TapeAlerts>, TapeError> {
        Ok(None)
    }

    /// What the loaded cartridge's memory (MAM) says of it; `None` when the
    /// drive cannot tell.
    fn cartridge_memory(&mut self) -> Result<Option<crate::scsi::mam::CartridgeMemory>, TapeError> {
        Ok(None)
    }

    /// Set the drive's data key (encrypt what is written, decrypt what is
    /// read, plaintext read as it is), or clear it with `None`. A drive
    /// that cannot encrypt says [`TapeError::Unsupported`].
    fn set_encryption(
        &mut self,
        key: Option<&crate::scsi::encryption::DriveKey>,
    ) -> Result<(), TapeError> {
        match key {
            Some(_) => Err(TapeError::Unsupported("drive encryption")),
            None => Ok(()),
        }
    }

    /// The volume statistics (log page 0x17) of the loaded tape; `None`
    /// when the drive cannot tell.
    fn volume_statistics(
        &mut self,
    ) -> Result<Option<crate::scsi::volume::VolumeStatistics>, TapeError> {
        Ok(None)
    }

    /// What the drive's encryption is set to; `None` when it cannot tell.
    fn encryption(&mut self) -> Result<Option<crate::scsi::encryption::Status>, TapeError> {
        Ok(None)
    }
}

/// [`Drive::write_blocks`] as one [`Drive::write_block`] each, stopping
/// after the block that meets the early warning.
pub fn write_one_by_one<D: Drive + ?Sized>(
    drive: &mut D,
    blocks: &[&[u8]],
) -> Result<(usize, Written), TapeError> {
    for (i, data) in blocks.iter().enumerate() {
        if drive.write_block(data)? == Written::EarlyWarning {
            return Ok((i + 1, Written::EarlyWarning));
        }
    }
    Ok((blocks.len(), Written::Ok))
}
