//! How the modelled drive measures the host's rate: bytes that arrived in a
//! sliding window, divided by the window.
//!
//! Data arrives in lumps (one write at a time), so counting whole lumps in
//! the window would make a perfectly steady host look faster or slower by a
//! lump depending on where the window edge falls, and the drive would flap
//! between steps. Instead each lump is taken to have flowed in evenly since
//! the lump before it (at most one window back), and only the part that
//! falls inside the window counts: a steady host then measures exactly its
//! rate.

use std::collections::VecDeque;

/// Time in nanoseconds since the model's start.
pub(super) type Nanos = u128;

pub(super) const NANOS_PER_SEC: u128 = 1_000_000_000;

#[derive(Debug, Clone)]
struct Lump {
    /// When it arrived.
    end: Nanos,
    /// Over how long before `end` it is taken to have flowed in.
    len: Nanos,
    bytes: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Meter {
    window: Nanos,
    lumps: VecDeque<Lump>,
    first: Option<Nanos>,
    last: Option<Nanos>,
}

impl Meter {
    pub(super) fn new(window: Nanos) -> Meter {
        Meter {
            window: window.max(1),
            lumps: VecDeque::new(),
            first: None,
            last: None,
        }
    }

    /// `bytes` arrived at `t` (never earlier than the previous arrival).
    pub(super) fn record(&mut self, t: Nanos, bytes: u64) {
        let len = self.last.map_or(0, |last| (t - last).min(self.window));
        self.lumps.push_back(Lump { end: t, len, bytes });
        self.first.get_or_insert(t);
        self.last = Some(t);
        self.prune(t);
    }

    /// Forget lumps wholly before the window ending at `t`.
    fn prune(&mut self, t: Nanos) {
        while self.lumps.front().is_some_and(|l| l.end + self.window <= t) {
            self.lumps.pop_front();
        }
    }

    /// The host's rate in bytes per second over the window ending at `t`.
    /// Nothing seen yet is a rate of 0; everything seen at one instant is an
    /// unbounded rate (`u64::MAX`): the host is as fast as it gets.
    pub(super) fn rate(&mut self, t: Nanos) -> u64 {
        self.prune(t);
        let Some(first) = self.first else {
            return 0;
        };
        // Before a whole window has passed, only the time since the first
        // byte counts.
        let span = self.window.min(t.saturating_sub(first));
        if span == 0 {
            return u64::MAX;
        }
        let from = t.saturating_sub(self.window);
        let mut bytes: u128 = 0;
        for lump in &self.lumps {
            let b = u128::from(lump.bytes);
            let start = lump.end - lump.len;
            if lump.len == 0 || start >= from {
                bytes += b;
            } else {
                bytes += b * (lump.end - from) / lump.len;
            }
        }
        u64::try_from(bytes * NANOS_PER_SEC / span).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn a_steady_host_measures_exactly_its_rate() {
        // 261 kB every millisecond is 261 MB/s, wherever the window edge falls.
        let mut m = Meter::new(1000 * MS);
        for i in 0..5000u128 {
            m.record(i * MS, 261_000);
            if i >= 1000 {
                assert_eq!(m.rate(i * MS), 261_000_000, "at {i} ms");
            }
        }
        // Lumps that do not divide the window evenly: 3 MB every 7 ms.
        let mut m = Meter::new(1000 * MS);
        for i in 0..2000u128 {
            m.record(i * 7 * MS, 3_000_000);
        }
        let r = m.rate(1999 * 7 * MS);
        assert!((428_571_000..=428_572_000).contains(&r), "{r}");
    }

    #[test]
    fn a_burst_after_a_pause_counts_as_fast() {
        let mut m = Meter::new(1000 * MS);
        m.record(0, 1000);
        // Sixty seconds of silence, then 500 MB within 10 ms.
        for i in 0..500u128 {
            m.record(60_000 * MS + i * MS / 50, 1_000_000);
        }
        let r = m.rate(60_010 * MS);
        assert!(r >= 499_000_000, "{r}");
    }

    #[test]
    fn edge_cases() {
        let mut m = Meter::new(1000 * MS);
        assert_eq!(m.rate(5), 0);
        m.record(5, 100);
        assert_eq!(m.rate(5), u64::MAX);
        // Long after, nothing is left in the window.
        assert_eq!(m.rate(10_000 * MS), 0);
    }
}
