//! `reel-scan`: find what is not yet verified on tape.
//!
//! Walks each stream's source tree in parallel and writes `scanned`
//! manifests of every file, directory, symlink and special file that is new
//! or changed (path, size or mtime differ from the catalog's newest verified
//! version; with `--checksum` also the content), skipping what is already in
//! flight in the pipeline and what was modified within `min_age`.

mod checksum;
mod emit;
mod inflight;
mod names;
mod walk;

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat};
use reel_shared::catalog;
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::config::{Config, Source, Stream};
use reel_shared::exit::{Exit, ExitError};
use reel_shared::spool::{Output, Queue, Spool};
use reel_shared::units::{Interval, Size};

use crate::walk::{Counts, Found, Walk};

/// Find files new or changed since they were last verified on tape
#[derive(Parser, Debug)]
#[command(name = "reel-scan", version, long_about = None)]
struct Args {
    /// Scan these streams from pipeline.toml (default: all)
    #[arg(long, value_name = "NAME")]
    stream: Vec<String>,

    /// Scan these directories (a directory that is a stream's source uses that stream)
    #[arg(value_name = "SOURCE", conflicts_with = "stream")]
    sources: Vec<PathBuf>,

    /// Also compare content hashes of files whose size and mtime match
    #[arg(long)]
    checksum: bool,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    output: Option<String>,

    /// Cut a manifest after this many records (it is also cut at pack.archive_size bytes)
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    batch_records: u64,

    #[command(flatten)]
    common: CommonArgs,
}

impl Program for Args {
    const NAME: &'static str = "reel-scan";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// What one scan works on, resolved from flags and config.
struct Settings {
    streams: Vec<Stream>,
    checksum: bool,
    batch_bytes: u64,
    batch_records: u64,
    to_stdout: bool,
    /// Remote streams land under `<cache>/landing/`.
    cache: PathBuf,
}

/// A stream for a directory given on the command line: the configured
/// stream with that source, else one named after the directory.
fn adhoc_stream(config: &Config, dir: &Path) -> anyhow::Result<Stream> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let abs = reel_shared::fsutil::normalize(&cwd, dir);
    if let Some(s) = config
        .streams
        .iter()
        .find(|s| s.source == Source::Local(abs.clone()))
    {
        return Ok(s.clone());
    }
    let base = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = if name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name
    } else {
        format!("s{name}")
    };
    // Never take a configured stream's name: its catalog entries and its
    // staging belong to its own source.
    while config.stream(&name).is_some() {
        name.push_str("_adhoc");
    }
    Ok(Stream {
        name,
        source: Source::Local(abs),
        exclude: Vec::new(),
        min_age: Interval::default(),
        one_file_system: true,
        schedule: None,
    })
}

fn settings(args: &Args, config: &Config) -> anyhow::Result<Settings> {
    let usage = |m: String| anyhow::Error::from(ExitError::new(Exit::Usage, m));
    let streams = if !args.sources.is_empty() {
        args.sources
            .iter()
            .map(|d| adhoc_stream(config, d))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else if !args.stream.is_empty() {
        args.stream
            .iter()
            .map(|n| {
                config.stream(n).cloned().ok_or_else(|| {
                    usage(format!(
                        "no [[stream]] named {n:?} in {}",
                        config.file.display()
                    ))
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    } else if config.streams.is_empty() {
        return Err(usage(format!(
            "{} has no [[stream]]; add one or name a directory to scan",
            config.file.display()
        )));
    } else {
        config.streams.clone()
    };
    let to_stdout = cli::dash_flag("--out", args.output.as_deref())?;
    Ok(Settings {
        streams,
        checksum: args.checksum,
        batch_bytes: config.archive_size().0,
        batch_records: args.batch_records,
        to_stdout,
        cache: config.paths.cache.clone(),
    })
}

/// Many directories may be open at once in a deep, wide tree.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

enum StreamResult {
    Scanned { skipped: u64 },
    Failed,
}

fn scan_stream(
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
            landing = reel_shared::remote::landing_dir(&s.cache, &stream.name);
            log::info!(
                "{}: pulling {} into {} with rsync",
                stream.name,
                stream.source,
                landing.display()
            );
            if let Err(e) = reel_shared::remote::pull(host, path, &landing) {
                log::error!("{}: {}", stream.name, reel_shared::cli::one_line(&e));
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

fn run(args: Args) -> anyhow::Result<Exit> {
    let config = args.common.load_config()?;
    let s = settings(&args, &config)?;
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
        let Some(_lock) = reel_shared::fsutil::lock_file(&lock_path, false)
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

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
