//! `reel <stage> …`: replace this process with `reel-<stage> …`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use anyhow::Context;
use reel_shared::cli::CommonArgs;
use reel_shared::exit::{Exit, ExitError};

/// The program `reel-<stage>`: beside this executable if it is there (an
/// uninstalled build), else whatever PATH finds.
fn program(stage: &str) -> PathBuf {
    let name = format!("reel-{stage}");
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Run the stage in place of this process, passing on the common flags
/// given before the subcommand. Returns only if exec failed.
pub fn exec(stage: &str, common: &CommonArgs, args: Vec<OsString>) -> anyhow::Result<Exit> {
    let prog = program(stage);
    let mut cmd = std::process::Command::new(&prog);
    if let Some(config) = &common.config {
        cmd.arg("--config").arg(config);
    }
    for _ in 0..common.verbose {
        cmd.arg("-v");
    }
    for _ in 0..common.quiet {
        cmd.arg("-q");
    }
    cmd.args(args);
    let err = cmd.exec();
    Err(ExitError::new(
        Exit::Unavailable,
        format!("cannot run {}: {err}", prog.display()),
    ))
    .context("is reel installed completely? every reel-* program must sit beside `reel` or on PATH")
}
