//! A tape's own catalog, for disaster recovery without the catalog
//! directory (`reel-restore --from-tape`): the closing `REEL-TAPE.jsonl`
//! (the last tape file of a full tape) when there is one, else every
//! archive's `REEL-INDEX.jsonl`, read in one pass over the tape. The
//! records come back with their tape, tape file and block.

use std::io::Read as _;
use std::path::Path;

use crate::manifest::{Record, parse_record};
use crate::tape::Drive;
use crate::tape::label::Label;
use crate::tape::stream::{FileEnd, TapeFileReader};

/// Where the records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ClosingCatalog,
    ArchiveIndexes,
}

/// The member of `name` in the tape file under the head, if it has one.
fn member(drive: &mut dyn Drive, name: &str) -> anyhow::Result<(Option<Vec<u8>>, FileEnd, u64)> {
    let mut reader = TapeFileReader::new(drive);
    let mut found = None;
    let listing: anyhow::Result<()> = (|| {
        let mut archive = tar::Archive::new(&mut reader);
        for entry in archive.entries()? {
            let mut entry = entry?;
            if entry.path()? == Path::new(name) {
                let mut text = Vec::new();
                entry.read_to_end(&mut text)?;
                found = Some(text);
            }
        }
        Ok(())
    })();
    let blocks = reader.blocks();
    let end = reader.finish()?;
    if let Err(e) = listing {
        log::debug!("not read as tar: {e:#}");
    }
    Ok((found, end, blocks))
}

/// The records in a catalog or index text, with the tape files of the
/// archives it marks as cut by the early warning.
fn lines(text: &[u8]) -> (Vec<Record>, Vec<u64>) {
    let mut records = Vec::new();
    let mut cut = Vec::new();
    for l in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(l) else {
            continue;
        };
        if v["type"] == "archive" {
            if v["partial"] == true
                && let Some(f) = v["file"].as_u64()
            {
                cut.push(f);
            }
        } else if (v.get("path").is_some() || v.get("path_b64").is_some())
            && let Ok(r) = parse_record(l)
        {
            records.push(r);
        }
    }
    (records, cut)
}

/// What a tape says it holds.
pub struct TapeCatalog {
    pub records: Vec<Record>,
    /// Tape files holding a copy cut by the early warning: the members
    /// past the cut are listed but not there.
    pub cut: Vec<u64>,
    pub source: Source,
}

/// Every member the tape says it holds.
pub fn read(drive: &mut dyn Drive, label: &Label) -> anyhow::Result<TapeCatalog> {
    // The closing catalog is the last file: from the end of data, back over
    // two filemarks and forward over one.
    drive.end_of_data()?;
    if drive.back_filemarks(2).is_ok() && drive.forward_filemarks(1).is_ok() {
        let (text, _, _) = member(drive, "REEL-TAPE.jsonl")?;
        if let Some(text) = text {
            let (records, cut) = lines(&text);
            return Ok(TapeCatalog {
                records,
                cut,
                source: Source::ClosingCatalog,
            });
        }
    }
    // Never closed: each archive's index.
    let block_size = u64::from(label.block_size.max(1));
    drive.rewind()?;
    drive.forward_filemarks(1)?;
    let mut out = Vec::new();
    for file in 1u64.. {
        let start = drive.position()?;
        let (index, end, blocks) = member(drive, "REEL-INDEX.jsonl")?;
        if blocks == 0 && end == FileEnd::EndOfData {
            break;
        }
        for mut r in lines(index.as_deref().unwrap_or_default()).0 {
            r.tape = Some(label.label.clone());
            r.file = Some(file);
            r.block = Some(start + r.offset.unwrap_or(0) / block_size);
            out.push(r);
        }
        if end == FileEnd::EndOfData {
            break;
        }
    }
    Ok(TapeCatalog {
        records: out,
        cut: Vec::new(),
        source: Source::ArchiveIndexes,
    })
}
