//! A drive of the virtual library: [`Drive`] over a tape [`Image`], with the
//! semantics of a real drive in variable-block mode — writing anywhere but at
//! the end of data discards what follows, filemarks, end of data, an
//! early-warning zone where writes still succeed, then no room at all —
//! and the faults a test asks for.
//!
//! The handle holds the drive's lock file for its whole life, so two
//! programs never use one drive at once.

use std::fs::File;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::Flock;

use super::image::Image;
use super::library::Library;
use crate::scsi::encryption::{self, DriveKey};
use crate::scsi::mam::CartridgeMemory;
use crate::scsi::tapealert::TapeAlerts;
use crate::scsi::volume::VolumeStatistics;
use crate::tape::speed::{DriveModel, ModelStats, Paced};
use crate::tape::{Drive, DriveStatus, Read, TapeError, Written};
use crate::tcmu::ssc::crypto::Crypto;

/// Where the head is: block `block` of tape file `file`. At `block ==
/// blocks(file)` the head sits on the file's filemark (or at the end of
/// data when the file is the last, open one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Head {
    file: usize,
    block: u64,
}

pub struct VirtualDrive {
    device: String,
    library: Library,
    index: u32,
    image: Option<Image>,
    head: Head,
    after_filemark: bool,
    block_size: u32,
    /// The speed model, when the tape's meta.json asks for one: writes are
    /// then paced in real time like an LTO drive's, and reads go no faster
    /// than its top speed.
    pace: Option<Paced>,
    /// The data key reel set on this handle, with the engine reel-tcmu's
    /// drives encrypt with (AES-256-GCM): blocks written are sealed,
    /// sealed blocks read are opened. `None` passes blocks as they are
    /// stored, so that reel-tcmu, which encrypts above this drive, sees
    /// them raw.
    crypto: Option<Crypto>,
    _lock: Flock<File>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn eio(op: &'static str) -> TapeError {
    TapeError::io(op, std::io::Error::from_raw_os_error(libc::EIO))
}

impl VirtualDrive {
    /// Open drive `index` of `library`, taking its lock.
    pub fn open(library: Library, index: u32, device: String) -> Result<VirtualDrive, TapeError> {
        let lock = library.lock_drive(index)?;
        let state = {
            let _guard = library.lock()?;
            let inv = library.read()?;
            inv.drives.get(index as usize).cloned().ok_or_else(|| {
                TapeError::Invalid(format!(
                    "{device}: the library has {} drive(s)",
                    inv.drives.len()
                ))
            })?
        };
        let image = match (&state.tape, state.ejected) {
            (Some(barcode), false) => Some(Image::open(&library.tape_dir(barcode))?),
            _ => None,
        };
        let mut drive = VirtualDrive {
            device,
            library,
            index,
            image,
            head: Head::default(),
            after_filemark: false,
            block_size: 0,
            pace: None,
            crypto: None,
            _lock: lock,
        };
        drive.start_pacing()?;
        if let (Some(image), Some(position)) = (&drive.image, state.position) {
            drive.head = Self::head_at(image, position).unwrap_or_else(|| Self::eod_head(image));
        }
        Ok(drive)
    }

    /// Start the speed model of the loaded tape, if it has one.
    fn start_pacing(&mut self) -> Result<(), TapeError> {
        self.pace = match self.image.as_ref().and_then(|i| i.meta.speed.clone()) {
            Some(params) => {
                let model = DriveModel::new(params)
                    .map_err(|e| TapeError::Invalid(format!("speed model in meta.json: {e}")))?;
                Some(Paced::new(model, crate::tape::speed::RealClock::start()))
            }
            None => None,
        };
        Ok(())
    }

    /// What the speed model saw so far (bytes, backhitches, time per speed
    /// step), when the tape has one.
    pub fn speed_stats(&mut self) -> Option<ModelStats> {
        self.pace.as_mut().map(|p| p.stats_now())
    }

    /// Wait until the drive's buffer is on tape, as a real drive does
    /// before a filemark, a reposition or an unload.
    fn drain(&mut self) {
        if let Some(p) = self.pace.as_mut() {
            p.finish();
        }
    }

    /// The head moves elsewhere: what the drive read ahead is gone.
    fn repositioned(&mut self) {
        if let Some(p) = self.pace.as_mut() {
            p.reposition();
        }
    }

    /// The head position for a logical address, if it is on the tape.
    fn head_at(image: &Image, address: u64) -> Option<Head> {
        let mut start = 0;
        for (f, l) in image.meta.files.iter().enumerate() {
            let end = start + l.blocks() + u64::from(l.filemark);
            if address < end || (address == end && f + 1 == image.meta.files.len() && !l.filemark) {
                return Some(Head {
                    file: f,
                    block: address - start,
                });
            }
            start = end;
        }
        (address == 0).then_some(Head::default())
    }

    /// Remember the head position in library.json for the next user.
    fn save_position(&mut self) -> Result<(), TapeError> {
        let position = self
            .image
            .as_ref()
            .map(|image| Self::address(image, self.head));
        let _guard = self.library.lock()?;
        let mut inv = self.library.read()?;
        inv.drives[self.index as usize].position = position;
        self.library.write(&inv)
    }

    /// The loaded tape, if ready.
    fn ready(&mut self) -> Result<&mut Image, TapeError> {
        let image = self.image.as_mut().ok_or(TapeError::NoTape)?;
        if image.meta.not_ready_until.is_some_and(|t| t > now()) {
            return Err(TapeError::NotReady);
        }
        Ok(image)
    }

    /// The loaded tape's image, for tests that inject faults.
    pub fn image_mut(&mut self) -> Option<&mut Image> {
        self.image.as_mut()
    }

    fn blocks(image: &Image, f: usize) -> u64 {
        image.meta.files.get(f).map_or(0, |l| l.blocks())
    }

    /// The head's logical address: blocks and filemarks before it.
    fn address(image: &Image, head: Head) -> u64 {
        let before: u64 = image.meta.files[..head.file.min(image.meta.files.len())]
            .iter()
            .map(|l| l.blocks() + u64::from(l.filemark))
            .sum();
        before + head.block
    }

    fn eod_head(image: &Image) -> Head {
        match image.meta.files.len() {
            0 => Head::default(),
            n => Head {
                file: n - 1,
                block: image.meta.files[n - 1].blocks(),
            },
        }
    }

    fn at_eod(image: &Image, head: Head) -> bool {
        head == Self::eod_head(image) && image.meta.files.last().is_none_or(|l| !l.filemark)
    }

    fn past_early_warning(image: &Image) -> bool {
        image.used()
            > image
                .meta
                .capacity
                .0
                .saturating_sub(image.meta.early_warning.0)
    }

    /// Prepare to write at the head: refuse a protected tape, discard what
    /// lies after the head.
    fn prepare_write(&mut self) -> Result<(), TapeError> {
        let head = self.head;
        let image = self.ready()?;
        if image.meta.write_protected {
            return Err(TapeError::WriteProtected);
        }
        if !Self::at_eod(image, head) || image.meta.files.len() <= head.file {
            image.truncate_at(head.file, head.block)?;
        }
        Ok(())
    }

    /// `n` filemarks at the head. They join the drive's buffer; waiting
    /// (not `immediate`), the buffer then goes to tape (the tape stops) and
    /// everything is committed. `immediate`: committed at the next save (a
    /// flush, a waiting filemark, a reposition).
    fn filemarks(&mut self, n: u32, immediate: bool) -> Result<Written, TapeError> {
        self.prepare_write()?;
        if !immediate {
            self.drain();
        }
        let image = self.image.as_mut().expect("ready checked");
        for _ in 0..n {
            image.close_file(self.head.file)?;
            self.head = Head {
                file: self.head.file + 1,
                block: 0,
            };
        }
        if !immediate {
            image.flush()?;
        }
        self.after_filemark = false;
        Ok(if Self::past_early_warning(image) {
            Written::EarlyWarning
        } else {
            Written::Ok
        })
    }

    fn set_ejected(&mut self, ejected: bool) -> Result<(), TapeError> {
        let _guard = self.library.lock()?;
        let mut inv = self.library.read()?;
        inv.drives[self.index as usize].ejected = ejected;
        self.library.write(&inv)
    }
}

impl VirtualDrive {
    /// Read the block at `head`, opening it with `crypto` when reel set a
    /// key.
    fn read_at(
        &mut self,
        head: Head,
        buf: &mut [u8],
        crypto: Option<&Crypto>,
    ) -> Result<Read, TapeError> {
        let image = self.ready()?;
        let Some(layout) = image.meta.files.get(head.file) else {
            return Ok(Read::EndOfData);
        };
        if head.block == layout.blocks() {
            if layout.filemark {
                self.head = Head {
                    file: head.file + 1,
                    block: 0,
                };
                self.after_filemark = true;
                return Ok(Read::Filemark);
            }
            return Ok(Read::EndOfData);
        }
        let (_, size) = layout.block(head.block).expect("block within file");
        let address = Self::address(image, head);
        let faulty = image.meta.faults.read_errors.contains(&address);
        let flips: Vec<usize> = image
            .meta
            .faults
            .flip
            .iter()
            .filter(|f| f.block == address)
            .map(|f| f.offset)
            .collect();
        let fits = size as usize <= buf.len();
        let result = match (faulty, fits, crypto) {
            (true, _, _) => {
                image.count_error(false);
                Err(eio("reading a block (injected read error)"))
            }
            (false, _, Some(crypto)) => {
                let mut stored = vec![0u8; size as usize];
                let n = image.read_block(head.file, head.block, &mut stored)?;
                image.count_read(n as u64);
                for offset in flips.into_iter().filter(|&o| o < n) {
                    stored[offset] ^= 0xff;
                }
                match crypto.open(&stored[..n]) {
                    Ok(plain) => {
                        let plain = plain.as_deref().unwrap_or(&stored[..n]);
                        match buf.get_mut(..plain.len()) {
                            Some(b) => {
                                b.copy_from_slice(plain);
                                Ok(Read::Data(plain.len()))
                            }
                            None => Err(TapeError::BlockTooLarge { buffer: buf.len() }),
                        }
                    }
                    Err(sense) => Err(refused("reading a block", &sense)),
                }
            }
            (false, false, None) => Err(TapeError::BlockTooLarge { buffer: buf.len() }),
            (false, true, None) => {
                let n = image.read_block(head.file, head.block, buf)?;
                image.count_read(n as u64);
                for offset in flips.into_iter().filter(|&o| o < n) {
                    buf[offset] ^= 0xff;
                }
                Ok(Read::Data(n))
            }
        };
        if let (Some(p), Ok(Read::Data(_))) = (self.pace.as_mut(), &result) {
            p.read(u64::from(size));
        }
        // Like st, the head moves past the block whatever happened.
        self.head.block += 1;
        self.after_filemark = false;
        result
    }
}

impl Drive for VirtualDrive {
    fn device(&self) -> &str {
        &self.device
    }

    fn status(&mut self) -> Result<DriveStatus, TapeError> {
        let head = self.head;
        let (after_filemark, block_size) = (self.after_filemark, self.block_size);
        let Some(image) = self.image.as_ref() else {
            return Ok(DriveStatus {
                door_open: true,
                block_size,
                ..DriveStatus::default()
            });
        };
        let online = !image.meta.not_ready_until.is_some_and(|t| t > now());
        Ok(DriveStatus {
            online,
            bot: head == Head::default(),
            eot: Self::past_early_warning(image),
            eod: Self::at_eod(image, head),
            filemark: after_filemark,
            write_protected: image.meta.write_protected,
            door_open: false,
            file: Some(head.file as u64),
            block: Some(head.block),
            position: Some(Self::address(image, head)),
            block_size,
            density: None,
            volume: Some(image.meta.barcode.clone()),
        })
    }

    fn rewind(&mut self) -> Result<(), TapeError> {
        self.repositioned();
        self.ready()?;
        self.drain();
        self.ready()?.flush()?;
        self.head = Head::default();
        self.after_filemark = false;
        Ok(())
    }

    fn forward_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        self.repositioned();
        let mut head = self.head;
        let image = self.ready()?;
        image.flush()?;
        for _ in 0..n {
            match image.meta.files.get(head.file) {
                Some(l) if l.filemark => {
                    head = Head {
                        file: head.file + 1,
                        block: 0,
                    }
                }
                _ => {
                    let eod = Self::eod_head(image);
                    self.head = eod;
                    return Err(eio("spacing forward: end of data reached"));
                }
            }
        }
        self.head = head;
        self.after_filemark = n > 0;
        Ok(())
    }

    fn back_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        self.repositioned();
        let head = self.head;
        let image = self.ready()?;
        image.flush()?;
        if n == 0 {
            return Ok(());
        }
        // The filemark closing file f-1 is the first one behind the head.
        match head.file.checked_sub(n as usize) {
            Some(f) => {
                self.head = Head {
                    file: f,
                    block: Self::blocks(image, f),
                };
                self.after_filemark = false;
                Ok(())
            }
            None => {
                self.head = Head::default();
                Err(eio("spacing backward: beginning of tape reached"))
            }
        }
    }

    fn end_of_data(&mut self) -> Result<(), TapeError> {
        self.repositioned();
        let image = self.ready()?;
        image.flush()?;
        self.head = Self::eod_head(image);
        self.after_filemark = false;
        Ok(())
    }

    fn position(&mut self) -> Result<u64, TapeError> {
        let head = self.head;
        let image = self.ready()?;
        Ok(Self::address(image, head))
    }

    fn seek(&mut self, block: u64) -> Result<(), TapeError> {
        let image = self.ready()?;
        image.flush()?;
        let found = Self::head_at(image, block);
        let eod = Self::eod_head(image);
        self.after_filemark = false;
        let to = found.unwrap_or(eod);
        // A locate to where the head already is does not stop the tape.
        if to != self.head {
            self.repositioned();
        }
        self.head = to;
        match found {
            Some(_) => Ok(()),
            None => Err(eio("seek: beyond the end of data")),
        }
    }

    fn write_filemarks(&mut self, n: u32) -> Result<Written, TapeError> {
        self.filemarks(n, false)
    }

    fn write_filemarks_immediate(&mut self, n: u32) -> Result<Written, TapeError> {
        self.filemarks(n, true)
    }

    fn flush(&mut self) -> Result<Written, TapeError> {
        let image = self.ready()?;
        if image.meta.write_protected {
            return Err(TapeError::WriteProtected);
        }
        self.drain();
        let image = self.image.as_mut().expect("ready checked");
        image.flush()?;
        Ok(if Self::past_early_warning(image) {
            Written::EarlyWarning
        } else {
            Written::Ok
        })
    }

    fn read_block(&mut self, buf: &mut [u8]) -> Result<Read, TapeError> {
        let head = self.head;
        // Taken for the read, put back below whatever the read does.
        let crypto = self.crypto.take();
        let read = self.read_at(head, buf, crypto.as_ref());
        self.crypto = crypto;
        read
    }

    fn write_block(&mut self, data: &[u8]) -> Result<Written, TapeError> {
        if self.block_size != 0 && data.len() != self.block_size as usize {
            return Err(TapeError::Invalid(format!(
                "fixed-block mode: a write of {} bytes, not {}",
                data.len(),
                self.block_size
            )));
        }
        if data.is_empty() {
            return Err(TapeError::Invalid("a tape block cannot be empty".into()));
        }
        self.prepare_write()?;
        let sealed;
        let data = match self.crypto.as_ref().filter(|c| c.encrypting()) {
            Some(crypto) => {
                sealed = crypto
                    .seal(data)
                    .map_err(|s| refused("writing a block", &s))?;
                &sealed[..]
            }
            None => data,
        };
        let head = self.head;
        let image = self.image.as_mut().expect("ready checked");
        if image.meta.faults.write_error_at == Some(Self::address(image, head)) {
            image.count_error(true);
            return Err(eio("writing a block (injected write error)"));
        }
        if image.used() + data.len() as u64 > image.meta.capacity.0 {
            return Err(TapeError::EndOfMedium);
        }
        image.append_block(head.file, data)?;
        image.meta.life.written += data.len() as u64;
        image.meta.life.load_written += data.len() as u64;
        let warning = Self::past_early_warning(image);
        if let Some(p) = self.pace.as_mut() {
            p.write(data.len() as u64);
        }
        self.head.block += 1;
        self.after_filemark = false;
        Ok(if warning {
            Written::EarlyWarning
        } else {
            Written::Ok
        })
    }

    /// One vectored write to the tape file for all of `blocks` when none
    /// needs a write of its own: not sealed one by one, no injected
    /// fault, room for all of them, each a block the mode takes;
    /// otherwise one [`Drive::write_block`] each.
    fn write_blocks(&mut self, blocks: &[&[u8]]) -> Result<(usize, Written), TapeError> {
        let total: u64 = blocks.iter().map(|b| b.len() as u64).sum();
        let fits = self.image.as_ref().is_some_and(|i| {
            i.meta.faults.write_error_at.is_none() && i.used() + total <= i.meta.capacity.0
        });
        let whole = blocks.iter().all(|b| {
            !b.is_empty() && (self.block_size == 0 || b.len() == self.block_size as usize)
        });
        let sealing = self.crypto.as_ref().is_some_and(|c| c.encrypting());
        if blocks.len() < 2 || !fits || !whole || sealing {
            return crate::tape::write_one_by_one(self, blocks);
        }
        self.prepare_write()?;
        let image = self.image.as_mut().expect("ready checked");
        image.append_blocks(self.head.file, blocks)?;
        image.meta.life.written += total;
        image.meta.life.load_written += total;
        let warning = Self::past_early_warning(image);
        if let Some(p) = self.pace.as_mut() {
            p.write(total);
        }
        self.head.block += blocks.len() as u64;
        self.after_filemark = false;
        Ok((
            blocks.len(),
            if warning {
                Written::EarlyWarning
            } else {
                Written::Ok
            },
        ))
    }

    /// 4 MiB of 256 KiB blocks: a disk takes far more for one big write
    /// than for many small ones.
    fn blocks_per_write(&self) -> usize {
        16
    }

    /// Only with a speed model: otherwise the tape is files on a disk.
    fn moves_tape(&self) -> bool {
        self.pace.is_some()
    }

    fn set_block_size(&mut self, size: u32) -> Result<(), TapeError> {
        if size != 0 && size % 4 != 0 {
            return Err(TapeError::Invalid(format!(
                "block size {size} is not a multiple of 4"
            )));
        }
        self.block_size = size;
        Ok(())
    }

    fn tape_alerts(&mut self) -> Result<Option<TapeAlerts>, TapeError> {
        let _guard = self.library.lock()?;
        let inv = self.library.read()?;
        Ok(inv
            .drives
            .get(self.index as usize)
            .map(|d| TapeAlerts::of(&d.alerts)))
    }

    /// From the tape's life counts: its loads, bytes, and the reads and
    /// writes that failed.
    fn volume_statistics(&mut self) -> Result<Option<VolumeStatistics>, TapeError> {
        const MIB: u64 = 1 << 20;
        Ok(self.image.as_ref().map(|image| {
            let life = &image.meta.life;
            VolumeStatistics {
                mounts: Some(life.loads),
                recovered_write_errors: Some(0),
                unrecovered_write_errors: Some(life.write_errors),
                recovered_read_errors: Some(0),
                unrecovered_read_errors: Some(life.read_errors),
                last_mount_unrecovered_write_errors: Some(life.load_write_errors),
                last_mount_unrecovered_read_errors: Some(life.load_read_errors),
                mib_written: Some(life.written / MIB),
                mib_read: Some(life.read / MIB),
            }
        }))
    }

    fn cartridge_memory(&mut self) -> Result<Option<CartridgeMemory>, TapeError> {
        const MIB: u64 = 1 << 20;
        let Some(image) = self.image.as_ref() else {
            return Ok(None);
        };
        let m = &image.meta;
        Ok(Some(CartridgeMemory {
            serial: Some(super::image::medium_serial(&m.barcode)),
            manufacturer: Some("REEL".into()),
            manufactured: m.manufactured.clone(),
            loads: Some(m.life.loads),
            mib_written: Some(m.life.written / MIB),
            mib_read: Some(m.life.read / MIB),
            mib_written_this_load: Some(m.life.load_written / MIB),
            mib_read_this_load: Some(m.life.load_read / MIB),
            mib_remaining: Some(m.capacity.0.saturating_sub(image.used()) / MIB),
            mib_capacity: Some(m.capacity.0 / MIB),
            barcode: None,
        }))
    }

    fn load(&mut self) -> Result<(), TapeError> {
        self.repositioned();
        if self.image.is_none() {
            let inv = self.library.read()?;
            let Some(barcode) = inv.drives[self.index as usize].tape.clone() else {
                return Err(TapeError::NoTape);
            };
            self.set_ejected(false)?;
            let mut image = Image::open(&self.library.tape_dir(&barcode))?;
            image.meta.life.loaded();
            image.save()?;
            self.image = Some(image);
            self.start_pacing()?;
        }
        let image = self.image.as_mut().expect("just loaded");
        if let Some(calibrate) = image.meta.faults.calibrate.take() {
            image.meta.not_ready_until = Some(now() + calibrate.0.as_secs_f64());
            image.save()?;
        }
        self.head = Head::default();
        self.after_filemark = false;
        Ok(())
    }

    fn unload(&mut self) -> Result<(), TapeError> {
        self.drain();
        let Some(mut image) = self.image.take() else {
            return Err(TapeError::NoTape);
        };
        image.close()?;
        drop(image);
        self.head = Head::default();
        self.set_ejected(true)
    }

    fn erase(&mut self, _long: bool) -> Result<(), TapeError> {
        // Both write the end of data at the head; a long erase also
        // overwrites the rest of the medium, which on a file is the same.
        self.prepare_write()?;
        let head = self.head;
        let image = self.image.as_mut().expect("ready checked");
        image.truncate_at(head.file, head.block)?;
        image.save()
    }

    fn max_block_size(&mut self) -> Result<Option<u32>, TapeError> {
        Ok(Some(16 << 20))
    }

    /// The same Set Data Encryption page a real drive gets.
    fn set_encryption(&mut self, key: Option<&DriveKey>) -> Result<(), TapeError> {
        let mut crypto = self.crypto.take().unwrap_or_default();
        crypto
            .set(&encryption::set_page(
                key,
                crate::tcmu::ssc::crypto::AES256_GCM,
            ))
            .map_err(|s| refused("setting the drive key", &s))?;
        self.crypto = key.is_some().then_some(crypto);
        Ok(())
    }

    /// Only while this handle has a key: the virtual drive keeps none
    /// from one program to the next.
    fn encryption(&mut self) -> Result<Option<encryption::Status>, TapeError> {
        Ok(self
            .crypto
            .as_ref()
            .and_then(|c| encryption::Status::from_page(&c.status_page())))
    }
}

/// An error of the encryption engine (its sense) as a [`TapeError`].
fn refused(op: &'static str, sense: &crate::tcmu::sense::Sense) -> TapeError {
    let why = crate::scsi::sense::Sense::parse(&sense.bytes())
        .map_or_else(|| format!("{sense:?}"), |s| s.to_string());
    TapeError::io(op, std::io::Error::other(why))
}

impl Drop for VirtualDrive {
    fn drop(&mut self) {
        if let Some(image) = self.image.as_mut() {
            let _ = image.close();
        }
        let _ = self.save_position();
        // A tape with a speed model reports what the model saw, one JSON
        // line per session, in `<tape>/speed.jsonl` (for benchmarks).
        if let (Some(p), Some(image)) = (self.pace.as_mut(), self.image.as_ref()) {
            p.finish();
            let stats = p.stats_now();
            if stats.bytes > 0
                && let Ok(mut line) = serde_json::to_vec(&stats)
            {
                line.push(b'\n');
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(image.dir().join("speed.jsonl"))
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &line));
            }
        }
    }
}
