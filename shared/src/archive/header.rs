//! POSIX pax tar headers, written by hand: the `tar` crate follows
//! symlinks, writes GNU long-name entries instead of pax, and cannot keep
//! nanosecond mtimes or binary names the way reel needs.
//!
//! A member is a ustar header (512 bytes), preceded by a pax extended
//! header (`typeflag 'x'`) when a value does not fit ustar: a path or link
//! target longer than ustar holds, a size of 8 GiB or more, an mtime with
//! nanoseconds or before 1970, a uid or gid above 2097151, user and group
//! names longer than 31 bytes, extended attributes (`SCHILY.xattr.<name>`),
//! and reel's own keys (`REEL.part`, `REEL.offset`, `REEL.total`). Names that
//! are not UTF-8 go into pax with `hdrcharset=BINARY`, as POSIX allows.
//! Everything is a pure function of the member, so an archive is
//! byte-for-byte reproducible.

use crate::manifest::EntryType;

pub const BLOCK: usize = 512;

/// What kind of member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    File { size: u64 },
    Dir,
    Symlink { target: Vec<u8> },
    Hardlink { target: Vec<u8> },
    Fifo,
    Char { rdev: u64 },
    Block { rdev: u64 },
}

/// One archive member's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The path inside the archive (no leading '/'); directories get their
    /// trailing '/' from the writer.
    pub path: Vec<u8>,
    pub kind: MemberKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    pub mtime_ns: i64,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Extra pax records (reel's `REEL.*` keys), in order.
    pub extra: Vec<(String, Vec<u8>)>,
}

impl Member {
    /// Bytes of data that follow the header(s).
    pub fn data_size(&self) -> u64 {
        match self.kind {
            MemberKind::File { size } => size,
            _ => 0,
        }
    }
}

impl Member {
    /// One of reel's own text files in an archive or on a tape
    /// (`REEL-ARCHIVE.txt`, the label, `REEL-TAPE.jsonl`): read-only,
    /// owned by root, its mtime in whole seconds (no pax header).
    pub fn text(name: &str, size: u64, mtime_ns: i64) -> Member {
        Member {
            path: name.as_bytes().to_vec(),
            kind: MemberKind::File { size },
            mode: 0o444,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime_ns: mtime_ns - mtime_ns.rem_euclid(1_000_000_000),
            xattrs: Vec::new(),
            extra: Vec::new(),
        }
    }
}

/// A whole small tar file in memory: `files` as reel's own text members
/// (`Member::text`), then the two zero blocks that end an archive.
pub fn small_tar(files: &[(&str, &[u8])], mtime_ns: i64) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, data) in files {
        tar.extend_from_slice(&encode(&Member::text(name, data.len() as u64, mtime_ns)));
        tar.extend_from_slice(data);
        tar.resize(tar.len() + padding(data.len() as u64), 0);
    }
    tar.resize(tar.len() + 2 * BLOCK, 0);
    tar
}

/// Bytes of zero padding after `size` bytes of data.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Write `value` as a NUL-terminated octal number in `field`; false when it
/// does not fit.
fn octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    true
}

/// One pax record: `"<len> <key>=<value>\n"`, where len counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = len.to_string().len() + body;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Split a path into ustar's prefix (≤155) and name (≤100) fields.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    if path.len() > 256 {
        return None;
    }
    // The last '/' that leaves a name of at most 100 bytes and a prefix of
    // at most 155.
    (0..path.len())
        .rev()
        .filter(|&i| path[i] == b'/')
        .find(|&i| i <= 155 && path.len() - i - 1 <= 100 && path.len() - i - 1 > 0)
        .map(|i| (&path[..i], &path[i + 1..]))
}

fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
}

/// A ustar header block with the given fields (`name`/`prefix` already
/// fitting).
#[allow(clippy::too_many_arguments)]
fn ustar(
    prefix: &[u8],
    name: &[u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &[u8],
    user: &[u8],
    group: &[u8],
    dev: Option<(u64, u64)>,
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(mode & 0o7777));
    octal(&mut h[108..116], uid);
    octal(&mut h[116..124], gid);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..265 + user.len()].copy_from_slice(user);
    h[297..297 + group.len()].copy_from_slice(group);
    if let Some((major, minor)) = dev {
        octal(&mut h[329..337], major);
        octal(&mut h[337..345], minor);
    }
    h[345..345 + prefix.len()].copy_from_slice(prefix);
    checksum(&mut h);
    h
}

const MAX_ID: u64 = 0o7777777;
const MAX_SIZE: u64 = 0o77777777777;

/// The header blocks of `m`: a pax extended header when needed, then the
/// ustar header. Always a multiple of 512 bytes.
pub fn encode(m: &Member) -> Vec<u8> {
    encode_padded(m, None)
}

/// The header blocks of `m` written at archive offset `at` (a multiple of
/// 512), grown by a pax `comment` record (which readers ignore) so that
/// the member's data starts on a multiple of `align`: file systems that
/// share blocks between files (XFS, btrfs) can then copy the data into the
/// archive by reference.
pub fn encode_aligned(m: &Member, at: u64, align: u64) -> Vec<u8> {
    let plain = encode(m);
    let gap = (align - (at + plain.len() as u64) % align) % align;
    if gap == 0 {
        return plain;
    }
    // With a comment, the header is the pax header block, the pax data
    // (filled exactly to whole blocks) and the ustar block.
    let mut want = plain.len() as u64 + gap;
    for _ in 0..4 {
        if want >= 3 * BLOCK as u64 {
            let h = encode_padded(m, Some(want as usize - 2 * BLOCK));
            if h.len() as u64 == want {
                return h;
            }
        }
        want += align;
    }
    unreachable!("a comment of up to four alignments always fits")
}

/// `pax_len`: fill the pax data to exactly this many bytes with a comment.
fn encode_padded(m: &Member, pax_len: Option<usize>) -> Vec<u8> {
    let mut pax = Vec::new();
    let mut path = m.path.clone();
    if m.kind == MemberKind::Dir && !path.ends_with(b"/") {
        path.push(b'/');
    }
    // Names that fit ustar go there as raw bytes; a long one goes to pax,
    // which wants UTF-8 unless hdrcharset says BINARY.
    let mut long_values: Vec<(&[u8], &[u8])> = Vec::new();
    let (prefix, name) = match split_ustar(&path) {
        Some(split) => split,
        None => {
            long_values.push((b"path", &path));
            (&[][..], &path[path.len().saturating_sub(100)..])
        }
    };
    let link: &[u8] = match &m.kind {
        MemberKind::Symlink { target } | MemberKind::Hardlink { target } if target.len() > 100 => {
            long_values.push((b"linkpath", target));
            &target[..100]
        }
        MemberKind::Symlink { target } | MemberKind::Hardlink { target } => target,
        _ => &[],
    };
    if long_values
        .iter()
        .any(|(_, v)| std::str::from_utf8(v).is_err())
    {
        pax_record(&mut pax, b"hdrcharset", b"BINARY");
    }
    for (k, v) in &long_values {
        pax_record(&mut pax, k, v);
    }
    let size = m.data_size();
    let ustar_size = if size > MAX_SIZE {
        pax_record(&mut pax, b"size", size.to_string().as_bytes());
        0
    } else {
        size
    };
    let (secs, nanos) = (
        m.mtime_ns.div_euclid(1_000_000_000),
        m.mtime_ns.rem_euclid(1_000_000_000),
    );
    if nanos != 0 || secs < 0 {
        let text = if nanos == 0 {
            format!("{secs}")
        } else {
            format!("{secs}.{nanos:09}")
        };
        pax_record(&mut pax, b"mtime", text.as_bytes());
    }
    let ustar_mtime = secs.max(0) as u64;
    let id = |key: &[u8], v: u32, pax: &mut Vec<u8>| {
        if u64::from(v) > MAX_ID {
            pax_record(pax, key, v.to_string().as_bytes());
            0
        } else {
            u64::from(v)
        }
    };
    let uid = id(b"uid", m.uid, &mut pax);
    let gid = id(b"gid", m.gid, &mut pax);
    let name_field = |key: &[u8], v: &Option<String>, pax: &mut Vec<u8>| -> Vec<u8> {
        match v {
            Some(n) if n.len() > 31 => {
                pax_record(pax, key, n.as_bytes());
                Vec::new()
            }
            Some(n) => n.as_bytes().to_vec(),
            None => Vec::new(),
        }
    };
    let user = name_field(b"uname", &m.user, &mut pax);
    let group = name_field(b"gname", &m.group, &mut pax);
    for (k, v) in &m.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(k);
        pax_record(&mut pax, &key, v);
    }
    for (k, v) in &m.extra {
        pax_record(&mut pax, k.as_bytes(), v);
    }
    // The shortest record is "12 comment=\n".
    if let Some(want) = pax_len.filter(|&w| w >= pax.len() + 12) {
        let record = want - pax.len();
        let digits = record.to_string().len();
        pax_record(&mut pax, b"comment", &vec![b' '; record - 10 - digits]);
        debug_assert_eq!(pax.len(), want);
    }
    let (typeflag, dev) = match &m.kind {
        MemberKind::File { .. } => (b'0', None),
        MemberKind::Hardlink { .. } => (b'1', None),
        MemberKind::Symlink { .. } => (b'2', None),
        MemberKind::Char { rdev } => (
            b'3',
            Some((libc::major(*rdev) as u64, libc::minor(*rdev) as u64)),
        ),
        MemberKind::Block { rdev } => (
            b'4',
            Some((libc::major(*rdev) as u64, libc::minor(*rdev) as u64)),
        ),
        MemberKind::Dir => (b'5', None),
        MemberKind::Fifo => (b'6', None),
    };
    let mut out = Vec::with_capacity(BLOCK * 3);
    if !pax.is_empty() {
        // A fixed name: the archive stays reproducible.
        let base = path
            .rsplit(|&b| b == b'/')
            .find(|c| !c.is_empty())
            .unwrap_or(b"member");
        let mut xname = b"PaxHeaders/".to_vec();
        xname.extend_from_slice(&base[..base.len().min(100 - xname.len())]);
        out.extend_from_slice(&ustar(
            &[],
            &xname,
            0o644,
            0,
            0,
            pax.len() as u64,
            ustar_mtime,
            b'x',
            &[],
            &[],
            &[],
            None,
        ));
        out.extend_from_slice(&pax);
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    out.extend_from_slice(&ustar(
        prefix,
        name,
        m.mode,
        uid,
        gid,
        ustar_size,
        ustar_mtime,
        typeflag,
        link,
        &user,
        &group,
        dev,
    ));
    out
}

/// The size field of a ustar header block (0 when pax holds the size).
pub fn ustar_size(block: &[u8]) -> u64 {
    std::str::from_utf8(&block[124..136])
        .ok()
        .map(|t| t.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|t| u64::from_str_radix(t, 8).ok())
        .unwrap_or(0)
}

/// Why a ustar header block (512 bytes) is not a valid header of a member
/// of type `entry`: checksum, magic and type flag are checked.
pub fn check_header(block: &[u8], entry: EntryType) -> Result<(), String> {
    if block.len() != 512 {
        return Err("header cut short".into());
    }
    if &block[257..262] != b"ustar" {
        return Err("no ustar header where the manifest puts it".into());
    }
    if !super::parse::checksum_matches(block) {
        return Err("ustar header checksum does not match".into());
    }
    let want = match entry {
        EntryType::File => b'0',
        EntryType::Hardlink => b'1',
        EntryType::Symlink => b'2',
        EntryType::Char => b'3',
        EntryType::Block => b'4',
        EntryType::Dir => b'5',
        EntryType::Fifo => b'6',
    };
    if block[156] != want {
        return Err(format!(
            "ustar type {:?} where the manifest says {:?}",
            block[156] as char, entry
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_headers_end_on_the_boundary_and_parse_the_same() {
        for path_len in [1usize, 99, 100, 150, 300, 4000] {
            for at in (0..16u64).map(|k| k * 512) {
                let m = Member {
                    path: vec![b'p'; path_len],
                    kind: MemberKind::File { size: 5 << 20 },
                    mode: 0o600,
                    uid: 1,
                    gid: 2,
                    user: None,
                    group: None,
                    mtime_ns: 1_000_000_007,
                    xattrs: Vec::new(),
                    extra: Vec::new(),
                };
                let h = encode_aligned(&m, at, 4096);
                assert_eq!((at + h.len() as u64) % 4096, 0, "{path_len} at {at}");
                assert_eq!(h.len() % 512, 0);
                assert!(h.len() <= encode(&m).len() + 4096 + 1024);
                // The ustar block is the same one: only the pax data grew.
                assert_eq!(&h[h.len() - 512..], &encode(&m)[encode(&m).len() - 512..]);
            }
        }
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", b"a");
        assert_eq!(out, b"9 path=a\n");
        let mut out = Vec::new();
        pax_record(&mut out, b"k", &[b'v'; 95]);
        assert_eq!(&out[..4], b"102 ");
        assert_eq!(out.len(), 102);
    }

    #[test]
    fn ustar_splits_long_paths() {
        let p = [b"d".repeat(150), b"/".to_vec(), b"f".repeat(90)].concat();
        let (prefix, name) = split_ustar(&p).unwrap();
        assert_eq!((prefix.len(), name.len()), (150, 90));
        assert!(
            split_ustar(&b"x".repeat(101)).is_none(),
            "no slash to split at"
        );
    }
}
