//! The path index of a generation, for `reel find` and `reel-restore`:
//! every (stream, path, part)'s newest verified copy, sorted by name, with
//! the journal line that records it. A prefix search is a binary search
//! and a scan of the range; nothing is loaded whole (the files are mapped).
//!
//! `names.idx`: magic `REELNAM1`, count u64, then count × 24 bytes sorted
//! by name: name offset u64 and length u32 (into `names.bin`), journal id
//! u32 (an index into the generation's `state.json` `journal_ids`), line
//! offset u64. A name is `stream NUL path NUL part` (part: 4 bytes, big
//! endian, 0 for a whole file), so a prefix of `stream NUL path-prefix`
//! selects exactly the paths that start with it.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;

use super::CatalogError;
use super::checked::Checked;
use super::external_sort::{ExternalSort, RunItem};

pub const NAMES_MAGIC: &[u8; 8] = b"REELNAM1";
const ENTRY: usize = 24;
/// Bytes of `names.bin` searched for a needle at a time, per core.
const WINDOW: usize = 8 << 20;
/// Entries searched at a time, per core.
const STRIPE: usize = 1 << 20;

/// The name of a (stream, path, part).
pub fn name(stream: &str, path: &[u8], part: Option<u32>) -> Vec<u8> {
    let mut n = Vec::with_capacity(stream.len() + path.len() + 6);
    n.extend_from_slice(stream.as_bytes());
    n.push(0);
    n.extend_from_slice(path);
    n.push(0);
    n.extend_from_slice(&part.unwrap_or(0).to_be_bytes());
    n
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    name: Vec<u8>,
    order: (u64, u64),
    journal: u32,
    offset: u64,
}

impl RunItem for Item {
    fn same_key(&self, other: &Self) -> bool {
        self.name == other.name
    }

    /// What it takes in memory: the item, and its name as the allocator
    /// hands it out (16-byte steps, 8 bytes of its own, 32 at least).
    fn weight(&self) -> usize {
        std::mem::size_of::<Item>() + (self.name.len() + 8).next_multiple_of(16).max(32)
    }

    fn encode(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&(self.name.len() as u32).to_le_bytes())?;
        w.write_all(&self.name)?;
        w.write_all(&self.order.0.to_le_bytes())?;
        w.write_all(&self.order.1.to_le_bytes())?;
        w.write_all(&self.journal.to_le_bytes())?;
        w.write_all(&self.offset.to_le_bytes())
    }

    fn decode(r: &mut impl Read) -> std::io::Result<Option<Item>> {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut name = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut name)?;
        let mut b = [0u8; 28];
        r.read_exact(&mut b)?;
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        Ok(Some(Item {
            name,
            order: (u64_at(0), u64_at(8)),
            journal: u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")),
            offset: u64_at(20),
        }))
    }
}

/// Collects names in bounded memory (sorted runs on disk), then merges
/// them into `names.idx` and `names.bin`.
pub struct Builder {
    sort: ExternalSort<Item>,
}

impl Builder {
    /// A builder that keeps at most about `limit_bytes` of names in memory
    /// and spills the rest to run files in `dir`.
    pub fn new(dir: &Path, limit_bytes: usize) -> Builder {
        Builder {
            sort: ExternalSort::new(dir, "names-run", limit_bytes),
        }
    }

    /// Add the name of one journal line.
    pub fn push(
        &mut self,
        name: Vec<u8>,
        order: (u64, u64),
        journal: u32,
        offset: u64,
    ) -> Result<(), CatalogError> {
        self.sort.push(Item {
            name,
            order,
            journal,
            offset,
        })
    }

    /// Merge everything into `<out>/names.idx` and `<out>/names.bin`;
    /// returns the number of names.
    pub fn finish_into(self, out: &Path) -> Result<u64, CatalogError> {
        let idx_path = out.join("names.idx");
        let bin_path = out.join("names.bin");
        let mut idx = BufWriter::with_capacity(
            1 << 20,
            File::create(&idx_path).map_err(|e| CatalogError::io(&idx_path, e))?,
        );
        let mut bin = BufWriter::with_capacity(
            1 << 20,
            File::create(&bin_path).map_err(|e| CatalogError::io(&bin_path, e))?,
        );
        let io_idx = |e| CatalogError::io(&idx_path, e);
        idx.write_all(NAMES_MAGIC).map_err(io_idx)?;
        idx.write_all(&0u64.to_le_bytes()).map_err(io_idx)?;
        let (mut count, mut at) = (0u64, 0u64);
        let mut emit = |it: &Item| -> std::io::Result<()> {
            idx.write_all(&at.to_le_bytes())?;
            idx.write_all(&(it.name.len() as u32).to_le_bytes())?;
            idx.write_all(&it.journal.to_le_bytes())?;
            idx.write_all(&it.offset.to_le_bytes())?;
            bin.write_all(&it.name)?;
            at += it.name.len() as u64;
            count += 1;
            Ok(())
        };
        self.sort
            .finish(|it| emit(it).map_err(|e| CatalogError::io(&idx_path, e)))?;
        bin.flush().map_err(|e| CatalogError::io(&bin_path, e))?;
        bin.get_ref()
            .sync_all()
            .map_err(|e| CatalogError::io(&bin_path, e))?;
        let mut f = idx
            .into_inner()
            .map_err(|e| CatalogError::io(&idx_path, e.into_error()))?;
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(8))
            .map_err(|e| CatalogError::io(&idx_path, e))?;
        f.write_all(&count.to_le_bytes())
            .map_err(|e| CatalogError::io(&idx_path, e))?;
        f.sync_all().map_err(|e| CatalogError::io(&idx_path, e))?;
        Ok(count)
    }
}

/// One entry of the path index: its name, journal id and line offset.
pub type NameEntry<'a> = (&'a [u8], u32, u64);

/// An entry found by a search: its number, journal id and line offset.
pub type Hit = (usize, u32, u64);

/// An open path index. Its files have checksums (`checked.rs`), checked
/// block by block as a search reads them.
pub struct Names {
    idx: Checked,
    bin: Checked,
    count: usize,
}

impl Names {
    /// The index of a generation directory; `None` when it has none (built
    /// before path indexes existed, or empty).
    pub fn open(dir: &Path) -> Result<Option<Names>, CatalogError> {
        let idx_path = dir.join("names.idx");
        let Some(idx) = Checked::open(&idx_path)? else {
            return Ok(None);
        };
        let bad = |m: &str| CatalogError::Damaged(format!("{}: {m}", idx_path.display()));
        let head = idx
            .bytes(0, 16)
            .map_err(|_| bad("shorter than its header"))?;
        if &head[..8] != NAMES_MAGIC {
            return Err(bad("not a reel path index"));
        }
        let count = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")) as usize;
        if Some(idx.len()) != count.checked_mul(ENTRY).and_then(|n| n.checked_add(16)) {
            return Err(bad("truncated"));
        }
        let bin = match Checked::open(&dir.join("names.bin"))? {
            Some(b) => b,
            None if count == 0 => return Ok(None),
            None => return Err(bad("names.bin is missing")),
        };
        Ok(Some(Names { idx, bin, count }))
    }

    /// Entry `i`: its name, journal id and line offset.
    pub fn get(&self, i: usize) -> Result<NameEntry<'_>, CatalogError> {
        let e = self.idx.bytes(16 + i * ENTRY, ENTRY)?;
        let at = u64::from_le_bytes(e[..8].try_into().expect("8 bytes")) as usize;
        let len = u32::from_le_bytes(e[8..12].try_into().expect("4 bytes")) as usize;
        let journal = u32::from_le_bytes(e[12..16].try_into().expect("4 bytes"));
        let offset = u64::from_le_bytes(e[16..24].try_into().expect("8 bytes"));
        Ok((self.bin.bytes(at, len)?, journal, offset))
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first entry whose name is at least `key`.
    pub fn at_or_after(&self, key: &[u8]) -> Result<Option<NameEntry<'_>>, CatalogError> {
        let i = self.lower_bound(key)?;
        let found = if i < self.count {
            self.get(i).map(Some)
        } else {
            Ok(None)
        };
        self.release_probes();
        found
    }

    /// Let go of the pages a search through the whole index touched: on
    /// a kernel that maps a whole large folio of the page cache at a
    /// fault (Linux 6.18 does, up to 2 MiB), the ~50 probes of two binary
    /// searches over 50 million names would otherwise keep ~100 MB
    /// resident.
    fn release_probes(&self) {
        self.idx.release(0, self.idx.len());
        self.bin.release(0, self.bin.len());
    }

    /// The first entry of `from..to` for which `before` is false, `before`
    /// being true for a leading run of them.
    fn partition(
        &self,
        mut lo: usize,
        mut hi: usize,
        before: impl Fn(usize) -> Result<bool, CatalogError>,
    ) -> Result<usize, CatalogError> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before(mid)? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    fn lower_bound(&self, key: &[u8]) -> Result<usize, CatalogError> {
        self.partition(0, self.count, |i| Ok(self.get(i)?.0 < key))
    }

    /// The entries whose name starts with `prefix`: a range of them.
    pub fn prefix_range(&self, prefix: &[u8]) -> Result<Range<usize>, CatalogError> {
        let from = self.lower_bound(prefix)?;
        let to = self.partition(from, self.count, |i| Ok(self.get(i)?.0.starts_with(prefix)))?;
        self.release_probes();
        Ok(from..to)
    }

    /// Where entry `i`'s name lies in `names.bin`: (offset, length).
    fn span(&self, i: usize) -> Result<(usize, usize), CatalogError> {
        let e = self.idx.bytes(16 + i * ENTRY, 12)?;
        let at = u64::from_le_bytes(e[..8].try_into().expect("8 bytes")) as usize;
        let len = u32::from_le_bytes(e[8..12].try_into().expect("4 bytes")) as usize;
        Ok((at, len))
    }

    fn damaged(&self, why: String) -> CatalogError {
        CatalogError::Damaged(format!("{}: {why}", self.idx.path().display()))
    }

    /// The entry of `from..to` whose name holds byte `at` of `names.bin`:
    /// a galloping search from `from` (hits come in order, often close).
    /// The builder writes the names one after the other in entry order; an
    /// index where they are not is damaged.
    fn holding(&self, at: usize, from: usize, to: usize) -> Result<usize, CatalogError> {
        let starts_by = |i: usize| Ok(self.span(i)?.0 <= at);
        if from >= to || !starts_by(from)? {
            return Err(self.damaged(format!("no name holds byte {at} of names.bin")));
        }
        let (mut lo, mut step) = (from, 1usize);
        while lo + step < to && starts_by(lo + step)? {
            lo += step;
            step = step.saturating_mul(2);
        }
        let probed = (lo + step).min(to);
        let i = self.partition(lo + 1, probed, starts_by)? - 1;
        if probed - from > 64 {
            // Far apart (a rare needle): the probes' pages, let go now.
            self.idx
                .release(16 + from * ENTRY, (probed - from + 1) * ENTRY);
        }
        let (start, len) = self.span(i)?;
        if at >= start.saturating_add(len) {
            return Err(self.damaged(format!("no name holds byte {at} of names.bin")));
        }
        Ok(i)
    }

    /// Let go of the pages of entries `range` and of their names (see
    /// `Checked::release`).
    fn release(&self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        self.idx
            .release(16 + range.start * ENTRY, range.len() * ENTRY);
        if let (Ok((from, _)), Ok((last, len))) = (self.span(range.start), self.span(range.end - 1))
        {
            self.bin
                .release(from, last.saturating_add(len).saturating_sub(from));
        }
    }

    /// The entries of `range` whose name contains `needle` and that `keep`
    /// keeps, in order, with their journal ids and line offsets. The range is cut into stripes of entries, searched
    /// on every core. With a needle, a stripe's names in `names.bin` are
    /// searched for it (`memchr::memmem`) window by window, and only the
    /// names holding it are looked up and handed to `keep`: a glob with no
    /// literal start tests a few names of millions. The pages read are let
    /// go behind each window and stripe, so the resident set stays a few
    /// windows whatever the size of the index. An index whose entries do
    /// not lead to their names one after the other is damaged.
    pub fn matching(
        &self,
        range: Range<usize>,
        needle: &[u8],
        keep: impl Fn(&[u8]) -> bool + Sync,
    ) -> Result<Vec<Hit>, CatalogError> {
        self.matching_by(range, needle, keep, (WINDOW, STRIPE))
    }

    /// `matching` with windows of `window` bytes and stripes of `stripe`
    /// entries (the tests make them tiny).
    pub(super) fn matching_by(
        &self,
        range: Range<usize>,
        needle: &[u8],
        keep: impl Fn(&[u8]) -> bool + Sync,
        (window, stripe): (usize, usize),
    ) -> Result<Vec<Hit>, CatalogError> {
        let range = range.start.min(self.count)..range.end.min(self.count);
        let stripes: Vec<Range<usize>> = range
            .clone()
            .step_by(stripe.max(1))
            .map(|s| s..(s + stripe.max(1)).min(range.end))
            .collect();
        let found = stripes
            .into_par_iter()
            .map(|s| {
                let out = if needle.is_empty() {
                    let mut out = Vec::new();
                    for i in s.clone() {
                        let (name, journal, offset) = self.get(i)?;
                        if keep(name) {
                            out.push((i, journal, offset));
                        }
                    }
                    out
                } else {
                    self.search_stripe(s.clone(), needle, &keep, window)?
                };
                self.release(s);
                Ok(out)
            })
            .collect::<Result<Vec<Vec<Hit>>, CatalogError>>()?;
        Ok(found.concat())
    }

    /// `matching` of one stripe, with a needle.
    fn search_stripe(
        &self,
        s: Range<usize>,
        needle: &[u8],
        keep: &impl Fn(&[u8]) -> bool,
        window: usize,
    ) -> Result<Vec<Hit>, CatalogError> {
        let (from, _) = self.span(s.start)?;
        let (last, last_len) = self.span(s.end - 1)?;
        let to = last.saturating_add(last_len);
        if to < from || to > self.bin.len() {
            return Err(self.damaged(format!(
                "names at bytes {from}–{to} of names.bin, {} long",
                self.bin.len()
            )));
        }
        let finder = memchr::memmem::Finder::new(needle);
        let (mut out, mut cursor) = (Vec::new(), s.start);
        let mut start = from;
        while start < to && cursor < s.end {
            let end = start.saturating_add(window.max(1)).min(to);
            // A hit starting in the window may end past it.
            let reach = end.saturating_add(needle.len() - 1).min(to);
            let bytes = self.bin.bytes(start, reach - start)?;
            let (mut at, first) = (start, cursor);
            while at < end && cursor < s.end {
                let Some(hit) = finder.find(&bytes[at - start..]) else {
                    break;
                };
                let hit = at + hit;
                if hit >= end {
                    break;
                }
                let i = self.holding(hit, cursor, s.end)?;
                let (name_at, len) = self.span(i)?;
                // A name across two windows may be found from both.
                if out.last().is_none_or(|h: &Hit| h.0 != i) {
                    let (name, journal, offset) = self.get(i)?;
                    if keep(name) {
                        out.push((i, journal, offset));
                    }
                }
                // On to the next name: a name is tested once.
                at = name_at + len;
                cursor = i;
            }
            self.bin.release(start, reach - start);
            self.release(first..cursor);
            start = end;
        }
        Ok(out)
    }
}
