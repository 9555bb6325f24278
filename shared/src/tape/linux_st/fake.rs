//! A simulated st drive for the tests: a small tape of blocks and filemarks
//! behind an [`StSys`] that answers the way the st driver does, including
//! its end-of-tape state machine, its zero-byte reads and the two kinds of
//! early-warning behaviour seen in practice ([`Quirk`]).
//!
//! The simulation follows st.c where it matters to [`LinuxSt`](super::LinuxSt):
//! the driver's `eof` state (filemark seen, early warning, end of data), its
//! file and block counters, readiness decided when the device is opened, and
//! EACCES for writes on a write-protected tape. Every call is logged so tests
//! can check that the fast path makes no ioctl per block.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::errno::Errno;

use super::open::Clock;
use super::sys::{
    Access, GMT_BOT, GMT_DR_OPEN, GMT_EOD, GMT_EOF, GMT_EOT, GMT_IM_REP_EN, GMT_ONLINE,
    GMT_WR_PROT, MT_ST_CLEARBOOLEANS, MT_ST_SETBOOLEANS, MtOp, MtStatus, StSys,
};

/// How the device reports the write that crosses the early-warning point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// A real drive: the crossing write succeeds with a full count (st then
    /// fails the next write with ENOSPC without sending it), and every
    /// further write past the warning is reported to st again.
    RealDrive,
    /// The kernel's scsi_debug emulator: ENOSPC for the crossing write,
    /// although the block is recorded; later writes are not reported.
    ScsiDebug,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    Data(Vec<u8>),
    Mark,
}

/// st.c's `eof` states that the simulation needs, in st's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Eof {
    None,
    Fm,
    EomOk,
    Eod1,
    Eod2,
    Eod,
}

/// What st found when the device was opened (`STp->ready`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Ready,
    NotReady,
    NoTape,
}

/// The drive and its tape, shared by every descriptor the tests open.
#[derive(Debug)]
pub struct Tape {
    pub records: Vec<Rec>,
    /// Logical block address.
    pub pos: usize,
    /// Records the tape holds; a write beyond fails (physical end).
    pub capacity: usize,
    /// Writes at this address and beyond are past the early warning.
    pub early_warning: usize,
    pub quirk: Quirk,
    pub write_protected: bool,
    /// A cartridge is in the drive.
    pub loaded: bool,
    /// Opens that still find the tape not ready (loading, calibrating).
    pub opens_until_ready: u32,
    /// The cartridge is in the drive but unloaded (after an unload, as
    /// the kernel's scsi_debug tape keeps it): not ready until MTLOAD.
    pub needs_load: bool,
    /// The error an O_RDWR open fails with (device node permissions).
    pub rw_open_error: Option<Errno>,
    /// Another program has the device open.
    pub busy: bool,
    /// MTSETDRVBUFFER is allowed (the caller is root).
    pub root: bool,
    /// sysfs shows the driver options.
    pub sysfs: bool,
    /// st's boolean driver options.
    pub options: u32,
    pub block_size: u32,
    pub density: u8,
    /// The drive's block limits (READ BLOCK LIMITS): in variable-block mode
    /// st refuses a read or write of another size with EINVAL, before
    /// anything moves. LTO drives allow up to 8 MiB or 16 MiB - 1, the
    /// kernel's scsi_debug tape 512 bytes to 1 MiB.
    pub block_limits: (usize, usize),
    /// The next MTWEOF records this many filemarks, then fails with ENOSPC
    /// (as a write-behind error surfacing there would).
    pub weof_enospc: Option<u32>,
    /// The next write reports this many bytes written (and records none).
    pub short_write: Option<usize>,
    /// `MTIOCGET`s on a non-blocking descriptor that get EAGAIN, as while
    /// the SCSI layer recovers from an error.
    pub recovering: u32,
    /// The log pages the drive answers LOG SENSE with (first byte: the
    /// page code); another page is refused.
    pub log_pages: Vec<Vec<u8>>,
    /// What READ ATTRIBUTE answers; `None`: SG_IO is refused.
    pub attributes: Option<Vec<u8>>,
    /// Every call, in order (`write`, `read`, `MTIOCPOS`, `MTWEOF`, …).
    pub calls: Vec<&'static str>,
    /// The access mode of every open.
    pub opens: Vec<Access>,
    file: i32,
    block: i32,
    eof: Eof,
    /// The scsi_debug quirk reports the warning once.
    crossed: bool,
}

impl Tape {
    /// A blank tape, loaded and ready, position unknown as after a load.
    pub fn new(capacity: usize, early_warning: usize, quirk: Quirk) -> Self {
        Tape {
            records: Vec::new(),
            pos: 0,
            capacity,
            early_warning,
            quirk,
            write_protected: false,
            loaded: true,
            opens_until_ready: 0,
            needs_load: false,
            rw_open_error: None,
            busy: false,
            root: true,
            sysfs: true,
            // st's defaults: buffered and asynchronous writes, read ahead.
            options: 0x7,
            block_size: 512,
            density: 0x60,
            block_limits: (1, 0xff_ffff),
            weof_enospc: None,
            short_write: None,
            recovering: 0,
            log_pages: Vec::new(),
            attributes: None,
            calls: Vec::new(),
            opens: Vec::new(),
            file: -1,
            block: -1,
            eof: Eof::None,
            crossed: false,
        }
    }

    pub fn shared(self) -> Arc<Mutex<Tape>> {
        Arc::new(Mutex::new(self))
    }

    pub fn count(&self, call: &str) -> usize {
        self.calls.iter().filter(|c| **c == call).count()
    }

    /// The data blocks on tape, filemarks left out.
    pub fn data(&self) -> Vec<&[u8]> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Rec::Data(d) => Some(d.as_slice()),
                Rec::Mark => None,
            })
            .collect()
    }

    /// st's check of a transfer's size in variable-block mode.
    fn within_limits(&self, len: usize) -> Result<(), Errno> {
        let (min, max) = self.block_limits;
        if self.block_size == 0 && !(min..=max).contains(&len) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    fn marks_before(&self, pos: usize) -> i32 {
        self.records[..pos]
            .iter()
            .filter(|r| **r == Rec::Mark)
            .count() as i32
    }

    fn at(&mut self, pos: usize, file: i32, block: i32) {
        self.pos = pos;
        self.file = file;
        self.block = block;
    }

    fn bump_block(&mut self) {
        if self.block >= 0 {
            self.block += 1;
        }
    }

    fn space_forward(&mut self, n: i32) -> Result<(), Errno> {
        let mut left = n;
        while left > 0 {
            if self.pos >= self.records.len() {
                // BLANK CHECK at the end of data.
                self.at(self.records.len(), -1, -1);
                return Err(Errno::EIO);
            }
            if self.records[self.pos] == Rec::Mark {
                left -= 1;
            }
            self.pos += 1;
        }
        let file = if self.file >= 0 { self.file + n } else { -1 };
        self.at(self.pos, file, 0);
        self.eof = Eof::Fm;
        Ok(())
    }

    fn space_backward(&mut self, n: i32) -> Result<(), Errno> {
        let mut left = n;
        let mut pos = self.pos;
        while left > 0 {
            if pos == 0 {
                self.at(0, 0, 0);
                return Err(Errno::EIO);
            }
            pos -= 1;
            if self.records[pos] == Rec::Mark {
                left -= 1;
            }
        }
        let file = if self.file >= 0 { self.file - n } else { -1 };
        self.at(pos, file, -1);
        self.eof = Eof::None;
        Ok(())
    }

    fn write_marks(&mut self, n: i32, writable: bool) -> Result<(), Errno> {
        if !writable {
            return Err(Errno::EACCES);
        }
        self.records.truncate(self.pos);
        let room = self.capacity.saturating_sub(self.pos);
        let mut fits = (n as usize).min(room);
        let injected = self.weof_enospc.take();
        if let Some(k) = injected {
            fits = fits.min(k as usize);
        }
        self.records.extend(std::iter::repeat_n(Rec::Mark, fits));
        let file = if self.file >= 0 {
            self.file + fits as i32
        } else {
            -1
        };
        self.at(self.pos + fits, file, 0);
        // st reports filemarks written past the early warning as success.
        self.eof = Eof::None;
        if fits < n as usize || injected.is_some() {
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    fn write_data(&mut self, data: &[u8], writable: bool) -> Result<usize, Errno> {
        if !writable {
            return Err(Errno::EACCES);
        }
        // st: the write after an early warning fails without being sent.
        if self.eof == Eof::EomOk {
            self.eof = Eof::Eod1;
            return Err(Errno::ENOSPC);
        }
        if let Some(n) = self.short_write.take() {
            return Ok(n);
        }
        if self.pos >= self.capacity {
            // VOLUME OVERFLOW: nothing written.
            self.eof = Eof::EomOk;
            return Err(Errno::ENOSPC);
        }
        let at = self.pos;
        self.records.truncate(at);
        self.records.push(Rec::Data(data.to_vec()));
        self.pos += 1;
        self.bump_block();
        let past = at >= self.early_warning;
        let reported = match self.quirk {
            Quirk::RealDrive => past,
            Quirk::ScsiDebug => past && !self.crossed,
        };
        self.crossed |= past;
        if reported {
            self.eof = Eof::EomOk;
            return match self.quirk {
                Quirk::RealDrive => Ok(data.len()),
                Quirk::ScsiDebug => Err(Errno::ENOSPC),
            };
        }
        self.eof = if self.eof == Eof::Eod1 {
            Eof::EomOk
        } else {
            Eof::None
        };
        Ok(data.len())
    }

    fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        // st: at the end of data it answers from its state, without reading.
        match self.eof {
            Eof::Eod1 | Eof::Eod2 => {
                self.eof = if self.eof == Eof::Eod1 {
                    Eof::Eod2
                } else {
                    Eof::Eod
                };
                return Ok(0);
            }
            Eof::Eod => return Err(Errno::EIO),
            _ => {}
        }
        let Some(rec) = self.records.get(self.pos) else {
            self.block = -1;
            // BLANK CHECK: right after a filemark st turns it into one more
            // zero-byte read and the EOD state; otherwise it is EIO.
            if self.eof == Eof::Fm {
                self.eof = Eof::Eod;
                return Ok(0);
            }
            return Err(Errno::EIO);
        };
        match rec {
            Rec::Mark => {
                let file = if self.file >= 0 { self.file + 1 } else { -1 };
                self.at(self.pos + 1, file, 0);
                self.eof = Eof::Fm;
                Ok(0)
            }
            Rec::Data(d) if d.len() > buf.len() => {
                // ILI: st has read the block and is past it.
                self.pos += 1;
                self.bump_block();
                Err(Errno::ENOMEM)
            }
            Rec::Data(d) => {
                let n = d.len();
                buf[..n].copy_from_slice(d);
                self.pos += 1;
                self.bump_block();
                self.eof = Eof::None;
                Ok(n)
            }
        }
    }
}

/// One open descriptor of the simulated drive.
#[derive(Debug)]
pub struct FakeSt {
    tape: Arc<Mutex<Tape>>,
    ready: Readiness,
    access: Access,
    pub nonblocking: bool,
}

/// The `open` function [`LinuxSt::open_with`](super::LinuxSt::open_with)
/// takes, for this tape.
pub fn opener(tape: &Arc<Mutex<Tape>>) -> impl FnMut(Access) -> Result<FakeSt, Errno> + use<> {
    let tape = Arc::clone(tape);
    move |access| {
        let mut t = tape.lock().unwrap();
        t.opens.push(access);
        if t.busy {
            return Err(Errno::EBUSY);
        }
        if let (Access::ReadWrite, Some(e)) = (access, t.rw_open_error) {
            return Err(e);
        }
        let ready = if !t.loaded {
            Readiness::NoTape
        } else if t.needs_load {
            Readiness::NotReady
        } else if t.opens_until_ready > 0 {
            t.opens_until_ready -= 1;
            Readiness::NotReady
        } else {
            Readiness::Ready
        };
        Ok(FakeSt {
            tape: Arc::clone(&tape),
            ready,
            access,
            nonblocking: true,
        })
    }
}

impl FakeSt {
    fn tape(&self, call: &'static str) -> MutexGuard<'_, Tape> {
        let mut t = self.tape.lock().unwrap();
        t.calls.push(call);
        t
    }

    fn usable(&self) -> Result<(), Errno> {
        match self.ready {
            Readiness::Ready => Ok(()),
            Readiness::NotReady => Err(Errno::EIO),
            Readiness::NoTape => Err(Errno::ENOMEDIUM),
        }
    }

    fn writable(&self, t: &Tape) -> bool {
        self.access == Access::ReadWrite && !t.write_protected
    }
}

fn op_name(op: MtOp) -> &'static str {
    match op {
        MtOp::Fsf => "MTFSF",
        MtOp::Bsf => "MTBSF",
        MtOp::Weof => "MTWEOF",
        MtOp::Weofi => "MTWEOFI",
        MtOp::Rew => "MTREW",
        MtOp::Offl => "MTOFFL",
        MtOp::Eom => "MTEOM",
        MtOp::Erase => "MTERASE",
        MtOp::SetBlk => "MTSETBLK",
        MtOp::Seek => "MTSEEK",
        MtOp::SetDrvBuffer => "MTSETDRVBUFFER",
        MtOp::Load => "MTLOAD",
    }
}

impl StSys for FakeSt {
    fn mtop(&mut self, op: MtOp, count: i32) -> Result<(), Errno> {
        let mut t = self.tape.lock().unwrap();
        t.calls.push(op_name(op));
        if op == MtOp::SetDrvBuffer {
            if !t.root {
                return Err(Errno::EPERM);
            }
            let value = count as u32;
            let bits = value & 0x0fff_ffff;
            match value & 0xf000_0000 {
                MT_ST_SETBOOLEANS => t.options |= bits,
                MT_ST_CLEARBOOLEANS => t.options &= !bits,
                _ => return Err(Errno::EINVAL),
            }
            return Ok(());
        }
        if op == MtOp::Load {
            if !t.loaded {
                return Err(Errno::ENOMEDIUM);
            }
            self.ready = Readiness::Ready;
            t.needs_load = false;
            t.at(0, 0, 0);
            t.eof = Eof::None;
            return Ok(());
        }
        self.usable()?;
        let writable = self.writable(&t);
        match op {
            MtOp::Fsf => t.space_forward(count),
            MtOp::Bsf => t.space_backward(count),
            MtOp::Weof | MtOp::Weofi => t.write_marks(count, writable),
            MtOp::Rew => {
                t.at(0, 0, 0);
                t.eof = Eof::None;
                Ok(())
            }
            MtOp::Offl => {
                t.at(0, -1, -1);
                t.loaded = false;
                self.ready = Readiness::NoTape;
                Ok(())
            }
            MtOp::Eom => {
                let end = t.records.len();
                let files = t.marks_before(end);
                t.at(end, files, -1);
                t.eof = Eof::Eod;
                Ok(())
            }
            MtOp::Erase if !writable => Err(Errno::EACCES),
            MtOp::Erase => {
                let pos = t.pos;
                t.records.truncate(pos);
                Ok(())
            }
            MtOp::SetBlk => {
                t.block_size = count as u32;
                Ok(())
            }
            MtOp::Seek => {
                let end = t.records.len();
                let to = count as usize;
                t.eof = Eof::None;
                if to > end {
                    t.at(end, -1, -1);
                    return Err(Errno::EIO);
                }
                let known = if to == 0 { 0 } else { -1 };
                t.at(to, known, known);
                Ok(())
            }
            MtOp::SetDrvBuffer | MtOp::Load => unreachable!("handled above"),
        }
    }

    fn mtget(&mut self) -> Result<MtStatus, Errno> {
        let mut t = self.tape("MTIOCGET");
        if self.nonblocking && t.recovering > 0 {
            t.recovering -= 1;
            return Err(Errno::EAGAIN);
        }
        let mut gstat = GMT_IM_REP_EN;
        match self.ready {
            Readiness::Ready => gstat |= GMT_ONLINE,
            Readiness::NoTape => gstat |= GMT_DR_OPEN,
            Readiness::NotReady => {}
        }
        if self.ready != Readiness::Ready {
            return Ok(MtStatus {
                gstat,
                dsreg: 0,
                fileno: -1,
                blkno: -1,
            });
        }
        if t.write_protected {
            gstat |= GMT_WR_PROT;
        }
        if t.block == 0 {
            gstat |= if t.file == 0 { GMT_BOT } else { GMT_EOF };
        }
        if t.eof == Eof::EomOk {
            gstat |= GMT_EOT;
        } else if t.eof >= Eof::Eod1 {
            gstat |= GMT_EOD;
        }
        Ok(MtStatus {
            gstat,
            dsreg: t.block_size | u32::from(t.density) << 24,
            fileno: t.file,
            blkno: t.block,
        })
    }

    fn mtpos(&mut self) -> Result<u64, Errno> {
        let t = self.tape("MTIOCPOS");
        self.usable()?;
        Ok(t.pos as u64)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut t = self.tape("read");
        self.usable()?;
        t.within_limits(buf.len())?;
        t.read_data(buf)
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, Errno> {
        let mut t = self.tape("write");
        self.usable()?;
        t.within_limits(data.len())?;
        let writable = self.writable(&t);
        t.write_data(data, writable)
    }

    fn set_nonblocking(&mut self, on: bool) -> Result<(), Errno> {
        self.nonblocking = on;
        Ok(())
    }

    fn driver_options(&mut self) -> Option<u32> {
        let t = self.tape("sysfs options");
        t.sysfs.then_some(t.options)
    }

    fn log_sense(
        &mut self,
        page: u8,
        buf: &mut [u8],
    ) -> Result<usize, crate::scsi::sg_io::SgError> {
        let t = self.tape("LOG SENSE");
        let Some(answer) = t.log_pages.iter().find(|p| p.first() == Some(&page)) else {
            // ILLEGAL REQUEST, invalid field in CDB: no such page.
            let mut sense = vec![0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0];
            sense.resize(18, 0);
            return Err(crate::scsi::sg_io::SgError::Check(sense));
        };
        let n = answer.len().min(buf.len());
        buf[..n].copy_from_slice(&answer[..n]);
        Ok(n)
    }

    fn read_attributes(&mut self, buf: &mut [u8]) -> Result<usize, crate::scsi::sg_io::SgError> {
        let t = self.tape("READ ATTRIBUTE");
        let Some(answer) = &t.attributes else {
            return Err(crate::scsi::sg_io::SgError::Os(Errno::ENOTTY));
        };
        let n = answer.len().min(buf.len());
        buf[..n].copy_from_slice(&answer[..n]);
        Ok(n)
    }
}

/// A clock that only moves when slept on.
#[derive(Debug, Default)]
pub struct FakeClock {
    pub now: Duration,
    pub sleeps: u32,
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        self.now
    }

    fn sleep(&mut self, duration: Duration) {
        self.now += duration;
        self.sleeps += 1;
    }
}
