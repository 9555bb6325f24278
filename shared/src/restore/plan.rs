//! The plan of a restore: the members to read grouped by tape, each tape's
//! in tape order; and what `--dry-run` prints of it.

use std::collections::BTreeMap;

use crate::catalog::Entry;
use crate::exit::Exit;
use crate::manifest::{EntryType, Record};
use crate::units::Size;

/// The members a restore reads.
pub(super) struct Plan<'a> {
    /// Tape → its members in tape order.
    pub(super) tapes: BTreeMap<String, Vec<&'a Entry>>,
}

/// Group the members found by tape, in tape order (file, block, offset).
pub(super) fn plan(found: &[Entry]) -> Plan<'_> {
    let mut tapes: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in found {
        if let Some(t) = &e.record.tape {
            tapes.entry(t.clone()).or_default().push(e);
        }
    }
    for list in tapes.values_mut() {
        list.sort_by_key(|e| (e.record.file, e.record.block, e.record.data_offset));
    }
    Plan { tapes }
}

/// What `--dry-run` prints: tapes, positions, bytes.
pub(super) fn dry_run(plan: &Plan, members: usize) -> anyhow::Result<Exit> {
    let mut total = 0u64;
    for (tape, list) in &plan.tapes {
        let bytes: u64 = list.iter().map(|e| data_bytes(&e.record)).sum();
        total += bytes;
        crate::outln!(
            "tape {tape}: {} member(s), {}",
            list.len(),
            Size(bytes).human()
        )?;
        for e in list {
            let r = &e.record;
            crate::outln!(
                "    file {} block {}  {}  {}",
                r.file.unwrap_or(0),
                r.block.unwrap_or(0),
                Size(data_bytes(r)).human(),
                r.path.display()
            )?;
        }
    }
    crate::outln!(
        "{} tape(s), {members} member(s), {} to read",
        plan.tapes.len(),
        Size(total).human()
    )?;
    Ok(Exit::Ok)
}

/// The bytes a member has on tape: a file's size, nothing for the rest.
fn data_bytes(r: &Record) -> u64 {
    if r.entry == EntryType::File {
        r.size
    } else {
        0
    }
}
