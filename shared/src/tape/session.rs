//! A tape session: one drive as the configuration knows it, the library
//! that loads it (if any), and the tapes that go through it. Every program
//! that reads or writes reel tapes gets them here:
//!
//! - [`Session::open`] and [`Session::open_labelled`]: the drive in
//!   variable-block mode, and the reel label of its tape (a blank, foreign
//!   or unreadable tape is exit 69, naming the device);
//! - [`Session::load`]: a tape by its label, through the library, handed
//!   back first from another of its drives that nobody uses;
//! - [`Session::next_writable`]: the next writable tape of a pool, a blank
//!   one labelled with its barcode;
//! - [`Session::writable`]: the tape a write run starts on, taken over
//!   where a killed run stopped in the middle of an archive ([`appendable`]).
//!
//! Whenever a tape leaves a drive it goes back to its home slot
//! ([`ChangerStatus::home_slot`]).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::catalog::tapes::{Tape, TapeState};
use crate::changer::{Changer, ChangerStatus};
use crate::config::{self, Config, Device};
use crate::device::{drive_changer, library_spec, open_changer, open_drive, resolve_drive};
use crate::exit::{Exit, ExitError};
use crate::tape::label::{self, Identity, Label};
use crate::tape::{Drive, TapeError};

/// An error that exits 69 (a tape, drive or library is not there to use).
pub(crate) fn unavailable(m: impl Into<String>) -> anyhow::Error {
    ExitError::new(Exit::Unavailable, m).into()
}

/// Which drive a command means: `device` (`-f`, `--device`), else the
/// `[[drive]]` named `name`, else `env` (a variable such as `$TAPE`, as its
/// name and value), else the first `[[drive]]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Choice<'a> {
    pub device: Option<&'a str>,
    pub name: Option<&'a str>,
    pub env: Option<(&'a str, &'a str)>,
}

impl<'a> Choice<'a> {
    /// `-f DEVICE` or `--drive NAME` from a command line (no variable).
    pub fn given(device: Option<&'a str>, name: Option<&'a str>) -> Choice<'a> {
        Choice {
            device,
            name,
            env: None,
        }
    }
}

/// A drive, its library, and how long to wait for a tape to be ready.
pub struct Session<'c> {
    config: Option<&'c Config>,
    device: Device,
    conf: Option<config::Drive>,
    /// The library that loads the drive, and the drive's number in it.
    library: Option<(Device, u32)>,
    wait: Duration,
}

/// A drive with a tape in it that may be appended to, and what the catalog
/// knows of that tape.
pub type Writable = (Box<dyn Drive>, Label, Tape);

impl<'c> Session<'c> {
    /// The session of the drive `choice` means; a choice that names no
    /// drive is a usage error. `wait`: how long opening waits for a tape
    /// that is not ready yet (a new LTO-9 tape calibrates for up to two
    /// hours at its first load).
    pub fn new(
        config: Option<&'c Config>,
        choice: Choice,
        wait: Duration,
    ) -> Result<Session<'c>, ExitError> {
        let (device, conf) = resolve_drive(config, choice.device, choice.name, choice.env)
            .map_err(|e| ExitError::new(Exit::Usage, e))?;
        let library = config.and_then(|c| drive_changer(c, &device, conf.as_ref()));
        Ok(Session {
            config,
            device,
            conf,
            library,
            wait,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The drive's `[[drive]]` entry, when the configuration has one.
    pub fn conf(&self) -> Option<&config::Drive> {
        self.conf.as_ref()
    }

    /// Read the drive's TapeAlert flags and keep them in the catalog
    /// (`<catalog>/drives/<NAME>.json`, for the supervisor's `drive-alert`
    /// and for people), warning when any is up. A drive that cannot tell,
    /// or a record that cannot be written, is only logged: health is never
    /// a reason to fail a run.
    pub fn record_health(&self, drive: &mut dyn Drive, catalog: &Path) {
        let alerts = match drive.tape_alerts() {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                log::debug!("{}: TapeAlert not read: {e}", self.device);
                return;
            }
        };
        let name = self
            .conf
            .as_ref()
            .map_or_else(|| self.device.to_string(), |c| c.name.clone());
        if !alerts.is_empty() {
            log::warn!("drive {name} ({}): TapeAlert {alerts}", self.device);
        }
        let health =
            crate::catalog::drives::DriveHealth::new(&name, &self.device.to_string(), alerts);
        if let Err(e) = health.save(catalog) {
            log::warn!("drive {name}: its TapeAlert flags could not be recorded: {e}");
        }
    }

    /// A library loads this drive.
    pub fn has_library(&self) -> bool {
        self.library.is_some()
    }

    /// The block size new labels get: the drive's `block_size`, else 256 KiB.
    pub fn block_size(&self) -> u32 {
        self.conf
            .as_ref()
            .map_or(256 << 10, |c| c.block_size.0 as u32)
    }

    /// Open the drive (taking its lock) in variable-block mode, as every
    /// program that reads or writes reel tapes does.
    pub fn open(&self) -> anyhow::Result<Box<dyn Drive>> {
        let spec = library_spec(self.config, &self.device);
        let mut drive = open_drive(&self.device, &spec, self.wait)
            .with_context(|| format!("opening {}", self.device))?;
        drive.set_block_size(0)?;
        Ok(drive)
    }

    /// Open the drive and read the reel label of its tape; a blank, foreign
    /// or unreadable tape is exit 69, naming the device.
    pub fn open_labelled(&self) -> anyhow::Result<(Box<dyn Drive>, Label)> {
        let mut drive = self.open()?;
        let label = self.label_of(drive.as_mut())?;
        self.use_key(drive.as_mut(), &label, false)?;
        Ok((drive, label))
    }

    /// The reel label of the tape in `drive` (this session's), or exit 69.
    pub fn label_of(&self, drive: &mut dyn Drive) -> anyhow::Result<Label> {
        let why = match label::read_label(drive)? {
            Identity::Reel(l) => return Ok(l),
            Identity::Blank => format!("the tape in {} is blank", self.device),
            Identity::Foreign(what) => {
                format!("the tape in {} is not a reel tape: {what}", self.device)
            }
            Identity::Unreadable(why) => {
                format!(
                    "cannot read the label of the tape in {}: {why}",
                    self.device
                )
            }
        };
        Err(unavailable(why))
    }

    /// The tape labelled `want`, opened: the one in the drive when it is
    /// that tape, else loaded through the library. `None` when neither
    /// has it; then the drive is let go.
    pub fn open_tape(&self, want: &str) -> anyhow::Result<Option<(Box<dyn Drive>, Label)>> {
        match self.open_labelled() {
            Ok((drive, label)) if label.label == want => return Ok(Some((drive, label))),
            Ok(_) => {}
            // Nothing usable in the drive is no stop when the library can
            // bring the tape.
            Err(e) if self.has_library() => log::debug!("{e:#}"),
            Err(e) => return Err(e),
        }
        if self.load(want)? {
            return self.open_labelled().map(Some);
        }
        Ok(None)
    }

    fn changer(&self) -> anyhow::Result<(Box<dyn Changer>, &Device, u32)> {
        let (device, index) = self
            .library
            .as_ref()
            .ok_or_else(|| unavailable(format!("no library loads {}", self.device)))?;
        let spec = library_spec(self.config, device);
        let changer = open_changer(device, &spec).with_context(|| format!("opening {device}"))?;
        Ok((changer, device, *index))
    }

    /// Put the tape in `slot` into the drive, the tape there going home
    /// first. The drive's handle must be closed. The drive must be empty
    /// once the changer emptied its element, and hold a tape (that tape,
    /// when the drive tells its barcode) once the changer loaded it; else
    /// this device is not the changer's drive `index` (a wrong `element`)
    /// and nothing is written: exit 69.
    fn swap_in(&self, changer: &mut dyn Changer, index: u32, slot: u32) -> anyhow::Result<()> {
        let status = changer.status()?;
        if status.drives.iter().any(|d| d.index == index && d.full) {
            let home = status.home_slot(index).ok_or_else(|| {
                unavailable(format!(
                    "no empty slot in {} to put a tape back",
                    changer.device()
                ))
            })?;
            changer.unload(index, home)?;
        }
        let library = changer.device().to_string();
        let wrong = |what: String| {
            unavailable(format!(
                "{} is not drive {index} of the library {library}: {what}; refusing to use it (check the [[drive]]'s `element`)",
                self.device
            ))
        };
        if let Some(held) = self.held()? {
            return Err(wrong(format!(
                "the library's drive {index} is empty but {} holds a tape{}",
                self.device,
                held.map(|b| format!(" ({b})")).unwrap_or_default()
            )));
        }
        let barcode = status
            .slots
            .iter()
            .find(|s| s.number == slot)
            .and_then(|s| s.barcode.clone());
        changer.load(slot, index)?;
        match self.held()? {
            None => Err(wrong(format!(
                "the library loaded slot {slot} into its drive {index} but {} has no tape",
                self.device
            ))),
            Some(Some(held)) if barcode.as_ref().is_some_and(|b| b != &held) => {
                Err(wrong(format!(
                    "the library loaded {} from slot {slot} but {} holds {held}",
                    barcode.unwrap_or_default(),
                    self.device
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Whether the drive holds a tape (`Some`), and its barcode when the
    /// drive knows it; opened without waiting, its handle closed again.
    fn held(&self) -> anyhow::Result<Option<Option<String>>> {
        let spec = library_spec(self.config, &self.device);
        let mut drive = match open_drive(&self.device, &spec, Duration::ZERO) {
            Ok(drive) => drive,
            Err(TapeError::NoTape) => return Ok(None),
            // Loading, calibrating: a tape is there.
            Err(TapeError::NotReady) => return Ok(Some(None)),
            Err(e) => {
                return Err(anyhow::Error::from(e).context(format!("opening {}", self.device)));
            }
        };
        match drive.status() {
            Ok(s) if s.door_open => Ok(None),
            Ok(s) => Ok(Some(s.volume)),
            Err(TapeError::NoTape) => Ok(None),
            Err(e) => Err(anyhow::Error::from(e).context(format!("status of {}", self.device))),
        }
    }

    /// Load the tape labelled `want` through the library: the slot whose
    /// barcode is the label first, else each tape in turn, its label read.
    /// A tape in another drive of the library is put back in its slot
    /// first, unless a program uses that drive (exit 75). False when no
    /// library loads this drive, or none of its tapes has that label.
    pub fn load(&self, want: &str) -> anyhow::Result<bool> {
        if self.library.is_none() {
            return Ok(false);
        }
        let (mut changer, changer_device, index) = self.changer()?;
        let status = changer.status()?;
        self.hand_back(changer.as_mut(), &status, changer_device, index, want)?;
        let status = changer.status()?;
        let mut slots: Vec<(bool, u32)> = status
            .slots
            .iter()
            .filter(|s| s.full && !s.import_export)
            .filter(|s| {
                !s.barcode
                    .as_deref()
                    .is_some_and(crate::changer::is_cleaning)
            })
            .map(|s| (s.barcode.as_deref() != Some(want), s.number))
            .collect();
        slots.sort();
        for (_, slot) in slots {
            self.swap_in(changer.as_mut(), index, slot)?;
            let mut drive = self.open()?;
            if let Identity::Reel(l) = label::read_label(drive.as_mut())?
                && l.label == want
            {
                log::info!("loaded tape {want} from slot {slot}");
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A tape `want` in another drive of the library goes back to its home
    /// slot, if no program uses that drive (else exit 75: try later).
    fn hand_back(
        &self,
        changer: &mut dyn Changer,
        status: &ChangerStatus,
        changer_device: &Device,
        index: u32,
        want: &str,
    ) -> anyhow::Result<()> {
        let Some(other) = status
            .drives
            .iter()
            .find(|d| d.index != index && d.full && d.barcode.as_deref() == Some(want))
        else {
            return Ok(());
        };
        let busy = |why: &str| {
            ExitError::new(
                Exit::TempFail,
                format!(
                    "tape {want} is in drive {} of {changer_device}, {why}: try again later",
                    other.index
                ),
            )
        };
        let device = self.config.and_then(|config| {
            config
                .drives
                .iter()
                .find(|d| {
                    drive_changer(config, &d.device, Some(d))
                        .is_some_and(|(c, i)| &c == changer_device && i == other.index)
                })
                .map(|d| d.device.clone())
        });
        let Some(device) = device else {
            return Err(busy("which no [[drive]] of the configuration names").into());
        };
        // Free? (Its lock is taken and let go at once.)
        let spec = library_spec(self.config, changer_device);
        match open_drive(&device, &spec, Duration::ZERO) {
            Ok(free) => drop(free),
            Err(TapeError::Busy(_)) => return Err(busy("which another program uses").into()),
            Err(e) => return Err(anyhow::Error::from(e).context(format!("opening {device}"))),
        }
        let home = status.home_slot(other.index).ok_or_else(|| {
            unavailable(format!(
                "no empty slot in {changer_device} to put a tape back"
            ))
        })?;
        log::info!(
            "tape {want} is in drive {}: moving it back to slot {home}",
            other.index
        );
        changer.unload(other.index, home)?;
        Ok(())
    }

    /// Put the next writable tape of `pool` into the drive (whose handle
    /// must be closed): one the catalog knows as writable in that pool
    /// first, else one it does not know, labelled with its barcode when
    /// blank. `why` says what made the change, for the log. Returns its
    /// barcode.
    pub fn next_writable(&self, catalog: &Path, pool: &str, why: &str) -> anyhow::Result<String> {
        let (mut changer, changer_device, index) = self.changer()?;
        let status = changer.status()?;
        let mut in_slots = Vec::new();
        for slot in status.slots.iter().filter(|s| s.full && !s.import_export) {
            let Some(barcode) = slot.barcode.clone() else {
                continue;
            };
            if !crate::changer::is_cleaning(&barcode) {
                in_slots.push((slot.number, Tape::load(catalog, &barcode)?, barcode));
            }
        }
        // A writable tape of the pool first; else one of its tapes whose
        // every version has expired (relabelled); else a blank one.
        let has_writable = in_slots.iter().any(|(_, known, _)| {
            known.as_ref().is_some_and(|k| {
                k.state == TapeState::Writable && k.pool == pool && k.place.is_none()
            })
        });
        let recyclable = match self.config {
            Some(config) if !has_writable => {
                crate::catalog::retention::recyclable(catalog, config, pool)?
            }
            _ => Vec::new(),
        };
        let mut candidates = Vec::new();
        for (slot, known, barcode) in in_slots {
            match known {
                // Not one marked offsite or lost that is back in a slot
                // without `reel tapes import`: the operator says first.
                Some(known)
                    if known.state == TapeState::Writable
                        && known.pool == pool
                        && known.place.is_none() =>
                {
                    candidates.push((0, slot, barcode))
                }
                Some(known) if recyclable.contains(&known.label) => {
                    candidates.push((1, slot, barcode))
                }
                None => candidates.push((2, slot, barcode)),
                _ => {}
            }
        }
        candidates.sort();
        for (_, slot, barcode) in candidates {
            self.swap_in(changer.as_mut(), index, slot)?;
            let mut drive = self.open()?;
            if drive.status()?.write_protected {
                log::warn!("{why}: {barcode} from slot {slot} is write-protected: skipped");
                continue;
            }
            match label::read_label(drive.as_mut())? {
                Identity::Blank => {
                    let mut new = Label::new(&barcode, pool, self.block_size())?;
                    new.drive_key = self.pool_key(pool)?.map(|k| k.fingerprint);
                    label::write_label(drive.as_mut(), &new)?;
                    log::info!(
                        "{why}: loaded {barcode} from slot {slot}, labelled it (pool {pool})"
                    );
                    return Ok(barcode);
                }
                // A barcode is not always its label: look the label up.
                Identity::Reel(l) => match Tape::load(catalog, &l.label)? {
                    Some(known)
                        if known.uuid == l.uuid
                            && known.pool == pool
                            && recyclable.contains(&known.label) =>
                    {
                        let new = recycle(drive.as_mut(), catalog, &l)?;
                        log::info!(
                            "{why}: loaded {barcode} from slot {slot}: tape {} recycled (every version on it expired), labelled again (uuid {})",
                            new.label,
                            new.uuid
                        );
                        return Ok(barcode);
                    }
                    Some(known)
                        if known.state != TapeState::Writable
                            || known.pool != pool
                            || known.place.is_some() =>
                    {
                        log::debug!(
                            "{barcode} is tape {} ({:?}): not writable here",
                            l.label,
                            known.state
                        );
                    }
                    _ if l.pool != pool => {
                        log::debug!("{barcode} is tape {} of pool {}", l.label, l.pool)
                    }
                    _ => {
                        log::info!(
                            "{why}: loaded {barcode} (tape {}) from slot {slot}",
                            l.label
                        );
                        return Ok(barcode);
                    }
                },
                other => log::debug!("{barcode}: {other:?}: skipped"),
            }
        }
        Err(unavailable(format!(
            "no writable tape of pool {pool} left in the library {changer_device}: add tapes"
        )))
    }

    /// With a library, a blank tape in the drive is labelled with its
    /// barcode (for `pool`), as a blank tape loaded at a change is.
    fn label_blank(&self, drive: &mut dyn Drive, pool: &str) -> anyhow::Result<()> {
        if self.library.is_none() || !matches!(label::read_label(drive)?, Identity::Blank) {
            return Ok(());
        }
        let Some(barcode) = self.barcode_in_drive()? else {
            return Ok(()); // no barcode: the operator labels it
        };
        let mut new = Label::new(&barcode, pool, self.block_size())?;
        new.drive_key = self.pool_key(&new.pool)?.map(|k| k.fingerprint);
        label::write_label(drive, &new)?;
        log::info!(
            "labelled the blank tape {barcode} in {} (pool {pool}{})",
            self.device,
            new.drive_key
                .as_ref()
                .map_or(String::new(), |k| format!(", drive key {k}"))
        );
        Ok(())
    }

    /// The barcode of the tape in the drive, as the library reports it.
    fn barcode_in_drive(&self) -> anyhow::Result<Option<String>> {
        let (mut changer, _, index) = self.changer()?;
        let status = changer.status()?;
        Ok(status
            .drives
            .iter()
            .find(|d| d.index == index)
            .and_then(|d| d.barcode.clone()))
    }

    /// The tape a write run starts on: the one in the drive (a blank one
    /// labelled first, with a library), or, with a library, the next
    /// writable one when the drive is empty (a library's second drive) or
    /// its tape is no longer writable (a run stopped just after it filled
    /// a tape left that tape loaded). Checked by [`appendable`].
    pub fn writable(&self, catalog: &Path) -> anyhow::Result<Writable> {
        self.writable_for(catalog, "default")
    }

    /// [`Session::writable`], a blank tape labelled for `pool` and, when
    /// the drive is empty, a tape of `pool` loaded.
    pub fn writable_for(&self, catalog: &Path, pool: &str) -> anyhow::Result<Writable> {
        match self.writable_in_drive(catalog, pool) {
            Err(e)
                if self.has_library()
                    && e.chain().any(|c| {
                        matches!(c.downcast_ref::<TapeError>(), Some(TapeError::NoTape))
                    }) =>
            {
                log::info!("no tape in {}: loading one from the library", self.device);
                self.next_writable(catalog, pool, "the drive was empty")?;
                self.writable_in_drive(catalog, pool)
            }
            other => other,
        }
    }

    fn writable_in_drive(&self, catalog: &Path, pool: &str) -> anyhow::Result<Writable> {
        let mut drive = self.open()?;
        if drive.status()?.write_protected {
            // Never written to: with a library, the next writable tape of
            // its pool; without one, the operator's turn.
            let its_pool = match label::read_label(drive.as_mut())? {
                Identity::Reel(l) => l.pool,
                _ => pool.to_string(),
            };
            if !self.has_library() {
                return Err(unavailable(format!(
                    "the tape in {} is write-protected: load a writable tape, or slide its tab back",
                    self.device
                )));
            }
            let barcode = self.barcode_in_drive()?.unwrap_or_else(|| "?".into());
            log::warn!(
                "{barcode} in {} is write-protected: not writing to it, changing tapes",
                self.device
            );
            drop(drive);
            self.next_writable(
                catalog,
                &its_pool,
                &format!("{barcode} in {} is write-protected", self.device),
            )?;
            return self.writable_in_drive(catalog, pool);
        }
        self.label_blank(drive.as_mut(), pool)?;
        if self.has_library()
            && let Identity::Reel(l) = label::read_label(drive.as_mut())?
            && Tape::load(catalog, &l.label)?
                .is_some_and(|k| k.uuid == l.uuid && k.state != TapeState::Writable)
        {
            log::info!(
                "tape {} in {} is no longer writable: changing it",
                l.label,
                self.device
            );
            drop(drive);
            return self.after_full(catalog, &l);
        }
        let (label, tape) = appendable(drive.as_mut(), catalog, &self.device)?;
        self.use_key(drive.as_mut(), &label, true)?;
        Ok((drive, label, tape))
    }

    /// The next tape of `full`'s pool through the library (the drive's
    /// handle must be closed), checked by [`appendable`].
    pub fn after_full(&self, catalog: &Path, full: &Label) -> anyhow::Result<Writable> {
        self.of_pool(catalog, &full.pool, &format!("tape {} full", full.label))
    }

    /// The next writable tape of `pool` through the library (the drive's
    /// handle must be closed; `why` for the log), checked by
    /// [`appendable`].
    pub fn of_pool(&self, catalog: &Path, pool: &str, why: &str) -> anyhow::Result<Writable> {
        self.next_writable(catalog, pool, why)?;
        let mut drive = self.open()?;
        let (label, tape) = appendable(drive.as_mut(), catalog, &self.device)?;
        self.use_key(drive.as_mut(), &label, true)?;
        Ok((drive, label, tape))
    }
}

pub use append::{appendable, recycle};

mod append;
mod health;
mod keys;
#[cfg(test)]
mod tests;
