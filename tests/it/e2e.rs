//! The whole pipeline, end to end on the virtual library, the way the main
//! job runs it: thousands of files with the names that trip naive tools,
//! spread over several tapes by the changer, every one found and restored
//! byte for byte; then SIGKILL at seeded random moments, of the supervisor
//! and of each stage, and a rerun that must leave everything verified once.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::support::{Env, Rng};
use sha2::Digest;

/// The repository's pipeline.toml with small tapes and archives.
fn main_job(env: &Env, capacity: &str, archive: &str) {
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    let config = config
        .replace("capacity = \"1G\"", &format!("capacity = \"{capacity}\""))
        .replace(
            "archive_size = \"64M\"",
            &format!("archive_size = \"{archive}\""),
        );
    assert!(config.contains(capacity), "the default config changed");
    env.write("pipeline.toml", &config);
}

/// Names that break scripts: spaces, quotes, glob characters, a newline,
/// a leading dash, bytes that are not UTF-8, long names, deep paths.
fn odd_name(rng: &mut Rng, i: usize) -> Vec<u8> {
    let mut name = match i % 12 {
        0 => format!("plain-{i}.txt").into_bytes(),
        1 => format!("with space {i}").into_bytes(),
        2 => format!("quote's \"double\" {i}").into_bytes(),
        3 => format!("glob*?[x]{{a,b}} {i}").into_bytes(),
        4 => format!("new\nline {i}").into_bytes(),
        5 => format!("-leading-dash-{i}").into_bytes(),
        6 => {
            let mut v = b"latin1-".to_vec();
            v.extend_from_slice(b"\xe9t\xe9-\xff");
            v.extend_from_slice(i.to_string().as_bytes());
            v
        }
        7 => format!("ünïcødé-日本語-{i}").into_bytes(),
        8 => format!("{}-{i}", "long".repeat(50)).into_bytes(),
        9 => format!("back\\slash\ttab {i}").into_bytes(),
        10 => format!(".hidden-{i}").into_bytes(),
        _ => format!("%s %n $HOME `x` {i}").into_bytes(),
    };
    if rng.below(5) == 0 {
        name.extend_from_slice(b".tmp.kept");
    }
    name
}

fn write_file(path: &Path, rng: &mut Rng, len: usize) {
    let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// `files` small files in nested directories with odd names, and `large`
/// files of a few MB.
fn odd_tree(dir: &Path, rng: &mut Rng, files: usize, large: usize) {
    for i in 0..files {
        let depth = (rng.below(4)) as usize;
        let mut path = dir.to_path_buf();
        for d in 0..depth {
            let mut name = odd_name(rng, i % 40 + d * 7);
            name.extend_from_slice(b" dir");
            path.push(OsStr::from_bytes(&name));
        }
        path.push(OsStr::from_bytes(&odd_name(rng, i)));
        let len = match rng.below(10) {
            0 => 0,
            1..=7 => rng.below(3000) as usize,
            _ => rng.below(40_000) as usize,
        };
        write_file(&path, rng, len);
    }
    for i in 0..large {
        let len = 2_000_000 + rng.below(1_500_000) as usize;
        write_file(&dir.join(format!("large {i}.bin")), rng, len);
    }
}

/// Every regular file under `dir`: path below it, bytes.
fn tree(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let rel = p.strip_prefix(dir).unwrap().as_os_str().as_bytes().to_vec();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Every catalog entry: (tape, tape file, path) → times recorded.
fn catalog_entries(env: &Env) -> HashMap<(String, u64, Vec<u8>), usize> {
    let mut out = HashMap::new();
    let dir = env.path("var/catalog/tapes");
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let tape = p.file_stem().unwrap().to_string_lossy().into_owned();
        reel_shared::catalog::journal::read(&p, |e| {
            let key = (
                tape.clone(),
                e.record.file.unwrap(),
                e.record.path.as_os_str().as_bytes().to_vec(),
            );
            *out.entry(key).or_insert(0) += 1;
            Ok(())
        })
        .unwrap();
    }
    out
}

/// `reel find '**' --json`: path → sha256 of the newest verified version.
fn found(env: &Env) -> HashMap<Vec<u8>, String> {
    let run = env.run("reel", &["find", "**", "--json"]);
    run.expect(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut out = HashMap::new();
    for e in v.as_array().unwrap() {
        let path = match (e["path"].as_str(), e["path_b64"].as_str()) {
            (Some(p), _) => p.as_bytes().to_vec(),
            (None, Some(b)) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(b).unwrap()
            }
            _ => panic!("an entry without a path: {e}"),
        };
        if let Some(sha) = e["sha256"].as_str() {
            out.insert(path, sha.to_string());
        }
    }
    out
}

/// Everything in `source` is verified in the catalog as it is now, comes
/// back byte for byte, was recorded once per tape file, and the cache and
/// the queues are empty.
fn check_everything(env: &Env, source: &Path, context: &str) {
    let files = tree(source);
    let found = found(env);
    for (path, bytes) in &files {
        let sha = format!("{:x}", sha2::Sha256::digest(bytes));
        assert_eq!(
            found.get(path),
            Some(&sha),
            "{context}: {:?} is not verified as it is now",
            String::from_utf8_lossy(path)
        );
    }
    for (key, n) in catalog_entries(env) {
        assert_eq!(n, 1, "{context}: {key:?} recorded {n} times");
    }
    let back = env.path("restored");
    let _ = std::fs::remove_dir_all(&back);
    let run = env.run(
        "reel-restore",
        &["**", "--to", back.to_str().unwrap(), "--overwrite"],
    );
    run.expect(0);
    let restored = tree(&back);
    for (path, bytes) in &files {
        assert!(
            restored.get(path) == Some(bytes),
            "{context}: {:?} did not come back byte for byte\n{}",
            String::from_utf8_lossy(path),
            run.report()
        );
    }
    // Nothing at all: not a copy, not a link, not a hidden file.
    let left = crate::verify::files_under(&env.path("var/cache"));
    assert!(left.is_empty(), "{context}: left in the cache: {left:?}");
    let status = env.run("reel", &["status", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    for q in s["queues"].as_array().unwrap() {
        let name = q["queue"].as_str().unwrap();
        if name != "verified" {
            assert_eq!(q["items"], 0, "{context}: {name}: {}", status.stdout);
        }
    }
}

#[test]
fn thousands_of_odd_files_over_several_tapes_come_back_byte_identical() {
    let env = Env::new();
    main_job(&env, "8M", "1M");
    let source = env.path("var/sample");
    let mut rng = Rng(0x0dd_f11e5);
    odd_tree(&source, &mut rng, 3000, 3);
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    let tapes: std::collections::BTreeSet<String> =
        catalog_entries(&env).into_keys().map(|k| k.0).collect();
    assert!(
        tapes.len() >= 2,
        "one tape only: {tapes:?}\n{}",
        run.report()
    );
    check_everything(&env, &source, "first run");
    // Change a few files: the next run backs up exactly those.
    let before = catalog_entries(&env);
    let files: Vec<Vec<u8>> = tree(&source).into_keys().collect();
    let mut changed = std::collections::BTreeSet::new();
    for k in 0..5 {
        let path = &files[(k * 577) % files.len()];
        write_file(&source.join(OsStr::from_bytes(path)), &mut rng, 100 + k);
        changed.insert(path.clone());
    }
    let added = b"new after the first run".to_vec();
    write_file(&source.join(OsStr::from_bytes(&added)), &mut rng, 10);
    changed.insert(added);
    env.run("reel-supervisor", &["--once"]).expect(0);
    let recorded: std::collections::BTreeSet<Vec<u8>> = catalog_entries(&env)
        .into_keys()
        .filter(|k| !before.contains_key(k))
        .map(|k| k.2)
        .collect();
    assert_eq!(recorded, changed);
    check_everything(&env, &source, "second run");
}

/// The pids whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        if f.next().and_then(|p| p.parse::<u32>().ok()) == Some(parent) && state != Some("Z") {
            out.push(pid);
        }
    }
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// What the kill test aims at.
const PROGRAMS: [&str; 6] = [
    "reel-supervisor",
    "reel-scan",
    "reel-stage",
    "reel-pack",
    "reel-write",
    "reel-verify",
];

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

#[test]
fn sigkill_at_seeded_random_moments_loses_nothing_and_records_nothing_twice() {
    let seed: u64 = std::env::var("REEL_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let rounds: usize = std::env::var("REEL_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let env = Env::new();
    main_job(&env, "32M", "1M");
    let source = env.path("var/sample");
    let mut rng = Rng(seed);
    odd_tree(&source, &mut rng, 400, 1);
    crate::write::slow_library(&env, "var/library");
    let mut killed = Vec::new();
    // The whole log of the first round that failed without a kill, so that
    // a failure says why and not only that.
    let mut first_failure = String::new();
    let mut hits = std::collections::BTreeSet::new();
    for round in 0..rounds {
        // Some files change between runs, a few are new.
        let files: Vec<Vec<u8>> = tree(&source).into_keys().collect();
        for _ in 0..8 {
            let path = &files[rng.below(files.len() as u64) as usize];
            let len = rng.below(200_000) as usize;
            write_file(&source.join(OsStr::from_bytes(path)), &mut rng, len);
        }
        let len = 500_000 + rng.below(1_500_000) as usize;
        write_file(&source.join(format!("round {round}.bin")), &mut rng, len);

        let log = std::fs::File::create(env.path(&format!("round-{round}.log"))).unwrap();
        let mut cmd = std::process::Command::new(crate::support::bin("reel-supervisor"));
        cmd.arg("--once")
            .current_dir(env.root())
            .env_remove("REEL_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(log);
        crate::support::detach(&mut cmd);
        let mut sup = cmd.spawn().unwrap();
        let pid = sup.id();
        // A program to kill, and when: the supervisor after up to 1.5 s, a
        // stage up to 60 ms after it starts.
        let target = PROGRAMS[rng.below(PROGRAMS.len() as u64) as usize];
        let delay = std::time::Duration::from_millis(rng.below(60));
        let late = std::time::Duration::from_millis(rng.below(1500));
        let t0 = std::time::Instant::now();
        let mut stages = Vec::new();
        let mut what = format!("round {round}: {target}: not killed, the run ended first");
        while sup.try_wait().unwrap().is_none() {
            stages = children_of(pid);
            if target == "reel-supervisor" {
                if t0.elapsed() >= late {
                    let _ = sup.kill();
                    what = format!("round {round}: reel-supervisor at {late:?}");
                    break;
                }
            } else if let Some(&child) = stages.iter().find(|&&c| comm(c) == target) {
                std::thread::sleep(delay);
                if alive(child) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    what = format!("round {round}: {target} {delay:?} after it started");
                    hits.insert(target);
                }
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let status = sup.wait().unwrap();
        if what.contains("not killed") {
            let log = std::fs::read_to_string(env.path(&format!("round-{round}.log"))).unwrap();
            let last = log.lines().last().unwrap_or("");
            what = format!("{what} ({status}): {last}");
            if !status.success() && first_failure.is_empty() {
                first_failure = format!("--- round {round} log\n{log}");
            }
        }
        killed.push(what);
        // A stage whose supervisor died stops at its next safe point.
        let t0 = std::time::Instant::now();
        while stages.iter().any(|&p| alive(p)) {
            assert!(
                t0.elapsed().as_secs() < 120,
                "seed {seed}: stages {stages:?} outlived their supervisor"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    eprintln!("seed {seed}: {killed:#?}");
    // Not a vacuous run: stages did die mid-work.
    assert!(
        hits.len() >= 2,
        "seed {seed}: too few kills landed: {killed:#?}"
    );
    // The rerun finishes the work.
    let run = env.run("reel-supervisor", &["--once"]);
    assert_eq!(
        run.code,
        Some(0),
        "seed {seed}, kills: {killed:#?}\n{first_failure}{}",
        run.report()
    );
    check_everything(
        &env,
        &source,
        &format!("seed {seed}, kills {killed:#?}\n{first_failure}"),
    );
}
