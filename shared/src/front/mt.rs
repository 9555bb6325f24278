//! `reel mt`: tape drive control, like mt-st, on real drives and on the
//! virtual library, plus what mt cannot do: label, identify, ls, selftest.
//!
//! The drive is `-f DEVICE`, else `--drive NAME` from pipeline.toml, else
//! `$TAPE`, else the first `[[drive]]` of pipeline.toml.

use std::io::Write;

use crate::cli::CommonArgs;
use crate::config::{Config, Device};
use crate::device::{library_spec, lock_device, open_drive};
use crate::exit::{Exit, ExitError};
use crate::scsi::tapealert::TapeAlerts;
use crate::tape::label::{self, Identity, Label};
use crate::tape::linux_st::{LinuxSt, OpenOptions};
use crate::tape::stream::{FileEnd, TapeFileReader};
use crate::tape::{Drive, DriveStatus, selftest};
use crate::units::{Interval, Size};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct MtArgs {
    /// Tape device: /dev/nstN or virtual:<dir>[#n] [default: --drive, $TAPE, first [[drive]]]
    #[arg(short = 'f', long = "file", value_name = "DEVICE", global = true)]
    device: Option<String>,

    /// A [[drive]] of pipeline.toml
    #[arg(long, value_name = "NAME", global = true, conflicts_with = "device")]
    drive: Option<String>,

    /// How long to wait for a real drive whose tape is loading or calibrating
    /// (a new LTO-9 tape takes up to 2 hours) [default: 0s for status, 5m otherwise]
    #[arg(long, value_name = "DURATION", global = true)]
    wait: Option<Interval>,

    #[command(subcommand)]
    op: MtOp,
}

#[derive(Subcommand, Debug)]
enum MtOp {
    /// Show the drive's state and position
    Status {
        /// One JSON object on stdout
        #[arg(long)]
        json: bool,
    },
    /// Rewind to the beginning of the tape
    Rewind,
    /// Space forward over N filemarks (to the start of the N-th next file)
    Fsf {
        #[arg(default_value_t = 1)]
        count: u32,
    },
    /// Space backward over N filemarks (to just before the N-th one)
    Bsf {
        #[arg(default_value_t = 1)]
        count: u32,
    },
    /// Go to the end of the recorded data
    Eod,
    /// Print the logical block position
    Tell,
    /// Go to a logical block position
    Seek { block: u64 },
    /// Write N filemarks at the current position
    Weof {
        #[arg(default_value_t = 1)]
        count: u32,
    },
    /// Write a reel label as file 0 (refuses a tape that holds data unless --force)
    Label {
        /// The label, normally the barcode (T00001L9)
        label: String,
        /// Tape pool (the label names the pool's [[drive_key]], if it has one)
        #[arg(long, default_value = "default")]
        pool: String,
        /// Block size recorded in the label [default: the drive's block_size, else 256K]
        #[arg(long, value_name = "SIZE")]
        block_size: Option<Size>,
        /// Relabel a tape that holds data: everything on it is lost
        #[arg(long)]
        force: bool,
    },
    /// Read the label: which tape is this?
    Identify {
        #[arg(long)]
        json: bool,
    },
    /// List the tape's files and what they hold
    Ls {
        /// Also list every member of every archive
        #[arg(short, long)]
        long: bool,
    },
    /// Erase from the current position to the end of the tape
    Erase {
        /// Overwrite the whole rest of the medium (hours on LTO)
        #[arg(long)]
        long: bool,
    },
    /// Load the tape (after an unload)
    Load,
    /// Rewind and eject the tape
    #[command(alias = "offline", alias = "eject")]
    Unload,
    /// Rewind, wind to the end of data, rewind (st's retension does nothing on LTO)
    Retension,
    /// Test the drive: write, read back, position, append, fill; DESTROYS the tape's contents
    Selftest {
        /// Block size to test with
        #[arg(long, default_value = "256K", value_name = "SIZE")]
        block_size: Size,
        /// Blocks per test file
        #[arg(long, default_value_t = 64)]
        blocks: u64,
        /// Also fill the tape to the early warning (hours on a real LTO tape)
        #[arg(long)]
        fill: bool,
        /// Test a tape that holds data (it is overwritten)
        #[arg(long)]
        force: bool,
        /// Compare only each block's length and 4-byte tag (the kernel's
        /// scsi_debug tape keeps no more of a block)
        #[arg(long)]
        tag_only: bool,
    },
}

/// The drive named on the command line, in the config or in $TAPE, and
/// its configured block size.
fn resolve(args: &MtArgs, config: Option<&Config>) -> anyhow::Result<(Device, Option<u32>)> {
    let tape = std::env::var("TAPE").unwrap_or_default();
    let (device, conf) = crate::device::resolve_drive(
        config,
        args.device.as_deref(),
        args.drive.as_deref(),
        Some(("TAPE", &tape)),
    )
    .map_err(|e| ExitError::new(Exit::Usage, e))?;
    Ok((device, conf.map(|d| d.block_size.0 as u32)))
}

pub fn run(args: MtArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let config = common.load_config_if_any()?;
    let (device, configured_block) = resolve(&args, config.as_ref())?;
    let spec = library_spec(config.as_ref(), &device);
    let default_wait = if matches!(args.op, MtOp::Status { .. }) {
        0
    } else {
        300
    };
    let wait = args
        .wait
        .unwrap_or(Interval::from_secs(default_wait))
        .duration();
    if let (MtOp::Load, Device::Node(path) | Device::Sg(path)) = (&args.op, &device) {
        // A real drive whose tape is unloaded is not ready, and opening it
        // would wait for it in vain: LOAD goes first (as mt-st's load).
        let _lock = lock_device(path)?;
        let options = OpenOptions {
            ready_timeout: wait,
            ..OpenOptions::default()
        };
        match device {
            Device::Sg(_) => crate::tape::sg::SgTape::load(path, &options).map(drop),
            _ => LinuxSt::load(&path.display().to_string(), &options).map(drop),
        }
        .with_context(|| format!("loading the tape in {device}"))?;
        return Ok(Exit::Ok);
    }
    let mut drive =
        open_drive(&device, &spec, wait).with_context(|| format!("opening {device}"))?;
    let d: &mut dyn Drive = drive.as_mut();
    let mut out = std::io::stdout().lock();
    match args.op {
        MtOp::Status { json } => {
            let s = d.status()?;
            // A drive that cannot tell (or fails to) has no TapeAlert or
            // cartridge line.
            let alerts = d.tape_alerts().ok().flatten();
            let cartridge = if s.online {
                d.cartridge_memory().ok().flatten()
            } else {
                None
            };
            let encryption = d.encryption().ok().flatten();
            let volume = if s.online {
                d.volume_statistics().ok().flatten()
            } else {
                None
            };
            if json {
                // The status's own fields first, in their order, then the
                // flags when the drive can tell.
                #[derive(serde::Serialize)]
                struct WithAlerts<'a> {
                    #[serde(flatten)]
                    status: &'a DriveStatus,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    tape_alerts: Option<Vec<serde_json::Value>>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    cartridge: Option<crate::scsi::mam::CartridgeMemory>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    encryption: Option<crate::scsi::encryption::Status>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    volume: Option<crate::scsi::volume::VolumeStatistics>,
                }
                let tape_alerts = alerts.map(|a| {
                    a.flags()
                        .into_iter()
                        .map(|n| serde_json::json!({"flag": n, "name": TapeAlerts::name(n)}))
                        .collect()
                });
                let v = WithAlerts {
                    status: &s,
                    tape_alerts,
                    cartridge,
                    encryption,
                    volume,
                };
                writeln!(out, "{}", serde_json::to_string(&v)?)?;
            } else {
                print_status(&mut out, d.device(), &s)?;
                if let Some(a) = alerts {
                    writeln!(out, "TapeAlert: {a}")?;
                }
                if let Some(c) = cartridge {
                    writeln!(out, "Cartridge: {}", c.summary())?;
                }
                if let Some(e) = encryption {
                    writeln!(out, "Encryption: {e}")?;
                }
                if let Some(v) = volume {
                    writeln!(out, "Volume: {v}")?;
                }
            }
        }
        MtOp::Rewind => d.rewind()?,
        MtOp::Fsf { count } => d.forward_filemarks(count)?,
        MtOp::Bsf { count } => d.back_filemarks(count)?,
        MtOp::Eod => d.end_of_data()?,
        MtOp::Tell => writeln!(out, "At block {}.", d.position()?)?,
        MtOp::Seek { block } => d.seek(block)?,
        MtOp::Weof { count } => {
            d.write_filemarks(count)?;
        }
        MtOp::Label {
            label: name,
            pool,
            block_size,
            force,
        } => {
            let bs = block_size
                .map(|s| s.0 as u32)
                .or(configured_block)
                .unwrap_or(256 * 1024);
            if bs == 0 || bs % 512 != 0 {
                bail!(ExitError::new(
                    Exit::Usage,
                    format!("block size {bs} is not a multiple of 512")
                ));
            }
            let mut label = Label::new(&name, &pool, bs)?;
            if let Some(c) = &config {
                label.drive_key = c
                    .pool_key(&pool)
                    .map_err(|m| ExitError::new(Exit::Config, m))?
                    .map(|k| k.fingerprint);
            }
            let before = label::label_tape(d, &label, force).map_err(|e| match e {
                crate::tape::TapeError::Invalid(m) => ExitError::new(Exit::Unavailable, m).into(),
                other => anyhow::Error::from(other),
            })?;
            if let Identity::Reel(old) = before {
                log::warn!("relabelled tape {} as {}", old.label, label.label);
            }
            log::info!(
                "labelled {} (pool {}, block size {}, uuid {}{})",
                label.label,
                label.pool,
                Size(bs.into()),
                label.uuid,
                label
                    .drive_key
                    .as_ref()
                    .map_or(String::new(), |k| format!(", drive key {k}"))
            );
        }
        MtOp::Identify { json } => identify(d, json, &mut out)?,
        MtOp::Ls { long } => ls(d, long, &mut out)?,
        MtOp::Erase { long } => d.erase(long)?,
        MtOp::Load => d.load()?,
        MtOp::Unload => d.unload()?,
        MtOp::Retension => {
            d.rewind()?;
            d.end_of_data()?;
            d.rewind()?;
        }
        MtOp::Selftest {
            block_size,
            blocks,
            fill,
            force,
            tag_only,
        } => {
            let opts = selftest::Options {
                block_size: block_size.0 as usize,
                blocks,
                fill,
                trailer: 4,
                tag_only,
            };
            return selftest(d, opts, force, &mut out);
        }
    }
    Ok(Exit::Ok)
}

fn print_status(out: &mut impl Write, device: &str, s: &DriveStatus) -> anyhow::Result<()> {
    let tape = match (&s.volume, s.door_open) {
        (_, true) => "no tape".to_string(),
        (Some(v), _) => format!("tape {v}"),
        (None, _) => "tape loaded".to_string(),
    };
    writeln!(out, "drive {device}: {tape}")?;
    let num = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
    writeln!(
        out,
        "File number={}, block number={}, logical block={}.",
        num(s.file),
        num(s.block),
        num(s.position)
    )?;
    let density = s
        .density
        .map(|d| format!(" Density code {d:#04x}."))
        .unwrap_or_default();
    let mode = if s.block_size == 0 { " (variable)" } else { "" };
    writeln!(
        out,
        "Tape block size {} bytes{mode}.{density}",
        s.block_size
    )?;
    let flags: Vec<&str> = [
        (s.filemark, "EOF"),
        (s.bot, "BOT"),
        (s.eot, "EOT"),
        (s.eod, "EOD"),
        (s.write_protected, "WR_PROT"),
        (s.online, "ONLINE"),
        (s.door_open, "DR_OPEN"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name)
    .collect();
    writeln!(out, "General status bits on: {}", flags.join(" "))?;
    Ok(())
}

fn identify(d: &mut dyn Drive, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let identity = label::read_label(d)?;
    if json {
        let v = match &identity {
            Identity::Blank => serde_json::json!({"state": "blank"}),
            Identity::Reel(l) => serde_json::json!({"state": "reel", "label": l}),
            Identity::Foreign(w) => serde_json::json!({"state": "foreign", "detail": w}),
            Identity::Unreadable(w) => serde_json::json!({"state": "unreadable", "detail": w}),
        };
        writeln!(out, "{v}")?;
        return Ok(());
    }
    match identity {
        Identity::Blank => writeln!(out, "blank tape")?,
        Identity::Reel(l) => writeln!(
            out,
            "{} pool={} uuid={} block_size={} created={}",
            l.label, l.pool, l.uuid, l.block_size, l.created
        )?,
        Identity::Foreign(w) => writeln!(out, "not a reel tape: {w}")?,
        Identity::Unreadable(w) => writeln!(out, "label unreadable: {w}")?,
    }
    Ok(())
}

fn ls(d: &mut dyn Drive, long: bool, out: &mut impl Write) -> anyhow::Result<()> {
    match label::read_label(d)? {
        Identity::Blank => {
            writeln!(out, "blank tape")?;
            return Ok(());
        }
        Identity::Reel(l) => writeln!(
            out,
            "file 0  label {} (pool {}, block size {}, created {})",
            l.label,
            l.pool,
            Size(l.block_size.into()),
            l.created
        )?,
        Identity::Foreign(w) => writeln!(out, "file 0  not a reel label: {w}")?,
        Identity::Unreadable(w) => writeln!(out, "file 0  unreadable: {w}")?,
    }
    d.rewind()?;
    d.forward_filemarks(1)?;
    for file in 1.. {
        let start = d.position()?;
        let mut reader = TapeFileReader::new(d);
        let mut members = 0u64;
        let mut bytes = 0u64;
        let mut first = None;
        let listing: anyhow::Result<()> = (|| {
            let mut archive = tar::Archive::new(&mut reader);
            for entry in archive.entries()? {
                let entry = entry?;
                let path = entry.path()?.display().to_string();
                let size = entry.header().size()?;
                if long {
                    writeln!(out, "    {:>12}  {path}", size)?;
                }
                first.get_or_insert(path);
                members += 1;
                bytes += size;
            }
            Ok(())
        })();
        let end = reader.finish()?;
        // The file's length from the positions (which count the filemark):
        // tar stops reading at its end-of-archive blocks, or at the first
        // block that is not tar, so the reader's count falls short.
        let after = d.position()?;
        let blocks = after - start - u64::from(end == FileEnd::Filemark);
        if blocks == 0 && end == FileEnd::EndOfData {
            writeln!(out, "end of data at block {start}")?;
            break;
        }
        match listing {
            Ok(()) => writeln!(
                out,
                "file {file}  block {start}  {blocks} blocks  tar: {members} members, {}{}",
                Size(bytes).human(),
                first.map(|f| format!(", first {f}")).unwrap_or_default()
            )?,
            Err(e) => writeln!(
                out,
                "file {file}  block {start}  {blocks} blocks  not a tar archive: {e}"
            )?,
        }
        if end == FileEnd::EndOfData {
            writeln!(out, "end of data at block {}", d.position()?)?;
            break;
        }
    }
    Ok(())
}

fn selftest(
    d: &mut dyn Drive,
    opts: selftest::Options,
    force: bool,
    out: &mut impl Write,
) -> anyhow::Result<Exit> {
    if opts.block_size == 0 || opts.block_size > 16 << 20 || opts.block_size % 512 != 0 {
        bail!(ExitError::new(
            Exit::Usage,
            "--block-size must be a multiple of 512 up to 16M"
        ));
    }
    if opts.blocks < 2 {
        bail!(ExitError::new(Exit::Usage, "--blocks must be at least 2"));
    }
    let identity = label::read_label(d)?;
    if identity != Identity::Blank && !force {
        bail!(ExitError::new(
            Exit::Unavailable,
            "the tape holds data and the self-test overwrites it; use a scratch tape or --force"
        ));
    }
    let mut report = |s: &selftest::Step| {
        let _ = writeln!(
            out,
            "{}  {}: {}",
            if s.ok { "ok  " } else { "FAIL" },
            s.name,
            s.detail
        );
    };
    let passed = selftest::run(d, opts, &mut report)?;
    if !passed {
        bail!(ExitError::new(Exit::Io, "the drive failed the self-test"));
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtl::{LibrarySpec, open_drive};

    #[test]
    fn ls_counts_every_block_of_a_file_that_is_not_tar() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = open_drive(&dir.path().join("lib"), 0, &LibrarySpec::default()).unwrap();
        label::write_label(&mut d, &Label::new("T1", "p", 4096).unwrap()).unwrap();
        for _ in 0..5 {
            d.write_block(&[7; 4096]).unwrap();
        }
        d.write_filemarks(1).unwrap();
        let mut out = Vec::new();
        ls(&mut d, false, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("file 1  block 2  5 blocks  not a tar archive"),
            "{out}"
        );
        assert!(out.ends_with("end of data at block 8\n"), "{out}");
    }
}
