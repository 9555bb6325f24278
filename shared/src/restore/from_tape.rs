//! `reel-restore --from-tape DEVICE`: no catalog, only the tape in the
//! drive and what it says of itself (its `REEL-TAPE.jsonl`, else its
//! archives' indexes); of each path the newest whole version on it.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::catalog::Entry;
use crate::cli::CommonArgs;
use crate::exit::{Exit, ExitError};
use crate::manifest::Record;
use crate::tape::session::{Choice, Session};

use super::plan::{dry_run, plan};
use super::restorer::Restorer;
use super::{Options, usage};

/// `--from-tape DEVICE`: no catalog directory, only the tape in the drive
/// and what it says of itself; the newest copy of each matching path on
/// it (the last in tape order).
pub(super) fn run(common: &CommonArgs, o: Options, dev: &str) -> anyhow::Result<Exit> {
    use crate::catalog::from_tape;
    let config = common.load_config_if_any()?;
    crate::config::Device::from_arg(dev)
        .map_err(|e| ExitError::new(Exit::Usage, format!("--from-tape: {e}")))?;
    let patterns = crate::catalog::find::Patterns::new(&o.patterns)
        .map_err(|e| ExitError::new(Exit::Usage, e))?;
    let choice = Choice::given(Some(dev), None);
    let (mut drive, label) =
        Session::new(config.as_ref(), choice, Duration::from_secs(600))?.open_labelled()?;
    let identities = config.as_ref().and_then(crate::verify::identities);
    let catalog = from_tape::read(
        drive.as_mut(),
        &label,
        &|r: &Record| patterns.matches(r.path.as_os_str().as_bytes()),
        identities.as_ref(),
    )?;
    for n in &catalog.notes {
        log::info!("tape {}: {n}", label.label);
    }
    for w in &catalog.warnings {
        log::warn!("tape {}: {w}", label.label);
    }
    for l in &catalog.lost {
        log::error!("tape {}: {l}", label.label);
    }
    let chosen = newest_versions(catalog.records);
    if chosen.is_empty() {
        return Err(ExitError::new(
            Exit::NoInput,
            format!(
                "nothing on tape {} matches {}",
                label.label,
                o.patterns.join(" ")
            ),
        )
        .into());
    }
    let found: Vec<Entry> = chosen
        .into_iter()
        .map(|record| Entry {
            stream: String::new(),
            verified: String::new(),
            record,
        })
        .collect();
    let plan = plan(&found);
    if o.dry_run {
        return dry_run(&plan, found.len());
    }
    let to =
        o.to.clone()
            .ok_or_else(|| usage("--to DIR is needed (or --dry-run)"))?;
    let mut restorer = Restorer::new(to, o.overwrite)?;
    restorer.identities = identities;
    restorer.cut = catalog.cut.into_iter().collect();
    // A file split across tapes is joined over several runs, one per tape.
    restorer.keep_joins = true;
    let block_size = u64::from(label.block_size.max(1));
    for list in plan.tapes.values() {
        for e in list {
            restorer.member(drive.as_mut(), &e.record, block_size);
        }
    }
    let exit = restorer.finish();
    if exit == Exit::Ok && !catalog.lost.is_empty() {
        log::error!(
            "{} place(s) on tape {} could not be read as members (above): what they held is not restored",
            catalog.lost.len(),
            label.label
        );
        return Ok(Exit::Data);
    }
    Ok(exit)
}

/// Of the copies of each path a tape holds, the newest version (the one
/// taken last from the source, else the last on tape) that is whole, with
/// all of its parts when it is split; where no version is whole, the
/// newest, whose missing parts are then named. Never parts of two versions.
fn newest_versions(records: Vec<Record>) -> Vec<Record> {
    // (taken, tape order): tape order alone where the time is unknown.
    type Newest = (i64, usize);
    // A version: (size, mtime).
    type Version = (u64, i64);
    // How new a version is, and one copy of each part (the last on tape).
    type Copies = (Newest, HashMap<Option<u32>, Record>);
    let mut paths: HashMap<PathBuf, HashMap<Version, Copies>> = HashMap::new();
    for (i, r) in records.into_iter().enumerate() {
        let newest = (r.taken_ns.unwrap_or(i64::MIN), i);
        let version = paths
            .entry(r.path.clone())
            .or_default()
            .entry((r.size, r.mtime_ns))
            .or_insert((newest, HashMap::new()));
        version.0 = version.0.max(newest);
        version.1.insert(r.part, r);
    }
    let mut out = Vec::new();
    for versions in paths.into_values() {
        let mut by_age: Vec<Copies> = versions.into_values().collect();
        by_age.sort_by_key(|(newest, _)| std::cmp::Reverse(*newest));
        let whole = by_age.iter().position(|(_, parts)| {
            parts.contains_key(&None)
                || crate::catalog::find::is_whole(&parts.values().collect::<Vec<_>>())
        });
        let (_, mut parts) = by_age.swap_remove(whole.unwrap_or(0));
        match parts.remove(&None) {
            // Stored whole once: that copy, not parts of the same content.
            Some(r) => out.push(r),
            None => out.extend(parts.into_values()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::EntryType;

    /// Part `n` (10 bytes each) of a 30-byte file of mtime `mtime`, taken
    /// at `taken`.
    fn part(mtime: i64, taken: i64, n: u32) -> Record {
        let mut r = Record::new("big", EntryType::File);
        r.size = 30;
        r.mtime_ns = mtime;
        r.taken_ns = Some(taken);
        r.part = Some(n);
        r.part_offset = Some(u64::from(n - 1) * 10);
        r.part_len = Some(10);
        r
    }

    fn chosen(records: Vec<Record>) -> Vec<(i64, Option<u32>)> {
        let mut v: Vec<_> = newest_versions(records)
            .into_iter()
            .map(|r| (r.mtime_ns, r.part))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_tape_gives_the_newest_whole_version_of_a_split_file_never_a_mix() {
        // A newer version cut short (it changed between its parts) loses
        // to the older whole one.
        let tape = vec![
            part(1, 10, 1),
            part(1, 10, 2),
            part(1, 10, 3),
            part(2, 20, 1),
            part(2, 20, 2),
        ];
        assert_eq!(chosen(tape), [(1, Some(1)), (1, Some(2)), (1, Some(3))]);
        // No whole version: the newest, alone.
        let tape = vec![part(1, 10, 1), part(2, 20, 1), part(2, 20, 3)];
        assert_eq!(chosen(tape), [(2, Some(1)), (2, Some(3))]);
        // A newer whole version wins; so does a whole copy of the same.
        let mut unsplit = part(2, 20, 1);
        (unsplit.part, unsplit.part_offset, unsplit.part_len) = (None, None, None);
        let tape = vec![
            part(1, 10, 1),
            part(1, 10, 2),
            part(1, 10, 3),
            part(2, 20, 1),
            unsplit,
        ];
        assert_eq!(chosen(tape), [(2, None)]);
    }
}
