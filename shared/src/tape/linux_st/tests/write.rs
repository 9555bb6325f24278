//! Writing: the fast path, and the early warning under both device quirks.

use super::*;

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
