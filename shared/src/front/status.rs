//! `reel status`: the queues and the failed items.
//!
//! For each queue: how many items wait and the bytes their records describe
//! (summed by streaming each manifest; nothing is loaded whole).

use std::io::Write;

use crate::config::Config;
use crate::exit::Exit;
use crate::manifest::ManifestReader;
use crate::spool::{Queue, Spool};
use crate::units::Size;
use anyhow::Context;
use serde_json::json;

pub(crate) struct QueueStatus {
    pub(crate) queue: Queue,
    pub(crate) items: usize,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) unreadable: usize,
}

pub(crate) fn queue_status(spool: &Spool, queue: Queue) -> anyhow::Result<QueueStatus> {
    let mut s = QueueStatus {
        queue,
        items: 0,
        records: 0,
        bytes: 0,
        unreadable: 0,
    };
    for id in spool.list(queue)? {
        s.items += 1;
        let path = spool.item_path(queue, &id);
        let counted = ManifestReader::totals(&path);
        match counted {
            Ok((records, bytes)) => {
                s.records += records;
                s.bytes += bytes;
            }
            Err(e) => {
                // A corrupt item is the stage's to fail; status only says so.
                log::warn!("{e}");
                s.unreadable += 1;
            }
        }
    }
    Ok(s)
}

/// The supervisor's own report (`<spool>/supervisor.json`), if one runs on
/// this spool: its lock is held.
fn supervisor(spool: &Spool) -> Option<serde_json::Value> {
    let lock = spool.root().join("supervisor.lock");
    if !lock.exists() {
        return None;
    }
    match crate::fsutil::lock_file(&lock, false) {
        Ok(Some(_free)) => return None,
        Ok(None) => {}
        Err(e) => {
            log::warn!("{}: {e}", lock.display());
            return None;
        }
    }
    let text = std::fs::read_to_string(spool.root().join("supervisor.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// `reel status [--json] [--live]`.
pub fn run(config: &Config, spool: &Spool, as_json: bool, live: bool) -> anyhow::Result<Exit> {
    if !live {
        return show(config, spool, as_json);
    }
    let stop = crate::signals::watch(nix::sys::signal::Signal::SIGINT)?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        // Ask the running reel-write (through the supervisor) for a fresh
        // telemetry line, give it a moment to arrive, then show.
        if let Some(pid) = supervisor(spool).and_then(|s| s["pid"].as_i64()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGUSR1,
            );
            std::thread::sleep(std::time::Duration::from_millis(700));
        }
        if tty && !as_json {
            crate::out!("\x1b[H\x1b[2J")?;
        }
        show(config, spool, as_json)?;
        for _ in 0..13 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if stop.raised() {
                return Ok(Exit::Ok);
            }
        }
    }
}

fn show(config: &Config, spool: &Spool, as_json: bool) -> anyhow::Result<Exit> {
    let queues = Queue::ALL
        .into_iter()
        .map(|q| queue_status(spool, q))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let failed = spool.failed()?;
    let sup = supervisor(spool);
    let cache = &config.paths.cache;
    let (used, total) = crate::fsutil::fs_usage(cache)
        .with_context(|| format!("reading the space of {}", cache.display()))?;
    let paused = cache.join(".reel-stage-paused").exists();
    // The retention plan, where a [[pool]] sets one (it reads every
    // journal: `reel tapes plan` has the lists).
    let retention = if config.pools.is_empty() {
        None
    } else {
        Some(crate::catalog::retention::plan_now(
            &config.paths.catalog,
            config,
        )?)
    };
    let when = |ns: i128| crate::time::Utc::from_ns(ns).rfc3339();
    let mut out = std::io::stdout().lock();
    if as_json {
        let doc = json!({
            "spool": spool.root(),
            "queues": queues.iter().map(|q| json!({
                "queue": q.queue.as_str(), "items": q.items, "records": q.records,
                "bytes": q.bytes, "unreadable": q.unreadable,
            })).collect::<Vec<_>>(),
            "failed": failed.iter().map(|f| json!({
                "id": f.id, "error": f.error, "queue": f.queue.map(|q| q.as_str()),
                "stage": f.stage, "time": f.time,
            })).collect::<Vec<_>>(),
            "cache": json!({
                "path": cache, "used": used, "total": total, "staging_paused": paused,
            }),
            "supervisor": sup,
            "retention": retention.as_ref().map(|p| json!({
                "expire_now": p.expire.len(),
                "next_expiry": p.next_expiry_ns.map(when),
                "recyclable": p.recyclable,
                "copies_missing": p.missing.len(),
            })),
        });
        writeln!(out, "{doc}").context("writing to stdout")?;
        return Ok(Exit::Ok);
    }
    writeln!(out, "spool {}", spool.root().display())?;
    writeln!(
        out,
        "{:<10} {:>7} {:>10} {:>12}",
        "queue", "items", "records", "bytes"
    )?;
    for q in &queues {
        let bad = if q.unreadable > 0 {
            format!("  ({} unreadable)", q.unreadable)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:<10} {:>7} {:>10} {:>12}{bad}",
            q.queue.as_str(),
            q.items,
            q.records,
            Size(q.bytes).human()
        )?;
    }
    writeln!(
        out,
        "cache {}: {} of {} used ({:.0}%){}",
        cache.display(),
        Size(used).human(),
        Size(total).human(),
        used as f64 * 100.0 / total.max(1) as f64,
        if paused {
            "; staging paused until below low_water"
        } else {
            ""
        }
    )?;
    match &sup {
        None => writeln!(out, "supervisor: not running")?,
        Some(s) => {
            writeln!(
                out,
                "supervisor: {} (pid {}, since {})",
                s["state"].as_str().unwrap_or("?"),
                s["pid"],
                s["started"].as_str().unwrap_or("?")
            )?;
            for c in s["children"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "  {} {} (pid {}, since {}): {}",
                    c["stage"].as_str().unwrap_or("?"),
                    c["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    c["pid"],
                    c["since"].as_str().unwrap_or("?"),
                    c["doing"].as_str().unwrap_or("")
                )?;
            }
            for w in s["waiting"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "  {} waits after {} failure(s): retry at {}",
                    w["job"].as_str().unwrap_or("?"),
                    w["failures"],
                    w["retry_at"].as_str().unwrap_or("?")
                )?;
            }
            for h in s["held"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "  {} holds: {}",
                    h["job"].as_str().unwrap_or("?"),
                    h["why"].as_str().unwrap_or("?")
                )?;
            }
            for n in s["next_scan"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "  next scan of {}: {}",
                    n["stream"].as_str().unwrap_or("?"),
                    n["at"].as_str().unwrap_or("?")
                )?;
            }
            let problems = s["problems"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            if !problems.is_empty() {
                writeln!(out, "last problems:")?;
            }
            for p in problems.iter().rev().take(5).rev() {
                writeln!(
                    out,
                    "  {} {}",
                    p["time"].as_str().unwrap_or("?"),
                    p["line"].as_str().unwrap_or("")
                )?;
            }
        }
    }
    if let Some(p) = &retention {
        writeln!(
            out,
            "retention: {} version(s) expire now, next expiry {}; tapes to use again: {}; copies missing: {}{}",
            p.expire.len(),
            p.next_expiry_ns.map_or("none".into(), when),
            if p.recyclable.is_empty() {
                "none".into()
            } else {
                p.recyclable.join(", ")
            },
            p.missing.len(),
            if p.missing.is_empty() {
                ""
            } else {
                " (reel tapes plan lists them; reel tapes rewrite writes them)"
            }
        )?;
    }
    for f in &failed {
        let from = f.queue.map(|q| format!(" (from {q})")).unwrap_or_default();
        writeln!(out, "failed {}{from}: {}", f.id, f.error)?;
    }
    if !failed.is_empty() {
        writeln!(
            out,
            "`reel retry ID` puts a failed item back once its cause is fixed"
        )?;
    }
    Ok(Exit::Ok)
}
