//! `reel mt` and `reel changer` on the virtual library, as a user runs them.

use crate::support::Env;

fn mt(env: &Env, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["mt", "-f", "virtual:lib"];
    all.extend_from_slice(args);
    env.run("reel", &all)
}

#[test]
fn an_mt_session_on_the_virtual_library() {
    let env = Env::new();
    let run = mt(&env, &["status"]);
    run.expect(0);
    assert!(run.stdout.contains("tape V00001L9"), "{}", run.report());
    assert!(
        run.stdout
            .contains("General status bits on: BOT EOD ONLINE"),
        "{}",
        run.report()
    );

    mt(&env, &["label", "T00001L9", "--pool", "weekly"]).expect(0);
    let run = mt(&env, &["identify"]);
    run.expect(0);
    assert!(
        run.stdout.starts_with("T00001L9 pool=weekly uuid="),
        "{}",
        run.report()
    );
    let run = mt(&env, &["identify", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["label"]["block_size"], 262144);

    // Relabelling is refused without --force, and says why in one line.
    let run = mt(&env, &["label", "T00002L9"]);
    run.expect(69);
    assert!(
        run.stderr.contains("already reel tape T00001L9"),
        "{}",
        run.report()
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.report());

    // Positioning persists between commands, as on /dev/nst0.
    mt(&env, &["eod"]).expect(0);
    assert_eq!(mt(&env, &["tell"]).stdout, "At block 2.\n");
    mt(&env, &["weof", "2"]).expect(0);
    assert_eq!(mt(&env, &["tell"]).stdout, "At block 4.\n");
    mt(&env, &["bsf", "1"]).expect(0);
    assert_eq!(mt(&env, &["tell"]).stdout, "At block 3.\n");
    mt(&env, &["rewind"]).expect(0);
    mt(&env, &["fsf", "2"]).expect(0);
    assert_eq!(mt(&env, &["tell"]).stdout, "At block 3.\n");
    mt(&env, &["seek", "1"]).expect(0);
    let run = mt(&env, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (
            v["file"].as_u64(),
            v["block"].as_u64(),
            v["position"].as_u64()
        ),
        (Some(0), Some(1), Some(1))
    );
    let run = mt(&env, &["seek", "99"]);
    run.expect(74);

    let run = mt(&env, &["ls"]);
    run.expect(0);
    assert!(
        run.stdout
            .starts_with("file 0  label T00001L9 (pool weekly"),
        "{}",
        run.report()
    );
    assert!(
        run.stdout.contains("file 1  block 2  0 blocks"),
        "{}",
        run.report()
    );

    // The label file is a plain tar archive GNU tar reads.
    let out = std::process::Command::new("tar")
        .args(["-tf", "lib/tapes/V00001L9/000000"])
        .current_dir(env.root())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "REEL-LABEL.json\nREEL-README.txt\n"
    );

    mt(&env, &["unload"]).expect(0);
    let run = mt(&env, &["status"]);
    assert!(
        run.stdout.contains("no tape") && run.stdout.contains("DR_OPEN"),
        "{}",
        run.report()
    );
    let run = mt(&env, &["rewind"]);
    run.expect(69);
    assert!(
        run.stderr.contains("no tape in the drive"),
        "{}",
        run.report()
    );
    mt(&env, &["load"]).expect(0);
    mt(&env, &["identify"]).expect(0);
}

#[test]
fn a_changer_session_on_the_virtual_library() {
    let env = Env::new();
    let ch = |args: &[&str]| {
        let mut all = vec!["changer", "-f", "virtual:lib"];
        all.extend_from_slice(args);
        env.run("reel", &all)
    };
    let run = ch(&["list"]);
    run.expect(0);
    assert!(
        run.stdout.contains("drive   0  V00001L9 from slot 1"),
        "{}",
        run.report()
    );
    ch(&["unload"]).expect(0);
    ch(&["load", "3"]).expect(0);
    let run = ch(&["load", "4"]);
    run.expect(69);
    assert!(
        run.stderr.contains("drive 0 already holds V00003L9"),
        "{}",
        run.report()
    );
    ch(&["transfer", "2", "9"]).expect(0);
    let run = ch(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["drives"][0]["barcode"], "V00003L9");
    assert_eq!(v["slots"][8]["barcode"], "V00002L9");
    assert_eq!(v["slots"][8]["import_export"], true);
    let run = mt(&env, &["status"]);
    assert!(run.stdout.contains("tape V00003L9"), "{}", run.report());
    ch(&["unload"]).expect(0);
    let run = ch(&["list"]);
    assert!(
        run.stdout.contains("slot    3  V00003L9"),
        "back to where it came from\n{}",
        run.report()
    );
}

#[test]
fn drive_selftest_script_passes_on_the_virtual_drive() {
    let env = Env::new();
    // A small library so that --fill reaches the early warning quickly.
    env.write(
        "pipeline.toml",
        &format!(
            "{}\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"16M\"\n",
            crate::support::CONFIG
        ),
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/drive-selftest");
    let out = std::process::Command::new(script)
        .args([
            "virtual:lib",
            "--fill",
            "--block-size",
            "64K",
            "--blocks",
            "16",
        ])
        .current_dir(env.root())
        .env("REEL", crate::support::bin("reel"))
        .env("REEL_CONFIG", env.path("pipeline.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        5,
        "{stdout}"
    );
    // 16M tapes with a 1M early-warning margin: the warning comes after
    // 15M of data, 240 blocks of 64K, of which 3 * 16 went to the tests before.
    assert!(
        stdout.contains("fill to early warning: early warning after 193 blocks"),
        "{stdout}"
    );
    // A second run refuses: the tape now holds data.
    let again = std::process::Command::new(script)
        .args(["virtual:lib"])
        .current_dir(env.root())
        .env("REEL", crate::support::bin("reel"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(69));
}

#[test]
fn no_drive_given_is_a_usage_error() {
    let env = Env::new();
    let run = env.run("reel", &["mt", "status"]);
    run.expect(64);
    assert!(run.stderr.contains("no drive given"), "{}", run.report());
}

#[test]
fn drivesim_takes_a_pipe_like_a_drive_and_reports_json() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::support::bin("reel-drivesim"))
        .args([
            "--model", "lto9", "--native", "200MB/s", "--min", "100MB/s", "--buffer", "4M",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = vec![0x5a; 256 * 1024];
    for _ in 0..12 {
        stdin.write_all(&data).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["bytes"], 12 * 256 * 1024, "{stats}");
    assert_eq!(stats["written"], 12 * 256 * 1024, "{stats}");
    assert_eq!(
        stats["writes"], 12,
        "blocks of 256K, whatever the pipe's chunks: {stats}"
    );
}
