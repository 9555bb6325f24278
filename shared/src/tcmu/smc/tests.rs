//! The SMC layer against a virtual library of two drives, eight slots and
//! a mail slot in a temporary directory: CDBs in, data and sense checked,
//! no kernel. Drive 1 is served too, as `reel-tcmu` serves it, to show a
//! move through the changer reaches that drive's SSC.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{Served, Smc};
use crate::tcmu::bay::Bay;
use crate::tcmu::default_serial;
use crate::tcmu::sense::{Key, Reply};
use crate::tcmu::ssc::{Identity, Ssc};
use crate::vtl::{self, Library, LibrarySpec};

struct Fixture {
    dir: tempfile::TempDir,
    smc: Smc,
    drive1: Served,
}

fn spec() -> LibrarySpec {
    LibrarySpec {
        drives: 2,
        ..LibrarySpec::default()
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let library = Library::open_or_create(dir.path(), &spec()).unwrap();
    let bay = Bay::open(dir.path(), 1, &spec()).unwrap();
    let drive1 = Arc::new(Mutex::new(Ssc::new(bay, Identity::new(&default_serial(1)))));
    let served = BTreeMap::from([(1, drive1.clone())]);
    let serials = vec![default_serial(0), default_serial(1)];
    let smc = Smc::new(library, Identity::new("LIB1"), serials, served).unwrap();
    Fixture { dir, smc, drive1 }
}

fn data_in(smc: &mut Smc, cdb: &[u8], room: usize) -> (Reply, Vec<u8>) {
    let mut buf = vec![0u8; room];
    let reply = smc.execute(cdb, &mut buf);
    buf.truncate(reply.data_in.unwrap_or(0));
    (reply, buf)
}

fn good(reply: &Reply) {
    assert_eq!(reply.sense, None, "expected GOOD, got {reply:?}");
}

fn sense(reply: &Reply) -> (Key, u8, u8) {
    let s = reply.sense.expect("expected CHECK CONDITION");
    (s.key, s.asc, s.ascq)
}

fn move_medium(smc: &mut Smc, from: u16, to: u16) -> Reply {
    let (f, t) = (from.to_be_bytes(), to.to_be_bytes());
    smc.execute(
        &[0xa5, 0, 0, 0, f[0], f[1], t[0], t[1], 0, 0, 0, 0],
        &mut Vec::new(),
    )
}

/// One parsed element descriptor: type, address, full, source, barcode,
/// device identifier.
type Desc = (u8, u16, bool, Option<u16>, String, String);

/// READ ELEMENT STATUS with VOLTAG and DVCID for element type `kind` (0:
/// all), parsed.
fn elements(smc: &mut Smc, kind: u8, start: u16, lun_bits: u8) -> Vec<Desc> {
    let s = start.to_be_bytes();
    let cdb = [
        0xb8,
        lun_bits | 0x10 | kind,
        s[0],
        s[1],
        0,
        100,
        1,
        0,
        0x40,
        0,
        0,
        0,
    ];
    let (reply, v) = data_in(smc, &cdb, 0x4000);
    good(&reply);
    let total = u32::from_be_bytes([0, v[5], v[6], v[7]]) as usize;
    assert_eq!(total + 8, v.len(), "byte count of the report");
    let mut out = Vec::new();
    let mut p = 8;
    while p < v.len() {
        let kind = v[p];
        let dlen = usize::from(u16::from_be_bytes([v[p + 2], v[p + 3]]));
        let bytes = u32::from_be_bytes([0, v[p + 5], v[p + 6], v[p + 7]]) as usize;
        assert_eq!(v[p + 1] & 0x80, 0x80, "PVOLTAG");
        for d in v[p + 8..p + 8 + bytes].chunks(dlen) {
            let tag = String::from_utf8_lossy(&d[12..44])
                .trim_end_matches([' ', '\0'])
                .to_string();
            let source = (d[9] & 0x80 != 0).then(|| u16::from_be_bytes([d[10], d[11]]));
            let id = if dlen > 48 {
                let n = usize::from(d[51]);
                String::from_utf8_lossy(&d[52..52 + n])
                    .trim_end()
                    .to_string()
            } else {
                String::new()
            };
            let address = u16::from_be_bytes([d[0], d[1]]);
            out.push((kind, address, d[2] & 1 != 0, source, tag, id));
        }
        p += 8 + bytes;
    }
    assert_eq!(usize::from(u16::from_be_bytes([v[2], v[3]])), out.len());
    out
}

#[test]
fn inquiry_says_medium_changer_with_serial() {
    let mut f = fixture();
    let (reply, v) = data_in(&mut f.smc, &[0x12, 0, 0, 0, 96, 0], 96);
    good(&reply);
    assert_eq!(v[0], 0x08);
    let (reply, v) = data_in(&mut f.smc, &[0x12, 1, 0x80, 0, 96, 0], 96);
    good(&reply);
    assert_eq!(&v[4..], b"LIB1");
    good(&f.smc.execute(&[0, 0, 0, 0, 0, 0], &mut Vec::new()));
    good(&f.smc.execute(&[0x07, 0, 0, 0, 0, 0], &mut Vec::new()));
    good(&f.smc.execute(&[0x1e, 0, 0, 0, 1, 0], &mut Vec::new()));
}

#[test]
fn element_address_assignment_page() {
    let mut f = fixture();
    // As ch sends it: LUN bits in byte 1, DBD.
    let (reply, v) = data_in(&mut f.smc, &[0x1a, 0x28, 0x1d, 0, 255, 0], 255);
    good(&reply);
    assert_eq!(usize::from(v[0]) + 1, v.len());
    assert_eq!(v[3], 0, "no block descriptor");
    let p = &v[4..];
    assert_eq!(&p[..2], &[0x1d, 0x12]);
    let words: Vec<u16> = p[2..18]
        .chunks(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]))
        .collect();
    assert_eq!(words, [0, 1, 0x1000, 8, 0x1008, 1, 1, 2]);
    let (reply, v) = data_in(&mut f.smc, &[0x5a, 0x08, 0x3f, 0, 0, 0, 0, 1, 0, 0], 256);
    good(&reply);
    assert_eq!(v[8], 0x1d);
    assert_eq!(v[28], 0x1e);
    assert_eq!(v[32], 0x1f);
}

#[test]
fn read_element_status_reports_tags_sources_and_serials() {
    let mut f = fixture();
    let all = elements(&mut f.smc, 0, 0, 0);
    assert_eq!(all.len(), 1 + 2 + 9);
    assert_eq!(all[0], (1, 0, false, None, String::new(), String::new()));
    let drive0 = (
        4,
        1,
        true,
        Some(0x1000),
        "V00001L9".into(),
        "REEL000000".into(),
    );
    assert_eq!(all[1], drive0);
    assert_eq!(
        all[2],
        (4, 2, false, None, String::new(), "REEL000001".into())
    );
    assert_eq!(
        all[3],
        (2, 0x1000, false, None, String::new(), String::new())
    );
    assert_eq!(all[4].4, "V00002L9");
    assert_eq!(
        all[11],
        (3, 0x1008, false, None, String::new(), String::new())
    );
    // One type, from an address; ch's LUN bits are ignored.
    let slots = elements(&mut f.smc, 2, 0x1002, 0x20);
    assert_eq!(slots.len(), 6);
    assert_eq!(slots[0].4, "V00003L9");
    let bad = f.smc.execute(
        &[0xb8, 0x12, 0x0f, 0, 0, 1, 0, 0, 0x40, 0, 0, 0],
        &mut vec![0; 64],
    );
    assert_eq!(sense(&bad), (Key::IllegalRequest, 0x21, 0x01));
}

#[test]
fn move_medium_moves_in_the_library_and_the_served_drive_follows() {
    let mut f = fixture();
    let tur = |f: &Fixture| {
        let mut ssc = f.drive1.lock().unwrap();
        ssc.execute(&[0, 0, 0, 0, 0, 0], &mut Vec::new())
    };
    assert_eq!(sense(&tur(&f)), (Key::NotReady, 0x3a, 0x00));
    // Slot 3 into drive 1, which this process serves.
    good(&move_medium(&mut f.smc, 0x1002, 2));
    assert_eq!(sense(&tur(&f)), (Key::UnitAttention, 0x28, 0x00));
    good(&tur(&f));
    let drives = elements(&mut f.smc, 4, 0, 0);
    assert_eq!(drives[1].3, Some(0x1002));
    assert_eq!(drives[1].4, "V00003L9");
    // Write a block through drive 1's SSC: it lands on V00003L9.
    let block = vec![7u8; 512];
    good(
        &f.drive1
            .lock()
            .unwrap()
            .execute(&[0x0a, 0, 0, 2, 0, 0], &mut block.clone()),
    );
    good(
        &f.drive1
            .lock()
            .unwrap()
            .execute(&[0x10, 0, 0, 0, 1, 0], &mut Vec::new()),
    );
    let on_tape = std::fs::read(f.dir.path().join("tapes/V00003L9/000000")).unwrap();
    assert_eq!(on_tape, block);
    // Back to slot 3, then slot 3 to the mail slot: virtual:DIR sees it.
    good(&move_medium(&mut f.smc, 2, 0x1002));
    assert_eq!(sense(&tur(&f)), (Key::UnitAttention, 0x28, 0x00));
    assert_eq!(sense(&tur(&f)), (Key::NotReady, 0x3a, 0x00));
    good(&move_medium(&mut f.smc, 0x1002, 0x1008));
    let mut changer = vtl::open_changer(f.dir.path(), &spec()).unwrap();
    let status = crate::changer::Changer::status(&mut changer).unwrap();
    assert_eq!(status.slots[8].barcode.as_deref(), Some("V00003L9"));
    assert!(status.slots[8].import_export);
    assert!(!status.slots[2].full);
}

#[test]
fn move_medium_refuses_an_empty_source_a_full_destination_and_bad_addresses() {
    let mut f = fixture();
    // Drive 1 is empty; slot 2 is full; drive 0 holds slot 1's tape.
    assert_eq!(
        sense(&move_medium(&mut f.smc, 2, 0x1003)),
        (Key::IllegalRequest, 0x3b, 0x0e)
    );
    assert_eq!(
        sense(&move_medium(&mut f.smc, 0x1001, 1)),
        (Key::IllegalRequest, 0x3b, 0x0d)
    );
    assert_eq!(
        sense(&move_medium(&mut f.smc, 0x1001, 0x1002)),
        (Key::IllegalRequest, 0x3b, 0x0d)
    );
    assert_eq!(
        sense(&move_medium(&mut f.smc, 0x1001, 0x0900)),
        (Key::IllegalRequest, 0x21, 0x01)
    );
    assert_eq!(
        sense(&move_medium(&mut f.smc, 0x1001, 0)),
        (Key::IllegalRequest, 0x21, 0x01)
    );
    // REQUEST SENSE hands the last one over.
    let (reply, v) = data_in(&mut f.smc, &[0x03, 0, 0, 0, 18, 0], 18);
    good(&reply);
    assert_eq!((v[2], v[12], v[13]), (0x05, 0x21, 0x01));
}

#[test]
fn a_drive_another_program_holds_keeps_its_tape() {
    let mut f = fixture();
    let _user = vtl::open_drive(f.dir.path(), 0, &spec()).unwrap();
    let reply = move_medium(&mut f.smc, 1, 0x1000);
    assert_eq!(sense(&reply), (Key::IllegalRequest, 0x53, 0x02));
}

fn drive1(f: &Fixture, cdb: &[u8]) -> Reply {
    f.drive1.lock().unwrap().execute(cdb, &mut Vec::new())
}

#[test]
fn a_tape_change_is_a_unit_attention_once() {
    let mut f = fixture();
    good(&move_medium(&mut f.smc, 0x1002, 2));
    // INQUIRY and REQUEST SENSE pass it by; the next other command gets it.
    let mut inq = vec![0u8; 36];
    good(
        &f.drive1
            .lock()
            .unwrap()
            .execute(&[0x12, 0, 0, 0, 36, 0], &mut inq),
    );
    assert_eq!(inq[0], 0x01);
    assert_eq!(
        sense(&drive1(&f, &[0x01, 0, 0, 0, 0, 0])),
        (Key::UnitAttention, 0x28, 0x00)
    );
    let mut rs = vec![0u8; 18];
    good(
        &f.drive1
            .lock()
            .unwrap()
            .execute(&[0x03, 0, 0, 0, 18, 0], &mut rs),
    );
    assert_eq!((rs[2], rs[12], rs[13]), (0x06, 0x28, 0x00));
    good(&drive1(&f, &[0, 0, 0, 0, 0, 0]));
    good(&drive1(&f, &[0x01, 0, 0, 0, 0, 0]));
    // A move that fails changes nothing and says nothing.
    assert_eq!(
        sense(&move_medium(&mut f.smc, 0x1003, 2)),
        (Key::IllegalRequest, 0x3b, 0x0d)
    );
    good(&drive1(&f, &[0, 0, 0, 0, 0, 0]));
}

#[test]
fn prevent_medium_removal_keeps_the_tape_in_the_drive() {
    let mut f = fixture();
    good(&move_medium(&mut f.smc, 0x1002, 2));
    let _ = drive1(&f, &[0, 0, 0, 0, 0, 0]);
    good(&drive1(&f, &[0x1e, 0, 0, 0, 1, 0]));
    assert_eq!(
        sense(&move_medium(&mut f.smc, 2, 0x1002)),
        (Key::IllegalRequest, 0x53, 0x02)
    );
    // The tape stayed, and the drive saw no change.
    assert_eq!(elements(&mut f.smc, 4, 0, 0)[1].4, "V00003L9");
    good(&drive1(&f, &[0, 0, 0, 0, 0, 0]));
    // Drive 0 is not prevented: its tape moves.
    good(&move_medium(&mut f.smc, 1, 0x1000));
    good(&drive1(&f, &[0x1e, 0, 0, 0, 0, 0]));
    good(&move_medium(&mut f.smc, 2, 0x1002));
    assert!(
        !elements(&mut f.smc, 4, 0, 0)[1].2,
        "drive 1 is empty again"
    );
}
