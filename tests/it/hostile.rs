//! Generated hostile archives, restored as root from a virtual tape, through
//! the catalog and with `--from-tape`, into a `--to` that already holds
//! symlinks into a sibling "outside" directory: names with `..` and `/`,
//! names of the restore's own temporaries, symlinks leading out followed by
//! files and directories through them, hard links to outside, directories
//! over symlinks, duplicate names, stray pax records. After every case
//! "outside" (and the test's directory) is unchanged, byte for byte, mode
//! for mode, time for time, and every member that did not come back is
//! named on stderr.
//!
//! `REEL_HOSTILE_CASES` (default 500) and `REEL_HOSTILE_SEED` choose them.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reel_shared::archive::{ArchiveWriter, Hashed, Member, MemberKind, Sink};
use reel_shared::catalog::journal::{self, Entry};
use reel_shared::manifest::{EntryType, Record};

use crate::support::{CONFIG, Env, Rng};

/// Names a member may have: plain, nested, through the symlinks the
/// target already holds (`escape`, `victim-link`) or that a member makes
/// (`lnk`), the restore's temporaries, and the refused ones.
const NAMES: &[&str] = &[
    "a",
    "b",
    "a/b",
    "a/c",
    "d",
    "d/f",
    "d/e/g",
    "lnk",
    "lnk/f",
    "lnk/sub/g",
    "escape",
    "escape/x",
    "escape/sub/y",
    "victim-link",
    ".a.reel-part",
    ".reel-tmp-0123456789abcdef",
    ".b.reel-corrupt",
    "../x",
    "../../y",
    "/abs/z",
    "a/../../z",
    "./c",
    "a/./../../w",
];

/// Targets of symlinks (written as symlinks, never followed).
const LINKS: &[&str] = &["OUTSIDE", "../outside", "../../", "/etc", "a", "escape/x"];

/// Hard-link targets: other members, and outside.
const HARD: &[&str] = &[
    "a",
    "d/f",
    "../outside/victim",
    "OUTSIDE/victim",
    "escape/x",
];

fn pick<'a, T>(rng: &mut Rng, from: &'a [T]) -> &'a T {
    &from[rng.index(from.len())]
}

#[derive(Debug, Clone)]
struct Planned {
    path: String,
    kind: MemberKind,
    data: Vec<u8>,
    mode: u32,
    /// A stray pax record that makes the header unreadable on purpose.
    breaks: bool,
    extra: Vec<(String, Vec<u8>)>,
}

fn plan(rng: &mut Rng, outside: &Path) -> Vec<Planned> {
    let n = 2 + rng.index(7);
    (0..n)
        .map(|i| {
            let path = pick(rng, NAMES).to_string();
            let fix = |t: &&str| t.replace("OUTSIDE", &outside.to_string_lossy());
            let data: Vec<u8> = format!("case member {i} {}", rng.next()).into_bytes();
            let kind = match rng.index(6) {
                0 | 1 => MemberKind::File {
                    size: data.len() as u64,
                },
                2 => MemberKind::Dir,
                3 => MemberKind::Symlink {
                    target: fix(pick(rng, LINKS)).into_bytes(),
                },
                4 => MemberKind::Hardlink {
                    target: fix(pick(rng, HARD)).into_bytes(),
                },
                _ => MemberKind::Fifo,
            };
            let mode = *pick(rng, &[0o644, 0o600, 0o755, 0o4755, 0o1777, 0o2775, 0o777]);
            let mut extra = Vec::new();
            let mut breaks = false;
            match rng.index(8) {
                // Another path in pax, overriding the ustar name.
                0 => extra.push(("path".into(), pick(rng, NAMES).as_bytes().to_vec())),
                1 => extra.push(("linkpath".into(), fix(&"OUTSIDE/victim").into_bytes())),
                2 => extra.push(("SCHILY.xattr.user.note".into(), b"stray".to_vec())),
                3 => extra.push(("unknown.key".into(), vec![b'\xff'; rng.index(40)])),
                // Records that do not parse: the member is lost, said so.
                4 => {
                    extra.push(("size".into(), b"1000000000000000000".to_vec()));
                    breaks = matches!(kind, MemberKind::File { .. });
                }
                5 => {
                    extra.push(("mtime".into(), b"not-a-time".to_vec()));
                    breaks = true;
                }
                _ => {}
            }
            let data = if matches!(kind, MemberKind::File { .. }) {
                data
            } else {
                Vec::new()
            };
            Planned {
                path,
                kind,
                data,
                mode,
                breaks,
                extra,
            }
        })
        .collect()
}

fn member(p: &Planned) -> Member {
    Member {
        path: p.path.as_bytes().to_vec(),
        kind: p.kind.clone(),
        mode: p.mode,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime_ns: 1_600_000_000_000_000_007,
        xattrs: Vec::new(),
        extra: p.extra.clone(),
    }
}

/// What is in `dir`, recursively, never following a symlink: path →
/// (type and mode, owner, mtime, content or link target).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u32, i64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                todo.push(p.clone());
            }
            out.insert(
                p.strip_prefix(dir).unwrap().to_path_buf(),
                (m.mode(), m.uid(), m.mtime(), m.mtime_nsec(), content),
            );
        }
    }
    out
}

/// `rel` under `to` as it is, if every directory on the way is a real
/// directory (a path through a symlink was not restored there).
fn found(to: &Path, rel: &str) -> Option<std::fs::Metadata> {
    if rel
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return None;
    }
    let mut at = to.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let m = std::fs::symlink_metadata(&at).ok()?;
        if i + 1 < parts.len() && !m.is_dir() {
            return None;
        }
        if i + 1 == parts.len() {
            return Some(m);
        }
    }
    None
}

/// Did member `p` come back as itself?
fn came_back(to: &Path, p: &Planned, outside: &Path) -> bool {
    let Some(m) = found(to, &p.path) else {
        return false;
    };
    let at = to.join(&p.path);
    match &p.kind {
        MemberKind::File { .. } => {
            m.is_file() && std::fs::read(&at).ok().as_deref() == Some(&p.data[..])
        }
        MemberKind::Dir => m.is_dir(),
        MemberKind::Symlink { target } => {
            m.file_type().is_symlink()
                && std::fs::read_link(&at)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
                    == *target
        }
        MemberKind::Hardlink { .. } => m.is_file() && !at.starts_with(outside),
        MemberKind::Fifo => m.file_type().is_fifo(),
        MemberKind::Char { .. } | MemberKind::Block { .. } => false,
    }
}

#[test]
fn hostile_archives_never_reach_outside_the_target_and_every_refusal_is_named() {
    let cases: u64 = std::env::var("REEL_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let seed: u64 = std::env::var("REEL_HOSTILE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6e57_11e5);
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!("{CONFIG}\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n"),
    );
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let outside = env.path("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    env.write("outside/victim", "the victim's content\n");
    env.write("outside/sub/x", "x\n");
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
    let device_arg = format!("virtual:{}", env.path("lib").display());
    let mut rng = Rng(seed | 1);
    let (mut refused, mut restored) = (0u64, 0u64);
    for case in 0..cases {
        let planned = plan(&mut rng, &outside);
        // The archive, with its index (whose lines for refused names do
        // not parse: those are then found by their headers).
        let file = tempfile::tempfile().unwrap();
        let mut w = ArchiveWriter::new(Sink::File(file));
        let mut records = Vec::new();
        for p in &planned {
            let placed = w.add_bytes(&member(p), &p.data).unwrap();
            let entry = match p.kind {
                MemberKind::File { .. } => EntryType::File,
                MemberKind::Dir => EntryType::Dir,
                MemberKind::Symlink { .. } => EntryType::Symlink,
                MemberKind::Hardlink { .. } => EntryType::Hardlink,
                MemberKind::Fifo => EntryType::Fifo,
                MemberKind::Char { .. } => EntryType::Char,
                MemberKind::Block { .. } => EntryType::Block,
            };
            let mut r = Record::new(&p.path, entry);
            r.size = p.data.len() as u64;
            r.mode = p.mode;
            r.mtime_ns = 1_600_000_000_000_000_007;
            r.link = match &p.kind {
                MemberKind::Symlink { target } | MemberKind::Hardlink { target } => {
                    Some(PathBuf::from(String::from_utf8_lossy(target).into_owned()))
                }
                _ => None,
            };
            if let Hashed::Now(d) = placed.sha256 {
                r.sha256 = Some(d);
            } else if entry == EntryType::File {
                use sha2::Digest as _;
                r.sha256 = Some(reel_shared::manifest::Digest(
                    sha2::Sha256::digest(&p.data).into(),
                ));
            }
            r.offset = Some(placed.offset);
            r.data_offset = Some(placed.data_offset);
            records.push(r);
        }
        let mut index = Vec::new();
        for r in &records {
            index.extend(serde_json::to_vec(r).unwrap());
            index.push(b'\n');
        }
        let index_member = Member {
            path: b"REEL-INDEX.jsonl".to_vec(),
            kind: MemberKind::File {
                size: index.len() as u64,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime_ns: 1_600_000_000_000_000_000,
            xattrs: Vec::new(),
            extra: Vec::new(),
        };
        w.add_bytes(&index_member, &index).unwrap();
        let finished = w.finish(262_144).unwrap();
        let Sink::File(mut f) = finished.sink else {
            unreachable!()
        };
        let mut bytes = Vec::new();
        std::io::Seek::rewind(&mut f).unwrap();
        std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
        // Onto the tape as file 1 (writing there ends the tape there).
        {
            let choice = reel_shared::tape::session::Choice::given(Some(&device_arg), None);
            let mut drive = reel_shared::tape::session::Session::new(None, choice, Duration::ZERO)
                .unwrap()
                .open()
                .unwrap();
            drive.rewind().unwrap();
            drive.forward_filemarks(1).unwrap();
            for block in bytes.chunks(262_144) {
                drive.write_block(block).unwrap();
            }
            drive.write_filemarks(1).unwrap();
        }
        // The catalog: what reel-verify could have recorded (valid paths).
        let catalog = env.path("var/catalog");
        let _ = std::fs::remove_dir_all(&catalog);
        let journaled: Vec<usize> = (0..records.len())
            .filter(|&i| {
                let p = &planned[i].path;
                !p.starts_with('/')
                    && !p.split('/').any(|c| c == ".." || c == "." || c.is_empty())
                    && records[i].link.as_ref().is_none_or(|l| {
                        records[i].entry != EntryType::Hardlink
                            || !(l.is_absolute() || l.components().any(|c| c.as_os_str() == ".."))
                    })
            })
            .collect();
        let entries: Vec<Entry> = journaled
            .iter()
            .map(|&i| {
                let mut r = records[i].clone();
                r.tape = Some("T00001L9".into());
                r.file = Some(1);
                r.block = Some(2 + r.offset.unwrap() / 262_144);
                Entry {
                    stream: "home".into(),
                    verified: "2026-12-01T00:00:00Z".into(),
                    record: r,
                }
            })
            .collect();
        if !entries.is_empty() {
            journal::append(&catalog, "T00001L9", &entries).unwrap();
        }
        for from_tape in [false, true] {
            let to = env.path("to");
            let _ = std::fs::remove_dir_all(&to);
            std::fs::create_dir_all(&to).unwrap();
            std::os::unix::fs::symlink(&outside, to.join("escape")).unwrap();
            std::os::unix::fs::symlink(outside.join("victim"), to.join("victim-link")).unwrap();
            let before = snapshot(&outside);
            let root_before: Vec<_> = std::fs::read_dir(env.root())
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            let run = if from_tape {
                env.run(
                    "reel-restore",
                    &["--from-tape", "virtual:lib", "", "--to", "to"],
                )
            } else if entries.is_empty() {
                continue;
            } else {
                env.run("reel-restore", &["", "--to", "to"])
            };
            let context = || {
                let list: Vec<String> = planned
                    .iter()
                    .map(|p| {
                        format!(
                            "  {:?} {:?} mode {:o} extra {:?}",
                            p.path,
                            p.kind,
                            p.mode,
                            p.extra
                                .iter()
                                .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
                                .collect::<Vec<_>>()
                        )
                    })
                    .collect();
                format!(
                    "seed {seed} case {case} ({}):\n{}\n{}",
                    if from_tape { "--from-tape" } else { "catalog" },
                    list.join("\n"),
                    run.report()
                )
            };
            assert!(
                run.code.is_some() && !run.stderr.contains("panicked"),
                "{}",
                context()
            );
            assert_eq!(snapshot(&outside), before, "outside changed: {}", context());
            let mut root_after: Vec<_> = std::fs::read_dir(env.root())
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            let mut root_before = root_before;
            root_before.sort();
            root_after.sort();
            assert_eq!(
                root_after,
                root_before,
                "something appeared beside --to: {}",
                context()
            );
            // What this restore sees: every member from the tape alone (a
            // pax path wins over the ustar name; a header broken on purpose
            // is lost), the journaled ones through the catalog.
            let seen: Vec<Planned> = if from_tape {
                planned
                    .iter()
                    .map(|p| {
                        let mut shown = p.clone();
                        for (k, v) in &p.extra {
                            match (k.as_str(), &mut shown.kind) {
                                ("path", _) => shown.path = String::from_utf8_lossy(v).into_owned(),
                                (
                                    "linkpath",
                                    MemberKind::Symlink { target }
                                    | MemberKind::Hardlink { target },
                                ) => {
                                    *target = v.clone();
                                }
                                _ => {}
                            }
                        }
                        shown
                    })
                    .collect()
            } else {
                journaled.iter().map(|&i| planned[i].clone()).collect()
            };
            for (i, shown) in seen.iter().enumerate() {
                // A later copy of the same path is the newer version: this
                // one is not restored, by design, and not a refusal.
                if seen[i + 1..]
                    .iter()
                    .any(|later| later.path == shown.path && !(from_tape && later.breaks))
                {
                    continue;
                }
                if came_back(&to, shown, &outside) {
                    restored += 1;
                    continue;
                }
                refused += 1;
                // Named by its path; or, a header made unreadable on
                // purpose (from the tape alone), by where it lies.
                let name = shown.path.trim_start_matches("./");
                let named = run.stderr.contains(&format!("{name} (tape T00001L9"))
                    || (from_tape && shown.breaks && run.stderr.contains("tape file 1, byte"));
                assert!(
                    named,
                    "{} did not come back and is not named: {}",
                    shown.path,
                    context()
                );
            }
        }
    }
    eprintln!(
        "hostile: {cases} cases, seed {seed}: {restored} member(s) came back, {refused} refused or lost, each named"
    );
    assert!(refused > 0 && restored > 0);
}

/// A forged tape whose label is a path (`../../../evil`): the catalog
/// names its files after the label, so such a label would make reel write
/// the tape's state and journal outside the catalog, as root. It is not a
/// label reel accepts: the tape is refused (exit 69) and nothing is
/// written outside. `reel mt label` refuses to make one.
#[test]
fn a_tape_labelled_with_a_path_is_refused_and_nothing_is_written_outside_the_catalog() {
    use reel_shared::tape::Drive as _;
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"64M\"\n",
            crate::support::CONFIG
        ),
    );
    let spec = reel_shared::vtl::LibrarySpec::with_capacity(reel_shared::units::Size(64 << 20));
    {
        let mut drive = reel_shared::vtl::open_drive(&env.path("lib"), 0, &spec).unwrap();
        let forged = reel_shared::tape::label::Label {
            format: reel_shared::tape::label::LABEL_FORMAT.into(),
            label: "../../../evil".into(),
            uuid: "11111111-2222-4333-8444-555555555555".into(),
            pool: "default".into(),
            block_size: 262_144,
            created: "2026-12-05T00:00:00Z".into(),
            reel_version: "0.1.0".into(),
            drive_key: None,
        };
        reel_shared::tape::label::write_label(&mut drive, &forged).unwrap();
        drive.rewind().unwrap();
    }
    std::fs::write(env.path("src/a.txt"), b"a\n").unwrap();
    for program in ["reel-scan", "reel-stage", "reel-pack"] {
        env.run(program, &[]).expect(0);
    }
    let run = env.run("reel-write", &[]);
    run.expect(69);
    assert!(run.stderr.contains("../../../evil"), "{}", run.report());
    assert!(!env.root().join("evil.json").exists());
    assert!(!env.path("var/evil.json").exists());
    assert!(!env.path("var/catalog/evil.json").exists());
    // Nor is one made by hand.
    let run = env.run("reel", &["mt", "label", "--force", "../x"]);
    run.expect(64);
}
