//! What the drive says of itself: READ BLOCK LIMITS, INQUIRY (standard and
//! the vital product data pages), REPORT DENSITY SUPPORT and the mode pages
//! of MODE SENSE and MODE SELECT (6 and 10, with a block descriptor).

use super::{
    Cartridge, DataBuf, Drive, Key, Op, Reply, Sense, Ssc, TapeError, be16, be24, sense_of,
};
use crate::tcmu::inquiry::{Names, answer, inquiry, padded};

impl<D: Drive + Cartridge> Ssc<D> {
    pub(super) fn block_limits(&mut self, data: &mut dyn DataBuf) -> Reply {
        let max = self.id.max_block.min(0xff_ffff).to_be_bytes();
        answer(data, &[0, max[1], max[2], max[3], 0, 1], 6)
    }

    /// REPORT DENSITY SUPPORT: one density, the drive's code (0x60, the
    /// LTO-9 code, as the mode block descriptor gives it), writable and
    /// the default. The capacity (megabytes of 10^6 bytes) is the loaded
    /// tape's (MEDIA set and no tape: NOT READY), else a default tape's; bits
    /// per mm, media width and tracks are 0: a virtual medium has no
    /// physical geometry. Medium type descriptors are not offered.
    pub(super) fn report_density(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let (media, medium_type) = (cdb[1] & 0x01 != 0, cdb[1] & 0x02 != 0);
        let alloc = be16(&cdb[7..9]);
        if medium_type {
            return Reply::check(Sense::invalid_field());
        }
        let capacity = match self.drive.cartridge() {
            Some(image) => image.meta.capacity.0,
            None if media => return Reply::check(Sense::new(Key::NotReady, 0x3a, 0x00)),
            None => crate::vtl::LibrarySpec::default().capacity.0,
        };
        let mut d = vec![self.id.density, self.id.density, 0b1010_0000];
        d.extend_from_slice(&47u16.to_be_bytes()); // descriptor length
        d.extend_from_slice(&[0; 3]); // bits per mm
        d.extend_from_slice(&[0; 2]); // media width
        d.extend_from_slice(&[0; 2]); // tracks
        let mb = u32::try_from(capacity / 1_000_000).unwrap_or(u32::MAX);
        d.extend_from_slice(&mb.to_be_bytes());
        d.extend(padded("REEL", 8));
        d.extend(padded("VIRTUAL", 8));
        d.extend(padded("reel virtual LTO-9", 20));
        let mut v = ((d.len() + 2) as u16).to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0]);
        v.extend(d);
        answer(data, &v, alloc)
    }

    pub(super) fn inquiry(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let who = Names {
            peripheral: 0x01,
            version: 0x06,
            vendor: &self.id.vendor,
            product: &self.id.product,
            revision: &self.id.revision,
            serial: &self.id.serial,
        };
        inquiry(cdb, &who, data)
    }

    pub(super) fn mode_sense(&mut self, cdb: &[u8], data: &mut dyn DataBuf, ten: bool) -> Reply {
        let dbd = cdb[1] & 0x08 != 0;
        let (pc, page) = (cdb[2] >> 6, cdb[2] & 0x3f);
        let alloc = if ten {
            be16(&cdb[7..9])
        } else {
            usize::from(cdb[4])
        };
        if pc == 3 {
            return Reply::check(Sense::new(Key::IllegalRequest, 0x39, 0x00));
        }
        let status = self.drive.status().unwrap_or_default();
        let mut pages = Vec::new();
        // Data compression (0x0F): capable, off. Device configuration
        // (0x10): defaults. Changeable values (pc 1) are all zero.
        let changeable = pc == 1;
        if page == 0x0f || page == 0x3f {
            let mut p = vec![0u8; 16];
            p[0] = 0x0f;
            p[1] = 0x0e;
            if !changeable {
                p[2] = 0x40;
                p[3] = 0x80;
            }
            pages.extend(p);
        }
        if page == 0x10 || page == 0x3f {
            let mut p = vec![0u8; 16];
            p[0] = 0x10;
            p[1] = 0x0e;
            pages.extend(p);
        }
        if pages.is_empty() && page != 0 {
            return Reply::check(Sense::invalid_field());
        }
        let mut desc = Vec::new();
        if !dbd {
            let bs = if changeable {
                0xff_ffff
            } else {
                self.block_size
            }
            .to_be_bytes();
            let density = if changeable { 0 } else { self.id.density };
            desc.extend_from_slice(&[density, 0, 0, 0, 0, bs[1], bs[2], bs[3]]);
        }
        // Write-protected, buffered mode 1.
        let specific = if status.write_protected { 0x80 } else { 0 } | 0x10;
        let mut v = if ten {
            let mut h = vec![0, 0, 0, specific, 0, 0, 0, desc.len() as u8];
            h.extend(desc);
            h.extend(pages);
            let len = (h.len() - 2) as u16;
            h[0..2].copy_from_slice(&len.to_be_bytes());
            h
        } else {
            let mut h = vec![0, 0, specific, desc.len() as u8];
            h.extend(desc);
            h.extend(pages);
            h[0] = (h.len() - 1) as u8;
            h
        };
        v.truncate(alloc);
        answer(data, &v, alloc)
    }

    pub(super) fn mode_select(&mut self, cdb: &[u8], data: &mut dyn DataBuf, ten: bool) -> Reply {
        let len = if ten {
            be16(&cdb[7..9])
        } else {
            usize::from(cdb[4])
        };
        self.out.clear();
        data.gather(&mut self.out);
        let list = &self.out[..len.min(self.out.len())];
        let (header, bdlen) = match (ten, list.len()) {
            (_, 0) => return Reply::good(),
            (false, n) if n >= 4 => (4, usize::from(list[3])),
            (true, n) if n >= 8 => (8, be16(&list[6..8])),
            _ => return Reply::check(Sense::new(Key::IllegalRequest, 0x1a, 0x00)),
        };
        if bdlen >= 8 && list.len() >= header + 8 {
            let size = be24(&list[header + 5..header + 8]);
            if size > self.id.max_block {
                return Reply::check(Sense::new(Key::IllegalRequest, 0x26, 0x00));
            }
            if let Err(e) = self.drive.set_block_size(size) {
                return Reply::check(match e {
                    TapeError::Invalid(_) => Sense::new(Key::IllegalRequest, 0x26, 0x00),
                    e => sense_of(&e, Op::Other),
                });
            }
            self.block_size = size;
        }
        Reply::good()
    }
}
