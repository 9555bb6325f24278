//! Whether the tape in a drive may be appended to (invariant 6), and
//! taking over where a killed run stopped mid-archive.

use std::path::Path;

use super::unavailable;
use crate::catalog::tapes::{Tape, TapeState};
use crate::config::Device;
use crate::tape::label::{self, Identity, Label};
use crate::tape::{Drive, TapeError};

/// Read the label of the tape in `drive` and check that it may be appended
/// to (ARCHITECTURE.md, invariant 6): the tape the catalog knows by that
/// label (same UUID), writable, its end of data where the catalog has it.
/// Where a killed run stopped in the middle of an archive (the catalog
/// says where that tape file started), the session takes over there: the
/// unfinished file is written over. A tape the catalog has never seen must
/// hold its label only (one whose labelling was cut short before its
/// filemark is labelled again). Leaves the tape at its end of data.
pub fn appendable(
    drive: &mut dyn Drive,
    catalog: &Path,
    device: &Device,
) -> anyhow::Result<(Label, Tape)> {
    let label = match label::read_label(drive)? {
        Identity::Reel(l) => l,
        Identity::Blank => {
            return Err(unavailable(format!(
                "the tape in {device} is blank: label it first (reel mt label LABEL)"
            )));
        }
        Identity::Foreign(what) => {
            return Err(unavailable(format!(
                "the tape in {device} is not a reel tape: {what}"
            )));
        }
        Identity::Unreadable(why) => {
            return Err(unavailable(format!(
                "cannot read the label of the tape in {device}: {why}"
            )));
        }
    };
    // A run died while recycling this tape: finish, it is a new tape.
    let label = if crate::catalog::retention::being_recycled(catalog, &label.label, &label.uuid)
        && Tape::load(catalog, &label.label)?.is_none()
    {
        let new = recycle(drive, catalog, &label)?;
        log::warn!(
            "tape {}: a run stopped while recycling it; labelled again (uuid {})",
            new.label,
            new.uuid
        );
        new
    } else {
        label
    };
    let tape = match Tape::load(catalog, &label.label)? {
        Some(t) if t.uuid != label.uuid => {
            return Err(unavailable(format!(
                "the tape in {device} is labelled {} but is not the tape the catalog knows by that name (uuid {} ≠ {})",
                label.label, label.uuid, t.uuid
            )));
        }
        Some(t) if t.state != TapeState::Writable => {
            return Err(unavailable(format!(
                "tape {} is {} in the catalog: load another tape",
                t.label,
                format!("{:?}", t.state).to_lowercase()
            )));
        }
        Some(mut t) => {
            if let Some(start) = t.writing {
                log::warn!(
                    "tape {}: the last run stopped in the middle of an archive at block {start}; writing over it",
                    t.label
                );
                drive.seek(start).map_err(refuse)?;
                t.eod = start;
                // `writing` stays set until the next tape file begins
                // there (`begin_file`): until then the unfinished one is
                // still on tape after `start`, and a run killed before it
                // writes anything must take over here again, not find
                // more on tape than the catalog says.
            } else {
                label::check_append(drive, &label.label, Some(t.eod)).map_err(refuse)?;
            }
            t
        }
        None => {
            let after_label = match label::end_of_label(drive)? {
                Some(at) => at,
                None => {
                    // The label block and nothing after it: a run stopped
                    // while labelling. Nothing else is there to lose.
                    log::warn!(
                        "tape {}: its label has no filemark (labelling was interrupted): writing it again",
                        label.label
                    );
                    label::write_label(drive, &label)?;
                    drive.position()?
                }
            };
            label::check_append(drive, &label.label, Some(after_label)).map_err(refuse)?;
            Tape {
                label: label.label.clone(),
                uuid: label.uuid.clone(),
                pool: label.pool.clone(),
                state: TapeState::Writable,
                files: 1,
                eod: after_label,
                bytes: 0,
                verified_bytes: 0,
                writing: None,
                verified: None,
                last_verify: None,
                cartridge: None,
                volume: None,
                alerts: Vec::new(),
                suspect: None,
                retired: None,
                sealed_for: Vec::new(),
                drive_key: label.drive_key.clone(),
                place: None,
                updated: String::new(),
            }
        }
    };
    Ok((label, tape))
}

/// A tape that may not be appended to is unavailable (69), not an I/O error.
fn refuse(e: TapeError) -> anyhow::Error {
    match e {
        TapeError::Invalid(m) => unavailable(m),
        other => other.into(),
    }
}

/// Recycle the tape in `drive` (labelled `old`): its records moved out of
/// the catalog under `recycled/` (what is left of them, when a run died
/// half-way), then the index rebuilt, so that it forgets what the tape held
/// before a journal of the same name starts again, then a new label: the
/// name, pool, block size and drive key kept, a new uuid, written at the
/// beginning of the tape so that everything after it is gone.
pub fn recycle(drive: &mut dyn Drive, catalog: &Path, old: &Label) -> anyhow::Result<Label> {
    crate::catalog::retention::retire_records(catalog, &old.label, &old.uuid)?;
    crate::catalog::rebuild(catalog, crate::catalog::rebuild::DEFAULT_CHUNK)?;
    let mut new = Label::new(&old.label, &old.pool, old.block_size)?;
    new.drive_key = old.drive_key.clone();
    label::write_label(drive, &new)?;
    Ok(new)
}
