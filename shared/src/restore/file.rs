//! Restoring a regular file (or a part of a split one): seek to the block
//! holding its header, read its bytes, check the digest, then put it in
//! place, or beside it as `<name>.reel-corrupt`.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsFd;

use crate::beneath::{self, Dir};
use crate::manifest::{Digest, Record};
use crate::tape::Drive;

use super::join::join_note;
use super::member::read_placed;
use super::restorer::{Restorer, dir_temp, is_drive_error, place};

impl Restorer {
    pub(super) fn file(
        &mut self,
        drive: &mut dyn Drive,
        r: &Record,
        dir: Dir,
        name: &OsStr,
        block_size: u64,
    ) {
        let (Some(block), Some(offset), Some(data_offset)) = (r.block, r.offset, r.data_offset)
        else {
            return self.refuse(r, "the catalog does not say where it is on tape");
        };
        if data_offset < offset {
            return self.refuse(
                r,
                "its data offset lies before its header: a forged or damaged index",
            );
        }
        // The parts of a split file go into one temporary, each at its
        // offset; the temporary stays open between parts.
        let mut state = match self.parts.remove(&r.path) {
            Some(state) => Some(state),
            None if r.part.is_some() => match self.start_join(r, dir) {
                Ok(state) => Some(state),
                Err(e) => return self.refuse(r, format!("cannot create a file: {e}")),
            },
            None => None,
        };
        if let (Some(s), Some(part)) = (&state, r.part)
            && s.done.contains(&part)
        {
            log::info!("{}: part {part} is joined already", r.path.display());
            self.parts
                .insert(r.path.clone(), state.expect("just matched"));
            return;
        }
        let single = if state.is_none() {
            match dir_temp(&self.tree, &r.path) {
                Ok(x) => Some(x),
                Err(e) => return self.refuse(r, format!("cannot create a file: {e}")),
            }
        } else {
            None
        };
        let mut single = single;
        let out: &mut File = match (&mut state, &mut single) {
            (Some(s), _) => &mut s.out,
            (None, Some((_, out, _))) => out,
            (None, None) => unreachable!("one of the two is set"),
        };
        // The member's header starts in `block`, `offset % block_size`
        // bytes in; its data `data_offset - offset` bytes after that.
        let skip = offset % block_size + (data_offset - offset);
        let read = drive
            .seek(block)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                if let Some(at) = r.part_offset {
                    std::io::Seek::seek(out, std::io::SeekFrom::Start(at))?;
                }
                read_placed(
                    drive,
                    r,
                    (block, offset, block_size, skip),
                    self.identities.as_ref(),
                    out,
                )
            });
        let (digest, bytes, len, xattrs) = match read {
            Ok(x) => x,
            Err(e) => {
                let cut = r.file.is_some_and(|f| self.cut.contains(&f));
                if let Some((d, _, tmp)) = &single {
                    let _ = d.unlink(tmp);
                }
                let whole = state.is_none();
                if let Some(mut s) = state {
                    // A part past the cut of a cut copy is whole on the
                    // next tape: the join goes on without it.
                    s.bad |= !cut;
                    self.parts.insert(r.path.clone(), s);
                }
                if cut {
                    log::warn!(
                        "{} ({}): past the early warning in a cut copy: it is whole on the tape after this one ({e:#})",
                        r.path.display(),
                        place(r)
                    );
                } else if is_drive_error(&e) {
                    log::error!("{} ({}): {e:#}", r.path.display(), place(r));
                    self.unreadable += 1;
                    if whole {
                        self.unreadable_records.push(r.clone());
                    }
                } else {
                    self.refuse(r, format!("{e:#}"));
                }
                return;
            }
        };
        self.bytes_read += bytes;
        let digest_ok = match r.sha256 {
            Some(recorded) => recorded == digest,
            // Found by its header alone (an index line missing or damaged).
            None => {
                log::warn!(
                    "{} ({}): no recorded digest to check it against; restored as its header says",
                    r.path.display(),
                    place(r)
                );
                true
            }
        };
        if let Some(mut s) = state {
            if s.version != (r.size, r.mtime_ns) {
                log::error!(
                    "{} ({}): part {} is of another version than the parts before it",
                    r.path.display(),
                    place(r),
                    r.part.unwrap_or(0)
                );
                s.bad = true;
            }
            if !digest_ok {
                log::error!(
                    "{} ({}): part {}: SHA-256 {digest} read back, {} recorded",
                    r.path.display(),
                    place(r),
                    r.part.unwrap_or(0),
                    r.sha256.map(|d| d.to_string()).unwrap_or_default()
                );
                s.bad = true;
            }
            s.bytes += len;
            s.done.insert(r.part.unwrap_or(0));
            if s.xattrs.is_empty() {
                s.xattrs = xattrs;
            }
            if s.bytes < r.size {
                self.parts.insert(r.path.clone(), s);
                return; // more parts to come
            }
            let good = !s.bad;
            if !good {
                self.failed += 1;
            }
            if s.kept {
                let _ = s.dir.unlink(&join_note(&s.tmp));
            }
            self.done(r, &s.dir, s.out, &s.tmp, name, good, s.xattrs, digest);
            return;
        }
        let (d, out, tmp) = single.expect("a whole file has its own temporary");
        if !digest_ok {
            log::error!(
                "{} ({}): SHA-256 {digest} read back, {} recorded",
                r.path.display(),
                place(r),
                r.sha256.map(|d| d.to_string()).unwrap_or_default(),
            );
            self.failed += 1;
        }
        self.done(r, &d, out, &tmp, name, digest_ok, xattrs, digest);
    }

    /// A file read whole: its metadata through the open handle, then in
    /// place, or beside it as `<name>.reel-corrupt` when its digest did not
    /// match.
    #[allow(clippy::too_many_arguments)]
    fn done(
        &mut self,
        r: &Record,
        dir: &Dir,
        out: File,
        tmp: &OsStr,
        name: &OsStr,
        good: bool,
        xattrs: Vec<(Vec<u8>, Vec<u8>)>,
        _digest: Digest,
    ) {
        if let Err(e) = out.sync_all() {
            let _ = dir.unlink(tmp);
            return self.refuse(r, format!("writing {}: {e}", dir.path().display()));
        }
        for p in beneath::apply(out.as_fd(), &self.meta(r, xattrs)) {
            log::warn!("{}: {p}", r.path.display());
        }
        drop(out);
        let dest = if good {
            name.to_os_string()
        } else {
            beneath::with_suffix(name, ".reel-corrupt")
        };
        if !good {
            log::error!(
                "{}: kept as {}",
                r.path.display(),
                dir.path().join(&dest).display()
            );
        }
        let replace = self.overwrite || !good;
        if let Err(e) = dir.rename(tmp, &dest, replace) {
            let _ = dir.unlink(tmp);
            return self.refuse(
                r,
                match e.raw_os_error() {
                    Some(libc::EEXIST) => "exists (use --overwrite to replace it)".to_string(),
                    Some(libc::EISDIR) => {
                        "a directory of that name exists: not replaced".to_string()
                    }
                    _ => format!("renaming into {}: {e}", dir.path().join(&dest).display()),
                },
            );
        }
        if good {
            self.files += 1;
            self.bytes_restored += r.size;
            self.restored.insert(r.path.clone(), r.clone());
        }
    }
}
