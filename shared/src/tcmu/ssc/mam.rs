//! The cartridge memory (MAM) of the tape in a served drive, through READ
//! ATTRIBUTE and WRITE ATTRIBUTE, as sg_read_attr and backup software use
//! them. The drive's attributes (remaining and maximum capacity, TapeAlert
//! flags, load count, bytes written and read over the medium's life and in
//! this load, manufacturer, serial, density, manufacture date, type) come
//! from the virtual tape's `meta.json`, which counts loads and bytes; host
//! attributes (0x0800–0x0BFF: application, barcode, pool…) are kept there
//! too, so they stay with the tape across drives and restarts.

use super::{Cartridge, DataBuf, Drive, Key, Reply, Sense, Ssc, be16, be32};
use crate::tcmu::inquiry::{answer, padded};
use crate::vtl::HostAttribute;

/// Bytes the cartridge memory holds for host attributes.
const HOST_ROOM: usize = 16 * 1024;

/// Attribute formats.
const BINARY: u8 = 0x00;
const ASCII: u8 = 0x01;

/// One attribute as READ ATTRIBUTE returns it.
struct Attribute {
    id: u16,
    read_only: bool,
    format: u8,
    value: Vec<u8>,
}

impl Attribute {
    fn device(id: u16, format: u8, value: Vec<u8>) -> Attribute {
        Attribute {
            id,
            read_only: true,
            format,
            value,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(u8::from(self.read_only) << 7 | self.format);
        out.extend_from_slice(&(self.value.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.value);
    }
}

/// The writable range of attribute identifiers.
fn is_host(id: u16) -> bool {
    (0x0800..=0x0bff).contains(&id)
}

impl<D: Drive + Cartridge> Ssc<D> {
    /// Every attribute of the loaded tape, by identifier: the drive's from
    /// what the drive says of the cartridge ([`Drive::cartridge_memory`]),
    /// the host's as they were written.
    fn attributes(&mut self) -> Option<Vec<Attribute>> {
        let (flags, density) = (self.health.flags(), self.id.density);
        let c = self.drive.cartridge_memory().ok().flatten()?;
        let meta = &self.drive.cartridge()?.meta;
        let host_used: usize = meta.attributes.values().map(|a| a.value.len() + 5).sum();
        let binary = |id, n: Option<u64>| {
            Attribute::device(id, BINARY, n.unwrap_or(0).to_be_bytes().to_vec())
        };
        let ascii = |id, s: &Option<String>, len| {
            Attribute::device(id, ASCII, padded(s.as_deref().unwrap_or(""), len))
        };
        let mut v = vec![
            binary(0x0000, c.mib_remaining),
            binary(0x0001, c.mib_capacity),
            Attribute::device(0x0002, BINARY, flags.to_be_bytes().to_vec()),
            binary(0x0003, c.loads),
            binary(0x0004, Some(HOST_ROOM.saturating_sub(host_used) as u64)),
            binary(0x0220, c.mib_written),
            binary(0x0221, c.mib_read),
            binary(0x0222, c.mib_written_this_load),
            binary(0x0223, c.mib_read_this_load),
            ascii(0x0400, &c.manufacturer, 8),
            ascii(0x0401, &c.serial, 32),
            Attribute::device(0x0405, BINARY, vec![density]),
        ];
        if c.manufactured.is_some() {
            v.push(ascii(0x0406, &c.manufactured, 8));
        }
        // Medium type 0: data cartridge.
        v.push(Attribute::device(0x0408, BINARY, vec![0]));
        v.extend(meta.attributes.iter().map(|(&id, a)| Attribute {
            id,
            read_only: false,
            format: a.format,
            value: a.value.clone(),
        }));
        v.sort_by_key(|a| a.id);
        Some(v)
    }

    pub(super) fn read_attribute(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let action = cdb[1] & 0x1f;
        let (volume, partition) = (cdb[5], cdb[7]);
        let first = be16(&cdb[8..10]) as u16;
        let alloc = be32(&cdb[10..14]);
        if volume != 0 || partition != 0 {
            return Reply::check(Sense::invalid_field());
        }
        let Some(all) = self.attributes() else {
            return Reply::check(Sense::new(Key::NotReady, 0x3a, 0x00));
        };
        let mut body = Vec::new();
        let v = match action {
            // ATTRIBUTE VALUES
            0x00 => {
                for a in all.iter().filter(|a| a.id >= first) {
                    a.encode(&mut body);
                }
                with_length32(body)
            }
            // ATTRIBUTE LIST, SUPPORTED ATTRIBUTES
            0x01 | 0x05 => {
                for a in all.iter().filter(|a| a.id >= first) {
                    body.extend_from_slice(&a.id.to_be_bytes());
                }
                with_length32(body)
            }
            // LOGICAL VOLUME LIST, PARTITION LIST: one of each, number 0.
            0x02 | 0x03 => vec![0, 2, 0, 1],
            _ => return Reply::check(Sense::invalid_field()),
        };
        answer(data, &v, alloc)
    }

    pub(super) fn write_attribute(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let (volume, partition) = (cdb[5], cdb[7]);
        let len = be32(&cdb[10..14]);
        if volume != 0 || partition != 0 {
            return Reply::check(Sense::invalid_field());
        }
        self.out.clear();
        data.gather(&mut self.out);
        let list = &self.out[..len.min(self.out.len())];
        let bad_list = || Reply::check(Sense::new(Key::IllegalRequest, 0x26, 0x00));
        if list.len() < 4 {
            return if list.is_empty() {
                Reply::good()
            } else {
                bad_list()
            };
        }
        let end = (4 + be32(list)).min(list.len());
        let mut writes = Vec::new();
        let mut at = 4;
        while at < end {
            if at + 5 > end {
                return bad_list();
            }
            let id = be16(&list[at..]) as u16;
            let format = list[at + 2] & 0x03;
            let n = be16(&list[at + 3..]);
            if at + 5 + n > end || !is_host(id) {
                return bad_list();
            }
            writes.push((id, format, list[at + 5..at + 5 + n].to_vec()));
            at += 5 + n;
        }
        let Some(image) = self.drive.cartridge() else {
            return Reply::check(Sense::new(Key::NotReady, 0x3a, 0x00));
        };
        let mut attributes = image.meta.attributes.clone();
        for (id, format, value) in writes {
            // A value of length zero deletes the attribute.
            if value.is_empty() {
                attributes.remove(&id);
            } else {
                attributes.insert(id, HostAttribute { format, value });
            }
        }
        let used: usize = attributes.values().map(|a| a.value.len() + 5).sum();
        if used > HOST_ROOM {
            // AUXILIARY MEMORY OUT OF SPACE
            return Reply::check(Sense::new(Key::IllegalRequest, 0x55, 0x06));
        }
        image.meta.attributes = attributes;
        match image.save() {
            Ok(()) => Reply::good(),
            // AUXILIARY MEMORY WRITE ERROR
            Err(_) => Reply::check(Sense::new(Key::MediumError, 0x10, 0x03)),
        }
    }
}

/// `body` behind its 4-byte AVAILABLE DATA length.
fn with_length32(body: Vec<u8>) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend(body);
    v
}
