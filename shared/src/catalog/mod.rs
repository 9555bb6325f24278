//! The catalog (docs/catalog.md): what is verified on which tape.
//!
//! ```text
//! <catalog>/tapes/<LABEL>.jsonl   append-only journal of verified members (the truth)
//! <catalog>/tapes/<LABEL>.json    one tape's state (reel-write, reel-verify)
//! <catalog>/written/<LABEL>.jsonl what reel-write put on the tape (its closing catalog)
//! <catalog>/index/current/        derived lookup files, rebuilt from the journals
//! ```
//!
//! Journals (`journal::append`: reel-verify, after reading members back,
//! and `reel catalog import`, after reading a whole tape), the
//! memory-mapped index `reel-scan` asks and its rebuild, tape states, and
//! the path search of `reel find` and `reel-restore` (`find`).

pub mod checked;
pub mod drives;
mod external_sort;
pub mod find;
pub mod from_tape;
pub mod generation;
pub mod index;
pub mod journal;
pub mod lifecycle;
pub mod names;
pub mod rebuild;
pub mod retention;
pub mod sqlite;
pub mod streams;
pub mod tapes;

use std::path::{Path, PathBuf};

pub use generation::{is_stale, key};
pub use index::{Index, Known};
pub use journal::Entry;
pub use rebuild::{RebuildStats, rebuild};

use crate::exit::Exit;

/// A catalog problem, naming the file (and line).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Line {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    /// A bad query: a pattern or a time that cannot be read.
    #[error("{0}")]
    Query(String),
    /// An index file that does not match its checksums (or is otherwise
    /// not what a rebuild wrote): rebuild it from the journals.
    #[error("the catalog index is damaged: {0}")]
    Damaged(String),
}

impl CatalogError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CatalogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            CatalogError::Io { source, .. } => Exit::of_io(source),
            CatalogError::Line { .. } | CatalogError::Invalid(_) => Exit::Data,
            CatalogError::Query(_) => Exit::Usage,
            CatalogError::Damaged(_) => Exit::Data,
        }
    }
}

/// Rebuild the index when its delta (the journal lines appended since it
/// was built) is over `DELTA_MAX`, a journal no longer matches what the
/// index covered, or the generation is of another format (an older reel's).
/// Returns what the rebuild did, if one happened.
pub fn refresh_index(catalog: &Path) -> Result<Option<RebuildStats>, CatalogError> {
    let other_format = catalog.join("index").join("current").exists()
        && generation::current_state(catalog).is_none();
    let delta = generation::delta_bytes(catalog)?;
    if !other_format && delta.is_some_and(|d| d <= index::DELTA_MAX) {
        return Ok(None);
    }
    log::info!(
        "the catalog index is {}: rebuilding {}",
        if other_format {
            "of another format, or its state is unreadable"
        } else {
            "far behind its journals"
        },
        catalog.join("index").display()
    );
    rebuild(catalog, rebuild::DEFAULT_CHUNK).map(Some)
}

/// Open the index for lookups. A damaged one is never trusted: it is
/// reported, rebuilt from the journals, and opened again.
pub fn open_checked(catalog: &Path) -> Result<Index, CatalogError> {
    match Index::open(catalog) {
        Err(CatalogError::Damaged(why)) => {
            log::warn!("the catalog index is damaged ({why}): rebuilding it from the journals");
            rebuild(catalog, rebuild::DEFAULT_CHUNK)?;
            Index::open(catalog)
        }
        other => other,
    }
}

/// `refresh_index`, then open the index with its delta.
pub fn open_index(catalog: &Path) -> Result<(Index, Option<RebuildStats>), CatalogError> {
    let rebuilt = refresh_index(catalog)?;
    Ok((open_checked(catalog)?, rebuilt))
}

#[cfg(test)]
mod tests;
