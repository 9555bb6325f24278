//! [`SgTape`] as a [`Drive`]: each operation as the SSC commands it takes
//! and the sense it may meet (the module's doc says how each is read).

use super::{MAX24, SgTape, cdb, timeout};
use crate::scsi::encryption::{self, DriveKey};
use crate::scsi::mam::CartridgeMemory;
use crate::scsi::sense::key;
use crate::scsi::sg_io::{Data, Scsi};
use crate::scsi::tapealert::TapeAlerts;
use crate::scsi::volume::VolumeStatistics;
use crate::tape::linux_st::SystemClock;
use crate::tape::{Drive, DriveStatus, Read, TapeError, Written};

impl<S: Scsi> Drive for SgTape<S> {
    fn device(&self) -> &str {
        &self.device
    }

    fn status(&mut self) -> Result<DriveStatus, TapeError> {
        let mut none = [];
        match self.ask(&cdb::TEST_UNIT_READY, &mut none) {
            Ok(_) => {}
            Err(e) => {
                return match e.decoded() {
                    Some(s) if s.no_medium() => Ok(DriveStatus {
                        door_open: true,
                        ..DriveStatus::default()
                    }),
                    Some(s) if s.key == key::NOT_READY => Ok(DriveStatus::default()),
                    _ => Err(self.error("test unit ready", e)),
                };
            }
        }
        let mode = self.mode()?;
        let position = self.read_position().ok();
        Ok(DriveStatus {
            online: true,
            bot: position.is_some_and(|p| p.bop),
            eot: position.is_some_and(|p| p.eop) || self.warned,
            eod: self.eod,
            filemark: self.filemark,
            write_protected: mode.write_protected || self.write_protected,
            door_open: false,
            file: position.and_then(|p| p.file),
            block: None,
            position: position.map(|p| p.block),
            block_size: mode.block_size,
            density: mode.density,
            volume: None,
        })
    }

    fn rewind(&mut self) -> Result<(), TapeError> {
        self.moved();
        self.send(&cdb::REWIND, Data::None, timeout::MOVE)
            .map(drop)
            .map_err(|e| self.error("rewind", e))
    }

    fn forward_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        self.space_filemarks("forward filemarks", i64::from(n))
    }

    fn back_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        self.space_filemarks("back filemarks", -i64::from(n))
    }

    fn end_of_data(&mut self) -> Result<(), TapeError> {
        self.moved();
        self.send(&cdb::space6(3, 0), Data::None, timeout::MOVE)
            .map_err(|e| self.error("space to end of data", e))?;
        self.eod = true;
        Ok(())
    }

    fn position(&mut self) -> Result<u64, TapeError> {
        Ok(self.read_position()?.block)
    }

    /// LOCATE, then the position read back: a drive that lands one block
    /// off is located again with the offset, which is kept.
    fn seek(&mut self, block: u64) -> Result<(), TapeError> {
        let offset = self.quirks.locate_offset;
        self.locate(block.saturating_add_signed(offset))?;
        let at = self.read_position()?.block;
        if at == block {
            return Ok(());
        }
        let off = block as i64 - at as i64;
        if offset == 0 && off.abs() == 1 {
            self.locate(block.saturating_add_signed(off))?;
            if self.read_position()?.block == block {
                log::warn!(
                    "{}: LOCATE lands {} block off; correcting every LOCATE by {off:+}",
                    self.device,
                    off.abs()
                );
                self.quirks.locate_offset = off;
                return Ok(());
            }
        }
        Err(TapeError::io(
            "seek",
            std::io::Error::other(format!(
                "{}: LOCATE to block {block} left the tape at block {at}",
                self.device
            )),
        ))
    }

    fn write_filemarks(&mut self, n: u32) -> Result<Written, TapeError> {
        self.filemarks(n, false)
    }

    fn write_filemarks_immediate(&mut self, n: u32) -> Result<Written, TapeError> {
        self.filemarks(n, true)
    }

    fn flush(&mut self) -> Result<Written, TapeError> {
        self.filemarks(0, false)
    }

    fn read_block(&mut self, buf: &mut [u8]) -> Result<Read, TapeError> {
        if buf.is_empty() {
            return Err(TapeError::Invalid("read: the buffer is empty".into()));
        }
        let len = buf
            .len()
            .min(self.limit.unwrap_or(MAX24).min(MAX24) as usize);
        self.filemark = false;
        let r = self.send(
            &cdb::transfer6(0x08, len as u32),
            Data::In(&mut buf[..len]),
            timeout::TRANSFER,
        );
        let e = match r {
            Ok(n) => {
                self.eod = false;
                return Ok(Read::Data(n));
            }
            Err(e) => e,
        };
        let Some(s) = e.decoded() else {
            return Err(self.error("read", e));
        };
        if s.filemark {
            self.filemark = true;
            return Ok(Read::Filemark);
        }
        if s.key == key::BLANK_CHECK || (s.key == key::NO_SENSE && (s.asc, s.ascq) == (0, 5)) {
            self.eod = true;
            return Ok(Read::EndOfData);
        }
        if s.ili && matches!(s.key, key::NO_SENSE | key::RECOVERED_ERROR) {
            return match s.info {
                Some(residue) if residue >= 0 && residue as usize <= len => {
                    Ok(Read::Data(len - residue as usize))
                }
                Some(_) => Err(TapeError::BlockTooLarge { buffer: buf.len() }),
                None => Err(TapeError::io(
                    "read",
                    std::io::Error::other(format!(
                        "{}: a block of another length than asked, and the drive did not say how long ({s})",
                        self.device
                    )),
                )),
            };
        }
        if s.key == key::RECOVERED_ERROR && !s.eom {
            return Ok(Read::Data(len));
        }
        Err(self.error("read", e))
    }

    fn write_block(&mut self, data: &[u8]) -> Result<Written, TapeError> {
        if self.write_protected {
            return Err(TapeError::WriteProtected);
        }
        if data.is_empty() {
            return Err(TapeError::Invalid(
                "write: a tape block cannot be empty".into(),
            ));
        }
        let len = u32::try_from(data.len())
            .ok()
            .filter(|&n| n <= self.limit.unwrap_or(MAX24).min(MAX24))
            .ok_or_else(|| {
                TapeError::Invalid(format!(
                    "write: a block of {} bytes is larger than the drive takes ({})",
                    data.len(),
                    self.limit.unwrap_or(MAX24)
                ))
            })?;
        self.eod = false;
        let r = self.send(
            &cdb::transfer6(0x0a, len),
            Data::Out(data),
            timeout::TRANSFER,
        );
        self.written("write", r)
    }

    fn set_block_size(&mut self, size: u32) -> Result<(), TapeError> {
        let (c, list) = cdb::mode_select_block_size(self.buffered, size);
        self.send(&c, Data::Out(&list), timeout::QUICK)
            .map(drop)
            .map_err(|e| self.error("set block size (MODE SELECT)", e))
    }

    fn load(&mut self) -> Result<(), TapeError> {
        self.load_with(&mut SystemClock::default())
    }

    fn unload(&mut self) -> Result<(), TapeError> {
        self.moved();
        self.send(&cdb::load_unload(false), Data::None, timeout::MOVE)
            .map(drop)
            .map_err(|e| self.error("unload", e))
    }

    fn erase(&mut self, long: bool) -> Result<(), TapeError> {
        if self.write_protected {
            return Err(TapeError::WriteProtected);
        }
        self.moved();
        let t = if long {
            timeout::LONG_ERASE
        } else {
            timeout::MOVE
        };
        self.send(&cdb::erase(long), Data::None, t)
            .map(drop)
            .map_err(|e| match self.error("erase", e) {
                TapeError::WriteProtected => TapeError::WriteProtected,
                other => other,
            })
    }

    fn max_block_size(&mut self) -> Result<Option<u32>, TapeError> {
        Ok(self.limit)
    }

    fn tape_alerts(&mut self) -> Result<Option<TapeAlerts>, TapeError> {
        let device = self.device.clone();
        Ok(crate::scsi::tapealert::read(&device, |page, buf| {
            let cdb = crate::scsi::sg_io::log_sense_cdb(page, buf.len());
            self.ask(&cdb, buf)
        }))
    }

    fn set_encryption(&mut self, key: Option<&DriveKey>) -> Result<(), TapeError> {
        let r = encryption::apply(key, |cdb, data| self.scsi.run(cdb, data, timeout::QUICK));
        self.keyed = key.is_some() && r.is_ok();
        r.map_err(|m| {
            TapeError::io(
                "drive encryption",
                std::io::Error::other(format!("{}: {m}", self.device)),
            )
        })
    }

    fn encryption(&mut self) -> Result<Option<encryption::Status>, TapeError> {
        Ok(encryption::status(|cdb, buf| self.ask(cdb, buf)))
    }

    fn volume_statistics(&mut self) -> Result<Option<VolumeStatistics>, TapeError> {
        let device = self.device.clone();
        Ok(crate::scsi::volume::read(&device, |page, buf| {
            let cdb = crate::scsi::sg_io::log_sense_cdb(page, buf.len());
            self.ask(&cdb, buf)
        }))
    }

    fn cartridge_memory(&mut self) -> Result<Option<CartridgeMemory>, TapeError> {
        let mut buf = vec![0u8; 8192];
        let cdb = crate::scsi::mam::read_attribute_cdb(buf.len() as u32);
        match self.ask(&cdb, &mut buf) {
            Ok(n) => Ok(Some(CartridgeMemory::from_attributes(&buf[..n]))),
            Err(e) => {
                log::debug!("{}: READ ATTRIBUTE: {e}", self.device);
                Ok(None)
            }
        }
    }
}

impl<S: Scsi> SgTape<S> {
    /// WRITE FILEMARKS of `n`, waiting for the tape or (`immed`) not.
    fn filemarks(&mut self, n: u32, immed: bool) -> Result<Written, TapeError> {
        if self.write_protected {
            return Err(TapeError::WriteProtected);
        }
        if n > MAX24 {
            return Err(TapeError::Invalid(format!(
                "{n} filemarks at once is too many"
            )));
        }
        self.eod = false;
        let r = self.send(
            &cdb::write_filemarks(n, immed),
            Data::None,
            timeout::TRANSFER,
        );
        self.written("write filemarks", r)
    }
}
