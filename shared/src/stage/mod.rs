//! reel-stage's work: copy scanned files onto the cache (the RAID0
//! array), hashing as it copies, never leaving a torn copy.
//!
//! For each `scanned` item: files are copied in parallel to
//! `<cache>/staged/<stream>/<item>/<path>` (`copy.rs`; one directory per
//! item, so a newer version never replaces a copy still on its way to
//! tape), directories and symlinks are recreated, hard links linked,
//! metadata kept; the file system is synced; then a `staged` item with
//! `sha256` and `cache` filled in is published and the scanned item
//! finished. A file that vanished, cannot be read, kept changing or is no
//! longer the size the scan recorded is reported and left out (the next
//! scan finds it again); the run then exits 1. A full cache stops the run
//! with exit 75 and leaves the item in its queue.
//!
//! - `stager.rs`: one item: its source root, its cache directory, the room
//!   it needs;
//! - `entries.rs`: one entry of an item: file, symlink or hard link;
//! - `copy.rs`: copying and hashing one file; `meta.rs`: its metadata;
//! - `parts.rs`: files staged in parts (docs/spool.md §7.2);
//! - `space.rs`: the cache's high and low water; `limit.rs`: `--bwlimit`.

mod copy;
mod entries;
mod free;
mod limit;
mod meta;
mod parts;
mod space;
mod stager;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;

use crate::config::Config;
use crate::exit::{Exit, ExitError};
use crate::manifest::{Header, Kind};
use crate::spool::{Claim, Input, Output, Queue};
use crate::units::Size;

use copy::CopyOptions;
use space::Space;
use stager::{Stager, Stop, Tally, item_need, sync_cache};

/// The name failed items and logs carry.
const PROGRAM: &str = "reel-stage";

/// The header key naming an item's bundle directory (see `copy::bundle`):
/// set by reel-stage, carried on by reel-pack, reel-write and reel-verify's
/// requeueing; reel-verify removes the directory once no waiting or failed
/// item names it.
pub const BUNDLES_KEY: &str = "bundles";

pub use copy::bundle_dir;
pub use free::free_bundles;

/// How to stage (reel-stage's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Read manifests from stdin instead of `scanned/`.
    pub from_stdin: bool,
    /// Write manifests to stdout instead of `staged/`.
    pub to_stdout: bool,
    /// Read sources at most this many bytes per second.
    pub bwlimit: Option<u64>,
    /// Copy a file that changes during its copy this many more times.
    pub retries: u32,
    /// Files copied at once.
    pub jobs: usize,
}

/// How an item ended.
enum ItemEnd {
    Done,
    /// It could not be read: moved to failed/.
    Failed,
    /// Not stageable now (its source is missing): kept locked until the run
    /// ends, so that it is not claimed again, then left in its queue.
    Held(Claim),
    /// The run stops (the cache is full).
    Stop(ExitError),
}

/// Stage one claimed item.
fn run_item(stager: &Stager, claim: Claim, output: &mut Output) -> anyhow::Result<ItemEnd> {
    let Some((claim, header, records)) = claim.read_all(PROGRAM)?.item() else {
        return Ok(ItemEnd::Failed);
    };
    // A file staged in parts: the next part.
    if records.iter().any(|r| r.part.is_some()) {
        return stager.stage_part(claim, &header, &records, output);
    }
    // What the cache can take: a file that needs more than half of it can
    // never be staged and packed whole (copy and archive at once) and is
    // staged in parts, after the rest; an item is staged only if what is
    // staged can still be packed after it.
    let total = stager.space.total().context("measuring the cache")?;
    let mut records = records;
    let in_parts = parts::take_too_big(&mut records, total);
    if let Some(reason) = stager.no_room(&header.id, item_need(&records))? {
        claim.release();
        return Ok(ItemEnd::Stop(ExitError::new(Exit::TempFail, reason)));
    }
    let started = Instant::now();
    let n = records.len();
    let staged = match stager.stage(&header, records)? {
        Ok(s) => s,
        Err(Stop::CacheFull(reason)) => {
            claim.release();
            return Ok(ItemEnd::Stop(ExitError::new(
                Exit::TempFail,
                format!("{reason}; {} stays queued", header.id),
            )));
        }
        Err(Stop::SourceMissing(reason)) => {
            // Other streams' items may still be stageable: hold this one
            // (so it is not claimed again) and go on.
            log::error!("{reason}; {} stays queued", header.id);
            return Ok(ItemEnd::Held(claim));
        }
        Err(Stop::Unusable(reason)) => {
            claim.reject(&reason, PROGRAM)?;
            return Ok(ItemEnd::Done);
        }
    };
    sync_cache(&stager.config.paths.cache)?;
    if staged.is_empty() {
        // Nothing to publish: bundles a killed run of this item left go,
        // unless an item it published before it was killed names them.
        free_bundles(
            &stager.spool,
            &header.stream,
            &stager.bundle_dir(&header).display().to_string(),
            &stager.config.paths.cache.join("staged"),
            None,
        );
    } else {
        let mut out_header = Header::new(Kind::Staged, &header.stream, &header.id);
        out_header.extra = header.extra.clone();
        // The bundles every item made of this one names, so that reel-verify
        // frees them only when none of those waits any more (also what a
        // killed run left there).
        out_header.extra.remove(BUNDLES_KEY);
        let bundles = stager.bundle_dir(&header);
        if bundles.is_dir() {
            out_header
                .extra
                .insert(BUNDLES_KEY.into(), bundles.display().to_string().into());
        }
        let mut item = output.begin(&out_header)?;
        for r in &staged {
            item.write(r)?;
        }
        item.commit()?;
    }
    for (i, r) in in_parts.iter().enumerate() {
        log::info!(
            "{}: {} needs more of the cache than it has ({}) to be staged whole: staged in parts of {}",
            r.path.display(),
            Size(r.size).human(),
            Size(total).human(),
            Size(parts::part_size(total, stager.config.archive_size().0)).human()
        );
        let mut first = r.clone();
        first.part = Some(1);
        first.part_offset = Some(0);
        let id = parts::part_id(&format!("{}-f{:04}", header.id, i + 1), 1);
        stager.queue_part(&header, &id, &first, None)?;
    }
    claim.finish()?;
    log::info!(
        "{}: {} of {} entries staged in {:.1}s",
        header.id,
        staged.len(),
        n,
        started.elapsed().as_secs_f64()
    );
    Ok(ItemEnd::Done)
}

/// Stage every item of `scanned/` (or of stdin) and exit as docs/exit-codes.md
/// says.
pub fn run(config: &Config, o: &Options) -> anyhow::Result<Exit> {
    let spool = config.prepare_dirs()?;
    let limiter = o.bwlimit.map(limit::Limiter::new);
    let stager = Stager {
        config,
        opts: CopyOptions {
            retries: o.retries,
            limiter: limiter.as_ref(),
            chown: nix::unistd::geteuid().is_root(),
        },
        space: Space::new(
            &config.paths.cache,
            config.cache.high_water,
            config.cache.low_water,
        ),
        pool: rayon::ThreadPoolBuilder::new()
            .num_threads(o.jobs.max(1))
            .build()
            .context("starting the copy threads")?,
        tally: Tally::default(),
        made: Mutex::new(std::collections::HashSet::new()),
        spool: spool.clone(),
    };
    if let Err(reason) = stager.space.may_start().context("measuring the cache")? {
        return Err(ExitError::new(Exit::TempFail, reason).into());
    }
    let mut input = Input::of(&spool, Queue::Scanned, o.from_stdin);
    let mut output = Output::of(&spool, Queue::Staged, o.to_stdout);
    let started = Instant::now();
    let mut stopped = None;
    let mut held = Vec::new();
    let mut failed = 0;
    while let Some(claim) = input.next_item()? {
        match run_item(&stager, claim, &mut output)? {
            ItemEnd::Done => {}
            ItemEnd::Failed => failed += 1,
            ItemEnd::Held(claim) => held.push(claim),
            ItemEnd::Stop(stop) => {
                stopped = Some(stop);
                break;
            }
        }
    }
    let missing = held.len();
    drop(held);
    let t = &stager.tally;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    log::info!(
        "{} files: {} copied, {} already staged, {} skipped; {} in {:.1}s ({}/s)",
        get(&t.files),
        get(&t.copied),
        get(&t.quick),
        get(&t.skipped),
        Size(get(&t.bytes)).human(),
        secs,
        Size((get(&t.bytes) as f64 / secs.max(0.001)) as u64).human()
    );
    if let Some(stop) = stopped {
        return Err(stop.into());
    }
    if failed > 0 {
        return Err(ExitError::new(
            Exit::Data,
            format!("{failed} item(s) could not be read and went to failed/ (see `reel status`)"),
        )
        .into());
    }
    if missing > 0 {
        // Temporary (an unmounted source): retried later, nothing stops.
        return Err(ExitError::new(
            Exit::TempFail,
            format!("{missing} item(s) stay queued: their source is missing (unmounted?)"),
        )
        .into());
    }
    Ok(if get(&t.skipped) > 0 {
        Exit::Skipped
    } else {
        Exit::Ok
    })
}
