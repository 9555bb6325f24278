//! A drive of the virtual library that `reel-tcmu` serves and whose tape
//! the changer it also serves can move. A [`VirtualDrive`] holds its
//! drive's lock and reads which tape it has once, when opened; a [`Bay`]
//! wraps one so that the changer can close it around a move (releasing the
//! lock, saving the position in `library.json`), let the virtual library
//! move the tape, and open it again, now with the new tape or none.
//!
//! The [`Ssc`](super::ssc::Ssc) of a served drive sits behind a mutex that
//! both the drive's ring thread and the changer's take, so a move never
//! happens in the middle of a drive's command.

use std::path::{Path, PathBuf};

use crate::tape::{Drive, DriveStatus, Read, TapeError, Written};
use crate::vtl::{self, LibrarySpec, VirtualDrive};

pub struct Bay {
    dir: PathBuf,
    index: u32,
    device: String,
    /// `None` only while the changer moves a tape, or when reopening failed.
    drive: Option<VirtualDrive>,
    /// The block size set through MODE SELECT, kept across tape changes as
    /// a real drive keeps its mode.
    block_size: u32,
}

impl Bay {
    /// Open drive `index` of the library at `dir`, creating the library
    /// with `spec` if needed.
    pub fn open(dir: &Path, index: u32, spec: &LibrarySpec) -> Result<Bay, TapeError> {
        let drive = vtl::open_drive(dir, index, spec)?;
        Ok(Bay {
            dir: dir.to_path_buf(),
            index,
            device: drive.device().to_string(),
            drive: Some(drive),
            block_size: 0,
        })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    /// Close the drive, run `change` (a move in the library), and open it
    /// again whatever `change` returned.
    pub fn around<T>(&mut self, change: impl FnOnce() -> T) -> Result<T, TapeError> {
        self.drive = None;
        let out = change();
        let mut drive = vtl::open_drive(&self.dir, self.index, &LibrarySpec::default())?;
        if self.block_size != 0 {
            // A tape is needed to set a fixed size; an empty drive keeps
            // the mode for the next one.
            let _ = drive.set_block_size(self.block_size);
        }
        self.drive = Some(drive);
        Ok(out)
    }

    fn get(&mut self) -> Result<&mut VirtualDrive, TapeError> {
        self.drive
            .as_mut()
            .ok_or_else(|| TapeError::NoDevice(format!("{}: reopening failed", self.device)))
    }
}

impl super::ssc::Cartridge for Bay {
    fn cartridge(&mut self) -> Option<&mut crate::vtl::Image> {
        self.drive.as_mut()?.image_mut()
    }
}

impl Drive for Bay {
    fn device(&self) -> &str {
        &self.device
    }
    fn status(&mut self) -> Result<DriveStatus, TapeError> {
        self.get()?.status()
    }
    fn rewind(&mut self) -> Result<(), TapeError> {
        self.get()?.rewind()
    }
    fn forward_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        self.get()?.forward_filemarks(n)
    }
    fn back_filemarks(&mut self, n: u32) -> Result<(), TapeError> {
        self.get()?.back_filemarks(n)
    }
    fn end_of_data(&mut self) -> Result<(), TapeError> {
        self.get()?.end_of_data()
    }
    fn position(&mut self) -> Result<u64, TapeError> {
        self.get()?.position()
    }
    fn seek(&mut self, block: u64) -> Result<(), TapeError> {
        self.get()?.seek(block)
    }
    fn write_filemarks(&mut self, n: u32) -> Result<Written, TapeError> {
        self.get()?.write_filemarks(n)
    }
    fn write_filemarks_immediate(&mut self, n: u32) -> Result<Written, TapeError> {
        self.get()?.write_filemarks_immediate(n)
    }
    fn flush(&mut self) -> Result<Written, TapeError> {
        self.get()?.flush()
    }
    fn read_block(&mut self, buf: &mut [u8]) -> Result<Read, TapeError> {
        self.get()?.read_block(buf)
    }
    fn write_block(&mut self, data: &[u8]) -> Result<Written, TapeError> {
        self.get()?.write_block(data)
    }
    fn set_block_size(&mut self, size: u32) -> Result<(), TapeError> {
        self.get()?.set_block_size(size)?;
        self.block_size = size;
        Ok(())
    }
    fn load(&mut self) -> Result<(), TapeError> {
        self.get()?.load()
    }
    fn unload(&mut self) -> Result<(), TapeError> {
        self.get()?.unload()
    }
    fn erase(&mut self, long: bool) -> Result<(), TapeError> {
        self.get()?.erase(long)
    }
    fn max_block_size(&mut self) -> Result<Option<u32>, TapeError> {
        self.get()?.max_block_size()
    }
    fn tape_alerts(&mut self) -> Result<Option<crate::scsi::tapealert::TapeAlerts>, TapeError> {
        self.get()?.tape_alerts()
    }
    fn cartridge_memory(&mut self) -> Result<Option<crate::scsi::mam::CartridgeMemory>, TapeError> {
        self.get()?.cartridge_memory()
    }
}
