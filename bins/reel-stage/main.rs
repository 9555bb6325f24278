//! `reel-stage`: copy scanned files onto the cache (the RAID0 array),
//! hashing as it copies, never leaving a torn copy.
//!
//! For each `scanned` item: files are copied in parallel to
//! `<cache>/staged/<stream>/<item>/<path>` (see copy.rs; one directory per
//! item, so a newer version never replaces a copy still on its way to
//! tape), directories and symlinks are recreated, hard links linked,
//! metadata kept; the file system is synced; then a `staged` item with
//! `sha256` and `cache` filled in is published and the scanned item
//! finished. A file that vanished, cannot be read, kept changing or is no
//! longer the size the scan recorded is reported and left out (the next scan finds it again); the run then
//! exits 1. A full cache stops the run with exit 75
//! and leaves the item in its queue.

mod copy;
mod limit;
mod meta;
mod parts;
mod space;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use rayon::prelude::*;
use reel_shared::beneath::{Refused, Tree};
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::config::{Config, Source};
use reel_shared::exit::{Exit, ExitError};
use reel_shared::manifest::{EntryType, Header, Kind, Record};
use reel_shared::spool::{Claim, Input, Output, Queue};
use reel_shared::units::Size;

use crate::copy::{CopyError, CopyOptions};
use crate::space::Space;

/// Copy scanned files onto the cache, hashing as it copies
#[derive(Parser, Debug)]
#[command(name = "reel-stage", version, long_about = None)]
struct Args {
    /// Read manifests from stdin ("-") instead of the spool queue
    #[arg(long = "in", value_name = "-")]
    input: Option<String>,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    output: Option<String>,

    /// Read sources at most this fast, in bytes per second (like 50M)
    #[arg(long, value_name = "RATE")]
    bwlimit: Option<Size>,

    /// Copy a file that changes during its copy this many more times before giving up on it
    #[arg(long, default_value_t = 3, value_name = "N")]
    retries: u32,

    /// Files copied at once
    #[arg(long, default_value_t = 8, value_name = "N")]
    jobs: usize,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-stage";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// Counters of one run.
#[derive(Default)]
struct Tally {
    files: AtomicU64,
    copied: AtomicU64,
    quick: AtomicU64,
    bytes: AtomicU64,
    skipped: AtomicU64,
}

/// Why an item stopped.
enum Stop {
    CacheFull(String),
    SourceMissing(String),
    /// The item cannot be staged as it is: to failed/.
    Unusable(String),
}

struct Stager<'a> {
    config: &'a Config,
    opts: CopyOptions<'a>,
    space: Space,
    pool: rayon::ThreadPool,
    tally: Tally,
    /// Directories of the cache known to exist (no mkdir per file).
    made: Mutex<std::collections::HashSet<PathBuf>>,
    spool: reel_shared::spool::Spool,
}

fn join_bytes(base: &Path, rel: &Path) -> PathBuf {
    base.join(OsStr::from_bytes(rel.as_os_str().as_bytes()))
}

impl Stager<'_> {
    /// The most cache any item waiting in the staged queue needs to be
    /// packed: staging keeps that much free.
    fn largest_staged(&self) -> anyhow::Result<u64> {
        let mut largest = 0;
        for id in self.spool.list(Queue::Staged)? {
            let path = self.spool.item_path(Queue::Staged, &id);
            if let Ok((records, bytes)) = reel_shared::manifest::ManifestReader::totals(&path) {
                largest = largest.max(reel_shared::fsutil::cache_need(records, bytes));
            }
        }
        Ok(largest)
    }

    /// Why the cache has no room now for an item needing `need` bytes:
    /// staging keeps room to pack what is staged (`largest_staged`) after
    /// it. `None` when it has room.
    fn no_room(&self, id: &str, need: u64) -> anyhow::Result<Option<String>> {
        let reserve = need.max(self.largest_staged()?);
        Ok(self
            .space
            .room_for(id, need, reserve)
            .context("measuring the cache")?
            .err())
    }

    /// Where the item's files come from; `Err(reason)` when the item
    /// cannot say (it goes to failed/).
    fn source_root(&self, header: &Header) -> Result<PathBuf, String> {
        let named = header
            .extra
            .get("source")
            .and_then(|v| v.as_str())
            .map(PathBuf::from);
        let Some(stream) = self.config.stream(&header.stream) else {
            return named.ok_or_else(|| {
                format!(
                    "no [[stream]] named {:?} and no source in the manifest",
                    header.stream
                )
            });
        };
        let root = match &stream.source {
            Source::Local(p) => p.clone(),
            // reel-scan pulled it into the landing area.
            Source::Remote { .. } => {
                reel_shared::remote::landing_dir(&self.config.paths.cache, &header.stream)
            }
        };
        match named {
            Some(n) if n != root => Err(format!(
                "the manifest was scanned from {} but stream {:?} backs up {}",
                n.display(),
                header.stream,
                root.display()
            )),
            _ => Ok(root),
        }
    }

    /// Make `dir` (inside `base`) a real directory, component by component:
    /// never through a symlink a former version of the tree left in the
    /// cache, which could lead outside it.
    fn ensure_dir(&self, base: &Path, dir: &Path) -> std::io::Result<()> {
        if self.made.lock().expect("lock").contains(dir) {
            return Ok(());
        }
        let rel = dir.strip_prefix(base).unwrap_or(Path::new(""));
        let mut at = base.to_path_buf();
        for part in rel.components() {
            at.push(part);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    fs::remove_file(&at)?;
                    fs::create_dir(&at)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::create_dir(&at) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                },
                Err(e) => return Err(e),
            }
        }
        self.made.lock().expect("lock").insert(dir.to_path_buf());
        Ok(())
    }

    fn skip(&self, r: &Record, why: impl std::fmt::Display) {
        log::warn!("{}: {why}; left for the next run", r.path.display());
        self.tally.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Stage one item; returns the staged records in manifest order.
    fn stage(
        &self,
        header: &Header,
        records: Vec<Record>,
    ) -> anyhow::Result<Result<Vec<Record>, Stop>> {
        let root = match self.source_root(header) {
            Ok(r) => r,
            Err(why) => return Ok(Err(Stop::Unusable(why))),
        };
        let source = match Tree::open_existing(&root) {
            Ok(t) => t,
            Err(_) => {
                return Ok(Err(Stop::SourceMissing(format!(
                    "the source {} of stream {} is not there (unmounted?)",
                    root.display(),
                    header.stream
                ))));
            }
        };
        let cache = self.item_dir(header)?;
        let mut out: Vec<Option<Record>> = vec![None; records.len()];
        // Directories first, so files have somewhere to go.
        for (i, r) in records.iter().enumerate() {
            if r.entry == EntryType::Dir {
                let dst = join_bytes(&cache, &r.path);
                match self.ensure_dir(&cache, &dst) {
                    Ok(()) => out[i] = Some(with_cache(r, &dst)),
                    Err(e) if is_full(&e) => return Ok(Err(self.full(e))),
                    Err(e) => self.skip(r, format!("cannot create {}: {e}", dst.display())),
                }
            }
        }
        let full: Mutex<Option<String>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let staged: Vec<(usize, Record)> = self.pool.install(|| {
            records
                .par_iter()
                .enumerate()
                .filter(|(_, r)| r.entry == EntryType::File)
                .filter_map(|(i, r)| {
                    if stop.load(Ordering::Relaxed) {
                        return None;
                    }
                    match self.stage_file(&source, &cache, r) {
                        Ok(rec) => rec.map(|rec| (i, rec)),
                        Err(reason) => {
                            stop.store(true, Ordering::Relaxed);
                            full.lock().expect("lock").get_or_insert(reason);
                            None
                        }
                    }
                })
                .collect()
        });
        if let Some(reason) = full.into_inner().expect("lock") {
            return Ok(Err(Stop::CacheFull(reason)));
        }
        for (i, rec) in staged {
            out[i] = Some(rec);
        }
        for (i, r) in records.iter().enumerate() {
            match r.entry {
                EntryType::Symlink => out[i] = self.stage_symlink(&cache, r),
                EntryType::Fifo | EntryType::Char | EntryType::Block => out[i] = Some(r.clone()),
                _ => {}
            }
        }
        for (i, r) in records.iter().enumerate() {
            if r.entry == EntryType::Hardlink {
                out[i] = self.stage_hardlink(&cache, r, &records, &out);
            }
        }
        // Directory times last: filling a directory changes its mtime.
        let mut dirs: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].entry == EntryType::Dir && out[i].is_some())
            .collect();
        dirs.sort_by_key(|&i| std::cmp::Reverse(records[i].path.as_os_str().len()));
        for i in dirs {
            let r = &records[i];
            if let Err(e) =
                meta::apply_to_path(&join_bytes(&cache, &r.path), r, self.opts.chown, false)
            {
                log::warn!(
                    "{}: cannot set the directory's metadata in the cache: {e}",
                    r.path.display()
                );
            }
        }
        // When each was taken from the source: what orders the versions of
        // a path in the catalog (files have theirs from their copy).
        let now = reel_shared::time::now_ns();
        Ok(Ok(out
            .into_iter()
            .flatten()
            .map(|mut r| {
                r.taken_ns.get_or_insert(now);
                // Where the scan found it matters no more.
                (r.dev, r.ino) = (None, None);
                r
            })
            .collect()))
    }

    /// The item's own directory in the cache, made, without what a killed
    /// run of it left half made. One directory per item: a newer version
    /// of a file, staged while an older one is still on its way to tape,
    /// never replaces it.
    fn item_dir(&self, header: &Header) -> anyhow::Result<PathBuf> {
        let dir = self
            .config
            .paths
            .cache
            .join("staged")
            .join(&header.stream)
            .join(&header.id);
        if dir.is_dir() {
            remove_temporaries(&dir);
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    fn full(&self, e: std::io::Error) -> Stop {
        self.space.pause();
        Stop::CacheFull(format!(
            "the cache {} is full: {e}",
            self.config.paths.cache.display()
        ))
    }

    /// `Ok(None)`: skipped (reported); `Err`: the cache is full, stop.
    fn stage_file(&self, root: &Tree, cache: &Path, r: &Record) -> Result<Option<Record>, String> {
        // statvfs is cheap, but not free: look every 64 files, and before
        // every large one.
        let n = self.tally.files.load(Ordering::Relaxed);
        if n % 64 == 0 || r.size >= 64 << 20 {
            match self.space.check() {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => return Err(reason),
                Err(e) => return Err(format!("cannot measure the cache: {e}")),
            }
        }
        let dst = join_bytes(cache, &r.path);
        // The source's directory, reached from the stream's root without
        // following a symlink: one swapped in since the scan is refused.
        let (dir, name) = match root.parent(&r.path, false) {
            Ok(x) => x,
            Err(Refused::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
                self.skip(r, "vanished before it could be copied");
                return Ok(None);
            }
            Err(why) => {
                self.skip(
                    r,
                    format!("changed since it was scanned ({why}); the next scan takes it"),
                );
                return Ok(None);
            }
        };
        if let Some(parent) = dst.parent()
            && let Err(e) = self.ensure_dir(cache, parent)
        {
            if is_full(&e) {
                self.space.pause();
                return Err(format!("the cache is full: {e}"));
            }
            self.skip(r, format!("cannot create {}: {e}", parent.display()));
            return Ok(None);
        }
        self.tally.files.fetch_add(1, Ordering::Relaxed);
        let staged = copy::stage_file(
            &copy::Source { dir: &dir, name },
            &dst,
            &copy::Scanned {
                size: r.size,
                dev: r.dev,
                ino: r.ino,
                part: None,
            },
            &self.opts,
        );
        if let Err(e) = &staged
            && !matches!(e, CopyError::CacheFull(_))
        {
            // Left out of this item: a copy an earlier, killed run of it
            // staged must not stay in the cache with nothing pointing at it.
            if fs::symlink_metadata(&dst).is_ok_and(|m| m.is_file()) {
                let _ = fs::remove_file(&dst);
            }
        }
        let s = match staged {
            Ok(s) => s,
            Err(e) => return self.left_out(r, &dst, e).map(|()| None),
        };
        let counter = if s.copied {
            &self.tally.copied
        } else {
            &self.tally.quick
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.tally.bytes.fetch_add(s.size, Ordering::Relaxed);
        let mut rec = with_cache(r, &dst);
        // The content matched the source up to now.
        rec.taken_ns = Some(reel_shared::time::now_ns());
        rec.sha256 = Some(s.sha256);
        rec.size = s.size;
        rec.mtime_ns = s.mtime_ns;
        Ok(Some(rec))
    }

    /// A file whose copy failed is left out, said why; `Err` when the
    /// cache is full (the run stops).
    fn left_out(&self, r: &Record, dst: &Path, e: CopyError) -> Result<(), String> {
        match e {
            CopyError::Vanished => self.skip(r, "vanished before it could be copied"),
            CopyError::ChangedSinceScan(why) => self.skip(
                r,
                format!("changed since it was scanned ({why}); the next scan takes it"),
            ),
            CopyError::Changing | CopyError::ChangedDuringCopy => self.skip(
                r,
                format!(
                    "kept changing while it was copied ({} attempts)",
                    self.opts.retries + 1
                ),
            ),
            CopyError::Source(e) => self.skip(r, format!("cannot read: {e}")),
            CopyError::CacheFull(e) => {
                self.space.pause();
                return Err(format!(
                    "the cache {} is full: {e}",
                    self.config.paths.cache.display()
                ));
            }
            CopyError::Cache(e) => self.skip(r, format!("cannot write {}: {e}", dst.display())),
        }
        Ok(())
    }

    fn stage_symlink(&self, cache: &Path, r: &Record) -> Option<Record> {
        let dst = join_bytes(cache, &r.path);
        let target = r.link.as_ref()?;
        let tmp = dst.with_file_name(format!(".reel-tmp-link-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let made = dst
            .parent()
            .map_or(Ok(()), |p| self.ensure_dir(cache, p))
            .and_then(|()| std::os::unix::fs::symlink(target, &tmp))
            .and_then(|()| meta::apply_to_path(&tmp, r, self.opts.chown, true))
            .and_then(|()| fs::rename(&tmp, &dst));
        match made {
            Ok(()) => Some(with_cache(r, &dst)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                self.skip(r, format!("cannot create the symlink in the cache: {e}"));
                None
            }
        }
    }

    fn stage_hardlink(
        &self,
        cache: &Path,
        r: &Record,
        records: &[Record],
        out: &[Option<Record>],
    ) -> Option<Record> {
        let target = r.link.as_ref()?;
        let staged_target = records
            .iter()
            .zip(out)
            .find(|(t, o)| &t.path == target && o.is_some())
            .and_then(|(_, o)| o.as_ref());
        let dst = join_bytes(cache, &r.path);
        let Some(t) = staged_target else {
            // A link an earlier, killed run made must not stay behind.
            if fs::symlink_metadata(&dst).is_ok_and(|m| m.is_file()) {
                let _ = fs::remove_file(&dst);
            }
            self.skip(
                r,
                format!("its link target {} was not staged", target.display()),
            );
            return None;
        };
        let src = join_bytes(cache, target);
        let tmp = dst.with_file_name(format!(".reel-tmp-hard-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let made = dst
            .parent()
            .map_or(Ok(()), |p| self.ensure_dir(cache, p))
            .and_then(|()| fs::hard_link(&src, &tmp))
            .and_then(|()| fs::rename(&tmp, &dst));
        match made {
            Ok(()) => {
                let mut rec = with_cache(r, &dst);
                rec.sha256 = t.sha256;
                rec.size = t.size;
                rec.mtime_ns = t.mtime_ns;
                Some(rec)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                self.skip(r, format!("cannot link it in the cache: {e}"));
                None
            }
        }
    }
}

fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Remove the temporaries (`.reel-tmp-*`: copies, links and symlinks being
/// made) that a killed run left anywhere under an item's cache directory.
/// Only this run has the item claimed, so none of them is in use.
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            remove_temporaries(&e.path());
        } else if e.file_name().as_bytes().starts_with(b".reel-tmp-") {
            log::debug!("removing {}, left by a killed run", e.path().display());
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The cache an item's files need.
fn item_need(records: &[Record]) -> u64 {
    let bytes = records
        .iter()
        .filter(|r| r.entry == EntryType::File)
        .map(Record::bytes)
        .sum();
    reel_shared::fsutil::cache_need(records.len() as u64, bytes)
}

fn with_cache(r: &Record, dst: &Path) -> Record {
    let mut rec = r.clone();
    rec.cache = Some(dst.to_path_buf());
    rec
}

/// Flush the cache file system: staged copies must be on disk before the
/// manifest that points at them is published.
fn sync_cache(cache: &Path) -> anyhow::Result<()> {
    let f = fs::File::open(cache).with_context(|| format!("opening {}", cache.display()))?;
    nix::unistd::syncfs(&f)
        .map_err(std::io::Error::from)
        .with_context(|| format!("syncing {}", cache.display()))
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
    let Some((claim, header, records)) = claim.read_all(Args::NAME)?.item() else {
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
            claim.reject(&reason, Args::NAME)?;
            return Ok(ItemEnd::Done);
        }
    };
    sync_cache(&stager.config.paths.cache)?;
    if !staged.is_empty() {
        let mut out_header = Header::new(Kind::Staged, &header.stream, &header.id);
        out_header.extra = header.extra.clone();
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

fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.load_config()?;
    let from_stdin = cli::dash_flag("--in", args.input.as_deref())?;
    let to_stdout = cli::dash_flag("--out", args.output.as_deref())?;
    let spool = config.prepare_dirs()?;
    let limiter = args.bwlimit.map(|r| limit::Limiter::new(r.0));
    let stager = Stager {
        config: &config,
        opts: CopyOptions {
            retries: args.retries,
            limiter: limiter.as_ref(),
            chown: nix::unistd::geteuid().is_root(),
        },
        space: Space::new(
            &config.paths.cache,
            config.cache.high_water,
            config.cache.low_water,
        ),
        pool: rayon::ThreadPoolBuilder::new()
            .num_threads(args.jobs.max(1))
            .build()
            .context("starting the copy threads")?,
        tally: Tally::default(),
        made: Mutex::new(std::collections::HashSet::new()),
        spool: spool.clone(),
    };
    if let Err(reason) = stager.space.may_start().context("measuring the cache")? {
        return Err(ExitError::new(Exit::TempFail, reason).into());
    }
    let mut input = Input::of(&spool, Queue::Scanned, from_stdin);
    let mut output = Output::of(&spool, Queue::Staged, to_stdout);
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

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
