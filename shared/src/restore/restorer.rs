//! The [`Restorer`]: puts members in place under `--to` through directory
//! handles, directories, symlinks, hard links and special files here (files
//! in `file.rs`, split files in `join.rs`), and sums up at the end.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::sys::stat::SFlag;

use crate::beneath::{self, Dir, Meta, NodeKind, Tree};
use crate::exit::Exit;
use crate::manifest::{EntryType, Record};
use crate::tape::Drive;

use super::join::{PartState, join_note};

/// Restores members into `--to`, through directory handles only (see
/// `crate::beneath`): nothing is ever written through a symlink or
/// outside the target, whatever the tape, the catalog or the target
/// already hold. A member that is refused or fails is reported with its
/// path, tape, tape file and block; the rest goes on.
pub(super) struct Restorer {
    pub(super) tree: Tree,
    pub(super) to: PathBuf,
    pub(super) overwrite: bool,
    /// Owners are restored (root only).
    pub(super) chown: bool,
    /// Files restored in this run, by their catalog path, with their
    /// records: hard links point at them.
    pub(super) restored: HashMap<PathBuf, Record>,
    /// Members refused or not restored (bad data, refused paths).
    pub(super) failed: u64,
    /// Members lost to read errors of the drive.
    pub(super) unreadable: u64,
    /// The whole files among them, to be read from another copy.
    pub(super) unreadable_records: Vec<Record>,
    pub(super) files: u64,
    pub(super) bytes_read: u64,
    pub(super) bytes_restored: u64,
    /// Directories to give their metadata last, by catalog path.
    pub(super) dirs: Vec<Record>,
    /// Tape files holding copies cut by the early warning: a member past
    /// the cut is missing, not corrupt.
    pub(super) cut: std::collections::HashSet<u64>,
    /// Split files being joined, by catalog path.
    pub(super) parts: HashMap<PathBuf, PartState>,
    /// Keep a split file whose other parts are on other tapes for the
    /// next run (`--from-tape`, one tape at a time).
    pub(super) keep_joins: bool,
    /// What sealed (age) archives are opened with.
    pub(super) identities: Option<crate::archive::sealed::Identities>,
}

/// Where a member is, for messages: `tape T00001L9 file 3 block 1234`.
pub(super) fn place(r: &Record) -> String {
    format!(
        "tape {} file {} block {}",
        r.tape.as_deref().unwrap_or("?"),
        r.file.map_or("?".into(), |f| f.to_string()),
        r.block.map_or("?".into(), |b| b.to_string())
    )
}

fn kind_of(e: EntryType) -> SFlag {
    match e {
        EntryType::Fifo => SFlag::S_IFIFO,
        EntryType::Char => SFlag::S_IFCHR,
        _ => SFlag::S_IFBLK,
    }
}

impl Restorer {
    pub(super) fn new(to: PathBuf, overwrite: bool) -> anyhow::Result<Restorer> {
        let tree = Tree::open(&to).with_context(|| format!("opening {}", to.display()))?;
        Ok(Restorer {
            tree,
            to,
            overwrite,
            chown: nix::unistd::geteuid().is_root(),
            restored: HashMap::new(),
            failed: 0,
            unreadable: 0,
            unreadable_records: Vec::new(),
            files: 0,
            bytes_read: 0,
            bytes_restored: 0,
            dirs: Vec::new(),
            cut: Default::default(),
            parts: HashMap::new(),
            keep_joins: false,
            identities: None,
        })
    }

    pub(super) fn meta(&self, r: &Record, xattrs: Vec<(Vec<u8>, Vec<u8>)>) -> Meta {
        Meta {
            uid: r.uid,
            gid: r.gid,
            mode: r.mode,
            mtime_ns: r.mtime_ns,
            xattrs,
            chown: self.chown,
        }
    }

    /// Directories' metadata, the summary lines, and the exit code: 74 if
    /// the drive lost members, else 65 if any member was refused or bad.
    pub(super) fn finish(mut self) -> Exit {
        self.finish_dirs();
        let mut pending = 0u64;
        for (path, s) in std::mem::take(&mut self.parts) {
            let (bytes, size) = (s.bytes, s.version.0);
            if s.bad || !self.keep_joins {
                if !s.bad {
                    log::error!(
                        "{}: only {bytes} of its {size} bytes were read from its parts; not restored",
                        path.display()
                    );
                }
                self.failed += 1;
                let _ = s.dir.unlink(&s.tmp);
                if s.kept {
                    let _ = s.dir.unlink(&join_note(&s.tmp));
                }
                continue;
            }
            match self.keep_join(&path, s) {
                Ok(join) => {
                    log::warn!(
                        "{}: {bytes} of its {size} bytes joined so far, kept in {}; its other parts are on other tapes: restore from those into the same --to",
                        path.display(),
                        join.display()
                    );
                    pending += 1;
                }
                Err(e) => {
                    log::error!("{}: cannot keep its joined parts: {e}", path.display());
                    self.failed += 1;
                }
            }
        }
        log::info!(
            "{} file(s), {} bytes restored into {}; {} bytes read from tape",
            self.files,
            self.bytes_restored,
            self.to.display(),
            self.bytes_read
        );
        if self.unreadable + self.failed > 0 {
            log::error!(
                "{} member(s) not restored ({} unreadable on tape, {} refused or bad): each is named above",
                self.unreadable + self.failed,
                self.unreadable,
                self.failed
            );
        }
        if self.unreadable > 0 {
            Exit::Io
        } else if self.failed > 0 {
            Exit::Data
        } else if pending > 0 {
            // Waits for the tapes with the other parts.
            Exit::Unavailable
        } else {
            Exit::Ok
        }
    }

    pub(super) fn refuse(&mut self, r: &Record, why: impl std::fmt::Display) {
        log::error!("{} ({}): {why}", r.path.display(), place(r));
        self.failed += 1;
    }

    /// Restore one member; what goes wrong is reported and counted.
    pub(super) fn member(&mut self, drive: &mut dyn Drive, r: &Record, block_size: u64) {
        let (dir, name) = match self.tree.parent(&r.path, true) {
            Ok(x) => x,
            Err(why) => return self.refuse(r, why),
        };
        let name = name.to_os_string();
        let existing = match dir.kind(&name) {
            Ok(k) => k,
            Err(e) => {
                return self.refuse(
                    r,
                    format!("cannot look at {}: {e}", dir.path().join(&name).display()),
                );
            }
        };
        if r.entry == EntryType::Dir {
            return self.directory(r, &dir, &name, existing);
        }
        match existing {
            Some(NodeKind::Dir) => {
                return self.refuse(r, "a directory of that name exists: not replaced");
            }
            Some(_) if !self.overwrite && r.part.is_none() => {
                return self.refuse(r, "exists (use --overwrite to replace it)");
            }
            Some(_) if !self.overwrite && !self.parts.contains_key(&r.path) => {
                return self.refuse(r, "exists (use --overwrite to replace it)");
            }
            _ => {}
        }
        let result = match r.entry {
            EntryType::Dir => unreachable!("handled above"),
            EntryType::Symlink => self.symlink(r, &dir, &name),
            EntryType::Hardlink => self.hardlink(r, &dir, &name),
            EntryType::File => return self.file(drive, r, dir, &name, block_size),
            EntryType::Fifo | EntryType::Char | EntryType::Block => self.special(r, &dir, &name),
        };
        if let Err(e) = result {
            self.refuse(r, format!("{e:#}"));
        }
    }

    fn directory(&mut self, r: &Record, dir: &Dir, name: &OsStr, existing: Option<NodeKind>) {
        match existing {
            Some(NodeKind::Dir) => {}
            None => {
                if let Err(e) = dir.mkdir(name) {
                    return self.refuse(r, format!("cannot create it: {e}"));
                }
            }
            Some(_) if self.overwrite => {
                if let Err(e) = dir.unlink(name).and_then(|()| dir.mkdir(name)) {
                    return self.refuse(r, format!("cannot replace it by a directory: {e}"));
                }
            }
            Some(kind) => {
                return self.refuse(
                    r,
                    format!(
                        "exists as a {} (use --overwrite to replace it by the directory)",
                        match kind {
                            NodeKind::Symlink => "symlink",
                            NodeKind::File => "file",
                            _ => "special file",
                        }
                    ),
                );
            }
        }
        self.dirs.push(r.clone());
    }

    /// Put the finished temporary `tmp` in place as `name`.
    pub(super) fn place(&self, dir: &Dir, tmp: &OsStr, name: &OsStr) -> anyhow::Result<()> {
        if let Err(e) = dir.rename(tmp, name, self.overwrite) {
            let _ = dir.unlink(tmp);
            return Err(match e.raw_os_error() {
                Some(libc::EEXIST) => anyhow::anyhow!("exists (use --overwrite to replace it)"),
                Some(libc::EISDIR) => {
                    anyhow::anyhow!("a directory of that name exists: not replaced")
                }
                _ => anyhow::Error::from(e)
                    .context(format!("renaming into {}", dir.path().join(name).display())),
            });
        }
        Ok(())
    }

    fn symlink(&mut self, r: &Record, dir: &Dir, name: &OsStr) -> anyhow::Result<()> {
        let target = r.link.clone().unwrap_or_default();
        let tmp = dir
            .symlink_temp(&target)
            .with_context(|| format!("creating a symlink in {}", dir.path().display()))?;
        if self.chown
            && let Err(e) = dir.chown_nofollow(&tmp, r.uid, r.gid)
        {
            log::warn!("{}: owner {}:{}: {e}", r.path.display(), r.uid, r.gid);
        }
        let _ = dir.times_nofollow(&tmp, r.mtime_ns);
        self.place(dir, &tmp, name)
    }

    fn hardlink(&mut self, r: &Record, dir: &Dir, name: &OsStr) -> anyhow::Result<()> {
        let link = r.link.clone().unwrap_or_default();
        let Some(first) = self.restored.get(&link).cloned() else {
            anyhow::bail!(
                "a hard link to {}, which was not restored with it: restore both",
                link.display()
            );
        };
        // The first one was restored here, by this run: reach it again
        // through handles.
        let (fdir, fname) = self
            .tree
            .parent(&first.path, false)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let same_inode = (first.mode, first.uid, first.gid, first.mtime_ns)
            == (r.mode, r.uid, r.gid, r.mtime_ns);
        let tmp = if same_inode {
            // A hard link in the source: one inode, as it was.
            dir.link_temp(&fdir, fname)
                .with_context(|| format!("linking to {}", fdir.path().join(fname).display()))?
        } else {
            // Another file with the same content, stored once in the
            // archive: a copy of its own, with its own metadata.
            let mut from = fdir
                .open_file(fname)
                .with_context(|| format!("opening {}", fdir.path().join(fname).display()))?;
            let (mut out, tmp) = dir.create_temp()?;
            if let Err(e) = std::io::copy(&mut from, &mut out) {
                let _ = dir.unlink(&tmp);
                return Err(anyhow::Error::from(e).context("copying"));
            }
            for p in beneath::apply(out.as_fd(), &self.meta(r, Vec::new())) {
                log::warn!("{}: {p}", r.path.display());
            }
            tmp
        };
        self.place(dir, &tmp, name)?;
        self.files += 1;
        self.bytes_restored += r.size;
        Ok(())
    }

    fn special(&mut self, r: &Record, dir: &Dir, name: &OsStr) -> anyhow::Result<()> {
        let tmp = dir
            .mknod_temp(kind_of(r.entry), r.mode, r.rdev.unwrap_or(0))
            .map_err(|e| anyhow::anyhow!("cannot create it: {e} (device files need root)"))?;
        if self.chown {
            if let Err(e) = dir.chown_nofollow(&tmp, r.uid, r.gid) {
                log::warn!("{}: owner {}:{}: {e}", r.path.display(), r.uid, r.gid);
            }
            // A change of owner may clear setuid and setgid: the mode again.
            let _ = dir.chmod_nofollow(&tmp, r.mode);
        }
        let _ = dir.times_nofollow(&tmp, r.mtime_ns);
        self.place(dir, &tmp, name)?;
        self.files += 1;
        Ok(())
    }

    /// Directories get their metadata after what went into them, deepest
    /// first, each through its own handle (never through a symlink that
    /// took its place meanwhile).
    fn finish_dirs(&mut self) {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|r| std::cmp::Reverse(r.path.components().count()));
        for r in &dirs {
            match self.tree.dir(&r.path) {
                Ok(d) => {
                    for p in beneath::apply(d.fd(), &self.meta(r, Vec::new())) {
                        log::warn!("{}: {p}", r.path.display());
                    }
                }
                Err(e) => self.refuse(r, format!("its metadata: {e}")),
            }
        }
    }
}

/// A new temporary file beside where `rel` goes: (its directory, the file,
/// its name).
pub(super) fn dir_temp(tree: &Tree, rel: &Path) -> anyhow::Result<(Dir, File, OsString)> {
    let (dir, _) = tree.parent(rel, true).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (out, tmp) = dir.create_temp()?;
    Ok((dir, out, tmp))
}

/// Did the drive fail (as opposed to the data being bad or refused)?
pub(super) fn is_drive_error(e: &anyhow::Error) -> bool {
    use crate::tape::TapeError;
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<TapeError>(),
            Some(TapeError::Io { .. } | TapeError::NotReady | TapeError::NoTape)
        )
    })
}
