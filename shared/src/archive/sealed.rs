//! Archives encrypted in the age format (age-encryption.org/v1), so that
//! a tape file is an age file holding the pax archive, which `age -d -i
//! IDENTITY | tar -x` reads with nothing of reel (README, "Archive
//! encryption").
//!
//! - The header's first stanza is reel's note, in plain words: that the
//!   file is a tar archive encrypted with age, for which recipients, and
//!   the command that decrypts it. age implementations pass over stanzas
//!   of a type they do not know; the header's MAC covers it like the rest.
//! - The plaintext is padded with zeros after the tar end-of-archive
//!   marker (tar reads past zeros) until the sealed file is whole tape
//!   blocks: the tape file then ends where the age file ends, and `dd |
//!   age -d` meets no trailing padding.
//! - age encrypts in chunks of 64 KiB, each authenticated with its own
//!   nonce (its index), so a member is read from the chunk that holds it
//!   (the reader's `Seek`).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use age::x25519;
use sha2::{Digest as _, Sha256};

/// Plaintext bytes per age chunk, and what each chunk adds (its tag).
pub const CHUNK: u64 = 64 << 10;
const TAG: u64 = 16;
/// How an age file begins.
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The fingerprint of a recipient (an `age1…` public key): the first 8
/// bytes of the SHA-256 of its text, in hex.
pub fn fingerprint(recipient: &str) -> String {
    Sha256::digest(recipient.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The recipients an archive is sealed for: X25519 public keys, or one
/// passphrase (age allows nothing beside a passphrase in a header).
#[derive(Clone)]
pub struct Recipients {
    /// As the configuration gives them (`age1…`), or `passphrase:NAME`
    /// for the passphrase of `[[archive_key]]` NAME.
    pub texts: Vec<String>,
    pub(super) keys: Vec<x25519::Recipient>,
    pub(super) passphrase: Option<age::secrecy::SecretString>,
}

/// The scrypt work factor (log2 of N) of passphrase-sealed archives:
/// age's own default, about a second and 256 MiB on a current CPU, paid
/// at each sealing and each opening.
pub const PASSPHRASE_WORK_FACTOR: u8 = 18;

impl Recipients {
    /// Parse `age1…` public keys; the error names the one at fault.
    pub fn parse(texts: &[String]) -> Result<Recipients, String> {
        if texts.is_empty() {
            return Err("no recipients".into());
        }
        let keys = texts
            .iter()
            .map(|t| {
                t.parse::<x25519::Recipient>()
                    .map_err(|e| format!("recipient {t:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Recipients {
            texts: texts.to_vec(),
            keys,
            passphrase: None,
        })
    }

    /// The passphrase of `[[archive_key]]` `name`, read from `file`.
    pub fn passphrase(name: &str, file: &Path) -> Result<Recipients, String> {
        Ok(Recipients {
            texts: vec![format!("passphrase:{name}")],
            keys: Vec::new(),
            passphrase: Some(read_passphrase(file)?),
        })
    }

    pub fn fingerprints(&self) -> Vec<String> {
        if self.passphrase.is_some() {
            // Nothing derived from the passphrase: the key's name.
            return self.texts.clone();
        }
        self.texts.iter().map(|t| fingerprint(t)).collect()
    }
}

/// The passphrase in `file`: its first line, which must not be empty.
fn read_passphrase(file: &Path) -> Result<age::secrecy::SecretString, String> {
    let text = crate::fsutil::read_secret(file, "passphrase")?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!(
            "passphrase file {}: its first line is empty",
            file.display()
        ));
    }
    Ok(age::secrecy::SecretString::from(line.to_string()))
}

/// The length of a sealed file whose header and nonce take `base` bytes
/// and whose plaintext is `plain` bytes long.
pub fn sealed_len(base: u64, plain: u64) -> u64 {
    base + plain + TAG * plain.div_ceil(CHUNK).max(1)
}

/// The smallest plaintext length from `plain` on whose sealed file is a
/// whole number of `block`s. The sealed length grows by one with each
/// plaintext byte, and by 16 more at each new chunk: for each multiple
/// of `block` from the first one reachable, the chunk count that would
/// give it is tried (a multiple that falls in a chunk's 16-byte jump has
/// none, and the next is tried).
pub fn padded_plain(base: u64, plain: u64, block: u64) -> u64 {
    let mut target = sealed_len(base, plain).div_ceil(block) * block;
    loop {
        // target = base + p + TAG * n, with n = ceil(p / CHUNK), at least 1.
        let body = target - base;
        let guess = body.div_ceil(CHUNK + TAG).max(1);
        for n in [guess.saturating_sub(1).max(1), guess, guess + 1] {
            if let Some(p) = body.checked_sub(TAG * n)
                && p >= plain
                && sealed_len(base, p) == target
            {
                return p;
            }
        }
        target += block;
    }
}

/// The identities a host decrypts with, from an age identity file.
pub struct Identities {
    pub file: PathBuf,
    list: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl Identities {
    /// Read an identity file (`AGE-SECRET-KEY-1…` lines, `#` comments),
    /// which must be readable by its owner only.
    pub fn load(file: &Path) -> Result<Identities, String> {
        let name = file.display();
        let text = crate::fsutil::read_secret(file, "identity")?;
        let list: Vec<Box<dyn age::Identity + Send + Sync>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                l.parse::<x25519::Identity>()
                    .map(|i| Box::new(i) as Box<dyn age::Identity + Send + Sync>)
                    .map_err(|e| format!("identity file {name}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err(format!("identity file {name}: no AGE-SECRET-KEY-1… line"));
        }
        Ok(Identities {
            file: file.to_path_buf(),
            list,
        })
    }

    /// The passphrase in `file` (its first line; the file readable by its
    /// owner only), as an identity.
    pub fn passphrase(file: &Path) -> Result<Identities, String> {
        let mut id = age::scrypt::Identity::new(read_passphrase(file)?);
        // Whatever this host's speed, the factor reel seals with opens.
        id.set_max_work_factor(PASSPHRASE_WORK_FACTOR + 2);
        Ok(Identities {
            file: file.to_path_buf(),
            list: vec![Box::new(id)],
        })
    }

    /// Open a sealed archive read from `input` (its first bytes the age
    /// header): a reader of the plaintext.
    pub fn open<R: Read>(&self, input: R) -> Result<age::stream::StreamReader<R>, OpenError> {
        let d = age::Decryptor::new(input)
            .map_err(|e| OpenError::Damaged(format!("its age header does not read: {e}")))?;
        let scrypt = d.is_scrypt();
        d.decrypt(self.list.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys if scrypt => OpenError::NotMine(format!(
                    "the archive is sealed (age) with a passphrase, and this host has none ({} names identities only)",
                    self.files()
                )),
                age::DecryptError::NoMatchingKeys => OpenError::NotMine(format!(
                    "the archive is sealed (age) for recipients this host's identity ({}) is not among",
                    self.files()
                )),
                // A wrong passphrase does not open the one stanza there is.
                age::DecryptError::DecryptionFailed if scrypt => OpenError::NotMine(format!(
                    "the archive is sealed (age) with a passphrase that is not this host's ({})",
                    self.files()
                )),
                e => OpenError::Damaged(format!("its age header does not open: {e}")),
            })
    }

    /// The identity files, for messages.
    fn files(&self) -> String {
        self.file.display().to_string()
    }

    /// One set holding the identities of all of `sets`: any of them opens.
    pub fn merge(sets: Vec<Identities>) -> Option<Identities> {
        let mut it = sets.into_iter();
        let mut all = it.next()?;
        for s in it {
            all.file = PathBuf::from(format!("{}, {}", all.file.display(), s.file.display()));
            all.list.extend(s.list);
        }
        Some(all)
    }
}

/// Why a sealed archive did not open.
#[derive(Debug)]
pub enum OpenError {
    /// None of the identities is a recipient: nothing wrong with the tape.
    NotMine(String),
    /// The header is damaged (or not age's).
    Damaged(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotMine(m) | OpenError::Damaged(m) => f.write_str(m),
        }
    }
}

/// Whether `first` (the start of a tape file) is an age file.
pub fn is_sealed(first: &[u8]) -> bool {
    first.starts_with(MAGIC)
}

/// Counts what a reader gives, where its owner can see it.
pub struct CountedReader<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R> CountedReader<R> {
    pub fn new(inner: R) -> (CountedReader<R>, Arc<AtomicU64>) {
        let bytes = Arc::new(AtomicU64::new(0));
        (
            CountedReader {
                inner,
                bytes: Arc::clone(&bytes),
            },
            bytes,
        )
    }
}

impl<R: Read> Read for CountedReader<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: io::Seek> io::Seek for CountedReader<R> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

/// The plaintext of a sealed archive as blocks of spans, from where its
/// reader stands (`at`, an offset in the plaintext) on.
pub struct OpenSpans<R: Read> {
    reader: age::stream::StreamReader<R>,
    buf: Vec<u8>,
    /// The plaintext offset of the next block, from where reading began.
    next: u64,
    /// Where reading began in the whole plaintext (for messages).
    origin: u64,
    /// The bytes read from tape.
    tape_bytes: Arc<AtomicU64>,
}

impl<R: Read> OpenSpans<R> {
    pub fn new(
        reader: age::stream::StreamReader<R>,
        origin: u64,
        tape_bytes: Arc<AtomicU64>,
    ) -> OpenSpans<R> {
        OpenSpans {
            reader,
            buf: vec![0; 4 * CHUNK as usize],
            next: 0,
            origin,
            tape_bytes,
        }
    }
}

impl<R: Read> crate::tape::spans::Spans for OpenSpans<R> {
    fn next_block(&mut self) -> Result<Option<crate::tape::spans::Block<'_>>, String> {
        let mut n = 0;
        while n < self.buf.len() {
            match self.reader.read(&mut self.buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let at = self.origin + self.next + n as u64;
                    return Err(format!(
                        "cannot decrypt the archive at byte {at} (age chunk {}): {e}",
                        at / CHUNK
                    ));
                }
            }
        }
        if n == 0 {
            return Ok(None);
        }
        let at = self.next;
        self.next += n as u64;
        Ok(Some(crate::tape::spans::Block {
            at,
            bytes: &self.buf[..n],
        }))
    }

    fn bytes_read(&self) -> u64 {
        self.tape_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::seal::Sealer;
    use std::fs::File;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn padding_makes_the_sealed_file_whole_blocks() {
        for block in [512u64, 4096, 256 << 10, 1 << 20] {
            for base in [0u64, 150, 243, 1000] {
                for plain in
                    (0..3 * CHUNK + 40)
                        .step_by(997)
                        .chain([CHUNK, 2 * CHUNK, 5 * CHUNK - 1])
                {
                    let p = padded_plain(base, plain, block);
                    assert!(p >= plain);
                    assert_eq!(
                        sealed_len(base, p) % block,
                        0,
                        "{base} {plain} {block}: {p}"
                    );
                    // Never more than a block and a chunk's tags beyond.
                    assert!(p - plain < block + CHUNK, "{base} {plain} {block}: {p}");
                }
            }
        }
    }

    #[test]
    fn a_sealed_archive_opens_with_its_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let id = x25519::Identity::generate();
        let other = x25519::Identity::generate();
        let recipients = Recipients::parse(&[id.to_public().to_string()]).unwrap();
        let path = dir.path().join("a");
        let mut s = Sealer::new(File::create(&path).unwrap(), &recipients).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&data).unwrap();
        let pad = s.padding(4096);
        s.write_all(&vec![0; pad as usize]).unwrap();
        let len = s.finish().unwrap();
        let sealed = std::fs::read(&path).unwrap();
        assert_eq!(sealed.len() as u64, len);
        assert_eq!(len % 4096, 0);
        assert!(is_sealed(&sealed));
        // The note, in words, before the recipients' stanzas.
        let head = String::from_utf8_lossy(&sealed[..300]);
        assert!(
            head.contains("-> reel: this tape file is a tar archive encrypted with age"),
            "{head}"
        );
        let write_id = |i: &x25519::Identity, name: &str| {
            use age::secrecy::ExposeSecret;
            let f = dir.path().join(name);
            std::fs::write(
                &f,
                format!("# a comment\n{}\n", i.to_string().expose_secret()),
            )
            .unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
            Identities::load(&f).unwrap()
        };
        let mine = write_id(&id, "mine");
        let mut plain = Vec::new();
        mine.open(&sealed[..])
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(&plain[..data.len()], &data[..]);
        assert!(plain[data.len()..].iter().all(|&b| b == 0));
        let theirs = write_id(&other, "theirs");
        assert!(matches!(
            theirs.open(&sealed[..]),
            Err(OpenError::NotMine(_))
        ));
        assert!(matches!(
            mine.open(&b"not age"[..]),
            Err(OpenError::Damaged(_))
        ));
    }
}
