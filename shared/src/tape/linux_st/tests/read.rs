//! Reading back, logical block addresses and spacing.

use super::*;

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

/// Seen on the kernel's scsi_debug tape (block limits 512 B to 1 MiB): st
/// refuses a read larger than the drive's largest block with EINVAL before
/// the tape moves, and every reader of reel reads with a 16 MiB buffer.
/// LTO drives allow at most 8 MiB or 16 MiB - 1, so the same happens there.
#[test]
fn a_read_larger_than_the_drives_largest_block_is_made_smaller() {
    let t = tape(100, 90, Quirk::ScsiDebug);
    t.lock().unwrap().block_limits = (512, 1 << 20);
    let mut d = open(&t);
    d.rewind().unwrap();
    d.write_block(&[1; 4096]).unwrap();
    d.write_block(&[2; 1 << 20]).unwrap();
    d.write_filemarks(1).unwrap();
    d.rewind().unwrap();
    let mut buf = vec![0; crate::tape::stream::MAX_BLOCK];
    t.lock().unwrap().calls.clear();
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(4096));
    // 16 MiB, 16 MiB - 1, 8 MiB, 4 MiB, 2 MiB refused; 1 MiB read.
    assert_eq!(t.lock().unwrap().count("read"), 6);
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(1 << 20));
    assert_eq!(buf[(1 << 20) - 1], 2);
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Filemark);
    assert_eq!(t.lock().unwrap().count("read"), 8, "the limit is kept");
    assert_eq!(d.position().unwrap(), 3);
    // A buffer below the drive's smallest block is still refused as st does.
    d.rewind().unwrap();
    let e = d.read_block(&mut [0; 100]).unwrap_err();
    assert!(
        matches!(&e, TapeError::Io { source, .. } if source.raw_os_error() == Some(libc::EINVAL)),
        "{e:?}"
    );
    assert_eq!(d.position().unwrap(), 0, "nothing moved");
}
