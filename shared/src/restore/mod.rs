//! Restoring from the catalog: the newest verified copy of each matching
//! path (or the one at `--at`), grouped by tape and read in tape order. For
//! each file the drive seeks straight to the block holding the member's
//! header (archive start + offset / block size), the ustar header is
//! checked, and only the member's own bytes are read, hashed and written;
//! a digest that does not match leaves `<name>.reel-corrupt`.
//!
//! This file holds the entry point ([`run`]) and the restore from the
//! catalog; `--from-tape` is in `from_tape.rs`, the plan and `--dry-run` in
//! `plan.rs`, reading a member's bytes in `member.rs`, and writing what was
//! read in `restorer.rs`, `file.rs` and `join.rs` (split files).

mod file;
mod from_tape;
mod join;
mod member;
mod plan;
mod restorer;

use std::path::PathBuf;
use std::time::Duration;

use crate::catalog::find::{Query, search};
use crate::cli::{CommonArgs, DriveArgs};
use crate::exit::{Exit, ExitError};
use crate::tape::session::{Choice, Session};

use plan::{dry_run, plan};
use restorer::Restorer;

/// What `reel-restore` was asked to do (its flags).
pub struct Options {
    /// Globs or path prefixes of the files to restore.
    pub patterns: Vec<String>,
    /// `--from-tape DEVICE`: restore by what the tape says of itself.
    pub from_tape: Option<String>,
    /// The directory to restore into (`--to`).
    pub to: Option<PathBuf>,
    /// Restore the versions taken at or before this time (`--at`).
    pub at: Option<String>,
    /// Replace existing files.
    pub overwrite: bool,
    /// List the tapes and positions that would be read, and the bytes.
    pub dry_run: bool,
    /// The drive (`-f DEVICE` or `--drive NAME`).
    pub drive: DriveArgs,
}

/// A usage error (exit code 64) saying `m`.
fn usage(m: impl Into<String>) -> anyhow::Error {
    ExitError::new(Exit::Usage, m.into()).into()
}

/// Restore what `o` asks for: from the catalog, or with `--from-tape`
/// from the tape alone.
pub fn run(common: &CommonArgs, o: Options) -> anyhow::Result<Exit> {
    if let Some(dev) = o.from_tape.clone() {
        return from_tape::run(common, o, &dev);
    }
    let config = common.load_config()?;
    let found = search(
        &config.paths.catalog,
        &Query {
            patterns: o.patterns.clone(),
            stream: None,
            at: o.at.clone(),
            all_versions: false,
        },
    )?;
    if found.is_empty() {
        return Err(ExitError::new(
            Exit::NoInput,
            format!("nothing verified matches {}", o.patterns.join(" ")),
        )
        .into());
    }
    let found = copies_at_hand(&config.paths.catalog, found, &o)?;
    let plan = plan(&found);
    if o.dry_run {
        return dry_run(&plan, found.len());
    }
    let to =
        o.to.clone()
            .ok_or_else(|| usage("--to DIR is needed (or --dry-run)"))?;
    let choice = Choice::given(o.drive.device(), o.drive.name());
    let session = Session::new(Some(&config), choice, Duration::from_secs(600))?;
    // The tape in the drive, if it is one of ours; an empty drive, or a
    // blank or foreign tape in it, is fine when a library can bring the
    // tapes the restore needs.
    let mut loaded = match session.open_labelled() {
        Ok(x) => Some(x),
        Err(e) if session.has_library() => {
            log::info!("{e:#}: the tapes needed come from the library");
            None
        }
        Err(e) => return Err(e),
    };
    let mut restorer = Restorer::new(to, o.overwrite)?;
    restorer.identities = crate::verify::identities(&config);
    let mut needed = Vec::new();
    read_tapes(
        &config,
        &session,
        &plan,
        &mut loaded,
        &mut restorer,
        &mut needed,
    )?;
    // Members a drive could not read: again from another copy of the same
    // version, on another tape, where there is one (issue #23).
    let retry = std::mem::take(&mut restorer.unreadable_records);
    if !retry.is_empty() {
        let again = other_copies(&config.paths.catalog, &retry, &o)?;
        if !again.is_empty() {
            log::info!(
                "{} member(s) unreadable: reading them from their other copies",
                again.len()
            );
            restorer.unreadable -= again.len() as u64;
            read_tapes(
                &config,
                &session,
                &plan::plan(&again),
                &mut loaded,
                &mut restorer,
                &mut needed,
            )?;
        }
    }
    let exit = restorer.finish();
    if needed.is_empty() {
        return Ok(exit);
    }
    let message = format!(
        "the rest needs tape(s) {}: load each and run again",
        needed.join(", ")
    );
    if exit != Exit::Ok {
        log::error!("{message}");
        return Ok(exit);
    }
    Err(ExitError::new(Exit::Unavailable, message).into())
}

/// Read each tape of `plan` (the one in the drive first, the others
/// through the changer) and restore its members; a tape away, or not in
/// the library, goes to `needed`.
fn read_tapes(
    config: &crate::config::Config,
    session: &Session,
    plan: &plan::Plan,
    loaded: &mut Option<(Box<dyn crate::tape::Drive>, crate::tape::label::Label)>,
    restorer: &mut Restorer,
    needed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let in_drive = loaded.as_ref().map(|(_, l)| l.label.clone());
    let mut order: Vec<&String> = plan.tapes.keys().collect();
    order.sort_by_key(|t| Some(*t) != in_drive.as_ref());
    for tape in order {
        let list = &plan.tapes[tape];
        // A tape the catalog knows to be away is not looked for in the
        // library (which would read every tape's label to be sure).
        let in_hand = loaded.as_ref().is_some_and(|(_, l)| l.label == *tape);
        let away = crate::catalog::tapes::Tape::load(&config.paths.catalog, tape)
            .ok()
            .flatten()
            .and_then(|t| t.place)
            .filter(|_| !in_hand);
        if let Some(place) = away {
            needed.push(format!(
                "{tape} ({} member(s); {place}: back into the library with `reel tapes import`)",
                list.len()
            ));
            continue;
        }
        if loaded.as_ref().is_none_or(|(_, l)| l.label != *tape) {
            *loaded = None;
            if session.load(tape)? {
                *loaded = Some(session.open_labelled()?);
            }
        }
        let Some((drive, label)) = loaded.as_mut() else {
            needed.push(format!("{tape} ({} member(s))", list.len()));
            continue;
        };
        let block_size = u64::from(label.block_size.max(1));
        for e in list {
            restorer.member(drive.as_mut(), &e.record, block_size);
        }
    }
    Ok(())
}

/// For each record a drive could not read, a copy of the same version on
/// another tape (the nearest), if the catalog has one.
fn other_copies(
    catalog: &std::path::Path,
    unreadable: &[crate::manifest::Record],
    o: &Options,
) -> anyhow::Result<Vec<crate::catalog::Entry>> {
    let every = every_copy(catalog, o)?;
    let mut out = Vec::new();
    for r in unreadable {
        let same = |e: &crate::catalog::Entry| {
            e.record.path == r.path
                && e.record.part == r.part
                && e.record.sha256 == r.sha256
                && e.record.sha256.is_some()
                && e.record.size == r.size
                && e.record.mtime_ns == r.mtime_ns
                && e.record.tape.is_some()
                && e.record.tape != r.tape
        };
        if let Some(best) = every
            .iter()
            .filter(|e| same(e))
            .min_by_key(|e| nearness(catalog, e.record.tape.as_deref().unwrap_or("")))
        {
            out.push(best.clone());
        }
    }
    Ok(out)
}

/// Every verified copy of every version that matches what was asked.
fn every_copy(
    catalog: &std::path::Path,
    o: &Options,
) -> anyhow::Result<Vec<crate::catalog::Entry>> {
    Ok(search(
        catalog,
        &Query {
            patterns: o.patterns.clone(),
            stream: None,
            at: o.at.clone(),
            all_versions: true,
        },
    )?)
}

/// How near a tape is, for choosing among the copies of a version: in
/// the library (or at hand) and sound, then suspect, then away (exported,
/// offsite), then lost; a tape the catalog no longer knows last.
fn nearness(catalog: &std::path::Path, tape: &str) -> u8 {
    use crate::catalog::tapes::{PlaceKind, Tape, TapeState};
    match Tape::load(catalog, tape).ok().flatten() {
        Some(t) => match (&t.place, t.state) {
            (None, TapeState::Suspect) => 1,
            (None, _) => 0,
            (Some(p), _) if p.kind == PlaceKind::Lost => 3,
            (Some(_), _) => 2,
        },
        None => 4,
    }
}

/// Each member found, from the nearest tape that holds a verified copy
/// of the same version (issue #23): the copy in the library rather than
/// the one offsite, a sound tape rather than a suspect or lost one. The
/// other copies are looked for only when a found one is not at hand.
fn copies_at_hand(
    catalog: &std::path::Path,
    found: Vec<crate::catalog::Entry>,
    o: &Options,
) -> anyhow::Result<Vec<crate::catalog::Entry>> {
    let mut near = std::collections::HashMap::new();
    let mut rank = |tape: &str| {
        *near
            .entry(tape.to_string())
            .or_insert_with(|| nearness(catalog, tape))
    };
    if found
        .iter()
        .all(|e| rank(e.record.tape.as_deref().unwrap_or("")) == 0)
    {
        return Ok(found);
    }
    let mut best: std::collections::HashMap<_, (u8, crate::catalog::Entry)> =
        std::collections::HashMap::new();
    for e in every_copy(catalog, o)? {
        let r = rank(e.record.tape.as_deref().unwrap_or(""));
        let slot = best.entry(e.version_part()).or_insert((u8::MAX, e.clone()));
        if r < slot.0 {
            *slot = (r, e);
        }
    }
    Ok(found
        .into_iter()
        .map(|e| {
            let r = rank(e.record.tape.as_deref().unwrap_or(""));
            match best.get(&e.version_part()) {
                Some((b, other)) if *b < r => {
                    log::info!(
                        "{}: the copy on tape {} instead of the one on {}",
                        e.record.path.display(),
                        other.record.tape.as_deref().unwrap_or("?"),
                        e.record.tape.as_deref().unwrap_or("?")
                    );
                    other.clone()
                }
                _ => e,
            }
        })
        .collect())
}
