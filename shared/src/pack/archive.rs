//! One archive written: `REEL-ARCHIVE.txt`, the members (whole files, parts
//! of split files, hard links within the archive), `REEL-INDEX.jsonl`, each
//! staged copy's SHA-256 checked in the one read that packs it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest as _, Sha256};

use crate::archive::{ArchiveWriter, Finished, Hashed, Member, MemberKind, Placed, Sink};
use crate::manifest::{Digest, EntryType, Header, Kind, Record};

use super::member::{member, readme};
use super::plan::{Part, Piece};
use super::{Settings, path_bytes};

/// Why an archive could not be written.
pub(super) enum Failure {
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

/// An archive written: its packed header and records, its temporary and
/// its final path.
pub(super) type Written = (Header, Vec<Record>, PathBuf, PathBuf);

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
) -> Result<(Placed, Digest), Failure> {
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
    let mut m = member(r, MemberKind::File { size: part.len });
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

/// An archive being written: the writer, and what its later members may
/// link to or must still check.
struct Packing {
    w: ArchiveWriter,
    /// The first member with each content: a later one links to it.
    by_digest: HashMap<Digest, Vec<u8>>,
    /// Large files being copied and hashed in the background: their digests
    /// are checked once the archive is complete.
    pending: Vec<(usize, PathBuf, Option<Digest>)>,
    /// Paths already in this archive: tar can only link to what it has seen.
    written: HashSet<PathBuf>,
    /// The bundles members came from, open, with their lengths (a few per
    /// staged item: one per thread that staged it).
    bundles: HashMap<PathBuf, (File, u64)>,
    /// Bundled members being hashed on other threads; checked once the
    /// archive is complete.
    lanes: Option<Lanes>,
}

/// What a bundled member is checked for: its path, its bundle, where its
/// bytes start there, the digest its manifest promises.
type BundleCheck = (PathBuf, PathBuf, u64, Option<Digest>);

/// Bundled members being hashed on other threads while the packing thread
/// writes on: the member numbered `i` is `checks[i]`.
struct Lanes {
    hashers: crate::hashers::Hashers,
    checks: Vec<BundleCheck>,
}

impl Lanes {
    fn start() -> Lanes {
        Lanes {
            hashers: crate::hashers::Hashers::start(),
            checks: Vec::new(),
        }
    }

    /// Hash `bytes`, the data of the member `check` describes.
    fn hash(&mut self, check: BundleCheck, bytes: Vec<u8>) {
        self.hashers.add(self.checks.len(), bytes, true);
        self.checks.push(check);
    }

    /// Every bundled member's digest against its manifest's.
    fn check(self) -> Result<(), Failure> {
        let mut got: Vec<Option<Digest>> = vec![None; self.checks.len()];
        for (i, d) in self.hashers.finish() {
            got[i] = Some(d);
        }
        for ((path, bundle, at, expected), got) in self.checks.iter().zip(got) {
            if got != *expected {
                return Err(Failure::Data(format!(
                    "{}: its staged bytes in the bundle {} (from {at}) have the SHA-256 {}, the manifest says {}",
                    path.display(),
                    bundle.display(),
                    got.map(|d| d.to_string()).unwrap_or_default(),
                    expected
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "(none)".into())
                )));
            }
        }
        Ok(())
    }
}

impl Packing {
    /// A file or a hard link. It becomes a hard link in tar when its target,
    /// or a member with the same content, is already in this archive; else
    /// it is stored whole from its staged copy. `rec` is what the index
    /// says of it.
    fn file(&mut self, r: &Record, rec: &mut Record) -> Result<Placed, Failure> {
        let link_here = r.entry == EntryType::Hardlink
            && r.link.as_ref().is_some_and(|l| self.written.contains(l));
        let dup = r
            .sha256
            .filter(|_| r.size > 0)
            .and_then(|d| self.by_digest.get(&d).cloned());
        if link_here || dup.is_some() {
            let target = if link_here {
                path_bytes(r.link.as_deref().expect("checked")).to_vec()
            } else {
                dup.expect("checked")
            };
            rec.entry = EntryType::Hardlink;
            rec.link = Some(PathBuf::from(std::ffi::OsStr::from_bytes(&target)));
            return Ok(self
                .w
                .add_bytes(&member(r, MemberKind::Hardlink { target }), &[])?);
        }
        // A hard link whose target lies in another archive is stored
        // whole: its staged copy holds the data.
        rec.entry = EntryType::File;
        rec.link = None;
        if let Some(at) = r.cache_offset {
            return self.bundled(r, at);
        }
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
            self.w
                .add_whole_file(&member(r, MemberKind::File { size: r.size }), f, r.size)?;
        match placed.sha256 {
            Hashed::Later(ticket) => self.pending.push((ticket, cache.to_path_buf(), r.sha256)),
            Hashed::Now(d) => check_digest(cache, Some(d), r.sha256)?,
            Hashed::None => check_digest(cache, None, r.sha256)?,
        }
        if let Some(d) = r.sha256 {
            self.by_digest
                .entry(d)
                .or_insert_with(|| path_bytes(&r.path).to_vec());
        }
        Ok(placed)
    }
}

impl Packing {
    /// A file staged into a bundle: its `size` bytes from `at` there, which
    /// must lie inside the bundle and hash to the manifest's digest (checked
    /// once the archive is complete). A bundle opened stays open for the
    /// archive's other members.
    fn bundled(&mut self, r: &Record, at: u64) -> Result<Placed, Failure> {
        let cache = r
            .cache
            .as_deref()
            .expect("a bundled record names its bundle");
        if !self.bundles.contains_key(cache) {
            // A manifest naming many bundles must not run out of file
            // descriptors.
            if self.bundles.len() >= 64 {
                self.bundles.clear();
            }
            let (_, f) = open_staged(r)?;
            let len = f.metadata()?.len();
            self.bundles.insert(cache.to_path_buf(), (f, len));
        }
        let (f, len) = &self.bundles[cache];
        if at.checked_add(r.size).is_none_or(|end| end > *len) {
            return Err(Failure::Data(format!(
                "{}: its {} staged bytes from {at} lie past the end of the bundle {} ({len} bytes)",
                r.path.display(),
                r.size,
                cache.display(),
            )));
        }
        // Read whole (a member of a bundle is small), written, and hashed
        // on another thread while the next is packed.
        let mut bytes = vec![0u8; r.size as usize];
        std::os::unix::fs::FileExt::read_exact_at(f, &mut bytes, at)?;
        let placed = self
            .w
            .add_unhashed(&member(r, MemberKind::File { size: r.size }), &bytes)?;
        let check = (r.path.clone(), cache.to_path_buf(), at, r.sha256);
        self.lanes
            .get_or_insert_with(Lanes::start)
            .hash(check, bytes);
        if let Some(d) = r.sha256 {
            self.by_digest
                .entry(d)
                .or_insert_with(|| path_bytes(&r.path).to_vec());
        }
        Ok(placed)
    }
}

/// The member kind of a record that holds no data: a directory, a symlink,
/// a FIFO or a device.
fn dataless_kind(r: &Record) -> MemberKind {
    let rdev = r.rdev.unwrap_or(0);
    match r.entry {
        EntryType::Dir => MemberKind::Dir,
        EntryType::Symlink => MemberKind::Symlink {
            target: path_bytes(r.link.as_deref().unwrap_or(Path::new(""))).to_vec(),
        },
        EntryType::Fifo => MemberKind::Fifo,
        EntryType::Char => MemberKind::Char { rdev },
        EntryType::Block => MemberKind::Block { rdev },
        EntryType::File | EntryType::Hardlink => unreachable!("files hold data"),
    }
}

/// The bytes of file data the pieces of `group` carry.
fn data_bytes(records: &[Record], group: &[Piece]) -> u64 {
    group
        .iter()
        .map(|p| match (p.part, &records[p.index]) {
            (Some(part), _) => part.len,
            (None, r) if r.entry == EntryType::File => r.size,
            _ => 0,
        })
        .sum()
}

/// The packed item's header for the archive `id` of `header`'s item.
fn packed_header(
    header: &Header,
    id: &str,
    final_path: &Path,
    size: u64,
    block_size: u64,
) -> Header {
    let mut h = Header::new(Kind::Packed, &header.stream, id);
    h.created = header.created.clone();
    h.extra = header.extra.clone();
    h.extra.insert("item".into(), header.id.clone().into());
    h.extra.insert("archive".into(), id.into());
    h.extra.insert(
        "archive_path".into(),
        final_path.display().to_string().into(),
    );
    h.extra.insert("archive_size".into(), size.into());
    h.extra.insert("block_size".into(), block_size.into());
    h
}

/// Write the archive `id` of `group`'s pieces of `records` (to the cache,
/// or to stdout with `--raw`); `whole` holds the whole-file digests of
/// split files, fed part by part.
pub(super) fn write_archive(
    s: &Settings,
    header: &Header,
    id: &str,
    records: &[Record],
    group: &[Piece],
    whole: &mut HashMap<usize, Sha256>,
) -> Result<Written, Failure> {
    let final_path = s.archives.join(format!("{id}.tar"));
    let tmp = s.archives.join(format!(".{id}.tar.tmp"));
    // An archive for the cache stays in the clear there (reel-write seals
    // it on its way to tape); one for stdout leaves sealed.
    let sealed_for = s.sealed_for.get(&header.stream).filter(|_| s.raw);
    let sink = match (s.raw, sealed_for) {
        (true, None) => Sink::Stream(Box::new(std::io::BufWriter::with_capacity(
            4 << 20,
            std::io::stdout(),
        ))),
        (false, None) => {
            Sink::File(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?)
        }
        (_, Some(recipients)) => {
            use std::os::fd::AsFd;
            let out = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
            Sink::Sealed(Box::new(crate::archive::seal::Sealer::new(
                out, recipients,
            )?))
        }
    };
    let mut p = Packing {
        w: ArchiveWriter::new(sink),
        by_digest: HashMap::new(),
        pending: Vec::new(),
        written: HashSet::new(),
        bundles: HashMap::new(),
        lanes: None,
    };
    let members: Vec<&Record> = group.iter().map(|p| &records[p.index]).collect();
    let stamp = members.iter().map(|r| r.mtime_ns).max().unwrap_or(0);
    let text = readme(
        header,
        id,
        members.len(),
        data_bytes(records, group),
        s.block_size,
    );
    p.w.add_bytes(
        &Member::text("REEL-ARCHIVE.txt", text.len() as u64, stamp),
        text.as_bytes(),
    )?;
    let mut out: Vec<Record> = Vec::with_capacity(members.len());
    for (piece, r) in group.iter().zip(&members) {
        let mut rec = (*r).clone();
        if let Some(part) = piece.part {
            let (placed, digest) =
                write_part(&mut p.w, r, part, whole.entry(piece.index).or_default())?;
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
            EntryType::File | EntryType::Hardlink => p.file(r, &mut rec)?,
            _ => p.w.add_bytes(&member(r, dataless_kind(r)), &[])?,
        };
        p.written.insert(r.path.clone());
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
    p.w.add_bytes(
        &Member::text("REEL-INDEX.jsonl", index.len() as u64, stamp),
        &index,
    )?;
    let Finished {
        sink,
        size,
        digests,
    } = p.w.finish(s.block_size)?;
    for (ticket, cache, expected) in p.pending {
        check_digest(&cache, digests.get(&ticket).copied(), expected)?;
    }
    if let Some(lanes) = p.lanes {
        lanes.check()?;
    }
    if let Sink::Stream(mut st) = sink {
        st.flush()?;
    }
    let mut h = packed_header(header, id, &final_path, size, s.block_size);
    if let Some(r) = sealed_for {
        h.extra.insert("recipients".into(), r.fingerprints().into());
    }
    Ok((h, out, tmp, final_path))
}
