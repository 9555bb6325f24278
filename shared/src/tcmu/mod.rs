//! `reel-tcmu`: an emulated tape drive the kernel believes in (issue #20).
//! The Linux SCSI target's user backstore (`target_core_user`) hands each
//! SCSI command of a device to a program through a shared-memory ring on
//! a UIO device ([`ring`]); behind the `tcm_loop` fabric the device sits on
//! the local SCSI bus, where st binds to it as `/dev/nstN` because its
//! INQUIRY says "tape" ([`ssc`]). The tape is a drive of reel's virtual
//! library, so what st writes is a normal `virtual:DIR` tape.
//!
//! The configfs set-up (modules, backstore, target, nexus, LUN) is the
//! operator's or the test's: `scripts/tcmu-vm.d/tests.sh` shows it. Blocks
//! larger than 1 MiB cannot pass tcm_loop (st fails them with EBUSY before
//! a command is sent), so READ BLOCK LIMITS reports 1 MiB.

pub mod ring;
pub mod sense;
pub mod ssc;

use std::path::PathBuf;

use anyhow::Context;
use nix::sys::signal::Signal;

use crate::exit::Exit;
use crate::signals;
use crate::vtl::{self, LibrarySpec};

/// What `reel-tcmu` was asked to serve.
#[derive(Debug, Clone)]
pub struct Options {
    /// The TCMU device's `/dev/uioN`.
    pub uio: PathBuf,
    /// The virtual library directory (created if missing).
    pub library: PathBuf,
    /// Which of its drives to serve.
    pub drive: u32,
    /// The unit serial number INQUIRY reports.
    pub serial: String,
}

/// Serve the drive until SIGTERM or SIGINT.
pub fn run(opts: &Options) -> anyhow::Result<Exit> {
    let term = signals::watch(Signal::SIGTERM)?;
    let int = signals::watch(Signal::SIGINT)?;
    let drive = vtl::open_drive(&opts.library, opts.drive, &LibrarySpec::default())
        .with_context(|| format!("{}: drive {}", opts.library.display(), opts.drive))?;
    let mut uio = ring::Uio::open(&opts.uio).with_context(|| opts.uio.display().to_string())?;
    let mut ssc = ssc::Ssc::new(drive, ssc::Identity::new(&opts.serial));
    log::info!(
        "serving drive {} of {} on {}",
        opts.drive,
        opts.library.display(),
        opts.uio.display()
    );
    let mut handle = |cdb: &[u8], data: &mut dyn ssc::DataBuf| ssc.execute(cdb, data);
    // Commands queued before we started are served at once.
    uio.serve(&mut handle)?;
    while !term.raised() && !int.raised() {
        // The timeout only bounds how late a signal that lands between the
        // check and the wait is seen.
        uio.wait(1000)?;
        uio.serve(&mut handle)?;
    }
    log::info!("stopping: the drive's position is saved in the library");
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests;
