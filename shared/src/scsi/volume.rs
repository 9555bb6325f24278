//! The volume statistics log page (0x17, SSC-4 §8.2.3), which a drive
//! keeps for the tape loaded in it, much of it in the cartridge memory:
//! loads and errors over the tape's life and in its last load. reel keeps
//! what it reads with the tape in the catalog at each load, and a tape
//! whose unrecovered errors rose is marked suspect
//! ([`VolumeStatistics::worse_than`]).

use serde::{Deserialize, Serialize};

/// What reel reads of page 0x17; a counter the drive does not give stays
/// `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeStatistics {
    pub mounts: Option<u64>,
    pub recovered_write_errors: Option<u64>,
    pub unrecovered_write_errors: Option<u64>,
    pub recovered_read_errors: Option<u64>,
    pub unrecovered_read_errors: Option<u64>,
    pub last_mount_unrecovered_write_errors: Option<u64>,
    pub last_mount_unrecovered_read_errors: Option<u64>,
    pub mib_written: Option<u64>,
    pub mib_read: Option<u64>,
}

fn number(v: &[u8]) -> Option<u64> {
    (!v.is_empty() && v.len() <= 8).then(|| v.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)))
}

impl VolumeStatistics {
    /// From a LOG SENSE answer of page 0x17; `None` for another page or
    /// one cut short.
    pub fn from_log_page(page: &[u8]) -> Option<VolumeStatistics> {
        let (code, params) = super::log_parameters(page)?;
        if code != 0x17 {
            return None;
        }
        let mut v = VolumeStatistics::default();
        for (code, value) in params {
            let slot = match code {
                0x0001 => &mut v.mounts,
                0x0003 => &mut v.recovered_write_errors,
                0x0004 => &mut v.unrecovered_write_errors,
                0x0008 => &mut v.recovered_read_errors,
                0x0009 => &mut v.unrecovered_read_errors,
                0x000c => &mut v.last_mount_unrecovered_write_errors,
                0x000d => &mut v.last_mount_unrecovered_read_errors,
                0x0010 => &mut v.mib_written,
                0x0011 => &mut v.mib_read,
                _ => continue,
            };
            *slot = number(value);
        }
        Some(v)
    }

    /// Unrecovered read and write errors over the tape's life.
    pub fn unrecovered(&self) -> u64 {
        self.unrecovered_read_errors.unwrap_or(0) + self.unrecovered_write_errors.unwrap_or(0)
    }

    /// Why this reading is worse than `before` (the tape's last one): its
    /// unrecovered errors rose, or its last load had some. `None` when not.
    pub fn worse_than(&self, before: Option<&VolumeStatistics>) -> Option<String> {
        let was = before.map_or(0, VolumeStatistics::unrecovered);
        let now = self.unrecovered();
        if now > was {
            return Some(format!(
                "its unrecovered errors rose from {was} to {now} (read {}, write {})",
                self.unrecovered_read_errors.unwrap_or(0),
                self.unrecovered_write_errors.unwrap_or(0)
            ));
        }
        let last = self.last_mount_unrecovered_read_errors.unwrap_or(0)
            + self.last_mount_unrecovered_write_errors.unwrap_or(0);
        (last > 0 && before.is_some_and(|b| b.mounts != self.mounts))
            .then(|| format!("its last load had {last} unrecovered error(s)"))
    }

    /// `R/W`: unrecovered read and write errors, for tables.
    pub fn errors(&self) -> String {
        format!(
            "{}/{}",
            self.unrecovered_read_errors.unwrap_or(0),
            self.unrecovered_write_errors.unwrap_or(0)
        )
    }
}

/// The statistics a drive gives, read through `log_sense` (a page and a
/// buffer in, the bytes answered out); `None` when it gives none.
pub fn read(
    device: &str,
    log_sense: impl FnOnce(u8, &mut [u8]) -> Result<usize, super::sg_io::SgError>,
) -> Option<VolumeStatistics> {
    let mut buf = [0u8; 1024];
    match log_sense(0x17, &mut buf) {
        Ok(n) => VolumeStatistics::from_log_page(&buf[..n]),
        Err(e) => {
            log::debug!("{device}: LOG SENSE page 0x17: {e}");
            None
        }
    }
}

impl std::fmt::Display for VolumeStatistics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        write!(
            f,
            "{} mounts; unrecovered errors read {}, write {} ({} and {} in the last load); recovered read {}, write {}",
            n(self.mounts),
            n(self.unrecovered_read_errors),
            n(self.unrecovered_write_errors),
            n(self.last_mount_unrecovered_read_errors),
            n(self.last_mount_unrecovered_write_errors),
            n(self.recovered_read_errors),
            n(self.recovered_write_errors)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page 0x17 answer of the shape IBM and HP LTO drives give: a
    /// header, then counters of 4 or 8 bytes and ASCII fields.
    fn page(params: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (code, value) in params {
            body.extend_from_slice(&code.to_be_bytes());
            body.push(0x03);
            body.push(value.len() as u8);
            body.extend_from_slice(value);
        }
        let mut p = vec![0x17, 0x00];
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend(body);
        p
    }

    #[test]
    fn counters_of_a_drive_answer_are_read() {
        let p = page(&[
            (0x0000, &[1]),
            (0x0001, &[0, 0, 0, 42]),
            (0x0003, &[0, 0, 0, 7]),
            (0x0004, &[0, 0, 0, 0]),
            (0x0008, &[0, 0, 1, 2]),
            (0x0009, &[0, 0, 0, 1]),
            (0x000d, &[0, 0, 0, 1]),
            (0x0010, &[0, 0, 0, 0, 0, 0x12, 0x34, 0x56]),
            (0x0040, b"REELCM-V00001L9                 "),
        ]);
        let v = VolumeStatistics::from_log_page(&p).unwrap();
        assert_eq!(v.mounts, Some(42));
        assert_eq!(v.recovered_write_errors, Some(7));
        assert_eq!(v.recovered_read_errors, Some(258));
        assert_eq!(v.unrecovered_read_errors, Some(1));
        assert_eq!(v.last_mount_unrecovered_read_errors, Some(1));
        assert_eq!(v.mib_written, Some(0x123456));
        assert_eq!(v.mib_read, None);
        assert_eq!(v.errors(), "1/0");
        // Another page, or one cut short, is not read as this one.
        let mut other = p.clone();
        other[0] = 0x12;
        assert_eq!(VolumeStatistics::from_log_page(&other), None);
        assert_eq!(VolumeStatistics::from_log_page(&p[..p.len() - 3]), None);
    }

    #[test]
    fn rising_unrecovered_errors_make_a_reading_worse() {
        let clean = VolumeStatistics {
            mounts: Some(3),
            unrecovered_read_errors: Some(0),
            ..Default::default()
        };
        assert_eq!(clean.worse_than(None), None);
        let failed = VolumeStatistics {
            mounts: Some(4),
            unrecovered_read_errors: Some(2),
            ..Default::default()
        };
        let why = failed.worse_than(Some(&clean)).unwrap();
        assert!(why.contains("rose from 0 to 2"), "{why}");
        // The same reading again: nothing new.
        assert_eq!(failed.worse_than(Some(&failed)), None);
        // Recovered errors alone are the drive doing its job.
        let recovered = VolumeStatistics {
            recovered_read_errors: Some(500),
            ..clean.clone()
        };
        assert_eq!(recovered.worse_than(Some(&clean)), None);
    }
}
