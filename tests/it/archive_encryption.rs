//! Archives sealed with age (`[[archive_key]]`), on the virtual library: a
//! tape file is an age file that the real `age` and GNU tar read with
//! nothing of reel; verify and restore open it with the host's identity,
//! restore reading from the chunk that holds a member; a missing or wrong
//! identity and a damaged chunk stop them with messages that say so.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::support::{CONFIG, Env, bytes_read};

/// A new age identity in `env/name` (0600): its recipient.
fn keygen(env: &Env, name: &str) -> String {
    let file = env.path(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&file)
        .stderr(Stdio::piped())
        .output()
        .expect("age-keygen (Debian package age; scripts/install-deps installs it)");
    assert!(out.status.success(), "{out:?}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn config(env: &Env, recipient: &str, identity: Option<&str>) {
    let identity = identity.map_or(String::new(), |f| format!("identity = \"{f}\"\n"));
    config_key(
        env,
        &format!("name = \"offsite\"\nrecipients = [\"{recipient}\"]\n{identity}"),
    );
}

/// The test library, and the stream sealed with the `[[archive_key]]` of
/// `key` (its lines but `streams`).
fn config_key(env: &Env, key: &str) {
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"4M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n\
             [[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"64M\"\nbuffer = \"4M\"\n\n\
             [[archive_key]]\n{key}streams = [\"home\"]\n"
        ),
    );
}

const NEEDLE: &[u8] = b"THIS LINE MUST NOT BE READABLE ON TAPE\n";

/// A large file first (pack order is by path), a small one last.
fn source(env: &Env) {
    std::fs::write(env.path("src/a-plain.txt"), NEEDLE.repeat(60_000)).unwrap();
    std::fs::write(
        env.path("src/b-random.bin"),
        (0..1_500_000u64)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(env.path("src/z-small.txt"), b"the last member\n").unwrap();
}

/// A new test tree with the source, a host identity and a configuration
/// that seals for it (`identity`: the file this host opens archives with).
fn keyed(identity: Option<&str>) -> (Env, String) {
    let env = Env::new();
    let recipient = keygen(&env, "host.age");
    config(&env, &recipient, identity);
    source(&env);
    (env, recipient)
}

/// The shell command `listing` (in the test's tree) lists `member`.
fn lists(env: &Env, listing: &str, member: &str) {
    let out = Command::new("sh")
        .args(["-c", listing])
        .current_dir(env.root())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(member),
        "{listing}: {out:?}"
    );
}

fn to_tape(env: &Env) {
    for program in ["reel-scan", "reel-stage", "reel-pack", "reel-write"] {
        env.run(program, &[]).expect(0);
    }
}

#[test]
fn sealed_archives_are_verified_restored_by_chunk_and_read_by_age_and_tar_alone() {
    let (env, recipient) = keyed(Some("host.age"));
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    // On tape: an age file whose first words say what it is; no plaintext.
    let tape = env.path("lib/tapes/V00001L9");
    let archive = std::fs::read(tape.join("000001")).unwrap();
    let head = String::from_utf8_lossy(&archive[..400]);
    assert!(
        head.starts_with(
            "age-encryption.org/v1\n-> reel: this tape file is a tar archive encrypted with age"
        ),
        "{head}"
    );
    assert!(
        head.contains(&recipient) && head.contains("age -d -i IDENTITY-FILE | tar -xvf -"),
        "{head}"
    );
    assert!(!archive.windows(NEEDLE.len()).any(|w| w == NEEDLE));
    assert!(!archive.windows(16).any(|w| w == b"REEL-INDEX.jsonl"));
    assert_eq!(archive.len() % (256 << 10), 0, "whole tape blocks");
    // The real age and GNU tar, nothing of reel.
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i {} < {} | tar -tvf -",
            env.path("host.age").display(),
            tape.join("000001").display()
        ))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for member in [
        "REEL-ARCHIVE.txt",
        "a-plain.txt",
        "b-random.bin",
        "z-small.txt",
        "REEL-INDEX.jsonl",
    ] {
        assert!(listing.contains(member), "{member} in: {listing}");
    }
    // The catalog knows it is sealed, and for whom.
    let written = std::fs::read_to_string(env.path("var/catalog/written/V00001L9.jsonl")).unwrap();
    let fp = {
        use sha2::Digest;
        sha2::Sha256::digest(recipient.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(
        written.contains(&format!("\"recipients\":[\"{fp}\"]")),
        "{written}"
    );
    let table = env.run("reel", &["tapes"]);
    assert!(
        table.stdout.contains(&format!("age {}", &fp[..8])),
        "{}",
        table.report()
    );
    // One small member: read from the chunk that holds it, not the whole
    // archive.
    let run = env.run("reel-restore", &["z-small.txt", "--to", "back"]);
    run.expect(0);
    assert_eq!(
        std::fs::read(env.path("back/z-small.txt")).unwrap(),
        b"the last member\n"
    );
    let read = bytes_read(&run.stderr);
    assert!(
        read <= 4 * (256 << 10) && (read as usize) < archive.len() / 2,
        "{read} bytes read for a 16-byte member of a {}-byte archive",
        archive.len()
    );
    // Everything, byte for byte.
    env.run("reel-restore", &["**", "--to", "all"]).expect(0);
    for f in ["a-plain.txt", "b-random.bin", "z-small.txt"] {
        assert_eq!(
            std::fs::read(env.path(&format!("all/{f}"))).unwrap(),
            std::fs::read(env.path(&format!("src/{f}"))).unwrap(),
            "{f}"
        );
    }
    env.run("reel-verify", &["--tape", "V00001L9"]).expect(0);
    // From the tape alone, with the host's identity: the sealed index is
    // read, and each member from its chunk.
    std::fs::remove_dir_all(env.path("var/catalog")).unwrap();
    let run = env.run(
        "reel-restore",
        &["--from-tape", "virtual:lib", "**", "--to", "ft"],
    );
    run.expect(0);
    for f in ["a-plain.txt", "b-random.bin", "z-small.txt"] {
        assert_eq!(
            std::fs::read(env.path(&format!("ft/{f}"))).unwrap(),
            std::fs::read(env.path(&format!("src/{f}"))).unwrap(),
            "{f}: {}",
            run.report()
        );
    }
    // The journal again from the tape, every member decrypted and hashed.
    let run = env.run("reel", &["catalog", "import"]);
    run.expect(0);
    let found = env.run("reel", &["find", "z-small.txt", "--json"]);
    found.expect(0);
    assert!(found.stdout.contains("\"block\":"), "{}", found.report());
    env.run("reel-restore", &["z-small.txt", "--to", "again"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("again/z-small.txt")).unwrap(),
        b"the last member\n"
    );
}

#[test]
fn without_the_identity_or_with_another_nothing_is_verified_or_restored() {
    let (env, recipient) = keyed(None);
    to_tape(&env);
    let run = env.run("reel-verify", &[]);
    run.expect(69);
    assert!(
        run.stderr
            .contains("sealed (age) and this host has no identity"),
        "{}",
        run.report()
    );
    assert!(!env.spool_items("written").is_empty(), "still to verify");
    // Another identity: not one of the recipients.
    keygen(&env, "other.age");
    config(&env, &recipient, Some("other.age"));
    let run = env.run("reel-verify", &[]);
    run.expect(69);
    assert!(run.stderr.contains("not among"), "{}", run.report());
    // The right one.
    config(&env, &recipient, Some("host.age"));
    env.run("reel-verify", &[]).expect(0);
    config(&env, &recipient, Some("other.age"));
    let run = env.run("reel-restore", &["z-small.txt", "--to", "back"]);
    assert_ne!(run.code, Some(0), "{}", run.report());
    assert!(run.stderr.contains("not among"), "{}", run.report());
    assert!(!env.path("back/z-small.txt").exists());
    // From the tape alone, the same.
    let run = env.run(
        "reel-restore",
        &["--from-tape", "virtual:lib", "**", "--to", "ft"],
    );
    assert_ne!(run.code, Some(0), "{}", run.report());
    assert!(
        run.stderr
            .contains("is a sealed archive (age) that cannot be opened here")
            && run.stderr.contains("not among"),
        "{}",
        run.report()
    );
    assert!(!env.path("ft/z-small.txt").exists());
}

#[test]
fn a_damaged_chunk_is_caught_by_verify_naming_where() {
    let (env, _) = keyed(Some("host.age"));
    to_tape(&env);
    // One byte flipped in the middle of the archive (in b-random.bin).
    let meta = env.path("lib/tapes/V00001L9/meta.json");
    let size = std::fs::metadata(env.path("lib/tapes/V00001L9/000001"))
        .unwrap()
        .len();
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let block = 1 + size / (256 << 10) / 2;
    m["faults"]["flip"] = serde_json::json!([{"block": block, "offset": 1000}]);
    std::fs::write(&meta, serde_json::to_vec(&m).unwrap()).unwrap();
    let run = env.run("reel-verify", &[]);
    run.expect(65);
    assert!(
        run.stderr.contains("cannot decrypt the archive at byte")
            && run.stderr.contains("age chunk"),
        "{}",
        run.report()
    );
    // What did not read back is staged again, and goes to tape again
    // (past the damaged block), verified this time.
    assert!(
        env.spool_items("staged")
            .iter()
            .any(|i| i.contains("-retry-")),
        "{:?}",
        env.spool_items("staged")
    );
    for program in ["reel-pack", "reel-write", "reel-verify"] {
        env.run(program, &[]).expect(0);
    }
    env.run("reel-restore", &["b-random.bin", "--to", "back"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("back/b-random.bin")).unwrap(),
        std::fs::read(env.path("src/b-random.bin")).unwrap()
    );
}

/// A tape filled with sealed archives gets no clear closing catalog
/// (REEL-TAPE.jsonl would list the members' names), and no tape file
/// holds a member's name or data in the clear.
#[test]
fn a_full_tape_of_sealed_archives_names_nothing_in_the_clear() {
    let env = Env::new();
    let recipient = keygen(&env, "host.age");
    env.write(
        "pipeline.toml",
        &format!(
            "{CONFIG}\n[pack]\narchive_size = \"1M\"\n\n[[changer]]\nname = \"lib\"\ndevice = \"virtual:lib\"\n\n\
             [[drive]]\nname = \"d\"\ndevice = \"virtual:lib\"\nchanger = \"lib\"\ncapacity = \"8M\"\nbuffer = \"2M\"\n\n\
             [[archive_key]]\nname = \"offsite\"\nrecipients = [\"{recipient}\"]\nidentity = \"host.age\"\nstreams = [\"home\"]\n"
        ),
    );
    for i in 0..14 {
        std::fs::write(
            env.path(&format!("src/secret-name-{i:02}.txt")),
            NEEDLE.repeat(20_000),
        )
        .unwrap();
    }
    to_tape(&env);
    env.run("reel-verify", &[]).expect(0);
    let tapes: Vec<serde_json::Value> =
        serde_json::from_str(&env.run("reel", &["tapes", "--json"]).stdout).unwrap();
    assert!(tapes.iter().any(|t| t["state"] == "full"), "{tapes:?}");
    for t in &tapes {
        let dir = env.path(&format!("lib/tapes/{}", t["label"].as_str().unwrap()));
        for f in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if !name.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let bytes = std::fs::read(f.path()).unwrap();
            for clear in [&b"secret-name-"[..], b"REEL-TAPE.jsonl", &NEEDLE[..20]] {
                assert!(
                    !bytes.windows(clear.len()).any(|w| w == clear),
                    "{} holds {:?} in the clear",
                    f.path().display(),
                    String::from_utf8_lossy(clear)
                );
            }
        }
    }
    env.run("reel-restore", &["**", "--to", "back"]).expect(0);
    assert_eq!(
        std::fs::read(env.path("back/secret-name-13.txt")).unwrap(),
        NEEDLE.repeat(20_000)
    );
}

/// reel-pack leaves the archive in the cache in the clear (the cache holds
/// the staged copies in the clear anyway) and reel-write seals it on its
/// way to tape; an archive that leaves through `reel-pack --raw` leaves
/// sealed.
#[test]
fn archives_are_sealed_where_they_leave_the_host() {
    let (env, _) = keyed(Some("host.age"));
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    let out = env
        .command("reel-pack", &["--raw", "--manifest", "packed.jsonl"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.starts_with(b"age-encryption.org/v1\n-> reel: "));
    assert!(!out.stdout.windows(NEEDLE.len()).any(|w| w == NEEDLE));
    std::fs::write(env.path("raw.age"), &out.stdout).unwrap();
    lists(
        &env,
        "age -d -i host.age < raw.age | tar -tf -",
        "z-small.txt",
    );

    std::fs::write(env.path("src/new.txt"), NEEDLE).unwrap();
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
    let cached: Vec<_> = std::fs::read_dir(env.path("var/cache/archives"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].windows(NEEDLE.len()).any(|w| w == NEEDLE));
    env.run("reel-write", &[]).expect(0);
    let tape_file = std::fs::read(env.path("lib/tapes/V00001L9/000001")).unwrap();
    assert!(tape_file.starts_with(b"age-encryption.org/v1\n"));
    assert!(!tape_file.windows(NEEDLE.len()).any(|w| w == NEEDLE));
    env.run("reel-verify", &[]).expect(0);
    env.run("reel-restore", &["new.txt", "--to", "back"])
        .expect(0);
    assert_eq!(std::fs::read(env.path("back/new.txt")).unwrap(), NEEDLE);
}

/// An `[[archive_key]]` with a passphrase instead of recipients: the tape
/// file is an age file with the one scrypt stanza age allows, which the
/// `age` command opens when the passphrase is typed at its terminal
/// (`script` gives it one); reel verifies and restores with the
/// passphrase file, and says so when it holds another passphrase.
#[test]
fn a_passphrase_seals_and_opens_archives_and_age_opens_them_too() {
    let env = Env::new();
    let secret = |name: &str, text: &str| {
        env.write(name, text);
        std::fs::set_permissions(env.path(name), std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    secret("vault.pass", "long words for the vault\n");
    secret("other.pass", "other words\n");
    let conf = |file: &str| {
        config_key(
            &env,
            &format!("name = \"vault\"\npassphrase_file = \"{file}\"\n"),
        )
    };
    conf("vault.pass");
    source(&env);
    to_tape(&env);
    let tape_file = env.path("lib/tapes/V00001L9/000001");
    let sealed = std::fs::read(&tape_file).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n-> scrypt "));
    assert!(!sealed.windows(NEEDLE.len()).any(|w| w == NEEDLE));
    let table = env.run("reel", &["tapes"]);
    assert!(
        table.stdout.contains("age passphrase:vault"),
        "{}",
        table.report()
    );
    // The age command, the passphrase typed at its terminal.
    let mut typed = Command::new("script")
        .args([
            "-qec",
            &format!("age -d -o plain.tar {}", tape_file.display()),
            "/dev/null",
        ])
        .current_dir(env.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("script (bsdutils)");
    {
        use std::io::Write;
        let mut stdin = typed.stdin.take().unwrap();
        stdin.write_all(b"long words for the vault\n").unwrap();
    }
    assert!(typed.wait().unwrap().success());
    lists(&env, "tar -tf plain.tar", "z-small.txt");
    // Another passphrase: nothing verified, nothing restored, and why.
    conf("other.pass");
    let run = env.run("reel-verify", &[]);
    run.expect(69);
    assert!(
        run.stderr.contains("passphrase that is not"),
        "{}",
        run.report()
    );
    conf("vault.pass");
    env.run("reel-verify", &[]).expect(0);
    env.run("reel-restore", &["z-small.txt", "--to", "back"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("back/z-small.txt")).unwrap(),
        b"the last member\n"
    );
}
