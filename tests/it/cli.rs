//! Every program's command line: help, version, usage errors, docs.

use crate::support::{Env, PROGRAMS};

#[test]
fn every_program_has_help_and_version() {
    let env = Env::new();
    for program in PROGRAMS {
        let help = env.run(program, &["--help"]);
        help.expect(0);
        assert!(help.stdout.contains("Usage:"), "{}", help.report());
        assert!(help.stdout.contains("--config"), "{}", help.report());
        let version = env.run(program, &["--version"]);
        version.expect(0);
        assert_eq!(
            version.stdout.trim(),
            format!("{program} {}", env!("CARGO_PKG_VERSION")),
            "{}",
            version.report()
        );
    }
}

#[test]
fn usage_errors_exit_64() {
    let env = Env::new();
    for program in PROGRAMS {
        let run = env.run(program, &["--no-such-flag"]);
        run.expect(64);
        assert!(run.stderr.contains("--no-such-flag"), "{}", run.report());
        assert!(
            run.stdout.is_empty(),
            "stdout carries data only\n{}",
            run.report()
        );
    }
}

#[test]
fn reel_runs_stage_programs_by_short_and_long_names() {
    let env = Env::new();
    for (name, program) in [
        ("scan", "reel-scan"),
        ("stage-to-cache", "reel-stage"),
        ("tar-pack", "reel-pack"),
        ("tape-write", "reel-write"),
        ("readback-verify", "reel-verify"),
    ] {
        let run = env.run("reel", &[name, "--version"]);
        run.expect(0);
        assert!(run.stdout.starts_with(program), "{}", run.report());
    }
}

#[test]
fn the_built_in_default_config_is_a_working_config() {
    let env = Env::new();
    let run = env.run("reel", &["config", "default"]);
    run.expect(0);
    env.write("default.toml", &run.stdout);
    env.run("reel", &["--config", "default.toml", "config", "check"])
        .expect(0);
}

#[test]
fn man_pages_and_completions_come_from_the_clap_definitions() {
    let env = Env::new();
    let out = env.path("docs");
    for program in PROGRAMS {
        env.run(program, &["--generate-docs", out.to_str().unwrap()])
            .expect(0);
        let page = std::fs::read_to_string(out.join(format!("man/{program}.1"))).unwrap();
        assert!(page.contains(".TH"), "{program}.1 is a man page");
        for completion in [
            format!("{program}.bash"),
            format!("_{program}"),
            format!("{program}.fish"),
        ] {
            assert!(
                out.join("completions").join(&completion).is_file(),
                "{completion}"
            );
        }
    }
    assert!(
        out.join("man/reel-status.1").is_file(),
        "a page per subcommand"
    );
}

#[test]
fn supervisor_prepares_the_directories_with_private_modes() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    // An empty source: nothing to back up, but the directories are made.
    std::fs::create_dir_all(env.path("src")).unwrap();
    env.run("reel-supervisor", &["--once"]).expect(0);
    for dir in [
        "var/spool/scanned/.tmp",
        "var/spool/failed",
        "var/cache",
        "var/catalog",
        "var/log",
    ] {
        let meta = std::fs::metadata(env.path(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{dir}");
    }
}

#[test]
fn a_configured_group_gets_the_directories_with_mode_0750() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = Env::new();
    // The group of the test process itself always exists.
    let gid = nix::unistd::getegid();
    let group = nix::unistd::Group::from_gid(gid)
        .unwrap()
        .expect("a named group")
        .name;
    let config =
        crate::support::CONFIG.replace("[paths]\n", &format!("[paths]\ngroup = \"{group}\"\n"));
    env.write("pipeline.toml", &config);
    env.run("reel", &["status"]).expect(0);
    for dir in ["var/spool", "var/cache", "var/catalog", "var/log"] {
        let meta = std::fs::metadata(env.path(dir)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o750, "{dir}");
        assert_eq!(meta.gid(), gid.as_raw(), "{dir}");
    }
    env.write(
        "pipeline.toml",
        &config.replace(&format!("\"{group}\""), "\"no-such-group-reel\""),
    );
    let run = env.run("reel", &["status"]);
    run.expect(78);
    assert!(
        run.stderr
            .contains("paths.group: no group named \"no-such-group-reel\""),
        "{}",
        run.report()
    );
}

#[test]
fn a_closed_stdout_ends_every_program_quietly_with_0() {
    let env = crate::support::Env::new();
    crate::verify::setup(&env);
    crate::verify::to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    crate::write::telemetry(&env, "T00001L9", "20261201T000000Z", 300_000_000, 4);
    let cases: &[(&str, &[&str])] = &[
        ("reel", &["tapes"]),
        ("reel", &["tapes", "--json"]),
        ("reel", &["find", ""]),
        ("reel", &["find", "", "--json"]),
        ("reel", &["status"]),
        ("reel", &["status", "--json"]),
        ("reel", &["config", "default"]),
        ("reel", &["config", "check"]),
        ("reel", &["stats"]),
        ("reel", &["stats", "--json"]),
        ("reel-restore", &["", "--dry-run"]),
        ("reel-drivesim", &["--print-params", "--model", "lto9"]),
        ("reel-scan", &["--out", "-"]),
    ];
    for (program, args) in cases {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let mut cmd = env.command(program, args);
        cmd.stdout(std::process::Stdio::from(write));
        let run = crate::support::Background::start(cmd, env.root()).finish();
        assert!(
            run.code == Some(0) && !run.stderr.contains("panicked"),
            "{program} {args:?}:\n{}",
            run.report()
        );
    }
}

#[test]
fn nothing_reel_creates_is_open_to_others_even_below_an_open_mount_point() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    crate::verify::setup(&env);
    // Cache and catalog on existing mount points, open to all (0755).
    for dir in ["var/cache", "var/catalog"] {
        std::fs::create_dir_all(env.path(dir)).unwrap();
        std::fs::set_permissions(env.path(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        env.path("src/big.bin"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    let pack = env.run("reel-pack", &[]);
    pack.expect(0);
    assert!(
        pack.stderr.contains("is open to others (mode 755)"),
        "{}",
        pack.report()
    );
    let check = |env: &Env| {
        for top in ["var/spool", "var/cache", "var/catalog", "var/log"] {
            // Every file and directory below (the mount points themselves
            // are the administrator's).
            let mut todo = vec![env.path(top)];
            while let Some(d) = todo.pop() {
                for e in std::fs::read_dir(&d).unwrap().flatten() {
                    let m = std::fs::symlink_metadata(e.path()).unwrap();
                    if m.file_type().is_symlink() {
                        continue;
                    }
                    assert_eq!(
                        m.permissions().mode() & 0o077,
                        0,
                        "{} is open",
                        e.path().display()
                    );
                    if m.is_dir() {
                        todo.push(e.path());
                    }
                }
            }
        }
        for dir in [
            "var/cache/archives",
            "var/cache/staged",
            "var/catalog/tapes",
        ] {
            let m = std::fs::metadata(env.path(dir)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o700, "{dir}");
        }
    };
    // Archives, staged copies (a setuid source included), manifests.
    check(&env);
    env.run("reel-write", &[]).expect(0);
    env.run("reel-verify", &[]).expect(0);
    env.run("reel", &["catalog", "rebuild"]).expect(0);
    // Journals, tape states, the index.
    check(&env);
}
