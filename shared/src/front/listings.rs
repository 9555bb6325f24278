//! Listings of the catalog for people and scripts: `reel find` (verified
//! files) and `reel tapes` (the tapes and their state), and `reel catalog
//! rebuild`.

use std::io::Write as _;

use crate::catalog::find::{Query, search};
use crate::config::Config;
use crate::exit::Exit;
use crate::time::Utc;
use crate::units::Size;

/// `reel find`: the verified files that match, as a table or one JSON
/// array; exit 1 when nothing matches.
pub fn find(config: &Config, query: &Query, json: bool) -> anyhow::Result<Exit> {
    let found = search(&config.paths.catalog, query)?;
    // Where a [[pool]] asks for copies: the other tapes that hold each
    // version found (from every journal line that matches).
    let mut copies: std::collections::HashMap<_, Vec<String>> = std::collections::HashMap::new();
    if !config.pools.is_empty() && !query.all_versions && !found.is_empty() {
        let every = search(
            &config.paths.catalog,
            &Query {
                all_versions: true,
                ..query.clone()
            },
        )?;
        for e in every {
            let tapes = copies.entry(version_of(&e)).or_default();
            if let Some(t) = e.record.tape
                && !tapes.contains(&t)
            {
                tapes.push(t);
            }
        }
    }
    let others = |e: &crate::catalog::Entry| -> Vec<String> {
        copies
            .get(&version_of(e))
            .map(|ts| {
                ts.iter()
                    .filter(|t| Some(t.as_str()) != e.record.tape.as_deref())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<serde_json::Value> = found
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(&e.record).expect("records serialize");
                v["stream"] = e.stream.clone().into();
                v["verified"] = e.verified.clone().into();
                let also = others(e);
                if !also.is_empty() {
                    v["copies_on"] = also.into();
                }
                v
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(list))?;
    } else {
        for e in &found {
            let r = &e.record;
            let part = match r.part {
                Some(n) => format!(
                    " (part {n}: {} from byte {})",
                    Size(r.bytes()).human(),
                    r.part_offset.unwrap_or(0)
                ),
                None => String::new(),
            };
            let also = others(e);
            let also = if also.is_empty() {
                String::new()
            } else {
                format!("  also on {}", also.join(", "))
            };
            writeln!(
                out,
                "{}{part}  {:>10}  {}  {} file {} block {}  verified {}  [{}]{also}",
                r.path.display(),
                Size(r.size).human(),
                Utc::from_unix(r.mtime_ns.div_euclid(1_000_000_000)).rfc3339(),
                r.tape.as_deref().unwrap_or("?"),
                r.file.map_or("?".into(), |f| f.to_string()),
                r.block.map_or("?".into(), |b| b.to_string()),
                e.verified,
                e.stream
            )?;
        }
    }
    if found.is_empty() {
        log::warn!("nothing verified matches");
        return Ok(Exit::Skipped);
    }
    Ok(Exit::Ok)
}

/// `reel tapes`: every tape the catalog knows, as a table or one JSON array.
pub fn tapes(config: &Config, json: bool) -> anyhow::Result<Exit> {
    let mut tapes = crate::catalog::tapes::all(&config.paths.catalog)?;
    let library = super::places::status(config);
    if let Some(st) = &library {
        super::places::refresh(&config.paths.catalog, &mut tapes, st)?;
    }
    if json {
        crate::outln!("{}", serde_json::to_string(&tapes)?)?;
        return Ok(Exit::Ok);
    }
    crate::outln!(
        "{:<10} {:<10} {:<16} {:<9} {:>5} {:>10} {:>5} {:>10} {:>7}  {:<22}  last verify",
        "tape",
        "pool",
        "where",
        "state",
        "files",
        "bytes",
        "loads",
        "life",
        "errors",
        "encryption"
    )?;
    for t in &tapes {
        // From the cartridge memory: loads and bytes written in its life.
        let (loads, life) = match &t.cartridge {
            Some(c) => (
                c.loads.map_or("-".into(), |n| n.to_string()),
                c.mib_written
                    .map_or("-".into(), |m| Size(m.saturating_mul(1 << 20)).human()),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        crate::outln!(
            "{:<10} {:<10} {:<16} {:<9} {:>5} {:>10} {:>5} {:>10} {:>7}  {:<22}  {}{}{}",
            t.label,
            t.pool,
            super::places::describe(t, library.as_ref()),
            format!("{:?}", t.state).to_lowercase(),
            t.files,
            Size(t.bytes).human(),
            loads,
            life,
            // Unrecovered read/write errors over its life.
            t.volume.as_ref().map_or("-".into(), |v| v.errors()),
            encryption(t),
            match (&t.verified, &t.last_verify) {
                (Some(when), Some(what)) => format!("{when} ({what})"),
                _ => "never".into(),
            },
            t.suspect
                .as_ref()
                .map_or(String::new(), |why| format!("; suspect: {why}")),
            if t.alerts.is_empty() {
                String::new()
            } else {
                format!("; TapeAlert at last load: {}", t.alerts.join(", "))
            }
        )?;
    }
    Ok(Exit::Ok)
}

/// How a tape's archives are encrypted: `drive KEY` (the drive's own, by
/// key fingerprint), `age FP,FP` (sealed archives, by recipient
/// fingerprints, 8 digits each), both, or `clear`.
fn encryption(t: &crate::catalog::tapes::Tape) -> String {
    // A passphrase key shows as `passphrase:NAME`, whole.
    let short = |f: &str| {
        if f.starts_with("passphrase:") {
            f.to_string()
        } else {
            f.chars().take(8).collect::<String>()
        }
    };
    let mut parts = Vec::new();
    if let Some(k) = &t.drive_key {
        parts.push(format!("drive {}", short(k)));
    }
    if !t.sealed_for.is_empty() {
        let fps: Vec<String> = t.sealed_for.iter().map(|f| short(f)).collect();
        parts.push(format!("age {}", fps.join(",")));
    }
    if parts.is_empty() {
        "clear".into()
    } else {
        parts.join(" + ")
    }
}

/// `reel catalog rebuild`: the lookup index again from the journals.
pub fn rebuild(config: &Config, chunk: usize) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    let stats = crate::catalog::rebuild(&config.paths.catalog, chunk)?;
    log::info!(
        "index rebuilt from {} journal(s): {} entries, {} paths, {} sorted run(s), {:.1}s",
        stats.journals,
        stats.entries,
        stats.paths,
        stats.runs,
        started.elapsed().as_secs_f64()
    );
    Ok(Exit::Ok)
}

/// What tells one version of one path (or part) from another.
fn version_of(e: &crate::catalog::Entry) -> (String, std::path::PathBuf, i64, Option<u32>) {
    (
        e.stream.clone(),
        e.record.path.clone(),
        e.taken_ns(),
        e.record.part,
    )
}
