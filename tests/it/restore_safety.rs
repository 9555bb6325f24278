//! reel-restore run as root against trees that other users wrote and tapes
//! that may be forged: nothing outside `--to` changes, every member that is
//! refused is named, the rest comes back.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::{CONFIG, Env};

/// A drive on a virtual library, for `config` (a CONFIG-like text).
fn with_drive(config: &str) -> String {
    format!(
        "{config}\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"256M\"\nbuffer = \"4M\"\n"
    )
}

/// Scan, stage, pack, write and verify `stream` (all streams if empty).
fn back_up(env: &Env, stream: &str) {
    let args: &[&str] = if stream.is_empty() {
        &[]
    } else {
        &["--stream", stream]
    };
    env.run("reel-scan", args).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
    env.run("reel-write", &[]).expect(0);
    env.run("reel-verify", &[]).expect(0);
}

#[test]
fn a_symlink_named_like_the_temporary_of_a_file_cannot_redirect_its_content() {
    let env = Env::new();
    env.write("pipeline.toml", &with_drive(CONFIG));
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let victim = env.path("outside/passwd");
    env.write("outside/passwd", "root:x:0:0\n");
    // What a user can put in their own home.
    std::os::unix::fs::symlink(&victim, env.path("src/.notes.reel-part")).unwrap();
    env.write("src/notes", "x::0:0\n");
    back_up(&env, "");
    let run = env.run("reel-restore", &["", "--to", "out"]);
    run.expect(0);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root:x:0:0\n",
        "{}",
        run.report()
    );
    assert_eq!(
        std::fs::read_to_string(env.path("out/notes")).unwrap(),
        "x::0:0\n"
    );
    assert!(
        std::fs::symlink_metadata(env.path("out/notes"))
            .unwrap()
            .is_file()
    );
    assert_eq!(
        std::fs::read_link(env.path("out/.notes.reel-part")).unwrap(),
        victim
    );
}

#[test]
fn a_directory_never_gets_its_mode_through_a_symlink_of_the_same_name() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &with_drive(
            "[paths]\nspool = \"var/spool\"\ncache = \"var/cache\"\ncatalog = \"var/catalog\"\nlog = \"var/log\"\n\n\
             [[stream]]\nname = \"a\"\nsource = \"a\"\n\n[[stream]]\nname = \"b\"\nsource = \"b\"\n",
        ),
    );
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let somewhere = env.path("somewhere");
    std::fs::create_dir_all(&somewhere).unwrap();
    std::fs::set_permissions(&somewhere, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = std::fs::metadata(&somewhere).unwrap();
    // Stream a holds d -> somewhere; stream b a directory d, mode 1777.
    std::fs::create_dir_all(env.path("a")).unwrap();
    std::os::unix::fs::symlink(&somewhere, env.path("a/d")).unwrap();
    std::fs::create_dir_all(env.path("b/d")).unwrap();
    env.write("b/d/inside.txt", "inside");
    std::fs::set_permissions(env.path("b/d"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    back_up(&env, "a");
    back_up(&env, "b");
    let run = env.run("reel-restore", &["", "--to", "out"]);
    let after = std::fs::metadata(&somewhere).unwrap();
    assert_eq!(after.mode(), before.mode(), "{}", run.report());
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec()),
        "{}",
        run.report()
    );
    assert_eq!(std::fs::read_dir(&somewhere).unwrap().count(), 0);
    // The symlink came back (first on tape); the directory of the same
    // name, and what is in it, are refused and named.
    run.expect(65);
    assert_eq!(std::fs::read_link(env.path("out/d")).unwrap(), somewhere);
    assert!(
        run.stderr.contains("d (tape T00001L9 file ")
            && run.stderr.contains("d/inside.txt (tape T00001L9 file "),
        "{}",
        run.report()
    );
    assert!(!Path::new(&somewhere.join("inside.txt")).exists());
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).unwrap()
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    xattr::set(path, name, value).unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn root_restores_setuid_setgid_capabilities_fifos_and_devices_exactly() {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    use std::os::unix::fs::{PermissionsExt, chown};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root can make these (CI runs as root)");
        return;
    }
    let env = Env::new();
    env.write("pipeline.toml", &with_drive(CONFIG));
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let src = env.path("src");
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    // A setuid program owned by a user.
    env.write("src/suid", "#!/bin/sh\n");
    chown(src.join("suid"), Some(1000), Some(1000)).unwrap();
    mode(&src.join("suid"), 0o4755);
    // A setgid directory of a group, with a file in it.
    std::fs::create_dir(src.join("shared")).unwrap();
    env.write("src/shared/notes", "notes");
    chown(src.join("shared"), Some(0), Some(1001)).unwrap();
    mode(&src.join("shared"), 0o2775);
    // A program with a file capability (cap_net_bind_service, effective).
    env.write("src/capped", "binary");
    mode(&src.join("capped"), 0o755);
    let mut cap = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        cap.extend_from_slice(&word.to_le_bytes());
    }
    set_xattr(&src.join("capped"), "security.capability", &cap);
    let cap = xattr(&src.join("capped"), "security.capability").unwrap();
    // A FIFO and a device node, with modes the umask would change.
    nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o620)).unwrap();
    mode(&src.join("fifo"), 0o662);
    chown(src.join("fifo"), Some(1000), Some(1002)).unwrap();
    mknod(
        &src.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    mode(&src.join("null"), 0o666);
    back_up(&env, "");
    let run = env.run("reel-restore", &["", "--to", "out"]);
    run.expect(0);
    for rel in ["suid", "shared", "shared/notes", "capped", "fifo", "null"] {
        let (a, b) = (
            std::fs::symlink_metadata(src.join(rel)).unwrap(),
            std::fs::symlink_metadata(env.path("out").join(rel)).unwrap(),
        );
        assert_eq!(
            (a.mode(), a.uid(), a.gid(), a.rdev()),
            (b.mode(), b.uid(), b.gid(), b.rdev()),
            "{rel}: mode, owner, device\n{}",
            run.report()
        );
        assert_eq!(
            (a.mtime(), a.mtime_nsec()),
            (b.mtime(), b.mtime_nsec()),
            "{rel}"
        );
    }
    assert_eq!(
        xattr(&env.path("out/capped"), "security.capability").as_deref(),
        Some(&cap[..]),
        "{}",
        run.report()
    );
}
