//! Metadata of staged copies: ownership (when running as root), atime and
//! mtime to the nanosecond, and extended attributes, so the archive built
//! from the cache carries what the source had. Their mode is not the
//! source's: copies are 0600 and directories 0700 whatever the source (a
//! setuid program, a world-readable file), so nothing in the cache is open
//! to others; the manifest keeps the real mode for the archive.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::manifest::Record;
use crate::xattrs;
use nix::sys::stat::{UtimensatFlags, futimens, utimensat};
use nix::sys::time::TimeSpec;

/// Give the copy `out` the owner, times and xattrs of `src` (mode 0600).
pub fn apply_to_file(src: &File, out: &File, m: &fs::Metadata, chown: bool) -> io::Result<()> {
    // Owner first: chown clears security.capability, which the xattrs
    // copied next bring back.
    if chown {
        nix::unistd::fchown(out.as_fd(), Some(m.uid().into()), Some(m.gid().into()))
            .map_err(io::Error::from)?;
    }
    copy_xattrs(src, out)?;
    nix::sys::stat::fchmod(out.as_fd(), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(io::Error::from)?;
    futimens(
        out.as_fd(),
        &TimeSpec::new(m.atime(), m.atime_nsec()),
        &TimeSpec::new(m.mtime(), m.mtime_nsec()),
    )
    .map_err(io::Error::from)
}

/// Mode, owner and mtime of a directory or symlink in the cache, from its
/// record (symlinks: owner and mtime only; their mode means nothing).
pub fn apply_to_path(path: &Path, r: &Record, chown: bool, symlink: bool) -> io::Result<()> {
    if chown {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            Some(r.uid.into()),
            Some(r.gid.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io::Error::from)?;
    }
    if !symlink {
        fs::set_permissions(
            path,
            // Private, and writable for us (a later item may put files in
            // them); the manifest keeps the real mode.
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
    }
    let t = crate::time::timespec(r.mtime_ns);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

fn not_supported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM))
}

/// Copy every extended attribute of `src` but reel's own to `out`. An
/// attribute the cache refuses (a security label, no xattr support) is
/// reported and skipped.
pub fn copy_xattrs(src: &File, out: &File) -> io::Result<()> {
    for (name, value) in xattrs::all(src.as_fd())? {
        if let Err(e) = xattrs::set(out.as_fd(), &name, &value) {
            // An attribute the cache refuses (a security label, a value too
            // large for it: ext4 says ENOSPC) is that attribute's problem,
            // not a full cache.
            log::warn!(
                "cannot keep extended attribute {} in the cache: {e}",
                String::from_utf8_lossy(&name)
            );
        }
    }
    Ok(())
}

/// One attribute of a file by path (not following symlinks); `None` where
/// it cannot be read.
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattrs::get(path, name).ok().flatten()
}

/// Set reel's own attribute; a cache without xattr support just loses the
/// quick check's shortcut.
pub fn set_xattr_fd(f: &File, name: &str, value: &str) -> io::Result<()> {
    match xattrs::set(f.as_fd(), name.as_bytes(), value.as_bytes()) {
        Err(e) if !not_supported(&e) => Err(e),
        _ => Ok(()),
    }
}

pub fn set_xattr_path(path: &Path, name: &str, value: &str) -> io::Result<()> {
    let f = File::open(path)?;
    set_xattr_fd(&f, name, value)
}
