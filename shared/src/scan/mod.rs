//! reel-scan's work: find what is not yet verified on tape.
//!
//! Walks each stream's source tree in parallel and writes `scanned`
//! manifests of every file, directory, symlink and special file that is new
//! or changed (path, size or mtime differ from the catalog's newest verified
//! version; with `--checksum` also the content), skipping what is already in
//! flight in the pipeline and what was modified within `min_age`.
//!
//! - `streams.rs`: which streams a run scans (configured, or a directory
//!   named on the command line);
//! - `stream.rs`: one stream's scan, from its lock to its last manifest;
//! - `walk.rs`: the parallel walk and what it decides for each entry;
//! - `inflight.rs`: what the pipeline already carries; `emit.rs`: cutting
//!   manifests; `owners.rs`: user and group names; `checksum.rs`: `--checksum`.

mod checksum;
mod emit;
mod inflight;
mod owners;
mod stream;
mod streams;
mod walk;

use std::path::PathBuf;

use anyhow::Context;

use crate::catalog;
use crate::config::Config;
use crate::exit::{Exit, ExitError};
use crate::spool::{Output, Queue};

use stream::{StreamResult, raise_open_file_limit, scan_stream};
use streams::settings;

/// What to scan and how (reel-scan's flags).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Scan these streams of the config (none: all, unless `sources`).
    pub streams: Vec<String>,
    /// Scan these directories instead.
    pub sources: Vec<PathBuf>,
    /// Also compare the content of files whose size and mtime match.
    pub checksum: bool,
    /// Write manifests to stdout instead of `scanned/`.
    pub to_stdout: bool,
    /// Cut a manifest after this many records.
    pub batch_records: u64,
}

/// Scan the streams `o` names (all by default) and exit as
/// docs/exit-codes.md says.
pub fn run(config: &Config, o: &Options) -> anyhow::Result<Exit> {
    let s = settings(o, config)?;
    let spool = config.prepare_dirs()?;
    let mut output = Output::of(&spool, Queue::Scanned, s.to_stdout);
    raise_open_file_limit();
    // Each stream's walk opens the index for itself; here only the rebuild.
    let rebuilt = catalog::refresh_index(&config.paths.catalog)?;
    if let Some(r) = rebuilt {
        log::info!(
            "catalog index rebuilt: {} paths from {} journal(s)",
            r.paths,
            r.journals
        );
    }
    let (mut failed, mut skipped, mut busy) = (0, 0, 0);
    for stream in &s.streams {
        // One scan of a stream at a time, from what is in flight to what it
        // publishes: two at once would both send every file.
        let lock_path = spool.root().join(format!("scan-{}.lock", stream.name));
        let Some(_lock) = crate::fsutil::lock_file(&lock_path, false)
            .with_context(|| format!("locking {}", lock_path.display()))?
        else {
            log::warn!(
                "{}: another reel-scan is scanning this stream ({} is locked); left to it",
                stream.name,
                lock_path.display()
            );
            busy += 1;
            continue;
        };
        match scan_stream(stream, &s, &config.paths.catalog, &spool, &mut output)? {
            StreamResult::Scanned { skipped: n } => skipped += n,
            StreamResult::Failed => failed += 1,
        }
    }
    if busy > 0 {
        return Err(ExitError::new(
            Exit::TempFail,
            format!("{busy} stream(s) were being scanned by another reel-scan: run again later"),
        )
        .into());
    }
    if failed == s.streams.len() {
        return Err(ExitError::new(Exit::NoInput, "no stream could be scanned").into());
    }
    Ok(if failed > 0 || skipped > 0 {
        Exit::Skipped
    } else {
        Exit::Ok
    })
}
