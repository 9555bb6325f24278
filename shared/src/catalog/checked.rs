//! Index files with checksums. Every file of an index generation has a
//! `<name>.sum` beside it holding the xxh3-64 of each 64 KiB block, so a
//! damaged index (a flipped bit, a zeroed or truncated file, random bytes)
//! is found out when a damaged block is first read, and never trusted: the
//! reader says so and the index is rebuilt from the journals, the truth.
//!
//! `<name>.sum` (little-endian):
//!
//! ```text
//! magic     8  "REELSUM1"
//! block     4  block size (65536)
//! reserved  4
//! length    8  the length of the file it covers
//! count     8  number of blocks, ceil(length / block)
//! sums      count × 8  xxh3-64 of each block (the last one short)
//! self      8  xxh3-64 of every byte above
//! ```
//!
//! Blocks are checked lazily, each once per open: `reel find` reads a few
//! blocks of a huge index and pays for those only; a scan that looks up
//! every path ends up checking the whole file once.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{Mmap, UncheckedAdvice};
use xxhash_rust::xxh3::xxh3_64;

use super::CatalogError;

pub const SUM_MAGIC: &[u8; 8] = b"REELSUM1";
pub const BLOCK: usize = 64 << 10;

/// The checksum file of `path`.
pub fn sum_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sum");
    path.with_file_name(name)
}

fn damaged(path: &Path, why: impl std::fmt::Display) -> CatalogError {
    CatalogError::Damaged(format!("{}: {why}", path.display()))
}

/// Write `<path>.sum` for the complete file `path` (and fsync it).
pub fn write_sums(path: &Path) -> Result<(), CatalogError> {
    let io = |e| CatalogError::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(SUM_MAGIC);
    out.extend_from_slice(&(BLOCK as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut sums = Vec::new();
    let mut length = 0u64;
    let mut buf = vec![0u8; BLOCK];
    loop {
        let mut n = 0;
        while n < BLOCK {
            let got = file.read(&mut buf[n..]).map_err(io)?;
            if got == 0 {
                break;
            }
            n += got;
        }
        if n == 0 {
            break;
        }
        sums.push(xxh3_64(&buf[..n]));
        length += n as u64;
        if n < BLOCK {
            break;
        }
    }
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&(sums.len() as u64).to_le_bytes());
    for s in &sums {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let own = xxh3_64(&out);
    out.extend_from_slice(&own.to_le_bytes());
    let sum = sum_path(path);
    let mut f = File::create(&sum).map_err(|e| CatalogError::io(&sum, e))?;
    f.write_all(&out).map_err(|e| CatalogError::io(&sum, e))?;
    f.sync_all().map_err(|e| CatalogError::io(&sum, e))
}

/// A mapped index file whose blocks are checked against their sums before
/// any byte of them is handed out.
pub struct Checked {
    map: Mmap,
    file: File,
    sums: Vec<u64>,
    /// One bit per block: checked already.
    seen: Vec<AtomicU64>,
    path: PathBuf,
}

impl Checked {
    /// Map `path` with its sums. `None` when the file is missing or empty
    /// (nothing to check); a missing or bad `.sum` is damage.
    pub fn open(path: &Path) -> Result<Option<Checked>, CatalogError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CatalogError::io(path, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| CatalogError::io(path, e))?
            .len();
        if len == 0 {
            return Ok(None);
        }
        let sum = sum_path(path);
        let text = match std::fs::read(&sum) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(damaged(path, "its checksums (.sum) are missing"));
            }
            Err(e) => return Err(CatalogError::io(&sum, e)),
        };
        let sums = parse_sums(&text).map_err(|why| damaged(&sum, why))?;
        if sums.0 != len {
            return Err(damaged(
                path,
                format!("{len} bytes long, its checksums cover {}", sums.0),
            ));
        }
        // SAFETY: generation files are written once, before the generation
        // is switched in, and never changed in place.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| CatalogError::io(path, e))?;
        let seen = (0..sums.1.len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        Ok(Some(Checked {
            map,
            file,
            sums: sums.1,
            seen,
            path: path.to_path_buf(),
        }))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_block(&self, b: usize) -> Result<(), CatalogError> {
        let (word, bit) = (&self.seen[b / 64], 1u64 << (b % 64));
        if word.load(Ordering::Relaxed) & bit != 0 {
            return Ok(());
        }
        let from = b * BLOCK;
        let to = (from + BLOCK).min(self.map.len());
        if xxh3_64(&self.map[from..to]) != self.sums[b] {
            return Err(damaged(
                &self.path,
                format!("block {b} (bytes {from}–{to}) does not match its checksum"),
            ));
        }
        word.fetch_or(bit, Ordering::Relaxed);
        Ok(())
    }

    /// `len` bytes from `at`, their blocks checked; out of range is damage
    /// too (an offset read from a damaged file).
    pub fn bytes(&self, at: usize, len: usize) -> Result<&[u8], CatalogError> {
        let end = at
            .checked_add(len)
            .filter(|&e| e <= self.map.len())
            .ok_or_else(|| {
                damaged(
                    &self.path,
                    format!("bytes {at}+{len} lie beyond its end ({})", self.map.len()),
                )
            })?;
        if len > 0 {
            for b in at / BLOCK..=(end - 1) / BLOCK {
                self.check_block(b)?;
            }
        }
        Ok(&self.map[at..end])
    }

    /// A little-endian u64 at `at`.
    pub fn u64_at(&self, at: usize) -> Result<u64, CatalogError> {
        Ok(u64::from_le_bytes(
            self.bytes(at, 8)?.try_into().expect("8 bytes"),
        ))
    }

    /// Drop this process's mapping of the pages holding `len` bytes from
    /// `at` (the page cache keeps them): a scan over a file of gigabytes
    /// calls it behind itself, so that the pages it has read do not stay
    /// in its resident set. The bytes stay readable; touching them again
    /// maps them again. Blocks stay checked.
    pub fn release(&self, at: usize, len: usize) {
        let end = at.saturating_add(len).min(self.map.len());
        if at >= end {
            return;
        }
        // SAFETY: a shared, read-only mapping of a generation file, which
        // is never changed once written: a page dropped here reads back the
        // same bytes from the file when touched again, so slices handed out
        // before stay valid and unchanged.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, at, end - at)
        };
    }

    /// Check every block now, on every core, letting go of the pages
    /// behind (`release`): a file of gigabytes is checked without staying
    /// resident.
    pub fn check_all(&self) -> Result<(), CatalogError> {
        use rayon::prelude::*;
        const AT_ONCE: usize = 128; // blocks: 8 MiB
        (0..self.sums.len().div_ceil(AT_ONCE))
            .into_par_iter()
            .try_for_each(|c| {
                let blocks = c * AT_ONCE..((c + 1) * AT_ONCE).min(self.sums.len());
                let found = blocks.clone().try_for_each(|b| self.check_block(b));
                self.release(blocks.start * BLOCK, blocks.len() * BLOCK);
                found
            })
    }

    /// The open file, for reads that should not map its pages.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// (length covered, block sums) of a `.sum` file's bytes.
fn parse_sums(t: &[u8]) -> Result<(u64, Vec<u64>), String> {
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(t.get(at..at + 8)?.try_into().ok()?))
    };
    if t.len() < 40 || &t[..8] != SUM_MAGIC {
        return Err("not a reel checksum file".into());
    }
    if u32::from_le_bytes(t[8..12].try_into().expect("4 bytes")) as usize != BLOCK {
        return Err("an unknown block size".into());
    }
    let length = u64_at(16).ok_or("truncated")?;
    let count = u64_at(24).ok_or("truncated")? as usize;
    let end = 32usize
        .checked_add(count.checked_mul(8).ok_or("absurd block count")?)
        .ok_or("absurd block count")?;
    if t.len() != end + 8 {
        return Err("truncated".into());
    }
    if xxh3_64(&t[..end]) != u64_at(end).ok_or("truncated")? {
        return Err("does not match its own checksum".into());
    }
    if (count as u64) != length.div_ceil(BLOCK as u64) {
        return Err("its block count does not match the length".into());
    }
    Ok((
        length,
        (0..count)
            .map(|i| u64_at(32 + i * 8).unwrap_or(0))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_damage_is_found_where_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.idx");
        let data: Vec<u8> = (0..3 * BLOCK + 100).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        write_sums(&path).unwrap();
        let c = Checked::open(&path).unwrap().unwrap();
        assert_eq!(c.bytes(BLOCK - 4, 8).unwrap(), &data[BLOCK - 4..BLOCK + 4]);
        c.check_all().unwrap();
        assert!(c.bytes(data.len() - 1, 2).is_err(), "past the end");
        drop(c);
        // A flipped bit in block 2: blocks 0 and 1 still read.
        let mut bad = data.clone();
        bad[2 * BLOCK + 5] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let c = Checked::open(&path).unwrap().unwrap();
        assert!(c.bytes(0, BLOCK * 2).is_ok());
        let e = c.bytes(2 * BLOCK, 10).unwrap_err().to_string();
        assert!(e.contains("block 2") && e.contains("checksum"), "{e}");
        drop(c);
        // Zeroed, truncated, or its sums gone: refused at open.
        std::fs::write(&path, vec![0u8; data.len()]).unwrap();
        let c = Checked::open(&path).unwrap().unwrap();
        assert!(c.check_all().is_err());
        std::fs::write(&path, &data[..100]).unwrap();
        assert!(matches!(
            Checked::open(&path),
            Err(CatalogError::Damaged(_))
        ));
        std::fs::write(&path, &data).unwrap();
        let sum = sum_path(&path);
        let mut s = std::fs::read(&sum).unwrap();
        s[40] ^= 1;
        std::fs::write(&sum, &s).unwrap();
        assert!(matches!(
            Checked::open(&path),
            Err(CatalogError::Damaged(_))
        ));
        std::fs::remove_file(&sum).unwrap();
        assert!(matches!(
            Checked::open(&path),
            Err(CatalogError::Damaged(_))
        ));
    }
}
