//! The drive self-test, in the spirit of Bacula's `btape test`: write,
//! rewind, read back, position by filemark and by block, append at the end
//! of data, re-read the last block, and optionally fill the tape to the
//! early warning and write a trailer. It destroys what is on the tape.
//!
//! Every block carries a tag (file number and block index) in its first
//! four bytes, so a misplaced, lost or repeated block is seen, not just a
//! wrong count; the rest of the block is compared too, unless
//! [`Options::tag_only`] (for the kernel's scsi_debug tape, which keeps only
//! the first 4 bytes of every block). The same test runs against the virtual drive in the test
//! suite and against real drives from `scripts/drive-selftest`.

use super::{Drive, Read, TapeError, Written};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub block_size: usize,
    /// Blocks per test file.
    pub blocks: u64,
    /// Also fill the tape to the early warning (hours on a real LTO tape).
    pub fill: bool,
    /// Blocks written after the early warning, as an archive trailer.
    pub trailer: u64,
    /// Compare only each block's length and 4-byte tag, not its content.
    pub tag_only: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            block_size: 256 * 1024,
            blocks: 64,
            fill: false,
            trailer: 4,
            tag_only: false,
        }
    }
}

/// One finished step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

struct Test<'a> {
    drive: &'a mut dyn Drive,
    opts: Options,
    buf: Vec<u8>,
}

type StepResult = Result<String, String>;

/// The tag of block `index` of test file `file`: the file in the top 8
/// bits, the index in the low 24.
fn tag(file: u32, index: u32) -> [u8; 4] {
    ((file << 24) | (index & 0xff_ffff)).to_be_bytes()
}

fn tagged(opts: &Options, file: u32, index: u32) -> Vec<u8> {
    let mut b = vec![(file as u8).wrapping_mul(31) ^ (index as u8) ^ 0x5a; opts.block_size];
    b[..4].copy_from_slice(&tag(file, index));
    b
}

impl Test<'_> {
    /// Test file `file`, closed by a waiting filemark or (`immediate`) one
    /// that does not wait.
    fn write_file(&mut self, file: u32, immediate: bool) -> Result<(), String> {
        for i in 0..self.opts.blocks as u32 {
            self.drive
                .write_block(&tagged(&self.opts, file, i))
                .map_err(|e| format!("writing block {i} of test file {file}: {e}"))?;
        }
        let closed = if immediate {
            self.drive.write_filemarks_immediate(1)
        } else {
            self.drive.write_filemarks(1)
        };
        closed.map_err(|e| format!("writing the filemark after test file {file}: {e}"))?;
        Ok(())
    }

    fn read(&mut self) -> Result<Read, String> {
        self.drive
            .read_block(&mut self.buf)
            .map_err(|e| format!("reading: {e}"))
    }

    /// Read a block and check its length, its tag and (unless `tag_only`)
    /// its content.
    fn expect_block(&mut self, file: u32, index: u32) -> Result<(), String> {
        let n = match self.read()? {
            Read::Data(n) if n == self.opts.block_size => n,
            other => {
                return Err(format!(
                    "expected block {index} of file {file} ({} bytes), got {other:?}",
                    self.opts.block_size
                ));
            }
        };
        if self.buf[..4] != tag(file, index) {
            let got = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes"));
            return Err(format!(
                "expected block {index} of file {file}, read block {} of file {}",
                got & 0xff_ffff,
                got >> 24
            ));
        }
        if !self.opts.tag_only {
            let want = tagged(&self.opts, file, index);
            if let Some(k) = (4..n).find(|&k| self.buf[k] != want[k]) {
                return Err(format!(
                    "block {index} of file {file} read back altered from byte {k} of {n}"
                ));
            }
        }
        Ok(())
    }

    fn expect(&mut self, want: Read, what: &str) -> Result<(), String> {
        match self.read()? {
            got if got == want => Ok(()),
            got => Err(format!("expected {what}, got {got:?}")),
        }
    }

    fn position(&mut self) -> Result<u64, String> {
        self.drive
            .position()
            .map_err(|e| format!("reading the position: {e}"))
    }

    fn op(&mut self, what: &str, r: Result<(), TapeError>) -> Result<(), String> {
        r.map_err(|e| format!("{what}: {e}"))
    }

    fn write_and_read_back(&mut self) -> StepResult {
        let r = self.drive.rewind();
        self.op("rewind", r)?;
        self.write_file(0, false)?;
        self.write_file(1, true)?;
        let n = self.opts.blocks;
        let pos = self.position()?;
        if pos != 2 * n + 2 {
            return Err(format!(
                "after two files of {n} blocks the position is {pos}, not {}",
                2 * n + 2
            ));
        }
        let r = self.drive.flush().map(drop);
        self.op("flush (write filemarks 0)", r)?;
        let pos = self.position()?;
        if pos != 2 * n + 2 {
            return Err(format!(
                "a flush moved the tape from {} to {pos}",
                2 * n + 2
            ));
        }
        let r = self.drive.rewind();
        self.op("rewind", r)?;
        for f in 0..2 {
            for i in 0..n as u32 {
                self.expect_block(f, i)?;
            }
            self.expect(Read::Filemark, "a filemark")?;
        }
        self.expect(Read::EndOfData, "the end of data")?;
        Ok(format!(
            "2 files of {n} blocks of {} bytes written (the second closed by a filemark that \
             does not wait, then flushed) and read back",
            self.opts.block_size
        ))
    }

    fn positioning(&mut self) -> StepResult {
        let n = self.opts.blocks;
        let r = self.drive.rewind();
        self.op("rewind", r)?;
        let r = self.drive.forward_filemarks(1);
        self.op("fsf 1", r)?;
        let pos = self.position()?;
        if pos != n + 1 {
            return Err(format!(
                "fsf 1 from BOT gives position {pos}, not {}",
                n + 1
            ));
        }
        self.expect_block(1, 0)?;
        let k = n / 2;
        let r = self.drive.seek(k);
        self.op("seek", r)?;
        self.expect_block(0, k as u32)?;
        let r = self.drive.end_of_data();
        self.op("eod", r)?;
        let pos = self.position()?;
        if pos != 2 * n + 2 {
            return Err(format!("eod gives position {pos}, not {}", 2 * n + 2));
        }
        let r = self.drive.back_filemarks(1);
        self.op("bsf 1", r)?;
        let pos = self.position()?;
        if pos != 2 * n + 1 {
            return Err(format!(
                "bsf 1 from the end of data gives {pos}, not {} (before the last filemark)",
                2 * n + 1
            ));
        }
        self.expect(Read::Filemark, "the last filemark")?;
        Ok(format!(
            "fsf, seek, eod and bsf land where they should (eod at {})",
            2 * n + 2
        ))
    }

    fn append(&mut self) -> StepResult {
        let r = self.drive.end_of_data();
        self.op("eod", r)?;
        self.write_file(2, false)?;
        let r = self.drive.rewind();
        self.op("rewind", r)?;
        self.expect_block(0, 0)?;
        let r = self.drive.forward_filemarks(2);
        self.op("fsf 2", r)?;
        self.expect_block(2, 0)?;
        Ok("a third file appended at the end of data; the first two are intact".into())
    }

    fn last_block(&mut self) -> StepResult {
        let n = self.opts.blocks;
        let last = 3 * n + 2 - 1;
        let r = self.drive.seek(last);
        self.op("seek to the last block", r)?;
        self.expect_block(2, n as u32 - 1)?;
        self.expect(Read::Filemark, "the filemark after the last block")?;
        self.expect(Read::EndOfData, "the end of data")?;
        Ok(format!("the last block (position {last}) reads back"))
    }

    fn fill(&mut self) -> StepResult {
        let r = self.drive.end_of_data();
        self.op("eod", r)?;
        let start = self.position()?;
        let mut written = 0u64;
        loop {
            match self
                .drive
                .write_block(&tagged(&self.opts, 3, written as u32))
            {
                Ok(Written::Ok) => written += 1,
                Ok(Written::EarlyWarning) => {
                    written += 1;
                    break;
                }
                Err(e) => {
                    return Err(format!(
                        "after {written} blocks, before any early warning: {e}"
                    ));
                }
            }
        }
        let at_warning = written;
        for _ in 0..self.opts.trailer {
            match self
                .drive
                .write_block(&tagged(&self.opts, 3, written as u32))
            {
                Ok(Written::EarlyWarning) => written += 1,
                Ok(Written::Ok) => {
                    return Err("a write after the early warning reported no warning".into());
                }
                Err(e) => return Err(format!("the trailer after the early warning failed: {e}")),
            }
        }
        let r = self.drive.write_filemarks(1).map(drop);
        self.op("writing the filemark after the trailer", r)?;
        let r = self.drive.seek(start);
        self.op("seek back", r)?;
        for i in 0..written as u32 {
            self.expect_block(3, i)?;
        }
        self.expect(Read::Filemark, "the filemark after the trailer")?;
        let bytes = written * self.opts.block_size as u64;
        Ok(format!(
            "early warning after {at_warning} blocks; {} trailer blocks written; all {written} blocks ({}) read back",
            self.opts.trailer,
            crate::units::Size(bytes).human()
        ))
    }
}

/// Run the self-test, reporting each step as it ends. Returns whether all
/// passed; stops at the first failure (later steps depend on it).
pub fn run(
    drive: &mut dyn Drive,
    opts: Options,
    report: &mut dyn FnMut(&Step),
) -> Result<bool, TapeError> {
    drive.set_block_size(0)?;
    let mut t = Test {
        drive,
        opts,
        buf: vec![0; super::stream::MAX_BLOCK.max(opts.block_size)],
    };
    type StepFn = for<'a, 'b> fn(&'a mut Test<'b>) -> StepResult;
    let mut steps: Vec<(&'static str, StepFn)> = vec![
        ("write and read back", |t| t.write_and_read_back()),
        ("positioning", |t| t.positioning()),
        ("append at end of data", |t| t.append()),
        ("re-read the last block", |t| t.last_block()),
    ];
    if opts.fill {
        steps.push(("fill to early warning", |t| t.fill()));
    }
    for (name, f) in steps {
        let result = f(&mut t);
        let step = Step {
            name,
            ok: result.is_ok(),
            detail: result.unwrap_or_else(|e| e),
        };
        report(&step);
        if !step.ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Size;
    use crate::vtl::{LibrarySpec, open_drive};

    #[test]
    fn the_virtual_drive_passes() {
        let dir = tempfile::tempdir().unwrap();
        let spec = LibrarySpec {
            capacity: Size(8 << 20),
            early_warning: Size(1 << 20),
            ..LibrarySpec::default()
        };
        let mut d = open_drive(&dir.path().join("lib"), 0, &spec).unwrap();
        let opts = Options {
            block_size: 64 * 1024,
            blocks: 8,
            fill: true,
            trailer: 4,
            tag_only: false,
        };
        let mut steps = Vec::new();
        assert!(
            run(&mut d, opts, &mut |s| steps.push(s.clone())).unwrap(),
            "{steps:#?}"
        );
        assert_eq!(steps.len(), 5);
        assert!(
            steps[4].detail.contains("early warning after"),
            "{}",
            steps[4].detail
        );
    }

    #[test]
    fn a_drive_that_loses_blocks_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = open_drive(&dir.path().join("lib"), 0, &LibrarySpec::default()).unwrap();
        // Corrupt the first block's tag as it is read back.
        d.image_mut().unwrap().meta.faults.flip = vec![crate::vtl::Flip {
            block: 3,
            offset: 7,
        }];
        let opts = Options {
            block_size: 4096,
            blocks: 8,
            ..Options::default()
        };
        let mut steps = Vec::new();
        assert!(!run(&mut d, opts, &mut |s| steps.push(s.clone())).unwrap());
        assert_eq!(steps.len(), 1);
        assert!(
            steps[0]
                .detail
                .contains("block 3 of file 0 read back altered from byte 7 of 4096"),
            "{}",
            steps[0].detail
        );
        // Comparing only the tags, the same drive passes.
        let mut steps = Vec::new();
        let opts = Options {
            tag_only: true,
            ..opts
        };
        assert!(
            run(&mut d, opts, &mut |s| steps.push(s.clone())).unwrap(),
            "{steps:#?}"
        );
    }

    #[test]
    fn a_misplaced_block_is_named_by_its_tag() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = open_drive(&dir.path().join("lib"), 0, &LibrarySpec::default()).unwrap();
        // Byte 3 is the low byte of the index: block 5 reads back as 4.
        d.image_mut().unwrap().meta.faults.flip = vec![crate::vtl::Flip {
            block: 5,
            offset: 3,
        }];
        let opts = Options {
            block_size: 4096,
            blocks: 8,
            tag_only: true,
            ..Options::default()
        };
        let mut steps = Vec::new();
        assert!(!run(&mut d, opts, &mut |s| steps.push(s.clone())).unwrap());
        assert!(
            steps[0]
                .detail
                .contains("expected block 5 of file 0, read block"),
            "{}",
            steps[0].detail
        );
    }
}
