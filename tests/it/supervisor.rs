//! `reel-supervisor --once`, the README's first command: the repository's
//! own pipeline.toml, a sample tree, every stage as a child process, then
//! everything findable and restorable; a second run backs up what changed.

use crate::support::Env;

fn journal_len(env: &Env) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(env.path("var/catalog/tapes"))
        .unwrap()
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "jsonl") {
            reel_shared::catalog::journal::read(&e.path(), |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
        }
    }
    n
}

#[test]
fn the_main_job_backs_up_the_sample_tree_and_says_how_to_restore_it() {
    let env = Env::new();
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    env.write("pipeline.toml", &config);
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    assert!(
        run.stdout.contains("Backed up and verified"),
        "{}",
        run.report()
    );
    assert!(run.stdout.contains("reel-restore"), "{}", run.report());
    // Every file of the sample is in the catalog and comes back.
    let found = env.run("reel", &["find", "big.bin", "--json"]);
    found.expect(0);
    env.run("reel-restore", &["project-3", "--to", "back"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("back/project-3/file-007.txt")).unwrap(),
        std::fs::read(env.path("var/sample/project-3/file-007.txt")).unwrap()
    );
    let first = journal_len(&env);
    assert!(first > 300, "{first}");
    // The pipeline is empty; nothing is left in the cache.
    let status = env.run("reel", &["status", "--json"]);
    status.expect(0);
    // A second run after one change backs up exactly that file.
    std::fs::write(env.path("var/sample/project-2/file-001.txt"), "changed").unwrap();
    env.run("reel-supervisor", &["--once"]).expect(0);
    assert_eq!(journal_len(&env), first + 1);
    env.run("reel-restore", &["project-2/file-001.txt", "--to", "again"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("again/project-2/file-001.txt")).unwrap(),
        b"changed"
    );
}

fn main_job(env: &Env) {
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    env.write("pipeline.toml", &config);
}

#[test]
fn one_supervisor_per_spool() {
    let env = Env::new();
    main_job(&env);
    std::fs::create_dir_all(env.path("var/spool")).unwrap();
    let _held = reel_shared::fsutil::lock_file(&env.path("var/spool/supervisor.lock"), false)
        .unwrap()
        .expect("the lock is free");
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(75);
    assert!(
        run.stderr.contains("another reel-supervisor runs"),
        "{}",
        run.report()
    );
}

#[test]
fn sigterm_stops_the_main_job_at_a_safe_point_and_the_next_run_finishes() {
    use std::io::BufRead;
    let env = Env::new();
    main_job(&env);
    // A slow drive (4 MB/s) so that the signal lands while reel-write works.
    crate::write::slow_tape(&env, "var/library");
    let mut cmd = std::process::Command::new(crate::support::bin("reel-supervisor"));
    cmd.arg("--once")
        .current_dir(env.root())
        .env_remove("REEL_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    crate::support::detach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let writing = line.contains("appending as file");
        seen.push(line);
        if writing {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )
            .unwrap();
        }
    }
    let status = child.wait().unwrap();
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("stop"), "{text}");
    // Nothing is verified twice nor lost: the next run finishes the work.
    env.run("reel-supervisor", &["--once"]).expect(0);
    assert!(journal_len(&env) > 300);
    let status = env.run("reel", &["status", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    for q in s["queues"].as_array().unwrap() {
        if ["scanned", "staged", "packed", "written"].contains(&q["queue"].as_str().unwrap()) {
            assert_eq!(q["items"], 0, "{}", status.stdout);
        }
    }
}

#[test]
fn notify_command_hears_of_full_tapes_and_the_end() {
    let env = Env::new();
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    // Small tapes: the sample fills more than one.
    let config = config
        .replace("capacity = \"1G\"", "capacity = \"8M\"")
        .replace("archive_size = \"64M\"", "archive_size = \"2M\"")
        .replace(
            "# notify_command = [\"/usr/local/bin/reel-notify\", \"--mail\", \"root\"]",
            "notify_command = [\"sh\", \"-c\", \"echo \\\"$0: $1\\\" >> notified.log\"]",
        );
    assert!(
        config.contains("notify_command = [\"sh\""),
        "the default config changed"
    );
    env.write("pipeline.toml", &config);
    env.run("reel-supervisor", &["--once"]).expect(0);
    let log = std::fs::read_to_string(env.path("notified.log")).unwrap();
    assert!(log.contains("tape-full: tape V00001L9 is full"), "{log}");
    assert!(
        log.lines().last().unwrap().starts_with("finished: "),
        "{log}"
    );
}

/// A drive whose TapeAlert says "cleaning required" (set in the virtual
/// library, as a real drive raises it): reel-write records it in the
/// catalog and warns, and the supervisor runs notify_command with
/// `drive-alert`.
#[test]
fn a_drive_that_needs_cleaning_reaches_notify_command() {
    let env = Env::new();
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    let config = config.replace(
        "# notify_command = [\"/usr/local/bin/reel-notify\", \"--mail\", \"root\"]",
        "notify_command = [\"sh\", \"-c\", \"echo \\\"$0: $1\\\" >> notified.log\"]",
    );
    env.write("pipeline.toml", &config);
    // The library exists once a program has opened it; then drive 0 asks
    // for cleaning.
    env.run("reel", &["changer", "list"]).expect(0);
    let path = env.path("var/library/library.json");
    let mut inv: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    inv["drives"][0]["alerts"] = serde_json::json!([20]);
    std::fs::write(&path, serde_json::to_vec(&inv).unwrap()).unwrap();
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    assert!(
        run.stderr.contains("TapeAlert 20 cleaning required"),
        "{}",
        run.report()
    );
    let log = std::fs::read_to_string(env.path("notified.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.starts_with("drive-alert: "))
        .unwrap_or("");
    assert!(
        line.starts_with("drive-alert: drive drive0 (virtual:")
            && line.ends_with("): TapeAlert 20 cleaning required; load a cleaning cartridge"),
        "{log}"
    );
    let health: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("var/catalog/drives/drive0.json")).unwrap())
            .unwrap();
    assert_eq!(health["alerts"], serde_json::json!([20]));
    assert_eq!(health["names"], serde_json::json!(["cleaning required"]));
    // Cleaned: the flag is down, the next run tells nothing.
    inv["drives"][0]["alerts"] = serde_json::json!([]);
    std::fs::write(&path, serde_json::to_vec(&inv).unwrap()).unwrap();
    std::fs::write(env.path("var/sample/new.txt"), "new").unwrap();
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    let health: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("var/catalog/drives/drive0.json")).unwrap())
            .unwrap();
    assert_eq!(health["alerts"], serde_json::json!([]), "{}", run.report());
    let log = std::fs::read_to_string(env.path("notified.log")).unwrap();
    assert_eq!(log.matches("drive-alert").count(), 1, "{log}");
}

/// The niceness a program reported in its `-v` log (`NAME: debug: pid …,
/// niceness N`).
fn niceness(stderr: &str, program: &str) -> i32 {
    let prefix = format!("{program}: debug: pid ");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no niceness from {program} in:\n{stderr}"));
    line.rsplit("niceness ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The stages that keep no tape moving run nicer than those that do:
/// `[supervisor] background_nice` (10 by default) is added to reel-scan,
/// reel-stage and reel-pack, not to reel-write and reel-verify.
#[test]
fn scan_stage_and_pack_yield_the_cpu_to_the_tape_stages() {
    let env = Env::new();
    main_job(&env);
    let run = env.run("reel-supervisor", &["--once", "-v"]);
    run.expect(0);
    let own = niceness(&run.stderr, "reel-supervisor");
    for program in ["reel-scan", "reel-stage", "reel-pack"] {
        assert_eq!(
            niceness(&run.stderr, program),
            (own + 10).min(19),
            "{program}"
        );
    }
    for program in ["reel-write", "reel-verify"] {
        assert_eq!(niceness(&run.stderr, program), own, "{program}");
    }
}
