//! Writing an archive: headers and data at known offsets, the SHA-256 of
//! every member's data and of the whole archive computed in the one read
//! of the data. A large file is memory-mapped and hashed on one core while
//! the other writes it to the archive.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use sha2::{Digest as _, Sha256};

use super::header::{BLOCK, Member, encode, padding};
use crate::manifest::Digest;

/// Where the archive goes.
pub enum Sink {
    /// A file: data is copied in the kernel, written at known offsets.
    File(File),
    /// A stream (stdout for `--raw`): everything goes through a buffer.
    Stream(Box<dyn Write>),
}

/// Where a member landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Offset of the member's first header (the pax header if any).
    pub offset: u64,
    /// Offset of its data.
    pub data_offset: u64,
    /// SHA-256 of its data as read (files only).
    pub sha256: Option<Digest>,
}

pub struct ArchiveWriter {
    sink: Sink,
    offset: u64,
    sha: Sha256,
}

const CHUNK: usize = 1 << 20;
/// Files below this are read through one buffer; larger ones are mapped.
const SMALL: u64 = 4 << 20;

impl ArchiveWriter {
    pub fn new(sink: Sink) -> Self {
        ArchiveWriter {
            sink,
            offset: 0,
            sha: Sha256::new(),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sha.update(bytes);
        match &mut self.sink {
            Sink::File(f) => f.write_all_at(bytes, self.offset)?,
            Sink::Stream(w) => w.write_all(bytes)?,
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Add a member whose data (if any) is `data`.
    pub fn add_bytes(&mut self, m: &Member, data: &[u8]) -> io::Result<Placed> {
        debug_assert_eq!(m.data_size(), data.len() as u64);
        let offset = self.offset;
        self.put(&encode(m))?;
        let data_offset = self.offset;
        self.put(data)?;
        self.put(&vec![0; padding(data.len() as u64)])?;
        let sha = (!data.is_empty()).then(|| Digest(Sha256::digest(data).into()));
        Ok(Placed {
            offset,
            data_offset,
            sha256: sha,
        })
    }

    /// Add a file member whose data is `len` bytes of `src` from `start`.
    /// Returns the digest of the data as read: the caller compares it with
    /// what the manifest promises.
    /// `also`, when given, is fed the same bytes (the digest of a whole
    /// file whose parts go into several archives).
    pub fn add_file(
        &mut self,
        m: &Member,
        src: &File,
        start: u64,
        len: u64,
        mut also: Option<&mut Sha256>,
    ) -> io::Result<Placed> {
        debug_assert_eq!(m.data_size(), len);
        let offset = self.offset;
        self.put(&encode(m))?;
        let data_offset = self.offset;
        let digest = match &mut self.sink {
            Sink::File(out) if len >= SMALL => {
                // A large file: map it, hash it on one core while the other
                // writes it; one pass over memory each, no copy to a buffer.
                // SAFETY: a staged copy is not written while it is packed;
                // if it were, the digest check below catches the difference.
                let map = unsafe {
                    memmap2::MmapOptions::new()
                        .offset(start)
                        .len(len as usize)
                        .map(src)?
                };
                let _ = map.advise(memmap2::Advice::Sequential);
                let out: &File = out;
                let sha = &mut self.sha;
                let data: &[u8] = &map;
                std::thread::scope(|s| -> io::Result<Digest> {
                    // The member's digest and the archive's are two passes
                    // over the same bytes: each on its own thread, beside
                    // the one writing.
                    let member = s.spawn(move || {
                        let mut member = Sha256::new();
                        for chunk in data.chunks(CHUNK) {
                            member.update(chunk);
                            if let Some(a) = also.as_deref_mut() {
                                a.update(chunk);
                            }
                        }
                        Digest(member.finalize().into())
                    });
                    let archive = s.spawn(move || {
                        for chunk in data.chunks(CHUNK) {
                            sha.update(chunk);
                        }
                    });
                    let mut at = data_offset;
                    let mut written = Ok(());
                    for chunk in data.chunks(8 * CHUNK) {
                        if let Err(e) = out.write_all_at(chunk, at) {
                            written = Err(e);
                            break;
                        }
                        at += chunk.len() as u64;
                    }
                    archive.join().expect("the hashing thread does not panic");
                    let digest = member.join().expect("the hashing thread does not panic");
                    written.map(|()| digest)
                })?
            }
            sink => {
                let mut member = Sha256::new();
                let mut buf = vec![0u8; CHUNK.min(len as usize).max(1)];
                let mut done = 0u64;
                while done < len {
                    let want = (len - done).min(buf.len() as u64) as usize;
                    let n = src.read_at(&mut buf[..want], start + done)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the staged copy is shorter than its record",
                        ));
                    }
                    member.update(&buf[..n]);
                    if let Some(a) = also.as_deref_mut() {
                        a.update(&buf[..n]);
                    }
                    self.sha.update(&buf[..n]);
                    match sink {
                        Sink::File(out) => out.write_all_at(&buf[..n], data_offset + done)?,
                        Sink::Stream(w) => w.write_all(&buf[..n])?,
                    }
                    done += n as u64;
                }
                Digest(member.finalize().into())
            }
        };
        self.offset += len;
        self.put(&vec![0; padding(len)])?;
        Ok(Placed {
            offset,
            data_offset,
            sha256: Some(digest),
        })
    }

    /// End the archive (two zero blocks) and pad it to whole tape blocks of
    /// `block_size`. Returns the sink, the archive's size and SHA-256.
    pub fn finish(mut self, block_size: u64) -> io::Result<(Sink, u64, Digest)> {
        self.put(&[0; 2 * BLOCK])?;
        let pad = (block_size - self.offset % block_size) % block_size;
        self.put(&vec![0; pad as usize])?;
        match &mut self.sink {
            Sink::File(f) => {
                f.set_len(self.offset)?;
                f.sync_all()?;
            }
            Sink::Stream(w) => w.flush()?,
        }
        let sha = Digest(self.sha.finalize().into());
        Ok((self.sink, self.offset, sha))
    }
}
