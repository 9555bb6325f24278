//! A tape drive driven by reel itself over SG_IO (`sg:/dev/sgN`), beside
//! the kernel's st driver ([`super::linux_st`]): SSC commands sent as
//! bytes ([`cdb`]), and every answer read from the whole sense data
//! ([`crate::scsi::sense`]) rather than from an errno.
//!
//! What the sense says and how it is read here:
//!
//! - Reading (READ(6), variable, ILI not suppressed): FILEMARK is a
//!   filemark, BLANK CHECK 0x00/0x05 the end of data; ILI with a positive
//!   INFORMATION residue a block shorter than asked (its length is the
//!   request less the residue), with a negative one a block longer than
//!   the buffer, which the drive has passed.
//! - Writing: NO SENSE with EOM is the early warning, the block on tape;
//!   VOLUME OVERFLOW the physical end, the block not written; DATA
//!   PROTECT 0x27 a write-protected tape.
//! - NOT READY 0x04/xx (becoming ready, a library inventorying) is waited
//!   for at open and load, up to [`OpenOptions::ready_timeout`]; NOT READY
//!   0x3A is no tape; UNIT ATTENTION (a tape changed, a reset) is taken
//!   and the command sent again when it moves no tape.
//!
//! And what drives differ in, learned at the first refusal and kept:
//! MODE SENSE(10) refused (MODE SENSE(6) instead), READ POSITION's long
//! form refused (the short form), LOCATE(16) refused (LOCATE(10)), and a
//! LOCATE that lands one block off, which the position read back after
//! every LOCATE shows (the offset is then applied to every later LOCATE).

pub mod cdb;
mod drive;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::linux_st::{Clock, OpenOptions, SystemClock};
use super::{Drive, TapeError, Written};
use crate::scsi::sense::{Sense, key};
use crate::scsi::sg_io::{Data, Scsi, SgDevice, SgError};
use crate::units::Interval;
use cdb::Position;

/// How long each kind of command may take before the kernel aborts it.
mod timeout {
    use std::time::Duration;
    /// Status, mode pages, positions, logs.
    pub const QUICK: Duration = Duration::from_secs(60);
    /// One block or a few filemarks (with a drive's error recovery).
    pub const TRANSFER: Duration = Duration::from_secs(30 * 60);
    /// Rewind, space, locate, load, unload, a short erase: the length of
    /// an LTO tape at its slowest.
    pub const MOVE: Duration = Duration::from_secs(4 * 3600);
    /// A long erase: the whole tape, every wrap.
    pub const LONG_ERASE: Duration = Duration::from_secs(48 * 3600);
}

/// The most a 6-byte CDB counts (blocks, bytes, filemarks).
const MAX24: u32 = 0x00ff_ffff;

/// How many UNIT ATTENTIONs in a row a command that moves no tape is sent
/// again through (a drive queues one per event: reset, tape change, mode
/// change).
const ATTENTIONS: usize = 8;

/// What a drive was found to refuse, so it is not asked again.
#[derive(Debug, Clone, Copy)]
struct Quirks {
    mode_sense10: bool,
    position_long: bool,
    locate16: bool,
    /// Blocks to add to a LOCATE's address for the drive to land there.
    locate_offset: i64,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            mode_sense10: true,
            position_long: true,
            locate16: true,
            locate_offset: 0,
        }
    }
}

/// A tape drive over any [`Scsi`] device; [`SgTape::open`] for a real one.
pub struct SgTape<S: Scsi = SgDevice> {
    device: String,
    scsi: S,
    options: OpenOptions,
    quirks: Quirks,
    /// The largest block the drive takes (READ BLOCK LIMITS).
    limit: Option<u32>,
    /// The buffered mode the drive reported, kept when the block size is set.
    buffered: u8,
    write_protected: bool,
    /// A write met the early warning since the tape last moved.
    warned: bool,
    /// The last read met the end of data, or the tape was spaced there.
    eod: bool,
    /// The last read was a filemark.
    filemark: bool,
    /// reel set a data key: it is cleared when the drive is let go.
    keyed: bool,
}

/// The generic SCSI node of the device at `node`: itself when it is one,
/// else the `scsi_generic` sibling that sysfs lists for it (`/dev/nst0` →
/// `/dev/sg3`).
pub fn generic_node(node: &Path) -> Result<PathBuf, String> {
    let rdev = nix::sys::stat::stat(node)
        .map_err(|e| format!("{}: {e}", node.display()))?
        .st_rdev;
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let dir = format!("/sys/dev/char/{major}:{minor}/device/scsi_generic");
    let name = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: no generic SCSI node ({dir}: {e})", node.display()))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .next()
        .ok_or_else(|| format!("{}: {dir} is empty", node.display()))?;
    Ok(Path::new("/dev").join(name))
}

impl SgTape<SgDevice> {
    /// Open the drive at `path` (`/dev/sgN`, or its `/dev/nstN`, whose
    /// generic node is found in sysfs), waiting for its tape as `options`
    /// say.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Self, TapeError> {
        let node = generic_node(path).map_err(TapeError::NoDevice)?;
        let scsi = SgDevice::open(&node, timeout::QUICK).map_err(|e| match e {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENXIO => {
                TapeError::NoDevice(node.display().to_string())
            }
            nix::errno::Errno::EBUSY => TapeError::Busy(node.display().to_string()),
            e => TapeError::io("open", e.into()),
        })?;
        SgTape::open_with(
            format!("sg:{}", node.display()),
            scsi,
            options,
            &mut SystemClock::default(),
        )
    }

    /// Load the tape that the drive at `path` holds unloaded, and wait for
    /// it (`reel mt load`): opening first would wait in vain for a drive
    /// that is not ready until it is told to load.
    pub fn load(path: &Path, options: &OpenOptions) -> Result<Self, TapeError> {
        let node = generic_node(path).map_err(TapeError::NoDevice)?;
        let scsi =
            SgDevice::open(&node, timeout::QUICK).map_err(|e| TapeError::io("open", e.into()))?;
        let mut drive = SgTape::attach(format!("sg:{}", node.display()), scsi, options);
        drive.load_with(&mut SystemClock::default())?;
        Ok(drive)
    }
}

impl<S: Scsi> SgTape<S> {
    /// A drive over `scsi`, waiting for its tape as `options` say with
    /// `clock` measuring the wait.
    pub fn open_with<C: Clock>(
        device: String,
        scsi: S,
        options: &OpenOptions,
        clock: &mut C,
    ) -> Result<Self, TapeError> {
        let mut drive = SgTape::attach(device, scsi, options);
        drive.wait_ready(clock)?;
        drive.prepare_tape()?;
        Ok(drive)
    }

    /// A drive over `scsi`, nothing asked of it yet.
    fn attach(device: String, scsi: S, options: &OpenOptions) -> Self {
        SgTape {
            device,
            scsi,
            options: options.clone(),
            quirks: Quirks::default(),
            limit: None,
            buffered: 1,
            write_protected: false,
            warned: false,
            eod: false,
            filemark: false,
            keyed: false,
        }
    }

    /// Load the tape in the drive and wait for it, with `clock`.
    pub fn load_with<C: Clock>(&mut self, clock: &mut C) -> Result<(), TapeError> {
        self.moved();
        match self.send(&cdb::load_unload(true), Data::None, timeout::MOVE) {
            Ok(_) => {}
            // A drive still taking the tape answers NOT READY: wait below.
            Err(e) if e.decoded().is_some_and(|s| s.becoming_ready()) => {}
            Err(e) => return Err(self.error("load", e)),
        }
        self.wait_ready(clock)?;
        self.prepare_tape()
    }

    /// Send one command; UNIT ATTENTION is reported like any other sense.
    fn send(&mut self, cdb: &[u8], data: Data<'_>, timeout: Duration) -> Result<usize, SgError> {
        self.scsi.run(cdb, data, timeout)
    }

    /// Send a command that moves no tape and changes nothing, taking the
    /// UNIT ATTENTIONs queued before it.
    fn ask(&mut self, cdb: &[u8], buf: &mut [u8]) -> Result<usize, SgError> {
        let mut n = 0;
        loop {
            match self.scsi.run(cdb, Data::In(buf), timeout::QUICK) {
                Err(e)
                    if n < ATTENTIONS
                        && e.decoded().is_some_and(|s| s.key == key::UNIT_ATTENTION) =>
                {
                    self.attention(e.decoded());
                    n += 1;
                }
                other => return other,
            }
        }
    }

    /// A UNIT ATTENTION: whatever the drive was doing, the tape may have
    /// changed, so nothing known of its position holds.
    fn attention(&mut self, sense: Option<Sense>) {
        if let Some(s) = sense {
            log::debug!("{}: unit attention: {s}", self.device);
        }
        self.moved();
    }

    /// The tape moved: what was known of where it is no longer holds.
    fn moved(&mut self) {
        self.warned = false;
        self.eod = false;
        self.filemark = false;
    }

    /// The error for a failed command of `op`.
    fn error(&self, op: &'static str, e: SgError) -> TapeError {
        let Some(s) = e.decoded() else {
            return match e {
                SgError::Os(nix::errno::Errno::EBUSY) => TapeError::Busy(self.device.clone()),
                SgError::Os(errno) => TapeError::io(op, errno.into()),
                other => TapeError::io(
                    op,
                    std::io::Error::other(format!("{}: {other}", self.device)),
                ),
            };
        };
        match s.key {
            _ if s.no_medium() => TapeError::NoTape,
            key::NOT_READY => TapeError::NotReady,
            key::DATA_PROTECT if s.asc == 0x27 => TapeError::WriteProtected,
            key::DATA_PROTECT if s.asc == 0x74 => TapeError::io(
                op,
                std::io::Error::other(format!(
                    "{}: the block is encrypted and the drive cannot decrypt it ({s}): set the key that wrote the tape",
                    self.device
                )),
            ),
            key::ILLEGAL_REQUEST if s.asc == 0x20 => TapeError::Unsupported(op),
            _ => TapeError::io(op, std::io::Error::other(format!("{}: {s}", self.device))),
        }
    }

    /// Wait until TEST UNIT READY passes: through UNIT ATTENTIONs, and
    /// while the drive is becoming ready, up to the ready timeout.
    fn wait_ready<C: Clock>(&mut self, clock: &mut C) -> Result<(), TapeError> {
        let start = clock.now();
        let mut announced = false;
        let mut attentions = 0;
        loop {
            let e = match self.send(&cdb::TEST_UNIT_READY, Data::None, timeout::QUICK) {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            match e.decoded() {
                Some(s) if s.key == key::UNIT_ATTENTION && attentions < ATTENTIONS => {
                    self.attention(Some(s));
                    attentions += 1;
                    continue;
                }
                Some(s) if s.no_medium() => return Err(TapeError::NoTape),
                Some(s) if s.becoming_ready() => {}
                _ => return Err(self.error("test unit ready", e)),
            }
            let waited = clock.now().saturating_sub(start);
            if waited >= self.options.ready_timeout {
                log::info!(
                    "{}: still not ready after {}",
                    self.device,
                    Interval(self.options.ready_timeout)
                );
                return Err(TapeError::NotReady);
            }
            if !announced {
                log::info!(
                    "{}: not ready (loading, calibrating a new tape, or the library inventorying); waiting up to {}",
                    self.device,
                    Interval(self.options.ready_timeout)
                );
                announced = true;
            }
            clock.sleep(self.options.poll_interval);
        }
    }

    /// What a newly loaded tape needs: its write protection and the
    /// drive's limits read, variable-block mode if asked for.
    fn prepare_tape(&mut self) -> Result<(), TapeError> {
        self.moved();
        let mode = self.mode()?;
        self.write_protected = mode.write_protected;
        self.buffered = mode.buffered;
        let mut b = [0u8; 6];
        self.limit = match self.ask(&cdb::READ_BLOCK_LIMITS, &mut b) {
            Ok(n) => cdb::block_limit(&b[..n]),
            Err(e) => {
                log::debug!("{}: READ BLOCK LIMITS: {e}", self.device);
                None
            }
        };
        if self.options.variable_blocks && mode.block_size != 0 {
            self.set_block_size(0)?;
        }
        Ok(())
    }

    /// The mode parameter header and block descriptor, by MODE SENSE(10),
    /// or (6) on a drive that refuses (10).
    fn mode(&mut self) -> Result<cdb::Mode, TapeError> {
        let mut b = [0u8; 64];
        if self.quirks.mode_sense10 {
            match self.ask(&cdb::mode_sense10(b.len() as u16), &mut b) {
                Ok(n) => {
                    return cdb::mode(&b[..n], true)
                        .ok_or_else(|| self.garbled("MODE SENSE(10)", &b[..n]));
                }
                Err(e) if e.decoded().is_some_and(|s| s.unsupported()) => {
                    log::debug!(
                        "{}: MODE SENSE(10) refused ({e}); using MODE SENSE(6)",
                        self.device
                    );
                    self.quirks.mode_sense10 = false;
                }
                Err(e) => return Err(self.error("mode sense", e)),
            }
        }
        let n = self
            .ask(&cdb::mode_sense6(b.len() as u8), &mut b)
            .map_err(|e| self.error("mode sense", e))?;
        cdb::mode(&b[..n], false).ok_or_else(|| self.garbled("MODE SENSE(6)", &b[..n]))
    }

    fn garbled(&self, what: &str, b: &[u8]) -> TapeError {
        TapeError::io(
            "sg",
            std::io::Error::other(format!(
                "{}: {what}: an answer too short to read ({b:02x?})",
                self.device
            )),
        )
    }

    /// READ POSITION, long form, or short on a drive that refuses long.
    fn read_position(&mut self) -> Result<Position, TapeError> {
        let mut b = [0u8; 32];
        if self.quirks.position_long {
            match self.ask(&cdb::READ_POSITION_LONG, &mut b) {
                Ok(n) => return self.known(cdb::position_long(&b[..n])),
                Err(e) if e.decoded().is_some_and(|s| s.unsupported()) => {
                    log::debug!(
                        "{}: READ POSITION long form refused ({e}); using the short form",
                        self.device
                    );
                    self.quirks.position_long = false;
                }
                Err(e) => return Err(self.error("read position", e)),
            }
        }
        let n = self
            .ask(&cdb::READ_POSITION_SHORT, &mut b[..20])
            .map_err(|e| self.error("read position", e))?;
        self.known(cdb::position_short(&b[..n]))
    }

    fn known(&self, p: Option<Position>) -> Result<Position, TapeError> {
        p.ok_or_else(|| {
            TapeError::io(
                "read position",
                std::io::Error::other(format!(
                    "{}: the drive does not know its position",
                    self.device
                )),
            )
        })
    }

    /// One LOCATE, (16) or (10) on a drive that refuses (16).
    fn locate(&mut self, block: u64) -> Result<(), TapeError> {
        self.moved();
        if self.quirks.locate16 {
            match self.send(&cdb::locate16(block), Data::None, timeout::MOVE) {
                Ok(_) => return Ok(()),
                Err(e) if e.decoded().is_some_and(|s| s.unsupported()) => {
                    log::debug!(
                        "{}: LOCATE(16) refused ({e}); using LOCATE(10)",
                        self.device
                    );
                    self.quirks.locate16 = false;
                }
                Err(e) => return Err(self.locate_error(block, e)),
            }
        }
        let short = u32::try_from(block).map_err(|_| {
            TapeError::Invalid(format!(
                "{}: block {block} is beyond what LOCATE(10) reaches, and the drive has no LOCATE(16)",
                self.device
            ))
        })?;
        self.send(&cdb::locate10(short), Data::None, timeout::MOVE)
            .map(drop)
            .map_err(|e| self.locate_error(block, e))
    }

    fn locate_error(&mut self, block: u64, e: SgError) -> TapeError {
        if e.decoded().is_some_and(|s| s.key == key::BLANK_CHECK) {
            self.eod = true;
            return TapeError::io(
                "seek",
                std::io::Error::other(format!(
                    "{}: block {block} is past the end of data",
                    self.device
                )),
            );
        }
        self.error("seek", e)
    }

    /// Space over `count` filemarks (negative: backward), in steps a
    /// 6-byte CDB holds.
    fn space_filemarks(&mut self, op: &'static str, count: i64) -> Result<(), TapeError> {
        self.moved();
        let mut left = count;
        while left != 0 {
            let step = left.clamp(-i64::from(MAX24 >> 1), i64::from(MAX24 >> 1));
            self.send(&cdb::space6(1, step as i32), Data::None, timeout::MOVE)
                .map_err(|e| match e.decoded() {
                    Some(s) if s.key == key::BLANK_CHECK || (s.asc, s.ascq) == (0, 5) => {
                        self.eod = true;
                        TapeError::io(
                            op,
                            std::io::Error::other(format!(
                                "{}: the end of data came before {} filemarks",
                                self.device,
                                count.unsigned_abs()
                            )),
                        )
                    }
                    Some(s) if s.eom && (s.asc, s.ascq) == (0, 4) => TapeError::io(
                        op,
                        std::io::Error::other(format!(
                            "{}: the beginning of the tape came first",
                            self.device
                        )),
                    ),
                    _ => self.error(op, e),
                })?;
            left -= step;
        }
        Ok(())
    }

    /// What a write of data or filemarks answered.
    fn written(
        &mut self,
        op: &'static str,
        r: Result<usize, SgError>,
    ) -> Result<Written, TapeError> {
        let e = match r {
            Ok(_) if self.warned => return Ok(Written::EarlyWarning),
            Ok(_) => return Ok(Written::Ok),
            Err(e) => e,
        };
        match e.decoded() {
            // Past the early warning, all of it on tape.
            Some(s)
                if matches!(s.key, key::NO_SENSE | key::RECOVERED_ERROR)
                    && s.eom
                    && s.info.unwrap_or(0) == 0 =>
            {
                self.warned = true;
                Ok(Written::EarlyWarning)
            }
            Some(s) if matches!(s.key, key::NO_SENSE | key::RECOVERED_ERROR) && !s.eom => {
                log::debug!("{}: {op}: {s}", self.device);
                Ok(if self.warned {
                    Written::EarlyWarning
                } else {
                    Written::Ok
                })
            }
            Some(s) if s.key == key::VOLUME_OVERFLOW || s.eom => {
                self.warned = true;
                Err(TapeError::EndOfMedium)
            }
            _ => Err(self.error(op, e)),
        }
    }
}

/// A key reel set does not outlive its use of the drive (a real drive
/// keeps it until cleared, a tape change or a power cycle).
impl<S: Scsi> Drop for SgTape<S> {
    fn drop(&mut self) {
        if self.keyed
            && let Err(e) = self.set_encryption(None)
        {
            log::warn!("{e}");
        }
    }
}
