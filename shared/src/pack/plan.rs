//! The plan of a staged item: its records in `pack.order`, and which goes
//! into which archive, a file too large for one tape split into parts.

use crate::config::PackOrder;
use crate::manifest::{EntryType, Record};

use super::path_bytes;

/// Part `number` (from 1) of a file split across archives: `len` bytes
/// from `offset` of the file, read from `at` in its staged copy (the whole
/// file, or only this part when reel-stage staged it in parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Part {
    pub(super) number: u32,
    pub(super) offset: u64,
    pub(super) len: u64,
    pub(super) at: u64,
    /// The last part packed from this staged copy: the digest of all it
    /// held is checked.
    pub(super) last: bool,
}

/// One entry of an archive: a record, or a part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Piece {
    pub(super) index: usize,
    pub(super) part: Option<Part>,
}

/// Cut the ordered records into archives of at most `archive_size` bytes
/// of data; a file larger than that gets an archive of its own, and a file
/// larger than `split_above` (too large for one tape) is split into parts
/// of `archive_size`, one archive each.
pub(super) fn plan(records: &[Record], archive_size: u64, split_above: u64) -> Vec<Vec<Piece>> {
    let mut archives: Vec<Vec<Piece>> = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut bytes = 0u64;
    for (index, r) in records.iter().enumerate() {
        let size = if r.entry == EntryType::File {
            r.size
        } else {
            0
        };
        if let (EntryType::File, Some(number)) = (r.entry, r.part) {
            // Staged in parts: the part is an archive of its own.
            if !current.is_empty() {
                archives.push(std::mem::take(&mut current));
                bytes = 0;
            }
            let part = Part {
                number,
                offset: r.part_offset.unwrap_or(0),
                len: r.bytes(),
                at: 0,
                last: true,
            };
            archives.push(vec![Piece {
                index,
                part: Some(part),
            }]);
            continue;
        }
        if size > split_above {
            if !current.is_empty() {
                archives.push(std::mem::take(&mut current));
                bytes = 0;
            }
            let count = size.div_ceil(archive_size);
            for n in 0..count {
                let offset = n * archive_size;
                let part = Part {
                    number: n as u32 + 1,
                    offset,
                    len: archive_size.min(size - offset),
                    at: offset,
                    last: n + 1 == count,
                };
                archives.push(vec![Piece {
                    index,
                    part: Some(part),
                }]);
            }
            continue;
        }
        if !current.is_empty() && bytes + size > archive_size {
            archives.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(Piece { index, part: None });
        bytes += size;
    }
    if !current.is_empty() {
        archives.push(current);
    }
    archives
}

/// Sort the records in `order`: as scanned, by path, or largest first.
pub(super) fn order(records: &mut [Record], order: PackOrder) {
    match order {
        PackOrder::Scan => {}
        PackOrder::Path => records.sort_by(|a, b| path_bytes(&a.path).cmp(path_bytes(&b.path))),
        PackOrder::Size => records.sort_by(|a, b| {
            b.size
                .cmp(&a.size)
                .then_with(|| path_bytes(&a.path).cmp(path_bytes(&b.path)))
        }),
    }
}
