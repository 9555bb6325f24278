//! What an index generation is on disk, shared by its reader (`index.rs`)
//! and its builder (`rebuild.rs`), neither of which knows the other: where
//! generations live, `state.json` (what a generation covers of each
//! journal, and so whether it is stale), and the layout constants and key
//! of `paths.idx` (documented in `index.rs`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128_with_seed};

use super::CatalogError;
use super::journal;

pub const INDEX_MAGIC: &[u8; 8] = b"REELIDX1";
pub const HEADER: usize = 32;
pub const ENTRY: usize = 32;

/// The lookup key of a path in a stream.
pub fn key(stream: &str, path: &[u8]) -> u128 {
    xxh3_128_with_seed(path, xxh3_64(stream.as_bytes()))
}

/// Bucket bits for `n` entries: about 16 entries per bucket.
pub fn bucket_bits(n: u64) -> u32 {
    (64 - n.leading_zeros()).saturating_sub(4).clamp(4, 24)
}

/// What a generation covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub format: String,
    /// Journal file name → bytes of complete lines indexed.
    pub journals: BTreeMap<String, u64>,
    pub paths: u64,
    pub built: String,
    /// The journals by the ids the path index (`names.idx`) uses.
    #[serde(default)]
    pub journal_ids: Vec<String>,
}

pub fn index_dir(catalog: &Path) -> PathBuf {
    catalog.join("index")
}

/// The format of an index generation this reel builds and reads: `/2`
/// added the checksums and orders versions by when they were taken.
pub const INDEX_FORMAT: &str = "reel-index/2";

/// The generation `index/current` points at, with its state; none when it
/// is of another format (an older reel's: rebuilt like a missing one).
pub fn current_state(catalog: &Path) -> Option<State> {
    let text = fs::read_to_string(index_dir(catalog).join("current/state.json")).ok()?;
    serde_json::from_str::<State>(&text)
        .ok()
        .filter(|s| s.format == INDEX_FORMAT)
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Journal bytes the current generation does not cover (the delta), or
/// `None` when a journal no longer matches what it covered (shorter, or
/// gone): then only a rebuild is right.
pub fn delta_bytes(catalog: &Path) -> Result<Option<u64>, CatalogError> {
    let state = current_state(catalog).unwrap_or_default();
    let journals = journal::journals(catalog)?;
    let names: std::collections::BTreeSet<String> = journals.iter().map(|p| file_name(p)).collect();
    if state.journals.keys().any(|k| !names.contains(k)) {
        return Ok(None);
    }
    let mut total = 0;
    for path in journals {
        let len = fs::metadata(&path)
            .map_err(|e| CatalogError::io(&path, e))?
            .len();
        let covered = state.journals.get(&file_name(&path)).copied().unwrap_or(0);
        if len < covered {
            return Ok(None);
        }
        total += len - covered;
    }
    Ok(Some(total))
}

/// True when the journals hold entries the current index does not cover
/// (or there is no index while there are journals).
pub fn is_stale(catalog: &Path) -> Result<bool, CatalogError> {
    let state = current_state(catalog).unwrap_or_default();
    let journals = journal::journals(catalog)?;
    if journals.len() != state.journals.len() {
        return Ok(true);
    }
    for path in journals {
        let name = file_name(&path);
        let len = fs::metadata(&path)
            .map_err(|e| CatalogError::io(&path, e))?
            .len();
        if state.journals.get(&name) != Some(&len) {
            return Ok(true);
        }
    }
    Ok(false)
}
