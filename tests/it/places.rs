//! Where tapes are (issue #23): exported through the virtual library's
//! import/export slots and taken out (offsite, with the operator's note),
//! imported back; marked by hand; reel-restore names an offsite tape
//! instead of searching the library for it.

use crate::support::{CONFIG, Env};

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

/// The `where` column of `reel tapes` for `label`.
fn place(env: &Env, label: &str) -> String {
    let run = env.run("reel", &["tapes"]);
    run.expect(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("{label} in {}", run.stdout))
        .to_string();
    // Columns: tape, pool, where (which may hold spaces), state…
    let rest = &line[22..];
    let end = [" writable ", " full ", " suspect ", " retired "]
        .iter()
        .filter_map(|s| rest.find(s))
        .min()
        .unwrap_or_else(|| panic!("a state in {line}"));
    rest[..end].trim().to_string()
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
