//! Drive keys for a session's tapes (README, "Drive encryption"): a tape
//! labelled with a key's fingerprint is read and written with that key,
//! set in the drive once its clear label has been read and cleared when
//! the drive is let go; a blank tape of a pool that has a key is labelled
//! with it.

use anyhow::Context as _;

use super::{Session, unavailable};
use crate::exit::{Exit, ExitError};
use crate::scsi::encryption::DriveKey;
use crate::tape::Drive;
use crate::tape::label::Label;

impl Session<'_> {
    /// The key new tapes of `pool` are written with, read from its file;
    /// `None` when no `[[drive_key]]` takes the pool.
    pub(super) fn pool_key(&self, pool: &str) -> anyhow::Result<Option<DriveKey>> {
        match self.config {
            Some(c) => c
                .pool_key(pool)
                .map_err(|m| ExitError::new(Exit::Config, m).into()),
            None => Ok(None),
        }
    }

    /// The configured key whose fingerprint is `fingerprint`. Key files
    /// that cannot be read are passed over (and named if none matches).
    fn key_by_fingerprint(&self, fingerprint: &str) -> Result<DriveKey, Vec<String>> {
        let mut unreadable = Vec::new();
        for conf in self.config.map_or(&[][..], |c| &c.drive_keys[..]) {
            match DriveKey::load(&conf.file) {
                Ok(k) if k.fingerprint == fingerprint => return Ok(k),
                Ok(_) => {}
                Err(m) => unreadable.push(m),
            }
        }
        Err(unreadable)
    }

    /// Set the key the tape's label names in `drive`, before anything but
    /// the label is read or written. Writing, a tape labelled without a
    /// key while its pool now has one is refused: it would mix clear and
    /// encrypted archives.
    pub fn use_key(
        &self,
        drive: &mut dyn Drive,
        label: &Label,
        writing: bool,
    ) -> anyhow::Result<()> {
        let Some(fingerprint) = &label.drive_key else {
            if writing && let Some(k) = self.pool_key(&label.pool)? {
                return Err(unavailable(format!(
                    "tape {} was labelled without a drive key, but pool {} is now written with key {}: it is not appended to; load a blank tape (or relabel this one)",
                    label.label, label.pool, k.fingerprint
                )));
            }
            return Ok(());
        };
        let key = self.key_by_fingerprint(fingerprint).map_err(|unreadable| {
            let config = self
                .config
                .map_or("no pipeline.toml".to_string(), |c| c.file.display().to_string());
            let mut m = format!(
                "tape {} is encrypted by the drive with key {fingerprint}, and no [[drive_key]] of {config} holds that key: add the key file it was written with",
                label.label
            );
            if !unreadable.is_empty() {
                m.push_str(&format!(" (unreadable: {})", unreadable.join("; ")));
            }
            unavailable(m)
        })?;
        drive.set_encryption(Some(&key)).with_context(|| {
            format!(
                "tape {}: setting its drive key {fingerprint} in {}",
                label.label, self.device
            )
        })?;
        log::info!(
            "tape {}: drive key {fingerprint} set in {} ({})",
            label.label,
            self.device,
            key.file.display()
        );
        Ok(())
    }
}
