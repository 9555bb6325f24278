//! What every program's thin `main` shares: the common flags, parsing,
//! logging set-up, and turning the result into one line on stderr and an
//! exit code (docs/exit-codes.md §2).
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     reel_shared::cli::main::<Args>(run)
//! }
//! ```
//!
//! Man pages and shell completions come from the same clap definitions: run
//! any program with `--generate-docs DIR` as its only arguments (what
//! `scripts/gen-docs` does).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgAction, Parser};

use crate::config::Config;
use crate::exit::{Exit, is_broken_pipe};

/// Flags every program takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Configuration file [default: $REEL_CONFIG, then ./pipeline.toml, then /etc/reel/pipeline.toml]
    #[arg(short = 'c', long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Say more on stderr (-vv for everything)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Say less on stderr: warnings only (-qq: errors only)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub quiet: u8,
}

impl CommonArgs {
    /// Find and load `pipeline.toml` (the lookup order in README, "Configuration").
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let config = Config::find_and_load(self.config.as_deref())?;
        log::debug!("config: {}", config.file.display());
        Ok(config)
    }
}

impl CommonArgs {
    /// The config if there is one: a file named by `--config` or
    /// `$REEL_CONFIG` must load; without either, a missing `./pipeline.toml`
    /// and `/etc/reel/pipeline.toml` give `None` (for tools like `reel mt -f`
    /// that work without a config).
    pub fn load_config_if_any(&self) -> anyhow::Result<Option<Config>> {
        let named =
            self.config.is_some() || std::env::var_os("REEL_CONFIG").is_some_and(|v| !v.is_empty());
        let found = ["./pipeline.toml", "/etc/reel/pipeline.toml"]
            .iter()
            .any(|p| Path::new(p).exists());
        if named || found {
            self.load_config().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Another reel program (`reel-scan`, …): beside this executable if it is
/// there (an uninstalled build), else whatever PATH finds.
pub fn sibling_program(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|me| me.parent().map(|dir| dir.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

impl CommonArgs {
    /// Pass `-q` and `-v` on to another reel program as they were given.
    pub fn pass_verbosity(&self, cmd: &mut std::process::Command) {
        for _ in 0..self.quiet {
            cmd.arg("-q");
        }
        for _ in 0..self.verbose {
            cmd.arg("-v");
        }
    }
}

/// Which drive a tape program uses: `-f DEVICE` or `--drive NAME`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DriveArgs {
    /// Tape device: /dev/nstN or virtual:<dir>[#n]
    #[arg(short = 'f', long, value_name = "DEVICE", conflicts_with = "drive")]
    pub device: Option<String>,

    /// A [[drive]] from pipeline.toml [default: the first]
    #[arg(long, value_name = "NAME")]
    pub drive: Option<String>,
}

impl DriveArgs {
    /// `-f DEVICE`, if given.
    pub fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }

    /// `--drive NAME`, if given.
    pub fn name(&self) -> Option<&str> {
        self.drive.as_deref()
    }
}

/// Where a stage takes its manifests from and puts them: its spool queues,
/// or stdin and stdout (`--in -`, `--out -`) in a shell pipeline.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PipeArgs {
    /// Read manifests from stdin ("-") instead of the spool queue
    #[arg(long = "in", value_name = "-")]
    pub input: Option<String>,

    /// Write manifests to stdout ("-") instead of the spool queue
    #[arg(long = "out", value_name = "-")]
    pub output: Option<String>,
}

impl PipeArgs {
    /// Whether manifests come from stdin (`--in -`).
    pub fn from_stdin(&self) -> anyhow::Result<bool> {
        dash_flag("--in", self.input.as_deref())
    }

    /// Whether manifests go to stdout (`--out -`).
    pub fn to_stdout(&self) -> anyhow::Result<bool> {
        dash_flag("--out", self.output.as_deref())
    }
}

/// `--in -` / `--out -`: only "-" (stdin or stdout) is accepted; `None`
/// means the spool queue.
pub fn dash_flag(flag: &str, value: Option<&str>) -> anyhow::Result<bool> {
    match value {
        None => Ok(false),
        Some("-") => Ok(true),
        Some(other) => Err(crate::exit::ExitError::new(
            Exit::Usage,
            format!("{flag} takes only \"-\" (stdin or stdout), not {other:?}"),
        )
        .into()),
    }
}

/// A program's parsed command line.
pub trait Program: Parser {
    /// The program's name, for log lines and error messages.
    const NAME: &'static str;
    /// What it creates is reel's own (spool, cache, catalog, log: it runs
    /// with umask 077, so nothing is readable by others whatever the mode
    /// of the mount point). Not so for reel-restore, whose files are the
    /// user's and get the modes on tape.
    const PRIVATE: bool = true;
    /// It is a stage of the pipeline, or the supervisor: it rewrites the
    /// metrics file when it exits.
    const WRITES_METRICS: bool = false;
    fn common(&self) -> &CommonArgs;
}

/// `println!` that returns the write's `io::Result` instead of panicking:
/// a closed stdout (`reel tapes | head -1`) then ends the program quietly
/// with 0 (see [`main`]). Every program prints its data through this.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` as [`outln!`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// Parse, set up logging, run, report. `run` returns [`Exit::Ok`] or
/// [`Exit::Skipped`]; an error becomes one line on stderr and the exit code
/// its chain calls for. A broken pipe on stdout ends quietly with 0.
pub fn main<P: Program>(run: fn(P) -> anyhow::Result<Exit>) -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() == 3 && args[1] == "--generate-docs" {
        return match generate_docs(&mut P::command(), P::NAME, Path::new(&args[2])) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report::<P>(&e),
        };
    }
    let parsed = match P::try_parse_from(args) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    let common = parsed.common();
    crate::logging::init(P::NAME, common.verbose, common.quiet);
    if log::log_enabled!(log::Level::Debug) {
        // SAFETY: getpriority reads the process's niceness; nothing else.
        let niceness = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        log::debug!("pid {}, niceness {niceness}", std::process::id());
    }
    if P::PRIVATE {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    }
    let common = common.clone();
    let result = run(parsed);
    // The stages and the supervisor leave the metrics as they found them
    // (`[supervisor] metrics_file`), however they ended.
    if P::WRITES_METRICS
        && let Ok(config) = common.load_config()
    {
        crate::metrics::write(&config);
    }
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => report::<P>(&e),
    }
}

/// The exit code for an error chain: the first error in it that carries
/// a meaning decides; an error nobody classified is an I/O-ish failure.
pub fn exit_of(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        let exit = if let Some(e) = cause.downcast_ref::<crate::exit::ExitError>() {
            Some(e.exit)
        } else if let Some(e) = cause.downcast_ref::<crate::config::ConfigError>() {
            Some(e.exit())
        } else if let Some(e) = cause.downcast_ref::<crate::manifest::ManifestError>() {
            Some(e.exit())
        } else if let Some(e) = cause.downcast_ref::<crate::spool::SpoolError>() {
            Some(e.exit())
        } else if let Some(e) = cause.downcast_ref::<crate::catalog::CatalogError>() {
            Some(e.exit())
        } else if let Some(e) = cause.downcast_ref::<crate::tape::TapeError>() {
            Some(e.exit())
        } else if let Some(e) = cause.downcast_ref::<crate::changer::ChangerError>() {
            Some(e.exit())
        } else {
            cause.downcast_ref::<std::io::Error>().map(Exit::of_io)
        };
        if let Some(exit) = exit {
            return exit;
        }
    }
    Exit::Io
}

fn report<P: Program>(e: &anyhow::Error) -> ExitCode {
    let exit = exit_of(e);
    eprintln!("{}: error: {}", P::NAME, one_line(e));
    ExitCode::from(exit.code())
}

/// The error chain on one line, outermost first, skipping a cause whose
/// text its parent already includes.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// Write `man/<name>.1` (and a page per subcommand) and bash, zsh and fish
/// completions under `dir`.
pub fn generate_docs(
    cmd: &mut clap::Command,
    name: &'static str,
    dir: &Path,
) -> anyhow::Result<()> {
    use clap_complete::Shell;
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let cmd = std::mem::take(cmd).name(name).bin_name(name);
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("writing man pages to {}", man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut c = cmd.clone();
        clap_complete::generate_to(shell, &mut c, name, &completions)
            .with_context(|| format!("writing {shell} completions to {}", completions.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod exit_tests {
    use super::*;
    use anyhow::Context;
    use std::io;

    #[test]
    fn the_chain_decides_the_code() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::NotFound)).context("opening x");
        assert_eq!(exit_of(&e), Exit::NoInput);
        let e: anyhow::Error = Err::<(), _>(io::Error::from_raw_os_error(libc::ENOSPC))
            .context("writing the cache")
            .unwrap_err();
        assert_eq!(exit_of(&e), Exit::TempFail);
        let e = anyhow::Error::new(crate::exit::ExitError::new(Exit::Unavailable, "no tape"));
        assert_eq!(exit_of(&e), Exit::Unavailable);
        let e = anyhow::Error::new(crate::config::ConfigError {
            file: "p.toml".into(),
            line: Some(3),
            key: None,
            message: "bad".into(),
        })
        .context("loading");
        assert_eq!(exit_of(&e), Exit::Config);
        assert_eq!(exit_of(&anyhow::anyhow!("something")), Exit::Io);
    }
}
