use super::*;
use crate::manifest::{EntryType, Header, Record};

fn spool() -> (tempfile::TempDir, Spool) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool")).unwrap();
    (dir, spool)
}

fn publish(spool: &Spool, q: Queue, id: &str, n: usize) {
    let header = Header::new(q.kind().unwrap(), "home", id);
    let mut p = spool.begin(q, &header).unwrap();
    for i in 0..n {
        p.write(&Record::new(format!("f{i}"), EntryType::File))
            .unwrap();
    }
    p.commit().unwrap();
}

fn count_records(path: &std::path::Path) -> usize {
    let (_, mut r) = crate::manifest::ManifestReader::open(path).unwrap();
    r.records().collect::<Result<Vec<_>, _>>().unwrap().len()
}

#[test]
fn queues_are_private_directories() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, spool) = spool();
    for q in Queue::ALL {
        let mode = std::fs::metadata(spool.dir(q))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{q}");
    }
}

#[test]
fn publish_is_invisible_until_commit() {
    let (_d, spool) = spool();
    let header = Header::new(Kind::Scanned, "home", "home-20261123T101500-0001");
    let mut p = spool.begin(Queue::Scanned, &header).unwrap();
    p.write(&Record::new("a", EntryType::File)).unwrap();
    assert!(spool.list(Queue::Scanned).unwrap().is_empty());
    let path = p.commit().unwrap();
    assert_eq!(
        spool.list(Queue::Scanned).unwrap(),
        ["home-20261123T101500-0001"]
    );
    assert_eq!(count_records(&path), 1);
    assert_eq!(
        std::fs::read_dir(spool.tmp_dir(Queue::Scanned))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn dropped_pending_leaves_nothing() {
    let (_d, spool) = spool();
    let header = Header::new(Kind::Scanned, "home", "home-20261123T101500-0001");
    let p = spool.begin(Queue::Scanned, &header).unwrap();
    drop(p);
    assert!(spool.list(Queue::Scanned).unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(spool.tmp_dir(Queue::Scanned))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn oldest_first_across_streams() {
    let (_d, spool) = spool();
    for id in [
        "zeta-20261123T101500-0002",
        "alpha-20261123T111500-0001",
        "home-20261122T000000-0010",
        "home-20261122T000000-0009",
    ] {
        publish(&spool, Queue::Staged, id, 0);
    }
    assert_eq!(
        spool.list(Queue::Staged).unwrap(),
        [
            "home-20261122T000000-0009",
            "home-20261122T000000-0010",
            "zeta-20261123T101500-0002",
            "alpha-20261123T111500-0001"
        ]
    );
}

#[test]
fn a_claimed_item_is_skipped_by_others() {
    let (_d, spool) = spool();
    publish(&spool, Queue::Scanned, "home-20261123T101500-0001", 1);
    publish(&spool, Queue::Scanned, "home-20261123T101500-0002", 1);
    let first = spool.claim(Queue::Scanned).unwrap().unwrap();
    assert_eq!(first.id(), "home-20261123T101500-0001");
    let second = spool.claim(Queue::Scanned).unwrap().unwrap();
    assert_eq!(second.id(), "home-20261123T101500-0002");
    assert!(spool.claim(Queue::Scanned).unwrap().is_none());
    drop(second);
    let again = spool.claim(Queue::Scanned).unwrap().unwrap();
    assert_eq!(again.id(), "home-20261123T101500-0002");
    first.finish().unwrap();
    assert_eq!(
        spool.list(Queue::Scanned).unwrap(),
        ["home-20261123T101500-0002"]
    );
}

#[test]
fn fail_and_retry() {
    let (_d, spool) = spool();
    publish(&spool, Queue::Staged, "home-20261123T101500-0001", 3);
    let c = spool.claim(Queue::Staged).unwrap().unwrap();
    c.fail("archive digest mismatch\non two lines", "reel-pack")
        .unwrap();
    assert!(spool.list(Queue::Staged).unwrap().is_empty());
    let failed = spool.failed().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error, "archive digest mismatch on two lines");
    assert_eq!(failed[0].queue, Some(Queue::Staged));
    assert_eq!(failed[0].stage.as_deref(), Some("reel-pack"));
    assert_eq!(
        spool.retry("home-20261123T101500-0001").unwrap(),
        Queue::Staged
    );
    assert_eq!(
        spool.list(Queue::Staged).unwrap(),
        ["home-20261123T101500-0001"]
    );
    assert!(spool.failed().unwrap().is_empty());
    assert!(matches!(
        spool.retry("home-20261123T101500-0001"),
        Err(SpoolError::NoItem { .. })
    ));
}

#[test]
fn a_corrupt_item_is_retried_into_the_queue_named_in_its_error_file() {
    let (_d, spool) = spool();
    std::fs::write(
        spool.item_path(Queue::Packed, "home-20261123T101500-0001"),
        b"garbage\n",
    )
    .unwrap();
    let c = spool.claim(Queue::Packed).unwrap().unwrap();
    assert!(c.open().is_err());
    c.fail("corrupt", "reel-write").unwrap();
    assert_eq!(
        spool.retry("home-20261123T101500-0001").unwrap(),
        Queue::Packed
    );
}

#[test]
fn stale_temporary_files_are_cleaned_live_ones_kept() {
    let (_d, spool) = spool();
    let header = Header::new(Kind::Scanned, "home", "home-20261123T101500-0001");
    let live = spool.begin(Queue::Scanned, &header).unwrap();
    std::fs::write(
        spool
            .tmp_dir(Queue::Scanned)
            .join("dead.jsonl.2147483647.0"),
        b"half",
    )
    .unwrap();
    assert_eq!(spool.clean_tmp(Queue::Scanned).unwrap(), 1);
    assert_eq!(
        std::fs::read_dir(spool.tmp_dir(Queue::Scanned))
            .unwrap()
            .count(),
        1
    );
    live.commit().unwrap();
}

#[test]
fn new_ids_never_repeat() {
    let (_d, spool) = spool();
    let a = spool.new_id("home").unwrap();
    let b = spool.new_id("home").unwrap();
    assert_ne!(a, b);
    assert!(a.starts_with("home-") && a.ends_with("-0001"), "{a}");
    assert!(b.ends_with("-0002"), "{b}");
}

#[test]
fn stream_input_spools_each_manifest_then_hands_it_out_claimed() {
    let (_d, spool) = spool();
    let mut bytes = Vec::new();
    for (id, n) in [
        ("home-20261123T101500-0001", 2),
        ("home-20261123T101500-0002", 3),
    ] {
        let header = Header::new(Kind::Scanned, "home", id);
        let mut w = crate::manifest::ManifestWriter::new(&mut bytes, &header).unwrap();
        for i in 0..n {
            w.write(&Record::new(format!("f{i}"), EntryType::File))
                .unwrap();
        }
        w.finish().unwrap();
    }
    let mut input = Input::stream(
        spool.clone(),
        Queue::Scanned,
        Box::new(std::io::Cursor::new(bytes)),
        "<stdin>",
    );
    let first = input.next_item().unwrap().unwrap();
    // The item sits in the queue, and a concurrent consumer cannot take it.
    assert!(spool.claim(Queue::Scanned).unwrap().is_none());
    let (_, mut r) = first.open().unwrap();
    assert_eq!(r.records().count(), 2);
    first.finish().unwrap();
    let second = input.next_item().unwrap().unwrap();
    assert_eq!(second.id(), "home-20261123T101500-0002");
    second.finish().unwrap();
    assert!(input.next_item().unwrap().is_none());
    assert!(spool.list(Queue::Scanned).unwrap().is_empty());
}

#[test]
fn stream_input_refuses_the_wrong_kind() {
    let (_d, spool) = spool();
    let header = Header::new(Kind::Staged, "home", "home-20261123T101500-0001");
    let bytes = crate::manifest::ManifestWriter::new(Vec::new(), &header)
        .unwrap()
        .finish()
        .unwrap();
    let mut input = Input::stream(
        spool,
        Queue::Scanned,
        Box::new(std::io::Cursor::new(bytes)),
        "<stdin>",
    );
    let e = input.next_item().unwrap_err().to_string();
    assert!(e.contains("expected a \"scanned\" manifest"), "{e}");
}

#[test]
fn a_live_writer_s_temporary_is_kept_even_before_it_is_locked() {
    let (_d, spool) = spool();
    // What begin() holds for an instant: created, not locked yet.
    let name = format!("home-20261123T101500-0001.jsonl.{}.99", std::process::id());
    std::fs::write(spool.tmp_dir(Queue::Scanned).join(&name), b"").unwrap();
    assert_eq!(spool.clean_tmp(Queue::Scanned).unwrap(), 0);
    assert!(spool.tmp_dir(Queue::Scanned).join(name).exists());
}
