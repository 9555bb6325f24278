//! `reel status`: the queues and the failed items.
//!
//! For each queue: how many items wait and the bytes their records describe
//! (summed by streaming each manifest; nothing is loaded whole).

use std::io::Write;

use anyhow::Context;
use reel_shared::exit::Exit;
use reel_shared::manifest::ManifestReader;
use reel_shared::spool::{Queue, Spool};
use reel_shared::units::Size;
use serde_json::json;

struct QueueStatus {
    queue: Queue,
    items: usize,
    records: u64,
    bytes: u64,
    unreadable: usize,
}

fn queue_status(spool: &Spool, queue: Queue) -> anyhow::Result<QueueStatus> {
    let mut s = QueueStatus {
        queue,
        items: 0,
        records: 0,
        bytes: 0,
        unreadable: 0,
    };
    for id in spool.list(queue)? {
        s.items += 1;
        let path = spool.item_path(queue, &id);
        let counted = ManifestReader::open(&path).and_then(|(_, mut reader)| {
            let (mut records, mut bytes) = (0, 0);
            for r in reader.records() {
                let r = r?;
                records += 1;
                bytes += r.size;
            }
            Ok((records, bytes))
        });
        match counted {
            Ok((records, bytes)) => {
                s.records += records;
                s.bytes += bytes;
            }
            Err(e) => {
                // A corrupt item is the stage's to fail; status only says so.
                log::warn!("{e}");
                s.unreadable += 1;
            }
        }
    }
    Ok(s)
}

pub fn show(spool: &Spool, as_json: bool) -> anyhow::Result<Exit> {
    let queues = Queue::ALL
        .into_iter()
        .map(|q| queue_status(spool, q))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let failed = spool.failed()?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let doc = json!({
            "spool": spool.root(),
            "queues": queues.iter().map(|q| json!({
                "queue": q.queue.as_str(), "items": q.items, "records": q.records,
                "bytes": q.bytes, "unreadable": q.unreadable,
            })).collect::<Vec<_>>(),
            "failed": failed.iter().map(|f| json!({
                "id": f.id, "error": f.error, "queue": f.queue.map(|q| q.as_str()),
                "stage": f.stage, "time": f.time,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{doc}").context("writing to stdout")?;
        return Ok(Exit::Ok);
    }
    writeln!(out, "spool {}", spool.root().display())?;
    writeln!(
        out,
        "{:<10} {:>7} {:>10} {:>12}",
        "queue", "items", "records", "bytes"
    )?;
    for q in &queues {
        let bad = if q.unreadable > 0 {
            format!("  ({} unreadable)", q.unreadable)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:<10} {:>7} {:>10} {:>12}{bad}",
            q.queue.as_str(),
            q.items,
            q.records,
            Size(q.bytes).human()
        )?;
    }
    for f in &failed {
        let from = f.queue.map(|q| format!(" (from {q})")).unwrap_or_default();
        writeln!(out, "failed {}{from}: {}", f.id, f.error)?;
    }
    if !failed.is_empty() {
        writeln!(
            out,
            "`reel retry ID` puts a failed item back once its cause is fixed"
        )?;
    }
    Ok(Exit::Ok)
}
