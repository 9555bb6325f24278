//! READ ELEMENT STATUS (SMC-3 §6.10): the elements from a starting address
//! up, in address order, grouped in one page per run of elements of one
//! type, each descriptor with the FULL bit, the source slot of a loaded
//! drive, the primary volume tag (the barcode) when VOLTAG is asked, and
//! for drives, when DVCID is asked, the device identifier: the drive's unit
//! serial number as its INQUIRY VPD 0x80 reports it, so that software can
//! tell which `/dev/nstN` is which element.

use super::{FIRST_DRIVE, FIRST_SLOT, Smc, TRANSPORT, answer, be16, invalid_element};
use crate::tcmu::sense::{Reply, Sense};
use crate::tcmu::ssc::DataBuf;
use crate::vtl::Inventory;

/// SMC element type codes.
const MT: u8 = 1;
const ST: u8 = 2;
const IE: u8 = 3;
const DT: u8 = 4;

/// One element as reported.
struct Status {
    kind: u8,
    address: u16,
    barcode: Option<String>,
    source: Option<u16>,
    serial: Option<String>,
}

fn statuses(smc: &Smc, inv: &Inventory) -> Vec<Status> {
    let mut all = vec![Status {
        kind: MT,
        address: TRANSPORT,
        barcode: None,
        source: None,
        serial: None,
    }];
    for (n, d) in inv.drives.iter().enumerate() {
        all.push(Status {
            kind: DT,
            address: FIRST_DRIVE + n as u16,
            barcode: d.tape.clone(),
            source: d
                .source_slot
                .filter(|_| d.tape.is_some())
                .map(|s| FIRST_SLOT + s as u16 - 1),
            serial: Some(smc.drive_serial(n as u32)),
        });
    }
    for (i, s) in inv.slots.iter().enumerate() {
        all.push(Status {
            kind: if s.import_export { IE } else { ST },
            address: FIRST_SLOT + i as u16,
            barcode: s.tape.clone(),
            source: None,
            serial: None,
        });
    }
    all
}

/// The identifier field of a drive descriptor: its serial, padded with
/// spaces to `len` bytes.
fn identifier(serial: &str, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = serial.bytes().take(len).collect();
    v.resize(len, b' ');
    v
}

pub(super) fn read_element_status(
    smc: &Smc,
    inv: &Inventory,
    cdb: &[u8],
    data: &mut dyn DataBuf,
) -> Reply {
    let voltag = cdb[1] & 0x10 != 0;
    let kind = cdb[1] & 0x0f;
    let start = be16(&cdb[2..4]) as u16;
    let count = be16(&cdb[4..6]);
    let dvcid = cdb[6] & 0x01 != 0;
    let alloc = u32::from_be_bytes([0, cdb[7], cdb[8], cdb[9]]) as usize;
    if kind > DT {
        return Reply::check(Sense::invalid_field());
    }
    if Smc::element(inv, start).is_none() && start != 0 {
        return Reply::check(invalid_element());
    }
    let chosen: Vec<Status> = statuses(smc, inv)
        .into_iter()
        .filter(|s| (kind == 0 || s.kind == kind) && s.address >= start)
        .take(count)
        .collect();
    // The identifier length is the same for every drive: the longest
    // serial, rounded up to a multiple of 4.
    let id_len = inv
        .drives
        .iter()
        .enumerate()
        .map(|(n, _)| smc.drive_serial(n as u32).len())
        .max()
        .unwrap_or(0)
        .div_ceil(4)
        * 4;

    let mut pages = Vec::new();
    for run in chosen.chunk_by(|a, b| a.kind == b.kind) {
        let ids = dvcid && run[0].kind == DT;
        let len = 12 + if voltag { 36 } else { 0 } + if ids { 4 + id_len } else { 0 };
        let mut p = vec![run[0].kind, if voltag { 0x80 } else { 0 }];
        p.extend((len as u16).to_be_bytes());
        p.push(0);
        p.extend(&((len * run.len()) as u32).to_be_bytes()[1..]);
        for s in run {
            let mut d = vec![0u8; 12];
            d[0..2].copy_from_slice(&s.address.to_be_bytes());
            let full = s.barcode.is_some();
            d[2] = u8::from(full)
                | match s.kind {
                    // ACCESS; mail slots: import and export enabled.
                    ST | DT => 0x08,
                    IE => 0x38,
                    _ => 0,
                };
            if let Some(src) = s.source {
                d[9] = 0x80;
                d[10..12].copy_from_slice(&src.to_be_bytes());
            }
            if voltag {
                let mut tag = vec![0u8; 36];
                if let Some(b) = &s.barcode {
                    tag[..32].copy_from_slice(&identifier(b, 32));
                }
                d.extend(tag);
            }
            if ids {
                // ASCII, vendor-specific identifier: the unit serial number.
                d.extend([0x02, 0x00, 0x00, id_len as u8]);
                d.extend(identifier(s.serial.as_deref().unwrap_or(""), id_len));
            }
            p.extend(d);
        }
        pages.extend(p);
    }
    let first = chosen.first().map_or(start, |s| s.address);
    let mut v = Vec::with_capacity(8 + pages.len());
    v.extend(first.to_be_bytes());
    v.extend((chosen.len() as u16).to_be_bytes());
    v.push(0);
    v.extend(&(pages.len() as u32).to_be_bytes()[1..]);
    v.extend(pages);
    answer(data, &v, alloc)
}
