//! SCSI status and fixed-format sense data (SPC-4 §4.5.3), as a tape drive
//! returns them: a sense key with ASC/ASCQ, the INFORMATION field (a
//! residue: bytes or blocks not transferred) and the FILEMARK, EOM and ILI
//! bits.

/// The sense keys a tape drive uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Key {
    NoSense = 0x0,
    NotReady = 0x2,
    MediumError = 0x3,
    HardwareError = 0x4,
    IllegalRequest = 0x5,
    UnitAttention = 0x6,
    DataProtect = 0x7,
    BlankCheck = 0x8,
    VolumeOverflow = 0xd,
}

/// One fixed-format sense record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    pub key: Key,
    pub asc: u8,
    pub ascq: u8,
    /// The INFORMATION field (sets VALID); negative residues are two's
    /// complement, as for a block longer than the transfer length.
    pub info: Option<i32>,
    pub filemark: bool,
    pub eom: bool,
    pub ili: bool,
}

/// Fixed-format sense is this long (additional length 10).
pub const SENSE_LEN: usize = 18;

impl Sense {
    pub fn new(key: Key, asc: u8, ascq: u8) -> Sense {
        Sense {
            key,
            asc,
            ascq,
            info: None,
            filemark: false,
            eom: false,
            ili: false,
        }
    }

    /// ILLEGAL REQUEST, INVALID FIELD IN CDB.
    pub fn invalid_field() -> Sense {
        Sense::new(Key::IllegalRequest, 0x24, 0x00)
    }

    /// ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
    pub fn invalid_opcode() -> Sense {
        Sense::new(Key::IllegalRequest, 0x20, 0x00)
    }

    pub fn info(mut self, residue: i64) -> Sense {
        self.info = Some(residue as i32);
        self
    }

    pub fn filemark(mut self) -> Sense {
        self.filemark = true;
        self
    }

    pub fn eom(mut self) -> Sense {
        self.eom = true;
        self
    }

    pub fn ili(mut self) -> Sense {
        self.ili = true;
        self
    }

    pub fn bytes(&self) -> [u8; SENSE_LEN] {
        let mut s = [0u8; SENSE_LEN];
        s[0] = 0x70 | if self.info.is_some() { 0x80 } else { 0 };
        s[2] = self.key as u8
            | if self.filemark { 0x80 } else { 0 }
            | if self.eom { 0x40 } else { 0 }
            | if self.ili { 0x20 } else { 0 };
        s[3..7].copy_from_slice(&self.info.unwrap_or(0).to_be_bytes());
        s[7] = (SENSE_LEN - 8) as u8;
        s[12] = self.asc;
        s[13] = self.ascq;
        s
    }
}

/// How a command ended: GOOD, or CHECK CONDITION with sense; and how many
/// bytes went to the initiator (data-in commands), which may be fewer than
/// its buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub sense: Option<Sense>,
    pub data_in: Option<usize>,
}

impl Reply {
    pub fn good() -> Reply {
        Reply::default()
    }

    pub fn check(sense: Sense) -> Reply {
        Reply {
            sense: Some(sense),
            data_in: None,
        }
    }

    pub fn with_data(mut self, n: usize) -> Reply {
        self.data_in = Some(n);
        self
    }

    /// The SCSI status byte: 0x00 GOOD or 0x02 CHECK CONDITION.
    pub fn status(&self) -> u8 {
        if self.sense.is_some() { 0x02 } else { 0x00 }
    }
}
