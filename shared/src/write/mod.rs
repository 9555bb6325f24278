//! The write loop: tape checks, one archive per tape file through the ring,
//! written manifests, tape state.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::archive::{BLOCK, Kind as ArchiveKind, Member, encode, padding};
use crate::catalog::tape::{ArchiveOnTape, Tape, TapeState, closing_catalog, log_written};
use crate::cli::CommonArgs;
use crate::config::Config;
use crate::exit::{Exit, ExitError};
use crate::manifest::{Digest, Header, Kind, Record};
use crate::ring::{Ring, RingStats, ring};
use crate::signals::{Watched, watch};
use anyhow::Context;
use nix::sys::signal::Signal;
use std::os::unix::fs::OpenOptionsExt;

use crate::spool::{Claim, Input, Output, Queue};
use crate::tape::label::Label;
use crate::tape::session::{Choice, Session, Writable, appendable};
use crate::tape::{Drive, TapeError, Written};
use crate::units::Size;
use sha2::{Digest as _, Sha256};

fn unavailable(m: impl Into<String>) -> anyhow::Error {
    ExitError::new(Exit::Unavailable, m).into()
}

/// The drive to write to (its session) and its streaming settings from
/// the config.
struct Target<'c> {
    session: Session<'c>,
    block_size: usize,
    buffer: usize,
    start_fill: f64,
    /// The drive's slowest streaming rate, bytes per second.
    min_rate: u64,
}

fn target<'c>(
    config: &'c Config,
    device: Option<&str>,
    drive: Option<&str>,
) -> anyhow::Result<Target<'c>> {
    // A new LTO-9 tape calibrates for up to two hours at its first load.
    let choice = Choice::given(device, drive);
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
    })
}

/// Start a tape file at the end of data: the catalog marks it as being
/// written before the first block goes out. Returns (file, start block).
fn begin_file(
    drive: &mut dyn Drive,
    tape: &mut Tape,
    catalog: &std::path::Path,
) -> anyhow::Result<(u64, u64)> {
    let start = drive.position()?;
    tape.writing = Some(start);
    tape.save(catalog)?;
    Ok((tape.files, start))
}

/// Close the tape file with a filemark — the sync point: only after it is
/// the data on tape — and account for it (the caller saves the state).
fn end_file(drive: &mut dyn Drive, tape: &mut Tape, bytes: u64) -> anyhow::Result<Written> {
    let closing = drive.write_filemarks(1)?;
    tape.writing = None;
    tape.files += 1;
    tape.eod = drive.position()?;
    tape.bytes += bytes;
    Ok(closing)
}

/// Close a full tape: its catalog, `REEL-TAPE.jsonl` in a tar archive of
/// its own, as the last tape file, in the room after the early warning
/// (docs/tape-format.md §8), and the state `Full`. If even that does not fit, the
/// tape is still full; `reel catalog import` can then rebuild its catalog
/// from the archives' own indexes.
fn close_tape(
    drive: &mut dyn Drive,
    tape: &mut Tape,
    catalog: &std::path::Path,
    block_size: usize,
) -> anyhow::Result<()> {
    tape.state = TapeState::Full;
    let text = closing_catalog(catalog, tape)?;
    let member = Member {
        path: b"REEL-TAPE.jsonl".to_vec(),
        kind: ArchiveKind::File {
            size: text.len() as u64,
        },
        mode: 0o444,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64 * 1_000_000_000),
        xattrs: Vec::new(),
        extra: Vec::new(),
    };
    let mut tar = encode(&member);
    tar.extend_from_slice(&text);
    tar.resize(tar.len() + padding(text.len() as u64) + 2 * BLOCK, 0);
    tar.resize(tar.len().div_ceil(block_size) * block_size, 0);
    let (file, start) = begin_file(drive, tape, catalog)?;
    let wrote = (|| -> Result<(), TapeError> {
        for block in tar.chunks(block_size) {
            drive.write_block(block)?;
        }
        Ok(())
    })();
    match wrote {
        Ok(()) => {
            end_file(drive, tape, tar.len() as u64)?;
            log::info!(
                "tape {} closed: REEL-TAPE.jsonl is file {file} from block {start}",
                tape.label
            );
        }
        Err(e) => {
            // Nothing usable went down: the end of data stays where it was.
            tape.writing = None;
            log::warn!(
                "tape {}: the closing catalog REEL-TAPE.jsonl did not fit ({e}); \
                 the archives' own indexes describe the tape",
                tape.label
            );
        }
    }
    tape.save(catalog)?;
    Ok(())
}

/// The next tape after `full`: through the library when the drive has
/// one, else from the operator at the terminal; `None` when nobody is
/// there to load one (no controlling terminal, or the operator typed q).
fn next_tape(
    t: &Target,
    full: &Label,
    catalog: &std::path::Path,
    drive: Box<dyn Drive>,
) -> anyhow::Result<Option<Writable>> {
    // The drive (and its lock) is let go: `reel mt` must be able to label
    // the new tape meanwhile.
    drop(drive);
    if t.session.has_library() {
        return t.session.after_full(catalog, full).map(Some);
    }
    let Ok(mut tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Ok(None);
    };
    let mut reason = String::new();
    loop {
        use std::io::{BufRead, Write};
        write!(
            tty,
            "{reason}reel-write: tape {} (pool {}) is full. Load a writable tape of pool {} \
             into {} (label a blank one first: reel mt label LABEL), then press Enter; q stops: ",
            full.label,
            full.pool,
            full.pool,
            t.session.device()
        )?;
        tty.flush()?;
        let mut answer = String::new();
        let n = std::io::BufReader::new(&tty).read_line(&mut answer)?;
        if n == 0 || answer.trim().eq_ignore_ascii_case("q") {
            return Ok(None);
        }
        let tried = t.session.open().and_then(|mut drive| {
            let (label, tape) = appendable(drive.as_mut(), catalog, t.session.device())?;
            if label.pool != full.pool {
                return Err(unavailable(format!(
                    "tape {} belongs to pool {}, not {}",
                    label.label, label.pool, full.pool
                )));
            }
            Ok((drive, label, tape))
        });
        match tried {
            Ok(next) => return Ok(Some(next)),
            Err(e) => reason = format!("reel-write: {e:#}\n"),
        }
    }
}

/// How streaming one archive ended.
struct Streamed {
    bytes: u64,
    /// The drive passed its early warning during the data: the archive was
    /// cut short and must be written again on another tape.
    cut: bool,
    /// SIGTERM or SIGINT: stopped between blocks.
    stopped: bool,
    /// The SHA-256 of everything read from the source, when it was hashed
    /// and read to its end.
    sha256: Option<Digest>,
}

/// A source that hashes what is read from it (on the ring's reader thread,
/// so the drive's side never waits for it).
struct Hashing<R> {
    inner: R,
    sha: Option<Sha256>,
}

impl<R> Hashing<R> {
    fn new(inner: R, hash: bool) -> Self {
        Hashing {
            inner,
            sha: hash.then(Sha256::new),
        }
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(sha) = &mut self.sha {
            sha.update(&buf[..n]);
        }
        Ok(n)
    }
}

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

/// Where the copy stands, for a progress line or a telemetry record.
#[derive(Clone, Copy)]
struct Snapshot<'a> {
    tape: &'a str,
    file: u64,
    position: Option<u64>,
    fill: usize,
    blocks: usize,
    starved: u64,
}

/// The progress line and the telemetry records (README, "Writing").
struct Progress {
    started: Instant,
    last: Instant,
    last_bytes: u64,
    total: u64,
    /// `<log>/telemetry/<tape>-<start>.jsonl`, a record every few seconds.
    telemetry: Option<File>,
    last_record: Instant,
    record_bytes: u64,
    /// stderr is a terminal: a status line redrawn every second.
    live: Option<Instant>,
}

const RECORD_EVERY: Duration = Duration::from_secs(5);
const LIVE_EVERY: Duration = Duration::from_secs(1);

impl Progress {
    fn new(telemetry: Option<File>) -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            last_bytes: 0,
            total: 0,
            telemetry,
            last_record: now,
            record_bytes: 0,
            live: None,
        }
    }

    /// Redraw a status line on stderr while writing, when it is a terminal
    /// and nobody asked for quiet.
    fn live(mut self, common: &CommonArgs) -> Progress {
        use std::io::IsTerminal;
        if common.quiet == 0 && std::io::stderr().is_terminal() {
            self.live = Some(Instant::now());
        }
        self
    }

    fn live_due(&self) -> bool {
        self.live.is_some_and(|t| t.elapsed() >= LIVE_EVERY)
    }

    /// Erase the status line (before a log line or at the end).
    fn clear(&self) {
        if self.live.is_some() {
            eprint!("\r\x1b[2K");
        }
    }

    fn record_due(&self) -> bool {
        self.telemetry.is_some() && self.last_record.elapsed() >= RECORD_EVERY
    }

    /// Append one telemetry record; a record that cannot be written is
    /// reported once and telemetry stops (the tape must not wait for it).
    fn record(&mut self, at: &Snapshot) {
        use std::io::Write as _;
        let now = Instant::now();
        let secs = now.duration_since(self.last_record).as_secs_f64().max(1e-3);
        let line = serde_json::json!({
            "time": crate::time::Utc::now().rfc3339(),
            "elapsed_s": now.duration_since(self.started).as_secs_f64(),
            "tape": at.tape,
            "file": at.file,
            "block": at.position,
            "bytes": self.total,
            "rate": ((self.total - self.record_bytes) as f64 / secs) as u64,
            "ring_fill": at.fill as f64 / at.blocks.max(1) as f64,
            "starvations": at.starved,
        });
        self.last_record = now;
        self.record_bytes = self.total;
        if let Some(f) = &mut self.telemetry
            && let Err(e) = writeln!(f, "{line}")
        {
            log::warn!("telemetry stops: {e}");
            self.telemetry = None;
        }
    }

    fn line(&mut self, at: &Snapshot) -> String {
        let now = Instant::now();
        let current = (self.total - self.last_bytes) as f64
            / now.duration_since(self.last).as_secs_f64().max(1e-3);
        let average = self.total as f64 / now.duration_since(self.started).as_secs_f64().max(1e-3);
        self.last = now;
        self.last_bytes = self.total;
        format!(
            "{} written, {}/s now, {}/s average, ring {}% full, starved {} time(s), tape {} file {} block {}",
            Size(self.total).human(),
            Size(current as u64).human(),
            Size(average as u64).human(),
            at.fill * 100 / at.blocks.max(1),
            at.starved,
            at.tape,
            at.file,
            at.position.map_or("?".into(), |p| p.to_string())
        )
    }
}

/// The reading side of a stream: the ring and the thread filling it.
struct Feed {
    ring: Ring,
    stats: Arc<RingStats>,
    reader: std::thread::JoinHandle<Option<Digest>>,
}

impl Feed {
    fn start(mut source: Hashing<Box<dyn std::io::Read + Send>>, t: &Target) -> Feed {
        let (filler, mut ring) = ring(t.block_size, t.buffer / t.block_size, t.start_fill);
        ring.pace(t.min_rate);
        let stats = ring.stats.clone();
        let reader = std::thread::spawn(move || {
            filler.fill_from(&mut source);
            source.sha.map(|s| Digest(s.finalize().into()))
        });
        Feed {
            ring,
            stats,
            reader,
        }
    }

    /// Stop reading; the digest of what was read, when it was hashed.
    fn finish(self, name: &std::path::Path, t: &Target) -> Option<Digest> {
        drop(self.ring);
        let digest = self
            .reader
            .join()
            .expect("the reading thread does not panic");
        let starved = self.stats.starvations.load(Ordering::Relaxed);
        let stops = self.stats.stops.load(Ordering::Relaxed);
        if stops > 0 {
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
fn pump(
    drive: &mut dyn Drive,
    feed: &mut Feed,
    name: &std::path::Path,
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
    let ring = &mut feed.ring;
    let result = (|| -> anyhow::Result<()> {
        while let Some(block) = ring.next_block() {
            let block = block.with_context(|| format!("reading {}", name.display()))?;
            let written = drive.write_block(block.data())?;
            out.bytes += block.data().len() as u64;
            progress.total += block.data().len() as u64;
            ring.recycle(block);
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
                    starved: feed.stats.starvations.load(Ordering::Relaxed),
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
    result.map(|()| out)
}

/// One archive (or stdin) through its own ring onto the drive.
fn stream(
    drive: &mut dyn Drive,
    archive: &std::path::Path,
    source: Hashing<Box<dyn std::io::Read + Send>>,
    t: &Target,
    signals: &Signals,
    progress: &mut Progress,
    at: (&str, u64),
) -> anyhow::Result<Streamed> {
    let mut feed = Feed::start(source, t);
    let result = pump(drive, &mut feed, archive, signals, progress, at);
    let digest = feed.finish(archive, t);
    result.map(|mut out| {
        if !out.cut && !out.stopped {
            out.sha256 = digest;
        }
        out
    })
}

/// Where an archive went on tape.
struct Placement<'a> {
    tape: &'a Label,
    file: u64,
    start: u64,
    block_size: usize,
    /// The copy was cut by the early warning.
    partial: bool,
    /// The SHA-256 of the archive as streamed (a whole copy only).
    sha256: Option<Digest>,
    /// Bytes that went to tape.
    bytes: u64,
}

fn publish(
    output: &mut Output,
    catalog: &std::path::Path,
    header: &Header,
    id: &str,
    records: &[Record],
    p: &Placement,
) -> anyhow::Result<()> {
    let (tape, file, start, block_size, partial) =
        (p.tape, p.file, p.start, p.block_size, p.partial);
    let mut h = Header::new(Kind::Written, &header.stream, id);
    h.extra = header.extra.clone();
    h.extra.insert("tape".into(), tape.label.clone().into());
    h.extra.insert("tape_uuid".into(), tape.uuid.clone().into());
    h.extra.insert("file".into(), file.into());
    h.extra.insert("start_block".into(), start.into());
    h.extra.insert("tape_block_size".into(), block_size.into());
    h.extra.insert("partial".into(), partial.into());
    if let Some(d) = p.sha256 {
        h.extra
            .insert("archive_sha256".into(), d.to_string().into());
    }
    let placed: Vec<Record> = records
        .iter()
        .map(|r| {
            let mut rec = r.clone();
            rec.tape = Some(tape.label.clone());
            rec.file = Some(file);
            rec.block = Some(start + r.offset.unwrap_or(0) / block_size as u64);
            rec
        })
        .collect();
    let mut item = output.begin(&h)?;
    for rec in &placed {
        item.write(rec)?;
    }
    item.commit()?;
    let line = ArchiveOnTape {
        kind: "archive".into(),
        archive: id.into(),
        stream: header.stream.clone(),
        file,
        start_block: start,
        bytes: p.bytes,
        partial,
        sha256: p.sha256.map(|d| d.to_string()),
        members: placed.len() as u64,
    };
    log_written(catalog, &tape.label, &line, &placed)?;
    Ok(())
}

pub fn run(
    common: &CommonArgs,
    device: Option<&str>,
    drive_name: Option<&str>,
    from_stdin: bool,
    to_stdout: bool,
) -> anyhow::Result<Exit> {
    let config = common.load_config()?;
    let t = target(&config, device, drive_name)?;
    let spool = config.prepare_dirs()?;
    let mut input = Input::of(&spool, Queue::Packed, from_stdin);
    let mut output = Output::of(&spool, Queue::Written, to_stdout);
    let signals = Signals::install()?;
    let catalog = config.paths.catalog.clone();
    let (mut drive, mut label, mut tape) = t.session.writable(&catalog)?;
    log::info!(
        "tape {} ({}), appending as file {} at block {}",
        label.label,
        label.pool,
        tape.files,
        tape.eod
    );
    let mut progress = Progress::new(telemetry(&config, &label.label)).live(common);
    let mut archives = 0;
    let mut failed = 0;
    while let Some(claim) = input.next_item()? {
        if signals.stop() {
            claim.release();
            break;
        }
        if tape.state == TapeState::Full {
            // More to write and the tape is full: the next one, from the
            // changer or the operator.
            let Some(next) = next_tape(&t, &label, &catalog, drive)? else {
                claim.release();
                return Err(unavailable(format!(
                    "tape {} is full; load the next tape and run reel-write again",
                    label.label
                )));
            };
            (drive, label, tape) = next;
            log::info!(
                "tape {} ({}), appending as file {} at block {}",
                label.label,
                label.pool,
                tape.files,
                tape.eod
            );
        }
        let Some((claim, header, records, archive, source)) =
            open_item(claim, &config.paths.cache.join("archives"))?
        else {
            failed += 1;
            continue;
        };
        let (file, start) = begin_file(drive.as_mut(), &mut tape, &catalog)?;
        let streamed = match stream(
            drive.as_mut(),
            &archive,
            Hashing::new(Box::new(source), true),
            &t,
            &signals,
            &mut progress,
            (&label.label, file),
        ) {
            Ok(s) => s,
            Err(e) => {
                // What reached the tape is unknown: the tape is suspect.
                tape.state = TapeState::Suspect;
                tape.save(&catalog)?;
                claim.release();
                return Err(e.context(format!(
                    "writing {} to tape {} (now marked suspect)",
                    header.id, label.label
                )));
            }
        };
        let closing = end_file(drive.as_mut(), &mut tape, streamed.bytes)?;
        if streamed.stopped {
            tape.save(&catalog)?;
            claim.release();
            log::warn!(
                "stopped by a signal in the middle of {}; it stays queued",
                header.id
            );
            return Ok(Exit::Ok);
        }
        if streamed.cut {
            // The members that made it count once verified: publish the cut
            // copy as partial; the archive goes whole onto the next tape.
            publish(
                &mut output,
                &catalog,
                &header,
                &format!("{}-{}-partial", header.id, label.label),
                &records,
                &Placement {
                    tape: &label,
                    file,
                    start,
                    block_size: t.block_size,
                    partial: true,
                    sha256: None,
                    bytes: streamed.bytes,
                },
            )?;
            close_tape(drive.as_mut(), &mut tape, &catalog, t.block_size)?;
            // The archive goes whole onto the next tape: it is still queued.
            claim.release();
            continue;
        }
        publish(
            &mut output,
            &catalog,
            &header,
            &header.id,
            &records,
            &Placement {
                tape: &label,
                file,
                start,
                block_size: t.block_size,
                partial: false,
                sha256: streamed.sha256,
                bytes: streamed.bytes,
            },
        )?;
        if closing == Written::EarlyWarning {
            close_tape(drive.as_mut(), &mut tape, &catalog, t.block_size)?;
        } else {
            tape.save(&catalog)?;
        }
        claim.finish()?;
        archives += 1;
        log::info!(
            "{}: tape {} file {} from block {} ({})",
            header.id,
            label.label,
            file,
            start,
            Size(streamed.bytes).human()
        );
    }
    let secs = progress.started.elapsed().as_secs_f64();
    log::info!(
        "{archives} archive(s), {} in {secs:.1}s ({}/s)",
        Size(progress.total).human(),
        Size((progress.total as f64 / secs.max(1e-3)) as u64).human()
    );
    if failed > 0 {
        return Err(ExitError::new(
            Exit::Data,
            format!(
                "{failed} item(s) could not be written and went to failed/ (see `reel status`)"
            ),
        )
        .into());
    }
    Ok(Exit::Ok)
}

/// `<log>/telemetry/<LABEL>-<start>.jsonl` opened for appending (README,
/// "Writing"); none, with a warning, when it cannot be.
fn telemetry(config: &Config, label: &str) -> Option<File> {
    let dir = config.paths.log.join("telemetry");
    let path = dir.join(format!(
        "{label}-{}.jsonl",
        crate::time::Utc::now().compact()
    ));
    std::fs::create_dir_all(&dir)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        })
        .map_err(|e| log::warn!("no telemetry: {}: {e}", path.display()))
        .ok()
}

/// A packed item to write: the claim, header, records, the archive's path
/// and the archive open.
type ToWrite = (Claim, Header, Vec<Record>, PathBuf, File);

/// The packed item's header, records and archive, which must be a regular
/// file directly in `archives` (the cache's): a manifest cannot make
/// reel-write read anything else. `None`: it went to failed/, with why.
fn open_item(claim: Claim, archives: &std::path::Path) -> anyhow::Result<Option<ToWrite>> {
    let Some((claim, header, records)) = claim.read_all("reel-write")?.item() else {
        return Ok(None);
    };
    let Some(archive) = header
        .extra
        .get("archive_path")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
    else {
        claim.reject(
            "the packed manifest names no archive (archive_path)",
            "reel-write",
        )?;
        return Ok(None);
    };
    if archive.parent() != Some(archives)
        || archive
            .file_name()
            .is_none_or(|n| n.as_encoded_bytes().starts_with(b"."))
    {
        let why = format!(
            "archive_path {} is not an archive in {}: refused",
            archive.display(),
            archives.display()
        );
        claim.reject(&why, "reel-write")?;
        return Ok(None);
    }
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&archive)
        .and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(f)
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        });
    match opened {
        Ok(f) => Ok(Some((claim, header, records, archive, f))),
        Err(e) => {
            let why = format!("cannot open its archive {}: {e}", archive.display());
            claim.reject(&why, "reel-write")?;
            Ok(None)
        }
    }
}

/// `--raw`: stdin through the same ring, after the same tape checks, as one
/// tape file; at the early warning the stream goes on as a new tape file on
/// the next tape (changer or operator), like mbuffer with an autoloader.
/// The tape's catalog state is kept; no manifest is written.
/// `--raw --unlabelled`: stdin as one tape file after the end of data of
/// whatever tape is loaded — no label read, no catalog, no tape change, like
/// `mbuffer -o /dev/nst0` after `mt eod`. Appending at the end of data
/// never overwrites anything (invariant 6 holds); at the early warning the
/// stream stops, its tape file is closed, and the run exits 69.
pub fn run_unlabelled(
    common: &CommonArgs,
    device: Option<&str>,
    drive_name: Option<&str>,
) -> anyhow::Result<Exit> {
    let config = common.load_config()?;
    let t = target(&config, device, drive_name)?;
    let signals = Signals::install()?;
    let mut drive = t.session.open()?;
    drive.end_of_data()?;
    let start = drive.position()?;
    let mut progress = Progress::new(telemetry(&config, "unlabelled")).live(common);
    let name = std::path::Path::new("<stdin>");
    let mut feed = Feed::start(Hashing::new(Box::new(std::io::stdin()), false), &t);
    let streamed = pump(
        drive.as_mut(),
        &mut feed,
        name,
        &signals,
        &mut progress,
        ("unlabelled", 0),
    )
    .context("writing stdin to tape")?;
    drive.write_filemarks(1)?;
    feed.finish(name, &t);
    log::info!(
        "{} from stdin: a tape file from block {start} to {}",
        Size(streamed.bytes).human(),
        drive.position()?
    );
    if streamed.cut {
        return Err(unavailable(format!(
            "the tape in {} reached its early warning: the stream was cut after {} \
             (the rest of stdin is not on tape)",
            t.session.device(),
            Size(streamed.bytes).human()
        )));
    }
    Ok(Exit::Ok)
}

pub fn run_raw(
    common: &CommonArgs,
    device: Option<&str>,
    drive_name: Option<&str>,
) -> anyhow::Result<Exit> {
    let config = common.load_config()?;
    let t = target(&config, device, drive_name)?;
    let signals = Signals::install()?;
    let mut drive = t.session.open()?;
    let catalog = config.paths.catalog.clone();
    let (mut label, mut tape) = appendable(drive.as_mut(), &catalog, t.session.device())?;
    let mut progress = Progress::new(telemetry(&config, &label.label)).live(common);
    let name = std::path::Path::new("<stdin>");
    let mut feed = Feed::start(Hashing::new(Box::new(std::io::stdin()), false), &t);
    let mut pieces = 0;
    loop {
        let (file, start) = begin_file(drive.as_mut(), &mut tape, &catalog)?;
        let streamed = pump(
            drive.as_mut(),
            &mut feed,
            name,
            &signals,
            &mut progress,
            (&label.label, file),
        );
        let streamed = match streamed {
            Ok(s) => s,
            Err(e) => {
                tape.state = TapeState::Suspect;
                tape.save(&catalog)?;
                return Err(e.context(format!(
                    "writing stdin to tape {} (now marked suspect)",
                    label.label
                )));
            }
        };
        end_file(drive.as_mut(), &mut tape, streamed.bytes)?;
        pieces += 1;
        log::info!(
            "{} from stdin: tape {} file {} from block {}",
            Size(streamed.bytes).human(),
            label.label,
            file,
            start
        );
        if !streamed.cut {
            tape.save(&catalog)?;
            break;
        }
        tape.state = TapeState::Full;
        tape.save(&catalog)?;
        let Some(next) = next_tape(&t, &label, &catalog, drive)? else {
            drop(feed);
            return Err(unavailable(format!(
                "tape {} is full and no next tape was loaded: the stream was cut after {} \
                 (the rest of stdin is not on tape)",
                label.label,
                Size(progress.total).human()
            )));
        };
        (drive, label, tape) = next;
        progress.telemetry = telemetry(&config, &label.label);
        log::info!(
            "the stream goes on on tape {} as file {}",
            label.label,
            tape.files
        );
    }
    feed.finish(name, &t);
    if pieces > 1 {
        log::info!(
            "stdin went to tape in {pieces} pieces, one tape file on each tape: \
             read them back in order and concatenate them"
        );
    }
    Ok(Exit::Ok)
}
