//! SHA-256 of many messages on other threads while the caller goes on
//! (reading a tape, writing an archive): up to four threads, each message
//! on one of them, its pieces hashed in the order they were given.

use crossbeam_channel::{Receiver, Sender};
use sha2::{Digest as _, Sha256};

use crate::manifest::Digest;

/// A piece of message `id`; `last`: the message ends with it.
struct Piece {
    id: usize,
    bytes: Vec<u8>,
    last: bool,
}

/// The hashing threads: give them pieces with [`Hashers::add`], take the
/// digests of the messages that ended with [`Hashers::finish`].
pub struct Hashers {
    lanes: Vec<Sender<Piece>>,
    digests: Receiver<(usize, Digest)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hashers {
    pub fn start() -> Hashers {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        let (digest_tx, digests) = crossbeam_channel::unbounded();
        let mut lanes = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for _ in 0..n {
            // A few pieces in hand per thread: the caller waits rather than
            // filling memory when hashing is the slower side.
            let (tx, rx) = crossbeam_channel::bounded::<Piece>(64);
            let digest_tx = digest_tx.clone();
            threads.push(std::thread::spawn(move || lane(rx, digest_tx)));
            lanes.push(tx);
        }
        Hashers {
            lanes,
            digests,
            threads,
        }
    }

    /// Hash `bytes` as the next piece of message `id`. The pieces of one
    /// message come one after another, none of another message between
    /// them that goes to the same thread (`id` modulo the threads): give
    /// each message whole before the next, as a sequential reader does.
    pub fn add(&self, id: usize, bytes: Vec<u8>, last: bool) {
        let lane = &self.lanes[id % self.lanes.len()];
        if lane.send(Piece { id, bytes, last }).is_err() {
            unreachable!("a hashing thread does not stop before its input");
        }
    }

    /// The digests of the messages whose last piece came, by id. One whose
    /// last piece never came (a read cut short) has none.
    pub fn finish(self) -> Vec<(usize, Digest)> {
        drop(self.lanes);
        for t in self.threads {
            t.join().expect("a hashing thread does not panic");
        }
        self.digests.try_iter().collect()
    }
}

/// One thread: hash the pieces as they come, send each whole message's
/// digest back.
fn lane(pieces: Receiver<Piece>, digests: Sender<(usize, Digest)>) {
    let mut sha = Sha256::new();
    for p in pieces {
        sha.update(&p.bytes);
        if p.last {
            let got = Digest(std::mem::take(&mut sha).finalize().into());
            if digests.send((p.id, got)).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_gets_the_digest_of_its_pieces_and_an_unended_one_none() {
        let h = Hashers::start();
        let whole: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1000 + usize::from(i)]).collect();
        for (id, m) in whole.iter().enumerate() {
            let (a, b) = m.split_at(m.len() / 3);
            h.add(id, a.to_vec(), false);
            h.add(id, b.to_vec(), true);
        }
        h.add(20, vec![1, 2, 3], false);
        let mut got = h.finish();
        got.sort_by_key(|(id, _)| *id);
        let want: Vec<(usize, Digest)> = whole
            .iter()
            .enumerate()
            .map(|(id, m)| (id, Digest(Sha256::digest(m).into())))
            .collect();
        assert_eq!(got, want);
    }
}
