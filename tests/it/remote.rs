//! A remote source (`host:/path`) pulled with the real rsync into the
//! landing area, then scanned and staged. The remote shell is a stand-in
//! that runs rsync's server side locally, so no ssh server is needed.

use std::os::unix::fs::PermissionsExt;

use reel_shared::manifest::ManifestReader;
use reel_shared::spool::{Queue, Spool};
use sha2::Digest as _;

use crate::support::Env;

#[test]
fn a_remote_source_is_pulled_with_rsync_then_scanned_and_staged() {
    let env = Env::new();
    let remote = env.path("remote-host/export");
    std::fs::create_dir_all(remote.join("docs")).unwrap();
    std::fs::write(remote.join("docs/report.txt"), "quarterly").unwrap();
    std::fs::write(remote.join("photo.raw"), vec![9u8; 300_000]).unwrap();
    // rsync runs `$REEL_RSH host rsync --server …`: drop the host, run locally.
    env.write("fake-ssh", "#!/bin/sh\nshift\nexec \"$@\"\n");
    std::fs::set_permissions(env.path("fake-ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.write(
        "pipeline.toml",
        &crate::support::CONFIG.replace(
            "source = \"src\"",
            &format!("source = \"backuphost:{}\"", remote.display()),
        ),
    );
    let run_with_rsh = |program: &str| {
        let out = std::process::Command::new(crate::support::bin(program))
            .current_dir(env.root())
            .env_remove("REEL_CONFIG")
            .env("REEL_RSH", env.path("fake-ssh"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{program}: {stderr}");
        stderr
    };
    let scan = run_with_rsh("reel-scan");
    assert!(scan.contains("pulling backuphost:"), "{scan}");
    assert!(env.path("var/cache/landing/home/docs/report.txt").is_file());
    run_with_rsh("reel-stage");
    let spool = Spool::open(&env.path("var/spool")).unwrap();
    let id = &spool.list(Queue::Staged).unwrap()[0];
    let (header, mut reader) = ManifestReader::open(&spool.item_path(Queue::Staged, id)).unwrap();
    assert_eq!(header.stream, "home");
    let records: Vec<_> = reader.records().map(Result::unwrap).collect();
    let photo = records
        .iter()
        .find(|r| r.path.to_str() == Some("photo.raw"))
        .unwrap();
    let want: [u8; 32] = sha2::Sha256::digest(vec![9u8; 300_000]).into();
    assert_eq!(photo.sha256.unwrap().0, want);
    // Small: staged into a bundle, at its offset there.
    let at = photo.cache_offset.expect("in a bundle") as usize;
    assert_eq!(
        std::fs::read(photo.cache.as_ref().unwrap()).unwrap()[at..at + 300_000],
        vec![9u8; 300_000]
    );
    assert_eq!(records.len(), 3, "docs, docs/report.txt, photo.raw");
}

#[test]
fn an_unreachable_remote_source_is_reported() {
    let env = Env::new();
    env.write(
        "pipeline.toml",
        &crate::support::CONFIG.replace("source = \"src\"", "source = \"nohost:/x\""),
    );
    env.write(
        "fake-ssh",
        "#!/bin/sh\necho 'ssh: connect to host nohost port 22: Connection refused' >&2\nexit 255\n",
    );
    std::fs::set_permissions(env.path("fake-ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(crate::support::bin("reel-scan"))
        .current_dir(env.root())
        .env_remove("REEL_CONFIG")
        .env("REEL_RSH", env.path("fake-ssh"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(66), "{stderr}");
    assert!(
        stderr.contains("rsync nohost:/x/") && stderr.contains("Connection refused"),
        "{stderr}"
    );
}
