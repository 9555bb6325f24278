//! One SCSI command through the SG_IO ioctl (`<scsi/sg.h>`, version 3
//! interface), on any descriptor whose driver takes it: `/dev/sgN`, and
//! `/dev/nstN`, whose st driver passes unknown ioctls to the SCSI layer.
//! The structure and request number are defined here because libc does
//! not carry `sg.h`.

use std::ffi::{c_int, c_uint, c_ushort, c_void};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;

use super::sense::Sense;

/// `struct sg_io_hdr`.
#[repr(C)]
struct SgIoHdr {
    interface_id: c_int,
    dxfer_direction: c_int,
    cmd_len: u8,
    mx_sb_len: u8,
    iovec_count: c_ushort,
    dxfer_len: c_uint,
    dxferp: *mut c_void,
    cmdp: *const u8,
    sbp: *mut u8,
    timeout: c_uint,
    flags: c_uint,
    pack_id: c_int,
    usr_ptr: *mut c_void,
    status: u8,
    masked_status: u8,
    msg_status: u8,
    sb_len_wr: u8,
    host_status: c_ushort,
    driver_status: c_ushort,
    resid: c_int,
    duration: c_uint,
    info: c_uint,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<SgIoHdr>() == 88);

const SG_DXFER_NONE: c_int = -1;
const SG_DXFER_TO_DEV: c_int = -2;
const SG_DXFER_FROM_DEV: c_int = -3;
// SG_IO is 0x2285, a plain request number (no size encoded in it).
nix::ioctl_readwrite_bad!(sg_io, 0x2285, SgIoHdr);

/// How a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SgError {
    /// The ioctl itself failed (ENOTTY: the driver takes no SG_IO).
    Os(Errno),
    /// CHECK CONDITION, with the sense data.
    Check(Vec<u8>),
    /// Another SCSI status, or a host or driver error.
    Status { status: u8, host: u16, driver: u16 },
}

impl SgError {
    /// Sense key, ASC and ASCQ of a CHECK CONDITION with fixed or
    /// descriptor-format sense.
    pub fn sense(&self) -> Option<(u8, u8, u8)> {
        self.decoded().map(|s| (s.key, s.asc, s.ascq))
    }

    /// The whole sense of a CHECK CONDITION, decoded.
    pub fn decoded(&self) -> Option<Sense> {
        match self {
            SgError::Check(s) => Sense::parse(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for SgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SgError::Os(e) => write!(f, "SG_IO: {e}"),
            SgError::Check(sense) => match Sense::parse(sense) {
                Some(s) => write!(f, "CHECK CONDITION, {s}"),
                None => write!(f, "CHECK CONDITION, sense {sense:02x?}"),
            },
            SgError::Status {
                status,
                host,
                driver,
            } => write!(
                f,
                "SCSI status {status:#x}, host status {host:#x}, driver status {driver:#x}"
            ),
        }
    }
}

/// The data a command moves.
pub enum Data<'a> {
    None,
    /// From the device into the buffer.
    In(&'a mut [u8]),
    /// From the buffer to the device.
    Out(&'a [u8]),
}

/// A SCSI device commands can be sent to: an SG_IO descriptor, or in the
/// tests reel-tcmu's own emulated devices.
pub trait Scsi: Send {
    /// Run `cdb`, moving `data`, waiting at most `timeout`. Returns the
    /// bytes transferred. On CHECK CONDITION the data the device sent
    /// before it stopped is in the buffer all the same.
    fn run(&mut self, cdb: &[u8], data: Data<'_>, timeout: Duration) -> Result<usize, SgError>;

    /// The timeout of [`Scsi::data_in`] and [`Scsi::no_data`].
    fn default_timeout(&self) -> Duration {
        Duration::from_secs(10 * 60)
    }

    /// Run `cdb` with a data-in transfer into `buf`: the bytes transferred.
    fn data_in(&mut self, cdb: &[u8], buf: &mut [u8]) -> Result<usize, SgError> {
        let t = self.default_timeout();
        self.run(cdb, Data::In(buf), t)
    }

    /// Run `cdb`, which moves no data.
    fn no_data(&mut self, cdb: &[u8]) -> Result<(), SgError> {
        let t = self.default_timeout();
        self.run(cdb, Data::None, t).map(drop)
    }
}

/// A device node opened for SG_IO (`/dev/sgN`, `/dev/schN`, `/dev/nstN`).
pub struct SgDevice {
    fd: std::os::fd::OwnedFd,
    /// The timeout of commands sent without their own.
    timeout: Duration,
}

impl SgDevice {
    /// Open `path` read-write and non-blocking (SG_IO needs no more).
    pub fn open(path: &std::path::Path, timeout: Duration) -> Result<SgDevice, Errno> {
        use nix::fcntl::OFlag;
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        Ok(SgDevice { fd, timeout })
    }
}

impl Scsi for SgDevice {
    fn run(&mut self, cdb: &[u8], data: Data<'_>, timeout: Duration) -> Result<usize, SgError> {
        use std::os::fd::AsFd;
        run(self.fd.as_fd(), cdb, data, timeout)
    }
    fn default_timeout(&self) -> Duration {
        self.timeout
    }
}

/// Run `cdb` with a data-in transfer into `buf` (none when `buf` is
/// empty), waiting at most `timeout_ms`. Returns the bytes transferred.
pub fn data_in(
    fd: BorrowedFd<'_>,
    cdb: &[u8],
    buf: &mut [u8],
    timeout_ms: u32,
) -> Result<usize, SgError> {
    let data = if buf.is_empty() {
        Data::None
    } else {
        Data::In(buf)
    };
    run(fd, cdb, data, Duration::from_millis(timeout_ms.into()))
}

/// Run `cdb` on `fd`, moving `data`, waiting at most `timeout`. Returns
/// the bytes transferred.
pub fn run(
    fd: BorrowedFd<'_>,
    cdb: &[u8],
    data: Data<'_>,
    timeout: Duration,
) -> Result<usize, SgError> {
    let mut sense = [0u8; 64];
    let (direction, ptr, len): (c_int, *mut c_void, usize) = match data {
        Data::None => (SG_DXFER_NONE, std::ptr::null_mut(), 0),
        Data::In(b) => (SG_DXFER_FROM_DEV, b.as_mut_ptr().cast(), b.len()),
        // The kernel only reads a data-out buffer.
        Data::Out(b) => (SG_DXFER_TO_DEV, b.as_ptr().cast_mut().cast(), b.len()),
    };
    let dxfer_len = c_uint::try_from(len).map_err(|_| SgError::Os(Errno::EINVAL))?;
    let mut hdr = SgIoHdr {
        interface_id: c_int::from(b'S'),
        dxfer_direction: direction,
        cmd_len: u8::try_from(cdb.len()).map_err(|_| SgError::Os(Errno::EINVAL))?,
        mx_sb_len: sense.len() as u8,
        iovec_count: 0,
        dxfer_len,
        dxferp: ptr,
        cmdp: cdb.as_ptr(),
        sbp: sense.as_mut_ptr(),
        timeout: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        flags: 0,
        pack_id: 0,
        usr_ptr: std::ptr::null_mut(),
        status: 0,
        masked_status: 0,
        msg_status: 0,
        sb_len_wr: 0,
        host_status: 0,
        driver_status: 0,
        resid: 0,
        duration: 0,
        info: 0,
    };
    // SAFETY: `hdr` is a valid sg_io_hdr whose pointers (the CDB with its
    // length, the data buffer with its length, the sense buffer with its
    // length) all point into memory that lives until the ioctl returns; the
    // kernel writes only within those lengths, and into a data-out buffer
    // not at all.
    unsafe { sg_io(fd.as_raw_fd(), &mut hdr) }.map_err(SgError::Os)?;
    if hdr.status == 0x02 {
        return Err(SgError::Check(sense[..usize::from(hdr.sb_len_wr)].to_vec()));
    }
    if hdr.status != 0 || hdr.host_status != 0 || (hdr.driver_status & 0x0f) != 0 {
        return Err(SgError::Status {
            status: hdr.status,
            host: hdr.host_status,
            driver: hdr.driver_status,
        });
    }
    let resid = usize::try_from(hdr.resid).unwrap_or(0);
    Ok(len.saturating_sub(resid))
}

/// LOG SENSE of `page` (cumulative values) with an allocation length of
/// `len` (at most 64 KiB - 1).
pub fn log_sense_cdb(page: u8, len: usize) -> [u8; 10] {
    let len = (len.min(0xffff) as u16).to_be_bytes();
    [0x4d, 0, 0x40 | (page & 0x3f), 0, 0, 0, 0, len[0], len[1], 0]
}

/// LOG SENSE of `page` (cumulative values), into `buf`.
pub fn log_sense(fd: BorrowedFd<'_>, page: u8, buf: &mut [u8]) -> Result<usize, SgError> {
    let cdb = log_sense_cdb(page, buf.len());
    let len = buf.len().min(0xffff);
    data_in(fd, &cdb, &mut buf[..len], 30_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_no_scsi_device_refuses_sg_io() {
        let f = tempfile::tempfile().unwrap();
        let mut buf = [0u8; 64];
        use std::os::fd::AsFd;
        let err = log_sense(f.as_fd(), 0x12, &mut buf).unwrap_err();
        assert_eq!(err, SgError::Os(Errno::ENOTTY));
    }

    #[test]
    fn sense_reads_as_key_and_asc() {
        let mut s = vec![0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0x00];
        s.resize(18, 0);
        assert_eq!(
            SgError::Check(s).to_string(),
            "CHECK CONDITION, sense key 0x3, ASC/ASCQ 11/00 (unrecovered read error)"
        );
    }
}
