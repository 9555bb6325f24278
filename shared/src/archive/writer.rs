//! Writing an archive: headers and data at known offsets, the SHA-256 of
//! every member's data computed in the one read of the data.
//!
//! A large file going into a file sink is copied by the kernel
//! (`copy_file_range`: no trip through user memory, one writer per archive
//! file, so no contention on its lock) while worker threads hash it from a
//! read-only mapping of the same pages, one file per core. The caller goes
//! on with the next members; `finish` waits for the hashes and hands them
//! back. SHA-256 runs at about 1 GB/s on one core, so hashing several
//! files at once is where the time is won.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use sha2::{Digest as _, Sha256};

use super::header::{BLOCK, Member, encode, encode_aligned, padding};
use crate::manifest::Digest;
use crate::sha;

/// Where the archive goes.
pub enum Sink {
    /// A file: data is written at known offsets, large files in parallel.
    File(File),
    /// A stream (stdout for `--raw`): everything goes in order.
    Stream(Box<dyn Write>),
    /// Sealed with age into a file (or stdout), in order
    /// ([`super::sealed`]).
    Sealed(Box<super::seal::Sealer>),
}

/// The digest of a member's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashed {
    /// No data (not a file).
    None,
    /// Computed as it was written.
    Now(Digest),
    /// Being computed: `finish` returns it under this ticket.
    Later(usize),
}

/// Where a member landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Offset of the member's first header (the pax header if any).
    pub offset: u64,
    /// Offset of its data.
    pub data_offset: u64,
    /// SHA-256 of its data as read.
    pub sha256: Hashed,
}

/// A finished archive.
pub struct Finished {
    pub sink: Sink,
    /// Its size, padded to whole tape blocks.
    pub size: u64,
    /// The digests of the members added with `Hashed::Later`, by ticket.
    pub digests: HashMap<usize, Digest>,
}

/// One large file to hash.
struct Job {
    ticket: usize,
    src: File,
    len: u64,
}

/// The threads hashing large files.
struct Workers {
    jobs: Sender<Job>,
    done: Receiver<(usize, io::Result<Digest>)>,
    threads: Vec<JoinHandle<()>>,
    queued: usize,
}

impl Workers {
    fn start() -> Workers {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (jobs, rx) = bounded::<Job>(n);
        let (tx, done) = unbounded();
        let mut threads = Vec::with_capacity(n);
        for _ in 0..n {
            let (rx, tx) = (rx.clone(), tx.clone());
            threads.push(std::thread::spawn(move || hash_jobs(&rx, &tx)));
        }
        Workers {
            jobs,
            done,
            threads,
            queued: 0,
        }
    }

    fn finish(self) -> io::Result<HashMap<usize, Digest>> {
        drop(self.jobs);
        for t in self.threads {
            t.join().expect("a hashing thread does not panic");
        }
        let mut digests = HashMap::with_capacity(self.queued);
        for (ticket, result) in self.done.try_iter() {
            digests.insert(ticket, result?);
        }
        debug_assert_eq!(digests.len(), self.queued);
        Ok(digests)
    }
}

/// A large file being hashed through a read-only mapping.
struct MappedHash {
    ticket: usize,
    map: memmap2::Mmap,
    /// Bytes hashed so far (whole blocks).
    at: usize,
    lane: sha::Lane,
}

impl MappedHash {
    fn start(job: Job) -> io::Result<MappedHash> {
        // SAFETY: the bytes mapped must not change while the map lives.
        // The file is a staged copy in the cache, which is reel's alone
        // (0700), and reel never writes a published staged copy in place:
        // reel-stage writes a temporary and renames it over, which leaves
        // this inode as it is, and reel-verify only unlinks. Its length was
        // checked against the record, so the map lies within the file. What
        // reel cannot prevent is root truncating or rewriting the copy by
        // hand meanwhile: truncating kills the process with SIGBUS (the
        // item stays queued and is packed again); the digest check after
        // the archive is complete is the last line against a rewrite.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(job.len as usize)
                .map(&job.src)?
        };
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedHash {
            ticket: job.ticket,
            map,
            at: 0,
            lane: sha::Lane::default(),
        })
    }

    /// Where the next whole blocks to hash lie, up to a chunk; empty at
    /// the tail.
    fn next(&mut self) -> std::ops::Range<usize> {
        let whole = self.map.len() / 64 * 64;
        let n = (whole - self.at).min(CHUNK);
        self.at += n;
        self.at - n..self.at
    }

    fn done(&self) -> bool {
        self.map.len() - self.at < 64
    }

    fn finish(self) -> Digest {
        Digest(self.lane.finish(&self.map[self.at..]))
    }
}

/// A hashing thread: two files at a time when two are waiting, their
/// blocks interleaved (see `sha`), else one.
fn hash_jobs(jobs: &Receiver<Job>, done: &Sender<(usize, io::Result<Digest>)>) {
    let mut active: Vec<MappedHash> = Vec::with_capacity(2);
    loop {
        while active.len() < 2 {
            let job = if active.is_empty() {
                match jobs.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                }
            } else {
                match jobs.try_recv() {
                    Ok(j) => j,
                    Err(_) => break,
                }
            };
            let ticket = job.ticket;
            match MappedHash::start(job) {
                Ok(h) => active.push(h),
                Err(e) => {
                    let _ = done.send((ticket, Err(e)));
                }
            }
        }
        match active.as_mut_slice() {
            [] => {}
            [one] => {
                let r = one.next();
                one.lane.update(&one.map[r]);
            }
            [x, y, ..] => {
                let (a, b) = (x.next(), y.next());
                sha::pair(&mut x.lane, &x.map[a], &mut y.lane, &y.map[b]);
            }
        }
        let mut k = 0;
        while k < active.len() {
            if active[k].done() {
                let h = active.swap_remove(k);
                let _ = done.send((h.ticket, Ok(h.finish())));
            } else {
                k += 1;
            }
        }
    }
}

/// Copy `len` bytes of `src` from `from` to `out` at `at`, in the kernel
/// when it can (`in_kernel`, cleared when it cannot: another file system,
/// an old kernel); through a buffer otherwise.
fn copy_range(
    src: &File,
    from: u64,
    out: &File,
    at: u64,
    len: u64,
    in_kernel: &mut bool,
) -> io::Result<()> {
    use nix::errno::Errno;
    let mut done = 0u64;
    while done < len && *in_kernel {
        let mut off_in = (from + done) as i64;
        let mut off_out = (at + done) as i64;
        let want = (len - done).min(1 << 30) as usize;
        match nix::fcntl::copy_file_range(src, Some(&mut off_in), out, Some(&mut off_out), want) {
            Ok(0) => return Err(short()),
            Ok(n) => done += n as u64,
            Err(Errno::EINTR) => {}
            Err(Errno::EXDEV | Errno::ENOSYS | Errno::EINVAL | Errno::EOPNOTSUPP) => {
                *in_kernel = false;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = vec![0u8; (4 * CHUNK).min((len - done) as usize)];
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = src.read_at(&mut buf[..want], from + done)?;
        if n == 0 {
            return Err(short());
        }
        out.write_all_at(&buf[..n], at + done)?;
        done += n as u64;
    }
    Ok(())
}

pub struct ArchiveWriter {
    sink: Sink,
    offset: u64,
    workers: Option<Workers>,
    /// A file sink's bytes before this were handed to the kernel to
    /// write out (`sync_file_range`), so that the disk writes while the
    /// rest is packed and the final fsync has little left to wait for.
    written_back: u64,
    /// The cached pages before this were let go.
    dropped: u64,
    /// `copy_file_range` works between the cache and the archive.
    in_kernel: bool,
}

const CHUNK: usize = 1 << 20;
/// A file sink is written out in steps of this, and large files copied in
/// steps of it.
const WRITE_BACK: u64 = 32 << 20;
/// Files from this size on go to the workers (file sinks only).
const LARGE: u64 = 4 << 20;
/// Their data starts on a multiple of this: the block size of the file
/// systems that can share blocks between files.
const ALIGN: u64 = 4096;

impl ArchiveWriter {
    pub fn new(sink: Sink) -> Self {
        ArchiveWriter {
            sink,
            offset: 0,
            workers: None,
            written_back: 0,
            dropped: 0,
            in_kernel: true,
        }
    }

    /// Once a step's worth of a file sink is written, have the kernel
    /// start writing it to disk (not waiting), and let go of the cached
    /// pages of the step before, written out by now: reel-write reads the
    /// archive with `O_DIRECT`, so they would only push out what is read
    /// again (the staged copies, the catalog).
    fn write_back(&mut self) {
        let Sink::File(f) = &self.sink else {
            return;
        };
        if self.offset - self.written_back < WRITE_BACK {
            return;
        }
        crate::fsutil::start_write_back(f, self.written_back, self.offset - self.written_back);
        // Four steps behind: written out by now, unless the disk is far
        // slower than the copy (then those pages stay until the end).
        let clean = self.written_back.saturating_sub(4 * WRITE_BACK);
        crate::fsutil::drop_cached(f, self.dropped, clean.saturating_sub(self.dropped));
        self.dropped = self.dropped.max(clean);
        self.written_back = self.offset;
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.sink {
            Sink::File(f) => f.write_all_at(bytes, self.offset)?,
            Sink::Stream(w) => w.write_all(bytes)?,
            Sink::Sealed(w) => w.write_all(bytes)?,
        }
        self.offset += bytes.len() as u64;
        self.write_back();
        Ok(())
    }

    /// Add a member whose data is `data`, not hashed here (the caller
    /// hashes it elsewhere): `Hashed::None`.
    pub fn add_unhashed(&mut self, m: &Member, data: &[u8]) -> io::Result<Placed> {
        debug_assert_eq!(m.data_size(), data.len() as u64);
        let offset = self.offset;
        self.put(&encode(m))?;
        let data_offset = self.offset;
        self.put(data)?;
        self.put(&vec![0; padding(data.len() as u64)])?;
        Ok(Placed {
            offset,
            data_offset,
            sha256: Hashed::None,
        })
    }

    /// Add a member whose data (if any) is `data`.
    pub fn add_bytes(&mut self, m: &Member, data: &[u8]) -> io::Result<Placed> {
        let mut placed = self.add_unhashed(m, data)?;
        if !data.is_empty() {
            placed.sha256 = Hashed::Now(Digest(Sha256::digest(data).into()));
        }
        Ok(placed)
    }

    /// Add a whole file of `len` bytes. A large one going to a file sink is
    /// copied by the kernel and hashed in the background (`Hashed::Later`);
    /// anything else in line (`Hashed::Now`), the background one through a
    /// read-only map of `src`: its first `len` bytes must exist and stay
    /// as they are until the archive is finished (a staged copy; see
    /// `MappedHash::start`). The caller compares the digest with what the
    /// manifest promises.
    pub fn add_whole_file(&mut self, m: &Member, src: File, len: u64) -> io::Result<Placed> {
        if len < LARGE || !matches!(self.sink, Sink::File(_)) {
            return self.add_file(m, &src, 0, len, None);
        }
        debug_assert_eq!(m.data_size(), len);
        let offset = self.offset;
        self.put(&encode_aligned(m, offset, ALIGN))?;
        let data_offset = self.offset;
        let actual = src.metadata()?.len();
        if actual < len {
            return Err(short());
        }
        let workers = self.workers.get_or_insert_with(Workers::start);
        let ticket = workers.queued;
        workers.queued += 1;
        let job = Job {
            ticket,
            src: src.try_clone()?,
            len,
        };
        if workers.jobs.send(job).is_err() {
            return Err(io::Error::other("the hashing threads are gone"));
        }
        let mut done = 0;
        while done < len {
            let step = (len - done).min(WRITE_BACK);
            let Sink::File(out) = &self.sink else {
                unreachable!("checked above")
            };
            copy_range(
                &src,
                done,
                out,
                data_offset + done,
                step,
                &mut self.in_kernel,
            )?;
            done += step;
            self.offset += step;
            self.write_back();
        }
        self.put(&vec![0; padding(len)])?;
        Ok(Placed {
            offset,
            data_offset,
            sha256: Hashed::Later(ticket),
        })
    }

    /// Add a file member whose data is `len` bytes of `src` from `start`,
    /// in line. `also`, when given, is fed the same bytes (the digest of a
    /// whole file whose parts go into several archives).
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
        let mut member = Sha256::new();
        let mut buf = vec![0u8; (4 * CHUNK).min(len as usize).max(1)];
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(buf.len() as u64) as usize;
            let n = src.read_at(&mut buf[..want], start + done)?;
            if n == 0 {
                return Err(short());
            }
            member.update(&buf[..n]);
            if let Some(a) = also.as_deref_mut() {
                a.update(&buf[..n]);
            }
            match &mut self.sink {
                Sink::File(out) => out.write_all_at(&buf[..n], data_offset + done)?,
                Sink::Stream(w) => w.write_all(&buf[..n])?,
                Sink::Sealed(w) => w.write_all(&buf[..n])?,
            }
            done += n as u64;
            self.offset = data_offset + done;
            self.write_back();
        }
        self.put(&vec![0; padding(len)])?;
        Ok(Placed {
            offset,
            data_offset,
            sha256: Hashed::Now(Digest(member.finalize().into())),
        })
    }

    /// End the archive (two zero blocks), pad it to whole tape blocks of
    /// `block_size` (a sealed one so that its sealed file is), wait for
    /// the background copies and make it durable. `size` is the length of
    /// what the sink received: the sealed file's for a sealed archive.
    pub fn finish(mut self, block_size: u64) -> io::Result<Finished> {
        self.put(&[0; 2 * BLOCK])?;
        let pad = match &self.sink {
            Sink::Sealed(w) => w.padding(block_size),
            _ => (block_size - self.offset % block_size) % block_size,
        };
        // In pieces: a sealed archive's padding may be large.
        let zeros = vec![0u8; (pad as usize).min(CHUNK)];
        let mut left = pad;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.put(&zeros[..n])?;
            left -= n as u64;
        }
        let digests = match self.workers.take() {
            Some(w) => w.finish()?,
            None => HashMap::new(),
        };
        let size = match self.sink {
            Sink::File(ref f) => {
                f.set_len(self.offset)?;
                f.sync_all()?;
                crate::fsutil::drop_cached(f, 0, self.offset);
                self.offset
            }
            Sink::Stream(ref mut w) => {
                w.flush()?;
                self.offset
            }
            Sink::Sealed(w) => {
                let sealed = w.finish()?;
                return Ok(Finished {
                    sink: Sink::Stream(Box::new(io::sink())),
                    size: sealed,
                    digests,
                });
            }
        };
        Ok(Finished {
            sink: self.sink,
            size,
            digests,
        })
    }
}

fn short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the staged copy is shorter than its record",
    )
}
