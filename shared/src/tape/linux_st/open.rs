//! Opening an st drive: wait for the tape to come online, fall back to
//! read-only for a write-protected tape, then put the driver in the mode
//! the rest of [`LinuxSt`] relies on.
//!
//! A blocking open of `/dev/nstN` gives up with EIO after two minutes, but a
//! new LTO-9 tape calibrates for up to two hours when first loaded. So the
//! device is opened with `O_NONBLOCK`, which succeeds whatever the drive is
//! doing, and `MTIOCGET` tells whether the tape is online. st decides that
//! only when the device is opened (and on `MTLOAD`), so a drive that was not
//! ready is closed and opened again at every poll rather than asked again on
//! the same descriptor, which would never see it change.

use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::sys::{
    Access, GMT_DR_OPEN, GMT_WR_PROT, MT_ST_ASYNC_WRITES, MT_ST_CLEARBOOLEANS, MT_ST_SCSI2LOGICAL,
    MT_ST_SETBOOLEANS, MtOp, MtStatus, StSys,
};
use super::{LinuxSt, st_error};
use crate::tape::TapeError;
use crate::units::Interval;

/// How [`LinuxSt::open`] waits for the drive and sets it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// How long to wait for a tape to come online (loading, or calibrating a
    /// new tape, which takes LTO-9 up to two hours). After it: `NotReady`.
    pub ready_timeout: Duration,
    /// Time between two looks at the drive while waiting.
    pub poll_interval: Duration,
    /// Put the drive in variable-block mode (`MTSETBLK 0`), as reel writes
    /// and reads its tapes. Off for tools that must leave the mode alone.
    pub variable_blocks: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            // Two hours of calibration plus loading and threading, with room.
            ready_timeout: Duration::from_secs(150 * 60),
            poll_interval: Duration::from_secs(5),
            variable_blocks: true,
        }
    }
}

/// Time for the online wait, so tests can run it without sleeping.
pub trait Clock {
    /// Time since an arbitrary fixed origin; only differences matter.
    fn now(&self) -> Duration;
    fn sleep(&mut self, duration: Duration);
}

/// The real, monotonic clock.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// One open of the device, with the read-only fallback.
fn open_once<S>(
    device: &str,
    access: &mut Access,
    open: &mut impl FnMut(Access) -> Result<S, Errno>,
) -> Result<S, TapeError> {
    loop {
        match open(*access) {
            Ok(sys) => return Ok(sys),
            // EROFS: st found the tape write-protected; EACCES: the tape, or
            // the device node's permissions, allow reading only. Either way
            // the tape can still be read, and writes report WriteProtected.
            Err(Errno::EROFS | Errno::EACCES) if *access == Access::ReadWrite => {
                *access = Access::ReadOnly;
            }
            Err(Errno::EBUSY) => return Err(TapeError::Busy(device.to_string())),
            Err(e) => return Err(st_error("open", e)),
        }
    }
}

impl<S: StSys> LinuxSt<S> {
    /// Open `device` through `open` (which must open it non-blocking), wait
    /// for the tape as `options` say, with `clock` measuring the wait.
    /// [`LinuxSt::open`] is this with the real device and clock.
    pub fn open_with<C: Clock>(
        device: &str,
        options: &OpenOptions,
        mut open: impl FnMut(Access) -> Result<S, Errno>,
        clock: &mut C,
    ) -> Result<Self, TapeError> {
        let start = clock.now();
        let mut access = Access::ReadWrite;
        let mut announced = false;
        let (mut sys, status) = loop {
            let mut sys = open_once(device, &mut access, &mut open)?;
            let status = match sys.mtget() {
                Ok(status) => status,
                // While the SCSI layer recovers from an error (a reset, as
                // a drive coming up may cause), a non-blocking descriptor
                // gets EAGAIN instead of waiting: not ready yet.
                Err(Errno::EAGAIN) => MtStatus::default(),
                Err(e) => return Err(st_error("status (MTIOCGET)", e)),
            };
            if status.online() {
                if status.has(GMT_WR_PROT) && access == Access::ReadWrite {
                    // Open write-protected tapes read-only, so that nothing
                    // (st writes a filemark on close after a write) tries.
                    access = Access::ReadOnly;
                    continue;
                }
                break (sys, status);
            }
            if status.has(GMT_DR_OPEN) {
                return Err(TapeError::NoTape);
            }
            drop(sys);
            let waited = clock.now().saturating_sub(start);
            if waited >= options.ready_timeout {
                log::info!(
                    "{device}: still not ready after {}",
                    Interval(options.ready_timeout)
                );
                return Err(TapeError::NotReady);
            }
            if !announced {
                log::info!(
                    "{device}: tape not ready (loading, or calibrating a new tape); waiting up to {}",
                    Interval(options.ready_timeout)
                );
                announced = true;
            }
            clock.sleep(options.poll_interval);
        };
        sys.set_nonblocking(false)
            .map_err(|e| st_error("clear O_NONBLOCK (fcntl)", e))?;
        let mut drive = LinuxSt {
            device: device.to_string(),
            sys,
            pos: None,
            warned: false,
            write_protected: access == Access::ReadOnly || status.has(GMT_WR_PROT),
            variable_blocks: options.variable_blocks,
            read_limit: None,
            keyed: false,
        };
        drive.set_driver_options()?;
        drive.prepare_tape()?;
        Ok(drive)
    }

    /// Load the tape of a drive that holds one unloaded (after an unload),
    /// then open it as [`LinuxSt::open_with`] does. Such a drive is not
    /// ready, so an open would wait for it in vain; st takes `MTLOAD` on a
    /// non-blocking descriptor whatever the drive's state, as `mt load` does.
    pub fn load_with<C: Clock>(
        device: &str,
        options: &OpenOptions,
        mut open: impl FnMut(Access) -> Result<S, Errno>,
        clock: &mut C,
    ) -> Result<Self, TapeError> {
        let mut sys = open_once(device, &mut Access::ReadOnly, &mut open)?;
        sys.mtop(MtOp::Load, 0)
            .map_err(|e| st_error(MtOp::Load.describe(), e))?;
        drop(sys);
        Self::open_with(device, options, open, clock)
    }

    /// Make `MTIOCPOS` and `MTSEEK` use logical block addresses (which count
    /// filemarks, and are what docs/tape-format.md §1 records), and have a write that
    /// meets the early warning report it itself. These options belong to the
    /// drive and last until the st module is reloaded.
    fn set_driver_options(&mut self) -> Result<(), TapeError> {
        let logical = (MT_ST_SETBOOLEANS | MT_ST_SCSI2LOGICAL) as i32;
        match self.sys.mtop(MtOp::SetDrvBuffer, logical) {
            Ok(()) => {}
            // st lets only root change its options; an administrator may have
            // set this one already (stinit, or mt stsetoptions).
            Err(Errno::EPERM) => {
                let set = self.sys.driver_options();
                if set.is_none_or(|o| o & MT_ST_SCSI2LOGICAL == 0) {
                    return Err(TapeError::io(
                        "set st option scsi2logical (MTSETDRVBUFFER; needs root, or once as root: mt -f <device> stsetoptions scsi2logical)",
                        Errno::EPERM.into(),
                    ));
                }
            }
            Err(e) => return Err(st_error(MtOp::SetDrvBuffer.describe(), e)),
        }
        // Asynchronous writes (used when a buffer cannot be transferred
        // directly) report errors, ENOSPC included, on the *next* call. Not
        // being allowed to turn them off is no reason to fail: with
        // page-aligned buffers st writes directly and synchronously anyway.
        let sync = (MT_ST_CLEARBOOLEANS | MT_ST_ASYNC_WRITES) as i32;
        match self.sys.mtop(MtOp::SetDrvBuffer, sync) {
            Ok(()) => Ok(()),
            Err(Errno::EPERM) => {
                log::debug!("{}: asynchronous writes left as they are", self.device);
                Ok(())
            }
            Err(e) => Err(st_error(MtOp::SetDrvBuffer.describe(), e)),
        }
    }

    /// What a newly loaded tape needs: variable-block mode, if asked for.
    /// st resets the block size it was told when a new tape is loaded.
    pub(super) fn prepare_tape(&mut self) -> Result<(), TapeError> {
        if self.variable_blocks {
            self.sys
                .mtop(MtOp::SetBlk, 0)
                .map_err(|e| st_error(MtOp::SetBlk.describe(), e))?;
        }
        Ok(())
    }

    /// `MTIOCGET`, for the rest of the module.
    pub(super) fn mtget(&mut self) -> Result<MtStatus, TapeError> {
        self.sys
            .mtget()
            .map_err(|e| st_error("status (MTIOCGET)", e))
    }
}
