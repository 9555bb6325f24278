//! `reel <stage> …`: replace this process with `reel-<stage> …`.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use crate::cli::{self, CommonArgs};
use crate::exit::{Exit, ExitError};
use anyhow::Context;

/// Run the stage in place of this process, passing on the common flags
/// given before the subcommand. Returns only if exec failed.
pub fn exec(stage: &str, common: &CommonArgs, args: Vec<OsString>) -> anyhow::Result<Exit> {
    let prog = cli::sibling_program(&format!("reel-{stage}"));
    let mut cmd = std::process::Command::new(&prog);
    if let Some(config) = &common.config {
        cmd.arg("--config").arg(config);
    }
    common.pass_verbosity(&mut cmd);
    cmd.args(args);
    let err = cmd.exec();
    Err(ExitError::new(
        Exit::Unavailable,
        format!("cannot run {}: {err}", prog.display()),
    ))
    .context("is reel installed completely? every reel-* program must sit beside `reel` or on PATH")
}
