//! Sorting more than fits in memory, keeping the newest item of each key:
//! items are gathered up to a limit, each batch sorted, thinned to the
//! newest item of each key and written as a run file, and the runs merged.
//! Both indexes of a generation are built this way (`rebuild.rs` for
//! `paths.idx`, `names.rs` for `names.idx`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::CatalogError;

/// An item of an external sort. Items sort by (key, age): of two items with
/// the same key, the greater is the newer, and only it is kept.
pub(super) trait RunItem: Ord + Sized {
    /// Whether `other` has the same key.
    fn same_key(&self, other: &Self) -> bool;
    /// What the item counts against the memory limit.
    fn weight(&self) -> usize;
    /// Write the item to a run file.
    fn encode(&self, w: &mut impl Write) -> std::io::Result<()>;
    /// Read the next item of a run file; `None` at its end.
    fn decode(r: &mut impl Read) -> std::io::Result<Option<Self>>;
}

/// An external sort in progress: run files go into `dir`, named
/// `<prefix>-NNNNN`.
pub(super) struct ExternalSort<T> {
    dir: PathBuf,
    prefix: &'static str,
    buf: Vec<T>,
    weight: usize,
    limit: usize,
    runs: Vec<PathBuf>,
}

/// Sort `items` and keep the last (newest) item of each key.
fn sort_newest<T: RunItem>(items: &mut Vec<T>) {
    items.sort_unstable();
    let mut out = 0;
    for i in 0..items.len() {
        if i + 1 < items.len() && items[i + 1].same_key(&items[i]) {
            continue;
        }
        items.swap(out, i);
        out += 1;
    }
    items.truncate(out);
}

impl<T: RunItem> ExternalSort<T> {
    /// A sort that holds at most `limit` (in items' weight) in memory.
    pub fn new(dir: &Path, prefix: &'static str, limit: usize) -> Self {
        ExternalSort {
            dir: dir.to_path_buf(),
            prefix,
            buf: Vec::new(),
            weight: 0,
            limit: limit.max(1),
            runs: Vec::new(),
        }
    }

    /// Add an item; a full batch is written out as a run.
    pub fn push(&mut self, item: T) -> Result<(), CatalogError> {
        self.weight += item.weight();
        self.buf.push(item);
        if self.weight >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), CatalogError> {
        sort_newest(&mut self.buf);
        let path = self
            .dir
            .join(format!("{}-{:05}", self.prefix, self.runs.len()));
        let io = |e| CatalogError::io(&path, e);
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io)?);
        for item in &self.buf {
            item.encode(&mut w).map_err(io)?;
        }
        w.flush().map_err(io)?;
        self.runs.push(path);
        self.buf.clear();
        self.weight = 0;
        Ok(())
    }

    /// Hand every key's newest item to `emit`, in key order, and remove the
    /// run files. Returns how many runs were written (0: all fitted in
    /// memory).
    pub fn finish(
        mut self,
        mut emit: impl FnMut(&T) -> Result<(), CatalogError>,
    ) -> Result<usize, CatalogError> {
        if self.runs.is_empty() {
            sort_newest(&mut self.buf);
            for item in &self.buf {
                emit(item)?;
            }
            return Ok(0);
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        // The batch's memory is not needed while merging.
        self.buf = Vec::new();
        self.merge(&mut emit)?;
        for path in &self.runs {
            let _ = std::fs::remove_file(path);
        }
        Ok(self.runs.len())
    }

    /// K-way merge of the runs, keeping the newest item per key.
    fn merge(
        &self,
        emit: &mut impl FnMut(&T) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        let mut readers = Vec::with_capacity(self.runs.len());
        for path in &self.runs {
            let f = File::open(path).map_err(|e| CatalogError::io(path, e))?;
            readers.push(BufReader::with_capacity(256 * 1024, f));
        }
        let next = |i: usize, readers: &mut [BufReader<File>]| {
            T::decode(&mut readers[i]).map_err(|e| CatalogError::io(&self.runs[i], e))
        };
        let mut heap = BinaryHeap::new();
        for i in 0..readers.len() {
            if let Some(item) = next(i, &mut readers)? {
                heap.push(Reverse((item, i)));
            }
        }
        let mut pending: Option<T> = None;
        while let Some(Reverse((item, i))) = heap.pop() {
            if let Some(following) = next(i, &mut readers)? {
                heap.push(Reverse((following, i)));
            }
            // Same key, popped in (key, age) order: the later one is newer.
            if let Some(p) = pending.take()
                && !p.same_key(&item)
            {
                emit(&p)?;
            }
            pending = Some(item);
        }
        if let Some(p) = pending {
            emit(&p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, age) pairs as 16 bytes.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    struct Pair(u64, u64);

    impl RunItem for Pair {
        fn same_key(&self, other: &Self) -> bool {
            self.0 == other.0
        }
        fn weight(&self) -> usize {
            1
        }
        fn encode(&self, w: &mut impl Write) -> std::io::Result<()> {
            w.write_all(&self.0.to_le_bytes())?;
            w.write_all(&self.1.to_le_bytes())
        }
        fn decode(r: &mut impl Read) -> std::io::Result<Option<Self>> {
            let mut b = [0u8; 16];
            match r.read_exact(&mut b) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
            let at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            Ok(Some(Pair(at(0), at(8))))
        }
    }

    fn sorted(limit: usize, items: &[Pair]) -> (Vec<Pair>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut sort = ExternalSort::new(dir.path(), "run", limit);
        for it in items {
            sort.push(it.clone()).unwrap();
        }
        let mut out = Vec::new();
        let runs = sort
            .finish(|p| {
                out.push(p.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "runs left"
        );
        (out, runs)
    }

    #[test]
    fn the_newest_of_each_key_in_key_order_in_memory_or_through_runs() {
        // Keys 0..50, each three times with ages in scrambled order.
        let items: Vec<Pair> = (0..150u64)
            .map(|i| Pair((i * 7) % 50, (i * 13) % 11))
            .collect();
        let mut want: Vec<Pair> = Vec::new();
        for k in 0..50 {
            let newest = items
                .iter()
                .filter(|p| p.0 == k)
                .map(|p| p.1)
                .max()
                .unwrap();
            want.push(Pair(k, newest));
        }
        let (in_memory, runs) = sorted(1000, &items);
        assert_eq!((in_memory, runs), (want.clone(), 0));
        // A key's copies fall in different runs: the merge still keeps the newest.
        let (merged, runs) = sorted(7, &items);
        assert_eq!(merged, want);
        assert_eq!(runs, 150usize.div_ceil(7));
    }

    #[test]
    fn nothing_pushed_is_nothing_emitted() {
        assert_eq!(sorted(3, &[]), (Vec::new(), 0));
    }
}
