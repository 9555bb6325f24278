//! Logging for every program: `log` macros, `env_logger` behind them, all
//! of it on stderr (stdout carries data only, invariant 7).
//!
//! The level is `info`; each `-v` raises it (debug, trace), each `-q` lowers
//! it (warn, error). `RUST_LOG` set in the environment overrides both, with
//! env_logger's full syntax (`RUST_LOG=reel_shared::spool=trace`).

use std::io::Write;

use log::LevelFilter;

/// The level for a count of `-v` and `-q` flags.
pub fn level(verbose: u8, quiet: u8) -> LevelFilter {
    match i16::from(verbose) - i16::from(quiet) {
        i16::MIN..=-2 => LevelFilter::Error,
        -1 => LevelFilter::Warn,
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Set up logging for `program`: lines read `reel-scan: warning: …`.
pub fn init(program: &'static str, verbose: u8, quiet: u8) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level(verbose, quiet));
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(move |out, record| {
        let level = match record.level() {
            log::Level::Error => "error: ",
            log::Level::Warn => "warning: ",
            log::Level::Info => "",
            log::Level::Debug => "debug: ",
            log::Level::Trace => "trace: ",
        };
        writeln!(out, "{program}: {level}{}", record.args())
    });
    builder.target(env_logger::Target::Stderr);
    // A second init (tests) keeps the first logger.
    let _ = builder.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_move_the_level() {
        assert_eq!(level(0, 0), LevelFilter::Info);
        assert_eq!(level(1, 0), LevelFilter::Debug);
        assert_eq!(level(5, 0), LevelFilter::Trace);
        assert_eq!(level(0, 1), LevelFilter::Warn);
        assert_eq!(level(0, 3), LevelFilter::Error);
    }
}
