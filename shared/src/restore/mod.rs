//! Restoring from the catalog: the newest verified copy of each matching
//! path (or the one at `--at`), grouped by tape and read in tape order. For
//! each file the drive seeks straight to the block holding the member's
//! header (archive start + offset / block size), the ustar header is
//! checked, and only the member's own bytes are read, hashed and written;
//! a digest that does not match leaves `<name>.reel-corrupt`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::archive::{check_header, ustar_size};
use crate::beneath::{self, Dir, Kind, Meta, Tree};
use crate::catalog::Entry;
use crate::catalog::find::{Query, search};
use crate::cli::CommonArgs;
use crate::exit::{Exit, ExitError};
use crate::manifest::{Digest, EntryType, Record};
use crate::tape::session::{Choice, Session};
use crate::tape::stream::MAX_BLOCK;
use crate::tape::{Drive, Read};
use crate::units::Size;
use anyhow::Context;
use nix::sys::stat::SFlag;
use sha2::{Digest as _, Sha256};

pub struct Options {
    pub patterns: Vec<String>,
    pub from_tape: Option<String>,
    pub to: Option<PathBuf>,
    pub at: Option<String>,
    pub overwrite: bool,
    pub dry_run: bool,
    pub device: Option<String>,
    pub drive: Option<String>,
}

fn usage(m: impl Into<String>) -> anyhow::Error {
    ExitError::new(Exit::Usage, m.into()).into()
}

/// Read one member's data from the drive, which is at the block holding its
/// header; `skip` bytes come before the data, the last 512 of them the
/// ustar header. Returns the digest and the bytes read from tape.
/// The extended attributes (`SCHILY.xattr.*`) in a pax extended header:
/// `pax` is the header's blocks before the ustar block, if any.
fn pax_xattrs(pax: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    if pax.len() < 1024 || pax[156] != b'x' {
        return Vec::new();
    }
    let len = (ustar_size(&pax[..512]) as usize).min(pax.len() - 512);
    let mut data = &pax[512..512 + len];
    let mut out = Vec::new();
    // Records: "<len> <key>=<value>\n", len counting the whole record.
    while let Some(sp) = data.iter().position(|&b| b == b' ') {
        let Some(n) = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|&n| n > sp + 1 && n <= data.len())
        else {
            break;
        };
        let record = &data[sp + 1..n - 1];
        if let Some(eq) = record.iter().position(|&b| b == b'=')
            && let Some(name) = record[..eq].strip_prefix(b"SCHILY.xattr.")
        {
            out.push((name.to_vec(), record[eq + 1..].to_vec()));
        }
        data = &data[n..];
    }
    out
}

/// What reading a member gave: its data's digest, the bytes read from
/// tape, the data length, and its extended attributes.
type ReadBack = (Digest, u64, u64, Vec<(Vec<u8>, Vec<u8>)>);

fn read_member(
    drive: &mut dyn Drive,
    r: &Record,
    (pax_from, skip): (u64, u64),
    out: &mut File,
) -> anyhow::Result<ReadBack> {
    let mut buf = vec![0u8; MAX_BLOCK];
    let mut sha = Sha256::new();
    let mut header = Vec::with_capacity(512);
    let mut pax = Vec::new();
    // A part of a split file: its length is in its header.
    let mut size = r.part.is_none().then_some(r.size);
    let (mut at, mut read, mut done) = (0u64, 0u64, 0u64);
    let header_from = skip.saturating_sub(512);
    while size.is_none_or(|s| done < s) || (header.len() < 512 && skip >= 512) {
        let n = match drive.read_block(&mut buf)? {
            Read::Data(n) => n,
            Read::Filemark | Read::EndOfData => {
                anyhow::bail!("the archive on tape ends before {}", r.path.display())
            }
        };
        read += n as u64;
        let chunk = &buf[..n];
        let end = at + n as u64;
        // A pax header before it: extended attributes.
        let (pf, pt) = (pax_from.max(at), header_from.min(end));
        if pf < pt {
            pax.extend_from_slice(&chunk[(pf - at) as usize..(pt - at) as usize]);
        }
        // The header block, wherever it falls.
        let (hf, ht) = (header_from.max(at), skip.min(end));
        if hf < ht {
            header.extend_from_slice(&chunk[(hf - at) as usize..(ht - at) as usize]);
        }
        if size.is_none() && header.len() == 512 {
            size = Some(ustar_size(&header));
        }
        // The data.
        let len = size.unwrap_or(0);
        let (df, dt) = (skip.max(at), (skip + len).min(end));
        if df < dt {
            let piece = &chunk[(df - at) as usize..(dt - at) as usize];
            sha.update(piece);
            out.write_all(piece)?;
            done += piece.len() as u64;
        }
        at = end;
    }
    if skip >= 512 {
        check_header(&header, EntryType::File)
            .map_err(|why| anyhow::anyhow!("{}: {why}", r.path.display()))?;
    }
    Ok((Digest(sha.finalize().into()), read, done, pax_xattrs(&pax)))
}

struct Plan<'a> {
    /// Tape → its members in tape order.
    tapes: BTreeMap<String, Vec<&'a Entry>>,
}

fn plan(found: &[Entry]) -> Plan<'_> {
    let mut tapes: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in found {
        if let Some(t) = &e.record.tape {
            tapes.entry(t.clone()).or_default().push(e);
        }
    }
    for list in tapes.values_mut() {
        list.sort_by_key(|e| (e.record.file, e.record.block, e.record.data_offset));
    }
    Plan { tapes }
}

/// `--from-tape DEVICE`: no catalog directory, only the tape in the drive
/// and what it says of itself; the newest copy of each matching path on
/// it (the last in tape order).
fn run_from_tape(common: &CommonArgs, o: Options, dev: &str) -> anyhow::Result<Exit> {
    use crate::catalog::from_tape;
    let config = common.load_config_if_any()?;
    crate::config::Device::from_arg(dev)
        .map_err(|e| ExitError::new(Exit::Usage, format!("--from-tape: {e}")))?;
    let patterns = crate::catalog::find::Patterns::new(&o.patterns)
        .map_err(|e| ExitError::new(Exit::Usage, e))?;
    let choice = Choice::given(Some(dev), None);
    let (mut drive, label) =
        Session::new(config.as_ref(), choice, Duration::from_secs(600))?.open_labelled()?;
    let catalog = from_tape::read(drive.as_mut(), &label, &|r: &Record| {
        patterns.matches(r.path.as_os_str().as_bytes())
    })?;
    for n in &catalog.notes {
        log::info!("tape {}: {n}", label.label);
    }
    for w in &catalog.warnings {
        log::warn!("tape {}: {w}", label.label);
    }
    for l in &catalog.lost {
        log::error!("tape {}: {l}", label.label);
    }
    let chosen = newest_versions(catalog.records);
    if chosen.is_empty() {
        return Err(ExitError::new(
            Exit::NoInput,
            format!(
                "nothing on tape {} matches {}",
                label.label,
                o.patterns.join(" ")
            ),
        )
        .into());
    }
    let found: Vec<Entry> = chosen
        .into_iter()
        .map(|record| Entry {
            stream: String::new(),
            verified: String::new(),
            record,
        })
        .collect();
    let plan = plan(&found);
    if o.dry_run {
        return dry_run(&plan, found.len());
    }
    let to =
        o.to.clone()
            .ok_or_else(|| usage("--to DIR is needed (or --dry-run)"))?;
    let mut restorer = Restorer::new(to, o.overwrite)?;
    restorer.cut = catalog.cut.into_iter().collect();
    // A file split across tapes is joined over several runs, one per tape.
    restorer.keep_joins = true;
    let block_size = u64::from(label.block_size.max(1));
    for list in plan.tapes.values() {
        for e in list {
            restorer.member(drive.as_mut(), &e.record, block_size);
        }
    }
    let exit = restorer.finish();
    if exit == Exit::Ok && !catalog.lost.is_empty() {
        log::error!(
            "{} place(s) on tape {} could not be read as members (above): what they held is not restored",
            catalog.lost.len(),
            label.label
        );
        return Ok(Exit::Data);
    }
    Ok(exit)
}

/// Of the copies of each path a tape holds, the newest version (the one
/// taken last from the source, else the last on tape) that is whole, with
/// all of its parts when it is split; where no version is whole, the
/// newest, whose missing parts are then named. Never parts of two versions.
fn newest_versions(records: Vec<Record>) -> Vec<Record> {
    // (taken, tape order): tape order alone where the time is unknown.
    type Newest = (i64, usize);
    // A version: (size, mtime).
    type Version = (u64, i64);
    // How new a version is, and one copy of each part (the last on tape).
    type Copies = (Newest, HashMap<Option<u32>, Record>);
    let mut paths: HashMap<PathBuf, HashMap<Version, Copies>> = HashMap::new();
    for (i, r) in records.into_iter().enumerate() {
        let newest = (r.taken_ns.unwrap_or(i64::MIN), i);
        let version = paths
            .entry(r.path.clone())
            .or_default()
            .entry((r.size, r.mtime_ns))
            .or_insert((newest, HashMap::new()));
        version.0 = version.0.max(newest);
        version.1.insert(r.part, r);
    }
    let mut out = Vec::new();
    for versions in paths.into_values() {
        let mut by_age: Vec<Copies> = versions.into_values().collect();
        by_age.sort_by_key(|(newest, _)| std::cmp::Reverse(*newest));
        let whole = by_age.iter().position(|(_, parts)| {
            parts.contains_key(&None)
                || crate::catalog::find::is_whole(&parts.values().collect::<Vec<_>>())
        });
        let (_, mut parts) = by_age.swap_remove(whole.unwrap_or(0));
        match parts.remove(&None) {
            // Stored whole once: that copy, not parts of the same content.
            Some(r) => out.push(r),
            None => out.extend(parts.into_values()),
        }
    }
    out
}

/// What `--dry-run` prints: tapes, positions, bytes.
fn dry_run(plan: &Plan, members: usize) -> anyhow::Result<Exit> {
    let mut total = 0u64;
    for (tape, list) in &plan.tapes {
        let bytes: u64 = list.iter().map(|e| data_bytes(&e.record)).sum();
        total += bytes;
        crate::outln!(
            "tape {tape}: {} member(s), {}",
            list.len(),
            Size(bytes).human()
        )?;
        for e in list {
            let r = &e.record;
            crate::outln!(
                "    file {} block {}  {}  {}",
                r.file.unwrap_or(0),
                r.block.unwrap_or(0),
                Size(data_bytes(r)).human(),
                r.path.display()
            )?;
        }
    }
    crate::outln!(
        "{} tape(s), {members} member(s), {} to read",
        plan.tapes.len(),
        Size(total).human()
    )?;
    Ok(Exit::Ok)
}

pub fn run(common: &CommonArgs, o: Options) -> anyhow::Result<Exit> {
    if let Some(dev) = o.from_tape.clone() {
        return run_from_tape(common, o, &dev);
    }
    let config = common.load_config()?;
    let found = search(
        &config.paths.catalog,
        &Query {
            patterns: o.patterns.clone(),
            stream: None,
            at: o.at.clone(),
            all_versions: false,
        },
    )?;
    if found.is_empty() {
        return Err(ExitError::new(
            Exit::NoInput,
            format!("nothing verified matches {}", o.patterns.join(" ")),
        )
        .into());
    }
    let plan = plan(&found);
    if o.dry_run {
        return dry_run(&plan, found.len());
    }
    let to =
        o.to.clone()
            .ok_or_else(|| usage("--to DIR is needed (or --dry-run)"))?;
    let choice = Choice::given(o.device.as_deref(), o.drive.as_deref());
    let session = Session::new(Some(&config), choice, Duration::from_secs(600))?;
    // The tape in the drive, if it is one of ours; an empty drive, or a
    // blank or foreign tape in it, is fine when a library can bring the
    // tapes the restore needs.
    let mut loaded = match session.open_labelled() {
        Ok(x) => Some(x),
        Err(e) if session.has_library() => {
            log::info!("{e:#}: the tapes needed come from the library");
            None
        }
        Err(e) => return Err(e),
    };
    let mut restorer = Restorer::new(to, o.overwrite)?;
    let mut needed = Vec::new();
    // The loaded tape first, then the others through the changer.
    let in_drive = loaded.as_ref().map(|(_, l)| l.label.clone());
    let mut order: Vec<&String> = plan.tapes.keys().collect();
    order.sort_by_key(|t| Some(*t) != in_drive.as_ref());
    for tape in order {
        let list = &plan.tapes[tape];
        if loaded.as_ref().is_none_or(|(_, l)| l.label != *tape) {
            loaded = None;
            if session.load(tape)? {
                loaded = Some(session.open_labelled()?);
            }
        }
        let Some((drive, label)) = loaded.as_mut() else {
            needed.push(format!("{tape} ({} member(s))", list.len()));
            continue;
        };
        let block_size = u64::from(label.block_size.max(1));
        for e in list {
            restorer.member(drive.as_mut(), &e.record, block_size);
        }
    }
    let exit = restorer.finish();
    if needed.is_empty() {
        return Ok(exit);
    }
    let message = format!(
        "the rest needs tape(s) {}: load each and run again",
        needed.join(", ")
    );
    if exit != Exit::Ok {
        log::error!("{message}");
        return Ok(exit);
    }
    Err(ExitError::new(Exit::Unavailable, message).into())
}

fn data_bytes(r: &Record) -> u64 {
    if r.entry == EntryType::File {
        r.size
    } else {
        0
    }
}

/// Restores members into `--to`, through directory handles only (see
/// `crate::beneath`): nothing is ever written through a symlink or
/// outside the target, whatever the tape, the catalog or the target
/// already hold. A member that is refused or fails is reported with its
/// path, tape, tape file and block; the rest goes on.
struct Restorer {
    tree: Tree,
    to: PathBuf,
    overwrite: bool,
    /// Owners are restored (root only).
    chown: bool,
    /// Files restored in this run, by their catalog path, with their
    /// records: hard links point at them.
    restored: HashMap<PathBuf, Record>,
    /// Members refused or not restored (bad data, refused paths).
    failed: u64,
    /// Members lost to read errors of the drive.
    unreadable: u64,
    files: u64,
    bytes_read: u64,
    bytes_restored: u64,
    /// Directories to give their metadata last, by catalog path.
    dirs: Vec<Record>,
    /// Tape files holding copies cut by the early warning: a member past
    /// the cut is missing, not corrupt.
    cut: std::collections::HashSet<u64>,
    /// Split files being joined, by catalog path.
    parts: HashMap<PathBuf, PartState>,
    /// Keep a split file whose other parts are on other tapes for the
    /// next run (`--from-tape`, one tape at a time).
    keep_joins: bool,
}

/// A split file being joined from its parts, into a temporary held open.
struct PartState {
    bytes: u64,
    /// The part numbers joined (this run or, kept, an earlier one).
    done: std::collections::BTreeSet<u32>,
    bad: bool,
    /// (size, mtime) every part must share: one version's parts.
    version: (u64, i64),
    out: File,
    dir: Dir,
    tmp: OsString,
    /// `tmp` is the kept join file of an earlier run.
    kept: bool,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The name of the file a split file is joined in, kept between runs (one
/// per tape) until every part is there: fixed by the path and version, so
/// that the next run finds it.
fn join_name(r: &Record) -> OsString {
    let mut key = r.path.as_os_str().as_bytes().to_vec();
    key.extend_from_slice(&r.size.to_le_bytes());
    key.extend_from_slice(&r.mtime_ns.to_le_bytes());
    OsString::from(format!(
        ".reel-join-{:016x}",
        xxhash_rust::xxh3::xxh3_64(&key)
    ))
}

/// Beside a kept join file: which file and version it is, and the parts in.
fn join_note(join: &OsStr) -> OsString {
    beneath::with_suffix(join, ".json")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a member is, for messages: `tape T00001L9 file 3 block 1234`.
fn place(r: &Record) -> String {
    format!(
        "tape {} file {} block {}",
        r.tape.as_deref().unwrap_or("?"),
        r.file.map_or("?".into(), |f| f.to_string()),
        r.block.map_or("?".into(), |b| b.to_string())
    )
}

fn kind_of(e: EntryType) -> SFlag {
    match e {
        EntryType::Fifo => SFlag::S_IFIFO,
        EntryType::Char => SFlag::S_IFCHR,
        _ => SFlag::S_IFBLK,
    }
}

impl Restorer {
    fn new(to: PathBuf, overwrite: bool) -> anyhow::Result<Restorer> {
        let tree = Tree::open(&to).with_context(|| format!("opening {}", to.display()))?;
        Ok(Restorer {
            tree,
            to,
            overwrite,
            chown: nix::unistd::geteuid().is_root(),
            restored: HashMap::new(),
            failed: 0,
            unreadable: 0,
            files: 0,
            bytes_read: 0,
            bytes_restored: 0,
            dirs: Vec::new(),
            cut: Default::default(),
            parts: HashMap::new(),
            keep_joins: false,
        })
    }

    fn meta(&self, r: &Record, xattrs: Vec<(Vec<u8>, Vec<u8>)>) -> Meta {
        Meta {
            uid: r.uid,
            gid: r.gid,
            mode: r.mode,
            mtime_ns: r.mtime_ns,
            xattrs,
            chown: self.chown,
        }
    }

    /// Directories' metadata, the summary lines, and the exit code: 74 if
    /// the drive lost members, else 65 if any member was refused or bad.
    fn finish(mut self) -> Exit {
        self.finish_dirs();
        let mut pending = 0u64;
        for (path, s) in std::mem::take(&mut self.parts) {
            let (bytes, size) = (s.bytes, s.version.0);
            if s.bad || !self.keep_joins {
                if !s.bad {
                    log::error!(
                        "{}: only {bytes} of its {size} bytes were read from its parts; not restored",
                        path.display()
                    );
                }
                self.failed += 1;
                let _ = s.dir.unlink(&s.tmp);
                if s.kept {
                    let _ = s.dir.unlink(&join_note(&s.tmp));
                }
                continue;
            }
            match self.keep_join(&path, s) {
                Ok(join) => {
                    log::warn!(
                        "{}: {bytes} of its {size} bytes joined so far, kept in {}; its other parts are on other tapes: restore from those into the same --to",
                        path.display(),
                        join.display()
                    );
                    pending += 1;
                }
                Err(e) => {
                    log::error!("{}: cannot keep its joined parts: {e}", path.display());
                    self.failed += 1;
                }
            }
        }
        log::info!(
            "{} file(s), {} bytes restored into {}; {} bytes read from tape",
            self.files,
            self.bytes_restored,
            self.to.display(),
            self.bytes_read
        );
        if self.unreadable + self.failed > 0 {
            log::error!(
                "{} member(s) not restored ({} unreadable on tape, {} refused or bad): each is named above",
                self.unreadable + self.failed,
                self.unreadable,
                self.failed
            );
        }
        if self.unreadable > 0 {
            Exit::Io
        } else if self.failed > 0 {
            Exit::Data
        } else if pending > 0 {
            // Waits for the tapes with the other parts.
            Exit::Unavailable
        } else {
            Exit::Ok
        }
    }

    /// Keep a split file's joined parts for the run with the next tape:
    /// under its join name, with a note of its version and parts.
    fn keep_join(&self, path: &Path, s: PartState) -> anyhow::Result<PathBuf> {
        let join = self.join_for(path, s.version);
        s.out.sync_all()?;
        if s.tmp != join {
            s.dir.rename(&s.tmp, &join, true)?;
        }
        let note = serde_json::json!({
            "reel": "join/1",
            "path_hex": hex(path.as_os_str().as_bytes()),
            "size": s.version.0,
            "mtime_ns": s.version.1,
            "parts": s.done,
            "bytes": s.bytes,
        });
        s.dir
            .write_replace(&join_note(&join), note.to_string().as_bytes())?;
        Ok(s.dir.path().join(join))
    }

    fn join_for(&self, path: &Path, (size, mtime_ns): (u64, i64)) -> OsString {
        let mut r = Record::new(path, EntryType::File);
        (r.size, r.mtime_ns) = (size, mtime_ns);
        join_name(&r)
    }

    /// The join of a split file's parts: the one an earlier run kept, when
    /// keeping joins and its note is of this very file and version, else
    /// a new temporary.
    fn start_join(&self, r: &Record, dir: Dir) -> std::io::Result<PartState> {
        let version = (r.size, r.mtime_ns);
        let join = join_name(r);
        let mut state = PartState {
            bytes: 0,
            done: Default::default(),
            bad: false,
            version,
            out: File::open("/dev/null")?,
            dir,
            tmp: OsString::new(),
            kept: false,
            xattrs: Vec::new(),
        };
        if self.keep_joins
            && state.dir.kind(&join)? == Some(Kind::File)
            && let Ok(text) = state.dir.read_small(&join_note(&join), 1 << 20)
            && let Ok(note) = serde_json::from_slice::<serde_json::Value>(&text)
            && note["reel"] == "join/1"
            && note["path_hex"] == hex(r.path.as_os_str().as_bytes()).as_str()
            && note["size"] == r.size
            && note["mtime_ns"] == r.mtime_ns
        {
            state.out = state.dir.open_rw(&join)?;
            state.done = note["parts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
                .collect();
            state.bytes = note["bytes"].as_u64().unwrap_or(0);
            state.tmp = join;
            state.kept = true;
            log::info!(
                "{}: joining on with the part(s) {:?} kept by an earlier run",
                r.path.display(),
                state.done
            );
            return Ok(state);
        }
        let (out, tmp) = state.dir.create_temp()?;
        (state.out, state.tmp) = (out, tmp);
        Ok(state)
    }

    fn refuse(&mut self, r: &Record, why: impl std::fmt::Display) {
        log::error!("{} ({}): {why}", r.path.display(), place(r));
        self.failed += 1;
    }

    /// Restore one member; what goes wrong is reported and counted.
    fn member(&mut self, drive: &mut dyn Drive, r: &Record, block_size: u64) {
        let (dir, name) = match self.tree.parent(&r.path, true) {
            Ok(x) => x,
            Err(why) => return self.refuse(r, why),
        };
        let name = name.to_os_string();
        let existing = match dir.kind(&name) {
            Ok(k) => k,
            Err(e) => {
                return self.refuse(
                    r,
                    format!("cannot look at {}: {e}", dir.path().join(&name).display()),
                );
            }
        };
        if r.entry == EntryType::Dir {
            return self.directory(r, &dir, &name, existing);
        }
        match existing {
            Some(Kind::Dir) => {
                return self.refuse(r, "a directory of that name exists: not replaced");
            }
            Some(_) if !self.overwrite && r.part.is_none() => {
                return self.refuse(r, "exists (use --overwrite to replace it)");
            }
            Some(_) if !self.overwrite && !self.parts.contains_key(&r.path) => {
                return self.refuse(r, "exists (use --overwrite to replace it)");
            }
            _ => {}
        }
        let result = match r.entry {
            EntryType::Dir => unreachable!("handled above"),
            EntryType::Symlink => self.symlink(r, &dir, &name),
            EntryType::Hardlink => self.hardlink(r, &dir, &name),
            EntryType::File => return self.file(drive, r, dir, &name, block_size),
            EntryType::Fifo | EntryType::Char | EntryType::Block => self.special(r, &dir, &name),
        };
        if let Err(e) = result {
            self.refuse(r, format!("{e:#}"));
        }
    }

    fn directory(&mut self, r: &Record, dir: &Dir, name: &OsStr, existing: Option<Kind>) {
        match existing {
            Some(Kind::Dir) => {}
            None => {
                if let Err(e) = dir.mkdir(name) {
                    return self.refuse(r, format!("cannot create it: {e}"));
                }
            }
            Some(_) if self.overwrite => {
                if let Err(e) = dir.unlink(name).and_then(|()| dir.mkdir(name)) {
                    return self.refuse(r, format!("cannot replace it by a directory: {e}"));
                }
            }
            Some(kind) => {
                return self.refuse(
                    r,
                    format!(
                        "exists as a {} (use --overwrite to replace it by the directory)",
                        match kind {
                            Kind::Symlink => "symlink",
                            Kind::File => "file",
                            _ => "special file",
                        }
                    ),
                );
            }
        }
        self.dirs.push(r.clone());
    }

    /// Put the finished temporary `tmp` in place as `name`.
    fn place(&self, dir: &Dir, tmp: &OsStr, name: &OsStr) -> anyhow::Result<()> {
        if let Err(e) = dir.rename(tmp, name, self.overwrite) {
            let _ = dir.unlink(tmp);
            return Err(match e.raw_os_error() {
                Some(libc::EEXIST) => anyhow::anyhow!("exists (use --overwrite to replace it)"),
                Some(libc::EISDIR) => {
                    anyhow::anyhow!("a directory of that name exists: not replaced")
                }
                _ => anyhow::Error::from(e)
                    .context(format!("renaming into {}", dir.path().join(name).display())),
            });
        }
        Ok(())
    }

    fn symlink(&mut self, r: &Record, dir: &Dir, name: &OsStr) -> anyhow::Result<()> {
        let target = r.link.clone().unwrap_or_default();
        let tmp = dir
            .symlink_temp(&target)
            .with_context(|| format!("creating a symlink in {}", dir.path().display()))?;
        if self.chown
            && let Err(e) = dir.chown_nofollow(&tmp, r.uid, r.gid)
        {
            log::warn!("{}: owner {}:{}: {e}", r.path.display(), r.uid, r.gid);
        }
        let _ = dir.times_nofollow(&tmp, r.mtime_ns);
        self.place(dir, &tmp, name)
    }

    fn hardlink(&mut self, r: &Record, dir: &Dir, name: &OsStr) -> anyhow::Result<()> {
        let link = r.link.clone().unwrap_or_default();
        let Some(first) = self.restored.get(&link).cloned() else {
            anyhow::bail!(
                "a hard link to {}, which was not restored with it: restore both",
                link.display()
            );
        };
        // The first one was restored here, by this run: reach it again
        // through handles.
        let (fdir, fname) = self
            .tree
            .parent(&first.path, false)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let same_inode = (first.mode, first.uid, first.gid, first.mtime_ns)
            == (r.mode, r.uid, r.gid, r.mtime_ns);
        let tmp = if same_inode {
            // A hard link in the source: one inode, as it was.
            dir.link_temp(&fdir, fname)
                .with_context(|| format!("linking to {}", fdir.path().join(fname).display()))?
        } else {
            // Another file with the same content, stored once in the
            // archive: a copy of its own, with its own metadata.
            let mut from = fdir
                .open_file(fname)
                .with_context(|| format!("opening {}", fdir.path().join(fname).display()))?;
            let (mut out, tmp) = dir.create_temp()?;
            if let Err(e) = std::io::copy(&mut from, &mut out) {
                let _ = dir.unlink(&tmp);
                return Err(anyhow::Error::from(e).context("copying"));
            }
            for p in beneath::apply(out.as_fd(), &self.meta(r, Vec::new())) {
                log::warn!("{}: {p}", r.path.display());
            }
            tmp
        };
        self.place(dir, &tmp, name)?;
        self.files += 1;
        self.bytes_restored += r.size;
        Ok(())
    }

    fn special(&mut self, r: &Record, dir: &Dir, name: &OsStr) -> anyhow::Result<()> {
        let tmp = dir
            .mknod_temp(kind_of(r.entry), r.mode, r.rdev.unwrap_or(0))
            .map_err(|e| anyhow::anyhow!("cannot create it: {e} (device files need root)"))?;
        if self.chown {
            if let Err(e) = dir.chown_nofollow(&tmp, r.uid, r.gid) {
                log::warn!("{}: owner {}:{}: {e}", r.path.display(), r.uid, r.gid);
            }
            // A change of owner may clear setuid and setgid: the mode again.
            let _ = dir.chmod_nofollow(&tmp, r.mode);
        }
        let _ = dir.times_nofollow(&tmp, r.mtime_ns);
        self.place(dir, &tmp, name)?;
        self.files += 1;
        Ok(())
    }

    fn file(&mut self, drive: &mut dyn Drive, r: &Record, dir: Dir, name: &OsStr, block_size: u64) {
        let (Some(block), Some(offset), Some(data_offset)) = (r.block, r.offset, r.data_offset)
        else {
            return self.refuse(r, "the catalog does not say where it is on tape");
        };
        if data_offset < offset {
            return self.refuse(
                r,
                "its data offset lies before its header: a forged or damaged index",
            );
        }
        // The parts of a split file go into one temporary, each at its
        // offset; the temporary stays open between parts.
        let mut state = match self.parts.remove(&r.path) {
            Some(state) => Some(state),
            None if r.part.is_some() => match self.start_join(r, dir) {
                Ok(state) => Some(state),
                Err(e) => return self.refuse(r, format!("cannot create a file: {e}")),
            },
            None => None,
        };
        if let (Some(s), Some(part)) = (&state, r.part)
            && s.done.contains(&part)
        {
            log::info!("{}: part {part} is joined already", r.path.display());
            self.parts
                .insert(r.path.clone(), state.expect("just matched"));
            return;
        }
        let single = if state.is_none() {
            match dir_temp(&self.tree, &r.path) {
                Ok(x) => Some(x),
                Err(e) => return self.refuse(r, format!("cannot create a file: {e}")),
            }
        } else {
            None
        };
        let mut single = single;
        let out: &mut File = match (&mut state, &mut single) {
            (Some(s), _) => &mut s.out,
            (None, Some((_, out, _))) => out,
            (None, None) => unreachable!("one of the two is set"),
        };
        // The member's header starts in `block`, `offset % block_size`
        // bytes in; its data `data_offset - offset` bytes after that.
        let skip = offset % block_size + (data_offset - offset);
        let read = drive
            .seek(block)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                if let Some(at) = r.part_offset {
                    std::io::Seek::seek(out, std::io::SeekFrom::Start(at))?;
                }
                read_member(drive, r, (offset % block_size, skip), out)
            });
        let (digest, bytes, len, xattrs) = match read {
            Ok(x) => x,
            Err(e) => {
                let cut = r.file.is_some_and(|f| self.cut.contains(&f));
                if let Some((d, _, tmp)) = &single {
                    let _ = d.unlink(tmp);
                }
                if let Some(mut s) = state {
                    // A part past the cut of a cut copy is whole on the
                    // next tape: the join goes on without it.
                    s.bad |= !cut;
                    self.parts.insert(r.path.clone(), s);
                }
                if cut {
                    log::warn!(
                        "{} ({}): past the early warning in a cut copy: it is whole on the tape after this one ({e:#})",
                        r.path.display(),
                        place(r)
                    );
                } else if is_drive_error(&e) {
                    log::error!("{} ({}): {e:#}", r.path.display(), place(r));
                    self.unreadable += 1;
                } else {
                    self.refuse(r, format!("{e:#}"));
                }
                return;
            }
        };
        self.bytes_read += bytes;
        let digest_ok = match r.sha256 {
            Some(recorded) => recorded == digest,
            // Found by its header alone (an index line missing or damaged).
            None => {
                log::warn!(
                    "{} ({}): no recorded digest to check it against; restored as its header says",
                    r.path.display(),
                    place(r)
                );
                true
            }
        };
        if let Some(mut s) = state {
            if s.version != (r.size, r.mtime_ns) {
                log::error!(
                    "{} ({}): part {} is of another version than the parts before it",
                    r.path.display(),
                    place(r),
                    r.part.unwrap_or(0)
                );
                s.bad = true;
            }
            if !digest_ok {
                log::error!(
                    "{} ({}): part {}: SHA-256 {digest} read back, {} recorded",
                    r.path.display(),
                    place(r),
                    r.part.unwrap_or(0),
                    r.sha256.map(|d| d.to_string()).unwrap_or_default()
                );
                s.bad = true;
            }
            s.bytes += len;
            s.done.insert(r.part.unwrap_or(0));
            if s.xattrs.is_empty() {
                s.xattrs = xattrs;
            }
            if s.bytes < r.size {
                self.parts.insert(r.path.clone(), s);
                return; // more parts to come
            }
            let good = !s.bad;
            if !good {
                self.failed += 1;
            }
            if s.kept {
                let _ = s.dir.unlink(&join_note(&s.tmp));
            }
            self.done(r, &s.dir, s.out, &s.tmp, name, good, s.xattrs, digest);
            return;
        }
        let (d, out, tmp) = single.expect("a whole file has its own temporary");
        if !digest_ok {
            log::error!(
                "{} ({}): SHA-256 {digest} read back, {} recorded",
                r.path.display(),
                place(r),
                r.sha256.map(|d| d.to_string()).unwrap_or_default(),
            );
            self.failed += 1;
        }
        self.done(r, &d, out, &tmp, name, digest_ok, xattrs, digest);
    }

    /// A file read whole: its metadata through the open handle, then in
    /// place, or beside it as `<name>.reel-corrupt` when its digest did not
    /// match.
    #[allow(clippy::too_many_arguments)]
    fn done(
        &mut self,
        r: &Record,
        dir: &Dir,
        out: File,
        tmp: &OsStr,
        name: &OsStr,
        good: bool,
        xattrs: Vec<(Vec<u8>, Vec<u8>)>,
        _digest: Digest,
    ) {
        if let Err(e) = out.sync_all() {
            let _ = dir.unlink(tmp);
            return self.refuse(r, format!("writing {}: {e}", dir.path().display()));
        }
        for p in beneath::apply(out.as_fd(), &self.meta(r, xattrs)) {
            log::warn!("{}: {p}", r.path.display());
        }
        drop(out);
        let dest = if good {
            name.to_os_string()
        } else {
            beneath::with_suffix(name, ".reel-corrupt")
        };
        if !good {
            log::error!(
                "{}: kept as {}",
                r.path.display(),
                dir.path().join(&dest).display()
            );
        }
        let replace = self.overwrite || !good;
        if let Err(e) = dir.rename(tmp, &dest, replace) {
            let _ = dir.unlink(tmp);
            return self.refuse(
                r,
                match e.raw_os_error() {
                    Some(libc::EEXIST) => "exists (use --overwrite to replace it)".to_string(),
                    Some(libc::EISDIR) => {
                        "a directory of that name exists: not replaced".to_string()
                    }
                    _ => format!("renaming into {}: {e}", dir.path().join(&dest).display()),
                },
            );
        }
        if good {
            self.files += 1;
            self.bytes_restored += r.size;
            self.restored.insert(r.path.clone(), r.clone());
        }
    }

    /// Directories get their metadata after what went into them, deepest
    /// first, each through its own handle (never through a symlink that
    /// took its place meanwhile).
    fn finish_dirs(&mut self) {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|r| std::cmp::Reverse(r.path.components().count()));
        for r in &dirs {
            match self.tree.dir(&r.path) {
                Ok(d) => {
                    for p in beneath::apply(d.fd(), &self.meta(r, Vec::new())) {
                        log::warn!("{}: {p}", r.path.display());
                    }
                }
                Err(e) => self.refuse(r, format!("its metadata: {e}")),
            }
        }
    }
}

/// A new temporary file beside where `rel` goes: (its directory, the file,
/// its name).
fn dir_temp(tree: &Tree, rel: &Path) -> anyhow::Result<(Dir, File, OsString)> {
    let (dir, _) = tree.parent(rel, true).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (out, tmp) = dir.create_temp()?;
    Ok((dir, out, tmp))
}

/// Did the drive fail (as opposed to the data being bad or refused)?
fn is_drive_error(e: &anyhow::Error) -> bool {
    use crate::tape::TapeError;
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<TapeError>(),
            Some(TapeError::Io { .. } | TapeError::NotReady | TapeError::NoTape)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Part `n` (10 bytes each) of a 30-byte file of mtime `mtime`, taken
    /// at `taken`.
    fn part(mtime: i64, taken: i64, n: u32) -> Record {
        let mut r = Record::new("big", EntryType::File);
        r.size = 30;
        r.mtime_ns = mtime;
        r.taken_ns = Some(taken);
        r.part = Some(n);
        r.part_offset = Some(u64::from(n - 1) * 10);
        r.part_len = Some(10);
        r
    }

    fn chosen(records: Vec<Record>) -> Vec<(i64, Option<u32>)> {
        let mut v: Vec<_> = newest_versions(records)
            .into_iter()
            .map(|r| (r.mtime_ns, r.part))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_tape_gives_the_newest_whole_version_of_a_split_file_never_a_mix() {
        // A newer version cut short (it changed between its parts) loses
        // to the older whole one.
        let tape = vec![
            part(1, 10, 1),
            part(1, 10, 2),
            part(1, 10, 3),
            part(2, 20, 1),
            part(2, 20, 2),
        ];
        assert_eq!(chosen(tape), [(1, Some(1)), (1, Some(2)), (1, Some(3))]);
        // No whole version: the newest, alone.
        let tape = vec![part(1, 10, 1), part(2, 20, 1), part(2, 20, 3)];
        assert_eq!(chosen(tape), [(2, Some(1)), (2, Some(3))]);
        // A newer whole version wins; so does a whole copy of the same.
        let mut unsplit = part(2, 20, 1);
        (unsplit.part, unsplit.part_offset, unsplit.part_len) = (None, None, None);
        let tape = vec![
            part(1, 10, 1),
            part(1, 10, 2),
            part(1, 10, 3),
            part(2, 20, 1),
            unsplit,
        ];
        assert_eq!(chosen(tape), [(2, None)]);
    }
}
