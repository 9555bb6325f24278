//! A cache much smaller than the source: the pipeline stages, packs, writes
//! and verifies a little at a time and never stalls. The cache is a real
//! small file system (a 20 MB tmpfs, mounted by the test: root only).

use crate::support::{Env, Mounted};

fn data(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|j| (j.wrapping_mul(2_654_435_761) >> 11) as u8 ^ seed as u8)
        .collect()
}

/// The repository's pipeline with 4 MB archives and a 20 MB cache: `None`
/// when not root (mounting the cache needs it; CI runs as root).
fn small_cache(env: &Env) -> Option<Mounted> {
    small_cache_with(env, false)
}

/// The same, with `[supervisor] overlap` set as asked.
fn small_cache_with(env: &Env, overlap: bool) -> Option<Mounted> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting the small cache needs root (CI runs as root)");
        return None;
    }
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    let config = config
        .replace("archive_size = \"64M\"", "archive_size = \"4M\"")
        .replace("overlap = false", &format!("overlap = {overlap}"));
    assert!(
        config.contains(&format!("overlap = {overlap} ")),
        "the default config changed"
    );
    assert!(
        config.contains("archive_size = \"4M\""),
        "the default config changed"
    );
    env.write("pipeline.toml", &config);
    Some(Mounted::tmpfs(&env.path("var/cache"), "20m"))
}

/// The verified copies of `path`, as `reel find --json` gives them.
fn found(env: &Env, path: &str, all: bool) -> Vec<serde_json::Value> {
    let mut args = vec!["find", path, "--json"];
    if all {
        args.push("--all-versions");
    }
    let run = env.run("reel", &args);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{}", run.report()))
}

#[test]
fn a_20_mb_cache_backs_up_a_57_mb_source_without_stalling() {
    backs_up_57_mb_in_20(false);
}

#[test]
fn the_stages_side_by_side_back_up_the_same_57_mb_in_the_same_cache() {
    backs_up_57_mb_in_20(true);
}

fn backs_up_57_mb_in_20(overlap: bool) {
    let env = Env::new();
    let Some(_cache) = small_cache_with(&env, overlap) else {
        return;
    };
    // 57 MB: a 6 MB file (an archive of its own), 44 files of 1 MB, and 300
    // small ones in a few directories.
    let src = env.path("var/sample");
    std::fs::create_dir_all(src.join("small/a")).unwrap();
    std::fs::create_dir_all(src.join("small/b")).unwrap();
    std::fs::write(src.join("big.bin"), data(1, 6 << 20)).unwrap();
    for i in 0..44 {
        std::fs::write(src.join(format!("m{i:02}.bin")), data(i + 2, 1 << 20)).unwrap();
    }
    for i in 0..300u32 {
        let d = if i % 2 == 0 { "small/a" } else { "small/b" };
        std::fs::write(
            src.join(format!("{d}/s{i:03}.txt")),
            data(i, 3000 + i as usize * 7),
        )
        .unwrap();
    }
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    // Everything is verified on tape, and nothing is left in the cache.
    let found = env.run("reel", &["find", "", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&found.stdout).unwrap();
    let files = list.iter().filter(|e| e["type"] == "file").count();
    assert_eq!(files, 1 + 44 + 300, "{}", run.report());
    assert!(
        crate::verify::files_under(&env.path("var/cache")).is_empty(),
        "{}",
        run.report()
    );
    let back = env.run("reel-restore", &["big.bin", "--to", "out"]);
    back.expect(0);
    assert!(std::fs::read(env.path("out/big.bin")).unwrap() == data(1, 6 << 20));
}

#[test]
fn a_file_larger_than_the_cache_is_staged_in_parts_and_comes_back_whole() {
    let env = Env::new();
    let Some(_cache) = small_cache(&env) else {
        return;
    };
    // 30 MB in a 20 MB cache, a hard link to it, and some small files.
    let src = env.path("var/sample");
    std::fs::create_dir_all(src.join("small")).unwrap();
    let big = data(7, 30 << 20);
    std::fs::write(src.join("big.img"), &big).unwrap();
    std::fs::hard_link(src.join("big.img"), src.join("big-link.img")).unwrap();
    for i in 0..20u32 {
        std::fs::write(src.join(format!("small/s{i:02}.txt")), data(i, 5000)).unwrap();
    }
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    assert!(
        run.stderr.contains("staged in parts of"),
        "{}",
        run.report()
    );
    // Each name is one whole version in parts of at most an archive.
    for name in ["big.img", "big-link.img"] {
        let parts = found(&env, name, false);
        let mut at = 0;
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p["part"], i as u64 + 1, "{name}: {parts:?}");
            assert_eq!(p["part_offset"], at, "{name}: {parts:?}");
            let len = p["part_len"].as_u64().unwrap();
            assert!(len <= 4 << 20, "{name}: {parts:?}");
            at += len;
        }
        assert_eq!(at, 30 << 20, "{name}: {}", run.report());
        assert!(parts.len() >= 8, "{name}: {parts:?}");
    }
    let small = found(&env, "small/", false);
    assert_eq!(small.iter().filter(|e| e["type"] == "file").count(), 20);
    assert!(
        crate::verify::files_under(&env.path("var/cache")).is_empty(),
        "{}",
        run.report()
    );
    let back = env.run("reel-restore", &["big", "--to", "out"]);
    back.expect(0);
    for name in ["big.img", "big-link.img"] {
        assert!(
            std::fs::read(env.path(&format!("out/{name}"))).unwrap() == big,
            "{name}\n{}",
            back.report()
        );
    }
    // Nothing more to do: the file is on tape, whole.
    let again = env.run("reel-scan", &[]);
    again.expect(0);
    assert!(env.spool_items("scanned").is_empty(), "{}", again.report());
}

#[test]
fn a_file_changed_between_its_parts_is_backed_up_again_whole() {
    let env = Env::new();
    let Some(_cache) = small_cache(&env) else {
        return;
    };
    let src = env.path("var/sample");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.img"), data(1, 30 << 20)).unwrap();
    env.run("reel-scan", &[]).expect(0);
    // Staging fills the cache with the first parts and stops; the rest
    // waits in the scanned queue.
    let staged = env.run("reel-stage", &[]);
    staged.expect(75);
    let waiting = env.spool_items("scanned");
    assert!(
        waiting.len() == 1 && !waiting[0].ends_with("-p0001"),
        "{waiting:?}\n{}",
        staged.report()
    );
    // The file changes (same size, new content and mtime).
    let changed = data(2, 30 << 20);
    std::fs::write(src.join("big.img"), &changed).unwrap();
    let run = env.run("reel-supervisor", &["--once"]);
    assert!(
        run.stderr.contains(
            "changed since it was scanned (it changed since its earlier parts were staged)"
        ),
        "{}",
        run.report()
    );
    assert!(
        run.stderr.contains("are not a whole version"),
        "{}",
        run.report()
    );
    // The parts of the first version are on tape, but what is found and
    // restored is the second version, whole.
    let all = found(&env, "big.img", true);
    let versions: std::collections::BTreeSet<u64> = all
        .iter()
        .map(|e| e["taken_ns"].as_u64().unwrap())
        .collect();
    assert_eq!(versions.len(), 2, "{all:?}");
    let newest = found(&env, "big.img", false);
    let end = newest
        .iter()
        .map(|p| p["part_offset"].as_u64().unwrap() + p["part_len"].as_u64().unwrap())
        .max();
    assert_eq!(end, Some(30 << 20), "{newest:?}");
    let back = env.run("reel-restore", &["big.img", "--to", "out"]);
    back.expect(0);
    assert!(std::fs::read(env.path("out/big.img")).unwrap() == changed);
    // From the tape alone, too.
    let back = env.run(
        "reel-restore",
        &[
            "--from-tape",
            "virtual:var/library",
            "big.img",
            "--to",
            "out-tape",
        ],
    );
    back.expect(0);
    assert!(
        std::fs::read(env.path("out-tape/big.img")).unwrap() == changed,
        "{}",
        back.report()
    );
    env.run("reel-scan", &[]).expect(0);
    assert!(env.spool_items("scanned").is_empty());
}
