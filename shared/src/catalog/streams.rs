//! `<catalog>/streams.json`: when each stream last had members verified
//! (RFC 3339), for the metrics' `reel_stream_last_verified_timestamp_seconds`.
//! A convenience, not the truth: the journals say the same, slowly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::CatalogError;

fn path(catalog: &Path) -> PathBuf {
    catalog.join("streams.json")
}

/// Every stream's last verification, as recorded.
pub fn last_verified(catalog: &Path) -> BTreeMap<String, String> {
    std::fs::read(path(catalog))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Record that `stream` had members verified at `when` (under a lock:
/// two drives verify at once).
pub fn verified(catalog: &Path, stream: &str, when: &str) -> Result<(), CatalogError> {
    let lock = catalog.join("streams.lock");
    let _held = crate::fsutil::lock_file(&lock, true).map_err(|e| CatalogError::io(&lock, e))?;
    let mut all = last_verified(catalog);
    if all.get(stream).is_some_and(|t| t.as_str() >= when) {
        return Ok(());
    }
    all.insert(stream.to_string(), when.to_string());
    let file = path(catalog);
    crate::fsutil::write_atomic(&file, &serde_json::to_vec_pretty(&all).expect("serializes"))
        .map_err(|e| CatalogError::io(&file, e))
}
