//! READ(6), WRITE(6) and WRITE FILEMARKS of a served drive: blocks in
//! variable or fixed mode, what the [`Drive`] answers turned into the sense
//! real drives give (filemark, end of data, ILI with the residue, the early
//! warning), and encryption on the way (`crypto.rs`).

use super::{
    Cartridge, DataBuf, Drive, Key, Op, READ_ROOM, Read, Reply, Sense, Ssc, Written, be24, sense_of,
};

impl<D: Drive + Cartridge> Ssc<D> {
    /// The transfer length and whether it counts fixed blocks.
    pub(super) fn transfer(&self, cdb: &[u8]) -> Result<(usize, bool), Sense> {
        let fixed = cdb[1] & 0x01 != 0;
        let n = be24(&cdb[2..5]) as usize;
        if fixed && self.block_size == 0 {
            return Err(Sense::invalid_field());
        }
        Ok((n, fixed))
    }

    pub(super) fn read6(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let (n, fixed) = match self.transfer(cdb) {
            Ok(t) => t,
            Err(s) => return Reply::check(s),
        };
        let sili = cdb[1] & 0x02 != 0;
        if n == 0 {
            return Reply::good();
        }
        if self.scratch.len() < READ_ROOM {
            self.scratch.resize(READ_ROOM, 0);
        }
        let (count, size) = if fixed {
            (n, self.block_size as usize)
        } else {
            (1, n)
        };
        self.out.clear();
        for i in 0..count {
            // Residue: bytes (variable) or blocks (fixed) not transferred.
            let left = (count - i) as i64;
            let left = if fixed { left } else { n as i64 };
            let read = match self.drive.read_block(&mut self.scratch) {
                // An encrypted block is given as its plaintext, or refused.
                Ok(Read::Data(got)) => match self.crypto.open(&self.scratch[..got]) {
                    Ok(None) => Ok(Read::Data(got)),
                    Ok(Some(plain)) => {
                        self.scratch[..plain.len()].copy_from_slice(&plain);
                        Ok(Read::Data(plain.len()))
                    }
                    Err(sense) => {
                        let got = data.scatter(&self.out);
                        return Reply::check(sense.info(left)).with_data(got);
                    }
                },
                other => other,
            };
            let stop = match read {
                Ok(Read::Data(got)) if got == size => {
                    self.out.extend_from_slice(&self.scratch[..got]);
                    None
                }
                Ok(Read::Data(got)) => {
                    self.out.extend_from_slice(&self.scratch[..got.min(size)]);
                    if !fixed && sili && got < size {
                        None
                    } else {
                        let residue = if fixed {
                            left
                        } else {
                            size as i64 - got as i64
                        };
                        Some(Sense::new(Key::NoSense, 0, 0).ili().info(residue))
                    }
                }
                Ok(Read::Filemark) => {
                    Some(Sense::new(Key::NoSense, 0x00, 0x01).filemark().info(left))
                }
                Ok(Read::EndOfData) => Some(Sense::new(Key::BlankCheck, 0x00, 0x05).info(left)),
                Err(e) => {
                    self.failed(&e, Op::Read);
                    Some(sense_of(&e, Op::Read).info(left))
                }
            };
            if let Some(s) = stop {
                let got = data.scatter(&self.out);
                return Reply::check(s).with_data(got);
            }
        }
        let got = data.scatter(&self.out);
        Reply::good().with_data(got)
    }

    pub(super) fn write6(&mut self, cdb: &[u8], data: &mut dyn DataBuf) -> Reply {
        let (n, fixed) = match self.transfer(cdb) {
            Ok(t) => t,
            Err(s) => return Reply::check(s),
        };
        if n == 0 {
            return Reply::good();
        }
        let (count, size) = if fixed {
            (n, self.block_size as usize)
        } else {
            (1, n)
        };
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        data.gather(&mut out);
        let reply = if out.len() < count * size {
            Reply::check(Sense::invalid_field())
        } else {
            let mut reply = Reply::good();
            for (i, block) in out.chunks(size).take(count).enumerate() {
                let left = if fixed { (count - i) as i64 } else { n as i64 };
                let sealed;
                let block = if self.crypto.encrypting() {
                    match self.crypto.seal(block) {
                        Ok(b) => {
                            sealed = b;
                            &sealed[..]
                        }
                        Err(s) => {
                            reply = Reply::check(s.info(left));
                            break;
                        }
                    }
                } else {
                    block
                };
                match self.drive.write_block(block) {
                    Ok(Written::Ok) => {}
                    Ok(Written::EarlyWarning) => {
                        // On tape; the rest still goes on, and the warning
                        // is reported once the command is done.
                        reply = Reply::check(Sense::new(Key::NoSense, 0x00, 0x02).eom().info(0));
                    }
                    Err(e) => {
                        self.failed(&e, Op::Write);
                        reply = Reply::check(sense_of(&e, Op::Write).info(left));
                        break;
                    }
                }
            }
            reply
        };
        self.out = out;
        reply
    }

    pub(super) fn write_filemarks(&mut self, cdb: &[u8]) -> Reply {
        let n = be24(&cdb[2..5]);
        let immed = cdb[1] & 1 != 0;
        let wrote = match (n, immed) {
            // Of none and not immediate: a flush, the buffer onto tape.
            (0, false) => self.drive.flush(),
            (0, true) => return Reply::good(),
            (n, true) => self.drive.write_filemarks_immediate(n),
            (n, false) => self.drive.write_filemarks(n),
        };
        match wrote {
            Ok(Written::Ok) => Reply::good(),
            Ok(Written::EarlyWarning) => {
                Reply::check(Sense::new(Key::NoSense, 0x00, 0x02).eom().info(0))
            }
            Err(e) => Reply::check(sense_of(&e, Op::Write).info(i64::from(n))),
        }
    }
}
