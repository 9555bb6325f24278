//! The catalog index, `<catalog>/index/current/`: "what is the newest verified
//! version of this path?" answered from memory-mapped files, so that
//! `reel-scan` can ask it for every file of a tree of tens of millions
//! without loading the catalog (docs/catalog.md §6). Everything here is derived
//! from the journals and rebuilt by `reel catalog rebuild`.
//!
//! `paths.idx` (format `REELIDX1`, little-endian unless said otherwise):
//!
//! ```text
//! header   8  magic "REELIDX1"
//!          4  version (1)
//!          4  bucket bits B
//!          8  entry count N
//!          8  reserved
//! buckets  (2^B + 1) × u64: index of the first entry whose key starts with
//!          each B-bit prefix, then N
//! entries  N × 32 bytes, sorted by key: key u128 (big-endian, so bytes sort
//!          as numbers), size u64, mtime_ns i64
//! ```
//!
//! `sha256.bin` holds the 32-byte digest of entry i at offset 32·i (all
//! zeros: none), read only by `--checksum` scans. Both have checksums
//! (`checked.rs`): `paths.idx` is checked whole when opened, `sha256.bin`
//! block by block as it is read. The key is the 128-bit
//! xxh3 of the path seeded with the 64-bit xxh3 of the stream name: a
//! collision would need two paths of one stream with equal keys *and* equal
//! size and mtime to hide a change.

use std::collections::HashMap;
use std::path::Path;

use super::CatalogError;
use super::checked::Checked;
use super::generation::{ENTRY, HEADER, INDEX_MAGIC, key};
use crate::manifest::Digest;

/// What the catalog knows of a path's newest verified version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub size: u64,
    pub mtime_ns: i64,
}

/// An open index (possibly empty, when none was built yet).
///
/// Besides the built generation, it holds the **delta**: the journal lines
/// appended since that generation was built (their tails beyond what its
/// `state.json` covers), read into memory when the index is opened. So the
/// index is current as soon as reel-verify has appended to a journal, with
/// no rebuild per archive; `open_index` folds the delta into a new
/// generation once it grows past `DELTA_MAX` bytes of journal.
pub struct Index {
    /// Checked whole at open: lookups read its entries without checks, by
    /// `pread`, not through the map: on a kernel that maps a page cache's
    /// large folio whole at a fault (Linux 6.18), a million lookups at
    /// random places would make the whole file resident.
    paths: Option<Checked>,
    /// The bucket table, read at open, each start kept within the entries.
    table: Vec<u64>,
    sha: Option<Checked>,
    count: usize,
    bits: u32,
    /// Entry numbers from `count` on are delta entries.
    delta: Vec<DeltaEntry>,
    delta_keys: HashMap<u128, usize>,
}

/// A delta entry: what is known of a path, and its digest.
type DeltaEntry = (Known, Option<Digest>);

/// The delta's entries, and the entry number of each key.
type Delta = (Vec<DeltaEntry>, HashMap<u128, usize>);

/// Journal bytes beyond the built generation that are read into memory
/// instead of rebuilding.
pub const DELTA_MAX: u64 = 64 << 20;

/// The delta of `catalog`: every journal line the current generation does
/// not cover, newest per key (by when taken from the source, then journal
/// and line order, as a rebuild orders them).
fn read_delta(catalog: &Path) -> Result<Delta, CatalogError> {
    let state = super::generation::current_state(catalog).unwrap_or_default();
    let mut newest: HashMap<u128, ((u64, u64), DeltaEntry)> = HashMap::new();
    let mut seq = 0u64;
    for path in super::journal::journals(catalog)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let covered = state.journals.get(&name).copied().unwrap_or(0);
        let len = std::fs::metadata(&path)
            .map_err(|e| CatalogError::io(&path, e))?
            .len();
        if len <= covered {
            continue;
        }
        super::journal::read_from(&path, covered, |e| {
            seq += 1;
            if !e.record.ends_file() {
                return Ok(()); // as a rebuild: see there
            }
            let path_bytes = std::os::unix::ffi::OsStrExt::as_bytes(e.record.path.as_os_str());
            let order = (e.version_key(), seq);
            let k = key(&e.stream, path_bytes);
            let known = Known {
                size: e.record.size,
                mtime_ns: e.record.mtime_ns,
            };
            if newest.get(&k).is_none_or(|(o, _)| *o <= order) {
                newest.insert(k, (order, (known, e.record.sha256)));
            }
            Ok(())
        })?;
    }
    let mut delta = Vec::with_capacity(newest.len());
    let mut keys = HashMap::with_capacity(newest.len());
    for (k, (_, entry)) in newest {
        keys.insert(k, delta.len());
        delta.push(entry);
    }
    Ok((delta, keys))
}

impl Index {
    pub fn empty() -> Index {
        Index {
            paths: None,
            table: Vec::new(),
            sha: None,
            count: 0,
            bits: 0,
            delta: Vec::new(),
            delta_keys: HashMap::new(),
        }
    }

    /// Open `<catalog>/index/` and read the journals' tails beyond it (the
    /// delta); an index not built yet is the delta alone.
    pub fn open(catalog: &Path) -> Result<Index, CatalogError> {
        let mut index = Index::open_built(catalog)?;
        (index.delta, index.delta_keys) = read_delta(catalog)?;
        Ok(index)
    }

    /// The built generation alone (none when it is of another format: its
    /// journal lines are then all read as the delta).
    fn open_built(catalog: &Path) -> Result<Index, CatalogError> {
        // Resolve `current` once: a rebuild switching it between opening
        // the two files must not mix two generations.
        let link = catalog.join("index").join("current");
        let dir = match std::fs::read_link(&link) {
            Ok(target) => catalog.join("index").join(target),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::empty()),
            Err(e) => return Err(CatalogError::io(&link, e)),
        };
        if super::generation::current_state(catalog).is_none() {
            return Ok(Index::empty());
        }
        let path = dir.join("paths.idx");
        let Some(paths) = Checked::open(&path)? else {
            return Ok(Index::empty());
        };
        paths.check_all()?;
        let bad = |m: &str| CatalogError::Damaged(format!("{}: {m}", path.display()));
        let head = paths
            .bytes(0, HEADER)
            .map_err(|_| bad("shorter than its header"))?;
        if &head[..8] != INDEX_MAGIC {
            return Err(bad("not a reel index"));
        }
        let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        let bits = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
        let count = u64::from_le_bytes(head[16..24].try_into().expect("8 bytes")) as usize;
        if version != 1 || !(4..=24).contains(&bits) {
            return Err(bad("unknown index version"));
        }
        let table = ((1usize << bits) + 1) * 8;
        if Some(paths.len())
            != count
                .checked_mul(ENTRY)
                .and_then(|e| e.checked_add(HEADER + table))
        {
            return Err(bad("truncated"));
        }
        let sha = Checked::open(&dir.join("sha256.bin"))?;
        if sha.as_ref().map_or(0, Checked::len) != count * 32 {
            return Err(bad("sha256.bin does not match paths.idx"));
        }
        let table = paths
            .bytes(HEADER, table)?
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")).min(count as u64))
            .collect();
        paths.release(0, paths.len());
        Ok(Index {
            paths: Some(paths),
            table,
            sha,
            count,
            bits,
            delta: Vec::new(),
            delta_keys: HashMap::new(),
        })
    }

    /// Entries of the built generation plus the delta's (a path in both
    /// counts twice).
    pub fn len(&self) -> usize {
        self.count + self.delta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries `from..from + out.len() / ENTRY` of `paths.idx`, read with
    /// `pread` (checked whole when opened; within its bounds, which were
    /// checked against its header). `false` on a read error: the caller
    /// then knows nothing, and the path is backed up again.
    fn read_entries(&self, from: usize, out: &mut [u8]) -> bool {
        use std::os::unix::fs::FileExt;
        let Some(m) = self.paths.as_ref() else {
            return false;
        };
        let at = HEADER + self.table.len() * 8 + from * ENTRY;
        match m.file().read_exact_at(out, at as u64) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("{}: {e}", m.path().display());
                false
            }
        }
    }

    /// The entry number holding `key`: the delta's when it has the key
    /// (it is newer), else the built generation's.
    pub fn find(&self, key: u128) -> Option<usize> {
        self.find_known(key).map(|(i, _)| i)
    }

    /// The entry number holding `key` and what it knows, with one read.
    pub fn find_known(&self, key: u128) -> Option<(usize, Known)> {
        if let Some(&j) = self.delta_keys.get(&key) {
            return Some((self.count + j, self.delta[j].0));
        }
        if self.count == 0 {
            return None;
        }
        let b = (key >> (128 - self.bits)) as usize;
        let (lo, hi) = (self.table[b] as usize, self.table[b + 1] as usize);
        let lo = lo.min(hi);
        let find_in = |from: usize, bytes: &[u8]| {
            bytes
                .chunks_exact(ENTRY)
                .enumerate()
                .find_map(|(n, e)| (key_of(e) == key).then(|| (from + n, known_of(e))))
        };
        // Keys are spread evenly: where in its bucket (about 16 entries)
        // the key lies is guessed from its next bits, and the 8 entries
        // around the guess read first, which is most often enough. Half
        // the bytes of the bucket: a million lookups at random places
        // spend their time waiting for those bytes.
        if hi - lo > GUESS {
            let next = ((key << self.bits) >> 64) as u64;
            let guess = lo + ((u128::from(next) * (hi - lo) as u128) >> 64) as usize;
            let from = guess.saturating_sub(GUESS / 2).clamp(lo, hi - GUESS);
            let mut buf = [0u8; GUESS * ENTRY];
            if !self.read_entries(from, &mut buf) {
                return None;
            }
            if let Some(found) = find_in(from, &buf) {
                return Some(found);
            }
            let (first, last) = (key_of(&buf), key_of(&buf[(GUESS - 1) * ENTRY..]));
            if (from == lo || first < key) && (from + GUESS == hi || key < last) {
                return None; // where it would be, sorted: not there
            }
        }
        // The whole bucket; a large one (not what a rebuild writes) is
        // searched an entry at a time.
        let mut buf = [0u8; MOST * ENTRY];
        if hi - lo <= MOST {
            let bytes = &mut buf[..(hi - lo) * ENTRY];
            if !self.read_entries(lo, bytes) {
                return None;
            }
            return find_in(lo, bytes);
        }
        let (mut lo, mut hi) = (lo, hi);
        let e = &mut buf[..ENTRY];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if !self.read_entries(mid, e) {
                return None;
            }
            match key_of(e).cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some((mid, known_of(e))),
            }
        }
        None
    }

    /// What entry `i` knows (nothing, on a read error: see `read_entries`).
    pub fn known(&self, i: usize) -> Known {
        if i >= self.count {
            return self.delta[i - self.count].0;
        }
        let mut e = [0u8; ENTRY];
        if !self.read_entries(i, &mut e) {
            return Known {
                size: u64::MAX,
                mtime_ns: i64::MIN,
            };
        }
        known_of(&e)
    }

    /// The recorded digest of entry `i` (`None`: none recorded); an error
    /// when its block of `sha256.bin` is damaged.
    pub fn sha256(&self, i: usize) -> Result<Option<Digest>, CatalogError> {
        if i >= self.count {
            return Ok(self.delta[i - self.count].1);
        }
        let Some(m) = self.sha.as_ref() else {
            return Ok(None);
        };
        let d: [u8; 32] = m.bytes(i * 32, 32)?.try_into().expect("32 bytes");
        Ok((d != [0; 32]).then_some(Digest(d)))
    }

    /// The newest verified version of `path` in `stream`.
    pub fn lookup(&self, stream: &str, path: &[u8]) -> Option<(usize, Known)> {
        self.find_known(key(stream, path))
    }
}

/// Entries read first around where a key is guessed to be.
const GUESS: usize = 8;
/// The largest bucket read whole.
const MOST: usize = 48;

/// The key of an entry's 32 bytes.
fn key_of(e: &[u8]) -> u128 {
    u128::from_be_bytes(e[..16].try_into().expect("16 bytes"))
}

/// The size and mtime of an entry's 32 bytes.
fn known_of(e: &[u8]) -> Known {
    Known {
        size: u64::from_le_bytes(e[16..24].try_into().expect("8 bytes")),
        mtime_ns: i64::from_le_bytes(e[24..32].try_into().expect("8 bytes")),
    }
}
