//! Copies written again (issue #23): a version still kept that has no
//! counted copy in a pool of its policy (its tape was marked lost, or is
//! suspect) gets one from another copy. The archive that holds it is read
//! whole from a tape that counts, into the cache, and published as a
//! packed item for that pool (`copy_pool`, `rewrite`): reel-write writes
//! it and reel-verify reads it back against the digests the journal
//! recorded, as for any archive; the cache is freed after.
//!
//! Run by `reel tapes rewrite` and by the supervisor at the end of each
//! pass. Idempotent: an archive already queued again (packed or written,
//! not yet verified) is not queued twice.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::catalog::journal;
use crate::catalog::lifecycle::VersionKey;
use crate::catalog::retention;
use crate::catalog::tapes::Tape;
use crate::config::Config;
use crate::manifest::{Header, Kind, Record};
use crate::spool::{Queue, Spool};
use crate::tape::Read;
use crate::tape::session::{Choice, Session};

/// What a rewrite pass did.
#[derive(Debug, Default)]
pub struct Rewritten {
    /// Archives queued again (packed items published).
    pub queued: Vec<String>,
    /// Versions missing a copy that no counted copy in the library can
    /// give (logged; their source's next change backs them up again).
    pub no_source: usize,
    /// Archives whose source tape file could not be read.
    pub unreadable: usize,
    /// The tapes the plan found could be used again.
    pub recyclable: Vec<String>,
}

/// Queue every archive that holds a kept version missing a copy, read
/// from a tape in the library that counts, for the pool that misses it.
pub fn schedule(config: &Config, spool: &Spool) -> anyhow::Result<Rewritten> {
    let catalog = &config.paths.catalog;
    let retention::Planned {
        plan,
        versions,
        tapes,
        ..
    } = retention::apply(catalog, config, crate::time::now_ns())?;
    let mut out = Rewritten {
        recyclable: plan.recyclable.clone(),
        ..Rewritten::default()
    };
    if plan.missing.is_empty() {
        return Ok(out);
    }
    // A copy still queued is missing from the catalog too: only an empty
    // pipeline tells a lost copy from one on its way.
    let waiting = spool.list(Queue::Packed)?.len() + spool.list(Queue::Written)?.len();
    if waiting > 0 {
        log::warn!(
            "{} version(s) miss a copy, but {waiting} item(s) still wait to be written or verified:              run this again once the pipeline is empty",
            plan.missing.len()
        );
        return Ok(out);
    }
    // Tapes to copy from: in the library, not suspect; a retired one only
    // when no other holds the version (it is worn, not wrong).
    let mut here: BTreeMap<String, bool> = BTreeMap::new();
    for t in crate::catalog::tapes::all(catalog)? {
        use crate::catalog::tapes::TapeState;
        if t.place.is_none() && t.state != TapeState::Suspect {
            here.insert(t.label, t.state == TapeState::Retired);
        }
    }
    let counts: BTreeSet<&str> = tapes
        .iter()
        .filter(|t| !t.lost && !t.suspect)
        .map(|t| t.label.as_str())
        .collect();
    // Source tape → target pool → the versions it gives.
    let mut wanted: BTreeMap<String, BTreeMap<String, BTreeSet<VersionKey>>> = BTreeMap::new();
    for (key, pool) in &plan.missing {
        if pool == "any" {
            out.no_source += 1;
            log::warn!(
                "{} {}: no copy of the version taken {} counts any more, and none is left to copy it from",
                key.stream,
                String::from_utf8_lossy(&key.path),
                when(key.taken_ns)
            );
            continue;
        }
        let from = versions.get(key).and_then(|copies| {
            copies
                .iter()
                .filter(|c| counts.contains(c.tape.as_str()))
                .filter_map(|c| here.get(&c.tape).map(|retired| (*retired, c)))
                .min_by_key(|(retired, _)| *retired)
                .map(|(_, c)| c)
        });
        match from {
            Some(c) => {
                wanted
                    .entry(c.tape.clone())
                    .or_default()
                    .entry(pool.clone())
                    .or_default()
                    .insert(key.clone());
            }
            None => {
                out.no_source += 1;
                log::warn!(
                    "{} {} (taken {}): missing in pool {pool}, and no copy that counts is in the library to copy it from",
                    key.stream,
                    String::from_utf8_lossy(&key.path),
                    when(key.taken_ns)
                );
            }
        }
    }
    if wanted.is_empty() {
        return Ok(out);
    }
    // Which tape file of each source tape holds each wanted version, and
    // the journal's records of those tape files.
    let mut archives: BTreeMap<(String, u64, String), Vec<(String, Record)>> = BTreeMap::new();
    for (tape, pools) in &wanted {
        let mut files_of: BTreeMap<u64, Vec<(String, Record)>> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        // Tape file → the versions wanted from it.
        let mut needed: BTreeMap<u64, BTreeSet<VersionKey>> = BTreeMap::new();
        journal::read(&journal::journal_path(catalog, tape), |e| {
            let Some(file) = e.record.file else {
                return Ok(());
            };
            let key = VersionKey::of(&e);
            if pools.values().any(|keys| keys.contains(&key)) {
                needed.entry(file).or_default().insert(key);
            }
            if seen.insert((file, e.record.path.clone())) {
                files_of.entry(file).or_default().push((e.stream, e.record));
            }
            Ok(())
        })?;
        for (pool, keys) in pools {
            for (file, held) in &needed {
                if !held.is_disjoint(keys) {
                    archives.insert(
                        (tape.clone(), *file, pool.clone()),
                        files_of.get(file).cloned().unwrap_or_default(),
                    );
                }
            }
        }
    }
    let session = Session::new(Some(config), Choice::default(), Duration::from_secs(600))?;
    let cache_archives = config.paths.cache.join("archives");
    std::fs::create_dir_all(&cache_archives)
        .with_context(|| format!("creating {}", cache_archives.display()))?;
    for ((tape, file, pool), records) in archives {
        let id = format!("rewrite-{tape}-f{file}-{pool}");
        if [Queue::Packed, Queue::Written]
            .iter()
            .any(|&q| spool.item_path(q, &id).exists())
        {
            log::debug!("{id}: already queued");
            continue;
        }
        let Some((stream, _)) = records.first() else {
            continue;
        };
        let stream = stream.clone();
        let dest = cache_archives.join(format!("{id}.tar"));
        let (size, block_size) = match read_tape_file(&session, catalog, &tape, file, &dest) {
            Ok(x) => x,
            Err(e) => {
                // Another copy, or the next pass, may do better.
                log::warn!(
                    "{id}: tape {tape} file {file} could not be read ({e:#}); its versions still miss a copy in pool {pool}"
                );
                out.unreadable += 1;
                continue;
            }
        };
        let mut h = Header::new(Kind::Packed, &stream, &id);
        h.extra.insert("archive".into(), id.clone().into());
        h.extra
            .insert("archive_path".into(), dest.display().to_string().into());
        h.extra.insert("archive_size".into(), size.into());
        h.extra.insert("block_size".into(), block_size.into());
        h.extra.insert("copy_pool".into(), pool.clone().into());
        h.extra.insert("rewrite".into(), true.into());
        h.extra
            .insert("copied_from".into(), format!("{tape} file {file}").into());
        let mut item = spool.begin(Queue::Packed, &h)?;
        for (_, r) in &records {
            let mut r = r.clone();
            r.tape = None;
            r.file = None;
            r.block = None;
            item.write(&r)?;
        }
        item.commit()?;
        log::info!(
            "{id}: tape {tape} file {file} ({} member(s), {size} bytes) read into the cache, queued for pool {pool}",
            records.len()
        );
        out.queued.push(id);
    }
    Ok(out)
}

/// Read tape file `file` of tape `label` whole into `dest` (atomically:
/// a temporary file, fsync, rename). Returns its size and block size.
fn read_tape_file(
    session: &Session,
    catalog: &Path,
    label: &str,
    file: u64,
    dest: &Path,
) -> anyhow::Result<(u64, u64)> {
    let Some((mut drive, on_tape)) = session.open_tape(label)? else {
        anyhow::bail!("tape {label} is not in the library: cannot copy from it");
    };
    let known = Tape::load(catalog, label)?;
    if known.as_ref().is_none_or(|t| t.uuid != on_tape.uuid) {
        anyhow::bail!(
            "the tape labelled {label} in {} is not the one the catalog knows",
            session.device()
        );
    }
    drive.rewind()?;
    let skip = u32::try_from(file).context("tape file number")?;
    drive.forward_filemarks(skip)?;
    let dir = dest.parent().expect("in the cache");
    let tmp = dir.join(format!(
        ".{}.tmp",
        dest.file_name().unwrap().to_string_lossy()
    ));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut buf = vec![0u8; crate::tape::stream::MAX_BLOCK];
    let mut size = 0u64;
    while let Read::Data(n) = drive.read_block(&mut buf)? {
        out.write_all(&buf[..n])
            .with_context(|| format!("writing {}", tmp.display()))?;
        size += n as u64;
    }
    out.sync_all()
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dest).with_context(|| format!("renaming {}", tmp.display()))?;
    crate::fsutil::sync_dir(dir)?;
    Ok((size, u64::from(on_tape.block_size)))
}

fn when(ns: i128) -> String {
    crate::time::Utc::from_ns(ns).rfc3339()
}
