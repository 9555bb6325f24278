//! Listings of the catalog for people and scripts: `reel find` (verified
//! files) and `reel tapes` (the tapes and their state), and `reel catalog
//! rebuild`.

use std::io::Write as _;

use crate::catalog::find::{Query, search};
use crate::config::Config;
use crate::exit::Exit;
use crate::time::Utc;
use crate::units::Size;

/// How `reel find` lists what it found.
#[derive(Debug, Clone, Copy, Default)]
pub struct FindStyle {
    pub json: bool,
    /// `--long`: mode, owner, group, block, when verified, stream.
    pub long: bool,
}

/// `reel find`: the verified files that match, as a table (`ls -l`-like,
/// the path last) or one JSON array; exit 1 when nothing matches. With
/// `tape`, that tape's members (those matching, when patterns are given)
/// in tape order, from its journal.
pub fn find(
    config: &Config,
    query: &Query,
    tape: Option<&str>,
    style: FindStyle,
) -> anyhow::Result<Exit> {
    let found = match tape {
        Some(label) => on_tape(&config.paths.catalog, label, query)?,
        None => search(&config.paths.catalog, query)?,
    };
    // Where a [[pool]] asks for copies: the other tapes that hold each
    // version found (from every journal line that matches).
    let mut copies: std::collections::HashMap<_, Vec<String>> = std::collections::HashMap::new();
    if !config.pools.is_empty() && !query.all_versions && !found.is_empty() && tape.is_none() {
        let every = search(
            &config.paths.catalog,
            &Query {
                all_versions: true,
                ..query.clone()
            },
        )?;
        for e in every {
            let tapes = copies.entry(e.version_part()).or_default();
            if let Some(t) = e.record.tape
                && !tapes.contains(&t)
            {
                tapes.push(t);
            }
        }
    }
    // For each member found, the other tapes holding its version.
    let others: Vec<Vec<String>> = found
        .iter()
        .map(|e| {
            copies
                .get(&e.version_part())
                .map(|ts| {
                    ts.iter()
                        .filter(|t| Some(t.as_str()) != e.record.tape.as_deref())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if style.json {
        let list: Vec<serde_json::Value> = found
            .iter()
            .zip(&others)
            .map(|(e, also)| {
                let mut v = serde_json::to_value(&e.record).expect("records serialize");
                v["stream"] = e.stream.clone().into();
                v["verified"] = e.verified.clone().into();
                if !also.is_empty() {
                    v["copies_on"] = also.clone().into();
                }
                v
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(list))?;
    } else {
        let any_part = found.iter().any(|e| e.record.part.is_some());
        let any_copy = others.iter().any(|o| !o.is_empty());
        let mut rows = Vec::with_capacity(found.len());
        for (e, also) in found.iter().zip(&others) {
            let r = &e.record;
            let mut row = Vec::new();
            if style.long {
                row.push(mode_string(r));
                row.push(r.user.clone().unwrap_or_else(|| r.uid.to_string()));
                row.push(r.group.clone().unwrap_or_else(|| r.gid.to_string()));
            }
            row.push(Size(r.size).human());
            row.push(minute(r.mtime_ns));
            row.push(format!(
                "{}:{}",
                r.tape.as_deref().unwrap_or("?"),
                r.file.map_or("?".into(), |f| f.to_string())
            ));
            if style.long {
                row.push(r.block.map_or("?".into(), |b| b.to_string()));
                row.push(e.verified.clone());
                row.push(e.stream.clone());
            }
            if any_part {
                row.push(r.part.map_or(String::new(), |n| {
                    format!(
                        "part {n} @{}",
                        Size(r.part_offset.unwrap_or(0)).human().replace(' ', "")
                    )
                }));
            }
            if any_copy {
                row.push(if also.is_empty() {
                    "-".into()
                } else {
                    format!("+{}", also.join(","))
                });
            }
            let mut path = r.path.display().to_string();
            if let Some(link) = &r.link {
                path = format!("{path} -> {}", link.display());
            }
            row.push(path);
            rows.push(row);
        }
        let mut right = vec![false; if style.long { 3 } else { 0 }];
        right.extend([true, false, false]);
        if style.long {
            right.extend([true, false, false]);
        }
        for line in table(&rows, &right) {
            writeln!(out, "{line}")?;
        }
    }
    if found.is_empty() {
        log::warn!("nothing verified matches");
        return Ok(Exit::Skipped);
    }
    Ok(Exit::Ok)
}

/// The members of tape `label` (matching `q`'s patterns and stream, when
/// given), in tape order, from its journal.
fn on_tape(
    catalog: &std::path::Path,
    label: &str,
    q: &Query,
) -> anyhow::Result<Vec<crate::catalog::Entry>> {
    use std::os::unix::ffi::OsStrExt;
    let path = crate::catalog::journal::journal_path(catalog, label);
    if !path.exists() {
        return Err(crate::exit::ExitError::new(
            Exit::NoInput,
            format!(
                "tape {label}: nothing verified on it (no journal {})",
                path.display()
            ),
        )
        .into());
    }
    let patterns = (!q.patterns.is_empty())
        .then(|| crate::catalog::find::Patterns::new(&q.patterns))
        .transpose()
        .map_err(|e| crate::exit::ExitError::new(Exit::Usage, e))?;
    let mut out = Vec::new();
    crate::catalog::journal::read(&path, |e| {
        if q.stream.as_ref().is_none_or(|s| *s == e.stream)
            && patterns
                .as_ref()
                .is_none_or(|p| p.matches(e.record.path.as_os_str().as_bytes()))
        {
            out.push(e);
        }
        Ok(())
    })?;
    out.sort_by_key(|e| (e.record.file, e.record.block, e.record.offset));
    Ok(out)
}

/// Rows as aligned columns, two spaces apart; `right[i]` right-aligns
/// column i; the last column (the path) is never padded.
fn table(rows: &[Vec<String>], right: &[bool]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else if right.get(i).copied().unwrap_or(false) {
                    line.push_str(&format!("{cell:>w$}  ", w = width[i]));
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = width[i]));
                }
            }
            line
        })
        .collect()
}

/// `2026-12-05 21:49` (UTC), as `ls -l` shows a time to the minute.
fn minute(ns: i64) -> String {
    let t = Utc::from_ns(i128::from(ns)).rfc3339();
    t.get(..16).map_or(t.clone(), |s| s.replace('T', " "))
}

/// `-rw-r--r--` as `ls -l` writes it.
fn mode_string(r: &crate::manifest::Record) -> String {
    use crate::manifest::EntryType;
    let kind = match r.entry {
        EntryType::Dir => 'd',
        EntryType::Symlink => 'l',
        EntryType::Fifo => 'p',
        EntryType::Char => 'c',
        EntryType::Block => 'b',
        EntryType::File | EntryType::Hardlink => '-',
    };
    let mut s = String::from(kind);
    for shift in [6, 3, 0] {
        let bits = (r.mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
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
    let mut rows = vec![
        [
            "tape",
            "pool",
            "where",
            "state",
            "files",
            "bytes",
            "loads",
            "life",
            "errors",
            "encryption",
            "last verify",
        ]
        .map(String::from)
        .to_vec(),
    ];
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
        rows.push(vec![
            t.label.clone(),
            t.pool.clone(),
            super::places::describe(t, library.as_ref()),
            format!("{:?}", t.state).to_lowercase(),
            t.files.to_string(),
            Size(t.bytes).human(),
            loads,
            life,
            // Unrecovered read/write errors over its life.
            t.volume.as_ref().map_or("-".into(), |v| v.errors()),
            encryption(t),
            format!(
                "{}{}{}{}",
                match (&t.verified, &t.last_verify) {
                    (Some(when), Some(what)) => format!("{when} ({what})"),
                    _ => "never".into(),
                },
                t.suspect
                    .as_ref()
                    .map_or(String::new(), |why| format!("; suspect: {why}")),
                t.retired
                    .as_ref()
                    .map_or(String::new(), |why| format!("; retired: {why}")),
                if t.alerts.is_empty() {
                    String::new()
                } else {
                    format!("; TapeAlert at last load: {}", t.alerts.join(", "))
                }
            ),
        ]);
    }
    let right = [
        false, false, false, false, true, true, true, true, true, false,
    ];
    for line in table(&rows, &right) {
        crate::outln!("{}", line.trim_end())?;
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
