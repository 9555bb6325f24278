//! `reel catalog import`: rebuild a tape's journal from the tape itself, in
//! one pass. Each archive is read as tar; every member's data is hashed as
//! it goes by; the archive's own index (`REEL-INDEX.jsonl`, its last
//! member) says what each member should be, and the members whose digest
//! matches it are recorded — verified, as the catalog's invariant wants,
//! not merely listed. A copy cut by the early warning has no index: its
//! whole members are matched against the tape's closing catalog
//! (`REEL-TAPE.jsonl`, the last tape file) when the tape has one.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::catalog::journal::{self, Entry};
use crate::config::Config;
use crate::exit::Exit;
use crate::manifest::{Digest, EntryType, Record, parse_record};
use crate::tape::Drive;
use crate::tape::label::Label;
use crate::tape::session::{Choice, Session};
use crate::tape::stream::{FileEnd, TapeFileReader};
use sha2::{Digest as _, Sha256};

/// What one tape file held: the members' digests by data offset, the
/// index, and the stream named in REEL-ARCHIVE.txt.
#[derive(Default)]
struct Scanned {
    digests: HashMap<u64, Digest>,
    index: Vec<Record>,
    stream: Option<String>,
    /// The tape's closing catalog, when this file is it.
    tape_catalog: Option<Vec<u8>>,
}

/// Read one tape file as tar. What was read before an error (a cut copy
/// ends in the middle of a member) is kept: only whole members have a
/// digest.
fn scan_file(reader: &mut dyn std::io::Read, out: &mut Scanned) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(reader);
    let mut buf = vec![0u8; 1 << 20];
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let at = entry.raw_file_position();
        if path == Path::new("REEL-TAPE.jsonl") {
            let mut text = Vec::new();
            entry.read_to_end(&mut text)?;
            out.tape_catalog = Some(text);
            continue;
        }
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
            let size = entry.size();
            let mut sha = Sha256::new();
            let mut got = 0u64;
            loop {
                let n = entry.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                sha.update(&buf[..n]);
                got += n as u64;
            }
            // A member cut short by the end of the tape file has no digest.
            if got == size {
                out.digests.insert(at, Digest(sha.finalize().into()));
            }
        }
    }
    Ok(())
}

/// The members the closing catalog lists, by tape file, with each
/// archive's stream.
fn closing_records(text: &[u8]) -> HashMap<u64, (String, Vec<Record>)> {
    let mut out: HashMap<u64, (String, Vec<Record>)> = HashMap::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if v["type"] == "archive" {
            if let Some(f) = v["file"].as_u64() {
                let stream = v["stream"].as_str().unwrap_or("").to_string();
                out.entry(f).or_default().0 = stream;
            }
        } else if (v.get("path").is_some() || v.get("path_b64").is_some())
            && let Ok(r) = parse_record(line)
            && let Some(f) = r.file
        {
            out.entry(f).or_default().1.push(r);
        }
    }
    out
}

/// The records of `index` whose data read back as the index says; the
/// others are logged and counted in `bad`. A hard link's data is its
/// target's.
fn matching(
    index: Vec<Record>,
    digests: &HashMap<u64, Digest>,
    what: &str,
    bad: &mut u64,
) -> Vec<Record> {
    let data_at: HashMap<PathBuf, u64> = index
        .iter()
        .filter(|r| r.entry == EntryType::File)
        .filter_map(|r| Some((r.path.clone(), r.data_offset?)))
        .collect();
    let mut out = Vec::new();
    for r in index {
        let data = match (&r.entry, &r.link) {
            (EntryType::Hardlink, Some(target)) => data_at.get(target).copied(),
            _ => r.data_offset,
        };
        let ok = match (data, r.sha256) {
            (Some(d), Some(want)) => digests.get(&d) == Some(&want),
            // No data: its header was read; nothing to hash.
            (Some(_), None) => true,
            _ => false,
        };
        if ok {
            out.push(r);
        } else {
            log::error!("{}: {what}: does not match its index", r.path.display());
            *bad += 1;
        }
    }
    out
}

/// Open the drive (`-f`, `--drive`, `$TAPE` or the first `[[drive]]`), read
/// the label of the tape in it, and import that tape.
pub fn open_and_run(
    config: &Config,
    device: Option<&str>,
    drive: Option<&str>,
) -> anyhow::Result<Exit> {
    let tape = std::env::var("TAPE").unwrap_or_default();
    let choice = Choice {
        device,
        name: drive,
        env: Some(("TAPE", &tape)),
    };
    let session = Session::new(Some(config), choice, std::time::Duration::from_secs(300))?;
    let (mut d, label) = session.open_labelled()?;
    run(config, d.as_mut(), &label)
}

/// Import the labelled tape in `drive`: a journal of every member that
/// matches its archive's index.
pub fn run(config: &Config, drive: &mut dyn Drive, label: &Label) -> anyhow::Result<Exit> {
    let catalog = &config.paths.catalog;
    let mut seen = journal::recorded(catalog, &label.label)?;
    let block_size = u64::from(label.block_size.max(1));
    drive.rewind()?;
    drive.forward_filemarks(1)?;
    let (mut recorded, mut skipped, mut bad) = (0u64, 0u64, 0u64);
    // Cut copies, held until the closing catalog says what they hold:
    // (file, start block, digests of their whole members).
    let mut cut: Vec<(u64, u64, HashMap<u64, Digest>)> = Vec::new();
    let mut closing: Option<Vec<u8>> = None;
    let identities = crate::verify::identities(config);
    let mut record = |file: u64, start: u64, sealed: bool, stream: &str, records: Vec<Record>| {
        let now = crate::time::Utc::now().rfc3339();
        let mut entries = Vec::new();
        for mut rec in records {
            if seen.contains(&(file, rec.path.clone())) {
                skipped += 1;
                continue;
            }
            rec.tape = Some(label.label.clone());
            rec.file = Some(file);
            // A sealed archive's members are found from its first block.
            rec.block = Some(if sealed {
                start
            } else {
                start + rec.offset.unwrap_or(0) / block_size
            });
            seen.insert((file, rec.path.clone()));
            entries.push(Entry {
                stream: stream.to_string(),
                verified: now.clone(),
                record: rec,
            });
        }
        recorded += entries.len() as u64;
        journal::append(catalog, &label.label, &entries)?;
        log::info!("file {file}: {} member(s) recorded", entries.len());
        anyhow::Ok(())
    };
    for file in 1u64.. {
        let start = drive.position()?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, TapeFileReader::new(drive));
        let mut s = Scanned::default();
        // A sealed archive (age) is read through the host's identity.
        let sealed =
            std::io::BufRead::fill_buf(&mut reader).is_ok_and(crate::archive::sealed::is_sealed);
        let scanned = match (sealed, identities.as_ref()) {
            (false, _) => scan_file(&mut reader, &mut s),
            (true, Some(ids)) => match ids.open(&mut reader) {
                Ok(mut plain) => scan_file(&mut plain, &mut s),
                Err(e) => Err(anyhow::anyhow!(
                    "a sealed archive (age) that cannot be opened here: {e}"
                )),
            },
            (true, None) => Err(anyhow::anyhow!(
                "a sealed archive (age) and no identity to open it: set `identity` in its [[archive_key]]"
            )),
        };
        if sealed && let Err(e) = &scanned {
            bad += 1;
            log::error!("file {file}: {e:#}");
        }
        let reader = reader.into_inner();
        let blocks = reader.blocks();
        let end = reader.finish()?;
        if blocks == 0 && end == FileEnd::EndOfData {
            break;
        }
        if let Some(text) = s.tape_catalog.take() {
            closing = Some(text);
        } else if !s.index.is_empty() {
            let stream = s.stream.clone().unwrap_or_default();
            let what = format!("tape {} file {file}", label.label);
            let good = matching(std::mem::take(&mut s.index), &s.digests, &what, &mut bad);
            record(file, start, sealed, &stream, good)?;
        } else if !s.digests.is_empty() {
            cut.push((file, start, s.digests));
        } else if let Err(e) = scanned {
            log::warn!("file {file}: not read as a reel archive: {e:#}");
        }
        if end == FileEnd::EndOfData {
            break;
        }
    }
    if !cut.is_empty() {
        let Some(text) = closing else {
            log::warn!(
                "{} tape file(s) without an index (cut copies) and no closing REEL-TAPE.jsonl: their members are not recorded",
                cut.len()
            );
            return finish(&label.label, recorded, skipped, bad);
        };
        let mut listed = closing_records(&text);
        for (file, start, digests) in cut {
            let Some((stream, records)) = listed.remove(&file) else {
                continue;
            };
            // Only what the cut copy holds whole counts.
            let held: Vec<Record> = records
                .into_iter()
                .filter(|r| match (&r.entry, r.data_offset) {
                    (EntryType::File, Some(d)) => digests.contains_key(&d),
                    (EntryType::Hardlink, _) => false,
                    (_, Some(d)) => digests.keys().any(|&k| k > d),
                    _ => false,
                })
                .collect();
            let what = format!("tape {} file {file}", label.label);
            let good = matching(held, &digests, &what, &mut bad);
            record(file, start, false, &stream, good)?;
        }
    }
    finish(&label.label, recorded, skipped, bad)
}

fn finish(label: &str, recorded: u64, skipped: u64, bad: u64) -> anyhow::Result<Exit> {
    log::info!(
        "tape {label}: {recorded} member(s) recorded, {skipped} already in the journal, {bad} bad"
    );
    Ok(if bad > 0 { Exit::Data } else { Exit::Ok })
}
