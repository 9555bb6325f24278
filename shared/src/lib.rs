//! The library every reel program uses.
//!
//! reel is a pipeline of small programs (`reel-scan`, `reel-stage`,
//! `reel-pack`, `reel-write`, `reel-verify`, …) that hand work to each other
//! through spool directories of manifest files. This crate holds what they
//! share: the configuration ([`config`]), the manifest format ([`manifest`]),
//! the spool protocol ([`spool`]), exit codes ([`exit`]), units ([`units`]),
//! logging and the thin-`main` helper ([`cli`]).
//!
//! The library never prints and never exits: it returns errors, and the
//! programs decide what to say and which exit code to use.

pub mod archive;
pub mod beneath;
pub mod catalog;
pub mod changer;
pub mod cli;
pub mod config;
pub mod device;
pub mod exit;
pub mod fsutil;
pub mod logging;
pub mod manifest;
pub mod remote;
pub mod restore;
pub mod ring;
pub mod sha;
pub mod signals;
pub mod spool;
pub mod supervise;
pub mod tape;
pub mod telemetry;
pub mod time;
pub mod units;
pub mod verify;
pub mod vtl;
pub mod xattrs;

pub use config::Config;
pub use exit::{Exit, ExitError};
