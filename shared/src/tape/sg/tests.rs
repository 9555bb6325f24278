//! The SG_IO drive against reel-tcmu's emulated drive (the SSC layer over
//! a virtual library: real-shaped sense for every answer), and against
//! the ways drives differ: MODE SENSE(10), READ POSITION's long form or
//! LOCATE(16) refused, a LOCATE that lands one block off, a library that
//! keeps answering NOT READY while it inventories.

use std::time::Duration;

use super::*;
use crate::scsi::sg_io::{Data, Scsi, SgError};
use crate::tape::linux_st::fake::FakeClock;
use crate::tape::selftest;
use crate::tape::{Read, Written};
use crate::tcmu::ssc::{Identity, Ssc};
use crate::units::Size;
use crate::vtl::{self, LibrarySpec, VirtualDrive};

/// The emulated drive as a SCSI device, with the quirks of other drives
/// switched on at will.
struct Emulated {
    ssc: Ssc<VirtualDrive>,
    /// Opcodes (and READ POSITION's long form, as 0x3406) answered
    /// INVALID COMMAND OPERATION CODE / INVALID FIELD IN CDB.
    refuse: Vec<u16>,
    /// LOCATE lands this many blocks past the address asked.
    locate_skew: u64,
    /// TEST UNIT READY answers NOT READY, becoming ready, this many times.
    not_ready: usize,
    /// Every CDB sent: opcode, and service action for READ POSITION.
    sent: Vec<u16>,
}

fn fixed(key: u8, asc: u8, ascq: u8) -> SgError {
    let mut s = vec![0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq];
    s.resize(18, 0);
    SgError::Check(s)
}

impl Scsi for Emulated {
    fn run(&mut self, cdb: &[u8], data: Data<'_>, _: Duration) -> Result<usize, SgError> {
        let code = if cdb[0] == 0x34 {
            0x3400 | u16::from(cdb[1] & 0x1f)
        } else {
            u16::from(cdb[0])
        };
        self.sent.push(code);
        if self.refuse.contains(&code) {
            return Err(if code > 0xff {
                fixed(0x05, 0x24, 0x00)
            } else {
                fixed(0x05, 0x20, 0x00)
            });
        }
        if cdb[0] == 0x00 && self.not_ready > 0 {
            self.not_ready -= 1;
            return Err(fixed(0x02, 0x04, 0x01));
        }
        let mut cdb = cdb.to_vec();
        if self.locate_skew > 0 && cdb[0] == 0x92 {
            let mut a = [0u8; 8];
            a.copy_from_slice(&cdb[4..12]);
            let to = u64::from_be_bytes(a) + self.locate_skew;
            cdb[4..12].copy_from_slice(&to.to_be_bytes());
        }
        let (reply, moved) = match data {
            Data::None => (self.ssc.execute(&cdb, &mut Vec::new()), 0),
            Data::Out(b) => (self.ssc.execute(&cdb, &mut b.to_vec()), b.len()),
            Data::In(buf) => {
                let mut v = vec![0u8; buf.len()];
                let reply = self.ssc.execute(&cdb, &mut v);
                let n = reply.data_in.unwrap_or(0);
                buf[..n].copy_from_slice(&v[..n]);
                (reply, n)
            }
        };
        match reply.sense {
            Some(s) => Err(SgError::Check(s.bytes().to_vec())),
            None => Ok(moved),
        }
    }
}

fn emulated(dir: &std::path::Path, spec: &LibrarySpec) -> Emulated {
    let drive = vtl::open_drive(dir, 0, spec).unwrap();
    Emulated {
        ssc: Ssc::new(drive, Identity::new("REEL000000")),
        refuse: Vec::new(),
        locate_skew: 0,
        not_ready: 0,
        sent: Vec::new(),
    }
}

fn options() -> OpenOptions {
    OpenOptions {
        ready_timeout: Duration::from_secs(600),
        poll_interval: Duration::from_secs(5),
        variable_blocks: true,
    }
}

fn open(scsi: Emulated) -> SgTape<Emulated> {
    SgTape::open_with(
        "sg:/dev/sg9".into(),
        scsi,
        &options(),
        &mut FakeClock::default(),
    )
    .unwrap()
}

fn drive() -> (tempfile::TempDir, SgTape<Emulated>) {
    let dir = tempfile::tempdir().unwrap();
    let scsi = emulated(dir.path(), &LibrarySpec::default());
    (dir, open(scsi))
}

#[test]
fn the_drive_self_test_passes_to_the_early_warning_and_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = LibrarySpec::with_capacity(Size(48 << 20));
    let mut d = open(emulated(dir.path(), &spec));
    let opts = selftest::Options {
        block_size: 64 << 10,
        blocks: 16,
        fill: true,
        ..selftest::Options::default()
    };
    let mut steps = Vec::new();
    let passed = selftest::run(&mut d, opts, &mut |s| steps.push(s.clone())).unwrap();
    assert!(passed, "{steps:#?}");
    assert!(
        steps.iter().any(|s| s.name.contains("early warning")),
        "{steps:#?}"
    );
}

#[test]
fn blocks_filemarks_and_the_end_of_data_read_back_as_written() {
    let (_dir, mut d) = drive();
    assert_eq!(d.write_block(&[1; 1000]).unwrap(), Written::Ok);
    assert_eq!(d.write_block(&[2; 300]).unwrap(), Written::Ok);
    d.write_filemarks(1).unwrap();
    d.write_block(&[3; 70_000]).unwrap();
    d.write_filemarks(1).unwrap();
    assert_eq!(d.position().unwrap(), 5);
    d.rewind().unwrap();
    let st = d.status().unwrap();
    assert!(st.online && st.bot && !st.write_protected);
    assert_eq!(
        (st.position, st.file, st.density),
        (Some(0), Some(0), Some(0x60))
    );
    let mut buf = vec![0u8; 4096];
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(1000));
    assert_eq!(buf[..1000], [1; 1000]);
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(300));
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Filemark);
    assert!(d.status().unwrap().filemark);
    // A block longer than the buffer is passed, as st does.
    assert!(matches!(
        d.read_block(&mut buf),
        Err(TapeError::BlockTooLarge { buffer: 4096 })
    ));
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Filemark);
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::EndOfData);
    assert!(d.status().unwrap().eod);
    // By filemarks and by address.
    d.rewind().unwrap();
    d.forward_filemarks(1).unwrap();
    assert_eq!(d.position().unwrap(), 3);
    d.back_filemarks(1).unwrap();
    assert_eq!(d.position().unwrap(), 2);
    d.seek(1).unwrap();
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(300));
    d.end_of_data().unwrap();
    assert_eq!(d.position().unwrap(), 5);
    let e = d.forward_filemarks(1).unwrap_err().to_string();
    assert!(e.contains("end of data came before 1 filemarks"), "{e}");
    d.rewind().unwrap();
    let e = d.back_filemarks(1).unwrap_err().to_string();
    assert!(e.contains("beginning of the tape"), "{e}");
    assert!(
        d.seek(40)
            .unwrap_err()
            .to_string()
            .contains("past the end of data")
    );
}

#[test]
fn health_and_cartridge_memory_come_through() {
    let (_dir, mut d) = drive();
    d.write_block(&[7; 1 << 20]).unwrap();
    let alerts = d
        .tape_alerts()
        .unwrap()
        .expect("the emulator gives page 0x12");
    assert!(alerts.is_empty());
    let mam = d.cartridge_memory().unwrap().expect("the emulator has MAM");
    assert!(mam.serial.is_some());
    assert_eq!(mam.mib_written_this_load, Some(1));
    assert_eq!(d.max_block_size().unwrap(), Some(1 << 20));
    let e = d.write_block(&vec![0; (1 << 20) + 1]).unwrap_err();
    assert!(matches!(e, TapeError::Invalid(_)), "{e}");
}

#[test]
fn a_write_protected_tape_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let mut scsi = emulated(dir.path(), &LibrarySpec::default());
    scsi.ssc.drive().image_mut().unwrap().meta.write_protected = true;
    let mut d = open(scsi);
    assert!(d.status().unwrap().write_protected);
    assert!(matches!(
        d.write_block(&[1; 10]),
        Err(TapeError::WriteProtected)
    ));
    assert!(matches!(
        d.write_filemarks(1),
        Err(TapeError::WriteProtected)
    ));
    assert!(matches!(d.erase(false), Err(TapeError::WriteProtected)));
}

#[test]
fn a_drive_that_refuses_mode_sense_10_is_asked_with_6_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut scsi = emulated(dir.path(), &LibrarySpec::default());
    scsi.refuse.push(0x5a);
    let mut d = open(scsi);
    let st = d.status().unwrap();
    assert_eq!((st.density, st.block_size), (Some(0x60), 0));
    d.status().unwrap();
    let sent = &d.scsi.sent;
    assert_eq!(sent.iter().filter(|&&c| c == 0x5a).count(), 1, "{sent:x?}");
    assert_eq!(sent.iter().filter(|&&c| c == 0x1a).count(), 3, "{sent:x?}");
}

#[test]
fn a_drive_without_long_positions_or_locate_16_is_positioned_with_the_short_forms() {
    let dir = tempfile::tempdir().unwrap();
    let mut scsi = emulated(dir.path(), &LibrarySpec::default());
    scsi.refuse.extend([0x3406, 0x92]);
    let mut d = open(scsi);
    for b in 0..6u8 {
        d.write_block(&[b; 512]).unwrap();
    }
    assert_eq!(d.position().unwrap(), 6);
    d.seek(2).unwrap();
    let mut buf = [0u8; 512];
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(512));
    assert_eq!(buf[0], 2);
    d.seek(4).unwrap();
    assert_eq!(d.position().unwrap(), 4);
    let sent = &d.scsi.sent;
    assert_eq!(
        sent.iter().filter(|&&c| c == 0x3406).count(),
        1,
        "{sent:x?}"
    );
    assert_eq!(sent.iter().filter(|&&c| c == 0x92).count(), 1, "{sent:x?}");
    assert_eq!(sent.iter().filter(|&&c| c == 0x2b).count(), 2, "{sent:x?}");
    // The short form holds 32 bits: further is refused, not wrapped.
    assert!(matches!(d.seek(1 << 32), Err(TapeError::Invalid(_))));
}

#[test]
fn a_locate_that_lands_one_block_off_is_corrected_and_the_offset_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut scsi = emulated(dir.path(), &LibrarySpec::default());
    scsi.locate_skew = 1;
    let mut d = open(scsi);
    for b in 0..8u8 {
        d.write_block(&[b; 512]).unwrap();
    }
    let mut buf = [0u8; 512];
    for to in [3u64, 5, 1] {
        d.seek(to).unwrap();
        assert_eq!(d.position().unwrap(), to);
        d.read_block(&mut buf).unwrap();
        assert_eq!(u64::from(buf[0]), to);
    }
    // One extra LOCATE, at the first seek, to learn the offset.
    assert_eq!(d.scsi.sent.iter().filter(|&&c| c == 0x92).count(), 4);
    // A drive that lands further off is an error, not a guess.
    d.scsi.locate_skew = 3;
    let e = d.seek(2).unwrap_err().to_string();
    assert!(
        e.contains("LOCATE to block 2 left the tape at block"),
        "{e}"
    );
}

#[test]
fn a_library_that_inventories_is_waited_for_and_a_unit_attention_passed() {
    let dir = tempfile::tempdir().unwrap();
    let mut scsi = emulated(dir.path(), &LibrarySpec::default());
    scsi.not_ready = 3;
    scsi.ssc.medium_changed();
    let mut clock = FakeClock::default();
    let mut d = SgTape::open_with("sg:/dev/sg9".into(), scsi, &options(), &mut clock).unwrap();
    assert_eq!(clock.sleeps, 3);
    assert!(d.status().unwrap().online);
    drop(d);
    // Still not ready when the timeout is over: NotReady, after polling
    // for all of it.
    let mut scsi = emulated(dir.path(), &LibrarySpec::default());
    scsi.not_ready = usize::MAX;
    let mut clock = FakeClock::default();
    let r = SgTape::open_with("sg:/dev/sg9".into(), scsi, &options(), &mut clock);
    assert!(matches!(r, Err(TapeError::NotReady)));
    assert_eq!(clock.now, Duration::from_secs(600));
}

#[test]
fn no_tape_unload_and_load() {
    let (_dir, mut d) = drive();
    d.write_block(&[1; 100]).unwrap();
    d.write_filemarks(1).unwrap();
    d.unload().unwrap();
    assert!(!d.status().unwrap().online);
    d.load_with(&mut FakeClock::default()).unwrap();
    assert_eq!(d.position().unwrap(), 0);
    let mut buf = [0u8; 100];
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(100));
}
