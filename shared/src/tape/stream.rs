//! Byte streams over tape files: [`TapeFileReader`] reads one tape file
//! block by block as an `io::Read` (for tar), [`BlockWriter`] cuts a byte
//! stream into blocks of the tape's block size, padding the last one.

use std::io;

use super::{Drive, Read, TapeError, Written};

/// The largest block reel reads with: st skips a block larger than the
/// read buffer, so the buffer must hold the largest block any writer used.
pub const MAX_BLOCK: usize = 16 << 20;

/// How a tape file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEnd {
    /// A filemark: the next file follows.
    Filemark,
    /// The end of the recorded data: this was the last file.
    EndOfData,
}

/// One tape file as an `io::Read`, from the current position to the next
/// filemark.
pub struct TapeFileReader<'a> {
    drive: &'a mut dyn Drive,
    /// Page-aligned, so that a drive can read into it directly.
    buf: crate::fsutil::PageBuf,
    start: usize,
    end: usize,
    ended: Option<FileEnd>,
    blocks: u64,
}

impl<'a> TapeFileReader<'a> {
    pub fn new(drive: &'a mut dyn Drive) -> Self {
        TapeFileReader {
            drive,
            buf: crate::fsutil::PageBuf::new(MAX_BLOCK),
            start: 0,
            end: 0,
            ended: None,
            blocks: 0,
        }
    }

    /// Blocks read so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Read the next block into the buffer; false at the end of the file.
    fn fill(&mut self) -> Result<bool, TapeError> {
        if self.ended.is_some() {
            return Ok(false);
        }
        match self.drive.read_block(&mut self.buf)? {
            Read::Data(n) => {
                self.start = 0;
                self.end = n;
                self.blocks += 1;
                Ok(true)
            }
            Read::Filemark => {
                self.ended = Some(FileEnd::Filemark);
                Ok(false)
            }
            Read::EndOfData => {
                self.ended = Some(FileEnd::EndOfData);
                Ok(false)
            }
        }
    }

    /// Move past the rest of the file (to just after its filemark) and say
    /// how it ended.
    pub fn finish(mut self) -> Result<FileEnd, TapeError> {
        if let Some(end) = self.ended {
            return Ok(end);
        }
        // Reading on is cheaper than a reposition for what tar leaves
        // behind (padding); spacing would also be right.
        while self.fill()? {}
        Ok(self.ended.expect("fill stops only at an end"))
    }
}

impl io::Read for TapeFileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end && !self.fill().map_err(io::Error::other)? {
            return Ok(0);
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// Cuts a byte stream into tape blocks of `block_size` and writes them,
/// remembering whether the early warning was reached.
pub struct BlockWriter<'a> {
    drive: &'a mut dyn Drive,
    block: Vec<u8>,
    block_size: usize,
    early_warning: bool,
    blocks: u64,
}

impl<'a> BlockWriter<'a> {
    pub fn new(drive: &'a mut dyn Drive, block_size: usize) -> Self {
        BlockWriter {
            drive,
            block: Vec::with_capacity(block_size),
            block_size,
            early_warning: false,
            blocks: 0,
        }
    }

    fn write_block(&mut self) -> Result<(), TapeError> {
        if self.drive.write_block(&self.block)? == Written::EarlyWarning {
            self.early_warning = true;
        }
        self.blocks += 1;
        self.block.clear();
        Ok(())
    }

    /// Pad the last block with zeros to the full block size, write it and
    /// close the tape file with a filemark. Returns the blocks written and
    /// whether the early warning was reached.
    pub fn finish(mut self) -> Result<(u64, bool), TapeError> {
        if !self.block.is_empty() {
            self.block.resize(self.block_size, 0);
            self.write_block()?;
        }
        if self.drive.write_filemarks(1)? == Written::EarlyWarning {
            self.early_warning = true;
        }
        Ok((self.blocks, self.early_warning))
    }
}

impl io::Write for BlockWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(self.block_size - self.block.len());
        self.block.extend_from_slice(&data[..n]);
        if self.block.len() == self.block_size {
            self.write_block().map_err(io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One tape file with random access by byte offset, for reading archive
/// headers where they are (`archive::parse::At`): the block holding a byte
/// is found by seeking (its address is the file's first block plus the
/// offset over the block size), read whole and kept for the next read.
/// Nothing outside the file is ever read: its length was measured first.
pub struct TapeFile<'a> {
    drive: &'a mut dyn Drive,
    /// Logical block address of the file's first block.
    pub start: u64,
    /// Data blocks in the file.
    pub blocks: u64,
    /// Bytes per block (every block but a short last one of a foreign
    /// file is this long: reel pads archives to whole blocks).
    pub block_size: u64,
    /// Where the head is, when known: a sequential read needs no seek.
    head: Option<u64>,
    cached: Option<(u64, Vec<u8>)>,
    /// Page-aligned, so that a drive can read into it directly.
    buf: crate::fsutil::PageBuf,
}

impl<'a> TapeFile<'a> {
    /// The tape file under the head, measured by spacing to its filemark;
    /// the head is left after the filemark (or at the end of data).
    /// `None` at the end of data.
    pub fn measure(
        drive: &'a mut dyn Drive,
        block_size: u64,
    ) -> Result<Option<(TapeFile<'a>, FileEnd)>, TapeError> {
        let start = drive.position()?;
        let (blocks, end) = match drive.forward_filemarks(1) {
            Ok(()) => (
                drive.position()?.saturating_sub(start + 1),
                FileEnd::Filemark,
            ),
            // The end of data came first (a last file without its
            // filemark, or nothing at all).
            Err(_) => {
                let eod = drive.position()?;
                if eod <= start {
                    return Ok(None);
                }
                (eod - start, FileEnd::EndOfData)
            }
        };
        Ok(Some((
            TapeFile {
                drive,
                start,
                blocks,
                block_size: block_size.max(1),
                head: None,
                cached: None,
                buf: crate::fsutil::PageBuf::new(MAX_BLOCK),
            },
            end,
        )))
    }

    /// The address of the block after the file's filemark: where the next
    /// file starts.
    pub fn next_file(&self) -> u64 {
        self.start + self.blocks + 1
    }

    /// Block `b` of the file.
    fn block(&mut self, b: u64) -> io::Result<&[u8]> {
        if self.cached.as_ref().is_none_or(|(c, _)| *c != b) {
            if b >= self.blocks {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "block {b} is past the end of the tape file ({} blocks)",
                        self.blocks
                    ),
                ));
            }
            let lba = self.start + b;
            if self.head != Some(lba) {
                self.head = None;
                self.drive.seek(lba).map_err(io::Error::other)?;
            }
            let n = match self
                .drive
                .read_block(&mut self.buf)
                .map_err(io::Error::other)?
            {
                Read::Data(n) => n,
                Read::Filemark | Read::EndOfData => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the tape file ends before its block {b}"),
                    ));
                }
            };
            self.head = Some(lba + 1);
            if n as u64 != self.block_size && b + 1 != self.blocks {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("block {b} holds {n} bytes, not {}", self.block_size),
                ));
            }
            self.cached = Some((b, self.buf[..n].to_vec()));
        }
        Ok(&self.cached.as_ref().expect("just read").1)
    }
}

/// A tape file as `io::Read` and `io::Seek`, over [`TapeFile`]'s random
/// access (a sealed archive's reader seeks to the chunk it needs).
pub struct TapeFileCursor<'a> {
    file: TapeFile<'a>,
    pos: u64,
}

impl<'a> TapeFileCursor<'a> {
    pub fn new(file: TapeFile<'a>) -> Self {
        TapeFileCursor { file, pos: 0 }
    }
}

impl io::Read for TapeFileCursor<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use crate::archive::parse::At;
        let left = self.file.len().saturating_sub(self.pos);
        // Within one block at a time: the block is read whole and kept.
        let in_block = self.file.block_size - self.pos % self.file.block_size;
        let n = (out.len() as u64).min(left).min(in_block) as usize;
        if n == 0 {
            return Ok(0);
        }
        let bytes = self.file.read_at(self.pos, n)?;
        out[..n].copy_from_slice(&bytes);
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for TapeFileCursor<'_> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        use crate::archive::parse::At;
        let len = self.file.len();
        let pos = match to {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "a seek before the tape file")
        })?;
        self.pos = pos;
        Ok(pos)
    }
}

impl crate::archive::parse::At for TapeFile<'_> {
    fn read_at(&mut self, at: u64, len: usize) -> io::Result<Vec<u8>> {
        if at
            .checked_add(len as u64)
            .is_none_or(|end| end > self.len())
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("bytes {at}+{len} are past the end of the tape file"),
            ));
        }
        let mut out = Vec::with_capacity(len);
        let mut pos = at;
        while out.len() < len {
            let bs = self.block_size;
            let (b, within) = (pos / bs, (pos % bs) as usize);
            let block = self.block(b)?;
            let take = (len - out.len()).min(block.len().saturating_sub(within));
            if take == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            out.extend_from_slice(&block[within..within + take]);
            pos += take as u64;
        }
        Ok(out)
    }

    fn len(&self) -> u64 {
        self.blocks * self.block_size
    }
}
