//! Reading archive headers back, for when a tape is all there is: the tar
//! headers are the truth about what an archive holds (its `REEL-INDEX.jsonl`
//! only makes finding things fast). Nothing read is trusted: sizes, offsets
//! and counts are checked against the archive's length; a header that does
//! not parse loses that member only, and the walk resynchronises on the
//! next block that is a valid ustar header, as GNU tar does.

use std::io;

use super::header::BLOCK;
use crate::manifest::EntryType;

/// Random access to the bytes of one archive (a tape file, a file, memory).
pub trait At {
    /// `len` bytes from `at`; an error when they are not all there.
    fn read_at(&mut self, at: u64, len: usize) -> io::Result<Vec<u8>>;
    /// How many bytes the archive has.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl At for &[u8] {
    fn read_at(&mut self, at: u64, len: usize) -> io::Result<Vec<u8>> {
        let from = usize::try_from(at).unwrap_or(usize::MAX);
        from.checked_add(len)
            .and_then(|to| self.get(from..to))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }

    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

/// A member as its headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Where its first header (the pax header, when it has one) starts.
    pub offset: u64,
    /// Where its data starts (just after its ustar header).
    pub data_offset: u64,
    pub path: Vec<u8>,
    pub entry: EntryType,
    /// Bytes of data after the header (files only).
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    pub mtime_ns: i64,
    pub link: Option<Vec<u8>>,
    pub rdev: Option<u64>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// reel's keys of a part of a split file: `REEL.part`, `REEL.offset`
    /// and `REEL.total`.
    pub part: Option<u32>,
    pub part_offset: Option<u64>,
    pub total: Option<u64>,
}

impl Parsed {
    /// Where the next member's header starts.
    pub fn next(&self) -> u64 {
        self.data_offset + padded(self.size)
    }
}

/// What is at an offset.
#[derive(Debug)]
pub enum Found {
    Member(Box<Parsed>),
    /// Zero blocks: the end of the archive.
    End,
}

fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// The largest pax header reel reads: real ones are a few KiB (a 4 KiB
/// alignment comment, long names, extended attributes).
const MAX_PAX: u64 = 16 << 20;

fn field(h: &[u8], from: usize, to: usize) -> &[u8] {
    let f = &h[from..to];
    &f[..f.iter().position(|&b| b == 0).unwrap_or(f.len())]
}

/// A numeric field: octal text (spaces and NULs around it), or GNU's
/// base-256 (high bit of the first byte set).
fn number(h: &[u8], from: usize, to: usize) -> Option<u64> {
    let f = &h[from..to];
    if f[0] & 0x80 != 0 {
        if f[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut v: u64 = u64::from(f[0] & 0x3f);
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(f).ok()?;
    let t = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if t.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(t, 8).ok()
}

/// Is this 512-byte block a ustar header with a correct checksum?
pub fn is_header(h: &[u8]) -> bool {
    h.len() == BLOCK && &h[257..262] == b"ustar" && checksum_matches(h)
}

/// Whether a 512-byte header's stored checksum is the sum of its bytes
/// (the checksum field itself counted as spaces).
pub fn checksum_matches(h: &[u8]) -> bool {
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    number(h, 148, 156) == Some(sum)
}

/// A pax record: key and value.
type PaxRecord = (Vec<u8>, Vec<u8>);

/// The pax records of an extended header's data.
fn pax_records(mut data: &[u8]) -> Result<Vec<PaxRecord>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a pax record without its length")?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|t| t.parse().ok())
            .filter(|&n| n > sp + 2 && n <= data.len())
            .ok_or("a pax record whose length is wrong")?;
        let record = &data[sp + 1..len];
        let record = record
            .strip_suffix(b"\n")
            .ok_or("a pax record not ended by a newline")?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a pax record without '='")?;
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

fn pax_number<T: std::str::FromStr>(key: &str, v: &[u8]) -> Result<T, String> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("pax {key} {:?} is not a number", String::from_utf8_lossy(v)))
}

/// `secs[.frac]` (possibly negative) as nanoseconds.
fn pax_time(v: &[u8]) -> Result<i64, String> {
    let t = std::str::from_utf8(v).map_err(|_| "pax mtime is not text")?;
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: i64 = secs.parse().map_err(|_| format!("pax mtime {t:?}"))?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        let d = c.to_digit(10).ok_or_else(|| format!("pax mtime {t:?}"))?;
        nanos += i64::from(d) * 10i64.pow(8 - i as u32);
    }
    let ns = secs
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or("pax mtime out of range")?;
    Ok(if neg { -ns } else { ns })
}

/// Why the bytes at an offset are not a member, and from where a walk can
/// look for the next one.
#[derive(Debug)]
pub struct Bad {
    pub why: String,
    /// Past the member's own headers when they parsed (its data may be
    /// anything), else the next block.
    pub resume_from: u64,
}

/// Read the member whose first header is at `offset` of `a`. An error
/// means the bytes there are not a member (a damaged header, a pax record
/// that does not parse, a size past the archive's end): that member is
/// lost; `resync` finds where the walk can go on.
pub fn member_at(a: &mut dyn At, offset: u64) -> Result<Found, Bad> {
    let mut headers_end = None;
    member_at_inner(a, offset, &mut headers_end).map_err(|why| Bad {
        why,
        resume_from: headers_end.unwrap_or(offset + BLOCK as u64),
    })
}

fn member_at_inner(
    a: &mut dyn At,
    offset: u64,
    headers_end: &mut Option<u64>,
) -> Result<Found, String> {
    let len = a.len();
    let block = |a: &mut dyn At, at: u64| -> Result<Vec<u8>, String> {
        a.read_at(at, BLOCK)
            .map_err(|e| format!("reading the header at byte {at}: {e}"))
    };
    let mut at = offset;
    let mut h = block(a, at)?;
    if h.iter().all(|&b| b == 0) {
        return Ok(Found::End);
    }
    let mut pax: Vec<PaxRecord> = Vec::new();
    // Extended headers (pax 'x', global 'g') describe the next one.
    loop {
        if !is_header(&h) {
            return Err(format!("no valid ustar header at byte {at}"));
        }
        match h[156] {
            b'x' | b'g' => {
                let size = number(&h, 124, 136).ok_or("a pax header size that is not a number")?;
                if size > MAX_PAX || at + BLOCK as u64 + padded(size) > len {
                    return Err(format!("a pax header of {size} bytes at byte {at}"));
                }
                // A bad pax header loses its member: the walk goes on past
                // the ustar header it describes (read alone, it would give
                // a cut path, or lose attributes).
                *headers_end = Some(at + 2 * BLOCK as u64 + padded(size));
                let data = a
                    .read_at(at + BLOCK as u64, size as usize)
                    .map_err(|e| format!("reading the pax header at byte {at}: {e}"))?;
                let records = pax_records(&data).map_err(|e| format!("{e} (at byte {at})"))?;
                if h[156] == b'x' {
                    pax.extend(records);
                }
                at += BLOCK as u64 + padded(size);
                h = block(a, at)?;
            }
            _ => break,
        }
    }
    // Whatever follows, a walk goes on after this ustar header.
    *headers_end = Some(at + BLOCK as u64);
    let entry = match h[156] {
        b'0' | 0 | b'7' => EntryType::File,
        b'1' => EntryType::Hardlink,
        b'2' => EntryType::Symlink,
        b'3' => EntryType::Char,
        b'4' => EntryType::Block,
        b'5' => EntryType::Dir,
        b'6' => EntryType::Fifo,
        t => {
            return Err(format!(
                "an unknown member type {:?} at byte {at}",
                t as char
            ));
        }
    };
    let mut path = {
        let (prefix, name) = (field(&h, 345, 500), field(&h, 0, 100));
        if prefix.is_empty() {
            name.to_vec()
        } else {
            [prefix, b"/", name].concat()
        }
    };
    let bad_number = |what: &str| format!("its {what} is not a number (header at byte {at})");
    let mut p = Parsed {
        offset,
        data_offset: at + BLOCK as u64,
        path: Vec::new(),
        entry,
        size: number(&h, 124, 136).ok_or_else(|| bad_number("size"))?,
        mode: number(&h, 100, 108).ok_or_else(|| bad_number("mode"))? as u32 & 0o7777,
        uid: number(&h, 108, 116).ok_or_else(|| bad_number("uid"))? as u32,
        gid: number(&h, 116, 124).ok_or_else(|| bad_number("gid"))? as u32,
        user: Some(String::from_utf8_lossy(field(&h, 265, 297)).into_owned())
            .filter(|u| !u.is_empty()),
        group: Some(String::from_utf8_lossy(field(&h, 297, 329)).into_owned())
            .filter(|g| !g.is_empty()),
        mtime_ns: (number(&h, 136, 148).ok_or_else(|| bad_number("mtime"))? as i64)
            .saturating_mul(1_000_000_000),
        link: Some(field(&h, 157, 257).to_vec()).filter(|l| !l.is_empty()),
        rdev: None,
        xattrs: Vec::new(),
        part: None,
        part_offset: None,
        total: None,
    };
    if matches!(entry, EntryType::Char | EntryType::Block) {
        let major = number(&h, 329, 337).ok_or_else(|| bad_number("device"))?;
        let minor = number(&h, 337, 345).ok_or_else(|| bad_number("device"))?;
        p.rdev = Some(libc::makedev(major as u32, minor as u32));
    }
    for (k, v) in pax {
        match &k[..] {
            b"path" => path = v,
            b"linkpath" => p.link = Some(v),
            b"size" => p.size = pax_number("size", &v)?,
            b"mtime" => p.mtime_ns = pax_time(&v)?,
            b"uid" => p.uid = pax_number("uid", &v)?,
            b"gid" => p.gid = pax_number("gid", &v)?,
            b"uname" => p.user = Some(String::from_utf8_lossy(&v).into_owned()),
            b"gname" => p.group = Some(String::from_utf8_lossy(&v).into_owned()),
            b"REEL.part" => p.part = Some(pax_number("REEL.part", &v)?),
            b"REEL.offset" => p.part_offset = Some(pax_number("REEL.offset", &v)?),
            b"REEL.total" => p.total = Some(pax_number("REEL.total", &v)?),
            k => {
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    p.xattrs.push((name.to_vec(), v));
                }
            }
        }
    }
    if entry != EntryType::File {
        // Only regular files have data (a hard link's size is its
        // target's, for listings).
        p.size = 0;
    }
    if entry == EntryType::Dir {
        while path.len() > 1 && path.ends_with(b"/") {
            path.pop();
        }
    }
    p.path = path;
    if p.data_offset
        .checked_add(padded(p.size))
        .is_none_or(|end| end > len)
    {
        return Err(format!(
            "{:?}: {} bytes of data at byte {} run past the archive's end ({len})",
            String::from_utf8_lossy(&p.path),
            p.size,
            p.data_offset
        ));
    }
    Ok(Found::Member(Box::new(p)))
}

/// The offset of the next valid ustar header at or after `from` (on a
/// 512-byte boundary), or of the end-of-archive zero blocks; `None` when
/// there is none before the archive's end.
pub fn resync(a: &mut dyn At, from: u64) -> Option<u64> {
    let mut at = padded(from);
    while at + BLOCK as u64 <= a.len() {
        let h = a.read_at(at, BLOCK).ok()?;
        if is_header(&h) || h.iter().all(|&b| b == 0) {
            return Some(at);
        }
        at += BLOCK as u64;
    }
    None
}

/// What walking an archive found, in order.
#[derive(Debug)]
pub enum Walked {
    Member(Box<Parsed>),
    /// Bytes that were no member: why, and where the walk went on (`None`:
    /// nowhere, the rest of the archive is lost).
    Damage {
        at: u64,
        why: String,
        resumed: Option<u64>,
    },
}

/// Every member of the archive `a`, from its first header to its end
/// marker (or its end, for a copy cut short), stepping over damage.
pub fn walk(a: &mut dyn At) -> Vec<Walked> {
    let mut out = Vec::new();
    let mut at = 0u64;
    while at + BLOCK as u64 <= a.len() {
        match member_at(a, at) {
            Ok(Found::End) => break,
            Ok(Found::Member(m)) => {
                at = m.next();
                out.push(Walked::Member(m));
            }
            Err(Bad { why, resume_from }) => {
                let resumed = resync(a, resume_from);
                out.push(Walked::Damage { at, why, resumed });
                match resumed {
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
