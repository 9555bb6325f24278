//! What drives and cartridges say of their health, on the virtual library:
//! `reel mt status` shows the TapeAlert flags and the cartridge memory,
//! and reel-write keeps the cartridge's counts with the tape (`reel tapes`).

use crate::support::{CONFIG, Env};

#[test]
fn reel_tapes_shows_the_loads_and_lifetime_bytes_of_each_cartridge() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n"
        ),
    );
    std::fs::write(env.path("src/a.bin"), vec![7u8; 3 << 20]).unwrap();
    env.run("reel", &["mt", "label", "T00001L9"]).expect(0);
    let status = env.run("reel", &["mt", "status"]);
    status.expect(0);
    assert!(
        status
            .stdout
            .contains("Cartridge: serial REELCM-V00001L9, made "),
        "{}",
        status.report()
    );
    assert!(
        status.stdout.contains("TapeAlert: none"),
        "{}",
        status.report()
    );
    for program in ["reel-scan", "reel-stage", "reel-pack", "reel-write"] {
        env.run(program, &[]).expect(0);
    }
    let tapes = env.run("reel", &["tapes", "--json"]);
    let tapes: Vec<serde_json::Value> = serde_json::from_str(&tapes.stdout).unwrap();
    let c = &tapes[0]["cartridge"];
    assert_eq!(c["serial"], "REELCM-V00001L9", "{tapes:?}");
    assert!(c["loads"].as_u64().unwrap() >= 1, "{c}");
    // The label, then the archive: at least the 3 MiB of data.
    assert!(c["mib_written"].as_u64().unwrap() >= 3, "{c}");
    let table = env.run("reel", &["tapes"]);
    let header = table.stdout.lines().next().unwrap();
    assert!(
        header.contains("loads") && header.contains("life"),
        "{header}"
    );
    assert!(table.stdout.contains("T00001L9"), "{}", table.report());
}

/// reel-write reads the volume statistics of the tape it loads: a tape
/// whose unrecovered errors rose since its last reading (here a read that
/// failed during a restore) is marked suspect before anything more is
/// written to it, and the run goes on with the library's next tape.
#[test]
fn a_tape_whose_unrecovered_errors_rose_is_marked_suspect_and_not_written_to() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n\
             [[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n"
        ),
    );
    std::fs::write(env.path("src/a.bin"), vec![1u8; 600_000]).unwrap();
    env.back_up();
    let tapes = |env: &Env| -> Vec<serde_json::Value> {
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap()
    };
    let t = tapes(&env);
    assert_eq!(t[0]["volume"]["unrecovered_read_errors"], 0, "{t:?}");
    // A read error on a.bin's archive, met by a restore.
    let meta = env.path("lib/tapes/V00001L9/meta.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    m["faults"]["read_errors"] = serde_json::json!([3]);
    std::fs::write(&meta, serde_json::to_vec(&m).unwrap()).unwrap();
    let restore = env.run("reel-restore", &["a.bin", "--to", "back"]);
    assert_ne!(restore.code, Some(0), "{}", restore.report());
    let status = env.run("reel", &["mt", "status"]);
    assert!(
        status.stdout.contains("Volume: ")
            && status.stdout.contains("unrecovered errors read 1, write 0"),
        "{}",
        status.report()
    );
    // More to write: the tape in the drive is found worse and left alone.
    std::fs::write(env.path("src/b.bin"), vec![2u8; 300_000]).unwrap();
    for program in ["reel-scan", "reel-stage", "reel-pack"] {
        env.run(program, &[]).expect(0);
    }
    let write = env.run("reel-write", &[]);
    write.expect(0);
    assert!(
        write
            .stderr
            .contains("tape V00001L9 is now suspect: its unrecovered errors rose from 0 to 1"),
        "{}",
        write.report()
    );
    let t = tapes(&env);
    let first = t.iter().find(|t| t["label"] == "V00001L9").unwrap();
    assert_eq!(first["state"], "suspect", "{t:?}");
    assert_eq!(first["files"], 2, "nothing more written to it: {t:?}");
    let second = t
        .iter()
        .find(|t| t["label"] == "V00002L9")
        .expect("the next tape");
    assert_eq!(second["files"], 2, "{t:?}");
    let table = env.run("reel", &["tapes"]);
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with("V00001L9"))
        .unwrap();
    assert!(
        line.contains(" 1/0 ") && line.contains("suspect: its unrecovered errors rose"),
        "{line}"
    );
}
