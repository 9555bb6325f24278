//! `reel status` and `reel retry` on a real spool.

use reel_shared::manifest::{EntryType, Header, Record};
use reel_shared::spool::{Queue, Spool};

use crate::support::Env;

fn publish(spool: &Spool, queue: Queue, id: &str, sizes: &[u64]) {
    let header = Header::new(queue.kind().unwrap(), "home", id);
    let mut p = spool.begin(queue, &header).unwrap();
    for (i, size) in sizes.iter().enumerate() {
        let mut r = Record::new(format!("f{i}"), EntryType::File);
        r.size = *size;
        p.write(&r).unwrap();
    }
    p.commit().unwrap();
}

#[test]
fn status_counts_items_records_and_bytes_and_lists_failures() {
    let env = Env::new();
    let spool = Spool::open(&env.path("var/spool")).unwrap();
    publish(
        &spool,
        Queue::Scanned,
        "home-20261123T101500-0001",
        &[10, 20],
    );
    publish(&spool, Queue::Scanned, "home-20261123T101500-0002", &[5]);
    publish(&spool, Queue::Staged, "home-20261123T101500-0003", &[1000]);
    spool
        .claim(Queue::Staged)
        .unwrap()
        .unwrap()
        .fail("cache copy does not match its digest", "reel-pack")
        .unwrap();

    let run = env.run("reel", &["status", "--json"]);
    run.expect(0);
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{}", run.report()));
    let scanned = &doc["queues"][0];
    assert_eq!(scanned["queue"], "scanned");
    assert_eq!(scanned["items"], 2);
    assert_eq!(scanned["records"], 3);
    assert_eq!(scanned["bytes"], 35);
    assert_eq!(doc["queues"][1]["items"], 0, "the staged item failed");
    assert_eq!(doc["failed"][0]["id"], "home-20261123T101500-0003");
    assert_eq!(doc["failed"][0]["queue"], "staged");
    assert_eq!(
        doc["failed"][0]["error"],
        "cache copy does not match its digest"
    );

    let run = env.run("reel", &["status"]);
    run.expect(0);
    assert!(
        run.stdout.contains(
            "failed home-20261123T101500-0003 (from staged): cache copy does not match its digest"
        ),
        "{}",
        run.report()
    );

    env.run("reel", &["retry", "home-20261123T101500-0003"])
        .expect(0);
    assert_eq!(
        spool.list(Queue::Staged).unwrap(),
        ["home-20261123T101500-0003"]
    );
    assert!(spool.failed().unwrap().is_empty());

    let run = env.run("reel", &["retry", "home-20261123T101500-0003"]);
    run.expect(66);
    assert!(
        run.stderr.contains("no item \"home-20261123T101500-0003\""),
        "{}",
        run.report()
    );
}

#[test]
fn a_corrupt_item_does_not_break_status() {
    let env = Env::new();
    let spool = Spool::open(&env.path("var/spool")).unwrap();
    std::fs::write(
        spool.item_path(Queue::Packed, "home-20261123T101500-0001"),
        "{oops\n",
    )
    .unwrap();
    let run = env.run("reel", &["status", "--json"]);
    run.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["queues"][2]["unreadable"], 1, "{}", run.report());
    assert!(
        run.stderr.contains("home-20261123T101500-0001.jsonl:1:"),
        "{}",
        run.report()
    );
}
