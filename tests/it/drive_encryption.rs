//! Drive encryption set by reel, on the virtual library (whose drives
//! encrypt with the same AES-256-GCM engine as reel-tcmu's): tapes of a
//! pool with a `[[drive_key]]` are labelled with its fingerprint, their
//! archives hold no plaintext, verify and restore set the key the label
//! names, and a missing key stops them with a message naming it.

use std::os::unix::fs::PermissionsExt;

use crate::support::{CONFIG, Env};

/// A stenc key file of `byte` 32 times, mode 0600.
fn key_file(env: &Env, name: &str, byte: u8) {
    let f = env.path(name);
    std::fs::write(
        &f,
        format!("{}\ndescription\n", format!("{byte:02x}").repeat(32)),
    )
    .unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn config(env: &Env, keys: &str) {
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n\
             [[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n\n{keys}"
        ),
    );
}

const SITE_KEY: &str =
    "[[drive_key]]\nname = \"site\"\nfile = \"site.key\"\npools = [\"default\"]\n";

/// The source: text that is easy to find in a tape file, if it is there.
const NEEDLE: &[u8] = b"THIS LINE MUST NOT BE READABLE ON TAPE\n";

fn source(env: &Env) {
    std::fs::write(env.path("src/plain.txt"), NEEDLE.repeat(5000)).unwrap();
    std::fs::write(
        env.path("src/random.bin"),
        (0..900_000u64)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
}

fn fingerprint(env: &Env) -> String {
    let tapes = env.run("reel", &["tapes", "--json"]);
    tapes.expect(0);
    let tapes: Vec<serde_json::Value> = serde_json::from_str(&tapes.stdout).unwrap();
    tapes[0]["drive_key"]
        .as_str()
        .expect("the tape records its key")
        .to_string()
}

/// A source backed up and verified with key 0x1f for pool default: the
/// environment and the key's fingerprint as the tape records it.
fn backed_up_with_a_key() -> (Env, String) {
    let env = Env::new();
    key_file(&env, "site.key", 0x1f);
    config(&env, SITE_KEY);
    source(&env);
    env.back_up();
    let fp = fingerprint(&env);
    (env, fp)
}

#[test]
fn a_pool_with_a_drive_key_is_written_encrypted_and_read_back_with_it() {
    let (env, fp) = backed_up_with_a_key();
    assert_eq!(fp.len(), 16);
    let table = env.run("reel", &["tapes"]);
    assert!(
        table.stdout.contains(&format!("drive {}", &fp[..8])),
        "{}",
        table.report()
    );
    // The label is in the clear and says how to read the rest; the
    // archives are sealed blocks with no plaintext in them.
    let tape = env.path("lib/tapes/V00001L9");
    let label = std::fs::read(tape.join("000000")).unwrap();
    let text = String::from_utf8_lossy(&label);
    assert!(text.contains(&format!("\"drive_key\": \"{fp}\"")), "{text}");
    assert!(
        text.contains("ENCRYPTED by the tape drive")
            && text.contains("stenc -f /dev/nst0 -e mixed"),
        "{text}"
    );
    let archive = std::fs::read(tape.join("000001")).unwrap();
    assert!(archive.starts_with(b"REELAES1"));
    assert!(!archive.windows(NEEDLE.len()).any(|w| w == NEEDLE));
    assert!(!archive.windows(5).any(|w| w == b"ustar"));
    // Verified from what the drive decrypted; restored byte for byte.
    env.run("reel", &["find", "plain.txt"]).expect(0);
    env.run("reel-restore", &["**", "--to", "back"]).expect(0);
    for f in ["plain.txt", "random.bin"] {
        assert_eq!(
            std::fs::read(env.path(&format!("back/{f}"))).unwrap(),
            std::fs::read(env.path(&format!("src/{f}"))).unwrap(),
            "{f}"
        );
    }
    env.run("reel-verify", &["--tape", "V00001L9"]).expect(0);
}

#[test]
fn without_the_key_restore_and_verify_stop_naming_it() {
    let (env, fp) = backed_up_with_a_key();
    // Another key under the same name: not the tape's.
    key_file(&env, "site.key", 0xa2);
    for (program, args) in [
        ("reel-restore", &["**", "--to", "back"][..]),
        ("reel-verify", &["--tape", "V00001L9"][..]),
        (
            "reel-restore",
            &["--from-tape", "virtual:lib", "**", "--to", "back2"][..],
        ),
    ] {
        let run = env.run(program, args);
        run.expect(69);
        assert!(
            run.stderr
                .contains(&format!("encrypted by the drive with key {fp}"))
                && run.stderr.contains("no [[drive_key]]"),
            "{program}: {}",
            run.report()
        );
    }
    assert!(!env.path("back/plain.txt").exists());
    // No [[drive_key]] at all: the same.
    config(&env, "");
    let run = env.run("reel-restore", &["**", "--to", "back"]);
    run.expect(69);
    assert!(run.stderr.contains(&fp), "{}", run.report());
    // The old key back, kept for reading only (no pool): restored.
    key_file(&env, "old.key", 0x1f);
    config(&env, "[[drive_key]]\nname = \"old\"\nfile = \"old.key\"\n");
    env.run("reel-restore", &["**", "--to", "back"]).expect(0);
    assert_eq!(
        std::fs::read(env.path("back/plain.txt")).unwrap(),
        NEEDLE.repeat(5000)
    );
}

#[test]
fn a_clear_tape_is_not_appended_to_once_its_pool_has_a_key_and_bad_key_files_are_named() {
    let env = Env::new();
    config(&env, "");
    source(&env);
    for program in ["reel-scan", "reel-stage", "reel-pack", "reel-write"] {
        env.run(program, &[]).expect(0);
    }
    std::fs::write(env.path("src/later.txt"), b"later\n").unwrap();
    key_file(&env, "site.key", 0x1f);
    config(&env, SITE_KEY);
    for program in ["reel-scan", "reel-stage", "reel-pack"] {
        env.run(program, &[]).expect(0);
    }
    // The tape in the drive (clear) is refused; the library's next blank
    // tape is not taken either: the pool's one tape is the operator's call.
    let run = env.run("reel-write", &[]);
    run.expect(69);
    assert!(
        run.stderr.contains("labelled without a drive key") && run.stderr.contains("pool default"),
        "{}",
        run.report()
    );
    // A key file others can read is refused, naming it.
    std::fs::set_permissions(env.path("site.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = env.run("reel", &["mt", "label", "--force", "T00009L9"]);
    run.expect(78);
    assert!(
        run.stderr.contains("drive_key \"site\"") && run.stderr.contains("readable by others"),
        "{}",
        run.report()
    );
}
