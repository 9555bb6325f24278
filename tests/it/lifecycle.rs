//! The tape lifecycle as a site lives it (issue #23): two copies in two
//! pools, one of them sent offsite; a tape lost and its copies written
//! again from the other; a year of weekly backups under a four-week
//! retention, on the virtual library, with reel's clock moved a week at a
//! time (`REEL_CLOCK_OFFSET`).

use crate::support::{CONFIG, Env, LIBRARY};

const WEEK: i64 = 7 * 86_400;

/// Two pools, `onsite` (the stream's) and `vault` (its second copy),
/// superseded versions kept four weeks, on a library of 8 storage slots
/// and 2 mail slots whose tapes hold `capacity`.
fn two_copies(capacity: &str) -> Env {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\nmail_slots = 2\n\n\
             [[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"{capacity}\"\nbuffer = \"4M\"\n\n\
             [[pool]]\nname = \"onsite\"\nstreams = [\"home\"]\ncopies = [\"vault\"]\nkeep_for = \"4w\"\n\n\
             [[pool]]\nname = \"vault\"\nexport_when_full = true\n"
        ),
    );
    env
}

fn json(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> serde_json::Value {
    let run = env.run_with("reel", args, vars);
    run.expect(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.report()))
}

/// The tapes that hold archives, by pool.
fn used_tapes(env: &Env, pool: &str) -> Vec<String> {
    json(env, &["tapes", "--json"], &[])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pool"] == pool && t["files"].as_u64() > Some(1))
        .map(|t| t["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_lost_tape_is_restored_from_the_other_copy_and_its_copies_are_written_again() {
    let env = two_copies("64M");
    std::fs::write(env.path("src/a.txt"), b"kept twice\n").unwrap();
    std::fs::write(env.path("src/b.txt"), b"also twice\n").unwrap();
    env.run("reel-supervisor", &["--once"]).expect(0);
    let onsite = used_tapes(&env, "onsite");
    let vault = used_tapes(&env, "vault");
    assert_eq!((onsite.len(), vault.len()), (1, 1), "{onsite:?} {vault:?}");
    // A blank tape in the drive at the start went to the first archive's
    // pool: no tape was spent on pool default.
    assert!(used_tapes(&env, "default").is_empty());
    let labelled: Vec<serde_json::Value> = json(&env, &["tapes", "--json"], &[])
        .as_array()
        .unwrap()
        .clone();
    assert!(
        labelled.iter().all(|t| t["pool"] != "default"),
        "{labelled:?}"
    );

    // reel find names both copies.
    let run = env.run("reel", &["find", "a.txt"]);
    run.expect(0);
    assert!(
        run.stdout.contains(&format!("+{}", vault[0]))
            || run.stdout.contains(&format!("+{}", onsite[0])),
        "{}",
        run.report()
    );
    let found = json(&env, &["find", "a.txt", "--json"], &[]);
    assert_eq!(
        found[0]["copies_on"].as_array().unwrap().len(),
        1,
        "{found}"
    );

    // With the vault copy offsite, a restore reads the onsite one.
    env.run("reel", &["tapes", "mark", &vault[0], "--offsite"])
        .expect(0);
    let run = env.run("reel-restore", &["a.txt", "--dry-run"]);
    run.expect(0);
    assert!(
        run.stdout
            .starts_with(&format!("tape {}: 1 member(s)", onsite[0])),
        "{}",
        run.report()
    );
    env.run("reel", &["tapes", "mark", &vault[0], "--here"])
        .expect(0);

    env.run(
        "reel",
        &["tapes", "mark", &onsite[0], "--lost", "--note", "dropped"],
    )
    .expect(0);
    let plan = json(&env, &["tapes", "plan", "--json"], &[]);
    assert_eq!(plan["missing"].as_array().unwrap().len(), 2, "{plan}");
    let status = json(&env, &["status", "--json"], &[]);
    assert_eq!(status["retention"]["copies_missing"], 2, "{status}");

    // The restore takes the vault copy, which is in the library.
    let run = env.run("reel-restore", &["a.txt", "--dry-run"]);
    run.expect(0);
    assert!(
        run.stdout
            .starts_with(&format!("tape {}: 1 member(s)", vault[0])),
        "{}",
        run.report()
    );
    let run = env.run("reel-restore", &["a.txt", "--to", "back"]);
    run.expect(0);
    assert!(
        run.stderr.contains(&format!("tape {}", vault[0])) && !run.stderr.contains(&onsite[0]),
        "{}",
        run.report()
    );
    assert_eq!(
        std::fs::read(env.path("back/a.txt")).unwrap(),
        b"kept twice\n"
    );

    // While archives wait to be written, a missing copy may be one of
    // them: reel tapes rewrite waits for an empty pipeline.
    std::fs::write(env.path("src/c.txt"), b"on its way\n").unwrap();
    for program in ["reel-scan", "reel-stage", "reel-pack"] {
        env.run(program, &[]).expect(0);
    }
    let run = env.run("reel", &["tapes", "rewrite"]);
    run.expect(0);
    assert!(
        run.stderr.contains("still wait to be written or verified"),
        "{}",
        run.report()
    );
    assert!(
        env.spool_items("packed")
            .iter()
            .all(|i| !i.starts_with("rewrite-")),
        "{:?}",
        env.spool_items("packed")
    );

    // The supervisor's next pass writes the missing copies again, from
    // the vault tape, onto another onsite tape, and verifies them.
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    let plan = json(&env, &["tapes", "plan", "--json"], &[]);
    assert_eq!(plan["missing"], serde_json::json!([]), "{plan}");
    let now_onsite: Vec<String> = used_tapes(&env, "onsite")
        .into_iter()
        .filter(|l| *l != onsite[0])
        .collect();
    assert_eq!(now_onsite.len(), 1, "{}", run.report());
    let journal =
        std::fs::read_to_string(env.path(&format!("var/catalog/tapes/{}.jsonl", now_onsite[0])))
            .unwrap();
    assert!(
        journal.contains("\"path\":\"a.txt\"") && journal.contains("\"path\":\"b.txt\""),
        "{journal}"
    );
    assert_eq!(
        std::fs::read_dir(env.path("var/cache/archives"))
            .unwrap()
            .count(),
        0,
        "the cache is freed after the copy"
    );
    // Nothing to do on the next pass.
    env.run("reel", &["tapes", "rewrite"]).expect(0);
    assert!(env.spool_items("packed").is_empty());

    // With the vault tape offsite, the new onsite copy restores.
    env.run("reel", &["tapes", "mark", &vault[0], "--offsite"])
        .expect(0);
    let run = env.run("reel-restore", &["b.txt", "--dry-run"]);
    run.expect(0);
    assert!(
        run.stdout
            .starts_with(&format!("tape {}: 1 member(s)", now_onsite[0])),
        "{}",
        run.report()
    );
    let run = env.run("reel-restore", &["b.txt", "--to", "back2"]);
    run.expect(0);
    assert_eq!(
        std::fs::read(env.path("back2/b.txt")).unwrap(),
        b"also twice\n"
    );
}

/// A small seeded generator, so that every week's changes are the same
/// from run to run.
fn fill(rng: &mut crate::support::Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

/// A year of weekly backups on the virtual library with reel's clock moved
/// a week at a time: each week every file of a small tree changes, two
/// copies are written (onsite and vault), full vault tapes are exported
/// by the supervisor (`export_when_full`) and taken out, and vault tapes the plan says may be used again come
/// back and are imported. Every week, every version the policy keeps has
/// a verified copy in each pool; tapes are recycled; and the year fits in
/// the library's eight tapes, which it could not without recycling (a
/// year of changes is many times a tape's capacity).
#[test]
fn a_simulated_year_of_weekly_rotation_keeps_every_copy_and_reuses_tapes() {
    let env = two_copies("12M");
    let mut rng = crate::support::Rng(0x2026_1205);
    let files = ["a.bin", "b.bin", "c.bin"];
    let mut written = 0u64;
    let mut exported = 0;
    let mut imported = 0;
    let mut week48 = Vec::new();
    for week in 0..52i64 {
        let offset = (week * WEEK).to_string();
        let clock = [("REEL_CLOCK_OFFSET", offset.as_str())];
        for f in files {
            let data = fill(&mut rng, 600_000);
            if week == 48 && f == "a.bin" {
                week48 = data.clone();
            }
            written += data.len() as u64;
            std::fs::write(env.path(&format!("src/{f}")), data).unwrap();
        }
        let run = env.run_with("reel-supervisor", &["--once"], &clock);
        assert_eq!(run.code, Some(0), "week {week}: {}", run.report());
        // Every version kept has a verified copy in each pool.
        let plan = json(&env, &["tapes", "plan", "--json"], &clock);
        assert_eq!(
            plan["missing"],
            serde_json::json!([]),
            "week {week}: {plan}"
        );
        // The SQLite export follows the catalog week by week (recycled
        // tapes' journals start again).
        env.run("reel", &["catalog", "export", "--sqlite", "year.db"])
            .expect(0);
        // The rotation: the supervisor exported the full vault tapes to
        // the mail slots; the operator takes them out, and brings back
        // the vault tapes the plan says may be used again.
        let status = json(&env, &["changer", "list", "--json"], &[]);
        for s in status["slots"].as_array().unwrap() {
            if s["import_export"] == true && s["full"] == true {
                let slot = s["number"].to_string();
                env.run("reel", &["changer", "remove", &slot]).expect(0);
                exported += 1;
            }
        }
        let tapes = json(&env, &["tapes", "--json"], &clock);
        for t in tapes.as_array().unwrap() {
            let label = t["label"].as_str().unwrap();
            let recyclable = plan["recyclable"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == label);
            assert!(
                !(t["pool"] == "vault"
                    && t["state"] == "full"
                    && t["place"].is_null()
                    && !recyclable),
                "week {week}: full vault tape {label} left in the library: {}",
                run.report()
            );
            if t["place"]["kind"] == "offsite" && recyclable {
                let status = json(&env, &["changer", "list", "--json"], &[]);
                let slot = status["slots"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["import_export"] == true && s["full"] == false)
                    .unwrap()["number"]
                    .to_string();
                env.run("reel", &["changer", "insert", &slot, label])
                    .expect(0);
                env.run("reel", &["tapes", "import"]).expect(0);
                imported += 1;
            }
        }
    }
    let recycled = std::fs::read_dir(env.path("var/catalog/recycled"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0);
    let expired = std::fs::read_to_string(env.path("var/catalog/expired.jsonl"))
        .unwrap_or_default()
        .lines()
        .count();
    eprintln!(
        "a year: {written} bytes changed, {exported} tape(s) exported, {imported} imported, {recycled} recycling(s), {expired} version(s) expired"
    );
    // Twice a year of changes does not fit on 8 tapes of 12M without
    // tapes being used again.
    assert!(2 * written > 8 * 12 * 1024 * 1024);
    assert!(recycled >= 4, "{recycled} recyclings");
    assert!(
        imported >= 1 && exported >= 2,
        "{exported} out, {imported} in"
    );
    // Versions of the last four weeks and the newest are all kept.
    assert!(expired > 0);
    // The export made week by week equals one made now.
    env.run("reel", &["catalog", "export", "--sqlite", "year.db"])
        .expect(0);
    env.run("reel", &["catalog", "export", "--sqlite", "fresh.db"])
        .expect(0);
    let dump = |db: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(env.path(db))
            .arg("SELECT tape, file, block, hex(path), sha256, verified FROM members ORDER BY 1, 2, 3, 4; SELECT label, uuid, state FROM tapes ORDER BY 1;")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(dump("year.db"), dump("fresh.db"));
    // A version three weeks old restores, from the tapes that keep it.
    let when = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 48 * WEEK
        + 86_400;
    let at = reel_shared::time::Utc::from_unix(when).rfc3339();
    let clock = (51 * WEEK).to_string();
    let run = env.run_with(
        "reel-restore",
        &["a.bin", "--at", &at, "--to", "back"],
        &[("REEL_CLOCK_OFFSET", &clock)],
    );
    run.expect(0);
    assert_eq!(std::fs::read(env.path("back/a.bin")).unwrap(), week48);
}

/// A pool's load limit (`retire_after_loads`, from the loads the drive
/// reports in the cartridge memory): a tape loaded that many times is
/// retired, the next archives go to another tape, and what it holds
/// still restores.
#[test]
fn a_tape_past_its_pools_load_limit_is_retired_and_still_restores() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n{LIBRARY}\n\
             [[pool]]\nname = \"onsite\"\nstreams = [\"home\"]\nretire_after_loads = 3\n"
        ),
    );
    let mut first = None;
    for round in 0..4 {
        std::fs::write(
            env.path(&format!("src/{round}.txt")),
            format!("round {round}\n"),
        )
        .unwrap();
        env.run("reel-supervisor", &["--once"]).expect(0);
        let tapes = json(&env, &["tapes", "--json"], &[]);
        let t = &tapes.as_array().unwrap()[0];
        first.get_or_insert_with(|| t["label"].as_str().unwrap().to_string());
        env.run("reel", &["changer", "unload"]).expect(0);
    }
    let first = first.unwrap();
    let tapes = json(&env, &["tapes", "--json"], &[]);
    let t = tapes
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == first.as_str())
        .unwrap();
    assert_eq!(t["state"], "retired", "{tapes}");
    assert!(
        t["retired"].as_str().unwrap().contains("loaded 3 times"),
        "{t}"
    );
    // Later archives went to another tape of the pool.
    assert!(used_tapes(&env, "onsite").len() >= 2, "{tapes}");
    let run = env.run("reel-restore", &["0.txt", "--to", "back"]);
    run.expect(0);
    assert_eq!(std::fs::read(env.path("back/0.txt")).unwrap(), b"round 0\n");
}

/// A member the drive cannot read is read again from its other copy.
#[test]
fn a_member_unreadable_on_one_copy_is_restored_from_the_other() {
    let env = two_copies("64M");
    std::fs::write(env.path("src/a.txt"), b"read me twice\n").unwrap();
    env.run("reel-supervisor", &["--once"]).expect(0);
    // Where the restore would read a.txt: `tape T: …` then `file F block B`.
    let run = env.run("reel-restore", &["a.txt", "--dry-run"]);
    run.expect(0);
    let tape = run
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let block: u64 = run
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "block")
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // The virtual drive's fault injection: that block reads with EIO.
    let meta = env.path(&format!("lib/tapes/{tape}/meta.json"));
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    m["faults"]["read_errors"] = serde_json::json!([block]);
    std::fs::write(&meta, serde_json::to_vec(&m).unwrap()).unwrap();
    let run = env.run("reel-restore", &["a.txt", "--to", "back"]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("1 member(s) unreadable: reading them from their other copies"),
        "{}",
        run.report()
    );
    assert_eq!(
        std::fs::read(env.path("back/a.txt")).unwrap(),
        b"read me twice\n"
    );
}

/// With one drive, reel-write writes the archives of the loaded tape's
/// pool first: one tape change to the other pool per run, not one per
/// archive and copy.
#[test]
fn one_drive_writes_each_pool_in_one_go() {
    let env = two_copies("64M");
    let mut rng = crate::support::Rng(7);
    for f in ["a.bin", "b.bin", "c.bin", "d.bin"] {
        std::fs::write(env.path(&format!("src/{f}")), fill(&mut rng, 600_000)).unwrap();
    }
    let run = env.run("reel-supervisor", &["--once"]);
    run.expect(0);
    let changes: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("reel-write:") && l.contains(" loaded "))
        .collect();
    let archives = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("reel-write:") && l.contains(" from block "))
        .count();
    assert!(archives >= 4, "{}", run.report());
    assert_eq!(changes.len(), 1, "{changes:#?}\n{}", run.report());
}
