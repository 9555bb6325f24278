//! Tape labels: file 0 of every reel tape (docs/tape-format.md §3).
//!
//! The label is a plain tar archive holding `REEL-LABEL.json` (format
//! `reel-label/1`: label, tape uuid, pool, block size, creation time) first
//! and `REEL-README.txt` (what this tape is and how to read it with `mt` and
//! `tar` alone), padded to one whole block and closed by a filemark. Because
//! `REEL-LABEL.json` comes first, its first block identifies a tape.
//!
//! Labelling refuses a tape that holds anything unless forced; appending
//! refuses a tape whose label or end of data is not what the caller expects
//! (invariant 6).

use std::io::Read as _;

use serde::{Deserialize, Serialize};

use super::stream::{BlockWriter, MAX_BLOCK};
use super::{Drive, Read, TapeError};

pub const LABEL_FORMAT: &str = "reel-label/1";
const LABEL_MEMBER: &str = "REEL-LABEL.json";
const README_MEMBER: &str = "REEL-README.txt";

/// `REEL-LABEL.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub format: String,
    /// The label, normally the barcode (`T00001L9`).
    pub label: String,
    /// Unique per labelling: two tapes with the same label differ here.
    pub uuid: String,
    pub pool: String,
    /// Bytes per block of every file on the tape.
    pub block_size: u32,
    /// RFC 3339 UTC.
    pub created: String,
    pub reel_version: String,
    /// The fingerprint of the drive key every archive on the tape is
    /// encrypted with (the drive's AES-256-GCM); the label itself is in
    /// the clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive_key: Option<String>,
}

impl Label {
    pub fn new(label: &str, pool: &str, block_size: u32) -> Result<Label, TapeError> {
        check_label(label)?;
        Ok(Label {
            format: LABEL_FORMAT.into(),
            label: label.into(),
            uuid: new_uuid(),
            pool: pool.into(),
            block_size,
            created: crate::time::Utc::now().rfc3339(),
            reel_version: env!("CARGO_PKG_VERSION").into(),
            drive_key: None,
        })
    }
}

/// Labels are what barcode readers and mtx print: 1 to 32 printable ASCII
/// characters without spaces.
pub fn check_label(label: &str) -> Result<(), TapeError> {
    // The catalog names files after labels (`tapes/<LABEL>.json`): no
    // path separators, and not `.`, `..` or a hidden name.
    if label.is_empty()
        || label.len() > 32
        || label.starts_with('.')
        || !label
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
    {
        return Err(TapeError::Invalid(format!(
            "label {label:?}: use 1 to 32 letters, digits or punctuation (no '/', '\\', nor a '.' first), like T00001L9"
        )));
    }
    Ok(())
}

/// What file 0 says about a tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Nothing written.
    Blank,
    Reel(Label),
    /// Something else: another program's tape. Says what was found.
    Foreign(String),
    /// File 0 could not be read.
    Unreadable(String),
}

/// A random version-4 UUID from the kernel's generator.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    if let Err(e) = crate::fsutil::random_bytes(&mut b) {
        // Not one system reel runs on lacks getrandom (Linux 3.17+).
        panic!("the kernel's random generator: {e}");
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

fn readme(label: &Label) -> String {
    format!(
        "This is reel tape {label} (pool {pool}, uuid {uuid}), labelled {created}.\n\
         \n\
         Every file on this tape is a plain POSIX tar archive written in blocks of\n\
         {bs} bytes, separated by filemarks. File 0 (this one) is the label. Files 1\n\
         and on are archives; each starts with REEL-ARCHIVE.txt and ends with\n\
         REEL-INDEX.jsonl, which lists every member with its SHA-256.\n\
         \n\
         To read archive N with standard tools (N = 1, 2, ...):\n\
         \n\
         \x20   mt -f /dev/nst0 rewind\n\
         \x20   mt -f /dev/nst0 fsf N\n\
         \x20   tar -b {blocks} -tvf /dev/nst0      # list; -xvf to extract\n\
         \n\
         Check a restored file against the index: sha256sum FILE\n\
         \n\
         An archive may be SEALED with age (age-encryption.org) instead: its tape\n\
         file then begins with the line \"age-encryption.org/v1\", and the next line\n\
         says for whom it is sealed. Read it with the identity file of one of them:\n\
         \n\
         \x20   dd if=/dev/nst0 bs={bs} | age -d -i IDENTITY-FILE | tar -xvf -\n\
         \n\
         (When that next line begins \"-> scrypt\", it is sealed with a passphrase:\n\
         leave out -i IDENTITY-FILE and age asks for it.)\n{encrypted}",
        encrypted = match &label.drive_key {
            Some(fp) => format!(
                "\n\
                 Files 1 and on are ENCRYPTED by the tape drive (AES-256-GCM) with the\n\
                 key whose fingerprint is {fp} (the first 8 bytes of the key's\n\
                 SHA-256; the drive also keeps it with every block as its uKAD). Set\n\
                 that key before reading them, for example from its stenc key file:\n\
                 \n\
                 \x20   stenc -f /dev/nst0 -e mixed -k KEYFILE -a 1\n"
            ),
            None => String::new(),
        },
        label = label.label,
        pool = label.pool,
        uuid = label.uuid,
        created = label.created,
        bs = label.block_size,
        blocks = (label.block_size / 512).max(1),
    )
}

/// The label file as tar bytes: the label and the text that explains the
/// tape, as reel's own text members.
fn label_tar(label: &Label) -> Vec<u8> {
    let json = serde_json::to_vec_pretty(label).expect("label serializes");
    let text = readme(label);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 * 1_000_000_000);
    crate::archive::small_tar(
        &[
            (LABEL_MEMBER, json.as_slice()),
            (README_MEMBER, text.as_bytes()),
        ],
        now_ns,
    )
}

/// Rewind and write `label` as file 0. Everything on the tape is lost.
pub fn write_label(drive: &mut dyn Drive, label: &Label) -> Result<(), TapeError> {
    let bytes = label_tar(label);
    drive.rewind()?;
    let mut w = BlockWriter::new(drive, label.block_size as usize);
    std::io::Write::write_all(&mut w, &bytes).map_err(|e| TapeError::io("writing the label", e))?;
    w.finish()?;
    Ok(())
}

/// Rewind and read file 0 to its end: the position after its filemark, or
/// `None` when the end of data comes first — the label's filemark never
/// got written (a run stopped between the two).
pub fn end_of_label(drive: &mut dyn Drive) -> Result<Option<u64>, TapeError> {
    drive.rewind()?;
    let mut buf = vec![0; MAX_BLOCK];
    loop {
        match drive.read_block(&mut buf)? {
            Read::Data(_) => {}
            Read::Filemark => return Ok(Some(drive.position()?)),
            Read::EndOfData => return Ok(None),
        }
    }
}

/// Rewind and read file 0's first block. Leaves the tape positioned
/// somewhere in file 0.
pub fn read_label(drive: &mut dyn Drive) -> Result<Identity, TapeError> {
    drive.rewind()?;
    let mut buf = vec![0; MAX_BLOCK];
    let n = match drive.read_block(&mut buf) {
        Ok(Read::Data(n)) => n,
        Ok(Read::EndOfData) => return Ok(Identity::Blank),
        Ok(Read::Filemark) => return Ok(Identity::Foreign("file 0 is empty".into())),
        Err(TapeError::BlockTooLarge { buffer }) => {
            return Ok(Identity::Foreign(format!(
                "file 0 has blocks larger than {buffer} bytes"
            )));
        }
        Err(e @ TapeError::Io { .. }) => {
            // st answers a read of a blank tape with a plain EIO, as it
            // does for a bad block: a blank tape has its end of data at 0.
            let blank = drive.end_of_data().is_ok() && drive.position().ok() == Some(0);
            return Ok(if blank {
                Identity::Blank
            } else {
                Identity::Unreadable(e.to_string())
            });
        }
        Err(e) => return Err(e),
    };
    Ok(parse_label_block(&buf[..n]))
}

fn parse_label_block(block: &[u8]) -> Identity {
    let mut archive = tar::Archive::new(block);
    let first = archive.entries().ok().and_then(|mut e| e.next());
    let Some(Ok(mut entry)) = first else {
        // A damaged label is not another program's tape. (The kernel's
        // scsi_debug tape keeps only the first 4 bytes of every block.)
        if block.starts_with(&LABEL_MEMBER.as_bytes()[..4]) {
            return Identity::Unreadable(format!(
                "file 0 starts like a reel label ({LABEL_MEMBER}) but its first block does not \
                 read back as one: the block is damaged, or the drive did not keep it whole"
            ));
        }
        return Identity::Foreign("file 0 is not a tar archive".into());
    };
    let name = entry
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if name != LABEL_MEMBER {
        return Identity::Foreign(format!(
            "file 0 is a tar archive starting with {name:?}, not a reel label"
        ));
    }
    let mut json = Vec::new();
    if let Err(e) = entry.read_to_end(&mut json) {
        return Identity::Unreadable(format!("{LABEL_MEMBER}: {e}"));
    }
    match serde_json::from_slice::<Label>(&json) {
        // A label is also a file name in the catalog: a forged one must
        // not name a path.
        Ok(label) if label.format == LABEL_FORMAT => match check_label(&label.label) {
            Ok(()) => Identity::Reel(label),
            Err(e) => Identity::Unreadable(format!("{e}: not a label reel writes")),
        },
        Ok(label) => Identity::Unreadable(format!(
            "label format {:?} is not {LABEL_FORMAT:?}",
            label.format
        )),
        Err(e) => Identity::Unreadable(format!("{LABEL_MEMBER}: {e}")),
    }
}

/// Label a tape: refuses a tape that holds anything unless `force`.
pub fn label_tape(
    drive: &mut dyn Drive,
    label: &Label,
    force: bool,
) -> Result<Identity, TapeError> {
    let before = read_label(drive)?;
    if !force {
        let what = match &before {
            Identity::Blank => None,
            Identity::Reel(l) => Some(format!(
                "it is already reel tape {} (pool {}, labelled {})",
                l.label, l.pool, l.created
            )),
            Identity::Foreign(what) => Some(format!("it holds data: {what}")),
            Identity::Unreadable(why) => Some(format!("its label cannot be read: {why}")),
        };
        if let Some(what) = what {
            return Err(TapeError::Invalid(format!(
                "refusing to label this tape: {what}; --force relabels it and loses everything on it"
            )));
        }
    }
    write_label(drive, label)?;
    Ok(before)
}

/// Check a tape before appending to it (invariant 6): its label must be
/// `expected`, and its end of data must be at `expected_eod` when the
/// catalog knows it. Leaves the tape at the end of data.
pub fn check_append(
    drive: &mut dyn Drive,
    expected: &str,
    expected_eod: Option<u64>,
) -> Result<Label, TapeError> {
    let label = match read_label(drive)? {
        Identity::Reel(l) if l.label == expected => l,
        Identity::Reel(l) => {
            return Err(TapeError::Invalid(format!(
                "wrong tape: expected {expected}, the drive holds {}",
                l.label
            )));
        }
        Identity::Blank => {
            return Err(TapeError::Invalid(format!(
                "wrong tape: expected {expected}, the tape is blank"
            )));
        }
        Identity::Foreign(what) => {
            return Err(TapeError::Invalid(format!(
                "wrong tape: expected {expected}; {what}"
            )));
        }
        Identity::Unreadable(why) => {
            return Err(TapeError::Invalid(format!(
                "cannot tell which tape this is: {why}"
            )));
        }
    };
    drive.end_of_data()?;
    let eod = drive.position()?;
    if let Some(want) = expected_eod
        && eod != want
    {
        return Err(TapeError::Invalid(format!(
            "tape {expected} ends at block {eod}, the catalog says {want}: refusing to append \
             (something wrote to this tape behind reel's back, or the catalog is stale)"
        )));
    }
    Ok(label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtl::{LibrarySpec, open_drive};

    #[test]
    fn end_of_label_finds_the_filemark_or_its_absence() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        let label = Label::new("T00001L9", "default", 4096).unwrap();
        {
            let mut d = open_drive(&lib, 0, &LibrarySpec::default()).unwrap();
            write_label(&mut d, &label).unwrap();
            assert_eq!(end_of_label(&mut d).unwrap(), Some(2));
        }
        // The label block alone, as a run killed before its filemark
        // leaves it: written straight into the tape's image.
        let mut image = crate::vtl::Image::open(&lib.join("tapes/V00001L9")).unwrap();
        image.truncate_at(0, 0).unwrap();
        let mut block = label_tar(&label);
        block.resize(4096, 0);
        image.append_block(0, &block).unwrap();
        image.save().unwrap();
        drop(image);
        let mut d = open_drive(&lib, 0, &LibrarySpec::default()).unwrap();
        assert!(matches!(read_label(&mut d).unwrap(), Identity::Reel(_)));
        assert_eq!(end_of_label(&mut d).unwrap(), None);
    }

    #[test]
    fn label_round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = open_drive(&dir.path().join("lib"), 0, &LibrarySpec::default()).unwrap();
        assert_eq!(read_label(&mut d).unwrap(), Identity::Blank);
        let label = Label::new("T00001L9", "default", 256 * 1024).unwrap();
        assert_eq!(label_tape(&mut d, &label, false).unwrap(), Identity::Blank);
        assert_eq!(d.position().unwrap(), 2, "one block and a filemark");
        assert_eq!(read_label(&mut d).unwrap(), Identity::Reel(label.clone()));
        let other = Label::new("T00002L9", "default", 256 * 1024).unwrap();
        let e = label_tape(&mut d, &other, false).unwrap_err().to_string();
        assert!(e.contains("already reel tape T00001L9"), "{e}");
        assert_eq!(
            label_tape(&mut d, &other, true).unwrap(),
            Identity::Reel(label)
        );
        assert_eq!(check_append(&mut d, "T00002L9", Some(2)).unwrap(), other);
        let e = check_append(&mut d, "T00001L9", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("wrong tape: expected T00001L9, the drive holds T00002L9"),
            "{e}"
        );
        d.end_of_data().unwrap();
        d.write_block(&[1; 1000]).unwrap();
        let e = check_append(&mut d, "T00002L9", Some(2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends at block 3, the catalog says 2"), "{e}");
    }

    #[test]
    fn foreign_tapes_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = open_drive(&dir.path().join("lib"), 0, &LibrarySpec::default()).unwrap();
        d.write_block(&[7; 4096]).unwrap();
        assert!(matches!(read_label(&mut d).unwrap(), Identity::Foreign(_)));
        let label = Label::new("T1", "p", 65536).unwrap();
        assert!(label_tape(&mut d, &label, false).is_err());
    }

    #[test]
    fn a_label_that_cannot_be_read_is_unreadable_not_blank() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = open_drive(&dir.path().join("lib"), 0, &LibrarySpec::default()).unwrap();
        label_tape(&mut d, &Label::new("T1", "p", 65536).unwrap(), false).unwrap();
        d.image_mut().unwrap().meta.faults.read_errors = vec![0];
        assert!(matches!(
            read_label(&mut d).unwrap(),
            Identity::Unreadable(_)
        ));
        assert!(label_tape(&mut d, &Label::new("T2", "p", 65536).unwrap(), false).is_err());
    }

    #[test]
    fn a_label_block_cut_short_is_unreadable_not_foreign() {
        // What the kernel's scsi_debug tape returns for a label block: its
        // first 4 bytes, zeros after them.
        let label = Label::new("T1", "p", 4096).unwrap();
        let mut block = label_tar(&label);
        block.resize(4096, 0);
        assert_eq!(parse_label_block(&block), Identity::Reel(label));
        block[4..].fill(0);
        let Identity::Unreadable(why) = parse_label_block(&block) else {
            panic!("{:?}", parse_label_block(&block));
        };
        assert!(why.contains("starts like a reel label"), "{why}");
        block[..4].copy_from_slice(b"\x7fELF");
        assert!(matches!(parse_label_block(&block), Identity::Foreign(_)));
    }

    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (new_uuid(), new_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
