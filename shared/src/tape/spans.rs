//! Byte spans over tape blocks: a tape file read block by block, each block
//! knowing its byte offset from where reading began, so that whoever looks
//! for byte ranges in it (a member's headers, its data) cuts them out of
//! whichever blocks they fall in, wherever the block boundaries lie.
//! `reel-verify` walks a whole archive this way, `reel-restore` one member
//! from the block holding its header.

use super::stream::MAX_BLOCK;
use super::{Drive, Read, TapeError};

/// Blocks of an archive's bytes, each at its offset from where reading
/// began: a tape file's own blocks ([`SpanReader`]), or the plaintext of a
/// sealed archive ([`crate::archive::sealed::OpenSpans`]).
pub trait Spans {
    /// The next block; `None` at the end of the archive. The error says
    /// where, for people.
    fn next_block(&mut self) -> Result<Option<Block<'_>>, String>;
    /// The bytes read from tape so far.
    fn bytes_read(&self) -> u64;
}

/// Reads blocks from the drive's position on, counting their bytes: each
/// [`Block`] says at which offset from the first it starts.
pub struct SpanReader<'a> {
    drive: &'a mut dyn Drive,
    buf: crate::fsutil::PageBuf,
    /// Bytes read so far: the offset of the next block.
    read: u64,
    /// A first block already read (its length), given back first.
    first: Option<usize>,
}

impl Spans for SpanReader<'_> {
    fn next_block(&mut self) -> Result<Option<Block<'_>>, String> {
        match self.advance() {
            Ok(Some((at, n))) => Ok(Some(Block {
                at,
                bytes: &self.buf[..n],
            })),
            Ok(None) => Ok(None),
            Err(e) => {
                let at = self.drive.position().map_or("?".into(), |p| p.to_string());
                Err(format!("unreadable at block {at}: {e}"))
            }
        }
    }
    fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// One block read, at its byte offset from where reading began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'b> {
    /// The offset of its first byte.
    pub at: u64,
    /// Its bytes.
    pub bytes: &'b [u8],
}

impl<'a> SpanReader<'a> {
    /// Read from where `drive` is, with a buffer for the largest block.
    pub fn new(drive: &'a mut dyn Drive) -> Self {
        SpanReader {
            drive,
            buf: crate::fsutil::PageBuf::new(MAX_BLOCK),
            read: 0,
            first: None,
        }
    }

    /// Read from where `drive` is, `first` (the block just before it)
    /// given back first.
    pub fn after(drive: &'a mut dyn Drive, first: &[u8]) -> Self {
        let mut r = SpanReader::new(drive);
        r.buf[..first.len()].copy_from_slice(first);
        r.first = Some(first.len());
        r
    }

    /// The next block; `None` at a filemark (now passed) or the end of data.
    pub fn next_block(&mut self) -> Result<Option<Block<'_>>, TapeError> {
        Ok(self.advance()?.map(|(at, n)| Block {
            at,
            bytes: &self.buf[..n],
        }))
    }

    /// Read the next block into the buffer: its offset and length.
    fn advance(&mut self) -> Result<Option<(u64, usize)>, TapeError> {
        let n = match self.first.take() {
            Some(n) => n,
            None => match self.drive.read_block(&mut self.buf)? {
                Read::Data(n) => n,
                Read::Filemark | Read::EndOfData => return Ok(None),
            },
        };
        let at = self.read;
        self.read += n as u64;
        Ok(Some((at, n)))
    }

    /// The bytes read so far, in whole blocks.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The drive read from (to ask where it is after an error).
    pub fn drive(&mut self) -> &mut dyn Drive {
        self.drive
    }
}

impl<'b> Block<'b> {
    /// The offset just past its last byte.
    pub fn end(&self) -> u64 {
        self.at + self.bytes.len() as u64
    }

    /// The bytes of the span `start..end` that lie in this block: empty
    /// when none do.
    pub fn span(&self, start: u64, end: u64) -> &'b [u8] {
        let (from, to) = (start.max(self.at), end.min(self.end()));
        if from >= to {
            return &[];
        }
        &self.bytes[(from - self.at) as usize..(to - self.at) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::Written;
    use crate::vtl::{LibrarySpec, open_drive};

    #[test]
    fn a_block_gives_the_part_of_a_span_that_lies_in_it() {
        let bytes: Vec<u8> = (10..20).collect();
        let block = Block {
            at: 10,
            bytes: &bytes,
        };
        assert_eq!(block.end(), 20);
        // Inside, across either edge, around it, and beside it.
        assert_eq!(block.span(12, 15), [12, 13, 14]);
        assert_eq!(block.span(0, 12), [10, 11]);
        assert_eq!(block.span(18, 30), [18, 19]);
        assert_eq!(block.span(0, u64::MAX), &bytes[..]);
        assert!(block.span(0, 10).is_empty());
        assert!(block.span(20, 25).is_empty());
        assert!(block.span(15, 15).is_empty());
        assert!(block.span(16, 12).is_empty(), "an empty span, backwards");
    }

    #[test]
    fn spans_are_cut_from_blocks_of_any_size_up_to_the_filemark() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = open_drive(&dir.path().join("lib"), 0, &LibrarySpec::default()).unwrap();
        let file: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        for block in [&file[..1000], &file[1000..1024], &file[1024..]] {
            assert_eq!(d.write_block(block).unwrap(), Written::Ok);
        }
        d.write_filemarks(1).unwrap();
        d.write_block(b"the next file").unwrap();
        d.rewind().unwrap();

        let mut reader = SpanReader::new(&mut d);
        // A span across all three blocks, and one inside the first.
        let (mut across, mut inside, mut starts) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(block) = reader.next_block().unwrap() {
            starts.push(block.at);
            across.extend_from_slice(block.span(990, 2000));
            inside.extend_from_slice(block.span(3, 7));
        }
        assert_eq!(starts, [0, 1000, 1024]);
        assert_eq!(across, &file[990..2000]);
        assert_eq!(inside, &file[3..7]);
        assert_eq!(reader.bytes_read(), 3000);
        // Past the filemark: the next file, its offsets from there.
        let mut next = SpanReader::new(reader.drive());
        let block = next.next_block().unwrap().unwrap();
        assert_eq!((block.at, block.bytes), (0, &b"the next file"[..]));
        assert_eq!(next.next_block().unwrap(), None, "the end of data");
    }
}
