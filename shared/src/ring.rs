//! The memory ring between the cache and the drive (invariant 5 in ARCHITECTURE.md):
//! mbuffer-style double buffering. A reader thread fills page-aligned
//! blocks with big sequential reads (up to [`READ_BATCH`] of blocks per
//! call); the writer takes whole blocks, one write() each, or several at
//! once for a drive that writes them as one request. The writer starts
//! only once the ring is `start_fill` full and, after it ran dry, waits
//! for `start_fill` again (mbuffer's `-P`), so a slow source makes the
//! drive pause once, cleanly, instead of shoe-shining; every time the
//! writer finds the ring empty counts as a starvation.
//!
//! **Pacing** (`Ring::pace`): a drive that is fed more slowly than its top
//! speed but faster than its slowest streaming speed can keep streaming if
//! the writer hands it blocks at the source's rate instead of in bursts. So
//! once started, the writer releases blocks at the smoothed input rate,
//! scaled by how full the ring is (faster above half full, slower below),
//! never below the drive's minimum rate. A source faster than the drive
//! fills the ring and the drive's own speed sets the pace; a source slower
//! than the drive's minimum drains it, and then the writer waits for the
//! start mark again, as without pacing: one clean stop instead of many.
//!
//! Full blocks go to the writer through a channel, in order; written blocks
//! come back on a free list, so no block is ever in two hands. The free
//! list hands out the free block lowest in the mapping first: a writer
//! that keeps up gets the same few blocks again and again, and a big ring
//! touches (makes resident) only as much memory as the reader ever gets
//! ahead, where a queue would cycle through all of it (on this project's
//! virtual machine the first touch of a GiB costs seconds).
//!
//! The ring's memory is one anonymous mapping, asked for transparent huge
//! pages (`MADV_HUGEPAGE`; where the kernel does not give them it is 4 KiB
//! pages, as before), and each block is a fixed slice of it: a 1 GiB ring
//! of 4 KiB pages took 262,144 page faults to fill once, three seconds of
//! system time on this project's virtual machine, against 512 with huge
//! pages.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

/// One block of the ring: `cap` bytes of the ring's mapping from `offset`
/// (page-aligned, as the block size is a multiple of 4 KiB), and how much
/// of it is used. The mapping is anonymous: its pages are only touched
/// (and counted in the resident size) when data first lands there, as with
/// mbuffer's malloc. (The allocator's zeroed memory is cleared with memset
/// when aligned to a page: a 1 GiB ring took half a second to set up.)
pub struct Block {
    region: Arc<memmap2::MmapRaw>,
    offset: usize,
    cap: usize,
    len: usize,
}

/// `blocks` blocks of `size` bytes, each its own part of one mapping.
fn blocks_of(size: usize, blocks: usize) -> Vec<Block> {
    let size = size.max(1);
    let total = size
        .checked_mul(blocks)
        .unwrap_or_else(|| panic!("a ring of {blocks} blocks of {size} bytes is too large"));
    let map = memmap2::MmapOptions::new()
        .len(total)
        .map_anon()
        .unwrap_or_else(|e| panic!("cannot map {total} bytes for the ring: {e}"));
    // Fewer page faults where the kernel has huge pages; nothing lost where
    // it has not.
    if let Err(e) = map.advise(memmap2::Advice::HugePage) {
        log::debug!("the ring gets no huge pages: {e}");
    }
    let region = Arc::new(memmap2::MmapRaw::from(map));
    (0..blocks)
        .map(|i| Block {
            region: region.clone(),
            offset: i * size,
            cap: size,
            len: 0,
        })
        .collect()
}

impl Block {
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `blocks_of` gives each block its own range of the
        // mapping, inside it; a block is never cloned and `&mut self` is
        // its only handle, so no other reference to these bytes exists.
        // The mapping lives as long as any block does (the `Arc`).
        unsafe {
            std::slice::from_raw_parts_mut(self.region.as_mut_ptr().add(self.offset), self.cap)
        }
    }

    /// The filled part.
    pub fn data(&self) -> &[u8] {
        // SAFETY: as in `bytes_mut`; `len <= cap`, and `&self` excludes a
        // `&mut` to the same block.
        unsafe { std::slice::from_raw_parts(self.region.as_ptr().add(self.offset), self.len) }
    }
}

/// Counters the writer and a telemetry line read.
#[derive(Debug, Default)]
pub struct RingStats {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub starvations: AtomicU64,
    /// Starvations after which the writer waited for the start mark (the
    /// source was slower than the drive's minimum rate, or no pacing): a
    /// real drive stops there.
    pub stops: AtomicU64,
    /// The reader has finished (end of source, error, or gone).
    pub source_done: AtomicBool,
}

/// The writer's end of a ring.
pub struct Ring {
    full: Receiver<io::Result<Block>>,
    free: Giver,
    blocks: usize,
    block_size: usize,
    start_at: usize,
    waiting: bool,
    pace: Option<Pacer>,
    /// A source's error found behind a batch, for the next call.
    held: Option<io::Result<Block>>,
    pub stats: Arc<RingStats>,
}

/// The input rate, measured over the last two seconds, and when the next
/// block is due.
struct Pacer {
    /// The drive's slowest streaming rate, bytes per second.
    min_rate: f64,
    samples: VecDeque<(Instant, u64)>,
    due: Option<Instant>,
}

const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const WINDOW: usize = 20;

impl Pacer {
    /// Note bytes read so far; the smoothed input rate, once known.
    fn rate(&mut self, bytes_in: u64) -> Option<f64> {
        let now = Instant::now();
        if self
            .samples
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= SAMPLE_EVERY)
        {
            self.samples.push_back((now, bytes_in));
            if self.samples.len() > WINDOW {
                self.samples.pop_front();
            }
        }
        let (t0, b0) = *self.samples.front()?;
        let secs = now.duration_since(t0).as_secs_f64();
        (secs >= 0.2).then(|| bytes_in.saturating_sub(b0) as f64 / secs)
    }
}

/// The reader's end.
pub struct Filler {
    full: Sender<io::Result<Block>>,
    free: Arc<Free>,
    blocks: usize,
    block_size: usize,
    /// The most blocks the reader fills at once (and so holds while the
    /// writer may be waiting for its mark: never more than the ring has
    /// above the mark, or the mark could not be reached).
    batch: usize,
    stats: Arc<RingStats>,
}

/// A ring of `blocks` blocks of `block_size` bytes whose writer starts when
/// `start_fill` (0.0–1.0) of it is full.
pub fn ring(block_size: usize, blocks: usize, start_fill: f64) -> (Filler, Ring) {
    let blocks = blocks.max(2);
    let (full_tx, full_rx) = bounded(blocks);
    let free = Arc::new(Free::new(blocks_of(block_size, blocks)));
    let stats = Arc::new(RingStats::default());
    let start_at = ((blocks as f64 * start_fill).ceil() as usize).clamp(1, blocks);
    let batch = (READ_BATCH / block_size.max(1)).clamp(1, (blocks - start_at).max(1));
    (
        Filler {
            full: full_tx,
            free: free.clone(),
            blocks,
            block_size,
            batch,
            stats: stats.clone(),
        },
        Ring {
            full: full_rx,
            free: Giver(free),
            blocks,
            block_size,
            start_at,
            waiting: true,
            pace: None,
            held: None,
            stats,
        },
    )
}

impl Filler {
    /// Hand every filled block to `each` (with `state`), on a thread of its
    /// own, before the writer gets it: the work (hashing) overlaps the
    /// reading of the next blocks instead of adding to it. The thread
    /// gives `state` back when the source has ended.
    pub fn through<S: Send + 'static>(
        self,
        mut state: S,
        each: fn(&mut S, &[u8]),
    ) -> (Filler, std::thread::JoinHandle<S>) {
        let (tx, rx) = bounded::<io::Result<Block>>(self.blocks);
        let full = self.full;
        let stage = std::thread::spawn(move || {
            for item in rx {
                if let Ok(b) = &item {
                    each(&mut state, b.data());
                }
                if full.send(item).is_err() {
                    break;
                }
            }
            state
        });
        (
            Filler {
                full: tx,
                free: self.free,
                blocks: self.blocks,
                block_size: self.block_size,
                batch: self.batch,
                stats: self.stats,
            },
            stage,
        )
    }

    /// Fill blocks from `source` until it ends. Every block is full except
    /// the last; errors are passed to the writer.
    ///
    /// Reads go into up to [`READ_BATCH`] bytes of blocks at once (one
    /// `readv`, which a [`crate::fsutil::DirectReader`] turns into one
    /// direct request): a disk gives far more for a few big requests than
    /// for many 256 KiB ones. While the writer has enough in hand, the
    /// reader waits until a whole batch of blocks is free rather than
    /// reading each block as it comes back.
    pub fn fill_from(self, mut source: impl io::Read) {
        struct Done(Arc<RingStats>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.source_done.store(true, Ordering::Release);
            }
        }
        let _done = Done(self.stats.clone());
        let size = self.block_size;
        let batch = self.batch;
        // The blocks being filled: the first may hold the start of a block
        // carried over from the last round.
        let mut blocks: Vec<Block> = Vec::with_capacity(batch);
        loop {
            if blocks.is_empty() {
                let Some(first) = self.free.take() else {
                    return;
                };
                blocks.push(first);
            }
            while blocks.len() < batch {
                if let Some(b) = self.free.try_take() {
                    blocks.push(b);
                    continue;
                }
                // The writer's blocks in hand: with two batches of them,
                // waiting for a whole batch to come back costs it nothing.
                let held = (self.stats.bytes_in.load(Ordering::Relaxed))
                    .saturating_sub(self.stats.bytes_out.load(Ordering::Relaxed));
                if held < 2 * (batch * size) as u64 {
                    break;
                }
                match self.free.take() {
                    Some(b) => blocks.push(b),
                    None => break,
                }
            }
            let carried = blocks[0].len;
            let (filled, result) = read_into(&mut source, &mut blocks, size, carried);
            self.stats
                .bytes_in
                .fetch_add((filled - carried) as u64, Ordering::Relaxed);
            // Hand on every whole block, in order, as soon as it is whole
            // (a pipe gives what it has); at the end of the source, or an
            // error, the last part block too, and that ends the reading.
            let ended = !matches!(result, Ok(false));
            let keep = if ended { blocks.len() } else { filled / size };
            let mut rest = blocks.split_off(keep);
            for block in blocks.drain(..) {
                if block.len == 0 {
                    continue;
                }
                if self.full.send(Ok(block)).is_err() {
                    return;
                }
            }
            match result {
                Err(e) => {
                    let _ = self.full.send(Err(e));
                    return;
                }
                Ok(true) => return,
                Ok(false) => {
                    // Keep the block holding a carried part; give the
                    // others back, so that the next round takes the lowest
                    // free blocks, those the writer gave back among them.
                    if rest.first().is_some_and(|b| b.len > 0) {
                        blocks.push(rest.remove(0));
                    }
                    self.free.give_back(rest);
                }
            }
        }
    }
}

/// The most a reader asks of its source in one call.
pub const READ_BATCH: usize = 4 << 20;

/// Fill `blocks` (each `size` bytes, the first already holding `filled`)
/// in order from `source`, in as few calls as it takes, until one or more
/// blocks are whole, all are full, or the source ends. Each block's `len`
/// is set; the bytes in them all, and whether the source ended (or the
/// error that stopped it).
fn read_into(
    source: &mut impl io::Read,
    blocks: &mut [Block],
    size: usize,
    mut filled: usize,
) -> (usize, io::Result<bool>) {
    let total = blocks.len() * size;
    let result = loop {
        if filled >= size || filled == total {
            break Ok(false);
        }
        let (at, off) = (filled / size, filled % size);
        let mut slices: Vec<io::IoSliceMut> = Vec::with_capacity(blocks.len() - at);
        for (i, b) in blocks[at..].iter_mut().enumerate() {
            let from = if i == 0 { off } else { 0 };
            slices.push(io::IoSliceMut::new(&mut b.bytes_mut()[from..size]));
        }
        match source.read_vectored(&mut slices) {
            Ok(0) => break Ok(true),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    for (i, b) in blocks.iter_mut().enumerate() {
        b.len = filled.saturating_sub(i * size).min(size);
    }
    (filled, result)
}

impl Ring {
    /// Blocks waiting to be written.
    pub fn fill(&self) -> usize {
        self.full.len()
    }

    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// Pace the writer at the input rate (see the module comment) for a
    /// drive whose slowest streaming rate is `min_rate` bytes per second.
    pub fn pace(&mut self, min_rate: u64) {
        self.pace = Some(Pacer {
            min_rate: min_rate as f64,
            samples: VecDeque::new(),
            due: None,
        });
    }

    /// The smoothed input rate the pacing works from, bytes per second.
    pub fn input_rate(&mut self) -> Option<f64> {
        let bytes_in = self.stats.bytes_in.load(Ordering::Relaxed);
        self.pace.as_mut()?.rate(bytes_in)
    }

    /// With pacing: wait until the next block is due. The release rate is
    /// the input rate times 0.5 + fill (1.0 at half full), never below the
    /// drive's minimum.
    fn wait_turn(&mut self) {
        let fill = self.full.len() as f64 / self.blocks as f64;
        let block = self.block_size as f64;
        let source_done = self.stats.source_done.load(Ordering::Acquire);
        let bytes_in = self.stats.bytes_in.load(Ordering::Relaxed);
        let Some(p) = self.pace.as_mut() else {
            return;
        };
        let rate = p.rate(bytes_in);
        let now = Instant::now();
        let (Some(rate), false) = (rate, source_done) else {
            p.due = None;
            return;
        };
        let release = (rate * (0.5 + fill)).max(p.min_rate);
        let due = p.due.unwrap_or(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        // Never bank more than one block of credit while behind.
        let base = due.max(Instant::now() - Duration::from_secs_f64(block / release));
        p.due = Some(base + Duration::from_secs_f64(block / release));
    }

    /// The source's rate is at least the drive's minimum: after running dry
    /// the writer goes on at that rate instead of waiting for the mark.
    fn keeps_up(&mut self) -> bool {
        let bytes_in = self.stats.bytes_in.load(Ordering::Relaxed);
        match self.pace.as_mut() {
            Some(p) => p.rate(bytes_in).is_some_and(|r| r >= p.min_rate),
            None => false,
        }
    }

    /// The next full block, waiting for the start mark when the ring is
    /// (re)starting; `None` at the end of the source.
    pub fn next_block(&mut self) -> Option<io::Result<Block>> {
        if !self.waiting && self.full.is_empty() && !self.stats.source_done.load(Ordering::Acquire)
        {
            self.stats.starvations.fetch_add(1, Ordering::Relaxed);
            self.waiting = !self.keeps_up();
            if self.waiting {
                self.stats.stops.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.waiting {
            // Wait for the mark, or for the source to end (the channel
            // disconnects with fewer blocks in it).
            while self.full.len() < self.start_at {
                if self.full.is_full() || self.stats.source_done.load(Ordering::Acquire) {
                    break;
                }
                // The input rate is measured while the ring fills, so that
                // pacing knows it from the first block on.
                let _ = self.input_rate();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            self.waiting = false;
            if let Some(p) = self.pace.as_mut() {
                p.due = None;
            }
        } else {
            self.wait_turn();
        }
        let block = self.full.recv().ok()?;
        if let Ok(b) = &block {
            self.stats
                .bytes_out
                .fetch_add(b.len as u64, Ordering::Relaxed);
        }
        Some(block)
    }

    /// The next full block, as [`Ring::next_block`], and with it up to
    /// `max - 1` more that are already waiting, into `batch` (which must
    /// be empty: every block taken is given back with [`Ring::recycle`]),
    /// while the ring is more than half full: then the writer is
    /// behind its input and pacing would not hold any of them back. An
    /// error after the first is kept for the next call. `None` at the end
    /// of the source; an error of the source when it comes first.
    pub fn next_blocks(&mut self, max: usize, batch: &mut Vec<Block>) -> Option<io::Result<()>> {
        debug_assert!(batch.is_empty(), "the last batch was not given back");
        let first = match self.held.take() {
            Some(item) => item,
            None => self.next_block()?,
        };
        match first {
            Ok(b) => batch.push(b),
            Err(e) => return Some(Err(e)),
        }
        while batch.len() < max && self.full.len() * 2 > self.blocks {
            match self.full.try_recv() {
                Ok(Ok(b)) => {
                    self.stats
                        .bytes_out
                        .fetch_add(b.len as u64, Ordering::Relaxed);
                    batch.push(b);
                }
                Ok(Err(e)) => {
                    self.held = Some(Err(e));
                    break;
                }
                Err(_) => break,
            }
        }
        Some(Ok(()))
    }

    /// Give a written block back to the reader.
    pub fn recycle(&self, mut block: Block) {
        block.len = 0;
        self.free.0.give(block);
    }
}

/// The free blocks, lowest in the mapping taken first (see the module
/// comment).
struct Free {
    state: Mutex<FreeState>,
    given: Condvar,
}

struct FreeState {
    /// By offset in the mapping.
    blocks: BTreeMap<usize, Block>,
    writer_gone: bool,
}

impl Free {
    fn new(blocks: Vec<Block>) -> Free {
        Free {
            state: Mutex::new(FreeState {
                blocks: blocks.into_iter().map(|b| (b.offset, b)).collect(),
                writer_gone: false,
            }),
            given: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FreeState> {
        // A panic elsewhere leaves the list whole: inserts and removals only.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A free block, waiting for one; `None` once the writer is gone.
    fn take(&self) -> Option<Block> {
        let mut state = self.lock();
        loop {
            if state.writer_gone {
                return None;
            }
            if let Some((_, b)) = state.blocks.pop_first() {
                return Some(b);
            }
            state = self
                .given
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn try_take(&self) -> Option<Block> {
        let mut state = self.lock();
        if state.writer_gone {
            return None;
        }
        state.blocks.pop_first().map(|(_, b)| b)
    }

    fn give(&self, block: Block) {
        self.lock().blocks.insert(block.offset, block);
        self.given.notify_one();
    }

    /// Blocks the reader took and did not fill.
    fn give_back(&self, blocks: Vec<Block>) {
        let mut state = self.lock();
        for b in blocks {
            state.blocks.insert(b.offset, b);
        }
    }
}

/// The writer's hold on the free list: when the writer is gone, a reader
/// waiting for a free block stops.
struct Giver(Arc<Free>);

impl Drop for Giver {
    fn drop(&mut self) {
        self.0.lock().writer_gone = true;
        self.0.given.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that gives one block of bytes per token, and the tokens.
    struct Metered(crossbeam_channel::Receiver<()>, usize);
    impl io::Read for Metered {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 == 0 || self.0.recv().is_err() {
                return Ok(0);
            }
            self.1 -= 1;
            let n = buf.len().min(4096);
            buf[..n].fill(7);
            Ok(n)
        }
    }

    #[test]
    fn a_writer_that_keeps_up_gets_the_same_few_blocks_again() {
        // The reader may be two blocks ahead of the writer (tokens): a
        // queue of free blocks would still cycle through all 64 and touch
        // every page of the ring.
        let (tokens, rx) = crossbeam_channel::unbounded();
        tokens.send(()).unwrap();
        tokens.send(()).unwrap();
        let (filler, mut ring) = ring(4096, 64, 0.0);
        let reader = std::thread::spawn(move || filler.fill_from(Metered(rx, 1000)));
        let mut seen = std::collections::HashSet::new();
        let mut blocks = 0;
        while let Some(b) = ring.next_block() {
            let b = b.unwrap();
            seen.insert(b.data().as_ptr() as usize);
            blocks += 1;
            ring.recycle(b);
            let _ = tokens.send(());
        }
        reader.join().unwrap();
        assert_eq!(blocks, 1000);
        assert!(seen.len() <= 4, "{} blocks of 64 were used", seen.len());
    }

    #[test]
    fn a_reader_waiting_for_a_free_block_stops_when_the_writer_is_gone() {
        let (filler, ring) = ring(4096, 2, 0.0);
        let reader = std::thread::spawn(move || filler.fill_from(io::repeat(1)));
        // The reader fills both blocks and then waits for one to come back.
        while ring.fill() < 2 {
            std::thread::yield_now();
        }
        drop(ring);
        reader.join().unwrap();
    }

    #[test]
    fn bytes_come_out_as_they_went_in_in_whole_blocks() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let (filler, mut ring) = ring(65536, 8, 0.9);
        let src = data.clone();
        let reader = std::thread::spawn(move || filler.fill_from(&src[..]));
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        while let Some(b) = ring.next_block() {
            let b = b.unwrap();
            assert_eq!(b.data().as_ptr() as usize % 4096, 0, "page-aligned");
            sizes.push(b.data().len());
            out.extend_from_slice(b.data());
            ring.recycle(b);
        }
        reader.join().unwrap();
        assert_eq!(out, data);
        assert!(sizes[..sizes.len() - 1].iter().all(|&s| s == 65536));
        assert_eq!(ring.stats.bytes_out.load(Ordering::Relaxed), 1_000_000);
    }

    /// A source that notes how many bytes each call asked for.
    struct Asked {
        left: usize,
        calls: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
    }
    impl io::Read for Asked {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.read_vectored(&mut [io::IoSliceMut::new(buf)])
        }
        fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
            let asked: usize = bufs.iter().map(|b| b.len()).sum();
            self.calls.lock().unwrap().push(asked);
            let mut n = 0;
            for b in bufs.iter_mut() {
                let k = b.len().min(self.left - n);
                b[..k].fill(3);
                n += k;
            }
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn the_reader_asks_for_a_batch_of_blocks_at_once() {
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let block = 256 << 10;
        let total = 3 * READ_BATCH + 5 * block + 1000;
        // The mark (64 blocks) lies beyond the data: the writer waits for
        // the end, and the reader always finds a batch of free blocks.
        let (filler, mut ring) = ring(block, 128, 0.5);
        let source = Asked {
            left: total,
            calls: calls.clone(),
        };
        let reader = std::thread::spawn(move || filler.fill_from(source));
        let mut sizes = Vec::new();
        while let Some(b) = ring.next_block() {
            let b = b.unwrap();
            sizes.push(b.data().len());
            ring.recycle(b);
        }
        reader.join().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), total);
        assert!(sizes[..sizes.len() - 1].iter().all(|&s| s == block));
        let calls = calls.lock().unwrap();
        // The ring starts empty and the writer waits for it to fill: the
        // reader asks for whole batches, not block by block.
        assert_eq!(calls[..3], [READ_BATCH; 3], "calls: {calls:?}");
        assert!(calls.len() <= 6, "calls: {calls:?}");
    }

    #[test]
    fn a_reader_never_holds_the_blocks_a_writer_waiting_for_its_mark_needs() {
        // A ring that starts only when full: a reader holding a batch of
        // free blocks while it waits for more would keep the writer from
        // its mark for ever (this hung once).
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let block = 256 << 10;
        let total = 3 * READ_BATCH + 5 * block + 1000;
        let (filler, mut ring) = ring(block, 64, 1.0);
        let source = Asked { left: total, calls };
        let reader = std::thread::spawn(move || filler.fill_from(source));
        let mut got = 0;
        while let Some(b) = ring.next_block() {
            let b = b.unwrap();
            got += b.data().len();
            ring.recycle(b);
        }
        reader.join().unwrap();
        assert_eq!(got, total);
    }

    #[test]
    fn the_writer_takes_several_blocks_only_while_the_ring_is_over_half_full() {
        let (filler, mut ring) = ring(4096, 8, 1.0);
        let data: Vec<u8> = (0..8 * 4096u32).map(|i| (i % 241) as u8).collect();
        let src = data.clone();
        let reader = std::thread::spawn(move || filler.fill_from(&src[..]));
        let (mut out, mut sizes, mut batch) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(next) = ring.next_blocks(4, &mut batch) {
            next.unwrap();
            sizes.push(batch.len());
            for b in batch.drain(..) {
                out.extend_from_slice(b.data());
                ring.recycle(b);
            }
        }
        reader.join().unwrap();
        assert_eq!(out, data);
        // Full at the start: four at once; then half full or less: one.
        assert_eq!(sizes, [4, 1, 1, 1, 1]);
        assert_eq!(ring.stats.bytes_out.load(Ordering::Relaxed), 8 * 4096);
    }

    #[test]
    fn a_slow_source_makes_the_writer_wait_for_the_mark_and_counts_starvation() {
        struct Slow(usize);
        impl io::Read for Slow {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Ok(0);
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
                let n = buf.len().min(4096).min(self.0);
                buf[..n].fill(1);
                self.0 -= n;
                Ok(n)
            }
        }
        let (filler, mut ring) = ring(16384, 4, 1.0);
        let reader = std::thread::spawn(move || filler.fill_from(Slow(200_000)));
        let mut total = 0;
        while let Some(b) = ring.next_block() {
            let b = b.unwrap();
            total += b.data().len();
            ring.recycle(b);
        }
        reader.join().unwrap();
        assert_eq!(total, 200_000);
        // A writer far faster than the source finds the ring empty after
        // each batch: it starved, and waited for the mark each time.
        assert!(ring.stats.starvations.load(Ordering::Relaxed) >= 1);
    }

    /// A source at a steady 8 MB/s in front of a writer that could take
    /// anything: the starvations of a run of about two seconds.
    fn starvations_with(pace: Option<u64>) -> u64 {
        struct Steady {
            left: usize,
            started: std::time::Instant,
            sent: usize,
        }
        impl io::Read for Steady {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.left == 0 {
                    return Ok(0);
                }
                // 8 MB/s: wait until this chunk is due.
                let due = Duration::from_secs_f64(self.sent as f64 / 8e6);
                if let Some(d) = due.checked_sub(self.started.elapsed()) {
                    std::thread::sleep(d);
                }
                let n = buf.len().min(32768).min(self.left);
                buf[..n].fill(7);
                self.left -= n;
                self.sent += n;
                Ok(n)
            }
        }
        let (filler, mut ring) = ring(65536, 64, 0.9);
        if let Some(min) = pace {
            ring.pace(min);
        }
        let reader = std::thread::spawn(move || {
            filler.fill_from(Steady {
                left: 16 << 20,
                started: std::time::Instant::now(),
                sent: 0,
            })
        });
        let mut total = 0;
        while let Some(b) = ring.next_block() {
            let b = b.unwrap();
            total += b.data().len();
            ring.recycle(b);
        }
        reader.join().unwrap();
        assert_eq!(total, 16 << 20);
        ring.stats.starvations.load(Ordering::Relaxed)
    }

    #[test]
    fn pacing_at_the_input_rate_keeps_a_fast_writer_from_running_dry() {
        // Without pacing the writer empties the ring, stops, waits for the
        // mark, and again: a drive would stop each time.
        let bursts = starvations_with(None);
        assert!(bursts >= 2, "unpaced: {bursts}");
        // Paced at the input rate (the source is above the drive's 2 MB/s
        // minimum), it hands blocks on as they come and keeps a cushion.
        let paced = starvations_with(Some(2_000_000));
        assert!(
            paced <= 1 && paced < bursts,
            "paced {paced}, unpaced {bursts}"
        );
    }

    #[test]
    fn below_the_drive_minimum_pacing_falls_back_to_the_start_mark() {
        // The source (8 MB/s) is slower than the drive's minimum (50 MB/s):
        // pacing cannot help; the writer drains and waits for the mark.
        assert!(starvations_with(Some(50_000_000)) >= 2);
    }

    #[test]
    fn a_read_error_reaches_the_writer() {
        struct Broken;
        impl io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let (filler, mut ring) = ring(4096, 2, 0.5);
        std::thread::spawn(move || filler.fill_from(Broken));
        let first = ring.next_block().expect("an item");
        assert!(first.is_err());
    }

    #[test]
    fn a_stage_sees_every_block_in_order_before_the_writer() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 13) as u8).collect();
        let (filler, mut ring) = ring(4096, 4, 0.5);
        let (filler, stage) = filler.through(Vec::new(), |seen: &mut Vec<u8>, b| {
            seen.extend_from_slice(b)
        });
        let src = data.clone();
        let reader = std::thread::spawn(move || filler.fill_from(&src[..]));
        let mut out = Vec::new();
        while let Some(b) = ring.next_block() {
            let b = b.unwrap();
            out.extend_from_slice(b.data());
            ring.recycle(b);
        }
        reader.join().unwrap();
        assert_eq!(stage.join().unwrap(), data);
        assert_eq!(out, data);
    }
}
