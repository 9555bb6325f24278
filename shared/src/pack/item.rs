//! One staged item packed: its staged copies checked to lie in the cache,
//! room for its archives, the archives written, moved into place and their
//! `packed` items published (or the archive to stdout with `--raw`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::Path;

use anyhow::Context;
use sha2::Sha256;

use crate::exit::{Exit, ExitError};
use crate::manifest::{EntryType, ManifestWriter, Record};
use crate::spool::{Claim, Output};

use super::Settings;
use super::archive::{Failure, Written, write_archive};
use super::plan::{Piece, order, plan};

/// Pack one item; false when it failed (moved to failed/).
pub(super) fn pack_item(s: &Settings, claim: Claim, output: &mut Output) -> anyhow::Result<bool> {
    let Some((claim, header, mut records)) = claim.read_all("reel-pack")?.item() else {
        return Ok(false);
    };
    if let Some(why) = outside_cache(s, &records) {
        claim.reject(&why, "reel-pack")?;
        return Ok(false);
    }
    if !s.raw {
        check_room(s, &header.id, &records)?;
    }
    order(&mut records, s.order);
    let groups = if s.raw {
        vec![
            (0..records.len())
                .map(|index| Piece { index, part: None })
                .collect(),
        ]
    } else {
        plan(&records, s.archive_size, s.split_above)
    };
    // The whole-file digests of split files, fed part by part.
    let mut whole: HashMap<usize, Sha256> = HashMap::new();
    fs::create_dir_all(&s.archives)
        .with_context(|| format!("creating {}", s.archives.display()))?;
    let mut done: Vec<Written> = Vec::new();
    for (k, group) in groups.iter().enumerate() {
        let id = format!("{}-a{:03}", header.id, k + 1);
        let result = write_archive(s, &header, &id, &records, group, &mut whole);
        if result.is_err() {
            let _ = fs::remove_file(s.archives.join(format!(".{id}.tar.tmp")));
        }
        match result {
            Ok(x) => done.push(x),
            Err(Failure::Data(why)) => {
                for (_, _, tmp, _) in &done {
                    let _ = fs::remove_file(tmp);
                }
                claim.reject(&why, "reel-pack")?;
                return Ok(false);
            }
            Err(Failure::Io(e)) => {
                for (_, _, tmp, _) in &done {
                    let _ = fs::remove_file(tmp);
                }
                let full = e.chain().any(|c| {
                    c.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.raw_os_error() == Some(libc::ENOSPC))
                });
                if full {
                    let free = crate::fsutil::fs_usage(&s.archives)
                        .map_or(0, |(used, total)| total.saturating_sub(used));
                    return Err(no_room(s, &header.id, 0, free).context(format!("{e:#}")));
                }
                return Err(e);
            }
        }
    }
    publish(s, done, output)?;
    claim.finish()?;
    Ok(true)
}

/// Why the item is refused, if it is: a manifest cannot make reel-pack
/// read (onto tape) anything but the cache's staged copies.
fn outside_cache(s: &Settings, records: &[Record]) -> Option<String> {
    let r = records.iter().find(|r| {
        r.cache
            .as_ref()
            .is_some_and(|c| !crate::fsutil::within(c, &s.staged))
    })?;
    Some(format!(
        "{}: its staged copy {} is not in {}: refused",
        r.path.display(),
        r.cache.as_deref().unwrap_or(Path::new("")).display(),
        s.staged.display()
    ))
}

/// The item's archives exist together until they are published: the
/// cache must have room for all of them now.
fn check_room(s: &Settings, item: &str, records: &[Record]) -> anyhow::Result<()> {
    let bytes = records
        .iter()
        .filter(|r| r.entry == EntryType::File)
        .map(Record::bytes)
        .sum();
    let need = crate::fsutil::cache_need(records.len() as u64, bytes);
    let (used, total) = crate::fsutil::fs_usage(&s.archives)
        .with_context(|| format!("measuring {}", s.archives.display()))?;
    if total.saturating_sub(used) < need {
        return Err(no_room(s, item, need, total.saturating_sub(used)));
    }
    Ok(())
}

/// Every archive is complete: move them into place, then publish their
/// packed items (to the queue, stdout, or the `--manifest` file).
fn publish(s: &Settings, done: Vec<Written>, output: &mut Output) -> anyhow::Result<()> {
    for (h, recs, tmp, final_path) in done {
        if !s.raw {
            fs::rename(&tmp, &final_path)
                .with_context(|| format!("renaming {}", final_path.display()))?;
            crate::fsutil::sync_dir(&s.archives)
                .with_context(|| format!("syncing {}", s.archives.display()))?;
        }
        if let Some(m) = &s.manifest {
            let f = File::create(m).with_context(|| format!("creating {}", m.display()))?;
            let mut w = ManifestWriter::new(std::io::BufWriter::new(f), &h)?;
            for r in &recs {
                w.write(r)?;
            }
            w.finish()?
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
        } else {
            let mut item = output.begin(&h)?;
            for r in &recs {
                item.write(r)?;
            }
            item.commit()?;
        }
        log::info!(
            "{}: {} members, {} bytes",
            h.id,
            recs.len(),
            h.extra["archive_size"]
        );
    }
    Ok(())
}

/// The cache has no room for an item's archives now: it stays queued, and
/// the run ends with 75 (reel-verify frees the cache; then again).
fn no_room(s: &Settings, item: &str, need: u64, free: u64) -> anyhow::Error {
    let need = if need > 0 {
        format!(" (they need about {}, ", crate::units::Size(need).human())
    } else {
        " (".into()
    };
    ExitError::new(
        Exit::TempFail,
        format!(
            "no room in {} for the archives of {item}{need}{} free): it stays queued until writing and verifying free the cache",
            s.archives.display(),
            crate::units::Size(free).human()
        ),
    )
    .into()
}
