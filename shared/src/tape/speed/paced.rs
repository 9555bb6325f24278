//! Running a [`DriveModel`] against a clock: [`Paced`] makes each write
//! wait until the modelled drive would have taken it, so the writer feels
//! a drive's backpressure, and each read until the tape has delivered it
//! ([`ReadAhead`]: no faster than the drive's top speed); [`sink`] is the read-and-discard loop of
//! `reel-drivesim`, kept here (not in the program) so that tests can run it
//! on a [`ManualClock`] without sleeping.
//!
//! [`ProgressSignal`] lives here too because `reel-drivesim` is its only
//! user so far and the program crate has no signal-handling dependency of
//! its own.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::model::{DriveModel, ModelStats};
use super::readahead::ReadAhead;

/// Where [`Paced`] gets the time and how it waits.
pub trait Clock {
    /// Time since the clock's start.
    fn now(&mut self) -> Duration;
    /// Return no earlier than `t`.
    fn sleep_until(&mut self, t: Duration);
}

/// Wall-clock time since construction; waits by sleeping.
#[derive(Debug, Clone)]
pub struct RealClock {
    start: Instant,
}

impl RealClock {
    pub fn start() -> RealClock {
        RealClock {
            start: Instant::now(),
        }
    }
}

impl Clock for RealClock {
    fn now(&mut self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&mut self, t: Duration) {
        let now = self.start.elapsed();
        if t > now {
            std::thread::sleep(t - now);
        }
    }
}

/// Time that moves only when told to: waiting jumps straight to the end.
/// For tests, and for a virtual drive that should report modelled times
/// without taking them.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    pub now: Duration,
}

impl ManualClock {
    /// Let `d` pass (the host doing something else).
    pub fn pass(&mut self, d: Duration) {
        self.now += d;
    }
}

impl Clock for ManualClock {
    fn now(&mut self) -> Duration {
        self.now
    }

    fn sleep_until(&mut self, t: Duration) {
        self.now = self.now.max(t);
    }
}

/// A [`DriveModel`] whose writes take as long as the modelled drive's, and
/// whose reads no less than the tape takes to deliver them.
#[derive(Debug, Clone)]
pub struct Paced<C: Clock = RealClock> {
    model: DriveModel,
    reads: ReadAhead,
    clock: C,
}

impl<C: Clock> Paced<C> {
    /// The model's time 0 is the clock's.
    pub fn new(model: DriveModel, clock: C) -> Paced<C> {
        let reads = ReadAhead::new(model.params());
        Paced {
            model,
            reads,
            clock,
        }
    }

    /// Take `bytes` read from the tape; returns once the drive has them.
    pub fn read(&mut self, bytes: u64) {
        let now = self.clock.now();
        let ready = self.reads.take(now, bytes);
        self.clock.sleep_until(ready);
    }

    /// The head moved: reading starts again from a standing tape.
    pub fn reposition(&mut self) {
        self.reads.reposition();
    }

    /// Hand `bytes` to the drive; returns once it has taken them.
    pub fn write(&mut self, bytes: u64) {
        let now = self.clock.now();
        let accepted = self.model.offer(now, bytes);
        self.clock.sleep_until(accepted);
    }

    /// Wait until everything is on tape; the final tallies.
    pub fn finish(&mut self) -> ModelStats {
        let now = self.clock.now();
        let done = self.model.finish(now);
        self.clock.sleep_until(done);
        self.model.stats()
    }

    /// The tallies as of now (for a progress line).
    pub fn stats_now(&mut self) -> ModelStats {
        let now = self.clock.now();
        self.model.advance(now);
        self.model.stats()
    }

    pub fn model(&self) -> &DriveModel {
        &self.model
    }

    pub fn clock(&mut self) -> &mut C {
        &mut self.clock
    }
}

/// Read `input` to its end in writes of `block_size` bytes (the last one
/// shorter), hand each to the paced drive and throw the data away; then
/// finish and return the final tallies. A short read does not end a block:
/// a pipe delivers a 256 KiB write in pieces, and the drive should see the
/// writer's blocks, not the pipe's. `tick` runs after each block and after
/// each read a signal interrupted (for progress lines).
pub fn sink<R: Read, C: Clock>(
    input: &mut R,
    block_size: usize,
    paced: &mut Paced<C>,
    mut tick: impl FnMut(&mut Paced<C>),
) -> io::Result<ModelStats> {
    let mut block = vec![0u8; block_size.max(1)];
    loop {
        let mut filled = 0;
        while filled < block.len() {
            match input.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => tick(paced),
                Err(e) => return Err(e),
            }
        }
        if filled > 0 {
            paced.write(filled as u64);
            tick(paced);
        }
        if filled < block.len() {
            return Ok(paced.finish());
        }
    }
}

/// SIGUSR1 as a request for a progress line, as `dd` takes it.
#[derive(Debug)]
pub struct ProgressSignal(crate::signals::Watched);

impl ProgressSignal {
    /// Catch SIGUSR1 from now on (see `signals::watch`: a read blocked on a
    /// stalled writer returns, and the progress line comes out at once).
    pub fn install() -> io::Result<ProgressSignal> {
        crate::signals::watch(nix::sys::signal::Signal::SIGUSR1).map(ProgressSignal)
    }

    /// True once per SIGUSR1 received since the last call.
    pub fn requested(&self) -> bool {
        self.0.take()
    }
}
