//! Bad files in the queues and manifests that point outside reel's own
//! directories: a bad item goes to failed/ with its reason (file and line),
//! the rest goes on, the stage exits 65 once and not again; no path from a
//! manifest makes a stage read or delete anything outside the cache.

use reel_shared::spool::{Queue, Spool};

use crate::support::Env;
use crate::verify::{setup, to_tape};

fn spool(env: &Env) -> Spool {
    Spool::open(&env.path("var/spool")).unwrap()
}

/// The `.error` of every failed item, by id.
fn failed(env: &Env) -> Vec<(String, String)> {
    spool(env)
        .failed()
        .unwrap()
        .into_iter()
        .map(|f| (f.id, f.error))
        .collect()
}

/// A header line for an item of `kind` with id `id`.
fn header(kind: &str, id: &str) -> String {
    format!(
        "{{\"reel\":\"manifest/1\",\"kind\":\"{kind}\",\"stream\":\"home\",\"id\":\"{id}\",\"created\":\"2026-12-01T00:00:00Z\"}}\n"
    )
}

#[test]
fn garbage_in_any_queue_goes_to_failed_once_and_the_rest_goes_on() {
    let env = Env::new();
    setup(&env);
    env.run("reel-scan", &[]).expect(0);
    let q = |name: &str| env.path(&format!("var/spool/{name}"));
    // One bad item in each queue: a torn line, a record without a type,
    // plain junk, a header of the wrong kind.
    std::fs::write(
        q("scanned/home-20000101T000000-0901.jsonl"),
        "{\"reel\":\"manif",
    )
    .unwrap();
    std::fs::write(
        q("staged/home-20000101T000000-0902.jsonl"),
        format!(
            "{}{{\"path\":\"x\"}}\n",
            header("staged", "home-20000101T000000-0902")
        ),
    )
    .unwrap();
    std::fs::write(
        q("packed/home-20000101T000000-0903.jsonl"),
        b"\x00\xffjunk\n",
    )
    .unwrap();
    std::fs::write(
        q("written/home-20000101T000000-0904.jsonl"),
        header("staged", "home-20000101T000000-0904"),
    )
    .unwrap();
    // Each stage fails its bad item once (65), does its real work, and the
    // next run is clean.
    for stage in ["reel-stage", "reel-pack", "reel-write", "reel-verify"] {
        let run = env.run(stage, &[]);
        run.expect(65);
        assert!(run.stderr.contains("moved to"), "{}", run.report());
        env.run(stage, &[]).expect(0);
    }
    // reel-scan was never stopped by the bad items in flight.
    env.run("reel-scan", &[]).expect(0);
    let f = failed(&env);
    assert_eq!(f.len(), 4, "{f:#?}");
    for (id, why) in &f {
        assert!(why.contains(&format!("{id}.jsonl:")), "{id}: {why}");
    }
    // The real work went through: everything is verified.
    let found = env.run("reel", &["find", "dir/f07.bin"]);
    found.expect(0);
}

#[test]
fn a_manifest_cannot_make_a_stage_read_or_delete_anything_outside_the_cache() {
    let env = Env::new();
    setup(&env);
    let secret = env.path("secret.txt");
    std::fs::write(&secret, "root's secret").unwrap();
    // A staged item whose record says its copy is the secret.
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    let sp = spool(&env);
    let id = sp
        .list(Queue::Staged)
        .unwrap()
        .into_iter()
        .find(|id| {
            std::fs::read_to_string(sp.item_path(Queue::Staged, id))
                .unwrap()
                .contains("\"path\":\"dir/f03.bin\"")
        })
        .unwrap();
    let path = sp.item_path(Queue::Staged, &id);
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"path\":\"dir/f03.bin\""))
        .unwrap()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let forged = line.replace(v["cache"].as_str().unwrap(), secret.to_str().unwrap());
    std::fs::write(&path, text.replace(&line, &forged)).unwrap();
    let run = env.run("reel-pack", &[]);
    run.expect(65);
    assert!(
        run.stderr.contains("is not in") && run.stderr.contains("refused"),
        "{}",
        run.report()
    );
    assert!(failed(&env).iter().any(|(i, _)| *i == id));
    for pid in sp.list(Queue::Packed).unwrap() {
        let text = std::fs::read_to_string(sp.item_path(Queue::Packed, &pid)).unwrap();
        assert!(!text.contains("secret"), "{pid}");
    }
    // A written item whose archive is the secret, and whose records say
    // their copies are the secret: verify reads the tape, and deletes none.
    env.run("reel", &["retry", "--all"]).expect(0);
    let text = std::fs::read_to_string(sp.item_path(Queue::Staged, &id)).unwrap();
    std::fs::write(
        sp.item_path(Queue::Staged, &id),
        text.replace(&forged, &line),
    )
    .unwrap();
    to_tape(&env);
    for wid in sp.list(Queue::Written).unwrap() {
        let p = sp.item_path(Queue::Written, &wid);
        let text = std::fs::read_to_string(&p).unwrap();
        let mut out = String::new();
        for l in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v.get("archive_path").is_some() {
                v["archive_path"] = secret.to_str().unwrap().into();
            }
            if v.get("cache").is_some() {
                v["cache"] = secret.to_str().unwrap().into();
            }
            out += &format!("{v}\n");
        }
        std::fs::write(&p, out).unwrap();
    }
    let run = env.run("reel-verify", &[]);
    run.expect(0);
    assert!(run.stderr.contains("not removing"), "{}", run.report());
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root's secret");
}

#[test]
fn a_packed_item_whose_archive_is_outside_the_cache_is_refused() {
    let env = Env::new();
    setup(&env);
    let secret = env.path("secret.tar");
    std::fs::write(&secret, vec![7u8; 262_144]).unwrap();
    env.run("reel-scan", &[]).expect(0);
    env.run("reel-stage", &[]).expect(0);
    env.run("reel-pack", &[]).expect(0);
    let sp = spool(&env);
    let id = sp.list(Queue::Packed).unwrap().remove(0);
    let p = sp.item_path(Queue::Packed, &id);
    let text = std::fs::read_to_string(&p).unwrap();
    let first = text.lines().next().unwrap();
    let mut h: serde_json::Value = serde_json::from_str(first).unwrap();
    h["archive_path"] = secret.to_str().unwrap().into();
    std::fs::write(&p, text.replacen(first, &h.to_string(), 1)).unwrap();
    let run = env.run("reel-write", &[]);
    run.expect(65);
    assert!(
        run.stderr.contains("is not an archive in"),
        "{}",
        run.report()
    );
    // Nothing of the secret went to tape.
    for e in std::fs::read_dir(env.path("lib/tapes/V00001L9"))
        .unwrap()
        .flatten()
    {
        let bytes = std::fs::read(e.path()).unwrap();
        assert!(
            !bytes.windows(4096).any(|w| w.iter().all(|&b| b == 7)),
            "{}",
            e.path().display()
        );
    }
    assert!(failed(&env).iter().any(|(i, _)| *i == id));
}
