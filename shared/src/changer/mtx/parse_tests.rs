//! Tests of `parse_status`: every real output in the shared fixtures (with
//! the facts SOURCES.md records about it), spacing variations, and lines
//! that must be rejected with their line number.

use super::parse_status;
use crate::changer::{
    ChangerError, ChangerStatus, DriveElement, Location, SlotElement, is_cleaning,
};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/device-output/"
);

fn fixture(name: &str) -> String {
    let path = format!("{FIXTURES}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse_fixture(name: &str) -> ChangerStatus {
    parse_status(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (slot, barcode) of every full slot.
fn full_slots(status: &ChangerStatus) -> Vec<(u32, Option<&str>)> {
    status
        .slots
        .iter()
        .filter(|s| s.full)
        .map(|s| (s.number, s.barcode.as_deref()))
        .collect()
}

fn import_export(status: &ChangerStatus) -> Vec<u32> {
    status
        .slots
        .iter()
        .filter(|s| s.import_export)
        .map(|s| s.number)
        .collect()
}

fn numbered_from_one(status: &ChangerStatus) -> bool {
    status
        .slots
        .iter()
        .enumerate()
        .all(|(i, s)| s.number as usize == i + 1)
}

fn empty_drive(index: u32) -> DriveElement {
    DriveElement {
        index,
        full: false,
        barcode: None,
        source_slot: None,
        serial: None,
    }
}

fn parse_err(text: &str) -> (usize, String) {
    match parse_status(text) {
        Err(ChangerError::Parse { line, message }) => (line, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn tandberg_with_request_sense_noise() {
    let s = parse_fixture("mtx-status-tandberg-storageloader-request-sense.txt");
    assert_eq!(s.drives, vec![empty_drive(0)]);
    assert_eq!(s.slots.len(), 7);
    assert!(numbered_from_one(&s));
    assert!(import_export(&s).is_empty());
    // The 24 spaces of padding after each tag are gone.
    assert_eq!(
        full_slots(&s),
        vec![
            (1, Some("000711L4")),
            (2, Some("A00008L5")),
            (3, Some("A00034L5")),
            (4, Some("A00014L5")),
            (5, Some("A00036L5")),
            (6, Some("A00025L5")),
            (7, Some("000218L5")),
        ]
    );
    assert_eq!(s.free_slot(), None);
}

#[test]
fn ibm_3361_mostly_mail_slots() {
    let s = parse_fixture("mtx-status-ibm-3361-4lx-freebsd-pass2.txt");
    assert_eq!(s.drives, vec![empty_drive(0), empty_drive(1)]);
    assert_eq!(s.slots.len(), 38);
    assert!(numbered_from_one(&s));
    assert_eq!(import_export(&s), (3..=38).collect::<Vec<_>>());
    // Slot 6 is `IMPORT/EXPORT:Full ` with no tag.
    assert_eq!(
        full_slots(&s),
        vec![
            (3, Some("UN0101L3")),
            (4, Some("UN0102L3")),
            (5, Some("UN0103L3")),
            (6, None),
        ]
    );
    assert_eq!(s.free_slot(), Some(1));
    assert_eq!(s.find("UN0102L3"), Some(Location::Slot(4)));
}

#[test]
fn ibm_3361_not_ready() {
    let text = fixture("mtx-status-ibm-3361-4lx-error-not-ready.txt");
    match parse_status(&text) {
        Err(ChangerError::NotReady(reason)) => {
            assert!(
                reason.contains("READ ELEMENT STATUS Command Failed"),
                "{reason}"
            );
            assert!(reason.contains("sense key Not Ready"), "{reason}");
            assert!(reason.contains("ASC 04, ASCQ 12"), "{reason}");
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
}

#[test]
fn pve_two_drives_one_loaded() {
    let s = parse_fixture("mtx-status-pve-sch0-2drive-24slot-lto5.txt");
    assert_eq!(
        s.drives,
        vec![
            DriveElement {
                index: 0,
                full: true,
                barcode: Some("000057L5".into()),
                source_slot: Some(22),
                serial: None,
            },
            empty_drive(1),
        ]
    );
    assert_eq!(s.slots.len(), 24);
    assert!(numbered_from_one(&s));
    assert_eq!(import_export(&s), vec![24]);
    assert!(!s.slots[23].full);
    assert_eq!(
        full_slots(&s),
        vec![
            (13, Some("000052L5")),
            (15, Some("000055L5")),
            (16, Some("000054L5")),
            (17, Some("000051L5")),
            (20, Some("000053L5")),
            (21, Some("000050L5")),
        ]
    );
    // The tape's home slot is empty while it is in the drive.
    assert!(!s.slots[21].full);
    assert_eq!(s.find("000057L5"), Some(Location::Drive(0)));
    assert_eq!(s.free_slot(), Some(1));
}

#[test]
fn mhvtl_header_without_indent() {
    let s = parse_fixture("mtx-status-mhvtl-stk-vlstk-cta-docs.txt");
    assert_eq!(s.drives, vec![empty_drive(0), empty_drive(1)]);
    assert_eq!(s.slots.len(), 9);
    assert_eq!(import_export(&s), vec![9]);
    let tags: Vec<String> = (1..=5).map(|n| format!("V3100{n}TA")).collect();
    let expected: Vec<(u32, Option<&str>)> = (1..=5)
        .zip(&tags)
        .map(|(n, tag)| (n, Some(tag.as_str())))
        .collect();
    assert_eq!(full_slots(&s), expected);
}

#[test]
fn proxmox_cleaning_cartridges_and_four_mail_slots() {
    let s = parse_fixture("mtx-status-proxmox-backup-test-4ie-cleaning.txt");
    assert_eq!(s.drives, vec![empty_drive(0), empty_drive(1)]);
    assert_eq!(s.slots.len(), 24);
    assert_eq!(import_export(&s), vec![21, 22, 23, 24]);
    assert!(s.slots[20..].iter().all(|slot| !slot.full));
    assert_eq!(
        full_slots(&s),
        vec![
            (1, Some("CLN002CU")),
            (2, Some("test22L1")),
            (3, Some("test23L1")),
            (4, Some("CLN001CU")),
            (5, Some("test1")),
        ]
    );
    let cleaning: Vec<u32> = s
        .slots
        .iter()
        .filter(|slot| slot.barcode.as_deref().is_some_and(is_cleaning))
        .map(|slot| slot.number)
        .collect();
    assert_eq!(cleaning, vec![1, 4]);
    assert_eq!(s.find("CLN001CU"), Some(Location::Slot(4)));
    assert_eq!(s.free_slot(), Some(6));
}

#[test]
fn quantum_superloader_loaded_from_slot_6() {
    let s = parse_fixture("mtx-status-quantum-superloader3-uhdl.txt");
    assert_eq!(
        s.drives,
        vec![DriveElement {
            index: 0,
            full: true,
            barcode: Some("NDD311L3".into()),
            source_slot: Some(6),
            serial: None,
        }]
    );
    assert_eq!(s.slots.len(), 8);
    assert!(import_export(&s).is_empty());
    assert_eq!(full_slots(&s), vec![(8, Some("NDD312L3"))]);
}

#[test]
fn partial_output_is_incomplete() {
    let (line, message) = parse_err(&fixture("mtx-status-mhvtl-stk-l700-PARTIAL.txt"));
    assert_eq!(line, 1, "the header line");
    assert!(message.contains("incomplete"), "{message}");
    assert!(message.contains("41 slots"), "{message}");
    assert!(message.contains("4 drives and 1 slot "), "{message}");
}

/// No fixture is left out: a new `mtx-status-*` file needs a test above.
#[test]
fn every_mtx_fixture_is_tested() {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mtx-status-"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "mtx-status-ibm-3361-4lx-error-not-ready.txt",
            "mtx-status-ibm-3361-4lx-freebsd-pass2.txt",
            "mtx-status-mhvtl-stk-l700-PARTIAL.txt",
            "mtx-status-mhvtl-stk-vlstk-cta-docs.txt",
            "mtx-status-proxmox-backup-test-4ie-cleaning.txt",
            "mtx-status-pve-sch0-2drive-24slot-lto5.txt",
            "mtx-status-quantum-superloader3-uhdl.txt",
            "mtx-status-tandberg-storageloader-request-sense.txt",
        ]
    );
}

// ---- spacing and form variations ----

const PVE: &str = "mtx-status-pve-sch0-2drive-24slot-lto5.txt";

#[test]
fn crlf_tabs_and_trailing_spaces_change_nothing() {
    let text = fixture(PVE);
    let expected = parse_status(&text).unwrap();
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(parse_status(&crlf).unwrap(), expected);
    let tabs = text
        .replace("      Storage", "\tStorage")
        .replace(' ', " \t ");
    assert_eq!(parse_status(&tabs).unwrap(), expected);
    let trailing = text.replace('\n', "   \n");
    assert_eq!(parse_status(&trailing).unwrap(), expected);
    let no_final_newline = text.trim_end();
    assert_eq!(parse_status(no_final_newline).unwrap(), expected);
    let blank_lines = text.replace('\n', "\n\n");
    assert_eq!(parse_status(&blank_lines).unwrap(), expected);
}

#[test]
fn header_indent_of_zero_one_or_two_spaces() {
    let text = fixture(PVE);
    let body = text.trim_start();
    let expected = parse_status(&text).unwrap();
    for indent in ["", " ", "  ", "\t"] {
        assert_eq!(parse_status(&format!("{indent}{body}")).unwrap(), expected);
    }
}

#[test]
fn missing_header_is_accepted_without_count_checks() {
    let text = fixture(PVE);
    let (_, body) = text.split_once('\n').unwrap();
    assert_eq!(parse_status(body).unwrap(), parse_status(&text).unwrap());
}

#[test]
fn unknown_source_alternate_tags_and_padding() {
    let text = "\
  Storage Changer /dev/disk/by-path/pci-0000:00:1f.2-scsi-0:0:3:0:2 Drives, 4 Slots ( 1 Import/Export )
Data Transfer Element 0:Full (Unknown Storage Element Loaded):VolumeTag = E01001L4                            
Data Transfer Element 1:Full (Storage Element 2 Loaded):VolumeTag = E01002L4:AlternateVolumeTag = ALT1    
      Storage Element 1:Full :VolumeTag=A00001L6                        :AlternateVolumeTag=ALT2
      Storage Element 2:Empty
      Storage Element 3:Full :VolumeTag=                                    
      Storage Element 4 IMPORT/EXPORT:Full
";
    let s = parse_status(text).unwrap();
    assert_eq!(
        s.drives,
        vec![
            DriveElement {
                index: 0,
                full: true,
                barcode: Some("E01001L4".into()),
                source_slot: None,
                serial: None,
            },
            DriveElement {
                index: 1,
                full: true,
                barcode: Some("E01002L4".into()),
                source_slot: Some(2),
                serial: None,
            },
        ]
    );
    assert_eq!(
        s.slots,
        vec![
            slot(1, Some("A00001L6"), false),
            SlotElement {
                number: 2,
                full: false,
                barcode: None,
                import_export: false,
            },
            // A tag of only padding is no tag.
            slot(3, None, false),
            // `IMPORT/EXPORT:Full` without mtx's trailing space.
            slot(4, None, true),
        ]
    );
}

fn slot(number: u32, barcode: Option<&str>, import_export: bool) -> SlotElement {
    SlotElement {
        number,
        full: true,
        barcode: barcode.map(String::from),
        import_export,
    }
}

#[test]
fn odd_but_readable_spacing() {
    let text = "Storage  Changer\t/dev/sg5:1 Drives,8 Slots (0 Import/Export)\n\
                Data Transfer Element  0 :  Full ( Storage Element 6 Loaded ) : VolumeTag=NDD311L3\n\
                Storage Element 1 : Full : VolumeTag = NDD301L3\n\
                Storage Element 2:empty\n\
                STORAGE ELEMENT 3 import/export:EMPTY\n";
    // Counts do not match (8 slots announced, 3 listed), so drop the header.
    let (_, body) = text.split_once('\n').unwrap();
    let s = parse_status(body).unwrap();
    assert_eq!(s.drives[0].source_slot, Some(6));
    assert_eq!(s.drives[0].barcode.as_deref(), Some("NDD311L3"));
    assert_eq!(s.slots[0].barcode.as_deref(), Some("NDD301L3"));
    assert!(!s.slots[1].full);
    assert!(s.slots[2].import_export && !s.slots[2].full);
    // The header with odd spacing parses, and then disagrees with the body.
    let (line, message) = parse_err(text);
    assert_eq!(line, 1);
    assert!(message.contains("incomplete"), "{message}");
}

#[test]
fn failure_with_argv0_prefix_is_not_ready() {
    let text = "mtx: Request Sense: Long Report=yes\n\
                mtx: Request Sense: Sense Key=Unit Attention\n\
                /usr/sbin/mtx: READ ELEMENT STATUS Command Failed\n";
    match parse_status(text) {
        Err(ChangerError::NotReady(reason)) => {
            assert!(reason.contains("Command Failed"), "{reason}");
            assert!(reason.contains("Unit Attention"), "{reason}");
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
}

// ---- rejected input ----

#[test]
fn garbage_line_is_reported_with_its_number() {
    let mut lines: Vec<String> = fixture(PVE).lines().map(String::from).collect();
    lines.insert(3, "hello world".into());
    let (line, message) = parse_err(&lines.join("\n"));
    assert_eq!(line, 4);
    assert!(message.contains("hello world"), "{message}");
}

#[test]
fn bad_element_lines() {
    let cases = [
        ("Data Transfer Element x:Empty", "not an element number"),
        ("Data Transfer Element 0:Half", "unknown element state"),
        (
            "Data Transfer Element 0:Full (Storage Element Loaded)",
            "unknown element state",
        ),
        (
            "Data Transfer Element 0:Full (Storage Element 0 Loaded)",
            "numbered from 1",
        ),
        (
            "      Storage Element 1:Full (Storage Element 1 Loaded)",
            "unknown element state",
        ),
        ("      Storage Element 1:Ful", "unknown element state"),
        ("      Storage Element 0:Empty", "numbered from 1"),
        ("      Storage Element 1 MAIL:Empty", "unrecognised line"),
        ("      Storage Element 1:Full :Barcode=X", "unknown field"),
        (
            "      Storage Element 1:Full :VolumeTag=A:VolumeTag=B",
            "twice",
        ),
        ("Transport Element 0:Empty", "unrecognised line"),
    ];
    for (bad, expect) in cases {
        let text = format!("Data Transfer Element 1:Empty\n{bad}\n");
        let (line, message) = parse_err(&text);
        assert_eq!(line, 2, "{bad}");
        assert!(message.contains(expect), "{bad}: {message}");
    }
}

#[test]
fn inconsistent_headers_and_duplicates() {
    let header = "  Storage Changer /dev/sg5:1 Drives, 2 Slots ( 0 Import/Export )";
    let cases = [
        (
            format!("{header}\nData Transfer Element 0:Empty\nData Transfer Element 0:Empty"),
            3,
            "listed twice",
        ),
        (
            format!("{header}\nData Transfer Element 1:Empty"),
            2,
            "announces 1 drive, so there is no drive 1",
        ),
        (
            format!("{header}\n      Storage Element 3:Empty"),
            2,
            "announces 2 slots, so there is no slot 3",
        ),
        (format!("{header}\n{header}"), 2, "second"),
        (
            format!("Data Transfer Element 0:Empty\n{header}"),
            2,
            "after element lines",
        ),
        (
            format!(
                "{header}\nData Transfer Element 0:Empty\n      Storage Element 1:Empty\n      \
                 Storage Element 2 IMPORT/EXPORT:Empty"
            ),
            1,
            "inconsistent",
        ),
        (
            "  Storage Changer /dev/sg5:one Drive, 2 Slots".to_string(),
            1,
            "cannot read the counts",
        ),
        (String::new(), 1, "not `mtx status` output"),
        (
            "mtx: Request Sense: Sense Key=Illegal Request\n".to_string(),
            1,
            "Illegal Request",
        ),
    ];
    for (text, want_line, expect) in cases {
        let (line, message) = parse_err(&text);
        assert_eq!(line, want_line, "{text}: {message}");
        assert!(message.contains(expect), "{text}: {message}");
    }
}
