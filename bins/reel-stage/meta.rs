//! Metadata of staged copies: ownership (when running as root), atime and
//! mtime to the nanosecond, and extended attributes, so the archive built
//! from the cache carries what the source had. Their mode is not the
//! source's: copies are 0600 and directories 0700 whatever the source (a
//! setuid program, a world-readable file), so nothing in the cache is open
//! to others; the manifest keeps the real mode for the archive.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sys::stat::{UtimensatFlags, futimens, utimensat};
use nix::sys::time::TimeSpec;
use reel_shared::manifest::Record;

fn ts(secs: i64, nsec: i64) -> TimeSpec {
    TimeSpec::new(secs, nsec)
}

fn ts_ns(ns: i64) -> TimeSpec {
    ts(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
}

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
        &ts(m.atime(), m.atime_nsec()),
        &ts(m.mtime(), m.mtime_nsec()),
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
    let t = ts_ns(r.mtime_ns);
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
/// reported once and skipped.
pub fn copy_xattrs(src: &File, out: &File) -> io::Result<()> {
    let names = list_xattrs(src)?;
    for name in names {
        if name.as_bytes().starts_with(b"user.reel.") {
            continue;
        }
        let Some(value) = get_xattr_fd(src, &name)? else {
            continue;
        };
        // SAFETY: name is NUL-terminated, value is a valid buffer.
        let r = unsafe {
            libc::fsetxattr(
                out.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if r != 0 {
            // An attribute the cache refuses (a security label, a value too
            // large for it: ext4 says ENOSPC) is that attribute's problem,
            // not a full cache.
            let e = io::Error::last_os_error();
            log::warn!("cannot keep extended attribute {name:?} in the cache: {e}");
        }
    }
    Ok(())
}

fn list_xattrs(f: &File) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::flistxattr(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    }
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| CString::new(n).expect("split at NUL"))
        .collect())
}

fn get_xattr_fd(f: &File, name: &CString) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: name is NUL-terminated, buf valid for its length.
        let n = unsafe {
            libc::fgetxattr(
                f.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 8, 0),
            Some(libc::ENODATA) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// One attribute of a file by path (not following symlinks).
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated, buf valid for its length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

/// Set reel's own attribute; a cache without xattr support just loses the
/// quick check's shortcut.
pub fn set_xattr_fd(f: &File, name: &str, value: &str) -> io::Result<()> {
    let n = CString::new(name).expect("no NUL in reel's attribute names");
    // SAFETY: n is NUL-terminated, value valid for its length.
    let r = unsafe {
        libc::fsetxattr(
            f.as_raw_fd(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    let e = io::Error::last_os_error();
    if r == 0 || not_supported(&e) {
        Ok(())
    } else {
        Err(e)
    }
}

pub fn set_xattr_path(path: &Path, name: &str, value: &str) -> io::Result<()> {
    let f = File::open(path)?;
    set_xattr_fd(&f, name, value)
}
