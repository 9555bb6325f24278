//! The library every reel program uses.
//!
//! reel is a pipeline of small programs (`reel-scan`, `reel-stage`,
//! `reel-pack`, `reel-write`, `reel-verify`, …) that hand work to each other
//! through spool directories of manifest files. This crate holds what they
//! share — the configuration ([`config`]), the manifest format
//! ([`manifest`]), the spool protocol ([`spool`]), tapes and libraries
//! ([`tape`], [`changer`], [`vtl`]), archives ([`archive`]), the catalog
//! ([`catalog`]), exit codes ([`exit`]), units ([`units`]), logging and the
//! thin-`main` helper ([`cli`]) — and each program's own logic, so that
//! unit tests reach it: [`scan`], [`stage`], [`pack`], [`write`](mod@write),
//! [`verify`], [`restore`], [`supervise`], the `reel` front door
//! ([`front`]) and `reel-drivesim` ([`tape::speed::sim`]). A program's
//! `main.rs` parses its flags and calls its module.
//!
//! The library never exits: it returns errors, and the programs decide
//! what to say and which exit code to use. It prints only where printing
//! is a command's work: [`front`]'s listings, `reel-restore --dry-run`, and
//! [`write`](mod@write)'s progress lines and its prompt for the next tape
//! on the terminal.

pub mod archive;
pub mod beneath;
pub mod catalog;
pub mod changer;
pub mod cli;
pub mod config;
pub mod device;
pub mod exit;
pub mod front;
pub mod fsutil;
pub mod hashers;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod pack;
pub mod remote;
pub mod restore;
pub mod ring;
pub mod scan;
pub mod scsi;
pub mod sha;
pub mod signals;
pub mod spool;
pub mod stage;
pub mod supervise;
pub mod tape;
pub mod tcmu;
pub mod telemetry;
pub mod time;
pub mod units;
pub mod verify;
pub mod vtl;
pub mod write;
pub mod xattrs;

pub use config::Config;
pub use exit::{Exit, ExitError};
