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
