//! Extended attributes, through the `xattr` crate: lists and values of any
//! length (the kernel's limits, not a buffer's), never through a symlink.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use xattr::FileExt;

/// reel's own attributes (`user.reel.*`, the quick check's digest): never
/// archived, copied or restored.
pub const OWN: &[u8] = b"user.reel.";

/// An open file or directory, for the crate's descriptor calls.
struct Fd<'a>(BorrowedFd<'a>);

impl AsRawFd for Fd<'_> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl FileExt for Fd<'_> {}

/// The file system keeps no such attributes (or none of this kind).
pub fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP)
}

/// Every attribute of an open file but reel's own, sorted by name; none on
/// a file system without them.
pub fn all(fd: BorrowedFd) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let f = Fd(fd);
    let names = match f.list_xattr() {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.filter(|n| !n.as_bytes().starts_with(OWN)) {
        // Gone since the listing: not there.
        if let Some(value) = f.get_xattr(&name)? {
            out.push((name.as_bytes().to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// Every attribute of `path` but reel's own, sorted by name, not following
/// a symlink.
pub fn all_at(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.filter(|n| !n.as_bytes().starts_with(OWN)) {
        if let Some(value) = xattr::get(path, &name)? {
            out.push((name.as_bytes().to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// One attribute of `path`, not following a symlink.
pub fn get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    xattr::get(path, name)
}

/// Set one attribute of an open file.
pub fn set(fd: BorrowedFd, name: &[u8], value: &[u8]) -> io::Result<()> {
    Fd(fd).set_xattr(OsStr::from_bytes(name), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn attributes_are_listed_whole_and_reels_own_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::File::create(&path).unwrap();
        if let Err(e) = set(file.as_fd(), b"user.b", b"2") {
            assert!(unsupported(&e), "{e}");
            return; // no user attributes here: nothing to test
        }
        set(file.as_fd(), b"user.a", &[7u8; 3000]).unwrap();
        set(file.as_fd(), b"user.reel.staged", b"digest").unwrap();
        let want = vec![
            (b"user.a".to_vec(), vec![7u8; 3000]),
            (b"user.b".to_vec(), b"2".to_vec()),
        ];
        assert_eq!(all(file.as_fd()).unwrap(), want);
        assert_eq!(all_at(&path).unwrap(), want);
        assert_eq!(
            get(&path, "user.reel.staged").unwrap(),
            Some(b"digest".to_vec())
        );
        assert_eq!(get(&path, "user.none").unwrap(), None);
        // Through a symlink: the link's own (none), never the file's.
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(all_at(&link).unwrap(), Vec::new());
    }
}
