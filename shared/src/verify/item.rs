//! Verifying one written item on the loaded tape: its archive read back,
//! the good members recorded in the tape's journal and published, the bad
//! ones queued again from their staged copies, and the cache freed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::catalog::journal::{self, Entry};
use crate::catalog::tapes::{Tape, TapeState};
use crate::config::Config;
use crate::manifest::{EntryType, Header, Kind, Record};
use crate::spool::{Claim, Output, Queue, Spool};
use crate::tape::Drive;
use crate::tape::label::Label;
use crate::tape::session::Session;
use crate::units::Size;

use super::read_archive;
use super::unavailable;

/// Remove the staged copies `copies`, then the directories they leave
/// empty and those among them, deepest first, up to the item's directory
/// `<cache>/staged/<stream>/<item>`. The copies go on every core: unlinking tens of
/// thousands of small files is most of what verifying them costs on ext4,
/// and each directory is tried once, not once per file in it.
fn free_staged(copies: &[&Path], staged_root: &Path) {
    use rayon::prelude::*;
    // The directories to tidy: those of the copies removed, and the
    // directories that are members themselves (an empty one has no copy
    // under it to bring it along).
    let tidy: Vec<&Path> = copies
        .par_iter()
        .copied()
        .filter_map(|c| {
            // Only what is in the cache: a manifest cannot make
            // reel-verify delete anything else.
            if !crate::fsutil::within(c, staged_root) {
                log::warn!(
                    "not removing {}: it is not in {}",
                    c.display(),
                    staged_root.display()
                );
                return None;
            }
            match std::fs::remove_file(c) {
                Ok(()) => c.parent(),
                Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Some(c),
                Err(_) => None,
            }
        })
        .collect();
    let mut dirs = std::collections::BTreeSet::new();
    for d in tidy {
        let mut dir = Some(d);
        // Up to the item's own directory, `<stream>/<item>`: the stream's
        // is shared with items being staged. An ancestor already in the
        // set has its own ancestors there too.
        while let Some(d) = dir
            && d.strip_prefix(staged_root)
                .is_ok_and(|r| r.components().count() >= 2)
            && dirs.insert(d)
        {
            dir = d.parent();
        }
    }
    let mut dirs: Vec<&Path> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        // Not empty (a bad member's copy, queued again, is still there).
        let _ = std::fs::remove_dir(d);
    }
}

/// Whether an item other than `id` waiting to be written or verified
/// (another copy of the archive, issue #23) names `archive` too. A copy
/// cut by the early warning does not count: its archive went whole onto
/// another tape, and that copy is the one that frees the cache.
fn copy_pending(spool: &Spool, archive: &str, id: &str) -> bool {
    [Queue::Packed, Queue::Written].into_iter().any(|q| {
        spool.list(q).unwrap_or_default().iter().any(|other| {
            other != id
                && crate::manifest::read_header(&spool.item_path(q, other))
                    .ok()
                    .is_some_and(|h| {
                        h.extra.get("partial").and_then(|v| v.as_bool()) != Some(true)
                            && h.extra.get("archive_path").and_then(|v| v.as_str()) == Some(archive)
                    })
        })
    })
}

/// A new staged item with the records that failed, from their staged
/// copies: they go to tape again.
fn requeue(
    spool: &Spool,
    header: &Header,
    records: &[&Record],
    file: u64,
) -> anyhow::Result<String> {
    let id = format!("{}-retry-f{file}", header.id);
    let mut h = Header::new(Kind::Staged, &header.stream, &id);
    h.created = header.created.clone();
    for key in ["source", crate::stage::BUNDLES_KEY] {
        if let Some(v) = header.extra.get(key) {
            h.extra.insert(key.into(), v.clone());
        }
    }
    let mut item = spool.begin(Queue::Staged, &h)?;
    for r in records {
        let mut rec = (*r).clone();
        rec.archive = None;
        rec.offset = None;
        rec.data_offset = None;
        rec.tape = None;
        rec.file = None;
        rec.block = None;
        if rec.entry == EntryType::Hardlink && rec.cache.is_some() {
            // Stored as a link to a copy in the same archive: it has a
            // staged copy of its own, so it can go as a file.
            rec.entry = EntryType::File;
            rec.link = None;
        }
        item.write(&rec)?;
    }
    item.commit()?;
    Ok(id)
}

/// The drive with the tape in it, and what its journal already holds.
pub(super) struct Loaded {
    pub(super) drive: Box<dyn Drive>,
    pub(super) label: Label,
    pub(super) seen: HashSet<(u64, PathBuf)>,
}

/// "2.41 s, 408.0 MB/s": how long reading `bytes` took, and the rate.
pub(super) fn took(bytes: u64, time: Duration) -> String {
    let secs = time.as_secs_f64();
    if secs > 0.0 {
        format!(
            "{secs:.2} s, {}",
            crate::telemetry::mbs(bytes as f64 / secs)
        )
    } else {
        format!("{secs:.2} s")
    }
}

/// The state of a verify run: the drive, the queues, the counts.
pub(super) struct Verifier<'a> {
    pub(super) config: &'a Config,
    pub(super) t: Session<'a>,
    pub(super) spool: Spool,
    pub(super) output: Output,
    pub(super) loaded: Option<Loaded>,
    pub(super) verified: u64,
    pub(super) failed: u64,
    pub(super) archives: u64,
    /// Bytes read back from tape and the time spent reading them (from the
    /// archive's first block to its end), for the rate the log reports.
    pub(super) read_bytes: u64,
    pub(super) read_time: Duration,
    /// Items that could not be read or named no tape: moved to failed/.
    pub(super) bad_items: u64,
}

impl Verifier<'_> {
    pub(super) fn load(&mut self) -> anyhow::Result<&mut Loaded> {
        if self.loaded.is_none() {
            let (drive, label) = self.t.open_labelled()?;
            let seen = journal::recorded(&self.config.paths.catalog, &label.label)?;
            self.loaded = Some(Loaded { drive, label, seen });
        }
        Ok(self.loaded.as_mut().expect("just loaded"))
    }

    /// Verify one written item on the loaded tape; the tape it needs when
    /// it is on another one (the claim is let go).
    pub(super) fn item(&mut self, claim: Claim) -> anyhow::Result<Option<String>> {
        let Some((claim, header, records)) = claim.read_all("reel-verify")?.item() else {
            self.bad_items += 1;
            return Ok(None);
        };
        let get = |k: &str| header.extra.get(k);
        let (Some(tape), Some(file), Some(start)) = (
            get("tape").and_then(|v| v.as_str()).map(str::to_string),
            get("file").and_then(|v| v.as_u64()),
            get("start_block").and_then(|v| v.as_u64()),
        ) else {
            claim.reject(
                "the written manifest lacks tape, file or start_block",
                "reel-verify",
            )?;
            self.bad_items += 1;
            return Ok(None);
        };
        let partial = get("partial").and_then(|v| v.as_bool()).unwrap_or(false);
        let catalog = self.config.paths.catalog.clone();
        let staged_root = self.config.paths.cache.join("staged");
        let device = self.t.device().to_string();
        let ids = super::identities(self.config);
        let Loaded { drive, label, seen } = self.load()?;
        if label.label != tape {
            claim.release();
            return Ok(Some(tape));
        }
        if let Some(uuid) = get("tape_uuid").and_then(|v| v.as_str())
            && uuid != label.uuid
        {
            claim.release();
            return Err(unavailable(format!(
                "the tape in {device} is labelled {tape} but is not the tape {} was written to (uuid {} ≠ {uuid})",
                header.id, label.uuid
            )));
        }
        // Position: the archive's first block, and check the drive agrees.
        drive.seek(start)?;
        let at = drive.position()?;
        if at != start {
            claim.release();
            return Err(unavailable(format!(
                "tape {tape}: asked for block {start} (file {file}), the drive is at {at}"
            )));
        }
        let reading = Instant::now();
        let outcome = match read_archive(drive.as_mut(), &records, partial, ids.as_ref()) {
            Ok(o) => o,
            Err(why) => {
                // Nothing wrong with the tape: this host cannot open it.
                claim.release();
                return Err(unavailable(format!(
                    "{} (tape {tape} file {file}): {why}; nothing is verified that was not read",
                    header.id
                )));
            }
        };
        let read_for = reading.elapsed();
        // What the journal gets: the members read back intact and not
        // recorded before.
        let now = crate::time::Utc::now().rfc3339();
        let entries: Vec<Entry> = outcome
            .good
            .iter()
            .map(|&i| &records[i])
            .filter(|r| !seen.contains(&(file, r.path.clone())))
            .map(|r| Entry {
                stream: header.stream.clone(),
                verified: now.clone(),
                record: r.clone(),
            })
            .collect();
        if let Some(mut state) = Tape::load(&catalog, &tape)? {
            state.verified_bytes += entries.iter().map(|e| e.record.bytes()).sum::<u64>();
            if let Some(e) = &outcome.read_error {
                log::error!("tape {tape} file {file}: {e}; the tape is marked suspect");
                state.state = TapeState::Suspect;
            }
            state.verified = Some(crate::time::Utc::now().rfc3339());
            state.last_verify = Some(format!(
                "file {file}: {} good, {} bad{}",
                outcome.good.len(),
                outcome.bad.len(),
                outcome
                    .read_error
                    .as_ref()
                    .map(|e| format!(", {e}"))
                    .unwrap_or_default()
            ));
            state.save(&catalog)?;
        }
        for (i, why) in &outcome.bad {
            let r = &records[*i];
            log::error!(
                "{}: tape {tape} file {file} block {}: {why}",
                r.path.display(),
                r.block.map_or("?".into(), |b| b.to_string())
            );
        }
        // The journal first (the truth), then the queues.
        journal::append(&catalog, &tape, &entries)?;
        for e in &entries {
            seen.insert((file, e.record.path.clone()));
        }
        if !entries.is_empty()
            && let Err(e) = crate::catalog::streams::verified(&catalog, &header.stream, &now)
        {
            log::warn!(
                "stream {}: when it was last verified is not recorded: {e}",
                header.stream
            );
        }
        let bad: Vec<&Record> = outcome.bad.iter().map(|(i, _)| &records[*i]).collect();
        if !bad.is_empty() {
            let id = requeue(&self.spool, &header, &bad, file)?;
            log::warn!(
                "{} member(s) of {} go to tape again as staged item {id}",
                bad.len(),
                header.id
            );
        }
        let mut h = header.clone();
        h.kind = Kind::Verified;
        h.extra.insert("verified".into(), now.into());
        h.extra.insert("bad".into(), outcome.bad.len().into());
        let mut item = self.output.begin(&h)?;
        for &i in &outcome.good {
            item.write(&records[i])?;
        }
        item.commit()?;
        // Another copy of the same archive still to write or to verify
        // needs the archive and the staged copies (a bad member of it is
        // staged again from them).
        let archive_path = get("archive_path").and_then(|v| v.as_str());
        let other_copies = archive_path.is_some_and(|a| copy_pending(&self.spool, a, &header.id));
        if !partial && !other_copies {
            // On tape and recorded, or queued again from their copies: the
            // cache has done its work for this archive.
            let copies: Vec<&Path> = outcome
                .good
                .iter()
                .map(|&i| &records[i])
                // A bundle holds other members too: it goes with its
                // directory (free_bundles).
                .filter(|r| r.cache_offset.is_none())
                .filter_map(|r| r.cache.as_deref())
                .collect();
            free_staged(&copies, &staged_root);
            if let Some(named) = get(crate::stage::BUNDLES_KEY).and_then(|v| v.as_str()) {
                crate::stage::free_bundles(
                    &self.spool,
                    &header.stream,
                    named,
                    &staged_root,
                    Some(&header.id),
                );
            }
            // The staged item's directory, if that left it empty (its
            // files all went into bundles, with no directory among its
            // members to bring it along).
            if let Some(item) = get("item").and_then(|v| v.as_str())
                && crate::spool::check_item_id(item).is_ok()
                && crate::spool::check_item_id(&header.stream).is_ok()
            {
                let _ = std::fs::remove_dir(staged_root.join(&header.stream).join(item));
            }
            if let Some(a) = archive_path {
                let archives = self.config.paths.cache.join("archives");
                if Path::new(a).parent() == Some(archives.as_path())
                    && crate::fsutil::within(Path::new(a), &archives)
                {
                    let _ = std::fs::remove_file(a);
                } else {
                    log::warn!(
                        "not removing {a}: it is not an archive in {}",
                        archives.display()
                    );
                }
            }
        }
        claim.finish()?;
        self.archives += 1;
        self.verified += outcome.good.len() as u64;
        self.failed += outcome.bad.len() as u64;
        self.read_bytes += outcome.bytes;
        self.read_time += read_for;
        log::info!(
            "{}: tape {tape} file {file}: {} member(s) verified, {} bad{} ({} read in {})",
            header.id,
            outcome.good.len(),
            outcome.bad.len(),
            if outcome.cut_off > 0 {
                format!(", {} past the cut", outcome.cut_off)
            } else {
                String::new()
            },
            Size(outcome.bytes).human(),
            took(outcome.bytes, read_for)
        );
        Ok(None)
    }
}
