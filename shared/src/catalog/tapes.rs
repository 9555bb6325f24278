//! One tape's state, `<catalog>/tapes/<LABEL>.json`: what reel-write knows
//! of a tape between runs — how many files it holds, where its end of data
//! is (invariant 6: appending starts only where the catalog says the data
//! ends), whether it is full or suspect.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CatalogError;
use crate::fsutil::write_atomic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TapeState {
    #[default]
    Writable,
    Full,
    /// A read or write error was seen: do not append, verify with care.
    Suspect,
    Retired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tape {
    pub label: String,
    pub uuid: String,
    pub pool: String,
    pub state: TapeState,
    /// Tape files on it, the label included: the next archive is file `files`.
    pub files: u64,
    /// Logical block of the end of data.
    pub eod: u64,
    /// Bytes of archives written.
    pub bytes: u64,
    /// Bytes of members reel-verify recorded as verified on it (each
    /// member once): for the metrics.
    #[serde(default)]
    pub verified_bytes: u64,
    /// An archive is being written from this block: set before the first
    /// block goes out, cleared when its filemark is down. Found set, it
    /// names a run that died mid-archive; what follows it on tape is that
    /// unfinished write, which the next run writes over.
    #[serde(default)]
    pub writing: Option<u64>,
    /// When reel-verify last read an archive of it back (RFC 3339), and
    /// what it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verify: Option<String>,
    /// What the cartridge's memory said when reel-write last ended a run
    /// on it (loads, lifetime bytes), when the drive tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cartridge: Option<crate::scsi::mam::CartridgeMemory>,
    /// The volume statistics the drive gave at the tape's last load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<crate::scsi::volume::VolumeStatistics>,
    /// The TapeAlert flags up at its last load, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
    /// Why its health made it suspect (rising errors, a media flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<String>,
    /// Why it was retired by its pool's limits (loads, errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
    /// The fingerprints of the recipients of the sealed (age) archives on
    /// it; empty when none is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_for: Vec<String>,
    /// The fingerprint of the drive key its archives are encrypted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive_key: Option<String>,
    /// Where it is when that is not in the library: on its way out, sent
    /// offsite, lost. Absent: in the library (its slot or drive is the
    /// changer's to say), or wherever the operator keeps a tape without a
    /// changer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    pub updated: String,
}

/// A tape away from the library, or on its way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub kind: PlaceKind,
    /// Since when (RFC 3339).
    pub since: String,
    /// The operator's note: which vault, which box, which courier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaceKind {
    /// In an import/export slot, put there by `reel tapes export`: offsite
    /// once it is taken out.
    Exporting,
    Offsite,
    /// Nobody knows where: what only it holds must be written again.
    Lost,
}

impl Place {
    pub fn now(kind: PlaceKind, note: Option<String>) -> Place {
        Place {
            kind,
            since: crate::time::Utc::now().rfc3339(),
            note,
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            PlaceKind::Exporting => "exporting",
            PlaceKind::Offsite => "offsite",
            PlaceKind::Lost => "lost",
        };
        match &self.note {
            Some(n) => write!(f, "{kind} ({n})"),
            None => f.write_str(kind),
        }
    }
}

/// Every tape the catalog knows, sorted by label.
pub fn all(catalog: &Path) -> Result<Vec<Tape>, CatalogError> {
    let dir = catalog.join("tapes");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(CatalogError::io(&dir, e)),
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "json")
            && let Some(label) = path.file_stem().and_then(|s| s.to_str())
            && let Some(t) = Tape::load(catalog, label)?
        {
            out.push(t);
        }
    }
    out.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(out)
}

pub fn tape_path(catalog: &Path, label: &str) -> PathBuf {
    catalog.join("tapes").join(format!("{label}.json"))
}

/// A label is a file name in the catalog: one that would name a path
/// elsewhere is refused before any file is touched.
pub(super) fn checked(label: &str) -> Result<&str, CatalogError> {
    crate::tape::label::check_label(label)
        .map(|()| label)
        .map_err(|e| CatalogError::Invalid(e.to_string()))
}

impl Tape {
    pub fn load(catalog: &Path, label: &str) -> Result<Option<Tape>, CatalogError> {
        let path = tape_path(catalog, checked(label)?);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CatalogError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CatalogError::io(&path, e)),
        }
    }

    pub fn save(&mut self, catalog: &Path) -> Result<(), CatalogError> {
        self.updated = crate::time::Utc::now().rfc3339();
        let path = tape_path(catalog, checked(&self.label)?);
        let dir = path.parent().expect("has a parent");
        std::fs::create_dir_all(dir).map_err(|e| CatalogError::io(dir, e))?;
        write_atomic(&path, &serde_json::to_vec_pretty(self).expect("serializes"))
            .map_err(|e| CatalogError::io(&path, e))
    }
}

/// `<catalog>/written/<LABEL>.jsonl`: what reel-write put on the tape
/// (every archive, whole or cut, with its members), appended as each
/// archive is published. Not the truth about the tape — the verified
/// journal is — but what the tape's closing catalog (`REEL-TAPE.jsonl`) is
/// made of.
pub fn written_log_path(catalog: &Path, label: &str) -> PathBuf {
    catalog.join("written").join(format!("{label}.jsonl"))
}

/// Where each tape file of `label` starts (its first block), from the
/// archive lines of its written log; empty when there is none.
pub fn file_starts(catalog: &Path, label: &str) -> std::collections::HashMap<u64, u64> {
    let text = std::fs::read_to_string(written_log_path(catalog, label)).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<ArchiveOnTape>(l).ok())
        .filter(|a| a.kind == "archive")
        .map(|a| (a.file, a.start_block))
        .collect()
}

/// One archive's line in the written log and in `REEL-TAPE.jsonl`; its
/// members follow it as manifest records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveOnTape {
    /// Always "archive": tells this line from the member records.
    #[serde(rename = "type")]
    pub kind: String,
    pub archive: String,
    pub stream: String,
    /// Tape file number and its first logical block.
    pub file: u64,
    pub start_block: u64,
    pub bytes: u64,
    /// The copy was cut by the early warning.
    pub partial: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub members: u64,
    /// The fingerprints of the recipients a sealed (age) archive is
    /// encrypted for; empty for an archive in the clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

/// Append an archive and its member records to the tape's written log,
/// durably.
pub fn log_written(
    catalog: &Path,
    label: &str,
    archive: &ArchiveOnTape,
    members: &[crate::manifest::Record],
) -> Result<(), CatalogError> {
    use std::io::Write;
    let path = written_log_path(catalog, checked(label)?);
    let dir = path.parent().expect("has a parent");
    std::fs::create_dir_all(dir).map_err(|e| CatalogError::io(dir, e))?;
    let mut text = serde_json::to_vec(archive).expect("serializes");
    text.push(b'\n');
    for r in members {
        serde_json::to_writer(&mut text, r).expect("serializes");
        text.push(b'\n');
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&text)?;
            f.sync_data()
        })
        .map_err(|e| CatalogError::io(&path, e))
}

/// The content of `REEL-TAPE.jsonl` for `tape`: a header line, then every
/// archive of the written log with its members, in tape order. An archive
/// logged twice for one tape file (a run that died after publishing) is
/// kept once, the last time.
pub fn closing_catalog(catalog: &Path, tape: &Tape) -> Result<Vec<u8>, CatalogError> {
    let path = written_log_path(catalog, &tape.label);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(CatalogError::io(&path, e)),
    };
    // Tape file → its archive line and member lines.
    let mut files: std::collections::BTreeMap<u64, Vec<&[u8]>> = Default::default();
    let mut current: Option<u64> = None;
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(a) = serde_json::from_slice::<ArchiveOnTape>(line)
            && a.kind == "archive"
        {
            files.insert(a.file, vec![line]);
            current = Some(a.file);
        } else if let Some(lines) = current.and_then(|f| files.get_mut(&f)) {
            lines.push(line);
        }
    }
    let header = serde_json::json!({
        "format": "reel-tape/1",
        "label": tape.label,
        "uuid": tape.uuid,
        "pool": tape.pool,
        "archives": files.len(),
        "closed": crate::time::Utc::now().rfc3339(),
    });
    let mut out = serde_json::to_vec(&header).expect("serializes");
    out.push(b'\n');
    for line in files.values().flatten() {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    Ok(out)
}
