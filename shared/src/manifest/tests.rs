//! Round-trip tests: whatever a record holds comes back exactly.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

fn header() -> Header {
    Header::new(Kind::Staged, "home", "home-20261123T101500-0001")
}

fn round_trip(records: &[Record]) -> (Header, Vec<Record>) {
    let mut w = ManifestWriter::new(Vec::new(), &header()).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    let bytes = w.finish().unwrap();
    assert!(bytes.ends_with(b"\n"));
    assert_eq!(
        bytes.iter().filter(|&&b| b == b'\n').count(),
        records.len() + 1,
        "one line per record"
    );
    assert!(std::str::from_utf8(&bytes).is_ok(), "manifests are UTF-8");
    let mut r = ManifestReader::new(&bytes[..], "test");
    let h = r.next_manifest().unwrap().unwrap();
    let back = r.records().collect::<Result<Vec<_>, _>>().unwrap();
    (h, back)
}

fn path_of(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes))
}

#[test]
fn odd_paths_round_trip() {
    let long: Vec<u8> = std::iter::repeat_n(b"abcdefgh/".as_slice(), 455)
        .flatten()
        .copied()
        .chain(*b"tail")
        .collect();
    assert!(long.len() >= 4096);
    let mut long_latin1 = long.clone();
    long_latin1[100] = 0xe9;
    let names: Vec<Vec<u8>> = vec![
        b"plain.txt".to_vec(),
        b"new\nline".to_vec(),
        b"tab\there".to_vec(),
        b"back\\slash".to_vec(),
        b"-leading-dash".to_vec(),
        b"quote\"d".to_vec(),
        b"\xff\xfe not utf-8".to_vec(),
        "caf\u{e9}/\u{1F4BE}".as_bytes().to_vec(),
        b"\x01\x1f control".to_vec(),
        long,
        long_latin1,
    ];
    let records: Vec<Record> = names
        .into_iter()
        .map(|n| {
            let mut r = Record::new(path_of(n.clone()), EntryType::Symlink);
            r.link = Some(path_of(n.clone()));
            r.cache = Some(path_of([b"/cache/".as_slice(), &n].concat()));
            r
        })
        .collect();
    let (h, back) = round_trip(&records);
    assert_eq!(h, header());
    assert_eq!(back, records);
}

#[test]
fn non_utf8_paths_use_the_b64_field() {
    let r = Record::new(path_of(b"a\xffb".to_vec()), EntryType::File);
    let line = serde_json::to_string(&r).unwrap();
    assert!(
        line.starts_with(r#"{"path_b64":"Yf9i","type":"file""#),
        "{line}"
    );
    let r = Record::new("a b", EntryType::File);
    let line = serde_json::to_string(&r).unwrap();
    assert!(line.starts_with(r#"{"path":"a b","type":"file""#), "{line}");
}

#[test]
fn header_keeps_extra_fields() {
    let mut h = header();
    h.extra.insert("archive_size".into(), 1234.into());
    let bytes = ManifestWriter::new(Vec::new(), &h)
        .unwrap()
        .finish()
        .unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with(r#"{"reel":"manifest/1","kind":"staged","stream":"home","id":"home-20261123T101500-0001","created":""#), "{text}");
    let back = ManifestReader::new(&bytes[..], "t")
        .next_manifest()
        .unwrap()
        .unwrap();
    assert_eq!(back, h);
}

#[test]
fn unknown_record_fields_are_ignored() {
    let mut bytes = ManifestWriter::new(Vec::new(), &header())
        .unwrap()
        .finish()
        .unwrap();
    bytes.extend(br#"{"path":"a","type":"file","added_in_a_later_version":[1,2]}"#);
    bytes.push(b'\n');
    let mut r = ManifestReader::new(&bytes[..], "t");
    r.next_manifest().unwrap();
    assert_eq!(
        r.next_record().unwrap().unwrap(),
        Record::new("a", EntryType::File)
    );
}

/// The one record of a manifest whose record line is `line`, as a reader
/// takes it (line 2 of "t").
fn read_one(line: &str) -> Result<Record, String> {
    let mut bytes = ManifestWriter::new(Vec::new(), &header())
        .unwrap()
        .finish()
        .unwrap();
    bytes.extend(line.as_bytes());
    bytes.push(b'\n');
    let mut r = ManifestReader::new(&bytes[..], "t");
    r.next_manifest().unwrap();
    r.next_record()
        .map(|r| r.unwrap())
        .map_err(|e| e.to_string())
}

#[test]
fn a_part_outside_its_file_is_refused() {
    let ok = r#"{"path":"a","type":"file","size":10,"part":2,"part_offset":4,"part_len":6}"#;
    assert!(read_one(ok).is_ok());
    for bad in [
        r#"{"path":"a","type":"file","size":10,"part":2,"part_offset":4,"part_len":7}"#,
        r#"{"path":"a","type":"file","size":10,"part":2,"part_offset":11}"#,
        r#"{"path":"a","type":"file","size":10,"part":0,"part_offset":0,"part_len":1}"#,
        r#"{"path":"a","type":"file","size":10,"part":1,"part_offset":18446744073709551615,"part_len":2}"#,
    ] {
        let err = read_one(bad).unwrap_err();
        assert!(err.contains("t:2"), "{bad}: {err}");
    }
}

#[test]
fn a_bundle_offset_is_taken_only_for_a_whole_file_in_a_bundle() {
    let ok = r#"{"path":"a","type":"file","size":10,"cache":"/c/b","cache_offset":4096}"#;
    assert_eq!(read_one(ok).unwrap().cache_offset, Some(4096));
    for bad in [
        r#"{"path":"a","type":"file","size":10,"cache_offset":0}"#,
        r#"{"path":"a","type":"dir","cache":"/c/b","cache_offset":0}"#,
        r#"{"path":"a","type":"file","size":10,"cache":"/c/b","cache_offset":0,"part":1,"part_offset":0,"part_len":10}"#,
        r#"{"path":"a","type":"file","size":10,"cache":"/c/b","cache_offset":18446744073709551610}"#,
    ] {
        let err = read_one(bad).unwrap_err();
        assert!(err.contains("t:2"), "{bad}: {err}");
    }
}

fn entry_type() -> impl Strategy<Value = EntryType> {
    prop_oneof![
        Just(EntryType::File),
        Just(EntryType::Dir),
        Just(EntryType::Symlink),
        Just(EntryType::Hardlink),
        Just(EntryType::Fifo),
        Just(EntryType::Char),
        Just(EntryType::Block),
    ]
}

/// A relative path of arbitrary bytes: no NUL, not starting with '/', no
/// ".." component — what a scan of a Linux file system can produce.
fn rel_path() -> impl Strategy<Value = PathBuf> {
    prop::collection::vec(1u8..=255, 1..300)
        .prop_filter("relative, no ..", |b| {
            b[0] != b'/' && !b.split(|&c| c == b'/').any(|c| c == b"..")
        })
        .prop_map(path_of)
}

fn any_path() -> impl Strategy<Value = PathBuf> {
    prop::collection::vec(1u8..=255, 1..300).prop_map(path_of)
}

prop_compose! {
    fn record()(
        path in rel_path(),
        entry in entry_type(),
        size in any::<u64>(),
        mtime_ns in any::<i64>(),
        mode in any::<u32>(),
        uid in any::<u32>(),
        gid in any::<u32>(),
        user in proptest::option::of(".{0,40}"),
        group in proptest::option::of(".{0,40}"),
        link_target in any_path(),
        hard_target in rel_path(),
        sha256 in proptest::option::of(any::<[u8; 32]>()),
        cache in proptest::option::of(any_path()),
        cache_offset in proptest::option::of(any::<u64>()),
        archive in proptest::option::of("[a-z0-9-]{1,40}"),
        offset in proptest::option::of(any::<u64>()),
        data_offset in proptest::option::of(any::<u64>()),
        tape in proptest::option::of("[A-Z0-9]{6}L[5-9]"),
        file in proptest::option::of(any::<u64>()),
        block in proptest::option::of(any::<u64>()),
        rdev in proptest::option::of(any::<u64>()),
        part in proptest::option::of((1u32..1000, any::<u64>(), any::<u64>())),
        taken_ns in proptest::option::of(any::<i64>()),
        inode in proptest::option::of((any::<u64>(), any::<u64>())),
    ) -> Record {
        let link = match entry {
            EntryType::Symlink => Some(link_target),
            EntryType::Hardlink => Some(hard_target),
            _ => None,
        };
        // A bundle offset only where a reader takes one: a whole file's
        // staged copy.
        let cache_offset = cache_offset
            .filter(|_| cache.is_some() && part.is_none())
            .filter(|_| matches!(entry, EntryType::File | EntryType::Hardlink))
            .map(|at| at.min(u64::MAX - size));
        Record {
            path, entry, size, mtime_ns, mode, uid, gid, user, group, link, rdev,
            sha256: sha256.map(Digest), cache, cache_offset, archive, offset, data_offset, tape, file, block,
            part: part.map(|p| p.0), part_offset: part.map(|p| p.1.min(size)),
            part_len: part.map(|p| p.2.min(size - p.1.min(size))), taken_ns,
            dev: inode.map(|i| i.0), ino: inode.map(|i| i.1),
        }
    }
}

proptest! {
    #[test]
    fn any_record_round_trips(records in prop::collection::vec(record(), 0..8)) {
        let (_, back) = round_trip(&records);
        prop_assert_eq!(back, records);
    }

    #[test]
    fn garbage_lines_give_errors_not_panics(line in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = ManifestWriter::new(Vec::new(), &header()).unwrap().finish().unwrap();
        bytes.extend(line.iter().filter(|&&b| b != b'\n'));
        bytes.push(b'\n');
        let mut r = ManifestReader::new(&bytes[..], "t");
        r.next_manifest().unwrap();
        for item in r.records() {
            if let Err(e) = item {
                prop_assert!(e.to_string().starts_with("t:2: "), "{}", e);
            }
        }
    }
}
