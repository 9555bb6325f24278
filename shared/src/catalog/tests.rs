use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;
use crate::manifest::{Digest, EntryType, Record};

fn entry(stream: &str, path: &[u8], size: u64, mtime: i64, verified: &str, tape: &str) -> Entry {
    let mut r = Record::new(
        PathBuf::from(OsString::from_vec(path.to_vec())),
        EntryType::File,
    );
    r.size = size;
    r.mtime_ns = mtime;
    r.sha256 = Some(Digest([size as u8; 32]));
    r.tape = Some(tape.into());
    r.file = Some(1);
    r.block = Some(2);
    Entry {
        stream: stream.into(),
        verified: verified.into(),
        record: r,
    }
}

#[test]
fn journals_round_trip_and_survive_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path();
    let a = entry("home", b"a\xffb\nc", 10, 5, "2026-11-23T10:00:00Z", "T1");
    let b = entry("home", b"dir/file", 20, 6, "2026-11-23T10:00:01Z", "T1");
    journal::append(cat, "T1", std::slice::from_ref(&a)).unwrap();
    journal::append(cat, "T1", std::slice::from_ref(&b)).unwrap();
    // A crash in the middle of an append leaves half a line.
    let path = journal::journal_path(cat, "T1");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(b"{\"path\":\"half");
    std::fs::write(&path, &bytes).unwrap();
    let mut seen = Vec::new();
    journal::read(&path, |e| {
        seen.push(e);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, [a.clone(), b.clone()]);
    // The next append cuts the torn line off.
    let c = entry("home", b"c", 1, 1, "2026-11-23T10:00:02Z", "T1");
    journal::append(cat, "T1", std::slice::from_ref(&c)).unwrap();
    let mut seen = Vec::new();
    journal::read(&path, |e| {
        seen.push(e);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, [a, b, c]);
}

#[test]
fn a_member_of_another_tape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = entry("home", b"x", 1, 1, "2026-11-23T10:00:00Z", "T2");
    assert!(journal::append(dir.path(), "T1", &[e]).is_err());
}

#[test]
fn bad_journal_lines_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    journal::append(
        dir.path(),
        "T1",
        &[entry("s", b"a", 1, 1, "2026-11-23T10:00:00Z", "T1")],
    )
    .unwrap();
    let path = journal::journal_path(dir.path(), "T1");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"path\":\"b\",\"type\":\"file\"}\n");
    std::fs::write(&path, text).unwrap();
    let e = journal::read(&path, |_| Ok(())).unwrap_err().to_string();
    assert!(e.ends_with("T1.jsonl:3: entry has no \"stream\""), "{e}");
    // Read as a tail (the index's delta), it is still line 3.
    let first_two = text_len_of_lines(&path, 2);
    let e = journal::read_from(&path, first_two, |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("T1.jsonl:3: entry has no \"stream\""), "{e}");
}

/// The bytes of the first `n` lines of `path`.
fn text_len_of_lines(path: &std::path::Path, n: usize) -> u64 {
    let text = std::fs::read(path).unwrap();
    text.split_inclusive(|&b| b == b'\n')
        .take(n)
        .map(|l| l.len() as u64)
        .sum()
}

#[test]
fn the_index_answers_with_the_newest_verified_version() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path();
    assert!(Index::open(cat).unwrap().is_empty());
    assert!(
        !is_stale(cat).unwrap(),
        "no journals, no index: nothing to do"
    );
    journal::append(
        cat,
        "T1",
        &[
            entry("home", b"f", 1, 100, "2026-11-23T10:00:00Z", "T1"),
            entry("home", b"g", 7, 700, "2026-11-23T10:00:00Z", "T1"),
        ],
    )
    .unwrap();
    journal::append(
        cat,
        "T2",
        &[entry("home", b"f", 2, 200, "2026-11-24T10:00:00Z", "T2")],
    )
    .unwrap();
    // An older verification of the same path, recorded later, loses.
    journal::append(
        cat,
        "T3",
        &[entry("home", b"f", 3, 300, "2026-11-22T10:00:00Z", "T3")],
    )
    .unwrap();
    assert!(is_stale(cat).unwrap());
    // Nothing built yet: the journals are all delta, and the index answers
    // from them without a rebuild.
    let (index, rebuilt) = open_index(cat).unwrap();
    assert!(rebuilt.is_none(), "a small delta is read, not rebuilt");
    let answers = |index: &Index| -> Vec<Option<(Known, Option<Digest>)>> {
        [
            ("home", &b"f"[..]),
            ("home", b"g"),
            ("work", b"f"),
            ("home", b"h"),
        ]
        .iter()
        .map(|(s, p)| {
            index
                .lookup(s, p)
                .map(|(i, k)| (k, index.sha256(i).unwrap()))
        })
        .collect()
    };
    let (i, known) = index.lookup("home", b"f").unwrap();
    assert_eq!(
        known,
        Known {
            size: 2,
            mtime_ns: 200
        }
    );
    assert_eq!(index.sha256(i).unwrap(), Some(Digest([2; 32])));
    assert_eq!(index.lookup("home", b"g").unwrap().1.size, 7);
    assert!(index.lookup("work", b"f").is_none(), "streams are separate");
    assert!(index.lookup("home", b"h").is_none());
    let from_delta = answers(&index);
    // Built: the same answers, and nothing is left over.
    assert_eq!(rebuild(cat, 1 << 20).unwrap().paths, 2);
    assert!(!is_stale(cat).unwrap());
    assert_eq!(answers(&Index::open(cat).unwrap()), from_delta);
    // A verify appends: the index knows it at once, from the delta over
    // the built generation, and a rebuild agrees with it.
    journal::append(
        cat,
        "T1",
        &[
            entry("home", b"h", 9, 9, "2026-11-25T10:00:00Z", "T1"),
            entry("home", b"g", 8, 800, "2026-11-25T10:00:00Z", "T1"),
        ],
    )
    .unwrap();
    assert!(is_stale(cat).unwrap(), "a journal grew");
    let incremental = answers(&open_index(cat).unwrap().0);
    assert_eq!(incremental[3].unwrap().0.size, 9);
    assert_eq!(
        incremental[1].unwrap().0.size,
        8,
        "the delta's newer g wins"
    );
    rebuild(cat, 1 << 20).unwrap();
    assert_eq!(answers(&Index::open(cat).unwrap()), incremental);
}

/// Buckets of about 16 entries: a lookup reads 8 entries around where it
/// guesses the key to be, then the whole bucket when the key may lie
/// outside them. Every path is found, with its own size; no other is.
#[test]
fn every_path_of_a_large_index_is_found_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path();
    let n = 20_000u64;
    let entries: Vec<Entry> = (0..n)
        .map(|i| {
            entry(
                "s",
                format!("dir/{i}").as_bytes(),
                i,
                1,
                "2026-11-10T00:00:00Z",
                "T1",
            )
        })
        .collect();
    journal::append(cat, "T1", &entries).unwrap();
    rebuild::rebuild(cat, 4096).unwrap();
    let index = Index::open(cat).unwrap();
    for i in 0..n {
        let found = index.lookup("s", format!("dir/{i}").as_bytes());
        assert_eq!(found.map(|(_, k)| k.size), Some(i), "dir/{i}");
        assert!(index.lookup("s", format!("dir/{i}x").as_bytes()).is_none());
        assert!(index.lookup("t", format!("dir/{i}").as_bytes()).is_none());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Rebuilding with tiny chunks (many runs, a k-way merge) gives the
    /// same answers as a plain map of the newest entries.
    #[test]
    fn external_sort_agrees_with_a_map(
        items in prop::collection::vec(
            (0u8..40, 0u64..1000, 0u32..5, 0u8..3, prop::option::of(0u32..5)),
            0..200,
        ),
        chunk in 1usize..9,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cat = dir.path();
        for (name, size, day, tape, taken) in &items {
            let path = format!("p{name}").into_bytes();
            let verified = format!("2026-11-{:02}T00:00:00Z", 10 + day);
            let label = format!("T{tape}");
            let mut e = entry("s", &path, *size, 1, &verified, &label);
            // Taken from the source on some day, verified on any (later or
            // earlier: the order must not care).
            e.record.taken_ns = taken.map(|t| rebuild_order(&format!("2026-11-{:02}T12:00:00Z", 10 + t)) as i64);
            journal::append(cat, &label, &[e]).unwrap();
        }
        // The newest is the one taken last (an entry without `taken_ns`
        // counts from its verify time); journals are read in name order,
        // so a tie goes to the later journal, then the later line:
        // recompute that precisely.
        let mut precise: HashMap<Vec<u8>, ((u64, u64), u64)> = HashMap::new();
        let mut seq = 0u64;
        for path in journal::journals(cat).unwrap() {
            journal::read(&path, |e| {
                seq += 1;
                let taken = e.record.taken_ns.map_or_else(|| rebuild_order(&e.verified), |t| t as u64);
                let order = (taken, seq);
                let k = e.record.path.as_os_str().as_bytes().to_vec();
                let slot = precise.entry(k).or_insert((order, e.record.size));
                if order >= slot.0 { *slot = (order, e.record.size); }
                Ok(())
            }).unwrap();
        }
        let stats = rebuild::rebuild(cat, chunk).unwrap();
        prop_assert_eq!(stats.paths as usize, precise.len());
        let index = Index::open(cat).unwrap();
        for (path, (_, size)) in &precise {
            let found = index.lookup("s", path).map(|(_, k)| k.size);
            prop_assert_eq!(found, Some(*size));
        }
    }
}

/// Nanoseconds since the epoch of a `2026-11-DDTHH:MM:SSZ` time, worked
/// out by hand (the model does not borrow the code's parser).
fn rebuild_order(time: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| time[r].parse::<u64>().unwrap();
    // 2026-11-01T00:00:00Z is 1_793_491_200 s after the epoch.
    let secs =
        1_793_491_200 + (n(8..10) - 1) * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs * 1_000_000_000
}

#[test]
fn a_torn_header_is_rewritten_and_a_torn_tail_does_not_keep_the_index_stale() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path();
    let path = journal::journal_path(cat, "T1");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // The first append died inside the header.
    std::fs::write(&path, b"{\"reel\":\"jour").unwrap();
    journal::append(
        cat,
        "T1",
        &[entry("s", b"a", 1, 1, "2026-11-23T10:00:00Z", "T1")],
    )
    .unwrap();
    let mut n = 0;
    journal::read(&path, |_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 1);
    // A later append died mid-line: after a rebuild the index is fresh.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(b"{\"path\":\"tor");
    std::fs::write(&path, bytes).unwrap();
    rebuild(cat, 1 << 20).unwrap();
    assert!(
        !is_stale(cat).unwrap(),
        "a torn tail alone does not make the index stale"
    );
    assert!(Index::open(cat).unwrap().lookup("s", b"a").is_some());
}
