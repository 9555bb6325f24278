//! reel-supervisor's work: run the stages when there is work.
//!
//! Every stage runs as a child process (`child.rs`): as a daemon
//! (`daemon.rs`, which sees source changes through `inotify.rs` and
//! decides with [`plan`]), or with `--once` (`once.rs`) until the pipeline
//! is empty.

mod child;
mod daemon;
mod inotify;
mod once;
pub mod plan;

pub use plan::{Child, Plan, QueueView, Start, World, plan};

use anyhow::Context;

use crate::cli::CommonArgs;
use crate::config::Config;
use crate::exit::{Exit, ExitError};
use crate::spool::Spool;

/// Run the pipeline until it is empty (`once`), or as a daemon until
/// SIGTERM.
pub fn run(common: &CommonArgs, config: Config, once: bool) -> anyhow::Result<Exit> {
    if once {
        return once::run(common, &config);
    }
    daemon::check_sources(&config);
    daemon::run(common, config)
}

/// What queue `q` holds: its items, their bytes, the oldest's age, the
/// cache the first needs. Item contents are measured only when the
/// listing differs from the one `views` kept.
fn view(
    spool: &Spool,
    views: &mut std::collections::HashMap<crate::spool::Queue, QueueView>,
    q: crate::spool::Queue,
) -> anyhow::Result<QueueView> {
    let ids = spool.list(q)?;
    if let Some(v) = views.get(&q)
        && v.ids == ids
    {
        return Ok(v.clone());
    }
    let mut v = QueueView {
        ids,
        ..QueueView::default()
    };
    for id in &v.ids {
        let path = spool.item_path(q, id);
        // Gone since the listing, or bad (the stage fails it): skip.
        if let Ok((records, bytes)) = crate::manifest::ManifestReader::totals(&path) {
            v.bytes += bytes;
            if v.first_need == 0 {
                v.first_need = crate::fsutil::cache_need(records, bytes);
            }
        }
        if let Ok(m) = std::fs::metadata(&path)
            && let Ok(t) = m.modified()
        {
            v.oldest = Some(v.oldest.map_or(t, |o: std::time::SystemTime| o.min(t)));
        }
    }
    views.insert(q, v.clone());
    Ok(v)
}

/// Lock the spool for this supervisor; exit 75 if another one holds it.
fn lock_spool(spool: &Spool) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    let path = spool.root().join("supervisor.lock");
    match crate::fsutil::lock_file(&path, false)
        .with_context(|| format!("locking {}", path.display()))?
    {
        Some(lock) => {
            // What a supervisor that died left: its pid must not be
            // signalled by `reel status --live`.
            let _ = std::fs::remove_file(spool.root().join("supervisor.json"));
            Ok(lock)
        }
        None => Err(ExitError::new(
            Exit::TempFail,
            format!(
                "another reel-supervisor runs on this spool ({} is locked)",
                path.display()
            ),
        )
        .into()),
    }
}

/// What to tell of the drives' TapeAlert flags (`drive-alert`): each drive
/// whose flags, as reel-write last recorded them since `since`, are up and
/// not those `told` already holds for it. `told` keeps what was told; a
/// drive whose flags went down is forgotten, so raising them again is told.
fn drive_alerts(
    config: &crate::config::Config,
    since: std::time::SystemTime,
    told: &mut std::collections::BTreeMap<String, u64>,
) -> Vec<String> {
    let since = jiff::Timestamp::try_from(since).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut out = Vec::new();
    for h in crate::catalog::drives::all(&config.paths.catalog).unwrap_or_default() {
        let alerts = h.alerts();
        if alerts.is_empty() {
            told.remove(&h.drive);
            continue;
        }
        let fresh = h.seen.parse::<jiff::Timestamp>().is_ok_and(|t| t >= since);
        if fresh && told.get(&h.drive) != Some(&alerts.0) {
            told.insert(h.drive.clone(), alerts.0);
            let mut m = format!("drive {} ({}): TapeAlert {alerts}", h.drive, h.device);
            if alerts.needs_cleaning() {
                m.push_str("; load a cleaning cartridge");
            }
            if alerts.has(crate::scsi::tapealert::MEDIA_LIFE) {
                m.push_str(
                    "; the tape in it nears its end of life: copy what it holds and retire it",
                );
            }
            out.push(m);
        }
    }
    out
}

/// The labels of the tapes the catalog knows as full.
fn full_tapes(config: &crate::config::Config) -> Vec<String> {
    crate::catalog::tapes::all(&config.paths.catalog)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.state == crate::catalog::tapes::TapeState::Full)
        .map(|t| t.label)
        .collect()
}

/// What a pass ends with where a `[[pool]]` sets a policy: expiries
/// recorded, the copies a lost or suspect tape took with it queued again
/// (reading the tapes that hold the other copies), and the full tapes of
/// pools with `export_when_full` moved to the import/export slots; the
/// operator told through `notify_command` (`copies-missing`,
/// `tape-export`, `failure`). Returns how many archives were queued again.
/// Run only when no stage is running: it uses the drive and the changer.
fn end_of_pass(config: &Config, spool: &Spool) -> usize {
    if config.pools.is_empty() {
        return 0;
    }
    let mut queued = 0;
    // The tapes that may be used again stay in the library: from the plan
    // the rewrite made, or (when it failed) made here.
    let mut recyclable = None;
    match crate::front::rewrite::schedule(config, spool) {
        Ok(done) => {
            queued = done.queued.len();
            recyclable = Some(done.recyclable);
            if done.no_source + done.unreadable > 0 {
                child::notify(
                    config,
                    "copies-missing",
                    &format!(
                        "{} version(s) miss a copy with none in the library to copy from, {} archive(s) unreadable: `reel tapes plan`",
                        done.no_source, done.unreadable
                    ),
                );
            }
        }
        Err(e) => child::notify(
            config,
            "failure",
            &format!("the copies missing were not queued again: {e:#}"),
        ),
    }
    let recyclable = match recyclable {
        Some(r) => Ok(r),
        None => {
            crate::catalog::retention::plan_now(&config.paths.catalog, config).map(|p| p.recyclable)
        }
    };
    match recyclable
        .map_err(anyhow::Error::from)
        .and_then(|r| crate::front::places::export_full(config, &r))
    {
        Ok(told) => {
            for m in told {
                child::notify(config, "tape-export", &m);
            }
        }
        Err(e) => log::warn!("full tapes to go offsite were not exported: {e:#}"),
    }
    // Tapes and queues changed without a stage to say so.
    crate::metrics::write(config);
    queued
}
