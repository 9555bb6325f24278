//! What reel says to SCSI devices itself, beside the st driver: the SG_IO
//! pass-through ([`sg_io`]) and the TapeAlert flags drives report
//! ([`tapealert`]). The st backend uses them to read a drive's health
//! through its own `/dev/nstN` descriptor (st hands SG_IO to the SCSI
//! layer).

pub mod mam;
pub mod sg_io;
pub mod tapealert;
