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
    // The loaded tape first, then the others through the changer.
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
            loaded = None;
            if session.load(tape)? {
                loaded = Some(session.open_labelled()?);
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
