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
pub mod volume;

/// An ASCII field of a SCSI answer (a volume tag, a serial): its text
/// without the spaces or NULs that pad it; `None` when nothing is left.
pub fn ascii_field(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}

/// One log parameter: its code and its value.
pub type LogParameter<'a> = (u16, &'a [u8]);

/// The page code and parameters (code, value) of a LOG SENSE answer:
/// a 4-byte header, then parameters of a 4-byte header (code, control
/// byte, length) and a value. `None` when the page is cut short.
pub fn log_parameters(page: &[u8]) -> Option<(u8, Vec<LogParameter<'_>>)> {
    let code = page.first()? & 0x3f;
    let len = usize::from(u16::from_be_bytes([*page.get(2)?, *page.get(3)?]));
    let body = page.get(4..4 + len)?;
    let mut params = Vec::new();
    let mut at = 0;
    while at + 4 <= body.len() {
        let n = usize::from(body[at + 3]);
        let value = body.get(at + 4..at + 4 + n)?;
        params.push((u16::from_be_bytes([body[at], body[at + 1]]), value));
        at += 4 + n;
    }
    Some((code, params))
}
