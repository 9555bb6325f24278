//! The tape session against the virtual library: two drives, four slots
//! (V00001L9 in drive 0 at the start, V00002L9 to V00004L9 in slots 2 to
//! 4), and a catalog.

use super::*;
use crate::changer::Location;
use crate::exit::Exit;

struct Lab {
    _dir: tempfile::TempDir,
    config: Config,
    catalog: std::path::PathBuf,
}

fn lab() -> Lab {
    lab_with("", "")
}

/// The lab, with `extra0` and `extra1` appended to drive 0's and drive 1's
/// `[[drive]]` (such as `element = 1\n`).
fn lab_with(extra0: &str, extra1: &str) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let text = "[paths]\nspool = \"spool\"\ncache = \"cache\"\ncatalog = \"catalog\"\nlog = \"log\"\n\n\
                [[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\nslots = 4\n\n\
                [[drive]]\nname = \"d0\"\ndevice = \"virtual:lib#0\"\nchanger = \"lib\"\ncapacity = \"64M\"\nblock_size = \"64K\"\n{extra0}\n\
                [[drive]]\nname = \"d1\"\ndevice = \"virtual:lib#1\"\nchanger = \"lib\"\ncapacity = \"64M\"\nblock_size = \"64K\"\n{extra1}";
    let text = text.replace("{extra0}", extra0).replace("{extra1}", extra1);
    let config = Config::parse(&text, &dir.path().join("pipeline.toml"), dir.path()).unwrap();
    let catalog = dir.path().join("catalog");
    std::fs::create_dir_all(catalog.join("tapes")).unwrap();
    Lab {
        _dir: dir,
        config,
        catalog,
    }
}

fn session<'c>(lab: &'c Lab, name: &str) -> Session<'c> {
    let choice = Choice::given(None, Some(name));
    Session::new(Some(&lab.config), choice, Duration::ZERO).unwrap()
}

fn status(lab: &Lab) -> ChangerStatus {
    let s = session(lab, "d0");
    let (mut changer, _, _) = s.changer().unwrap();
    changer.status().unwrap()
}

/// Give the tape in `slot` the label `name` (pool `pool`), through drive 1,
/// and put it back.
fn label_slot(lab: &Lab, slot: u32, name: &str, pool: &str) {
    let s = session(lab, "d1");
    let (mut changer, _, index) = s.changer().unwrap();
    changer.load(slot, index).unwrap();
    {
        let mut drive = s.open().unwrap();
        label::write_label(drive.as_mut(), &Label::new(name, pool, 65536).unwrap()).unwrap();
    }
    changer.unload(index, slot).unwrap();
}

/// The catalog's record of a labelled tape in state `state`; the tape is
/// put back in its slot.
fn know(lab: &Lab, name: &str, pool: &str, state: TapeState) {
    let s = session(lab, "d0");
    let (mut drive, label) = s.open_tape(name).unwrap().expect("the tape is there");
    let (_, mut tape) = appendable(drive.as_mut(), &lab.catalog, s.device()).unwrap();
    tape.pool = pool.into();
    tape.state = state;
    tape.save(&lab.catalog).unwrap();
    assert_eq!(label.label, name);
    drop(drive);
    let (mut changer, _, index) = s.changer().unwrap();
    let home = changer.status().unwrap().home_slot(index).unwrap();
    changer.unload(index, home).unwrap();
}

fn in_drive(lab: &Lab, drive: u32) -> Option<String> {
    status(lab)
        .drives
        .into_iter()
        .find(|d| d.index == drive && d.full)
        .and_then(|d| d.barcode)
}

#[test]
fn a_tape_is_loaded_by_its_label_whatever_its_barcode() {
    let lab = lab();
    // V00003L9 carries the label OTHER1: no barcode says so.
    label_slot(&lab, 3, "OTHER1", "default");
    let s = session(&lab, "d0");
    assert!(s.load("OTHER1").unwrap());
    assert_eq!(in_drive(&lab, 0).as_deref(), Some("V00003L9"));
    // The tape that was in the drive went home to slot 1.
    assert_eq!(status(&lab).find("V00001L9"), Some(Location::Slot(1)));
    let (_, label) = s.open_labelled().unwrap();
    assert_eq!(label.label, "OTHER1");
    // A label no tape has: false, and nothing lost on the way.
    assert!(!s.load("NOSUCH").unwrap());
    let st = status(&lab);
    let tapes =
        st.slots.iter().filter(|x| x.full).count() + st.drives.iter().filter(|d| d.full).count();
    assert_eq!(tapes, 4);
}

#[test]
fn the_tape_asked_for_is_opened_where_it_is() {
    let lab = lab();
    label_slot(&lab, 2, "WANTED", "default");
    let s = session(&lab, "d0");
    // The drive holds a blank tape: no stop, the library brings it.
    let (_, label) = s.open_tape("WANTED").unwrap().unwrap();
    assert_eq!(label.label, "WANTED");
    // Already there: opened as it is.
    let (_, label) = s.open_tape("WANTED").unwrap().unwrap();
    assert_eq!(label.label, "WANTED");
    assert!(s.open_tape("ELSEWHERE").unwrap().is_none());
    // Without a library, a blank tape in the drive is the error it is.
    let mut alone = session(&lab, "d1");
    alone.library = None;
    let e = match alone.open_labelled() {
        Err(e) => e,
        Ok(_) => panic!("drive 1 is empty"),
    };
    assert!(format!("{e:#}").contains("no tape"), "{e:#}");
}

#[test]
fn a_tape_in_the_other_drive_is_handed_back_unless_that_drive_is_in_use() {
    let lab = lab();
    label_slot(&lab, 4, "V00004L9", "default");
    let d1 = session(&lab, "d1");
    assert!(d1.load("V00004L9").unwrap());
    assert_eq!(in_drive(&lab, 1).as_deref(), Some("V00004L9"));
    // In use by another program: try again later (75), nothing moves.
    let d0 = session(&lab, "d0");
    {
        let _busy = d1.open().unwrap();
        let e = d0.load("V00004L9").unwrap_err();
        assert_eq!(crate::cli::exit_of(&e), Exit::TempFail, "{e:#}");
        assert_eq!(in_drive(&lab, 1).as_deref(), Some("V00004L9"));
    }
    // Idle: back to its slot, then into drive 0.
    assert!(d0.load("V00004L9").unwrap());
    assert_eq!(in_drive(&lab, 0).as_deref(), Some("V00004L9"));
    assert_eq!(in_drive(&lab, 1), None);
}

#[test]
fn the_next_writable_tape_of_a_pool_is_a_known_one_first_then_a_blank_one() {
    let lab = lab();
    // reel labels a blank tape with its barcode; OTHERP's barcode is not
    // its label.
    label_slot(&lab, 2, "V00002L9", "default");
    label_slot(&lab, 3, "OTHERP", "offsite");
    label_slot(&lab, 4, "V00004L9", "default");
    know(&lab, "V00002L9", "default", TapeState::Full);
    know(&lab, "OTHERP", "offsite", TapeState::Writable);
    know(&lab, "V00004L9", "default", TapeState::Writable);
    let s = session(&lab, "d0");
    assert_eq!(
        s.next_writable(&lab.catalog, "default", "test").unwrap(),
        "V00004L9"
    );
    // It fills up: the blank tape (V00001L9) is labelled with its barcode;
    // the full tape and the other pool's are never taken.
    know(&lab, "V00004L9", "default", TapeState::Full);
    assert_eq!(
        s.next_writable(&lab.catalog, "default", "test").unwrap(),
        "V00001L9"
    );
    let (drive, label) = s.open_labelled().unwrap();
    assert_eq!(
        (label.label.as_str(), label.pool.as_str()),
        ("V00001L9", "default")
    );
    assert_eq!(label.block_size, 64 << 10);
    drop(drive);
    know(&lab, "V00001L9", "default", TapeState::Full);
    let e = s
        .next_writable(&lab.catalog, "default", "test")
        .unwrap_err();
    assert_eq!(crate::cli::exit_of(&e), Exit::Unavailable);
    assert!(
        e.to_string().contains("no writable tape of pool default"),
        "{e:#}"
    );
}

#[test]
fn a_write_starts_on_the_next_tape_when_the_one_left_in_the_drive_is_full() {
    let lab = lab();
    label_slot(&lab, 2, "V00002L9", "default");
    know(&lab, "V00002L9", "default", TapeState::Full);
    let s = session(&lab, "d0");
    assert!(s.load("V00002L9").unwrap());
    let (_, label, tape) = s.writable(&lab.catalog).unwrap();
    assert_ne!(label.label, "V00002L9");
    assert_eq!(tape.state, TapeState::Writable);
    // An empty drive (the library's second) gets one too.
    let d1 = session(&lab, "d1");
    assert_eq!(in_drive(&lab, 1), None);
    drop(s);
    let (_, label1, _) = d1.writable(&lab.catalog).unwrap();
    assert!(label1.label != label.label && label1.label != "V00002L9");
}

#[test]
fn a_run_killed_in_the_middle_of_an_archive_is_taken_over_where_it_began() {
    let lab = lab();
    let s = session(&lab, "d0");
    let (mut drive, _, mut tape) = s.writable(&lab.catalog).unwrap();
    // Archive 1, whole; archive 2 cut off by a kill before its filemark.
    drive.write_block(&[1u8; 4096]).unwrap();
    drive.write_filemarks(1).unwrap();
    tape.files += 1;
    tape.eod = drive.position().unwrap();
    let start = tape.eod;
    tape.writing = Some(start);
    tape.save(&lab.catalog).unwrap();
    drive.write_block(&[2u8; 4096]).unwrap();
    drive.write_block(&[2u8; 4096]).unwrap();
    drop(drive);
    let (drive, _, mut tape) = s.writable(&lab.catalog).unwrap();
    assert_eq!(tape.eod, start);
    // Killed again before it wrote anything, after its state was saved
    // (as reel-write saves the cartridge's health at the start): the
    // unfinished archive is still on tape after `start`, and the next run
    // takes over there again (the SIGKILL storm's seed 8 found this one).
    tape.save(&lab.catalog).unwrap();
    drop(drive);
    let (mut drive, _, mut tape) = s.writable(&lab.catalog).unwrap();
    assert_eq!(tape.eod, start);
    assert_eq!(drive.position().unwrap(), start, "written over from there");
    // Once the next file begins there, the unfinished one is gone.
    tape.writing = None;
    tape.save(&lab.catalog).unwrap();
    // A tape with more on it than the catalog knows is refused.
    drive.write_block(&[3u8; 4096]).unwrap();
    drive.write_filemarks(1).unwrap();
    drop(drive);
    let e = match s.writable(&lab.catalog) {
        Err(e) => e,
        Ok(_) => panic!("the catalog's end of data is behind the tape's"),
    };
    assert_eq!(crate::cli::exit_of(&e), Exit::Unavailable, "{e:#}");
}

/// The tape in drive `n` of the library, read directly (not through a
/// session): its reel label, if any.
fn label_in(lab: &Lab, n: u32) -> Option<String> {
    let dir = lab._dir.path().join("lib");
    let mut drive = crate::vtl::open_drive(&dir, n, &crate::vtl::LibrarySpec::default()).unwrap();
    match label::read_label(&mut drive).unwrap() {
        Identity::Reel(l) => Some(l.label),
        _ => None,
    }
}

#[test]
fn a_drive_given_the_wrong_element_is_refused_rather_than_written() {
    // The two drives' elements are swapped: d0 (drive 0) claims element 1.
    let lab = lab_with("element = 1\n", "element = 0\n");
    // Drive 0 holds the blank V00001L9; drive 1 the blank V00003L9.
    {
        let (mut changer, _, _) = session(&lab, "d0").changer().unwrap();
        changer.load(3, 1).unwrap();
    }
    // The next writable tape for d0 would go into element 1 (drive 1),
    // and d0 would label the tape in drive 0 with its barcode: refused.
    let s = session(&lab, "d0");
    let e = s
        .next_writable(&lab.catalog, "default", "test")
        .unwrap_err();
    assert_eq!(crate::cli::exit_of(&e), Exit::Unavailable, "{e:#}");
    assert!(
        e.to_string().contains("lib is not drive 1 of the library"),
        "{e:#}"
    );
    assert!(e.to_string().contains("holds a tape (V00001L9)"), "{e:#}");
    assert_eq!(label_in(&lab, 0), None, "the tape in drive 0 was written");
    assert_eq!(in_drive(&lab, 0).as_deref(), Some("V00001L9"));
    // With both drives empty, the tape loaded into element 0 is not in d1
    // (drive 1): refused after the load, nothing written.
    {
        let (mut changer, _, _) = s.changer().unwrap();
        changer.unload(0, 1).unwrap();
    }
    let d1 = session(&lab, "d1");
    let Err(e) = d1.writable(&lab.catalog) else {
        panic!("d1 wrote to a tape the library did not load into it");
    };
    assert_eq!(crate::cli::exit_of(&e), Exit::Unavailable, "{e:#}");
    assert!(
        e.to_string().contains("lib#1 is not drive 0") && e.to_string().contains("has no tape"),
        "{e:#}"
    );
    assert_eq!(label_in(&lab, 0), None);
}

/// A run killed while recycling a tape (its records already moved under
/// `recycled/`, its label not yet written again) left a tape with its old
/// label and old archives that the catalog no longer knows: the next run
/// finishes the recycling and appends after a new label.
#[test]
fn a_tape_whose_recycling_was_cut_short_is_labelled_again_and_written() {
    let lab = lab();
    let s = session(&lab, "d0");
    let (mut drive, old, mut tape) = s.writable(&lab.catalog).unwrap();
    drive.write_block(&[1u8; 4096]).unwrap();
    drive.write_filemarks(1).unwrap();
    tape.files += 1;
    tape.eod = drive.position().unwrap();
    tape.state = TapeState::Full;
    tape.save(&lab.catalog).unwrap();
    crate::catalog::retention::retire_records(&lab.catalog, &old.label, &old.uuid).unwrap();
    drop(drive);
    let (mut drive, new, tape) = s.writable(&lab.catalog).unwrap();
    assert_eq!(new.label, old.label);
    assert_ne!(new.uuid, old.uuid);
    assert_eq!((tape.files, tape.state), (1, TapeState::Writable));
    assert_eq!(drive.position().unwrap(), tape.eod);
    // The old archive is gone: the end of data follows the label.
    let mut buf = vec![0u8; 1 << 20];
    assert!(matches!(
        drive.read_block(&mut buf).unwrap(),
        crate::tape::Read::EndOfData
    ));
    assert!(
        lab.catalog
            .join(format!("recycled/{}.{}.json", old.label, old.uuid))
            .exists()
    );
}
