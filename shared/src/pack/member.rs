//! What goes into an archive besides the data: a record's tar member (with
//! the staged copy's extended attributes) and `REEL-ARCHIVE.txt`, the text
//! that says how to read the archive by hand.

use std::path::Path;

use crate::archive::{Member, MemberKind};
use crate::manifest::{Header, Record};

use super::path_bytes;

/// Extended attributes of a staged copy, but reel's own (`user.reel.*`).
/// One that cannot be read is reported with the copy, not dropped unsaid.
fn xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    crate::xattrs::all_at(path).unwrap_or_else(|e| {
        log::warn!(
            "{}: cannot read its extended attributes ({e}): archived without them",
            path.display()
        );
        Vec::new()
    })
}

/// The member for a record (the kind decided by the caller for files).
pub(super) fn member(r: &Record, kind: MemberKind) -> Member {
    // A bundled file had none (reel-stage bundles only files without).
    let xattrs = match (&kind, &r.cache) {
        (MemberKind::File { .. } | MemberKind::Dir, Some(c)) if r.cache_offset.is_none() => {
            xattrs(c)
        }
        _ => Vec::new(),
    };
    Member {
        path: path_bytes(&r.path).to_vec(),
        kind,
        mode: r.mode,
        uid: r.uid,
        gid: r.gid,
        user: r.user.clone(),
        group: r.group.clone(),
        mtime_ns: r.mtime_ns,
        xattrs,
        extra: Vec::new(),
    }
}

/// `REEL-ARCHIVE.txt`: what this archive is and how to read it by hand.
pub(super) fn readme(
    header: &Header,
    id: &str,
    members: usize,
    bytes: u64,
    block_size: u64,
) -> String {
    format!(
        "This is a reel archive: a POSIX pax tar file written to tape as one tape file.\n\
         \n\
         archive  {id}\n\
         stream   {stream}\n\
         item     {item}\n\
         members  {members} ({bytes} bytes of file data)\n\
         \n\
         Its last member, REEL-INDEX.jsonl, lists every member with its size,\n\
         SHA-256 and byte offset in the archive.\n\
         \n\
         To restore it with standard tools, with N its tape file number (from\n\
         `reel mt ls` or the catalog; file 0 is the tape label):\n\
         \n\
             mt -f /dev/nst0 rewind\n\
             mt -f /dev/nst0 fsf N\n\
             tar -b {b} -xvf /dev/nst0\n\
         \n\
         and check a file against the index with sha256sum.\n",
        stream = header.stream,
        item = header.id,
        b = (block_size / 512).max(1),
    )
}
