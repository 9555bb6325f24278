use proptest::prelude::*;

use super::*;
use crate::archive::header::{Member, MemberKind, encode, padding};

fn member(path: &[u8], kind: MemberKind) -> Member {
    Member {
        path: path.to_vec(),
        kind,
        mode: 0o4755,
        uid: 1000,
        gid: 3_000_000,
        user: Some("alice".into()),
        group: Some("a-group-name-longer-than-thirty-one-bytes".into()),
        mtime_ns: 1_700_000_000_123_456_789,
        xattrs: vec![(b"user.origin".to_vec(), b"lab \x00 3".to_vec())],
        extra: Vec::new(),
    }
}

/// An archive of `members` with their data (files: `size` bytes of
/// `fill`), and each member's offset.
fn archive(members: &[Member]) -> (Vec<u8>, Vec<u64>) {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for m in members {
        offsets.push(out.len() as u64);
        out.extend(encode(m));
        let size = m.data_size() as usize;
        out.extend(std::iter::repeat_n(0x5a, size));
        out.resize(out.len() + padding(size as u64), 0);
    }
    out.resize(out.len() + 1024, 0);
    (out, offsets)
}

fn members(walked: &[Walked]) -> Vec<&Parsed> {
    walked
        .iter()
        .filter_map(|w| match w {
            Walked::Member(m) => Some(&**m),
            Walked::Damage { .. } => None,
        })
        .collect()
}

#[test]
fn what_the_writer_encodes_reads_back() {
    let long = [b"d/".repeat(150), b"f\xff\xfe".to_vec()].concat();
    let mut part = member(b"big", MemberKind::File { size: 700 });
    part.extra = vec![
        ("REEL.part".into(), b"2".to_vec()),
        ("REEL.offset".into(), b"1048576".to_vec()),
        ("REEL.total".into(), b"2097152".to_vec()),
    ];
    let list = vec![
        member(b"a.txt", MemberKind::File { size: 5 }),
        member(&long, MemberKind::File { size: 1 }),
        member(b"dir", MemberKind::Dir),
        member(
            b"link",
            MemberKind::Symlink {
                target: [b"/".repeat(120), b"t".to_vec()].concat(),
            },
        ),
        member(
            b"hard",
            MemberKind::Hardlink {
                target: b"a.txt".to_vec(),
            },
        ),
        member(
            b"null",
            MemberKind::Char {
                rdev: libc::makedev(1, 3),
            },
        ),
        member(b"pipe", MemberKind::Fifo),
        part,
    ];
    let (bytes, offsets) = archive(&list);
    let walked = walk(&mut &bytes[..]);
    let got = members(&walked);
    assert_eq!(got.len(), list.len(), "{walked:?}");
    for ((m, p), off) in list.iter().zip(&got).zip(&offsets) {
        assert_eq!(p.path, m.path);
        assert_eq!(p.offset, *off);
        assert_eq!(p.size, m.data_size());
        assert_eq!(
            (p.mode, p.uid, p.gid, p.mtime_ns),
            (0o4755, 1000, 3_000_000, m.mtime_ns)
        );
        assert_eq!(p.user.as_deref(), Some("alice"));
        assert_eq!(p.group, m.group);
        assert_eq!(p.xattrs, m.xattrs);
    }
    assert_eq!(got[2].entry, EntryType::Dir);
    assert_eq!(
        got[3].link.as_deref(),
        Some(&[b"/".repeat(120), b"t".to_vec()].concat()[..])
    );
    assert_eq!(got[4].entry, EntryType::Hardlink);
    assert_eq!(got[5].rdev, Some(libc::makedev(1, 3)));
    assert_eq!(got[6].entry, EntryType::Fifo);
    assert_eq!(
        (got[7].part, got[7].part_offset, got[7].total),
        (Some(2), Some(1_048_576), Some(2_097_152))
    );
}

#[test]
fn an_absurd_size_loses_that_member_only() {
    let list = vec![
        member(b"first", MemberKind::File { size: 3000 }),
        member(b"liar", MemberKind::File { size: 600 }),
        member(b"after", MemberKind::File { size: 10 }),
    ];
    let (mut bytes, offsets) = archive(&list);
    // Give "liar" a pax header claiming 10^18 bytes: encode it again with
    // that size and splice the headers in, keeping its real data.
    let mut liar = list[1].clone();
    liar.kind = MemberKind::File {
        size: 1_000_000_000_000_000_000,
    };
    let headers = encode(&liar);
    let real = encode(&list[1]).len();
    let at = offsets[1] as usize;
    bytes.splice(at..at + real, headers);
    let walked = walk(&mut &bytes[..]);
    let names: Vec<&[u8]> = members(&walked).iter().map(|p| &p.path[..]).collect();
    assert_eq!(names, [&b"first"[..], b"after"], "{walked:?}");
    assert!(
        walked
            .iter()
            .any(|w| matches!(w, Walked::Damage { why, .. } if why.contains("run past")))
    );
}

#[test]
fn a_bad_pax_record_or_checksum_loses_that_member_only() {
    let list = vec![
        member(b"one", MemberKind::File { size: 100 }),
        member(b"two", MemberKind::File { size: 100 }),
        member(b"three", MemberKind::File { size: 100 }),
    ];
    let (bytes, offsets) = archive(&list);
    // A pax record length that lies.
    let mut bad = bytes.clone();
    let pax = offsets[1] as usize + 512;
    bad[pax] = b'9';
    bad[pax + 1] = b'9';
    let names: Vec<Vec<u8>> = members(&walk(&mut &bad[..]))
        .iter()
        .map(|p| p.path.clone())
        .collect();
    assert_eq!(names, [b"one".to_vec(), b"three".to_vec()]);
    // A flipped byte in a ustar header.
    let mut bad = bytes.clone();
    let ustar = offsets[2] as usize - 1024 + 3; // the name field of two's ustar block
    bad[ustar] ^= 0x20;
    let walked = walk(&mut &bad[..]);
    let names: Vec<Vec<u8>> = members(&walked).iter().map(|p| p.path.clone()).collect();
    assert_eq!(names, [b"one".to_vec(), b"three".to_vec()], "{walked:?}");
}

#[test]
fn a_truncated_archive_gives_every_whole_member() {
    let list: Vec<Member> = (0..6)
        .map(|i| member(format!("f{i}").as_bytes(), MemberKind::File { size: 2000 }))
        .collect();
    let (bytes, offsets) = archive(&list);
    let cut = &bytes[..offsets[4] as usize + 1500];
    let walked = walk(&mut &cut[..]);
    assert_eq!(members(&walked).len(), 4, "{walked:?}");
    assert!(matches!(
        walked.last(),
        Some(Walked::Damage { resumed: None, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the bytes, a walk ends, never panics, and every member it
    /// gives lies inside the archive.
    #[test]
    fn any_bytes_walk_without_panicking(
        noise in prop::collection::vec(any::<u8>(), 0..4096),
        at in 0usize..6000,
        real in any::<bool>(),
    ) {
        let mut bytes = if real {
            archive(&[member(b"x", MemberKind::File { size: 700 }), member(b"y", MemberKind::Dir)]).0
        } else {
            Vec::new()
        };
        let at = at.min(bytes.len());
        bytes.splice(at..at, noise);
        let len = bytes.len() as u64;
        for w in walk(&mut &bytes[..]) {
            if let Walked::Member(m) = w {
                prop_assert!(m.next() <= len);
            }
        }
    }
}
