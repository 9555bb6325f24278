//! reel-scan on generated trees, with the catalog written directly (the
//! verify stage that records members does not exist yet).

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use reel_shared::catalog::{Entry, journal};
use reel_shared::manifest::{Digest, EntryType, ManifestReader, Record};
use reel_shared::spool::{Queue, Spool};
use sha2::Digest as _;

use crate::support::Env;

fn spool(env: &Env) -> Spool {
    Spool::open(&env.path("var/spool")).unwrap()
}

/// Every record of every `scanned` item, by path.
fn scanned(env: &Env) -> Vec<Record> {
    let spool = spool(env);
    let mut out = Vec::new();
    for id in spool.list(Queue::Scanned).unwrap() {
        let (_, mut r) = ManifestReader::open(&spool.item_path(Queue::Scanned, &id)).unwrap();
        out.extend(r.records().map(Result::unwrap));
    }
    out
}

fn paths(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r.path.to_string_lossy().into_owned())
        .collect()
}

/// Record every scanned record as verified on tape T00001L9 and empty the
/// queue, as the pipeline will once it has written and verified them.
fn verify_all(env: &Env) {
    let spool = spool(env);
    let mut entries = Vec::new();
    for mut r in scanned(env) {
        if r.entry == EntryType::File {
            let data = std::fs::read(env.path("src").join(&r.path)).unwrap();
            r.sha256 = Some(Digest(sha2::Sha256::digest(&data).into()));
        }
        r.tape = Some("T00001L9".into());
        r.file = Some(1);
        r.block = Some(0);
        entries.push(Entry {
            stream: "home".into(),
            verified: "2026-11-23T12:00:00Z".into(),
            record: r,
        });
    }
    journal::append(&env.path("var/catalog"), "T00001L9", &entries).unwrap();
    for id in spool.list(Queue::Scanned).unwrap() {
        spool
            .claim_id(Queue::Scanned, &id)
            .unwrap()
            .unwrap()
            .finish()
            .unwrap();
    }
}

fn scan(env: &Env, args: &[&str]) -> crate::support::Run {
    env.run("reel-scan", args)
}

/// A tree with odd names, links and nested directories.
fn tree(env: &Env) {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    std::fs::write(src.join("a/one.txt"), "one").unwrap();
    std::fs::write(src.join("a/b/two.txt"), "two two").unwrap();
    std::fs::write(src.join("a/b/c/three.log"), "three").unwrap();
    std::fs::write(src.join("skip.tmp"), "temporary").unwrap();
    std::fs::write(
        src.join(std::ffi::OsStr::from_bytes(b"new\nline \xff")),
        "odd",
    )
    .unwrap();
    std::fs::write(src.join("-dash"), "dash").unwrap();
    std::os::unix::fs::symlink("a", src.join("link-to-a")).unwrap();
    std::fs::hard_link(src.join("a/one.txt"), src.join("hard-one")).unwrap();
}

fn set_mtime(path: &Path, secs: i64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn first_scan_lists_everything_then_nothing_once_verified() {
    let env = Env::new();
    tree(&env);
    scan(&env, &[]).expect(0);
    let first = scanned(&env);
    let want: BTreeSet<String> = [
        "a",
        "a/b",
        "a/b/c",
        "a/one.txt",
        "a/b/two.txt",
        "a/b/c/three.log",
        "skip.tmp",
        "new\nline \u{fffd}",
        "-dash",
        "link-to-a",
        "hard-one",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths(&first), want);
    let link = first
        .iter()
        .find(|r| r.path == Path::new("link-to-a"))
        .unwrap();
    assert_eq!(
        (link.entry, link.link.as_deref()),
        (EntryType::Symlink, Some(Path::new("a")))
    );
    let one = first
        .iter()
        .find(|r| r.path == Path::new("a/one.txt"))
        .unwrap();
    assert_eq!(
        one.entry,
        EntryType::File,
        "the smallest path of a link group is the file"
    );
    let hard = first
        .iter()
        .find(|r| r.path == Path::new("hard-one"))
        .unwrap();
    assert_eq!(
        (hard.entry, hard.link.as_deref()),
        (EntryType::Hardlink, Some(Path::new("a/one.txt")))
    );
    let odd = first
        .iter()
        .find(|r| r.path.as_os_str().as_bytes() == b"new\nline \xff")
        .unwrap();
    assert_eq!(odd.size, 3);
    // In flight: a second scan sends nothing again.
    let run = scan(&env, &[]);
    run.expect(0);
    assert_eq!(scanned(&env).len(), first.len(), "{}", run.report());
    assert!(
        run.stderr.contains(&format!("{} in flight", first.len())),
        "{}",
        run.report()
    );
    // Verified: still nothing.
    verify_all(&env);
    let run = scan(&env, &[]);
    run.expect(0);
    assert!(scanned(&env).is_empty(), "{}", run.report());
    assert!(run.stderr.contains("0 new, 0 changed"), "{}", run.report());
}

#[test]
fn touching_growing_and_renaming_list_exactly_those() {
    let env = Env::new();
    tree(&env);
    scan(&env, &[]).expect(0);
    verify_all(&env);
    let src = env.path("src");
    set_mtime(&src.join("a/one.txt"), 1_600_000_000);
    std::fs::write(src.join("a/b/c/three.log"), "three and more").unwrap();
    let dir_mtime = std::fs::metadata(src.join("a/b"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::rename(src.join("a/b/two.txt"), src.join("a/b/deux.txt")).unwrap();
    // Keep the directory's own mtime, so that only the file shows.
    std::fs::File::open(src.join("a/b"))
        .unwrap()
        .set_modified(dir_mtime)
        .unwrap();
    scan(&env, &[]).expect(0);
    assert_eq!(
        paths(&scanned(&env)),
        ["a/b/c/three.log", "a/b/deux.txt", "a/one.txt", "hard-one"]
            .into_iter()
            .map(String::from)
            .collect(),
        "a hard link group goes whole"
    );
}

#[test]
fn failed_items_are_not_in_flight() {
    let env = Env::new();
    tree(&env);
    scan(&env, &[]).expect(0);
    let spool = spool(&env);
    let id = spool.list(Queue::Scanned).unwrap().remove(0);
    spool
        .claim_id(Queue::Scanned, &id)
        .unwrap()
        .unwrap()
        .fail("test", "reel-stage")
        .unwrap();
    scan(&env, &[]).expect(0);
    assert_eq!(scanned(&env).len(), 11, "everything again");
}

#[test]
fn excludes_min_age_and_no_following_symlinks() {
    let env = Env::new();
    tree(&env);
    env.write(
        "pipeline.toml",
        &crate::support::CONFIG.replace(
            "source = \"src\"",
            "source = \"src\"\nexclude = [\"*.tmp\", \"a/b/c\"]\nmin_age = \"1h\"",
        ),
    );
    set_mtime(&env.path("src/a/one.txt"), 1_700_000_000);
    let run = scan(&env, &[]);
    run.expect(0);
    let got = paths(&scanned(&env));
    assert!(
        !got.contains("skip.tmp") && !got.contains("a/b/c") && !got.contains("a/b/c/three.log"),
        "{got:?}"
    );
    assert!(
        !got.contains("a/b/two.txt"),
        "modified just now: too recent"
    );
    assert!(got.contains("a/one.txt") && got.contains("a/b"), "{got:?}");
    assert!(
        !got.iter().any(|p| p.starts_with("link-to-a/")),
        "symlinks are not followed"
    );
    assert!(run.stderr.contains("2 excluded"), "{}", run.report());
}

#[test]
fn checksum_mode_sees_content_changes_that_keep_size_and_mtime() {
    let env = Env::new();
    tree(&env);
    scan(&env, &[]).expect(0);
    verify_all(&env);
    let f = env.path("src/a/b/c/three.log");
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    std::fs::write(&f, "THREE").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    scan(&env, &[]).expect(0);
    assert!(
        scanned(&env).is_empty(),
        "size and mtime match: not seen without --checksum"
    );
    scan(&env, &["--checksum"]).expect(0);
    assert_eq!(
        paths(&scanned(&env)),
        BTreeSet::from(["a/b/c/three.log".to_string()])
    );
}

#[test]
fn stdout_mode_and_batches() {
    let env = Env::new();
    tree(&env);
    let run = scan(&env, &["--out", "-", "--batch-records", "4"]);
    run.expect(0);
    assert!(scanned(&env).is_empty(), "nothing went to the spool");
    let headers = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("{\"reel\":"))
        .count();
    let records = run.stdout.lines().count() - headers;
    assert_eq!(records, 11);
    assert!(headers >= 3, "cut every 4 records: {}", run.report());
}

#[test]
fn a_directory_named_on_the_command_line_uses_its_stream() {
    let env = Env::new();
    tree(&env);
    scan(&env, &["src"]).expect(0);
    let spool = spool(&env);
    assert!(spool.list(Queue::Scanned).unwrap()[0].starts_with("home-"));
    let run = scan(&env, &["--stream", "nope"]);
    run.expect(64);
    let run = scan(&env, &["missing-dir"]);
    run.expect(66);
    assert!(
        run.stderr.contains("cannot open the source"),
        "{}",
        run.report()
    );
}

#[test]
fn unreadable_directories_are_reported_and_skipped() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    tree(&env);
    std::fs::create_dir(env.path("src/secret")).unwrap();
    std::fs::write(env.path("src/secret/file"), "x").unwrap();
    std::fs::set_permissions(
        env.path("src/secret"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let run = if nix::unistd::geteuid().is_root() {
        // Root reads everything: scan as nobody, with the test tree open to it.
        env.run_as_nobody("reel-scan", &["src", "src/a", "src/a/b", "src/a/b/c"])
    } else {
        scan(&env, &[])
    };
    std::fs::set_permissions(
        env.path("src/secret"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    run.expect(1);
    assert!(
        run.stderr.contains("secret: cannot open the directory"),
        "{}",
        run.report()
    );
    assert!(run.stderr.contains("1 skipped"), "{}", run.report());
    let got = paths(&scanned(&env));
    assert!(
        got.contains("a/one.txt") && got.contains("secret") && !got.contains("secret/file"),
        "{got:?}"
    );
}

#[test]
fn paths_longer_than_path_max_are_scanned() {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::{Mode, mkdirat};
    let env = Env::new();
    // 40 levels of 120-byte names: a path of about 4,840 bytes, which no
    // single open() can take; built with *at() calls.
    let mut dir = nix::fcntl::open(
        env.path("src").as_path(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    let mut rel = String::new();
    for i in 0..40 {
        let name = format!("{i:02}-{}", "d".repeat(117));
        mkdirat(&dir, name.as_str(), Mode::from_bits_truncate(0o755)).unwrap();
        dir = openat(
            &dir,
            name.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(&name);
    }
    let fd = openat(
        &dir,
        "bottom.txt",
        OFlag::O_WRONLY | OFlag::O_CREAT,
        Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    nix::unistd::write(&fd, b"deep").unwrap();
    drop(fd);
    let run = scan(&env, &[]);
    run.expect(0);
    let records = scanned(&env);
    let bottom = format!("{rel}/bottom.txt");
    assert!(bottom.len() > 4096);
    let r = records
        .iter()
        .find(|r| r.path.as_os_str().as_bytes() == bottom.as_bytes())
        .expect("the deep file is listed");
    assert_eq!(r.size, 4);
    assert_eq!(records.len(), 41);
}

#[test]
fn a_file_with_a_future_mtime_is_backed_up_with_a_warning_naming_it() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!("{}min_age = \"1h\"\n", crate::support::CONFIG),
    );
    env.write("src/from-the-future.txt", "clock set wrong");
    // 2400-01-01T00:00:00Z (ext4 keeps times up to 2446)
    set_mtime(&env.path("src/from-the-future.txt"), 13_569_465_600);
    let run = scan(&env, &[]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("from-the-future.txt: its mtime (2400-01-01T00:00:00Z) is in the future; backed up anyway"),
        "{}",
        run.report()
    );
    assert!(run.stderr.contains("1 new"), "{}", run.report());
    assert!(paths(&scanned(&env)).contains("from-the-future.txt"));
}

#[test]
fn one_scan_of_a_stream_at_a_time() {
    let env = Env::new();
    tree(&env);
    env.run("reel", &["status"]).expect(0); // makes the spool
    // Another reel-scan of the stream holds its lock (as while it walks).
    let held = reel_shared::fsutil::lock_file(&env.path("var/spool/scan-home.lock"), false)
        .unwrap()
        .expect("free");
    let run = scan(&env, &[]);
    run.expect(75);
    assert!(
        run.stderr
            .contains("home: another reel-scan is scanning this stream"),
        "{}",
        run.report()
    );
    assert!(scanned(&env).is_empty(), "nothing queued twice");
    drop(held);
    scan(&env, &[]).expect(0);
    assert!(!scanned(&env).is_empty());
}
