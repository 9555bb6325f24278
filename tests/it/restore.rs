//! reel find and reel-restore on the virtual library: files found in the
//! catalog, brought back byte-identical by seeking straight to them, and
//! extraction that cannot be turned against the machine.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::{Env, bytes_read};
use crate::verify::{setup, to_tape};

fn backed_up() -> Env {
    let env = Env::new();
    setup(&env);
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    env
}

#[test]
fn reel_find_answers_globs_and_prefixes_with_where_on_tape() {
    let env = backed_up();
    let run = env.run("reel", &["find", "dir/*.bin", "--json"]);
    run.expect(0);
    let found: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(found.len(), 20, "dir/f00.bin … dir/f19.bin, not dir/sub/*");
    assert!(
        found
            .iter()
            .all(|f| f["tape"] == "T00001L9" && f["block"].is_u64())
    );
    let run = env.run("reel", &["find", "dir/sub"]);
    run.expect(0);
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.stdout); // sub, copy, copy2, hard, link
    env.run("reel", &["find", "nothing-like-this"]).expect(1);
    // Through the path index of a built generation: the same answers.
    let before = env.run("reel", &["find", "", "--json"]).stdout;
    env.run("reel", &["catalog", "rebuild"]).expect(0);
    assert!(env.path("var/catalog/index/current/names.idx").is_file());
    assert_eq!(env.run("reel", &["find", "", "--json"]).stdout, before);
    let run = env.run("reel", &["find", "dir/*.bin", "--json"]);
    let again: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(again, found);
}

#[test]
fn everything_comes_back_byte_identical_with_its_metadata() {
    let env = backed_up();
    let run = env.run("reel-restore", &["", "--to", "out"]);
    run.expect(0);
    let src = env.path("src");
    let out = env.path("out");
    for rel in [
        "big.bin",
        "dir/f07.bin",
        "dir/sub/copy2.bin",
        "dir/sub/hard",
    ] {
        assert_eq!(
            std::fs::read(out.join(rel)).unwrap(),
            std::fs::read(src.join(rel)).unwrap(),
            "{rel}"
        );
        let (a, b) = (
            std::fs::metadata(out.join(rel)).unwrap(),
            std::fs::metadata(src.join(rel)).unwrap(),
        );
        assert_eq!(
            (a.mtime(), a.mtime_nsec()),
            (b.mtime(), b.mtime_nsec()),
            "{rel}"
        );
        assert_eq!(a.mode() & 0o7777, b.mode() & 0o7777, "{rel}");
    }
    let odd = std::ffi::OsStr::from_bytes(b"odd \xff name");
    assert_eq!(std::fs::read(out.join(odd)).unwrap(), b"odd");
    assert_eq!(
        std::fs::read_link(out.join("dir/sub/link")).unwrap(),
        Path::new("../f01.bin")
    );
    // A hard link comes back as one.
    assert_eq!(
        std::fs::metadata(out.join("dir/sub/hard")).unwrap().ino(),
        std::fs::metadata(out.join("dir/f03.bin")).unwrap().ino()
    );
    // Nothing is overwritten without being asked.
    let again = env.run("reel-restore", &["big.bin", "--to", "out"]);
    again.expect(65);
    assert!(again.stderr.contains("exists"), "{}", again.report());
    env.run("reel-restore", &["big.bin", "--to", "out", "--overwrite"])
        .expect(0);
}

#[test]
fn one_file_is_read_by_seeking_to_it_not_by_reading_its_archive() {
    let env = backed_up();
    let archive: u64 = std::fs::read_dir(env.path("lib/tapes/V00001L9"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap();
    let run = env.run("reel-restore", &["dir/f19.bin", "--to", "one"]);
    run.expect(0);
    let size = std::fs::metadata(env.path("src/dir/f19.bin"))
        .unwrap()
        .len();
    let read = bytes_read(&run.stderr);
    // The file, its header, and at most the rest of the two tape blocks
    // (256 KiB) it straddles.
    assert!(
        read >= size && read <= size + 2 * 256 * 1024,
        "{read} for {size}"
    );
    assert!(read < archive, "{read} of an archive of {archive}");
    assert_eq!(
        std::fs::read(env.path("one/dir/f19.bin")).unwrap(),
        std::fs::read(env.path("src/dir/f19.bin")).unwrap()
    );
    // --dry-run says where it would go and what it would read.
    let dry = env.run("reel-restore", &["dir/f19.bin", "--dry-run"]);
    dry.expect(0);
    assert!(
        dry.stdout.contains("tape T00001L9: 1 member(s)"),
        "{}",
        dry.stdout
    );
}

#[test]
fn a_symlink_on_the_way_out_of_the_target_is_refused() {
    let env = backed_up();
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(env.path("out")).unwrap();
    // A trap: out/dir points elsewhere.
    std::os::unix::fs::symlink(&outside, env.path("out/dir")).unwrap();
    let run = env.run("reel-restore", &["dir/f02.bin", "--to", "out"]);
    run.expect(65);
    assert!(run.stderr.contains("is a symlink"), "{}", run.report());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn a_member_that_rotted_on_tape_is_kept_aside_and_reported() {
    let env = backed_up();
    let found = env.run("reel", &["find", "big.bin", "--json"]);
    let f: Vec<serde_json::Value> = serde_json::from_str(&found.stdout).unwrap();
    let (file, data_offset) = (
        f[0]["file"].as_u64().unwrap(),
        f[0]["data_offset"].as_u64().unwrap(),
    );
    crate::verify::flip_on_tape(&env, (file, data_offset), 4000, 0x80);
    let run = env.run("reel-restore", &["big.bin", "--to", "out"]);
    run.expect(65);
    assert!(run.stderr.contains("kept as"), "{}", run.report());
    assert!(env.path("out/big.bin.reel-corrupt").is_file());
    assert!(!env.path("out/big.bin").exists());
}

#[test]
fn at_a_time_gives_the_version_taken_by_then() {
    let env = backed_up();
    // A time in whole seconds after the first version was taken: the
    // clock's next second.
    let taken = reel_shared::time::Utc::now().rfc3339();
    crate::support::wait_until("the clock's next second", || {
        reel_shared::time::Utc::now().rfc3339() > taken
    });
    let before = reel_shared::time::Utc::now().rfc3339();
    std::fs::write(env.path("src/dir/f05.bin"), b"the second version").unwrap();
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    let all = env.run("reel", &["find", "dir/f05.bin", "--all-versions", "--json"]);
    let versions: Vec<serde_json::Value> = serde_json::from_str(&all.stdout).unwrap();
    assert_eq!(versions.len(), 2);
    env.run("reel-restore", &["dir/f05.bin", "--to", "new"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("new/dir/f05.bin")).unwrap(),
        b"the second version"
    );
    env.run(
        "reel-restore",
        &["dir/f05.bin", "--to", "old", "--at", &before],
    )
    .expect(0);
    assert_ne!(
        std::fs::read(env.path("old/dir/f05.bin")).unwrap(),
        b"the second version"
    );
}

#[test]
fn a_restore_across_tapes_loads_each_through_the_changer() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[pack]\narchive_size = \"1M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"4M\"\nbuffer = \"4M\"\n",
            crate::support::CONFIG
        ),
    );
    std::fs::create_dir_all(env.path("src")).unwrap();
    for i in 0..24 {
        let data: Vec<u8> = (0..200_000).map(|j| ((i * 13 + j) % 251) as u8).collect();
        std::fs::write(env.path(&format!("src/f{i:02}.bin")), data).unwrap();
    }
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    let found = env.run("reel", &["find", "", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&found.stdout).unwrap();
    let mut tapes: Vec<&str> = list.iter().filter_map(|f| f["tape"].as_str()).collect();
    tapes.sort();
    tapes.dedup();
    assert!(tapes.len() >= 2, "{tapes:?}");
    let run = env.run("reel-restore", &["", "--to", "out"]);
    run.expect(0);
    // Again with the drive empty: the changer brings every tape.
    env.run("reel", &["changer", "unload", "-f", "virtual:lib"])
        .expect(0);
    let again = env.run("reel-restore", &["", "--to", "out2"]);
    again.expect(0);
    for out in ["out", "out2"] {
        for i in 0..24 {
            let rel = format!("f{i:02}.bin");
            assert_eq!(
                std::fs::read(env.path(out).join(&rel)).unwrap(),
                std::fs::read(env.path("src").join(&rel)).unwrap(),
                "{out}/{rel}"
            );
        }
    }
}

#[test]
fn from_tape_alone_without_a_catalog_using_the_archive_indexes() {
    let env = backed_up();
    std::fs::remove_dir_all(env.path("var/catalog")).unwrap();
    let run = env.run(
        "reel-restore",
        &[
            "--from-tape",
            "virtual:lib",
            "dir/f07.bin",
            "big.bin",
            "--to",
            "out",
        ],
    );
    run.expect(0);
    assert!(
        run.stderr.contains("each archive's own index"),
        "{}",
        run.report()
    );
    for rel in ["dir/f07.bin", "big.bin"] {
        assert_eq!(
            std::fs::read(env.path("out").join(rel)).unwrap(),
            std::fs::read(env.path("src").join(rel)).unwrap()
        );
    }
}

#[test]
fn from_tape_reads_a_closed_tapes_own_catalog() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[pack]\narchive_size = \"1M\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"4M\"\nbuffer = \"4M\"\n",
            crate::support::CONFIG
        ),
    );
    std::fs::create_dir_all(env.path("src")).unwrap();
    for i in 0..16 {
        let data: Vec<u8> = (0..200_000).map(|j| ((i * 17 + j) % 251) as u8).collect();
        std::fs::write(env.path(&format!("src/f{i:02}.bin")), data).unwrap();
    }
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
    // The tape fills and is closed with its REEL-TAPE.jsonl.
    env.run("reel-write", &[]).expect(69);
    std::fs::remove_dir_all(env.path("var/catalog")).unwrap();
    let run = env.run(
        "reel-restore",
        &["--from-tape", "virtual:lib", "f0", "--to", "out"],
    );
    run.expect(0);
    assert!(
        run.stderr.contains("its closing REEL-TAPE.jsonl"),
        "{}",
        run.report()
    );
    let restored = std::fs::read_dir(env.path("out")).unwrap().count();
    assert!(restored >= 1, "{}", run.report());
    for e in std::fs::read_dir(env.path("out")).unwrap().flatten() {
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            std::fs::read(env.path("src").join(e.file_name())).unwrap()
        );
    }
}

#[test]
fn a_hostile_catalog_cannot_write_outside_the_target() {
    use reel_shared::catalog::journal;
    use reel_shared::manifest::EntryType;
    let env = backed_up();
    // Entries a forged or damaged catalog (or tape index) could hold: real
    // data on tape, but paths that climb out, an absolute path, and a
    // symlink leading out followed by a file written through it.
    let cat = env.path("var/catalog");
    let mut real = None;
    journal::read(&journal::journal_path(&cat, "T00001L9"), |e| {
        if e.record.path == Path::new("dir/f04.bin") {
            real = Some(e);
        }
        Ok(())
    })
    .unwrap();
    let real = real.unwrap();
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let forged = |path: &str| {
        let mut e = real.clone();
        e.record.path = path.into();
        e.verified = "2099-01-01T00:00:00Z".into();
        e
    };
    let mut link = forged("trap");
    link.record.entry = EntryType::Symlink;
    (link.record.cache, link.record.cache_offset) = (None, None);
    link.record.link = Some(outside.clone());
    link.record.block = Some(0); // first in tape order
    let through = forged("trap/escaped.bin");
    journal::append(&cat, "T00001L9", &[link, through]).unwrap();
    let run = env.run("reel-restore", &["", "--to", "out"]);
    run.expect(65);
    assert!(run.stderr.contains("is a symlink"), "{}", run.report());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // The honest members still came back.
    assert_eq!(
        std::fs::read(env.path("out/dir/f04.bin")).unwrap(),
        std::fs::read(env.path("src/dir/f04.bin")).unwrap()
    );
    // Paths that climb out or start at / do not even get through the
    // catalog's reader: a clear error naming the line, nothing written.
    let jpath = journal::journal_path(&cat, "T00001L9");
    let text = std::fs::read_to_string(&jpath).unwrap();
    let last = text.lines().last().unwrap().to_string();
    for bad in ["../escaped.bin", "/abs-escaped.bin"] {
        let line = last.replace("\"trap/escaped.bin\"", &format!("{bad:?}"));
        assert_ne!(line, last);
        std::fs::write(&jpath, format!("{text}{line}\n")).unwrap();
        let run = env.run("reel-restore", &["", "--to", "out2"]);
        assert_ne!(run.code, Some(0), "{}", run.report());
        assert!(run.stderr.contains("T00001L9.jsonl:"), "{}", run.report());
        assert!(!env.path("escaped.bin").exists());
        assert!(!Path::new("/abs-escaped.bin").exists());
        assert!(
            !env.path("out2").exists(),
            "nothing restored from a bad catalog"
        );
    }
    std::fs::write(&jpath, &text).unwrap();
}

#[test]
fn a_file_split_across_archives_and_tapes_is_joined() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[pack]\narchive_size = \"2M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"8M\"\nbuffer = \"4M\"\n",
            crate::support::CONFIG
        ),
    );
    std::fs::create_dir_all(env.path("src")).unwrap();
    // Larger than nine tenths of a tape: split into parts of 2M.
    let huge: Vec<u8> = (0..9_500_000u32)
        .map(|j| (j % 253) as u8 ^ (j >> 16) as u8)
        .collect();
    std::fs::write(env.path("src/huge.bin"), &huge).unwrap();
    std::fs::write(env.path("src/small.txt"), "small").unwrap();
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    let found = env.run("reel", &["find", "huge.bin", "--json"]);
    let parts: Vec<serde_json::Value> = serde_json::from_str(&found.stdout).unwrap();
    assert!(parts.len() >= 5, "{parts:?}");
    let mut tapes: Vec<&str> = parts.iter().filter_map(|p| p["tape"].as_str()).collect();
    tapes.sort();
    tapes.dedup();
    assert!(tapes.len() >= 2, "the parts span tapes: {tapes:?}");
    let run = env.run("reel-restore", &["huge.bin", "--to", "out"]);
    run.expect(0);
    assert!(std::fs::read(env.path("out/huge.bin")).unwrap() == huge);
    assert_eq!(
        std::fs::metadata(env.path("out/huge.bin")).unwrap().mtime(),
        std::fs::metadata(env.path("src/huge.bin")).unwrap().mtime()
    );
}

#[test]
fn extended_attributes_and_fifos_come_back() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n",
            crate::support::CONFIG
        ),
    );
    std::fs::create_dir_all(env.path("src")).unwrap();
    let file = env.path("src/tagged.txt");
    std::fs::write(&file, "with attributes").unwrap();
    let set = |path: &Path, name: &str, value: &[u8]| xattr::set(path, name, value).is_ok();
    let get = |path: &Path, name: &str| xattr::get(path, name).unwrap();
    let xattrs = set(&file, "user.origin", b"lab \x00 3");
    nix::unistd::mkfifo(
        &env.path("src/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    crate::verify::to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    let run = env.run("reel-restore", &["", "--to", "out"]);
    run.expect(0);
    use std::os::unix::fs::FileTypeExt;
    let fifo = std::fs::symlink_metadata(env.path("out/pipe")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);
    if xattrs {
        assert_eq!(
            get(&env.path("out/tagged.txt"), "user.origin").as_deref(),
            Some(&b"lab \x00 3"[..])
        );
    } // (no user xattrs on this file system: nothing to compare)
}

#[test]
fn ten_kilobytes_of_extended_attribute_names_all_come_back() {
    // ext4 holds at most a block of them per file: the source, the cache
    // and the target are tmpfs, which holds more (root mounts them).
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting tmpfs needs root (CI runs as root)");
        return;
    }
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n",
            crate::support::CONFIG
        ),
    );
    let _mounts: Vec<crate::support::Mounted> = ["src", "var/cache", "out"]
        .iter()
        .map(|d| crate::support::Mounted::tmpfs(&env.path(d), "64m"))
        .collect();
    let file = env.path("src/many.txt");
    std::fs::write(&file, "with many attributes").unwrap();
    let names: Vec<String> = (0..200)
        .map(|i| format!("user.an-attribute-with-a-rather-long-name-number-{i:03}"))
        .collect();
    for (i, n) in names.iter().enumerate() {
        xattr::set(&file, n, format!("value {i}").as_bytes()).unwrap();
    }
    assert!(names.iter().map(|n| n.len() + 1).sum::<usize>() > 10_000);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    crate::verify::to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    env.run("reel-restore", &["", "--to", "out"]).expect(0);
    let back = env.path("out/many.txt");
    let mut got: Vec<String> = xattr::list(&back)
        .unwrap()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got.len(), names.len(), "attributes restored");
    assert_eq!(got, names);
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            xattr::get(&back, n).unwrap(),
            Some(format!("value {i}").into_bytes())
        );
    }
}

#[test]
fn the_newest_version_is_the_one_taken_last_from_the_source_not_the_one_verified_last() {
    use reel_shared::spool::{Queue, Spool};
    let env = Env::new();
    setup(&env);
    let f = env.path("src/dir/f05.bin");
    // Version A reaches tape, then version B; B is verified first (as after
    // a killed verify run, or tapes verified in tape order).
    std::fs::write(&f, b"version A").unwrap();
    to_tape(&env);
    let spool = Spool::open(&env.path("var/spool")).unwrap();
    let held = env.path("held");
    std::fs::create_dir_all(&held).unwrap();
    let ids_a = spool.list(Queue::Written).unwrap();
    for id in &ids_a {
        std::fs::rename(spool.item_path(Queue::Written, id), held.join(id)).unwrap();
    }
    std::fs::write(&f, b"version B, newer").unwrap();
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    for id in &ids_a {
        std::fs::rename(held.join(id), spool.item_path(Queue::Written, id)).unwrap();
    }
    env.run("reel-verify", &[]).expect(0);
    // B is the current version, through the journals and through a built
    // index alike.
    for rebuilt in [false, true] {
        if rebuilt {
            env.run("reel", &["catalog", "rebuild"]).expect(0);
        }
        let run = env.run("reel", &["find", "dir/f05.bin", "--json"]);
        let found: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(found.len(), 1, "{}", run.report());
        assert_eq!(found[0]["size"], 16, "{}", run.report());
        let out = format!("out-{rebuilt}");
        env.run("reel-restore", &["dir/f05.bin", "--to", &out])
            .expect(0);
        assert_eq!(
            std::fs::read(env.path(&format!("{out}/dir/f05.bin"))).unwrap(),
            b"version B, newer"
        );
    }
    // Both versions, in the order they were taken from the source.
    let run = env.run("reel", &["find", "dir/f05.bin", "--all-versions", "--json"]);
    let all: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let sizes: Vec<u64> = all.iter().map(|v| v["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [9, 16], "{}", run.report());
    // The scan agrees: nothing to back up again.
    let scan = env.run("reel-scan", &[]);
    scan.expect(0);
    assert!(
        scan.stderr.contains(" 0 new, 0 changed"),
        "{}",
        scan.report()
    );
}

#[test]
fn times_are_read_with_their_offsets_and_partial_dates_and_bad_ones_are_refused() {
    let env = backed_up();
    for at in [
        "2099-11",
        "2099",
        "2099-12-01T10:00+02:00",
        "2099-12-01 10:00",
    ] {
        let run = env.run("reel", &["find", "dir/f05.bin", "--at", at, "--json"]);
        run.expect(0);
    }
    // Before anything was taken from the source: nothing.
    env.run(
        "reel",
        &["find", "dir/f05.bin", "--at", "2000-01-01T00:00:00+14:00"],
    )
    .expect(1);
    let run = env.run("reel", &["find", "x", "--at", "yesterday"]);
    run.expect(64);
    assert!(
        run.stderr
            .contains("--at: \"yesterday\" is not a time reel reads"),
        "{}",
        run.report()
    );
}

#[test]
fn a_damaged_catalog_index_is_found_out_and_rebuilt_with_the_same_answers() {
    let env = backed_up();
    env.run("reel", &["catalog", "rebuild"]).expect(0);
    let answers = |env: &Env| {
        let run = env.run("reel", &["find", "", "--json"]);
        run.expect(0);
        run
    };
    let before = answers(&env).stdout;
    assert!(before.len() > 1000);
    let gen_dir = std::fs::canonicalize(env.path("var/catalog/index/current")).unwrap();
    type Damage = fn(&Path);
    // (what, the damage, whether reel-scan reads that file: else reel find)
    let damages: [(&str, Damage, bool); 7] = [
        (
            "random bytes in names.idx",
            |g| scribble(&g.join("names.idx"), 40),
            false,
        ),
        (
            "random bytes in names.bin",
            |g| scribble(&g.join("names.bin"), 7),
            false,
        ),
        ("names.idx zeroed", |g| zero(&g.join("names.idx")), false),
        ("paths.idx zeroed", |g| zero(&g.join("paths.idx")), true),
        (
            "random bytes in paths.idx",
            |g| scribble(&g.join("paths.idx"), 100),
            true,
        ),
        (
            "a checksum file gone",
            |g| std::fs::remove_file(g.join("names.idx.sum")).unwrap(),
            false,
        ),
        (
            "paths.idx cut short",
            |g| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(g.join("paths.idx"))
                    .unwrap();
                f.set_len(100).unwrap();
            },
            true,
        ),
    ];
    for (what, damage, scan_reads) in damages {
        env.run("reel", &["catalog", "rebuild"]).expect(0);
        let gen_dir = std::fs::canonicalize(env.path("var/catalog/index/current")).unwrap();
        damage(&gen_dir);
        // reel find: reported, rebuilt, the same answers.
        let run = answers(&env);
        assert_eq!(run.stdout, before, "{what}\n{}", run.report());
        // reel find reads the path index, reel-scan the lookup index.
        assert_eq!(
            run.stderr.contains("the catalog index is damaged"),
            !scan_reads,
            "{what}\n{}",
            run.report()
        );
        assert!(!answers(&env).stderr.contains("damaged"), "{what}: rebuilt");
        // reel-scan, on the index damaged again: nothing new to back up.
        env.run("reel", &["catalog", "rebuild"]).expect(0);
        damage(&std::fs::canonicalize(env.path("var/catalog/index/current")).unwrap());
        let scan = env.run("reel-scan", &[]);
        scan.expect(0);
        assert!(
            scan.stderr.contains(" 0 new, 0 changed"),
            "{what}\n{}",
            scan.report()
        );
        assert_eq!(
            scan.stderr.contains("damaged"),
            scan_reads,
            "{what}\n{}",
            scan.report()
        );
    }
    // A state the reader cannot parse: the journals answer, a scan rebuilds.
    std::fs::write(gen_dir_now(&env).join("state.json"), "{ not json").unwrap();
    assert_eq!(answers(&env).stdout, before);
    let scan = env.run("reel-scan", &[]);
    scan.expect(0);
    assert!(
        scan.stderr.contains(" 0 new, 0 changed"),
        "{}",
        scan.report()
    );
    assert!(
        gen_dir_now(&env) != gen_dir,
        "rebuilt into a new generation"
    );
}

fn gen_dir_now(env: &Env) -> std::path::PathBuf {
    std::fs::canonicalize(env.path("var/catalog/index/current")).unwrap()
}

/// Overwrite `n` bytes in the middle of `path` with other values.
fn scribble(path: &Path, n: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    for (k, b) in bytes[mid..].iter_mut().take(n).enumerate() {
        *b = b.wrapping_add(0x5b + k as u8) | 1;
    }
    std::fs::write(path, bytes).unwrap();
}

fn zero(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len() as usize;
    std::fs::write(path, vec![0u8; len]).unwrap();
}
