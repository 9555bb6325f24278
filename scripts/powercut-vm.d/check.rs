//! The invariants of the power-cut test (issue #26), checked inside the VM
//! of `scripts/powercut-vm` after every boot that follows a cut, and at the
//! end. One line per check on stdout, `ok NAME` or `FAIL NAME: why`, as the
//! VM scripts print them; exit 1 when any failed.
//!
//!     powercut-check --config FILE --source DIR --changed FILE [--final]
//!
//! After any cut (before the pipeline runs again):
//! - spool: every item of every queue is a whole manifest (no torn one);
//! - journals: every journal reads, and no (tape, tape file, member, part)
//!   is recorded twice;
//! - receipts: every member of every `verified` receipt is in its tape's
//!   journal (reel-verify syncs the journal before publishing the receipt);
//! - index: `reel find '**'` answers what the journals hold (the index is
//!   consistent with them, or rebuilt by find itself);
//! - tapes: `reel tapes` reads every tape's state, and `reel-verify --tape`
//!   reads back every member each journal records, with its recorded
//!   digest: nothing is recorded as verified that is not on tape.
//!
//! With `--final`, after the pipeline ran to its end:
//! - sources: every file of the source is verified as it is now;
//! - once: every file not in CHANGED (the paths the test changed since the
//!   first boot, one per line) is verified exactly once in a whole copy
//!   (a copy cut by the early warning holds some members a second time, by
//!   design);
//! - restore: everything comes back byte for byte;
//! - drained: no item waits or failed, and the cache holds nothing.
//!
//! A test helper, not part of reel: it is built as an example and runs
//! the real programs for everything a user would run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use reel_shared::catalog::journal;
use reel_shared::config::Config;
use reel_shared::manifest::ManifestReader;
use reel_shared::spool::{Queue, Spool};
use sha2::Digest as _;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    source: PathBuf,
    #[arg(long)]
    changed: PathBuf,
    #[arg(long = "final")]
    at_end: bool,
}

struct Report {
    failed: usize,
}

impl Report {
    fn check(&mut self, name: &str, result: Result<String, String>) {
        match result {
            Ok(note) if note.is_empty() => println!("ok {name}"),
            Ok(note) => println!("ok {name}: {note}"),
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            println!("FAIL config: {e}");
            std::process::exit(1);
        }
    };
    let mut report = Report { failed: 0 };
    report.check("spool", spool(&config));
    let entries = journals(&config);
    report.check(
        "journals",
        entries
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|e| twice(e)),
    );
    let entries = entries.unwrap_or_default();
    report.check("receipts", receipts(&config, &entries));
    let found = find(&args.config);
    report.check("index", index(&entries, &found));
    report.check("tapes", tapes(&args.config, &entries));
    if args.at_end {
        let files = tree(&args.source);
        report.check("sources", sources(&files, &found));
        report.check(
            "once",
            once(&files, &entries, &args.changed, &config.paths.catalog),
        );
        report.check("restore", restore(&args.config, &files));
        report.check("drained", drained(&config));
    }
    std::process::exit(i32::from(report.failed > 0));
}

/// Every item of every queue opens and every record parses.
fn spool(config: &Config) -> Result<String, String> {
    let spool = Spool::open(&config.paths.spool).map_err(|e| e.to_string())?;
    let mut items = 0;
    let mut bad = Vec::new();
    for q in Queue::ALL {
        for id in spool.list(q).map_err(|e| e.to_string())? {
            items += 1;
            let path = spool.item_path(q, &id);
            let whole = ManifestReader::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|(_, mut r)| {
                    r.records()
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = whole {
                bad.push(format!("{q}/{id}: {e}"));
            }
        }
    }
    if bad.is_empty() {
        Ok(format!("{items} items"))
    } else {
        Err(bad.join("; "))
    }
}

/// Every journal entry, with its tape.
fn journals(config: &Config) -> Result<Vec<(String, journal::Entry)>, String> {
    let mut out = Vec::new();
    for path in journal::journals(&config.paths.catalog).map_err(|e| e.to_string())? {
        let tape = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        journal::read(&path, |e| {
            out.push((tape.clone(), e));
            Ok(())
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(out)
}

/// No (tape, tape file, member, part) is recorded twice.
fn twice(entries: &[(String, journal::Entry)]) -> Result<String, String> {
    let mut seen = HashMap::new();
    for (tape, e) in entries {
        let key = (
            tape.clone(),
            e.record.file,
            e.record.path.clone(),
            e.record.part,
        );
        *seen.entry(key).or_insert(0) += 1;
    }
    let twice: Vec<String> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((tape, file, path, part), n)| {
            format!("{tape} file {file:?} {path:?} part {part:?} {n} times")
        })
        .collect();
    if twice.is_empty() {
        Ok(format!("{} entries", entries.len()))
    } else {
        Err(format!("recorded more than once: {}", twice.join("; ")))
    }
}

/// Every member a `verified` receipt lists is in its tape's journal:
/// reel-verify appends to the journal (and syncs it) before it publishes
/// the receipt, so a receipt without its journal lines is a lost write.
fn receipts(config: &Config, entries: &[(String, journal::Entry)]) -> Result<String, String> {
    let spool = Spool::open(&config.paths.spool).map_err(|e| e.to_string())?;
    let recorded: BTreeSet<(&str, Option<u64>, &Path, Option<u32>)> = entries
        .iter()
        .map(|(t, e)| {
            (
                t.as_str(),
                e.record.file,
                e.record.path.as_path(),
                e.record.part,
            )
        })
        .collect();
    let mut members = 0;
    let mut lost = Vec::new();
    for id in spool.list(Queue::Verified).map_err(|e| e.to_string())? {
        let path = spool.item_path(Queue::Verified, &id);
        let Ok((_, mut reader)) = ManifestReader::open(&path) else {
            continue; // the spool check says why
        };
        for r in reader.records().flatten() {
            members += 1;
            let key = (
                r.tape.as_deref().unwrap_or(""),
                r.file,
                r.path.as_path(),
                r.part,
            );
            if !recorded.contains(&key) {
                lost.push(format!(
                    "{id}: {} (tape {:?} file {:?}) is in no journal",
                    r.path.display(),
                    r.tape,
                    r.file
                ));
            }
        }
    }
    match lost.len() {
        0 => Ok(format!("{members} members")),
        n if n <= 3 => Err(lost.join("; ")),
        n => Err(format!(
            "{n} of {members} members lost, first: {}",
            lost[..3].join("; ")
        )),
    }
}

/// `reel find '**' --json`: path → sha256 of what it answers (the newest
/// verified version).
fn find(config: &Path) -> Result<BTreeMap<Vec<u8>, Option<String>>, String> {
    let mut cmd = Command::new("reel");
    cmd.arg("--config")
        .arg(config)
        .args(["find", "**", "--json"]);
    let out = match cmd.output() {
        // Exit 1: nothing verified matches (an empty catalog).
        Ok(o) if o.status.code() == Some(1) => return Ok(BTreeMap::new()),
        _ => run(&mut cmd)?,
    };
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("reel find --json: {e}"))?;
    let mut found = BTreeMap::new();
    for e in v.as_array().ok_or("reel find --json: not an array")? {
        let path = match (e["path"].as_str(), e["path_b64"].as_str()) {
            (Some(p), _) => p.as_bytes().to_vec(),
            (None, Some(b)) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| format!("reel find --json: path_b64: {e}"))?
            }
            _ => return Err(format!("reel find --json: an entry without a path: {e}")),
        };
        found.insert(path, e["sha256"].as_str().map(str::to_string));
    }
    Ok(found)
}

/// The index answers exactly the journals' paths, each with its newest
/// version's digest.
fn index(
    entries: &[(String, journal::Entry)],
    found: &Result<BTreeMap<Vec<u8>, Option<String>>, String>,
) -> Result<String, String> {
    let found = found.as_ref().map_err(Clone::clone)?;
    let mut newest: BTreeMap<Vec<u8>, (u64, Option<String>)> = BTreeMap::new();
    for (_, e) in entries {
        let path = e.record.path.as_os_str().as_bytes().to_vec();
        let key = e.version_key();
        let sha = if e.record.part.is_some() {
            None
        } else {
            e.record.sha256.map(|d| d.to_string())
        };
        match newest.get(&path) {
            Some((k, _)) if *k > key => {}
            _ => {
                newest.insert(path, (key, sha));
            }
        }
    }
    let mut wrong = Vec::new();
    for (path, (_, sha)) in &newest {
        match found.get(path) {
            None => wrong.push(format!("{}: in a journal, not found", lossy(path))),
            Some(got) if sha.is_some() && got != sha => wrong.push(format!(
                "{}: found {got:?}, the journals' newest is {sha:?}",
                lossy(path)
            )),
            Some(_) => {}
        }
    }
    for path in found.keys() {
        if !newest.contains_key(path) {
            wrong.push(format!("{}: found, in no journal", lossy(path)));
        }
    }
    if wrong.is_empty() {
        Ok(format!("{} paths", found.len()))
    } else {
        Err(wrong.join("; "))
    }
}

/// Every tape's state reads, and every member a journal records reads back
/// from its tape with its digest.
fn tapes(config: &Path, entries: &[(String, journal::Entry)]) -> Result<String, String> {
    run(Command::new("reel")
        .arg("--config")
        .arg(config)
        .args(["tapes", "--json"]))?;
    let labels: BTreeSet<&String> = entries.iter().map(|(t, _)| t).collect();
    for label in &labels {
        run(Command::new("reel-verify")
            .arg("--config")
            .arg(config)
            .args(["-q", "--tape", label]))?;
    }
    Ok(format!("{} tapes audited", labels.len()))
}

/// The source's regular files: relative path → content.
fn tree(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(list) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in list.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file()
                && let Ok(bytes) = std::fs::read(&p)
                && let Ok(rel) = p.strip_prefix(dir)
            {
                out.insert(rel.as_os_str().as_bytes().to_vec(), bytes);
            }
        }
    }
    out
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

fn sources(
    files: &BTreeMap<Vec<u8>, Vec<u8>>,
    found: &Result<BTreeMap<Vec<u8>, Option<String>>, String>,
) -> Result<String, String> {
    let found = found.as_ref().map_err(Clone::clone)?;
    let wrong: Vec<String> = files
        .iter()
        .filter(|(path, bytes)| found.get(*path) != Some(&Some(sha256(bytes))))
        .map(|(path, _)| format!("{} is not verified as it is now", lossy(path)))
        .collect();
    if wrong.is_empty() {
        Ok(format!("{} files", files.len()))
    } else {
        Err(wrong.join("; "))
    }
}

/// Every file the test never changed is verified once: one journal entry
/// (per part) in all the catalog.
fn once(
    files: &BTreeMap<Vec<u8>, Vec<u8>>,
    entries: &[(String, journal::Entry)],
    changed: &Path,
    catalog: &Path,
) -> Result<String, String> {
    let changed: BTreeSet<Vec<u8>> = std::fs::read(changed)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let mut count: HashMap<(Vec<u8>, Option<u32>), Vec<String>> = HashMap::new();
    // A copy cut by the early warning records the members it holds whole,
    // by design (docs/tape-format.md §7), and its archive is written whole
    // again on the next tape: those members are there twice, once in a
    // whole copy. reel-write's log says which tape files are cut copies.
    let cut = cut_copies(catalog)?;
    let whole = entries.iter().filter(|(tape, e)| {
        !e.record
            .file
            .is_some_and(|f| cut.contains(&(tape.clone(), f)))
    });
    for (tape, e) in whole {
        let path = e.record.path.as_os_str().as_bytes().to_vec();
        count
            .entry((path, e.record.part))
            .or_default()
            .push(format!("{tape} file {:?}", e.record.file));
    }
    let mut unchanged = 0;
    let mut wrong = Vec::new();
    for path in files.keys().filter(|p| !changed.contains(*p)) {
        unchanged += 1;
        for ((p, part), at) in &count {
            if p == path && at.len() != 1 {
                wrong.push(format!(
                    "{} (part {part:?}) verified {} times: {}",
                    lossy(path),
                    at.len(),
                    at.join(", ")
                ));
            }
        }
    }
    if wrong.is_empty() {
        Ok(format!("{unchanged} unchanged files"))
    } else {
        Err(wrong.join("; "))
    }
}

/// The (tape, tape file) of every copy cut by the early warning, from
/// reel-write's logs (`<catalog>/written/<LABEL>.jsonl`, docs/catalog.md §5).
fn cut_copies(catalog: &Path) -> Result<BTreeSet<(String, u64)>, String> {
    let mut out = BTreeSet::new();
    let dir = catalog.join("written");
    let Ok(list) = std::fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in list.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let tape = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        // A torn last line (a cut in the middle of an append) is skipped.
        for line in text.split(|&b| b == b'\n') {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if v["type"] == "archive"
                && v["partial"] == true
                && let Some(f) = v["file"].as_u64()
            {
                out.insert((tape.clone(), f));
            }
        }
    }
    Ok(out)
}

fn restore(config: &Path, files: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<String, String> {
    let to = config.with_file_name("restored");
    let _ = std::fs::remove_dir_all(&to);
    run(Command::new("reel-restore")
        .arg("--config")
        .arg(config)
        .args(["-q", "**", "--to"])
        .arg(&to))?;
    let back = tree(&to);
    let wrong: Vec<String> = files
        .iter()
        .filter(|(path, bytes)| back.get(*path) != Some(*bytes))
        .map(|(path, _)| format!("{} did not come back byte for byte", lossy(path)))
        .collect();
    let _ = std::fs::remove_dir_all(&to);
    if wrong.is_empty() {
        Ok(format!("{} files", back.len()))
    } else {
        Err(wrong.join("; "))
    }
}

fn drained(config: &Config) -> Result<String, String> {
    let spool = Spool::open(&config.paths.spool).map_err(|e| e.to_string())?;
    let mut left = Vec::new();
    for q in Queue::ALL {
        if q == Queue::Verified {
            continue;
        }
        for id in spool.list(q).map_err(|e| e.to_string())? {
            left.push(format!("{q}/{id}"));
        }
    }
    let cached = tree(&config.paths.cache);
    left.extend(cached.keys().map(|p| format!("cache/{}", lossy(p))));
    if left.is_empty() {
        Ok(String::new())
    } else {
        Err(format!("left: {}", left.join(", ")))
    }
}

/// Run a program; its stdout, or why it failed.
fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{shown}: {}: {}",
            out.status,
            err.trim().replace('\n', " | ")
        ))
    }
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
