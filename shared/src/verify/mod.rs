//! The verify loop: each `written` archive read back from tape in whole
//! blocks, every member's ustar header checked and its data re-hashed at
//! the offsets the packed manifest gave, the good members recorded in the
//! tape's journal (fsync'd) and published as `verified`, the bad ones put
//! back in the staged queue from their staged copies, and the cache freed.
//!
//! This file holds the loop over the written queue ([`run`]); one item is
//! verified in `item.rs`, an archive read back and its members judged in
//! `readback.rs` ([`read_archive`]), and `--tape LABEL` ([`audit`]) is in
//! `audit.rs`.

mod audit;
mod item;
mod readback;

use std::collections::HashSet;
use std::time::Duration;

use crate::catalog::tapes::{Tape, TapeState};
use crate::cli::{CommonArgs, DriveArgs, PipeArgs};
use crate::config::{Config, VerifyWhen};
use crate::exit::Exit;
use crate::spool::{Input, Output, Queue, Spool};
use crate::tape::session::{Choice, Session};
use crate::units::Size;

pub use audit::audit;

/// The identities this host opens sealed archives with: every
/// `[[archive_key]]`'s `identity` that reads (the others are warned of).
pub(crate) fn identities(config: &Config) -> Option<crate::archive::sealed::Identities> {
    let sets = config
        .archive_identities()
        .into_iter()
        .filter_map(|r| r.map_err(|m| log::warn!("{m}")).ok())
        .collect();
    crate::archive::sealed::Identities::merge(sets)
}
pub use readback::{Outcome, read_archive};

use crate::tape::session::unavailable;
use item::Verifier;

/// The drive reel-verify reads with.
fn target<'c>(config: &'c Config, drive: &DriveArgs) -> anyhow::Result<Session<'c>> {
    let choice = Choice::given(drive.device(), drive.name());
    Ok(Session::new(
        Some(config),
        choice,
        Duration::from_secs(600),
    )?)
}

/// The written items, in tape order: (tape, tape file, id). An item that
/// cannot be read, or names no tape, is moved to failed/ here (counted in
/// `bad`): it would be ignored, or have tapes loaded one by one for nothing.
fn waiting(spool: &Spool, bad: &mut u64) -> anyhow::Result<Vec<(String, u64, String)>> {
    let mut out = Vec::new();
    for id in spool.list(Queue::Written)? {
        let path = spool.item_path(Queue::Written, &id);
        let why = match crate::manifest::ManifestReader::open(&path) {
            Ok((h, _)) => {
                let tape = h.extra.get("tape").and_then(|v| v.as_str());
                let file = h.extra.get("file").and_then(|v| v.as_u64());
                match (tape, file) {
                    (Some(t), Some(f)) if !t.is_empty() => {
                        out.push((t.to_string(), f, id));
                        continue;
                    }
                    _ => format!(
                        "{}: the written manifest names no tape or tape file",
                        path.display()
                    ),
                }
            }
            // Taken meanwhile.
            Err(crate::manifest::ManifestError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => e.to_string(),
        };
        if let Some(claim) = spool.claim_id(Queue::Written, &id)? {
            claim.reject(&why, "reel-verify")?;
            *bad += 1;
        }
    }
    out.sort();
    Ok(out)
}

/// Verify the written items, from the spool queue (the loaded tape's
/// first, the others' through the changer) or from stdin (`from_stdin`),
/// publishing the verified ones to the queue or stdout (`to_stdout`).
pub fn run(common: &CommonArgs, drive: &DriveArgs, pipe: &PipeArgs) -> anyhow::Result<Exit> {
    let (from_stdin, to_stdout) = (pipe.from_stdin()?, pipe.to_stdout()?);
    let config = common.load_config()?;
    let t = target(&config, drive)?;
    let spool = config.prepare_dirs()?;
    let output = Output::of(&spool, Queue::Verified, to_stdout);
    let mut v = Verifier {
        config: &config,
        t,
        spool: spool.clone(),
        output,
        loaded: None,
        verified: 0,
        failed: 0,
        archives: 0,
        read_bytes: 0,
        read_time: Duration::ZERO,
        bad_items: 0,
    };
    let mut needed: Vec<String> = Vec::new();
    let mut held: Vec<String> = Vec::new();
    if from_stdin {
        // As they come; an item for another tape stays queued.
        let mut input = Input::stdin(spool.clone(), Queue::Written);
        while let Some(claim) = input.next_item()? {
            if let Some(tape) = v.item(claim)? {
                needed.push(tape);
            }
        }
    } else {
        // The loaded tape's items in tape order, then the other tapes',
        // loaded through the changer.
        let mut tried: HashSet<String> = HashSet::new();
        loop {
            let mut items = waiting(&spool, &mut v.bad_items)?;
            if config.verify.when == VerifyWhen::Tape {
                // Only full tapes: one pass over each, fewer direction
                // changes; the cache holds the rest meanwhile.
                let full = |t: &str| {
                    Tape::load(&config.paths.catalog, t)
                        .ok()
                        .flatten()
                        .is_some_and(|s| s.state != TapeState::Writable)
                };
                items.retain(|(t, _, _)| {
                    let keep = full(t);
                    if !keep && !held.contains(t) {
                        held.push(t.clone());
                    }
                    keep
                });
            }
            if items.is_empty() {
                break;
            }
            // The tape in the drive: none that helps (empty, blank, not
            // ours) is no stop when the changer can bring the ones needed.
            let has_changer = v.t.has_library();
            let here = match v.load() {
                Ok(l) => Some(l.label.label.clone()),
                Err(e) if has_changer && crate::cli::exit_of(&e) == Exit::Unavailable => {
                    log::info!("{e:#}: the tapes needed come from the changer");
                    v.loaded = None;
                    None
                }
                Err(e) => return Err(e),
            };
            let mine: Vec<_> = items
                .iter()
                .filter(|(t, _, _)| Some(t) == here.as_ref())
                .collect();
            if mine.is_empty() {
                let other = items
                    .iter()
                    .map(|(t, _, _)| t.clone())
                    .find(|t| !tried.contains(t));
                match other {
                    Some(want) => {
                        tried.insert(want.clone());
                        v.loaded = None; // lets go of the drive
                        if v.t.load(&want)? {
                            continue;
                        }
                    }
                    None => {
                        needed = items.into_iter().map(|(t, _, _)| t).collect();
                        break;
                    }
                }
                continue;
            }
            let mut done = 0;
            for (_, _, id) in mine {
                if let Some(claim) = spool.claim_id(Queue::Written, id)? {
                    v.item(claim)?;
                    done += 1;
                }
            }
            if done == 0 {
                break; // another reel-verify has them
            }
        }
    }
    log::info!(
        "{} archive(s): {} member(s) verified, {} bad; {} read back in {}",
        v.archives,
        v.verified,
        v.failed,
        Size(v.read_bytes).human(),
        item::took(v.read_bytes, v.read_time)
    );
    if !held.is_empty() {
        log::info!(
            "archives on tape(s) {} wait until the tape is full ([verify] when = \"tape\")",
            held.join(", ")
        );
    }
    if v.failed > 0 || v.bad_items > 0 {
        if v.bad_items > 0 {
            log::error!(
                "{} item(s) could not be verified and went to failed/ (see `reel status`)",
                v.bad_items
            );
        }
        return Ok(Exit::Data);
    }
    if !needed.is_empty() {
        needed.sort();
        needed.dedup();
        return Err(unavailable(format!(
            "written items wait for tape(s) {}: load one and run reel-verify again",
            needed.join(", ")
        )));
    }
    Ok(Exit::Ok)
}
