//! Restoring from the catalog: the newest verified copy of each matching
//! path (or the one at `--at`), grouped by tape and read in tape order. For
//! each file the drive seeks straight to the block holding the member's
//! header (archive start + offset / block size), the ustar header is
//! checked, and only the member's own bytes are read, hashed and written;
//! a digest that does not match leaves `<name>.reel-corrupt`.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use reel_shared::archive::{check_header, ustar_size};
use reel_shared::catalog::Entry;
use reel_shared::catalog::find::{Query, search};
use reel_shared::cli::CommonArgs;
use reel_shared::exit::{Exit, ExitError};
use reel_shared::manifest::{Digest, EntryType, Record};
use reel_shared::tape::stream::MAX_BLOCK;
use reel_shared::tape::{Drive, Read};
use reel_shared::units::Size;
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

/// `rel` under `root`, refusing what would leave it: absolute paths, `..`,
/// and existing symlinks (or non-directories) on the way.
fn safe_target(root: &Path, rel: &Path) -> Result<PathBuf, String> {
    let mut out = root.to_path_buf();
    let parts: Vec<Component> = rel.components().collect();
    if parts.is_empty() {
        return Err("an empty path".into());
    }
    for (i, c) in parts.iter().enumerate() {
        let Component::Normal(name) = c else {
            return Err(format!("{c:?} in the path: refused"));
        };
        out.push(name);
        if i + 1 < parts.len()
            && let Ok(m) = fs::symlink_metadata(&out)
        {
            if m.file_type().is_symlink() {
                return Err(format!(
                    "{} is a symlink: writing through it could leave {}",
                    out.display(),
                    root.display()
                ));
            }
            if !m.is_dir() {
                return Err(format!("{} is not a directory", out.display()));
            }
        }
    }
    Ok(out)
}

/// Create the directories leading to `target` (under `root`, checked by
/// `safe_target`).
fn make_parents(target: &Path) -> std::io::Result<()> {
    match target.parent() {
        Some(p) => fs::create_dir_all(p),
        None => Ok(()),
    }
}

fn set_times(path: &Path, mtime_ns: i64, follow: bool) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let ts = TimeSpec::new(
        mtime_ns.div_euclid(1_000_000_000),
        mtime_ns.rem_euclid(1_000_000_000),
    );
    let flag = if follow {
        UtimensatFlags::FollowSymlink
    } else {
        UtimensatFlags::NoFollowSymlink
    };
    let _ = utimensat(nix::fcntl::AT_FDCWD, path, &ts, &ts, flag);
}

fn set_owner(path: &Path, r: &Record) {
    if nix::unistd::geteuid().is_root() {
        let _ = std::os::unix::fs::lchown(path, Some(r.uid), Some(r.gid));
    }
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

fn set_xattrs(path: &Path, xattrs: &[(Vec<u8>, Vec<u8>)]) {
    let Ok(p) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    for (name, value) in xattrs {
        let Ok(n) = std::ffi::CString::new(name.clone()) else {
            continue;
        };
        // SAFETY: NUL-terminated strings and a value valid for its length.
        let rc = unsafe {
            libc::lsetxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc != 0 {
            log::warn!(
                "{}: extended attribute {}: {}",
                path.display(),
                String::from_utf8_lossy(name),
                std::io::Error::last_os_error()
            );
        }
    }
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
    use reel_shared::catalog::from_tape::{self, Source};
    let config = common.load_config_if_any()?;
    let device = reel_shared::config::Device::from_arg(dev)
        .map_err(|e| ExitError::new(Exit::Usage, format!("--from-tape: {e}")))?;
    let mut drive =
        reel_shared::device::open_variable(config.as_ref(), &device, Duration::from_secs(600))?;
    let label = reel_shared::device::reel_label(drive.as_mut(), &device)?;
    let catalog = from_tape::read(drive.as_mut(), &label)?;
    let records = catalog.records;
    log::info!(
        "tape {}: {} member(s) listed by {}",
        label.label,
        records.len(),
        match catalog.source {
            Source::ClosingCatalog => "its REEL-TAPE.jsonl",
            Source::ArchiveIndexes => "its archives' indexes",
        }
    );
    let patterns = reel_shared::catalog::find::Patterns::new(&o.patterns)
        .map_err(|e| ExitError::new(Exit::Usage, e))?;
    let mut newest: HashMap<PathBuf, Record> = HashMap::new();
    for r in records {
        if r.part.is_none() && patterns.matches(r.path.as_os_str().as_bytes()) {
            newest.insert(r.path.clone(), r);
        }
    }
    if newest.is_empty() {
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
    let found: Vec<Entry> = newest
        .into_values()
        .map(|record| Entry {
            stream: String::new(),
            verified: String::new(),
            record,
        })
        .collect();
    let plan = plan(&found);
    if o.dry_run {
        return Ok(dry_run(&plan, found.len()));
    }
    let to =
        o.to.clone()
            .ok_or_else(|| usage("--to DIR is needed (or --dry-run)"))?;
    fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
    let mut restorer = Restorer::new(to, o.overwrite);
    restorer.cut = catalog.cut.into_iter().collect();
    let block_size = u64::from(label.block_size.max(1));
    for list in plan.tapes.values() {
        for e in list {
            restorer.member(drive.as_mut(), &e.record, block_size)?;
        }
    }
    Ok(restorer.finish())
}

/// What `--dry-run` prints: tapes, positions, bytes.
fn dry_run(plan: &Plan, members: usize) -> Exit {
    let mut total = 0u64;
    for (tape, list) in &plan.tapes {
        let bytes: u64 = list.iter().map(|e| data_bytes(&e.record)).sum();
        total += bytes;
        println!(
            "tape {tape}: {} member(s), {}",
            list.len(),
            Size(bytes).human()
        );
        for e in list {
            let r = &e.record;
            println!(
                "    file {} block {}  {}  {}",
                r.file.unwrap_or(0),
                r.block.unwrap_or(0),
                Size(data_bytes(r)).human(),
                r.path.display()
            );
        }
    }
    println!(
        "{} tape(s), {members} member(s), {} to read",
        plan.tapes.len(),
        Size(total).human()
    );
    Exit::Ok
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
        return Ok(dry_run(&plan, found.len()));
    }
    let to =
        o.to.clone()
            .ok_or_else(|| usage("--to DIR is needed (or --dry-run)"))?;
    fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
    let (device, conf) = reel_shared::device::resolve_drive(
        Some(&config),
        o.device.as_deref(),
        o.drive.as_deref(),
        None,
    )
    .map_err(|e| ExitError::new(Exit::Usage, e))?;
    let changer = reel_shared::device::drive_changer(&config, &device, conf.as_ref());
    let open = || -> anyhow::Result<(Box<dyn Drive>, reel_shared::tape::label::Label)> {
        let mut drive =
            reel_shared::device::open_variable(Some(&config), &device, Duration::from_secs(600))?;
        let label = reel_shared::device::reel_label(drive.as_mut(), &device)?;
        Ok((drive, label))
    };
    let (mut drive, mut label) = open()?;
    let mut restorer = Restorer::new(to, o.overwrite);
    let mut needed = Vec::new();
    // The loaded tape first, then the others through the changer.
    let mut order: Vec<&String> = plan.tapes.keys().collect();
    order.sort_by_key(|t| **t != label.label);
    for tape in order {
        let list = &plan.tapes[tape];
        if *tape != label.label {
            let loaded = match &changer {
                Some(ch) => {
                    drop(drive);
                    let ok = reel_shared::device::load_labelled(&config, &device, ch, tape)?;
                    (drive, label) = open()?;
                    ok
                }
                None => false,
            };
            if !loaded {
                needed.push(format!("{tape} ({} member(s))", list.len()));
                continue;
            }
        }
        let block_size = u64::from(label.block_size.max(1));
        for e in list {
            restorer.member(drive.as_mut(), &e.record, block_size)?;
        }
    }
    let exit = restorer.finish();
    if exit != Exit::Ok {
        return Ok(exit);
    }
    if !needed.is_empty() {
        return Err(ExitError::new(
            Exit::Unavailable,
            format!(
                "the rest needs tape(s) {}: load each and run again",
                needed.join(", ")
            ),
        )
        .into());
    }
    Ok(Exit::Ok)
}

fn data_bytes(r: &Record) -> u64 {
    if r.entry == EntryType::File {
        r.size
    } else {
        0
    }
}

struct Restorer {
    to: PathBuf,
    overwrite: bool,
    /// Files restored in this run, by their catalog path, with their
    /// records: hard links point at them.
    restored: HashMap<PathBuf, (PathBuf, Record)>,
    corrupt: u64,
    refused: u64,
    files: u64,
    bytes_read: u64,
    bytes_restored: u64,
    /// Directories to give their mode and mtime last.
    dirs: Vec<(PathBuf, Record)>,
    /// Tape files holding copies cut by the early warning: a member past
    /// the cut is missing, not corrupt.
    cut: std::collections::HashSet<u64>,
    /// Split files being joined, by catalog path.
    parts: HashMap<PathBuf, PartState>,
}

/// A split file being joined from its parts.
struct PartState {
    bytes: u64,
    bad: bool,
    /// (size, mtime) every part must share: one version's parts.
    version: (u64, i64),
}

impl Restorer {
    fn new(to: PathBuf, overwrite: bool) -> Restorer {
        Restorer {
            to,
            overwrite,
            restored: HashMap::new(),
            corrupt: 0,
            refused: 0,
            files: 0,
            bytes_read: 0,
            bytes_restored: 0,
            dirs: Vec::new(),
            cut: Default::default(),
            parts: HashMap::new(),
        }
    }

    /// Directories' metadata, the summary line, and the exit code.
    fn finish(mut self) -> Exit {
        self.finish_dirs();
        log::info!(
            "{} file(s), {} bytes restored into {}; {} bytes read from tape",
            self.files,
            self.bytes_restored,
            self.to.display(),
            self.bytes_read
        );
        let unjoined: Vec<String> = self
            .parts
            .iter()
            .filter(|(p, _)| !self.restored.contains_key(*p))
            .filter(|(_, s)| !s.bad)
            .map(|(p, s)| format!("{} ({} bytes of parts)", p.display(), s.bytes))
            .collect();
        for u in &unjoined {
            log::error!("{u}: not all parts were read; the file is incomplete");
        }
        if self.corrupt > 0 || self.refused > 0 || !unjoined.is_empty() {
            Exit::Data
        } else {
            Exit::Ok
        }
    }

    fn refuse(&mut self, r: &Record, why: &str) {
        log::error!("{}: {why}", r.path.display());
        self.refused += 1;
    }

    fn member(&mut self, drive: &mut dyn Drive, r: &Record, block_size: u64) -> anyhow::Result<()> {
        let target = match safe_target(&self.to, &r.path) {
            Ok(t) => t,
            Err(why) => {
                self.refuse(r, &why);
                return Ok(());
            }
        };
        let exists = fs::symlink_metadata(&target).is_ok();
        if exists && r.entry != EntryType::Dir && !self.overwrite {
            self.refuse(r, "exists (use --overwrite to replace it)");
            return Ok(());
        }
        make_parents(&target).with_context(|| format!("creating {}", target.display()))?;
        match r.entry {
            EntryType::Dir => {
                fs::create_dir_all(&target)
                    .with_context(|| format!("creating {}", target.display()))?;
                self.dirs.push((target, r.clone()));
            }
            EntryType::Symlink => {
                if exists {
                    fs::remove_file(&target)?;
                }
                let link = r.link.clone().unwrap_or_default();
                std::os::unix::fs::symlink(&link, &target)
                    .with_context(|| format!("creating {}", target.display()))?;
                set_owner(&target, r);
                set_times(&target, r.mtime_ns, false);
            }
            EntryType::Hardlink => {
                let Some(first) = r.link.as_ref().and_then(|l| self.restored.get(l)).cloned()
                else {
                    self.refuse(
                        r,
                        &format!(
                            "a hard link to {}, which was not restored with it: restore both",
                            r.link.as_deref().unwrap_or(Path::new("?")).display()
                        ),
                    );
                    return Ok(());
                };
                if exists {
                    fs::remove_file(&target)?;
                }
                let (first, of) = first;
                let same_inode =
                    (of.mode, of.uid, of.gid, of.mtime_ns) == (r.mode, r.uid, r.gid, r.mtime_ns);
                if same_inode {
                    // A hard link in the source: one inode, as it was.
                    fs::hard_link(&first, &target)
                        .with_context(|| format!("linking {}", target.display()))?;
                } else {
                    // Another file with the same content, stored once in the
                    // archive: a copy of its own, with its own metadata.
                    fs::copy(&first, &target)
                        .with_context(|| format!("copying to {}", target.display()))?;
                    fs::set_permissions(&target, fs::Permissions::from_mode(r.mode & 0o7777))?;
                    set_owner(&target, r);
                    set_times(&target, r.mtime_ns, true);
                }
                self.files += 1;
                self.bytes_restored += r.size;
            }
            EntryType::File => self.file(drive, r, &target, block_size)?,
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                use nix::sys::stat::{Mode, SFlag, mknod};
                if exists {
                    fs::remove_file(&target)?;
                }
                let kind = match r.entry {
                    EntryType::Fifo => SFlag::S_IFIFO,
                    EntryType::Char => SFlag::S_IFCHR,
                    _ => SFlag::S_IFBLK,
                };
                let mode = Mode::from_bits_truncate(r.mode & 0o7777);
                match mknod(&target, kind, mode, r.rdev.unwrap_or(0)) {
                    Ok(()) => {
                        set_owner(&target, r);
                        set_times(&target, r.mtime_ns, true);
                        self.files += 1;
                    }
                    Err(e) => self.refuse(
                        r,
                        &format!("cannot create it: {e} (device files need root)"),
                    ),
                }
            }
        }
        Ok(())
    }

    fn file(
        &mut self,
        drive: &mut dyn Drive,
        r: &Record,
        target: &Path,
        block_size: u64,
    ) -> anyhow::Result<()> {
        let (Some(block), Some(offset), Some(data_offset)) = (r.block, r.offset, r.data_offset)
        else {
            self.refuse(r, "the catalog does not say where it is on tape");
            return Ok(());
        };
        // The member's header starts in `block`, `offset % block_size`
        // bytes in; its data `data_offset - offset` bytes after that.
        drive.seek(block)?;
        let skip = offset % block_size + (data_offset - offset);
        let name = target
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let tmp = target.with_file_name(std::ffi::OsStr::from_bytes(
            &[b".", &name[..], b".reel-part"].concat(),
        ));
        // The parts of a split file go into one file, each at its offset.
        let first_part = r.part.is_some() && !self.parts.contains_key(&r.path);
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(r.part.is_none() || first_part)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        if let Some(at) = r.part_offset {
            std::io::Seek::seek(&mut out, std::io::SeekFrom::Start(at))?;
        }
        let (digest, read, len, xattrs) = match read_member(
            drive,
            r,
            (offset % block_size, skip),
            &mut out,
        ) {
            Ok(x) => x,
            Err(e) if r.file.is_some_and(|f| self.cut.contains(&f)) => {
                let _ = fs::remove_file(&tmp);
                log::warn!(
                    "{}: past the early warning in a cut copy: it is whole on the tape after this one ({e:#})",
                    r.path.display()
                );
                return Ok(());
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                log::error!("{e:#}");
                self.corrupt += 1;
                return Ok(());
            }
        };
        self.bytes_read += read;
        out.sync_all()?;
        drop(out);
        let mut good = Some(digest) == r.sha256;
        if r.part.is_some() {
            let state = self.parts.entry(r.path.clone()).or_insert(PartState {
                bytes: 0,
                bad: false,
                version: (r.size, r.mtime_ns),
            });
            if state.version != (r.size, r.mtime_ns) {
                log::error!(
                    "{}: part {} is of another version than the parts before it",
                    r.path.display(),
                    r.part.unwrap_or(0)
                );
                state.bad = true;
            }
            if !good {
                log::error!(
                    "{}: part {}: SHA-256 {digest} read back, {} recorded",
                    r.path.display(),
                    r.part.unwrap_or(0),
                    r.sha256.map(|d| d.to_string()).unwrap_or_default()
                );
                state.bad = true;
            }
            state.bytes += len;
            self.bytes_restored += len;
            if state.bytes < r.size {
                return Ok(()); // more parts to come
            }
            good = !state.bad;
            self.bytes_restored -= r.size; // counted once below
        }
        let dest = if good {
            target.to_path_buf()
        } else {
            let bad = target.with_file_name(std::ffi::OsStr::from_bytes(
                &[&name[..], b".reel-corrupt"].concat(),
            ));
            log::error!(
                "{}: SHA-256 {digest} read back, {} recorded: kept as {}",
                r.path.display(),
                r.sha256.map(|d| d.to_string()).unwrap_or_default(),
                bad.display()
            );
            self.corrupt += 1;
            bad
        };
        set_xattrs(&tmp, &xattrs);
        fs::set_permissions(&tmp, fs::Permissions::from_mode(r.mode & 0o7777))?;
        set_owner(&tmp, r);
        set_times(&tmp, r.mtime_ns, true);
        fs::rename(&tmp, &dest).with_context(|| format!("renaming to {}", dest.display()))?;
        if good {
            self.files += 1;
            self.bytes_restored += r.size;
            self.restored.insert(r.path.clone(), (dest, r.clone()));
        }
        Ok(())
    }

    /// Directories get their mode and mtime after what went into them.
    fn finish_dirs(&mut self) {
        for (path, r) in self.dirs.iter().rev() {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(r.mode & 0o7777));
            set_owner(path, r);
            set_times(path, r.mtime_ns, true);
        }
    }
}
