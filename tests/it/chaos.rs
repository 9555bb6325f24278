//! Seeded chaos: between the stages, garbage drops into random queues and
//! the source changes at random (files deleted, truncated, rewritten and
//! made, a directory swapped for a symlink to a secret directory outside,
//! an mtime set in the future). At the end, after the pipeline drained:
//! every file as it is now is verified on tape, nothing is recorded twice,
//! nothing from outside the source is on tape, a canary directory outside
//! reel's is untouched, and the queues are empty but failed/, every item
//! there with its reason.
//!
//! `REEL_CHAOS_SEED` and `REEL_CHAOS_ROUNDS` (default 30) choose the run.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::support::{Env, Rng};

/// Every regular file under `dir`, never through a symlink: relative path
/// → content.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() {
                out.insert(
                    e.path().strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    out
}

/// (path, mode, mtime, content) of everything under `dir`.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, i64, Vec<u8>)> {
    let mut out: Vec<_> = files(dir)
        .into_iter()
        .map(|(p, c)| {
            let m = std::fs::metadata(dir.join(&p)).unwrap();
            (p, m.mode(), m.mtime(), c)
        })
        .collect();
    out.sort();
    out
}

fn garbage(rng: &mut Rng) -> Vec<u8> {
    match rng.index(4) {
        0 => b"{\"reel\":\"manifest/1\",\"kind\":".to_vec(),
        1 => (0..rng.index(200)).map(|_| rng.next() as u8).collect(),
        2 => b"{\"reel\":\"manifest/1\",\"kind\":\"packed\",\"stream\":\"sample\",\"id\":\"sample-20000101T000000-9999\",\"created\":\"2026-01-01T00:00:00Z\"}\n{\"path\":\"/etc/shadow\",\"type\":\"file\"}\n".to_vec(),
        _ => b"\n\n\n".to_vec(),
    }
}

#[test]
fn seeded_chaos_between_the_stages_leaves_every_file_on_tape_and_nothing_else() {
    let seed: u64 = std::env::var("REEL_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xc4a0_5eed);
    let rounds: u64 = std::env::var("REEL_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut rng = Rng(seed | 1);
    let env = Env::new();
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    env.write(
        "pipeline.toml",
        &config.replace("archive_size = \"64M\"", "archive_size = \"1M\""),
    );
    let src = env.path("var/sample");
    for d in 0..6 {
        for f in 0..8 {
            env.write(
                &format!("var/sample/d{d}/f{f}.txt"),
                &format!("file {d}/{f} {}\n", rng.next()).repeat(1 + rng.index(300)),
            );
        }
    }
    // Root's secrets, and a canary nobody may touch.
    for i in 0..5 {
        env.write(
            &format!("secret/s{i}.txt"),
            &format!("SECRET-{i} of root\n"),
        );
    }
    for i in 0..5 {
        env.write(&format!("canary/c{i}.txt"), &format!("canary {i}\n"));
    }
    let canary = snapshot(&env.path("canary"));
    let queues = ["scanned", "staged", "packed", "written"];
    let stages = [
        "reel-scan",
        "reel-stage",
        "reel-pack",
        "reel-write",
        "reel-verify",
    ];
    let mut swaps = 0;
    for round in 0..rounds {
        for stage in stages {
            // Mischief before the stage.
            for _ in 0..rng.index(3) {
                let list: Vec<PathBuf> = files(&src).into_keys().collect();
                let pick = |rng: &mut Rng| list.get(rng.index(list.len())).cloned();
                match rng.index(9) {
                    0 => {
                        if let Some(p) = pick(&mut rng) {
                            let _ = std::fs::remove_file(src.join(p));
                        }
                    }
                    1 => {
                        if let Some(p) = pick(&mut rng) {
                            let f = std::fs::OpenOptions::new()
                                .write(true)
                                .open(src.join(p))
                                .unwrap();
                            f.set_len(rng.index(100) as u64).unwrap();
                        }
                    }
                    2 => {
                        if let Some(p) = pick(&mut rng) {
                            std::fs::write(src.join(p), format!("rewritten {}\n", rng.next()))
                                .unwrap();
                        }
                    }
                    3 => {
                        let d = rng.index(6);
                        let _ = std::fs::create_dir_all(src.join(format!("d{d}")));
                        if std::fs::symlink_metadata(src.join(format!("d{d}")))
                            .is_ok_and(|m| m.file_type().is_symlink())
                        {
                            continue; // not into the secrets through the swap
                        }
                        std::fs::write(
                            src.join(format!("d{d}/new-{round}-{}.txt", rng.next() % 1000)),
                            format!("new in round {round}\n"),
                        )
                        .unwrap();
                    }
                    4 => {
                        // A directory swapped for a symlink to the secrets.
                        let d = src.join(format!("d{}", rng.index(6)));
                        if std::fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
                            swaps += 1;
                            std::fs::rename(&d, d.with_extension(format!("orig{swaps}"))).unwrap();
                            std::os::unix::fs::symlink(env.path("secret"), &d).unwrap();
                        }
                    }
                    5 => {
                        if let Some(p) = pick(&mut rng) {
                            // 2400-01-01: an mtime in the future.
                            let f = std::fs::File::options()
                                .write(true)
                                .open(src.join(p))
                                .unwrap();
                            f.set_modified(
                                std::time::UNIX_EPOCH
                                    + std::time::Duration::from_secs(13_569_465_600),
                            )
                            .unwrap();
                        }
                    }
                    _ => {
                        let q = queues[rng.index(queues.len())];
                        env.write(
                            &format!(
                                "var/spool/{q}/sample-20000101T000000-{:04}.jsonl",
                                rng.index(9999)
                            ),
                            "",
                        );
                        std::fs::write(
                            env.path(&format!(
                                "var/spool/{q}/sample-20000102T000000-{:04}.jsonl",
                                rng.index(9999)
                            )),
                            garbage(&mut rng),
                        )
                        .unwrap();
                    }
                }
            }
            let run = env.run(stage, &[]);
            assert!(
                matches!(run.code, Some(0 | 1 | 65 | 69 | 75)),
                "seed {seed} round {round}: {}",
                run.report()
            );
        }
    }
    // The chaos ends; the pipeline drains.
    let mut last = None;
    for _ in 0..3 {
        let run = env.run("reel-supervisor", &["--once"]);
        assert!(
            matches!(run.code, Some(0 | 65)),
            "seed {seed}: {}",
            run.report()
        );
        last = Some(run);
    }
    let last = last.unwrap();
    // Every file as it is now is verified with its content.
    let found = env.run("reel", &["find", "", "--json"]);
    found.expect(0);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&found.stdout).unwrap();
    let verified: BTreeMap<String, String> = entries
        .iter()
        // Identical contents are stored once: the other copies are tar
        // hard links, with the digest of the content.
        .filter(|e| e["type"] == "file" || e["type"] == "hardlink")
        .filter_map(|e| {
            Some((
                e["path"].as_str()?.to_string(),
                e["sha256"].as_str()?.to_string(),
            ))
        })
        .collect();
    for (path, content) in files(&src) {
        let want = format!("{:x}", sha2::Sha256::digest(&content));
        if verified.get(path.to_str().unwrap()) != Some(&want) {
            let versions = env.run(
                "reel",
                &["find", path.to_str().unwrap(), "--all-versions", "--json"],
            );
            let status = env.run("reel", &["status"]);
            panic!(
                "seed {seed}: {} is not verified as it is now ({want}; mtime {:?})\nversions: {}\nstatus: {}\n{}",
                path.display(),
                std::fs::metadata(src.join(&path)).unwrap().modified(),
                versions.stdout,
                status.stdout,
                last.report()
            );
        }
    }
    // Nothing recorded twice, nothing from outside on tape.
    let cat = env.path("var/catalog");
    let mut seen = std::collections::HashSet::new();
    for j in reel_shared::catalog::journal::journals(&cat).unwrap() {
        reel_shared::catalog::journal::read(&j, |e| {
            let k = (e.record.tape.clone(), e.record.file, e.record.path.clone());
            assert!(seen.insert(k.clone()), "seed {seed}: {k:?} recorded twice");
            Ok(())
        })
        .unwrap();
    }
    for tape in std::fs::read_dir(env.path("var/library/tapes"))
        .unwrap()
        .flatten()
    {
        for f in std::fs::read_dir(tape.path()).unwrap().flatten() {
            let bytes = std::fs::read(f.path()).unwrap();
            assert!(
                !bytes.windows(7).any(|w| w == b"SECRET-"),
                "seed {seed}: a secret is on tape in {}",
                f.path().display()
            );
        }
    }
    assert_eq!(
        snapshot(&env.path("canary")),
        canary,
        "seed {seed}: the canary changed"
    );
    // The queues are empty but failed/, each failed item with its reason.
    let spool = reel_shared::spool::Spool::open(&env.path("var/spool")).unwrap();
    for q in [
        reel_shared::spool::Queue::Scanned,
        reel_shared::spool::Queue::Staged,
        reel_shared::spool::Queue::Packed,
        reel_shared::spool::Queue::Written,
    ] {
        assert!(
            spool.list(q).unwrap().is_empty(),
            "seed {seed}: {q} holds items\n{}",
            last.report()
        );
    }
    for f in spool.failed().unwrap() {
        assert!(!f.error.is_empty(), "seed {seed}: {} has no reason", f.id);
    }
    assert!(
        swaps > 0 || rounds < 5,
        "seed {seed}: the chaos swapped no directory"
    );
}
