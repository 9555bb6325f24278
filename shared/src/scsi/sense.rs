//! Sense data as a device returns it with CHECK CONDITION (SPC-4 §4.5),
//! decoded whole: sense key, ASC/ASCQ, the INFORMATION field (for a tape
//! drive a residue: bytes or blocks not transferred, negative for a block
//! longer than asked) and the stream bits FILEMARK, EOM and ILI, from
//! fixed-format (0x70, 0x71) and descriptor-format (0x72, 0x73) sense.

use std::fmt;

/// Sense keys (SPC-4 table 48) that reel acts on.
pub mod key {
    pub const NO_SENSE: u8 = 0x0;
    pub const RECOVERED_ERROR: u8 = 0x1;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const HARDWARE_ERROR: u8 = 0x4;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const UNIT_ATTENTION: u8 = 0x6;
    pub const DATA_PROTECT: u8 = 0x7;
    pub const BLANK_CHECK: u8 = 0x8;
    pub const ABORTED_COMMAND: u8 = 0xb;
    pub const VOLUME_OVERFLOW: u8 = 0xd;
}

/// One decoded sense record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
    /// The INFORMATION field when the device marked it valid.
    pub info: Option<i64>,
    pub filemark: bool,
    /// End of medium: past the early warning writing, at BOT spacing back.
    pub eom: bool,
    /// Incorrect length: the block read was not as long as asked.
    pub ili: bool,
    /// A deferred error: it belongs to an earlier command (a buffered
    /// write that failed after it was reported done).
    pub deferred: bool,
}

impl Sense {
    /// Decode fixed or descriptor format; `None` for anything else or a
    /// record too short to hold a sense key.
    pub fn parse(b: &[u8]) -> Option<Sense> {
        let code = b.first()? & 0x7f;
        match code {
            0x70 | 0x71 => {
                let flags = *b.get(2)?;
                let info = (b[0] & 0x80 != 0)
                    .then(|| b.get(3..7))
                    .flatten()
                    .map(|i| i64::from(i32::from_be_bytes([i[0], i[1], i[2], i[3]])));
                Some(Sense {
                    key: flags & 0x0f,
                    asc: b.get(12).copied().unwrap_or(0),
                    ascq: b.get(13).copied().unwrap_or(0),
                    info,
                    filemark: flags & 0x80 != 0,
                    eom: flags & 0x40 != 0,
                    ili: flags & 0x20 != 0,
                    deferred: code == 0x71,
                })
            }
            0x72 | 0x73 => {
                let mut s = Sense {
                    key: b.get(1)? & 0x0f,
                    asc: b.get(2).copied().unwrap_or(0),
                    ascq: b.get(3).copied().unwrap_or(0),
                    deferred: code == 0x73,
                    ..Sense::default()
                };
                let end = (8 + usize::from(b.get(7).copied().unwrap_or(0))).min(b.len());
                let mut at = 8;
                while at + 2 <= end {
                    let (kind, len) = (b[at], usize::from(b[at + 1]));
                    let Some(d) = b.get(at + 2..at + 2 + len).filter(|_| at + 2 + len <= end)
                    else {
                        break;
                    };
                    match kind {
                        // Information: VALID bit, then 8 bytes.
                        0x00 if len >= 10 && d[0] & 0x80 != 0 => {
                            let mut v = [0u8; 8];
                            v.copy_from_slice(&d[2..10]);
                            s.info = Some(i64::from_be_bytes(v));
                        }
                        // Stream commands: FILEMARK, EOM, ILI.
                        0x04 if len >= 2 => {
                            s.filemark = d[1] & 0x80 != 0;
                            s.eom = d[1] & 0x40 != 0;
                            s.ili = d[1] & 0x20 != 0;
                        }
                        _ => {}
                    }
                    at += 2 + len;
                }
                Some(s)
            }
            _ => None,
        }
    }

    /// Whether the drive is not ready yet but will be (becoming ready,
    /// initializing, the library inventorying): worth waiting for.
    pub fn becoming_ready(&self) -> bool {
        self.key == key::NOT_READY
            && self.asc == 0x04
            && matches!(self.ascq, 0x00 | 0x01 | 0x07 | 0x08 | 0x11 | 0x12 | 0x13)
    }

    /// Whether no medium is present (NOT READY, 0x3A).
    pub fn no_medium(&self) -> bool {
        self.key == key::NOT_READY && self.asc == 0x3a
    }

    /// Whether the device does not know the command (invalid operation
    /// code) or a field of it (a service action it lacks).
    pub fn unsupported(&self) -> bool {
        self.key == key::ILLEGAL_REQUEST && matches!(self.asc, 0x20 | 0x24)
    }

    /// What the ASC/ASCQ pair means, for the ones a tape drive gives most.
    pub fn meaning(&self) -> Option<&'static str> {
        Some(match (self.asc, self.ascq) {
            (0x00, 0x01) => "filemark detected",
            (0x00, 0x02) => "end of partition/medium detected (early warning)",
            (0x00, 0x04) => "beginning of partition/medium detected",
            (0x00, 0x05) => "end of data detected",
            (0x04, 0x00) => "not ready, cause not reportable",
            (0x04, 0x01) => "becoming ready",
            (0x04, 0x07) | (0x04, 0x13) => "operation in progress",
            (0x0c, 0x00) => "write error",
            (0x11, 0x00) => "unrecovered read error",
            (0x14, 0x03) => "end of data not found",
            (0x1a, 0x00) => "parameter list length error",
            (0x20, 0x00) => "invalid command operation code",
            (0x24, 0x00) => "invalid field in CDB",
            (0x26, 0x00) => "invalid field in parameter list",
            (0x27, 0x00) => "write protected",
            (0x28, 0x00) => "not ready to ready change, medium may have changed",
            (0x29, _) => "power on, reset, or bus device reset occurred",
            (0x30, 0x00) => "incompatible medium installed",
            (0x3a, _) => "medium not present",
            (0x3b, 0x0e) => "medium source element empty",
            (0x3b, 0x0d) => "medium destination element full",
            (0x53, 0x00) => "media load or eject failed",
            (0x74, 0x01) => "unable to decrypt data",
            (0x74, 0x02) => "unencrypted data encountered while decrypting",
            (0x74, 0x03) => "incorrect data encryption key",
            _ => return None,
        })
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sense key {:#x}, ASC/ASCQ {:02x}/{:02x}",
            self.key, self.asc, self.ascq
        )?;
        if let Some(m) = self.meaning() {
            write!(f, " ({m})")?;
        }
        for (on, bit) in [
            (self.filemark, "FM"),
            (self.eom, "EOM"),
            (self.ili, "ILI"),
            (self.deferred, "deferred"),
        ] {
            if on {
                write!(f, " {bit}")?;
            }
        }
        if let Some(i) = self.info {
            write!(f, ", information {i}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_block_read_in_fixed_format() {
        // An IBM LTO drive's answer to READ(6) of 262144 bytes that met a
        // block of 65536: NO SENSE, ILI, VALID, information 196608.
        let s = [
            0xf0, 0x00, 0x20, 0x00, 0x03, 0x00, 0x00, 0x0a, 0, 0, 0, 0, 0x00, 0x00, 0, 0, 0, 0,
        ];
        let s = Sense::parse(&s).unwrap();
        assert_eq!((s.key, s.asc, s.ascq), (key::NO_SENSE, 0, 0));
        assert!(s.ili && !s.filemark && !s.eom && !s.deferred);
        assert_eq!(s.info, Some(196_608));
    }

    #[test]
    fn a_block_longer_than_asked_has_a_negative_residue() {
        // READ(6) of 65536 bytes over a block of 262144: residue -196608.
        let r = (-196_608i32).to_be_bytes();
        let s = [
            0xf0, 0, 0x20, r[0], r[1], r[2], r[3], 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(Sense::parse(&s).unwrap().info, Some(-196_608));
    }

    #[test]
    fn a_filemark_and_the_end_of_data() {
        let fm = [
            0xf0, 0, 0x80, 0, 0, 0, 1, 0x0a, 0, 0, 0, 0, 0x00, 0x01, 0, 0, 0, 0,
        ];
        let fm = Sense::parse(&fm).unwrap();
        assert!(fm.filemark);
        assert_eq!(fm.meaning(), Some("filemark detected"));
        let eod = [
            0xf0, 0, 0x08, 0, 0, 0, 1, 0x0a, 0, 0, 0, 0, 0x00, 0x05, 0, 0, 0, 0,
        ];
        let eod = Sense::parse(&eod).unwrap();
        assert_eq!((eod.key, eod.asc, eod.ascq), (key::BLANK_CHECK, 0, 5));
        assert!(!eod.filemark);
    }

    #[test]
    fn the_early_warning_and_a_volume_overflow() {
        // A write past the early warning: NO SENSE, EOM, 00/02, written.
        let ew = [
            0x70, 0, 0x40, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x00, 0x02, 0, 0, 0, 0,
        ];
        let ew = Sense::parse(&ew).unwrap();
        assert!(ew.eom && ew.key == key::NO_SENSE && ew.info.is_none());
        // At the physical end: VOLUME OVERFLOW, EOM, nothing written.
        let full = [
            0xf0, 0, 0x4d, 0, 4, 0, 0, 0x0a, 0, 0, 0, 0, 0x00, 0x02, 0, 0, 0, 0,
        ];
        let full = Sense::parse(&full).unwrap();
        assert_eq!(full.key, key::VOLUME_OVERFLOW);
        assert_eq!(full.info, Some(0x40000));
    }

    #[test]
    fn descriptor_format_with_information_and_stream_bits() {
        // 0x72, MEDIUM ERROR 11/00; an information descriptor (VALID,
        // 0x1234) and a stream commands descriptor with ILI.
        let s = [
            0x72, 0x03, 0x11, 0x00, 0, 0, 0, 16, // header, 16 more bytes
            0x00, 0x0a, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0x12, 0x34, // information
            0x04, 0x02, 0x00, 0x20, // stream commands: ILI
        ];
        let s = Sense::parse(&s).unwrap();
        assert_eq!((s.key, s.asc, s.ascq), (key::MEDIUM_ERROR, 0x11, 0x00));
        assert_eq!(s.info, Some(0x1234));
        assert!(s.ili && !s.eom && !s.filemark);
        assert_eq!(
            s.to_string(),
            "sense key 0x3, ASC/ASCQ 11/00 (unrecovered read error) ILI, information 4660"
        );
    }

    #[test]
    fn a_deferred_write_error_and_damaged_records() {
        let d = [
            0x71, 0, 0x03, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x0c, 0x00, 0, 0, 0, 0,
        ];
        assert!(Sense::parse(&d).unwrap().deferred);
        assert_eq!(Sense::parse(&[]), None);
        assert_eq!(Sense::parse(&[0x7f, 0, 0]), None);
        assert_eq!(Sense::parse(&[0x70, 0]), None);
        // A descriptor list whose length runs past the record stops there.
        let cut = [0x72, 0x05, 0x24, 0x00, 0, 0, 0, 200, 0x00, 0x0a, 0x80];
        assert!(Sense::parse(&cut).unwrap().info.is_none());
    }

    #[test]
    fn a_library_that_inventories_is_becoming_ready() {
        let s = [
            0x70, 0, 0x02, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x04, 0x01, 0, 0, 0, 0,
        ];
        assert!(Sense::parse(&s).unwrap().becoming_ready());
        let s = [
            0x70, 0, 0x02, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x3a, 0x00, 0, 0, 0, 0,
        ];
        let s = Sense::parse(&s).unwrap();
        assert!(s.no_medium() && !s.becoming_ready());
    }
}
