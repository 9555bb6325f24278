//! A tape's own account of what it holds, for disaster recovery without the
//! catalog directory (`reel-restore --from-tape`).
//!
//! The tar headers on tape are the truth; the tape's closing
//! `REEL-TAPE.jsonl` and each archive's `REEL-INDEX.jsonl` only make finding
//! things fast. So: the closing catalog is read first, when the tape has one
//! (its last file); else each archive's index, found in the archive's last
//! blocks (the head spaces over the rest). The headers of the members asked
//! for are then read where the catalog or index puts them; an archive whose
//! index is missing or has a damaged line, or where a header disagrees with
//! its line, is walked header by header (`archive::parse::walk`), and its
//! members are what the headers say (with the digest of an index line that
//! agrees). A damaged header loses its member only. Every record comes back
//! with its tape, tape file and block; what was read how, and what was
//! lost, is said in `notes` and `lost`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::archive::parse::{self, At, Found, Parsed, Walked};
use crate::archive::sealed::{CountedReader, Identities, OpenError};
use crate::tape::stream::TapeFileCursor;

/// An archive as this module reads it: a clear tape file, or the
/// plaintext of a sealed one; and the tape block a member at an offset is
/// found from.
trait Archive: At {
    fn block_size(&self) -> u64;
    fn blocks(&self) -> u64 {
        self.len().div_ceil(self.block_size().max(1))
    }
    /// The block a record of the member at `offset` names.
    fn block_of(&self, offset: u64) -> u64;
}

impl Archive for TapeFile<'_> {
    fn block_size(&self) -> u64 {
        self.block_size
    }
    fn blocks(&self) -> u64 {
        self.blocks
    }
    fn block_of(&self, offset: u64) -> u64 {
        self.start + offset / self.block_size
    }
}

/// A sealed archive's plaintext, read through age's seekable reader.
struct SealedArchive<'a> {
    plain: age::stream::StreamReader<CountedReader<TapeFileCursor<'a>>>,
    len: u64,
    start: u64,
    block_size: u64,
}

impl At for SealedArchive<'_> {
    fn read_at(&mut self, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        if at.checked_add(len as u64).is_none_or(|end| end > self.len) {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        self.plain.seek(SeekFrom::Start(at))?;
        let mut out = vec![0; len];
        self.plain.read_exact(&mut out)?;
        Ok(out)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

impl Archive for SealedArchive<'_> {
    fn block_size(&self) -> u64 {
        self.block_size
    }
    /// Its members are found from its first block.
    fn block_of(&self, _: u64) -> u64 {
        self.start
    }
}
use crate::manifest::{Record, parse_record};
use crate::tape::Drive;
use crate::tape::label::Label;
use crate::tape::stream::{FileEnd, TapeFile};

/// What a tape says it holds.
#[derive(Debug, Default)]
pub struct TapeCatalog {
    pub records: Vec<Record>,
    /// Tape files holding a copy cut by the early warning, or cut short:
    /// members past the cut are listed but not there.
    pub cut: BTreeSet<u64>,
    /// How each part was read (for the log).
    pub notes: Vec<String>,
    /// Damage read around: index lines that do not parse, headers that
    /// disagree with the index (the headers are read instead).
    pub warnings: Vec<String>,
    /// Damage that lost members: places in archives that are no member.
    pub lost: Vec<String>,
}

/// The closing catalog's lines, by tape file.
#[derive(Default)]
struct Closing {
    /// Archive tape file → its start block and whether it is a cut copy.
    archives: BTreeMap<u64, (u64, bool)>,
    members: BTreeMap<u64, Vec<Record>>,
    /// Tape files with a line that did not parse.
    damaged: BTreeSet<u64>,
    /// Where the closing catalog's own tape file starts.
    start: u64,
}

/// One of reel's own members rather than a backed-up file: the
/// `REEL-ARCHIVE.txt` that opens an archive, the `REEL-INDEX.jsonl` that
/// ends it (the end marker follows).
fn is_reel_own(p: &Parsed, tf: &mut dyn Archive) -> bool {
    (p.offset == 0 && p.path == b"REEL-ARCHIVE.txt")
        || (p.path == b"REEL-INDEX.jsonl"
            && tf
                .read_at(p.next(), 1024)
                .is_ok_and(|z| z.iter().all(|&b| b == 0)))
}

/// The member named `name` that ends an archive (the last member before
/// the end marker), searched for in the archive's last blocks only.
fn last_member(tf: &mut dyn Archive, name: &[u8]) -> Option<(Parsed, Vec<u8>)> {
    let bs = tf.block_size();
    let blocks = tf.blocks();
    let mut k = 4u64;
    loop {
        let k_now = k.min(blocks);
        let from = (blocks - k_now) * bs;
        let mut found = None;
        let mut at = from;
        while at + 512 <= tf.len() {
            if let Ok(h) = tf.read_at(at, 512)
                && parse::is_header(&h)
                && let Ok(Found::Member(m)) = parse::member_at(tf, at)
                && m.path == name
            {
                // The last one is the archive's own (an earlier one of that
                // name would be a member's data looking like a header).
                found = Some(*m);
            }
            at += 512;
        }
        if let Some(m) = found {
            let data = tf.read_at(m.data_offset, m.size as usize).ok()?;
            return Some((m, data));
        }
        if k_now == blocks {
            return None;
        }
        k *= 4;
    }
}

/// A line of a closing catalog or an index: its number, its JSON, and the
/// record it holds (none for the header and archive lines).
type Line = (u64, serde_json::Value, Option<Record>);

/// The lines of JSON Lines text (a closing catalog or an index) that
/// parse, and the numbers of those that do not.
fn records(text: &[u8]) -> (Vec<Line>, Vec<u64>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, l) in text.split(|&b| b == b'\n').enumerate() {
        if l.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = i as u64 + 1;
        match serde_json::from_slice::<serde_json::Value>(l) {
            Ok(v)
                if v["type"] == "archive"
                    || v.get("reel").is_some()
                    || v.get("format").is_some() =>
            {
                out.push((line, v, None));
            }
            Ok(v) => match parse_record(l) {
                Ok(r) => out.push((line, v, Some(r))),
                Err(_) => bad.push(line),
            },
            Err(_) => bad.push(line),
        }
    }
    (out, bad)
}

/// The tape's closing `REEL-TAPE.jsonl`, if it has one.
fn read_closing(drive: &mut dyn Drive, label: &Label, cat: &mut TapeCatalog) -> Option<Closing> {
    drive.end_of_data().ok()?;
    drive.back_filemarks(2).ok()?;
    drive.forward_filemarks(1).ok()?;
    let bs = u64::from(label.block_size.max(1));
    let start = drive.position().ok()?;
    let (mut tf, _) = TapeFile::measure(drive, bs).ok()??;
    let (_, text) = last_member(&mut tf, b"REEL-TAPE.jsonl")?;
    let (lines, bad) = records(&text);
    let first = lines.first()?;
    if first.1["format"] != "reel-tape/1" {
        return None;
    }
    let mut c = Closing::default();
    let mut current = None;
    for (_, v, r) in &lines[1..] {
        match r {
            None if v["type"] == "archive" => {
                current = v["file"].as_u64();
                if let (Some(f), Some(b)) = (current, v["start_block"].as_u64()) {
                    c.archives.insert(f, (b, v["partial"] == true));
                }
            }
            None => {}
            Some(r) => {
                if let Some(f) = r.file.or(current) {
                    c.members.entry(f).or_default().push(r.clone());
                }
            }
        }
    }
    // A bad line belongs to the archive whose line came before it.
    for line in bad {
        let file = lines
            .iter()
            .filter(|(l, v, _)| *l < line && v["type"] == "archive")
            .filter_map(|(_, v, _)| v["file"].as_u64())
            .next_back();
        cat.warnings.push(format!(
            "REEL-TAPE.jsonl line {line} does not parse{}",
            file.map(|f| format!(": tape file {f} is read from its headers"))
                .unwrap_or_default()
        ));
        if let Some(f) = file {
            c.damaged.insert(f);
        }
    }
    c.start = start;
    Some(c)
}

/// What is recorded of a member, from the header that is the truth.
fn from_header(p: &Parsed, tape: &str, file: u64, block: u64) -> Record {
    let entry = p.entry;
    let mut r = Record::new(PathBuf::from(OsString::from_vec(p.path.clone())), entry);
    r.size = match (p.part, p.total) {
        (Some(_), Some(total)) => total,
        _ => p.size,
    };
    r.mtime_ns = p.mtime_ns;
    r.mode = p.mode;
    r.uid = p.uid;
    r.gid = p.gid;
    r.user.clone_from(&p.user);
    r.group.clone_from(&p.group);
    r.link = p.link.clone().map(|l| PathBuf::from(OsString::from_vec(l)));
    r.rdev = p.rdev;
    r.offset = Some(p.offset);
    r.data_offset = Some(p.data_offset);
    r.part = p.part;
    r.part_offset = p.part_offset;
    r.part_len = p.part.map(|_| p.size);
    r.tape = Some(tape.to_string());
    r.file = Some(file);
    r.block = Some(block);
    r
}

/// Does the header at a record's offset say what the record says?
fn agrees(tf: &mut dyn Archive, r: &Record) -> Result<(), String> {
    let offset = r.offset.ok_or("no offset")?;
    let p = match parse::member_at(tf, offset) {
        Ok(Found::Member(p)) => p,
        Ok(Found::End) => {
            return Err(format!(
                "nothing at byte {offset} but the end of the archive"
            ));
        }
        Err(bad) => return Err(bad.why),
    };
    if p.path != r.path.as_os_str().as_bytes() {
        return Err(format!(
            "the header at byte {offset} is of {:?}",
            String::from_utf8_lossy(&p.path)
        ));
    }
    if p.entry != r.entry || Some(p.data_offset) != r.data_offset {
        return Err(format!(
            "the header at byte {offset} disagrees on its type or data"
        ));
    }
    if r.part.is_none() && r.entry == crate::manifest::EntryType::File && p.size != r.size {
        return Err(format!(
            "the header at byte {offset} says {} bytes, the index {}",
            p.size, r.size
        ));
    }
    if r.part.is_some() && r.part_len.is_some_and(|len| len != p.size) {
        return Err(format!(
            "the header at byte {offset} says a part of {} bytes, the index {}",
            p.size,
            r.part_len.unwrap_or(0)
        ));
    }
    let link = r.link.as_ref().map(|l| l.as_os_str().as_bytes().to_vec());
    if p.link.is_some() && p.link != link {
        return Err(format!("the header at byte {offset} links elsewhere"));
    }
    if (p.mode, p.uid, p.gid, p.mtime_ns, p.part, p.part_offset)
        != (
            r.mode & 0o7777,
            r.uid,
            r.gid,
            r.mtime_ns,
            r.part,
            r.part_offset,
        )
    {
        return Err(format!(
            "the header at byte {offset} disagrees on its metadata"
        ));
    }
    Ok(())
}

/// Every member the tape holds that `wanted` selects, each with its tape,
/// tape file and block.
pub fn read(
    drive: &mut dyn Drive,
    label: &Label,
    wanted: &dyn Fn(&Record) -> bool,
    identities: Option<&Identities>,
) -> anyhow::Result<TapeCatalog> {
    let mut cat = TapeCatalog::default();
    let bs = u64::from(label.block_size.max(1));
    let closing = read_closing(drive, label, &mut cat);
    match &closing {
        Some(c) => cat.notes.push(format!(
            "its closing REEL-TAPE.jsonl lists {} archive(s)",
            c.archives.len()
        )),
        None => cat
            .notes
            .push("no closing REEL-TAPE.jsonl: each archive's own index".into()),
    }
    drive.rewind()?;
    drive.forward_filemarks(1)?; // past the label
    let mut counts = (0, 0);
    for file in 1u64.. {
        let Some((mut tf, end)) = TapeFile::measure(drive, bs)? else {
            break;
        };
        let next = tf.next_file();
        if closing.as_ref().is_some_and(|c| c.start == tf.start) {
            break; // the closing catalog itself
        }
        let sealed = tf
            .read_at(0, crate::archive::sealed::MAGIC.len())
            .is_ok_and(|b| crate::archive::sealed::is_sealed(&b));
        let list = if sealed {
            // A tape holding sealed archives has no closing catalog: the
            // sealed index is read through the host's identity.
            match open_sealed(tf, identities) {
                Ok(mut a) => list_archive(&mut a, file, label, None, &mut cat, wanted, &mut counts),
                Err(why) => {
                    cat.warnings.push(format!(
                        "tape file {file} is a sealed archive (age) that cannot be opened here: {why}"
                    ));
                    Vec::new()
                }
            }
        } else {
            let from_closing = closing.as_ref().and_then(|c| {
                let (start, partial) = *c.archives.get(&file)?;
                if c.damaged.contains(&file) || start != tf.start {
                    return None;
                }
                if partial {
                    cat.cut.insert(file);
                }
                Some(c.members.get(&file).cloned().unwrap_or_default())
            });
            list_archive(
                &mut tf,
                file,
                label,
                from_closing,
                &mut cat,
                wanted,
                &mut counts,
            )
        };
        cat.records.extend(list.into_iter().filter(|r| wanted(r)));
        if end == FileEnd::EndOfData {
            break;
        }
        drive.seek(next)?;
    }
    cat.notes.push(format!(
        "{} archive(s) found through their index, {} read header by header",
        counts.0, counts.1
    ));
    Ok(cat)
}

/// A sealed tape file opened with `identities`: its plaintext.
fn open_sealed<'a>(
    tf: TapeFile<'a>,
    identities: Option<&Identities>,
) -> Result<SealedArchive<'a>, String> {
    use std::io::{Seek, SeekFrom};
    let ids =
        identities.ok_or("no identity: set `identity` in its [[archive_key]] (and --config)")?;
    let (start, block_size) = (tf.start, tf.block_size);
    let (input, _) = CountedReader::new(TapeFileCursor::new(tf));
    let mut plain = ids.open(input).map_err(|e| match e {
        OpenError::NotMine(m) | OpenError::Damaged(m) => m,
    })?;
    let len = plain
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("its length: {e}"))?;
    Ok(SealedArchive {
        plain,
        len,
        start,
        block_size,
    })
}

/// The members of one archive: from the closing catalog's list or the
/// archive's index when the headers asked for agree, else from its
/// headers. `counts`: archives found through an index, and walked.
fn list_archive(
    tf: &mut dyn Archive,
    file: u64,
    label: &Label,
    from_closing: Option<Vec<Record>>,
    cat: &mut TapeCatalog,
    wanted: &dyn Fn(&Record) -> bool,
    counts: &mut (u64, u64),
) -> Vec<Record> {
    // The index: every line must parse.
    let listed: Option<Vec<Record>> = match from_closing {
        Some(list) => Some(list),
        None => match last_member(tf, b"REEL-INDEX.jsonl") {
            Some((_, text)) => {
                let (lines, bad) = records(&text);
                for line in &bad {
                    cat.warnings.push(format!(
                        "tape file {file}: REEL-INDEX.jsonl line {line} does not parse: the archive is read from its headers"
                    ));
                }
                let list: Vec<Record> = lines.into_iter().filter_map(|(_, _, r)| r).collect();
                bad.is_empty().then_some(list)
            }
            None => None,
        },
    };
    let list = match listed {
        Some(mut list) => {
            for r in &mut list {
                r.tape = Some(label.label.clone());
                r.file = Some(file);
                r.block = Some(tf.block_of(r.offset.unwrap_or(0)));
            }
            // The headers of what is asked for must say the same.
            let mut disagree = None;
            for r in list.iter().filter(|r| wanted(r)) {
                let past_cut =
                    cat.cut.contains(&file) && r.data_offset.unwrap_or(0) + r.size > tf.len();
                if past_cut {
                    continue;
                }
                if let Err(why) = agrees(tf, r) {
                    disagree = Some(format!("{}: {why}", r.path.display()));
                    break;
                }
            }
            match disagree {
                None => {
                    counts.0 += 1;
                    Some(list)
                }
                Some(why) => {
                    cat.warnings.push(format!(
                        "tape file {file}: a header disagrees with the index ({why}): the archive is read from its headers"
                    ));
                    None
                }
            }
        }
        None => None,
    };
    match list {
        Some(list) => list,
        None => {
            counts.1 += 1;
            walk_archive(tf, &label.label, file, cat)
        }
    }
}

/// The members of one archive, from its headers; the digests (and the
/// time each was taken) from the index lines that agree with a header.
fn walk_archive(tf: &mut dyn Archive, tape: &str, file: u64, cat: &mut TapeCatalog) -> Vec<Record> {
    // What the index says, where it can be read at all, by offset.
    let index: BTreeMap<u64, Record> = last_member(tf, b"REEL-INDEX.jsonl")
        .map(|(_, text)| {
            records(&text)
                .0
                .into_iter()
                .filter_map(|(_, _, r)| r)
                .filter_map(|r| Some((r.offset?, r)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut ended = false;
    let walked = parse::walk(tf);
    let count = walked.len();
    for (i, w) in walked.into_iter().enumerate() {
        match w {
            Walked::Member(p) => {
                if is_reel_own(&p, tf) {
                    ended |= p.path == b"REEL-INDEX.jsonl";
                    continue;
                }
                let block = tf.block_of(p.offset);
                let mut r = from_header(&p, tape, file, block);
                if let Some(ix) = index.get(&p.offset)
                    && ix.path == r.path
                    && ix.data_offset == r.data_offset
                {
                    r.sha256 = ix.sha256;
                    r.taken_ns = ix.taken_ns;
                    if r.entry == crate::manifest::EntryType::Hardlink {
                        r.size = ix.size;
                    }
                }
                out.push(r);
            }
            Walked::Damage { at, why, resumed } => {
                let last = i + 1 == count;
                if last && resumed.is_none() {
                    cat.cut.insert(file);
                }
                cat.lost.push(format!(
                    "tape file {file}, byte {at}: {why}; {}",
                    match resumed {
                        Some(next) =>
                            format!("that member is lost, the walk goes on at byte {next}"),
                        None => "nothing more of this archive can be read".into(),
                    }
                ));
            }
        }
    }
    if !ended {
        cat.notes.push(format!(
            "tape file {file} has no index at its end (a copy cut short?)"
        ));
    }
    out
}
