//! The thin layer between [`LinuxSt`](super::LinuxSt) and the kernel: the
//! few st primitives as the [`StSys`] trait, and [`RealSt`], which performs
//! them on a file descriptor of `/dev/nstN` with the `MTIOCTOP`, `MTIOCGET`
//! and `MTIOCPOS` ioctls of `<linux/mtio.h>`.
//!
//! Everything that decides what a result *means* (early warning, filemark or
//! end of data, position bookkeeping) lives above this trait, so it can be
//! tested against a simulated tape; this file only moves bytes and numbers
//! and holds the crate's only `unsafe` for tape access. The structures and
//! request numbers are defined here because libc does not carry `mtio.h`.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use crate::scsi::sg_io::SgError;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::stat::Mode;

/// `mt_gstat` bits (`GMT_*` in `mtio.h`), as `mt status` prints them.
pub const GMT_EOF: u32 = 0x8000_0000;
pub const GMT_BOT: u32 = 0x4000_0000;
pub const GMT_EOT: u32 = 0x2000_0000;
pub const GMT_EOD: u32 = 0x0800_0000;
pub const GMT_WR_PROT: u32 = 0x0400_0000;
pub const GMT_ONLINE: u32 = 0x0100_0000;
pub const GMT_DR_OPEN: u32 = 0x0004_0000;
pub const GMT_IM_REP_EN: u32 = 0x0001_0000;

/// `mt_dsreg` layout: block size in the low 24 bits, density code on top.
pub const MT_ST_BLKSIZE_MASK: u32 = 0x00ff_ffff;
pub const MT_ST_DENSITY_MASK: u32 = 0xff00_0000;
pub const MT_ST_DENSITY_SHIFT: u32 = 24;

/// `MTSETDRVBUFFER` arguments: which option word, and the boolean options.
pub const MT_ST_SETBOOLEANS: u32 = 0x3000_0000;
pub const MT_ST_CLEARBOOLEANS: u32 = 0x4000_0000;
pub const MT_ST_ASYNC_WRITES: u32 = 0x2;
pub const MT_ST_SCSI2LOGICAL: u32 = 0x800;

/// The `MTIOCTOP` operations reel uses (`mt_op` values of `mtio.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtOp {
    Fsf,
    Bsf,
    Weof,
    /// Filemarks written without waiting for the drive's buffer.
    Weofi,
    Rew,
    Offl,
    Eom,
    Erase,
    SetBlk,
    Seek,
    SetDrvBuffer,
    Load,
}

impl MtOp {
    /// The `mt_op` number.
    pub const fn code(self) -> i16 {
        match self {
            MtOp::Fsf => 1,
            MtOp::Bsf => 2,
            MtOp::Weof => 5,
            MtOp::Weofi => 35,
            MtOp::Rew => 6,
            MtOp::Offl => 7,
            MtOp::Eom => 12,
            MtOp::Erase => 13,
            MtOp::SetBlk => 20,
            MtOp::Seek => 22,
            MtOp::SetDrvBuffer => 24,
            MtOp::Load => 30,
        }
    }

    /// What the operation does, and its `mtio.h` name, for error messages.
    pub const fn describe(self) -> &'static str {
        match self {
            MtOp::Fsf => "space forward over filemarks (MTFSF)",
            MtOp::Bsf => "space backward over filemarks (MTBSF)",
            MtOp::Weof => "write filemarks (MTWEOF)",
            MtOp::Weofi => "write filemarks without waiting (MTWEOFI)",
            MtOp::Rew => "rewind (MTREW)",
            MtOp::Offl => "unload (MTOFFL)",
            MtOp::Eom => "space to end of data (MTEOM)",
            MtOp::Erase => "erase (MTERASE)",
            MtOp::SetBlk => "set block size (MTSETBLK)",
            MtOp::Seek => "seek (MTSEEK)",
            MtOp::SetDrvBuffer => "set st driver options (MTSETDRVBUFFER)",
            MtOp::Load => "load (MTLOAD)",
        }
    }
}

/// What `MTIOCGET` returns, reduced to the fields st fills in meaningfully.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtStatus {
    /// `GMT_*` bits.
    pub gstat: u32,
    /// Block size and density code (`MT_ST_*_MASK`).
    pub dsreg: u32,
    /// Tape file number; -1 when st does not know it.
    pub fileno: i32,
    /// Block number inside the file; -1 when st does not know it.
    pub blkno: i32,
}

impl MtStatus {
    pub fn has(&self, bit: u32) -> bool {
        self.gstat & bit != 0
    }

    pub fn online(&self) -> bool {
        self.has(GMT_ONLINE)
    }

    pub fn block_size(&self) -> u32 {
        self.dsreg & MT_ST_BLKSIZE_MASK
    }

    /// The density code; 0 (no tape, or the drive's default) is `None`.
    pub fn density(&self) -> Option<u8> {
        let code = ((self.dsreg & MT_ST_DENSITY_MASK) >> MT_ST_DENSITY_SHIFT) as u8;
        (code != 0).then_some(code)
    }

    pub fn file(&self) -> Option<u64> {
        u64::try_from(self.fileno).ok()
    }

    pub fn block(&self) -> Option<u64> {
        u64::try_from(self.blkno).ok()
    }
}

/// How to open the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

/// The primitives of the st driver that [`LinuxSt`](super::LinuxSt) is
/// built on. Errors are the raw errno values, because their meaning depends
/// on the operation (ENOSPC on a write is the early warning, ENOMEM on a read
/// a block larger than the buffer).
pub trait StSys: Send {
    /// `MTIOCTOP`: one tape operation with its count.
    fn mtop(&mut self, op: MtOp, count: i32) -> Result<(), Errno>;
    /// `MTIOCGET`: the driver's status.
    fn mtget(&mut self) -> Result<MtStatus, Errno>;
    /// `MTIOCPOS`: the current block address (logical, once
    /// `MT_ST_SCSI2LOGICAL` is set).
    fn mtpos(&mut self) -> Result<u64, Errno>;
    /// `read(2)`: one tape block in variable-block mode.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno>;
    /// `write(2)`: one tape block in variable-block mode.
    fn write(&mut self, data: &[u8]) -> Result<usize, Errno>;
    /// Set or clear `O_NONBLOCK` on the descriptor.
    fn set_nonblocking(&mut self, on: bool) -> Result<(), Errno>;
    /// The st driver options in force (`MT_ST_*` booleans), when the system
    /// shows them; st exports them read-only in sysfs.
    fn driver_options(&mut self) -> Option<u32>;
    /// LOG SENSE of `page` through SG_IO on the same descriptor (st passes
    /// it to the SCSI layer): the bytes answered.
    fn log_sense(&mut self, page: u8, buf: &mut [u8]) -> Result<usize, SgError>;
    /// READ ATTRIBUTE (every attribute value) through SG_IO: the bytes
    /// answered.
    fn read_attributes(&mut self, buf: &mut [u8]) -> Result<usize, SgError>;
    /// Any other SCSI command through SG_IO (drive encryption): the bytes
    /// moved. The simulated st of the tests takes none.
    fn scsi(&mut self, cdb: &[u8], data: crate::scsi::sg_io::Data<'_>) -> Result<usize, SgError> {
        let _ = (cdb, data);
        Err(SgError::Os(nix::errno::Errno::ENOTTY))
    }
}

/// The kernel layouts and request numbers of `<linux/mtio.h>`.
mod raw {
    use std::ffi::{c_int, c_long, c_short};

    /// `struct mtop`.
    #[repr(C)]
    pub struct Mtop {
        pub mt_op: c_short,
        pub mt_count: c_int,
    }

    /// `struct mtget`; `mt_fileno` and `mt_blkno` are `__kernel_daddr_t`,
    /// an `int` on every Linux architecture.
    #[repr(C)]
    #[derive(Default)]
    pub struct Mtget {
        pub mt_type: c_long,
        pub mt_resid: c_long,
        pub mt_dsreg: c_long,
        pub mt_gstat: c_long,
        pub mt_erreg: c_long,
        pub mt_fileno: c_int,
        pub mt_blkno: c_int,
    }

    /// `struct mtpos`.
    #[repr(C)]
    #[derive(Default)]
    pub struct Mtpos {
        pub mt_blkno: c_long,
    }

    // The request numbers encode the structure sizes, so a layout mistake
    // would make the kernel reject the call rather than corrupt memory; these
    // checks catch it at compile time instead.
    #[cfg(target_pointer_width = "64")]
    const _: () = assert!(size_of::<Mtget>() == 48 && size_of::<Mtpos>() == 8);
    const _: () = assert!(size_of::<Mtop>() == 8);

    nix::ioctl_write_ptr!(mtioctop, b'm', 1, Mtop);
    nix::ioctl_read!(mtiocget, b'm', 2, Mtget);
    nix::ioctl_read!(mtiocpos, b'm', 3, Mtpos);
}

/// Calls `f` again while it fails with EINTR. st takes its lock
/// interruptibly before doing anything, so an interrupted call has not
/// touched the tape and repeating it is safe.
fn restart<T>(mut f: impl FnMut() -> nix::Result<T>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// A real st device, opened non-blocking.
#[derive(Debug)]
pub struct RealSt {
    fd: OwnedFd,
}

impl RealSt {
    /// Open `device` with `O_NONBLOCK`, so that the open succeeds while the
    /// drive is empty, loading or calibrating (a blocking open gives up with
    /// EIO after two minutes). [`StSys::set_nonblocking`] clears it again.
    pub fn open(device: &str, access: Access) -> Result<RealSt, Errno> {
        let mode = match access {
            Access::ReadWrite => OFlag::O_RDWR,
            Access::ReadOnly => OFlag::O_RDONLY,
        };
        let flags = mode | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(device, flags, Mode::empty())?;
        Ok(RealSt { fd })
    }
}

impl StSys for RealSt {
    fn mtop(&mut self, op: MtOp, count: i32) -> Result<(), Errno> {
        let arg = raw::Mtop {
            mt_op: op.code(),
            mt_count: count,
        };
        // SAFETY: the descriptor is open for as long as `self`; `arg` is a
        // live `struct mtop` that the kernel only reads.
        restart(|| unsafe { raw::mtioctop(self.fd.as_raw_fd(), &arg) }).map(drop)
    }

    fn mtget(&mut self) -> Result<MtStatus, Errno> {
        let mut out = raw::Mtget::default();
        // SAFETY: the descriptor is open; `out` is a writable `struct mtget`
        // of the size encoded in the request number.
        restart(|| unsafe { raw::mtiocget(self.fd.as_raw_fd(), &mut out) })?;
        // The kernel builds these from 32-bit values in `long`s; truncating
        // keeps every bit it can set.
        Ok(MtStatus {
            gstat: out.mt_gstat as u32,
            dsreg: out.mt_dsreg as u32,
            fileno: out.mt_fileno,
            blkno: out.mt_blkno,
        })
    }

    fn mtpos(&mut self) -> Result<u64, Errno> {
        let mut out = raw::Mtpos::default();
        // SAFETY: the descriptor is open; `out` is a writable `struct mtpos`.
        restart(|| unsafe { raw::mtiocpos(self.fd.as_raw_fd(), &mut out) })?;
        u64::try_from(out.mt_blkno).map_err(|_| Errno::ERANGE)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        restart(|| nix::unistd::read(&self.fd, buf))
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, Errno> {
        restart(|| nix::unistd::write(&self.fd, data))
    }

    fn set_nonblocking(&mut self, on: bool) -> Result<(), Errno> {
        let bits = nix::fcntl::fcntl(&self.fd, FcntlArg::F_GETFL)?;
        let mut flags = OFlag::from_bits_retain(bits);
        flags.set(OFlag::O_NONBLOCK, on);
        nix::fcntl::fcntl(&self.fd, FcntlArg::F_SETFL(flags)).map(drop)
    }

    fn driver_options(&mut self) -> Option<u32> {
        // /sys/dev/char/MAJ:MIN leads to the st class directory of exactly
        // this device node, whatever name (by-id link, nst0a…) it was opened by.
        let rdev = nix::sys::stat::fstat(&self.fd).ok()?.st_rdev;
        let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        let text = fs::read_to_string(format!("/sys/dev/char/{major}:{minor}/options")).ok()?;
        parse_options(&text)
    }

    fn log_sense(&mut self, page: u8, buf: &mut [u8]) -> Result<usize, SgError> {
        crate::scsi::sg_io::log_sense(self.fd.as_fd(), page, buf)
    }

    fn read_attributes(&mut self, buf: &mut [u8]) -> Result<usize, SgError> {
        let cdb = crate::scsi::mam::read_attribute_cdb(buf.len() as u32);
        crate::scsi::sg_io::data_in(self.fd.as_fd(), &cdb, buf, 30_000)
    }

    fn scsi(&mut self, cdb: &[u8], data: crate::scsi::sg_io::Data<'_>) -> Result<usize, SgError> {
        crate::scsi::sg_io::run(
            self.fd.as_fd(),
            cdb,
            data,
            std::time::Duration::from_secs(60),
        )
    }
}

/// st prints its options as `0x%08x`.
fn parse_options(text: &str) -> Option<u32> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bits_match_real_mt_status_output() {
        // General status bits from fixtures/device-output/mt-status-*.txt.
        let bot = MtStatus {
            gstat: 0x4101_0000,
            dsreg: 0x6000_0000,
            fileno: 0,
            blkno: 0,
        };
        assert!(bot.has(GMT_BOT) && bot.online() && bot.has(GMT_IM_REP_EN));
        assert!(!bot.has(GMT_EOF) && !bot.has(GMT_WR_PROT));
        assert_eq!((bot.block_size(), bot.density()), (0, Some(0x60)));
        assert_eq!((bot.file(), bot.block()), (Some(0), Some(0)));

        let eof = MtStatus {
            gstat: 0x8101_0000,
            dsreg: 0x5c00_0000,
            fileno: 1,
            blkno: 0,
        };
        assert!(eof.has(GMT_EOF) && eof.online() && !eof.has(GMT_BOT));
        assert_eq!(eof.density(), Some(0x5c));

        let wr_prot = MtStatus {
            gstat: 0x4501_0000,
            dsreg: 0x1300_0200,
            ..MtStatus::default()
        };
        assert!(wr_prot.has(GMT_WR_PROT) && wr_prot.has(GMT_BOT));
        assert_eq!((wr_prot.block_size(), wr_prot.density()), (512, Some(0x13)));

        let dr_open = MtStatus {
            gstat: 0x5_0000,
            dsreg: 0,
            fileno: -1,
            blkno: -1,
        };
        assert!(dr_open.has(GMT_DR_OPEN) && !dr_open.online());
        assert_eq!(
            (dr_open.file(), dr_open.block(), dr_open.density()),
            (None, None, None)
        );

        let unknown = MtStatus {
            gstat: 0x101_0000,
            dsreg: 0x5c00_0000,
            fileno: -1,
            blkno: -1,
        };
        assert!(unknown.online() && !unknown.has(GMT_BOT));
        assert_eq!((unknown.file(), unknown.block()), (None, None));
    }

    #[test]
    fn request_numbers_are_those_of_mtio_h() {
        // _IOW('m', 1, struct mtop), _IOR('m', 2, struct mtget),
        // _IOR('m', 3, struct mtpos) as the kernel headers encode them on
        // x86-64 and arm64.
        #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
        {
            use nix::{request_code_read, request_code_write};
            assert_eq!(
                request_code_write!(b'm', 1, size_of::<raw::Mtop>()) as u32,
                0x4008_6d01
            );
            assert_eq!(
                request_code_read!(b'm', 2, size_of::<raw::Mtget>()) as u32,
                0x8030_6d02
            );
            assert_eq!(
                request_code_read!(b'm', 3, size_of::<raw::Mtpos>()) as u32,
                0x8008_6d03
            );
        }
    }

    #[test]
    fn ioctls_on_something_that_is_not_a_tape() {
        // The real calls, on a device every system has: the kernel rejects
        // the tape ioctls, and plain I/O works.
        let mut st = RealSt::open("/dev/null", Access::ReadWrite).unwrap();
        assert_eq!(st.mtget(), Err(Errno::ENOTTY));
        assert_eq!(st.mtpos(), Err(Errno::ENOTTY));
        assert_eq!(st.mtop(MtOp::Rew, 1), Err(Errno::ENOTTY));
        st.set_nonblocking(false).unwrap();
        assert_eq!(st.write(b"block"), Ok(5));
        assert_eq!(st.read(&mut [0; 8]), Ok(0));
        assert_eq!(st.driver_options(), None);
    }

    #[test]
    fn sysfs_options_parse() {
        assert_eq!(parse_options("0x00000807\n"), Some(0x807));
        assert_eq!(parse_options("2055"), Some(2055));
        assert_eq!(parse_options("junk"), None);
    }
}
