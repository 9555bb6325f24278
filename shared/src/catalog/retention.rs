//! Retention acted on (issue #23): the catalog as the planner
//! ([`super::lifecycle`]) sees it, the expiry records, and the recycling of
//! a tape (docs/catalog.md §8).
//!
//! ```text
//! <catalog>/expired.jsonl                 one line per version that expired
//! <catalog>/recycled/<LABEL>.<UUID>.json  a recycled tape's state, journal
//!                  .jsonl, .written.jsonl  and written log, as they were
//! ```
//!
//! Nothing is rewritten in place: an expiry is a line appended (and
//! fsync'd) to `expired.jsonl`; a recycled tape's files are moved, whole,
//! out of `tapes/` and `written/` under its old uuid, so the index (built
//! from `tapes/`) forgets what the relabelled tape no longer holds and the
//! history stays readable.
//!
//! Recycling, crash by crash: the tape's state file moves first (from then
//! on the catalog does not know the tape, and the record under
//! `recycled/` says it is being recycled), then its journal and written
//! log, then the tape gets a new label with a new uuid. A run that finds a
//! tape whose label the catalog does not know but `recycled/` does
//! finishes the moves and the relabelling ([`finish`]).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::CatalogError;
use super::lifecycle::{self, Catalogued, Copy, Plan, TapeFacts, VersionKey};
use super::tapes::{PlaceKind, TapeState};
use crate::config::Config;

pub fn expired_path(catalog: &Path) -> PathBuf {
    catalog.join("expired.jsonl")
}

fn recycled_dir(catalog: &Path) -> PathBuf {
    catalog.join("recycled")
}

/// Every verified copy of every version (one per journal line), and the
/// tapes, as the planner needs them.
pub fn state(catalog: &Path) -> Result<(Catalogued, Vec<TapeFacts>), CatalogError> {
    let mut versions = Catalogued::new();
    for journal in super::journal::journals(catalog)? {
        super::journal::read(&journal, |e| {
            let key = VersionKey::of(&e);
            let copy = Copy {
                tape: e.record.tape.clone().unwrap_or_default(),
                verified_ns: i128::from(crate::time::rfc3339_ns(&e.verified).unwrap_or(0)),
            };
            let copies = versions.entry(key).or_default();
            if !copies.iter().any(|c| c.tape == copy.tape) {
                copies.push(copy);
            }
            Ok(())
        })?;
    }
    let tapes = super::tapes::all(catalog)?
        .into_iter()
        .map(|t| TapeFacts {
            lost: t.place.as_ref().is_some_and(|p| p.kind == PlaceKind::Lost),
            suspect: t.state == TapeState::Suspect,
            retired: t.state == TapeState::Retired,
            label: t.label,
            pool: t.pool,
        })
        .collect();
    Ok((versions, tapes))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ExpiryLine {
    stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_b64: Option<String>,
    taken_ns: i64,
    expired: String,
}

/// The versions expired so far. A torn last line (a crash in the middle
/// of an append) is skipped; any other bad line is an error naming it.
pub fn expired(catalog: &Path) -> Result<BTreeSet<VersionKey>, CatalogError> {
    let path = expired_path(catalog);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(CatalogError::io(&path, e)),
    };
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut out = BTreeSet::new();
    for (n, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = |message: String| CatalogError::Line {
            file: path.display().to_string(),
            line: n as u64 + 1,
            message,
        };
        let l: ExpiryLine = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
        let bytes = match (l.path, l.path_b64) {
            (Some(p), None) => p.into_bytes(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| bad(format!("path_b64: {e}")))?,
            _ => return Err(bad("a line needs one of path and path_b64".into())),
        };
        out.insert(VersionKey {
            stream: l.stream,
            path: bytes,
            taken_ns: i128::from(l.taken_ns),
        });
    }
    Ok(out)
}

/// Append expiry records and fsync them (a torn last line is cut first).
fn record_expired(catalog: &Path, keys: &[VersionKey]) -> Result<(), CatalogError> {
    if keys.is_empty() {
        return Ok(());
    }
    let path = expired_path(catalog);
    std::fs::create_dir_all(catalog).map_err(|e| CatalogError::io(catalog, e))?;
    let lock_path = catalog.join("expired.lock");
    let _lock =
        crate::fsutil::lock_file(&lock_path, true).map_err(|e| CatalogError::io(&lock_path, e))?;
    let io = |e| CatalogError::io(&path, e);
    let existed = path.exists();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o644)
        .open(&path)
        .map_err(io)?;
    let text = std::fs::read(&path).map_err(io)?;
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        file.set_len(complete as u64).map_err(io)?;
    }
    let now = crate::time::Utc::now().rfc3339();
    let mut out = Vec::new();
    for k in keys {
        let (path, path_b64) = match std::str::from_utf8(&k.path) {
            Ok(p) => (Some(p.to_string()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&k.path)),
            ),
        };
        let line = ExpiryLine {
            stream: k.stream.clone(),
            path,
            path_b64,
            taken_ns: i64::try_from(k.taken_ns).unwrap_or(i64::MIN),
            expired: now.clone(),
        };
        out.extend(serde_json::to_vec(&line).expect("serializes"));
        out.push(b'\n');
    }
    file.write_all(&out).map_err(io)?;
    file.sync_data().map_err(io)?;
    if !existed {
        crate::fsutil::sync_dir(catalog).map_err(|e| CatalogError::io(catalog, e))?;
    }
    Ok(())
}

/// A plan and what it was made from.
pub struct Planned {
    pub plan: Plan,
    /// Every version, with its copies.
    pub versions: Catalogued,
    pub tapes: Vec<TapeFacts>,
    /// Every version expired: recorded before, and (after [`apply`]) now.
    pub expired: BTreeSet<VersionKey>,
}

/// The plan at `now_ns` under `config`'s policies, nothing recorded: what
/// `reel tapes plan` and `reel status` show.
pub fn planned(catalog: &Path, config: &Config, now_ns: i64) -> Result<Planned, CatalogError> {
    let (versions, tapes) = state(catalog)?;
    let expired = expired(catalog)?;
    let plan = lifecycle::plan(
        &versions,
        &tapes,
        &config.policies(),
        &lifecycle::Policy::forever(),
        &expired,
        i128::from(now_ns),
    );
    Ok(Planned {
        plan,
        versions,
        tapes,
        expired,
    })
}

/// The plan now, nothing recorded.
pub fn plan_now(catalog: &Path, config: &Config) -> Result<Plan, CatalogError> {
    planned(catalog, config, crate::time::now_ns()).map(|p| p.plan)
}

/// [`planned`], its expiries recorded (so that what expired stays
/// expired, whatever happens to the copies of newer versions later).
pub fn apply(catalog: &Path, config: &Config, now_ns: i64) -> Result<Planned, CatalogError> {
    let mut p = planned(catalog, config, now_ns)?;
    record_expired(catalog, &p.plan.expire)?;
    for k in &p.plan.expire {
        log::info!(
            "expired: {} {} (taken {})",
            k.stream,
            String::from_utf8_lossy(&k.path),
            crate::time::Utc::from_ns(k.taken_ns).rfc3339()
        );
    }
    p.expired.extend(p.plan.expire.iter().cloned());
    Ok(p)
}

/// The recyclable tapes of `pool` now (expiries recorded on the way), in
/// the order to use them: the one verified longest ago first.
pub fn recyclable(
    catalog: &Path,
    config: &Config,
    pool: &str,
) -> Result<Vec<String>, CatalogError> {
    let planned = apply(catalog, config, crate::time::now_ns())?;
    let mut out = Vec::new();
    for label in planned.plan.recyclable {
        if let Some(t) = super::tapes::Tape::load(catalog, &label)?
            && t.pool == pool
            && t.place.is_none()
            && matches!(t.state, TapeState::Full | TapeState::Writable)
        {
            out.push((t.verified.clone().unwrap_or_default(), label));
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, l)| l).collect())
}

fn recycled_files(catalog: &Path, label: &str, uuid: &str) -> [(PathBuf, PathBuf); 3] {
    let dir = recycled_dir(catalog);
    [
        (
            super::tapes::tape_path(catalog, label),
            dir.join(format!("{label}.{uuid}.json")),
        ),
        (
            super::journal::journal_path(catalog, label),
            dir.join(format!("{label}.{uuid}.jsonl")),
        ),
        (
            super::tapes::written_log_path(catalog, label),
            dir.join(format!("{label}.{uuid}.written.jsonl")),
        ),
    ]
}

/// Take tape `label` (uuid `uuid`) out of the catalog to be relabelled:
/// its state, journal and written log moved under `recycled/`, state
/// first. Idempotent: a rerun after a crash moves what is left.
pub fn retire_records(catalog: &Path, label: &str, uuid: &str) -> Result<(), CatalogError> {
    let dir = recycled_dir(catalog);
    std::fs::create_dir_all(&dir).map_err(|e| CatalogError::io(&dir, e))?;
    for (from, to) in recycled_files(catalog, label, uuid) {
        match std::fs::rename(&from, &to) {
            Ok(()) => {
                let parent = from.parent().expect("has a parent");
                crate::fsutil::sync_dir(&dir).map_err(|e| CatalogError::io(&dir, e))?;
                crate::fsutil::sync_dir(parent).map_err(|e| CatalogError::io(parent, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CatalogError::io(&from, e)),
        }
    }
    Ok(())
}

/// Whether tape `label` with uuid `uuid` was taken out of the catalog to
/// be recycled (its state moved under `recycled/`) and the catalog does
/// not know it by that name since.
pub fn being_recycled(catalog: &Path, label: &str, uuid: &str) -> bool {
    let [(state, moved), ..] = recycled_files(catalog, label, uuid);
    moved.exists() && !state.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_records_read_back_and_a_torn_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let keys = vec![
            VersionKey {
                stream: "home".into(),
                path: b"a/b".to_vec(),
                taken_ns: 5,
            },
            VersionKey {
                stream: "home".into(),
                path: vec![b'x', 0xff],
                taken_ns: -7,
            },
        ];
        record_expired(dir.path(), &keys[..1]).unwrap();
        // A crash in the middle of the next append.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(expired_path(dir.path()))
            .unwrap();
        f.write_all(b"{\"stream\":\"ho").unwrap();
        assert_eq!(expired(dir.path()).unwrap().len(), 1);
        record_expired(dir.path(), &keys[1..]).unwrap();
        let back: Vec<_> = expired(dir.path()).unwrap().into_iter().collect();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(back, want);
    }

    #[test]
    fn retiring_a_tapes_records_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path();
        std::fs::create_dir_all(c.join("tapes")).unwrap();
        std::fs::write(super::super::tapes::tape_path(c, "T1"), b"{}").unwrap();
        std::fs::write(super::super::journal::journal_path(c, "T1"), b"x\n").unwrap();
        assert!(!being_recycled(c, "T1", "u1"));
        retire_records(c, "T1", "u1").unwrap();
        assert!(being_recycled(c, "T1", "u1"));
        assert!(!being_recycled(c, "T1", "u2"));
        retire_records(c, "T1", "u1").unwrap();
        assert!(c.join("recycled/T1.u1.jsonl").exists());
        assert!(!super::super::journal::journal_path(c, "T1").exists());
    }
}
