//! Where each tape is (issue #23): `reel tapes export` (to the library's
//! import/export slots, offsite once taken out), `reel tapes import` (from
//! them back into storage slots), `reel tapes mark` (by hand, for tapes
//! without a changer or the operator's own records), and what `reel
//! tapes` shows: the slot or drive the library says, else the place the
//! catalog keeps.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;

use crate::catalog::tapes::{Place, PlaceKind, Tape, TapeState};
use crate::catalog::{lifecycle, retention};
use crate::changer::{Changer, ChangerStatus};
use crate::config::Config;
use crate::device::{library_spec, open_changer};
use crate::exit::{Exit, ExitError};

#[derive(Subcommand, Debug)]
pub enum TapesOp {
    /// Move tapes to the library's empty import/export slots, to go
    /// offsite: each is marked offsite once taken out
    Export {
        #[arg(value_name = "LABEL", required = true)]
        labels: Vec<String>,
        /// Where they go (a vault, a box, a courier): kept with each
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Move every tape in the import/export slots into empty storage slots;
    /// the catalog's tapes among them are in the library again
    Import,
    /// The retention plan: which versions expire (now, and when the next
    /// does), which tapes could be used again, which copies are missing
    Plan {
        /// One JSON object on stdout instead of text
        #[arg(long)]
        json: bool,
    },
    /// Expire what the policies let go (recorded in the catalog), then
    /// queue again, from a copy in the library, every archive holding a
    /// kept version that misses a copy (its tape lost or suspect); the
    /// supervisor does this at the end of each pass
    Rewrite,
    /// Say by hand where tapes are (without a changer, or for the records)
    Mark {
        #[arg(value_name = "LABEL", required = true)]
        labels: Vec<String>,
        #[command(flatten)]
        place: MarkAs,
        /// Where exactly (a vault, a box), or what happened
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct MarkAs {
    /// Away from the library, in safe keeping
    #[arg(long)]
    offsite: bool,
    /// Nobody knows where: its copies no longer count
    #[arg(long)]
    lost: bool,
    /// Worn out or damaged: never written again
    #[arg(long)]
    retired: bool,
    /// Back where reel can load it (in the library, or at hand)
    #[arg(long)]
    here: bool,
}

pub fn run(config: &Config, op: TapesOp) -> anyhow::Result<Exit> {
    let catalog = &config.paths.catalog;
    match op {
        TapesOp::Export { labels, note } => export(config, &labels, note),
        TapesOp::Import => import(config),
        TapesOp::Plan { json } => show_plan(config, json),
        TapesOp::Rewrite => {
            let spool = config.prepare_dirs()?;
            let done = super::rewrite::schedule(config, &spool)?;
            for id in &done.queued {
                crate::outln!("queued again: {id}")?;
            }
            crate::outln!(
                "{} archive(s) queued to be written again; {} version(s) missing a copy have none to copy from{}",
                done.queued.len(),
                done.no_source,
                if done.queued.is_empty() {
                    ""
                } else {
                    ": reel-supervisor --once (or reel-write, then reel-verify) writes them"
                }
            )?;
            if done.unreadable > 0 {
                crate::outln!(
                    "{} archive(s) could not be read from their tape (see the log)",
                    done.unreadable
                )?;
            }
            Ok(if done.no_source + done.unreadable > 0 {
                Exit::Data
            } else {
                Exit::Ok
            })
        }
        TapesOp::Mark {
            labels,
            place,
            note,
        } => {
            let tapes = known(catalog, &labels)?;
            for mut t in tapes {
                if place.retired {
                    t.state = TapeState::Retired;
                } else {
                    t.place = match (place.offsite, place.lost) {
                        (true, _) => Some(Place::now(PlaceKind::Offsite, note.clone())),
                        (_, true) => Some(Place::now(PlaceKind::Lost, note.clone())),
                        _ => None,
                    };
                }
                t.save(catalog)?;
                log::info!("tape {}: {}", t.label, describe(&t, None));
            }
            Ok(Exit::Ok)
        }
    }
}

/// The catalog's tapes of `labels`, all of them or an error naming the
/// first it does not know.
fn known(catalog: &Path, labels: &[String]) -> anyhow::Result<Vec<Tape>> {
    labels
        .iter()
        .map(|l| {
            Tape::load(catalog, l)?.ok_or_else(|| {
                ExitError::new(
                    Exit::Usage,
                    format!("tape {l}: not in the catalog (reel tapes lists the ones it knows)"),
                )
                .into()
            })
        })
        .collect()
}

/// The library of the configuration (its first `[[changer]]`).
fn library(config: &Config) -> anyhow::Result<Box<dyn Changer>> {
    let Some(ch) = config.changers.first() else {
        return Err(ExitError::new(
            Exit::Usage,
            "no [[changer]] in the configuration: without a library, say where tapes are with `reel tapes mark`",
        )
        .into());
    };
    let spec = library_spec(Some(config), &ch.device);
    open_changer(&ch.device, &spec).with_context(|| format!("opening {}", ch.device))
}

fn export(config: &Config, labels: &[String], note: Option<String>) -> anyhow::Result<Exit> {
    export_through(library(config)?.as_mut(), config, labels, note)
}

/// [`export`], through a library already open.
fn export_through(
    changer: &mut dyn Changer,
    config: &Config,
    labels: &[String],
    note: Option<String>,
) -> anyhow::Result<Exit> {
    let catalog = &config.paths.catalog;
    let tapes = known(catalog, labels)?;
    let mut st = changer.status()?;
    for mut t in tapes {
        if let Some(d) = st
            .drives
            .iter()
            .find(|d| d.barcode.as_deref() == Some(&t.label))
        {
            return Err(ExitError::new(
                Exit::Unavailable,
                format!(
                    "tape {} is in drive {}: unload it first (reel changer unload --drive {})",
                    t.label, d.index, d.index
                ),
            )
            .into());
        }
        let Some(from) = st
            .slots
            .iter()
            .find(|s| !s.import_export && s.barcode.as_deref() == Some(&t.label))
            .map(|s| s.number)
        else {
            if st
                .slots
                .iter()
                .any(|s| s.import_export && s.barcode.as_deref() == Some(&t.label))
            {
                log::info!("tape {} is in an import/export slot already", t.label);
                continue;
            }
            return Err(ExitError::new(
                Exit::Unavailable,
                format!(
                    "tape {} is not in the library {} ({})",
                    t.label,
                    changer.device(),
                    describe(&t, None)
                ),
            )
            .into());
        };
        let Some(to) = st
            .slots
            .iter()
            .find(|s| s.import_export && !s.full)
            .map(|s| s.number)
        else {
            return Err(ExitError::new(
                Exit::Unavailable,
                format!(
                    "no empty import/export slot for tape {}: take out the tapes there, then run this again",
                    t.label
                ),
            )
            .into());
        };
        changer.transfer(from, to)?;
        t.place = Some(Place::now(PlaceKind::Exporting, note.clone()));
        t.save(catalog)?;
        log::info!("tape {}: slot {from} → import/export slot {to}", t.label);
        st = changer.status()?;
    }
    Ok(Exit::Ok)
}

/// The full tapes of the pools with `export_when_full`, in storage slots
/// of the library, moved to its import/export slots (marked exporting,
/// offsite once taken out). Returns what to tell the operator: each tape
/// exported, or why one could not be. `recyclable`: the tapes the plan
/// says may be used again, which stay.
pub fn export_full(config: &Config, recyclable: &[String]) -> anyhow::Result<Vec<String>> {
    let pools: Vec<&str> = config
        .pools
        .iter()
        .filter(|p| p.export_when_full)
        .map(|p| p.name.as_str())
        .collect();
    if pools.is_empty() || config.changers.is_empty() {
        return Ok(Vec::new());
    }
    let mut changer = library(config)?;
    let mut told = Vec::new();
    for t in crate::catalog::tapes::all(&config.paths.catalog)? {
        if t.state != TapeState::Full
            || t.place.is_some()
            || !pools.contains(&t.pool.as_str())
            || recyclable.contains(&t.label)
        {
            continue;
        }
        // Left in a drive by the pass that just ended: home first.
        let mut st = changer.status()?;
        if let Some(d) = st
            .drives
            .iter()
            .find(|d| d.barcode.as_deref() == Some(&t.label))
            && let Some(home) = st.home_slot(d.index)
        {
            changer.unload(d.index, home)?;
            log::info!("tape {}: drive {} → slot {home}", t.label, d.index);
            st = changer.status()?;
        }
        if !st
            .slots
            .iter()
            .any(|s| !s.import_export && s.barcode.as_deref() == Some(&t.label))
        {
            continue;
        }
        let note = Some(format!("pool {} exports full tapes", t.pool));
        let label = std::slice::from_ref(&t.label);
        told.push(
            match export_through(changer.as_mut(), config, label, note) {
                Ok(_) => format!(
                    "tape {} (pool {}) is full and in an import/export slot: take it offsite",
                    t.label, t.pool
                ),
                Err(e) => format!(
                    "tape {} (pool {}) is full and goes offsite, but was not exported: {e:#}",
                    t.label, t.pool
                ),
            },
        );
    }
    Ok(told)
}

fn import(config: &Config) -> anyhow::Result<Exit> {
    let catalog = &config.paths.catalog;
    let mut changer = library(config)?;
    let st = changer.status()?;
    let mut free = st
        .slots
        .iter()
        .filter(|s| !s.import_export && !s.full)
        .map(|s| s.number);
    for mail in st.slots.iter().filter(|s| s.import_export && s.full) {
        let name = mail
            .barcode
            .clone()
            .unwrap_or_else(|| "(no barcode)".into());
        let Some(to) = free.next() else {
            return Err(ExitError::new(
                Exit::Unavailable,
                format!(
                    "no empty storage slot for {name} in import/export slot {}",
                    mail.number
                ),
            )
            .into());
        };
        changer.transfer(mail.number, to)?;
        match mail.barcode.as_deref().map(|b| Tape::load(catalog, b)) {
            Some(Ok(Some(mut t))) => {
                t.place = None;
                t.save(catalog)?;
                log::info!("tape {name}: back in the library, slot {to}");
            }
            _ => log::info!("{name}: into slot {to} (a tape the catalog does not know)"),
        }
    }
    Ok(Exit::Ok)
}

/// Bring the catalog's places up to date with the library: a tape put in
/// an import/export slot by `reel tapes export` and no longer in the
/// library has been taken out, and is offsite now.
pub fn refresh(catalog: &Path, tapes: &mut [Tape], st: &ChangerStatus) -> anyhow::Result<()> {
    for t in tapes {
        if t.place
            .as_ref()
            .is_some_and(|p| p.kind == PlaceKind::Exporting)
            && where_in(st, &t.label).is_none()
        {
            let note = t.place.take().and_then(|p| p.note);
            t.place = Some(Place::now(PlaceKind::Offsite, note));
            t.save(catalog)?;
            log::info!("tape {}: taken out of the library, offsite", t.label);
        }
    }
    Ok(())
}

/// Where the library has `label`: `slot N`, `drive N`, `mail N`.
fn where_in(st: &ChangerStatus, label: &str) -> Option<String> {
    if let Some(d) = st
        .drives
        .iter()
        .find(|d| d.barcode.as_deref() == Some(label))
    {
        return Some(format!("drive {}", d.index));
    }
    st.slots
        .iter()
        .find(|s| s.barcode.as_deref() == Some(label))
        .map(|s| {
            if s.import_export {
                format!("mail {}", s.number)
            } else {
                format!("slot {}", s.number)
            }
        })
}

/// Where a tape is, in words: the library's place for it when it has
/// one, else the catalog's.
pub fn describe(t: &Tape, st: Option<&ChangerStatus>) -> String {
    let here = st.and_then(|st| where_in(st, &t.label));
    match (&t.place, here) {
        // Taken out and put back without `reel tapes import`: say both.
        (Some(p), Some(h)) if p.kind != PlaceKind::Exporting => format!("{h} (marked {p})"),
        (_, Some(h)) => h,
        (Some(p), None) => p.to_string(),
        (None, None) if st.is_some() => "not in the library".into(),
        (None, None) => "-".into(),
    }
}

/// The library's status for `reel tapes`, when there is a library and it
/// answers (a busy or absent one only costs the column).
pub fn status(config: &Config) -> Option<ChangerStatus> {
    let mut changer = library(config).ok()?;
    changer
        .status()
        .map_err(|e| {
            log::warn!(
                "{}: {e}; where tapes are is the catalog's word",
                changer.device()
            )
        })
        .ok()
}

fn show_plan(config: &Config, json: bool) -> anyhow::Result<Exit> {
    let catalog = &config.paths.catalog;
    let retention::Planned {
        plan: p,
        versions,
        expired,
        ..
    } = retention::planned(catalog, config, crate::time::now_ns())?;
    let when = |ns: i128| crate::time::Utc::from_ns(ns).rfc3339();
    let path = |k: &lifecycle::VersionKey| String::from_utf8_lossy(&k.path).into_owned();
    if json {
        let out = serde_json::json!({
            "versions": versions.len(),
            "expired": expired.len(),
            "expire": p.expire.iter().map(|k| serde_json::json!({
                "stream": k.stream, "path": path(k), "taken": when(k.taken_ns)})).collect::<Vec<_>>(),
            "next_expiry": p.next_expiry_ns.map(when),
            "recyclable": p.recyclable,
            "missing": p.missing.iter().map(|(k, pool)| serde_json::json!({
                "stream": k.stream, "path": path(k), "taken": when(k.taken_ns), "pool": pool})).collect::<Vec<_>>(),
        });
        crate::outln!("{out}")?;
        return Ok(Exit::Ok);
    }
    for s in &config.streams {
        let line = match config.stream_pool(&s.name) {
            Some(pool) => {
                let pol = pool.policy();
                format!(
                    "stream {}: pool {}, copies in {}, keep {} and {}",
                    s.name,
                    pool.name,
                    pol.copies.join(" and "),
                    pool.keep_versions
                        .map_or("every version".into(), |n| format!(
                            "{n} version(s) of each path"
                        )),
                    pool.keep_for.map_or("forever".into(), |i| format!(
                        "each for {i} once superseded"
                    )),
                )
            }
            None => format!(
                "stream {}: no [[pool]]: one copy, every version kept",
                s.name
            ),
        };
        crate::outln!("{line}")?;
    }
    crate::outln!(
        "{} version(s) verified, {} of them expired before; {} expire now; next expiry: {}",
        versions.len(),
        expired.len(),
        p.expire.len(),
        p.next_expiry_ns.map_or("none".into(), when)
    )?;
    for k in &p.expire {
        crate::outln!(
            "  expires: {} {} (taken {})",
            k.stream,
            path(k),
            when(k.taken_ns)
        )?;
    }
    crate::outln!(
        "tapes that could be used again: {}",
        if p.recyclable.is_empty() {
            "none".into()
        } else {
            p.recyclable.join(", ")
        }
    )?;
    crate::outln!("copies missing: {}", p.missing.len())?;
    for (k, pool) in &p.missing {
        crate::outln!(
            "  {} {} (taken {}): none in pool {pool}",
            k.stream,
            path(k),
            when(k.taken_ns)
        )?;
    }
    Ok(Exit::Ok)
}
