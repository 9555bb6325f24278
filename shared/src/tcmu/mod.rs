//! `reel-tcmu`: an emulated tape library the kernel believes in (issue #20).
//! The Linux SCSI target's user backstore (`target_core_user`) hands each
//! SCSI command of a device to a program through a shared-memory ring on
//! a UIO device ([`ring`]); behind the `tcm_loop` fabric the device sits on
//! the local SCSI bus, where st binds to it as `/dev/nstN` because its
//! INQUIRY says "tape" ([`ssc`]). The tape is a drive of reel's virtual
//! library, so what st writes is a normal `virtual:DIR` tape. The library's
//! changer is served the same way ([`smc`]): ch and sg bind to it, and what
//! mtx moves is moved in `library.json`, under the drives served ([`bay`]).
//!
//! The configfs set-up (modules, backstore, target, nexus, LUN) is the
//! operator's or the test's: `scripts/tcmu-vm.d/tests.sh` shows it. Blocks
//! larger than 1 MiB cannot pass tcm_loop (st fails them with EBUSY before
//! a command is sent), so READ BLOCK LIMITS reports 1 MiB.

pub mod bay;
pub mod faults;
mod inquiry;
pub mod ring;
pub mod sense;
pub mod smc;
pub mod ssc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use nix::sys::signal::Signal;

use crate::exit::Exit;
use crate::signals;
use crate::vtl::{Library, LibrarySpec};

/// What `reel-tcmu` was asked to serve.
#[derive(Debug, Clone)]
pub struct Options {
    /// The virtual library directory (created if missing, with as many
    /// drives as the highest drive served needs).
    pub library: PathBuf,
    /// The drives to serve: index in the library and the TCMU device's
    /// `/dev/uioN`.
    pub drives: Vec<(u32, PathBuf)>,
    /// The `/dev/uioN` of the changer's TCMU device, if one is served.
    pub changer: Option<PathBuf>,
    /// The capacity of each tape of a library created now (the
    /// early-warning margin follows it: [`LibrarySpec::with_capacity`]);
    /// `None`: [`LibrarySpec::default`]. An existing library keeps its tapes.
    pub capacity: Option<crate::units::Size>,
    /// Drives (by index) whose TapeAlert says "cleaning required".
    pub needs_cleaning: Vec<u32>,
}

/// The unit serial number of drive `n`, as its INQUIRY and the changer's
/// READ ELEMENT STATUS report it.
pub fn default_serial(drive: u32) -> String {
    format!("REEL{drive:06}")
}

/// The changer's unit serial number.
pub const CHANGER_SERIAL: &str = "REELLIB001";

/// Serve the drives and the changer until SIGTERM or SIGINT, one thread per
/// ring: each blocks on its own UIO device, so a long write on one drive
/// never delays another drive or the changer. A changer move into or out
/// of a served drive takes that drive's lock, so it waits for the drive's
/// current command and the drive's next command sees the new tape.
pub fn run(opts: &Options) -> anyhow::Result<Exit> {
    let term = signals::watch(Signal::SIGTERM)?;
    let int = signals::watch(Signal::SIGINT)?;
    let spec = LibrarySpec {
        drives: opts.drives.iter().map(|(n, _)| n + 1).max().unwrap_or(1),
        ..opts
            .capacity
            .map_or_else(LibrarySpec::default, LibrarySpec::with_capacity)
    };
    let library = Library::open_or_create(&opts.library, &spec)
        .with_context(|| opts.library.display().to_string())?;
    let mut served = BTreeMap::new();
    let mut rings = Vec::new();
    for (n, uio) in &opts.drives {
        let bay = bay::Bay::open(&opts.library, *n, &spec)
            .with_context(|| format!("{}: drive {n}", opts.library.display()))?;
        let mut ssc = ssc::Ssc::new(bay, ssc::Identity::new(&default_serial(*n)));
        ssc.set_needs_cleaning(opts.needs_cleaning.contains(n));
        let ssc = Arc::new(Mutex::new(ssc));
        if served.insert(*n, ssc.clone()).is_some() {
            anyhow::bail!("--drive {n} is given twice");
        }
        let ring = ring::Uio::open(uio).with_context(|| uio.display().to_string())?;
        rings.push((format!("drive {n}"), uio.clone(), ring, Device::Drive(ssc)));
    }
    if let Some(uio) = &opts.changer {
        let drives = {
            let _guard = library.lock()?;
            library.read()?.drives.len() as u32
        };
        let serials = (0..drives).map(default_serial).collect();
        let mut id = ssc::Identity::new(CHANGER_SERIAL);
        id.product = "VIRTUAL LIBRARY".into();
        let smc = smc::Smc::new(library.clone(), id, serials, served)
            .with_context(|| opts.library.display().to_string())?;
        let ring = ring::Uio::open(uio).with_context(|| uio.display().to_string())?;
        rings.push((
            "the changer".into(),
            uio.clone(),
            ring,
            Device::Changer(Box::new(smc)),
        ));
    }
    if rings.is_empty() {
        anyhow::bail!("nothing to serve: give --drive N=/dev/uioX or --changer /dev/uioY");
    }
    let failed = AtomicBool::new(false);
    let stop = || term.raised() || int.raised() || failed.load(Ordering::Relaxed);
    std::thread::scope(|s| {
        let threads: Vec<_> = rings
            .into_iter()
            .map(|(what, path, mut uio, mut device)| {
                let (stop, failed) = (&stop, &failed);
                let lib = opts.library.display();
                s.spawn(move || {
                    log::info!("serving {what} of {lib} on {}", path.display());
                    let result = serve(&mut uio, &mut device, stop);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    result.with_context(|| format!("{what} on {}", path.display()))
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a ring thread panicked")?;
        }
        anyhow::Ok(())
    })?;
    log::info!("stopping: the drives' positions are saved in the library");
    Ok(Exit::Ok)
}

enum Device {
    Drive(Arc<Mutex<ssc::Ssc<bay::Bay>>>),
    Changer(Box<smc::Smc>),
}

/// Serve one ring until `stop` says so.
fn serve(uio: &mut ring::Uio, device: &mut Device, stop: &dyn Fn() -> bool) -> std::io::Result<()> {
    let mut handle = |cdb: &[u8], data: &mut dyn ssc::DataBuf| match device {
        Device::Drive(ssc) => ssc
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .execute(cdb, data),
        Device::Changer(smc) => smc.execute(cdb, data),
    };
    // Commands queued before we started are served at once.
    uio.serve(&mut handle)?;
    while !stop() {
        // The timeout bounds how late a signal that lands between the
        // check and the wait is seen.
        uio.wait(1000)?;
        uio.serve(&mut handle)?;
    }
    Ok(())
}

#[cfg(test)]
mod crypto_tests;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod tests;
