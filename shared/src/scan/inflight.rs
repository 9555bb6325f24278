//! "In flight is not new": the (path, size, mtime) of every record already
//! in a `scanned`, `staged`, `packed` or `written` item of the stream, so a
//! scan that runs while an earlier batch moves through the pipeline does not
//! send it twice. Items in `failed/` do not count: their files are picked up
//! again.
//!
//! Held as a set of 128-bit keys (16 bytes each), bounded by what the cache
//! can hold in flight, not by the size of the tree.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::ffi::OsStrExt;

use crate::catalog::key;
use crate::manifest::ManifestReader;
use crate::spool::{Queue, Spool};
use anyhow::Context;

/// The keys are already uniform hashes: use their low bits as they are.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64 ^ (v >> 64) as u64;
    }
}

#[derive(Default)]
pub struct InFlight {
    keys: HashSet<u128, BuildHasherDefault<KeyHasher>>,
}

fn mix(path_key: u128, size: u64, mtime_ns: i64) -> u128 {
    let salt = (u128::from(size) << 64) | u128::from(mtime_ns as u64);
    // A multiply by an odd constant spreads the salt over every bit.
    path_key ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
}

impl InFlight {
    /// Read every pipeline item of `stream`.
    pub fn load(spool: &Spool, stream: &str) -> anyhow::Result<InFlight> {
        let mut set = InFlight::default();
        for q in [Queue::Scanned, Queue::Staged, Queue::Packed, Queue::Written] {
            for id in spool.list(q)? {
                let path = spool.item_path(q, &id);
                let (header, mut reader) = match ManifestReader::open(&path) {
                    Ok(r) => r,
                    // Finished by a stage since the listing: no longer in flight.
                    Err(crate::manifest::ManifestError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        continue;
                    }
                    // A bad item is its queue's stage's to move to failed/;
                    // its files are not in flight.
                    Err(e @ crate::manifest::ManifestError::Invalid { .. }) => {
                        log::warn!(
                            "{e} (not read as in flight; the {q} stage moves it to failed/)"
                        );
                        continue;
                    }
                    Err(e) => return Err(e).context("reading the items in flight"),
                };
                if header.stream != stream {
                    continue;
                }
                let mut keys = Vec::new();
                let mut bad = None;
                for r in reader.records() {
                    match r {
                        Ok(r) => keys.push((
                            key(stream, r.path.as_os_str().as_bytes()),
                            r.size,
                            r.mtime_ns,
                        )),
                        Err(e @ crate::manifest::ManifestError::Invalid { .. }) => {
                            bad = Some(e);
                            break;
                        }
                        Err(e) => return Err(e).context("reading the items in flight"),
                    }
                }
                if let Some(e) = bad {
                    log::warn!("{e} (not read as in flight; the {q} stage moves it to failed/)");
                    continue;
                }
                for (k, size, mtime) in keys {
                    set.insert(k, size, mtime);
                }
            }
        }
        Ok(set)
    }

    pub fn insert(&mut self, path_key: u128, size: u64, mtime_ns: i64) {
        self.keys.insert(mix(path_key, size, mtime_ns));
    }

    pub fn contains(&self, path_key: u128, size: u64, mtime_ns: i64) -> bool {
        !self.keys.is_empty() && self.keys.contains(&mix(path_key, size, mtime_ns))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }
}
