//! A model of how an LTO drive moves tape, so that shoe-shining can be
//! measured without a drive (README, "Simulated drive speed"): the virtual drive and the
//! `reel-drivesim` sink pace themselves with it, and a benchmark can compare
//! how often `reel-write`, `mbuffer` and `dd` make the same modelled drive
//! stop.
//!
//! An LTO drive does not stop whenever the host is slow. It matches its
//! tape speed to the host in steps (an LTO-9 drive has 12, from 408 down to
//! 177 MB/s with LTO-9 media) and writes from its own buffer; only when
//! that buffer runs dry does the tape stop, overshoot, and have to be wound
//! back and brought up to speed again: a backhitch, costing seconds.
//!
//! The rules [`DriveModel`] applies:
//!
//! - The drive takes a write into its buffer as soon as there is room; a
//!   write that does not fit waits for the tape to drain room for it. That
//!   wait is the backpressure the host feels.
//! - The tape starts once the buffer holds `start` bytes (or when the host
//!   finishes with less). The first start is free.
//! - Moving, the tape drains the buffer at the current step's speed. The
//!   drive measures the host's rate over `window` and, at most once per
//!   window, picks the slowest step at or above it (clamped to the range).
//!   When the write at hand is waiting for room, the host is faster than the
//!   meter can show (it only sees what fits), and the drive goes at least
//!   one step up.
//! - Below `low_water` the drive drops to the fastest step at or below the
//!   host's rate, so that the buffer fills again, and stays there until the
//!   buffer is full. A host between two steps thus makes the drive alternate
//!   between them instead of running dry.
//! - When the buffer runs dry the tape stops. It moves again once the
//!   buffer is back at `start` (or at finish), after `reposition`: that
//!   restart is a backhitch.
//! - Before the tape is first started, and after it stops, it stands still;
//!   `streaming + stopped + repositioning` is the whole elapsed time.
//!
//! Reading is modelled only as a cap at the top speed ([`ReadAhead`]).
//!
//! [`Paced`] runs the model against a clock; [`sink`] is the read loop of
//! `reel-drivesim`.

mod meter;
mod model;
mod paced;
mod params;
mod readahead;
pub mod sim;

#[cfg(test)]
mod tests;

pub use model::{DriveModel, ModelStats, Motion, StepStats};
pub use paced::{Clock, ManualClock, Paced, ProgressSignal, RealClock, sink};
pub use params::{Fill, PRESETS, ParamsError, Rate, SpeedParams, preset};
pub use readahead::ReadAhead;
