//! `pipeline.toml`: the one configuration file (README, "Configuration").
//!
//! Loading is strict: an unknown key, a wrong type or an impossible value is
//! a [`ConfigError`] that names the file, the line and the key. Relative paths
//! (in `[paths]`, stream sources and `virtual:` devices) are taken relative to
//! the directory holding the config file, so the repository's `pipeline.toml`
//! works from any current directory.
//!
//! Lookup order when no file is given (README, "Configuration"): `--config`, then
//! `$REEL_CONFIG`, then `./pipeline.toml`, then `/etc/reel/pipeline.toml`.

mod locate;
mod types;
mod validate;

pub use types::{Command, Device, PackOrder, Source, VerifyLevel, VerifyWhen, Water};

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::fsutil::normalize;
use crate::units::{Interval, Percent, Size};

/// The repository's `pipeline.toml`, built in: `reel config default` prints
/// it, so a new installation can start from a file that is known to work.
pub const DEFAULT_CONFIG: &str = include_str!("../../../pipeline.toml");

/// A configuration problem: `<file>:<line>: <key>: <what is wrong>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// A configuration error: 78, fix the file.
    pub fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Config
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The whole configuration, with relative paths resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file this was read from.
    #[serde(skip)]
    pub file: PathBuf,
    pub paths: Paths,
    #[serde(default, rename = "stream")]
    pub streams: Vec<Stream>,
    #[serde(default)]
    pub pack: Pack,
    #[serde(default, rename = "drive")]
    pub drives: Vec<Drive>,
    #[serde(default, rename = "changer")]
    pub changers: Vec<Changer>,
    #[serde(default, rename = "drive_key")]
    pub drive_keys: Vec<DriveKey>,
    #[serde(default, rename = "archive_key")]
    pub archive_keys: Vec<ArchiveKey>,
    #[serde(default, rename = "pool")]
    pub pools: Vec<Pool>,
    #[serde(default)]
    pub cache: Cache,
    #[serde(default)]
    pub verify: Verify,
    #[serde(default)]
    pub write: Write,
    #[serde(default)]
    pub supervisor: Supervisor,
}

/// `[write]`: what reel-write does besides writing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Write {
    /// Hash each archive as it streams, for `archive_sha256` in the
    /// written manifest (a whole-file digest to check a tape file with
    /// `dd | sha256sum`). The members' own digests, which verify checks,
    /// do not depend on it; off, reel-write spends about a third of the
    /// CPU per byte (BENCHMARKS.md).
    #[serde(default = "yes")]
    pub archive_sha256: bool,
    /// Archives are closed by filemarks that do not wait, so that the
    /// drive streams from one archive into the next; their `written`
    /// items are published once a flush has put them on tape: when the
    /// queue is empty, at a tape's end, and after this many bytes at the
    /// latest (each flush stops the tape once; a crash before it writes
    /// those archives again).
    #[serde(default = "default_flush_every")]
    pub flush_every: Size,
}

fn default_flush_every() -> Size {
    Size(16 << 30)
}

impl Default for Write {
    fn default() -> Self {
        Write {
            archive_sha256: true,
            flush_every: default_flush_every(),
        }
    }
}

/// `[paths]`: where reel keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// The spool queues (docs/spool.md).
    pub spool: PathBuf,
    /// The cache: staged copies and archives (the RAID0 array).
    pub cache: PathBuf,
    /// The catalog of what is verified on tape (docs/catalog.md).
    pub catalog: PathBuf,
    /// Logs and telemetry.
    pub log: PathBuf,
    /// A group that may read spool and cache (directories become 0750).
    pub group: Option<String>,
}

/// `[[stream]]`: one tree to back up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    pub name: String,
    pub source: Source,
    /// Globs, matched against paths relative to the source.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Skip files modified more recently than this: they may still be
    /// being written.
    #[serde(default)]
    pub min_age: Interval,
    /// Do not cross into other file systems under the source.
    #[serde(default = "yes")]
    pub one_file_system: bool,
    /// How often the supervisor scans this stream; defaults to
    /// `supervisor.scan_interval`.
    pub schedule: Option<Interval>,
}

/// `[pack]`: how archives are built.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// Largest archive; defaults to 1/50 of the smallest drive capacity.
    pub archive_size: Option<Size>,
    #[serde(default)]
    pub order: PackOrder,
}

/// `[[drive]]`: a tape drive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drive {
    pub name: String,
    pub device: Device,
    /// Bytes per write() to the drive; recorded in the tape label.
    #[serde(default = "default_block_size")]
    pub block_size: Size,
    /// The memory ring between cache and drive.
    #[serde(default = "default_buffer")]
    pub buffer: Size,
    /// How full the ring must be before the drive is started (mbuffer -P).
    #[serde(default = "default_start_fill")]
    pub start_fill: Percent,
    /// The `[[changer]]` that loads this drive.
    pub changer: Option<String>,
    /// The drive's element in that changer (its data transfer element,
    /// counted from 0 as mtx does). Default: the drive number of a
    /// `virtual:DIR#N` device, else 0.
    pub element: Option<u32>,
    /// Native capacity of the media used in this drive (LTO-9: 18TB).
    #[serde(default = "default_capacity")]
    pub capacity: Size,
    /// The drive's slowest streaming speed (LTO-9 with LTO-9 media:
    /// 177MB/s). A source at least this fast is paced instead of burst.
    #[serde(default = "default_min_rate")]
    pub min_rate: crate::tape::speed::Rate,
}

/// `[[changer]]`: a tape library.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changer {
    pub name: String,
    pub device: Device,
    /// Storage slots (used when a virtual library is created).
    pub slots: Option<u32>,
    /// Import/export (mail) slots (used when a virtual library is
    /// created; 1 by default).
    pub mail_slots: Option<u32>,
}

/// `[[drive_key]]`: a data key for the drive's own (hardware) encryption,
/// in a key file of `stenc`'s format (64 hexadecimal digits, mode 0600).
/// The tapes of its `pools` are labelled with its fingerprint and written
/// encrypted with it; every tape whose label names its fingerprint is read
/// with it. A key no pool takes any more stays to read old tapes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveKey {
    pub name: String,
    /// The key file (never the key itself in the configuration).
    pub file: PathBuf,
    /// The pools whose tapes are written with this key.
    #[serde(default)]
    pub pools: Vec<String>,
}

/// `[[archive_key]]`: software encryption of archives in the age format.
/// The archives of its `streams` are sealed for its `recipients` (`age1…`
/// public keys); `identity` is the file of the identity this host
/// decrypts with (one of the recipients), for reel-verify and
/// reel-restore: never a key in the configuration itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveKey {
    pub name: String,
    /// X25519 recipients (`age1…`)…
    #[serde(default)]
    pub recipients: Vec<String>,
    /// …or a passphrase, the first line of this file (0600).
    pub passphrase_file: Option<PathBuf>,
    pub identity: Option<PathBuf>,
    #[serde(default)]
    pub streams: Vec<String>,
}

impl ArchiveKey {
    /// Whom its archives are sealed for: its recipients, or its
    /// passphrase (read from its file).
    pub fn seal_to(&self) -> Result<crate::archive::sealed::Recipients, String> {
        match &self.passphrase_file {
            Some(f) => crate::archive::sealed::Recipients::passphrase(&self.name, f),
            None => crate::archive::sealed::Recipients::parse(&self.recipients),
        }
    }
}

/// `[[pool]]`: a set of tapes, and the policy of the streams it takes
/// first: how many copies, in which pools, and how long versions are
/// kept (issue #23; what is built of it: README, "Pools and retention").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    /// The streams whose archives go to this pool's tapes.
    #[serde(default)]
    pub streams: Vec<String>,
    /// The pools that must each hold a verified copy of these streams'
    /// versions: this one always, and the others named here, each copy
    /// written in turn in this order.
    #[serde(default)]
    pub copies: Vec<String>,
    /// Versions kept of a path, the newest included.
    pub keep_versions: Option<u32>,
    /// How long a version is kept once a newer one is safe.
    pub keep_for: Option<crate::units::Interval>,
    /// Its tapes go offsite: each one that is full is moved to an
    /// import/export slot by the supervisor, which notifies (`tape-export`).
    #[serde(default)]
    pub export_when_full: bool,
    /// Retire a tape of this pool (never write to it again) once the
    /// drive reports it loaded this many times in its life.
    pub retire_after_loads: Option<u64>,
    /// Retire a tape of this pool once the drive reports this many
    /// unrecovered read and write errors in its life.
    pub retire_after_errors: Option<u64>,
}

impl Pool {
    /// The pools its streams' archives are written to, in order: this one
    /// first, then the others of `copies`.
    pub fn copy_pools(&self) -> Vec<String> {
        std::iter::once(self.name.clone())
            .chain(self.copies.iter().filter(|c| **c != self.name).cloned())
            .collect()
    }

    /// Its streams' policy.
    pub fn policy(&self) -> crate::catalog::lifecycle::Policy {
        crate::catalog::lifecycle::Policy {
            copies: self.copy_pools(),
            keep_versions: self.keep_versions,
            keep_for_ns: self.keep_for.map(|i| i.duration().as_nanos() as i128),
        }
    }
}

/// `[cache]`: when staging stops and resumes, and which files share a
/// bundle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// Stop staging above this.
    #[serde(default = "default_high_water")]
    pub high_water: Water,
    /// Resume staging below this.
    #[serde(default = "default_low_water")]
    pub low_water: Water,
    /// Files smaller than this are staged into bundles (a few cache files
    /// per item, each holding many files' content) instead of a cache
    /// file each: creating and removing tens of thousands of small files
    /// is most of what staging and freeing them costs. `0`: every file
    /// gets its own copy.
    #[serde(default = "default_bundle_below")]
    pub bundle_below: Size,
}

/// `[verify]`: when and how reel-verify reads back.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    #[serde(default)]
    pub when: VerifyWhen,
    #[serde(default)]
    pub level: VerifyLevel,
}

/// `[supervisor]`: the daemon's pacing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Supervisor {
    #[serde(default = "default_scan_interval")]
    pub scan_interval: Interval,
    /// Start a tape run once this much is packed; defaults to four archives.
    pub tape_start_threshold: Option<Size>,
    #[serde(default)]
    pub retry: Retry,
    /// Run on failures, full tapes, tapes needed and finished tapes.
    pub notify_command: Option<Command>,
    /// Pack or start a tape run anyway once data has waited this long,
    /// below the thresholds.
    #[serde(default = "default_max_wait")]
    pub max_wait: Interval,
    /// Metrics in the Prometheus text format, rewritten atomically by the
    /// supervisor and by each stage on exit (for node_exporter's textfile
    /// collector: a `.prom` file in its directory).
    pub metrics_file: Option<PathBuf>,
    /// `--once` runs the stages side by side as their inputs allow (the
    /// daemon always does); off, one stage at a time in pipeline order.
    #[serde(default)]
    pub overlap: bool,
    /// Niceness added to the stages it starts that keep no tape moving
    /// (reel-scan, reel-stage, reel-pack), so that beside them reel-write
    /// and reel-verify get the CPU first (0–19; 0: the same as the rest).
    #[serde(default = "default_background_nice")]
    pub background_nice: u8,
}

fn default_background_nice() -> u8 {
    10
}

/// `supervisor.retry`: backoff for failed stage runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    #[serde(default = "default_backoff")]
    pub backoff: Interval,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Interval,
}

fn yes() -> bool {
    true
}
fn default_block_size() -> Size {
    Size(256 << 10)
}
fn default_buffer() -> Size {
    Size(1 << 30)
}
fn default_start_fill() -> Percent {
    Percent::new(90)
}
fn default_capacity() -> Size {
    Size(18_000_000_000_000)
}
fn default_min_rate() -> crate::tape::speed::Rate {
    crate::tape::speed::Rate(177_000_000)
}
fn default_high_water() -> Water {
    Water::Percent(Percent::new(90))
}
fn default_low_water() -> Water {
    Water::Percent(Percent::new(80))
}
fn default_bundle_below() -> Size {
    Size(1 << 20)
}
fn default_scan_interval() -> Interval {
    Interval::from_secs(3600)
}
fn default_max_wait() -> Interval {
    Interval::from_secs(3600)
}
fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> Interval {
    Interval::from_secs(60)
}
fn default_max_backoff() -> Interval {
    Interval::from_secs(3600)
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            high_water: default_high_water(),
            low_water: default_low_water(),
            bundle_below: default_bundle_below(),
        }
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor {
            scan_interval: default_scan_interval(),
            tape_start_threshold: None,
            retry: Retry::default(),
            notify_command: None,
            max_wait: default_max_wait(),
            metrics_file: None,
            overlap: false,
            background_nice: default_background_nice(),
        }
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: default_attempts(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

impl Config {
    /// Find the config file (the order in README, "Configuration") and load it.
    pub fn find_and_load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let env = std::env::var_os("REEL_CONFIG").map(PathBuf::from);
        let path = locate(
            explicit,
            env.as_deref(),
            &[
                Path::new("./pipeline.toml"),
                Path::new("/etc/reel/pipeline.toml"),
            ],
        )?;
        Config::load(&path)
    }

    /// Load and check one file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let base = normalize(&cwd, path.parent().unwrap_or(Path::new(".")));
        Config::parse(&text, path, &base)
    }

    /// Parse and check config text; `file` is what errors call it, `base`
    /// the directory relative paths are resolved against.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
        let err_at = |line, key, message| ConfigError {
            file: file.to_path_buf(),
            line,
            key,
            message,
        };
        let doc =
            locate::Document::parse(text).map_err(|(line, message)| err_at(line, None, message))?;
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => (Some(doc.line_of(span.start)), doc.key_at(span.start)),
                None => (None, None),
            };
            err_at(line, key, e.message().to_string())
        })?;
        config.file = file.to_path_buf();
        config.resolve_paths(base);
        validate::check(&config).map_err(|(key, message)| {
            let line = doc.line_of_key(&key);
            err_at(line, Some(locate::render_key(&key)), message)
        })?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let p = &mut self.paths;
        for path in [&mut p.spool, &mut p.cache, &mut p.catalog, &mut p.log] {
            *path = normalize(base, path);
        }
        for s in &mut self.streams {
            if let Source::Local(dir) = &mut s.source {
                *dir = normalize(base, dir);
            }
        }
        for k in &mut self.drive_keys {
            k.file = normalize(base, &k.file);
        }
        if let Some(m) = &mut self.supervisor.metrics_file {
            *m = normalize(base, m);
        }
        for k in &mut self.archive_keys {
            if let Some(f) = &mut k.identity {
                *f = normalize(base, f);
            }
        }
        let devices = self.drives.iter_mut().map(|d| &mut d.device);
        for device in devices.chain(self.changers.iter_mut().map(|c| &mut c.device)) {
            *device = device.clone().resolve(base);
        }
    }

    /// The key the tapes of `pool` are written with (its `[[drive_key]]`'s
    /// file read), `None` when no key takes the pool. The error names the
    /// key and its file.
    pub fn pool_key(
        &self,
        pool: &str,
    ) -> Result<Option<crate::scsi::encryption::DriveKey>, String> {
        let Some(conf) = self
            .drive_keys
            .iter()
            .find(|k| k.pools.iter().any(|p| p == pool))
        else {
            return Ok(None);
        };
        crate::scsi::encryption::DriveKey::load(&conf.file)
            .map(Some)
            .map_err(|m| format!("drive_key {:?}: {m}", conf.name))
    }

    /// The `[[pool]]` whose tapes take `stream`'s archives first.
    pub fn stream_pool(&self, stream: &str) -> Option<&Pool> {
        self.pools
            .iter()
            .find(|p| p.streams.iter().any(|s| s == stream))
    }

    /// Each stream's policy (its pool's), for the streams a pool takes.
    pub fn policies(&self) -> std::collections::HashMap<String, crate::catalog::lifecycle::Policy> {
        self.streams
            .iter()
            .filter_map(|s| Some((s.name.clone(), self.stream_pool(&s.name)?.policy())))
            .collect()
    }

    /// The `[[archive_key]]` the archives of `stream` are sealed with.
    pub fn stream_key(&self, stream: &str) -> Option<&ArchiveKey> {
        self.archive_keys
            .iter()
            .find(|k| k.streams.iter().any(|s| s == stream))
    }

    /// The identities of every `[[archive_key]]` that names one, each
    /// read from its file; the errors name the key and its file.
    pub fn archive_identities(&self) -> Vec<Result<crate::archive::sealed::Identities, String>> {
        self.archive_keys
            .iter()
            .filter_map(|k| {
                let loaded = match (&k.passphrase_file, &k.identity) {
                    (Some(f), _) => crate::archive::sealed::Identities::passphrase(f),
                    (None, Some(f)) => crate::archive::sealed::Identities::load(f),
                    (None, None) => return None,
                };
                Some(loaded.map_err(|m| format!("archive_key {:?}: {m}", k.name)))
            })
            .collect()
    }

    /// The largest archive: `pack.archive_size`, or 1/50 of the smallest
    /// drive's capacity.
    pub fn archive_size(&self) -> Size {
        self.pack
            .archive_size
            .unwrap_or_else(|| Size(self.smallest_capacity().0 / 50))
    }

    /// The smallest capacity among the drives (18TB when none is set up).
    pub fn smallest_capacity(&self) -> Size {
        self.drives
            .iter()
            .map(|d| d.capacity)
            .min()
            .unwrap_or_else(default_capacity)
    }

    /// How much must be packed before a tape run starts.
    pub fn tape_start_threshold(&self) -> Size {
        self.supervisor
            .tape_start_threshold
            .unwrap_or(Size(self.archive_size().0.saturating_mul(4)))
    }

    /// Directory mode for spool and cache: 0750 with a group, else 0700.
    pub fn dir_mode(&self) -> u32 {
        if self.paths.group.is_some() {
            0o750
        } else {
            0o700
        }
    }

    /// Create the spool (with its queues), cache, catalog and log
    /// directories: mode 0700, or 0750 and owned by `paths.group` when one
    /// is set. Returns the opened spool.
    pub fn prepare_dirs(&self) -> anyhow::Result<crate::spool::Spool> {
        use anyhow::Context;
        let mode = self.dir_mode();
        let gid = match &self.paths.group {
            None => None,
            Some(name) => Some(
                nix::unistd::Group::from_name(name)
                    .with_context(|| format!("looking up group {name:?}"))?
                    .ok_or_else(|| ConfigError {
                        file: self.file.clone(),
                        line: None,
                        key: Some("paths.group".into()),
                        message: format!("no group named {name:?} on this machine"),
                    })?
                    .gid,
            ),
        };
        // What is created from here on is reel's own: the group's when one
        // is configured, nobody else's.
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(!mode & 0o777));
        let spool = crate::spool::Spool::open_with_mode(&self.paths.spool, mode)?;
        let p = &self.paths;
        for dir in [&p.spool, &p.cache, &p.catalog, &p.log] {
            crate::fsutil::create_private_dir(dir, mode)
                .with_context(|| format!("creating {}", dir.display()))?;
            if let Some(gid) = gid {
                nix::unistd::chown(dir, None, Some(gid))
                    .with_context(|| format!("giving {} to group {}", dir.display(), gid))?;
            }
        }
        // The places where the data itself lies: private even below a
        // cache or catalog directory that is open (a mount point's 0755).
        for dir in [
            p.cache.join("staged"),
            p.cache.join("archives"),
            p.cache.join("landing"),
            p.catalog.join("tapes"),
            p.catalog.join("written"),
            p.catalog.join("index"),
        ] {
            crate::fsutil::create_private_dir(&dir, mode)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        for dir in [&p.spool, &p.cache, &p.catalog, &p.log] {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(dir)
                && m.permissions().mode() & 0o007 != 0
            {
                log::warn!(
                    "{} is open to others (mode {:o}); what reel puts below it is not, but `chmod o-rwx {}` closes it",
                    dir.display(),
                    m.permissions().mode() & 0o7777,
                    dir.display()
                );
            }
        }
        Ok(spool)
    }

    pub fn stream(&self, name: &str) -> Option<&Stream> {
        self.streams.iter().find(|s| s.name == name)
    }

    pub fn drive(&self, name: &str) -> Option<&Drive> {
        self.drives.iter().find(|d| d.name == name)
    }
}

/// Pick the config file: the explicit one, else `$REEL_CONFIG`, else the
/// first of `fallbacks` that exists.
pub fn locate(
    explicit: Option<&Path>,
    env: Option<&Path>,
    fallbacks: &[&Path],
) -> Result<PathBuf, ConfigError> {
    let missing = |p: &Path, how: &str| ConfigError {
        file: p.to_path_buf(),
        line: None,
        key: None,
        message: format!("config file named by {how} does not exist"),
    };
    if let Some(p) = explicit {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(missing(p, "--config"))
        };
    }
    if let Some(p) = env.filter(|p| !p.as_os_str().is_empty()) {
        return if p.exists() {
            Ok(p.to_path_buf())
        } else {
            Err(missing(p, "$REEL_CONFIG"))
        };
    }
    if let Some(p) = fallbacks.iter().find(|p| p.exists()) {
        return Ok(p.to_path_buf());
    }
    Err(ConfigError {
        file: PathBuf::from("pipeline.toml"),
        line: None,
        key: None,
        message: format!(
            "no config file found: tried --config, $REEL_CONFIG, {}; `reel config default` prints a working one",
            fallbacks
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

#[cfg(test)]
mod tests;
