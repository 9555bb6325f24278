//! Manifests: the JSON Lines files the stages hand each other (docs/spool.md §8–9).
//!
//! Format `manifest/1`: UTF-8, one JSON object per `\n`-terminated line. The
//! first line is a [`Header`]; every other line is a [`Record`] describing one
//! file-system entry. Several manifests may follow each other in one stream
//! (`reel-scan --out - | reel-stage --in -`): a line with a `"reel"` key starts
//! the next one.
//!
//! Paths are bytes on Linux. A path field (`path`, `link`, `cache`) whose bytes
//! are valid UTF-8 is written as a JSON string; otherwise it is written as the
//! standard, padded base64 of its bytes under the same name with `_b64`
//! appended (`path_b64`), and the plain field is left out. Readers accept
//! exactly one of the two. JSON escaping covers newlines, tabs, quotes and
//! backslashes, so any byte sequence round-trips exactly.
//!
//! Readers ignore fields they do not know (a newer writer may add some);
//! field meanings never change.

mod reader;
mod record;
mod writer;

pub use reader::{ManifestReader, read_header};
pub use record::parse_record;
pub(crate) use record::parse_record_line;
pub use record::{Digest, EntryType, Header, Kind, MANIFEST_FORMAT, Record};
pub use writer::ManifestWriter;

use std::fmt;

/// A manifest that cannot be read: names the file and the line.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: u64,
        message: String,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl ManifestError {
    /// A manifest that cannot be read is a data error, whichever way.
    pub fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Data
    }

    pub(crate) fn invalid(file: &str, line: u64, message: impl fmt::Display) -> Self {
        ManifestError::Invalid {
            file: file.to_string(),
            line,
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
