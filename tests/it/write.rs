//! reel-write on the virtual library: archives become tape files, written
//! manifests say where, wrong tapes are refused, early warning stops
//! cleanly, signals, and a kill in the middle of an archive.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use reel_shared::manifest::{ManifestReader, Record};
use reel_shared::spool::{Queue, Spool};

use crate::support::{CONFIG, Env, bin};

fn spool(env: &Env) -> Spool {
    Spool::open(&env.path("var/spool")).unwrap()
}

/// The config with a drive on a virtual library of `capacity` tapes.
fn config(env: &Env, capacity: &str) {
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"{capacity}\"\nbuffer = \"4M\"\n"
        ),
    );
}

fn files(env: &Env, sizes: &[usize]) {
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size).map(|j| ((i * 31 + j) % 251) as u8).collect();
        std::fs::write(env.path(&format!("src/f{i}.bin")), data).unwrap();
    }
}

fn to_packed(env: &Env) {
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
}

/// (header extras, records) of every written item.
fn written(env: &Env) -> Written {
    let spool = spool(env);
    spool
        .list(Queue::Written)
        .unwrap()
        .into_iter()
        .map(|id| {
            let (h, mut r) = ManifestReader::open(&spool.item_path(Queue::Written, &id)).unwrap();
            (h.extra, r.records().map(Result::unwrap).collect())
        })
        .collect()
}

fn tape_file(env: &Env, barcode: &str, file: u64) -> PathBuf {
    env.path(&format!("lib/tapes/{barcode}/{file:06}"))
}

#[test]
fn archives_become_tape_files_and_written_manifests_say_where() {
    let env = Env::new();
    config(&env, "64M");
    files(&env, &[600_000, 600_000, 600_000]);
    to_packed(&env);
    let archives: Vec<PathBuf> = {
        let spool = spool(&env);
        spool
            .list(Queue::Packed)
            .unwrap()
            .iter()
            .map(|id| {
                let (h, _) = ManifestReader::open(&spool.item_path(Queue::Packed, id)).unwrap();
                PathBuf::from(h.extra["archive_path"].as_str().unwrap())
            })
            .collect()
    };
    assert_eq!(archives.len(), 3);
    // An unlabelled tape is refused.
    let run = env.run("reel-write", &[]);
    run.expect(69);
    assert!(
        run.stderr.contains("is blank: label it first"),
        "{}",
        run.report()
    );
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    env.run("reel-write", &[]).expect(0);
    assert!(spool(&env).list(Queue::Packed).unwrap().is_empty());
    let mut items = written(&env);
    items.sort_by_key(|(h, _)| h["file"].as_u64());
    assert_eq!(
        items
            .iter()
            .map(|(h, _)| h["file"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for ((h, records), archive) in items.iter().zip(&archives) {
        let file = h["file"].as_u64().unwrap();
        assert_eq!(
            std::fs::read(tape_file(&env, "V00001L9", file)).unwrap(),
            std::fs::read(archive).unwrap()
        );
        // The archive's digest, taken as it streamed past.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(archive).unwrap());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(h["archive_sha256"].as_str(), Some(hex.as_str()));
        let start = h["start_block"].as_u64().unwrap();
        for r in records {
            assert_eq!(r.tape.as_deref(), Some("T00001L9"));
            assert_eq!(r.file, Some(file));
            assert_eq!(r.block, Some(start + r.offset.unwrap() / (256 * 1024)));
        }
    }
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path("var/catalog/tapes/T00001L9.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["files"], 4);
    assert_eq!(state["state"], "writable");
    // More work appends after what is there.
    files(&env, &[600_000, 600_000, 600_000, 700_000]);
    to_packed(&env);
    env.run("reel-write", &[]).expect(0);
    assert!(written(&env).iter().any(|(h, _)| h["file"] == 4));
}

#[test]
fn a_tape_written_behind_reels_back_is_refused() {
    let env = Env::new();
    config(&env, "64M");
    files(&env, &[100_000]);
    to_packed(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    env.run("reel-write", &[]).expect(0);
    env.run("reel", &["mt", "eod"]).expect(0);
    env.run("reel", &["mt", "weof"]).expect(0);
    files(&env, &[100_000, 200_000]);
    to_packed(&env);
    let run = env.run("reel-write", &[]);
    run.expect(69);
    assert!(
        run.stderr.contains("refusing to append"),
        "{}",
        run.report()
    );
    assert_eq!(
        spool(&env).list(Queue::Packed).unwrap().len(),
        1,
        "the item waits"
    );
}

#[test]
fn early_warning_publishes_the_cut_copy_and_keeps_the_archive_queued() {
    let env = Env::new();
    // 4 MiB tapes warn 1 MiB before the end: the third 1 MiB archive hits it.
    config(&env, "4M");
    files(&env, &[900_000, 900_000, 900_000, 900_000]);
    to_packed(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let run = env.run("reel-write", &[]);
    run.expect(69);
    assert!(
        run.stderr.contains("tape T00001L9 is full"),
        "{}",
        run.report()
    );
    let items = written(&env);
    let partial: Vec<_> = items.iter().filter(|(h, _)| h["partial"] == true).collect();
    assert_eq!(partial.len(), 1, "{items:?}");
    assert!(
        partial[0].0.get("archive_sha256").is_none(),
        "a cut copy has no archive digest"
    );
    assert!(items.iter().filter(|(h, _)| h["partial"] == false).count() >= 1);
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path("var/catalog/tapes/T00001L9.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["state"], "full");
    // The tape describes itself: its last file is a tar archive holding
    // REEL-TAPE.jsonl, every archive on it (the cut copy included) with
    // its members.
    let last = tape_file(&env, "V00001L9", state["files"].as_u64().unwrap() - 1);
    let out = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&last)
        .arg("REEL-TAPE.jsonl")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines[0]["label"], "T00001L9");
    let archives: Vec<_> = lines.iter().filter(|l| l["type"] == "archive").collect();
    assert_eq!(archives.len(), items.len(), "{lines:?}");
    assert_eq!(archives.iter().filter(|a| a["partial"] == true).count(), 1);
    let members = lines.iter().filter(|l| l.get("path").is_some()).count();
    let expected: usize = items.iter().map(|(_, r)| r.len()).sum();
    assert_eq!(members, expected);
    assert!(
        !spool(&env).list(Queue::Packed).unwrap().is_empty(),
        "the cut archive waits for the next tape"
    );
    let again = env.run("reel-write", &[]);
    again.expect(69);
    assert!(
        again.stderr.contains("is full in the catalog"),
        "{}",
        again.report()
    );
}

/// Make the virtual tapes slow (a 4 MB/s drive) so that a run lasts long
/// enough to be signalled.
fn slow_tapes(env: &Env) {
    slow_tape(env, "lib");
}

/// Make the tape V00001L9 of the virtual library in `library` a 4 MB/s
/// drive's.
pub(crate) fn slow_tape(env: &Env, library: &str) {
    env.run("reel", &["mt", "status"]).expect(0); // creates the library
    slow_down(&env.path(&format!("{library}/tapes/V00001L9/meta.json")));
}

/// Make every tape of the virtual library in `library` a 4 MB/s drive's.
pub(crate) fn slow_library(env: &Env, library: &str) {
    env.run("reel", &["mt", "status"]).expect(0); // creates the library
    for e in std::fs::read_dir(env.path(&format!("{library}/tapes")))
        .unwrap()
        .flatten()
    {
        slow_down(&e.path().join("meta.json"));
    }
}

fn slow_down(meta: &std::path::Path) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    let mut speed =
        serde_json::to_value(reel_shared::tape::speed::preset("lto9").unwrap()).unwrap();
    speed["native"] = "4MB/s".into();
    speed["min"] = "2MB/s".into();
    speed["steps"] = 2.into();
    speed["buffer"] = "1M".into();
    speed["reposition"] = "10ms".into();
    v["speed"] = speed;
    std::fs::write(meta, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// The packed items, oldest first, taken out of their queue as text, to be
/// fed to `reel-write --in -`.
fn take_packed(env: &Env) -> Vec<(String, String)> {
    let spool = spool(env);
    spool
        .list(Queue::Packed)
        .unwrap()
        .into_iter()
        .map(|id| {
            let path = spool.item_path(Queue::Packed, &id);
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            (id, text)
        })
        .collect()
}

#[test]
fn sigusr1_prints_a_progress_line_and_the_copy_goes_on() {
    use std::io::Write as _;
    let env = Env::new();
    config(&env, "64M");
    files(&env, &[900_000; 6]);
    to_packed(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let items = take_packed(&env);
    assert_eq!(items.len(), 6);
    let mut cmd = env.command("reel-write", &["--in", "-"]);
    cmd.stdin(Stdio::piped());
    let mut w = crate::support::Background::start(cmd, env.root());
    let mut stdin = w.child.stdin.take().unwrap();
    // The first item, and the next one's header (so reel-write knows the
    // first has ended): it writes the first archive, then waits for more.
    let (second_header, second_rest) = items[1].1.split_once('\n').unwrap();
    stdin.write_all(items[0].1.as_bytes()).unwrap();
    writeln!(stdin, "{second_header}").unwrap();
    stdin.flush().unwrap();
    w.wait_for_line(&format!("{}: tape T00001L9 file 1", items[0].0));
    // Its handler is in place (it has written an archive): the signal is
    // caught while it waits, and answered at the next block it writes.
    w.signal(nix::sys::signal::Signal::SIGUSR1);
    stdin.write_all(second_rest.as_bytes()).unwrap();
    for (_, text) in &items[2..] {
        stdin.write_all(text.as_bytes()).unwrap();
    }
    drop(stdin);
    let run = w.finish();
    run.expect(0);
    assert!(
        run.stderr.contains("/s average, ring ")
            && run.stderr.contains("tape T00001L9 file 2 block"),
        "{}",
        run.report()
    );
    let items = written(&env);
    assert_eq!(items.len(), 6);
    for (h, _) in &items {
        let archive = h["archive_path"].as_str().unwrap();
        let file = h["file"].as_u64().unwrap();
        assert_eq!(
            std::fs::read(tape_file(&env, "V00001L9", file)).unwrap(),
            std::fs::read(archive).unwrap()
        );
    }
}

/// Four packed archives of about 1 MiB and tape T00001L9 (V00001L9)
/// labelled in a 4 MB/s drive with a 1 MiB buffer.
fn four_archives_for_a_slow_tape(env: &Env) {
    files(env, &[900_000; 4]);
    to_packed(env);
    slow_tapes(env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
}

type Written = Vec<(serde_json::Map<String, serde_json::Value>, Vec<Record>)>;

/// The tape files the written items name, in order.
fn files_of(items: &Written) -> Vec<u64> {
    let mut files: Vec<u64> = items
        .iter()
        .map(|(h, _)| h["file"].as_u64().unwrap())
        .collect();
    files.sort();
    files
}

/// Each written item's tape file on V00001L9 holds its archive.
fn tape_files_are_the_archives(env: &Env, items: &Written) {
    for (h, _) in items {
        let archive = h["archive_path"].as_str().unwrap();
        assert_eq!(
            std::fs::read(tape_file(env, "V00001L9", h["file"].as_u64().unwrap())).unwrap(),
            std::fs::read(archive).unwrap()
        );
    }
}

#[test]
fn sigkill_in_the_middle_of_an_archive_then_rerun_leaves_tape_and_queue_consistent() {
    let env = Env::new();
    config(&env, "64M");
    four_archives_for_a_slow_tape(&env);
    let mut w = env.spawn("reel-write", &[]);
    // Killed while it is stopped in the middle of an archive: its tape file
    // holds data and has no filemark yet (the next file appears with it).
    // The first archive fills the drive's empty buffer at once; the others
    // go at the tape's pace.
    let len = |f: u64| std::fs::metadata(tape_file(&env, "V00001L9", f)).map(|m| m.len());
    let frozen = w.freeze_when("the second, third or fourth archive under way", || {
        (2..=4).any(|f| len(f).is_ok_and(|n| n > 0) && len(f + 1).is_err())
    });
    w.signal(nix::sys::signal::Signal::SIGKILL);
    drop(frozen);
    w.finish();
    let before = written(&env).len();
    assert!(before < 4, "killed before the end");
    let run = env.run("reel-write", &[]);
    run.expect(0);
    let items = written(&env);
    assert_eq!(items.len(), 4, "{}", run.report());
    assert!(spool(&env).list(Queue::Packed).unwrap().is_empty());
    assert_eq!(
        files_of(&items),
        [1, 2, 3, 4],
        "the unfinished file was written over"
    );
    tape_files_are_the_archives(&env, &items);
}

/// Archives go to tape behind filemarks that do not wait, and are
/// published only after a flush: a run killed with two or three archives
/// closed and the next under way has published none of them (the virtual drive
/// lost its buffer with the process), and the next run writes all four,
/// over what the killed one left, each exactly once.
#[test]
fn archives_not_flushed_when_killed_are_unpublished_and_written_again() {
    let env = Env::new();
    config(&env, "64M");
    four_archives_for_a_slow_tape(&env);
    let mut w = env.spawn("reel-write", &[]);
    let len = |f: u64| std::fs::metadata(tape_file(&env, "V00001L9", f)).map(|m| m.len());
    let frozen = w.freeze_when("the third or fourth archive under way", || {
        (3..=4).any(|f| len(f).is_ok_and(|n| n > 0) && len(f + 1).is_err())
    });
    let published = written(&env).len();
    w.signal(nix::sys::signal::Signal::SIGKILL);
    drop(frozen);
    w.finish();
    assert_eq!(published, 0, "nothing is published before the flush");
    assert_eq!(spool(&env).list(Queue::Packed).unwrap().len(), 4);
    let run = env.run("reel-write", &[]);
    run.expect(0);
    let items = written(&env);
    assert_eq!(items.len(), 4, "{}", run.report());
    assert_eq!(files_of(&items), [1, 2, 3, 4], "{}", run.report());
    tape_files_are_the_archives(&env, &items);
    assert!(
        tape_file(&env, "V00001L9", 6).metadata().is_err(),
        "nothing after the four archives"
    );
}

/// `[write] flush_every`: a flush after that many bytes at the latest —
/// here after every archive, so that each is published before the next
/// one begins; a run killed then keeps what it published (on tape, the
/// next run appending after it). A build without the flush
/// (`--features reel-shared/unflushed-tape`) fails here.
#[test]
fn flush_every_publishes_archives_as_they_go() {
    let env = Env::new();
    config(&env, "64M");
    let conf = std::fs::read_to_string(env.path("pipeline.toml")).unwrap();
    env.write(
        "pipeline.toml",
        &format!("{conf}\n[write]\nflush_every = \"1\"\n"),
    );
    four_archives_for_a_slow_tape(&env);
    let mut w = env.spawn("reel-write", &[]);
    let len = |f: u64| std::fs::metadata(tape_file(&env, "V00001L9", f)).map(|m| m.len());
    let frozen = w.freeze_when("the third archive begun", || len(3).is_ok_and(|n| n > 0));
    let published = written(&env);
    // Killed now: what was published was flushed first, so it is on tape
    // (the virtual drive loses only what no flush committed) and the next
    // run appends after it.
    w.signal(nix::sys::signal::Signal::SIGKILL);
    drop(frozen);
    w.finish();
    assert!(
        files_of(&published).starts_with(&[1, 2]),
        "the first two were published before the third began: {:?}",
        files_of(&published)
    );
    tape_files_are_the_archives(&env, &published);
    let run = env.run("reel-write", &[]);
    run.expect(0);
    let items = written(&env);
    assert_eq!(files_of(&items), [1, 2, 3, 4], "{}", run.report());
    tape_files_are_the_archives(&env, &items);
}

/// `reel-write ARGS` with `data` on stdin: (exit code, stderr).
fn write_stdin(env: &Env, args: &[&str], data: &[u8]) -> (Option<i32>, String) {
    use std::io::Write as _;
    let mut child = Command::new(bin("reel-write"))
        .args(args)
        .current_dir(env.root())
        .env_remove("REEL_CONFIG")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    // A run that stops early (the early warning) closes its end: a broken
    // pipe here is expected then.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn raw_unlabelled_appends_after_the_end_of_data_of_any_tape_and_stops_at_the_early_warning() {
    let env = Env::new();
    config(&env, "8M");
    // A blank tape: the stream is its file 0; the next run is file 1.
    let first: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let (code, err) = write_stdin(&env, &["--raw", "--unlabelled"], &first);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read(tape_file(&env, "V00001L9", 0)).unwrap(),
        first
    );
    let second = vec![7u8; 300_000];
    let (code, err) = write_stdin(&env, &["--raw", "--unlabelled"], &second);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read(tape_file(&env, "V00001L9", 0)).unwrap(),
        first
    );
    assert_eq!(
        std::fs::read(tape_file(&env, "V00001L9", 1)).unwrap(),
        second
    );
    // Nothing went to the catalog.
    assert!(!env.path("var/catalog/tapes/V00001L9.json").exists());
    // More than the tape holds: cut at the early warning, the file closed,
    // exit 69 saying so; what is on tape is a prefix of the stream.
    let big: Vec<u8> = (0..12_000_000u32).map(|i| (i % 241) as u8).collect();
    let (code, err) = write_stdin(&env, &["--raw", "--unlabelled"], &big);
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains("reached its early warning"), "{err}");
    let on_tape = std::fs::read(tape_file(&env, "V00001L9", 2)).unwrap();
    assert!(!on_tape.is_empty() && on_tape.len() < big.len());
    assert_eq!(on_tape[..], big[..on_tape.len()]);
    // --unlabelled needs --raw.
    let run = env.run("reel-write", &["--unlabelled"]);
    run.expect(64);
}

#[test]
fn a_virtual_drive_without_a_speed_model_is_written_from_the_first_block() {
    use std::io::Write as _;
    // The ring is 4 MiB: a drive that moves tape would wait for 90 % of
    // it (or the end of the stream). A virtual drive on disk stops
    // nothing by running dry: its first block goes at once.
    let env = Env::new();
    config(&env, "64M");
    let mut child = env
        .command("reel-write", &["--raw", "--unlabelled"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let first = vec![5u8; 512 << 10];
    stdin.write_all(&first).unwrap();
    stdin.flush().unwrap();
    // Wait for the data on tape while stdin stays open.
    let tape = tape_file(&env, "V00001L9", 0);
    crate::support::wait_until("data on tape while the stream is open", || {
        std::fs::metadata(&tape).map_or(0, |m| m.len()) >= 256 << 10
    });
    let rest = vec![6u8; 100_000];
    stdin.write_all(&rest).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&tape).unwrap(), [first, rest].concat());
}

#[test]
fn raw_mode_writes_stdin_as_one_tape_file() {
    use std::io::Write as _;
    let env = Env::new();
    config(&env, "64M");
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut child = Command::new(bin("reel-write"))
        .arg("--raw")
        .current_dir(env.root())
        .env_remove("REEL_CONFIG")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(tape_file(&env, "V00001L9", 1)).unwrap(),
        data,
        "the tape file is the stream"
    );
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path("var/catalog/tapes/T00001L9.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["files"], 2);
    // The next run appends after it.
    files(&env, &[100_000]);
    to_packed(&env);
    env.run("reel-write", &[]).expect(0);
    assert_eq!(written(&env)[0].0["file"], 2);
}

/// Every run on a tape is one telemetry session with a `start` and an
/// `end` record, whatever its length: `reel stats` has its exact bytes
/// and rate, and draws its line (a short run once showed 1.6 GiB of 2 and
/// no rate, because records came only every 5 s and none at the end).
#[test]
fn telemetry_records_each_run_from_its_start_to_its_end() {
    let env = Env::new();
    config(&env, "64M");
    files(&env, &[900_000; 4]);
    to_packed(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    env.run("reel-write", &[]).expect(0);
    let dir = env.path("var/log/telemetry");
    let logs: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(logs.len(), 1);
    assert!(
        logs[0]
            .file_name()
            .to_string_lossy()
            .starts_with("T00001L9-")
    );
    let text = std::fs::read_to_string(logs[0].path()).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (first, last) = (&records[0], records.last().unwrap());
    assert_eq!(
        (&first["event"], &first["bytes"]),
        (&"start".into(), &0.into())
    );
    assert_eq!(first["tape"], "T00001L9");
    let tapes: serde_json::Value =
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap();
    let on_tape = tapes[0]["bytes"].as_u64().unwrap();
    assert!(on_tape >= 3_600_000);
    assert_eq!(last["event"], "end");
    assert_eq!(last["bytes"].as_u64(), Some(on_tape), "{text}");
    assert!(last["rate"].as_u64().unwrap() > 0);
    // reel stats reads what reel-write wrote: every byte, and a rate.
    let stats = env.run("reel", &["stats", "--json", "--plot", "rate.svg"]);
    stats.expect(0);
    let report: serde_json::Value = serde_json::from_str(&stats.stdout).unwrap();
    assert_eq!(report[0]["tape"], "T00001L9");
    assert_eq!(report[0]["bytes"].as_u64(), Some(on_tape));
    assert!(report[0]["rate"].as_u64().unwrap() > 0, "{report}");
    let svg = std::fs::read_to_string(env.path("rate.svg")).unwrap();
    let points = svg
        .lines()
        .find(|l| l.contains("stroke=\"#1f77b4\""))
        .unwrap()
        .matches(',')
        .count();
    assert!(points >= 2, "a line needs two points: {svg}");
    // A second, raw run: its own session, its own exact figures.
    let out = env
        .command("reel-write", &["--raw"])
        .stdin(std::fs::File::open(env.path("src/f0.bin")).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stats = env.run("reel", &["stats", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stats.stdout).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report[1]["bytes"].as_u64(), Some(900_000), "{report}");
    assert!(report[1]["rate"].as_u64().unwrap() > 0, "{report}");
}

/// A telemetry file of `n` records at `rate` bytes per second.
pub(crate) fn telemetry(env: &Env, tape: &str, start: &str, rate: u64, n: u64) {
    let mut text = String::new();
    for k in 1..=n {
        let t = 5 * k;
        text += &serde_json::json!({
            "time": "2026-11-23T10:00:00Z", "elapsed_s": t, "tape": tape, "file": 1,
            "block": k, "bytes": rate * t, "rate": rate, "ring_fill": 0.5,
            "starvations": 0,
        })
        .to_string();
        text.push('\n');
    }
    env.write(&format!("var/log/telemetry/{tape}-{start}.jsonl"), &text);
}

#[test]
fn reel_stats_fits_rates_and_flags_a_run_slower_than_its_history() {
    let env = Env::new();
    config(&env, "64M");
    for (start, rate) in [
        ("20261101T010000Z", 300_000_000),
        ("20261102T010000Z", 310_000_000),
        ("20261103T010000Z", 305_000_000),
        ("20261104T010000Z", 120_000_000),
    ] {
        telemetry(&env, "T00001L9", start, rate, 12);
    }
    telemetry(&env, "T00002L9", "20261103T020000Z", 300_000_000, 12);
    let run = env.run(
        "reel",
        &["stats", "T00001L9", "--json", "--plot", "rate.svg"],
    );
    run.expect(0);
    let report: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report.len(), 4, "only T00001L9's runs");
    let rates: Vec<u64> = report.iter().map(|r| r["rate"].as_u64().unwrap()).collect();
    assert_eq!(rates, [300_000_000, 310_000_000, 305_000_000, 120_000_000]);
    let flagged: Vec<usize> = (0..4)
        .filter(|&i| !report[i]["flags"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(flagged, [3], "{report:?}");
    let svg = std::fs::read_to_string(env.path("rate.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 2, "rate and ring fill");
    // The table, for people.
    let table = env.run("reel", &["stats"]);
    table.expect(0);
    assert!(table.stdout.contains("T00002L9"), "{}", table.report());
    // No telemetry for a tape: a clear error.
    let none = env.run("reel", &["stats", "T00009L9"]);
    none.expect(66);
    assert!(none.stderr.contains("no telemetry for tape T00009L9"));
}

#[test]
fn at_early_warning_the_changer_brings_the_next_tape_and_the_cut_archive_is_written_again() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"4M\"\nbuffer = \"4M\"\n"
        ),
    );
    files(&env, &[900_000; 6]);
    to_packed(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let run = env.run("reel-write", &[]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("loaded V00002L9 from slot 2, labelled it"),
        "{}",
        run.report()
    );
    assert!(
        spool(&env).list(Queue::Packed).unwrap().is_empty(),
        "every archive is on tape"
    );
    let items = written(&env);
    let complete: Vec<_> = items
        .iter()
        .filter(|(h, _)| h["partial"] == false)
        .collect();
    assert_eq!(complete.len(), 6, "each archive once, whole: {items:?}");
    let mut archives: Vec<_> = complete
        .iter()
        .map(|(h, _)| h["archive"].as_str().unwrap().to_string())
        .collect();
    archives.sort();
    archives.dedup();
    assert_eq!(archives.len(), 6);
    // A copy cut by the early warning is published as partial, and its
    // archive is also on a later tape, whole.
    for (h, _) in items.iter().filter(|(h, _)| h["partial"] == true) {
        let again = complete
            .iter()
            .find(|(c, _)| c["archive"] == h["archive"])
            .unwrap();
        assert_ne!(again.0["tape"], h["tape"]);
    }
    let tapes: std::collections::BTreeSet<_> = complete
        .iter()
        .map(|(h, _)| h["tape"].as_str().unwrap().to_string())
        .collect();
    assert!(tapes.len() >= 2, "{tapes:?}");
    for (h, _) in &complete {
        let label = h["tape"].as_str().unwrap();
        let barcode = if label == "T00001L9" {
            "V00001L9"
        } else {
            label
        };
        let archive = h["archive_path"].as_str().unwrap();
        assert_eq!(
            std::fs::read(tape_file(&env, barcode, h["file"].as_u64().unwrap())).unwrap(),
            std::fs::read(archive).unwrap()
        );
    }
    let full: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path("var/catalog/tapes/T00001L9.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(full["state"], "full");
    let changer = env.run("reel", &["changer", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&changer.stdout).unwrap();
    assert_eq!(
        v["slots"][0]["barcode"], "V00001L9",
        "the full tape went home"
    );
}

/// An archive that does not fit on an empty tape would be cut on every
/// tape of the library in turn, each then marked full: it goes to failed/
/// with its reason instead, and the others are written.
#[test]
fn an_archive_larger_than_an_empty_tape_fails_instead_of_filling_every_tape() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"4M\"\nbuffer = \"4M\"\n"
        ),
    );
    // Under the 90% of the capacity above which reel-pack splits a file,
    // over the room before the early warning.
    files(&env, &[3_300_000, 300_000, 300_000]);
    to_packed(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let run = env.run("reel-write", &[]);
    run.expect(65);
    assert!(
        run.stderr.contains("does not fit on an empty tape"),
        "{}",
        run.report()
    );
    let failed = spool(&env).list(Queue::Failed).unwrap();
    assert_eq!(failed.len(), 1, "{}", run.report());
    assert!(spool(&env).list(Queue::Packed).unwrap().is_empty());
    let whole: Vec<_> = written(&env)
        .into_iter()
        .filter(|(h, _)| h["partial"] == false)
        .collect();
    let on_tape: Vec<_> = whole
        .iter()
        .flat_map(|(_, records)| records.iter().map(|r| r.path.clone()))
        .collect();
    assert!(
        on_tape.iter().any(|p| p.ends_with("f1.bin"))
            && on_tape.iter().any(|p| p.ends_with("f2.bin")),
        "the small files are on tape: {on_tape:?}"
    );
    let tapes = env.run("reel", &["tapes", "--json"]);
    let tapes: Vec<serde_json::Value> = serde_json::from_str(&tapes.stdout).unwrap();
    assert!(
        tapes.len() <= 3,
        "a tape or two, not the whole library: {tapes:?}"
    );
}

/// A pseudo-terminal: the master's descriptor and the slave's path.
fn pty() -> (std::fs::File, std::ffi::CString) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on a descriptor we own; ptsname_r writes
    // within the buffer it is given.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let slave = std::ffi::CStr::from_ptr(name.as_ptr()).to_owned();
        (std::fs::File::from_raw_fd(master), slave)
    }
}

#[test]
fn without_a_changer_the_operator_is_asked_for_the_next_tape() {
    use std::io::{Read, Write};
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    config(&env, "4M");
    files(&env, &[900_000, 900_000, 900_000, 900_000]);
    to_packed(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let (mut master, slave) = pty();
    let mut cmd = Command::new(bin("reel-write"));
    cmd.current_dir(env.root())
        .env_remove("REEL_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid and open are async-signal-safe; the path was made
    // before the fork. Opening a terminal in a new session without
    // O_NOCTTY makes it the controlling terminal: the child's /dev/tty.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::open(slave.as_ptr(), libc::O_RDWR) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    // What the operator sees, up to the question.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("press Enter") {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break, // the child is gone: the asserts say why
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let prompt = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        prompt.contains("tape T00001L9 (pool default) is full"),
        "{prompt}"
    );
    // The operator swaps the tape and labels the new one (reel-write let
    // go of the drive while it waits), then answers.
    env.run("reel", &["changer", "-f", "virtual:lib", "unload"])
        .expect(0);
    env.run("reel", &["changer", "-f", "virtual:lib", "load", "2"])
        .expect(0);
    env.run("reel", &["mt", "label", "T00002L9"]).expect(0);
    master.write_all(b"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(spool(&env).list(Queue::Packed).unwrap().is_empty());
    let items = written(&env);
    let on_second: Vec<_> = items
        .iter()
        .filter(|(h, _)| h["tape"] == "T00002L9")
        .collect();
    assert!(!on_second.is_empty(), "{items:?}");
    assert!(
        on_second.iter().all(|(h, _)| h["partial"] == false),
        "whole copies on the new tape"
    );
}

#[test]
fn without_a_changer_or_an_operator_a_full_tape_stops_with_69() {
    let env = Env::new();
    config(&env, "4M");
    files(&env, &[900_000, 900_000, 900_000, 900_000]);
    to_packed(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    // Env::run gives the child no terminal: nobody to ask.
    let run = env.run("reel-write", &[]);
    run.expect(69);
    assert!(
        run.stderr
            .contains("load the next tape and run reel-write again"),
        "{}",
        run.report()
    );
}

#[test]
fn on_a_terminal_a_status_line_is_redrawn_while_writing() {
    use std::io::Read;
    let env = Env::new();
    config(&env, "64M");
    files(&env, &[900_000; 12]);
    to_packed(&env);
    slow_tapes(&env);
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let (mut master, slave) = pty();
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(slave.to_str().unwrap())
        .unwrap();
    let mut cmd = Command::new(bin("reel-write"));
    cmd.current_dir(env.root())
        .env_remove("REEL_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(tty);
    crate::support::detach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // the parent's copy of the slave: EOF on the master at exit
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let text = String::from_utf8_lossy(&seen);
    // Redrawn in place: erase the line, then the status.
    let redraws = text.matches("\r\x1b[2K").count();
    let lines = text
        .split("\r\x1b[2K")
        .filter(|part| part.contains("written,") && part.contains("ring"))
        .count();
    assert!(lines >= 2 && redraws >= lines, "{text:?}");
}

#[test]
fn raw_mode_goes_on_on_the_next_tape_at_the_early_warning() {
    use std::io::Write as _;
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"4M\"\nbuffer = \"2M\"\n"
        ),
    );
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut cmd = Command::new(bin("reel-write"));
    cmd.arg("--raw")
        .current_dir(env.root())
        .env_remove("REEL_CONFIG")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped());
    crate::support::detach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("2 pieces"), "{stderr}");
    // The first tape holds the stream up to its early warning, the second
    // the rest: together, the stream.
    let mut joined = std::fs::read(tape_file(&env, "V00001L9", 1)).unwrap();
    assert!(joined.len() < data.len());
    joined.extend(std::fs::read(tape_file(&env, "V00002L9", 1)).unwrap());
    assert!(joined == data, "the two pieces join into the stream");
    let state = |label: &str| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(env.path(&format!("var/catalog/tapes/{label}.json"))).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(state("T00001L9")["state"], "full");
    assert_eq!(state("V00002L9")["state"], "writable");
    // Telemetry for each tape.
    let logs: Vec<String> = std::fs::read_dir(env.path("var/log/telemetry"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(logs.iter().any(|l| l.starts_with("T00001L9-")), "{logs:?}");
}

#[test]
fn a_label_left_without_its_filemark_is_written_again_before_the_first_archive() {
    let env = Env::new();
    config(&env, "64M");
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    // Keep the label block, drop its filemark: a run killed while
    // labelling (between the two) leaves the tape so.
    let mut image = reel_shared::vtl::Image::open(&env.path("lib/tapes/V00001L9")).unwrap();
    let mut block = vec![0u8; 1 << 20];
    let n = image.read_block(0, 0, &mut block).unwrap();
    block.truncate(n);
    image.truncate_at(0, 0).unwrap();
    image.append_block(0, &block).unwrap();
    image.save().unwrap();
    drop(image);
    files(&env, &[100_000]);
    to_packed(&env);
    let run = env.run("reel-write", &[]);
    run.expect(0);
    assert!(run.stderr.contains("writing it again"), "{}", run.report());
    assert_eq!(written(&env)[0].0["file"], 1);
    let id = env.run("reel", &["mt", "identify"]);
    id.expect(0);
    assert!(id.stdout.contains("T00001L9"), "{}", id.report());
}

/// `[write] archive_sha256 = false`: no whole-archive digest in the
/// written manifest (reel-write spends no CPU on it), and everything else
/// as before: the tape files are the archives, and verify records every
/// member by its own digest.
#[test]
fn without_the_archive_digest_the_tape_files_are_the_archives_and_verify() {
    let env = Env::new();
    config(&env, "64M");
    let text = std::fs::read_to_string(env.path("pipeline.toml")).unwrap();
    env.write(
        "pipeline.toml",
        &format!("{text}\n[write]\narchive_sha256 = false\n"),
    );
    files(&env, &[300_000, 700_000, 5_000]);
    to_packed(&env);
    let archives: Vec<std::path::PathBuf> = std::fs::read_dir(env.path("var/cache/archives"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    env.run("reel-write", &[]).expect(0);
    let items = written(&env);
    assert!(!items.is_empty());
    for (h, _) in &items {
        assert!(h.get("archive_sha256").is_none(), "{h:?}");
        let file = h["file"].as_u64().unwrap();
        let on_tape = std::fs::read(tape_file(&env, "V00001L9", file)).unwrap();
        assert!(
            archives
                .iter()
                .any(|a| std::fs::read(a).unwrap() == on_tape)
        );
    }
    env.run("reel-verify", &[]).expect(0);
    let journal = std::fs::read_to_string(env.path("var/catalog/tapes/T00001L9.jsonl")).unwrap();
    for f in ["f0.bin", "f1.bin", "f2.bin"] {
        assert!(journal.contains(&format!("\"path\":\"{f}\"")), "{journal}");
    }
}
