//! Opening drives and changers from device strings (README, "Tapes, drives and
//! libraries"): the one place that knows which implementation serves
//! `/dev/nst0`, `/dev/sg5` or `virtual:<dir>[#n]`.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;

use crate::changer::{Changer, ChangerError};
use crate::config::{self, Config, Device};
use crate::tape::{Drive, TapeError};
use crate::vtl::{self, LibrarySpec};

/// The shape of a virtual library created on first use: tapes of the
/// capacity of the configured drive on that library, if any.
pub fn library_spec(config: Option<&Config>, device: &Device) -> LibrarySpec {
    let Device::Virtual { dir, .. } = device else {
        return LibrarySpec::default();
    };
    let same_library = |d: &Device| matches!(d, Device::Virtual { dir: other, .. } if other == dir);
    let mut spec = config
        .and_then(|c| c.drives.iter().find(|d| same_library(&d.device)))
        .map(|d| LibrarySpec::with_capacity(d.capacity))
        .unwrap_or_default();
    if let Some(c) = config {
        if let Some(slots) = c
            .changers
            .iter()
            .find(|ch| same_library(&ch.device))
            .and_then(|ch| ch.slots)
        {
            spec.slots = slots;
        }
        spec.drives = spec
            .drives
            .max(c.drives.iter().filter(|d| same_library(&d.device)).count() as u32);
    }
    spec
}

/// Which drive a command means: `device` from the command line, else the
/// `[[drive]]` named `name`, else `env` (a variable such as `$TAPE`, given
/// as its name and value), else the first `[[drive]]`. Returns the device
/// and its `[[drive]]` entry when the config has one; the error is a usage
/// message.
pub fn resolve_drive(
    config: Option<&Config>,
    device: Option<&str>,
    name: Option<&str>,
    env: Option<(&str, &str)>,
) -> Result<(Device, Option<config::Drive>), String> {
    if let Some(d) = device {
        let dev = Device::from_arg(d)?;
        let conf = config
            .and_then(|c| c.drives.iter().find(|x| x.device == dev))
            .cloned();
        return Ok((dev, conf));
    }
    if let Some(name) = name {
        let c = config.ok_or("--drive needs a pipeline.toml")?;
        let d = c
            .drive(name)
            .ok_or_else(|| format!("no [[drive]] named {name:?} in {}", c.file.display()))?;
        return Ok((d.device.clone(), Some(d.clone())));
    }
    if let Some((var, value)) = env.filter(|(_, v)| !v.is_empty()) {
        return Ok((
            Device::from_arg(value).map_err(|e| format!("${var}: {e}"))?,
            None,
        ));
    }
    let env_hint = env.map(|(var, _)| format!(", ${var}")).unwrap_or_default();
    config
        .and_then(|c| c.drives.first())
        .map(|d| (d.device.clone(), Some(d.clone())))
        .ok_or_else(|| format!("no drive given: use -f DEVICE, --drive NAME{env_hint}, or a [[drive]] in pipeline.toml"))
}

/// Open a drive, taking its lock. A real drive whose tape is not ready
/// yet (loading, calibrating) is waited for up to `ready_timeout`.
pub fn open_drive(
    device: &Device,
    spec: &LibrarySpec,
    ready_timeout: std::time::Duration,
) -> Result<Box<dyn Drive>, TapeError> {
    match device {
        Device::Virtual { dir, drive } => Ok(Box::new(vtl::open_drive(dir, *drive, spec)?)),
        Device::Node(path) => {
            if !path.exists() {
                return Err(TapeError::NoDevice(path.display().to_string()));
            }
            let lock = lock_device(path)?;
            let options = crate::tape::linux_st::OpenOptions {
                ready_timeout,
                ..Default::default()
            };
            let drive =
                crate::tape::linux_st::LinuxSt::open(&path.display().to_string(), &options)?;
            Ok(Box::new(LockedDrive::new(drive, lock)))
        }
    }
}

/// Open a changer.
pub fn open_changer(device: &Device, spec: &LibrarySpec) -> Result<Box<dyn Changer>, ChangerError> {
    match device {
        Device::Virtual { dir, .. } => vtl::open_changer(dir, spec)
            .map(|c| Box::new(c) as Box<dyn Changer>)
            .map_err(|e| ChangerError::Refused(e.to_string())),
        Device::Node(path) => Ok(Box::new(crate::changer::mtx::Mtx::new(
            path.display().to_string(),
        ))),
    }
}

/// Where the lock file of a real device lives: `$REEL_LOCK_DIR`, else
/// `/run/lock` when writable, else the temporary directory. Named after the
/// device's canonical path, so `/dev/tape/by-id/…-nst` and `/dev/nst0` share
/// one lock.
pub fn device_lock_path(device: &Path) -> PathBuf {
    let real = std::fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let name = real
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "_");
    let dir = std::env::var_os("REEL_LOCK_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let run = Path::new("/run/lock");
            nix::unistd::access(run, nix::unistd::AccessFlags::W_OK)
                .ok()
                .map(|_| run.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("reel-{name}.lock"))
}

/// Take the lock of a real device without waiting.
pub fn lock_device(device: &Path) -> Result<Flock<File>, TapeError> {
    let path = device_lock_path(device);
    crate::fsutil::lock_file(&path, false)
        .map_err(|e| TapeError::io("taking the drive lock", e))?
        .ok_or_else(|| TapeError::Busy(format!("lock {} is held", path.display())))
}

/// A drive and the lock that keeps other programs off it.
pub struct LockedDrive<D> {
    drive: D,
    _lock: Flock<File>,
}

impl<D: Drive> LockedDrive<D> {
    pub fn new(drive: D, lock: Flock<File>) -> Self {
        LockedDrive { drive, _lock: lock }
    }
}

impl<D: Drive> Drive for LockedDrive<D> {
    fn device(&self) -> &str {
        self.drive.device()
    }
    fn status(&mut self) -> Result<crate::tape::DriveStatus, TapeError> {
        self.drive.status()
    }
    fn rewind(&mut self) -> Result<(), TapeError> {
        self.drive.rewind()
    }
    fn forward_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        self.drive.forward_filemarks(n)
    }
    fn back_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        self.drive.back_filemarks(n)
    }
    fn end_of_data(&mut self) -> Result<(), TapeError> {
        self.drive.end_of_data()
    }
    fn position(&mut self) -> Result<u64, TapeError> {
        self.drive.position()
    }
    fn seek(&mut self, block: u64) -> Result<(), TapeError> {
        self.drive.seek(block)
    }
    fn write_filemarks(&mut self, n: u32) -> Result<crate::tape::Written, TapeError> {
        self.drive.write_filemarks(n)
    }
    fn read_block(&mut self, buf: &mut [u8]) -> Result<crate::tape::Read, TapeError> {
        self.drive.read_block(buf)
    }
    fn write_block(&mut self, data: &[u8]) -> Result<crate::tape::Written, TapeError> {
        self.drive.write_block(data)
    }
    fn set_block_size(&mut self, size: u32) -> Result<(), TapeError> {
        self.drive.set_block_size(size)
    }
    fn load(&mut self) -> Result<(), TapeError> {
        self.drive.load()
    }
    fn unload(&mut self) -> Result<(), TapeError> {
        self.drive.unload()
    }
    fn erase(&mut self, long: bool) -> Result<(), TapeError> {
        self.drive.erase(long)
    }
    fn max_block_size(&mut self) -> Result<Option<u32>, TapeError> {
        self.drive.max_block_size()
    }
}

/// Open a drive the way every program that reads or writes reel tapes
/// does: variable-block mode, after waiting up to `wait` for it to be ready.
pub fn open_variable(
    config: Option<&Config>,
    device: &Device,
    wait: std::time::Duration,
) -> anyhow::Result<Box<dyn Drive>> {
    use anyhow::Context as _;
    let spec = library_spec(config, device);
    let mut drive = open_drive(device, &spec, wait).with_context(|| format!("opening {device}"))?;
    drive.set_block_size(0)?;
    Ok(drive)
}

/// The reel label of the tape in `drive`; a blank, foreign or unreadable
/// tape is an error (exit 69) naming the device.
pub fn reel_label(
    drive: &mut dyn Drive,
    device: &Device,
) -> anyhow::Result<crate::tape::label::Label> {
    use crate::exit::{Exit, ExitError};
    use crate::tape::label::{self, Identity};
    let why = match label::read_label(drive)? {
        Identity::Reel(l) => return Ok(l),
        Identity::Blank => format!("the tape in {device} is blank"),
        Identity::Foreign(what) => format!("the tape in {device} is not a reel tape: {what}"),
        Identity::Unreadable(why) => {
            format!("cannot read the label of the tape in {device}: {why}")
        }
    };
    Err(ExitError::new(Exit::Unavailable, why).into())
}

/// The changer that loads a configured drive (its `changer` key), and the
/// drive's number in it.
pub fn drive_changer(
    config: &Config,
    device: &Device,
    drive: Option<&crate::config::Drive>,
) -> Option<(Device, u32)> {
    let name = drive?.changer.as_ref()?;
    let changer = config.changers.iter().find(|ch| &ch.name == name)?;
    let index = match device {
        Device::Virtual { drive, .. } => *drive,
        Device::Node(_) => 0,
    };
    Some((changer.device.clone(), index))
}

/// Load the tape labelled `want` into `drive` through `changer` (the
/// library and the drive's number in it): the slot whose barcode is the
/// label first, else each tape in turn, its label read. False when no
/// tape in the library has that label.
pub fn load_labelled(
    config: &Config,
    drive: &Device,
    (changer_device, index): &(Device, u32),
    want: &str,
) -> anyhow::Result<bool> {
    use crate::tape::label::{self, Identity};
    let spec = library_spec(Some(config), changer_device);
    let mut changer = open_changer(changer_device, &spec)?;
    let mut status = changer.status()?;
    // In another drive of the library: back to its slot first, unless a
    // program uses that drive (then later: exit 75).
    if let Some(other) = status
        .drives
        .iter()
        .find(|d| d.index != *index && d.full && d.barcode.as_deref() == Some(want))
    {
        let device = config
            .drives
            .iter()
            .find(|d| {
                drive_changer(config, &d.device, Some(d))
                    .is_some_and(|(c, i)| &c == changer_device && i == other.index)
            })
            .map(|d| d.device.clone());
        let busy = |why: String| {
            crate::exit::ExitError::new(
                crate::exit::Exit::TempFail,
                format!(
                    "tape {want} is in drive {} of {changer_device}, {why}: try again later",
                    other.index
                ),
            )
        };
        let Some(device) = device else {
            return Err(busy("which no [[drive]] of the configuration names".into()).into());
        };
        // Free? (The unload takes the drive's lock itself.)
        match open_drive(&device, &spec, std::time::Duration::ZERO) {
            Ok(free) => drop(free),
            Err(TapeError::Busy(_)) => return Err(busy("which another program uses".into()).into()),
            Err(e) => return Err(anyhow::Error::from(e).context(format!("opening {device}"))),
        }
        let home = other
            .source_slot
            .filter(|s| status.slots.iter().any(|x| x.number == *s && !x.full))
            .or_else(|| status.free_slot())
            .ok_or_else(|| {
                anyhow::anyhow!("no empty slot in {changer_device} to put a tape back")
            })?;
        log::info!(
            "tape {want} is in drive {}: moving it back to slot {home}",
            other.index
        );
        changer.unload(other.index, home)?;
        status = changer.status()?;
    }
    let mut slots: Vec<(bool, u32)> = status
        .slots
        .iter()
        .filter(|s| s.full && !s.import_export)
        .filter(|s| {
            !s.barcode
                .as_deref()
                .is_some_and(crate::changer::is_cleaning)
        })
        .map(|s| (s.barcode.as_deref() != Some(want), s.number))
        .collect();
    slots.sort();
    for (_, slot) in slots {
        let status = changer.status()?;
        if let Some(d) = status.drives.iter().find(|d| d.index == *index && d.full) {
            let home = d
                .source_slot
                .filter(|s| status.slots.iter().any(|x| x.number == *s && !x.full))
                .or_else(|| status.free_slot())
                .ok_or_else(|| {
                    anyhow::anyhow!("no empty slot in {changer_device} to put a tape back")
                })?;
            changer.unload(*index, home)?;
        }
        changer.load(slot, *index)?;
        let mut d = open_variable(Some(config), drive, std::time::Duration::from_secs(600))?;
        if let Identity::Reel(l) = label::read_label(d.as_mut())?
            && l.label == want
        {
            log::info!("loaded tape {want} from slot {slot}");
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_names_of_one_device_share_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("nst0");
        std::fs::write(&node, b"").unwrap();
        let alias = dir.path().join("by-id-nst");
        std::os::unix::fs::symlink(&node, &alias).unwrap();
        assert_eq!(device_lock_path(&node), device_lock_path(&alias));
        let path = device_lock_path(&node);
        let held = crate::fsutil::lock_file(&path, false).unwrap();
        assert!(held.is_some());
        assert!(matches!(lock_device(&alias), Err(TapeError::Busy(_))));
        drop(held);
        std::fs::remove_file(path).unwrap();
    }
}
