//! reel-stage: what lands in the cache, and what happens when sources
//! change, vanish or cannot be read, and when the cache fills up.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reel_shared::manifest::{EntryType, ManifestReader, Record};
use reel_shared::spool::{Queue, Spool};
use sha2::Digest as _;

use crate::support::{CONFIG, Env, bin};

fn spool(env: &Env) -> Spool {
    Spool::open(&env.path("var/spool")).unwrap()
}

fn records(env: &Env, q: Queue) -> BTreeMap<String, Record> {
    let spool = spool(env);
    let mut out = BTreeMap::new();
    for id in spool.list(q).unwrap() {
        let (_, mut r) = ManifestReader::open(&spool.item_path(q, &id)).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            out.insert(rec.path.to_string_lossy().into_owned(), rec);
        }
    }
    out
}

fn sha(path: &Path) -> [u8; 32] {
    sha2::Sha256::digest(std::fs::read(path).unwrap()).into()
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    xattr::set(path, name, value).unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).unwrap()
}

/// Every file staged as a copy of its own (no bundles): what the tests of
/// copies look at.
fn unbundled(env: &Env) {
    env.write(
        "pipeline.toml",
        &format!("{CONFIG}\n[cache]\nbundle_below = \"0\"\n"),
    );
}

fn tree(env: &Env) {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    std::fs::write(src.join("dir/a.txt"), "alpha").unwrap();
    std::fs::write(src.join("dir/sub/b.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(
        src.join("big.bin"),
        (0..12u32 << 20)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::set_permissions(
        src.join("dir/a.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("dir/a.txt", src.join("link")).unwrap();
    std::fs::hard_link(src.join("dir/a.txt"), src.join("hard")).unwrap();
    set_xattr(&src.join("dir/sub/b.bin"), "user.origin", b"lab 3");
    let t = std::time::UNIX_EPOCH + Duration::new(1_650_000_000, 123_456_789);
    std::fs::File::options()
        .write(true)
        .open(src.join("dir/sub/b.bin"))
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn staged_copies_keep_content_metadata_links_and_xattrs() {
    let env = Env::new();
    unbundled(&env);
    tree(&env);
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(env.path("src/dir/sub/b.bin"), Some(1234), Some(4321)).unwrap();
    }
    env.run("reel-scan", &[]).expect(0);
    let run = env.run("reel-stage", &[]);
    run.expect(0);
    assert!(
        spool(&env).list(Queue::Scanned).unwrap().is_empty(),
        "{}",
        run.report()
    );
    let staged = records(&env, Queue::Staged);
    assert_eq!(staged.len(), 7, "{staged:#?}");
    let id = spool(&env).list(Queue::Staged).unwrap().remove(0);
    let cache = env.path("var/cache/staged/home").join(&id);
    for (path, r) in &staged {
        let src = env.path("src").join(path);
        if r.entry == EntryType::Dir {
            // Made from its record: nothing of it in the cache.
            assert_eq!(r.cache, None, "{path}");
            assert_eq!(r.mode, std::fs::metadata(&src).unwrap().mode() & 0o7777);
            continue;
        }
        let dst = r.cache.as_ref().expect("cache path set");
        assert!(dst.starts_with(&cache), "{}", dst.display());
        let (s, d) = (
            std::fs::symlink_metadata(&src).unwrap(),
            std::fs::symlink_metadata(dst).unwrap(),
        );
        assert_eq!(s.file_type(), d.file_type(), "{path}");
        // The record keeps the mode; the copy in the cache is private.
        assert_eq!(r.mode, s.mode() & 0o7777, "{path}");
        match r.entry {
            EntryType::Symlink => {}
            _ => assert_eq!(d.mode() & 0o7777, 0o600, "{path}"),
        }
        assert_eq!(
            (s.mtime(), s.mtime_nsec()),
            (d.mtime(), d.mtime_nsec()),
            "{path}"
        );
        assert_eq!((s.uid(), s.gid()), (d.uid(), d.gid()), "{path}");
        if s.is_file() {
            assert_eq!(r.sha256.unwrap().0, sha(&src), "{path}");
            assert_eq!(sha(dst), sha(&src), "{path}");
        }
    }
    assert_eq!(
        std::fs::read_link(cache.join("link")).unwrap(),
        Path::new("dir/a.txt")
    );
    let (a, h) = (
        std::fs::metadata(cache.join("dir/a.txt")).unwrap(),
        std::fs::metadata(cache.join("hard")).unwrap(),
    );
    assert_eq!(a.ino(), h.ino(), "hard links stay linked");
    assert_eq!(
        get_xattr(&cache.join("dir/sub/b.bin"), "user.origin").as_deref(),
        Some(&b"lab 3"[..])
    );
    assert_eq!(staged["hard"].entry, EntryType::Hardlink);
}

#[test]
fn a_file_already_staged_is_not_copied_again() {
    let env = Env::new();
    unbundled(&env);
    tree(&env);
    let scan = env.run("reel-scan", &["--out", "-"]);
    scan.expect(0);
    let stage = |input: &str| {
        let mut child = Command::new(bin("reel-stage"))
            .args(["--in", "-", "--out", "-"])
            .current_dir(env.root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (first, err1) = stage(&scan.stdout);
    assert!(
        err1.contains("3 files: 3 copied, 0 already staged"),
        "{err1}"
    );
    let (second, err2) = stage(&scan.stdout);
    assert!(
        err2.contains("3 files: 0 copied, 3 already staged"),
        "{err2}"
    );
    let digests = |m: &str| {
        m.lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                Some((
                    v["path"].as_str()?.to_string(),
                    v["sha256"].as_str()?.to_string(),
                ))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(&first).len(), 4, "{first}");
    assert_eq!(
        digests(&first),
        digests(&second),
        "same digests from the quick check"
    );
    assert!(
        spool(&env).list(Queue::Scanned).unwrap().is_empty(),
        "stdin items were finished"
    );
}

/// The staged copy being written for `item` right now: the hidden
/// temporary under the item's cache directory, with its length.
fn temporary(env: &Env, item: &str) -> Option<(std::path::PathBuf, u64)> {
    walk(&env.path("var/cache/staged/home").join(item))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".reel-tmp"))
        .find_map(|p| Some((p.clone(), std::fs::metadata(&p).ok()?.len())))
}

#[test]
fn a_file_rewritten_during_its_copy_is_not_staged() {
    use std::os::unix::fs::FileExt;
    let env = Env::new();
    std::fs::write(env.path("src/steady.txt"), "steady").unwrap();
    // 64 MiB at 1 MiB/s: an attempt that nobody disturbed would take a
    // minute; each one here is caught while its copy is under way.
    let size: u64 = 64 << 20;
    std::fs::write(env.path("src/busy.log"), vec![b'a'; size as usize]).unwrap();
    env.run("reel-scan", &[]).expect(0);
    let item = spool(&env).list(Queue::Scanned).unwrap().remove(0);
    // One writer with one open handle rewrites it in place: same size,
    // new content.
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .open(env.path("src/busy.log"))
        .unwrap();
    let mut stage = env.spawn("reel-stage", &["-v", "--bwlimit", "1M", "--retries", "1"]);
    for attempt in 1..=2u8 {
        if attempt > 1 {
            stage.wait_for_line(&format!("again (attempt {attempt})"));
        }
        // The copy has begun and, reel-stage stopped, cannot end before the
        // rewrite lands.
        let frozen = stage.freeze_when("a copy under way", || {
            temporary(&env, &item).is_some_and(|(_, len)| len > 0 && len < size)
        });
        writer.write_all_at(&[attempt; 4096], 0).unwrap();
        drop(frozen);
    }
    let run = stage.finish();
    run.expect(1);
    assert!(
        run.stderr
            .contains("busy.log: kept changing while it was copied (2 attempts)"),
        "{}",
        run.report()
    );
    let staged = records(&env, Queue::Staged);
    assert!(
        staged.contains_key("steady.txt") && !staged.contains_key("busy.log"),
        "{staged:?}"
    );
    let copies: Vec<_> = walk(&env.path("var/cache"))
        .into_iter()
        .filter(|p| {
            p.to_string_lossy().contains("busy.log") || p.to_string_lossy().contains(".reel-tmp")
        })
        .collect();
    assert!(copies.is_empty(), "no torn copy in the cache: {copies:?}");
}

#[test]
fn a_file_whose_size_changed_since_the_scan_is_reported_and_left_for_the_next_scan() {
    let env = Env::new();
    std::fs::write(env.path("src/steady.txt"), "steady").unwrap();
    std::fs::write(env.path("src/log.txt"), vec![b'x'; 100_000]).unwrap();
    env.run("reel-scan", &[]).expect(0);
    // A writer that truncates, then writes: reel-stage comes between.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(env.path("src/log.txt"))
        .unwrap();
    let run = env.run("reel-stage", &[]);
    run.expect(1);
    assert!(
        run.stderr.contains(
            "log.txt: changed since it was scanned (100000 bytes then, 0 now); the next scan takes it"
        ),
        "{}",
        run.report()
    );
    let staged = records(&env, Queue::Staged);
    assert_eq!(staged.keys().collect::<Vec<_>>(), ["steady.txt"]);
    // The writer finishes; the next scan and stage take the new content.
    std::fs::write(env.path("src/log.txt"), b"the whole new content").unwrap();
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    let staged = records(&env, Queue::Staged);
    let rec = &staged["log.txt"];
    assert_eq!(rec.size, 21);
    assert_eq!(rec.sha256.unwrap().0, sha(&env.path("src/log.txt")));
}

#[test]
fn a_file_left_out_of_an_item_leaves_no_copy_from_a_killed_run_in_the_cache() {
    let env = Env::new();
    unbundled(&env);
    std::fs::write(env.path("src/kept.txt"), "kept").unwrap();
    std::fs::write(env.path("src/log.txt"), vec![b'x'; 100_000]).unwrap();
    std::fs::hard_link(env.path("src/log.txt"), env.path("src/log.txt.link")).unwrap();
    env.run("reel-scan", &[]).expect(0);
    let item = spool(&env).list(Queue::Scanned).unwrap().remove(0);
    // What a run killed after copying and linking log.txt leaves, with the
    // temporaries it was making; then log.txt changes.
    let dir = env.path("var/cache/staged/home").join(&item);
    let copy = dir.join("log.txt");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(&copy, vec![b'x'; 100_000]).unwrap();
    std::fs::hard_link(&copy, dir.join("log.txt.link")).unwrap();
    for tmp in [
        ".reel-tmp-hard-99999",
        ".reel-tmp-0123456789abcdef",
        "sub/.reel-tmp-link-99999",
    ] {
        std::fs::write(dir.join(tmp), "half made").unwrap();
    }
    std::fs::write(env.path("src/log.txt"), b"shorter now").unwrap();
    let run = env.run("reel-stage", &[]);
    run.expect(1);
    assert!(
        run.stderr.contains("log.txt: changed since it was scanned"),
        "{}",
        run.report()
    );
    assert!(!copy.exists(), "{}", run.report());
    assert_eq!(
        records(&env, Queue::Staged).keys().collect::<Vec<_>>(),
        ["kept.txt"]
    );
    // Nothing else of the killed run is left: only what the item holds.
    let left: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| p.strip_prefix(&dir).unwrap().to_path_buf())
        .collect();
    assert_eq!(left, [Path::new("kept.txt")], "{}", run.report());
}

#[test]
fn vanished_and_unreadable_files_are_reported_and_skipped() {
    let env = Env::new();
    std::fs::write(env.path("src/kept.txt"), "kept").unwrap();
    std::fs::write(env.path("src/gone.txt"), "gone").unwrap();
    std::fs::write(env.path("src/secret.txt"), "secret").unwrap();
    std::fs::set_permissions(
        env.path("src/secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    env.run("reel-scan", &[]).expect(0);
    std::fs::remove_file(env.path("src/gone.txt")).unwrap();
    let run = if nix::unistd::geteuid().is_root() {
        // Root reads everything: stage as nobody, with the test tree open to it.
        for entry in walk(&env.path("var")) {
            std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).unwrap();
        }
        env.run_as_nobody("reel-stage", &["src"])
    } else {
        env.run("reel-stage", &[])
    };
    run.expect(1);
    assert!(
        run.stderr
            .contains("gone.txt: vanished before it could be copied"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .contains("secret.txt: cannot read: Permission denied"),
        "{}",
        run.report()
    );
    let staged = records(&env, Queue::Staged);
    assert_eq!(staged.keys().collect::<Vec<_>>(), ["kept.txt"]);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_full_cache_stops_with_75_and_keeps_the_item() {
    let env = Env::new();
    tree(&env);
    // The cache is on the host's disk, however full that is: only the
    // injected ENOSPC may stop staging.
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[cache]\nhigh_water = \"100%\"\nlow_water = \"99%\"\n",
            crate::support::CONFIG
        ),
    );
    env.run("reel-scan", &[]).expect(0);
    let out = Command::new(bin("reel-stage"))
        .current_dir(env.root())
        .env_remove("REEL_CONFIG")
        .env("REEL_TEST_ENOSPC_AFTER", "50000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("is full") && stderr.contains("stays queued"),
        "{stderr}"
    );
    assert_eq!(
        spool(&env).list(Queue::Scanned).unwrap().len(),
        1,
        "the item stays in its queue"
    );
    assert!(records(&env, Queue::Staged).is_empty());
    let half: Vec<_> = walk(&env.path("var/cache/staged"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".reel-tmp"))
        .collect();
    assert!(half.is_empty(), "no temporary file left: {half:?}");
    // With room again (the injected limit gone, the disk below low_water),
    // it finishes.
    env.run("reel-stage", &[]).expect(0);
    assert_eq!(records(&env, Queue::Staged).len(), 7);
}

#[test]
fn above_high_water_staging_does_not_start() {
    let env = Env::new();
    tree(&env);
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[cache]\nhigh_water = \"0.01%\"\nlow_water = \"0%\"\n",
            crate::support::CONFIG
        ),
    );
    env.run("reel-scan", &[]).expect(0);
    let run = env.run("reel-stage", &[]);
    run.expect(75);
    assert!(
        run.stderr.contains("above high_water (0.01%)"),
        "{}",
        run.report()
    );
    assert_eq!(spool(&env).list(Queue::Scanned).unwrap().len(), 1);
}

#[test]
fn sigkill_in_the_middle_of_a_copy_leaves_no_half_file() {
    let env = Env::new();
    std::fs::write(env.path("src/large.bin"), vec![3u8; 16 << 20]).unwrap();
    env.run("reel-scan", &[]).expect(0);
    let id = spool(&env).list(Queue::Scanned).unwrap().remove(0);
    let mut stage = env.spawn("reel-stage", &["--bwlimit", "2M"]);
    // Killed while it is stopped with a copy half done.
    let frozen = stage.freeze_when("a copy half done", || {
        temporary(&env, &id).is_some_and(|(_, len)| len > 0 && len < 16 << 20)
    });
    stage.signal(nix::sys::signal::Signal::SIGKILL);
    drop(frozen);
    stage.finish();
    let dst = env
        .path("var/cache/staged/home")
        .join(&id)
        .join("large.bin");
    assert!(!dst.exists(), "the target never holds a partial copy");
    assert!(records(&env, Queue::Staged).is_empty());
    env.run("reel-stage", &[]).expect(0);
    assert_eq!(sha(&dst), sha(&env.path("src/large.bin")));
    assert_eq!(
        records(&env, Queue::Staged)["large.bin"].sha256.unwrap().0,
        sha(&dst)
    );
    let left: Vec<_> = walk(&env.path("var/cache"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".reel-tmp"))
        .collect();
    assert!(
        left.is_empty(),
        "the killed run's temporary copy was taken over: {left:?}"
    );
}

#[test]
fn a_directory_swapped_for_a_symlink_after_the_scan_is_not_followed() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("src/sub")).unwrap();
    std::fs::write(env.path("src/sub/a.txt"), "aaaa").unwrap();
    std::fs::write(env.path("src/c.txt"), "cccc").unwrap();
    std::fs::write(env.path("src/kept.txt"), "kept").unwrap();
    // Root's secrets, with the same names and sizes.
    std::fs::create_dir_all(env.path("secret")).unwrap();
    std::fs::write(env.path("secret/a.txt"), "SSSS").unwrap();
    std::fs::set_permissions(
        env.path("secret/a.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    env.run("reel-scan", &[]).expect(0);
    // A user swaps a directory for a symlink to the secrets, and a file for
    // another of the same size.
    std::fs::rename(env.path("src/sub"), env.path("src/sub.orig")).unwrap();
    std::os::unix::fs::symlink(env.path("secret"), env.path("src/sub")).unwrap();
    std::fs::write(env.path("src/c.new"), "SSSS").unwrap();
    std::fs::rename(env.path("src/c.new"), env.path("src/c.txt")).unwrap();
    let run = env.run("reel-stage", &[]);
    run.expect(1);
    assert!(
        run.stderr
            .contains("sub/a.txt: changed since it was scanned")
            && run.stderr.contains("is a symlink"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr.contains(
            "c.txt: changed since it was scanned (it is another file than the one scanned"
        ),
        "{}",
        run.report()
    );
    let staged = records(&env, Queue::Staged);
    assert_eq!(
        staged.keys().collect::<Vec<_>>(),
        ["kept.txt", "sub"],
        "{}",
        run.report()
    );
    for p in walk(&env.path("var/cache")) {
        if p.is_file() {
            assert_ne!(
                std::fs::read(&p).unwrap(),
                b"SSSS",
                "{} holds a secret",
                p.display()
            );
        }
    }
}

#[test]
fn small_files_without_extended_attributes_share_a_bundle() {
    let env = Env::new();
    tree(&env);
    env.run("reel-scan", &[]).expect(0);
    let run = env.run("reel-stage", &[]);
    run.expect(0);
    let staged = records(&env, Queue::Staged);
    let queue = spool(&env);
    let id = queue.list(Queue::Staged).unwrap().remove(0);
    let dir = env.path("var/cache/staged/.bundles/home").join(&id);
    // a.txt is in a bundle of the item, at its offset there.
    let a = &staged["dir/a.txt"];
    let bundle = a.cache.clone().expect("a bundle");
    assert!(bundle.starts_with(&dir), "{}", bundle.display());
    let at = a.cache_offset.expect("bundled") as usize;
    assert_eq!(&std::fs::read(&bundle).unwrap()[at..at + 5], b"alpha");
    assert_eq!(a.sha256.unwrap().0, sha(&env.path("src/dir/a.txt")));
    assert_eq!(
        std::fs::metadata(&bundle).unwrap().mode() & 0o777,
        0o600,
        "a bundle is private"
    );
    // Its hard link: the same bytes, no copy of its own.
    let h = &staged["hard"];
    assert_eq!((&h.cache, h.cache_offset), (&a.cache, a.cache_offset));
    assert_eq!(h.entry, EntryType::Hardlink);
    let copies = env.path("var/cache/staged/home").join(&id);
    assert!(!copies.join("dir/a.txt").exists());
    assert!(!copies.join("hard").exists());
    // An extended attribute, which a bundle cannot keep: a copy of its
    // own keeps it. A file of bundle_below or more: a copy of its own.
    let b = &staged["dir/sub/b.bin"];
    assert_eq!(b.cache_offset, None);
    assert_eq!(
        get_xattr(b.cache.as_ref().unwrap(), "user.origin").as_deref(),
        Some(&b"lab 3"[..])
    );
    assert_eq!(staged["big.bin"].cache_offset, None);
    // The item names its bundle directory: what reel-verify frees.
    let (header, _) = ManifestReader::open(&queue.item_path(Queue::Staged, &id)).unwrap();
    assert_eq!(
        header.extra["bundles"].as_str(),
        Some(dir.to_str().unwrap()),
        "{}",
        run.report()
    );
}

#[test]
fn a_file_rewritten_while_it_is_bundled_is_left_for_the_next_scan() {
    // A file that changed since the scan takes no room in the bundle: it
    // holds the bytes its records point at, nothing else.
    let env = Env::new();
    std::fs::write(env.path("src/a.txt"), "first").unwrap();
    std::fs::write(env.path("src/b.txt"), "second").unwrap();
    env.run("reel-scan", &[]).expect(0);
    std::fs::write(env.path("src/a.txt"), "first, longer now").unwrap();
    let run = env.run("reel-stage", &["--jobs", "1"]);
    run.expect(1);
    assert!(
        run.stderr.contains("a.txt: changed since it was scanned"),
        "{}",
        run.report()
    );
    let staged = records(&env, Queue::Staged);
    assert_eq!(staged.keys().collect::<Vec<_>>(), ["b.txt"]);
    let b = &staged["b.txt"];
    let bundle = std::fs::read(b.cache.as_ref().unwrap()).unwrap();
    assert_eq!(
        bundle, b"second",
        "the bundle holds what its records say, no more"
    );
}

#[test]
fn a_rerun_that_stages_nothing_removes_the_bundles_a_killed_run_left() {
    let env = Env::new();
    std::fs::write(env.path("src/log.txt"), vec![b'x'; 100_000]).unwrap();
    env.run("reel-scan", &[]).expect(0);
    let item = spool(&env).list(Queue::Scanned).unwrap().remove(0);
    // What a run killed while it bundled log.txt leaves; then log.txt
    // changes, so this run stages nothing.
    let dir = env.path("var/cache/staged/.bundles/home").join(&item);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("99999-0000"), vec![b'x'; 100_000]).unwrap();
    std::fs::write(env.path("src/log.txt"), b"shorter now").unwrap();
    let run = env.run("reel-stage", &[]);
    run.expect(1);
    assert!(records(&env, Queue::Staged).is_empty(), "{}", run.report());
    assert!(!dir.exists(), "{}", run.report());
}

#[test]
fn bundles_a_published_item_names_stay_when_its_rerun_stages_nothing() {
    let env = Env::new();
    std::fs::write(env.path("src/log.txt"), vec![b'x'; 100_000]).unwrap();
    env.run("reel-scan", &[]).expect(0);
    let queue = spool(&env);
    let item = queue.list(Queue::Scanned).unwrap().remove(0);
    let scanned = std::fs::read(queue.item_path(Queue::Scanned, &item)).unwrap();
    env.run("reel-stage", &[]).expect(0);
    // Killed after publishing the staged item, before finishing the
    // scanned one: it is claimed again, and log.txt has changed since.
    std::fs::write(queue.item_path(Queue::Scanned, &item), scanned).unwrap();
    std::fs::write(env.path("src/log.txt"), b"shorter now").unwrap();
    env.run("reel-stage", &[]).expect(1);
    let log = &records(&env, Queue::Staged)["log.txt"];
    let bundle = std::fs::read(log.cache.as_ref().unwrap()).unwrap();
    let at = log.cache_offset.unwrap() as usize;
    assert_eq!(&bundle[at..at + 100_000], &vec![b'x'; 100_000][..]);
}
