//! reel's integration tests: the real programs, run against temporary
//! directories. One test crate, so every program's binary is built once and
//! reachable through `CARGO_BIN_EXE_<name>` (see support.rs).

mod archive_encryption;
mod catalog_export;
mod chaos;
mod cli;
mod config;
mod daemon;
mod drive_encryption;
mod e2e;
mod from_tape;
mod health;
mod hostile;
mod hostile_spool;
mod lifecycle;
mod listings;
mod metrics;
mod pack;
mod places;
mod remote;
mod restore;
mod restore_safety;
mod scan;
mod small_cache;
mod spool;
mod spool_crash;
mod stage;
mod supervisor;
mod support;
mod tape;
mod verify;
mod write;
mod write_protect;
