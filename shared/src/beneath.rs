//! A directory tree written through directory handles only, for a restore
//! run as root into a directory that other users may write, from tapes and
//! catalogs that may be forged.
//!
//! No path is ever resolved by name from `/`: the tree's root is opened
//! once, and every directory below it is reached from there with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`) where the kernel has it, else
//! one component at a time with `O_NOFOLLOW | O_DIRECTORY`. A symlink or a
//! non-directory on the way is refused, never followed; `..`, `.`, absolute
//! and empty paths are refused before anything is touched. Files are
//! created under random temporary names with `O_CREAT | O_EXCL |
//! O_NOFOLLOW` (no member, no other user can pre-empt or redirect them),
//! given their metadata through the open handle, then renamed into place
//! (`RENAME_NOREPLACE` unless replacing was asked for). Whatever the final
//! name already is, nothing is ever written through it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{FileStat, Mode, SFlag};

/// Why a path cannot be used under the tree.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("an empty path")]
    Empty,
    #[error("{0:?} in the path: refused")]
    Component(String),
    #[error("{0} is a symlink: going through it could leave the target directory")]
    Symlink(PathBuf),
    #[error("{0} is not a directory")]
    NotDir(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
}

/// The names of `rel`, each a plain name; anything else is refused.
pub fn names(rel: &Path) -> Result<Vec<&OsStr>, Refused> {
    if rel.as_os_str().is_empty() {
        return Err(Refused::Empty);
    }
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            other => Err(Refused::Component(
                other.as_os_str().to_string_lossy().into_owned(),
            )),
        })
        .collect()
}

fn errno(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// A directory tree reached only through handles.
pub struct Tree {
    root: Dir,
    /// Use `openat2` (false once the kernel said it has none).
    openat2: std::sync::atomic::AtomicBool,
}

impl Tree {
    /// Open (creating it and its parents if needed) the root of the tree.
    /// The root's own path is the caller's choice and is followed.
    pub fn open(root: &Path) -> io::Result<Tree> {
        std::fs::create_dir_all(root)?;
        Tree::open_existing(root)
    }

    /// Open an existing tree for reading (a backup source): nothing is
    /// created, and below the root nothing is followed.
    pub fn open_existing(root: &Path) -> io::Result<Tree> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(Tree {
            root: Dir {
                fd,
                path: root.to_path_buf(),
            },
            openat2: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// As `open`, but walking one component at a time even where the
    /// kernel has `openat2` (for tests of the fallback).
    pub fn open_without_openat2(root: &Path) -> io::Result<Tree> {
        let tree = Tree::open(root)?;
        tree.openat2
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(tree)
    }

    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// The directory holding `rel` and `rel`'s last name. With `create`,
    /// missing directories on the way are made (mode 0700: their own
    /// metadata comes later).
    pub fn parent<'a>(&self, rel: &'a Path, create: bool) -> Result<(Dir, &'a OsStr), Refused> {
        let names = names(rel)?;
        let (last, dirs) = names.split_last().expect("names() is never empty");
        Ok((self.dir_of(dirs, create)?, last))
    }

    /// The directory `rel` itself, which must be a directory (not a symlink
    /// to one).
    pub fn dir(&self, rel: &Path) -> Result<Dir, Refused> {
        let names = names(rel)?;
        self.dir_of(&names, false)
    }

    fn dir_of(&self, names: &[&OsStr], create: bool) -> Result<Dir, Refused> {
        if names.is_empty() {
            return self
                .root
                .dup()
                .map_err(|e| Refused::Io(self.root.path.clone(), e));
        }
        let rel: PathBuf = names.iter().collect();
        if self.openat2.load(std::sync::atomic::Ordering::Relaxed) {
            let how = nix::fcntl::OpenHow::new()
                .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC)
                .resolve(
                    nix::fcntl::ResolveFlag::RESOLVE_BENEATH
                        | nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                        | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
                );
            match nix::fcntl::openat2(self.root.fd.as_fd(), &rel, how) {
                Ok(fd) => {
                    return Ok(Dir {
                        fd,
                        path: self.root.path.join(&rel),
                    });
                }
                // No openat2 here (old kernel, or a seccomp filter).
                Err(Errno::ENOSYS | Errno::EPERM) => self
                    .openat2
                    .store(false, std::sync::atomic::Ordering::Relaxed),
                // Missing directories to make, or a symlink or a file on
                // the way to name: the walk does both.
                Err(_) => {}
            }
        }
        let mut dir = self
            .root
            .dup()
            .map_err(|e| Refused::Io(self.root.path.clone(), e))?;
        for name in names {
            dir = dir.step(name, create)?;
        }
        Ok(dir)
    }
}

/// One directory of the tree, open.
pub struct Dir {
    fd: OwnedFd,
    /// For messages only; never used to reach anything.
    path: PathBuf,
}

/// What a name in a directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Other,
}

fn kind_of(st: &FileStat) -> NodeKind {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => NodeKind::File,
        SFlag::S_IFDIR => NodeKind::Dir,
        SFlag::S_IFLNK => NodeKind::Symlink,
        _ => NodeKind::Other,
    }
}

/// A name nobody can guess: `.reel-tmp-` and 16 random hex digits.
fn random_name() -> OsString {
    let mut bytes = [0u8; 8];
    if crate::fsutil::random_bytes(&mut bytes).is_err() {
        // No getrandom: the clock and the pid are enough, since every
        // creation is O_EXCL and retried under another name.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        bytes = (t ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    OsString::from(format!(".reel-tmp-{hex}"))
}

impl Dir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn dup(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    fn io(&self, name: &OsStr, e: impl Into<io::Error>) -> Refused {
        Refused::Io(self.path.join(name), e.into())
    }

    /// The directory `name` below this one, made (0700) if missing and
    /// `create`; a symlink or anything else is refused.
    fn step(&self, name: &OsStr, create: bool) -> Result<Dir, Refused> {
        let path = self.path.join(name);
        loop {
            match nix::fcntl::openat(
                self.fd.as_fd(),
                name,
                OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => return Ok(Dir { fd, path }),
                Err(Errno::ENOENT) if create => {
                    match nix::sys::stat::mkdirat(
                        self.fd.as_fd(),
                        name,
                        Mode::from_bits_truncate(0o700),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => continue,
                        Err(e) => return Err(self.io(name, errno(e))),
                    }
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    return Err(match self.kind(name) {
                        Ok(Some(NodeKind::Symlink)) => Refused::Symlink(path),
                        _ => Refused::NotDir(path),
                    });
                }
                Err(e) => return Err(self.io(name, errno(e))),
            }
        }
    }

    /// The status of `name` itself (a symlink is not followed).
    pub fn stat(&self, name: &OsStr) -> io::Result<FileStat> {
        nix::sys::stat::fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno)
    }

    /// What `name` is here, without following it; `None` if nothing.
    pub fn kind(&self, name: &OsStr) -> io::Result<Option<NodeKind>> {
        match nix::sys::stat::fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(kind_of(&st))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(errno(e)),
        }
    }

    /// Run `make` with fresh random names until one is free (EEXIST means
    /// taken: try another).
    fn fresh<T>(
        &self,
        mut make: impl FnMut(&OsStr) -> Result<T, Errno>,
    ) -> io::Result<(T, OsString)> {
        for _ in 0..64 {
            let name = random_name();
            match make(&name) {
                Ok(t) => return Ok((t, name)),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(errno(e)),
            }
        }
        Err(io::Error::other("no free temporary name after 64 tries"))
    }

    /// A new empty file (0600) under a temporary name.
    pub fn create_temp(&self) -> io::Result<(File, OsString)> {
        self.fresh(|name| {
            nix::fcntl::openat(
                self.fd.as_fd(),
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_RDWR
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map(File::from)
        })
    }

    /// A symlink to `target` under a temporary name.
    pub fn symlink_temp(&self, target: &Path) -> io::Result<OsString> {
        self.fresh(|name| nix::unistd::symlinkat(target, self.fd.as_fd(), name))
            .map(|((), n)| n)
    }

    /// A hard link to `from_name` in `from` under a temporary name (the
    /// link itself is never followed: linkat without AT_SYMLINK_FOLLOW).
    pub fn link_temp(&self, from: &Dir, from_name: &OsStr) -> io::Result<OsString> {
        self.fresh(|name| {
            nix::unistd::linkat(
                from.fd.as_fd(),
                from_name,
                self.fd.as_fd(),
                name,
                AtFlags::empty(),
            )
        })
        .map(|((), n)| n)
    }

    /// A FIFO or device node under a temporary name, with exactly `mode`
    /// (the umask does not apply: the mode is set through a handle after).
    pub fn mknod_temp(&self, kind: SFlag, mode: u32, dev: u64) -> io::Result<OsString> {
        let ((), name) = self.fresh(|name| {
            nix::sys::stat::mknodat(
                self.fd.as_fd(),
                name,
                kind,
                Mode::from_bits_truncate(0o600),
                dev,
            )
        })?;
        if let Err(e) = self.chmod_nofollow(&name, mode) {
            let _ = self.unlink(&name);
            return Err(e);
        }
        Ok(name)
    }

    /// A new directory (0700; its metadata comes later).
    pub fn mkdir(&self, name: &OsStr) -> io::Result<()> {
        nix::sys::stat::mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(0o700))
            .map_err(errno)
    }

    /// The directory `name` here (never through a symlink).
    pub fn open_dir(&self, name: &OsStr) -> Result<Dir, Refused> {
        self.step(name, false)
    }

    /// The file `name` here, for reading (never through a symlink; a FIFO
    /// that took its place does not block the open).
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        nix::fcntl::openat(
            self.fd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(errno)
    }

    /// The regular file `name` here, for reading and writing (never
    /// through a symlink; anything but a regular file is refused).
    pub fn open_rw(&self, name: &OsStr) -> io::Result<File> {
        let f = File::from(
            nix::fcntl::openat(
                self.fd.as_fd(),
                name,
                OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
                Mode::empty(),
            )
            .map_err(errno)?,
        );
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(f)
    }

    /// The content of the small regular file `name` here (at most `max`
    /// bytes, else an error).
    pub fn read_small(&self, name: &OsStr, max: u64) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let f = self.open_rw(name)?;
        if f.metadata()?.len() > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too large"));
        }
        let mut out = Vec::new();
        f.take(max).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Replace `name` here by a file holding `bytes` (written under a
    /// temporary name, synced, renamed over it).
    pub fn write_replace(&self, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let (mut f, tmp) = self.create_temp()?;
        let written = f.write_all(bytes).and_then(|()| f.sync_all());
        if let Err(e) = written.and_then(|()| self.rename(&tmp, name, true)) {
            let _ = self.unlink(&tmp);
            return Err(e);
        }
        Ok(())
    }

    /// Rename `from` to `to`, both here; an existing `to` is replaced only
    /// when `replace` (and never when it is a directory).
    pub fn rename(&self, from: &OsStr, to: &OsStr, replace: bool) -> io::Result<()> {
        let flags = if replace {
            RenameFlags::empty()
        } else {
            RenameFlags::RENAME_NOREPLACE
        };
        if replace && self.kind(to)? == Some(NodeKind::Dir) {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        nix::fcntl::renameat2(self.fd.as_fd(), from, self.fd.as_fd(), to, flags).map_err(errno)
    }

    /// Remove `name` (not a directory).
    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        nix::unistd::unlinkat(
            self.fd.as_fd(),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(errno)
    }

    /// Owner of `name` itself (a symlink is not followed).
    pub fn chown_nofollow(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        nix::unistd::fchownat(
            self.fd.as_fd(),
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno)
    }

    /// Times of `name` itself (a symlink is not followed).
    pub fn times_nofollow(&self, name: &OsStr, mtime_ns: i64) -> io::Result<()> {
        let ts = crate::time::timespec(mtime_ns);
        nix::sys::stat::utimensat(
            self.fd.as_fd(),
            name,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(errno)
    }

    /// The mode of `name` itself, which is not a symlink: through an
    /// `O_PATH | O_NOFOLLOW` handle and its `/proc/self/fd` link, which
    /// leads to that very inode whatever happens to the name meanwhile.
    pub fn chmod_nofollow(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(errno)?;
        if kind_of(&st) == NodeKind::Symlink {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            proc.as_str(),
            Mode::from_bits_truncate(mode & 0o7777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(errno)
    }
}

/// Metadata to give a restored object.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime_ns: i64,
    /// Extended attributes (name, value), `security.capability` included.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Set the owner (root restores owners; others cannot).
    pub chown: bool,
}

const CAPABILITY: &[u8] = b"security.capability";

/// Give the object open as `fd` its metadata, in the order that keeps it:
/// owner (a change of owner clears setuid, setgid and capabilities), the
/// extended attributes but the capability (before the mode: a read-only
/// mode would stop a non-root restore from setting them), the mode with
/// its setuid, setgid and sticky bits, the capability, then the times
/// (last: each step before changes ctime, not mtime, but keep them last).
/// Returns what could not be set, one line each; the object stays.
pub fn apply(fd: BorrowedFd, meta: &Meta) -> Vec<String> {
    let mut problems = Vec::new();
    if meta.chown
        && let Err(e) = nix::unistd::fchown(
            fd,
            Some(nix::unistd::Uid::from_raw(meta.uid)),
            Some(nix::unistd::Gid::from_raw(meta.gid)),
        )
    {
        problems.push(format!("owner {}:{}: {e}", meta.uid, meta.gid));
    }
    let set = |(name, value): &(Vec<u8>, Vec<u8>), problems: &mut Vec<String>| {
        if let Err(e) = crate::xattrs::set(fd, name, value) {
            problems.push(format!(
                "extended attribute {}: {e}",
                String::from_utf8_lossy(name)
            ));
        }
    };
    for x in meta.xattrs.iter().filter(|(n, _)| n != CAPABILITY) {
        set(x, &mut problems);
    }
    if let Err(e) = nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(meta.mode & 0o7777)) {
        problems.push(format!("mode {:o}: {e}", meta.mode & 0o7777));
    }
    for x in meta.xattrs.iter().filter(|(n, _)| n == CAPABILITY) {
        set(x, &mut problems);
    }
    let ts = crate::time::timespec(meta.mtime_ns);
    if let Err(e) = nix::sys::stat::futimens(fd, &ts, &ts) {
        problems.push(format!("times: {e}"));
    }
    problems
}

/// `name` with a suffix appended (`x` → `x.reel-corrupt`).
pub fn with_suffix(name: &OsStr, suffix: &str) -> OsString {
    let mut v = name.as_bytes().to_vec();
    v.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(v)
}

#[cfg(test)]
mod tests;
