//! The cartridge memory (MAM) as READ ATTRIBUTE gives it (SPC-4 attribute
//! values): the attributes reel shows and keeps — the medium's serial,
//! manufacturer and manufacture date, load count, and the mebibytes
//! written and read over its life and in the current load, remaining and
//! maximum capacity, and the barcode a host wrote.

use super::ascii_field;
use serde::{Deserialize, Serialize};

/// What reel reads of a cartridge's memory; an attribute the cartridge
/// does not give stays `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartridgeMemory {
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    /// `YYYYMMDD`.
    pub manufactured: Option<String>,
    pub loads: Option<u64>,
    pub mib_written: Option<u64>,
    pub mib_read: Option<u64>,
    pub mib_written_this_load: Option<u64>,
    pub mib_read_this_load: Option<u64>,
    pub mib_remaining: Option<u64>,
    pub mib_capacity: Option<u64>,
    pub barcode: Option<String>,
}

fn number(v: &[u8]) -> Option<u64> {
    (!v.is_empty() && v.len() <= 8).then(|| v.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)))
}

impl CartridgeMemory {
    /// From a READ ATTRIBUTE (service action 0, attribute values) answer:
    /// a 4-byte length, then attributes (identifier, format, length,
    /// value). A cut or damaged list gives what came before the damage.
    pub fn from_attributes(data: &[u8]) -> CartridgeMemory {
        let mut m = CartridgeMemory::default();
        let Some(len) = data.get(0..4) else {
            return m;
        };
        let end =
            (4 + u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize).min(data.len());
        let mut at = 4;
        while at + 5 <= end {
            let id = u16::from_be_bytes([data[at], data[at + 1]]);
            let n = usize::from(u16::from_be_bytes([data[at + 3], data[at + 4]]));
            let Some(v) = data.get(at + 5..at + 5 + n).filter(|_| at + 5 + n <= end) else {
                break;
            };
            match id {
                0x0000 => m.mib_remaining = number(v),
                0x0001 => m.mib_capacity = number(v),
                0x0003 => m.loads = number(v),
                0x0220 => m.mib_written = number(v),
                0x0221 => m.mib_read = number(v),
                0x0222 => m.mib_written_this_load = number(v),
                0x0223 => m.mib_read_this_load = number(v),
                0x0400 => m.manufacturer = ascii_field(v),
                0x0401 => m.serial = ascii_field(v),
                0x0406 => m.manufactured = ascii_field(v),
                0x0806 => m.barcode = ascii_field(v),
                _ => {}
            }
            at += 5 + n;
        }
        m
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        let opt = |v: &Option<u64>| v.map_or("?".to_string(), |n| n.to_string());
        let mut parts = vec![format!("serial {}", self.serial.as_deref().unwrap_or("?"))];
        if let Some(d) = &self.manufactured {
            parts.push(format!("made {d}"));
        }
        parts.push(format!("{} loads", opt(&self.loads)));
        parts.push(format!(
            "{} MiB written, {} MiB read in its life",
            opt(&self.mib_written),
            opt(&self.mib_read)
        ));
        if let (Some(r), Some(c)) = (self.mib_remaining, self.mib_capacity) {
            parts.push(format!("{r} of {c} MiB left"));
        }
        parts.join(", ")
    }
}

/// The READ ATTRIBUTE CDB for every attribute value of partition 0.
pub fn read_attribute_cdb(alloc: u32) -> [u8; 16] {
    let a = alloc.to_be_bytes();
    [
        0x8c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, a[0], a[1], a[2], a[3], 0, 0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(id: u16, format: u8, value: &[u8]) -> Vec<u8> {
        let mut v = id.to_be_bytes().to_vec();
        v.push(0x80 | format);
        v.extend((value.len() as u16).to_be_bytes());
        v.extend(value);
        v
    }

    #[test]
    fn attributes_decode_and_damage_stops_the_walk() {
        let mut body = Vec::new();
        body.extend(attr(0x0003, 0, &7u64.to_be_bytes()));
        body.extend(attr(0x0220, 0, &1234u64.to_be_bytes()));
        body.extend(attr(0x0401, 1, b"REELCM-V00001L9                 "));
        body.extend(attr(0x0406, 1, b"20261204"));
        body.extend(attr(0x0999, 0, &[1, 2, 3]));
        let mut data = (body.len() as u32).to_be_bytes().to_vec();
        data.extend(&body);
        let m = CartridgeMemory::from_attributes(&data);
        assert_eq!(m.loads, Some(7));
        assert_eq!(m.mib_written, Some(1234));
        assert_eq!(m.serial.as_deref(), Some("REELCM-V00001L9"));
        assert_eq!(m.manufactured.as_deref(), Some("20261204"));
        assert_eq!(m.mib_read, None);
        assert!(m.summary().starts_with(
            "serial REELCM-V00001L9, made 20261204, 7 loads, 1234 MiB written, ? MiB read"
        ));
        // Cut in the middle of the third attribute: the first two stay.
        let cut = &data[..4 + 13 + 13 + 10];
        let m = CartridgeMemory::from_attributes(cut);
        assert_eq!(
            (m.loads, m.mib_written, m.serial),
            (Some(7), Some(1234), None)
        );
        assert_eq!(
            CartridgeMemory::from_attributes(&[0, 0]),
            CartridgeMemory::default()
        );
    }
}
