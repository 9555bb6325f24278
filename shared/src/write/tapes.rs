//! The tape side of a write run: a tape file begun at the end of data and
//! closed by a filemark, a full tape closed with its catalog as its last
//! tape file, and the next tape, from the library or the operator.

use std::path::Path;

use crate::archive::small_tar;
use crate::catalog::tapes::{Tape, TapeState, closing_catalog};
use crate::tape::label::Label;
use crate::tape::session::{Writable, appendable, unavailable};
use crate::tape::{Drive, TapeError, Written};

use super::Target;

/// Start a tape file at the end of data: the catalog marks it as being
/// written before the first block goes out. Returns (file, start block).
pub(super) fn begin_file(
    drive: &mut dyn Drive,
    tape: &mut Tape,
    catalog: &Path,
) -> anyhow::Result<(u64, u64)> {
    let start = drive.position()?;
    tape.writing = Some(start);
    tape.save(catalog)?;
    Ok((tape.files, start))
}

/// Close the tape file with a filemark and account for it (the caller
/// saves the state). A waiting filemark is a sync point: after it the data
/// are on tape. An `immediate` one lets the drive stream on into the next
/// file; the data are on tape only after a later [`Drive::flush`].
pub(super) fn end_file(
    drive: &mut dyn Drive,
    tape: &mut Tape,
    bytes: u64,
    immediate: bool,
) -> anyhow::Result<Written> {
    let closing = if immediate {
        drive.write_filemarks_immediate(1)?
    } else {
        drive.write_filemarks(1)?
    };
    tape.writing = None;
    tape.files += 1;
    tape.eod = drive.position()?;
    tape.bytes += bytes;
    Ok(closing)
}

/// Close a full tape: its catalog, `REEL-TAPE.jsonl` in a tar archive of
/// its own, as the last tape file, in the room after the early warning
/// (docs/tape-format.md §8), and the state `Full`. If even that does not fit, the
/// tape is still full; `reel catalog import` can then rebuild its catalog
/// from the archives' own indexes.
pub(super) fn close_tape(
    drive: &mut dyn Drive,
    tape: &mut Tape,
    catalog: &Path,
    block_size: usize,
) -> anyhow::Result<()> {
    tape.state = TapeState::Full;
    if !tape.sealed_for.is_empty() {
        // It would name in the clear what the sealed archives hide.
        log::info!(
            "tape {} closed without REEL-TAPE.jsonl: it holds sealed archives, whose own (sealed) indexes describe it",
            tape.label
        );
        tape.save(catalog)?;
        return Ok(());
    }
    let text = closing_catalog(catalog, tape)?;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 * 1_000_000_000);
    let mut tar = small_tar(&[("REEL-TAPE.jsonl", &text)], now_ns);
    tar.resize(tar.len().div_ceil(block_size) * block_size, 0);
    let (file, start) = begin_file(drive, tape, catalog)?;
    let wrote = (|| -> Result<(), TapeError> {
        for block in tar.chunks(block_size) {
            drive.write_block(block)?;
        }
        Ok(())
    })();
    match wrote {
        Ok(()) => {
            end_file(drive, tape, tar.len() as u64, false)?;
            log::info!(
                "tape {} closed: REEL-TAPE.jsonl is file {file} from block {start}",
                tape.label
            );
        }
        Err(e) => {
            // Nothing usable went down: the end of data stays where it was.
            tape.writing = None;
            log::warn!(
                "tape {}: the closing catalog REEL-TAPE.jsonl did not fit ({e}); \
                 the archives' own indexes describe the tape",
                tape.label
            );
        }
    }
    tape.save(catalog)?;
    Ok(())
}

/// The next tape, of `pool` (`why`: the tape in the drive is full, or
/// the next archive goes to another pool): through the library when the
/// drive has one, else from the operator at the terminal; `None` when
/// nobody is there to load one (no controlling terminal, or the operator
/// typed q).
pub(super) fn next_tape(
    t: &Target,
    pool: &str,
    why: &str,
    catalog: &Path,
    drive: Box<dyn Drive>,
) -> anyhow::Result<Option<Writable>> {
    // The drive (and its lock) is let go: `reel mt` must be able to label
    // the new tape meanwhile.
    drop(drive);
    if t.session.has_library() {
        return t.session.of_pool(catalog, pool, why).map(Some);
    }
    let Ok(mut tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Ok(None);
    };
    let mut reason = String::new();
    loop {
        use std::io::{BufRead, Write};
        write!(
            tty,
            "{reason}reel-write: {why}. Load a writable tape of pool {pool} into {} (label a \
             blank one first: reel mt label --pool {pool} LABEL), then press Enter; q stops: ",
            t.session.device()
        )?;
        tty.flush()?;
        let mut answer = String::new();
        let n = std::io::BufReader::new(&tty).read_line(&mut answer)?;
        if n == 0 || answer.trim().eq_ignore_ascii_case("q") {
            return Ok(None);
        }
        let tried = t.session.open().and_then(|mut drive| {
            let (label, tape) = appendable(drive.as_mut(), catalog, t.session.device())?;
            if label.pool != pool {
                return Err(unavailable(format!(
                    "tape {} belongs to pool {}, not {pool}",
                    label.label, label.pool
                )));
            }
            Ok((drive, label, tape))
        });
        match tried {
            Ok(next) => return Ok(Some(next)),
            Err(e) => reason = format!("reel-write: {e:#}\n"),
        }
    }
}

/// Why a full tape is changed, for [`next_tape`].
pub(super) fn full(label: &Label) -> String {
    format!("tape {} (pool {}) is full", label.label, label.pool)
}
