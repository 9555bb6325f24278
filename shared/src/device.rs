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
        if let Some(ch) = c.changers.iter().find(|ch| same_library(&ch.device)) {
            spec.slots = ch.slots.unwrap_or(spec.slots);
            spec.mail_slots = ch.mail_slots.unwrap_or(spec.mail_slots);
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
        Device::Sg(path) => {
            if !path.exists() {
                return Err(TapeError::NoDevice(path.display().to_string()));
            }
            let lock = lock_device(path)?;
            let options = crate::tape::linux_st::OpenOptions {
                ready_timeout,
                ..Default::default()
            };
            let drive = crate::tape::sg::SgTape::open(path, &options)?;
            Ok(Box::new(LockedDrive::new(drive, lock)))
        }
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
        Device::Sg(path) => Ok(Box::new(crate::changer::sg::SgChanger::open(path)?)),
    }
}

/// Where the lock file of a real device lives: `$REEL_LOCK_DIR`, else
/// `/run/lock` when writable, else the temporary directory. Named after the
/// SCSI device behind the node (`reel-scsi-2:0:0:0.lock`), so that every
/// node of one drive (`/dev/nst0`, `/dev/st0`, its `/dev/sg3`, a
/// `/dev/tape/by-id/…` link) shares one lock; for a node sysfs does not
/// know, after its canonical path.
pub fn device_lock_path(device: &Path) -> PathBuf {
    let name = match scsi_address(device) {
        Some(address) => format!("scsi-{address}"),
        None => std::fs::canonicalize(device)
            .unwrap_or_else(|_| device.to_path_buf())
            .to_string_lossy()
            .trim_start_matches('/')
            .replace('/', "_"),
    };
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

/// The SCSI address (`host:channel:target:lun`) of the device behind the
/// character device `node`, from sysfs.
fn scsi_address(node: &Path) -> Option<String> {
    use nix::sys::stat::{SFlag, major, minor, stat};
    let st = stat(node).ok()?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR {
        return None;
    }
    let link = format!(
        "/sys/dev/char/{}:{}/device",
        major(st.st_rdev),
        minor(st.st_rdev)
    );
    let real = std::fs::canonicalize(link).ok()?;
    let name = real.file_name()?.to_str()?;
    // host:channel:target:lun, four numbers.
    (name.split(':').count() == 4 && name.split(':').all(|n| n.parse::<u64>().is_ok()))
        .then(|| name.to_string())
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
    fn write_filemarks_immediate(&mut self, n: u32) -> Result<crate::tape::Written, TapeError> {
        self.drive.write_filemarks_immediate(n)
    }
    fn flush(&mut self) -> Result<crate::tape::Written, TapeError> {
        self.drive.flush()
    }
    fn read_block(&mut self, buf: &mut [u8]) -> Result<crate::tape::Read, TapeError> {
        self.drive.read_block(buf)
    }
    fn write_block(&mut self, data: &[u8]) -> Result<crate::tape::Written, TapeError> {
        self.drive.write_block(data)
    }
    fn write_blocks(
        &mut self,
        blocks: &[&[u8]],
    ) -> Result<(usize, crate::tape::Written), TapeError> {
        self.drive.write_blocks(blocks)
    }
    fn blocks_per_write(&self) -> usize {
        self.drive.blocks_per_write()
    }
    fn moves_tape(&self) -> bool {
        self.drive.moves_tape()
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
    fn tape_alerts(&mut self) -> Result<Option<crate::scsi::tapealert::TapeAlerts>, TapeError> {
        self.drive.tape_alerts()
    }
    fn cartridge_memory(&mut self) -> Result<Option<crate::scsi::mam::CartridgeMemory>, TapeError> {
        self.drive.cartridge_memory()
    }
    fn set_encryption(
        &mut self,
        key: Option<&crate::scsi::encryption::DriveKey>,
    ) -> Result<(), TapeError> {
        self.drive.set_encryption(key)
    }
    fn encryption(&mut self) -> Result<Option<crate::scsi::encryption::Status>, TapeError> {
        self.drive.encryption()
    }
    fn volume_statistics(
        &mut self,
    ) -> Result<Option<crate::scsi::volume::VolumeStatistics>, TapeError> {
        self.drive.volume_statistics()
    }
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
    let index = match (drive?.element, &changer.device, device) {
        (Some(element), _, _) => element,
        // A changer reel reads itself reports its drives' serials: the
        // drive is the element whose serial is its own.
        (None, Device::Sg(ch), Device::Node(node) | Device::Sg(node)) => {
            match element_by_serial(ch, node) {
                Ok(element) => element,
                Err(why) => {
                    log::warn!(
                        "{device}: its element in {} was not found by serial ({why}); taking {}: set `element` in its [[drive]]",
                        changer.device,
                        default_element(device)
                    );
                    default_element(device)
                }
            }
        }
        (None, _, _) => default_element(device),
    };
    Some((changer.device.clone(), index))
}

/// The data transfer element of the changer at `changer` (over SG_IO)
/// whose drive identifier is the unit serial number of the drive at
/// `node`. Found once per process and pair.
pub fn element_by_serial(changer: &Path, node: &Path) -> Result<u32, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static FOUND: OnceLock<Mutex<HashMap<(PathBuf, PathBuf), u32>>> = OnceLock::new();
    let key = (changer.to_path_buf(), node.to_path_buf());
    let found = FOUND.get_or_init(Default::default);
    if let Some(e) = found.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(*e);
    }
    let serial = unit_serial(node)?;
    let status = crate::changer::sg::SgChanger::open(changer)
        .and_then(|mut c| crate::changer::Changer::status(&mut c))
        .map_err(|e| e.to_string())?;
    let element = status
        .drives
        .iter()
        .find(|d| d.serial.as_deref() == Some(serial.as_str()))
        .map(|d| d.index)
        .ok_or_else(|| {
            let known: Vec<String> = status
                .drives
                .iter()
                .map(|d| format!("{}: {}", d.index, d.serial.as_deref().unwrap_or("none")))
                .collect();
            format!(
                "serial {serial} is not among the changer's drive identifiers ({})",
                known.join(", ")
            )
        })?;
    found
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, element);
    Ok(element)
}

/// The unit serial number (INQUIRY VPD page 0x80) of the SCSI device behind
/// the character device `node`, as the kernel keeps it in sysfs
/// (`vpd_pg80`), so the device need not be opened.
pub fn unit_serial(node: &Path) -> Result<String, String> {
    let rdev = nix::sys::stat::stat(node)
        .map_err(|e| format!("{}: {e}", node.display()))?
        .st_rdev;
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let page = format!("/sys/dev/char/{major}:{minor}/device/vpd_pg80");
    let bytes = std::fs::read(&page).map_err(|e| format!("{page}: {e}"))?;
    let len = bytes
        .get(2..4)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| format!("{page}: too short"))?;
    let serial = bytes
        .get(4..4 + len)
        .map(|s| String::from_utf8_lossy(s).trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{page}: no serial"))?;
    Ok(serial)
}

/// The changer element a `[[drive]]` is: its `element` key, else
/// [`default_element`] of its device.
pub fn drive_element(drive: &crate::config::Drive) -> u32 {
    drive
        .element
        .unwrap_or_else(|| default_element(&drive.device))
}

/// The element of a drive whose `[[drive]]` names none: drive N of a
/// virtual library is its element N; a device node is taken as element 0.
pub fn default_element(device: &Device) -> u32 {
    match device {
        Device::Virtual { drive, .. } => *drive,
        Device::Node(_) | Device::Sg(_) => 0,
    }
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
