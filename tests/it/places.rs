//! Where tapes are (issue #23): exported through the virtual library's
//! import/export slots and taken out (offsite, with the operator's note),
//! imported back; marked by hand; reel-restore names an offsite tape
//! instead of searching the library for it.

use crate::support::{CONFIG, Env, LIBRARY};

fn setup() -> Env {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\nmail_slots = 2\n\n\
             [[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n"
        ),
    );
    std::fs::write(env.path("src/a.txt"), b"kept in the vault\n").unwrap();
    env.back_up();
    env
}

/// The `where` column of `reel tapes` for `label`: the columns are
/// aligned under their headings.
fn place(env: &Env, label: &str) -> String {
    let run = env.run("reel", &["tapes"]);
    run.expect(0);
    let header = run.stdout.lines().next().unwrap();
    let (from, to) = (header.find("where").unwrap(), header.find("state").unwrap());
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("{label} in {}", run.stdout))
        .to_string();
    line[from..to].trim().to_string()
}

#[test]
fn a_tape_exported_and_taken_out_is_offsite_until_imported() {
    let env = setup();
    assert_eq!(place(&env, "V00001L9"), "drive 0");
    let run = env.run("reel", &["tapes", "export", "V00001L9"]);
    run.expect(69);
    assert!(
        run.stderr.contains("is in drive 0: unload it first"),
        "{}",
        run.report()
    );
    env.run("reel", &["changer", "unload"]).expect(0);
    assert_eq!(place(&env, "V00001L9"), "slot 1");
    env.run(
        "reel",
        &["tapes", "export", "V00001L9", "--note", "vault B"],
    )
    .expect(0);
    // Slots 1-8 are storage, 9 and 10 import/export.
    assert_eq!(place(&env, "V00001L9"), "mail 9");
    env.run("reel", &["changer", "remove", "9"]).expect(0);
    assert_eq!(place(&env, "V00001L9"), "offsite (vault B)");
    let tapes: serde_json::Value =
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap();
    assert_eq!(tapes[0]["place"]["kind"], "offsite");
    assert_eq!(tapes[0]["place"]["note"], "vault B");
    // Restore names the tape and where it is, and does not search for it.
    let run = env.run("reel-restore", &["a.txt", "--to", "back"]);
    run.expect(69);
    assert!(
        run.stderr
            .contains("V00001L9 (1 member(s); offsite (vault B): back into the library with `reel tapes import`)"),
        "{}",
        run.report()
    );
    assert!(!env.path("back/a.txt").exists());
    // Back from the vault: into a mail slot, then imported.
    env.run("reel", &["changer", "insert", "10", "V00001L9"])
        .expect(0);
    env.run("reel", &["tapes", "import"]).expect(0);
    assert_eq!(place(&env, "V00001L9"), "slot 1");
    env.run("reel-restore", &["a.txt", "--to", "back"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("back/a.txt")).unwrap(),
        b"kept in the vault\n"
    );
}

#[test]
fn tapes_are_marked_by_hand_and_unknown_labels_are_refused() {
    let env = setup();
    env.run(
        "reel",
        &[
            "tapes",
            "mark",
            "V00001L9",
            "--lost",
            "--note",
            "dropped in transit",
        ],
    )
    .expect(0);
    // In the drive, yet marked lost: both are said.
    assert_eq!(
        place(&env, "V00001L9"),
        "drive 0 (marked lost (dropped in transit))"
    );
    env.run("reel", &["tapes", "mark", "V00001L9", "--here"])
        .expect(0);
    assert_eq!(place(&env, "V00001L9"), "drive 0");
    env.run("reel", &["tapes", "mark", "V00001L9", "--retired"])
        .expect(0);
    let tapes: serde_json::Value =
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap();
    assert_eq!(tapes[0]["state"], "retired");
    let run = env.run("reel", &["tapes", "mark", "NOSUCH", "--offsite"]);
    run.expect(64);
    assert!(
        run.stderr.contains("tape NOSUCH: not in the catalog"),
        "{}",
        run.report()
    );
    // One place at a time.
    let run = env.run(
        "reel",
        &["tapes", "mark", "V00001L9", "--offsite", "--lost"],
    );
    run.expect(64);
}

/// `reel tapes plan` (issue #23, read only so far): with a `[[pool]]`
/// keeping two versions of each path, superseded ones for no time at all,
/// the version before the last two is past its retention; the tape holds kept
/// versions, so it is not to be reused; no copy is missing.
#[test]
fn the_plan_names_the_versions_past_retention() {
    let env = setup();
    let config = std::fs::read_to_string(env.path("pipeline.toml")).unwrap();
    env.write(
        "pipeline.toml",
        &format!(
            "{config}\n[[pool]]\nname = \"default\"\nstreams = [\"home\"]\nkeep_versions = 2\nkeep_for = \"0s\"\n"
        ),
    );
    for (i, text) in ["second\n", "third\n"].iter().enumerate() {
        std::fs::write(env.path("src/a.txt"), text).unwrap();
        // A different mtime for each version, whatever the clock's grain.
        let t = std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(2_000_000 + i as u64);
        std::fs::File::options()
            .write(true)
            .open(env.path("src/a.txt"))
            .unwrap()
            .set_modified(t)
            .unwrap();
        env.back_up();
    }
    let run = env.run("reel", &["tapes", "plan", "--json"]);
    run.expect(0);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["versions"], 3, "{plan}");
    let expire = plan["expire"].as_array().unwrap();
    assert_eq!(expire.len(), 1, "{plan}");
    assert_eq!(expire[0]["path"], "a.txt");
    assert_eq!(plan["recyclable"], serde_json::json!([]));
    assert_eq!(plan["missing"], serde_json::json!([]));
    let text = env.run("reel", &["tapes", "plan"]);
    assert!(
        text.stdout.contains("stream home: pool default, copies in default, keep 2 version(s) of each path and each for 0s once superseded"),
        "{}",
        text.stdout
    );
    // A bad policy is refused naming its key.
    env.write(
        "pipeline.toml",
        &format!("{config}\n[[pool]]\nname = \"default\"\ncopies = [\"vault\"]\n"),
    );
    let run = env.run("reel", &["tapes", "plan"]);
    run.expect(78);
    assert!(
        run.stderr.contains("pool[0].copies[0]")
            && run.stderr.contains("no [[pool]] is named \"vault\""),
        "{}",
        run.report()
    );
}

/// Each stream's archives go to the tapes of its `[[pool]]`: blank tapes
/// are labelled for the pool that needs them, and reel-write changes
/// tapes through the library when the next archive is another pool's.
#[test]
fn archives_go_to_the_tapes_of_their_streams_pool() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("work")).unwrap();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[[stream]]\nname = \"work\"\nsource = \"work\"\n\n\
             {LIBRARY}\n\
             [[pool]]\nname = \"homes\"\nstreams = [\"home\"]\n\n\
             [[pool]]\nname = \"projects\"\nstreams = [\"work\"]\n"
        ),
    );
    std::fs::write(env.path("src/h.txt"), b"home\n").unwrap();
    std::fs::write(env.path("work/w.txt"), b"work\n").unwrap();
    env.back_up();
    let tapes: Vec<serde_json::Value> =
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap();
    // The tapes that hold archives (the blank one in the drive at the
    // start is labelled for pool default before any item is read).
    let pools: Vec<(&str, &str)> = tapes
        .iter()
        .filter(|t| t["files"].as_u64() > Some(1))
        .map(|t| (t["label"].as_str().unwrap(), t["pool"].as_str().unwrap()))
        .collect();
    assert_eq!(pools.len(), 2, "{pools:?}");
    for (label, pool) in pools {
        let log = std::fs::read_to_string(env.path(&format!("var/catalog/written/{label}.jsonl")))
            .unwrap();
        let want = if pool == "homes" { "home" } else { "work" };
        assert!(
            log.contains(&format!("\"stream\":\"{want}\"")),
            "{label} {pool}: {log}"
        );
        let other = if want == "home" { "work" } else { "home" };
        assert!(
            !log.contains(&format!("\"stream\":\"{other}\"")),
            "{label} {pool}: {log}"
        );
    }
    let plan: serde_json::Value =
        serde_json::from_str(&env.run("reel", &["tapes", "plan", "--json"]).stdout).unwrap();
    assert_eq!(plan["missing"], serde_json::json!([]), "{plan}");
    for name in ["h.txt", "w.txt"] {
        env.run("reel-restore", &[name, "--to", "back"]).expect(0);
    }
    assert_eq!(std::fs::read(env.path("back/h.txt")).unwrap(), b"home\n");
    assert_eq!(std::fs::read(env.path("back/w.txt")).unwrap(), b"work\n");
}

/// Two copies (`copies = ["vault"]`): reel-write writes each archive to a
/// tape of the stream's pool, then the same archive to a tape of the
/// vault pool; each copy is verified into its tape's journal, and the
/// cache is freed only after the last one.
#[test]
fn each_archive_is_written_and_verified_once_in_each_copy_pool() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n{LIBRARY}\n\
             [[pool]]\nname = \"onsite\"\nstreams = [\"home\"]\ncopies = [\"vault\"]\n\n\
             [[pool]]\nname = \"vault\"\n"
        ),
    );
    std::fs::write(env.path("src/a.txt"), b"twice\n").unwrap();
    std::fs::write(env.path("src/b.txt"), b"on two tapes\n").unwrap();
    for program in ["reel-scan", "reel-stage", "reel-pack", "reel-write"] {
        env.run(program, &[]).expect(0);
    }
    // The first copy is written and its archive stays for the second,
    // also written in the same run.
    assert_eq!(
        env.spool_items("written").len(),
        2,
        "{:?}",
        env.spool_items("written")
    );
    assert!(env.spool_items("packed").is_empty());
    // Verifying the vault copy alone (its tape is the one loaded) keeps
    // the cache for the first copy, still to verify.
    let written = env.spool_items("written");
    let first = written.iter().find(|i| i.contains("-copy-vault")).unwrap();
    let cached = || {
        std::fs::read_dir(env.path("var/cache/archives"))
            .unwrap()
            .count()
    };
    let out = env
        .command("reel-verify", &["--in", "-"])
        .stdin(std::fs::File::open(env.path(&format!("var/spool/written/{first}.jsonl"))).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(cached(), 1, "the archive stays for the first copy");
    env.run("reel-verify", &[]).expect(0);
    assert_eq!(cached(), 0, "freed after the last copy");
    let tapes: Vec<serde_json::Value> =
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap();
    let tapes: Vec<&serde_json::Value> = tapes
        .iter()
        .filter(|t| t["files"].as_u64() > Some(1))
        .collect();
    let mut pools: Vec<&str> = tapes.iter().map(|t| t["pool"].as_str().unwrap()).collect();
    pools.sort();
    assert_eq!(pools, ["onsite", "vault"]);
    for t in &tapes {
        let label = t["label"].as_str().unwrap();
        let journal =
            std::fs::read_to_string(env.path(&format!("var/catalog/tapes/{label}.jsonl"))).unwrap();
        assert!(
            journal.contains("\"path\":\"a.txt\"") && journal.contains("\"path\":\"b.txt\""),
            "{label}: {journal}"
        );
    }
    let plan: serde_json::Value =
        serde_json::from_str(&env.run("reel", &["tapes", "plan", "--json"]).stdout).unwrap();
    assert_eq!(plan["missing"], serde_json::json!([]), "{plan}");
}
