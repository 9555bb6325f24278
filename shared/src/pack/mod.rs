//! Packing one staged item: the plan (which member goes into which
//! archive), writing each archive, the index and the packed manifests.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::archive::{ArchiveWriter, Finished, Hashed, Kind, Member, Sink};
use crate::config::{Config, PackOrder};
use crate::exit::{Exit, ExitError};
use crate::manifest::{Digest, EntryType, Header, Kind as ManifestKind, ManifestWriter, Record};
use crate::spool::{Claim, Output};
use anyhow::Context;
use sha2::{Digest as _, Sha256};

pub struct Settings {
    archives: PathBuf,
    /// `<cache>/staged`: every staged copy a manifest names must be there.
    staged: PathBuf,
    archive_size: u64,
    /// Files larger than this do not fit on one tape: split into parts.
    split_above: u64,
    block_size: u64,
    order: PackOrder,
    raw: bool,
    manifest: Option<PathBuf>,
}

impl Settings {
    pub fn from_config(config: &Config, raw: bool, manifest: Option<PathBuf>) -> Settings {
        Settings {
            archives: config.paths.cache.join("archives"),
            staged: config.paths.cache.join("staged"),
            archive_size: config.archive_size().0,
            // Room for the label, the early-warning margin and the trailer.
            split_above: config.smallest_capacity().0 / 10 * 9,
            block_size: config.drives.first().map_or(256 * 1024, |d| d.block_size.0),
            order: config.pack.order,
            raw,
            manifest,
        }
    }
}

/// Extended attributes of a staged copy, but reel's own (`user.reel.*`).
/// One that cannot be read is reported with the copy, not dropped unsaid.
fn xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    crate::xattrs::all_at(path).unwrap_or_else(|e| {
        log::warn!(
            "{}: cannot read its extended attributes ({e}): archived without them",
            path.display()
        );
        Vec::new()
    })
}

fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// The member for a record (the kind decided by the caller for files).
fn member(r: &Record, kind: Kind) -> Member {
    let xattrs = match (&kind, &r.cache) {
        (Kind::File { .. } | Kind::Dir, Some(c)) => xattrs(c),
        _ => Vec::new(),
    };
    Member {
        path: path_bytes(&r.path).to_vec(),
        kind,
        mode: r.mode,
        uid: r.uid,
        gid: r.gid,
        user: r.user.clone(),
        group: r.group.clone(),
        mtime_ns: r.mtime_ns,
        xattrs,
        extra: Vec::new(),
    }
}

/// Part `number` (from 1) of a file split across archives: `len` bytes
/// from `offset` of the file, read from `at` in its staged copy (the whole
/// file, or only this part when reel-stage staged it in parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    number: u32,
    offset: u64,
    len: u64,
    at: u64,
    /// The last part packed from this staged copy: the digest of all it
    /// held is checked.
    last: bool,
}

/// One entry of an archive: a record, or a part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    index: usize,
    part: Option<Part>,
}

/// Cut the ordered records into archives of at most `archive_size` bytes
/// of data; a file larger than that gets an archive of its own, and a file
/// larger than `split_above` (too large for one tape) is split into parts
/// of `archive_size`, one archive each.
fn plan(records: &[Record], archive_size: u64, split_above: u64) -> Vec<Vec<Piece>> {
    let mut archives: Vec<Vec<Piece>> = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut bytes = 0u64;
    for (index, r) in records.iter().enumerate() {
        let size = if r.entry == EntryType::File {
            r.size
        } else {
            0
        };
        if let (EntryType::File, Some(number)) = (r.entry, r.part) {
            // Staged in parts: the part is an archive of its own.
            if !current.is_empty() {
                archives.push(std::mem::take(&mut current));
                bytes = 0;
            }
            let part = Part {
                number,
                offset: r.part_offset.unwrap_or(0),
                len: r.bytes(),
                at: 0,
                last: true,
            };
            archives.push(vec![Piece {
                index,
                part: Some(part),
            }]);
            continue;
        }
        if size > split_above {
            if !current.is_empty() {
                archives.push(std::mem::take(&mut current));
                bytes = 0;
            }
            let count = size.div_ceil(archive_size);
            for n in 0..count {
                let offset = n * archive_size;
                let part = Part {
                    number: n as u32 + 1,
                    offset,
                    len: archive_size.min(size - offset),
                    at: offset,
                    last: n + 1 == count,
                };
                archives.push(vec![Piece {
                    index,
                    part: Some(part),
                }]);
            }
            continue;
        }
        if !current.is_empty() && bytes + size > archive_size {
            archives.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(Piece { index, part: None });
        bytes += size;
    }
    if !current.is_empty() {
        archives.push(current);
    }
    archives
}

fn order(records: &mut [Record], order: PackOrder) {
    match order {
        PackOrder::Scan => {}
        PackOrder::Path => records.sort_by(|a, b| path_bytes(&a.path).cmp(path_bytes(&b.path))),
        PackOrder::Size => records.sort_by(|a, b| {
            b.size
                .cmp(&a.size)
                .then_with(|| path_bytes(&a.path).cmp(path_bytes(&b.path)))
        }),
    }
}

/// `REEL-ARCHIVE.txt`: what this archive is and how to read it by hand.
fn readme(header: &Header, id: &str, members: usize, bytes: u64, block_size: u64) -> String {
    format!(
        "This is a reel archive: a POSIX pax tar file written to tape as one tape file.\n\
         \n\
         archive  {id}\n\
         stream   {stream}\n\
         item     {item}\n\
         members  {members} ({bytes} bytes of file data)\n\
         \n\
         Its last member, REEL-INDEX.jsonl, lists every member with its size,\n\
         SHA-256 and byte offset in the archive.\n\
         \n\
         To restore it with standard tools, with N its tape file number (from\n\
         `reel mt ls` or the catalog; file 0 is the tape label):\n\
         \n\
             mt -f /dev/nst0 rewind\n\
             mt -f /dev/nst0 fsf N\n\
             tar -b {b} -xvf /dev/nst0\n\
         \n\
         and check a file against the index with sha256sum.\n",
        stream = header.stream,
        item = header.id,
        b = (block_size / 512).max(1),
    )
}

/// Pack one item; false when it failed (moved to failed/).
pub fn pack_item(s: &Settings, claim: Claim, output: &mut Output) -> anyhow::Result<bool> {
    let Some((claim, header, mut records)) = claim.read_all("reel-pack")?.item() else {
        return Ok(false);
    };
    // A manifest cannot make reel-pack read (onto tape) anything but the
    // cache's staged copies.
    if let Some(r) = records.iter().find(|r| {
        r.cache
            .as_ref()
            .is_some_and(|c| !crate::fsutil::within(c, &s.staged))
    }) {
        let why = format!(
            "{}: its staged copy {} is not in {}: refused",
            r.path.display(),
            r.cache.as_deref().unwrap_or(Path::new("")).display(),
            s.staged.display()
        );
        claim.reject(&why, "reel-pack")?;
        return Ok(false);
    }
    // Its archives exist together until they are published: room for all.
    if !s.raw {
        let bytes = records
            .iter()
            .filter(|r| r.entry == EntryType::File)
            .map(Record::bytes)
            .sum();
        let need = crate::fsutil::cache_need(records.len() as u64, bytes);
        let (used, total) = crate::fsutil::fs_usage(&s.archives)
            .with_context(|| format!("measuring {}", s.archives.display()))?;
        if total.saturating_sub(used) < need {
            return Err(no_room(s, &header.id, need, total.saturating_sub(used)));
        }
    }
    order(&mut records, s.order);
    let groups = if s.raw {
        vec![
            (0..records.len())
                .map(|index| Piece { index, part: None })
                .collect(),
        ]
    } else {
        plan(&records, s.archive_size, s.split_above)
    };
    // The whole-file digests of split files, fed part by part.
    let mut whole: HashMap<usize, Sha256> = HashMap::new();
    fs::create_dir_all(&s.archives)
        .with_context(|| format!("creating {}", s.archives.display()))?;
    let mut done: Vec<(Header, Vec<Record>, PathBuf, PathBuf)> = Vec::new();
    for (k, group) in groups.iter().enumerate() {
        let id = format!("{}-a{:03}", header.id, k + 1);
        let result = write_archive(s, &header, &id, &records, group, &mut whole);
        if result.is_err() {
            let _ = fs::remove_file(s.archives.join(format!(".{id}.tar.tmp")));
        }
        match result {
            Ok(x) => done.push(x),
            Err(Failure::Data(why)) => {
                for (_, _, tmp, _) in &done {
                    let _ = fs::remove_file(tmp);
                }
                claim.reject(&why, "reel-pack")?;
                return Ok(false);
            }
            Err(Failure::Io(e)) => {
                for (_, _, tmp, _) in &done {
                    let _ = fs::remove_file(tmp);
                }
                let full = e.chain().any(|c| {
                    c.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.raw_os_error() == Some(libc::ENOSPC))
                });
                if full {
                    let free = crate::fsutil::fs_usage(&s.archives)
                        .map_or(0, |(used, total)| total.saturating_sub(used));
                    return Err(no_room(s, &header.id, 0, free).context(format!("{e:#}")));
                }
                return Err(e);
            }
        }
    }
    // Every archive is complete: move them into place, then publish.
    for (h, recs, tmp, final_path) in done {
        if !s.raw {
            fs::rename(&tmp, &final_path)
                .with_context(|| format!("renaming {}", final_path.display()))?;
            crate::fsutil::sync_dir(&s.archives)
                .with_context(|| format!("syncing {}", s.archives.display()))?;
        }
        if let Some(m) = &s.manifest {
            let f = File::create(m).with_context(|| format!("creating {}", m.display()))?;
            let mut w = ManifestWriter::new(std::io::BufWriter::new(f), &h)?;
            for r in &recs {
                w.write(r)?;
            }
            w.finish()?
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
        } else {
            let mut item = output.begin(&h)?;
            for r in &recs {
                item.write(r)?;
            }
            item.commit()?;
        }
        log::info!(
            "{}: {} members, {} bytes",
            h.id,
            recs.len(),
            h.extra["archive_size"]
        );
    }
    claim.finish()?;
    Ok(true)
}

/// The cache has no room for an item's archives now: it stays queued, and
/// the run ends with 75 (reel-verify frees the cache; then again).
fn no_room(s: &Settings, item: &str, need: u64, free: u64) -> anyhow::Error {
    let need = if need > 0 {
        format!(" (they need about {}, ", crate::units::Size(need).human())
    } else {
        " (".into()
    };
    ExitError::new(
        Exit::TempFail,
        format!(
            "no room in {} for the archives of {item}{need}{} free): it stays queued until writing and verifying free the cache",
            s.archives.display(),
            crate::units::Size(free).human()
        ),
    )
    .into()
}

enum Failure {
    /// The item is wrong (a staged copy that does not match): fail it.
    Data(String),
    /// Something around us is wrong: stop the run.
    Io(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Io(e.into())
    }
}

/// A staged copy must hold what the manifest says it holds.
fn check_digest(
    cache: &Path,
    got: Option<Digest>,
    expected: Option<Digest>,
) -> Result<(), Failure> {
    if got == expected {
        return Ok(());
    }
    Err(Failure::Data(format!(
        "{}: the staged copy's SHA-256 {} does not match the manifest's {}",
        cache.display(),
        got.map(|d| d.to_string()).unwrap_or_default(),
        expected
            .map(|d| d.to_string())
            .unwrap_or_else(|| "(none)".into())
    )))
}

type Written = (Header, Vec<Record>, PathBuf, PathBuf);

/// The staged copy of a record, opened.
fn open_staged(r: &Record) -> Result<(&Path, File), Failure> {
    let cache = r.cache.as_deref().ok_or_else(|| {
        Failure::Data(format!(
            "{}: no staged copy in the manifest",
            r.path.display()
        ))
    })?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(cache)
        .map_err(|e| {
            Failure::Data(format!(
                "{}: cannot open the staged copy: {e}",
                cache.display()
            ))
        })?;
    Ok((cache, f))
}

/// One part of a split file, with the `REEL.part`, `REEL.offset` and
/// `REEL.total` pax keys; the whole file's digest is checked after its last
/// part.
fn write_part(
    w: &mut ArchiveWriter,
    r: &Record,
    part: Part,
    whole: &mut Sha256,
) -> Result<(crate::archive::Placed, Digest), Failure> {
    let (cache, f) = open_staged(r)?;
    let held = f.metadata()?.len();
    if part.at.checked_add(part.len).is_none_or(|end| end > held) {
        return Err(Failure::Data(format!(
            "{}: the staged copy holds {held} bytes, too few for part {} ({} bytes from {})",
            cache.display(),
            part.number,
            part.len,
            part.at
        )));
    }
    let mut m = member(r, Kind::File { size: part.len });
    m.extra = vec![
        ("REEL.part".into(), part.number.to_string().into_bytes()),
        ("REEL.offset".into(), part.offset.to_string().into_bytes()),
        ("REEL.total".into(), r.size.to_string().into_bytes()),
    ];
    let placed = w.add_file(&m, &f, part.at, part.len, Some(whole))?;
    let Hashed::Now(digest) = placed.sha256 else {
        unreachable!("a part is hashed in line")
    };
    if part.last {
        let whole = Digest(std::mem::take(whole).finalize().into());
        if Some(whole) != r.sha256 {
            return Err(Failure::Data(format!(
                "{}: the staged copy's SHA-256 {whole} does not match the manifest's",
                cache.display()
            )));
        }
    }
    Ok((placed, digest))
}

fn write_archive(
    s: &Settings,
    header: &Header,
    id: &str,
    records: &[Record],
    group: &[Piece],
    whole: &mut HashMap<usize, Sha256>,
) -> Result<Written, Failure> {
    let final_path = s.archives.join(format!("{id}.tar"));
    let tmp = s.archives.join(format!(".{id}.tar.tmp"));
    let sink = if s.raw {
        Sink::Stream(Box::new(std::io::BufWriter::with_capacity(
            4 << 20,
            std::io::stdout(),
        )))
    } else {
        Sink::File(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?)
    };
    let mut w = ArchiveWriter::new(sink);
    let members: Vec<&Record> = group.iter().map(|p| &records[p.index]).collect();
    let data_bytes: u64 = group
        .iter()
        .map(|p| match (p.part, &records[p.index]) {
            (Some(part), _) => part.len,
            (None, r) if r.entry == EntryType::File => r.size,
            _ => 0,
        })
        .sum();
    let stamp = members.iter().map(|r| r.mtime_ns).max().unwrap_or(0);
    let text = readme(header, id, members.len(), data_bytes, s.block_size);
    let info = |name: &str, size: usize| Member {
        path: name.as_bytes().to_vec(),
        kind: Kind::File { size: size as u64 },
        mode: 0o444,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime_ns: stamp - stamp.rem_euclid(1_000_000_000),
        xattrs: Vec::new(),
        extra: Vec::new(),
    };
    w.add_bytes(&info("REEL-ARCHIVE.txt", text.len()), text.as_bytes())?;
    let mut out: Vec<Record> = Vec::with_capacity(members.len());
    let mut by_digest: HashMap<Digest, Vec<u8>> = HashMap::new();
    // Large files being copied and hashed in the background: their digests
    // are checked once the archive is complete.
    let mut pending: Vec<(usize, PathBuf, Option<Digest>)> = Vec::new();
    // Paths already in this archive: tar can only link to what it has seen.
    let mut written: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for (piece, r) in group.iter().zip(&members) {
        let mut rec = (*r).clone();
        if let Some(part) = piece.part {
            let (placed, digest) =
                write_part(&mut w, r, part, whole.entry(piece.index).or_default())?;
            rec.part = Some(part.number);
            rec.part_offset = Some(part.offset);
            rec.part_len = Some(part.len);
            rec.sha256 = Some(digest);
            rec.archive = Some(id.to_string());
            rec.offset = Some(placed.offset);
            rec.data_offset = Some(placed.data_offset);
            out.push(rec);
            continue;
        }
        let placed = match r.entry {
            EntryType::File | EntryType::Hardlink => {
                let link_here = r.entry == EntryType::Hardlink
                    && r.link.as_ref().is_some_and(|l| written.contains(l));
                let dup = r
                    .sha256
                    .filter(|_| r.size > 0)
                    .and_then(|d| by_digest.get(&d).cloned());
                if link_here || dup.is_some() {
                    // A hard link in tar: to the link target, or to the
                    // first member with the same content.
                    let target = if link_here {
                        path_bytes(r.link.as_deref().expect("checked")).to_vec()
                    } else {
                        dup.expect("checked")
                    };
                    rec.entry = EntryType::Hardlink;
                    rec.link = Some(PathBuf::from(std::ffi::OsStr::from_bytes(&target)));
                    w.add_bytes(&member(r, Kind::Hardlink { target }), &[])?
                } else {
                    // A hard link whose target lies in another archive is
                    // stored whole: its staged copy holds the data.
                    rec.entry = EntryType::File;
                    rec.link = None;
                    let (cache, f) = open_staged(r)?;
                    let len = f.metadata()?.len();
                    if len != r.size {
                        return Err(Failure::Data(format!(
                            "{}: the staged copy holds {len} bytes, the manifest says {}",
                            cache.display(),
                            r.size
                        )));
                    }
                    let placed =
                        w.add_whole_file(&member(r, Kind::File { size: r.size }), f, r.size)?;
                    match placed.sha256 {
                        Hashed::Later(ticket) => {
                            pending.push((ticket, cache.to_path_buf(), r.sha256));
                        }
                        Hashed::Now(d) => check_digest(cache, Some(d), r.sha256)?,
                        Hashed::None => check_digest(cache, None, r.sha256)?,
                    }
                    if let Some(d) = r.sha256 {
                        by_digest
                            .entry(d)
                            .or_insert_with(|| path_bytes(&r.path).to_vec());
                    }
                    placed
                }
            }
            EntryType::Dir => w.add_bytes(&member(r, Kind::Dir), &[])?,
            EntryType::Symlink => {
                let target = path_bytes(r.link.as_deref().unwrap_or(Path::new(""))).to_vec();
                w.add_bytes(&member(r, Kind::Symlink { target }), &[])?
            }
            EntryType::Fifo => w.add_bytes(&member(r, Kind::Fifo), &[])?,
            EntryType::Char => w.add_bytes(
                &member(
                    r,
                    Kind::Char {
                        rdev: r.rdev.unwrap_or(0),
                    },
                ),
                &[],
            )?,
            EntryType::Block => w.add_bytes(
                &member(
                    r,
                    Kind::Block {
                        rdev: r.rdev.unwrap_or(0),
                    },
                ),
                &[],
            )?,
        };
        written.insert(r.path.clone());
        rec.archive = Some(id.to_string());
        rec.offset = Some(placed.offset);
        rec.data_offset = Some(placed.data_offset);
        out.push(rec);
    }
    // The index: every member, as the packed manifest lists it.
    let mut index = Vec::new();
    for r in &out {
        serde_json::to_writer(&mut index, r).expect("records serialize");
        index.push(b'\n');
    }
    w.add_bytes(&info("REEL-INDEX.jsonl", index.len()), &index)?;
    let Finished {
        sink,
        size,
        digests,
    } = w.finish(s.block_size)?;
    for (ticket, cache, expected) in pending {
        check_digest(&cache, digests.get(&ticket).copied(), expected)?;
    }
    if let Sink::Stream(mut st) = sink {
        st.flush()?;
    }
    let mut h = Header::new(ManifestKind::Packed, &header.stream, id);
    h.created = header.created.clone();
    h.extra = header.extra.clone();
    h.extra.insert("item".into(), header.id.clone().into());
    h.extra.insert("archive".into(), id.into());
    h.extra.insert(
        "archive_path".into(),
        final_path.display().to_string().into(),
    );
    h.extra.insert("archive_size".into(), size.into());
    h.extra.insert("block_size".into(), s.block_size.into());
    Ok((h, out, tmp, final_path))
}
