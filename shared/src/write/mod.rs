//! Writing to tape (`reel-write`): packed archives streamed onto tape
//! through a memory ring, one tape file per archive, closed by a filemark
//! that does not wait (the drive streams on into the next archive); a
//! flush — the sync point — puts them on tape before their `written` items
//! are published with the tape, the tape file number and the start block
//! of every member (when the queue is empty, at a tape's end, or every
//! `[write] flush_every` bytes). Before the
//! first archive the tape's label is read and its end of data compared with
//! the catalog (invariant 6). SIGUSR1 prints a progress line; SIGTERM and
//! SIGINT finish the current archive's block, close the tape file and stop.
//!
//! - [`run`], [`run_raw`], [`run_unlabelled`] (`run.rs`): the three runs —
//!   packed items, stdin onto reel tapes (`--raw`), stdin onto any tape
//!   (`--raw --unlabelled`);
//! - `tapes.rs`: tape files begun and closed, a full tape closed with its
//!   catalog, the next tape from the library or the operator (the tapes
//!   themselves come from [`crate::tape::session`]);
//! - `stream.rs`: one stream from its source through the ring to the drive;
//! - `progress.rs`: the SIGUSR1 and live progress lines, telemetry records;
//! - `items.rs`: a packed item opened, its `written` item published;
//! - `behind.rs`: archives behind filemarks that did not wait, published
//!   once a flush has put them on tape.
//!
//! This module: the drive written to with its streaming settings, and the
//! signals a run watches.

mod behind;
mod items;
mod progress;
mod run;
mod stream;
mod tapes;

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cli::DriveArgs;
use crate::config::Config;
use crate::signals::{Watched, watch};
use crate::tape::session::{Choice, Session};

pub use run::{run, run_raw, run_unlabelled};

/// The drive to write to (its session) and its streaming settings from
/// the config.
struct Target<'c> {
    session: Session<'c>,
    block_size: usize,
    buffer: usize,
    start_fill: f64,
    /// The drive's slowest streaming rate, bytes per second.
    min_rate: u64,
    /// Hash each archive as it streams (`[write] archive_sha256`).
    archive_sha256: bool,
}

/// The drive `device` or `drive` means, with its streaming settings.
fn target<'c>(config: &'c Config, drive: &DriveArgs) -> anyhow::Result<Target<'c>> {
    // A new LTO-9 tape calibrates for up to two hours at its first load.
    let choice = Choice::given(drive.device(), drive.name());
    let session = Session::new(Some(config), choice, Duration::from_secs(150 * 60))?;
    let conf = session.conf();
    let block_size = session.block_size() as usize;
    let buffer = conf.map_or(1 << 30, |c| c.buffer.0 as usize);
    let start_fill = conf.map_or(0.9, |c| c.start_fill.fraction());
    let min_rate = conf.map_or(177_000_000, |c| c.min_rate.0);
    Ok(Target {
        session,
        block_size,
        buffer,
        start_fill,
        min_rate,
        archive_sha256: config.write.archive_sha256,
    })
}

/// The signals a run watches: SIGUSR1 asks for a progress line, SIGTERM
/// and SIGINT stop it between blocks.
struct Signals {
    progress: Watched,
    term: Watched,
    int: Watched,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            progress: watch(Signal::SIGUSR1)?,
            term: watch(Signal::SIGTERM)?,
            int: watch(Signal::SIGINT)?,
        })
    }

    fn stop(&self) -> bool {
        self.term.raised() || self.int.raised()
    }
}
