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
    /// An archive is being written from this block: set before the first
    /// block goes out, cleared when its filemark is down. Found set, it
    /// names a run that died mid-archive; what follows it on tape is that
    /// unfinished write, which the next run writes over.
    #[serde(default)]
    pub writing: Option<u64>,
    pub updated: String,
}

pub fn tape_path(catalog: &Path, label: &str) -> PathBuf {
    catalog.join("tapes").join(format!("{label}.json"))
}

impl Tape {
    pub fn load(catalog: &Path, label: &str) -> Result<Option<Tape>, CatalogError> {
        let path = tape_path(catalog, label);
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
        let path = tape_path(catalog, &self.label);
        let dir = path.parent().expect("has a parent");
        std::fs::create_dir_all(dir).map_err(|e| CatalogError::io(dir, e))?;
        write_atomic(&path, &serde_json::to_vec_pretty(self).expect("serializes"))
            .map_err(|e| CatalogError::io(&path, e))
    }
}
