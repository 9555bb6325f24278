//! Packing (`reel-pack`): staged files packed into uncompressed pax tar
//! archives, each up to `archive_size`, with a per-member index
//! (docs/tape-format.md §4).
//!
//! For each `staged` item: members are ordered (`pack.order`), cut into
//! archives, and each archive is written to `<cache>/archives/<id>.tar`
//! (under a temporary name, renamed when complete): `REEL-ARCHIVE.txt`
//! first, the members, `REEL-INDEX.jsonl` last, padded to whole tape blocks.
//! Every staged copy's SHA-256 is checked in the one read that packs it; a
//! mismatch fails the item (exit 65): the cache must not silently corrupt a
//! backup. One `packed` item per archive is published, then the staged item
//! is finished.
//!
//! - `item.rs`: one staged item packed and its `packed` items published;
//! - `plan.rs`: the order of the members and which goes into which archive;
//! - `archive.rs`: one archive written, every staged copy checked;
//! - `member.rs`: a record's tar member and the `REEL-ARCHIVE.txt` text.
//!
//! This module: the settings and the run over the queue ([`run`]).

mod archive;
mod item;
mod member;
mod plan;
#[cfg(test)]
mod tests;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, PackOrder};
use crate::exit::{Exit, ExitError};
use crate::spool::{Input, Output, Queue};

/// What packing needs from the config and the command line.
pub struct Settings {
    archives: PathBuf,
    /// `<cache>/staged`: every staged copy a manifest names must be there.
    staged: PathBuf,
    archive_size: u64,
    /// Files larger than this do not fit on one tape: split into parts.
    split_above: u64,
    block_size: u64,
    order: PackOrder,
    raw: bool,
    manifest: Option<PathBuf>,
    /// The recipients each stream's archives are sealed for.
    sealed_for: std::collections::HashMap<String, crate::archive::sealed::Recipients>,
}

impl Settings {
    /// The settings of `config`; `raw`: the archive to stdout, its packed
    /// manifest to `manifest`.
    pub fn from_config(config: &Config, raw: bool, manifest: Option<PathBuf>) -> Settings {
        Settings {
            archives: config.paths.cache.join("archives"),
            staged: config.paths.cache.join("staged"),
            archive_size: config.archive_size().0,
            // Room for the label, the early-warning margin and the trailer.
            split_above: config.smallest_capacity().0 / 10 * 9,
            block_size: config.drives.first().map_or(256 * 1024, |d| d.block_size.0),
            order: config.pack.order,
            raw,
            manifest,
            sealed_for: config
                .streams
                .iter()
                .filter_map(|s| {
                    let key = config.stream_key(&s.name)?;
                    // Recipients were checked when the configuration was
                    // loaded; a passphrase file that does not read fails
                    // the archive it would seal.
                    let r = key.seal_to().map_err(|m| log::error!("{m}")).ok()?;
                    Some((s.name.clone(), r))
                })
                .collect(),
        }
    }
}

/// Pack every staged item from the queue (or stdin), publishing its
/// packed items to the queue (or stdout); items that fail go to failed/
/// and the run ends with 65.
pub fn run(
    config: &Config,
    settings: &Settings,
    from_stdin: bool,
    to_stdout: bool,
) -> anyhow::Result<Exit> {
    let spool = config.prepare_dirs()?;
    let mut input = Input::of(&spool, Queue::Staged, from_stdin);
    let mut output = Output::of(&spool, Queue::Packed, to_stdout);
    let mut failed = 0;
    while let Some(claim) = input.next_item()? {
        if !item::pack_item(settings, claim, &mut output)? {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(ExitError::new(
            Exit::Data,
            format!("{failed} item(s) failed and went to failed/ (see `reel status`)"),
        )
        .into());
    }
    Ok(Exit::Ok)
}

/// A path as the bytes tar stores.
fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}
