//! `reel-verify --tape LABEL`: a whole tape audited against its journal,
//! every recorded member read back and re-hashed; the result goes to the
//! tape's catalog state, not to the journal.

use crate::catalog::journal;
use crate::catalog::tapes::{Tape, TapeState};
use crate::cli::{CommonArgs, DriveArgs};
use crate::exit::{Exit, ExitError};
use crate::manifest::Record;

use super::{read_archive, target, unavailable};

/// `--tape LABEL`: audit a whole tape against its journal — every archive
/// with recorded members read back and every recorded member re-hashed.
/// Nothing is added to or taken from the journal; the result goes to the
/// tape's catalog state (`reel tapes`), a read error marks it suspect.
pub fn audit(common: &CommonArgs, drive: &DriveArgs, tape: &str) -> anyhow::Result<Exit> {
    let config = common.load_config()?;
    let t = target(&config, drive)?;
    let catalog = config.paths.catalog.clone();
    let path = journal::journal_path(&catalog, tape);
    if !path.exists() {
        return Err(ExitError::new(
            Exit::NoInput,
            format!(
                "tape {tape} has no journal ({}): nothing to audit",
                path.display()
            ),
        )
        .into());
    }
    let mut files: std::collections::BTreeMap<u64, Vec<Record>> = Default::default();
    journal::read(&path, |e| {
        if let Some(f) = e.record.file {
            files.entry(f).or_default().push(e.record);
        }
        Ok(())
    })?;
    let Some((mut drive, label)) = t.open_tape(tape)? else {
        return Err(unavailable(format!(
            "tape {tape} is neither in {} nor in its library: load it and run reel-verify --tape {tape} again",
            t.device()
        )));
    };
    let block_size = u64::from(label.block_size.max(1));
    let (mut good, mut bad, mut read_error) = (0usize, 0usize, None);
    let starts = crate::catalog::tapes::file_starts(&catalog, tape);
    let ids = super::identities(&config);
    for (file, records) in &files {
        // Where the written log has the file start; else from a clear
        // archive's members (a sealed archive's all name its start).
        let Some(start) = starts.get(file).copied().or_else(|| {
            records
                .iter()
                .filter_map(|r| r.block?.checked_sub(r.offset? / block_size))
                .min()
        }) else {
            continue;
        };
        drive.seek(start)?;
        let outcome = read_archive(drive.as_mut(), records, false, ids.as_ref())
            .map_err(|why| unavailable(format!("tape {tape} file {file}: {why}")))?;
        for (i, why) in &outcome.bad {
            let r = &records[*i];
            log::error!(
                "{}: tape {tape} file {file} block {}: {why}",
                r.path.display(),
                r.block.map_or("?".into(), |b| b.to_string())
            );
        }
        good += outcome.good.len();
        bad += outcome.bad.len();
        if read_error.is_none() {
            read_error = outcome.read_error.map(|e| format!("file {file}: {e}"));
        }
        log::info!(
            "tape {tape} file {file}: {} good, {} bad",
            outcome.good.len(),
            outcome.bad.len()
        );
    }
    if let Some(mut state) = Tape::load(&catalog, tape)? {
        if read_error.is_some() {
            state.state = TapeState::Suspect;
        }
        state.verified = Some(crate::time::Utc::now().rfc3339());
        state.last_verify = Some(format!(
            "audit of {} file(s): {good} good, {bad} bad{}",
            files.len(),
            read_error
                .as_ref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        ));
        state.save(&catalog)?;
    }
    log::info!(
        "tape {tape}: audit of {} file(s): {good} member(s) good, {bad} bad",
        files.len()
    );
    Ok(if bad > 0 { Exit::Data } else { Exit::Ok })
}
