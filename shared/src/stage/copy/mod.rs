//! Copying one file onto the cache, hashing it on the way, never leaving a
//! torn copy behind.
//!
//! The source is opened once; its size, mtime, ctime and inode are taken
//! before the copy, again after every chunk of it and at the end, and the
//! path is checked to still lead to the same inode. Anything different
//! means the file changed while it was copied: the copy is thrown away (at
//! once, not after reading the rest of a huge file) and tried again, and
//! after `retries` attempts the file is reported as changing and left for
//! the next run. A file whose size is no longer the one the scan recorded
//! is not copied at all: it changed since the scan (a writer that truncates
//! and rewrites can be caught at 0 bytes, between its two steps), and the
//! next scan records it afresh.
//! The copy is written under a temporary name beside its target and renamed
//! into place only when complete, so the target path never holds half a
//! file, whatever kills the process.
//!
//! Large files are copied in the kernel (`copy_file_range`) while another
//! thread hashes the source from the page cache; small files go through one
//! buffer that is hashed and written. A quick check like rsync's skips a
//! file already staged with the same size and mtime: its digest is kept in
//! the `user.reel.staged` extended attribute of the staged copy.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::beneath::Dir;
use crate::manifest::Digest;
use sha2::{Digest as _, Sha256};

use super::limit::Limiter;
use super::meta;

mod bundle;
pub use bundle::{Bundles, bundle_dir};

/// What staging one file gave.
#[derive(Debug, Clone, Copy)]
pub struct Staged {
    /// Of what was copied: the file, or the part.
    pub sha256: Digest,
    /// The source file's size (a part's length is the caller's).
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// False when the quick check found it already staged.
    pub copied: bool,
}

#[derive(Debug)]
pub enum CopyError {
    /// The source is gone.
    Vanished,
    /// The source kept changing during every attempt.
    Changing,
    /// The source is not what the scan recorded: another size, another
    /// file (a path swapped), no longer a regular file. Why.
    ChangedSinceScan(String),
    /// The source changed during this attempt (retried, never returned
    /// by `copy_file`).
    ChangedDuringCopy,
    /// Reading the source failed (permission denied, I/O error).
    Source(io::Error),
    /// The cache is full.
    CacheFull(io::Error),
    /// Writing the cache failed otherwise.
    Cache(io::Error),
}

pub struct CopyOptions<'a> {
    pub retries: u32,
    pub limiter: Option<&'a Limiter>,
    pub chown: bool,
}

/// Files at least this large are copied in the kernel while hashed.
const BIG: u64 = 8 << 20;
const BUF: usize = 1 << 20;
pub const STAGED_XATTR: &str = "user.reel.staged";

/// A test hook: with `REEL_TEST_ENOSPC_AFTER=<bytes>` set, writes to the
/// cache fail with ENOSPC once that many bytes were written, so the tests
/// can fill a cache without mounting one.
fn enospc_budget() -> Option<u64> {
    static BUDGET: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("REEL_TEST_ENOSPC_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

static WRITTEN: AtomicU64 = AtomicU64::new(0);

fn account(n: usize) -> io::Result<()> {
    if let Some(budget) = enospc_budget()
        && WRITTEN.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > budget
    {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

fn cache_error(e: io::Error) -> CopyError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => CopyError::CacheFull(e),
        _ => CopyError::Cache(e),
    }
}

/// The identity of a source file, compared before and after a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

impl FileStamp {
    fn of_stat(st: &nix::sys::stat::FileStat) -> FileStamp {
        FileStamp {
            size: st.st_size as u64,
            mtime_ns: crate::time::ns(st.st_mtime, st.st_mtime_nsec),
            ctime_ns: crate::time::ns(st.st_ctime, st.st_ctime_nsec),
            ino: st.st_ino,
            dev: st.st_dev,
        }
    }

    fn of(m: &fs::Metadata) -> FileStamp {
        FileStamp {
            size: m.size(),
            mtime_ns: crate::time::ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: crate::time::ns(m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

/// The temporary name for `dst`: hidden, of fixed length whatever the
/// name's length, and the same in every run, so a copy left behind by a
/// killed run is taken over and replaced by the next one.
fn temp_path(dst: &Path) -> PathBuf {
    let name = dst.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    let h = xxhash_rust::xxh3::xxh3_64(name);
    dst.with_file_name(format!(".reel-tmp-{h:016x}"))
}

/// Read the digest the quick check trusts: `"<sha256> <size> <mtime_ns>"`.
fn staged_digest(dst: &Path, size: u64, mtime_ns: i64) -> Option<Digest> {
    let value = meta::get_xattr(dst, STAGED_XATTR)?;
    let text = String::from_utf8(value).ok()?;
    let mut parts = text.split(' ');
    let digest: Digest = parts.next()?.parse().ok()?;
    (parts.next()?.parse::<u64>().ok()? == size && parts.next()?.parse::<i64>().ok()? == mtime_ns)
        .then_some(digest)
}

fn hash_file(file: &File) -> io::Result<Digest> {
    hash_range_until(file, 0, u64::MAX, &AtomicBool::new(false))
}

/// Hash `len` bytes of `file` from `from` (less at its end); stops early
/// (with a meaningless digest) once `stop` is set.
fn hash_range_until(file: &File, from: u64, len: u64, stop: &AtomicBool) -> io::Result<Digest> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let (mut off, end) = (from, from.saturating_add(len));
    while off < end && !stop.load(Ordering::Relaxed) {
        let want = (end - off).min(BUF as u64) as usize;
        let n = file.read_at(&mut buf[..want], off)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(Digest(h.finalize().into()))
}

/// `Err(ChangedDuringCopy)` when `src` no longer has the identity it had
/// when the attempt began.
fn unchanged(src: &File, before: &FileStamp) -> Result<(), CopyError> {
    let now = FileStamp::of(&src.metadata().map_err(CopyError::Source)?);
    if now == *before {
        Ok(())
    } else {
        Err(CopyError::ChangedDuringCopy)
    }
}

/// Copy `range` of `src` to `dst` from byte `at` of it through `buf`
/// (grown to a chunk as needed), hashing it; rate-limited when asked. The
/// source's identity is checked after every chunk, and a source that ends
/// before the range does is a change.
fn copy_buffered(
    src: &mut File,
    dst: &File,
    at: u64,
    before: &FileStamp,
    range: Range,
    limiter: Option<&Limiter>,
    buf: &mut Vec<u8>,
) -> Result<Digest, CopyError> {
    let chunk = range.len.clamp(1, 256 << 10) as usize;
    if buf.len() < chunk {
        buf.resize(chunk, 0);
    }
    let mut h = Sha256::new();
    src.seek(io::SeekFrom::Start(range.offset))
        .map_err(CopyError::Source)?;
    let mut src = Read::take(&mut *src, range.len);
    let mut done = 0u64;
    loop {
        let n = src.read(&mut buf[..chunk]).map_err(CopyError::Source)?;
        if n == 0 {
            break;
        }
        if let Some(l) = limiter {
            l.take(n as u64);
        }
        h.update(&buf[..n]);
        account(n).map_err(cache_error)?;
        dst.write_all_at(&buf[..n], at + done)
            .map_err(cache_error)?;
        done += n as u64;
        unchanged(src.get_ref(), before)?;
    }
    if done != range.len {
        return Err(CopyError::ChangedDuringCopy);
    }
    Ok(Digest(h.finalize().into()))
}

/// Copy in the kernel while another thread hashes the source; the
/// source's identity is checked after every chunk, and a change stops
/// both the copy and the hashing.
fn copy_in_kernel(
    src: &File,
    dst: &File,
    before: &FileStamp,
    range: Range,
) -> Result<Digest, CopyError> {
    let end = range.offset + range.len;
    let changed = AtomicBool::new(false);
    std::thread::scope(|s| {
        let hasher = s.spawn(|| hash_range_until(src, range.offset, range.len, &changed));
        let mut off_in = range.offset as i64;
        let mut off_out: i64 = 0;
        let mut result = Ok(());
        while (off_in as u64) < end {
            let want = ((end - off_in as u64).min(64 << 20)) as usize;
            if let Err(e) = account(want) {
                result = Err(cache_error(e));
                break;
            }
            match nix::fcntl::copy_file_range(
                src.as_fd(),
                Some(&mut off_in),
                dst.as_fd(),
                Some(&mut off_out),
                want,
            ) {
                Ok(0) => break, // The source shrank: the identity check sees it.
                Ok(_) => {}
                Err(e) => {
                    result = Err(cache_error(io::Error::from(e)));
                    break;
                }
            }
            if let Err(e) = unchanged(src, before) {
                result = Err(e);
                break;
            }
        }
        if result.is_err() {
            changed.store(true, Ordering::Relaxed);
        }
        let digest = hasher
            .join()
            .expect("the hashing thread does not panic")
            .map_err(CopyError::Source)?;
        result.map(|()| digest)
    })
}

/// A source file: the directory of the source that holds it, reached
/// from the stream's root without following any symlink, and its name.
pub struct Source<'a> {
    pub dir: &'a Dir,
    pub name: &'a OsStr,
}

/// What the scan recorded of a file: its size, and where it was (device
/// and inode, when the scan said).
pub struct Scanned {
    pub size: u64,
    pub dev: Option<u64>,
    pub ino: Option<u64>,
    /// Only this part of the file (a file staged in parts).
    pub part: Option<PartOf>,
}

/// Bytes of a file: `len` from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub offset: u64,
    pub len: u64,
}

/// A part of a file staged in parts: its range, and the mtime and ctime
/// the file had when its earlier parts were copied (none for the first):
/// parts of one version come from one unchanged file.
#[derive(Debug, Clone, Copy)]
pub struct PartOf {
    pub range: Range,
    pub seen: Option<(i64, i64)>,
}

/// The source file opened, if it is still the regular file the scan
/// recorded (same device, inode and size; for a later part, unchanged since
/// the earlier ones): its metadata and identity as the copy begins.
fn open_source(
    src: &Source,
    scanned: &Scanned,
) -> Result<(File, fs::Metadata, FileStamp), CopyError> {
    let source = match src.dir.open_file(src.name) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CopyError::Vanished),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(CopyError::ChangedSinceScan("it is a symlink now".into()));
        }
        Err(e) => return Err(CopyError::Source(e)),
    };
    let meta = source.metadata().map_err(CopyError::Source)?;
    if !meta.is_file() {
        return Err(CopyError::ChangedSinceScan(
            "it is no longer a regular file".into(),
        ));
    }
    let before = FileStamp::of(&meta);
    if scanned.dev.is_some_and(|d| d != before.dev) || scanned.ino.is_some_and(|i| i != before.ino)
    {
        return Err(CopyError::ChangedSinceScan(format!(
            "it is another file than the one scanned (inode {}, then {})",
            before.ino,
            scanned.ino.unwrap_or(0)
        )));
    }
    if before.size != scanned.size {
        return Err(CopyError::ChangedSinceScan(format!(
            "{} bytes then, {} now",
            scanned.size, before.size
        )));
    }
    if let Some(seen) = scanned.part.and_then(|p| p.seen)
        && seen != (before.mtime_ns, before.ctime_ns)
    {
        return Err(CopyError::ChangedSinceScan(
            "it changed since its earlier parts were staged".into(),
        ));
    }
    Ok((source, meta, before))
}

/// After a copy: whether the open source and the file its path leads to
/// still have the identity the copy began with (`false`: it changed, try
/// again); `Err(Vanished)` when the path leads nowhere now.
fn still_same(src: &Source, source: &File, before: &FileStamp) -> Result<bool, CopyError> {
    let after = FileStamp::of(&source.metadata().map_err(CopyError::Source)?);
    let there = src.dir.stat(src.name).map(|st| FileStamp::of_stat(&st));
    if after == *before && there.as_ref().ok() == Some(before) {
        return Ok(true);
    }
    if there.is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Err(CopyError::Vanished);
    }
    Ok(false)
}

/// Before attempt `attempt` (from 0) at copying `src`: after the first,
/// say so and give the writer that changed it a moment, longer each time.
fn again(src: &Source, attempt: u32) {
    if attempt > 0 {
        log::debug!(
            "{}: changed while it was copied; again (attempt {})",
            src.dir.path().join(src.name).display(),
            attempt + 1
        );
        std::thread::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)));
    }
}

/// Stage the source file as `dst` (whose directory exists), only if it is
/// still the file the scan recorded.
pub fn copy_file(
    src: &Source,
    dst: &Path,
    scanned: &Scanned,
    opts: &CopyOptions,
) -> Result<Staged, CopyError> {
    for attempt in 0..=opts.retries {
        again(src, attempt);
        let (mut source, meta_before, before) = open_source(src, scanned)?;
        let range = scanned.part.map_or(
            Range {
                offset: 0,
                len: before.size,
            },
            |p| p.range,
        );
        // Quick check: already staged with this size and mtime.
        if scanned.part.is_none()
            && let Ok(existing) = fs::symlink_metadata(dst)
            && existing.is_file()
            && existing.size() == before.size
            && crate::time::ns(existing.mtime(), existing.mtime_nsec()) == before.mtime_ns
        {
            let sha256 = match staged_digest(dst, before.size, before.mtime_ns) {
                Some(d) => d,
                None => {
                    let d = hash_file(&File::open(dst).map_err(CopyError::Cache)?)
                        .map_err(CopyError::Cache)?;
                    let _ = meta::set_xattr_path(
                        dst,
                        STAGED_XATTR,
                        &format!("{d} {} {}", before.size, before.mtime_ns),
                    );
                    d
                }
            };
            return Ok(Staged {
                sha256,
                size: before.size,
                mtime_ns: before.mtime_ns,
                ctime_ns: before.ctime_ns,
                copied: false,
            });
        }
        let tmp = temp_path(dst);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&tmp)
            .map_err(cache_error)?;
        // The lock keeps two stagers of one path from writing one temporary.
        let Some(lock) = crate::fsutil::try_lock(file).map_err(CopyError::Cache)? else {
            return Err(CopyError::Cache(io::Error::other(
                "another reel-stage is copying this file right now",
            )));
        };
        // Another stager may have renamed the temporary into place between
        // our open and our lock: then this one is not ours to truncate.
        if !crate::fsutil::still_linked(&*lock, &tmp).map_err(CopyError::Cache)? {
            continue;
        }
        let out: &File = &lock;
        out.set_len(0).map_err(cache_error)?;
        let copied = if range.len >= BIG && opts.limiter.is_none() {
            match copy_in_kernel(&source, out, &before, range) {
                Err(CopyError::Cache(e))
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                    ) =>
                {
                    // No in-kernel copy between these file systems.
                    out.set_len(0).map_err(CopyError::Cache)?;
                    copy_buffered(&mut source, out, 0, &before, range, None, &mut Vec::new())
                }
                other => other,
            }
        } else {
            copy_buffered(
                &mut source,
                out,
                0,
                &before,
                range,
                opts.limiter,
                &mut Vec::new(),
            )
        };
        let sha256 = match copied {
            Ok(d) => d,
            Err(CopyError::ChangedDuringCopy) => {
                let _ = fs::remove_file(&tmp);
                continue;
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        match still_same(src, &source, &before) {
            Ok(true) => {}
            other => {
                let _ = fs::remove_file(&tmp);
                other?;
                continue;
            }
        }
        let applied = meta::apply_to_file(&source, out, &meta_before, opts.chown).and_then(|()| {
            if scanned.part.is_some() {
                return Ok(()); // never taken for the whole file
            }
            meta::set_xattr_fd(
                out,
                STAGED_XATTR,
                &format!("{sha256} {} {}", before.size, before.mtime_ns),
            )
        });
        if let Err(e) = applied.and_then(|()| fs::rename(&tmp, dst)) {
            let _ = fs::remove_file(&tmp);
            return Err(cache_error(e));
        }
        return Ok(Staged {
            sha256,
            size: before.size,
            mtime_ns: before.mtime_ns,
            ctime_ns: before.ctime_ns,
            copied: true,
        });
    }
    Err(CopyError::Changing)
}

#[cfg(test)]
mod tests;
