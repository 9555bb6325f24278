//! The SSC commands the SG_IO drive sends, as bytes, and the answers it
//! reads back: READ POSITION (long and short form), the MODE SENSE header
//! and block descriptor (10 and 6), READ BLOCK LIMITS.

/// TEST UNIT READY.
pub const TEST_UNIT_READY: [u8; 6] = [0x00, 0, 0, 0, 0, 0];
/// REWIND, waiting for it.
pub const REWIND: [u8; 6] = [0x01, 0, 0, 0, 0, 0];
/// READ BLOCK LIMITS.
pub const READ_BLOCK_LIMITS: [u8; 6] = [0x05, 0, 0, 0, 0, 0];
/// READ POSITION, long form (service action 06h): 32 bytes.
pub const READ_POSITION_LONG: [u8; 10] = [0x34, 0x06, 0, 0, 0, 0, 0, 0, 0, 0];
/// READ POSITION, short form (service action 00h): 20 bytes.
pub const READ_POSITION_SHORT: [u8; 10] = [0x34, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];

fn be24(n: u32) -> [u8; 3] {
    let b = n.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// READ(6) or WRITE(6) of one variable-length block of `len` bytes (at
/// most 2^24 - 1). A read does not suppress ILI, so a short block is told.
pub fn transfer6(op: u8, len: u32) -> [u8; 6] {
    let l = be24(len);
    [op, 0, l[0], l[1], l[2], 0]
}

/// WRITE FILEMARKS(6) of `n` (at most 2^24 - 1): waiting for them and
/// the data before them to reach the tape, or with `immed` not.
pub fn write_filemarks(n: u32, immed: bool) -> [u8; 6] {
    let l = be24(n);
    [0x10, u8::from(immed), l[0], l[1], l[2], 0]
}

/// SPACE(6): `code` 1 is filemarks, 3 the end of data; `count` in 24-bit
/// two's complement (negative: backward).
pub fn space6(code: u8, count: i32) -> [u8; 6] {
    let c = count.to_be_bytes();
    [0x11, code, c[1], c[2], c[3], 0]
}

/// LOCATE(16) to a logical block address, partition unchanged.
pub fn locate16(block: u64) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x92;
    c[4..12].copy_from_slice(&block.to_be_bytes());
    c
}

/// LOCATE(10), for drives without LOCATE(16): addresses below 2^32.
pub fn locate10(block: u32) -> [u8; 10] {
    let b = block.to_be_bytes();
    [0x2b, 0, 0, b[0], b[1], b[2], b[3], 0, 0, 0]
}

/// LOAD UNLOAD: load (and thread) or unload (rewind and eject).
pub fn load_unload(load: bool) -> [u8; 6] {
    [0x1b, 0, 0, 0, u8::from(load), 0]
}

/// ERASE from here: short (the end of data here) or long (to the end).
pub fn erase(long: bool) -> [u8; 6] {
    [0x19, u8::from(long), 0, 0, 0, 0]
}

/// MODE SENSE(10) of the device configuration page (0x10), with its
/// block descriptor.
pub fn mode_sense10(alloc: u16) -> [u8; 10] {
    let a = alloc.to_be_bytes();
    [0x5a, 0, 0x10, 0, 0, 0, 0, a[0], a[1], 0]
}

/// MODE SENSE(6) of the device configuration page.
pub fn mode_sense6(alloc: u8) -> [u8; 6] {
    [0x1a, 0, 0x10, 0, alloc, 0]
}

/// MODE SELECT(6) of a header and one block descriptor that sets the
/// block length (0: variable) and keeps density (code 0) and buffered mode.
pub fn mode_select_block_size(buffered: u8, size: u32) -> ([u8; 6], [u8; 12]) {
    let mut list = [0u8; 12];
    list[2] = (buffered & 0x07) << 4;
    list[3] = 8;
    list[9..12].copy_from_slice(&be24(size));
    ([0x15, 0x10, 0, 0, list.len() as u8, 0], list)
}

/// Where the tape is, from READ POSITION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The logical block address (blocks and filemarks).
    pub block: u64,
    /// The logical file number (long form, when the drive knows it).
    pub file: Option<u64>,
    /// At the beginning of the partition.
    pub bop: bool,
    /// Between the early warning and the end of the partition.
    pub eop: bool,
}

/// The long form (32 bytes): flags, then partition, block and file
/// numbers as 8-byte fields. `None` when the position is unknown (BPU).
pub fn position_long(b: &[u8]) -> Option<Position> {
    let b = b.get(..32)?;
    let flags = b[0];
    if flags & 0x04 != 0 {
        return None;
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&b[8..16]);
    let block = u64::from_be_bytes(n);
    n.copy_from_slice(&b[16..24]);
    let file = (flags & 0x08 == 0).then_some(u64::from_be_bytes(n));
    Some(Position {
        block,
        file,
        bop: flags & 0x80 != 0,
        eop: flags & 0x40 != 0,
    })
}

/// The short form (20 bytes): flags, then the first block location as 4
/// bytes at 4. `None` when the position is unknown (BPU).
pub fn position_short(b: &[u8]) -> Option<Position> {
    let b = b.get(..20)?;
    if b[0] & 0x04 != 0 {
        return None;
    }
    Some(Position {
        block: u64::from(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
        file: None,
        bop: b[0] & 0x80 != 0,
        eop: b[0] & 0x40 != 0,
    })
}

/// What the mode parameter header and block descriptor say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mode {
    pub write_protected: bool,
    /// The buffered mode field (1: the drive buffers writes).
    pub buffered: u8,
    pub density: Option<u8>,
    /// Bytes per block; 0 is variable.
    pub block_size: u32,
}

/// The header of MODE SENSE(10) (8 bytes) or (6) (4 bytes), and the
/// first block descriptor when there is one.
pub fn mode(b: &[u8], ten: bool) -> Option<Mode> {
    let (header, specific, bdlen) = if ten {
        let h = b.get(..8)?;
        (8, h[3], usize::from(u16::from_be_bytes([h[6], h[7]])))
    } else {
        let h = b.get(..4)?;
        (4, h[2], usize::from(h[3]))
    };
    let mut m = Mode {
        write_protected: specific & 0x80 != 0,
        buffered: (specific >> 4) & 0x07,
        ..Mode::default()
    };
    if bdlen >= 8
        && let Some(d) = b.get(header..header + 8)
    {
        m.density = Some(d[0]).filter(|&d| d != 0);
        m.block_size = u32::from_be_bytes([0, d[5], d[6], d[7]]);
    }
    Some(m)
}

/// The largest block from READ BLOCK LIMITS (6 bytes: granularity, then
/// the maximum as 3 bytes).
pub fn block_limit(b: &[u8]) -> Option<u32> {
    let b = b.get(..6)?;
    Some(u32::from_be_bytes([0, b[1], b[2], b[3]])).filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_position_of_an_lto_drive() {
        // File 2, block 11, not at BOP; from an HP Ultrium answer.
        let mut b = [0u8; 32];
        b[15] = 11;
        b[23] = 2;
        assert_eq!(
            position_long(&b),
            Some(Position {
                block: 11,
                file: Some(2),
                bop: false,
                eop: false
            })
        );
        // BOP, file number unknown (MPU), and past the early warning.
        b[0] = 0x80 | 0x40 | 0x08;
        let p = position_long(&b).unwrap();
        assert!(p.bop && p.eop && p.file.is_none());
        // Position unknown (BPU).
        b[0] = 0x04;
        assert_eq!(position_long(&b), None);
        assert_eq!(position_long(&b[..20]), None);
    }

    #[test]
    fn short_position() {
        let mut b = [0u8; 20];
        b[0] = 0x80;
        b[4..8].copy_from_slice(&0x0001_0002u32.to_be_bytes());
        b[8..12].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        let p = position_short(&b).unwrap();
        assert_eq!((p.block, p.bop, p.file), (0x0001_0002, true, None));
    }

    #[test]
    fn mode_sense_headers_with_block_descriptors() {
        // MODE SENSE(10): write-protected, buffered mode 1, density 0x60
        // (LTO-9), variable blocks.
        let ten = [
            0, 0x1e, 0, 0x90, 0, 0, 0, 8, 0x60, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x0e,
        ];
        assert_eq!(
            mode(&ten, true),
            Some(Mode {
                write_protected: true,
                buffered: 1,
                density: Some(0x60),
                block_size: 0
            })
        );
        // MODE SENSE(6), fixed 512-byte blocks, writable.
        let six = [0x1b, 0, 0x10, 8, 0x5c, 0, 0, 0, 0, 0, 0x02, 0x00];
        assert_eq!(
            mode(&six, false),
            Some(Mode {
                write_protected: false,
                buffered: 1,
                density: Some(0x5c),
                block_size: 512
            })
        );
        // No block descriptor: the header alone.
        assert_eq!(mode(&[0x0b, 0, 0, 0], false).unwrap().density, None);
        assert_eq!(mode(&[0, 0], false), None);
    }

    #[test]
    fn block_limits_and_the_cdbs() {
        // An LTO-9 drive: 8 MiB largest block, granularity 0.
        assert_eq!(block_limit(&[0, 0x80, 0, 0, 0, 1]), Some(8 << 20));
        assert_eq!(block_limit(&[0, 0, 0, 0, 0, 1]), None);
        assert_eq!(transfer6(0x08, 0x40000), [0x08, 0, 0x04, 0, 0, 0]);
        assert_eq!(space6(1, -1), [0x11, 1, 0xff, 0xff, 0xff, 0]);
        assert_eq!(space6(1, 3), [0x11, 1, 0, 0, 3, 0]);
        assert_eq!(locate10(0x0102_0304), [0x2b, 0, 0, 1, 2, 3, 4, 0, 0, 0]);
        assert_eq!(locate16(5)[4..12], 5u64.to_be_bytes());
        let (cdb, list) = mode_select_block_size(1, 0);
        assert_eq!(cdb, [0x15, 0x10, 0, 0, 12, 0]);
        assert_eq!(list, [0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
