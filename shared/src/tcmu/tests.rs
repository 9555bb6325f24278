//! The SSC layer against a virtual library in a temporary directory: CDBs
//! in, data and sense checked, no kernel.

use super::sense::{Key, Reply, SENSE_LEN};
use super::ssc::{Identity, Ssc};
use crate::tape::Drive;
use crate::units::Size;
use crate::vtl::{self, LibrarySpec, VirtualDrive};

pub(super) fn drive_in(dir: &std::path::Path, spec: &LibrarySpec) -> Ssc<VirtualDrive> {
    let drive = vtl::open_drive(dir, 0, spec).unwrap();
    Ssc::new(drive, Identity::new("REEL000000"))
}

pub(super) fn ssc() -> (tempfile::TempDir, Ssc<VirtualDrive>) {
    let dir = tempfile::tempdir().unwrap();
    let ssc = drive_in(dir.path(), &LibrarySpec::default());
    (dir, ssc)
}

/// Run `cdb` with a data-in buffer of `room` bytes: the reply and the data.
pub(super) fn data_in(ssc: &mut Ssc<VirtualDrive>, cdb: &[u8], room: usize) -> (Reply, Vec<u8>) {
    let mut buf = vec![0u8; room];
    let reply = ssc.execute(cdb, &mut buf);
    let n = reply.data_in.unwrap_or(0);
    buf.truncate(n);
    (reply, buf)
}

pub(super) fn no_data(ssc: &mut Ssc<VirtualDrive>, cdb: &[u8]) -> Reply {
    ssc.execute(cdb, &mut Vec::new())
}

pub(super) fn good(reply: &Reply) {
    assert_eq!(reply.sense, None, "expected GOOD, got {reply:?}");
}

/// Key, ASC, ASCQ, INFORMATION and the FM/EOM/ILI bits of a CHECK CONDITION.
pub(super) fn sense(reply: &Reply) -> (Key, u8, u8, Option<i32>, [bool; 3]) {
    let s = reply.sense.expect("expected CHECK CONDITION");
    let b = s.bytes();
    assert_eq!(b.len(), SENSE_LEN);
    assert_eq!(b[0] & 0x7f, 0x70);
    assert_eq!(b[7], 10);
    assert_eq!(b[0] & 0x80 != 0, s.info.is_some());
    (
        s.key,
        b[12],
        b[13],
        s.info,
        [b[2] & 0x80 != 0, b[2] & 0x40 != 0, b[2] & 0x20 != 0],
    )
}

pub(super) fn write(ssc: &mut Ssc<VirtualDrive>, data: &[u8]) -> Reply {
    let n = (data.len() as u32).to_be_bytes();
    ssc.execute(&[0x0a, 0, n[1], n[2], n[3], 0], &mut data.to_vec())
}

pub(super) fn read(ssc: &mut Ssc<VirtualDrive>, len: usize) -> (Reply, Vec<u8>) {
    let n = (len as u32).to_be_bytes();
    data_in(ssc, &[0x08, 0, n[1], n[2], n[3], 0], len)
}

pub(super) fn weof(ssc: &mut Ssc<VirtualDrive>, n: u8) -> Reply {
    no_data(ssc, &[0x10, 0, 0, 0, n, 0])
}

pub(super) fn space(ssc: &mut Ssc<VirtualDrive>, code: u8, count: i32) -> Reply {
    let c = count.to_be_bytes();
    no_data(ssc, &[0x11, code, c[1], c[2], c[3], 0])
}

pub(super) fn position(ssc: &mut Ssc<VirtualDrive>) -> u32 {
    let (reply, v) = data_in(ssc, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], 20);
    good(&reply);
    u32::from_be_bytes([v[4], v[5], v[6], v[7]])
}

pub(super) fn block(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
}

#[test]
fn inquiry_says_tape_drive_with_serial_and_identifier() {
    let (_dir, mut ssc) = ssc();
    let (reply, v) = data_in(&mut ssc, &[0x12, 0, 0, 0, 96, 0], 96);
    good(&reply);
    assert_eq!(v[0], 0x01, "peripheral device type 1: sequential access");
    assert_eq!(v[1] & 0x80, 0x80, "removable medium");
    assert_eq!(usize::from(v[4]) + 5, v.len());
    assert_eq!(&v[8..16], b"REEL    ");
    let (reply, v) = data_in(&mut ssc, &[0x12, 1, 0x00, 0, 255, 0], 255);
    good(&reply);
    assert_eq!(&v[..], &[0x01, 0x00, 0, 3, 0x00, 0x80, 0x83]);
    let (_, v) = data_in(&mut ssc, &[0x12, 1, 0x80, 0, 255, 0], 255);
    assert_eq!(&v[4..], b"REEL000000");
    let (_, v) = data_in(&mut ssc, &[0x12, 1, 0x83, 0, 255, 0], 255);
    assert_eq!(v[1], 0x83);
    assert_eq!(v[5] & 0x0f, 1, "T10 vendor ID designator");
    assert!(v.ends_with(b"REEL000000"));
    // A short allocation length cuts the answer.
    let (_, v) = data_in(&mut ssc, &[0x12, 0, 0, 0, 5, 0], 96);
    assert_eq!(v.len(), 5);
    let reply = data_in(&mut ssc, &[0x12, 1, 0x99, 0, 255, 0], 255).0;
    assert_eq!(sense(&reply).0, Key::IllegalRequest);
}

#[test]
fn what_st_sends_at_open() {
    let (_dir, mut ssc) = ssc();
    good(&no_data(&mut ssc, &[0; 6]));
    let (reply, v) = data_in(&mut ssc, &[0x05, 0, 0, 0, 0, 0], 6);
    good(&reply);
    assert_eq!(u32::from_be_bytes([0, v[1], v[2], v[3]]), 1 << 20);
    assert_eq!(u16::from_be_bytes([v[4], v[5]]), 1);
    let (reply, v) = data_in(&mut ssc, &[0x1a, 0, 0, 0, 12, 0], 12);
    good(&reply);
    assert_eq!(v, [11, 0, 0x10, 8, 0x60, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn mode_select_sets_the_block_size_mode_sense_reports_it() {
    let (_dir, mut ssc) = ssc();
    let mut list = vec![0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0x02, 0x00];
    good(&ssc.execute(&[0x15, 0x10, 0, 0, 12, 0], &mut list));
    let (reply, v) = data_in(&mut ssc, &[0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 255, 0], 255);
    good(&reply);
    assert_eq!(usize::from(u16::from_be_bytes([v[0], v[1]])) + 2, v.len());
    assert_eq!(v[7], 8);
    assert_eq!(&v[13..16], &[0, 2, 0], "512-byte blocks");
    assert_eq!(v[16], 0x0f, "data compression page");
    assert_eq!(v[32], 0x10, "device configuration page");
    // Fixed-block READ and WRITE now count 512-byte blocks.
    let data = block(7, 1024);
    good(&ssc.execute(&[0x0a, 1, 0, 0, 2, 0], &mut data.clone()));
    good(&no_data(&mut ssc, &[0x01, 0, 0, 0, 0, 0]));
    let (reply, got) = data_in(&mut ssc, &[0x08, 1, 0, 0, 2, 0], 1024);
    good(&reply);
    assert_eq!(got, data);
    // Back to variable blocks with MODE SELECT(10).
    let mut list = vec![0, 0, 0, 0x10, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    good(&ssc.execute(&[0x55, 0x10, 0, 0, 0, 0, 0, 0, 16, 0], &mut list));
    let (_, v) = data_in(&mut ssc, &[0x1a, 0, 0, 0, 12, 0], 12);
    assert_eq!(&v[9..12], &[0, 0, 0]);
    let reply = ssc.execute(&[0x08, 1, 0, 0, 1, 0], &mut vec![0; 512]);
    assert_eq!(
        sense(&reply).0,
        Key::IllegalRequest,
        "fixed read in variable mode"
    );
}

#[test]
fn blocks_filemarks_and_end_of_data_read_back_as_a_real_drive_reports_them() {
    let (_dir, mut ssc) = ssc();
    for tag in 0..3 {
        good(&write(&mut ssc, &block(tag, 256 << 10)));
    }
    good(&weof(&mut ssc, 1));
    good(&write(&mut ssc, &block(9, 1000)));
    assert_eq!(position(&mut ssc), 5);
    good(&no_data(&mut ssc, &[0x01, 0, 0, 0, 0, 0]));
    assert_eq!(position(&mut ssc), 0);
    for tag in 0..3 {
        let (reply, got) = read(&mut ssc, 256 << 10);
        good(&reply);
        assert_eq!(got, block(tag, 256 << 10));
    }
    let (reply, got) = read(&mut ssc, 256 << 10);
    assert_eq!(
        sense(&reply),
        (Key::NoSense, 0, 1, Some(256 << 10), [true, false, false])
    );
    assert!(got.is_empty());
    // A short block: ILI, the residue, and the block's data.
    let (reply, got) = read(&mut ssc, 4096);
    assert_eq!(
        sense(&reply),
        (Key::NoSense, 0, 0, Some(4096 - 1000), [false, false, true])
    );
    assert_eq!(reply.data_in, Some(1000));
    assert_eq!(got, block(9, 1000));
    let (reply, _) = read(&mut ssc, 4096);
    assert_eq!(
        sense(&reply),
        (Key::BlankCheck, 0, 5, Some(4096), [false, false, false])
    );
    // REQUEST SENSE gives the last sense once.
    let (reply, v) = data_in(&mut ssc, &[0x03, 0, 0, 0, 18, 0], 18);
    good(&reply);
    assert_eq!((v[2] & 0x0f, v[12], v[13]), (0x08, 0, 5));
    let (_, v) = data_in(&mut ssc, &[0x03, 0, 0, 0, 18, 0], 18);
    assert_eq!((v[2] & 0x0f, v[12], v[13]), (0, 0, 0));
    // A block longer than asked: ILI with a negative residue, the first bytes.
    good(&no_data(&mut ssc, &[0x2b, 0, 0, 0, 0, 0, 4, 0, 0, 0]));
    let (reply, got) = read(&mut ssc, 100);
    assert_eq!(
        sense(&reply),
        (Key::NoSense, 0, 0, Some(100 - 1000), [false, false, true])
    );
    assert_eq!(got, block(9, 100));
}

#[test]
fn space_locate_and_read_position() {
    let (_dir, mut ssc) = ssc();
    // Files of 2, 1 and 3 blocks: addresses 0-1 fm 2, 3 fm 4, 5-7.
    for (tag, n) in [(0, 2), (10, 1), (20, 3)] {
        for i in 0..n {
            good(&write(&mut ssc, &block(tag + i, 512)));
        }
        if tag < 20 {
            good(&weof(&mut ssc, 1));
        }
    }
    good(&no_data(&mut ssc, &[0x01, 0, 0, 0, 0, 0]));
    good(&space(&mut ssc, 1, 2));
    assert_eq!(position(&mut ssc), 5);
    let (_, got) = read(&mut ssc, 512);
    assert_eq!(got, block(20, 512));
    // Backward over one filemark: on its BOT side.
    good(&space(&mut ssc, 1, -1));
    assert_eq!(position(&mut ssc), 4);
    // Forward past the last filemark: BLANK CHECK, residue 1.
    good(&no_data(&mut ssc, &[0x01, 0, 0, 0, 0, 0]));
    let reply = space(&mut ssc, 1, 3);
    assert_eq!(
        sense(&reply),
        (Key::BlankCheck, 0, 5, Some(1), [false, false, false])
    );
    // Backward beyond BOT: EOM with BOT's ASCQ.
    good(&no_data(&mut ssc, &[0x2b, 0, 0, 0, 0, 0, 3, 0, 0, 0]));
    let reply = space(&mut ssc, 1, -2);
    assert_eq!(
        sense(&reply),
        (Key::NoSense, 0, 4, Some(1), [false, true, false])
    );
    assert_eq!(position(&mut ssc), 0);
    // Blocks: forward stops after a filemark with FM, backward before one.
    let reply = space(&mut ssc, 0, 5);
    assert_eq!(
        sense(&reply),
        (Key::NoSense, 0, 1, Some(3), [true, false, false])
    );
    assert_eq!(position(&mut ssc), 3);
    good(&space(&mut ssc, 0, 1));
    let reply = space(&mut ssc, 0, -2);
    assert_eq!(
        sense(&reply),
        (Key::NoSense, 0, 1, Some(1), [true, false, false])
    );
    assert_eq!(position(&mut ssc), 2, "on the BOT side of the filemark");
    good(&space(&mut ssc, 3, 0));
    assert_eq!(position(&mut ssc), 8);
    // LOCATE(16), READ POSITION long form: address, file number.
    good(&no_data(
        &mut ssc,
        &[0x92, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0],
    ));
    let (reply, v) = data_in(&mut ssc, &[0x34, 6, 0, 0, 0, 0, 0, 0, 0, 0], 32);
    good(&reply);
    assert_eq!(u64::from_be_bytes(v[8..16].try_into().unwrap()), 6);
    assert_eq!(u64::from_be_bytes(v[16..24].try_into().unwrap()), 2);
    let reply = no_data(&mut ssc, &[0x2b, 0, 0, 0, 0, 0, 99, 0, 0, 0]);
    assert_eq!(sense(&reply).0, Key::BlankCheck);
    // ERASE at the head ends the data there.
    good(&no_data(&mut ssc, &[0x2b, 0, 0, 0, 0, 0, 1, 0, 0, 0]));
    good(&no_data(&mut ssc, &[0x19, 0, 0, 0, 0, 0]));
    good(&space(&mut ssc, 3, 0));
    assert_eq!(position(&mut ssc), 1);
}

#[test]
fn early_warning_then_volume_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let spec = LibrarySpec::with_capacity(Size(4 << 20));
    let mut ssc = drive_in(dir.path(), &spec);
    let chunk = block(1, 256 << 10);
    let mut n = 0;
    let warned = loop {
        let reply = write(&mut ssc, &chunk);
        n += 1;
        if reply.sense.is_some() {
            break reply;
        }
        assert!(n < 16, "no early warning");
    };
    assert_eq!(
        sense(&warned),
        (Key::NoSense, 0, 2, Some(0), [false, true, false])
    );
    assert_eq!(position(&mut ssc), n);
    let full = loop {
        let reply = write(&mut ssc, &chunk);
        match sense(&reply) {
            (Key::NoSense, 0, 2, ..) => n += 1,
            _ => break reply,
        }
    };
    assert_eq!(
        sense(&full),
        (
            Key::VolumeOverflow,
            0,
            2,
            Some(256 << 10),
            [false, true, false]
        )
    );
    assert_eq!(position(&mut ssc), n, "the refused block is not on tape");
    // WRITE FILEMARKS still fits in the early-warning zone.
    let reply = weof(&mut ssc, 1);
    assert_eq!(sense(&reply).2, 2);
}

#[test]
fn unload_load_and_write_protect() {
    let (dir, mut ssc) = ssc();
    good(&no_data(&mut ssc, &[0x1e, 0, 0, 0, 1, 0]));
    good(&no_data(&mut ssc, &[0x1b, 0, 0, 0, 0, 0]));
    let reply = no_data(&mut ssc, &[0; 6]);
    assert_eq!(
        sense(&reply),
        (Key::NotReady, 0x3a, 0, None, [false, false, false])
    );
    good(&no_data(&mut ssc, &[0x1b, 0, 0, 0, 1, 0]));
    // The tape coming online is a medium change, reported once.
    assert_eq!(
        sense(&no_data(&mut ssc, &[0; 6])),
        (Key::UnitAttention, 0x28, 0, None, [false, false, false])
    );
    good(&no_data(&mut ssc, &[0; 6]));
    // LOAD of a loaded tape changes nothing.
    good(&no_data(&mut ssc, &[0x1b, 0, 0, 0, 1, 0]));
    good(&no_data(&mut ssc, &[0; 6]));
    ssc.drive().image_mut().unwrap().meta.write_protected = true;
    let reply = write(&mut ssc, &block(0, 512));
    assert_eq!(sense(&reply).0, Key::DataProtect);
    let (_, v) = data_in(&mut ssc, &[0x1a, 0, 0, 0, 12, 0], 12);
    assert_eq!(v[2] & 0x80, 0x80, "WP in the mode header");
    ssc.drive().image_mut().unwrap().meta.write_protected = false;
    let reply = no_data(&mut ssc, &[0xee, 0, 0, 0, 0, 0]);
    assert_eq!(
        sense(&reply),
        (Key::IllegalRequest, 0x20, 0, None, [false, false, false])
    );
    drop(ssc);
    let _ = dir;
}

#[test]
fn what_goes_through_the_emulator_is_a_normal_virtual_tape() {
    let (dir, mut ssc) = ssc();
    good(&write(&mut ssc, &block(3, 4096)));
    good(&weof(&mut ssc, 1));
    drop(ssc);
    let mut drive = vtl::open_drive(dir.path(), 0, &LibrarySpec::default()).unwrap();
    drive.rewind().unwrap();
    let mut buf = vec![0u8; 8192];
    assert_eq!(
        drive.read_block(&mut buf).unwrap(),
        crate::tape::Read::Data(4096)
    );
    assert_eq!(&buf[..4096], &block(3, 4096)[..]);
    assert_eq!(
        drive.read_block(&mut buf).unwrap(),
        crate::tape::Read::Filemark
    );
}
