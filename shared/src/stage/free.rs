//! Freeing an item's bundles once nothing needs them: reel-verify after
//! recording an archive, reel-stage after a rerun that staged nothing.

use std::path::Path;

use crate::spool::{Queue, Spool};

/// Remove the bundle directory `named` of stream `stream` (only one of the
/// form `<cache>/staged/.bundles/<stream>/<item>`) and the bundles in it,
/// unless an item other than `except` still waits for them or failed with
/// them (another archive of the same staged item, a member queued again, a
/// copy for another pool; not a copy cut by the early warning).
pub fn free_bundles(
    spool: &Spool,
    stream: &str,
    named: &str,
    staged_root: &Path,
    except: Option<&str>,
) {
    let key = crate::stage::BUNDLES_KEY;
    let dir = Path::new(named);
    let ours = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| crate::spool::check_item_id(n).is_ok())
        .is_some_and(|n| {
            dir == crate::stage::bundle_dir(staged_root, stream, n)
                && crate::fsutil::within(dir, staged_root)
        });
    if !ours {
        log::warn!(
            "not removing {named}: it is not a bundle directory of stream {stream} in {}",
            staged_root.display()
        );
        return;
    }
    let waiting = [Queue::Staged, Queue::Packed, Queue::Written, Queue::Failed]
        .into_iter()
        .any(|q| {
            spool.list(q).unwrap_or_default().iter().any(|other| {
                Some(other.as_str()) != except
                    && crate::manifest::read_header(&spool.item_path(q, other))
                        .ok()
                        .is_some_and(|h| {
                            // A copy cut by the early warning went whole
                            // onto another tape: that copy is the one that
                            // needs them (as in `copy_pending`).
                            h.extra.get("partial").and_then(|v| v.as_bool()) != Some(true)
                                && h.extra.get(key).and_then(|v| v.as_str()) == Some(named)
                        })
            })
        });
    if waiting {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if let Err(err) = std::fs::remove_file(e.path()) {
            log::warn!("cannot remove {}: {err}", e.path().display());
        }
    }
    let _ = std::fs::remove_dir(dir);
}
