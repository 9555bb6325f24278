//! reel-verify on the virtual library: what is on tape is recorded, what
//! is not is caught, goes to tape again, and is recorded then.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use reel_shared::catalog::journal;
use reel_shared::manifest::{ManifestReader, Record};
use reel_shared::spool::{Queue, Spool};

use crate::support::{CONFIG, Env};

pub(crate) fn spool(env: &Env) -> Spool {
    Spool::open(&env.path("var/spool")).unwrap()
}

pub(crate) fn setup(env: &Env) {
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"4M\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"256M\"\nbuffer = \"4M\"\n"
        ),
    );
    let src = env.path("src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    for i in 0..20 {
        let data: Vec<u8> = (0..(i * 7919 % 300_000))
            .map(|j| ((i * 31 + j) % 251) as u8)
            .collect();
        std::fs::write(src.join(format!("dir/f{i:02}.bin")), data).unwrap();
    }
    // A large file (copied and hashed in the background by reel-pack), a
    // duplicate (stored as a hard link), a hard link, a symlink, an odd name.
    let big: Vec<u8> = (0..5_000_000u32).map(|j| (j % 241) as u8).collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    std::fs::write(src.join("dir/sub/copy.bin"), &big[..100_000]).unwrap();
    std::fs::write(src.join("dir/sub/copy2.bin"), &big[..100_000]).unwrap();
    std::fs::hard_link(src.join("dir/f03.bin"), src.join("dir/sub/hard")).unwrap();
    std::os::unix::fs::symlink("../f01.bin", src.join("dir/sub/link")).unwrap();
    std::fs::write(
        src.join(std::ffi::OsStr::from_bytes(b"odd \xff name")),
        "odd",
    )
    .unwrap();
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
}

/// Flip the bits of `mask` in byte `at` of the data of the member that
/// `file` and `data_offset` place on the virtual tape V00001L9: the tape
/// rots.
pub(crate) fn flip_on_tape(env: &Env, (file, data_offset): (u64, u64), at: u64, mask: u8) {
    let tape_file = env.path(&format!("lib/tapes/V00001L9/{file:06}"));
    let mut bytes = std::fs::read(&tape_file).unwrap();
    bytes[(data_offset + at) as usize] ^= mask;
    std::fs::write(&tape_file, bytes).unwrap();
}

/// Where a written record's data lies on tape.
fn place(r: &Record) -> (u64, u64) {
    (r.file.unwrap(), r.data_offset.unwrap())
}

pub(crate) fn to_tape(env: &Env) {
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
    env.run("reel-write", &[]).expect(0);
}

/// Every member in the tape's journal, as (tape file, path).
pub(crate) fn journal_entries(env: &Env, tape: &str) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    let path = journal::journal_path(&env.path("var/catalog"), tape);
    if path.exists() {
        journal::read(&path, |e| {
            out.push((e.record.file.unwrap(), e.record.path));
            Ok(())
        })
        .unwrap();
    }
    out
}

pub(crate) fn queue_records(env: &Env, q: Queue) -> Vec<Record> {
    let spool = spool(env);
    let mut out = Vec::new();
    for id in spool.list(q).unwrap() {
        let (_, mut r) = ManifestReader::open(&spool.item_path(q, &id)).unwrap();
        out.extend(r.records().map(Result::unwrap));
    }
    out
}

/// Every entry under `dir` that is not a directory.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_clean_round_trip_records_every_member_and_frees_the_cache() {
    let env = Env::new();
    setup(&env);
    to_tape(&env);
    let written = queue_records(&env, Queue::Written);
    assert!(written.len() > 20);
    let run = env.run("reel-verify", &[]);
    run.expect(0);
    let recorded = journal_entries(&env, "T00001L9");
    assert_eq!(recorded.len(), written.len(), "{}", run.report());
    // A line per archive and the totals say how fast the tape was read.
    let totals = format!("{} member(s) verified, 0 bad; ", written.len());
    let last = run.stderr.lines().find(|l| l.contains(&totals));
    assert!(
        last.is_some_and(|l| l.contains(" read back in ") && l.ends_with(" MB/s")),
        "{}",
        run.report()
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains(" read in ") && l.ends_with(" MB/s)")),
        "{}",
        run.report()
    );
    let mut paths: Vec<_> = recorded.iter().map(|(_, p)| p.clone()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), recorded.len(), "no member twice");
    assert!(spool(&env).list(Queue::Written).unwrap().is_empty());
    assert_eq!(queue_records(&env, Queue::Verified).len(), written.len());
    // The cache holds nothing of it any more, not even its directories.
    assert_eq!(
        files_under(&env.path("var/cache/staged")),
        Vec::<PathBuf>::new()
    );
    let left: Vec<_> = std::fs::read_dir(env.path("var/cache/staged/home"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        files_under(&env.path("var/cache/archives")),
        Vec::<PathBuf>::new()
    );
    // reel tapes says when it was verified.
    let tapes = env.run("reel", &["tapes", "--json"]);
    tapes.expect(0);
    let list: serde_json::Value = serde_json::from_str(&tapes.stdout).unwrap();
    assert_eq!(list[0]["label"], "T00001L9");
    assert!(list[0]["verified"].is_string(), "{list}");
    assert!(
        list[0]["last_verify"].as_str().unwrap().contains("0 bad"),
        "{list}"
    );
    let table = env.run("reel", &["tapes"]);
    table.expect(0);
    assert!(table.stdout.contains("T00001L9"), "{}", table.report());
    // The scan finds nothing new: the catalog knows it all.
    let scan = env.run("reel-scan", &["--out", "-"]);
    scan.expect(0);
    assert!(
        !scan.stdout.lines().skip(1).any(|l| l.contains("\"path\"")),
        "{}",
        scan.stdout
    );
}

#[test]
fn a_flipped_byte_on_tape_is_caught_requeued_and_recorded_after_the_next_run() {
    let env = Env::new();
    setup(&env);
    to_tape(&env);
    let written = queue_records(&env, Queue::Written);
    // Spoil one byte of big.bin's data in its virtual tape file.
    let big = written
        .iter()
        .find(|r| r.path == Path::new("big.bin"))
        .unwrap()
        .clone();
    flip_on_tape(&env, place(&big), 1_234_567, 1);
    let run = env.run("reel-verify", &[]);
    run.expect(65);
    assert!(
        run.stderr.contains("big.bin: tape T00001L9 file"),
        "{}",
        run.report()
    );
    let recorded = journal_entries(&env, "T00001L9");
    assert!(!recorded.iter().any(|(_, p)| p == Path::new("big.bin")));
    assert_eq!(recorded.len(), written.len() - 1);
    // It waits as a staged item, its staged copy kept.
    let staged = queue_records(&env, Queue::Staged);
    assert_eq!(staged.len(), 1);
    assert!(staged[0].cache.as_ref().unwrap().is_file());
    // The next pack, write and verify put it on tape and record it.
    env.run("reel-pack", &[]).expect(0);
    env.run("reel-write", &[]).expect(0);
    env.run("reel-verify", &[]).expect(0);
    let recorded = journal_entries(&env, "T00001L9");
    let again: Vec<_> = recorded
        .iter()
        .filter(|(_, p)| p == Path::new("big.bin"))
        .collect();
    assert_eq!(again.len(), 1);
    assert!(
        again[0].0 > big.file.unwrap(),
        "recorded from its new tape file"
    );
    assert_eq!(recorded.len(), written.len());
}

#[test]
fn a_bundle_stays_in_the_cache_until_its_last_member_is_recorded() {
    let env = Env::new();
    setup(&env);
    to_tape(&env);
    let written = queue_records(&env, Queue::Written);
    // f05.bin was staged into a bundle with the other small files; its
    // bytes rot on tape.
    let f05 = written
        .iter()
        .find(|r| r.path == Path::new("dir/f05.bin"))
        .unwrap()
        .clone();
    let bundle = f05.cache.clone().unwrap();
    assert!(f05.cache_offset.is_some(), "{f05:?}");
    let dir = bundle.parent().unwrap().to_path_buf();
    let bundled = |r: &&Record| r.cache.as_ref().is_some_and(|c| c.starts_with(&dir));
    assert!(written.iter().filter(bundled).count() > 5);
    flip_on_tape(&env, place(&f05), 100, 1);
    env.run("reel-verify", &[]).expect(65);
    // The item's bundles stay, every other member's bytes with them: the
    // member goes to tape again from there.
    let staged = queue_records(&env, Queue::Staged);
    assert_eq!(staged.len(), 1);
    assert_eq!(staged[0].cache.as_ref(), Some(&bundle));
    assert_eq!(staged[0].cache_offset, f05.cache_offset);
    assert!(bundle.is_file());
    env.run("reel-pack", &[]).expect(0);
    env.run("reel-write", &[]).expect(0);
    env.run("reel-verify", &[]).expect(0);
    let recorded = journal_entries(&env, "T00001L9");
    assert_eq!(recorded.len(), written.len());
    // Recorded at last: the bundles and their directory are gone.
    assert!(!dir.exists());
    assert_eq!(
        files_under(&env.path("var/cache/staged")),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn an_unreadable_block_fails_its_members_and_marks_the_tape_suspect() {
    let env = Env::new();
    setup(&env);
    to_tape(&env);
    let written = queue_records(&env, Queue::Written);
    let big = written
        .iter()
        .find(|r| r.path == Path::new("big.bin"))
        .unwrap()
        .clone();
    // The virtual drive's fault injection: a read error at big.bin's block.
    let meta = env.path("lib/tapes/V00001L9/meta.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    m["faults"]["read_errors"] = serde_json::json!([big.block.unwrap() + 2]);
    std::fs::write(&meta, serde_json::to_vec(&m).unwrap()).unwrap();
    let run = env.run("reel-verify", &[]);
    run.expect(65);
    assert!(
        run.stderr.contains("unreadable at block"),
        "{}",
        run.report()
    );
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path("var/catalog/tapes/T00001L9.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["state"], "suspect");
    let recorded = journal_entries(&env, "T00001L9");
    assert!(!recorded.iter().any(|(_, p)| p == Path::new("big.bin")));
    assert!(
        queue_records(&env, Queue::Staged)
            .iter()
            .any(|r| r.path == Path::new("big.bin"))
    );
}

#[test]
fn a_cut_archive_records_its_complete_members_and_the_changer_brings_each_tape() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"4M\"\nbuffer = \"4M\"\n"
        ),
    );
    std::fs::create_dir_all(env.path("src")).unwrap();
    for i in 0..6 {
        // Several members per archive, so that a cut leaves some whole.
        for k in 0..6 {
            let data: Vec<u8> = (0..150_000)
                .map(|j| ((i * 7 + k * 3 + j) % 251) as u8)
                .collect();
            std::fs::write(env.path(&format!("src/a{i}-{k}.bin")), data).unwrap();
        }
    }
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    to_tape(&env);
    // A blank tape in the drive: the changer brings the tapes needed.
    env.run("reel", &["changer", "unload", "-f", "virtual:lib"])
        .expect(0);
    let list = env.run("reel", &["changer", "list", "-f", "virtual:lib"]);
    let blank_slot = list
        .stdout
        .lines()
        .filter(|l| l.starts_with("slot"))
        .find_map(|l| {
            let barcode = l.split_whitespace().nth(2)?;
            (!env.path(&format!("lib/tapes/{barcode}/000001")).exists())
                .then(|| l.split_whitespace().nth(1).unwrap().to_string())
        })
        .expect("a blank tape in a slot");
    env.run(
        "reel",
        &["changer", "load", &blank_slot, "-f", "virtual:lib"],
    )
    .expect(0);
    let written = {
        let spool = spool(&env);
        let mut out = Vec::new();
        for id in spool.list(Queue::Written).unwrap() {
            let (h, mut r) = ManifestReader::open(&spool.item_path(Queue::Written, &id)).unwrap();
            out.push((h.extra, r.records().map(Result::unwrap).collect::<Vec<_>>()));
        }
        out
    };
    let partial: Vec<_> = written
        .iter()
        .filter(|(h, _)| h["partial"] == true)
        .collect();
    assert!(!partial.is_empty(), "the setup cuts an archive");
    let run = env.run("reel-verify", &[]);
    run.expect(0);
    assert!(run.stderr.contains("past the cut"), "{}", run.report());
    assert!(spool(&env).list(Queue::Written).unwrap().is_empty());
    // Every file is recorded, on one tape or the other.
    let mut all = journal_entries(&env, "T00001L9");
    let second: Vec<_> = written
        .iter()
        .filter_map(|(h, _)| h["tape"].as_str())
        .filter(|t| *t != "T00001L9")
        .map(str::to_string)
        .collect();
    for t in {
        let mut s = second.clone();
        s.sort();
        s.dedup();
        s
    } {
        all.extend(journal_entries(&env, &t));
    }
    let mut paths: Vec<_> = all.iter().map(|(_, p)| p.clone()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 36);
    // The cut copy's complete members count on the full tape; its cut-off
    // tail does not.
    let cut_file = partial[0].0["file"].as_u64().unwrap();
    let cut_tape = partial[0].0["tape"].as_str().unwrap();
    let on_cut: Vec<_> = journal_entries(&env, cut_tape)
        .into_iter()
        .filter(|(f, _)| *f == cut_file)
        .collect();
    assert!(
        !on_cut.is_empty() && on_cut.len() < partial[0].1.len(),
        "{on_cut:?}"
    );
}

#[test]
fn sigkill_during_verify_then_rerun_records_each_member_exactly_once() {
    for round in 0..8u64 {
        let env = Env::new();
        setup(&env);
        to_tape(&env);
        let written = queue_records(&env, Queue::Written);
        let mut cmd = std::process::Command::new(crate::support::bin("reel-verify"));
        cmd.current_dir(env.root())
            .env_remove("REEL_CONFIG")
            .stderr(std::process::Stdio::null());
        crate::support::detach(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5 + round * 9));
        let _ = child.kill();
        let _ = child.wait();
        env.run("reel-verify", &[]).expect(0);
        let recorded = journal_entries(&env, "T00001L9");
        let mut unique = recorded.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            recorded.len(),
            "round {round}: a member twice"
        );
        assert_eq!(
            recorded.len(),
            written.len(),
            "round {round}: a member lost"
        );
        assert!(spool(&env).list(Queue::Written).unwrap().is_empty());
    }
}

/// (tape file, path, block, sha256) of every journal entry of `tape`.
fn journal_full(env: &Env, tape: &str) -> Vec<(u64, PathBuf, u64, String)> {
    let mut out = Vec::new();
    let path = journal::journal_path(&env.path("var/catalog"), tape);
    journal::read(&path, |e| {
        out.push((
            e.record.file.unwrap(),
            e.record.path,
            e.record.block.unwrap(),
            e.record.sha256.map(|d| d.to_string()).unwrap_or_default(),
        ));
        Ok(())
    })
    .unwrap();
    out.sort();
    out
}

#[test]
fn a_catalog_imported_from_the_tape_equals_the_one_written_at_backup_time() {
    let env = Env::new();
    setup(&env);
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    let at_backup = journal_full(&env, "T00001L9");
    assert!(at_backup.len() > 20);
    // The catalog is lost.
    std::fs::remove_file(journal::journal_path(&env.path("var/catalog"), "T00001L9")).unwrap();
    let run = env.run("reel", &["catalog", "import"]);
    run.expect(0);
    assert_eq!(
        journal_full(&env, "T00001L9"),
        at_backup,
        "{}",
        run.report()
    );
    // Importing again records nothing twice.
    env.run("reel", &["catalog", "import"]).expect(0);
    assert_eq!(journal_full(&env, "T00001L9"), at_backup);
}

#[test]
fn with_when_tape_archives_wait_until_their_tape_is_full() {
    let env = Env::new();
    setup(&env);
    let config = std::fs::read_to_string(env.path("pipeline.toml")).unwrap();
    env.write(
        "pipeline.toml",
        &format!("{config}\n[verify]\nwhen = \"tape\"\n"),
    );
    to_tape(&env);
    let written = queue_records(&env, Queue::Written);
    let run = env.run("reel-verify", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("wait until the tape is full"),
        "{}",
        run.report()
    );
    assert!(journal_entries(&env, "T00001L9").is_empty());
    // Once the tape is full, one pass verifies it all.
    let state_path = env.path("var/catalog/tapes/T00001L9.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["state"] = "full".into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    env.run("reel-verify", &[]).expect(0);
    assert_eq!(journal_entries(&env, "T00001L9").len(), written.len());
}

#[test]
fn an_audit_rereads_a_whole_tape_and_finds_what_rotted_since() {
    let env = Env::new();
    setup(&env);
    to_tape(&env);
    let written = queue_records(&env, Queue::Written);
    env.run("reel-verify", &[]).expect(0);
    let run = env.run("reel-verify", &["--tape", "T00001L9"]);
    run.expect(0);
    assert!(
        run.stderr
            .contains(&format!("{} member(s) good, 0 bad", written.len())),
        "{}",
        run.report()
    );
    // The tape rots: a byte of big.bin flips.
    let big = written
        .iter()
        .find(|r| r.path == Path::new("big.bin"))
        .unwrap();
    flip_on_tape(&env, place(big), 77, 0x10);
    let run = env.run("reel-verify", &["--tape", "T00001L9"]);
    run.expect(65);
    assert!(
        run.stderr.contains("big.bin: tape T00001L9 file"),
        "{}",
        run.report()
    );
    let tapes = env.run("reel", &["tapes", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&tapes.stdout).unwrap();
    assert!(
        list[0]["last_verify"].as_str().unwrap().contains("1 bad"),
        "{list}"
    );
    // The journal is the record of what was verified: an audit changes nothing there.
    assert_eq!(journal_entries(&env, "T00001L9").len(), written.len());
}

#[test]
fn the_quick_level_catches_an_archive_spoiled_in_the_cache_before_it_was_written() {
    let env = Env::new();
    setup(&env);
    let config = std::fs::read_to_string(env.path("pipeline.toml")).unwrap();
    env.write(
        "pipeline.toml",
        &format!("{config}\n[verify]\nlevel = \"quick\"\n"),
    );
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
    // A byte rots in the cache between pack and write: reel-write streams
    // (and takes the digest of) the spoiled archive.
    let packed = queue_records(&env, Queue::Packed);
    let big = packed
        .iter()
        .find(|r| r.path == Path::new("big.bin"))
        .unwrap();
    let spool = spool(&env);
    let item = spool
        .list(Queue::Packed)
        .unwrap()
        .into_iter()
        .find(|id| {
            std::fs::read_to_string(spool.item_path(Queue::Packed, id))
                .unwrap()
                .contains("\"path\":\"big.bin\"")
        })
        .unwrap();
    let (h, _) = ManifestReader::open(&spool.item_path(Queue::Packed, &item)).unwrap();
    let archive = std::path::PathBuf::from(h.extra["archive_path"].as_str().unwrap());
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[big.data_offset.unwrap() as usize + 4321] ^= 0x10;
    std::fs::write(&archive, bytes).unwrap();
    env.run("reel-write", &[]).expect(0);
    // Checked against the digest taken from the source, whatever the level.
    let run = env.run("reel-verify", &[]);
    run.expect(65);
    assert!(
        run.stderr.contains("big.bin") && run.stderr.contains("SHA-256"),
        "{}",
        run.report()
    );
    assert!(
        !journal_entries(&env, "T00001L9")
            .iter()
            .any(|(_, p)| p == Path::new("big.bin")),
        "not recorded"
    );
}

#[test]
fn a_header_changed_on_tape_is_caught_even_where_no_checksum_covers_it() {
    let env = Env::new();
    setup(&env);
    to_tape(&env);
    let written = queue_records(&env, Queue::Written);
    let f = written
        .iter()
        .find(|r| r.path == Path::new("dir/f05.bin"))
        .unwrap();
    // One digit of the nanosecond mtime in its pax header (pax data has no
    // checksum; GNU tar would restore the wrong time).
    let tape_file = env.path(&format!("lib/tapes/V00001L9/{:06}", f.file.unwrap()));
    let mut bytes = std::fs::read(&tape_file).unwrap();
    let (from, to) = (f.offset.unwrap() as usize, f.data_offset.unwrap() as usize);
    let at = from
        + bytes[from..to]
            .windows(7)
            .position(|w| w == b" mtime=")
            .unwrap()
        + 8;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&tape_file, bytes).unwrap();
    let run = env.run("reel-verify", &[]);
    run.expect(65);
    assert!(
        run.stderr.contains("dir/f05.bin") && run.stderr.contains("mode, owner or mtime"),
        "{}",
        run.report()
    );
    assert!(
        !journal_entries(&env, "T00001L9")
            .iter()
            .any(|(_, p)| p == Path::new("dir/f05.bin"))
    );
}

#[test]
fn import_matches_a_cut_copy_against_the_closing_catalog() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"4M\"\nbuffer = \"4M\"\n"
        ),
    );
    std::fs::create_dir_all(env.path("src")).unwrap();
    for i in 0..5 {
        for k in 0..5 {
            let data: Vec<u8> = (0..180_000)
                .map(|j| ((i * 5 + k + j) % 251) as u8)
                .collect();
            std::fs::write(env.path(&format!("src/a{i}-{k}.bin")), data).unwrap();
        }
    }
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
    // No changer, nobody at a terminal: the tape fills, the cut copy is
    // published, the tape is closed with REEL-TAPE.jsonl.
    env.run("reel-write", &[]).expect(69);
    env.run("reel-verify", &[]).expect(0);
    let at_backup = journal_full(&env, "T00001L9");
    let cut_file = queue_records(&env, Queue::Verified)
        .iter()
        .map(|r| r.file.unwrap())
        .max()
        .unwrap();
    assert!(
        at_backup.iter().any(|(f, ..)| *f == cut_file),
        "the cut copy's whole members were recorded at backup time"
    );
    std::fs::remove_file(journal::journal_path(&env.path("var/catalog"), "T00001L9")).unwrap();
    let run = env.run("reel", &["catalog", "import"]);
    run.expect(0);
    assert_eq!(
        journal_full(&env, "T00001L9"),
        at_backup,
        "{}",
        run.report()
    );
}
