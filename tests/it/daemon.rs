//! `reel-supervisor` as a daemon: it backs up what it finds, sees new files
//! through inotify, holds data below its thresholds, reloads on SIGHUP (and
//! refuses a bad file), forwards SIGUSR1 to reel-write, waits for a tape
//! and retries, and stops on SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::Env;

/// The repository's pipeline.toml with a daemon's settings for a test.
fn config(env: &Env, max_wait: &str, threshold: &str) -> String {
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.toml")).unwrap();
    let old = r#"scan_interval = "1h"
tape_start_threshold = "64M"   # start a tape run once this much is packed
max_wait = "1h"                # …or once the oldest packed (or staged) data waited this long
retry = { attempts = 5, backoff = "30s", max_backoff = "1h" }
# notify_command = ["/usr/local/bin/reel-notify", "--mail", "root"]"#;
    assert!(config.contains(old), "the default config changed");
    let config = config.replace(
        old,
        &format!(
            r#"scan_interval = "1h"
tape_start_threshold = "{threshold}"
max_wait = "{max_wait}"
retry = {{ attempts = 2, backoff = "1s", max_backoff = "2s" }}
notify_command = ["sh", "-c", "echo \"$0: $1\" >> notified.log"]"#
        ),
    );
    env.write("pipeline.toml", &config);
    config
}

struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(env: &Env) -> Daemon {
        Daemon::start_with(env, &[])
    }

    fn start_with(env: &Env, args: &[&str]) -> Daemon {
        let log = env.path("daemon.log");
        let mut cmd = Command::new(crate::support::bin("reel-supervisor"));
        cmd.args(args)
            .current_dir(env.root())
            .env_remove("REEL_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        crate::support::detach(&mut cmd);
        Daemon {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Wait (up to two minutes: debug builds on a busy machine) for `cond`.
    fn wait_for(&mut self, what: &str, mut cond: impl FnMut(&Daemon) -> bool) {
        let t0 = Instant::now();
        while !cond(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the daemon ended ({status}) before {what}:\n{}", self.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and its exit status.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal(Signal::SIGTERM);
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "SIGTERM did not stop the daemon:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn found(env: &Env, path: &str) -> bool {
    let run = env.run("reel", &["find", path, "--json"]);
    serde_json::from_str::<serde_json::Value>(&run.stdout)
        .ok()
        .and_then(|v| v.as_array().map(|a| !a.is_empty()))
        .unwrap_or(false)
}

fn status(env: &Env) -> serde_json::Value {
    let run = env.run("reel", &["status", "--json"]);
    run.expect(0);
    serde_json::from_str(&run.stdout).unwrap()
}

fn items(env: &Env, queue: &str) -> u64 {
    status(env)["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == queue)
        .unwrap()["items"]
        .as_u64()
        .unwrap()
}

fn notified(env: &Env) -> String {
    std::fs::read_to_string(env.path("notified.log")).unwrap_or_default()
}

#[test]
fn the_daemon_backs_up_what_it_finds_and_what_changes_then_stops_on_sigterm() {
    let env = Env::new();
    config(&env, "1s", "64M");
    env.write("var/sample/a.txt", "first");
    let mut d = Daemon::start(&env);
    d.wait_for("a.txt verified", |_| found(&env, "a.txt"));
    let s = status(&env);
    assert_eq!(s["supervisor"]["state"], "running", "{s}");
    assert_eq!(s["supervisor"]["pid"], d.child.id(), "{s}");
    // scan_interval is an hour: only inotify can bring this one in soon.
    env.write("var/sample/new dir/b.txt", "second");
    d.wait_for("new dir/b.txt verified", |_| found(&env, "new dir/b.txt"));
    assert!(
        notified(&env).contains("tape-run-done"),
        "{}",
        notified(&env)
    );
    let (code, log) = d.stop();
    assert_eq!(code.code(), Some(0), "{log}");
    assert!(log.contains("stopped"), "{log}");
    let text = std::fs::read_to_string(env.path("var/spool/supervisor.json")).unwrap();
    assert!(text.contains("\"state\": \"stopped\""), "{text}");
    assert!(status(&env)["supervisor"].is_null());
}

#[test]
fn data_waits_below_the_thresholds_and_sighup_reloads_but_refuses_a_bad_file() {
    let env = Env::new();
    // An archive is 64M and max_wait an hour: what is staged stays there.
    let good = config(&env, "1h", "64M");
    env.write("var/sample/a.txt", "waits");
    let mut d = Daemon::start(&env);
    // A round saw it staged and chose to hold it: that is when it could
    // have been packed.
    d.wait_for("packing held", |_| {
        status(&env)["supervisor"]["held"]
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["job"] == "pack"))
    });
    let s = status(&env);
    let why = s["supervisor"]["held"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["job"] == "pack")
        .and_then(|h| h["why"].as_str())
        .unwrap_or_default();
    assert!(
        why.contains("staged, below an archive (pack.archive_size") && why.contains("waits until"),
        "{s}"
    );
    let text = env.run("reel", &["status"]);
    assert!(text.stdout.contains("pack holds: "), "{}", text.report());
    assert_eq!(items(&env, "staged"), 1);
    assert_eq!(items(&env, "packed"), 0);
    assert!(!found(&env, "a.txt"));
    // A broken file is refused; the daemon keeps running on the old one.
    env.write("pipeline.toml", &format!("{good}\nbogus_key = 1\n"));
    d.signal(Signal::SIGHUP);
    d.wait_for("the refusal", |d| d.log().contains("reload refused"));
    assert!(d.log().contains("bogus_key"), "{}", d.log());
    // The notify command runs after the log line.
    d.wait_for("the failure notified", |_| {
        notified(&env).contains("failure")
    });
    // A good one with max_wait = 1s lets the data go to tape.
    env.write(
        "pipeline.toml",
        &good.replace("max_wait = \"1h\"", "max_wait = \"1s\""),
    );
    d.signal(Signal::SIGHUP);
    d.wait_for("a.txt verified", |_| found(&env, "a.txt"));
    assert!(d.log().contains("reloaded"), "{}", d.log());
    let (code, log) = d.stop();
    assert_eq!(code.code(), Some(0), "{log}");
}

#[test]
fn a_blank_tape_without_a_changer_is_waited_for_then_the_run_goes_on() {
    let env = Env::new();
    let text = config(&env, "1s", "64M");
    // No changer: nobody labels the blank tape but the operator.
    let text = text.replace("changer = \"library\"\n", "").replace(
        "device = \"virtual:var/library#0\"",
        "device = \"virtual:var/tapes\"",
    );
    assert!(text.contains("virtual:var/tapes"));
    env.write("pipeline.toml", &text);
    env.write("var/sample/a.txt", "needs a tape");
    let mut d = Daemon::start(&env);
    d.wait_for("tape-needed", |_| notified(&env).contains("tape-needed"));
    assert!(!found(&env, "a.txt"));
    // The operator labels the tape; the next retry writes and verifies.
    d.wait_for("the tape labelled", |_| {
        env.run("reel", &["mt", "label", "T00001L9"]).code == Some(0)
    });
    d.wait_for("a.txt verified", |_| found(&env, "a.txt"));
    let (code, log) = d.stop();
    assert_eq!(code.code(), Some(0), "{log}");
}

#[test]
fn sigusr1_to_the_daemon_brings_a_telemetry_line_from_reel_write() {
    let env = Env::new();
    config(&env, "1s", "1M");
    crate::write::slow_tape(&env, "var/library");
    let big: Vec<u8> = (0..40_000_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761) as u8)
        .collect();
    std::fs::create_dir_all(env.path("var/sample")).unwrap();
    std::fs::write(env.path("var/sample/big.bin"), big).unwrap();
    let mut d = Daemon::start_with(&env, &["-v"]);
    let writer = || {
        status(&env)["supervisor"]["children"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["stage"] == "reel-write")?["pid"].as_i64())
    };
    d.wait_for("reel-write running", |_| writer().is_some());
    // reel-write stopped in the middle of its archive (the tape file has
    // data, no filemark yet: the next file appears with it), the daemon is
    // asked for a line and passes the signal on; reel-write then goes on and
    // answers at its next block.
    let len = |f: u64| {
        std::fs::metadata(env.path(&format!("var/library/tapes/V00001L9/{f:06}"))).map(|m| m.len())
    };
    let frozen = loop {
        let pid = writer().expect("reel-write runs until big.bin is on tape") as i32;
        if let Some(frozen) = crate::support::freeze_pid(pid)
            && len(1).is_ok_and(|n| n > 0)
            && len(2).is_err()
        {
            break (pid, frozen);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    d.signal(Signal::SIGUSR1);
    d.wait_for("the signal passed on", |d| {
        d.log().contains(&format!(
            "SIGUSR1 to reel-write --drive drive0 (pid {})",
            frozen.0
        ))
    });
    drop(frozen);
    d.wait_for("a telemetry line", |d| {
        d.log().contains("/s average, ring ")
    });
    d.wait_for("big.bin verified", |_| found(&env, "big.bin"));
    let (code, log) = d.stop();
    assert_eq!(code.code(), Some(0), "{log}");
}

#[test]
fn two_drives_write_at_once_and_verify_fetches_a_tape_from_the_other_drive() {
    let env = Env::new();
    let text = config(&env, "1s", "1M").replace("archive_size = \"64M\"", "archive_size = \"1M\"");
    assert!(
        text.contains("archive_size = \"1M\""),
        "the default config changed"
    );
    // The library's second drive starts empty.
    env.write(
        "pipeline.toml",
        &format!(
            "{text}\n[[drive]]\nname = \"drive1\"\ndevice = \"virtual:var/library#1\"\nchanger = \"library\"\ncapacity = \"1G\"\n"
        ),
    );
    // 4 MB/s tapes: one drive alone cannot take every archive before the
    // second has loaded its tape.
    crate::write::slow_library(&env, "var/library");
    let mut files = Vec::new();
    for i in 0..8u32 {
        let data: Vec<u8> = (0..700_000u32)
            .map(|b| b.wrapping_mul(2_654_435_761).wrapping_add(i) as u8)
            .collect();
        std::fs::create_dir_all(env.path("var/sample")).unwrap();
        std::fs::write(env.path(&format!("var/sample/f{i}.bin")), data).unwrap();
        files.push(format!("f{i}.bin"));
    }
    let mut d = Daemon::start(&env);
    d.wait_for("every file verified", |_| {
        files.iter().all(|f| found(&env, f))
    });
    let (code, log) = d.stop();
    assert_eq!(code.code(), Some(0), "{log}");
    // Both writers were started in one round, before either ended.
    let at = |s: &str| log.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{log}"));
    assert!(at("starting reel-write --drive drive1") < at("reel-write --drive drive0 ended"));
    assert!(at("starting reel-write --drive drive0") < at("reel-write --drive drive1 ended"));
    assert!(log.contains("the drive was empty: loaded"), "{log}");
    // Each drive wrote to its own tape; the verifier fetched the one in
    // the other drive.
    let run = env.run("reel", &["find", "*", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let tapes: std::collections::BTreeSet<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["tape"].as_str())
        .collect();
    assert_eq!(tapes.len(), 2, "{tapes:?}\n{log}");
    assert!(log.contains("moving it back to slot"), "{log}");
}
