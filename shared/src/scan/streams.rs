//! Which streams a run scans: those the config names, or a stream made for
//! a directory given on the command line.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Config, Source, Stream};
use crate::exit::{Exit, ExitError};
use crate::units::Interval;

use super::Options;

/// What one scan works on, resolved from flags and config.
pub(super) struct Settings {
    pub(super) streams: Vec<Stream>,
    pub(super) checksum: bool,
    pub(super) batch_bytes: u64,
    pub(super) batch_records: u64,
    pub(super) to_stdout: bool,
    /// Remote streams land under `<cache>/landing/`.
    pub(super) cache: PathBuf,
}

/// A stream for a directory given on the command line: the configured
/// stream with that source, else one named after the directory.
fn adhoc_stream(config: &Config, dir: &Path) -> anyhow::Result<Stream> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let abs = crate::fsutil::normalize(&cwd, dir);
    if let Some(s) = config
        .streams
        .iter()
        .find(|s| s.source == Source::Local(abs.clone()))
    {
        return Ok(s.clone());
    }
    let base = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = if name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        name
    } else {
        format!("s{name}")
    };
    // Never take a configured stream's name: its catalog entries and its
    // staging belong to its own source.
    while config.stream(&name).is_some() {
        name.push_str("_adhoc");
    }
    Ok(Stream {
        name,
        source: Source::Local(abs),
        exclude: Vec::new(),
        min_age: Interval::default(),
        one_file_system: true,
        schedule: None,
    })
}

pub(super) fn settings(o: &Options, config: &Config) -> anyhow::Result<Settings> {
    let usage = |m: String| anyhow::Error::from(ExitError::new(Exit::Usage, m));
    let streams = if !o.sources.is_empty() {
        o.sources
            .iter()
            .map(|d| adhoc_stream(config, d))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else if !o.streams.is_empty() {
        o.streams
            .iter()
            .map(|n| {
                config.stream(n).cloned().ok_or_else(|| {
                    usage(format!(
                        "no [[stream]] named {n:?} in {}",
                        config.file.display()
                    ))
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    } else if config.streams.is_empty() {
        return Err(usage(format!(
            "{} has no [[stream]]; add one or name a directory to scan",
            config.file.display()
        )));
    } else {
        config.streams.clone()
    };
    Ok(Settings {
        streams,
        checksum: o.checksum,
        batch_bytes: config.archive_size().0,
        batch_records: o.batch_records,
        to_stdout: o.to_stdout,
        cache: config.paths.cache.clone(),
    })
}
