//! The SG_IO changer against reel-tcmu's emulated changer (real-shaped
//! READ ELEMENT STATUS and MOVE MEDIUM answers over a virtual library),
//! and against the answers of libraries that differ: no drive identifiers,
//! DVCID refused, not ready.

use std::collections::BTreeMap;

use super::*;
use std::time::Duration;

use crate::scsi::sg_io::{Data, Scsi, SgError};
use crate::tcmu::smc::Smc;
use crate::tcmu::ssc::Identity;
use crate::vtl::{self, Library, LibrarySpec};

/// The emulated changer as a SCSI device.
struct Emulated {
    smc: Smc,
    /// Answer DVCID with ILLEGAL REQUEST, as some libraries do.
    refuse_dvcid: bool,
    /// Answer this many commands with NOT READY, inventory in progress.
    not_ready: usize,
    /// The CDBs sent.
    sent: Vec<Vec<u8>>,
}

fn check(sense: &[u8]) -> SgError {
    SgError::Check(sense.to_vec())
}

fn fixed(key: u8, asc: u8, ascq: u8) -> Vec<u8> {
    let mut s = vec![0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq];
    s.resize(18, 0);
    s
}

impl Scsi for Emulated {
    fn run(&mut self, cdb: &[u8], data: Data<'_>, _: Duration) -> Result<usize, SgError> {
        let Data::In(buf) = data else {
            let mut none = [];
            return self.run(cdb, Data::In(&mut none), Duration::ZERO);
        };
        self.sent.push(cdb.to_vec());
        if self.not_ready > 0 {
            self.not_ready -= 1;
            return Err(check(&fixed(0x02, 0x04, 0x01)));
        }
        if self.refuse_dvcid && cdb[0] == 0xb8 && cdb[6] & 0x01 != 0 {
            return Err(check(&fixed(0x05, 0x24, 0x00)));
        }
        let mut v = vec![0u8; buf.len()];
        let reply = self.smc.execute(cdb, &mut v);
        match reply.sense {
            Some(s) => Err(check(&s.bytes())),
            None => {
                let n = reply.data_in.unwrap_or(0);
                buf[..n].copy_from_slice(&v[..n]);
                Ok(n)
            }
        }
    }
}

fn library() -> (tempfile::TempDir, SgChanger<Emulated>) {
    let dir = tempfile::tempdir().unwrap();
    let spec = LibrarySpec {
        drives: 2,
        ..LibrarySpec::default()
    };
    let library = Library::open_or_create(dir.path(), &spec).unwrap();
    let serials = vec!["REEL000000".to_string(), "REEL000001".to_string()];
    let smc = Smc::new(
        library,
        Identity::new("REELLIB001"),
        serials,
        BTreeMap::new(),
    )
    .unwrap();
    let scsi = Emulated {
        smc,
        refuse_dvcid: false,
        not_ready: 0,
        sent: Vec::new(),
    };
    // Asked again at once: the tests count attempts, they do not wait.
    let retry = crate::changer::mtx::RetryPolicy {
        retries: 12,
        delay: std::time::Duration::ZERO,
    };
    (
        dir,
        SgChanger::new("sg:/dev/sg9".into(), scsi).with_retry(retry),
    )
}

/// The virtual library's own view, which numbers as mtx does.
fn truth(dir: &std::path::Path) -> ChangerStatus {
    vtl::open_changer(dir, &LibrarySpec::default())
        .unwrap()
        .status()
        .unwrap()
}

fn without_serials(mut s: ChangerStatus) -> ChangerStatus {
    for d in &mut s.drives {
        d.serial = None;
    }
    s
}

#[test]
fn status_numbers_as_mtx_does_and_gives_each_drives_serial() {
    let (dir, mut ch) = library();
    let status = ch.status().unwrap();
    assert_eq!(without_serials(status.clone()), truth(dir.path()));
    let serials: Vec<_> = status.drives.iter().map(|d| d.serial.clone()).collect();
    assert_eq!(
        serials,
        [
            Some("REEL000000".to_string()),
            Some("REEL000001".to_string())
        ]
    );
    assert!(
        status.slots.iter().any(|s| s.import_export),
        "the mail slot"
    );
}

#[test]
fn moves_are_moves_in_the_library() {
    let (dir, mut ch) = library();
    ch.unload(0, 1).unwrap();
    ch.load(3, 1).unwrap();
    let free = truth(dir.path()).free_slot().unwrap();
    ch.transfer(4, free).unwrap();
    let now = truth(dir.path());
    assert_eq!(without_serials(ch.status().unwrap()), now);
    assert!(!now.drives[0].full);
    assert_eq!(now.drives[1].source_slot, Some(3));
    assert!(!now.slots[3].full && now.slots[free as usize - 1].full);
    // An empty source: refused with the library's sense, named.
    let err = ch.load(4, 0).unwrap_err();
    assert!(matches!(err, ChangerError::Refused(_)), "{err}");
    assert!(
        err.to_string().contains("MOVE MEDIUM (slot 4 to drive 0)"),
        "{err}"
    );
    let err = ch.load(99, 0).unwrap_err();
    assert!(err.to_string().contains("no slot 99"), "{err}");
    let err = ch.load(1, 5).unwrap_err();
    assert!(err.to_string().contains("no drive 5"), "{err}");
}

#[test]
fn a_library_that_refuses_dvcid_is_asked_without_it() {
    let (dir, mut ch) = library();
    ch.scsi.refuse_dvcid = true;
    let status = ch.status().unwrap();
    assert!(status.drives.iter().all(|d| d.serial.is_none()));
    assert_eq!(status, truth(dir.path()));
}

#[test]
fn a_library_taking_inventory_is_asked_again_until_it_is_ready() {
    let (dir, mut ch) = library();
    ch.scsi.not_ready = 5;
    assert_eq!(without_serials(ch.status().unwrap()), truth(dir.path()));
    assert_eq!(ch.scsi.sent.len(), 6);
    // A move too: NOT READY means it was not carried out.
    ch.scsi.not_ready = 2;
    ch.load(2, 1).unwrap();
    assert_eq!(
        truth(dir.path()).drives[1].barcode.as_deref(),
        Some("V00002L9")
    );
}

#[test]
fn a_library_still_not_ready_after_its_retries_is_not_ready() {
    let (_dir, mut ch) = library();
    ch.scsi.not_ready = usize::MAX;
    let err = ch.status().unwrap_err();
    assert!(matches!(err, ChangerError::NotReady(_)), "{err}");
    assert_eq!(err.exit(), crate::exit::Exit::TempFail);
    assert_eq!(ch.scsi.sent.len(), 13, "the first try and 12 more");
}

/// Some libraries read READ ELEMENT STATUS's allocation length as 16
/// bits (bytes 8 and 9) rather than 24: below 64 KiB both read the same.
#[test]
fn the_allocation_length_reads_the_same_as_16_or_24_bits() {
    let (_dir, mut ch) = library();
    ch.status().unwrap();
    let cdb = &ch.scsi.sent[0];
    assert_eq!(cdb[0], 0xb8);
    let as24 = u32::from_be_bytes([0, cdb[7], cdb[8], cdb[9]]);
    let as16 = u32::from(u16::from_be_bytes([cdb[8], cdb[9]]));
    assert_eq!(as24, as16);
    assert!(as24 > 4096, "room for a large library's answer: {as24}");
}

/// A drive page whose descriptors have volume tags but no room for an
/// identifier, a slot page without volume tags, and a source address.
#[test]
fn descriptors_without_identifiers_or_volume_tags_parse() {
    let mut drives = vec![DATA_TRANSFER, 0x80, 0, 48, 0, 0, 0, 48];
    let mut d = vec![0u8; 48];
    d[0..2].copy_from_slice(&0x0100u16.to_be_bytes());
    d[2] = 0x01;
    d[9] = 0x80;
    d[10..12].copy_from_slice(&0x0400u16.to_be_bytes());
    d[12..20].copy_from_slice(b"ABC123L9");
    d[20..44].fill(b' ');
    drives.extend(d);
    let mut slots = vec![STORAGE, 0x00, 0, 12, 0, 0, 0, 24];
    for (a, full) in [(0x0400u16, false), (0x0401, true)] {
        let mut e = vec![0u8; 12];
        e[0..2].copy_from_slice(&a.to_be_bytes());
        e[2] = u8::from(full);
        slots.extend(e);
    }
    let mut all = vec![0x01, 0x00, 0, 3, 0];
    let body = [drives, slots].concat();
    all.extend(&(body.len() as u32).to_be_bytes()[1..]);
    all.extend(body);
    let elements = parse_element_status(&all).unwrap();
    assert_eq!(elements.len(), 3);
    assert_eq!(elements[0].barcode.as_deref(), Some("ABC123L9"));
    assert_eq!(elements[0].identifier, None);
    assert_eq!(elements[0].source, Some(0x0400));
    let status = Numbered::of(elements).status();
    assert_eq!(status.drives[0].source_slot, Some(1));
    assert_eq!(status.drives[0].serial, None);
    assert!(status.slots[1].full && status.slots[1].barcode.is_none());
    // Damage: a header alone, a descriptor length under 12.
    assert!(parse_element_status(&[0; 4]).is_err());
    let mut bad = all.clone();
    bad[8 + 3] = 4;
    assert!(parse_element_status(&bad).is_err());
}
