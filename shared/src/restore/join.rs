//! Joining a split file from its parts: one temporary held open, each part
//! written at its offset; with `--from-tape` (one tape a run) the join is
//! kept between runs under a name fixed by the path and version, with a
//! note of the parts it holds.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::beneath::{self, Dir, NodeKind};
use crate::manifest::{EntryType, Record};

use super::restorer::Restorer;

/// A split file being joined from its parts, into a temporary held open.
pub(super) struct PartState {
    pub(super) bytes: u64,
    /// The part numbers joined (this run or, kept, an earlier one).
    pub(super) done: std::collections::BTreeSet<u32>,
    pub(super) bad: bool,
    /// (size, mtime) every part must share: one version's parts.
    pub(super) version: (u64, i64),
    pub(super) out: File,
    pub(super) dir: Dir,
    pub(super) tmp: OsString,
    /// `tmp` is the kept join file of an earlier run.
    pub(super) kept: bool,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The name of the file a split file is joined in, kept between runs (one
/// per tape) until every part is there: fixed by the path and version, so
/// that the next run finds it.
fn join_name(r: &Record) -> OsString {
    let mut key = r.path.as_os_str().as_bytes().to_vec();
    key.extend_from_slice(&r.size.to_le_bytes());
    key.extend_from_slice(&r.mtime_ns.to_le_bytes());
    OsString::from(format!(
        ".reel-join-{:016x}",
        xxhash_rust::xxh3::xxh3_64(&key)
    ))
}

/// Beside a kept join file: which file and version it is, and the parts in.
pub(super) fn join_note(join: &OsStr) -> OsString {
    beneath::with_suffix(join, ".json")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Restorer {
    /// Keep a split file's joined parts for the run with the next tape:
    /// under its join name, with a note of its version and parts.
    pub(super) fn keep_join(&self, path: &Path, s: PartState) -> anyhow::Result<PathBuf> {
        let join = self.join_for(path, s.version);
        s.out.sync_all()?;
        if s.tmp != join {
            s.dir.rename(&s.tmp, &join, true)?;
        }
        let note = serde_json::json!({
            "reel": "join/1",
            "path_hex": hex(path.as_os_str().as_bytes()),
            "size": s.version.0,
            "mtime_ns": s.version.1,
            "parts": s.done,
            "bytes": s.bytes,
        });
        s.dir
            .write_replace(&join_note(&join), note.to_string().as_bytes())?;
        Ok(s.dir.path().join(join))
    }

    fn join_for(&self, path: &Path, (size, mtime_ns): (u64, i64)) -> OsString {
        let mut r = Record::new(path, EntryType::File);
        (r.size, r.mtime_ns) = (size, mtime_ns);
        join_name(&r)
    }

    /// The join of a split file's parts: the one an earlier run kept, when
    /// keeping joins and its note is of this very file and version, else
    /// a new temporary.
    pub(super) fn start_join(&self, r: &Record, dir: Dir) -> std::io::Result<PartState> {
        let version = (r.size, r.mtime_ns);
        let join = join_name(r);
        let mut state = PartState {
            bytes: 0,
            done: Default::default(),
            bad: false,
            version,
            out: File::open("/dev/null")?,
            dir,
            tmp: OsString::new(),
            kept: false,
            xattrs: Vec::new(),
        };
        if self.keep_joins
            && state.dir.kind(&join)? == Some(NodeKind::File)
            && let Ok(text) = state.dir.read_small(&join_note(&join), 1 << 20)
            && let Ok(note) = serde_json::from_slice::<serde_json::Value>(&text)
            && note["reel"] == "join/1"
            && note["path_hex"] == hex(r.path.as_os_str().as_bytes()).as_str()
            && note["size"] == r.size
            && note["mtime_ns"] == r.mtime_ns
        {
            state.out = state.dir.open_rw(&join)?;
            state.done = note["parts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
                .collect();
            state.bytes = note["bytes"].as_u64().unwrap_or(0);
            state.tmp = join;
            state.kept = true;
            log::info!(
                "{}: joining on with the part(s) {:?} kept by an earlier run",
                r.path.display(),
                state.done
            );
            return Ok(state);
        }
        let (out, tmp) = state.dir.create_temp()?;
        (state.out, state.tmp) = (out, tmp);
        Ok(state)
    }
}
