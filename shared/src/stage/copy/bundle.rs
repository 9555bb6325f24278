//! Small files staged into bundles: a few cache files per item, each
//! holding many files' content one after another, in place of a cache file
//! per file. Creating and then removing tens of thousands of small files
//! is most of what staging and freeing them costs on ext4; a bundle is
//! written once, read by reel-pack at each member's offset (the record's
//! `cache_offset`), and removed with its item's other bundles by
//! reel-verify once nothing waiting needs them.
//!
//! Each copying thread appends to a bundle of its own, so the bundles need
//! no lock between threads. A file is copied and hashed through one buffer
//! at the bundle's end; it counts only once the source proved unchanged
//! after the copy, else the next attempt (or the next file) overwrites the
//! same bytes. Bundles are named after the process and a counter, never
//! reused: what a killed run left in the directory is never overwritten
//! under a manifest that a published item may still hold, and goes when
//! the directory does.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{
    CopyError, CopyOptions, Range, Scanned, Source, Staged, again, cache_error, copy_buffered,
    open_source, still_same,
};

/// A bundle grows to this, then the thread starts another.
const BUNDLE_MAX: u64 = 1 << 30;

/// The bundle directory of item `id` of `stream` under `<cache>/staged`.
/// Stream names start with a letter or digit, so `.bundles` is never a
/// stream's directory.
pub fn bundle_dir(staged_root: &Path, stream: &str, id: &str) -> PathBuf {
    staged_root.join(".bundles").join(stream).join(id)
}

/// One open bundle: its path, and how many of its bytes hold staged files.
struct Bundle {
    file: File,
    path: PathBuf,
    len: u64,
    buf: Vec<u8>,
}

/// The bundles of one item being staged: one per copying thread.
pub struct Bundles {
    dir: PathBuf,
    slots: Vec<Mutex<Option<Bundle>>>,
    next: AtomicU32,
}

/// Where a file went into a bundle.
pub struct InBundle {
    pub staged: Staged,
    pub bundle: PathBuf,
    pub offset: u64,
}

impl Bundles {
    /// The bundles of an item, in `dir` (made when the first is), for
    /// `threads` copying threads.
    pub fn new(dir: PathBuf, threads: usize) -> Bundles {
        Bundles {
            dir,
            slots: (0..threads.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicU32::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copy the source into this thread's bundle, hashing it, only if it is
    /// still the file the scan recorded. `Ok(None)`: it has extended
    /// attributes, which a bundle cannot keep; it needs a copy of its own.
    pub fn copy(
        &self,
        src: &Source,
        scanned: &Scanned,
        opts: &CopyOptions,
    ) -> Result<Option<InBundle>, CopyError> {
        let slot = rayon::current_thread_index().unwrap_or(0) % self.slots.len();
        let mut guard = self.slots[slot].lock().expect("lock");
        for attempt in 0..=opts.retries {
            again(src, attempt);
            let (mut source, _, before) = open_source(src, scanned)?;
            if !crate::xattrs::all(std::os::fd::AsFd::as_fd(&source))
                .map_err(CopyError::Source)?
                .is_empty()
            {
                return Ok(None);
            }
            let size = before.size;
            if guard
                .as_ref()
                .is_none_or(|b| b.len > 0 && b.len + size > BUNDLE_MAX)
            {
                *guard = Some(self.open_next().map_err(cache_error)?);
            }
            let bundle = guard.as_mut().expect("just opened");
            let at = bundle.len;
            let range = Range {
                offset: 0,
                len: size,
            };
            let digest = match copy_buffered(
                &mut source,
                &bundle.file,
                at,
                &before,
                range,
                opts.limiter,
                &mut bundle.buf,
            ) {
                Ok(d) => d,
                Err(CopyError::ChangedDuringCopy) => continue,
                Err(e) => return Err(e),
            };
            if !still_same(src, &source, &before)? {
                continue;
            }
            bundle.len = at + size;
            return Ok(Some(InBundle {
                staged: Staged {
                    sha256: digest,
                    size,
                    mtime_ns: before.mtime_ns,
                    ctime_ns: before.ctime_ns,
                    copied: true,
                },
                bundle: bundle.path.clone(),
                offset: at,
            }));
        }
        Err(CopyError::Changing)
    }

    /// A new bundle, never one that exists.
    fn open_next(&self) -> io::Result<Bundle> {
        fs::create_dir_all(&self.dir)?;
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let path = self.dir.join(format!("{}-{n:04}", std::process::id()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(Bundle {
                        file,
                        path,
                        len: 0,
                        buf: Vec::new(),
                    });
                }
                // Left by an earlier process with this pid: never reused.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Cut every bundle to the bytes that hold staged files (a last attempt
    /// that failed may have left more).
    pub fn finish(&self) -> io::Result<()> {
        for slot in &self.slots {
            if let Some(b) = slot.lock().expect("lock").take() {
                b.file.set_len(b.len)?;
            }
        }
        Ok(())
    }
}
