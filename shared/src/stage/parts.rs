//! Staging in parts (docs/spool.md §7.2): a file the cache can never hold
//! whole next to its archive is staged one part at a time. Each part is a
//! staged item of its own, which reel-pack makes an archive of its own;
//! what is left of the file waits in `scanned/` as an item of its own whose
//! one record says where the next part starts, and whose header carries
//! the mtime and ctime the file had when its first part was copied. A part
//! is copied only from the file the scan recorded, unchanged since then;
//! a file that changed between two parts is left out (the next scan takes
//! it again), and the parts of it already on their way are not a whole
//! version, which `reel find` and reel-restore never take for one.

use std::fs;

use crate::beneath::{Refused, Tree};
use crate::exit::{Exit, ExitError};
use crate::fsutil::cache_need;
use crate::manifest::{EntryType, Header, Kind, Record};
use crate::spool::{Claim, Output, Queue};
use crate::units::Size;
use anyhow::Context;

use super::ItemEnd;
use super::copy::{self, PartOf, Range};
use super::stager::{Stager, join_bytes, sync_cache, with_cache};

/// The header key of an item that continues a file staged in parts: the
/// file's `[mtime_ns, ctime_ns]` when its first part was copied.
pub const SEEN: &str = "part_seen";

/// Whether `r` is a file the cache can never hold whole while it is also
/// packed (its copy and its archive at once).
pub fn too_big(r: &Record, cache_total: u64) -> bool {
    r.entry == EntryType::File && cache_need(1, r.size).saturating_mul(2) > cache_total
}

/// The length of the parts of a file staged in parts: an archive's size at
/// most, and small enough that a part and its archive take at most half
/// the cache. A multiple of 64 KiB.
pub fn part_size(cache_total: u64, archive_size: u64) -> u64 {
    const UNIT: u64 = 64 << 10;
    let room = (cache_total / 4).saturating_sub(cache_need(1, 0));
    (archive_size.min(room) / UNIT * UNIT).max(UNIT)
}

/// The id of the item of part `number` continuing the item `id` (itself
/// `<item>-f<n>-p<part>`, or the item the file was scanned in).
pub fn part_id(id: &str, number: u32) -> String {
    let base = match id.rsplit_once("-p") {
        Some((base, n)) if n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => id,
    };
    format!("{base}-p{number:04}")
}

/// Take out of an item's records the files to stage in parts. A hard link
/// to one of them becomes a file of its own (same inode): its link target
/// goes to tape in parts, not in the item's archive.
pub fn take_too_big(records: &mut Vec<Record>, cache_total: u64) -> Vec<Record> {
    let big: Vec<Record> = records
        .iter()
        .filter(|r| too_big(r, cache_total))
        .cloned()
        .collect();
    if big.is_empty() {
        return big;
    }
    let mut out = Vec::new();
    records.retain(|r| {
        if too_big(r, cache_total) {
            return false;
        }
        let target = (r.entry == EntryType::Hardlink)
            .then(|| big.iter().find(|b| Some(&b.path) == r.link.as_ref()))
            .flatten();
        match target {
            Some(t) => {
                let mut own = t.clone();
                own.path = r.path.clone();
                out.push(own);
                false
            }
            None => true,
        }
    });
    let mut all = big;
    all.extend(out);
    all
}

impl Stager<'_> {
    /// Queue the staging of `r` from its part `r.part` at `r.part_offset`:
    /// an item of its own in `scanned/`, named after the item it comes
    /// from (`<item>-f<n>-p<part>`), so that a run killed after queueing it
    /// queues it again under the same name, not twice.
    pub fn queue_part(
        &self,
        header: &Header,
        id: &str,
        r: &Record,
        seen: Option<(i64, i64)>,
    ) -> anyhow::Result<()> {
        if self.spool.item_path(Queue::Scanned, id).exists() {
            return Ok(()); // queued by a run that was killed after it
        }
        let mut next = Header::new(Kind::Scanned, &header.stream, id);
        next.extra = header.extra.clone();
        next.extra.remove(super::BUNDLES_KEY);
        next.extra.remove(SEEN);
        if let Some((mtime, ctime)) = seen {
            next.extra
                .insert(SEEN.into(), serde_json::json!([mtime, ctime]));
        }
        let mut item = self.spool.begin(Queue::Scanned, &next)?;
        item.write(r)?;
        item.commit()?;
        log::info!(
            "{}: part {} from byte {} queued as {id}",
            r.path.display(),
            r.part.unwrap_or(1),
            r.part_offset.unwrap_or(0)
        );
        Ok(())
    }

    /// Stage the next part of a file staged in parts: the one record of
    /// a claimed item that `queue_part` made.
    pub fn stage_part(
        &self,
        claim: Claim,
        header: &Header,
        records: &[Record],
        output: &mut Output,
    ) -> anyhow::Result<ItemEnd> {
        let fail = |claim: Claim, why: String| -> anyhow::Result<ItemEnd> {
            claim.reject(&why, "reel-stage")?;
            Ok(ItemEnd::Failed)
        };
        let r = match records {
            [r] if r.entry == EntryType::File => r,
            _ => {
                return fail(
                    claim,
                    "an item of a part holds one file, and only it".into(),
                );
            }
        };
        let number = r.part.unwrap_or(1);
        let offset = r.part_offset.unwrap_or(0);
        if offset >= r.size {
            return fail(
                claim,
                format!(
                    "{}: part {number} starts at byte {offset}, past the file's {} bytes",
                    r.path.display(),
                    r.size
                ),
            );
        }
        let seen = match header.extra.get(SEEN) {
            None if number == 1 => None,
            Some(v) => match serde_json::from_value::<(i64, i64)>(v.clone()) {
                Ok(s) => Some(s),
                Err(e) => return fail(claim, format!("{SEEN} in the header: {e}")),
            },
            None => {
                return fail(
                    claim,
                    format!("part {number} without the {SEEN} of its earlier parts"),
                );
            }
        };
        let total = self.space.total().context("measuring the cache")?;
        let len = part_size(total, self.config.archive_size().0).min(r.size - offset);
        if let Some(reason) = self.no_room(&header.id, cache_need(1, len))? {
            claim.release();
            return Ok(ItemEnd::Stop(ExitError::new(Exit::TempFail, reason)));
        }
        let root = match self.source_root(header) {
            Ok(r) => r,
            Err(why) => return fail(claim, why),
        };
        let Ok(source) = Tree::open_existing(&root) else {
            log::error!(
                "the source {} of stream {} is not there (unmounted?); {} stays queued",
                root.display(),
                header.stream,
                header.id
            );
            return Ok(ItemEnd::Held(claim));
        };
        let cache = self.item_dir(header)?;
        let dst = join_bytes(&cache, &r.path);
        let parent = dst.parent().unwrap_or(&cache);
        self.ensure_dir(&cache, parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let lost = |r: &Record| {
            if number > 1 {
                log::warn!(
                    "{}: its parts 1 to {} are not a whole version and are never restored as one",
                    r.path.display(),
                    number - 1
                );
            }
        };
        let (dir, name) = match source.parent(&r.path, false) {
            Ok(x) => x,
            Err(why) => {
                let why = match why {
                    Refused::Io(_, e) if e.kind() == std::io::ErrorKind::NotFound => {
                        "vanished before it could be copied".to_string()
                    }
                    why => format!("changed since it was scanned ({why}); the next scan takes it"),
                };
                self.skip(r, why);
                lost(r);
                claim.finish()?;
                return Ok(ItemEnd::Done);
            }
        };
        let range = Range { offset, len };
        let staged = copy::copy_file(
            &copy::Source { dir: &dir, name },
            &dst,
            &copy::Scanned {
                size: r.size,
                dev: r.dev,
                ino: r.ino,
                part: Some(PartOf { range, seen }),
            },
            &self.opts,
        );
        let s = match staged {
            Ok(s) => s,
            Err(e) => {
                if fs::symlink_metadata(&dst).is_ok_and(|m| m.is_file()) {
                    let _ = fs::remove_file(&dst);
                }
                if let Err(reason) = self.left_out(r, &dst, e) {
                    claim.release();
                    return Ok(ItemEnd::Stop(ExitError::new(
                        Exit::TempFail,
                        format!("{reason}; {} stays queued", header.id),
                    )));
                }
                lost(r);
                claim.finish()?;
                return Ok(ItemEnd::Done);
            }
        };
        self.tally
            .copied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.tally
            .bytes
            .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        let mut rec = with_cache(r, &dst);
        rec.sha256 = Some(s.sha256);
        rec.mtime_ns = s.mtime_ns;
        rec.part = Some(number);
        rec.part_offset = Some(offset);
        rec.part_len = Some(len);
        // Every part of a version has the time its first part was taken.
        rec.taken_ns = Some(r.taken_ns.unwrap_or_else(crate::time::now_ns));
        (rec.dev, rec.ino) = (None, None);
        sync_cache(&self.config.paths.cache)?;
        let mut out_header = Header::new(Kind::Staged, &header.stream, &header.id);
        out_header.extra = header.extra.clone();
        out_header.extra.remove(super::BUNDLES_KEY);
        out_header.extra.remove(SEEN);
        let mut item = output.begin(&out_header)?;
        item.write(&rec)?;
        item.commit()?;
        let end = offset + len;
        if end < r.size {
            let mut next = r.clone();
            next.part = Some(number + 1);
            next.part_offset = Some(end);
            next.taken_ns = rec.taken_ns;
            next.mtime_ns = s.mtime_ns;
            let id = part_id(&header.id, number + 1);
            self.queue_part(header, &id, &next, Some((s.mtime_ns, s.ctime_ns)))?;
        }
        claim.finish()?;
        log::info!(
            "{}: {} part {number} staged ({} from byte {offset} of {})",
            header.id,
            r.path.display(),
            Size(len).human(),
            Size(r.size).human()
        );
        Ok(ItemEnd::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_fit_a_quarter_of_the_cache_and_never_exceed_an_archive() {
        let mib = 1u64 << 20;
        assert_eq!(part_size(20 * mib, 2 * mib), 2 * mib);
        assert_eq!(part_size(20 * mib, 64 * mib), 3 * mib + 960 * 1024);
        assert_eq!(part_size(1000 * mib, 64 * mib), 64 * mib);
        // A tiny cache still gets parts.
        assert_eq!(part_size(mib, 64 * mib), 64 << 10);
        for total in [20 * mib, 7_777_777_777] {
            let p = part_size(total, u64::MAX);
            assert!(
                2 * cache_need(1, p) <= total / 2 + 2 * (64 << 10),
                "{total}"
            );
            assert_eq!(p % (64 << 10), 0);
        }
    }

    #[test]
    fn part_items_are_named_after_the_item_the_file_was_scanned_in() {
        let first = format!("{}-f0002", "home-20261204T101500-0007");
        assert_eq!(part_id(&first, 1), "home-20261204T101500-0007-f0002-p0001");
        assert_eq!(
            part_id("home-20261204T101500-0007-f0002-p0001", 2),
            "home-20261204T101500-0007-f0002-p0002"
        );
        assert_eq!(
            part_id("home-20261204T101500-0007-f0002-p0099", 100),
            "home-20261204T101500-0007-f0002-p0100"
        );
    }

    #[test]
    fn hard_links_to_a_file_staged_in_parts_become_files_of_their_own() {
        let mut big = Record::new("big", EntryType::File);
        big.size = 100 << 20;
        let mut small = Record::new("small", EntryType::File);
        small.size = 10;
        let mut link = Record::new("link", EntryType::Hardlink);
        link.link = Some("big".into());
        let mut link2 = Record::new("link2", EntryType::Hardlink);
        link2.link = Some("small".into());
        let mut records = vec![big, small, link, link2];
        let taken = take_too_big(&mut records, 20 << 20);
        let names = |v: &[Record]| {
            v.iter()
                .map(|r| (r.path.display().to_string(), r.entry, r.size))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&taken),
            [
                ("big".to_string(), EntryType::File, 100 << 20),
                ("link".to_string(), EntryType::File, 100 << 20)
            ]
        );
        assert_eq!(
            names(&records),
            [
                ("small".to_string(), EntryType::File, 10),
                ("link2".to_string(), EntryType::Hardlink, 0)
            ]
        );
    }
}
