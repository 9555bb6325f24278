//! Publishing an item: write to `.tmp/` under a lock, fsync, rename, fsync
//! the directory.

use std::fs::{self, File, OpenOptions};
use std::io::BufWriter;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::Flock;

use super::{Claim, IoContext, Queue, Spool, SpoolError};
use crate::fsutil;
use crate::manifest::{Header, ManifestWriter, Record};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An item being written. Nothing is visible in the queue until
/// [`Pending::commit`]; dropping it without committing removes the
/// temporary file.
pub struct Pending {
    writer: Option<ManifestWriter<BufWriter<File>>>,
    lock: Option<Flock<File>>,
    tmp: PathBuf,
    target: PathBuf,
    queue: Queue,
    id: String,
    spool: Spool,
}

impl Spool {
    /// Start publishing an item into `queue`, named after `header.id`.
    pub fn begin(&self, queue: Queue, header: &Header) -> Result<Pending, SpoolError> {
        super::check_item_id(&header.id).map_err(SpoolError::Refused)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp =
            self.tmp_dir(queue)
                .join(format!("{}.jsonl.{}.{n}", header.id, std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .at(&tmp)?;
        // The lock tells `clean_tmp` that a live writer owns this file. It
        // sits on the open file description, which the clone shares.
        let writer_file = file.try_clone().at(&tmp)?;
        let lock = fsutil::try_lock(file).at(&tmp)?.ok_or_else(|| {
            SpoolError::Refused(format!("{} is locked by another process", tmp.display()))
        })?;
        let writer = ManifestWriter::new(BufWriter::with_capacity(256 * 1024, writer_file), header)
            .at(&tmp)?;
        Ok(Pending {
            writer: Some(writer),
            lock: Some(lock),
            target: self.item_path(queue, &header.id),
            tmp,
            queue,
            id: header.id.clone(),
            spool: self.clone(),
        })
    }
}

impl Pending {
    pub fn write(&mut self, record: &Record) -> Result<(), SpoolError> {
        let w = self.writer.as_mut().expect("writer present until commit");
        w.write(record).at(&self.tmp)
    }

    pub fn records(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.records())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Make the item visible in its queue; returns its path.
    pub fn commit(mut self) -> Result<PathBuf, SpoolError> {
        self.persist()?;
        Ok(self.target.clone())
    }

    /// Commit, keeping the lock: the caller now holds the item as claimed
    /// (used when an item arrives on stdin and is processed right away).
    pub fn commit_claimed(mut self) -> Result<Claim, SpoolError> {
        self.persist()?;
        let lock = self.lock.take().expect("lock present until commit");
        Ok(Claim::new(
            self.spool.clone(),
            self.queue,
            self.id.clone(),
            self.target.clone(),
            lock,
        ))
    }

    fn persist(&mut self) -> Result<(), SpoolError> {
        let writer = self.writer.take().expect("commit once");
        let file = writer
            .finish()
            .and_then(|b| b.into_inner().map_err(|e| e.into_error()))
            .at(&self.tmp)?;
        file.sync_all().at(&self.tmp)?;
        drop(file);
        fs::rename(&self.tmp, &self.target).at(&self.target)?;
        let dir = self.spool.dir(self.queue);
        fsutil::sync_dir(&dir).at(&dir)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("target", &self.target)
            .finish()
    }
}
