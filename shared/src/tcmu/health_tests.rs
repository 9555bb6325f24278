//! LOG SENSE, the cartridge memory (READ and WRITE ATTRIBUTE), SPACE(16)
//! and REPORT DENSITY SUPPORT of a served drive, against a virtual
//! library; the log pages and attributes are also decoded by sg3-utils'
//! own `sg_logs` and `sg_read_attr` (their `--in` option reads a response
//! from a file), so the bytes are what real software understands.

use std::process::Command;

use super::sense::Key;
use super::ssc::{Ssc, flag};
use super::tests::{block, data_in, drive_in, good, no_data, read, sense, space, ssc, weof, write};
use crate::vtl::{LibrarySpec, VirtualDrive};

/// The tape changed: the next command gets UNIT ATTENTION once (LOG SENSE
/// and READ ATTRIBUTE included, as SPC says).
fn unit_attention(ssc: &mut Ssc<VirtualDrive>) {
    let reply = no_data(ssc, &[0; 6]);
    assert_eq!(sense(&reply).0, Key::UnitAttention);
}

fn log_sense(ssc: &mut Ssc<VirtualDrive>, page: u8) -> Vec<u8> {
    let (reply, v) = data_in(ssc, &[0x4d, 0, 0x40 | page, 0, 0, 0, 0, 0x10, 0, 0], 4096);
    good(&reply);
    assert_eq!(v[0], page);
    assert_eq!(usize::from(u16::from_be_bytes([v[2], v[3]])) + 4, v.len());
    v
}

/// The parameters of a log page: code and value.
fn params(page: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 4;
    while at < page.len() {
        let n = usize::from(page[at + 3]);
        out.push((
            u16::from_be_bytes([page[at], page[at + 1]]),
            page[at + 4..at + 4 + n].to_vec(),
        ));
        at += 4 + n;
    }
    out
}

fn counter(page: &[u8], code: u16) -> u64 {
    let (_, v) = params(page)
        .into_iter()
        .find(|(c, _)| *c == code)
        .unwrap_or_else(|| panic!("no parameter {code:#06x}"));
    v.iter().fold(0, |n, b| n << 8 | u64::from(*b))
}

/// Run an sg3-utils decoder on `bytes` (written as ASCII hex): its output.
fn decode(tool: &str, args: &[&str], bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("response.hex");
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&file, hex.join(" ") + "\n").unwrap();
    let out = Command::new(tool)
        .args(args)
        .arg(format!("--in={}", file.display()))
        .output()
        .unwrap_or_else(|e| panic!("{tool} (sg3-utils, scripts/install-deps installs it): {e}"));
    assert!(out.status.success(), "{tool}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn log_pages_are_listed_and_unknown_ones_refused() {
    let (_dir, mut ssc) = ssc();
    let v = log_sense(&mut ssc, 0x00);
    assert_eq!(&v[4..], &[0x00, 0x02, 0x03, 0x12, 0x17, 0x2e]);
    let text = decode("sg_logs", &["--pdt=1"], &v);
    for name in [
        "Write error",
        "Read error",
        "Tape alert",
        "Volume statistics",
    ] {
        assert!(text.contains(name), "{name} not in {text}");
    }
    let (reply, _) = data_in(
        &mut ssc,
        &[0x4d, 0, 0x40 | 0x31, 0, 0, 0, 0, 0x10, 0, 0],
        4096,
    );
    assert_eq!(sense(&reply).0, Key::IllegalRequest);
    let (reply, _) = data_in(
        &mut ssc,
        &[0x4d, 0, 0x40 | 0x17, 1, 0, 0, 0, 0x10, 0, 0],
        4096,
    );
    assert_eq!(sense(&reply).0, Key::IllegalRequest, "no subpages");
}

#[test]
fn a_read_error_raises_tapealert_flags_that_page_0x2e_clears_and_counts_it() {
    let (_dir, mut ssc) = ssc();
    good(&write(&mut ssc, &block(1, 4096)));
    good(&write(&mut ssc, &block(2, 4096)));
    good(&weof(&mut ssc, 1));
    ssc.drive()
        .image_mut()
        .unwrap()
        .meta
        .faults
        .read_errors
        .push(1);
    good(&no_data(&mut ssc, &[0x01, 0, 0, 0, 0, 0]));
    good(&read(&mut ssc, 4096).0);
    let (reply, _) = read(&mut ssc, 4096);
    assert_eq!(sense(&reply).0, Key::MediumError);
    assert_eq!(counter(&log_sense(&mut ssc, 0x03), 6), 1, "uncorrected");
    assert_eq!(counter(&log_sense(&mut ssc, 0x03), 5), 4096, "bytes read");
    assert_eq!(counter(&log_sense(&mut ssc, 0x02), 6), 0);
    let raised = [flag::HARD_ERROR, flag::MEDIA, flag::READ_FAILURE];
    let want: u64 = raised.iter().map(|f| 1u64 << (64 - u32::from(*f))).sum();
    // Page 0x12 shows the flags and leaves them up.
    for _ in 0..2 {
        let page = log_sense(&mut ssc, 0x12);
        assert_eq!(counter(&page, 0), want);
        let alerts = crate::scsi::tapealert::TapeAlerts::from_log_page(&page).unwrap();
        assert_eq!(alerts.0, want);
    }
    // Its header alone (what sg_logs asks for first) clears nothing.
    let (reply, head) = data_in(&mut ssc, &[0x4d, 0, 0x40 | 0x2e, 0, 0, 0, 0, 0, 4, 0], 4);
    good(&reply);
    assert_eq!(head, [0x2e, 0, 1, 0x40], "64 parameters of 5 bytes");
    let page = log_sense(&mut ssc, 0x2e);
    let up: Vec<u16> = params(&page)
        .into_iter()
        .filter(|(_, v)| v == &[1])
        .map(|(c, _)| c)
        .collect();
    assert_eq!(up, raised.map(u16::from));
    let text = decode("sg_logs", &["--pdt=1"], &page);
    assert!(text.contains("Read failure: 1"), "{text}");
    // reel's own reader agrees, on both pages.
    let alerts = crate::scsi::tapealert::TapeAlerts::from_log_page(&page).unwrap();
    assert_eq!(alerts.flags(), raised);
    assert!(text.contains("Media: 1"), "{text}");
    // Read once, the event flags are down.
    assert_eq!(counter(&log_sense(&mut ssc, 0x12), 0), 0);
    assert_eq!(ssc.tape_alerts(), 0);
}

#[test]
fn cleaning_required_stays_until_it_is_cleared() {
    let (_dir, mut ssc) = ssc();
    ssc.set_needs_cleaning(true);
    for _ in 0..2 {
        let page = log_sense(&mut ssc, 0x2e);
        assert!(decode("sg_logs", &["--pdt=1"], &page).contains("Cleaning required: 1"));
    }
    // A tape change does not clean the drive.
    ssc.medium_changed();
    assert_eq!(ssc.tape_alerts(), 1 << (64 - 20));
    ssc.set_needs_cleaning(false);
    unit_attention(&mut ssc);
    assert_eq!(counter(&log_sense(&mut ssc, 0x12), 0), 0);
}

#[test]
fn a_write_to_a_protected_tape_raises_write_protect() {
    let (_dir, mut ssc) = ssc();
    ssc.drive().image_mut().unwrap().meta.write_protected = true;
    let reply = write(&mut ssc, &block(1, 512));
    assert_eq!(sense(&reply).0, Key::DataProtect);
    assert_eq!(
        ssc.tape_alerts(),
        1 << (64 - u32::from(flag::WRITE_PROTECT))
    );
}

#[test]
fn volume_statistics_count_loads_and_bytes_of_the_tape() {
    let dir = tempfile::tempdir().unwrap();
    let spec = LibrarySpec::default();
    let mut ssc = drive_in(dir.path(), &spec);
    let mb = vec![7u8; 1 << 20];
    for _ in 0..3 {
        good(&write(&mut ssc, &mb));
    }
    good(&weof(&mut ssc, 1));
    // UNLOAD then LOAD: a second load of the same tape.
    good(&no_data(&mut ssc, &[0x1b, 0, 0, 0, 0, 0]));
    good(&no_data(&mut ssc, &[0x1b, 0, 0, 0, 1, 0]));
    unit_attention(&mut ssc);
    good(&read(&mut ssc, 1 << 20).0);
    let before = ssc.drive().image_mut().unwrap().meta.life.loads;
    let page = log_sense(&mut ssc, 0x17);
    assert_eq!(counter(&page, 0x0001), before);
    assert_eq!(counter(&page, 0x0010), 3 * (1 << 20) / 1_000_000);
    assert_eq!(counter(&page, 0x000e), 0, "nothing written in this load");
    assert_eq!(counter(&page, 0x000f), 1);
    let text = decode("sg_logs", &["--pdt=1"], &page);
    assert!(text.contains("Lifetime megabytes written: 3"), "{text}");
    assert!(text.contains(&format!("Thread count: {before}")), "{text}");
    assert!(text.contains("Volume barcode: "), "{text}");
    // The counts are the tape's: they survive the drive being closed.
    drop(ssc);
    let mut ssc = drive_in(dir.path(), &spec);
    let page = log_sense(&mut ssc, 0x17);
    assert_eq!(counter(&page, 0x0010), 3);
    assert_eq!(counter(&page, 0x0011), 1);
    // No tape: NOT READY, medium not present.
    good(&no_data(&mut ssc, &[0x1b, 0, 0, 0, 0, 0]));
    let (reply, _) = data_in(
        &mut ssc,
        &[0x4d, 0, 0x40 | 0x17, 0, 0, 0, 0, 0x10, 0, 0],
        4096,
    );
    assert_eq!(sense(&reply), (Key::NotReady, 0x3a, 0, None, [false; 3]));
}

fn read_attribute(ssc: &mut Ssc<VirtualDrive>, action: u8, first: u16) -> Vec<u8> {
    let f = first.to_be_bytes();
    let cdb = [
        0x8c, action, 0, 0, 0, 0, 0, 0, f[0], f[1], 0, 0, 0x20, 0, 0, 0,
    ];
    let (reply, v) = data_in(ssc, &cdb, 8192);
    good(&reply);
    v
}

/// The attributes of a READ ATTRIBUTE (values) answer: id, read-only, value.
fn attributes(v: &[u8]) -> Vec<(u16, bool, Vec<u8>)> {
    let len = u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as usize;
    assert_eq!(len + 4, v.len());
    let mut out = Vec::new();
    let mut at = 4;
    while at < v.len() {
        let n = usize::from(u16::from_be_bytes([v[at + 3], v[at + 4]]));
        out.push((
            u16::from_be_bytes([v[at], v[at + 1]]),
            v[at + 2] & 0x80 != 0,
            v[at + 5..at + 5 + n].to_vec(),
        ));
        at += 5 + n;
    }
    out
}

fn write_attribute(ssc: &mut Ssc<VirtualDrive>, attrs: &[(u16, u8, &[u8])]) -> super::sense::Reply {
    let mut body = Vec::new();
    for (id, format, value) in attrs {
        body.extend_from_slice(&id.to_be_bytes());
        body.push(*format);
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut list = (body.len() as u32).to_be_bytes().to_vec();
    list.extend(body);
    let n = (list.len() as u32).to_be_bytes();
    let cdb = [
        0x8d, 1, 0, 0, 0, 0, 0, 0, 0, 0, n[0], n[1], n[2], n[3], 0, 0,
    ];
    ssc.execute(&cdb, &mut list)
}

#[test]
fn cartridge_memory_reads_as_sg_read_attr_expects_and_keeps_host_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = LibrarySpec::default();
    let mut ssc = drive_in(dir.path(), &spec);
    let mib = vec![3u8; 1 << 20];
    for _ in 0..2 {
        good(&write(&mut ssc, &mib));
    }
    good(&weof(&mut ssc, 1));
    let loads = ssc.drive().image_mut().unwrap().meta.life.loads;
    let v = read_attribute(&mut ssc, 0, 0);
    let attrs = attributes(&v);
    let get = |id: u16| attrs.iter().find(|a| a.0 == id).cloned().unwrap().2;
    assert_eq!(get(0x0003), loads.to_be_bytes());
    assert_eq!(get(0x0220), 2u64.to_be_bytes(), "MiB written in its life");
    assert_eq!(get(0x0222), 2u64.to_be_bytes(), "MiB written in this load");
    assert!(
        attrs.iter().all(|a| a.1),
        "every drive attribute is read-only"
    );
    let text = decode("sg_read_attr", &[], &v);
    assert!(text.contains(&format!("Load count: {loads}")), "{text}");
    // reel's own reader agrees, and with what the virtual drive says.
    let m = crate::scsi::mam::CartridgeMemory::from_attributes(&v);
    assert_eq!((m.loads, m.mib_written), (Some(loads), Some(2)));
    use crate::tape::Drive;
    let mut own = ssc.drive().cartridge_memory().unwrap().unwrap();
    own.barcode = None;
    assert_eq!(m, own);
    assert!(
        text.contains("Total MiB written in medium life: 2"),
        "{text}"
    );
    assert!(text.contains("Medium serial number: REELCM-"), "{text}");
    // A host writes its barcode and application name; a zero length
    // deletes; device attributes cannot be written.
    good(&write_attribute(
        &mut ssc,
        &[(0x0806, 1, b"A00001L9"), (0x0801, 1, b"reel")],
    ));
    good(&write_attribute(&mut ssc, &[(0x0801, 1, b"")]));
    let reply = write_attribute(&mut ssc, &[(0x0003, 0, &[0; 8])]);
    assert_eq!(
        sense(&reply),
        (Key::IllegalRequest, 0x26, 0, None, [false; 3])
    );
    let reply = write_attribute(&mut ssc, &[(0x0808, 2, &vec![b'x'; 20_000])]);
    assert_eq!(
        sense(&reply).0,
        Key::IllegalRequest,
        "more than the memory holds"
    );
    // Kept with the tape, across the drive being closed.
    drop(ssc);
    let mut ssc = drive_in(dir.path(), &spec);
    let v = read_attribute(&mut ssc, 0, 0x0800);
    let attrs = attributes(&v);
    assert_eq!(attrs, [(0x0806, false, b"A00001L9".to_vec())]);
    assert!(decode("sg_read_attr", &[], &v).contains("Barcode: A00001L9"));
    // The list of attributes, the partition list, and no tape at all.
    let list = read_attribute(&mut ssc, 1, 0);
    assert_eq!(&list[4..8], &[0x00, 0x00, 0x00, 0x01]);
    assert_eq!(read_attribute(&mut ssc, 3, 0), [0, 2, 0, 1]);
    good(&no_data(&mut ssc, &[0x1b, 0, 0, 0, 0, 0]));
    let cdb = [0x8c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0];
    let (reply, _) = data_in(&mut ssc, &cdb, 8192);
    assert_eq!(sense(&reply).0, Key::NotReady);
}

#[test]
fn space_16_moves_over_blocks_and_filemarks() {
    let (_dir, mut ssc) = ssc();
    for tag in 0..3 {
        good(&write(&mut ssc, &block(tag, 100)));
        good(&weof(&mut ssc, 1));
    }
    good(&no_data(&mut ssc, &[0x01, 0, 0, 0, 0, 0]));
    let space16 = |ssc: &mut Ssc<VirtualDrive>, code: u8, count: i64| {
        let c = count.to_be_bytes();
        let mut cdb = [0u8; 16];
        cdb[0] = 0x91;
        cdb[1] = code;
        cdb[4..12].copy_from_slice(&c);
        no_data(ssc, &cdb)
    };
    good(&space16(&mut ssc, 1, 2));
    assert_eq!(read(&mut ssc, 100).1, block(2, 100));
    // Back over two filemarks: to the end of file 0; on over one: file 1.
    good(&space16(&mut ssc, 1, -2));
    good(&space(&mut ssc, 1, 1));
    assert_eq!(read(&mut ssc, 100).1, block(1, 100));
    good(&space16(&mut ssc, 0, -1));
    assert_eq!(read(&mut ssc, 100).1, block(1, 100));
    good(&space16(&mut ssc, 3, 0));
    assert_eq!(sense(&read(&mut ssc, 100).0).0, Key::BlankCheck);
}

#[test]
fn report_density_support_gives_the_drives_density_and_the_tapes_capacity() {
    let (_dir, mut ssc) = ssc();
    let (reply, v) = data_in(&mut ssc, &[0x44, 0x01, 0, 0, 0, 0, 0, 0x01, 0, 0], 256);
    good(&reply);
    assert_eq!(usize::from(u16::from_be_bytes([v[0], v[1]])) + 2, v.len());
    let d = &v[4..];
    assert_eq!(d.len(), 52, "one descriptor");
    assert_eq!((d[0], d[1]), (0x60, 0x60));
    assert_eq!(d[2] & 0xa0, 0xa0, "writable, the default");
    assert_eq!(u16::from_be_bytes([d[3], d[4]]), 47);
    let capacity = u32::from_be_bytes([d[12], d[13], d[14], d[15]]);
    let tape = ssc.drive().image_mut().unwrap().meta.capacity.0;
    assert_eq!(u64::from(capacity), tape / 1_000_000);
    assert_eq!(&d[24..32], b"VIRTUAL ");
    // Medium type descriptors are not offered; no tape with MEDIA set.
    let (reply, _) = data_in(&mut ssc, &[0x44, 0x02, 0, 0, 0, 0, 0, 0x01, 0, 0], 256);
    assert_eq!(sense(&reply).0, Key::IllegalRequest);
    good(&no_data(&mut ssc, &[0x1b, 0, 0, 0, 0, 0]));
    let (reply, _) = data_in(&mut ssc, &[0x44, 0x01, 0, 0, 0, 0, 0, 0x01, 0, 0], 256);
    assert_eq!(sense(&reply).0, Key::NotReady);
    good(&data_in(&mut ssc, &[0x44, 0x00, 0, 0, 0, 0, 0, 0x01, 0, 0], 256).0);
}
