//! What every device reel-tcmu serves says of itself the same way: its
//! INQUIRY data (the standard data, and the vital product data pages 0x00,
//! 0x80 — the unit serial number — and 0x83, device identification), and
//! how an answer is cut to the initiator's allocation length.

use super::sense::{Reply, Sense};
use super::ssc::DataBuf;

/// Who a device says it is.
pub struct Names<'a> {
    /// The peripheral device type: 0x01 a tape drive, 0x08 a changer.
    pub peripheral: u8,
    /// The SPC version it claims (byte 2 of the standard data).
    pub version: u8,
    pub vendor: &'a str,
    pub product: &'a str,
    pub revision: &'a str,
    pub serial: &'a str,
}

/// `s` as an ASCII field of `n` bytes: cut, or padded with spaces.
pub(super) fn padded(s: &str, n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = s.bytes().take(n).collect();
    v.resize(n, b' ');
    v
}

/// Answer with `bytes`, at most `alloc` of them (what the initiator made
/// room for).
pub(super) fn answer(data: &mut dyn DataBuf, bytes: &[u8], alloc: usize) -> Reply {
    let n = data.scatter(&bytes[..bytes.len().min(alloc)]);
    Reply::good().with_data(n)
}

/// The answer to the INQUIRY `cdb` of the device `who`.
pub(super) fn inquiry(cdb: &[u8], who: &Names, data: &mut dyn DataBuf) -> Reply {
    let alloc = usize::from(u16::from_be_bytes([cdb[3], cdb[4]]));
    let evpd = cdb[1] & 0x01 != 0;
    let mut v = Vec::with_capacity(96);
    if !evpd {
        if cdb[2] != 0 {
            return Reply::check(Sense::invalid_field());
        }
        // Removable medium, response format 2.
        v.extend_from_slice(&[who.peripheral, 0x80, who.version, 0x02, 0, 0, 0, 0]);
        v.extend(padded(who.vendor, 8));
        v.extend(padded(who.product, 16));
        v.extend(padded(who.revision, 4));
        v[4] = (v.len() - 5) as u8;
        return answer(data, &v, alloc);
    }
    let page: Vec<u8> = match cdb[2] {
        0x00 => vec![0x00, 0x80, 0x83],
        0x80 => who.serial.bytes().collect(),
        0x83 => {
            // One T10 vendor ID designator (ASCII): vendor, product, serial.
            let mut id = padded(who.vendor, 8);
            id.extend(padded(who.product, 16));
            id.extend(who.serial.bytes());
            let mut d = vec![0x02, 0x01, 0x00, id.len() as u8];
            d.extend(id);
            d
        }
        _ => return Reply::check(Sense::invalid_field()),
    };
    v.extend_from_slice(&[who.peripheral, cdb[2]]);
    v.extend_from_slice(&(page.len() as u16).to_be_bytes());
    v.extend(page);
    answer(data, &v, alloc)
}
