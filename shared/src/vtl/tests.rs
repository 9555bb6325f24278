//! Every drive and changer operation against the virtual library.

use super::*;
use crate::changer::Changer;
use crate::tape::{Drive, Read, TapeError, Written};
use crate::units::{Interval, Size};

fn library(
    capacity: u64,
    early_warning: u64,
) -> (tempfile::TempDir, std::path::PathBuf, LibrarySpec) {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let spec = LibrarySpec {
        drives: 2,
        slots: 4,
        mail_slots: 1,
        capacity: Size(capacity),
        early_warning: Size(early_warning),
    };
    (dir, lib, spec)
}

fn block(tag: u32, size: usize) -> Vec<u8> {
    let mut b = vec![(tag % 251) as u8; size];
    b[..4].copy_from_slice(&tag.to_be_bytes());
    b
}

/// Read the next block, expecting data; returns its tag.
fn read_tag(d: &mut dyn Drive) -> u32 {
    let mut buf = vec![0; 1 << 20];
    match d.read_block(&mut buf).unwrap() {
        Read::Data(n) => {
            assert!(n >= 4);
            u32::from_be_bytes(buf[..4].try_into().unwrap())
        }
        other => panic!("expected data, got {other:?}"),
    }
}

fn read(d: &mut dyn Drive) -> Read {
    let mut buf = vec![0; 1 << 20];
    d.read_block(&mut buf).unwrap()
}

/// Three files of five blocks, each closed by a filemark.
fn three_files(d: &mut dyn Drive) {
    for f in 0..3 {
        for b in 0..5 {
            assert_eq!(
                d.write_block(&block(f * 10 + b, 1000)).unwrap(),
                Written::Ok
            );
        }
        d.write_filemarks(1).unwrap();
    }
}

#[test]
fn a_new_library_has_a_blank_tape_loaded() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    let s = d.status().unwrap();
    assert!(s.online && s.bot && s.eod && !s.door_open, "{s:?}");
    assert_eq!(s.volume.as_deref(), Some("V00001L9"));
    assert_eq!(read(&mut d), Read::EndOfData);
    assert_eq!(d.position().unwrap(), 0);
    let mut c = open_changer(&lib, &spec).unwrap();
    let st = c.status().unwrap();
    assert_eq!(st.drives.len(), 2);
    assert_eq!(st.drives[0].barcode.as_deref(), Some("V00001L9"));
    assert_eq!(st.drives[0].source_slot, Some(1));
    assert!(!st.drives[1].full);
    assert_eq!(st.slots.len(), 5);
    assert!(
        !st.slots[0].full && st.slots[1].full && st.slots[4].import_export && !st.slots[4].full
    );
}

#[test]
fn positions_count_filemarks() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    three_files(&mut d);
    assert_eq!(d.position().unwrap(), 18);
    assert!(d.status().unwrap().eod);
    d.rewind().unwrap();
    d.forward_filemarks(1).unwrap();
    assert_eq!(d.position().unwrap(), 6);
    let s = d.status().unwrap();
    assert_eq!((s.file, s.block, s.filemark), (Some(1), Some(0), true));
    assert_eq!(read_tag(&mut d), 10);
    d.end_of_data().unwrap();
    assert_eq!(d.position().unwrap(), 18);
    d.back_filemarks(1).unwrap();
    assert_eq!(d.position().unwrap(), 17, "before the last filemark");
    assert_eq!(read(&mut d), Read::Filemark);
    assert_eq!(read(&mut d), Read::EndOfData);
    d.seek(13).unwrap();
    assert_eq!(read_tag(&mut d), 21);
    assert_eq!(d.position().unwrap(), 14);
    assert!(d.seek(19).is_err(), "beyond the end of data");
    assert!(
        d.forward_filemarks(1).is_err(),
        "no filemark after end of data"
    );
    d.rewind().unwrap();
    assert!(d.back_filemarks(1).is_err(), "nothing before BOT");
}

#[test]
fn reading_sees_data_filemarks_and_end_of_data() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    three_files(&mut d);
    d.rewind().unwrap();
    let mut seen = Vec::new();
    loop {
        match read(&mut d) {
            Read::Data(_) => {
                let here = d.position().unwrap();
                d.seek(here - 1).unwrap();
                seen.push(format!("{}", read_tag(&mut d)));
            }
            Read::Filemark => seen.push("FM".into()),
            Read::EndOfData => break,
        }
    }
    assert_eq!(
        seen.join(" "),
        "0 1 2 3 4 FM 10 11 12 13 14 FM 20 21 22 23 24 FM"
    );
    assert_eq!(read(&mut d), Read::EndOfData, "and stays there");
}

#[test]
fn writing_in_the_middle_discards_what_follows() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    three_files(&mut d);
    d.rewind().unwrap();
    d.forward_filemarks(1).unwrap();
    d.write_block(&block(99, 500)).unwrap();
    assert!(d.status().unwrap().eod);
    d.rewind().unwrap();
    d.forward_filemarks(1).unwrap();
    assert_eq!(read_tag(&mut d), 99);
    assert_eq!(read(&mut d), Read::EndOfData);
    assert!(
        !lib.join("tapes/V00001L9/000002").exists(),
        "later tape files are gone"
    );
}

#[test]
fn early_warning_then_trailer_then_no_room() {
    // 100 blocks of 1000 bytes fit; the warning comes 10 blocks before.
    let (_t, lib, spec) = library(100_000, 10_000);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    let mut ok = 0;
    let mut warned = 0;
    let mut tag = 0;
    loop {
        match d.write_block(&block(tag, 1000)) {
            Ok(Written::Ok) => ok += 1,
            Ok(Written::EarlyWarning) => warned += 1,
            Err(TapeError::EndOfMedium) => break,
            Err(e) => panic!("{e}"),
        }
        tag += 1;
    }
    assert_eq!((ok, warned), (90, 10));
    assert!(d.status().unwrap().eot);
    // Nothing of the refused write is on tape: reading back gives 100 blocks.
    d.rewind().unwrap();
    for t in 0..100 {
        assert_eq!(read_tag(&mut d), t);
    }
    assert_eq!(read(&mut d), Read::EndOfData);
}

/// A page-aligned block (the ring's are), so that the virtual drive's
/// vectored write goes with `O_DIRECT` where the file system allows.
fn aligned_block(tag: u32, size: usize) -> memmap2::MmapMut {
    let mut m = memmap2::MmapMut::map_anon(size).unwrap();
    m.copy_from_slice(&block(tag, size));
    m
}

#[test]
fn blocks_written_together_are_the_blocks_written_one_by_one() {
    // 40 blocks of 8 KiB fit; the warning comes 4 blocks before the end.
    let (_t, lib, spec) = library(40 * 8192, 4 * 8192);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    assert!(d.blocks_per_write() > 1);
    let blocks: Vec<_> = (0..40).map(|t| aligned_block(t, 8192)).collect();
    let of =
        |r: std::ops::Range<usize>| -> Vec<&[u8]> { blocks[r].iter().map(|b| &b[..]).collect() };
    assert_eq!(d.write_blocks(&of(0..16)).unwrap(), (16, Written::Ok));
    assert_eq!(d.position().unwrap(), 16);
    // Past the warning within a batch: all of it written, the warning told.
    assert_eq!(
        d.write_blocks(&of(16..38)).unwrap(),
        (22, Written::EarlyWarning)
    );
    // A batch with no room for all of it is written block by block, up to
    // the end of the medium and not past it.
    assert_eq!(
        d.write_blocks(&of(38..40)).unwrap(),
        (2, Written::EarlyWarning)
    );
    assert!(matches!(
        d.write_blocks(&of(0..2)),
        Err(TapeError::EndOfMedium)
    ));
    d.write_filemarks(1).unwrap();
    drop(d);
    // The tape file is the blocks in order, and reads back block by block.
    let f0 = std::fs::read(lib.join("tapes/V00001L9/000000")).unwrap();
    assert_eq!(
        f0,
        blocks.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>()
    );
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    d.rewind().unwrap();
    for t in 0..40 {
        assert_eq!(read_tag(&mut d), t);
    }
    assert_eq!(read(&mut d), Read::Filemark);
}

/// Pages of `path` in the page cache (`mincore` over a map of it).
fn cached_pages(path: &std::path::Path) -> usize {
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: a read-only map of a file this test wrote and nobody changes
    // while it is mapped; only its residency is looked at.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let mut pages = vec![0u8; map.len().div_ceil(4096)];
    // SAFETY: `pages` has a byte for every page of the mapping.
    let r = unsafe { libc::mincore(map.as_ptr() as *mut _, map.len(), pages.as_mut_ptr()) };
    assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
    pages.iter().filter(|&&p| p & 1 == 1).count()
}

#[test]
fn blocks_read_into_a_page_aligned_buffer_bypass_the_page_cache() {
    let (t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    let blocks: Vec<_> = (0..8).map(|t| aligned_block(t, 16384)).collect();
    let refs: Vec<&[u8]> = blocks.iter().map(|b| &b[..]).collect();
    assert_eq!(d.write_blocks(&refs).unwrap(), (8, Written::Ok));
    // A short last block, as an archive's may be: not whole pages.
    d.write_block(&block(8, 5000)).unwrap();
    d.write_filemarks(1).unwrap();
    drop(d);
    let file = lib.join("tapes/V00001L9/000000");
    let _ = nix::fcntl::posix_fadvise(
        std::fs::File::open(&file).unwrap(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
    let tmpfs = nix::sys::statfs::statfs(t.path())
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
    let before = cached_pages(&file);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    d.rewind().unwrap();
    let mut buf = crate::fsutil::PageBuf::new(1 << 20);
    for t in 0..9u32 {
        let Read::Data(n) = d.read_block(&mut buf).unwrap() else {
            panic!("block {t} is missing");
        };
        let want = if t < 8 {
            blocks[t as usize].to_vec()
        } else {
            block(8, 5000)
        };
        assert_eq!(&buf[..n], &want[..], "block {t}");
    }
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Filemark);
    // The direct reads left the page cache as it was (on tmpfs every
    // page is in it anyway).
    if !tmpfs {
        assert_eq!(cached_pages(&file), before, "pages cached by the reads");
    }
    // Into an ordinary buffer the same blocks read back too, through the
    // page cache.
    d.rewind().unwrap();
    for t in 0..8 {
        assert_eq!(read_tag(&mut d), t);
    }
}

#[test]
fn a_block_larger_than_the_buffer_is_an_error_and_skipped() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    d.write_block(&block(1, 8192)).unwrap();
    d.write_block(&block(2, 100)).unwrap();
    d.rewind().unwrap();
    let mut small = vec![0; 4096];
    assert!(matches!(
        d.read_block(&mut small),
        Err(TapeError::BlockTooLarge { buffer: 4096 })
    ));
    assert_eq!(d.position().unwrap(), 1, "the big block was skipped");
    assert_eq!(read_tag(&mut d), 2);
}

#[test]
fn injected_faults() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    for t in 0..4 {
        d.write_block(&block(t, 1000)).unwrap();
    }
    let image = d.image_mut().unwrap();
    image.meta.faults.read_errors = vec![1];
    image.meta.faults.flip = vec![Flip {
        block: 2,
        offset: 0,
    }];
    image.meta.faults.write_error_at = Some(4);
    assert!(matches!(
        d.write_block(&block(4, 1000)),
        Err(TapeError::Io { .. })
    ));
    d.rewind().unwrap();
    assert_eq!(read_tag(&mut d), 0);
    assert!(matches!(
        d.read_block(&mut [0; 2000]),
        Err(TapeError::Io { .. })
    ));
    assert_eq!(read_tag(&mut d), 2 ^ 0xff00_0000, "first byte flipped");
    assert_eq!(read_tag(&mut d), 3);
}

#[test]
fn write_protected_tapes_refuse_writes() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    d.image_mut().unwrap().meta.write_protected = true;
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
fn a_calibrating_tape_is_not_ready() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    d.image_mut().unwrap().meta.faults.calibrate = Some(Interval::from_secs(3600));
    d.load().unwrap();
    assert!(!d.status().unwrap().online);
    assert!(matches!(d.write_block(&[1; 10]), Err(TapeError::NotReady)));
    assert!(matches!(d.rewind(), Err(TapeError::NotReady)));
}

#[test]
fn one_user_per_drive() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let d = open_drive(&lib, 0, &spec).unwrap();
    assert!(matches!(
        open_drive(&lib, 0, &spec),
        Err(TapeError::Busy(_))
    ));
    let mut c = open_changer(&lib, &spec).unwrap();
    assert!(
        c.unload(0, 1).is_err(),
        "the changer does not take a tape from a drive in use"
    );
    drop(d);
    assert!(open_drive(&lib, 0, &spec).is_ok());
}

#[test]
fn unload_and_load_through_the_drive() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    d.write_block(&block(7, 100)).unwrap();
    d.unload().unwrap();
    assert!(d.status().unwrap().door_open);
    assert!(matches!(
        d.read_block(&mut [0; 100]),
        Err(TapeError::NoTape)
    ));
    drop(d);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    assert!(d.status().unwrap().door_open, "the ejected state is kept");
    d.load().unwrap();
    assert_eq!(read_tag(&mut d), 7);
}

#[test]
fn changer_moves_tapes_and_refuses_impossible_moves() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut c = open_changer(&lib, &spec).unwrap();
    c.unload(0, 1).unwrap();
    assert!(c.unload(0, 1).is_err(), "drive 0 is empty now");
    c.load(3, 1).unwrap();
    assert!(c.load(2, 1).is_err(), "drive 1 is full");
    assert!(c.load(1, 0).is_ok());
    assert!(c.transfer(2, 5).is_ok(), "to the mail slot");
    assert!(c.transfer(2, 4).is_err(), "slot 2 is empty now");
    assert!(c.load(9, 0).is_err(), "no slot 9");
    let st = c.status().unwrap();
    assert_eq!(st.drives[1].barcode.as_deref(), Some("V00003L9"));
    assert_eq!(st.drives[1].source_slot, Some(3));
    assert_eq!(st.slots[4].barcode.as_deref(), Some("V00002L9"));
    let mut d1 = open_drive(&lib, 1, &spec).unwrap();
    assert_eq!(d1.status().unwrap().volume.as_deref(), Some("V00003L9"));
}

#[test]
fn tape_files_are_plain_files() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    three_files(&mut d);
    drop(d);
    let f1 = std::fs::read(lib.join("tapes/V00001L9/000001")).unwrap();
    assert_eq!(f1.len(), 5000);
    assert_eq!(&f1[..4], &10u32.to_be_bytes());
}

#[test]
fn the_position_survives_closing_the_drive_like_a_non_rewinding_device() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    three_files(&mut d);
    d.seek(7).unwrap();
    drop(d);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    assert_eq!(d.position().unwrap(), 7);
    assert_eq!(read_tag(&mut d), 11);
}

/// A small, slow drive for pacing tests: 20 MB/s native, 10 MB/s at the
/// slowest step, a 1 MiB buffer, 50 ms to reposition.
fn small_speed_model() -> crate::tape::speed::SpeedParams {
    let mut p = crate::tape::speed::preset("lto9").unwrap();
    p.native = "20MB/s".parse().unwrap();
    p.min = "10MB/s".parse().unwrap();
    p.steps = 3;
    p.buffer = Size(1 << 20);
    p.reposition = "50ms".parse().unwrap();
    p
}

/// A library whose tape in drive 0 has [`small_speed_model`].
fn paced_library() -> (tempfile::TempDir, std::path::PathBuf, LibrarySpec) {
    let (t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    d.image_mut().unwrap().meta.speed = Some(small_speed_model());
    d.image_mut().unwrap().save().unwrap();
    drop(d);
    (t, lib, spec)
}

#[test]
fn a_tape_with_a_speed_model_paces_writes_and_counts_backhitches() {
    let (_t, lib, spec) = paced_library();

    // A host faster than the drive: it streams, never stops.
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    for t in 0..16 {
        d.write_block(&block(t, 256 * 1024)).unwrap();
    }
    d.write_filemarks(1).unwrap();
    let fast = d.speed_stats().unwrap();
    assert_eq!(fast.written, 4 << 20, "{fast:?}");
    assert_eq!(fast.backhitches, 0);
    drop(d);

    // A host slower than the slowest step: the buffer runs dry, the drive
    // stops and repositions. Delays only slow the host further, so this
    // holds on any machine.
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    for t in 0..12 {
        d.write_block(&block(t, 64 * 1024)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    d.write_filemarks(1).unwrap();
    let slow = d.speed_stats().unwrap();
    assert!(slow.backhitches >= 1, "{slow:?}");
}

#[test]
fn a_tape_with_a_speed_model_reads_no_faster_than_its_top_speed() {
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    for t in 0..16 {
        d.write_block(&block(t, 256 * 1024)).unwrap();
    }
    d.write_filemarks(1).unwrap();
    d.image_mut().unwrap().meta.speed = Some(small_speed_model());
    d.image_mut().unwrap().save().unwrap();
    drop(d);

    let mut d = open_drive(&lib, 0, &spec).unwrap();
    d.rewind().unwrap();
    let start = std::time::Instant::now();
    for t in 0..16 {
        assert_eq!(read_tag(&mut d), t);
    }
    // 4 MiB at 20 MB/s: sleeping only adds to it, so this holds on any
    // machine.
    let took = start.elapsed().as_secs_f64();
    assert!(took >= (4 << 20) as f64 / 20e6, "{took} s");
    assert_eq!(d.read_block(&mut [0; 1 << 20]).unwrap(), Read::Filemark);
}

/// A key file in `dir` holding `byte` 32 times.
fn drive_key(dir: &std::path::Path, byte: u8) -> crate::scsi::encryption::DriveKey {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join(format!("key-{byte:02x}"));
    std::fs::write(&f, format!("{byte:02x}").repeat(32)).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    crate::scsi::encryption::DriveKey::load(&f).unwrap()
}

#[test]
fn with_a_key_blocks_are_stored_sealed_and_read_back_only_with_it() {
    let (t, lib, spec) = library(1 << 30, 1 << 20);
    let (k1, k2) = (drive_key(t.path(), 0x1f), drive_key(t.path(), 0xa2));
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    // The label in the clear, then data under key 1.
    d.write_block(b"a clear label block").unwrap();
    d.write_filemarks(1).unwrap();
    d.set_encryption(Some(&k1)).unwrap();
    let status = d.encryption().unwrap().unwrap();
    assert!(status.encrypting && status.key.as_deref() == Some(k1.fingerprint.as_str()));
    let secret = b"ustar member data that must not be on tape as it is".repeat(100);
    d.write_block(&secret).unwrap();
    d.write_filemarks(1).unwrap();
    let stored = std::fs::read(d.image_mut().unwrap().file_path(1)).unwrap();
    assert!(!stored.windows(20).any(|w| w == &secret[..20]));
    assert!(stored.starts_with(b"REELAES1"));
    // Key 1 reads both files (plaintext passes in mixed mode).
    d.rewind().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(19));
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Filemark);
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(secret.len()));
    assert_eq!(buf[..secret.len()], secret[..]);
    // Key 2 does not.
    d.set_encryption(Some(&k2)).unwrap();
    d.seek(2).unwrap();
    let e = d.read_block(&mut buf).unwrap_err().to_string();
    assert!(
        e.contains("74/03") && e.contains("incorrect data encryption key"),
        "{e}"
    );
    // Cleared: blocks come as stored.
    d.set_encryption(None).unwrap();
    assert_eq!(d.encryption().unwrap(), None);
    d.seek(2).unwrap();
    assert_eq!(d.read_block(&mut buf).unwrap(), Read::Data(stored.len()));
}

/// Five blocks of 1000 bytes tagged `f * 10 + b`, then a filemark that
/// does not wait.
fn file_behind(d: &mut dyn Drive, f: u32) {
    for b in 0..5 {
        d.write_block(&block(f * 10 + b, 1000)).unwrap();
    }
    d.write_filemarks_immediate(1).unwrap();
}

#[test]
fn filemarks_that_do_not_wait_are_committed_only_by_a_flush() {
    // The process dies (no drop, no flush) with two files behind filemarks
    // that did not wait: the drive's buffer is lost with it, the tape ends
    // where the last waiting filemark left it.
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    three_files(&mut d);
    file_behind(&mut d, 3);
    file_behind(&mut d, 4);
    assert_eq!(d.position().unwrap(), 3 * 6 + 2 * 6);
    std::mem::forget(d);
    let image = Image::open(&lib.join("tapes/V00001L9")).unwrap();
    assert_eq!(image.meta.files.len(), 4, "{:?}", image.meta.files);
    assert_eq!(image.meta.files[3].blocks(), 0);
    assert!(!image.meta.files[3].filemark);
    assert_eq!(std::fs::metadata(image.file_path(3)).unwrap().len(), 0);
    assert!(!image.file_path(4).exists());

    // The same with a flush before the end: all of it is on tape.
    let (_t, lib, spec) = library(1 << 30, 1 << 20);
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    three_files(&mut d);
    file_behind(&mut d, 3);
    file_behind(&mut d, 4);
    assert_eq!(d.flush().unwrap(), Written::Ok);
    std::mem::forget(d);
    let image = Image::open(&lib.join("tapes/V00001L9")).unwrap();
    assert_eq!(image.meta.files.len(), 6, "{:?}", image.meta.files);
    for f in [3, 4] {
        assert_eq!(image.meta.files[f].blocks(), 5);
        assert!(image.meta.files[f].filemark);
    }
}

#[test]
fn a_filemark_that_does_not_wait_keeps_the_tape_streaming() {
    let (_t, lib, spec) = paced_library();

    // A host faster than the drive, three files: a waiting filemark
    // empties the buffer between them and the tape stops each time...
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    for f in 0..3 {
        for t in 0..8 {
            d.write_block(&block(f * 10 + t, 256 * 1024)).unwrap();
        }
        d.write_filemarks(1).unwrap();
    }
    let waiting = d.speed_stats().unwrap();
    assert!(waiting.backhitches >= 2, "{waiting:?}");
    drop(d);

    // ...one that does not wait leaves the buffer full: it streams on.
    let mut d = open_drive(&lib, 0, &spec).unwrap();
    for f in 0..3 {
        for t in 0..8 {
            d.write_block(&block(f * 10 + t, 256 * 1024)).unwrap();
        }
        d.write_filemarks_immediate(1).unwrap();
    }
    d.flush().unwrap();
    let immediate = d.speed_stats().unwrap();
    assert_eq!(immediate.written, 6 << 20, "{immediate:?}");
    assert_eq!(immediate.backhitches, 0, "{immediate:?}");
}
