//! Interop with the real GNU tar: what reel writes, tar lists and extracts
//! exactly.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::*;

fn member(path: &[u8], kind: MemberKind) -> Member {
    Member {
        path: path.to_vec(),
        kind,
        mode: 0o640,
        uid: 0,
        gid: 0,
        user: Some("root".into()),
        group: Some("root".into()),
        mtime_ns: 1_700_000_000_123_456_789,
        xattrs: Vec::new(),
        extra: Vec::new(),
    }
}

fn tar(args: &[&str], dir: &Path) -> String {
    let out = Command::new("tar")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("GNU tar is installed");
    assert!(
        out.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gnu_tar_reads_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("data");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&data_path, &content).unwrap();
    let src = File::open(&data_path).unwrap();
    let long = [b"deep/".repeat(40), b"file-with-a-long-name.txt".to_vec()].concat();
    let odd = b"odd \xff\nname\t-x".to_vec();
    let archive = dir.path().join("a.tar");
    let mut w = ArchiveWriter::new(Sink::File(File::create(&archive).unwrap()));
    let mut m = member(b"dir", MemberKind::Dir);
    m.mode = 0o755;
    w.add_bytes(&m, &[]).unwrap();
    let placed = w
        .add_file(
            &member(
                b"dir/data",
                MemberKind::File {
                    size: content.len() as u64,
                },
            ),
            &src,
            0,
            content.len() as u64,
            None,
        )
        .unwrap();
    let mut x = member(&long, MemberKind::File { size: 5 });
    x.xattrs = vec![(b"user.origin".to_vec(), b"lab \x00 3".to_vec())];
    x.uid = 3_000_000;
    x.user = Some("a-user-name-longer-than-thirty-one-bytes".into());
    w.add_bytes(&x, b"hello").unwrap();
    w.add_bytes(&member(&odd, MemberKind::File { size: 3 }), b"odd")
        .unwrap();
    w.add_bytes(
        &member(
            b"link",
            MemberKind::Symlink {
                target: long.clone(),
            },
        ),
        &[],
    )
    .unwrap();
    w.add_bytes(
        &member(
            b"hard",
            MemberKind::Hardlink {
                target: b"dir/data".to_vec(),
            },
        ),
        &[],
    )
    .unwrap();
    let size = w.finish(65536).unwrap().size;
    assert_eq!(size % 65536, 0);
    assert_eq!(std::fs::metadata(&archive).unwrap().len(), size);
    assert_eq!(placed.data_offset % 512, 0);
    assert_eq!(
        match placed.sha256 {
            Hashed::Now(d) => d.0,
            other => panic!("a small file is hashed in line: {other:?}"),
        },
        <sha2::Sha256 as sha2::Digest>::digest(&content).as_slice()
    );
    // The data really is at data_offset.
    let bytes = std::fs::read(&archive).unwrap();
    assert_eq!(
        &bytes[placed.data_offset as usize..][..content.len()],
        &content[..]
    );

    let listing = tar(&["--numeric-owner", "-tvf", "a.tar"], dir.path());
    assert_eq!(listing.lines().count(), 6, "{listing}");
    assert!(listing.contains("3000000/0"), "pax uid: {listing}");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    tar(&["--xattrs", "--xattrs-include=*", "-xf", "../a.tar"], &out);
    assert_eq!(std::fs::read(out.join("dir/data")).unwrap(), content);
    let x_path = out.join(std::ffi::OsStr::from_bytes(&long));
    assert_eq!(std::fs::read(&x_path).unwrap(), b"hello");
    let meta = std::fs::metadata(&x_path).unwrap();
    assert_eq!(
        (meta.mtime(), meta.mtime_nsec()),
        (1_700_000_000, 123_456_789),
        "ns mtime"
    );
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(
        std::fs::read(out.join(std::ffi::OsStr::from_bytes(&odd))).unwrap(),
        b"odd"
    );
    assert_eq!(
        std::fs::read_link(out.join("link"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        &long[..]
    );
    assert_eq!(
        std::fs::metadata(out.join("hard")).unwrap().ino(),
        std::fs::metadata(out.join("dir/data")).unwrap().ino()
    );
    if let Ok(value) = xattr::get(&x_path, "user.origin") {
        assert_eq!(
            value.as_deref(),
            Some(&b"lab \x00 3"[..]),
            "binary xattr value"
        );
    } // (a file system without user xattrs: tar warns, nothing to compare)
}

#[test]
fn headers_are_deterministic_and_sized() {
    let mut m = member(b"a/b", MemberKind::File { size: 9 << 30 });
    let h = encode(&m);
    assert_eq!(h.len() % 512, 0);
    assert!(
        String::from_utf8_lossy(&h).contains("size=9663676416"),
        "big sizes go to pax"
    );
    assert_eq!(encode(&m), h);
    m.kind = MemberKind::File { size: 9 };
    m.mtime_ns = 5_000_000_000;
    m.user = None;
    assert_eq!(encode(&m).len(), 512, "nothing needs pax: one ustar block");
}

#[test]
fn large_files_are_copied_and_hashed_in_the_background_in_place() {
    let dir = tempfile::tempdir().unwrap();
    // The last spans three of the steps a large file is copied in (and
    // the archive handed to the kernel to write out).
    let sizes = [5 << 20, 9 << 20, 1, (4 << 20) + 7, (64 << 20) + 12345];
    let contents: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| (0..n).map(|i| (i * 31 + k * 7 + i / 4099) as u8).collect())
        .collect();
    let archive = dir.path().join("big.tar");
    let mut w = ArchiveWriter::new(Sink::File(File::create(&archive).unwrap()));
    let mut placed = Vec::new();
    for (k, c) in contents.iter().enumerate() {
        let path = dir.path().join(format!("f{k}"));
        std::fs::write(&path, c).unwrap();
        let m = member(
            format!("f{k}").as_bytes(),
            MemberKind::File {
                size: c.len() as u64,
            },
        );
        placed.push(
            w.add_whole_file(&m, File::open(&path).unwrap(), c.len() as u64)
                .unwrap(),
        );
    }
    let done = w.finish(65536).unwrap();
    let bytes = std::fs::read(&archive).unwrap();
    assert_eq!(bytes.len() as u64, done.size);
    for ((p, c), &n) in placed.iter().zip(&contents).zip(&sizes) {
        let digest = match p.sha256 {
            Hashed::Later(t) => {
                assert!(n >= 4 << 20, "only large files go to the workers");
                assert_eq!(p.data_offset % 4096, 0, "large data is block-aligned");
                done.digests[&t]
            }
            Hashed::Now(d) => {
                assert!(n < 4 << 20);
                d
            }
            Hashed::None => panic!("every file has a digest"),
        };
        assert_eq!(
            digest.0,
            <sha2::Sha256 as sha2::Digest>::digest(c).as_slice()
        );
        assert_eq!(&bytes[p.data_offset as usize..][..c.len()], &c[..]);
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    tar(&["-xf", "../big.tar"], &out);
    for (k, c) in contents.iter().enumerate() {
        assert_eq!(&std::fs::read(out.join(format!("f{k}"))).unwrap(), c);
    }
}

#[test]
fn a_staged_copy_shorter_than_its_record_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short");
    std::fs::write(&path, vec![1u8; 5 << 20]).unwrap();
    let mut w = ArchiveWriter::new(Sink::File(File::create(dir.path().join("a.tar")).unwrap()));
    let m = member(b"short", MemberKind::File { size: 6 << 20 });
    let e = w
        .add_whole_file(&m, File::open(&path).unwrap(), 6 << 20)
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
}
