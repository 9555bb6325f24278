//! `reel-restore --from-tape`: disaster recovery with nothing but tapes. The
//! tar headers are the truth, the indexes make it fast: files split across
//! tapes are joined over one run per tape, cut copies and truncated
//! archives give back everything whole on them, and a damaged index line
//! or header loses at most that member.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::support::{CONFIG, Env};
use crate::verify::to_tape;

/// A library of `capacity` tapes with a changer, archives of `archive`.
fn library(env: &Env, archive: &str, capacity: &str) {
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"{archive}\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"{capacity}\"\nbuffer = \"4M\"\n"
        ),
    );
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
}

fn data(seed: u32, len: u32) -> Vec<u8> {
    (0..len)
        .map(|j| (j.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed as u8)
        .collect()
}

/// The barcode of the tape whose label is `label`, from its label file.
fn barcodes(env: &Env) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(env.path("lib/tapes"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("000001").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Put the tape with `barcode` in the drive (whatever is there now goes
/// back to a slot).
fn load(env: &Env, barcode: &str) {
    let status = env.run("reel", &["changer", "list", "-f", "virtual:lib"]);
    status.expect(0);
    if status
        .stdout
        .lines()
        .any(|l| l.starts_with("drive") && l.contains(barcode))
    {
        return;
    }
    if status
        .stdout
        .lines()
        .any(|l| l.starts_with("drive") && !l.contains("empty"))
    {
        env.run("reel", &["changer", "unload", "-f", "virtual:lib"])
            .expect(0);
        return load(env, barcode);
    }
    let slot = status
        .stdout
        .lines()
        .find(|l| l.starts_with("slot") && l.contains(barcode))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("{barcode} not in a slot:\n{}", status.stdout))
        .to_string();
    env.run("reel", &["changer", "load", &slot, "-f", "virtual:lib"])
        .expect(0);
}

fn from_tape(env: &Env, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["--from-tape", "virtual:lib"];
    all.extend_from_slice(args);
    env.run("reel-restore", &all)
}

fn tape_file(env: &Env, barcode: &str, file: u64) -> PathBuf {
    env.path(&format!("lib/tapes/{barcode}/{file:06}"))
}

/// Replace the first `from` after byte `after` of a tape file with `to`
/// (the same length: the block layout stays).
fn patch(path: &Path, after: usize, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let at = after
        + bytes[after..]
            .windows(from.len())
            .position(|w| w == from)
            .unwrap_or_else(|| {
                panic!(
                    "{:?} not in {}",
                    String::from_utf8_lossy(from),
                    path.display()
                )
            });
    bytes[at..at + to.len()].copy_from_slice(to);
    std::fs::write(path, bytes).unwrap();
}

/// A backed-up tree of small files in one archive, the catalog gone.
fn small_files(env: &Env, n: u32) {
    library(env, "64M", "256M");
    for i in 0..n {
        std::fs::write(
            env.path(&format!("src/f{i:02}.bin")),
            data(i, 60_000 + i * 9_973),
        )
        .unwrap();
    }
    to_tape(env);
    env.run("reel-verify", &[]).expect(0);
    std::fs::remove_dir_all(env.path("var/catalog")).unwrap();
}

fn same(env: &Env, rel: &str) -> bool {
    std::fs::read(env.path("out").join(rel)).ok() == std::fs::read(env.path("src").join(rel)).ok()
}

#[test]
fn a_file_split_over_two_tapes_is_joined_over_one_run_per_tape() {
    let env = Env::new();
    library(&env, "2M", "8M");
    let huge = data(7, 9_500_000);
    std::fs::write(env.path("src/huge.bin"), &huge).unwrap();
    std::fs::write(env.path("src/small.txt"), "small").unwrap();
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    std::fs::remove_dir_all(env.path("var/catalog")).unwrap();
    let tapes = barcodes(&env);
    assert!(tapes.len() >= 2, "{tapes:?}");
    let mut runs = Vec::new();
    for (i, t) in tapes.iter().enumerate() {
        load(&env, t);
        let run = from_tape(&env, &["huge.bin", "--to", "out"]);
        if i + 1 < tapes.len() {
            // Parts still on other tapes: kept, said, and waited for.
            run.expect(69);
            assert!(
                run.stderr.contains("other parts are on other tapes"),
                "{}",
                run.report()
            );
            assert!(!env.path("out/huge.bin").exists());
        } else {
            run.expect(0);
        }
        runs.push(run);
    }
    assert!(
        std::fs::read(env.path("out/huge.bin")).unwrap() == huge,
        "{}",
        runs.iter()
            .map(|r| r.report())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        std::fs::metadata(env.path("out/huge.bin")).unwrap().mtime(),
        std::fs::metadata(env.path("src/huge.bin")).unwrap().mtime()
    );
    // Nothing of the join is left behind.
    let left: Vec<_> = std::fs::read_dir(env.path("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["huge.bin"], "{left:?}");
}

#[test]
fn a_full_tape_gives_back_everything_whole_on_it_and_names_its_cut_copy() {
    let env = Env::new();
    library(&env, "1M", "4M");
    for i in 0..16 {
        std::fs::write(env.path(&format!("src/f{i:02}.bin")), data(i, 200_000)).unwrap();
    }
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    std::fs::remove_dir_all(env.path("var/catalog")).unwrap();
    let first = &barcodes(&env)[0];
    load(&env, first);
    let run = from_tape(&env, &["", "--to", "out"]);
    run.expect(0);
    assert!(
        run.stderr.contains("its closing REEL-TAPE.jsonl"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr.contains("past the early warning in a cut copy"),
        "{}",
        run.report()
    );
    // Every file whose copy is whole on this tape came back exactly.
    let back: Vec<String> = std::fs::read_dir(env.path("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(back.len() >= 6, "{back:?}\n{}", run.report());
    for f in &back {
        assert!(same(&env, f), "{f}");
    }
}

#[test]
fn a_damaged_index_line_is_read_around_through_the_headers() {
    let env = Env::new();
    small_files(&env, 12);
    let tf = tape_file(&env, "V00001L9", 1);
    // Spoil f05's line of REEL-INDEX.jsonl (the last member of the archive).
    let bytes = std::fs::read(&tf).unwrap();
    let index_at = bytes
        .windows(16)
        .rposition(|w| w == b"REEL-INDEX.jsonl")
        .unwrap();
    patch(
        &tf,
        index_at,
        b"{\"path\":\"f05.bin\"",
        b"{\"pa#h\":\"f05.bin\"",
    );
    let run = from_tape(&env, &["", "--to", "out"]);
    run.expect(0);
    assert!(
        run.stderr.contains("REEL-INDEX.jsonl line")
            && run.stderr.contains("read from its headers"),
        "{}",
        run.report()
    );
    for i in 0..12 {
        assert!(
            same(&env, &format!("f{i:02}.bin")),
            "f{i:02}.bin\n{}",
            run.report()
        );
    }
    // The member whose line is gone had no digest to be checked against.
    assert!(
        run.stderr.contains("f05.bin") && run.stderr.contains("no recorded digest"),
        "{}",
        run.report()
    );
}

#[test]
fn an_absurd_size_in_a_pax_header_loses_that_member_only() {
    let env = Env::new();
    small_files(&env, 12);
    let tf = tape_file(&env, "V00001L9", 1);
    let bytes = std::fs::read(&tf).unwrap();
    // f04's pax header: its mtime record becomes a size of 10^18 (same
    // length, so its record length and the layout hold).
    let name_at = bytes
        .windows(18)
        .position(|w| w == b"PaxHeaders/f04.bin")
        .unwrap();
    let mtime_at = name_at
        + bytes[name_at..]
            .windows(7)
            .position(|w| w == b" mtime=")
            .unwrap();
    let end = mtime_at + bytes[mtime_at..].iter().position(|&b| b == b'\n').unwrap();
    let old = bytes[mtime_at..end].to_vec();
    let mut new = b" size=".to_vec();
    new.extend(std::iter::repeat_n(b'0', old.len() - new.len() - 19));
    new.extend(b"1000000000000000000");
    assert_eq!(new.len(), old.len());
    patch(&tf, name_at, &old, &new);
    // Without the index (its line for f04 disagrees with the header, and a
    // walk must step over the absurd one).
    let run = from_tape(&env, &["", "--to", "out"]);
    run.expect(65);
    assert!(
        run.stderr.contains("run past the archive's end"),
        "{}",
        run.report()
    );
    for i in (0..12).filter(|&i| i != 4) {
        assert!(
            same(&env, &format!("f{i:02}.bin")),
            "f{i:02}.bin\n{}",
            run.report()
        );
    }
    assert!(!env.path("out/f04.bin").exists(), "{}", run.report());
}

#[test]
fn a_truncated_archive_gives_back_every_whole_member_and_names_the_rest() {
    let env = Env::new();
    small_files(&env, 12);
    // A filemark written in the middle of the archive: the rest is gone.
    let blocks = std::fs::metadata(tape_file(&env, "V00001L9", 1))
        .unwrap()
        .len()
        / 262_144;
    assert!(blocks >= 3, "{blocks}");
    env.run(
        "reel",
        &[
            "mt",
            "-f",
            "virtual:lib",
            "seek",
            &(1 + 1 + blocks / 2).to_string(),
        ],
    )
    .expect(0);
    env.run("reel", &["mt", "-f", "virtual:lib", "weof"])
        .expect(0);
    let run = from_tape(&env, &["", "--to", "out"]);
    run.expect(65);
    assert!(
        run.stderr
            .contains("nothing more of this archive can be read"),
        "{}",
        run.report()
    );
    let back: Vec<String> = std::fs::read_dir(env.path("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !back.is_empty() && back.len() < 12,
        "{back:?}\n{}",
        run.report()
    );
    for f in &back {
        assert!(same(&env, f), "{f} is whole\n{}", run.report());
    }
}
