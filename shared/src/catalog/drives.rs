//! One drive's health as last read, `<catalog>/drives/<NAME>.json`: the
//! TapeAlert flags it reported when reel-write last ended a run on it, and
//! when. The supervisor reads these to run `notify_command` (event
//! `drive-alert`) when a drive raises a flag; `reel tapes` and people read
//! them too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CatalogError;
use crate::fsutil::write_atomic;
use crate::scsi::tapealert::TapeAlerts;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveHealth {
    /// The `[[drive]]` name, else the device.
    pub drive: String,
    pub device: String,
    /// TapeAlert flags up, by number (1 to 64).
    pub alerts: Vec<u8>,
    /// Their names, for people.
    pub names: Vec<String>,
    /// When they were read (RFC 3339, to the nanosecond).
    pub seen: String,
}

impl DriveHealth {
    pub fn new(drive: &str, device: &str, alerts: TapeAlerts) -> DriveHealth {
        let flags = alerts.flags();
        DriveHealth {
            drive: drive.to_string(),
            device: device.to_string(),
            names: flags
                .iter()
                .map(|&n| TapeAlerts::name(n).to_string())
                .collect(),
            alerts: flags,
            seen: jiff::Timestamp::now().to_string(),
        }
    }

    pub fn alerts(&self) -> TapeAlerts {
        TapeAlerts::of(&self.alerts)
    }

    pub fn save(&self, catalog: &Path) -> Result<(), CatalogError> {
        let path = path(catalog, &self.drive);
        let dir = path.parent().expect("has a parent");
        std::fs::create_dir_all(dir).map_err(|e| CatalogError::io(dir, e))?;
        write_atomic(&path, &serde_json::to_vec_pretty(self).expect("serializes"))
            .map_err(|e| CatalogError::io(&path, e))
    }
}

/// A drive name as a file name: `/` and leading dots cannot steer it out
/// of the directory.
fn path(catalog: &Path, drive: &str) -> PathBuf {
    let name: String = drive
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    let name = name.trim_start_matches('.');
    catalog.join("drives").join(format!("{name}.json"))
}

/// Every drive's last health record, sorted by drive.
pub fn all(catalog: &Path) -> Result<Vec<DriveHealth>, CatalogError> {
    let dir = catalog.join("drives");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CatalogError::io(&dir, e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bytes = std::fs::read(&p).map_err(|e| CatalogError::io(&p, e))?;
        let h: DriveHealth = serde_json::from_slice(&bytes)
            .map_err(|e| CatalogError::Invalid(format!("{}: {e}", p.display())))?;
        out.push(h);
    }
    out.sort_by(|a, b| a.drive.cmp(&b.drive));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_round_trips_and_names_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let h = DriveHealth::new("../d1", "/dev/nst1", TapeAlerts::of(&[20]));
        h.save(dir.path()).unwrap();
        assert!(dir.path().join("drives/_d1.json").exists());
        let back = all(dir.path()).unwrap();
        assert_eq!(back, [h]);
        assert_eq!(back[0].names, ["cleaning required"]);
        assert!(back[0].alerts().needs_cleaning());
        assert!(all(&dir.path().join("none")).unwrap().is_empty());
    }
}
