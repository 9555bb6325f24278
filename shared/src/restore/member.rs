//! Reading one member's bytes from tape: from the block holding its header,
//! the pax extended header (for its extended attributes), the ustar header
//! (checked, and the length of a part of a split file) and the data
//! (hashed and written out), nothing more.

use std::fs::File;
use std::io::Write;

use crate::archive::{check_header, ustar_size};
use crate::manifest::{Digest, EntryType, Record};
use crate::tape::Drive;
use crate::tape::spans::SpanReader;
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

/// What reading a member gave: its data's digest, the bytes read from
/// tape, the data length, and its extended attributes.
pub(super) type ReadBack = (Digest, u64, u64, Vec<(Vec<u8>, Vec<u8>)>);

/// Read one member's data from the drive, which is at the block holding its
/// header; `skip` bytes come before the data, the last 512 of them the
/// ustar header, and the pax header (if any) starts at `pax_from`. Returns
/// the digest, the bytes read from tape, the data length and the extended
/// attributes.
pub(super) fn read_member(
    drive: &mut dyn Drive,
    r: &Record,
    (pax_from, skip): (u64, u64),
    out: &mut File,
) -> anyhow::Result<ReadBack> {
    let mut reader = SpanReader::new(drive);
    let mut sha = Sha256::new();
    let mut header = Vec::with_capacity(512);
    let mut pax = Vec::new();
    // A part of a split file: its length is in its header.
    let mut size = r.part.is_none().then_some(r.size);
    let mut done = 0u64;
    let header_from = skip.saturating_sub(512);
    while size.is_none_or(|s| done < s) || (header.len() < 512 && skip >= 512) {
        let Some(block) = reader.next_block()? else {
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
