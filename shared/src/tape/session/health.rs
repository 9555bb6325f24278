//! What the drive says of the tape it holds, kept with the tape in the
//! catalog at each load (README, "Drive and tape health"): the cartridge
//! memory, the volume statistics, the TapeAlert flags. A tape whose
//! unrecovered errors rose since its last reading, or for which the drive
//! raises a media flag, is marked suspect: nothing more is written to it,
//! before it fails outright.

use std::path::Path;

use super::Session;
use crate::catalog::tapes::{Tape, TapeState};
use crate::scsi::tapealert::TapeAlerts;
use crate::tape::Drive;

/// TapeAlert flags that speak of the tape itself: media (4), media life
/// (7), not data grade (8).
const MEDIA_FLAGS: [u8; 3] = [4, 7, 8];

impl Session<'_> {
    /// Read and keep the health of the tape in `drive` (`tape`'s record);
    /// mark it suspect when it got worse. A drive that cannot tell, or a
    /// record that cannot be written, is only logged: health is never a
    /// reason to fail a run. Returns whether the tape was marked suspect.
    pub fn record_tape(&self, drive: &mut dyn Drive, tape: &mut Tape, catalog: &Path) -> bool {
        if let Ok(Some(memory)) = drive.cartridge_memory() {
            tape.cartridge = Some(memory);
        }
        let mut why = Vec::new();
        match drive.volume_statistics() {
            Ok(Some(now)) => {
                if let Some(w) = now.worse_than(tape.volume.as_ref()) {
                    why.push(w);
                }
                tape.volume = Some(now);
            }
            Ok(None) => {}
            Err(e) => log::debug!("{}: volume statistics not read: {e}", self.device),
        }
        let alerts = drive.tape_alerts().ok().flatten().unwrap_or_default();
        tape.alerts = alerts
            .flags()
            .iter()
            .map(|&n| TapeAlerts::name(n).to_string())
            .collect();
        let media: Vec<String> = MEDIA_FLAGS
            .iter()
            .filter(|&&n| alerts.has(n))
            .map(|&n| format!("TapeAlert {n} {}", TapeAlerts::name(n)))
            .collect();
        if !media.is_empty() {
            why.push(format!("the drive raises {}", media.join(", ")));
        }
        let marked =
            !why.is_empty() && tape.state != TapeState::Suspect && tape.state != TapeState::Retired;
        if marked {
            let why = why.join("; ");
            log::warn!(
                "tape {} is now suspect: {why}; nothing more is written to it (check it with `reel-verify --tape {}`)",
                tape.label,
                tape.label
            );
            tape.state = TapeState::Suspect;
            tape.suspect = Some(why);
        }
        self.retire_past_limits(tape);
        if let Err(e) = tape.save(catalog) {
            log::warn!("tape {}: its health could not be recorded: {e}", tape.label);
        }
        marked
    }

    /// Retire `tape` when the drive's counts pass its pool's limits
    /// (`retire_after_loads`, `retire_after_errors`): nothing more is
    /// written to it; what it holds still counts until it expires.
    fn retire_past_limits(&self, tape: &mut Tape) {
        if !matches!(tape.state, TapeState::Writable | TapeState::Full) {
            return;
        }
        let Some(pool) = self
            .config
            .and_then(|c| c.pools.iter().find(|p| p.name == tape.pool))
        else {
            return;
        };
        let loads = tape
            .cartridge
            .as_ref()
            .and_then(|m| m.loads)
            .or_else(|| tape.volume.as_ref().and_then(|v| v.mounts));
        let errors = tape.volume.as_ref().map(|v| v.unrecovered());
        let why = match (
            pool.retire_after_loads,
            loads,
            pool.retire_after_errors,
            errors,
        ) {
            (Some(max), Some(n), ..) if n >= max => {
                format!("loaded {n} times (pool {} retires at {max})", pool.name)
            }
            (.., Some(max), Some(n)) if n >= max => format!(
                "{n} unrecovered errors in its life (pool {} retires at {max})",
                pool.name
            ),
            _ => return,
        };
        log::warn!(
            "tape {} is retired: {why}; nothing more is written to it, and what it holds counts until it expires",
            tape.label
        );
        tape.state = TapeState::Retired;
        tape.retired = Some(why);
    }
}
