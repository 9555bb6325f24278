use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::*;

fn both(root: &Path) -> [Tree; 2] {
    [
        Tree::open(root).unwrap(),
        Tree::open_without_openat2(root).unwrap(),
    ]
}

#[test]
fn only_plain_names_are_accepted() {
    for bad in ["", "/abs", "../x", "a/../../x", "./x", "a/./b/.."] {
        assert!(names(Path::new(bad)).is_err(), "{bad:?}");
    }
    assert_eq!(
        names(Path::new("a/b/c")).unwrap(),
        [OsStr::new("a"), OsStr::new("b"), OsStr::new("c")]
    );
}

#[test]
fn missing_directories_are_made_and_symlinks_on_the_way_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("to");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    for tree in both(&root) {
        let (dir, name) = tree.parent(Path::new("a/b/c.txt"), true).unwrap();
        assert_eq!(name, "c.txt");
        assert_eq!(dir.path(), root.join("a/b"));
        assert!(root.join("a/b").is_dir());
    }
    std::os::unix::fs::symlink(&outside, root.join("a/link")).unwrap();
    std::fs::write(root.join("a/file"), "x").unwrap();
    for tree in both(&root) {
        match tree.parent(Path::new("a/link/x/y"), true) {
            Err(Refused::Symlink(p)) => assert_eq!(p, root.join("a/link")),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("went through a symlink"),
        }
        match tree.parent(Path::new("a/file/y"), true) {
            Err(Refused::NotDir(p)) => assert_eq!(p, root.join("a/file")),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("went through a file"),
        }
        assert!(matches!(
            tree.dir(Path::new("a/link")),
            Err(Refused::Symlink(_))
        ));
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn a_file_is_written_under_a_temporary_name_and_renamed_over_a_symlink_not_through_it() {
    use std::io::Write;
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("to");
    let victim = t.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let tree = Tree::open(&root).unwrap();
    std::os::unix::fs::symlink(&victim, root.join("notes")).unwrap();
    let (dir, name) = tree.parent(Path::new("notes"), true).unwrap();
    let (mut f, tmp) = dir.create_temp().unwrap();
    assert!(tmp.as_bytes().starts_with(b".reel-tmp-"));
    f.write_all(b"restored").unwrap();
    // Not replacing: the existing name is kept.
    let e = dir.rename(&tmp, name, false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    dir.rename(&tmp, name, true).unwrap();
    assert_eq!(std::fs::read(root.join("notes")).unwrap(), b"restored");
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    // Never over a directory.
    std::fs::create_dir(root.join("d")).unwrap();
    let (f, tmp) = dir.create_temp().unwrap();
    drop(f);
    let e = dir.rename(&tmp, OsStr::new("d"), true).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
}

#[test]
fn fifos_get_their_exact_mode_and_symlinks_are_never_chmodded_through() {
    let t = tempfile::tempdir().unwrap();
    let tree = Tree::open(t.path()).unwrap();
    let dir = tree.root();
    // 0664 whatever the umask (022 takes the group's write bit).
    let name = dir.mknod_temp(SFlag::S_IFIFO, 0o664, 0).unwrap();
    let m = std::fs::symlink_metadata(t.path().join(&name)).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o664);
    let target = t.path().join("target");
    std::fs::write(&target, "").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&target, t.path().join("l")).unwrap();
    assert!(dir.chmod_nofollow(OsStr::new("l"), 0o777).is_err());
    assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o7777, 0o600);
}

#[test]
fn setuid_survives_the_owner_being_set() {
    if !nix::unistd::geteuid().is_root() {
        return; // only root can give a file away and keep setuid
    }
    let t = tempfile::tempdir().unwrap();
    let tree = Tree::open(t.path()).unwrap();
    let (f, tmp) = tree.root().create_temp().unwrap();
    let problems = apply(
        f.as_fd(),
        &Meta {
            uid: 65534,
            gid: 65534,
            mode: 0o4755,
            mtime_ns: 1_500_000_000_123_456_789,
            xattrs: Vec::new(),
            chown: true,
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    let m = std::fs::metadata(t.path().join(tmp)).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (65534, 65534, 0o4755)
    );
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_500_000_000, 123_456_789));
}
