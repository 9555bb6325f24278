//! Tape journals: `<catalog>/tapes/<LABEL>.jsonl`, the append-only record
//! of every member verified on that tape — the truth the catalog index is
//! derived from (docs/catalog.md §4).
//!
//! Format `journal/1`, JSON Lines like manifests: a header line
//! `{"reel":"journal/1","tape":"T00001L9","created":"…"}`, then one line per
//! verified member: a manifest record (with `tape`, `file`, `block` and
//! `sha256`) plus `"stream"` and `"verified"` (RFC 3339 UTC). Lines are only
//! ever appended, under a lock, and fsync'd before the appender returns.
//! A last line without its newline is a crash in the middle of an append:
//! readers skip it, and the next append first cuts it off.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::CatalogError;
use crate::fsutil::lock_file;
use crate::manifest::{Record, parse_record_line};

pub const JOURNAL_FORMAT: &str = "journal/1";

/// One verified member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stream: String,
    /// When it was verified, RFC 3339 UTC.
    pub verified: String,
    pub record: Record,
}

impl Entry {
    /// When this version's content was taken from its source (ns since the
    /// epoch): the record's `taken_ns`, written by reel-stage; for entries
    /// from before reel recorded it, when it was verified.
    pub fn taken_ns(&self) -> i64 {
        self.record
            .taken_ns
            .or_else(|| crate::time::rfc3339_ns(&self.verified))
            .unwrap_or(i64::MIN)
    }

    /// Which version (and part) of which path this is a copy of: every
    /// tape holding it has an entry with the same value.
    pub fn version_part(&self) -> (String, PathBuf, i64, Option<u32>) {
        (
            self.stream.clone(),
            self.record.path.clone(),
            self.taken_ns(),
            self.record.part,
        )
    }

    /// What orders the versions of a path, newest last: when each was
    /// taken from the source, never when it happened to be verified (a
    /// killed run, or tapes verified in tape order, can verify an older
    /// version last). An unsigned key with the order of `taken_ns`.
    pub fn version_key(&self) -> u64 {
        (self.taken_ns() as u64) ^ (1 << 63)
    }
}

/// The journal file of tape `label`.
pub fn journal_path(catalog: &Path, label: &str) -> PathBuf {
    catalog.join("tapes").join(format!("{label}.jsonl"))
}

/// The members a tape's journal records, by (tape file, path): what reel-verify
/// and `reel catalog import` never record twice.
pub fn recorded(
    catalog: &Path,
    label: &str,
) -> Result<std::collections::HashSet<(u64, PathBuf)>, CatalogError> {
    let path = journal_path(catalog, label);
    let mut seen = std::collections::HashSet::new();
    if path.exists() {
        read(&path, |e| {
            if let Some(f) = e.record.file {
                seen.insert((f, e.record.path));
            }
            Ok(())
        })?;
    }
    Ok(seen)
}

/// The journals in `<catalog>/tapes/`, sorted by name.
pub fn journals(catalog: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let dir = catalog.join("tapes");
    let mut out = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(CatalogError::io(&dir, e)),
    };
    for e in entries {
        let path = e.map_err(|e| CatalogError::io(&dir, e))?.path();
        if path.extension().is_some_and(|x| x == "jsonl") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn entry_line(e: &Entry) -> Vec<u8> {
    let mut value = serde_json::to_value(&e.record).expect("records serialize");
    let map = value.as_object_mut().expect("a record is an object");
    map.insert("stream".into(), json!(e.stream));
    map.insert("verified".into(), json!(e.verified));
    let mut line = serde_json::to_vec(&value).expect("json serializes");
    line.push(b'\n');
    line
}

/// Append verified members to tape `label`'s journal and fsync it.
pub fn append(catalog: &Path, label: &str, entries: &[Entry]) -> Result<(), CatalogError> {
    // The label names the file: never a path elsewhere (a forged manifest
    // or tape).
    let path = journal_path(catalog, super::tapes::checked(label)?);
    let dir = path.parent().expect("journal has a parent");
    fs::create_dir_all(dir).map_err(|e| CatalogError::io(dir, e))?;
    let lock_path = path.with_extension("lock");
    let _lock = lock_file(&lock_path, true).map_err(|e| CatalogError::io(&lock_path, e))?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(&path)
        .map_err(|e| CatalogError::io(&path, e))?;
    let mut len = file
        .metadata()
        .map_err(|e| CatalogError::io(&path, e))?
        .len();
    if len > 0 {
        // Cut off a torn last line left by a crash.
        let keep = complete_length(&mut file, len).map_err(|e| CatalogError::io(&path, e))?;
        if keep < len {
            file.set_len(keep).map_err(|e| CatalogError::io(&path, e))?;
            len = keep;
        }
    }
    let mut out = Vec::new();
    // A new journal, or one whose header itself was torn: write the header.
    if len == 0 {
        let header = json!({"reel": JOURNAL_FORMAT, "tape": label, "created": crate::time::Utc::now().rfc3339()});
        out.extend(serde_json::to_vec(&header).expect("json serializes"));
        out.push(b'\n');
    }
    for e in entries {
        if e.record.tape.as_deref() != Some(label) {
            return Err(CatalogError::Invalid(format!(
                "{}: a member of tape {:?} cannot go into the journal of {label}",
                e.record.path.display(),
                e.record.tape
            )));
        }
        out.extend(entry_line(e));
    }
    file.seek(SeekFrom::End(0))
        .map_err(|e| CatalogError::io(&path, e))?;
    file.write_all(&out)
        .map_err(|e| CatalogError::io(&path, e))?;
    // The one fsync scripts/powercut-vm removes on purpose (the feature
    // `unsynced-journal`, never in a build anyone runs) to prove that its
    // power cuts find a missing one.
    #[cfg(not(feature = "unsynced-journal"))]
    file.sync_data().map_err(|e| CatalogError::io(&path, e))?;
    if len == 0 {
        crate::fsutil::sync_dir(dir).map_err(|e| CatalogError::io(dir, e))?;
    }
    Ok(())
}

/// The length of the file up to and including its last newline.
fn complete_length(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut pos = len;
    let mut buf = [0u8; 4096];
    while pos > 0 {
        let n = (pos as usize).min(buf.len());
        file.seek(SeekFrom::Start(pos - n as u64))?;
        std::io::Read::read_exact(file, &mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(pos - n as u64 + i as u64 + 1);
        }
        pos -= n as u64;
    }
    Ok(0)
}

/// Read a journal from the start; calls `each` for every entry. Returns the
/// number of bytes of complete lines read (a torn last line is not counted
/// and not passed on).
pub fn read(
    path: &Path,
    each: impl FnMut(Entry) -> Result<(), CatalogError>,
) -> Result<u64, CatalogError> {
    read_from(path, 0, each)
}

/// Read a journal from byte `offset` (0, or the end of a complete line:
/// what an earlier read returned); returns the bytes of complete lines read
/// from there. Line numbers in errors are the lines' real numbers in the
/// file.
pub fn read_from(
    path: &Path,
    offset: u64,
    mut each: impl FnMut(Entry) -> Result<(), CatalogError>,
) -> Result<u64, CatalogError> {
    read_lines(path, offset, |e, _| each(e))
}

/// Like `read_from`, with each entry's line's byte offset in the file.
pub fn read_lines(
    path: &Path,
    offset: u64,
    mut each: impl FnMut(Entry, u64) -> Result<(), CatalogError>,
) -> Result<u64, CatalogError> {
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(|e| CatalogError::io(path, e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| CatalogError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut consumed = 0u64;
    // Past the start, the header line is behind us.
    let mut line_no = u64::from(offset > 0);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| CatalogError::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.last() != Some(&b'\n') {
            log::warn!("{name}:{line_no}: ignoring a torn last line (a crash during an append)");
            break;
        }
        consumed += n as u64;
        let text = &line[..line.len() - 1];
        if line_no == 1 {
            let header: serde_json::Value =
                serde_json::from_slice(text).map_err(|e| CatalogError::Line {
                    file: name.clone(),
                    line: 1,
                    message: e.to_string(),
                })?;
            if header["reel"] != JOURNAL_FORMAT {
                return Err(CatalogError::Line {
                    file: name,
                    line: 1,
                    message: format!("not a {JOURNAL_FORMAT} journal"),
                });
            }
            continue;
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |message: String| CatalogError::Line {
            file: name.clone(),
            // Counted from `offset`, whose line is 2 here: the real number
            // needs the lines before it, counted only now that it is wanted.
            line: if offset > 0 {
                lines_before(path, offset) + line_no - 1
            } else {
                line_no
            },
            message,
        };
        let (record, stream, verified) = parse_record_line(text).map_err(bad)?;
        let stream = stream.ok_or_else(|| bad("entry has no \"stream\"".into()))?;
        let verified = verified.ok_or_else(|| bad("entry has no \"verified\"".into()))?;
        each(
            Entry {
                stream,
                verified,
                record,
            },
            offset + consumed - n as u64,
        )?;
    }
    Ok(consumed)
}

/// How many lines end before byte `offset` of `path` (for messages).
fn lines_before(path: &Path, offset: u64) -> u64 {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut reader = BufReader::new(std::io::Read::take(file, offset));
    let mut n = 0;
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) | Err(_) => return n,
            Ok(buf) => buf,
        };
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let len = buf.len();
        reader.consume(len);
    }
}

/// The entry on the line starting at byte `offset` of a journal (an offset
/// `read_lines` gave).
pub fn entry_at(path: &Path, offset: u64) -> Result<Entry, CatalogError> {
    let mut file = File::open(path).map_err(|e| CatalogError::io(path, e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| CatalogError::io(path, e))?;
    let mut line = Vec::new();
    BufReader::new(file)
        .read_until(b'\n', &mut line)
        .map_err(|e| CatalogError::io(path, e))?;
    let bad = |message: String| CatalogError::Line {
        file: path.display().to_string(),
        line: lines_before(path, offset) + 1,
        message,
    };
    let text = line
        .strip_suffix(b"\n")
        .ok_or_else(|| bad("no whole line here".into()))?;
    let (record, stream, verified) = parse_record_line(text).map_err(bad)?;
    Ok(Entry {
        stream: stream.ok_or_else(|| bad("entry has no \"stream\"".into()))?,
        verified: verified.ok_or_else(|| bad("entry has no \"verified\"".into()))?,
        record,
    })
}
