//! The `reel` program's commands, for people: `reel status` and `reel
//! retry` read and repair the spool, `reel config` checks or prints the
//! configuration, `reel find`, `reel tapes`, `reel stats` and `reel catalog`
//! read the catalog, `reel mt` and `reel changer` drive the hardware, and
//! `reel <stage> …` runs `reel-<stage> …`.
//!
//! - `status.rs`: `reel status`; `listings.rs`: `reel find` and `reel tapes`;
//! - `stats.rs`: `reel stats`; `import.rs`: `reel catalog import`;
//! - `mt.rs`: `reel mt`; `changer.rs`: `reel changer`;
//! - `dispatch.rs`: `reel <stage>`.

mod changer;
mod dispatch;
mod import;
mod listings;
mod mt;
pub mod places;
pub mod rewrite;
pub(crate) mod stats;
pub(crate) mod status;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Subcommand;

use crate::catalog::find::Query;
use crate::cli::CommonArgs;
use crate::config::DEFAULT_CONFIG;
use crate::exit::Exit;
use crate::spool::Queue;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show what waits in each spool queue, the cache, what the supervisor is
    /// doing, and the failed items with why
    Status {
        /// One JSON object on stdout instead of a table
        #[arg(long)]
        json: bool,
        /// Show it again every 2 seconds, with a fresh telemetry line from
        /// a running reel-write (Ctrl-C ends)
        #[arg(long)]
        live: bool,
    },
    /// Put failed items back into the queue they came from
    Retry {
        /// Item ids, as `reel status` lists them
        #[arg(value_name = "ID", required_unless_present = "all")]
        ids: Vec<String>,
        /// Retry every failed item
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Check or print the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The catalog of what is verified on tape
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Find verified files in the catalog: glob (`*?[{`) or path prefix
    Find {
        /// Glob over the whole path, or a path prefix
        #[arg(value_name = "PATTERN", required_unless_present = "tape")]
        patterns: Vec<String>,
        /// What this tape holds, in tape order (only what matches PATTERN,
        /// when given)
        #[arg(long, value_name = "LABEL")]
        tape: Option<String>,
        /// Mode, owner, group, block, when verified and stream too
        #[arg(short, long)]
        long: bool,
        /// Only this stream
        #[arg(long, value_name = "S")]
        stream: Option<String>,
        /// The versions taken from the source at or before this time (RFC 3339 or a date)
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Every verified copy, not only the newest of each path
        #[arg(long)]
        all_versions: bool,
        /// One JSON array on stdout instead of a table
        #[arg(long)]
        json: bool,
    },
    /// The tapes the catalog knows: where, state, files, bytes, last
    /// verify; export, import, mark where they are
    Tapes {
        /// One JSON array on stdout instead of a table
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        op: Option<places::TapesOp>,
    },
    /// Rates from reel-write's telemetry: per run, a least-squares rate,
    /// the time until the tape is full, and runs much slower than their
    /// history (dirty heads, worn tapes)
    Stats {
        /// Only this tape's runs
        #[arg(value_name = "TAPE")]
        tape: Option<String>,
        /// Draw rate and ring fill over time into this SVG file
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// One JSON array on stdout instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Tape drive control: status, rewind, fsf, bsf, eod, tell, seek, weof, label, identify, ls, selftest…
    Mt(mt::MtArgs),
    /// Tape library control: list, load, unload, transfer
    Changer(changer::ChangerArgs),
    /// Run reel-scan
    Scan(Passthrough),
    /// Run reel-stage
    #[command(alias = "stage-to-cache")]
    Stage(Passthrough),
    /// Run reel-pack
    #[command(alias = "tar-pack")]
    Pack(Passthrough),
    /// Run reel-write
    #[command(alias = "tape-write")]
    Write(Passthrough),
    /// Run reel-verify
    #[command(alias = "readback-verify")]
    Verify(Passthrough),
    /// Run reel-restore
    Restore(Passthrough),
    /// Run reel-supervisor
    Supervisor(Passthrough),
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Rebuild a tape's journal from the tape: every archive read and each
    /// member re-hashed against the archive's own index
    Import {
        /// Tape device: /dev/nstN or virtual:<dir>[#n] [default: --drive, $TAPE, first [[drive]]]
        #[arg(short = 'f', long = "file", value_name = "DEVICE")]
        device: Option<String>,
        /// A [[drive]] of pipeline.toml
        #[arg(long, value_name = "NAME", conflicts_with = "device")]
        drive: Option<String>,
    },
    /// Export the catalog into a SQLite database for `sqlite3` (only what
    /// the journals added since, when FILE holds an earlier export)
    Export {
        /// The database file (created when absent)
        #[arg(long, value_name = "FILE", required = true)]
        sqlite: std::path::PathBuf,
    },
    /// Rebuild the lookup index (catalog/index/) from the tape journals
    Rebuild {
        /// Entries sorted in memory at a time (bounds memory use)
        #[arg(long, default_value_t = crate::catalog::rebuild::DEFAULT_CHUNK, value_name = "N")]
        chunk: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Load and check the configuration; print where it was found
    Check,
    /// Print the built-in default configuration (a virtual library under ./var)
    Default,
}

/// Arguments handed unchanged to the stage program.
#[derive(clap::Args, Debug)]
pub struct Passthrough {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// Carry out one command of `reel`.
pub fn run(command: Command, common: &CommonArgs) -> anyhow::Result<Exit> {
    match command {
        Command::Status { json, live } => {
            let config = common.load_config()?;
            let spool = config.prepare_dirs()?;
            status::run(&config, &spool, json, live)
        }
        Command::Retry { ids, all } => {
            let spool = common.load_config()?.prepare_dirs()?;
            let ids = if all { spool.list(Queue::Failed)? } else { ids };
            for id in ids {
                let queue = spool.retry(&id)?;
                log::info!("{id}: back in {queue}");
            }
            Ok(Exit::Ok)
        }
        Command::Config(ConfigCommand::Check) => {
            let config = common.load_config()?;
            crate::outln!("{}: ok", config.file.display())?;
            Ok(Exit::Ok)
        }
        Command::Config(ConfigCommand::Default) => {
            crate::out!("{DEFAULT_CONFIG}")?;
            Ok(Exit::Ok)
        }
        Command::Catalog(CatalogCommand::Export { sqlite }) => {
            let config = common.load_config()?;
            let t0 = std::time::Instant::now();
            let done = crate::catalog::sqlite::export(&config.paths.catalog, &sqlite)
                .map_err(|e| crate::exit::ExitError::new(e.exit(), e.to_string()))?;
            log::info!(
                "{}: {} member line(s) added from {} journal(s) ({} exported again or removed), {} tape(s), in {:.1}s",
                sqlite.display(),
                done.members,
                done.journals,
                done.replaced,
                done.tapes,
                t0.elapsed().as_secs_f64()
            );
            Ok(Exit::Ok)
        }
        Command::Catalog(CatalogCommand::Rebuild { chunk }) => {
            listings::rebuild(&common.load_config()?, chunk)
        }
        Command::Catalog(CatalogCommand::Import { device, drive }) => {
            import::open_and_run(&common.load_config()?, device.as_deref(), drive.as_deref())
        }
        Command::Find {
            patterns,
            stream,
            at,
            all_versions,
            json,
            tape,
            long,
        } => {
            let query = Query {
                patterns,
                stream,
                at,
                all_versions,
            };
            listings::find(
                &common.load_config()?,
                &query,
                tape.as_deref(),
                listings::FindStyle { json, long },
            )
        }
        Command::Tapes { json, op: None } => listings::tapes(&common.load_config()?, json),
        Command::Tapes { op: Some(op), .. } => places::run(&common.load_config()?, op),
        Command::Stats { tape, plot, json } => {
            let config = common.load_config()?;
            stats::run(&config, tape.as_deref(), plot.as_deref(), json)
        }
        Command::Mt(a) => mt::run(a, common),
        Command::Changer(a) => changer::run(a, common),
        Command::Scan(p) => dispatch::exec("scan", common, p.args),
        Command::Stage(p) => dispatch::exec("stage", common, p.args),
        Command::Pack(p) => dispatch::exec("pack", common, p.args),
        Command::Write(p) => dispatch::exec("write", common, p.args),
        Command::Verify(p) => dispatch::exec("verify", common, p.args),
        Command::Restore(p) => dispatch::exec("restore", common, p.args),
        Command::Supervisor(p) => dispatch::exec("supervisor", common, p.args),
    }
}
