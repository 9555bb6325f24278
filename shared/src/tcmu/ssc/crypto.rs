//! Data encryption of a served drive, as LTO drives do it and as `stenc`
//! and backup software drive it: SECURITY PROTOCOL OUT sets the key (tape
//! data encryption protocol 0x20, page 0x0010 Set Data Encryption), and
//! SECURITY PROTOCOL IN reports what is set (0x0020 Data Encryption
//! Status), what the next block is (0x0021 Next Block Encryption Status),
//! what the drive can do (0x0010 capabilities) and which pages there are.
//!
//! Blocks are encrypted for real, with AES-256-GCM (the algorithm LTO
//! drives use), so a tape written with a key holds no plaintext and reads
//! back only with that key. On the virtual tape an encrypted block is
//! stored as `REELAES1`, the first 8 bytes of the key's SHA-256 (to tell a
//! wrong key from damage), a 12-byte random nonce, the key-associated data
//! (uKAD, the key's name) behind its 2-byte length, then the ciphertext
//! and its 16-byte tag: 30 bytes plus the uKAD more than the block. A
//! plaintext block that happens to begin with those 8 bytes reads as an
//! encrypted one; reel's own blocks never do (they begin with a tar
//! header).
//!
//! Reading an encrypted block with decryption off gives DATA PROTECT 74/01
//! (unable to decrypt), with another key 74/03 (incorrect key); reading a
//! plaintext block while only encrypted data may be read ("on", decryption
//! mode 2) gives 74/02. Raw mode (1) returns the stored bytes. The key
//! stays set across tape changes unless it was set with CKOD (clear key on
//! demount), and is cleared by turning encryption off.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use sha2::{Digest, Sha256};

use super::{Key, Sense};

const MAGIC: &[u8; 8] = b"REELAES1";
const FINGERPRINT: usize = 8;
const NONCE: usize = 12;
const TAG: usize = 16;
/// The algorithm index the drive offers: AES-256-GCM.
pub const AES256_GCM: u8 = 1;

/// Encryption and decryption modes (SSC).
pub mod mode {
    pub const DISABLE: u8 = 0;
    pub const ENCRYPT: u8 = 2;
    pub const RAW: u8 = 1;
    pub const DECRYPT: u8 = 2;
    pub const MIXED: u8 = 3;
}

#[derive(Clone)]
struct DataKey {
    cipher: Aes256Gcm,
    fingerprint: [u8; FINGERPRINT],
    /// The unauthenticated key-associated data (the key's name), if given.
    ukad: Vec<u8>,
}

/// What a drive's encryption is set to.
#[derive(Clone, Default)]
pub struct Crypto {
    key: Option<DataKey>,
    encrypt: u8,
    decrypt: u8,
    /// Counts every key set (the Key Instance Counter).
    instance: u32,
    /// Clear the key when the tape leaves the drive.
    ckod: bool,
}

fn fingerprint(key: &[u8]) -> [u8; FINGERPRINT] {
    let d = Sha256::digest(key);
    let mut f = [0u8; FINGERPRINT];
    f.copy_from_slice(&d[..FINGERPRINT]);
    f
}

fn protect(ascq: u8) -> Sense {
    Sense::new(Key::DataProtect, 0x74, ascq)
}

/// A stored block that is an encrypted one: its fingerprint, nonce, uKAD
/// and sealed bytes.
struct Sealed<'a> {
    fingerprint: &'a [u8],
    nonce: &'a [u8],
    ukad: &'a [u8],
    /// The bytes the tag covers as associated data: everything before the
    /// ciphertext.
    head: &'a [u8],
    body: &'a [u8],
}

fn sealed(stored: &[u8]) -> Option<Sealed<'_>> {
    let fixed = MAGIC.len() + FINGERPRINT + NONCE + 2;
    if stored.len() < fixed + TAG || !stored.starts_with(MAGIC) {
        return None;
    }
    let n = usize::from(u16::from_be_bytes([stored[fixed - 2], stored[fixed - 1]]));
    if stored.len() < fixed + n + TAG {
        return None;
    }
    let at = MAGIC.len();
    Some(Sealed {
        fingerprint: &stored[at..at + FINGERPRINT],
        nonce: &stored[at + FINGERPRINT..at + FINGERPRINT + NONCE],
        ukad: &stored[fixed..fixed + n],
        head: &stored[..fixed + n],
        body: &stored[fixed + n..],
    })
}

/// What the next block is, for page 0x0021.
pub enum NextBlock {
    NotEncrypted,
    /// Encrypted; with the key set or not; its uKAD.
    Encrypted {
        can_decrypt: bool,
        ukad: Vec<u8>,
    },
}

impl Crypto {
    pub fn encrypting(&self) -> bool {
        self.encrypt == mode::ENCRYPT && self.key.is_some()
    }

    /// A tape left the drive.
    pub fn demounted(&mut self) {
        if self.ckod {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.key = None;
        self.encrypt = mode::DISABLE;
        self.decrypt = mode::DISABLE;
        self.ckod = false;
    }

    /// The stored form of `block` when encrypting.
    pub fn seal(&self, block: &[u8]) -> Result<Vec<u8>, Sense> {
        let key = self.key.as_ref().ok_or_else(Sense::invalid_field)?;
        let mut nonce = [0u8; NONCE];
        crate::fsutil::random_bytes(&mut nonce)
            .map_err(|_| Sense::new(Key::HardwareError, 0x44, 0x00))?;
        let mut out = Vec::with_capacity(block.len() + 64 + key.ukad.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&key.fingerprint);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&(key.ukad.len() as u16).to_be_bytes());
        out.extend_from_slice(&key.ukad);
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: block,
                    aad: &out,
                },
            )
            .map_err(|_| Sense::new(Key::HardwareError, 0x44, 0x00))?;
        out.extend(sealed);
        Ok(out)
    }

    /// What a read returns of the stored bytes `stored`: `None` to return
    /// them as they are, the plaintext, or the sense that refuses it.
    pub fn open(&self, stored: &[u8]) -> Result<Option<Vec<u8>>, Sense> {
        let Some(s) = sealed(stored) else {
            return if self.decrypt == mode::DECRYPT {
                Err(protect(0x02))
            } else {
                Ok(None)
            };
        };
        match (self.decrypt, &self.key) {
            (mode::RAW, _) => Ok(None),
            (mode::DECRYPT | mode::MIXED, Some(key)) if key.fingerprint == s.fingerprint => key
                .cipher
                .decrypt(
                    Nonce::from_slice(s.nonce),
                    Payload {
                        msg: s.body,
                        aad: s.head,
                    },
                )
                .map(Some)
                .map_err(|_| protect(0x01)),
            (mode::DECRYPT | mode::MIXED, Some(_)) => Err(protect(0x03)),
            _ => Err(protect(0x01)),
        }
    }

    /// What the stored bytes of the next block are, for page 0x0021.
    pub fn next_block(&self, stored: &[u8]) -> NextBlock {
        match sealed(stored) {
            None => NextBlock::NotEncrypted,
            Some(s) => NextBlock::Encrypted {
                can_decrypt: self
                    .key
                    .as_ref()
                    .is_some_and(|k| k.fingerprint == s.fingerprint),
                ukad: s.ukad.to_vec(),
            },
        }
    }

    /// SECURITY PROTOCOL OUT, page 0x0010 (Set Data Encryption).
    pub fn set(&mut self, page: &[u8]) -> Result<(), Sense> {
        let bad = || Sense::new(Key::IllegalRequest, 0x26, 0x00);
        if page.len() < 20 || u16::from_be_bytes([page[0], page[1]]) != 0x0010 {
            return Err(bad());
        }
        let end = (4 + usize::from(u16::from_be_bytes([page[2], page[3]]))).min(page.len());
        let page = &page[..end];
        let ckod = page[5] & 0x04 != 0;
        let (encrypt, decrypt, algorithm, format) = (page[6], page[7], page[8], page[9]);
        let key_len = usize::from(u16::from_be_bytes([page[18], page[19]]));
        if encrypt == mode::DISABLE && decrypt == mode::DISABLE {
            self.clear();
            self.instance = self.instance.wrapping_add(1);
            return Ok(());
        }
        if !matches!(encrypt, mode::DISABLE | mode::ENCRYPT)
            || decrypt > mode::MIXED
            || algorithm != AES256_GCM
            || format != 0
            || key_len != 32
            || page.len() < 20 + key_len
        {
            return Err(bad());
        }
        let key = &page[20..20 + key_len];
        // Key-associated data descriptors follow the key: keep the uKAD.
        let mut ukad = Vec::new();
        let mut at = 20 + key_len;
        while at + 4 <= page.len() {
            let n = usize::from(u16::from_be_bytes([page[at + 2], page[at + 3]]));
            let d = page.get(at + 4..at + 4 + n).ok_or_else(bad)?;
            if page[at] == 0x00 {
                ukad = d.to_vec();
            }
            at += 4 + n;
        }
        self.key = Some(DataKey {
            cipher: Aes256Gcm::new_from_slice(key).map_err(|_| bad())?,
            fingerprint: fingerprint(key),
            ukad,
        });
        self.encrypt = encrypt;
        self.decrypt = decrypt;
        self.ckod = ckod;
        self.instance = self.instance.wrapping_add(1);
        Ok(())
    }

    /// Page 0x0020, Data Encryption Status.
    pub fn status_page(&self) -> Vec<u8> {
        let mut v = vec![0x00, 0x20, 0, 0];
        // I_T nexus scope: all; key scope: all I_T nexus.
        v.push(2 << 5 | 2);
        v.push(self.encrypt);
        v.push(self.decrypt);
        v.push(if self.key.is_some() { AES256_GCM } else { 0 });
        v.extend_from_slice(&self.instance.to_be_bytes());
        // Parameters control 0 (not reported), VCELB, CEEMS and RDMD 0.
        v.extend_from_slice(&[0; 12]);
        if let Some(k) = self.key.as_ref().filter(|k| !k.ukad.is_empty()) {
            kad(&mut v, &k.ukad);
        }
        finish(v)
    }

    /// Page 0x0021, Next Block Encryption Status, for the block at
    /// `position` (`None`: a filemark or the end of data is next).
    pub fn next_block_page(&self, position: u64, next: Option<NextBlock>) -> Vec<u8> {
        let mut v = vec![0x00, 0x21, 0, 0];
        v.extend_from_slice(&position.to_be_bytes());
        let (status, algorithm, ukad) = match next {
            // Not a logical block (a filemark, the end of data).
            None => (2, 0, None),
            Some(NextBlock::NotEncrypted) => (3, 0, None),
            Some(NextBlock::Encrypted {
                can_decrypt: true,
                ukad,
            }) => (5, AES256_GCM, Some(ukad)),
            Some(NextBlock::Encrypted { ukad, .. }) => (6, AES256_GCM, Some(ukad)),
        };
        v.push(status);
        v.push(algorithm);
        v.extend_from_slice(&[0, 0]);
        if let Some(u) = ukad.filter(|u| !u.is_empty()) {
            kad(&mut v, &u);
        }
        finish(v)
    }
}

/// A uKAD key-associated data descriptor.
fn kad(v: &mut Vec<u8>, ukad: &[u8]) {
    v.extend_from_slice(&[0x00, 0x00]);
    v.extend_from_slice(&(ukad.len() as u16).to_be_bytes());
    v.extend_from_slice(ukad);
}

/// Set a security protocol page's length.
fn finish(mut v: Vec<u8>) -> Vec<u8> {
    let len = (v.len() - 4) as u16;
    v[2..4].copy_from_slice(&len.to_be_bytes());
    v
}

/// Page 0x0010, Data Encryption Capabilities: one algorithm, AES-256-GCM
/// with a 32-byte key, encrypting and decrypting in hardware.
pub fn capabilities_page() -> Vec<u8> {
    let mut v = vec![0x00, 0x10, 0, 0];
    // Configuration prevented: no; reserved bytes.
    v.extend_from_slice(&[0; 16]);
    let mut d = vec![AES256_GCM, 0, 0, 20];
    // DECRYPT_C and ENCRYPT_C 2 (in hardware); uKAD accepted (up to 32 bytes).
    d.push(0b0000_1010);
    d.push(0b0000_0010);
    d.extend_from_slice(&32u16.to_be_bytes()); // max uKAD length
    d.extend_from_slice(&0u16.to_be_bytes()); // max aKAD length
    d.extend_from_slice(&32u16.to_be_bytes()); // key length
    // DKAD_C, EEMC_C, RDMC_C, EAREM; the maximum EEDK size; reserved.
    d.extend_from_slice(&[0; 8]);
    // Security algorithm code: AES-GCM with a 256-bit key.
    d.extend_from_slice(&0x0001_0014u32.to_be_bytes());
    v.extend(d);
    finish(v)
}

/// Page 0x0000 (in) and 0x0001 (out) of protocol 0x20: the pages there are.
pub fn support_page(out: bool) -> Vec<u8> {
    let (code, pages): (u8, &[u16]) = if out {
        (0x01, &[0x0010])
    } else {
        (0x00, &[0x0000, 0x0001, 0x0010, 0x0020, 0x0021])
    };
    let mut v = vec![0x00, code, 0, 0];
    for p in pages {
        v.extend_from_slice(&p.to_be_bytes());
    }
    finish(v)
}

impl<D: super::Drive + super::Cartridge> super::Ssc<D> {
    /// SECURITY PROTOCOL IN: protocol 0x00 (which protocols there are) and
    /// 0x20 (tape data encryption).
    pub(super) fn security_in(
        &mut self,
        cdb: &[u8],
        data: &mut dyn super::DataBuf,
    ) -> super::Reply {
        let (protocol, page) = (cdb[1], u16::from_be_bytes([cdb[2], cdb[3]]));
        let alloc = super::be32(&cdb[6..10]);
        let v = match (protocol, page) {
            (0x00, 0x0000) => vec![0, 0, 0, 0, 0, 0, 0, 2, 0x00, 0x20],
            (0x20, 0x0000) => support_page(false),
            (0x20, 0x0001) => support_page(true),
            (0x20, 0x0010) => capabilities_page(),
            (0x20, 0x0020) => self.crypto.status_page(),
            (0x20, 0x0021) => {
                let position = match self.drive.position() {
                    Ok(p) => p,
                    Err(e) => return super::Reply::check(super::sense_of(&e, super::Op::Other)),
                };
                let next = self.peek();
                self.crypto.next_block_page(position, next)
            }
            _ => return super::Reply::check(Sense::invalid_field()),
        };
        super::answer(data, &v, alloc)
    }

    /// What the block under the head is, without moving it: `None` for a
    /// filemark, the end of data or a block that cannot be read.
    fn peek(&mut self) -> Option<NextBlock> {
        let at = self.drive.position().ok()?;
        if self.scratch.len() < super::READ_ROOM {
            self.scratch.resize(super::READ_ROOM, 0);
        }
        let next = match self.drive.read_block(&mut self.scratch) {
            Ok(super::Read::Data(n)) => Some(self.crypto.next_block(&self.scratch[..n])),
            _ => None,
        };
        // Back where the head was, whatever the read did.
        let _ = self.drive.seek(at);
        next
    }

    /// SECURITY PROTOCOL OUT: protocol 0x20, page 0x0010 sets the key.
    pub(super) fn security_out(
        &mut self,
        cdb: &[u8],
        data: &mut dyn super::DataBuf,
    ) -> super::Reply {
        let (protocol, page) = (cdb[1], u16::from_be_bytes([cdb[2], cdb[3]]));
        let len = super::be32(&cdb[6..10]);
        if protocol != 0x20 || page != 0x0010 {
            return super::Reply::check(Sense::invalid_field());
        }
        self.out.clear();
        data.gather(&mut self.out);
        let list = self.out[..len.min(self.out.len())].to_vec();
        match self.crypto.set(&list) {
            Ok(()) => super::Reply::good(),
            Err(s) => super::Reply::check(s),
        }
    }
}
