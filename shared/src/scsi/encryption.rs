//! Drive (hardware) encryption as reel sets it: a 256-bit key from a key
//! file, named everywhere by its fingerprint, never by itself, and the SSC
//! tape data encryption pages that set and clear it (SECURITY PROTOCOL OUT,
//! protocol 0x20, page 0x0010) after asking which algorithm index the
//! drive gives AES-256-GCM (SECURITY PROTOCOL IN, page 0x0010).
//!
//! The key file is `stenc`'s: the key as 64 hexadecimal digits on the
//! first line, an optional description on the second, so one file serves
//! both. It must be readable by its owner only (mode 0600 or 0400).

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::sg_io::{Data, SgError};

/// The security protocol of tape data encryption.
const PROTOCOL: u8 = 0x20;
/// AES-GCM with a 256-bit key, as SSC and SPC number security algorithms.
pub const AES256_GCM_CODE: u32 = 0x0001_0014;

/// One data key, loaded from its file.
#[derive(Clone)]
pub struct DriveKey {
    key: [u8; 32],
    /// The first 8 bytes of the key's SHA-256, in hex: what labels,
    /// catalogs, logs and the drive's key-associated data (uKAD) carry.
    pub fingerprint: String,
    pub file: PathBuf,
}

impl fmt::Debug for DriveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriveKey")
            .field("fingerprint", &self.fingerprint)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// The fingerprint of a key: the first 8 bytes of its SHA-256, in hex.
pub fn fingerprint(key: &[u8]) -> String {
    Sha256::digest(key)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl DriveKey {
    /// Read a key file; every error names the file.
    pub fn load(file: &Path) -> Result<DriveKey, String> {
        let name = file.display();
        let text = crate::fsutil::read_secret(file, "key")?;
        DriveKey::parse(&text)
            .map(|key| DriveKey {
                fingerprint: fingerprint(&key),
                key,
                file: file.to_path_buf(),
            })
            .map_err(|why| format!("key file {name}: {why}"))
    }

    /// The key of a key file's text: 64 hexadecimal digits on the first
    /// line (what follows is a description, not read).
    fn parse(text: &str) -> Result<[u8; 32], String> {
        let line = text.lines().next().unwrap_or("").trim();
        if line.len() != 64 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "the first line must be the 256-bit key as 64 hexadecimal digits (it has {} characters)",
                line.len()
            ));
        }
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(&line[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        Ok(key)
    }
}

/// SECURITY PROTOCOL IN of a tape data encryption page.
pub fn security_in_cdb(page: u16, alloc: u32) -> [u8; 12] {
    let (p, a) = (page.to_be_bytes(), alloc.to_be_bytes());
    [
        0xa2, PROTOCOL, p[0], p[1], 0, 0, a[0], a[1], a[2], a[3], 0, 0,
    ]
}

/// SECURITY PROTOCOL OUT of a page of `len` bytes.
pub fn security_out_cdb(len: u32) -> [u8; 12] {
    let l = len.to_be_bytes();
    [
        0xb5, PROTOCOL, 0x00, 0x10, 0, 0, l[0], l[1], l[2], l[3], 0, 0,
    ]
}

/// The Set Data Encryption page: with a key, encrypt every block written
/// and decrypt what is read, passing plaintext through (mixed mode: the
/// label of a tape is in the clear), the key's fingerprint as its uKAD,
/// cleared when the tape is unloaded (CKOD); without one, both off and
/// the key cleared.
pub fn set_page(key: Option<&DriveKey>, algorithm: u8) -> Vec<u8> {
    let mut v = vec![0x00, 0x10, 0, 0];
    // Scope: all I_T nexuses.
    v.push(2 << 5);
    match key {
        Some(k) => {
            // CEEM 0, RDMC 0, SDK 0, CKOD 1.
            v.push(0x04);
            // Encrypt; decrypt in mixed mode; the algorithm; a plain key.
            v.extend_from_slice(&[2, 3, algorithm, 0]);
            v.extend_from_slice(&[0; 8]);
            v.extend_from_slice(&32u16.to_be_bytes());
            v.extend_from_slice(&k.key);
            let ukad = k.fingerprint.as_bytes();
            v.extend_from_slice(&[0x00, 0x00]);
            v.extend_from_slice(&(ukad.len() as u16).to_be_bytes());
            v.extend_from_slice(ukad);
        }
        None => {
            v.push(0);
            v.extend_from_slice(&[0, 0, 0, 0]);
            v.extend_from_slice(&[0; 8]);
            v.extend_from_slice(&0u16.to_be_bytes());
        }
    }
    let len = (v.len() - 4) as u16;
    v[2..4].copy_from_slice(&len.to_be_bytes());
    v
}

/// The algorithm index a Data Encryption Capabilities page (0x0010) gives
/// AES-256-GCM with a 32-byte key, that can encrypt and decrypt.
pub fn aes256_gcm_index(page: &[u8]) -> Option<u8> {
    let end = page
        .get(2..4)
        .map(|l| 4 + usize::from(u16::from_be_bytes([l[0], l[1]])))?
        .min(page.len());
    let mut at = 20;
    while at + 4 <= end {
        let len = usize::from(u16::from_be_bytes([page[at + 2], page[at + 3]]));
        let d = page.get(at..at + 4 + len).filter(|_| at + 4 + len <= end)?;
        if len >= 20 {
            let code = u32::from_be_bytes([d[20], d[21], d[22], d[23]]);
            let key_len = u16::from_be_bytes([d[10], d[11]]);
            let (decrypt, encrypt) = ((d[4] >> 2) & 0x03, d[4] & 0x03);
            if code == AES256_GCM_CODE && key_len == 32 && decrypt != 0 && encrypt != 0 {
                return Some(d[0]);
            }
        }
        at += 4 + len;
    }
    None
}

/// Set `key` (or clear it, with `None`) through `run`, which sends one
/// command to the drive: the capabilities are asked first, for the index
/// of AES-256-GCM. The error is a sentence for people.
pub fn apply(
    key: Option<&DriveKey>,
    mut run: impl FnMut(&[u8], Data<'_>) -> Result<usize, SgError>,
) -> Result<(), String> {
    let algorithm = match key {
        None => 0,
        Some(_) => {
            let mut caps = vec![0u8; 1024];
            let n = run(
                &security_in_cdb(0x0010, caps.len() as u32),
                Data::In(&mut caps),
            )
            .map_err(|e| format!("the drive cannot encrypt (SECURITY PROTOCOL IN: {e})"))?;
            aes256_gcm_index(&caps[..n])
                .ok_or("the drive offers no AES-256-GCM encryption with a 256-bit key")?
        }
    };
    let page = set_page(key, algorithm);
    run(&security_out_cdb(page.len() as u32), Data::Out(&page))
        .map(drop)
        .map_err(|e| match key {
            Some(k) => format!("setting drive key {}: {e}", k.fingerprint),
            None => format!("clearing the drive key: {e}"),
        })
}

/// What a Data Encryption Status page (0x0020) says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub encrypting: bool,
    pub decrypting: bool,
    /// The key-associated data of the key set (reel's: the fingerprint).
    pub key: Option<String>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match (self.encrypting, self.decrypting) {
            (true, _) => "on (encrypting and decrypting)",
            (false, true) => "decrypting only",
            (false, false) => "off",
        };
        f.write_str(mode)?;
        if let Some(k) = &self.key {
            write!(f, ", key {k}")?;
        }
        Ok(())
    }
}

/// What the drive's encryption is set to, asked through `data_in` (a
/// command and the room for its answer in, the bytes answered out);
/// `None` when the drive does not tell.
pub fn status(data_in: impl FnOnce(&[u8], &mut [u8]) -> Result<usize, SgError>) -> Option<Status> {
    let mut page = [0u8; 256];
    let cdb = security_in_cdb(0x0020, page.len() as u32);
    data_in(&cdb, &mut page)
        .ok()
        .and_then(|n| Status::from_page(&page[..n]))
}

impl Status {
    pub fn from_page(page: &[u8]) -> Option<Status> {
        let p = page.get(..20)?;
        if u16::from_be_bytes([p[0], p[1]]) != 0x0020 {
            return None;
        }
        let end = (4 + usize::from(u16::from_be_bytes([p[2], p[3]]))).min(page.len());
        let mut key = None;
        let mut at = 24;
        while at + 4 <= end {
            let n = usize::from(u16::from_be_bytes([page[at + 2], page[at + 3]]));
            let Some(d) = page.get(at + 4..at + 4 + n).filter(|_| at + 4 + n <= end) else {
                break;
            };
            if page[at] == 0x00 {
                key = super::ascii_field(d);
            }
            at += 4 + n;
        }
        Some(Status {
            encrypting: p[5] != 0,
            decrypting: p[6] != 0,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcmu::ssc::crypto::{Crypto, capabilities_page};
    use std::os::unix::fs::PermissionsExt;

    fn key_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let f = dir.join("k");
        std::fs::write(&f, text).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    #[test]
    fn a_stenc_key_file_loads_and_is_named_by_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "1f".repeat(32);
        let k = DriveKey::load(&key_file(dir.path(), &format!("{hex}\nfirst\n"), 0o600)).unwrap();
        assert_eq!(k.key, [0x1f; 32]);
        assert_eq!(k.fingerprint, fingerprint(&[0x1f; 32]));
        assert_eq!(k.fingerprint.len(), 16);
        // The key never shows in what is printed of it.
        assert!(!format!("{k:?}").contains("1f1f"));
    }

    #[test]
    fn key_files_open_to_others_or_malformed_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = key_file(dir.path(), &"ab".repeat(32), 0o644);
        let e = DriveKey::load(&f).unwrap_err();
        assert!(
            e.contains("readable by others (mode 0644)") && e.contains("chmod 600"),
            "{e}"
        );
        for bad in ["abc", &"zz".repeat(32), &"ab".repeat(31), ""] {
            let f = key_file(dir.path(), bad, 0o600);
            let e = DriveKey::load(&f).unwrap_err();
            assert!(e.starts_with(&format!("key file {}", f.display())), "{e}");
            assert!(e.contains("64 hexadecimal digits"), "{e}");
        }
    }

    #[test]
    fn the_capabilities_page_gives_the_aes_index() {
        assert_eq!(aes256_gcm_index(&capabilities_page()), Some(1));
        // An IBM-shaped page with a second descriptor (index 2: AES-GCM)
        // after one for another algorithm.
        let mut page = vec![0x00, 0x10, 0, 0];
        page.extend_from_slice(&[0; 16]);
        for (index, code) in [(1u8, 0x0001_0010u32), (2, AES256_GCM_CODE)] {
            let mut d = vec![index, 0, 0, 20, 0b0000_1010, 0, 0, 32, 0, 0, 0, 32];
            d.extend_from_slice(&[0; 8]);
            d.extend_from_slice(&code.to_be_bytes());
            page.extend(d);
        }
        let len = (page.len() - 4) as u16;
        page[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(aes256_gcm_index(&page), Some(2));
        assert_eq!(aes256_gcm_index(&page[..30]), None);
    }

    #[test]
    fn the_pages_set_and_clear_a_key_as_the_drive_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let k = DriveKey::load(&key_file(dir.path(), &"a2".repeat(32), 0o600)).unwrap();
        let mut drive = Crypto::default();
        drive.set(&set_page(Some(&k), 1)).unwrap();
        assert!(drive.encrypting());
        let status = Status::from_page(&drive.status_page()).unwrap();
        assert_eq!(
            status,
            Status {
                encrypting: true,
                decrypting: true,
                key: Some(k.fingerprint.clone())
            }
        );
        let sealed = drive.seal(b"a tar header").unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"a tar header"));
        drive.set(&set_page(None, 0)).unwrap();
        assert!(!drive.encrypting());
        let status = Status::from_page(&drive.status_page()).unwrap();
        assert!(!status.encrypting && status.key.is_none());
    }
}
