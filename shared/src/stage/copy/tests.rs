//! Copying one file: content and digest, parts by range, and a file other than the scanned one refused.

use super::*;
use crate::beneath::Tree;

fn opts() -> CopyOptions<'static> {
    CopyOptions {
        retries: 0,
        limiter: None,
        chown: false,
    }
}

fn scanned(size: u64) -> Scanned {
    Scanned {
        size,
        dev: None,
        ino: None,
        part: None,
    }
}

#[test]
fn a_copy_has_the_content_and_digest_of_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let tree = Tree::open_existing(dir.path()).unwrap();
    let (root, name) = tree.parent(Path::new("src"), false).unwrap();
    let src = Source { dir: &root, name };
    let dst = dir.path().join("dst");
    fs::write(dir.path().join("src"), b"content").unwrap();
    let staged = copy_file(&src, &dst, &scanned(7), &opts()).unwrap();
    assert!(staged.copied);
    assert_eq!(fs::read(&dst).unwrap(), b"content");
    assert_eq!(
        staged.sha256.0,
        <[u8; 32]>::from(Sha256::digest(b"content"))
    );
    // Again: the quick check finds it staged, with the same digest.
    let again = copy_file(&src, &dst, &scanned(7), &opts()).unwrap();
    assert!(!again.copied);
    assert_eq!(again.sha256, staged.sha256);
}

#[test]
fn a_part_is_the_bytes_of_its_range_in_the_kernel_and_through_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let tree = Tree::open_existing(dir.path()).unwrap();
    let (root, name) = tree.parent(Path::new("src"), false).unwrap();
    let src = Source { dir: &root, name };
    let data: Vec<u8> = (0..20u32 << 20).map(|i| (i * 7 + i / 4099) as u8).collect();
    fs::write(dir.path().join("src"), &data).unwrap();
    let meta = fs::metadata(dir.path().join("src")).unwrap();
    let seen = (
        crate::time::ns(meta.mtime(), meta.mtime_nsec()),
        crate::time::ns(meta.ctime(), meta.ctime_nsec()),
    );
    // 9 MiB: copied in the kernel; 5 bytes short of 1 MiB: buffered.
    for (offset, len, first) in [
        (3 << 20 | 5, 9 << 20, true),
        ((20 << 20) - 1_048_571, 1_048_571, false),
    ] {
        let dst = dir.path().join(format!("part-{offset}"));
        let part = Scanned {
            part: Some(PartOf {
                range: Range { offset, len },
                seen: (!first).then_some(seen),
            }),
            ..scanned(20 << 20)
        };
        let staged = copy_file(&src, &dst, &part, &opts()).unwrap();
        let want = &data[offset as usize..(offset + len) as usize];
        assert!(fs::read(&dst).unwrap() == want, "{offset}");
        assert_eq!(staged.sha256.0, <[u8; 32]>::from(Sha256::digest(want)));
        assert_eq!(
            (staged.size, staged.mtime_ns, staged.ctime_ns),
            (20 << 20, seen.0, seen.1)
        );
    }
    // The file as its earlier parts saw it, or nothing.
    let part = Scanned {
        part: Some(PartOf {
            range: Range { offset: 0, len: 10 },
            seen: Some((seen.0 + 1, seen.1)),
        }),
        ..scanned(20 << 20)
    };
    match copy_file(&src, &dir.path().join("late"), &part, &opts()) {
        Err(CopyError::ChangedSinceScan(why)) => {
            assert!(why.contains("earlier parts"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!dir.path().join("late").exists());
}

#[test]
fn a_size_or_a_file_other_than_the_scanned_one_is_a_change_and_nothing_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let tree = Tree::open_existing(dir.path()).unwrap();
    let (root, name) = tree.parent(Path::new("src"), false).unwrap();
    let src = Source { dir: &root, name };
    let dst = dir.path().join("dst");
    fs::write(dir.path().join("src"), b"").unwrap();
    match copy_file(&src, &dst, &scanned(4096), &opts()) {
        Err(CopyError::ChangedSinceScan(why)) => assert_eq!(why, "4096 bytes then, 0 now"),
        other => panic!("{other:?}"),
    }
    let ino = fs::metadata(dir.path().join("src")).unwrap().ino();
    let other = Scanned {
        ino: Some(ino + 1),
        ..scanned(0)
    };
    assert!(matches!(
        copy_file(&src, &dst, &other, &opts()),
        Err(CopyError::ChangedSinceScan(_))
    ));
    // A symlink in its place.
    fs::remove_file(dir.path().join("src")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.path().join("src")).unwrap();
    assert!(matches!(
        copy_file(&src, &dst, &scanned(0), &opts()),
        Err(CopyError::ChangedSinceScan(_))
    ));
    assert!(!dst.exists());
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["src"], "no temporary left");
}
