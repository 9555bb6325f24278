//! One stream onto tape: its source read by a thread into the ring
//! (page-aligned blocks, big reads; hashed on the way by another thread
//! when asked), and written one block per write() to the drive (several
//! at once to a drive that takes them as one request, the virtual one)
//! until the source ends, the early warning, or a stop signal.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest as _, Sha256};

use crate::manifest::Digest;
use crate::ring::{Ring, RingStats, ring};
use crate::tape::{Drive, Written};

use super::progress::{Progress, Snapshot};
use super::{Signals, Target};

/// How streaming one archive ended.
pub(super) struct Streamed {
    pub(super) bytes: u64,
    /// The drive passed its early warning during the data: the archive was
    /// cut short and must be written again on another tape.
    pub(super) cut: bool,
    /// SIGTERM or SIGINT: stopped between blocks.
    pub(super) stopped: bool,
    /// The SHA-256 of everything read from the source, when it was hashed
    /// and read to its end.
    pub(super) sha256: Option<Digest>,
}

/// The reading side of a stream: the ring and the thread filling it.
pub(super) struct Feed {
    ring: Ring,
    stats: Arc<RingStats>,
    reader: std::thread::JoinHandle<()>,
    /// The thread hashing each block before the drive gets it.
    hasher: Option<std::thread::JoinHandle<Sha256>>,
    started: Instant,
    /// The drive moves a tape (see [`Drive::moves_tape`]).
    moves: bool,
}

impl Feed {
    /// Read `source` into a new ring, the drive's side starting once it is
    /// `start_fill` full and paced; `hash`: its SHA-256 taken on the way
    /// (on a thread of its own, so that neither the reading nor the
    /// drive's side waits for it). For a drive that moves no tape
    /// (`moves`: [`Drive::moves_tape`]) the ring starts with its first
    /// block and is not paced: nothing stops when it runs dry.
    pub(super) fn start(
        source: Box<dyn std::io::Read + Send>,
        hash: bool,
        start_fill: f64,
        moves: bool,
        t: &Target,
    ) -> Feed {
        let start_fill = if moves { start_fill } else { 0.0 };
        let (filler, mut ring) = ring(t.block_size, t.buffer / t.block_size, start_fill);
        if moves {
            ring.pace(t.min_rate);
        }
        let stats = ring.stats.clone();
        let (filler, hasher) = if hash {
            let (f, h) = filler.through(Sha256::new(), |sha, b| sha.update(b));
            (f, Some(h))
        } else {
            (filler, None)
        };
        let reader = std::thread::spawn(move || filler.fill_from(source));
        Feed {
            ring,
            stats,
            reader,
            hasher,
            started: Instant::now(),
            moves,
        }
    }

    /// Stop reading; the digest of what was read, when it was hashed.
    pub(super) fn finish(self, name: &Path, t: &Target) -> Option<Digest> {
        drop(self.ring);
        self.reader
            .join()
            .expect("the reading thread does not panic");
        let digest = self.hasher.map(|h| {
            let sha = h.join().expect("the hashing thread does not panic");
            Digest(sha.finalize().into())
        });
        let starved = self.stats.starvations.load(Ordering::Relaxed);
        let stops = self.stats.stops.load(Ordering::Relaxed);
        // A ring that ran dry before it could measure its input (a
        // fraction of a second after a start from a low mark, while the
        // drive still had a buffer to write) waited for its mark although
        // the input, over the whole stream, kept up with the drive.
        let rate = self.stats.bytes_in.load(Ordering::Relaxed) as f64
            / self.started.elapsed().as_secs_f64().max(1e-3);
        if !self.moves {
            // No tape to stop: running dry only means the drive was faster.
            log::debug!("{}: the ring ran dry {starved} time(s)", name.display());
        } else if stops > 0 && rate >= t.min_rate as f64 {
            log::info!(
                "{}: the ring ran dry {starved} time(s) and waited for its start mark {stops} \
                 time(s); the input kept up over the whole stream ({})",
                name.display(),
                crate::tape::speed::Rate(rate as u64).human()
            );
        } else if stops > 0 {
            log::warn!(
                "{}: the input ran below the drive's minimum streaming rate ({}): \
                 the drive stopped {stops} time(s) to let the ring refill",
                name.display(),
                crate::tape::speed::Rate(t.min_rate).human()
            );
        } else if starved > 0 {
            log::info!(
                "{}: the ring ran dry {starved} time(s); writing went on at the input's rate",
                name.display()
            );
        }
        digest
    }
}

/// Write blocks from the ring to the drive until the source ends, the
/// early warning, or a stop signal.
pub(super) fn pump(
    drive: &mut dyn Drive,
    feed: &mut Feed,
    name: &Path,
    signals: &Signals,
    progress: &mut Progress,
    (tape, file): (&str, u64),
) -> anyhow::Result<Streamed> {
    let mut out = Streamed {
        bytes: 0,
        cut: false,
        stopped: false,
        sha256: None,
    };
    // A feed (stdin with --raw) may go on over several tapes: its
    // starvations from this call on.
    let starved0 = feed.stats.starvations.load(Ordering::Relaxed);
    let ring = &mut feed.ring;
    let per_write = drive.blocks_per_write().max(1);
    let mut batch = Vec::with_capacity(per_write);
    let result = (|| -> anyhow::Result<()> {
        while let Some(next) = ring.next_blocks(per_write, &mut batch) {
            next.with_context(|| format!("reading {}", name.display()))?;
            let blocks: Vec<&[u8]> = batch.iter().map(|b| b.data()).collect();
            let (n, written) = drive.write_blocks(&blocks)?;
            let bytes: u64 = blocks[..n].iter().map(|b| b.len() as u64).sum();
            out.bytes += bytes;
            progress.total += bytes;
            for block in batch.drain(..) {
                ring.recycle(block);
            }
            let due = progress.record_due();
            let asked = signals.progress.take();
            let live = progress.live_due();
            if due || asked || live {
                let at = Snapshot {
                    tape,
                    file,
                    position: drive.position().ok(),
                    fill: ring.fill(),
                    blocks: ring.blocks(),
                    starved: feed.stats.starvations.load(Ordering::Relaxed) - starved0,
                };
                if due {
                    progress.record(&at);
                }
                if asked {
                    progress.clear();
                    eprintln!("reel-write: {}", progress.line(&at));
                } else if live {
                    eprint!("\r\x1b[2K{}", progress.line(&at));
                    progress.live = Some(Instant::now());
                }
            }
            if written == Written::EarlyWarning {
                out.cut = true;
                return Ok(());
            }
            if signals.stop() {
                out.stopped = true;
                return Ok(());
            }
        }
        Ok(())
    })();
    progress.clear();
    progress.archive_done(
        ring.fill() as f64 / ring.blocks().max(1) as f64,
        feed.stats.starvations.load(Ordering::Relaxed) - starved0,
    );
    result.map(|()| out)
}

/// One archive through its own ring onto the drive. `streaming`: the
/// drive is still writing out the archives before it (its buffer full
/// behind a filemark that did not wait), so the ring need not be
/// `start_fill` full before the first block goes: a sixteenth will do, and
/// the drive hears from the host again sooner.
pub(super) fn stream(
    drive: &mut dyn Drive,
    (archive, source): (&Path, Box<dyn std::io::Read + Send>),
    t: &Target,
    signals: &Signals,
    progress: &mut Progress,
    at: (&str, u64),
    streaming: bool,
) -> anyhow::Result<Streamed> {
    let start_fill = if streaming {
        t.start_fill.min(1.0 / 16.0)
    } else {
        t.start_fill
    };
    let mut feed = Feed::start(source, t.archive_sha256, start_fill, drive.moves_tape(), t);
    let result = pump(drive, &mut feed, archive, signals, progress, at);
    let digest = feed.finish(archive, t);
    result.map(|mut out| {
        if !out.cut && !out.stopped {
            out.sha256 = digest;
        }
        out
    })
}
