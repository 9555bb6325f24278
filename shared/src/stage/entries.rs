//! One entry of an item into the cache: a file copied (or found already
//! staged), a symlink recreated, a hard link linked to its target's copy.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::beneath::{Refused, Tree};
use crate::manifest::Record;

use super::copy::{self, CopyError};
use super::meta;
use super::stager::{Stager, is_full, join_bytes, with_cache};

impl Stager<'_> {
    /// `Ok(None)`: skipped (reported); `Err`: the cache is full, stop.
    pub(super) fn stage_file(
        &self,
        root: &Tree,
        cache: &Path,
        bundles: Option<&copy::Bundles>,
        r: &Record,
    ) -> Result<Option<Record>, String> {
        // statvfs is cheap, but not free: look every 64 files, and before
        // every large one.
        let n = self.tally.files.load(Ordering::Relaxed);
        if n % 64 == 0 || r.size >= 64 << 20 {
            match self.space.check() {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => return Err(reason),
                Err(e) => return Err(format!("cannot measure the cache: {e}")),
            }
        }
        let dst = join_bytes(cache, &r.path);
        // The source's directory, reached from the stream's root without
        // following a symlink: one swapped in since the scan is refused.
        let (dir, name) = match root.parent(&r.path, false) {
            Ok(x) => x,
            Err(Refused::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
                self.skip(r, "vanished before it could be copied");
                return Ok(None);
            }
            Err(why) => {
                self.skip(
                    r,
                    format!("changed since it was scanned ({why}); the next scan takes it"),
                );
                return Ok(None);
            }
        };
        let scanned = copy::Scanned {
            size: r.size,
            dev: r.dev,
            ino: r.ino,
            part: None,
        };
        if let Some(b) = bundles.filter(|_| r.size < self.config.cache.bundle_below.0) {
            match b.copy(&copy::Source { dir: &dir, name }, &scanned, &self.opts) {
                Ok(Some(put)) => {
                    self.tally.files.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(self.taken(
                        r,
                        &put.bundle,
                        Some(put.offset),
                        &put.staged,
                    )));
                }
                // Extended attributes: a copy of its own keeps them.
                Ok(None) => {}
                Err(e) => {
                    self.tally.files.fetch_add(1, Ordering::Relaxed);
                    if !matches!(e, CopyError::CacheFull(_)) {
                        remove_stale(&dst);
                    }
                    return self.left_out(r, &dst, e).map(|()| None);
                }
            }
        }
        if let Some(parent) = dst.parent()
            && let Err(e) = self.ensure_dir(cache, parent)
        {
            if is_full(&e) {
                self.space.pause();
                return Err(format!("the cache is full: {e}"));
            }
            self.skip(r, format!("cannot create {}: {e}", parent.display()));
            return Ok(None);
        }
        self.tally.files.fetch_add(1, Ordering::Relaxed);
        let staged = copy::copy_file(
            &copy::Source { dir: &dir, name },
            &dst,
            &scanned,
            &self.opts,
        );
        if let Err(e) = &staged
            && !matches!(e, CopyError::CacheFull(_))
        {
            remove_stale(&dst);
        }
        match staged {
            Ok(s) => Ok(Some(self.taken(r, &dst, None, &s))),
            Err(e) => self.left_out(r, &dst, e).map(|()| None),
        }
    }

    /// The record of a file staged at `cache` (from `offset` in a bundle),
    /// counted.
    fn taken(&self, r: &Record, cache: &Path, offset: Option<u64>, s: &copy::Staged) -> Record {
        let counter = if s.copied {
            &self.tally.copied
        } else {
            &self.tally.quick
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.tally.bytes.fetch_add(s.size, Ordering::Relaxed);
        let mut rec = with_cache(r, cache);
        rec.cache_offset = offset;
        // The content matched the source up to now.
        rec.taken_ns = Some(crate::time::now_ns());
        rec.sha256 = Some(s.sha256);
        rec.size = s.size;
        rec.mtime_ns = s.mtime_ns;
        rec
    }

    /// A file whose copy failed is left out, said why; `Err` when the
    /// cache is full (the run stops).
    pub(super) fn left_out(&self, r: &Record, dst: &Path, e: CopyError) -> Result<(), String> {
        match e {
            CopyError::Vanished => self.skip(r, "vanished before it could be copied"),
            CopyError::ChangedSinceScan(why) => self.skip(
                r,
                format!("changed since it was scanned ({why}); the next scan takes it"),
            ),
            CopyError::Changing | CopyError::ChangedDuringCopy => self.skip(
                r,
                format!(
                    "kept changing while it was copied ({} attempts)",
                    self.opts.retries + 1
                ),
            ),
            CopyError::Source(e) => self.skip(r, format!("cannot read: {e}")),
            CopyError::CacheFull(e) => {
                self.space.pause();
                return Err(format!(
                    "the cache {} is full: {e}",
                    self.config.paths.cache.display()
                ));
            }
            CopyError::Cache(e) => self.skip(r, format!("cannot write {}: {e}", dst.display())),
        }
        Ok(())
    }

    pub(super) fn stage_symlink(&self, cache: &Path, r: &Record) -> Option<Record> {
        let dst = join_bytes(cache, &r.path);
        let target = r.link.as_ref()?;
        let tmp = dst.with_file_name(format!(".reel-tmp-link-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let made = dst
            .parent()
            .map_or(Ok(()), |p| self.ensure_dir(cache, p))
            .and_then(|()| std::os::unix::fs::symlink(target, &tmp))
            .and_then(|()| meta::apply_to_path(&tmp, r, self.opts.chown, true))
            .and_then(|()| fs::rename(&tmp, &dst));
        match made {
            Ok(()) => Some(with_cache(r, &dst)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                self.skip(r, format!("cannot create the symlink in the cache: {e}"));
                None
            }
        }
    }

    pub(super) fn stage_hardlink(
        &self,
        cache: &Path,
        r: &Record,
        records: &[Record],
        out: &[Option<Record>],
    ) -> Option<Record> {
        let target = r.link.as_ref()?;
        let staged_target = records
            .iter()
            .zip(out)
            .find(|(t, o)| &t.path == target && o.is_some())
            .and_then(|(_, o)| o.as_ref());
        let dst = join_bytes(cache, &r.path);
        let Some(t) = staged_target else {
            // A link an earlier, killed run made must not stay behind.
            if fs::symlink_metadata(&dst).is_ok_and(|m| m.is_file()) {
                let _ = fs::remove_file(&dst);
            }
            self.skip(
                r,
                format!("its link target {} was not staged", target.display()),
            );
            return None;
        };
        if let (Some(bundle), Some(at)) = (&t.cache, t.cache_offset) {
            // Its target is in a bundle: so is it, at the same bytes.
            return Some(linked(r, t, bundle, Some(at)));
        }
        let src = join_bytes(cache, target);
        let tmp = dst.with_file_name(format!(".reel-tmp-hard-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let made = dst
            .parent()
            .map_or(Ok(()), |p| self.ensure_dir(cache, p))
            .and_then(|()| fs::hard_link(&src, &tmp))
            .and_then(|()| fs::rename(&tmp, &dst));
        match made {
            Ok(()) => Some(linked(r, t, &dst, None)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                self.skip(r, format!("cannot link it in the cache: {e}"));
                None
            }
        }
    }
}

/// The record of hard link `r` staged at `cache` (from `offset` in a
/// bundle), with the content of its staged target `t`.
fn linked(r: &Record, t: &Record, cache: &Path, offset: Option<u64>) -> Record {
    let mut rec = with_cache(r, cache);
    rec.cache_offset = offset;
    rec.sha256 = t.sha256;
    rec.size = t.size;
    rec.mtime_ns = t.mtime_ns;
    rec
}

/// Left out of this item: a copy an earlier, killed run of it staged must
/// not stay in the cache with nothing pointing at it.
fn remove_stale(dst: &Path) {
    if fs::symlink_metadata(dst).is_ok_and(|m| m.is_file()) {
        let _ = fs::remove_file(dst);
    }
}
