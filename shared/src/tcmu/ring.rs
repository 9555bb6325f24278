//! The TCMU command ring (the kernel's `Documentation/target/tcmu-design.rst`
//! and `include/uapi/linux/target_core_user.h`): the UIO device's one
//! mapping holds a mailbox, a ring of command entries and a data area.
//!
//! ```text
//! mailbox   0: version u16, flags u16, cmdr_off u32, cmdr_size u32,
//!          12: cmd_head u32 (the kernel's), 64: cmd_tail u32 (ours)
//! entry     0: len_op u32 (length | opcode: 0 pad, 1 command, 2 TMR),
//!           4: cmd_id u16, 6: kflags u8, 7: uflags u8,
//!   request 8: iov_cnt u32, 12: iov_bidi_cnt, 16: iov_dif_cnt,
//!          24: cdb_off u64 (4 bytes of padding before it: the request
//!              struct is not packed), 48: iovecs (base u64, len u64;
//!              offsets into the mapping)
//!  response 8: scsi_status u8, 12: read_len u32, 16: sense (96 bytes)
//! ```
//!
//! The response overlays the request, so the CDB and the iovecs are copied
//! out before anything is written back. Every access to the mapping goes
//! through a raw pointer after a bounds check: the kernel writes the same
//! memory, so no Rust reference into it is ever made.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering, fence};

use memmap2::{MmapOptions, MmapRaw};

use super::sense::Reply;
use super::ssc::DataBuf;

const CMD_HEAD: usize = 12;
const CMD_TAIL: usize = 64;
const OP_MASK: u32 = 0x7;
const OP_PAD: u32 = 0;
const OP_CMD: u32 = 1;
const CAP_READ_LEN: u16 = 1 << 1;
const UFLAG_READ_LEN: u8 = 0x2;
/// The request's fields sit in an unpacked struct inside the packed
/// entry, so its u64s are 8-aligned: 4 bytes of padding after iov_dif_cnt.
const CDB_OFF: usize = 24;
const IOV_START: usize = 48;
const SENSE_ROOM: usize = 96;
/// The longest CDB the target core passes (variable-length CDBs aside).
const CDB_MAX: usize = 32;

/// An open TCMU UIO device and its mapping.
pub struct Uio {
    file: File,
    map: MmapRaw,
    cmdr_off: usize,
    cmdr_size: usize,
    read_len: bool,
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// One command's data buffer: iovecs into the mapping.
struct Iovs<'a> {
    uio: &'a Uio,
    iovs: Vec<(usize, usize)>,
}

impl DataBuf for Iovs<'_> {
    fn len(&self) -> usize {
        self.iovs.iter().map(|&(_, l)| l).sum()
    }

    fn gather(&self, to: &mut Vec<u8>) {
        for &(off, len) in &self.iovs {
            let start = to.len();
            to.resize(start + len, 0);
            self.uio.copy_out(off, &mut to[start..]);
        }
    }

    fn scatter(&mut self, mut from: &[u8]) -> usize {
        let mut n = 0;
        for &(off, len) in &self.iovs {
            let take = len.min(from.len());
            self.uio.copy_in(off, &from[..take]);
            from = &from[take..];
            n += take;
        }
        n
    }
}

impl Uio {
    /// Open `/dev/uioN` and map its ring (the size is in sysfs).
    pub fn open(dev: &Path) -> io::Result<Uio> {
        let name = dev
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad(format!("{}: not a /dev/uioN path", dev.display())))?;
        let size_path = format!("/sys/class/uio/{name}/maps/map0/size");
        let size_text = std::fs::read_to_string(&size_path)?;
        let size = usize::from_str_radix(size_text.trim().trim_start_matches("0x"), 16)
            .map_err(|e| bad(format!("{size_path}: {e}")))?;
        let file = OpenOptions::new().read(true).write(true).open(dev)?;
        let map = MmapOptions::new().len(size).map_raw(&file)?;
        let mut uio = Uio {
            file,
            map,
            cmdr_off: 0,
            cmdr_size: 0,
            read_len: false,
        };
        let mut head = [0u8; 12];
        uio.copy_out(0, &mut head);
        let version = u16::from_le_bytes([head[0], head[1]]);
        let flags = u16::from_le_bytes([head[2], head[3]]);
        uio.cmdr_off = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        uio.cmdr_size = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
        uio.read_len = flags & CAP_READ_LEN != 0;
        if version != 2 || uio.cmdr_size == 0 || uio.cmdr_off + uio.cmdr_size > size {
            return Err(bad(format!(
                "{}: not a TCMU ring (mailbox version {version}, ring {}+{} of {size})",
                dev.display(),
                uio.cmdr_off,
                uio.cmdr_size
            )));
        }
        log::info!(
            "{}: TCMU ring of {} bytes at {}, {size} mapped, read_len {}",
            dev.display(),
            uio.cmdr_size,
            uio.cmdr_off,
            uio.read_len
        );
        Ok(uio)
    }

    /// Is `off..off+len` inside the mapping?
    fn inside(&self, off: usize, len: usize) -> bool {
        off.checked_add(len)
            .is_some_and(|end| end <= self.map.len())
    }

    /// Copy bytes out of the mapping. Out of bounds is a bug of ours (every
    /// caller checks first): it panics rather than touch other memory.
    fn copy_out(&self, off: usize, to: &mut [u8]) {
        assert!(self.inside(off, to.len()), "TCMU read out of the mapping");
        // SAFETY: `off..off + to.len()` lies inside the live mapping (just
        // checked), `to` is a distinct Rust buffer, and bytes have no
        // invalid values; the kernel may write these bytes concurrently
        // only for entries it has not handed to us.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(off), to.as_mut_ptr(), to.len());
        }
    }

    /// Copy bytes into the mapping.
    fn copy_in(&self, off: usize, from: &[u8]) {
        assert!(
            self.inside(off, from.len()),
            "TCMU write out of the mapping"
        );
        // SAFETY: as in `copy_out`: the range is inside the writable shared
        // mapping, and the kernel does not touch an entry or its data while
        // we own it (between its cmd_head and our cmd_tail).
        unsafe {
            std::ptr::copy_nonoverlapping(
                from.as_ptr(),
                self.map.as_mut_ptr().add(off),
                from.len(),
            );
        }
    }

    /// The mailbox word at `off` (cmd_head or cmd_tail), shared with the
    /// kernel.
    fn word(&self, off: usize) -> &AtomicU32 {
        assert!(self.inside(off, 4) && off % 4 == 0);
        // SAFETY: the mapping is page-aligned, so `off` (a multiple of 4)
        // gives an aligned u32 inside it, valid while `self.map` lives
        // (the returned reference borrows `self`). The kernel reads and
        // writes it concurrently; an atomic is the right type for that.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU32) }
    }

    fn u32_at(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        self.copy_out(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn u64_at(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        self.copy_out(off, &mut b);
        u64::from_le_bytes(b)
    }

    /// Wait up to `timeout_ms` for the kernel's doorbell; true if it rang.
    /// A signal ends the wait early (false).
    pub fn wait(&mut self, timeout_ms: u16) -> io::Result<bool> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(timeout_ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(false),
            Ok(_) => {
                let mut count = [0u8; 4];
                match self.file.read(&mut count) {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Carry out every command waiting on the ring with `handle(cdb,
    /// data)`, then ring the kernel's doorbell. Returns how many ran.
    pub fn serve(
        &mut self,
        handle: &mut dyn FnMut(&[u8], &mut dyn DataBuf) -> Reply,
    ) -> io::Result<usize> {
        let mut done = 0;
        loop {
            let head = self.word(CMD_HEAD).load(Ordering::Acquire) as usize;
            let mut tail = self.word(CMD_TAIL).load(Ordering::Relaxed) as usize;
            if head == tail {
                break;
            }
            if head >= self.cmdr_size || tail >= self.cmdr_size {
                return Err(bad(format!(
                    "TCMU ring head {head} or tail {tail} out of range"
                )));
            }
            let entry = self.cmdr_off + tail;
            let len_op = self.u32_at(entry);
            let len = (len_op & !OP_MASK) as usize;
            if len == 0 || len > self.cmdr_size {
                return Err(bad(format!("TCMU entry of length {len} at {tail}")));
            }
            if len_op & OP_MASK == OP_CMD {
                self.command(entry, handle);
                done += 1;
            } else if len_op & OP_MASK != OP_PAD {
                log::debug!("TCMU entry of kind {} skipped", len_op & OP_MASK);
            }
            tail = (tail + len) % self.cmdr_size;
            // The response is written before the kernel may see the new tail.
            fence(Ordering::Release);
            self.word(CMD_TAIL).store(tail as u32, Ordering::Release);
        }
        if done > 0 {
            self.file.write_all(&0u32.to_ne_bytes())?;
        }
        Ok(done)
    }

    /// One command entry: copy its CDB and iovecs out, run it, write the
    /// response over it.
    fn command(&self, entry: usize, handle: &mut dyn FnMut(&[u8], &mut dyn DataBuf) -> Reply) {
        let iov_cnt = self.u32_at(entry + 8) as usize;
        let cdb_off = self.u64_at(entry + CDB_OFF) as usize;
        let mut reply = None;
        let mut iovs = Vec::with_capacity(iov_cnt);
        for i in 0..iov_cnt {
            let at = entry + IOV_START + 16 * i;
            if !self.inside(at, 16) {
                reply = Some(Reply::check(super::sense::Sense::new(
                    super::sense::Key::HardwareError,
                    0x44,
                    0x00,
                )));
                break;
            }
            let (base, len) = (self.u64_at(at) as usize, self.u64_at(at + 8) as usize);
            if !self.inside(base, len) {
                log::warn!("TCMU iovec {base}+{len} outside the mapping");
                reply = Some(Reply::check(super::sense::Sense::new(
                    super::sense::Key::HardwareError,
                    0x44,
                    0x00,
                )));
                break;
            }
            iovs.push((base, len));
        }
        let cdb_len = CDB_MAX.min(self.map.len().saturating_sub(cdb_off));
        let mut cdb = vec![0u8; cdb_len];
        if cdb_len > 0 {
            self.copy_out(cdb_off, &mut cdb);
        }
        let mut data = Iovs { uio: self, iovs };
        let reply = reply.unwrap_or_else(|| handle(&cdb, &mut data));
        let mut uflags = [0u8; 1];
        self.copy_out(entry + 7, &mut uflags);
        if let (Some(n), true) = (reply.data_in, self.read_len) {
            uflags[0] |= UFLAG_READ_LEN;
            self.copy_in(entry + 12, &(n as u32).to_le_bytes());
        }
        self.copy_in(entry + 7, &uflags);
        self.copy_in(entry + 8, &[reply.status()]);
        let mut sense = [0u8; SENSE_ROOM];
        if let Some(s) = reply.sense {
            let b = s.bytes();
            sense[..b.len()].copy_from_slice(&b);
        }
        self.copy_in(entry + 16, &sense);
    }
}
