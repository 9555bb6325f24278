//! `reel`: the front door for people.
//!
//! `reel status` and `reel retry` read and repair the spool, `reel config`
//! checks or prints configuration, and `reel <stage> …` runs `reel-<stage> …`
//! (found next to this executable, else on PATH), with the long stage names
//! (scan, stage-to-cache, tar-pack, tape-write, readback-verify) as aliases.

mod changer;
mod dispatch;
mod import;
mod mt;
mod stats;
mod status;

use std::ffi::OsString;

use clap::{Parser, Subcommand};
use reel_shared::cli::{self, CommonArgs, Program};
use reel_shared::config::DEFAULT_CONFIG;
use reel_shared::exit::Exit;

/// Back up file trees to LTO tape: the front door to reel's programs.
#[derive(Parser, Debug)]
#[command(name = "reel", version, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,

    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
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
        #[arg(value_name = "PATTERN", required = true)]
        patterns: Vec<String>,
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
    /// The tapes the catalog knows: state, files, bytes, last verify
    Tapes {
        /// One JSON array on stdout instead of a table
        #[arg(long)]
        json: bool,
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
        plot: Option<std::path::PathBuf>,
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
enum CatalogCommand {
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
    /// Rebuild the lookup index (catalog/index/) from the tape journals
    Rebuild {
        /// Entries sorted in memory at a time (bounds memory use)
        #[arg(long, default_value_t = 1 << 20, value_name = "N")]
        chunk: usize,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Load and check the configuration; print where it was found
    Check,
    /// Print the built-in default configuration (a virtual library under ./var)
    Default,
}

/// Arguments handed unchanged to the stage program.
#[derive(clap::Args, Debug)]
struct Passthrough {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

impl Program for Args {
    const NAME: &'static str = "reel";
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let common = &args.common;
    match args.command {
        Command::Status { json, live } => {
            let config = common.load_config()?;
            let spool = config.prepare_dirs()?;
            status::run(&config, &spool, json, live)
        }
        Command::Retry { ids, all } => {
            let spool = common.load_config()?.prepare_dirs()?;
            let ids = if all {
                spool.list(reel_shared::spool::Queue::Failed)?
            } else {
                ids
            };
            for id in ids {
                let queue = spool.retry(&id)?;
                log::info!("{id}: back in {queue}");
            }
            Ok(Exit::Ok)
        }
        Command::Config(ConfigCommand::Check) => {
            let config = common.load_config()?;
            reel_shared::outln!("{}: ok", config.file.display())?;
            Ok(Exit::Ok)
        }
        Command::Config(ConfigCommand::Default) => {
            reel_shared::out!("{DEFAULT_CONFIG}")?;
            Ok(Exit::Ok)
        }
        Command::Catalog(CatalogCommand::Rebuild { chunk }) => {
            let config = common.load_config()?;
            let started = std::time::Instant::now();
            let stats = reel_shared::catalog::rebuild(&config.paths.catalog, chunk)?;
            log::info!(
                "index rebuilt from {} journal(s): {} entries, {} paths, {} sorted run(s), {:.1}s",
                stats.journals,
                stats.entries,
                stats.paths,
                stats.runs,
                started.elapsed().as_secs_f64()
            );
            Ok(Exit::Ok)
        }
        Command::Find {
            patterns,
            stream,
            at,
            all_versions,
            json,
        } => {
            let config = common.load_config()?;
            let q = reel_shared::catalog::find::Query {
                patterns,
                stream,
                at,
                all_versions,
            };
            let found = reel_shared::catalog::find::search(&config.paths.catalog, &q)?;
            let mut out = std::io::stdout().lock();
            use std::io::Write as _;
            if json {
                let list: Vec<serde_json::Value> = found
                    .iter()
                    .map(|e| {
                        let mut v = serde_json::to_value(&e.record).expect("records serialize");
                        v["stream"] = e.stream.clone().into();
                        v["verified"] = e.verified.clone().into();
                        v
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(list))?;
            } else {
                for e in &found {
                    let r = &e.record;
                    let part = match r.part {
                        Some(n) => format!(
                            " (part {n}: {} from byte {})",
                            reel_shared::units::Size(r.bytes()).human(),
                            r.part_offset.unwrap_or(0)
                        ),
                        None => String::new(),
                    };
                    writeln!(
                        out,
                        "{}{part}  {:>10}  {}  {} file {} block {}  verified {}  [{}]",
                        r.path.display(),
                        reel_shared::units::Size(r.size).human(),
                        reel_shared::time::Utc::from_unix(r.mtime_ns.div_euclid(1_000_000_000))
                            .rfc3339(),
                        r.tape.as_deref().unwrap_or("?"),
                        r.file.map_or("?".into(), |f| f.to_string()),
                        r.block.map_or("?".into(), |b| b.to_string()),
                        e.verified,
                        e.stream
                    )?;
                }
            }
            if found.is_empty() {
                log::warn!("nothing verified matches");
                return Ok(Exit::Skipped);
            }
            Ok(Exit::Ok)
        }
        Command::Tapes { json } => {
            let config = common.load_config()?;
            let tapes = reel_shared::catalog::tape::all(&config.paths.catalog)?;
            if json {
                reel_shared::outln!("{}", serde_json::to_string(&tapes)?)?;
            } else {
                reel_shared::outln!(
                    "{:<10} {:<10} {:<9} {:>5} {:>10}  last verify",
                    "tape",
                    "pool",
                    "state",
                    "files",
                    "bytes"
                )?;
                for t in &tapes {
                    reel_shared::outln!(
                        "{:<10} {:<10} {:<9} {:>5} {:>10}  {}",
                        t.label,
                        t.pool,
                        format!("{:?}", t.state).to_lowercase(),
                        t.files,
                        reel_shared::units::Size(t.bytes).human(),
                        match (&t.verified, &t.last_verify) {
                            (Some(when), Some(what)) => format!("{when} ({what})"),
                            _ => "never".into(),
                        }
                    )?;
                }
            }
            Ok(Exit::Ok)
        }
        Command::Stats { tape, plot, json } => {
            let config = common.load_config()?;
            stats::run(&config, tape.as_deref(), plot.as_deref(), json)
        }
        Command::Catalog(CatalogCommand::Import { device, drive }) => {
            let config = common.load_config()?;
            let tape = std::env::var("TAPE").unwrap_or_default();
            let choice = reel_shared::tape::session::Choice {
                device: device.as_deref(),
                name: drive.as_deref(),
                env: Some(("TAPE", &tape)),
            };
            let session = reel_shared::tape::session::Session::new(
                Some(&config),
                choice,
                std::time::Duration::from_secs(300),
            )?;
            let (mut d, label) = session.open_labelled()?;
            import::run(&config, d.as_mut(), &label)
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

fn main() -> std::process::ExitCode {
    cli::main::<Args>(run)
}
