//! One stream's scan: pull a remote source, walk the tree against the
//! catalog and what is in flight, publish the manifests, log the counts.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat};

use crate::catalog;
use crate::config::{Source, Stream};
use crate::spool::{Output, Spool};
use crate::units::Size;

use super::streams::Settings;
use super::walk::{self, Counts, Found, Walk};
use super::{emit, inflight};

/// Many directories may be open at once in a deep, wide tree.
pub(super) fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

pub(super) enum StreamResult {
    Scanned { skipped: u64 },
    Failed,
}

pub(super) fn scan_stream(
    stream: &Stream,
    s: &Settings,
    catalog_dir: &Path,
    spool: &Spool,
    output: &mut Output,
) -> anyhow::Result<StreamResult> {
    let started = Instant::now();
    let landing;
    let root = match &stream.source {
        Source::Local(root) => root,
        Source::Remote { host, path } => {
            landing = crate::remote::landing_dir(&s.cache, &stream.name);
            log::info!(
                "{}: pulling {} into {} with rsync",
                stream.name,
                stream.source,
                landing.display()
            );
            if let Err(e) = crate::remote::pull(host, path, &landing) {
                log::error!("{}: {}", stream.name, crate::cli::one_line(&e));
                return Ok(StreamResult::Failed);
            }
            &landing
        }
    };
    let root_fd: OwnedFd = match open(
        root.as_path(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            log::error!(
                "{}: cannot open the source {}: {e}",
                stream.name,
                root.display()
            );
            return Ok(StreamResult::Failed);
        }
    };
    let root_dev = fstat(&root_fd)
        .with_context(|| format!("stat {}", root.display()))?
        .st_dev;
    let in_flight = inflight::InFlight::load(spool, &stream.name)?;
    log::debug!("{}: {} records in flight", stream.name, in_flight.len());
    let mut globs = globset::GlobSetBuilder::new();
    for g in &stream.exclude {
        globs.add(globset::Glob::new(g).with_context(|| format!("exclude glob {g:?}"))?);
    }
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    // The walk owns what it uses: a handle on the index of its own.
    let index = catalog::open_checked(catalog_dir)?;
    let counts = Arc::new(Counts::default());
    let (tx, rx) = crossbeam_channel::bounded::<Found>(4096);
    let walk = Walk {
        stream: stream.name.clone(),
        index,
        in_flight,
        excludes: globs.build().context("building the exclude globs")?,
        newest_ns: now_ns.saturating_sub(stream.min_age.0.as_nanos() as i64),
        now_ns,
        one_file_system: stream.one_file_system.then_some(root_dev),
        checksum: s.checksum,
        root_display: root.display().to_string(),
        counts: Counts::default(),
        out: tx,
    };
    let source = match std::str::from_utf8(root.as_os_str().as_bytes()) {
        Ok(t) => t.to_string(),
        Err(_) => root.to_string_lossy().into_owned(),
    };
    let mut batcher = emit::Batcher::new(
        output,
        spool,
        &stream.name,
        source,
        s.batch_bytes,
        s.batch_records,
    );
    let result: anyhow::Result<()> = std::thread::scope(|scope| {
        // The receiver lives in this closure: if writing fails and we
        // return early, it is dropped before the scope joins the walker,
        // whose sends then fail instead of blocking forever.
        let rx = rx;
        let walker = scope.spawn(move || {
            rayon::scope(|rs| walk::visit(rs, &walk, Arc::new(root_fd), Vec::new()));
            walk.counts
        });
        let mut last_progress = Instant::now();
        let mut received = 0u64;
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Found::Entry(r)) => {
                    batcher.push(&r)?;
                    received += 1;
                }
                Ok(Found::Linked {
                    dev,
                    ino,
                    record,
                    wanted,
                }) => batcher.hold_link(dev, ino, record, wanted),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            if last_progress.elapsed() > Duration::from_secs(10) {
                log::info!(
                    "{}: scanning… {received} entries to back up so far",
                    stream.name
                );
                last_progress = Instant::now();
            }
        }
        let walked = walker
            .join()
            .map_err(|_| anyhow::anyhow!("the walk panicked"))?;
        merge_counts(&counts, &walked);
        Ok(())
    });
    result?;
    let (link_records, link_bytes) = batcher.flush_links()?;
    batcher.cut()?;
    let c = &counts;
    let get = Counts::get;
    log::info!(
        "{}: {} seen, {} new, {} changed, {} in flight, {} too recent, {} excluded, {} skipped; {} to back up in {} manifest(s); {:.1}s",
        stream.name,
        get(&c.seen),
        get(&c.new) + link_records,
        get(&c.changed),
        get(&c.in_flight),
        get(&c.too_recent),
        get(&c.excluded),
        get(&c.skipped),
        Size(get(&c.bytes) + link_bytes).human(),
        batcher.manifests.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(StreamResult::Scanned {
        skipped: get(&c.skipped),
    })
}

fn merge_counts(into: &Counts, from: &Counts) {
    use std::sync::atomic::Ordering::Relaxed;
    for (a, b) in [
        (&into.seen, &from.seen),
        (&into.new, &from.new),
        (&into.changed, &from.changed),
        (&into.in_flight, &from.in_flight),
        (&into.too_recent, &from.too_recent),
        (&into.excluded, &from.excluded),
        (&into.skipped, &from.skipped),
        (&into.bytes, &from.bytes),
    ] {
        a.fetch_add(b.load(Relaxed), Relaxed);
    }
}
