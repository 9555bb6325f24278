//! One virtual tape on disk: a directory holding `meta.json` and one plain
//! file per tape file (`000000`, `000001`, …), so `tar -tvf` works on any
//! tape file directly.
//!
//! `meta.json` (format `reel-virtual-tape/1`) records what a plain file
//! cannot: where the block boundaries are (runs of equal-sized blocks), which
//! files are closed by a filemark, the capacity and early-warning margin,
//! write protection, injected faults and an optional speed model.
//!
//! The block layout is kept in memory and committed to `meta.json` (the
//! data synced first) when a waiting filemark is written, at a flush, when
//! the drive repositions, every 64 MiB of writing or 64 files closed by
//! filemarks that did not wait, and when the drive is closed. What was
//! written after the last commit is the drive's buffer: after a crash the
//! data files may hold more than `meta.json` says, and [`Image::open`] cuts
//! it off, as a real drive's buffer is lost with its power.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{PAGE, write_atomic};
use crate::tape::TapeError;
use crate::tape::speed::SpeedParams;
use crate::units::{Interval, Size};

pub const TAPE_FORMAT: &str = "reel-virtual-tape/1";

/// Faults to inject, for tests of what reel does when tapes go bad.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Reading the block at any of these logical addresses fails with EIO
    /// (the position moves past it).
    pub read_errors: Vec<u64>,
    /// Writing a block at this logical address fails with EIO (nothing is
    /// written).
    pub write_error_at: Option<u64>,
    /// Silent corruption: the byte at `offset` of the block at `block` reads
    /// back inverted.
    pub flip: Vec<Flip>,
    /// On its next load the tape reports "not ready" for this long, as a new
    /// LTO-9 cartridge does while it is calibrated.
    pub calibrate: Option<Interval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flip {
    pub block: u64,
    pub offset: usize,
}

/// What the cartridge's own memory (MAM) counts over its life, as LTO
/// drives keep it: loads, and bytes written and read in all and in the
/// current (or last) load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Life {
    pub loads: u64,
    pub written: u64,
    pub read: u64,
    pub load_written: u64,
    pub load_read: u64,
    /// Reads and writes that failed (the injected faults), in all and in
    /// the current load: the volume statistics' unrecovered errors.
    pub read_errors: u64,
    pub write_errors: u64,
    pub load_read_errors: u64,
    pub load_write_errors: u64,
}

impl Life {
    /// A new load: counted, and the per-load counters start again.
    pub fn loaded(&mut self) {
        self.loads += 1;
        self.load_written = 0;
        self.load_read = 0;
        self.load_read_errors = 0;
        self.load_write_errors = 0;
    }
}

/// An attribute a host wrote into the cartridge memory (WRITE ATTRIBUTE):
/// its format code (0 binary, 1 ASCII, 2 text) and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostAttribute {
    pub format: u8,
    pub value: Vec<u8>,
}

/// The block layout of one tape file: runs of `(block size, count)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLayout {
    pub runs: Vec<(u32, u64)>,
    /// Closed by a filemark.
    pub filemark: bool,
}

impl FileLayout {
    pub fn blocks(&self) -> u64 {
        self.runs.iter().map(|r| r.1).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.runs.iter().map(|&(s, n)| u64::from(s) * n).sum()
    }

    /// Byte offset and size of block `b`.
    pub fn block(&self, b: u64) -> Option<(u64, u32)> {
        let mut offset = 0;
        let mut first = 0;
        for &(size, count) in &self.runs {
            if b < first + count {
                return Some((offset + (b - first) * u64::from(size), size));
            }
            first += count;
            offset += u64::from(size) * count;
        }
        None
    }

    fn push(&mut self, size: u32) {
        match self.runs.last_mut() {
            Some((s, n)) if *s == size => *n += 1,
            _ => self.runs.push((size, 1)),
        }
    }

    /// Keep only the first `b` blocks.
    fn truncate(&mut self, b: u64) {
        let mut left = b;
        let mut keep = Vec::new();
        for &(size, count) in &self.runs {
            if left == 0 {
                break;
            }
            let n = count.min(left);
            keep.push((size, n));
            left -= n;
        }
        self.runs = keep;
    }
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub format: String,
    pub barcode: String,
    pub capacity: Size,
    /// The early-warning point is this far before the end.
    pub early_warning: Size,
    #[serde(default)]
    pub write_protected: bool,
    #[serde(default)]
    pub files: Vec<FileLayout>,
    #[serde(default)]
    pub faults: Faults,
    /// Pace writes like a real LTO drive: speed matching, a drive buffer,
    /// backhitches; and read no faster than its top speed (see
    /// `tape::speed`).
    #[serde(default)]
    pub speed: Option<SpeedParams>,
    /// Unix time (seconds) until which the tape is still calibrating.
    #[serde(default)]
    pub not_ready_until: Option<f64>,
    /// The cartridge memory's counters.
    #[serde(default)]
    pub life: Life,
    /// The day the tape was made (`YYYYMMDD`, UTC), as its cartridge
    /// memory gives it; tapes made before reel recorded it have none.
    #[serde(default)]
    pub manufactured: Option<String>,
    /// Host attributes of the cartridge memory, by attribute identifier.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<u16, HostAttribute>,
}

/// The serial number a virtual cartridge's memory gives (not its label's).
pub fn medium_serial(barcode: &str) -> String {
    format!("REELCM-{barcode}")
}

/// An open virtual tape: its layout, and the file being written.
pub struct Image {
    dir: PathBuf,
    pub meta: Meta,
    dirty_bytes: u64,
    /// Bytes were read since the last save: the life counters in memory
    /// are ahead of `meta.json` (saved at [`Image::close`], not at every
    /// reposition as a write is).
    read_unsaved: bool,
    writer: Option<(usize, File)>,
    /// The writer's blocks go with `O_DIRECT` (whole pages from page-aligned
    /// memory, as the ring gives them): no copy through the page cache,
    /// as the st driver maps the writer's own pages for a real drive.
    writer_direct: bool,
    /// Tape files closed by a filemark since the last save
    /// ([`Image::close_file`]): their data reach the disk at the next
    /// save, before `meta.json` says they are there.
    unsynced: Vec<File>,
    /// The tape file last read, kept open between blocks.
    reader: Option<Reader>,
}

/// A tape file open for reading: buffered, and with `O_DIRECT` where the
/// file system takes it (`None` once it refused a read).
struct Reader {
    file_no: usize,
    file: File,
    direct: Option<File>,
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> TapeError {
    move |e| TapeError::io(op, e)
}

impl Image {
    /// Create a blank tape.
    pub fn create(
        dir: &Path,
        barcode: &str,
        capacity: Size,
        early_warning: Size,
    ) -> Result<Image, TapeError> {
        fs::create_dir_all(dir).map_err(io("creating a virtual tape"))?;
        let meta = Meta {
            format: TAPE_FORMAT.into(),
            barcode: barcode.into(),
            capacity,
            early_warning,
            write_protected: false,
            files: Vec::new(),
            faults: Faults::default(),
            speed: None,
            not_ready_until: None,
            life: Life::default(),
            manufactured: Some(jiff::Timestamp::now().strftime("%Y%m%d").to_string()),
            attributes: Default::default(),
        };
        let mut image = Image {
            dir: dir.to_path_buf(),
            meta,
            dirty_bytes: 0,
            read_unsaved: false,
            writer: None,
            writer_direct: false,
            unsynced: Vec::new(),
            reader: None,
        };
        image.save()?;
        Ok(image)
    }

    /// Open a tape, reconciling `meta.json` with the data files.
    pub fn open(dir: &Path) -> Result<Image, TapeError> {
        let path = dir.join("meta.json");
        let text = fs::read_to_string(&path).map_err(io("reading virtual tape meta.json"))?;
        let meta: Meta = serde_json::from_str(&text)
            .map_err(|e| TapeError::Invalid(format!("{}: {e}", path.display())))?;
        if meta.format != TAPE_FORMAT {
            return Err(TapeError::Invalid(format!(
                "{}: format {:?}, expected {TAPE_FORMAT:?}",
                path.display(),
                meta.format
            )));
        }
        let mut image = Image {
            dir: dir.to_path_buf(),
            meta,
            dirty_bytes: 0,
            read_unsaved: false,
            writer: None,
            writer_direct: false,
            unsynced: Vec::new(),
            reader: None,
        };
        image.reconcile()?;
        Ok(image)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_path(&self, f: usize) -> PathBuf {
        self.dir.join(format!("{f:06}"))
    }

    /// `meta.json` is what the drive committed; what the data files hold
    /// beyond it was in the drive's buffer when the process died or the
    /// power went (nothing committed it), and is gone, as from a real
    /// drive's buffer: data past a file's layout are cut off, files after
    /// the last one known removed. A layout that claims more than its
    /// file holds (which a save never leaves) is cut to the file.
    fn reconcile(&mut self) -> Result<(), TapeError> {
        let mut changed = false;
        let mut f = 0;
        while let Ok(m) = fs::metadata(self.file_path(f)) {
            let len = m.len();
            if f >= self.meta.files.len() {
                fs::remove_file(self.file_path(f))
                    .map_err(io("removing an uncommitted virtual tape file"))?;
                f += 1;
                continue;
            }
            let layout = &mut self.meta.files[f];
            let known = layout.bytes();
            if len > known {
                let file = OpenOptions::new()
                    .write(true)
                    .open(self.file_path(f))
                    .map_err(io("opening a virtual tape file"))?;
                file.set_len(known)
                    .map_err(io("cutting a virtual tape file to its layout"))?;
                file.sync_all().map_err(io("syncing a virtual tape file"))?;
            } else if len < known {
                let mut blocks = 0;
                let mut bytes = 0;
                for &(s, n) in &layout.runs {
                    for _ in 0..n {
                        if bytes + u64::from(s) > len {
                            break;
                        }
                        bytes += u64::from(s);
                        blocks += 1;
                    }
                }
                layout.truncate(blocks);
                changed = true;
            }
            f += 1;
        }
        if self.meta.files.len() > f {
            self.meta.files.truncate(f);
            changed = true;
        }
        if changed {
            self.save()?;
        }
        Ok(())
    }

    /// Write `meta.json` (atomically) and sync the file being written.
    pub fn save(&mut self) -> Result<(), TapeError> {
        for file in self
            .unsynced
            .iter()
            .chain(self.writer.iter().map(|(_, f)| f))
        {
            file.sync_data()
                .map_err(io("syncing a virtual tape file"))?;
        }
        self.unsynced.clear();
        let text = serde_json::to_vec_pretty(&self.meta).expect("meta serializes");
        write_atomic(&self.dir.join("meta.json"), &text)
            .map_err(io("writing virtual tape meta.json"))?;
        self.dirty_bytes = 0;
        self.read_unsaved = false;
        Ok(())
    }

    /// Count `n` bytes read in the cartridge memory's counters.
    pub fn count_read(&mut self, n: u64) {
        self.meta.life.read += n;
        self.meta.life.load_read += n;
        self.read_unsaved = true;
    }

    /// Count a read or a write that failed (an injected fault), kept
    /// like the reads' counters.
    pub fn count_error(&mut self, write: bool) {
        let life = &mut self.meta.life;
        if write {
            life.write_errors += 1;
            life.load_write_errors += 1;
        } else {
            life.read_errors += 1;
            life.load_read_errors += 1;
        }
        self.read_unsaved = true;
    }

    /// Save what is not saved yet, reads' counters included: the tape
    /// leaves the drive, or the drive is closed.
    pub fn close(&mut self) -> Result<(), TapeError> {
        if self.read_unsaved {
            self.save()
        } else {
            self.flush()
        }
    }

    /// Save only when something was written since the last save.
    pub fn flush(&mut self) -> Result<(), TapeError> {
        if self.dirty_bytes > 0 || self.writer.is_some() {
            self.save()?;
        }
        self.writer = None;
        Ok(())
    }

    /// Bytes recorded on the tape.
    pub fn used(&self) -> u64 {
        self.meta.files.iter().map(FileLayout::bytes).sum()
    }

    /// Discard everything from block `b` of file `f` on: what writing there
    /// does to a real tape.
    pub fn truncate_at(&mut self, f: usize, b: u64) -> Result<(), TapeError> {
        let keep_bytes = match self.meta.files.get(f) {
            Some(layout) => layout.block(b).map_or(layout.bytes(), |(o, _)| o),
            None => 0,
        };
        for extra in f + 1..self.meta.files.len().max(f + 1) {
            let _ = fs::remove_file(self.file_path(extra));
        }
        self.meta.files.truncate(f + 1);
        self.reader = None;
        while self.meta.files.len() <= f {
            self.meta.files.push(FileLayout::default());
        }
        let layout = &mut self.meta.files[f];
        layout.truncate(b);
        layout.filemark = false;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(self.file_path(f))
            .map_err(io("opening a virtual tape file"))?;
        file.set_len(keep_bytes)
            .map_err(io("truncating a virtual tape file"))?;
        self.writer = None;
        self.dirty_bytes += 1;
        Ok(())
    }

    /// Append a block to file `f`, which must be the last, open file.
    pub fn append_block(&mut self, f: usize, data: &[u8]) -> Result<(), TapeError> {
        self.append_blocks(f, &[data])
    }

    /// Append blocks to file `f`, which must be the last, open file: one
    /// vectored write for all of them (with `O_DIRECT` when every block is
    /// whole pages from page-aligned memory, as the ring's are).
    pub fn append_blocks(&mut self, f: usize, blocks: &[&[u8]]) -> Result<(), TapeError> {
        if !matches!(&self.writer, Some((wf, _)) if *wf == f) {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.file_path(f))
                .map_err(io("opening a virtual tape file"))?;
            let end = file
                .seek(SeekFrom::End(0))
                .map_err(io("seeking a virtual tape file"))?;
            self.writer_direct =
                end % PAGE as u64 == 0 && crate::fsutil::set_direct(&file, true).is_ok();
            self.writer = Some((f, file));
        }
        let (_, file) = self.writer.as_mut().expect("writer just set");
        let total: usize = blocks.iter().map(|b| b.len()).sum();
        if self.writer_direct && !blocks.iter().all(|b| crate::fsutil::whole_pages(b)) {
            crate::fsutil::set_direct(file, false)
                .map_err(|e| io("writing a virtual tape file")(e.into()))?;
            self.writer_direct = false;
        }
        let slices: Vec<std::io::IoSlice> =
            blocks.iter().map(|b| std::io::IoSlice::new(b)).collect();
        // Bytes of `blocks` on disk so far.
        let done = match file.write_vectored(&slices) {
            Ok(n) => n,
            // Refused (a file system without O_DIRECT for this): nothing
            // was written; buffered from here on.
            Err(e) if self.writer_direct && e.raw_os_error() == Some(libc::EINVAL) => 0,
            Err(e) => return Err(io("writing a virtual tape file")(e)),
        };
        if done < total {
            if self.writer_direct {
                // After a short write the next would start unaligned.
                crate::fsutil::set_direct(file, false)
                    .map_err(|e| io("writing a virtual tape file")(e.into()))?;
                self.writer_direct = false;
            }
            let mut skip = done;
            for b in blocks {
                let from = skip.min(b.len());
                skip -= from;
                file.write_all(&b[from..])
                    .map_err(io("writing a virtual tape file"))?;
            }
        }
        for b in blocks {
            self.meta.files[f].push(b.len() as u32);
        }
        self.dirty_bytes += total as u64;
        if self.dirty_bytes >= 64 << 20 {
            self.save()?;
        }
        Ok(())
    }

    /// Close file `f` with a filemark, the next file starting there. Nothing
    /// is committed: the drive's buffer. The next save (a flush, which a
    /// waiting filemark is; a reposition; every 64 MiB or 64 files) syncs
    /// the file's data before `meta.json` records the filemark, so a power
    /// cut after it loses none of it (`scripts/powercut-vm` found a label
    /// lost when that order was the other way); a power cut or a killed
    /// process before it loses the file, as a real drive loses its buffer.
    pub fn close_file(&mut self, f: usize) -> Result<(), TapeError> {
        self.meta.files[f].filemark = true;
        // The next file exists from the filemark on, if only empty.
        File::create(self.file_path(f + 1)).map_err(io("creating a virtual tape file"))?;
        self.meta.files.push(FileLayout::default());
        if let Some((_, file)) = self.writer.take() {
            self.unsynced.push(file);
        }
        self.dirty_bytes += 1;
        // Each keeps a descriptor open: small files commit by number too.
        if self.unsynced.len() >= 64 {
            self.save()?;
        }
        Ok(())
    }

    /// Read block `b` of file `f` into `buf` (which is large enough). With
    /// `O_DIRECT` when the block starts on a page and `buf` is page-aligned
    /// with room for the block rounded up to whole pages (the bytes past
    /// the block are then overwritten): a tape file is read once, by
    /// reel-verify, and its pages in the page cache would only push out
    /// what is read again (and copying them out cost more than reading
    /// the disk on this project's virtual machine). Otherwise through the
    /// page cache.
    pub fn read_block(&mut self, f: usize, b: u64, buf: &mut [u8]) -> Result<usize, TapeError> {
        use std::os::unix::fs::FileExt;
        let (offset, size) = self.meta.files[f]
            .block(b)
            .ok_or_else(|| TapeError::Invalid(format!("no block {b} in tape file {f}")))?;
        if let Some((wf, file)) = &mut self.writer
            && *wf == f
        {
            file.flush().map_err(io("flushing a virtual tape file"))?;
        }
        if self.reader.as_ref().is_none_or(|r| r.file_no != f) {
            let path = self.file_path(f);
            let file = File::open(&path).map_err(io("opening a virtual tape file"))?;
            let direct = File::open(&path)
                .ok()
                .filter(|d| crate::fsutil::set_direct(d, true).is_ok());
            self.reader = Some(Reader {
                file_no: f,
                file,
                direct,
            });
        }
        let reader = self.reader.as_mut().expect("reader just set");
        let size = size as usize;
        let whole = size.div_ceil(PAGE) * PAGE;
        if let Some(direct) = &reader.direct
            && offset % PAGE as u64 == 0
            && let Some(into) = buf.get_mut(..whole)
            && crate::fsutil::whole_pages(into)
        {
            match read_fully_at(direct, into, offset) {
                // The file's end may come before the last page does.
                Ok(n) if n >= size => return Ok(size),
                Ok(_) => {} // shorter than its layout says: as buffered, below
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => reader.direct = None,
                Err(e) => return Err(io("reading a virtual tape file")(e)),
            }
        }
        reader
            .file
            .read_exact_at(&mut buf[..size], offset)
            .map_err(io("reading a virtual tape file"))?;
        Ok(size)
    }
}

/// Read whole pages into `buf` from `offset` with a file opened with
/// `O_DIRECT`, until it is full or the file ends (a read that ends off a
/// page boundary is the end: the next could not be aligned): the bytes
/// read.
fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) if k % PAGE != 0 => return Ok(n + k),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_runs() {
        let mut l = FileLayout::default();
        for s in [512, 512, 512, 100, 512] {
            l.push(s);
        }
        assert_eq!(l.runs, [(512, 3), (100, 1), (512, 1)]);
        assert_eq!(l.blocks(), 5);
        assert_eq!(l.bytes(), 2148);
        assert_eq!(l.block(3), Some((1536, 100)));
        assert_eq!(l.block(4), Some((1636, 512)));
        assert_eq!(l.block(5), None);
        l.truncate(2);
        assert_eq!(l.runs, [(512, 2)]);
    }

    /// What was written after the last save was the drive's buffer: gone
    /// after a crash, as after a real drive's power cut; what was saved
    /// stays.
    #[test]
    fn a_crash_before_saving_keeps_what_was_saved_and_loses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("T1");
        let mut img = Image::create(&t, "T1", Size(1 << 30), Size(1 << 20)).unwrap();
        img.truncate_at(0, 0).unwrap();
        img.append_block(0, &[1; 1000]).unwrap();
        img.save().unwrap();
        img.append_block(0, &[2; 1000]).unwrap();
        img.append_block(0, &[3; 1000]).unwrap();
        std::mem::forget(img); // as if killed: no save on drop
        let img = Image::open(&t).unwrap();
        assert_eq!(img.meta.files[0].runs, [(1000, 1)]);
        assert_eq!(fs::read(img.file_path(0)).unwrap(), [1; 1000]);
    }
}
