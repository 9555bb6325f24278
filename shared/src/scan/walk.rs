//! The parallel tree walk. Each directory is a rayon task that reads its
//! entries, `fstatat`s them relative to the directory's own descriptor and
//! opens subdirectories with `openat`, so paths longer than PATH_MAX and
//! renames of parents during the scan do not derail it. Symlinks are never
//! followed. Every entry is decided here (new, changed, unchanged, in
//! flight, too recent) so that only what goes to tape crosses the channel.

use std::ffi::{CStr, OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::catalog::{Index, key};
use crate::manifest::{EntryType, Record};
use crossbeam_channel::Sender;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};

use super::inflight::InFlight;
use super::owners::OwnerNames;

/// What the walk found for one stream.
#[derive(Debug, Default)]
pub struct Counts {
    pub seen: AtomicU64,
    pub new: AtomicU64,
    pub changed: AtomicU64,
    pub in_flight: AtomicU64,
    pub too_recent: AtomicU64,
    pub excluded: AtomicU64,
    pub skipped: AtomicU64,
    pub bytes: AtomicU64,
}

impl Counts {
    fn add(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// An entry to back up, on its way to the manifest writer.
pub enum Found {
    Entry(Record),
    /// A regular file with more than one link: grouped by the writer.
    Linked {
        dev: u64,
        ino: u64,
        record: Record,
        wanted: bool,
    },
}

/// What every task of one stream's walk shares.
pub struct Walk {
    pub stream: String,
    pub index: Index,
    pub in_flight: InFlight,
    pub excludes: globset::GlobSet,
    /// Entries modified after this (ns since the epoch) are too recent.
    pub newest_ns: i64,
    /// When the scan started: an mtime after it is in the future (a clock
    /// set wrong, an archive unpacked with its times): backed up anyway.
    pub now_ns: i64,
    pub one_file_system: Option<u64>,
    pub checksum: bool,
    pub root_display: String,
    pub counts: Counts,
    pub out: Sender<Found>,
}

fn mtime_ns(st: &FileStat) -> i64 {
    crate::time::ns(st.st_mtime, st.st_mtime_nsec)
}

fn show(rel: &[u8]) -> String {
    String::from_utf8_lossy(rel).into_owned()
}

impl Walk {
    fn problem(&self, rel: &[u8], what: impl std::fmt::Display) {
        log::warn!(
            "{}: {}/{}: {what}",
            self.stream,
            self.root_display,
            show(rel)
        );
        self.counts.add(&self.counts.skipped);
    }

    /// Is this entry one the catalog does not hold, in this shape?
    fn decide(
        &self,
        rel: &[u8],
        size: u64,
        mtime: i64,
        dir: &OwnedFd,
        name: &CStr,
        regular: bool,
    ) -> Decision {
        let k = key(&self.stream, rel);
        let changed = match self.index.find_known(k) {
            None => Some(false),
            Some((i, known)) => {
                if known.size != size || known.mtime_ns != mtime {
                    Some(true)
                } else if self.checksum && regular {
                    match self.index.sha256(i) {
                        // Without a recorded digest (a hard link's second
                        // path) there is nothing to compare with.
                        Ok(None) => None,
                        Ok(Some(known_sha)) => match super::checksum::sha256_at(dir, name) {
                            Ok(d) if d == known_sha => None,
                            Ok(_) => Some(true),
                            Err(e) => {
                                self.problem(rel, format!("cannot read for --checksum: {e}"));
                                None
                            }
                        },
                        // Not trusted: backed up again, to be safe.
                        Err(e) => {
                            self.problem(rel, format!("{e}; backing it up again"));
                            Some(true)
                        }
                    }
                } else {
                    None
                }
            }
        };
        match changed {
            None => Decision::Unchanged,
            Some(_) if self.in_flight.contains(k, size, mtime) => Decision::InFlight,
            Some(true) => Decision::Changed,
            Some(false) => Decision::New,
        }
    }

    fn record(
        &self,
        rel: &[u8],
        st: &FileStat,
        entry: EntryType,
        names: &mut OwnerNames,
    ) -> Record {
        let mut r = Record::new(PathBuf::from(OsString::from_vec(rel.to_vec())), entry);
        r.size = match entry {
            EntryType::File | EntryType::Symlink => st.st_size as u64,
            _ => 0,
        };
        r.mtime_ns = mtime_ns(st);
        r.mode = st.st_mode & 0o7777;
        r.uid = st.st_uid;
        r.gid = st.st_gid;
        r.user = names.user(st.st_uid);
        r.group = names.group(st.st_gid);
        if matches!(entry, EntryType::Char | EntryType::Block) {
            r.rdev = Some(st.st_rdev);
        }
        if entry == EntryType::File {
            (r.dev, r.ino) = (Some(st.st_dev), Some(st.st_ino));
        }
        r
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    New,
    Changed,
    Unchanged,
    InFlight,
}

/// Walk a directory: `dir` is open, `rel` its path below the root (empty
/// for the root itself).
pub fn visit<'s>(scope: &rayon::Scope<'s>, walk: &'s Walk, dir: Arc<OwnedFd>, rel: Vec<u8>) {
    let mut names = OwnerNames::default();
    let listing = dir
        .try_clone()
        .map_err(|e| e.to_string())
        .and_then(|fd| Dir::from_fd(fd).map_err(|e| e.to_string()));
    let mut listing = match listing {
        Ok(d) => d,
        Err(e) => {
            walk.problem(&rel, format!("cannot list: {e}"));
            return;
        }
    };
    let mut child = rel.clone();
    if !child.is_empty() {
        child.push(b'/');
    }
    let base = child.len();
    for entry in listing.iter() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                walk.problem(&rel, format!("cannot read the directory: {e}"));
                break;
            }
        };
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        child.truncate(base);
        child.extend_from_slice(bytes);
        if !walk.excludes.is_empty()
            && walk
                .excludes
                .is_match(std::path::Path::new(OsStr::from_bytes(&child)))
        {
            walk.counts.add(&walk.counts.excluded);
            continue;
        }
        let st = match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => {
                walk.problem(&child, "vanished during the scan");
                continue;
            }
            Err(e) => {
                walk.problem(&child, format!("cannot stat: {e}"));
                continue;
            }
        };
        walk.counts.add(&walk.counts.seen);
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let entry_type = match kind {
            SFlag::S_IFREG => EntryType::File,
            SFlag::S_IFDIR => EntryType::Dir,
            SFlag::S_IFLNK => EntryType::Symlink,
            SFlag::S_IFIFO => EntryType::Fifo,
            SFlag::S_IFCHR => EntryType::Char,
            SFlag::S_IFBLK => EntryType::Block,
            _ => {
                log::debug!(
                    "{}: {}: a socket cannot go into a tar archive; skipped",
                    walk.stream,
                    show(&child)
                );
                continue;
            }
        };
        if entry_type == EntryType::Dir {
            let crosses = walk.one_file_system.is_some_and(|dev| dev != st.st_dev);
            if !crosses {
                // Opened by the task itself, not here: a directory of
                // thousands of subdirectories must not hold thousands of
                // descriptors while the tasks wait their turn.
                let (parent, sub, sub_name) = (dir.clone(), child.clone(), name.to_owned());
                scope.spawn(move |s| {
                    match openat(
                        parent.as_fd(),
                        sub_name.as_c_str(),
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => {
                            drop(parent);
                            visit(s, walk, Arc::new(fd), sub)
                        }
                        Err(e) => walk.problem(&sub, format!("cannot open the directory: {e}")),
                    }
                });
            }
        } else if mtime_ns(&st) > walk.newest_ns && mtime_ns(&st) <= walk.now_ns {
            walk.counts.add(&walk.counts.too_recent);
            continue;
        }
        let size = if matches!(entry_type, EntryType::File | EntryType::Symlink) {
            st.st_size as u64
        } else {
            0
        };
        let decision = walk.decide(
            &child,
            size,
            mtime_ns(&st),
            &dir,
            name,
            entry_type == EntryType::File,
        );
        let linked = entry_type == EntryType::File && st.st_nlink > 1;
        match decision {
            Decision::Unchanged if !linked => continue,
            Decision::InFlight => {
                walk.counts.add(&walk.counts.in_flight);
                if !linked {
                    continue;
                }
            }
            _ => {}
        }
        let mut record = walk.record(&child, &st, entry_type, &mut names);
        if entry_type == EntryType::Symlink {
            match readlinkat(dir.as_fd(), name) {
                Ok(target) => record.link = Some(PathBuf::from(target)),
                Err(e) => {
                    walk.problem(&child, format!("cannot read the symlink: {e}"));
                    continue;
                }
            }
        }
        let wanted = matches!(decision, Decision::New | Decision::Changed);
        if wanted && mtime_ns(&st) > walk.now_ns {
            log::warn!(
                "{}: {}/{}: its mtime ({}) is in the future; backed up anyway",
                walk.stream,
                walk.root_display,
                show(&child),
                crate::time::Utc::from_unix(st.st_mtime).rfc3339()
            );
        }
        let found = if linked {
            Found::Linked {
                dev: st.st_dev,
                ino: st.st_ino,
                record,
                wanted,
            }
        } else {
            walk.count_wanted(decision, size);
            Found::Entry(record)
        };
        if walk.out.send(found).is_err() {
            return; // The writer stopped; it reports why.
        }
    }
}

impl Walk {
    fn count_wanted(&self, decision: Decision, size: u64) {
        match decision {
            Decision::Changed => self.counts.add(&self.counts.changed),
            _ => self.counts.add(&self.counts.new),
        }
        self.counts.bytes.fetch_add(size, Ordering::Relaxed);
    }
}
