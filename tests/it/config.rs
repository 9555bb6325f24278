//! Malformed pipeline.toml: exit 78 and one line naming the key and line.

use crate::support::{CONFIG, Env};

/// (what to append to the test config, line, key) — the key's line in the
/// resulting file.
const CASES: &[(&str, usize, &str)] = &[
    ("[cache]\nhigh_watr = \"90%\"\n", 12, "cache.high_watr"),
    ("[cache]\nhigh_water = 90\n", 12, "cache.high_water"),
    (
        "[cache]\nhigh_water = \"80%\"\nlow_water = \"85%\"\n",
        13,
        "cache.low_water",
    ),
    (
        "[[drive]]\nname = \"lto\"\ndevice = \"/dev/nst0\"\nblock_size = \"100KB\"\n",
        14,
        "drive[0].block_size",
    ),
    (
        "[[drive]]\nname = \"lto\"\ndevice = \"/dev/nst0\"\nblock_size = 1000\n",
        14,
        "drive[0].block_size",
    ),
    (
        "[pack]\narchive_size = \"20TB\"\n[[drive]]\nname = \"lto\"\ndevice = \"/dev/nst0\"\n",
        12,
        "pack.archive_size",
    ),
    (
        "[supervisor]\nscan_interval = \"soon\"\n",
        12,
        "supervisor.scan_interval",
    ),
    ("[verify]\nlevel = \"thorough\"\n", 12, "verify.level"),
    (
        "[[stream]]\nname = \"home\"\nsource = \"/elsewhere\"\n",
        12,
        "stream[1].name",
    ),
    ("[paths.extra]\n", 11, "paths.extra"),
    (
        "[supervisor]\nnotify_command = []\n",
        12,
        "supervisor.notify_command",
    ),
    (
        "[supervisor]\nretry = { backoff = \"2h\" }\n",
        12,
        "supervisor.retry.backoff",
    ),
];

fn check(env: &Env, program: &str, args: &[&str], line: usize, key: &str) {
    let run = env.run(program, args);
    run.expect(78);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr\n{}", run.report());
    let want = format!("{program}: error: bad.toml:{line}: {key}: ");
    assert!(
        lines[0].starts_with(&want),
        "want {want:?}\n{}",
        run.report()
    );
}

#[test]
fn malformed_configs_exit_78_with_one_line_naming_key_and_line() {
    let env = Env::new();
    for (extra, line, key) in CASES {
        env.write("bad.toml", &format!("{CONFIG}{extra}"));
        check(
            &env,
            "reel",
            &["--config", "bad.toml", "config", "check"],
            *line,
            key,
        );
    }
}

#[test]
fn every_program_refuses_a_malformed_config_the_same_way() {
    let env = Env::new();
    env.write("bad.toml", &format!("{CONFIG}[cache]\nhigh_water = 90\n"));
    for (program, args) in [
        ("reel", vec!["status"]),
        ("reel-scan", vec![]),
        ("reel-stage", vec![]),
        ("reel-pack", vec![]),
        ("reel-write", vec![]),
        ("reel-verify", vec![]),
        ("reel-restore", vec!["x"]),
        ("reel-supervisor", vec!["--once"]),
    ] {
        let mut all = vec!["--config", "bad.toml"];
        all.extend(args);
        check(&env, program, &all, 12, "cache.high_water");
    }
}

#[test]
fn a_cache_inside_a_source_is_refused() {
    let env = Env::new();
    env.write(
        "bad.toml",
        &CONFIG.replace("source = \"src\"", "source = \"var\""),
    );
    check(
        &env,
        "reel",
        &["--config", "bad.toml", "config", "check"],
        4,
        "paths.cache",
    );
}

#[test]
fn a_syntax_error_names_the_line() {
    let env = Env::new();
    env.write("bad.toml", &format!("{CONFIG}[cache\n"));
    let run = env.run("reel", &["--config", "bad.toml", "config", "check"]);
    run.expect(78);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.report());
    assert!(
        run.stderr
            .starts_with("reel: error: bad.toml:11: syntax error"),
        "{}",
        run.report()
    );
}

#[test]
fn config_lookup_order() {
    let env = Env::new();
    // ./pipeline.toml is found without flags.
    let run = env.run("reel", &["config", "check"]);
    run.expect(0);
    assert_eq!(run.stdout.trim(), "./pipeline.toml: ok", "{}", run.report());
    // $REEL_CONFIG beats ./pipeline.toml, --config beats both.
    env.write("env.toml", CONFIG);
    env.write("flag.toml", CONFIG);
    let out = std::process::Command::new(crate::support::bin("reel"))
        .args(["config", "check"])
        .current_dir(env.root())
        .env("REEL_CONFIG", "env.toml")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "env.toml: ok");
    let out = std::process::Command::new(crate::support::bin("reel"))
        .args(["--config", "flag.toml", "config", "check"])
        .current_dir(env.root())
        .env("REEL_CONFIG", "env.toml")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "flag.toml: ok");
    // A named file that does not exist is an error, not a fallback.
    let run = env.run("reel", &["--config", "nope.toml", "config", "check"]);
    run.expect(78);
    assert!(
        run.stderr
            .contains("nope.toml: config file named by --config does not exist"),
        "{}",
        run.report()
    );
}

#[test]
fn no_config_anywhere_is_a_config_error() {
    let env = Env::new();
    std::fs::remove_file(env.path("pipeline.toml")).unwrap();
    let run = env.run("reel", &["status"]);
    if std::path::Path::new("/etc/reel/pipeline.toml").exists() {
        return; // This machine has a system-wide config; the fallback is taken.
    }
    run.expect(78);
    assert!(
        run.stderr.contains("no config file found"),
        "{}",
        run.report()
    );
}

#[test]
fn a_catalog_inside_a_source_is_refused() {
    let env = Env::new();
    // The catalog alone inside the source: it would back up itself.
    env.write(
        "bad.toml",
        &CONFIG.replace("catalog = \"var/catalog\"", "catalog = \"src/catalog\""),
    );
    check(
        &env,
        "reel",
        &["--config", "bad.toml", "config", "check"],
        5,
        "paths.catalog",
    );
}
