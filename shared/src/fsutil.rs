//! File-system helpers behind invariant 4 (ARCHITECTURE.md, docs/spool.md §3):
//! files appear atomically, directories are created private, locks are advisory
//! `flock`s that the kernel releases when a process dies.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Create `dir` and its missing parents with `mode` (0700 for spool and
/// cache). Existing directories are left as they are.
pub fn create_private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(mode).create(dir)
}

/// fsync a directory, so that a rename or unlink inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Take an exclusive `flock` on `file` without waiting. `Ok(None)` means
/// another process holds it.
pub fn try_lock(file: File) -> io::Result<Option<Flock<File>>> {
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(io::Error::from(errno)),
    }
}

/// Open (creating it if needed) a lock file and take an exclusive lock on
/// it, waiting for the holder if `wait`; `Ok(None)` when it is held and we
/// must not wait.
pub fn lock_file(path: &Path, wait: bool) -> io::Result<Option<Flock<File>>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if wait {
        Flock::lock(file, FlockArg::LockExclusive)
            .map(Some)
            .map_err(|(_, e)| io::Error::from(e))
    } else {
        try_lock(file)
    }
}

/// True when the open `file` is still the one linked at `path` (it was not
/// renamed away or removed since we opened it).
pub fn still_linked(file: &impl AsFd, path: &Path) -> io::Result<bool> {
    let fd_stat = nix::sys::stat::fstat(file.as_fd()).map_err(io::Error::from)?;
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.ino() == fd_stat.st_ino && m.dev() == fd_stat.st_dev && fd_stat.st_nlink > 0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Write `bytes` to `path` atomically: a temporary file beside it, fsync,
/// rename over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Make `path` absolute against `base` and remove `.` and `..` lexically,
/// without touching the file system (the path may not exist yet).
pub fn normalize(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Is `path` (as written, not resolved) strictly below `root`: absolute,
/// made of plain names after `root`, no `.` or `..` anywhere? What a path
/// read from a manifest must be before reel reads or deletes it.
pub fn within(path: &Path, root: &Path) -> bool {
    path.is_absolute()
        && path != root
        && path.starts_with(root)
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// The cache an item of `records` records holding `bytes` bytes of data
/// needs to be staged (or to be packed: its archive holds the same data),
/// counting a 4 KiB block per entry (what small files and directories
/// really take on a file system), the headers, the index and the padding
/// to whole tape blocks.
pub fn cache_need(records: u64, bytes: u64) -> u64 {
    bytes + records * 4096 + (1 << 20)
}

/// Resolve symlinks in the longest existing prefix of an absolute, normalized
/// path, keeping the rest as it is, so that "is the cache inside a source"
/// sees through a symlinked `/data`.
pub fn resolve_existing_prefix(path: &Path) -> PathBuf {
    let mut prefix = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = fs::canonicalize(&prefix) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            prefix.file_name().map(|n| n.to_os_string()),
            prefix.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                prefix = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Used and total bytes of the file system holding `path` (what users can
/// use: reserved blocks do not count as free).
pub fn fs_usage(path: &Path) -> io::Result<(u64, u64)> {
    let v = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let frsize = v.fragment_size() as u64;
    let total =
        (v.blocks() as u64 - (v.blocks_free() as u64 - v.blocks_available() as u64)) * frsize;
    let used = total - v.blocks_available() as u64 * frsize;
    Ok((used, total))
}

#[cfg(test)]
mod within_tests {
    use super::*;

    #[test]
    fn only_plain_paths_strictly_below_the_root_are_within() {
        let root = Path::new("/c/staged");
        assert!(within(Path::new("/c/staged/s/i/f"), root));
        for no in [
            "/c/staged",
            "/c/other/f",
            "/c/staged/../x",
            "c/staged/f",
            "/etc/passwd",
        ] {
            assert!(!within(Path::new(no), root), "{no}");
        }
    }
}

#[cfg(test)]
mod tests {
    /// Read through `DirectReader` as the ring does (page-aligned blocks
    /// of 256 KiB, each filled until full or the end) and, after that, in
    /// small unaligned pieces: the same bytes either way, O_DIRECT or not.
    #[test]
    fn a_direct_reader_gives_the_file_back_whole() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive");
        let data: Vec<u8> = (0..3 * 262_144 + 1000)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let mut r = super::DirectReader::new(std::fs::File::open(&path).unwrap());
        let direct = r.is_direct();
        let mut raw = vec![0u8; 262_144 + 4096];
        let at = raw.as_ptr().align_offset(4096);
        let block = &mut raw[at..at + 262_144];
        let mut back = Vec::new();
        loop {
            let mut filled = 0;
            while filled < block.len() {
                match r.read(&mut block[filled..]).unwrap() {
                    0 => break,
                    n => filled += n,
                }
            }
            back.extend_from_slice(&block[..filled]);
            if filled < block.len() {
                break;
            }
        }
        assert_eq!(back.len(), data.len(), "O_DIRECT: {direct}");
        assert!(back == data, "O_DIRECT: {direct}");
        // Unaligned from the start: buffered, the same bytes.
        let mut r = super::DirectReader::new(std::fs::File::open(&path).unwrap());
        let mut small = Vec::new();
        let mut piece = [0u8; 1000];
        loop {
            match r.read(&mut piece).unwrap() {
                0 => break,
                n => small.extend_from_slice(&piece[..n]),
            }
        }
        assert!(small == data);
    }

    use super::*;

    #[test]
    fn normalize_is_lexical() {
        let base = Path::new("/etc/reel");
        assert_eq!(
            normalize(base, Path::new("var/spool")),
            Path::new("/etc/reel/var/spool")
        );
        assert_eq!(
            normalize(base, Path::new("../x/./y")),
            Path::new("/etc/x/y")
        );
        assert_eq!(normalize(base, Path::new("/a/b/../c")), Path::new("/a/c"));
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn lock_is_exclusive_between_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let held = lock_file(&p, false).unwrap();
        assert!(held.is_some());
        assert!(lock_file(&p, false).unwrap().is_none());
        drop(held);
        assert!(lock_file(&p, false).unwrap().is_some());
    }
}

/// A key file's contents (`what`: the kind of file, for messages),
/// refused when others may read it; every error names the file.
pub fn read_secret(file: &Path, what: &str) -> Result<String, String> {
    let name = file.display();
    let meta = std::fs::metadata(file).map_err(|e| format!("{what} file {name}: {e}"))?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{what} file {name}: readable by others (mode {mode:04o}); `chmod 600 {name}`"
        ));
    }
    std::fs::read_to_string(file).map_err(|e| format!("{what} file {name}: {e}"))
}

/// Fill `buf` from the kernel's random generator (`getrandom`).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A file read with `O_DIRECT` where its file system allows: the bytes go
/// from the disk into the reader's buffers without a copy through the page
/// cache (reel-write reads an archive once per copy; caching it would only
/// push out what is read again). The buffers must be page-aligned and
/// their lengths multiples of 4 KiB, as the ring's blocks are; a read that
/// is not (or a file system that refuses) falls back to buffered reads
/// for the rest of the file (as after a short read at its end, whose next
/// read would start unaligned).
pub struct DirectReader {
    file: std::fs::File,
    direct: bool,
}

impl DirectReader {
    /// `file`, read with `O_DIRECT` when the kernel takes the flag for it.
    pub fn new(file: std::fs::File) -> DirectReader {
        let direct = set_direct(&file, true).is_ok();
        DirectReader { file, direct }
    }

    /// Whether reads bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }
}

/// Ask the kernel to start writing `len` bytes of `file` from `offset` to
/// disk, without waiting (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`).
/// Only a hint: it makes nothing durable (an fsync still must), and a
/// file system that does not take it is left to write back by itself.
pub(crate) fn start_write_back(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain system call on a descriptor this function borrows;
    // no memory is passed.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Let go of the page cache's clean pages of `len` bytes of `file` from
/// `offset` (`POSIX_FADV_DONTNEED`; pages still dirty or being written
/// stay). A hint: errors are ignored.
pub(crate) fn drop_cached(file: &std::fs::File, offset: u64, len: u64) {
    if len == 0 {
        return;
    }
    let _ = nix::fcntl::posix_fadvise(
        file,
        offset as libc::off_t,
        len as libc::off_t,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

/// A zeroed buffer that starts on a page boundary (an anonymous mapping),
/// so that a drive can read a block straight into it: `O_DIRECT` for a
/// virtual tape file, the st driver's direct transfers for a real one.
/// Where no mapping can be had it is an ordinary allocation (and reads
/// into it go through the page cache, as before).
pub struct PageBuf(PageBufInner);

enum PageBufInner {
    Map(memmap2::MmapMut),
    Heap(Vec<u8>),
}

impl PageBuf {
    pub fn new(len: usize) -> PageBuf {
        match memmap2::MmapMut::map_anon(len) {
            Ok(m) => PageBuf(PageBufInner::Map(m)),
            Err(e) => {
                log::debug!("a buffer of {len} bytes without a mapping: {e}");
                PageBuf(PageBufInner::Heap(vec![0; len]))
            }
        }
    }
}

impl std::ops::Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            PageBufInner::Map(m) => m,
            PageBufInner::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            PageBufInner::Map(m) => m,
            PageBufInner::Heap(v) => v,
        }
    }
}

/// The page size `O_DIRECT` transfers are aligned to here.
pub(crate) const PAGE: usize = 4096;

/// Whether `buf` can go to or from a file with `O_DIRECT`: page-aligned,
/// whole pages.
pub(crate) fn whole_pages(buf: &[u8]) -> bool {
    buf.as_ptr() as usize % PAGE == 0 && buf.len() % PAGE == 0
}

/// Turn `O_DIRECT` on or off for an open file.
pub(crate) fn set_direct(file: &std::fs::File, on: bool) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL)?);
    let flags = if on {
        flags | OFlag::O_DIRECT
    } else {
        flags - OFlag::O_DIRECT
    };
    fcntl(file, FcntlArg::F_SETFL(flags)).map(drop)
}

impl io::Read for DirectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.direct && !whole_pages(buf) {
            self.buffered()?;
        }
        match io::Read::read(&mut self.file, buf) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.buffered()?;
                io::Read::read(&mut self.file, buf)
            }
            other => other,
        }
    }

    /// One `readv` into several buffers: with `O_DIRECT`, one request to
    /// the disk for all of them when each is whole pages.
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        if self.direct && !bufs.iter().all(|b| whole_pages(b)) {
            self.buffered()?;
        }
        match io::Read::read_vectored(&mut self.file, bufs) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.buffered()?;
                io::Read::read_vectored(&mut self.file, bufs)
            }
            other => other,
        }
    }
}

impl DirectReader {
    fn buffered(&mut self) -> io::Result<()> {
        set_direct(&self.file, false).map_err(io::Error::from)?;
        self.direct = false;
        Ok(())
    }
}
