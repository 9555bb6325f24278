//! Sealing: an archive made into an age file (age-encryption.org/v1).
//!
//! The header is made here, from age's parts: a random 16-byte file key,
//! wrapped for each X25519 recipient by the `age` crate, reel's note as
//! the first stanza, and the header's MAC (HMAC-SHA256 under the key
//! HKDF(file key, "header")). The payload is age's STREAM: chunks of
//! 64 KiB, each sealed with ChaCha20-Poly1305 under HKDF(nonce, "payload",
//! file key) and the nonce `counter (11 bytes, big-endian) ‖ last flag`.
//!
//! reel seals chunks itself, in place with a separate tag (`ring`'s
//! ChaCha20-Poly1305, BoringSSL's assembly: 40 % more per core than the
//! pure-Rust one the `age` crate uses, on this project's test machine),
//! several chunks at once on every core, rather than through the `age`
//! crate's writer, which allocates and copies each chunk: reel-write
//! seals on its way to the drive, where every copy costs streaming rate.
//! What it makes is checked by the `age` crate and the `age` command in
//! the tests; decryption is the `age` crate's.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::Mac as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use super::sealed::{CHUNK, MAGIC, Recipients, padded_plain};

const TAG: usize = 16;
/// A whole sealed chunk: its plaintext and its tag.
const SEALED_CHUNK: usize = CHUNK as usize + TAG;

/// The words of reel's note: every word printable ASCII, as a stanza's
/// arguments must be.
fn note(recipients: &Recipients) -> Vec<String> {
    let text = format!(
        "reel: this tape file is a tar archive encrypted with age (age-encryption.org) for {}; decrypt it with: age -d -i IDENTITY-FILE | tar -xvf -",
        recipients.texts.join(" and ")
    );
    text.split(' ')
        .map(|w| w.chars().filter(|c| c.is_ascii_graphic()).collect())
        .filter(|w: &String| !w.is_empty())
        .collect()
}

/// One header stanza: `-> tag args…`, then the body in base64 lines of
/// 64 characters, the last one shorter (empty when need be).
fn stanza(out: &mut Vec<u8>, words: &[String], body: &[u8]) {
    out.extend_from_slice(b"->");
    for w in words {
        out.push(b' ');
        out.extend_from_slice(w.as_bytes());
    }
    out.push(b'\n');
    let text = STANDARD_NO_PAD.encode(body);
    let mut lines = text.as_bytes().chunks(64).peekable();
    while let Some(line) = lines.next() {
        out.extend_from_slice(line);
        out.push(b'\n');
        if line.len() == 64 && lines.peek().is_none() {
            out.push(b'\n');
        }
    }
    if text.is_empty() {
        out.push(b'\n');
    }
}

/// The chunks of one age file being sealed, in order.
struct Stream {
    aead: LessSafeKey,
    counter: u64,
}

impl Stream {
    /// The header and payload nonce of a new age file for `recipients`,
    /// and its stream.
    fn begin(recipients: &Recipients) -> io::Result<(Vec<u8>, Stream)> {
        let mut key = [0u8; 16];
        crate::fsutil::random_bytes(&mut key)?;
        let file_key = age_core::format::FileKey::new(Box::new(key));
        let mut head = MAGIC.to_vec();
        if recipients.passphrase.is_none() {
            stanza(&mut head, &note(recipients), &[]);
        }
        let mut wrap = |r: &dyn age::Recipient| -> io::Result<()> {
            let (wrapped, _) = r.wrap_file_key(&file_key).map_err(io::Error::other)?;
            for s in wrapped {
                let words: Vec<String> = std::iter::once(s.tag).chain(s.args).collect();
                stanza(&mut head, &words, &s.body);
            }
            Ok(())
        };
        if let Some(passphrase) = &recipients.passphrase {
            // age allows no other stanza beside a passphrase's, not even
            // reel's note: the tape's label and REEL-README.txt say it.
            let mut r = age::scrypt::Recipient::new(passphrase.clone());
            r.set_work_factor(super::sealed::PASSPHRASE_WORK_FACTOR);
            wrap(&r)?;
        } else {
            for r in &recipients.keys {
                wrap(r)?;
            }
        }
        head.extend_from_slice(b"---");
        let secret = {
            use age::secrecy::ExposeSecret;
            *file_key.expose_secret()
        };
        let mac_key = age_core::primitives::hkdf(&[], b"header", &secret);
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&mac_key)
            .expect("HMAC takes a key of any length");
        mac.update(&head);
        head.push(b' ');
        head.extend_from_slice(
            STANDARD_NO_PAD
                .encode(mac.finalize().into_bytes())
                .as_bytes(),
        );
        head.push(b'\n');
        let mut nonce = [0u8; 16];
        crate::fsutil::random_bytes(&mut nonce)?;
        head.extend_from_slice(&nonce);
        let payload = age_core::primitives::hkdf(&nonce, b"payload", &secret);
        let stream = Stream {
            aead: LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, &payload).expect("a 32-byte key"),
            ),
            counter: 0,
        };
        Ok((head, stream))
    }

    /// Seal the next chunk (at most 64 KiB) in place: its tag.
    fn seal(&mut self, chunk: &mut [u8], last: bool) -> [u8; TAG] {
        let tag = self.seal_at(self.counter, chunk, last);
        self.counter += 1;
        tag
    }

    /// Seal chunk number `counter` in place: its tag.
    fn seal_at(&self, counter: u64, chunk: &mut [u8], last: bool) -> [u8; TAG] {
        debug_assert!(chunk.len() <= CHUNK as usize);
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&counter.to_be_bytes());
        nonce[11] = u8::from(last);
        let tag = self
            .aead
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), chunk)
            .expect("a chunk is far below ChaCha20's limit");
        tag.as_ref().try_into().expect("a 16-byte tag")
    }
}

/// An archive being sealed into a file (or any writer), as it is made.
pub struct Sealer<W: Write = BufWriter<File>> {
    out: W,
    stream: Stream,
    /// The header's and the nonce's bytes.
    base: u64,
    /// Plaintext not sealed yet: a chunk is sealed once more follows, as
    /// only the last one is marked so.
    chunk: Vec<u8>,
    plain: u64,
}

impl Sealer {
    /// Sealed into `file`, through a large buffer.
    pub fn new(file: File, recipients: &Recipients) -> io::Result<Sealer> {
        Sealer::into(BufWriter::with_capacity(4 << 20, file), recipients)
    }

    /// Seal the last chunk and make the file durable: the sealed length.
    pub fn finish(self) -> io::Result<u64> {
        let (out, sealed) = self.end()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        // A pipe (--raw) cannot be synced, and need not be.
        if file.metadata()?.is_file() {
            file.sync_all()?;
        }
        Ok(sealed)
    }
}

impl<W: Write> Sealer<W> {
    /// Sealed into `out`.
    pub fn into(mut out: W, recipients: &Recipients) -> io::Result<Sealer<W>> {
        let (head, stream) = Stream::begin(recipients)?;
        out.write_all(&head)?;
        Ok(Sealer {
            out,
            stream,
            base: head.len() as u64,
            chunk: Vec::with_capacity(CHUNK as usize),
            plain: 0,
        })
    }

    /// Plaintext to add so that the sealed file is whole blocks.
    pub fn padding(&self, block: u64) -> u64 {
        padded_plain(self.base, self.plain, block) - self.plain
    }

    /// Seal the last chunk: the writer and the sealed length.
    pub fn end(mut self) -> io::Result<(W, u64)> {
        let tag = self.stream.seal(&mut self.chunk, true);
        self.out.write_all(&self.chunk)?;
        self.out.write_all(&tag)?;
        let sealed = super::sealed::sealed_len(self.base, self.plain);
        Ok((self.out, sealed))
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, mut b: &[u8]) -> io::Result<usize> {
        let n = b.len();
        while !b.is_empty() {
            if self.chunk.len() == CHUNK as usize {
                let tag = self.stream.seal(&mut self.chunk, false);
                self.out.write_all(&self.chunk)?;
                self.out.write_all(&tag)?;
                self.chunk.clear();
            }
            let take = b.len().min(CHUNK as usize - self.chunk.len());
            self.chunk.extend_from_slice(&b[..take]);
            b = &b[take..];
        }
        self.plain += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Flushing would seal a short chunk in the middle: only `end`.
        Ok(())
    }
}

/// A clear archive of `len` bytes read as its sealed file: what
/// reel-write streams to tape when the archive's stream has an
/// `[[archive_key]]`. The plaintext is padded with zeros (after the
/// archive's own end) so that the sealed file is whole `block`s. Chunks
/// are read and sealed in the caller's buffer where they fit whole
/// (several at once on every core), through a chunk-sized buffer where
/// they do not.
pub struct SealingReader<R> {
    inner: R,
    stream: Stream,
    /// The source's bytes not read yet; the zeros of the padding follow.
    source_left: u64,
    /// Plaintext (source and padding) not sealed yet.
    plain_left: u64,
    /// Sealed bytes made and not yet given: the header, or a chunk that
    /// did not fit whole in the caller's buffer.
    pending: Vec<u8>,
    at: usize,
}

impl<R: Read> SealingReader<R> {
    pub fn new(
        inner: R,
        len: u64,
        recipients: &Recipients,
        block: u64,
    ) -> io::Result<SealingReader<R>> {
        let (head, stream) = Stream::begin(recipients)?;
        let plain = padded_plain(head.len() as u64, len, block);
        let mut pending = head;
        pending.reserve(SEALED_CHUNK.saturating_sub(pending.len()));
        Ok(SealingReader {
            inner,
            stream,
            source_left: len,
            plain_left: plain,
            pending,
            at: 0,
        })
    }

    /// Read the next chunks into `buf` (room for at least one and its tag)
    /// and seal them in place, on every core when there are several:
    /// their sealed length.
    fn chunks_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut lens = Vec::new();
        let mut at = 0;
        while self.plain_left > 0 {
            let len = self.plain_left.min(CHUNK) as usize;
            if buf.len() - at < len + TAG {
                break;
            }
            self.read_plain(&mut buf[at..at + len])?;
            self.plain_left -= len as u64;
            lens.push(len);
            at += len + TAG;
        }
        let (first, last) = (self.stream.counter, self.plain_left == 0);
        let n = lens.len();
        let stream = &self.stream;
        let seal = |(i, chunk): (usize, &mut [u8])| {
            let len = lens[i];
            let (plain, tag) = chunk.split_at_mut(len);
            let t = stream.seal_at(first + i as u64, plain, last && i + 1 == n);
            tag[..TAG].copy_from_slice(&t);
        };
        let sealed = &mut buf[..at];
        if n > 1 {
            use rayon::prelude::*;
            sealed
                .par_chunks_mut(SEALED_CHUNK)
                .enumerate()
                .for_each(seal);
        } else {
            sealed.chunks_mut(SEALED_CHUNK).enumerate().for_each(seal);
        }
        self.stream.counter += n as u64;
        Ok(at)
    }

    /// The next `plain.len()` bytes of plaintext: the source's, then the
    /// padding's zeros.
    fn read_plain(&mut self, plain: &mut [u8]) -> io::Result<()> {
        let from_source = self.source_left.min(plain.len() as u64) as usize;
        let mut got = 0;
        while got < from_source {
            match self.inner.read(&mut plain[got..from_source]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the archive is shorter than when it was opened",
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        plain[from_source..].fill(0);
        self.source_left -= from_source as u64;
        Ok(())
    }
}

impl<R: Read> Read for SealingReader<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            if self.plain_left == 0 {
                return Ok(0);
            }
            let whole = self.plain_left.min(CHUNK) as usize + TAG;
            if b.len() >= whole {
                return self.chunks_into(b);
            }
            let mut chunk = std::mem::take(&mut self.pending);
            chunk.resize(whole, 0);
            let n = self.chunks_into(&mut chunk)?;
            chunk.truncate(n);
            self.pending = chunk;
            self.at = 0;
        }
        let n = b.len().min(self.pending.len() - self.at);
        b[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::sealed::is_sealed;
    use age::x25519;

    fn open(sealed: &[u8], id: &x25519::Identity) -> Vec<u8> {
        let mut plain = Vec::new();
        age::Decryptor::new(sealed)
            .unwrap()
            .decrypt(std::iter::once(id as &dyn age::Identity))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        plain
    }

    #[test]
    fn a_clear_archive_reads_as_its_sealed_file_in_whole_blocks() {
        let id = x25519::Identity::generate();
        let recipients = Recipients::parse(&[id.to_public().to_string()]).unwrap();
        for len in [0usize, 1, 4096, CHUNK as usize, 3 << 20] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let mut r = SealingReader::new(&data[..], len as u64, &recipients, 256 << 10).unwrap();
            // Read in odd sizes, as the ring's filler may: some take whole
            // chunks, some not.
            let mut sealed = Vec::new();
            let mut buf = vec![0; 3 * SEALED_CHUNK + 1000];
            for size in [100, SEALED_CHUNK, 3 * SEALED_CHUNK + 1000, 77_777]
                .iter()
                .cycle()
            {
                let n = r.read(&mut buf[..*size]).unwrap();
                if n == 0 {
                    break;
                }
                sealed.extend_from_slice(&buf[..n]);
            }
            assert_eq!(sealed.len() % (256 << 10), 0, "{len}");
            assert!(is_sealed(&sealed));
            let plain = open(&sealed, &id);
            assert_eq!(&plain[..len], &data[..], "{len}");
            assert!(plain[len..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn a_source_cut_short_is_an_error_not_zeros() {
        let id = x25519::Identity::generate();
        let recipients = Recipients::parse(&[id.to_public().to_string()]).unwrap();
        let data = vec![1u8; 1000];
        let mut r = SealingReader::new(&data[..], 5000, &recipients, 4096).unwrap();
        let err = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn the_sealer_makes_what_age_opens_whatever_the_writes() {
        let id = x25519::Identity::generate();
        let two = x25519::Identity::generate();
        let recipients =
            Recipients::parse(&[id.to_public().to_string(), two.to_public().to_string()]).unwrap();
        for len in [0usize, 10, CHUNK as usize, 2 * CHUNK as usize + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
            let mut s = Sealer::into(Vec::new(), &recipients).unwrap();
            for piece in data.chunks(30_000) {
                s.write_all(piece).unwrap();
            }
            let (sealed, n) = s.end().unwrap();
            assert_eq!(sealed.len() as u64, n);
            assert_eq!(open(&sealed, &id), data);
            assert_eq!(open(&sealed, &two), data);
        }
    }

    #[test]
    fn a_passphrase_seals_alone_and_opens_with_that_passphrase_only() {
        use crate::archive::sealed::{Identities, OpenError};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let f = dir.path().join(name);
            std::fs::write(&f, text).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
            f
        };
        let right = file("right", "correct horse battery staple\n");
        let recipients = Recipients::passphrase("vault", &right).unwrap();
        assert_eq!(recipients.fingerprints(), ["passphrase:vault"]);
        let data = vec![9u8; 100_000];
        let mut r = SealingReader::new(&data[..], 100_000, &recipients, 4096).unwrap();
        let mut sealed = Vec::new();
        r.read_to_end(&mut sealed).unwrap();
        // age allows the scrypt stanza alone: no note.
        let head = String::from_utf8_lossy(&sealed[..200]);
        assert!(
            head.starts_with("age-encryption.org/v1\n-> scrypt ") && !head.contains("reel:"),
            "{head}"
        );
        let mut plain = Vec::new();
        Identities::passphrase(&right)
            .unwrap()
            .open(&sealed[..])
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(&plain[..data.len()], &data[..]);
        let wrong = file("wrong", "incorrect horse\n");
        match Identities::passphrase(&wrong).unwrap().open(&sealed[..]) {
            Err(OpenError::NotMine(m)) => assert!(m.contains("passphrase that is not"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        let keys = file(
            "keys",
            &format!("{}\n", {
                use age::secrecy::ExposeSecret;
                x25519::Identity::generate()
                    .to_string()
                    .expose_secret()
                    .to_string()
            }),
        );
        match Identities::load(&keys).unwrap().open(&sealed[..]) {
            Err(OpenError::NotMine(m)) => assert!(
                m.contains("with a passphrase, and this host has none"),
                "{m}"
            ),
            other => panic!("{:?}", other.err()),
        }
        // A passphrase file others may read is refused, naming it.
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Recipients::passphrase("vault", &wrong).err().unwrap();
        assert!(
            err.contains("readable by others") && err.contains("wrong"),
            "{err}"
        );
    }
}
