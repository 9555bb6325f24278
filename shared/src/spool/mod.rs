//! The spool: directories of manifest files through which the stages hand
//! work to each other (docs/spool.md).
//!
//! ```text
//! <spool>/<queue>/<id>.jsonl      an item: one manifest
//! <spool>/<queue>/.tmp/           items being written, before the rename
//! <spool>/failed/<id>.jsonl       an item that could not be processed …
//! <spool>/failed/<id>.error       … and why
//! <spool>/.seq, .seq.lock         the counter behind fresh item ids
//! ```
//!
//! Publishing writes to `.tmp/` while holding a `flock` on the temporary
//! file, fsyncs, renames into the queue and fsyncs the queue directory, so an
//! item is either absent or complete. A consumer claims an item with a
//! non-blocking exclusive `flock`; the kernel drops the lock when the process
//! dies, so a crashed consumer's item is simply taken again. Finishing
//! removes the input only after the outputs were published; outputs are named
//! after the input's id, so redoing an item replaces its output.

mod claim;
mod io;
mod publish;

pub use claim::{Claim, Opened};
pub use io::{Input, Output, OutputItem};
pub use publish::Pending;

use std::fs;
use std::path::{Path, PathBuf};

use crate::exit::Exit;
use crate::fsutil;
use crate::manifest::{Kind, ManifestError};

/// A spool queue; the first five are named after the manifest kind they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    Scanned,
    Staged,
    Packed,
    Written,
    Verified,
    Failed,
}

impl Queue {
    pub const ALL: [Queue; 6] = [
        Queue::Scanned,
        Queue::Staged,
        Queue::Packed,
        Queue::Written,
        Queue::Verified,
        Queue::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Failed => "failed",
            other => other.kind().map(Kind::as_str).unwrap_or("failed"),
        }
    }

    /// The manifest kind this queue holds (`None` for `failed`).
    pub fn kind(self) -> Option<Kind> {
        match self {
            Queue::Scanned => Some(Kind::Scanned),
            Queue::Staged => Some(Kind::Staged),
            Queue::Packed => Some(Kind::Packed),
            Queue::Written => Some(Kind::Written),
            Queue::Verified => Some(Kind::Verified),
            Queue::Failed => None,
        }
    }

    pub fn of_kind(kind: Kind) -> Queue {
        match kind {
            Kind::Scanned => Queue::Scanned,
            Kind::Staged => Queue::Staged,
            Kind::Packed => Queue::Packed,
            Kind::Written => Queue::Written,
            Kind::Verified => Queue::Verified,
        }
    }

    pub fn parse(name: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.as_str() == name)
    }
}

impl std::fmt::Display for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong in the spool; names the file or item.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("no item {id:?} in {}", dir.display())]
    NoItem { id: String, dir: PathBuf },
    #[error("{0}")]
    Refused(String),
}

impl SpoolError {
    pub fn exit(&self) -> Exit {
        match self {
            SpoolError::Io { source, .. } => Exit::of_io(source),
            SpoolError::Manifest(_) => Exit::Data,
            SpoolError::NoItem { .. } => Exit::NoInput,
            SpoolError::Refused(_) => Exit::Usage,
        }
    }
}

pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, SpoolError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T, SpoolError> {
        self.map_err(|source| SpoolError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Temporary names end in `.<pid>.<n>`: is that process still running?
fn writer_alive(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = name.rsplit('.');
    let (_n, pid) = (
        parts.next(),
        parts.next().and_then(|p| p.parse::<i32>().ok()),
    );
    match pid {
        Some(pid) if pid > 0 => {
            // Signal 0 checks existence; EPERM means it exists as another user.
            !matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                Err(nix::errno::Errno::ESRCH)
            )
        }
        _ => false,
    }
}

/// An item's id is also its file name: letters, digits, `.`, `_`, `-`, not
/// starting with `.` or `-`, at most 200 bytes.
pub fn check_item_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid item id {id:?}: use letters, digits, '.', '_' and '-' (it becomes a file name)"
        ))
    }
}

/// Sort key that puts items in time order whatever their stream: the
/// `<yyyymmddThhmmss>-<seq>` part of `<stream>-<yyyymmddThhmmss>-<seq>[-…]`,
/// then the whole name. Names without it sort first, by name.
fn age_key(name: &str) -> (String, u64, String) {
    let parts: Vec<&str> = name.split('-').collect();
    for i in 0..parts.len().saturating_sub(1) {
        let ts = parts[i].as_bytes();
        let is_ts = ts.len() == 15
            && ts[8] == b'T'
            && ts[..8].iter().chain(&ts[9..]).all(u8::is_ascii_digit);
        if is_ts && let Ok(seq) = parts[i + 1].parse::<u64>() {
            return (parts[i].to_string(), seq, name.to_string());
        }
    }
    (String::new(), 0, name.to_string())
}

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    /// Open the spool at `root`, creating it and its queues (mode 0700) if
    /// they do not exist yet, and removing temporary files of dead writers.
    pub fn open(root: &Path) -> Result<Spool, SpoolError> {
        Spool::open_with_mode(root, 0o700)
    }

    /// As [`Spool::open`], with another directory mode (0750 when a group is
    /// configured).
    pub fn open_with_mode(root: &Path, dir_mode: u32) -> Result<Spool, SpoolError> {
        let spool = Spool {
            root: root.to_path_buf(),
        };
        for q in Queue::ALL {
            let tmp = spool.tmp_dir(q);
            fsutil::create_private_dir(&tmp, dir_mode).at(&tmp)?;
            // What a writer killed mid-publish left behind.
            spool.clean_tmp(q)?;
        }
        Ok(spool)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, q: Queue) -> PathBuf {
        self.root.join(q.as_str())
    }

    pub(crate) fn tmp_dir(&self, q: Queue) -> PathBuf {
        self.dir(q).join(".tmp")
    }

    pub fn item_path(&self, q: Queue, id: &str) -> PathBuf {
        self.dir(q).join(format!("{id}.jsonl"))
    }

    /// The ids of the items in a queue, oldest first.
    pub fn list(&self, q: Queue) -> Result<Vec<String>, SpoolError> {
        let dir = self.dir(q);
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).at(&dir)? {
            let name = entry.at(&dir)?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".jsonl")
                && !id.starts_with('.')
            {
                ids.push(id.to_string());
            }
        }
        ids.sort_by_cached_key(|id| age_key(id));
        Ok(ids)
    }

    /// A fresh item id for `stream`: `<stream>-<UTC yyyymmddThhmmss>-<seq>`,
    /// with a sequence number that never repeats in this spool.
    pub fn new_id(&self, stream: &str) -> Result<String, SpoolError> {
        let lock_path = self.root.join(".seq.lock");
        let _lock = fsutil::lock_file(&lock_path, true).at(&lock_path)?;
        let seq_path = self.root.join(".seq");
        let last: u64 = match fs::read_to_string(&seq_path) {
            Ok(text) => text.trim().parse().map_err(|_| {
                SpoolError::Refused(format!(
                    "{}: not a number; remove it and reel starts counting again",
                    seq_path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).at(&seq_path),
        };
        let seq = last + 1;
        fsutil::write_atomic(&seq_path, format!("{seq}\n").as_bytes()).at(&seq_path)?;
        let id = format!("{stream}-{}-{seq:04}", crate::time::Utc::now().compact());
        check_item_id(&id).map_err(SpoolError::Refused)?;
        Ok(id)
    }

    /// Remove temporary files left behind by writers that died: those whose
    /// writer process (named in the file name) is gone and whose lock
    /// nobody holds. A live writer's file is never touched, not even in the
    /// instant between its creation and its lock. Returns how many were
    /// removed.
    pub fn clean_tmp(&self, q: Queue) -> Result<usize, SpoolError> {
        let tmp = self.tmp_dir(q);
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).at(&tmp)? {
            let path = entry.at(&tmp)?.path();
            if writer_alive(&path) {
                continue;
            }
            let Ok(file) = fs::File::open(&path) else {
                continue;
            };
            if let Some(_lock) = fsutil::try_lock(file).at(&path)? {
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).at(&path),
                }
            }
        }
        Ok(removed)
    }

    /// Put a failed item back into the queue it came from. Returns that
    /// queue.
    pub fn retry(&self, id: &str) -> Result<Queue, SpoolError> {
        check_item_id(id).map_err(SpoolError::Refused)?;
        let failed = self.item_path(Queue::Failed, id);
        if !failed.exists() {
            return Err(SpoolError::NoItem {
                id: id.to_string(),
                dir: self.dir(Queue::Failed),
            });
        }
        let error_path = self.dir(Queue::Failed).join(format!("{id}.error"));
        let from_error_file = || {
            fs::read_to_string(&error_path)
                .ok()
                .and_then(|text| FailedItem::parse_queue(&text))
        };
        let queue = match crate::manifest::read_header(&failed) {
            Ok(h) => Queue::of_kind(h.kind),
            Err(e) => from_error_file().ok_or(SpoolError::Manifest(e))?,
        };
        let target = self.item_path(queue, id);
        if target.exists() {
            return Err(SpoolError::Refused(format!(
                "{} already exists; remove one of the two copies first",
                target.display()
            )));
        }
        fs::rename(&failed, &target).at(&target)?;
        fsutil::sync_dir(&self.dir(queue)).at(&target)?;
        match fs::remove_file(&error_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&error_path),
            _ => {}
        }
        fsutil::sync_dir(&self.dir(Queue::Failed)).at(&error_path)?;
        Ok(queue)
    }

    /// The items in `failed/` with what their `.error` files say.
    pub fn failed(&self) -> Result<Vec<FailedItem>, SpoolError> {
        let mut out = Vec::new();
        for id in self.list(Queue::Failed)? {
            let error_path = self.dir(Queue::Failed).join(format!("{id}.error"));
            let text = fs::read_to_string(&error_path).unwrap_or_default();
            out.push(FailedItem::from_error_text(id, &text));
        }
        Ok(out)
    }
}

/// An item in `failed/` and the reason recorded beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedItem {
    pub id: String,
    pub error: String,
    pub queue: Option<Queue>,
    pub stage: Option<String>,
    pub time: Option<String>,
}

impl FailedItem {
    /// The `.error` file: `key: value` lines, written by [`Claim::fail`].
    pub(crate) fn render(error: &str, queue: Queue, stage: &str, time: &str) -> String {
        let one_line = error.replace(['\n', '\r'], " ");
        format!("error: {one_line}\nqueue: {queue}\nstage: {stage}\ntime: {time}\n")
    }

    fn from_error_text(id: String, text: &str) -> Self {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(": ")))
                .map(str::to_string)
        };
        FailedItem {
            id,
            error: field("error").unwrap_or_else(|| "no reason recorded".into()),
            queue: Self::parse_queue(text),
            stage: field("stage"),
            time: field("time"),
        }
    }

    fn parse_queue(text: &str) -> Option<Queue> {
        text.lines()
            .find_map(|l| l.strip_prefix("queue: "))
            .and_then(|q| Queue::parse(q.trim()))
    }
}

#[cfg(test)]
mod tests;
