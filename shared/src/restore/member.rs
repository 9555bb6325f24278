//! Reading one member's bytes from tape: from the block holding its header,
//! the pax extended header (for its extended attributes), the ustar header
//! (checked, and the length of a part of a split file) and the data
//! (hashed and written out), nothing more.

use std::fs::File;
use std::io::Write;

use crate::archive::{check_header, ustar_size};
use crate::manifest::{Digest, EntryType, Record};
use std::io::Seek as _;

use crate::archive::sealed::{self, CountedReader, Identities, OpenError, OpenSpans};
use crate::tape::spans::{SpanReader, Spans};
use crate::tape::stream::{MAX_BLOCK, TapeFile, TapeFileCursor};
use crate::tape::{Drive, Read};
use sha2::{Digest as _, Sha256};

/// The extended attributes (`SCHILY.xattr.*`) in a pax extended header:
/// `pax` is the header's blocks before the ustar block, if any.
fn pax_xattrs(pax: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    if pax.len() < 1024 || pax[156] != b'x' {
        return Vec::new();
    }
    let len = (ustar_size(&pax[..512]) as usize).min(pax.len() - 512);
    let mut data = &pax[512..512 + len];
    let mut out = Vec::new();
    // Records: "<len> <key>=<value>\n", len counting the whole record.
    while let Some(sp) = data.iter().position(|&b| b == b' ') {
        let Some(n) = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|&n| n > sp + 1 && n <= data.len())
        else {
            break;
        };
        let record = &data[sp + 1..n - 1];
        if let Some(eq) = record.iter().position(|&b| b == b'=')
            && let Some(name) = record[..eq].strip_prefix(b"SCHILY.xattr.")
        {
            out.push((name.to_vec(), record[eq + 1..].to_vec()));
        }
        data = &data[n..];
    }
    out
}

/// Read the member `r` whose record places it at tape block `block` (the
/// drive is there): in a clear archive the block holding its header,
/// `offset` bytes into the archive, with its data `skip` bytes after the
/// block's start; in a sealed one (age) the archive's first block, from
/// which the plaintext is reached by age's chunks, read from the one
/// holding `offset` on (`identities` open it). A block that only looks
/// like an age header (a member named like one) is read as clear.
pub(super) fn read_placed(
    drive: &mut dyn Drive,
    r: &Record,
    (block, offset, block_size, skip): (u64, u64, u64, u64),
    identities: Option<&Identities>,
    out: &mut File,
) -> anyhow::Result<ReadBack> {
    let mut first = vec![0u8; MAX_BLOCK];
    let n = match drive.read_block(&mut first)? {
        Read::Data(n) => n,
        Read::Filemark | Read::EndOfData => {
            anyhow::bail!("the archive on tape ends before {}", r.path.display())
        }
    };
    first.truncate(n);
    let pax_from = offset % block_size;
    if !sealed::is_sealed(&first) {
        return read_member(
            &mut SpanReader::after(drive, &first),
            r,
            (pax_from, skip),
            out,
        );
    }
    let ids = identities.ok_or_else(|| {
        anyhow::anyhow!(
            "its archive is sealed (age) and this host has no identity to open it: set `identity` in its [[archive_key]]"
        )
    })?;
    drive.seek(block)?;
    let Some((file, _)) = TapeFile::measure(drive, block_size)? else {
        anyhow::bail!("the archive on tape ends before {}", r.path.display())
    };
    let (input, tape_bytes) = CountedReader::new(TapeFileCursor::new(file));
    let mut plain = match ids.open(input) {
        Ok(p) => p,
        Err(OpenError::NotMine(why)) => anyhow::bail!(why),
        Err(OpenError::Damaged(why)) => {
            log::debug!(
                "{}: block {block} is no age header ({why}): read as clear",
                r.path.display()
            );
            drive.seek(block)?;
            return read_member(&mut SpanReader::new(drive), r, (pax_from, skip), out);
        }
    };
    // From the plaintext block that holds its header, as a clear read
    // starts; reached through the byte before it, so that age need not
    // learn the archive's length (a read of its last chunk) first.
    let from = offset - pax_from;
    if from > 0 {
        plain.seek(std::io::SeekFrom::Start(from - 1))?;
        std::io::Read::read_exact(&mut plain, &mut [0u8])?;
    }
    read_member(
        &mut OpenSpans::new(plain, from, tape_bytes),
        r,
        (pax_from, skip),
        out,
    )
}

/// What reading a member gave: its data's digest, the bytes read from
/// tape, the data length, and its extended attributes.
pub(super) type ReadBack = (Digest, u64, u64, Vec<(Vec<u8>, Vec<u8>)>);

/// Read one member's data from the drive, which is at the block holding its
/// header; `skip` bytes come before the data, the last 512 of them the
/// ustar header, and the pax header (if any) starts at `pax_from`. Returns
/// the digest, the bytes read from tape, the data length and the extended
/// attributes.
fn read_member(
    reader: &mut dyn Spans,
    r: &Record,
    (pax_from, skip): (u64, u64),
    out: &mut File,
) -> anyhow::Result<ReadBack> {
    let mut sha = Sha256::new();
    let mut header = Vec::with_capacity(512);
    let mut pax = Vec::new();
    // A part of a split file: its length is in its header.
    let mut size = r.part.is_none().then_some(r.size);
    let mut done = 0u64;
    let header_from = skip.saturating_sub(512);
    while size.is_none_or(|s| done < s) || (header.len() < 512 && skip >= 512) {
        let Some(block) = reader.next_block().map_err(|e| anyhow::anyhow!(e))? else {
            anyhow::bail!("the archive on tape ends before {}", r.path.display())
        };
        // A pax header before it: extended attributes.
        pax.extend_from_slice(block.span(pax_from, header_from));
        // The header block, wherever it falls.
        header.extend_from_slice(block.span(header_from, skip));
        if size.is_none() && header.len() == 512 {
            size = Some(ustar_size(&header));
        }
        // The data.
        let piece = block.span(skip, skip.saturating_add(size.unwrap_or(0)));
        if !piece.is_empty() {
            sha.update(piece);
            out.write_all(piece)?;
            done += piece.len() as u64;
        }
    }
    if skip >= 512 {
        check_header(&header, EntryType::File)
            .map_err(|why| anyhow::anyhow!("{}: {why}", r.path.display()))?;
    }
    Ok((
        Digest(sha.finalize().into()),
        reader.bytes_read(),
        done,
        pax_xattrs(&pax),
    ))
}
