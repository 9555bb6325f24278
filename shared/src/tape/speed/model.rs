//! [`DriveModel`]: a tape drive's buffer and tape motion, simulated in
//! explicit time.
//!
//! Nothing here reads a clock or sleeps: the caller says when each write
//! happens and gets back when the drive took it, so the same model runs a
//! benchmark in real time ([`super::Paced`]) or a test in microseconds.
//! Time is kept in whole nanoseconds and bytes in whole bytes; the fraction
//! of a byte a moving tape has written so far is carried over, so a stretch
//! at one speed writes exactly `time × speed` bytes however it is sliced.

use std::time::Duration;

use serde::{Serialize, Serializer};

use super::meter::{Meter, NANOS_PER_SEC, Nanos};
use super::params::{ParamsError, Rate, SpeedParams};

/// What the tape is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    /// Standing still: waiting for the buffer to reach the start level.
    /// `backhitch` is true when it stopped because the buffer ran dry, so
    /// that moving again costs a reposition.
    Stopped { backhitch: bool },
    /// Winding back and coming up to speed; moves again at `until`.
    Repositioning { until: Duration },
    /// Writing from the buffer at `speed`.
    Streaming { speed: Rate },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Stopped { backhitch: bool },
    Repositioning { until: Nanos },
    Streaming { step: usize },
}

/// One speed step's share of the work.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepStats {
    #[serde(rename = "speed_bytes_per_s", serialize_with = "bytes_per_s")]
    pub speed: Rate,
    #[serde(rename = "time_s", serialize_with = "secs")]
    pub time: Duration,
    pub bytes: u64,
}

/// What a run did. `streaming + stopped + repositioning == elapsed`, and
/// every backhitch costs one `reposition`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStats {
    /// Bytes the host handed over.
    pub bytes: u64,
    /// Bytes on tape (all of them once [`DriveModel::finish`] returned).
    pub written: u64,
    /// Writes (calls to [`DriveModel::offer`]).
    pub writes: u64,
    /// From the model's time 0 to the last thing it did.
    #[serde(rename = "elapsed_s", serialize_with = "secs")]
    pub elapsed: Duration,
    #[serde(rename = "streaming_s", serialize_with = "secs")]
    pub streaming: Duration,
    /// Standing still, including the wait for the first data.
    #[serde(rename = "stopped_s", serialize_with = "secs")]
    pub stopped: Duration,
    #[serde(rename = "repositioning_s", serialize_with = "secs")]
    pub repositioning: Duration,
    /// Restarts after the buffer ran dry (shoe-shining).
    pub backhitches: u64,
    /// Speed changes while the tape was moving.
    pub step_changes: u64,
    /// Every step, slowest first, with the time spent and bytes written at it.
    pub steps: Vec<StepStats>,
    /// `written / elapsed`.
    #[serde(rename = "effective_bytes_per_s", serialize_with = "bytes_per_s")]
    pub effective_rate: Rate,
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn bytes_per_s<S: Serializer>(r: &Rate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(r.0)
}

fn nanos(d: Duration) -> Nanos {
    d.as_nanos()
}

fn duration(ns: Nanos) -> Duration {
    let secs = u64::try_from(ns / NANOS_PER_SEC).unwrap_or(u64::MAX);
    Duration::new(secs, (ns % NANOS_PER_SEC) as u32)
}

/// A drive under the speed model. See [`super`] for the rules.
#[derive(Debug, Clone)]
pub struct DriveModel {
    params: SpeedParams,
    speeds: Vec<u64>,
    buffer: u64,
    start: u64,
    low_water: u64,
    /// Once the buffer is full, a write waits until this much room (or the
    /// rest of the write) is free: a drive takes data in as it drains, not
    /// byte by byte.
    chunk: u64,
    window: Nanos,
    reposition: Nanos,

    /// The time up to which everything is worked out.
    now: Nanos,
    level: u64,
    /// Progress towards the next byte while streaming, in byte·ns·(bytes/s)
    /// units: always below one byte (`NANOS_PER_SEC`).
    carry: u128,
    state: State,
    meter: Meter,
    last_decision: Nanos,
    /// The write in progress is waiting for room: the host could go faster
    /// than the tape.
    held_back: bool,
    /// Dropped below the host's rate at low water; stay down until full.
    refilling: bool,

    accepted: u64,
    written: u64,
    writes: u64,
    streaming: Nanos,
    stopped: Nanos,
    repositioning: Nanos,
    backhitches: u64,
    step_changes: u64,
    per_step: Vec<(Nanos, u64)>,
}

impl DriveModel {
    /// A drive at time 0, tape standing, buffer empty.
    pub fn new(params: SpeedParams) -> Result<DriveModel, ParamsError> {
        params.validate()?;
        let speeds: Vec<u64> = params.speeds().iter().map(|r| r.0).collect();
        let buffer = params.buffer.0;
        Ok(DriveModel {
            buffer,
            start: params.start_bytes(),
            low_water: params.low_water.bytes(buffer),
            chunk: (buffer / 16).max(1),
            window: nanos(params.window.0),
            reposition: nanos(params.reposition.0),
            per_step: vec![(0, 0); speeds.len()],
            speeds,
            now: 0,
            level: 0,
            carry: 0,
            state: State::Stopped { backhitch: false },
            meter: Meter::new(nanos(params.window.0)),
            last_decision: 0,
            held_back: false,
            refilling: false,
            accepted: 0,
            written: 0,
            writes: 0,
            streaming: 0,
            stopped: 0,
            repositioning: 0,
            backhitches: 0,
            step_changes: 0,
            params,
        })
    }

    pub fn params(&self) -> &SpeedParams {
        &self.params
    }

    /// The time up to which the model has worked things out: the last
    /// acceptance or finish, or a later time given to [`DriveModel::advance`].
    pub fn now(&self) -> Duration {
        duration(self.now)
    }

    /// Bytes in the drive buffer.
    pub fn level(&self) -> u64 {
        self.level
    }

    pub fn motion(&self) -> Motion {
        match self.state {
            State::Stopped { backhitch } => Motion::Stopped { backhitch },
            State::Repositioning { until } => Motion::Repositioning {
                until: duration(until),
            },
            State::Streaming { step } => Motion::Streaming {
                speed: Rate(self.speeds[step]),
            },
        }
    }

    /// The host writes `bytes` at `now`; returns when the drive has taken
    /// all of them into its buffer. That is `now` when they fit, and later
    /// when the buffer is full and the host has to wait for the tape: the
    /// backpressure a writer feels. A write made before the previous one
    /// was taken waits for it, as a blocking `write()` would.
    pub fn offer(&mut self, now: Duration, bytes: u64) -> Duration {
        let t = nanos(now).max(self.now);
        self.run_until(t);
        self.writes += 1;
        let mut rest = bytes;
        // A write that does not fit whole holds the host back from its
        // first byte on, also for the decisions its first piece may prompt.
        self.held_back = rest > self.buffer - self.level;
        while rest > 0 {
            let take = rest.min(self.buffer - self.level);
            if take > 0 {
                self.arrive(take);
                rest -= take;
                if rest == 0 {
                    break;
                }
            }
            self.held_back = true;
            self.wait_for_room(rest.min(self.chunk));
        }
        self.held_back = false;
        duration(self.now)
    }

    /// The host is done (or flushes, as before a filemark): the drive
    /// writes everything it holds, starting the tape if it has to. Returns
    /// when all of it is on tape, never before `now`. Afterwards the tape
    /// stands at the end of the data; more writes may follow, and moving
    /// again then costs a reposition.
    pub fn finish(&mut self, now: Duration) -> Duration {
        let t = nanos(now).max(self.now);
        self.run_until(t);
        if self.level > 0
            && let State::Stopped { backhitch } = self.state
        {
            self.begin(backhitch);
        }
        loop {
            match self.state {
                State::Stopped { .. } => break,
                State::Repositioning { until } => self.run_until(until),
                State::Streaming { step } => {
                    let d = self.drain_time(self.level, step);
                    self.run_until(self.now + d);
                }
            }
        }
        duration(self.now)
    }

    /// Let time pass with no writes (a host that is busy elsewhere), so that
    /// [`DriveModel::stats`] and [`DriveModel::motion`] describe `now`.
    pub fn advance(&mut self, now: Duration) {
        self.run_until(nanos(now));
    }

    /// The tallies so far; final once [`DriveModel::finish`] returned.
    pub fn stats(&self) -> ModelStats {
        let elapsed = duration(self.now);
        ModelStats {
            bytes: self.accepted,
            written: self.written,
            writes: self.writes,
            elapsed,
            streaming: duration(self.streaming),
            stopped: duration(self.stopped),
            repositioning: duration(self.repositioning),
            backhitches: self.backhitches,
            step_changes: self.step_changes,
            steps: self
                .speeds
                .iter()
                .zip(&self.per_step)
                .map(|(&speed, &(time, bytes))| StepStats {
                    speed: Rate(speed),
                    time: duration(time),
                    bytes,
                })
                .collect(),
            effective_rate: Rate::of(self.written, elapsed),
        }
    }

    /// Work out everything that happens up to `to` with no new data.
    fn run_until(&mut self, to: Nanos) {
        while self.now < to {
            match self.state {
                State::Stopped { .. } => {
                    self.stopped += to - self.now;
                    self.now = to;
                }
                State::Repositioning { until } => {
                    let end = until.min(to);
                    self.repositioning += end - self.now;
                    self.now = end;
                    if end == until {
                        self.stream();
                    }
                }
                State::Streaming { step } => {
                    let dry = self.now + self.drain_time(self.level, step);
                    if dry <= to {
                        self.write_for(step, dry - self.now);
                        self.now = dry;
                        // Ran dry: the tape overshoots and stops; moving on
                        // will mean winding back first.
                        self.state = State::Stopped { backhitch: true };
                        self.carry = 0;
                        self.refilling = false;
                    } else {
                        self.write_for(step, to - self.now);
                        self.now = to;
                    }
                }
            }
        }
    }

    /// How long writing `bytes` takes at `step`, counting the carried
    /// fraction of a byte.
    fn drain_time(&self, bytes: u64, step: usize) -> Nanos {
        let need = (u128::from(bytes) * NANOS_PER_SEC).saturating_sub(self.carry);
        need.div_ceil(u128::from(self.speeds[step]))
    }

    /// Stream at `step` for `d`: the buffer drains.
    fn write_for(&mut self, step: usize, d: Nanos) {
        let total = d
            .saturating_mul(u128::from(self.speeds[step]))
            .saturating_add(self.carry);
        let mut bytes = u64::try_from(total / NANOS_PER_SEC).unwrap_or(u64::MAX);
        self.carry = total % NANOS_PER_SEC;
        if bytes >= self.level {
            bytes = self.level;
            self.carry = 0;
        }
        self.level -= bytes;
        self.written += bytes;
        self.streaming += d;
        self.per_step[step].0 += d;
        self.per_step[step].1 += bytes;
    }

    /// Wait (in model time) until `room` bytes are free. The buffer is full
    /// when this is called, so the tape is moving or about to.
    fn wait_for_room(&mut self, room: u64) {
        while self.buffer - self.level < room {
            match self.state {
                State::Repositioning { until } => self.run_until(until),
                State::Streaming { step } => {
                    let missing = room - (self.buffer - self.level);
                    let d = self.drain_time(missing, step);
                    self.run_until(self.now + d);
                }
                State::Stopped { backhitch } => {
                    // A full buffer is always at the start level; should the
                    // parameters ever allow otherwise, start rather than
                    // wait forever.
                    debug_assert!(false, "full buffer with the tape stopped");
                    self.begin(backhitch);
                }
            }
        }
    }

    /// `bytes` enter the buffer at `self.now`.
    fn arrive(&mut self, bytes: u64) {
        self.level += bytes;
        self.accepted += bytes;
        self.meter.record(self.now, bytes);
        match self.state {
            State::Stopped { backhitch } if self.level >= self.start => self.begin(backhitch),
            State::Streaming { step } => self.reconsider(step),
            _ => {}
        }
    }

    /// Get the tape moving: straight away the first time, through a
    /// reposition after it ran dry.
    fn begin(&mut self, backhitch: bool) {
        if backhitch {
            self.backhitches += 1;
            if self.reposition > 0 {
                self.state = State::Repositioning {
                    until: self.now + self.reposition,
                };
                return;
            }
        }
        self.stream();
    }

    /// The tape is up to speed: pick the first step. A host that was held
    /// back while the drive repositioned is at least as fast as the tape.
    fn stream(&mut self) {
        let step = if self.held_back {
            self.top()
        } else {
            let rate = self.meter.rate(self.now);
            self.step_at_or_above(rate)
        };
        self.state = State::Streaming { step };
        self.carry = 0;
        self.last_decision = self.now;
        self.refilling = false;
    }

    /// Data arrived while streaming: change speed if the rules say so.
    fn reconsider(&mut self, current: usize) {
        let mut step = current;
        if !self.refilling && self.level < self.low_water {
            // Running low: slow to below the host so the buffer fills.
            let rate = self.meter.rate(self.now);
            let below = self.step_at_or_below(rate);
            if below < current {
                step = below;
                self.refilling = true;
            }
        }
        if step == current && self.now >= self.last_decision + self.window {
            let rate = self.meter.rate(self.now);
            step = if self.held_back {
                // The buffer is full and the host waits: it can go faster
                // than the tape, whatever the meter says (it only saw what
                // fitted).
                self.refilling = false;
                self.step_at_or_above(rate)
                    .max((current + 1).min(self.top()))
            } else if self.refilling {
                self.step_at_or_below(rate)
            } else {
                self.step_at_or_above(rate)
            };
            self.last_decision = self.now;
        }
        if step != current {
            self.state = State::Streaming { step };
            self.step_changes += 1;
            // The fraction of a byte earned at the old speed is dropped:
            // carried over, it would let a step write more than its time
            // at its speed allows (at most a byte per change).
            self.carry = 0;
        }
    }

    fn top(&self) -> usize {
        self.speeds.len() - 1
    }

    /// The slowest step that keeps up with `rate` (the top one if none does).
    fn step_at_or_above(&self, rate: u64) -> usize {
        self.speeds
            .iter()
            .position(|&s| s >= rate)
            .unwrap_or(self.top())
    }

    /// The fastest step no faster than `rate` (the bottom one if none is).
    fn step_at_or_below(&self, rate: u64) -> usize {
        self.speeds.iter().rposition(|&s| s <= rate).unwrap_or(0)
    }
}
