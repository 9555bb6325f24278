//! `reel changer`: tape library control (list, load, unload, transfer; and
//! on a virtual library the operator's hands, remove and insert) on
//! real libraries through mtx and on the virtual library, numbered as mtx
//! numbers: drives from 0, slots from 1.
//!
//! The library is `-f DEVICE`, else `--changer NAME` from pipeline.toml,
//! else `$CHANGER`, else the first `[[changer]]` of pipeline.toml.

use std::io::Write;

use crate::changer::{ChangerStatus, is_cleaning};
use crate::cli::CommonArgs;
use crate::config::{Config, Device};
use crate::device::{library_spec, open_changer};
use crate::exit::{Exit, ExitError};
use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct ChangerArgs {
    /// Library device: /dev/sgN (through mtx), sg:/dev/sgN (over SG_IO) or virtual:<dir>
    #[arg(short = 'f', long = "file", value_name = "DEVICE", global = true)]
    device: Option<String>,

    /// A [[changer]] of pipeline.toml
    #[arg(long, value_name = "NAME", global = true, conflicts_with = "device")]
    changer: Option<String>,

    #[command(subcommand)]
    op: ChangerOp,
}

#[derive(Subcommand, Debug)]
enum ChangerOp {
    /// Show drives and slots with their tapes
    #[command(alias = "status")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Move the tape in SLOT into DRIVE
    Load {
        slot: u32,
        #[arg(default_value_t = 0)]
        drive: u32,
    },
    /// Move the tape in DRIVE back to SLOT [default: the slot it came from, else the first empty one]
    Unload {
        slot: Option<u32>,
        #[arg(long, default_value_t = 0)]
        drive: u32,
    },
    /// Move a tape from one slot to another
    Transfer { from: u32, to: u32 },
    /// Take the tape out of SLOT, as the operator's hand does at an
    /// import/export slot (virtual libraries only: a real one has a door)
    Remove { slot: u32 },
    /// Put tape BARCODE into the empty SLOT, as the operator's hand does (a
    /// tape taken out before, or a new blank one; virtual libraries only)
    Insert { slot: u32, barcode: String },
}

fn resolve(args: &ChangerArgs, config: Option<&Config>) -> anyhow::Result<Device> {
    let usage = |m: String| anyhow::Error::from(ExitError::new(Exit::Usage, m));
    if let Some(dev) = &args.device {
        return Device::from_arg(dev).map_err(usage);
    }
    if let Some(name) = &args.changer {
        let c = config.context("--changer needs a pipeline.toml")?;
        return c
            .changers
            .iter()
            .find(|ch| &ch.name == name)
            .map(|ch| ch.device.clone())
            .ok_or_else(|| {
                usage(format!(
                    "no [[changer]] named {name:?} in {}",
                    c.file.display()
                ))
            });
    }
    if let Ok(dev) = std::env::var("CHANGER")
        && !dev.is_empty()
    {
        return Device::from_arg(&dev).map_err(|e| usage(format!("$CHANGER: {e}")));
    }
    config
        .and_then(|c| c.changers.first())
        .map(|ch| ch.device.clone())
        .ok_or_else(|| usage("no changer given: use -f DEVICE, --changer NAME, $CHANGER, or a [[changer]] in pipeline.toml".into()))
}

pub fn run(args: ChangerArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let config = common.load_config_if_any()?;
    let device = resolve(&args, config.as_ref())?;
    let spec = library_spec(config.as_ref(), &device);
    if let ChangerOp::Remove { .. } | ChangerOp::Insert { .. } = args.op {
        let Device::Virtual { dir, .. } = &device else {
            return Err(ExitError::new(
                Exit::Usage,
                format!("{device} is a real library: take tapes out and put them in by hand, through its door"),
            )
            .into());
        };
        let mut changer = crate::vtl::open_changer(dir, &spec)?;
        match args.op {
            ChangerOp::Remove { slot } => {
                let barcode = changer.remove(slot)?;
                log::info!("took {barcode} out of slot {slot}");
            }
            ChangerOp::Insert { slot, barcode } => {
                changer.insert(slot, &barcode)?;
                log::info!("put {barcode} into slot {slot}");
            }
            _ => unreachable!("remove or insert"),
        }
        return Ok(Exit::Ok);
    }
    let mut changer = open_changer(&device, &spec).with_context(|| format!("opening {device}"))?;
    match args.op {
        ChangerOp::List { json } => {
            let st = changer.status()?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&st)?)?;
            } else {
                print(&mut out, changer.device(), &st)?;
            }
        }
        ChangerOp::Load { slot, drive } => {
            changer.load(slot, drive)?;
            log::info!("slot {slot} → drive {drive}");
        }
        ChangerOp::Unload { slot, drive } => {
            let slot = match slot {
                Some(s) => s,
                None => {
                    let st = changer.status()?;
                    if !st.drives.iter().any(|d| d.index == drive) {
                        return Err(ExitError::new(Exit::Usage, format!("no drive {drive}")).into());
                    }
                    st.home_slot(drive).ok_or_else(|| {
                        ExitError::new(Exit::Unavailable, "no empty slot to unload into")
                    })?
                }
            };
            changer.unload(drive, slot)?;
            log::info!("drive {drive} → slot {slot}");
        }
        ChangerOp::Transfer { from, to } => {
            changer.transfer(from, to)?;
            log::info!("slot {from} → slot {to}");
        }
        ChangerOp::Remove { .. } | ChangerOp::Insert { .. } => unreachable!("handled above"),
    }
    Ok(Exit::Ok)
}

fn print(out: &mut impl Write, device: &str, st: &ChangerStatus) -> anyhow::Result<()> {
    let mail = st.slots.iter().filter(|s| s.import_export).count();
    writeln!(
        out,
        "changer {device}: {} drives, {} slots ({mail} import/export)",
        st.drives.len(),
        st.slots.len()
    )?;
    let tag = |b: &Option<String>| match b {
        Some(b) if is_cleaning(b) => format!("{b} (cleaning)"),
        Some(b) => b.clone(),
        None => "(no barcode)".into(),
    };
    for d in &st.drives {
        let what = if d.full {
            let from = d
                .source_slot
                .map(|s| format!(" from slot {s}"))
                .unwrap_or_default();
            format!("{}{from}", tag(&d.barcode))
        } else {
            "empty".into()
        };
        writeln!(out, "drive {:>3}  {what}", d.index)?;
    }
    for s in &st.slots {
        let kind = if s.import_export { "mail" } else { "slot" };
        let what = if s.full {
            tag(&s.barcode)
        } else {
            "empty".into()
        };
        writeln!(out, "{kind} {:>4}  {what}", s.number)?;
    }
    Ok(())
}
