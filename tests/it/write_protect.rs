//! A write-protected tape: reel-write never writes to it, says so naming
//! the tape, and with a library goes on with the next writable tape.

use reel_shared::spool::{Queue, Spool};

use crate::support::{CONFIG, Env};

fn setup(env: &Env, changer: bool) {
    let changer = if changer {
        "[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n"
    } else {
        ""
    };
    let in_drive = if changer.is_empty() {
        ""
    } else {
        "changer = \"lib\"\n"
    };
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n{changer}[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\n{in_drive}capacity = \"8M\"\nbuffer = \"4M\"\n"
        ),
    );
    for i in 0..3 {
        std::fs::write(env.path(&format!("src/f{i}.bin")), vec![i as u8; 300_000]).unwrap();
    }
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
    if changer.is_empty() {
        // Without a library the operator labels the tape.
        env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    } else {
        // The library exists once a program has opened it.
        env.run("reel", &["mt", "status"]).expect(0);
    }
    protect(env, "V00001L9");
}

/// Set the write-protect tab of a virtual tape.
fn protect(env: &Env, barcode: &str) {
    let path = env.path(&format!("lib/tapes/{barcode}/meta.json"));
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    meta["write_protected"] = true.into();
    std::fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
}

/// How many tape files a virtual tape holds.
fn files(env: &Env, barcode: &str) -> usize {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path(&format!("lib/tapes/{barcode}/meta.json"))).unwrap(),
    )
    .unwrap();
    meta["files"]
        .as_array()
        .map_or(0, |f| f.iter().filter(|f| f["filemark"] == true).count())
}

#[test]
fn with_a_library_a_write_protected_tape_is_skipped_and_the_next_one_written() {
    let env = Env::new();
    setup(&env, true);
    let run = env.run("reel-write", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("V00001L9") && run.stderr.contains("write-protected"),
        "{}",
        run.report()
    );
    assert_eq!(
        files(&env, "V00001L9"),
        0,
        "nothing was written to V00001L9"
    );
    let spool = Spool::open(&env.path("var/spool")).unwrap();
    assert!(spool.list(Queue::Packed).unwrap().is_empty());
    let tapes = env.run("reel", &["tapes"]);
    assert!(tapes.stdout.contains("V00002L9"), "{}", tapes.report());
    assert!(!tapes.stdout.contains("V00001L9"), "{}", tapes.report());
}

#[test]
fn without_a_library_a_write_protected_tape_stops_with_69_naming_it() {
    let env = Env::new();
    setup(&env, false);
    let run = env.run("reel-write", &[]);
    run.expect(69);
    assert!(run.stderr.contains("write-protected"), "{}", run.report());
    assert_eq!(files(&env, "V00001L9"), 1, "the label alone");
    let spool = Spool::open(&env.path("var/spool")).unwrap();
    assert_eq!(
        spool.list(Queue::Packed).unwrap().len(),
        1,
        "kept for later"
    );
}
