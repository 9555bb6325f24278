//! [`LinuxSt`] against the simulated st drive of `fake.rs`: block and
//! filemark round trips, logical addresses, the early warning under both
//! device quirks, oversized blocks, and the online wait at open.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;

use super::fake::{FakeClock, FakeSt, Quirk, Tape, opener};
use super::sys::{Access, MT_ST_ASYNC_WRITES, MT_ST_SCSI2LOGICAL};
use super::{LinuxSt, OpenOptions};
use crate::tape::{Drive, Read, TapeError, Written};

type Shared = Arc<Mutex<Tape>>;

fn tape(capacity: usize, early_warning: usize, quirk: Quirk) -> Shared {
    Tape::new(capacity, early_warning, quirk).shared()
}

fn open_with(
    tape: &Shared,
    options: &OpenOptions,
    clock: &mut FakeClock,
) -> Result<LinuxSt<FakeSt>, TapeError> {
    LinuxSt::open_with("/dev/nst0", options, opener(tape), clock)
}

fn open(tape: &Shared) -> LinuxSt<FakeSt> {
    open_with(tape, &OpenOptions::default(), &mut FakeClock::default()).unwrap()
}

fn block(i: usize) -> Vec<u8> {
    format!("block {i:05}").into_bytes()
}

fn read(d: &mut LinuxSt<FakeSt>) -> Read {
    let mut buf = vec![0; 64];
    d.read_block(&mut buf).unwrap()
}

/// Read `n` data blocks and return their contents.
fn read_blocks(d: &mut LinuxSt<FakeSt>, n: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0; 64];
    (0..n)
        .map(|i| match d.read_block(&mut buf) {
            Ok(Read::Data(len)) => buf[..len].to_vec(),
            other => panic!("block {i}: expected data, got {other:?}"),
        })
        .collect()
}

/// Three files of five blocks, each closed with a filemark.
fn three_files(d: &mut LinuxSt<FakeSt>) {
    for file in 0..3 {
        for b in 0..5 {
            assert_eq!(d.write_block(&block(file * 5 + b)).unwrap(), Written::Ok);
        }
        assert_eq!(d.write_filemarks(1).unwrap(), Written::Ok);
    }
}

#[test]
fn open_sets_up_the_driver() {
    let t = tape(100, 90, Quirk::RealDrive);
    let d = open(&t);
    assert!(!d.sys().nonblocking, "O_NONBLOCK is cleared for I/O");
    let t = t.lock().unwrap();
    assert_eq!(t.opens, [Access::ReadWrite]);
    assert_ne!(t.options & MT_ST_SCSI2LOGICAL, 0);
    assert_eq!(t.options & MT_ST_ASYNC_WRITES, 0);
    assert_eq!(t.block_size, 0, "variable-block mode");
}

#[test]
fn blocks_and_filemarks_read_back() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    for data in [&b"alpha"[..], b"beta"] {
        assert_eq!(d.write_block(data).unwrap(), Written::Ok);
    }
    assert_eq!(d.write_filemarks(1).unwrap(), Written::Ok);
    assert_eq!(d.write_block(b"gamma").unwrap(), Written::Ok);
    assert_eq!(d.write_filemarks(1).unwrap(), Written::Ok);
    assert_eq!(d.position().unwrap(), 5);

    d.rewind().unwrap();
    let mut buf = vec![0; 64];
    for want in [&b"alpha"[..], b"beta"] {
        assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(want.len()));
        assert_eq!(&buf[..want.len()], want);
    }
    assert_eq!(read(&mut d), Read::Filemark);
    assert_eq!(read(&mut d), Read::Data(5));
    assert_eq!(read(&mut d), Read::Filemark);
    // st: one more zero-byte read with EOD set, then EIO with EOD set.
    assert_eq!(read(&mut d), Read::EndOfData);
    assert_eq!(read(&mut d), Read::EndOfData);
    assert_eq!(d.position().unwrap(), 5, "the end of data does not move");
}

#[test]
fn logical_addresses_count_filemarks() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    three_files(&mut d);
    assert_eq!(d.position().unwrap(), 18);

    d.rewind().unwrap();
    d.forward_filemarks(1).unwrap();
    assert_eq!(d.position().unwrap(), 6);
    let s = d.status().unwrap();
    assert_eq!((s.file, s.block, s.position), (Some(1), Some(0), Some(6)));
    assert!(s.filemark && !s.bot && s.online);
    assert_eq!(read_blocks(&mut d, 1), [block(5)]);

    d.seek(12).unwrap();
    assert_eq!(read_blocks(&mut d, 1), [block(10)]);
    d.seek(11).unwrap();
    assert_eq!(read(&mut d), Read::Filemark);
    assert_eq!(d.position().unwrap(), 12);
}

#[test]
fn position_unknown_until_rewind_and_block_unknown_after_eod() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    let s = d.status().unwrap();
    assert!(s.online && !s.bot);
    assert_eq!((s.file, s.block), (None, None), "as after a load");
    assert_eq!(s.density, Some(0x60));

    d.rewind().unwrap();
    let s = d.status().unwrap();
    assert!(s.bot);
    assert_eq!((s.file, s.block, s.position), (Some(0), Some(0), Some(0)));
    three_files(&mut d);

    d.rewind().unwrap();
    d.end_of_data().unwrap();
    let s = d.status().unwrap();
    assert!(s.eod);
    assert_eq!((s.file, s.block, s.position), (Some(3), None, Some(18)));
    // Reading at the end of data: EIO with EOD set.
    assert_eq!(read(&mut d), Read::EndOfData);

    d.back_filemarks(1).unwrap();
    assert_eq!(d.position().unwrap(), 17, "before the last filemark");
    assert_eq!(read(&mut d), Read::Filemark);
}

#[test]
fn spacing_past_the_ends_is_an_error() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    three_files(&mut d);
    d.rewind().unwrap();
    assert!(matches!(
        d.forward_filemarks(4),
        Err(TapeError::Io { op, .. }) if op.contains("MTFSF")
    ));
    d.seek(3).unwrap();
    assert!(matches!(d.back_filemarks(1), Err(TapeError::Io { .. })));
    assert!(matches!(d.seek(u64::MAX), Err(TapeError::Invalid(_))));
}

#[test]
fn appending_after_end_of_data_asks_the_position_once() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    three_files(&mut d);
    d.end_of_data().unwrap();
    t.lock().unwrap().calls.clear();
    for i in 0..10 {
        assert_eq!(d.write_block(&block(i)).unwrap(), Written::Ok);
    }
    assert_eq!(d.write_filemarks(1).unwrap(), Written::Ok);
    assert_eq!(t.lock().unwrap().count("MTIOCPOS"), 1);
    assert_eq!(d.position().unwrap(), 29);
}

/// Write numbered blocks from BOT until the tape is full; check what each
/// write reported against what is on tape.
fn fill_to_the_end(quirk: Quirk) {
    const CAPACITY: usize = 40;
    const WARNING: usize = 30;
    let t = tape(CAPACITY, WARNING, quirk);
    let mut d = open(&t);
    d.rewind().unwrap();
    let mut reports = Vec::new();
    let full = loop {
        let i = reports.len();
        assert!(i < 2 * CAPACITY, "never reached the end of the tape");
        if i == WARNING - 1 {
            t.lock().unwrap().calls.clear();
        }
        match d.write_block(&block(i)) {
            Ok(w) => reports.push(w),
            Err(TapeError::EndOfMedium) => break i,
            Err(e) => panic!("block {i}: {e}"),
        }
        if i == WARNING - 1 {
            assert_eq!(t.lock().unwrap().count("MTIOCPOS"), 0, "no ioctl per block");
        }
    };

    // Every block reported written is on tape, once, in order, and the one
    // refused is not.
    assert_eq!(full, CAPACITY);
    assert_eq!(t.lock().unwrap().records.len(), CAPACITY);
    d.rewind().unwrap();
    let back = read_blocks(&mut d, full);
    assert_eq!(back, (0..full).map(block).collect::<Vec<_>>());
    assert!(!matches!(d.read_block(&mut [0; 64]), Ok(Read::Data(_))));

    // A real drive's crossing write returns its full count, so its warning
    // shows on the next block; scsi_debug's shows on the crossing block.
    let first_warning = match quirk {
        Quirk::RealDrive => WARNING + 1,
        Quirk::ScsiDebug => WARNING,
    };
    for (i, w) in reports.iter().enumerate() {
        let want = if i < first_warning {
            Written::Ok
        } else {
            Written::EarlyWarning
        };
        assert_eq!(*w, want, "block {i}");
    }

    // Back at the start the warning is forgotten.
    d.rewind().unwrap();
    assert_eq!(d.write_block(&block(0)).unwrap(), Written::Ok);
}

#[test]
fn early_warning_on_a_real_drive() {
    fill_to_the_end(Quirk::RealDrive);
}

#[test]
fn early_warning_on_scsi_debug() {
    fill_to_the_end(Quirk::ScsiDebug);
}

#[test]
fn trailer_after_early_warning() {
    for quirk in [Quirk::RealDrive, Quirk::ScsiDebug] {
        let t = tape(40, 10, quirk);
        let mut d = open(&t);
        d.rewind().unwrap();
        let mut i = 0;
        while d.write_block(&block(i)).unwrap() == Written::Ok {
            i += 1;
        }
        // The block that reported the warning is on tape; the trailer and
        // its filemark go on after it.
        assert_eq!(d.write_block(b"trailer").unwrap(), Written::EarlyWarning);
        assert_eq!(d.write_filemarks(1).unwrap(), Written::EarlyWarning);
        let on_tape = t.lock().unwrap().data().len();
        assert_eq!(on_tape, i + 2, "{quirk:?}");
        d.rewind().unwrap();
        let back = read_blocks(&mut d, i + 2);
        assert_eq!(back[i], block(i));
        assert_eq!(back[i + 1], b"trailer");
        assert_eq!(read(&mut d), Read::Filemark, "{quirk:?}");
    }
}

#[test]
fn filemarks_that_meet_enospc() {
    // (marks asked, marks recorded before ENOSPC) → marks on tape.
    for (n, recorded) in [(1, 0), (1, 1), (2, 1), (3, 0)] {
        let t = tape(100, 90, Quirk::RealDrive);
        let mut d = open(&t);
        d.rewind().unwrap();
        d.write_block(b"data").unwrap();
        t.lock().unwrap().weof_enospc = Some(recorded);
        assert_eq!(
            d.write_filemarks(n).unwrap(),
            Written::EarlyWarning,
            "{n} marks, ENOSPC after {recorded}"
        );
        assert_eq!(t.lock().unwrap().records.len(), 1 + n as usize);
        assert_eq!(d.position().unwrap(), 1 + u64::from(n));
        assert_eq!(d.write_block(b"more").unwrap(), Written::EarlyWarning);
    }
}

#[test]
fn filemarks_at_the_physical_end() {
    let t = tape(3, 2, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    for i in 0..3 {
        d.write_block(&block(i)).unwrap();
    }
    assert!(matches!(d.write_filemarks(1), Err(TapeError::EndOfMedium)));
    assert_eq!(t.lock().unwrap().records.len(), 3);
}

#[test]
fn short_write_is_an_error() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    t.lock().unwrap().short_write = Some(2);
    let err = d.write_block(b"abcdef").unwrap_err();
    assert!(matches!(err, TapeError::Io { op: "write", .. }), "{err}");
    assert!(err.to_string().contains("2 of 6 bytes"), "{err}");
}

#[test]
fn empty_block_and_empty_buffer_are_refused() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    assert!(matches!(d.write_block(b""), Err(TapeError::Invalid(_))));
    assert!(matches!(d.read_block(&mut []), Err(TapeError::Invalid(_))));
}

#[test]
fn oversized_block_is_skipped() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    d.write_block(&[7; 100]).unwrap();
    d.write_block(b"next").unwrap();
    d.rewind().unwrap();
    let mut small = [0; 50];
    assert!(matches!(
        d.read_block(&mut small),
        Err(TapeError::BlockTooLarge { buffer: 50 })
    ));
    assert_eq!(d.read_block(&mut small).unwrap(), Read::Data(4));
    assert_eq!(&small[..4], b"next");
    assert_eq!(d.position().unwrap(), 2);
}

#[test]
fn end_of_data_without_a_filemark_is_an_io_error() {
    // st answers EIO there, the same as for a bad block: nothing tells them
    // apart. (To find out whether a tape is blank: end_of_data, position.)
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    d.write_block(b"only").unwrap();
    d.rewind().unwrap();
    assert_eq!(read(&mut d), Read::Data(4));
    assert!(matches!(
        d.read_block(&mut [0; 8]),
        Err(TapeError::Io { op: "read", .. })
    ));
}

#[test]
fn open_waits_until_the_tape_is_online() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().opens_until_ready = 3;
    let options = OpenOptions {
        ready_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_secs(10),
        ..OpenOptions::default()
    };
    let mut clock = FakeClock::default();
    let mut d = open_with(&t, &options, &mut clock).unwrap();
    assert_eq!(clock.sleeps, 3);
    // st decides readiness at open: every look is a fresh open.
    assert_eq!(t.lock().unwrap().opens.len(), 4);
    assert!(d.status().unwrap().online);
}

#[test]
fn open_gives_up_when_the_timeout_passes() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().opens_until_ready = u32::MAX;
    let options = OpenOptions {
        ready_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_secs(10),
        ..OpenOptions::default()
    };
    let mut clock = FakeClock::default();
    let err = open_with(&t, &options, &mut clock).err().unwrap();
    assert!(matches!(err, TapeError::NotReady), "{err}");
    assert_eq!(clock.now, Duration::from_secs(60));
    assert_eq!(t.lock().unwrap().opens.len(), 7);

    // With no time to wait, one look.
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().opens_until_ready = 1;
    let options = OpenOptions {
        ready_timeout: Duration::ZERO,
        ..OpenOptions::default()
    };
    let mut clock = FakeClock::default();
    let err = open_with(&t, &options, &mut clock).err().unwrap();
    assert!(matches!(err, TapeError::NotReady), "{err}");
    assert_eq!(clock.sleeps, 0);
}

#[test]
fn open_without_a_tape() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().loaded = false;
    let mut clock = FakeClock::default();
    let err = open_with(&t, &OpenOptions::default(), &mut clock)
        .err()
        .unwrap();
    assert!(matches!(err, TapeError::NoTape), "{err}");
    assert_eq!(clock.sleeps, 0, "an empty drive is not waited for");
}

#[test]
fn open_of_a_busy_drive() {
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().busy = true;
    let err = open_with(&t, &OpenOptions::default(), &mut FakeClock::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, TapeError::Busy(ref d) if d == "/dev/nst0"),
        "{err}"
    );
}

#[test]
fn write_protected_tape_is_opened_read_only() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    d.write_block(b"label").unwrap();
    d.write_filemarks(1).unwrap();
    drop(d);
    t.lock().unwrap().write_protected = true;

    let mut d = open(&t);
    assert_eq!(
        t.lock().unwrap().opens,
        [Access::ReadWrite, Access::ReadWrite, Access::ReadOnly]
    );
    assert!(d.status().unwrap().write_protected);
    d.rewind().unwrap();
    assert_eq!(read(&mut d), Read::Data(5));
    assert!(matches!(
        d.write_block(b"x"),
        Err(TapeError::WriteProtected)
    ));
    assert!(matches!(
        d.write_filemarks(1),
        Err(TapeError::WriteProtected)
    ));
    assert!(matches!(d.erase(false), Err(TapeError::WriteProtected)));
    assert_eq!(t.lock().unwrap().count("write"), 1, "nothing was tried");
}

#[test]
fn read_only_device_node_falls_back_to_reading() {
    for errno in [Errno::EACCES, Errno::EROFS] {
        let t = tape(100, 90, Quirk::RealDrive);
        t.lock().unwrap().rw_open_error = Some(errno);
        let mut d = open(&t);
        assert_eq!(
            t.lock().unwrap().opens,
            [Access::ReadWrite, Access::ReadOnly]
        );
        d.rewind().unwrap();
        assert!(matches!(
            d.write_block(b"x"),
            Err(TapeError::WriteProtected)
        ));
    }
}

#[test]
fn driver_options_without_root() {
    // An administrator set scsi2logical; reel runs as a tape operator.
    let t = tape(100, 90, Quirk::RealDrive);
    {
        let mut t = t.lock().unwrap();
        t.root = false;
        t.options |= MT_ST_SCSI2LOGICAL;
    }
    let d = open(&t);
    drop(d);

    // Nobody did: positions would not be logical block addresses.
    let t = tape(100, 90, Quirk::RealDrive);
    t.lock().unwrap().root = false;
    let err = open_with(&t, &OpenOptions::default(), &mut FakeClock::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("scsi2logical"), "{err}");

    // Nor can it be checked.
    let t = tape(100, 90, Quirk::RealDrive);
    {
        let mut t = t.lock().unwrap();
        t.root = false;
        t.sysfs = false;
    }
    assert!(open_with(&t, &OpenOptions::default(), &mut FakeClock::default()).is_err());
}

#[test]
fn unload_and_load() {
    let t = tape(100, 90, Quirk::RealDrive);
    let mut d = open(&t);
    d.rewind().unwrap();
    d.write_block(b"data").unwrap();
    d.write_filemarks(1).unwrap();
    d.unload().unwrap();
    let s = d.status().unwrap();
    assert!(s.door_open && !s.online);
    assert_eq!(s.position, None);
    assert!(matches!(d.read_block(&mut [0; 8]), Err(TapeError::NoTape)));

    t.lock().unwrap().loaded = true;
    t.lock().unwrap().block_size = 1024;
    d.load().unwrap();
    let s = d.status().unwrap();
    assert!(s.online && s.bot);
    assert_eq!((s.position, s.block_size), (Some(0), 0));
    assert_eq!(read(&mut d), Read::Data(4));
}

#[test]
fn fixed_block_mode_is_left_alone_when_asked() {
    let t = tape(100, 90, Quirk::RealDrive);
    let options = OpenOptions {
        variable_blocks: false,
        ..OpenOptions::default()
    };
    let mut d = open_with(&t, &options, &mut FakeClock::default()).unwrap();
    assert_eq!(d.status().unwrap().block_size, 512);
    d.set_block_size(0).unwrap();
    assert_eq!(d.status().unwrap().block_size, 0);
}
