//! One item on its way to the cache: where its source is, the directory it
//! gets in the cache, whether the cache has room for it, and the run's
//! counters.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context;
use rayon::prelude::*;

use crate::beneath::Tree;
use crate::config::{Config, Source};
use crate::manifest::{EntryType, Header, Record};
use crate::spool::Queue;

use super::copy::CopyOptions;
use super::space::Space;

/// Counters of one run.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) files: AtomicU64,
    pub(super) copied: AtomicU64,
    pub(super) quick: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) skipped: AtomicU64,
}

/// Why an item stopped.
pub(super) enum Stop {
    CacheFull(String),
    SourceMissing(String),
    /// The item cannot be staged as it is: to failed/.
    Unusable(String),
}

pub(super) struct Stager<'a> {
    pub(super) config: &'a Config,
    pub(super) opts: CopyOptions<'a>,
    pub(super) space: Space,
    pub(super) pool: rayon::ThreadPool,
    pub(super) tally: Tally,
    /// Directories of the cache known to exist (no mkdir per file).
    pub(super) made: Mutex<std::collections::HashSet<PathBuf>>,
    pub(super) spool: crate::spool::Spool,
}

pub(super) fn join_bytes(base: &Path, rel: &Path) -> PathBuf {
    base.join(OsStr::from_bytes(rel.as_os_str().as_bytes()))
}

impl Stager<'_> {
    /// The most cache any item waiting in the staged queue needs to be
    /// packed: staging keeps that much free.
    pub(super) fn largest_staged(&self) -> anyhow::Result<u64> {
        let mut largest = 0;
        for id in self.spool.list(Queue::Staged)? {
            let path = self.spool.item_path(Queue::Staged, &id);
            if let Ok((records, bytes)) = crate::manifest::ManifestReader::totals(&path) {
                largest = largest.max(crate::fsutil::cache_need(records, bytes));
            }
        }
        Ok(largest)
    }

    /// Why the cache has no room now for an item needing `need` bytes:
    /// staging keeps room to pack what is staged (`largest_staged`) after
    /// it. `None` when it has room.
    pub(super) fn no_room(&self, id: &str, need: u64) -> anyhow::Result<Option<String>> {
        let reserve = need.max(self.largest_staged()?);
        Ok(self
            .space
            .room_for(id, need, reserve)
            .context("measuring the cache")?
            .err())
    }

    /// Where the item's files come from; `Err(reason)` when the item
    /// cannot say (it goes to failed/).
    pub(super) fn source_root(&self, header: &Header) -> Result<PathBuf, String> {
        let named = header
            .extra
            .get("source")
            .and_then(|v| v.as_str())
            .map(PathBuf::from);
        let Some(stream) = self.config.stream(&header.stream) else {
            return named.ok_or_else(|| {
                format!(
                    "no [[stream]] named {:?} and no source in the manifest",
                    header.stream
                )
            });
        };
        let root = match &stream.source {
            Source::Local(p) => p.clone(),
            // reel-scan pulled it into the landing area.
            Source::Remote { .. } => {
                crate::remote::landing_dir(&self.config.paths.cache, &header.stream)
            }
        };
        match named {
            Some(n) if n != root => Err(format!(
                "the manifest was scanned from {} but stream {:?} backs up {}",
                n.display(),
                header.stream,
                root.display()
            )),
            _ => Ok(root),
        }
    }

    /// Make `dir` (inside `base`) a real directory, component by component:
    /// never through a symlink a former version of the tree left in the
    /// cache, which could lead outside it.
    pub(super) fn ensure_dir(&self, base: &Path, dir: &Path) -> std::io::Result<()> {
        if self.made.lock().expect("lock").contains(dir) {
            return Ok(());
        }
        let rel = dir.strip_prefix(base).unwrap_or(Path::new(""));
        let mut at = base.to_path_buf();
        for part in rel.components() {
            at.push(part);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    fs::remove_file(&at)?;
                    fs::create_dir(&at)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::create_dir(&at) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                },
                Err(e) => return Err(e),
            }
        }
        self.made.lock().expect("lock").insert(dir.to_path_buf());
        Ok(())
    }

    pub(super) fn skip(&self, r: &Record, why: impl std::fmt::Display) {
        log::warn!("{}: {why}; left for the next run", r.path.display());
        self.tally.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Stage one item; returns the staged records in manifest order.
    pub(super) fn stage(
        &self,
        header: &Header,
        records: Vec<Record>,
    ) -> anyhow::Result<Result<Vec<Record>, Stop>> {
        let root = match self.source_root(header) {
            Ok(r) => r,
            Err(why) => return Ok(Err(Stop::Unusable(why))),
        };
        let source = match Tree::open_existing(&root) {
            Ok(t) => t,
            Err(_) => {
                return Ok(Err(Stop::SourceMissing(format!(
                    "the source {} of stream {} is not there (unmounted?)",
                    root.display(),
                    header.stream
                ))));
            }
        };
        let cache = self.item_dir(header)?;
        let mut out: Vec<Option<Record>> = vec![None; records.len()];
        // A directory needs nothing in the cache: its member is made from
        // its record. The directories copies go into are made as they are
        // needed (`ensure_dir`).
        for (i, r) in records.iter().enumerate() {
            if r.entry == EntryType::Dir {
                out[i] = Some(r.clone());
            }
        }
        let bundles = (self.config.cache.bundle_below.0 > 0).then(|| {
            super::copy::Bundles::new(self.bundle_dir(header), self.pool.current_num_threads())
        });
        let full: Mutex<Option<String>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let staged: Vec<(usize, Record)> = self.pool.install(|| {
            records
                .par_iter()
                .enumerate()
                .filter(|(_, r)| r.entry == EntryType::File)
                .filter_map(|(i, r)| {
                    if stop.load(Ordering::Relaxed) {
                        return None;
                    }
                    match self.stage_file(&source, &cache, bundles.as_ref(), r) {
                        Ok(rec) => rec.map(|rec| (i, rec)),
                        Err(reason) => {
                            stop.store(true, Ordering::Relaxed);
                            full.lock().expect("lock").get_or_insert(reason);
                            None
                        }
                    }
                })
                .collect()
        });
        if let Some(b) = &bundles
            && let Err(e) = b.finish()
        {
            if is_full(&e) {
                return Ok(Err(self.full(e)));
            }
            return Err(e)
                .with_context(|| format!("finishing the bundles in {}", b.dir().display()));
        }
        if let Some(reason) = full.into_inner().expect("lock") {
            return Ok(Err(Stop::CacheFull(reason)));
        }
        for (i, rec) in staged {
            out[i] = Some(rec);
        }
        for (i, r) in records.iter().enumerate() {
            match r.entry {
                EntryType::Symlink => out[i] = self.stage_symlink(&cache, r),
                EntryType::Fifo | EntryType::Char | EntryType::Block => out[i] = Some(r.clone()),
                _ => {}
            }
        }
        for (i, r) in records.iter().enumerate() {
            if r.entry == EntryType::Hardlink {
                out[i] = self.stage_hardlink(&cache, r, &records, &out);
            }
        }
        // When each was taken from the source: what orders the versions of
        // a path in the catalog (files have theirs from their copy).
        let now = crate::time::now_ns();
        Ok(Ok(out
            .into_iter()
            .flatten()
            .map(|mut r| {
                r.taken_ns.get_or_insert(now);
                // Where the scan found it matters no more.
                (r.dev, r.ino) = (None, None);
                r
            })
            .collect()))
    }

    /// The item's own directory in the cache, made, without what a killed
    /// run of it left half made. One directory per item: a newer version
    /// of a file, staged while an older one is still on its way to tape,
    /// never replaces it.
    pub(super) fn item_dir(&self, header: &Header) -> anyhow::Result<PathBuf> {
        let dir = self
            .config
            .paths
            .cache
            .join("staged")
            .join(&header.stream)
            .join(&header.id);
        if dir.is_dir() {
            remove_temporaries(&dir);
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// Where the item's small files are bundled: `<cache>/staged/.bundles/<stream>/<item>`.
    pub(super) fn bundle_dir(&self, header: &Header) -> PathBuf {
        super::copy::bundle_dir(
            &self.config.paths.cache.join("staged"),
            &header.stream,
            &header.id,
        )
    }

    pub(super) fn full(&self, e: std::io::Error) -> Stop {
        self.space.pause();
        Stop::CacheFull(format!(
            "the cache {} is full: {e}",
            self.config.paths.cache.display()
        ))
    }
}

pub(super) fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Remove the temporaries (`.reel-tmp-*`: copies, links and symlinks being
/// made) that a killed run left anywhere under an item's cache directory.
/// Only this run has the item claimed, so none of them is in use.
pub(super) fn remove_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            remove_temporaries(&e.path());
        } else if e.file_name().as_bytes().starts_with(b".reel-tmp-") {
            log::debug!("removing {}, left by a killed run", e.path().display());
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The cache an item's files need.
pub(super) fn item_need(records: &[Record]) -> u64 {
    let bytes = records
        .iter()
        .filter(|r| r.entry == EntryType::File)
        .map(Record::bytes)
        .sum();
    crate::fsutil::cache_need(records.len() as u64, bytes)
}

pub(super) fn with_cache(r: &Record, dst: &Path) -> Record {
    let mut rec = r.clone();
    rec.cache = Some(dst.to_path_buf());
    rec
}

/// Flush the cache file system: staged copies must be on disk before the
/// manifest that points at them is published.
pub(super) fn sync_cache(cache: &Path) -> anyhow::Result<()> {
    let f = fs::File::open(cache).with_context(|| format!("opening {}", cache.display()))?;
    nix::unistd::syncfs(&f)
        .map_err(std::io::Error::from)
        .with_context(|| format!("syncing {}", cache.display()))
}
