//! The memory ring between the cache and the drive (DESIGN.md invariant 5):
//! mbuffer-style double buffering. A reader thread fills page-aligned
//! blocks with big sequential reads; the writer takes whole blocks, one
//! write() each. The writer starts only once the ring is `start_fill` full
//! and, after it ran dry, waits for `start_fill` again (mbuffer's `-P`), so
//! a slow source makes the drive pause once, cleanly, instead of
//! shoe-shining; every time the writer finds the ring empty counts as a
//! starvation.
//!
//! Blocks move between the threads through two channels (empty and full),
//! so no memory is shared and no `unsafe` is needed beyond the aligned
//! allocation.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, bounded};

const PAGE: usize = 4096;

#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; PAGE]);

/// One block of the ring: page-aligned memory and how much of it is used.
pub struct Block {
    pages: Vec<Page>,
    len: usize,
}

impl Block {
    fn new(size: usize) -> Block {
        let n = size.div_ceil(PAGE).max(1);
        let layout = std::alloc::Layout::array::<Page>(n).expect("a block fits in memory");
        // Zeroed memory from the allocator (fresh pages of the kernel for
        // blocks this large): a 1 GiB ring is not written through first.
        // SAFETY: the layout is that of `n` Pages, all-zero bytes are a
        // valid Page, and the Vec takes ownership with the same layout.
        let pages = unsafe {
            let ptr = std::alloc::alloc_zeroed(layout).cast::<Page>();
            if ptr.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Vec::from_raw_parts(ptr, n, n)
        };
        Block { pages, len: 0 }
    }

    fn capacity(&self) -> usize {
        self.pages.len() * PAGE
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let cap = self.capacity();
        // SAFETY: Page is repr(C) plain bytes; the pages are contiguous in
        // the Vec, so they form one byte slice of `cap` bytes.
        unsafe { std::slice::from_raw_parts_mut(self.pages.as_mut_ptr().cast::<u8>(), cap) }
    }

    /// The filled part.
    pub fn data(&self) -> &[u8] {
        // SAFETY: as in bytes_mut; len <= capacity.
        unsafe { std::slice::from_raw_parts(self.pages.as_ptr().cast::<u8>(), self.len) }
    }
}

/// Counters the writer and a telemetry line read.
#[derive(Debug, Default)]
pub struct RingStats {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub starvations: AtomicU64,
    /// The reader has finished (end of source, error, or gone).
    pub source_done: AtomicBool,
}

/// The writer's end of a ring.
pub struct Ring {
    full: Receiver<io::Result<Block>>,
    empty: Sender<Block>,
    blocks: usize,
    start_at: usize,
    waiting: bool,
    pub stats: Arc<RingStats>,
}

/// The reader's end.
pub struct Filler {
    full: Sender<io::Result<Block>>,
    empty: Receiver<Block>,
    block_size: usize,
    stats: Arc<RingStats>,
}

/// A ring of `blocks` blocks of `block_size` bytes whose writer starts when
/// `start_fill` (0.0–1.0) of it is full.
pub fn ring(block_size: usize, blocks: usize, start_fill: f64) -> (Filler, Ring) {
    let blocks = blocks.max(2);
    let (full_tx, full_rx) = bounded(blocks);
    let (empty_tx, empty_rx) = bounded(blocks);
    for _ in 0..blocks {
        empty_tx
            .send(Block::new(block_size))
            .expect("room for every block");
    }
    let stats = Arc::new(RingStats::default());
    let start_at = ((blocks as f64 * start_fill).ceil() as usize).clamp(1, blocks);
    (
        Filler {
            full: full_tx,
            empty: empty_rx,
            block_size,
            stats: stats.clone(),
        },
        Ring {
            full: full_rx,
            empty: empty_tx,
            blocks,
            start_at,
            waiting: true,
            stats,
        },
    )
}

impl Filler {
    /// Fill blocks from `source` until it ends. Every block is full except
    /// the last; errors are passed to the writer.
    pub fn fill_from(self, mut source: impl io::Read) {
        struct Done(Arc<RingStats>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.source_done.store(true, Ordering::Release);
            }
        }
        let _done = Done(self.stats.clone());
        loop {
            let Ok(mut block) = self.empty.recv() else {
                return;
            };
            let size = self.block_size;
            let buf = &mut block.bytes_mut()[..size];
            let mut filled = 0;
            let result = loop {
                if filled == size {
                    break Ok(());
                }
                match source.read(&mut buf[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            block.len = filled;
            self.stats
                .bytes_in
                .fetch_add(filled as u64, Ordering::Relaxed);
            match result {
                Err(e) => {
                    let _ = self.full.send(Err(e));
                    return;
                }
                Ok(()) if filled == 0 => return,
                Ok(()) => {
                    let last = filled < size;
                    if self.full.send(Ok(block)).is_err() || last {
                        return;
                    }
                }
            }
        }
    }
}

impl Ring {
    /// Blocks waiting to be written.
    pub fn fill(&self) -> usize {
        self.full.len()
    }

    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// The next full block, waiting for the start mark when the ring is
    /// (re)starting; `None` at the end of the source.
    pub fn next_block(&mut self) -> Option<io::Result<Block>> {
        if !self.waiting && self.full.is_empty() && !self.stats.source_done.load(Ordering::Acquire)
        {
            self.stats.starvations.fetch_add(1, Ordering::Relaxed);
            self.waiting = true;
        }
        if self.waiting {
            // Wait for the mark, or for the source to end (the channel
            // disconnects with fewer blocks in it).
            while self.full.len() < self.start_at {
                if self.full.is_full() || self.stats.source_done.load(Ordering::Acquire) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            self.waiting = false;
        }
        let block = self.full.recv().ok()?;
        if let Ok(b) = &block {
            self.stats
                .bytes_out
                .fetch_add(b.len as u64, Ordering::Relaxed);
        }
        Some(block)
    }

    /// Give a written block back to the reader.
    pub fn recycle(&self, mut block: Block) {
        block.len = 0;
        let _ = self.empty.send(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
