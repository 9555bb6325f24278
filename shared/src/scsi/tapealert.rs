//! TapeAlert: the 64 flags a tape drive raises about itself and its tape
//! (SSC), numbered 1 to 64, as the TapeAlert response log page (0x12: one
//! 64-bit parameter, flag 1 its most significant bit, read without
//! clearing) or the TapeAlert page (0x2E: one parameter per flag, cleared
//! by the drive once read) give them.

use std::fmt;

/// The flags reel acts on.
pub const MEDIA_LIFE: u8 = 7;
pub const NEARING_MEDIA_LIFE: u8 = 19;
pub const CLEANING_REQUIRED: u8 = 20;
pub const CLEANING_REQUESTED: u8 = 21;

/// The flags' names, 1 to 64 (SSC-4 annex; "reserved" and "obsolete"
/// codes by number).
const NAMES: [&str; 64] = [
    "read warning",
    "write warning",
    "hard error",
    "media",
    "read failure",
    "write failure",
    "media life",
    "not data grade",
    "write protect",
    "no removal",
    "cleaning media",
    "unsupported format",
    "recoverable mechanical cartridge failure",
    "unrecoverable mechanical cartridge failure",
    "memory chip in cartridge failure",
    "forced eject",
    "read only format",
    "tape directory corrupted on load",
    "nearing media life",
    "cleaning required",
    "cleaning requested",
    "expired cleaning media",
    "invalid cleaning tape",
    "retension requested",
    "dual port interface error",
    "cooling fan failing",
    "power supply failure",
    "power consumption",
    "drive maintenance",
    "hardware A",
    "hardware B",
    "interface",
    "eject media",
    "microcode update fail",
    "drive humidity",
    "drive temperature",
    "drive voltage",
    "predictive failure",
    "diagnostics required",
    "obsolete (40)",
    "obsolete (41)",
    "obsolete (42)",
    "obsolete (43)",
    "obsolete (44)",
    "obsolete (45)",
    "obsolete (46)",
    "reserved (47)",
    "reserved (48)",
    "reserved (49)",
    "lost statistics",
    "tape directory invalid at unload",
    "tape system area write failure",
    "tape system area read failure",
    "no start of data",
    "loading failure",
    "unrecoverable unload failure",
    "automation interface failure",
    "firmware failure",
    "WORM medium integrity check failed",
    "WORM medium overwrite attempted",
    "reserved (61)",
    "reserved (62)",
    "reserved (63)",
    "reserved (64)",
];

/// A set of TapeAlert flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapeAlerts(pub u64);

/// The flags a drive reports, read through `log_sense` (a page and a
/// buffer in, the bytes answered out): the TapeAlert response page (0x12),
/// which leaves them up; on drives without it the TapeAlert page (0x2E),
/// which a drive clears once read. `None` when the drive gives neither.
pub fn read(
    device: &str,
    mut log_sense: impl FnMut(u8, &mut [u8]) -> Result<usize, super::sg_io::SgError>,
) -> Option<TapeAlerts> {
    let mut buf = [0u8; 512];
    for page in [0x12, 0x2e] {
        match log_sense(page, &mut buf) {
            Ok(n) => {
                if let Some(alerts) = TapeAlerts::from_log_page(&buf[..n]) {
                    return Some(alerts);
                }
            }
            Err(e) => log::debug!("{device}: LOG SENSE page {page:#04x}: {e}"),
        }
    }
    None
}

impl TapeAlerts {
    fn bit(n: u8) -> u64 {
        1u64 << (64 - u32::from(n.clamp(1, 64)))
    }

    /// The set of the flags numbered in `flags`.
    pub fn of(flags: &[u8]) -> TapeAlerts {
        TapeAlerts(
            flags
                .iter()
                .filter(|f| (1..=64).contains(*f))
                .map(|&f| Self::bit(f))
                .sum(),
        )
    }

    pub fn has(&self, n: u8) -> bool {
        (1..=64).contains(&n) && self.0 & Self::bit(n) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The flags up, by number.
    pub fn flags(&self) -> Vec<u8> {
        (1..=64).filter(|&n| self.has(n)).collect()
    }

    /// A flag's name.
    pub fn name(n: u8) -> &'static str {
        NAMES[usize::from(n.clamp(1, 64)) - 1]
    }

    /// The drive needs cleaning (required or requested).
    pub fn needs_cleaning(&self) -> bool {
        self.has(CLEANING_REQUIRED) || self.has(CLEANING_REQUESTED)
    }

    /// From a LOG SENSE answer of page 0x12 (TapeAlert response) or 0x2E
    /// (TapeAlert); `None` when it is neither or is cut short.
    pub fn from_log_page(page: &[u8]) -> Option<TapeAlerts> {
        let (code, params) = super::log_parameters(page)?;
        match code {
            // Parameter 0: eight bytes of flags.
            0x12 => params
                .iter()
                .find(|(code, value)| *code == 0 && value.len() >= 8)
                .map(|(_, v)| TapeAlerts(u64::from_be_bytes(v[..8].try_into().expect("8 bytes")))),
            // One parameter per flag, its low bit the flag.
            0x2e => Some(TapeAlerts(
                params
                    .iter()
                    .filter(|(flag, v)| {
                        (1..=64).contains(flag) && v.first().is_some_and(|b| b & 1 != 0)
                    })
                    .fold(0u64, |set, (flag, _)| set | Self::bit(*flag as u8)),
            )),
            _ => None,
        }
    }
}

impl fmt::Display for TapeAlerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "none");
        }
        let parts: Vec<String> = self
            .flags()
            .into_iter()
            .map(|n| format!("{n} {}", Self::name(n)))
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_by_number_and_name() {
        let a = TapeAlerts::of(&[20, 4, 64, 0, 65]);
        assert_eq!(a.flags(), [4, 20, 64]);
        assert!(a.needs_cleaning());
        assert_eq!(
            a.to_string(),
            "4 media, 20 cleaning required, 64 reserved (64)"
        );
        assert_eq!(TapeAlerts::default().to_string(), "none");
        assert_eq!(TapeAlerts::of(&[1]).0, 1 << 63);
    }

    #[test]
    fn both_log_pages_decode_and_a_cut_page_does_not() {
        // Page 0x12: parameter 0, eight bytes, flags 3 and 20.
        let flags = TapeAlerts::of(&[3, 20]).0.to_be_bytes();
        let mut p12 = vec![0x12, 0, 0, 12, 0, 0, 0x03, 8];
        p12.extend(flags);
        assert_eq!(
            TapeAlerts::from_log_page(&p12),
            Some(TapeAlerts::of(&[3, 20]))
        );
        // Page 0x2E: one parameter per flag.
        let mut p2e = vec![0x2e, 0, 1, 0x40];
        for n in 1..=64u8 {
            p2e.extend([0, n, 0x03, 1, u8::from(n == 3 || n == 20)]);
        }
        assert_eq!(
            TapeAlerts::from_log_page(&p2e),
            Some(TapeAlerts::of(&[3, 20]))
        );
        assert_eq!(TapeAlerts::from_log_page(&p2e[..100]), None);
        assert_eq!(TapeAlerts::from_log_page(&[0x17, 0, 0, 0]), None);
        assert_eq!(TapeAlerts::from_log_page(&[]), None);
    }
}
