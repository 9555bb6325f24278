//! `reel catalog import`: rebuild a tape's journal from the tape itself, in
//! one pass. Each archive is read as tar; every member's data is hashed as
//! it goes by; the archive's own index (`REEL-INDEX.jsonl`, its last
//! member) says what each member should be, and the members whose digest
//! matches it are recorded — verified, as the catalog's invariant wants,
//! not merely listed. A tape file without an index (a copy cut by the early
//! warning, the label, the closing `REEL-TAPE.jsonl`) records nothing.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use reel_shared::catalog::journal::{self, Entry};
use reel_shared::config::Config;
use reel_shared::exit::{Exit, ExitError};
use reel_shared::manifest::{Digest, EntryType, Record, parse_record};
use reel_shared::tape::Drive;
use reel_shared::tape::label::{self, Identity};
use reel_shared::tape::stream::{FileEnd, TapeFileReader};
use sha2::{Digest as _, Sha256};

/// What one tape file held: the members' digests by data offset, the
/// index, and the stream named in REEL-ARCHIVE.txt.
#[derive(Default)]
struct Scanned {
    digests: HashMap<u64, Digest>,
    index: Vec<Record>,
    stream: Option<String>,
}

fn scan_file(reader: &mut TapeFileReader<'_>) -> anyhow::Result<Scanned> {
    let mut out = Scanned::default();
    let mut archive = tar::Archive::new(reader);
    let mut buf = vec![0u8; 1 << 20];
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let at = entry.raw_file_position();
        if path == Path::new("REEL-INDEX.jsonl") || path == Path::new("REEL-ARCHIVE.txt") {
            let mut text = Vec::new();
            entry.read_to_end(&mut text)?;
            if path == Path::new("REEL-ARCHIVE.txt") {
                out.stream = String::from_utf8_lossy(&text)
                    .lines()
                    .find_map(|l| l.strip_prefix("stream").map(|s| s.trim().to_string()));
            } else {
                for (n, line) in text.split(|&b| b == b'\n').enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    let r = parse_record(line)
                        .map_err(|e| anyhow::anyhow!("REEL-INDEX.jsonl line {}: {e}", n + 1))?;
                    out.index.push(r);
                }
            }
            continue;
        }
        if entry.header().entry_type().is_file() {
            let mut sha = Sha256::new();
            loop {
                let n = entry.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
            }
            out.digests.insert(at, Digest(sha.finalize().into()));
        }
    }
    Ok(out)
}

pub fn run(config: &Config, drive: &mut dyn Drive) -> anyhow::Result<Exit> {
    let label = match label::read_label(drive)? {
        Identity::Reel(l) => l,
        other => {
            return Err(
                ExitError::new(Exit::Unavailable, format!("not a reel tape: {other:?}")).into(),
            );
        }
    };
    let catalog = &config.paths.catalog;
    let path = journal::journal_path(catalog, &label.label);
    let mut seen: HashSet<(u64, PathBuf)> = HashSet::new();
    if path.exists() {
        journal::read(&path, |e| {
            if let Some(f) = e.record.file {
                seen.insert((f, e.record.path));
            }
            Ok(())
        })?;
    }
    let block_size = u64::from(label.block_size.max(1));
    drive.rewind()?;
    drive.forward_filemarks(1)?;
    let (mut recorded, mut skipped, mut bad) = (0u64, 0u64, 0u64);
    for file in 1u64.. {
        let start = drive.position()?;
        let mut reader = TapeFileReader::new(drive);
        let scanned = scan_file(&mut reader);
        let blocks = reader.blocks();
        let end = reader.finish()?;
        if blocks == 0 && end == FileEnd::EndOfData {
            break;
        }
        match scanned {
            Ok(s) if !s.index.is_empty() => {
                let stream = s.stream.clone().unwrap_or_default();
                let now = reel_shared::time::Utc::now().rfc3339();
                let mut entries = Vec::new();
                // A hard link's data is its target's.
                let data_at: HashMap<PathBuf, u64> = s
                    .index
                    .iter()
                    .filter(|r| r.entry == EntryType::File)
                    .filter_map(|r| Some((r.path.clone(), r.data_offset?)))
                    .collect();
                for r in s.index {
                    let data = match (&r.entry, &r.link) {
                        (EntryType::Hardlink, Some(target)) => data_at.get(target).copied(),
                        _ => r.data_offset,
                    };
                    let matches = match (data, r.sha256) {
                        (Some(d), Some(want)) => s.digests.get(&d) == Some(&want),
                        // No data: its header was read; nothing to hash.
                        (Some(_), None) => true,
                        _ => false,
                    };
                    if !matches {
                        log::error!(
                            "{}: tape {} file {file}: does not match its index",
                            r.path.display(),
                            label.label
                        );
                        bad += 1;
                        continue;
                    }
                    if seen.contains(&(file, r.path.clone())) {
                        skipped += 1;
                        continue;
                    }
                    let mut rec = r;
                    rec.tape = Some(label.label.clone());
                    rec.file = Some(file);
                    rec.block = Some(start + rec.offset.unwrap_or(0) / block_size);
                    seen.insert((file, rec.path.clone()));
                    entries.push(Entry {
                        stream: stream.clone(),
                        verified: now.clone(),
                        record: rec,
                    });
                }
                recorded += entries.len() as u64;
                journal::append(catalog, &label.label, &entries)?;
                log::info!("file {file}: {} member(s) recorded", entries.len());
            }
            Ok(_) => {
                log::info!("file {file}: no archive index (a cut copy, or the tape's catalog)")
            }
            Err(e) => log::warn!("file {file}: not read as a reel archive: {e:#}"),
        }
        if end == FileEnd::EndOfData {
            break;
        }
    }
    log::info!(
        "tape {}: {recorded} member(s) recorded, {skipped} already in the journal, {bad} bad",
        label.label
    );
    Ok(if bad > 0 { Exit::Data } else { Exit::Ok })
}
