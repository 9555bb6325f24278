//! The runs of `reel-write`: packed items onto reel tapes ([`run`]), stdin
//! onto reel tapes ([`run_raw`]), stdin onto any tape ([`run_unlabelled`]).

use anyhow::Context;

use crate::catalog::tapes::{Tape, TapeState};
use crate::cli::{CommonArgs, DriveArgs, PipeArgs};
use crate::exit::{Exit, ExitError};
use crate::spool::{Input, Output, Queue};
use crate::tape::Written;
use crate::tape::label::Label;
use crate::tape::session::{appendable, unavailable};
use crate::units::Size;

use super::behind::{Behind, OnTape, Publishing};
use super::items::{Placement, as_on_tape, item_pool, open_item, publish};
use super::progress::{Progress, telemetry};
use super::stream::{Feed, pump, stream};
use super::tapes::{begin_file, close_tape, end_file, full, next_tape};
use super::{Signals, target};

/// Write every packed item from the queue (or stdin) onto tape, one tape
/// file each, publishing a `written` item for each; a full tape is closed
/// and the next one loaded.
pub fn run(common: &CommonArgs, drive: &DriveArgs, pipe: &PipeArgs) -> anyhow::Result<Exit> {
    let (from_stdin, to_stdout) = (pipe.from_stdin()?, pipe.to_stdout()?);
    let config = common.load_config()?;
    let t = target(&config, drive)?;
    let spool = config.prepare_dirs()?;
    let mut input = Input::of(&spool, Queue::Packed, from_stdin);
    let mut output = Output::of(&spool, Queue::Written, to_stdout);
    let signals = Signals::install()?;
    let catalog = config.paths.catalog.clone();
    let archives_dir = config.paths.cache.join("archives");
    let ctx = Publishing {
        spool: &spool,
        config: &config,
        block_size: t.block_size,
    };
    let flush_every = config.write.flush_every.0;
    let mut behind = Behind::default();
    let mut archives = 0;
    let mut failed = 0;
    // A blank tape in the drive is labelled for the pool of the first
    // archive waiting (its header read, the item not claimed), so that it
    // is not spent on pool default.
    let start_pool = if from_stdin {
        None
    } else {
        spool.list(Queue::Packed)?.first().and_then(|id| {
            let h = crate::manifest::read_header(&spool.item_path(Queue::Packed, id)).ok()?;
            item_pool(&config, &h, "default").ok()
        })
    };
    let (mut drive, mut label, mut tape) = t
        .session
        .writable_for(&catalog, start_pool.as_deref().unwrap_or("default"))?;
    t.session.record_tape(drive.as_mut(), &mut tape, &catalog);
    log_appending(&label, &tape);
    let mut progress = Progress::new(telemetry(&config, &label.label), &label.label).live(common);
    // Flush what is written behind filemarks that did not wait, publish it,
    // and close the tape when it is past its early warning (the argument:
    // the last filemark said so). How many were published.
    macro_rules! settle {
        ($past_warning:expr) => {
            behind.settle_closing(
                drive.as_mut(),
                &mut tape,
                &label,
                &mut output,
                &ctx,
                $past_warning,
            )?
        };
    }
    // The pool of each waiting item, by id, as its header says (checked
    // again when the item is opened).
    let mut pools: std::collections::HashMap<String, Option<String>> =
        std::collections::HashMap::new();
    loop {
        // The archives of the loaded tape's pool first: one tape change per
        // pool and run rather than one per copy, and with two drives each
        // keeps to its pool, so that both copies stream at once.
        let loaded = label.pool.clone();
        let mut same_pool = |id: &str| {
            pools
                .entry(id.to_string())
                .or_insert_with(|| {
                    let h =
                        crate::manifest::read_header(&spool.item_path(Queue::Packed, id)).ok()?;
                    item_pool(&config, &h, "").ok()
                })
                .as_deref()
                .is_some_and(|p| p == loaded || p.is_empty())
        };
        // Archives from a pipe that has nothing more yet are published
        // before waiting for the next: whoever reads stdout waits for them.
        if !behind.is_empty() && !input.ready() {
            archives += settle!(false);
        }
        let Some(claim) = input.next_item_preferring(&mut same_pool)? else {
            if behind.is_empty() {
                break;
            }
            // Nothing more waiting: what is written goes on tape and is
            // published (its next copies, if any, then wait in the queue).
            archives += settle!(false);
            continue;
        };
        if signals.stop() {
            claim.release();
            break;
        }
        let Some((claim, header, records, archive, source)) = open_item(claim, &archives_dir)?
        else {
            failed += 1;
            continue;
        };
        // The tape must be writable, and of the pool that takes the
        // archive's stream or this copy of it (any, for a stream no
        // [[pool]] takes).
        let pool = match item_pool(&config, &header, &label.pool) {
            Ok(p) => p,
            Err(why) => {
                failed += 1;
                claim.reject(&why, "reel-write")?;
                continue;
            }
        };
        if tape.state != TapeState::Writable || pool != label.pool {
            // What is written to this tape is published before it goes.
            archives += settle!(false);
            // More to write and the tape is full (or its health made it
            // suspect), or of another pool: the next one, from the
            // changer or the operator.
            // Why, for the operator at the terminal, and for the message
            // when nobody is there.
            let (why, stop) = if tape.state != TapeState::Writable {
                let state = format!("{:?}", tape.state).to_lowercase();
                (
                    format!("tape {} (pool {}) is {state}", label.label, label.pool),
                    format!(
                        "tape {} is {state}; load the next tape and run reel-write again",
                        label.label
                    ),
                )
            } else {
                let why = format!(
                    "the archives of stream {} go to pool {pool}, tape {} is of pool {}",
                    header.stream, label.label, label.pool
                );
                let stop =
                    format!("{why}; load a writable tape of pool {pool} and run reel-write again");
                (why, stop)
            };
            let Some(next) = next_tape(&t, &pool, &why, &catalog, drive)? else {
                claim.release();
                return Err(unavailable(stop));
            };
            (drive, label, tape) = next;
            t.session.record_tape(drive.as_mut(), &mut tape, &catalog);
            progress.switch(telemetry(&config, &label.label), &label.label);
            log_appending(&label, &tape);
        }
        let (source, sealed_for) = as_on_tape(&config, &header, source, t.block_size as u64)
            .with_context(|| format!("sealing {}", archive.display()))?;
        // A sealed archive: the tape says for whom (`reel tapes`).
        for fp in &sealed_for {
            if !tape.sealed_for.contains(fp) {
                tape.sealed_for.push(fp.clone());
            }
        }
        // Behind archives not yet flushed, the catalog keeps the start of
        // the first of them as where a run that dies takes over.
        let (file, start) = if behind.is_empty() {
            begin_file(drive.as_mut(), &mut tape, &catalog)?
        } else {
            (tape.files, drive.position()?)
        };
        let streamed = match stream(
            drive.as_mut(),
            (&archive, source),
            &t,
            &signals,
            &mut progress,
            (&label.label, file),
            !behind.is_empty(),
        ) {
            Ok(s) => s,
            Err(e) => {
                // What reached the tape is unknown: the tape is suspect,
                // and the archives not flushed yet are written again.
                tape.state = TapeState::Suspect;
                tape.save(&catalog)?;
                claim.release();
                behind.release();
                return Err(e.context(format!(
                    "writing {} to tape {} (now marked suspect)",
                    header.id, label.label
                )));
            }
        };
        // A filemark that does not wait, so that the drive streams on into
        // the next archive; a waiting one where the run stops here.
        let closing = end_file(
            drive.as_mut(),
            &mut tape,
            streamed.bytes,
            !streamed.cut && !streamed.stopped,
        )?;
        if streamed.stopped {
            behind.settle(drive.as_mut(), &mut tape, &label, &mut output, &ctx)?;
            tape.save(&catalog)?;
            claim.release();
            log::warn!(
                "stopped by a signal in the middle of {}; it stays queued",
                header.id
            );
            return Ok(Exit::Ok);
        }
        if streamed.cut {
            archives += behind
                .settle(drive.as_mut(), &mut tape, &label, &mut output, &ctx)?
                .0;
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
                    sealed_for: &sealed_for,
                },
            )?;
            close_tape(drive.as_mut(), &mut tape, &catalog, t.block_size)?;
            if file == 1 {
                // Cut on a tape that held nothing else: it would be cut on
                // every tape in turn, each then full.
                failed += 1;
                claim.reject(
                    &format!(
                        "the archive does not fit on an empty tape: {} of it reached tape {} \
                         before the early warning (set [[drive]] capacity to the tapes' real \
                         capacity, so that reel-pack splits large files, or lower [pack] \
                         archive_size, then `reel retry`)",
                        Size(streamed.bytes).human(),
                        label.label
                    ),
                    "reel-write",
                )?;
                continue;
            }
            // The archive goes whole onto the next tape: it is still queued.
            claim.release();
            continue;
        }
        behind.push(OnTape {
            claim,
            header,
            records,
            pool,
            file,
            start,
            bytes: streamed.bytes,
            sha256: streamed.sha256,
            sealed_for,
        });
        let past_warning = closing == Written::EarlyWarning;
        if past_warning || behind.bytes() >= flush_every {
            archives += settle!(past_warning);
        }
    }
    archives += settle!(false);
    t.session.record_health(drive.as_mut(), &catalog);
    t.session.record_tape(drive.as_mut(), &mut tape, &catalog);
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

/// Which tape a run appends to, and where.
fn log_appending(label: &Label, tape: &Tape) {
    log::info!(
        "tape {} ({}), appending as file {} at block {}",
        label.label,
        label.pool,
        tape.files,
        tape.eod
    );
}

/// `--raw --unlabelled`: stdin as one tape file after the end of data of
/// whatever tape is loaded — no label read, no catalog, no tape change, like
/// `mbuffer -o /dev/nst0` after `mt eod`. Appending at the end of data
/// never overwrites anything (invariant 6 holds); at the early warning the
/// stream stops, its tape file is closed, and the run exits 69.
pub fn run_unlabelled(common: &CommonArgs, drive: &DriveArgs) -> anyhow::Result<Exit> {
    let config = common.load_config()?;
    let t = target(&config, drive)?;
    let signals = Signals::install()?;
    let mut drive = t.session.open()?;
    drive.end_of_data()?;
    let start = drive.position()?;
    let mut progress = Progress::new(telemetry(&config, "unlabelled"), "unlabelled").live(common);
    let name = std::path::Path::new("<stdin>");
    let mut feed = Feed::start(
        Box::new(std::io::stdin()),
        false,
        t.start_fill,
        drive.moves_tape(),
        &t,
    );
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

/// `--raw`: stdin through the same ring, after the same tape checks, as one
/// tape file; at the early warning the stream goes on as a new tape file on
/// the next tape (changer or operator), like mbuffer with an autoloader.
/// The tape's catalog state is kept; no manifest is written.
pub fn run_raw(common: &CommonArgs, drive: &DriveArgs) -> anyhow::Result<Exit> {
    let config = common.load_config()?;
    let t = target(&config, drive)?;
    let signals = Signals::install()?;
    let mut drive = t.session.open()?;
    let catalog = config.paths.catalog.clone();
    let (mut label, mut tape) = appendable(drive.as_mut(), &catalog, t.session.device())?;
    let mut progress = Progress::new(telemetry(&config, &label.label), &label.label).live(common);
    let name = std::path::Path::new("<stdin>");
    let mut feed = Feed::start(
        Box::new(std::io::stdin()),
        false,
        t.start_fill,
        drive.moves_tape(),
        &t,
    );
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
        end_file(drive.as_mut(), &mut tape, streamed.bytes, false)?;
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
        let Some(next) = next_tape(&t, &label.pool, &full(&label), &catalog, drive)? else {
            drop(feed);
            return Err(unavailable(format!(
                "tape {} is full and no next tape was loaded: the stream was cut after {} \
                 (the rest of stdin is not on tape)",
                label.label,
                Size(progress.total).human()
            )));
        };
        (drive, label, tape) = next;
        progress.switch(telemetry(&config, &label.label), &label.label);
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
