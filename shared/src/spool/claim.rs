//! Claiming, finishing and failing items.

use std::fs::{self, File};
use std::io::{BufReader, Seek};
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;

use super::{FailedItem, IoContext, Queue, Spool, SpoolError};
use crate::fsutil;
use crate::manifest::{Header, ManifestReader, Record};

/// A claimed item read whole, or moved to `failed/` because it could not be.
pub enum Opened {
    Item {
        claim: Claim,
        header: Header,
        records: Vec<Record>,
    },
    /// Where it went, and why (the file and line that did not parse).
    Failed { to: PathBuf, why: String },
}

impl Opened {
    /// The item, or `None` when it went to `failed/` (said on the log,
    /// with where it went).
    pub fn item(self) -> Option<(Claim, Header, Vec<Record>)> {
        match self {
            Opened::Item {
                claim,
                header,
                records,
            } => Some((claim, header, records)),
            Opened::Failed { to, why } => {
                log::error!("{why}; moved to {}", to.display());
                None
            }
        }
    }
}

/// An item this process holds the lock on. Dropping it releases the lock
/// and leaves the item where it is, to be taken again.
pub struct Claim {
    spool: Spool,
    queue: Queue,
    id: String,
    path: PathBuf,
    lock: Flock<File>,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("path", &self.path).finish()
    }
}

impl Spool {
    /// Claim the oldest item in `queue` that nobody else holds. `None` when
    /// there is none.
    pub fn claim(&self, queue: Queue) -> Result<Option<Claim>, SpoolError> {
        self.clean_tmp(queue)?;
        for id in self.list(queue)? {
            if let Some(c) = self.claim_id(queue, &id)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Claim the oldest item in `queue` that nobody else holds and that
    /// `prefer` likes (by id), else the oldest of the others.
    pub fn claim_preferring(
        &self,
        queue: Queue,
        prefer: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<Claim>, SpoolError> {
        self.clean_tmp(queue)?;
        let ids = self.list(queue)?;
        let (liked, others): (Vec<&String>, Vec<&String>) = ids.iter().partition(|id| prefer(id));
        for id in liked.into_iter().chain(others) {
            if let Some(c) = self.claim_id(queue, id)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Claim one item by id; `None` when another process holds it or it is
    /// gone.
    pub fn claim_id(&self, queue: Queue, id: &str) -> Result<Option<Claim>, SpoolError> {
        let path = self.item_path(queue, id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(&path),
        };
        let Some(lock) = fsutil::try_lock(file).at(&path)? else {
            return Ok(None);
        };
        // Between listing and locking, another consumer may have finished
        // the item (removed it) or failed it (renamed it away).
        if !fsutil::still_linked(&*lock, &path).at(&path)? {
            return Ok(None);
        }
        Ok(Some(Claim::new(
            self.clone(),
            queue,
            id.to_string(),
            path,
            lock,
        )))
    }
}

impl Claim {
    pub(crate) fn new(
        spool: Spool,
        queue: Queue,
        id: String,
        path: PathBuf,
        lock: Flock<File>,
    ) -> Self {
        Claim {
            spool,
            queue,
            id,
            path,
            lock,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn queue(&self) -> Queue {
        self.queue
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the item from its start: its header and a reader for its
    /// records.
    pub fn open(&self) -> Result<(Header, ManifestReader<BufReader<File>>), SpoolError> {
        let mut file = self.lock.try_clone().at(&self.path)?;
        file.rewind().at(&self.path)?;
        let name = self.path.display().to_string();
        let mut reader =
            ManifestReader::new(BufReader::with_capacity(256 * 1024, file), name.clone());
        match reader.next_manifest()? {
            Some(h) => Ok((h, reader)),
            None => Err(crate::manifest::ManifestError::Invalid {
                file: name,
                line: 1,
                message: "empty file: a manifest starts with a header line".into(),
            }
            .into()),
        }
    }

    /// The item was processed and its outputs published: remove it.
    /// The item's header and every record. One that does not parse is
    /// moved to `failed/` with the error (naming file and line) by `stage`:
    /// a bad file never stops a queue, nor fails the same way on every run.
    pub fn read_all(self, stage: &str) -> Result<Opened, SpoolError> {
        let read = self.open().and_then(|(header, mut reader)| {
            if let Some(want) = self.queue.kind()
                && header.kind != want
            {
                return Err(crate::manifest::ManifestError::Invalid {
                    file: self.path.display().to_string(),
                    line: 1,
                    message: format!("a {} manifest in the {} queue", header.kind, self.queue),
                }
                .into());
            }
            let records = reader.records().collect::<Result<Vec<_>, _>>()?;
            Ok((header, records))
        });
        match read {
            Ok((header, records)) => Ok(Opened::Item {
                claim: self,
                header,
                records,
            }),
            // Its text is bad (not a failure to read it: that is the disk's).
            Err(SpoolError::Manifest(e))
                if !matches!(e, crate::manifest::ManifestError::Io { .. }) =>
            {
                let why = e.to_string();
                let to = self.fail(&why, stage)?;
                Ok(Opened::Failed { to, why })
            }
            Err(e) => Err(e),
        }
    }

    pub fn finish(self) -> Result<(), SpoolError> {
        fs::remove_file(&self.path).at(&self.path)?;
        let dir = self.spool.dir(self.queue);
        fsutil::sync_dir(&dir).at(&dir)
    }

    /// The item cannot be processed: move it to `failed/` with a `.error`
    /// file naming `error`, the queue and the stage. Returns the new path.
    pub fn fail(self, error: &str, stage: &str) -> Result<PathBuf, SpoolError> {
        let failed_dir = self.spool.dir(Queue::Failed);
        let error_path = failed_dir.join(format!("{}.error", self.id));
        let text = FailedItem::render(error, self.queue, stage, &crate::time::Utc::now().rfc3339());
        // The reason first: a crash between the two steps leaves a reason
        // without an item (harmless), never an item without a reason.
        fsutil::write_atomic(&error_path, text.as_bytes()).at(&error_path)?;
        let target = self.spool.item_path(Queue::Failed, &self.id);
        fs::rename(&self.path, &target).at(&target)?;
        fsutil::sync_dir(&failed_dir).at(&failed_dir)?;
        let dir = self.spool.dir(self.queue);
        fsutil::sync_dir(&dir).at(&dir)?;
        Ok(target)
    }

    /// [`Claim::fail`], said on the log: `<id>: <why>; moved to <path>`.
    pub fn reject(self, why: &str, stage: &str) -> Result<(), SpoolError> {
        let id = self.id.clone();
        let to = self.fail(why, stage)?;
        log::error!("{id}: {why}; moved to {}", to.display());
        Ok(())
    }

    /// Give the item back untouched (a temporary failure: it is taken again
    /// on the next run).
    pub fn release(self) {}
}
