//! Building the index from the journals with bounded memory: entries are
//! read in chunks, each chunk sorted and written as a run file, and the runs
//! merged, keeping for every key its newest verified version (the one
//! taken last from the source, `Entry::version_key`; for equal times, the
//! later journal line).
//!
//! A build goes into a fresh `index/gen-<n>/` directory; `index/current`, a
//! symlink, is switched to it atomically at the end, so a reader always sees
//! one complete generation. `state.json` in each generation records how many
//! bytes of each journal it covers, which is how staleness is detected.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::CatalogError;
use super::external_sort::{ExternalSort, RunItem};
use super::generation::{
    ENTRY, HEADER, INDEX_FORMAT, INDEX_MAGIC, State, bucket_bits, file_name, index_dir, key,
};
use super::journal::{self, Entry};
use crate::fsutil::write_atomic;

/// Entries sorted in memory before they spill to a run file (80 bytes
/// each: 40 MiB).
pub const DEFAULT_CHUNK: usize = 1 << 19;

/// Bytes of names held in memory (`names::Builder`'s weight) before they
/// spill to a run file. With `DEFAULT_CHUNK`, a rebuild of 50 M entries
/// peaks at about 150 MB.
const NAMES_LIMIT: usize = 64 << 20;

/// What a rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildStats {
    pub journals: usize,
    pub entries: u64,
    pub paths: u64,
    pub runs: usize,
}

const ITEM: usize = 16 + 8 + 8 + 32 + 16;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    key: u128,
    /// (when taken from the source, sequence): larger is newer.
    order: (u64, u64),
    size: u64,
    mtime: i64,
    sha: [u8; 32],
}

impl RunItem for Item {
    fn same_key(&self, other: &Self) -> bool {
        self.key == other.key
    }

    fn weight(&self) -> usize {
        1
    }

    fn encode(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.key.to_be_bytes())?;
        out.write_all(&self.order.0.to_le_bytes())?;
        out.write_all(&self.order.1.to_le_bytes())?;
        out.write_all(&self.size.to_le_bytes())?;
        out.write_all(&self.mtime.to_le_bytes())?;
        out.write_all(&self.sha)
    }

    fn decode(r: &mut impl Read) -> std::io::Result<Option<Item>> {
        let mut b = [0u8; ITEM];
        match r.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        Ok(Some(Item {
            key: u128::from_be_bytes(b[..16].try_into().expect("16 bytes")),
            order: (u64_at(16), u64_at(24)),
            size: u64_at(32),
            mtime: u64_at(40) as i64,
            sha: b[48..80].try_into().expect("32 bytes"),
        }))
    }
}

/// What the index covers of a journal: its whole length when what follows
/// the complete lines read is only a torn line (a crash mid-append, ignored
/// by readers), else the complete lines read (lines appended meanwhile make
/// the index stale, to be rebuilt next time).
fn covered_length(path: &Path, consumed: u64) -> Result<u64, CatalogError> {
    let mut f = File::open(path).map_err(|e| CatalogError::io(path, e))?;
    f.seek(SeekFrom::Start(consumed))
        .map_err(|e| CatalogError::io(path, e))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)
        .map_err(|e| CatalogError::io(path, e))?;
    Ok(if tail.contains(&b'\n') {
        consumed
    } else {
        consumed + tail.len() as u64
    })
}

/// Writes the final sorted, deduplicated items as `paths.idx` and
/// `sha256.bin`.
struct Output {
    paths: BufWriter<File>,
    sha: BufWriter<File>,
    bits: u32,
    table: Vec<u64>,
    count: u64,
    last: Option<u128>,
    path: PathBuf,
}

impl Output {
    fn new(dir: &Path, upper_bound: u64) -> Result<Output, CatalogError> {
        let bits = bucket_bits(upper_bound);
        let path = dir.join("paths.idx");
        let mut f = File::create(&path).map_err(|e| CatalogError::io(&path, e))?;
        let table_len = ((1u64 << bits) + 1) * 8;
        f.seek(SeekFrom::Start(HEADER as u64 + table_len))
            .map_err(|e| CatalogError::io(&path, e))?;
        let sha_path = dir.join("sha256.bin");
        let sha = File::create(&sha_path).map_err(|e| CatalogError::io(&sha_path, e))?;
        Ok(Output {
            paths: BufWriter::with_capacity(1 << 20, f),
            sha: BufWriter::with_capacity(1 << 20, sha),
            bits,
            table: vec![u64::MAX; (1 << bits) + 1],
            count: 0,
            last: None,
            path,
        })
    }

    fn push(&mut self, item: &Item) -> Result<(), CatalogError> {
        debug_assert!(self.last.is_none_or(|k| k < item.key));
        self.last = Some(item.key);
        let b = (item.key >> (128 - self.bits)) as usize;
        if self.table[b] == u64::MAX {
            self.table[b] = self.count;
        }
        let io = |e| CatalogError::io(&self.path, e);
        self.paths.write_all(&item.key.to_be_bytes()).map_err(io)?;
        self.paths.write_all(&item.size.to_le_bytes()).map_err(io)?;
        self.paths
            .write_all(&item.mtime.to_le_bytes())
            .map_err(io)?;
        self.sha.write_all(&item.sha).map_err(io)?;
        self.count += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<u64, CatalogError> {
        // Empty buckets start where the next non-empty one does.
        let n = self.table.len();
        self.table[n - 1] = self.count;
        for b in (0..n - 1).rev() {
            if self.table[b] == u64::MAX {
                self.table[b] = self.table[b + 1];
            }
        }
        let io = |e| CatalogError::io(&self.path, e);
        self.sha.flush().map_err(io)?;
        self.sha.get_ref().sync_all().map_err(io)?;
        let mut f = self
            .paths
            .into_inner()
            .map_err(|e| CatalogError::io(&self.path, e.into_error()))?;
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut head = Vec::with_capacity(HEADER + n * 8);
        head.extend_from_slice(INDEX_MAGIC);
        head.extend_from_slice(&1u32.to_le_bytes());
        head.extend_from_slice(&self.bits.to_le_bytes());
        head.extend_from_slice(&self.count.to_le_bytes());
        head.extend_from_slice(&[0; 8]);
        for start in &self.table {
            head.extend_from_slice(&start.to_le_bytes());
        }
        f.write_all(&head).map_err(io)?;
        let expected = (HEADER + n * 8) as u64 + self.count * ENTRY as u64;
        f.set_len(expected).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(self.count)
    }
}

/// Rebuild the index from every journal, sorting in chunks of `chunk`
/// entries.
pub fn rebuild(catalog: &Path, chunk: usize) -> Result<RebuildStats, CatalogError> {
    let index = index_dir(catalog);
    fs::create_dir_all(&index).map_err(|e| CatalogError::io(&index, e))?;
    let lock_path = index.join("rebuild.lock");
    let _lock =
        crate::fsutil::lock_file(&lock_path, true).map_err(|e| CatalogError::io(&lock_path, e))?;
    let gen_dir = index.join(format!(
        "gen-{}-{}",
        crate::time::Utc::now().compact(),
        std::process::id()
    ));
    let runs_dir = gen_dir.join("runs");
    fs::create_dir_all(&runs_dir).map_err(|e| CatalogError::io(&runs_dir, e))?;

    let mut stats = RebuildStats::default();
    let mut state = State {
        format: INDEX_FORMAT.into(),
        ..State::default()
    };
    let mut sort = ExternalSort::new(&runs_dir, "run", chunk);
    let mut seq = 0u64;
    // The path index is sorted apart, in its own bounded runs.
    let mut names = super::names::Builder::new(&runs_dir, NAMES_LIMIT);
    for path in journal::journals(catalog)? {
        stats.journals += 1;
        let jid = state.journal_ids.len() as u32;
        state.journal_ids.push(file_name(&path));
        let consumed = journal::read_lines(&path, 0, |e: Entry, line| {
            seq += 1;
            let path_bytes = std::os::unix::ffi::OsStrExt::as_bytes(e.record.path.as_os_str());
            names.push(
                super::names::name(&e.stream, path_bytes, e.record.part),
                (e.version_key(), seq),
                jid,
                line,
            )?;
            // Only a version's last part says that the file is on tape (a
            // version cut short stays "not on tape" for reel-scan).
            if !e.record.ends_file() {
                return Ok(());
            }
            sort.push(Item {
                key: key(&e.stream, path_bytes),
                order: (e.version_key(), seq),
                size: e.record.size,
                mtime: e.record.mtime_ns,
                sha: e.record.sha256.map_or([0; 32], |d| d.0),
            })
        })?;
        // The bytes of complete lines read: a torn tail, or lines appended
        // while reading, leave the index stale, to be rebuilt next time.
        state
            .journals
            .insert(file_name(&path), covered_length(&path, consumed)?);
    }
    stats.entries = seq;
    // The names first: their merge starts by spilling what they hold, so
    // that the two sorts' batches are never in memory with a merge.
    names.finish_into(&gen_dir)?;
    let mut out = Output::new(&gen_dir, seq)?;
    stats.runs = sort.finish(|item| out.push(item))?;
    stats.paths = out.finish()?;
    let _ = fs::remove_dir_all(&runs_dir);
    for file in ["paths.idx", "sha256.bin", "names.idx", "names.bin"] {
        let path = gen_dir.join(file);
        if path.exists() {
            super::checked::write_sums(&path)?;
        }
    }
    state.paths = stats.paths;
    state.built = crate::time::Utc::now().rfc3339();
    let state_path = gen_dir.join("state.json");
    write_atomic(
        &state_path,
        &serde_json::to_vec_pretty(&state).expect("state serializes"),
    )
    .map_err(|e| CatalogError::io(&state_path, e))?;
    switch_current(&index, &gen_dir)?;
    Ok(stats)
}

/// Point `index/current` at `gen_dir` atomically and remove older
/// generations (readers that still map them keep their files).
fn switch_current(index: &Path, gen_dir: &Path) -> Result<(), CatalogError> {
    let name = gen_dir.file_name().expect("generation has a name");
    let tmp = index.join(format!(".current.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp).map_err(|e| CatalogError::io(&tmp, e))?;
    let current = index.join("current");
    fs::rename(&tmp, &current).map_err(|e| CatalogError::io(&current, e))?;
    crate::fsutil::sync_dir(index).map_err(|e| CatalogError::io(index, e))?;
    for e in fs::read_dir(index)
        .map_err(|e| CatalogError::io(index, e))?
        .flatten()
    {
        let n = e.file_name();
        if n != name && n.to_string_lossy().starts_with("gen-") {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}
