//! The header and record types and their exact JSON shape.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The value of the header's `"reel"` key for this version of the format.
pub const MANIFEST_FORMAT: &str = "manifest/1";

/// Which step of the pipeline a manifest describes; also the name of the
/// spool queue it sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Scanned,
    Staged,
    Packed,
    Written,
    Verified,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Scanned,
        Kind::Staged,
        Kind::Packed,
        Kind::Written,
        Kind::Verified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Scanned => "scanned",
            Kind::Staged => "staged",
            Kind::Packed => "packed",
            Kind::Written => "written",
            Kind::Verified => "verified",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown manifest kind {s:?}"))
    }
}

/// The first line of every manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub kind: Kind,
    pub stream: String,
    /// The item id, `<stream>-<yyyymmddThhmmss>-<seq>` or derived from one.
    pub id: String,
    /// RFC 3339 UTC.
    pub created: String,
    /// Further header fields a stage adds (for example the archive's size
    /// and digest in a `packed` manifest); kept in order and passed on.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Header {
    pub fn new(kind: Kind, stream: &str, id: &str) -> Self {
        Header {
            kind,
            stream: stream.to_string(),
            id: id.to_string(),
            created: crate::time::Utc::now().rfc3339(),
            extra: serde_json::Map::new(),
        }
    }
}

impl Serialize for Header {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5 + self.extra.len()))?;
        m.serialize_entry("reel", MANIFEST_FORMAT)?;
        m.serialize_entry("kind", &self.kind)?;
        m.serialize_entry("stream", &self.stream)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("created", &self.created)?;
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// What kind of file-system entry a record describes (`type` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
    Char,
    Block,
}

/// A SHA-256 digest, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("sha256 must be 64 hex digits, got {s:?}");
        if s.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| bad())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
        }
        Ok(Digest(out))
    }
}

/// One file-system entry as it moves through the pipeline. Fields are filled
/// in as it goes: `sha256` and `cache` by reel-stage, `archive`, `offset` and
/// `data_offset` by reel-pack, `tape`, `file` and `block` by reel-write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Relative to the stream's source root; never absolute, never `..`.
    pub path: PathBuf,
    pub entry: EntryType,
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Symlink target, or for a hard link the path of the first link.
    pub link: Option<PathBuf>,
    /// Device number of a `char` or `block` special file.
    pub rdev: Option<u64>,
    pub sha256: Option<Digest>,
    /// Where the staged copy lives in the cache.
    pub cache: Option<PathBuf>,
    /// A small file staged into a bundle (one cache file holding many
    /// files' content, one after another): `cache` is the bundle and the
    /// content is its `size` bytes from here.
    pub cache_offset: Option<u64>,
    pub archive: Option<String>,
    pub offset: Option<u64>,
    pub data_offset: Option<u64>,
    pub tape: Option<String>,
    pub file: Option<u64>,
    pub block: Option<u64>,
    /// A file larger than a tape is split into parts, one archive each:
    /// this record is part `part` (from 1), holding the bytes from
    /// `part_offset` of the whole file, whose size is `size`.
    pub part: Option<u32>,
    pub part_offset: Option<u64>,
    /// A part's length in bytes: with `part_offset` and `size`, what tells
    /// whether the parts of a version make the whole file.
    pub part_len: Option<u64>,
    /// When reel-stage took this content from the source (ns since the
    /// epoch): what orders the versions of a path, whenever each happened
    /// to be verified.
    pub taken_ns: Option<i64>,
    /// The device and inode the scan found the entry at: reel-stage copies
    /// only that very file (a path swapped meanwhile is another file).
    pub dev: Option<u64>,
    pub ino: Option<u64>,
}

impl Record {
    /// A record with only the path and type set.
    pub fn new(path: impl Into<PathBuf>, entry: EntryType) -> Self {
        Record {
            path: path.into(),
            entry,
            size: 0,
            mtime_ns: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            link: None,
            rdev: None,
            sha256: None,
            cache: None,
            cache_offset: None,
            archive: None,
            offset: None,
            data_offset: None,
            tape: None,
            file: None,
            block: None,
            part: None,
            part_offset: None,
            part_len: None,
            taken_ns: None,
            dev: None,
            ino: None,
        }
    }

    /// The bytes of content this record carries: a part's length, else
    /// the size.
    pub fn bytes(&self) -> u64 {
        match (self.part, self.part_len) {
            (Some(_), Some(len)) => len,
            _ => self.size,
        }
    }

    /// Whether this copy reaches the end of its file: not a part, or the
    /// last part (a part recorded without its length counts as one).
    pub fn ends_file(&self) -> bool {
        match (self.part, self.part_offset, self.part_len) {
            (Some(_), Some(offset), Some(len)) => offset.saturating_add(len) == self.size,
            _ => true,
        }
    }

    /// Check what a reader must refuse: an unsafe path, a link without a
    /// target, a part outside its file.
    pub fn validate(&self) -> Result<(), String> {
        check_relative_path("path", &self.path)?;
        match self.entry {
            EntryType::Symlink | EntryType::Hardlink if self.link.is_none() => {
                return Err(format!("a {:?} record needs a \"link\"", self.entry).to_lowercase());
            }
            EntryType::Hardlink => {
                check_relative_path("link", self.link.as_deref().unwrap_or(Path::new("")))?
            }
            _ => {}
        }
        if self.link.as_ref().is_some_and(|l| l.as_os_str().is_empty()) {
            return Err("\"link\" is empty".into());
        }
        if self.part == Some(0) {
            return Err("\"part\" counts from 1".into());
        }
        if let Some(at) = self.cache_offset {
            if self.cache.is_none() {
                return Err("\"cache_offset\" without \"cache\"".into());
            }
            if !matches!(self.entry, EntryType::File | EntryType::Hardlink) || self.part.is_some() {
                return Err("\"cache_offset\" is for a whole file".into());
            }
            if at.checked_add(self.size).is_none() {
                return Err(format!(
                    "\"cache_offset\" {at} and \"size\" {} overflow",
                    self.size
                ));
            }
        }
        let end = self
            .part_offset
            .unwrap_or(0)
            .checked_add(self.part_len.unwrap_or(0));
        if end.is_none_or(|end| end > self.size) {
            return Err(format!(
                "the part at {} of {} bytes lies outside the file's {} bytes",
                self.part_offset.unwrap_or(0),
                self.part_len.unwrap_or(0),
                self.size
            ));
        }
        Ok(())
    }
}

fn check_relative_path(field: &str, p: &Path) -> Result<(), String> {
    let bytes = p.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(format!("\"{field}\" is empty"));
    }
    if bytes[0] == b'/' {
        return Err(format!(
            "\"{field}\" must be relative to the stream's source root"
        ));
    }
    if bytes.contains(&0) {
        return Err(format!("\"{field}\" contains a NUL byte"));
    }
    if bytes.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err(format!("\"{field}\" must not contain \"..\""));
    }
    Ok(())
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        path_entry(&mut m, "path", "path_b64", &self.path)?;
        m.serialize_entry("type", &self.entry)?;
        m.serialize_entry("size", &self.size)?;
        m.serialize_entry("mtime_ns", &self.mtime_ns)?;
        m.serialize_entry("mode", &self.mode)?;
        m.serialize_entry("uid", &self.uid)?;
        m.serialize_entry("gid", &self.gid)?;
        opt_entry(&mut m, "user", &self.user)?;
        opt_entry(&mut m, "group", &self.group)?;
        if let Some(link) = &self.link {
            path_entry(&mut m, "link", "link_b64", link)?;
        }
        opt_entry(&mut m, "rdev", &self.rdev)?;
        if let Some(d) = &self.sha256 {
            m.serialize_entry("sha256", &d.to_string())?;
        }
        if let Some(cache) = &self.cache {
            path_entry(&mut m, "cache", "cache_b64", cache)?;
        }
        opt_entry(&mut m, "cache_offset", &self.cache_offset)?;
        opt_entry(&mut m, "archive", &self.archive)?;
        opt_entry(&mut m, "offset", &self.offset)?;
        opt_entry(&mut m, "data_offset", &self.data_offset)?;
        opt_entry(&mut m, "tape", &self.tape)?;
        opt_entry(&mut m, "file", &self.file)?;
        opt_entry(&mut m, "block", &self.block)?;
        opt_entry(&mut m, "part", &self.part)?;
        opt_entry(&mut m, "part_offset", &self.part_offset)?;
        opt_entry(&mut m, "part_len", &self.part_len)?;
        opt_entry(&mut m, "taken_ns", &self.taken_ns)?;
        opt_entry(&mut m, "dev", &self.dev)?;
        opt_entry(&mut m, "ino", &self.ino)?;
        m.end()
    }
}

fn opt_entry<M: SerializeMap, T: Serialize>(
    m: &mut M,
    key: &str,
    value: &Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(v) => m.serialize_entry(key, v),
        None => Ok(()),
    }
}

fn path_entry<M: SerializeMap>(
    m: &mut M,
    key: &str,
    b64_key: &str,
    p: &Path,
) -> Result<(), M::Error> {
    let bytes = p.as_os_str().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(text) => m.serialize_entry(key, text),
        Err(_) => m.serialize_entry(b64_key, &B64.encode(bytes)),
    }
}

/// What one line may hold: a header or a record. Parsed in one pass; a
/// present `reel` key makes it a header.
#[derive(Deserialize)]
pub(crate) struct WireLine {
    reel: Option<String>,
    // Header fields.
    kind: Option<String>,
    stream: Option<String>,
    id: Option<String>,
    created: Option<String>,
    // Record fields.
    path: Option<String>,
    path_b64: Option<String>,
    #[serde(rename = "type")]
    entry: Option<EntryType>,
    size: Option<u64>,
    mtime_ns: Option<i64>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    user: Option<String>,
    group: Option<String>,
    link: Option<String>,
    link_b64: Option<String>,
    rdev: Option<u64>,
    sha256: Option<String>,
    cache: Option<String>,
    cache_b64: Option<String>,
    cache_offset: Option<u64>,
    archive: Option<String>,
    offset: Option<u64>,
    data_offset: Option<u64>,
    tape: Option<String>,
    file: Option<u64>,
    block: Option<u64>,
    part: Option<u32>,
    part_offset: Option<u64>,
    part_len: Option<u64>,
    taken_ns: Option<i64>,
    dev: Option<u64>,
    ino: Option<u64>,
    // Catalog journal fields (see catalog::journal).
    verified: Option<String>,
}

// Lines are moved once from the parser to the caller; boxing the record
// would cost an allocation per line on the hot path.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Line {
    Header(Header),
    Record(Record),
}

impl WireLine {
    /// Turn a parsed line into a header (keeping unknown header fields, for
    /// which the raw line is parsed again: headers are one line per manifest)
    /// or a validated record.
    pub(crate) fn into_line(self, raw: &[u8]) -> Result<Line, String> {
        if let Some(format) = self.reel {
            if format != MANIFEST_FORMAT {
                return Err(format!(
                    "unsupported manifest format {format:?} (this reel reads {MANIFEST_FORMAT:?})"
                ));
            }
            let need =
                |v: Option<String>, k: &str| v.ok_or_else(|| format!("header has no \"{k}\""));
            let kind: Kind = need(self.kind, "kind")?.parse()?;
            let mut extra: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(raw).map_err(|e| e.to_string())?;
            for k in ["reel", "kind", "stream", "id", "created"] {
                extra.remove(k);
            }
            let header = Header {
                kind,
                stream: need(self.stream, "stream")?,
                id: need(self.id, "id")?,
                created: need(self.created, "created")?,
                extra,
            };
            crate::spool::check_item_id(&header.id)?;
            return Ok(Line::Header(header));
        }
        self.into_record().map(|(r, _, _)| Line::Record(r))
    }

    /// A record line, with the journal's `stream` and `verified` fields if
    /// present.
    pub(crate) fn into_record(self) -> Result<(Record, Option<String>, Option<String>), String> {
        let record = Record {
            path: pick_path("path", self.path, self.path_b64)?
                .ok_or("record has no \"path\" (or \"path_b64\")")?,
            entry: self.entry.ok_or("record has no \"type\"")?,
            size: self.size.unwrap_or(0),
            mtime_ns: self.mtime_ns.unwrap_or(0),
            mode: self.mode.unwrap_or(0),
            uid: self.uid.unwrap_or(0),
            gid: self.gid.unwrap_or(0),
            user: self.user,
            group: self.group,
            link: pick_path("link", self.link, self.link_b64)?,
            rdev: self.rdev,
            sha256: self.sha256.map(|s| s.parse()).transpose()?,
            cache: pick_path("cache", self.cache, self.cache_b64)?,
            cache_offset: self.cache_offset,
            archive: self.archive,
            offset: self.offset,
            data_offset: self.data_offset,
            tape: self.tape,
            file: self.file,
            block: self.block,
            part: self.part,
            part_offset: self.part_offset,
            part_len: self.part_len,
            taken_ns: self.taken_ns,
            dev: self.dev,
            ino: self.ino,
        };
        record.validate()?;
        Ok((record, self.stream, self.verified))
    }
}

/// Parse one record line that may carry extra journal fields.
/// One record from a JSON line (an archive's `REEL-INDEX.jsonl`, say).
pub fn parse_record(raw: &[u8]) -> Result<Record, String> {
    parse_record_line(raw).map(|(r, _, _)| r)
}

pub(crate) fn parse_record_line(
    raw: &[u8],
) -> Result<(Record, Option<String>, Option<String>), String> {
    let wire: WireLine = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    if wire.reel.is_some() {
        return Err("a header line where a record was expected".into());
    }
    wire.into_record()
}

fn pick_path(
    key: &str,
    text: Option<String>,
    b64: Option<String>,
) -> Result<Option<PathBuf>, String> {
    match (text, b64) {
        (Some(_), Some(_)) => Err(format!("both \"{key}\" and \"{key}_b64\" are set")),
        (Some(t), None) => Ok(Some(PathBuf::from(t))),
        (None, Some(b)) => {
            let bytes = B64
                .decode(b.as_bytes())
                .map_err(|e| format!("\"{key}_b64\" is not valid base64: {e}"))?;
            Ok(Some(PathBuf::from(OsString::from_vec(bytes))))
        }
        (None, None) => Ok(None),
    }
}
