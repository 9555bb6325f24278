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
