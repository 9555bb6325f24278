//! The spool side of a write run: a packed item opened (its archive only
//! from the cache), and the `written` item published with where every
//! member went on tape, logged in the tape's catalog.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::catalog::tapes::{ArchiveOnTape, log_written};
use crate::manifest::{Digest, Header, Kind, Record};
use crate::spool::{Claim, Output};
use crate::tape::label::Label;

/// Where an archive went on tape.
pub(super) struct Placement<'a> {
    pub(super) tape: &'a Label,
    pub(super) file: u64,
    pub(super) start: u64,
    pub(super) block_size: usize,
    /// The copy was cut by the early warning.
    pub(super) partial: bool,
    /// The SHA-256 of the archive as streamed (a whole copy only).
    pub(super) sha256: Option<Digest>,
    /// Bytes that went to tape.
    pub(super) bytes: u64,
    /// The fingerprints of the recipients the archive was sealed for
    /// (none: in the clear).
    pub(super) sealed_for: &'a [String],
}

/// Publish the `written` item of an archive placed at `p` (its members'
/// tape, file and block) and log it in the tape's catalog.
pub(super) fn publish(
    output: &mut Output,
    catalog: &Path,
    header: &Header,
    id: &str,
    records: &[Record],
    p: &Placement,
) -> anyhow::Result<()> {
    let (tape, file, start, block_size, partial) =
        (p.tape, p.file, p.start, p.block_size, p.partial);
    let mut h = Header::new(Kind::Written, &header.stream, id);
    h.extra = header.extra.clone();
    h.extra.insert("tape".into(), tape.label.clone().into());
    h.extra.insert("tape_uuid".into(), tape.uuid.clone().into());
    h.extra.insert("file".into(), file.into());
    h.extra.insert("start_block".into(), start.into());
    h.extra.insert("tape_block_size".into(), block_size.into());
    h.extra.insert("partial".into(), partial.into());
    if let Some(d) = p.sha256 {
        h.extra
            .insert("archive_sha256".into(), d.to_string().into());
    }
    // A sealed archive's members are found from its first block (its age
    // header), their offsets being in its plaintext.
    let recipients = p.sealed_for.to_vec();
    if !recipients.is_empty() {
        h.extra
            .insert("recipients".into(), recipients.clone().into());
    }
    let placed: Vec<Record> = records
        .iter()
        .map(|r| {
            let mut rec = r.clone();
            rec.tape = Some(tape.label.clone());
            rec.file = Some(file);
            rec.block = Some(if recipients.is_empty() {
                start + r.offset.unwrap_or(0) / block_size as u64
            } else {
                start
            });
            rec
        })
        .collect();
    let mut item = output.begin(&h)?;
    for rec in &placed {
        item.write(rec)?;
    }
    item.commit()?;
    let line = ArchiveOnTape {
        kind: "archive".into(),
        archive: id.into(),
        stream: header.stream.clone(),
        file,
        start_block: start,
        bytes: p.bytes,
        partial,
        sha256: p.sha256.map(|d| d.to_string()),
        members: placed.len() as u64,
        recipients,
    };
    log_written(catalog, &tape.label, &line, &placed)?;
    Ok(())
}

/// The bytes that go to tape for an archive of `stream`, and for whom
/// they are sealed: the archive sealed on the way when the stream has an
/// `[[archive_key]]` (reel-pack leaves archives in the cache in the
/// clear); an archive already sealed (by a reel-pack that sealed into the
/// cache) as it is, for the recipients its manifest names.
pub(super) fn as_on_tape(
    config: &crate::config::Config,
    header: &Header,
    archive: File,
    block_size: u64,
) -> std::io::Result<(Box<dyn std::io::Read + Send>, Vec<String>)> {
    use crate::archive::seal::SealingReader;
    use crate::archive::sealed;
    use std::os::unix::fs::FileExt;
    let mut first = [0u8; sealed::MAGIC.len()];
    let n = archive.read_at(&mut first, 0)?;
    if sealed::is_sealed(&first[..n]) {
        let fps = header
            .extra
            .get("recipients")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        return Ok((Box::new(crate::fsutil::DirectReader::new(archive)), fps));
    }
    let Some(key) = config.stream_key(&header.stream) else {
        return Ok((
            Box::new(crate::fsutil::DirectReader::new(archive)),
            Vec::new(),
        ));
    };
    let recipients = key
        .seal_to()
        .map_err(|e| std::io::Error::other(format!("[[archive_key]] {}: {e}", key.name)))?;
    let fps = recipients.fingerprints();
    let len = archive.metadata()?.len();
    let reader = SealingReader::new(archive, len, &recipients, block_size)?;
    Ok((Box::new(reader), fps))
}

/// A packed item to write: the claim, header, records, the archive's path
/// and the archive open.
pub(super) type ToWrite = (Claim, Header, Vec<Record>, PathBuf, File);

/// The packed item's header, records and archive, which must be a regular
/// file directly in `archives` (the cache's): a manifest cannot make
/// reel-write read anything else. `None`: it went to failed/, with why.
pub(super) fn open_item(claim: Claim, archives: &Path) -> anyhow::Result<Option<ToWrite>> {
    let Some((claim, header, records)) = claim.read_all("reel-write")?.item() else {
        return Ok(None);
    };
    let Some(archive) = header
        .extra
        .get("archive_path")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
    else {
        claim.reject(
            "the packed manifest names no archive (archive_path)",
            "reel-write",
        )?;
        return Ok(None);
    };
    if archive.parent() != Some(archives)
        || archive
            .file_name()
            .is_none_or(|n| n.as_encoded_bytes().starts_with(b"."))
    {
        let why = format!(
            "archive_path {} is not an archive in {}: refused",
            archive.display(),
            archives.display()
        );
        claim.reject(&why, "reel-write")?;
        return Ok(None);
    }
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&archive)
        .and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(f)
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        });
    match opened {
        Ok(f) => Ok(Some((claim, header, records, archive, f))),
        Err(e) => {
            let why = format!("cannot open its archive {}: {e}", archive.display());
            claim.reject(&why, "reel-write")?;
            Ok(None)
        }
    }
}

/// The pool the archive of a packed item goes to: the pool of a later
/// copy (`copy_pool`, which must be one of its stream's copy pools: a
/// manifest cannot send an archive elsewhere), else its stream's pool,
/// else `loaded` (a stream no `[[pool]]` takes goes to any tape).
pub(super) fn item_pool(
    config: &crate::config::Config,
    header: &Header,
    loaded: &str,
) -> Result<String, String> {
    let pools = config
        .stream_pool(&header.stream)
        .map(|p| p.copy_pools())
        .unwrap_or_default();
    let rewrite = is_rewrite(header);
    match header.extra.get("copy_pool") {
        None => Ok(pools.first().cloned().unwrap_or_else(|| loaded.to_string())),
        // A copy written again (`rewrite`) may go to any of them.
        Some(v) => match v.as_str() {
            Some(p) if pools.iter().skip(usize::from(!rewrite)).any(|x| x == p) => {
                Ok(p.to_string())
            }
            _ => Err(format!(
                "copy_pool {v} is not one of the pools stream {} is copied to ({})",
                header.stream,
                pools.join(", ")
            )),
        },
    }
}

/// After a whole copy in `pool`: the packed item of the next copy (same
/// archive, same records, the next pool of the stream's policy), when
/// there is one. Its id is the first copy's, then `-copy-<pool>`, so that
/// a rerun after a crash publishes the same item again, not another.
pub(super) fn publish_next_copy(
    spool: &crate::spool::Spool,
    config: &crate::config::Config,
    header: &Header,
    records: &[Record],
    pool: &str,
) -> anyhow::Result<Option<String>> {
    let Some(stream_pool) = config.stream_pool(&header.stream) else {
        return Ok(None);
    };
    if is_rewrite(header) {
        return Ok(None); // one missing copy, not a new series
    }
    let pools = stream_pool.copy_pools();
    let Some(next) = pools
        .iter()
        .position(|p| p == pool)
        .and_then(|i| pools.get(i + 1))
    else {
        return Ok(None);
    };
    let first = header
        .extra
        .get("copy_of")
        .and_then(|v| v.as_str())
        .unwrap_or(&header.id)
        .to_string();
    let mut h = header.clone();
    h.id = format!("{first}-copy-{next}");
    h.extra.insert("copy_of".into(), first.into());
    h.extra.insert("copy_pool".into(), next.clone().into());
    let mut item = spool.begin(crate::spool::Queue::Packed, &h)?;
    for r in records {
        item.write(r)?;
    }
    item.commit()?;
    Ok(Some(h.id))
}

/// A copy written again from another (`reel tapes rewrite`): it goes to
/// the one pool that misses it, and no further copy follows it.
fn is_rewrite(header: &Header) -> bool {
    header.extra.get("rewrite").is_some_and(|v| v == true)
}
