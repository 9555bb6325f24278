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
    buf: Vec<u8>,
    start: usize,
    end: usize,
    ended: Option<FileEnd>,
    blocks: u64,
}

impl<'a> TapeFileReader<'a> {
    pub fn new(drive: &'a mut dyn Drive) -> Self {
        TapeFileReader {
            drive,
            buf: vec![0; MAX_BLOCK],
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
