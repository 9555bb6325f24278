//! Reading from a drive under the speed model: [`ReadAhead`] caps what a
//! host can read at the drive's top speed.
//!
//! Reading, an LTO drive moves tape at its native speed into its buffer
//! and the host takes blocks from there: however fast the host, it gets no
//! more than the tape delivers. A host that falls behind lets the buffer
//! fill; the tape can be at most one buffer ahead of it.
//!
//! Only that cap is modelled. Left out, and so never charged to a reader:
//! speed matching on reads, backhitches when the buffer is full, and the
//! time a locate takes (after a reposition the tape starts at once). Like
//! [`super::DriveModel`], nothing here reads a clock: the caller says when
//! each read happens and gets back when its data is ready.

use std::time::Duration;

use super::meter::{NANOS_PER_SEC, Nanos};
use super::params::SpeedParams;

#[derive(Debug, Clone)]
pub struct ReadAhead {
    /// Bytes per second off the tape: the native speed.
    rate: u64,
    /// How far ahead of the host the tape may read.
    lead: Nanos,
    /// When the tape has delivered everything the host took so far; `None`
    /// after a reposition (the tape stands).
    ready: Option<Nanos>,
}

impl ReadAhead {
    pub fn new(params: &SpeedParams) -> ReadAhead {
        let rate = params.native.0.max(1);
        ReadAhead {
            rate,
            lead: u128::from(params.buffer.0) * NANOS_PER_SEC / u128::from(rate),
            ready: None,
        }
    }

    /// The host reads `bytes` at `now`; returns when the drive has them
    /// ready (`now` or later).
    pub fn take(&mut self, now: Duration, bytes: u64) -> Duration {
        let now = now.as_nanos();
        // While the host was away the tape read on, up to a buffer ahead.
        let from = self
            .ready
            .map_or(now, |ready| ready.max(now.saturating_sub(self.lead)));
        let ready = from + u128::from(bytes) * NANOS_PER_SEC / u128::from(self.rate);
        self.ready = Some(ready);
        let ready = ready.max(now);
        Duration::new(
            u64::try_from(ready / NANOS_PER_SEC).unwrap_or(u64::MAX),
            (ready % NANOS_PER_SEC) as u32,
        )
    }

    /// The head moved (a seek, a rewind, spacing over filemarks): what the
    /// buffer held is gone and the tape starts again from the next read.
    pub fn reposition(&mut self) {
        self.ready = None;
    }
}
