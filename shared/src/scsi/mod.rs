//! What reel says to SCSI devices itself, beside the st driver: the SG_IO
//! pass-through ([`sg_io`]) and the TapeAlert flags drives report
//! ([`tapealert`]). The st backend uses them to read a drive's health
//! through its own `/dev/nstN` descriptor (st hands SG_IO to the SCSI
//! layer).

pub mod encryption;
pub mod mam;
pub mod sense;
pub mod sg_io;
pub mod tapealert;

/// An ASCII field of a SCSI answer (a volume tag, a serial): its text
/// without the spaces or NULs that pad it; `None` when nothing is left.
pub fn ascii_field(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}
