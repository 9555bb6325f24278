//! The model's behaviour in virtual time: each test builds a host (steady,
//! slow, bursty), runs it against a [`DriveModel`] and checks what the
//! drive did. Nothing sleeps and nothing depends on how fast the machine
//! running the tests is.

use std::io::{self, Read};
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::units::{Interval, Percent, Size};

const MB: u64 = 1_000_000;
const MIB: u64 = 1 << 20;

fn lto9() -> DriveModel {
    DriveModel::new(preset("lto9").unwrap()).unwrap()
}

/// A host writing `count` blocks of `block` bytes at `rate` from `t0`: each
/// write goes out on the host's own schedule, or once the drive took the
/// previous one, whichever is later. Returns the last acceptance.
fn steady(m: &mut DriveModel, t0: Duration, rate: u64, block: u64, count: u64) -> Duration {
    let mut accepted = t0;
    for i in 0..count {
        let due = t0
            + Duration::from_nanos(
                (u128::from(i * block) * 1_000_000_000 / u128::from(rate)) as u64,
            );
        let at = due.max(accepted);
        accepted = m.offer(at, block);
        assert!(accepted >= at);
    }
    accepted
}

fn step_index(stats: &ModelStats, mb_per_s: u64) -> usize {
    stats
        .steps
        .iter()
        .position(|s| s.speed == Rate(mb_per_s * MB))
        .unwrap_or_else(|| panic!("no {mb_per_s} MB/s step"))
}

/// The invariants every run keeps, whatever the host did.
fn check_consistent(stats: &ModelStats, params: &SpeedParams) {
    assert_eq!(
        stats.streaming + stats.stopped + stats.repositioning,
        stats.elapsed,
        "{stats:#?}"
    );
    assert_eq!(
        stats.repositioning,
        params.reposition.0 * stats.backhitches as u32,
        "{stats:#?}"
    );
    assert_eq!(
        stats.steps.iter().map(|s| s.time).sum::<Duration>(),
        stats.streaming
    );
    assert_eq!(
        stats.steps.iter().map(|s| s.bytes).sum::<u64>(),
        stats.written
    );
    for s in &stats.steps {
        // No step writes faster than its speed (the carried fraction of a
        // byte aside).
        assert!(
            u128::from(s.bytes) * 1_000_000_000
                <= s.time.as_nanos() * u128::from(s.speed.0) + 1_000_000_000,
            "{s:?}"
        );
    }
}

#[test]
fn a_host_faster_than_native_streams_at_native() {
    let mut m = lto9();
    let block = 4 * MIB;
    let count = 40_000 * MB / block;
    let last = steady(&mut m, Duration::ZERO, 2000 * MB, block, count);
    let done = m.finish(last);
    let stats = m.stats();
    check_consistent(&stats, m.params());
    assert_eq!(stats.backhitches, 0);
    assert_eq!(stats.step_changes, 0);
    assert_eq!(stats.written, count * block);
    assert_eq!(stats.steps[step_index(&stats, 408)].bytes, stats.written);
    assert_eq!(stats.elapsed, done);
    // Only the first fill of the start level is not at full speed.
    let effective = stats.effective_rate.0;
    assert!(
        (408 * MB * 99 / 100..=408 * MB).contains(&effective),
        "{effective}"
    );
}

#[test]
fn a_host_on_a_step_settles_on_it() {
    // 261 MB/s is a step of the lto9 preset; 261 kB every millisecond.
    let mut m = lto9();
    let last = steady(&mut m, Duration::ZERO, 261 * MB, 261_000, 120_000);
    m.finish(last);
    let stats = m.stats();
    check_consistent(&stats, m.params());
    assert_eq!(stats.backhitches, 0);
    // The first estimate, from the start-up fill alone, is a little high;
    // the first decision a window later corrects it, and that is all.
    assert!(stats.step_changes <= 1, "{stats:#?}");
    let on_step = stats.steps[step_index(&stats, 261)].time;
    assert!(
        stats.streaming - on_step <= Duration::from_secs(1),
        "{stats:#?}"
    );
}

/// A host like `tar` on a disk that reads at `rate`: it makes the next
/// block only after the drive took the previous one, so being held back
/// slows it down and leaves it no backlog.
fn closed_loop(m: &mut DriveModel, rate: u64, block: u64, count: u64) -> Duration {
    let make = Duration::from_nanos((u128::from(block) * 1_000_000_000 / u128::from(rate)) as u64);
    let mut accepted = Duration::ZERO;
    for _ in 0..count {
        accepted = m.offer(accepted + make, block);
    }
    accepted
}

#[test]
fn a_host_between_steps_keeps_the_tape_moving() {
    // 300 MB/s lies between the 282 and 303 MB/s steps: the drive runs at
    // 303 until its buffer is low, at 282 until it is full again, and never
    // stops.
    let mut m = lto9();
    let block = 4 * MIB;
    let count = 300 * MB * 900 / block;
    let last = closed_loop(&mut m, 300 * MB, block, count);
    m.finish(last);
    let stats = m.stats();
    check_consistent(&stats, m.params());
    assert_eq!(stats.backhitches, 0);
    let (below, above) = (step_index(&stats, 282), step_index(&stats, 303));
    for (i, s) in stats.steps.iter().enumerate() {
        if i != below && i != above {
            assert_eq!(s.time, Duration::ZERO, "{stats:#?}");
        }
    }
    assert!(
        stats.steps[below].time > Duration::from_secs(60),
        "{stats:#?}"
    );
    assert!(
        stats.steps[above].time > Duration::from_secs(60),
        "{stats:#?}"
    );
    // Standing still only while the first start level filled.
    assert!(stats.stopped < Duration::from_secs(2), "{stats:#?}");

    // A host that keeps to its own schedule falls behind while the full
    // buffer holds it back, then catches up as fast as the tape goes: the
    // drive steps above 303 MB/s for that, briefly.
    let mut m = lto9();
    let last = steady(&mut m, Duration::ZERO, 300 * MB, block, count);
    m.finish(last);
    let stats = m.stats();
    check_consistent(&stats, m.params());
    assert_eq!(stats.backhitches, 0);
    let matched = stats.steps[below].time + stats.steps[above].time;
    assert!(matched >= stats.streaming * 98 / 100, "{stats:#?}");
}

/// One speed of 100 kB/s, a 100 kB buffer that starts at half, and a
/// one-second reposition: round numbers for counting by hand.
fn small_drive() -> SpeedParams {
    SpeedParams {
        native: Rate(100_000),
        min: Rate(100_000),
        steps: 1,
        buffer: Size(100_000),
        reposition: Interval::from_secs(1),
        start: Fill::Share(Percent::new(50)),
        low_water: Fill::Share(Percent::new(0)),
        window: Interval::from_secs(1),
    }
}

#[test]
fn a_host_slower_than_min_shoe_shines_a_counted_number_of_times() {
    // 3 kB every 100 ms is 30% of the only speed. Worked out by hand (the
    // buffer never runs dry at the instant of a write): the 17th write
    // (1.6 s) passes the start level of 50 kB and the tape starts, free the
    // first time; it gains 3 kB and loses 10 kB per 100 ms and runs dry at
    // 2.29 s. From then on each cycle takes 3.8 s: seventeen writes (2.3 s
    // to 3.9 s) refill the start level, the reposition takes a second while
    // ten more arrive (81 kB), and with the writes during it that lasts
    // 1.14 s of tape. Restarts begin at 3.9 s + 3.8 s·(j-1): the tenth at
    // 38.1 s, the 382nd write, after which the host stops.
    let params = small_drive();
    let mut m = DriveModel::new(params.clone()).unwrap();
    let mut last = Duration::ZERO;
    for i in 0..382u64 {
        let at = Duration::from_millis(100 * i);
        last = m.offer(at, 3_000);
        assert_eq!(last, at, "write {i} should not wait");
    }
    assert_eq!(
        m.motion(),
        Motion::Repositioning {
            until: Duration::from_millis(39_100)
        }
    );
    let done = m.finish(last);
    let stats = m.stats();
    check_consistent(&stats, &params);
    assert_eq!(stats.backhitches, 10);
    assert_eq!(stats.repositioning, Duration::from_secs(10));
    // 0.69 s + 9 × 1.14 s + 0.51 s (the last start level, flushed).
    assert_eq!(stats.streaming, Duration::from_millis(11_460));
    assert_eq!(done, Duration::from_millis(39_610));
    assert_eq!(stats.written, 1_146_000);
}

#[test]
fn a_bursty_host_backhitches_once_per_pause() {
    // mbuffer-style: a big host buffer fills from a slow source, then goes
    // out at full speed; the next burst comes after a pause longer than the
    // drive's 1 GiB lasts at 408 MB/s (2.6 s). Each pause costs a backhitch.
    let mut m = lto9();
    let block = 4 * MIB;
    let burst = 3686 * MIB / block; // 90% of 4 GiB, in blocks
    let mut t = Duration::ZERO;
    for _ in 0..4 {
        let end = steady(&mut m, t, 2000 * MB, block, burst);
        t = end + Duration::from_secs(10);
    }
    let last = m.stats();
    m.finish(t - Duration::from_secs(10));
    let stats = m.stats();
    check_consistent(&stats, m.params());
    assert_eq!(stats.backhitches, 3, "{stats:#?}");
    assert_eq!(last.backhitches, 3);
    // The same bytes from a steady host at a rate the drive can match.
    let mut m = lto9();
    let last = steady(&mut m, Duration::ZERO, 250 * MB, block, 4 * burst);
    m.finish(last);
    assert_eq!(m.stats().backhitches, 0);
}

#[test]
fn every_byte_offered_reaches_the_tape() {
    let mut m = lto9();
    let mut offered = 0;
    let mut t = Duration::ZERO;
    for (i, size) in [1u64, 4096, 256 << 10, 3 << 30, 7, 1 << 20]
        .iter()
        .cycle()
        .take(60)
        .enumerate()
    {
        t = m.offer(t + Duration::from_millis(37 * (i as u64 % 5)), *size);
        offered += size;
    }
    m.finish(t);
    let stats = m.stats();
    check_consistent(&stats, m.params());
    assert_eq!(stats.bytes, offered);
    assert_eq!(stats.written, offered);
    assert_eq!(m.level(), 0);
    assert_eq!(m.motion(), Motion::Stopped { backhitch: true });
}

#[test]
fn finish_starts_the_tape_and_a_later_write_repositions() {
    let params = small_drive();
    let mut m = DriveModel::new(params.clone()).unwrap();
    // Less than the start level: the tape stands until the host finishes.
    assert_eq!(m.offer(Duration::ZERO, 20_000), Duration::ZERO);
    m.advance(Duration::from_secs(5));
    assert_eq!(m.motion(), Motion::Stopped { backhitch: false });
    assert_eq!(
        m.finish(Duration::from_secs(5)),
        Duration::from_millis(5_200)
    );
    // Writing on after a flush means winding back first.
    m.offer(Duration::from_secs(6), 60_000);
    assert_eq!(
        m.motion(),
        Motion::Repositioning {
            until: Duration::from_secs(7)
        }
    );
    assert_eq!(
        m.finish(Duration::from_secs(6)),
        Duration::from_millis(7_600)
    );
    let stats = m.stats();
    check_consistent(&stats, &params);
    assert_eq!(stats.backhitches, 1);
    // Finishing an empty drive takes no time.
    assert_eq!(m.finish(Duration::from_secs(9)), Duration::from_secs(9));
}

#[test]
fn a_full_buffer_holds_the_host_back() {
    let mut m = DriveModel::new(small_drive()).unwrap();
    // 100 kB fill the buffer at once; the next 10 kB need 0.1 s of tape.
    assert_eq!(m.offer(Duration::ZERO, 100_000), Duration::ZERO);
    assert_eq!(m.offer(Duration::ZERO, 10_000), Duration::from_millis(100));
    // A write larger than the whole buffer goes in as the tape drains.
    assert_eq!(
        m.offer(Duration::from_millis(100), 250_000),
        Duration::from_millis(2_600)
    );
}

#[test]
fn stats_serialize_as_one_json_object() {
    let mut m = DriveModel::new(small_drive()).unwrap();
    m.offer(Duration::ZERO, 100_000);
    m.finish(Duration::ZERO);
    let v: serde_json::Value = serde_json::to_value(m.stats()).unwrap();
    assert_eq!(v["bytes"], 100_000);
    assert_eq!(v["elapsed_s"], 1.0);
    assert_eq!(v["effective_bytes_per_s"], 100_000);
    assert_eq!(v["steps"][0]["speed_bytes_per_s"], 100_000);
}

/// Reads `left` bytes in pieces of `piece`, failing every `interrupt`-th
/// call with `Interrupted`, as a read on a pipe does when a signal arrives.
struct Choppy {
    left: usize,
    piece: usize,
    interrupt: usize,
    calls: usize,
}

impl Read for Choppy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % self.interrupt == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self.left.min(self.piece).min(buf.len());
        buf[..n].fill(0x55);
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn the_sink_writes_whole_blocks_and_paces_on_the_model() {
    let params = small_drive();
    let mut input = Choppy {
        left: 1_000_000,
        piece: 7_000,
        interrupt: 5,
        calls: 0,
    };
    let mut paced = Paced::new(
        DriveModel::new(params.clone()).unwrap(),
        ManualClock::default(),
    );
    let mut ticks = 0;
    let stats = sink(&mut input, 256 * 1024, &mut paced, |_| ticks += 1).unwrap();
    check_consistent(&stats, &params);
    assert_eq!(stats.writes, 4);
    assert_eq!(stats.written, 1_000_000);
    assert!(ticks >= 4 + 1_000_000 / 7_000 / 5, "{ticks}");
    // The host was instant, so the run takes what the tape needs: 10 s of
    // writing at 100 kB/s, and the clock waited for all of it.
    assert_eq!(stats.elapsed, Duration::from_secs(10));
    assert_eq!(paced.clock().now, Duration::from_secs(10));
    assert_eq!(stats.backhitches, 0);
}

proptest! {
    #[test]
    fn any_host_keeps_the_books(
        native in 1_000u64..10_000_000,
        min_share in 1u64..=100,
        steps in 1u32..6,
        buffer in 16u64..200_000,
        start_share in 1u64..=100,
        low_share in 0u64..100,
        reposition_ms in 0u64..3_000,
        window_ms in 1u64..3_000,
        // Write sizes in thousandths of the buffer: up to four buffers.
        writes in prop::collection::vec((0u64..4_000, 0u64..4_000), 0..60),
        tail_ms in 0u64..5_000,
    ) {
        let min = if steps == 1 { native } else { (native * min_share / 100).max(1) };
        let start = (buffer * start_share / 100).max(1);
        let params = SpeedParams {
            native: Rate(native),
            min: Rate(min),
            steps,
            buffer: Size(buffer),
            reposition: Interval(Duration::from_millis(reposition_ms)),
            start: Fill::Bytes(Size(start)),
            low_water: Fill::Bytes(Size(start * low_share / 100)),
            window: Interval(Duration::from_millis(window_ms)),
        };
        prop_assume!(params.validate().is_ok());
        let mut m = DriveModel::new(params.clone()).unwrap();
        let mut now = Duration::ZERO;
        let mut last = Duration::ZERO;
        let mut offered = 0;
        for (gap_ms, thousandths) in writes {
            let bytes = buffer * thousandths / 1000;
            // The host's clock moves on from when it wrote last, not from
            // when the drive took it: sometimes it writes again early.
            now += Duration::from_millis(gap_ms);
            let accepted = m.offer(now, bytes);
            prop_assert!(accepted >= now);
            prop_assert!(accepted >= last);
            prop_assert!(m.level() <= buffer);
            last = accepted;
            offered += bytes;
        }
        let finish_at = now + Duration::from_millis(tail_ms);
        let done = m.finish(finish_at);
        prop_assert!(done >= finish_at && done >= last);
        let stats = m.stats();
        prop_assert_eq!(stats.bytes, offered);
        prop_assert_eq!(stats.written, offered);
        prop_assert_eq!(stats.elapsed, done);
        prop_assert_eq!(m.level(), 0);
        check_consistent(&stats, &params);
    }
}

// Reading: a cap at the top speed, with up to a buffer read ahead.

/// A host reading `count` blocks of `block` bytes as fast as the drive
/// delivers them, from `t0`; returns when the last one was ready.
fn read_flat_out(r: &mut ReadAhead, t0: Duration, block: u64, count: u64) -> Duration {
    let mut now = t0;
    for _ in 0..count {
        let ready = r.take(now, block);
        assert!(ready >= now);
        now = ready;
    }
    now
}

#[test]
fn a_host_reading_flat_out_gets_the_top_speed_and_no_more() {
    let mut r = ReadAhead::new(&preset("lto9").unwrap());
    // 4000 blocks of 256 KiB: 1048.576 MB at 408 MB/s.
    let t = read_flat_out(&mut r, Duration::from_secs(5), 256 * 1024, 4000);
    let took = (t - Duration::from_secs(5)).as_secs_f64();
    let expect = 4000.0 * 256.0 * 1024.0 / 408e6;
    assert!((took - expect).abs() < 1e-5, "{took} s, not {expect} s");
}

#[test]
fn a_host_that_was_away_finds_at_most_a_buffer_read_ahead() {
    let mut r = ReadAhead::new(&preset("lto9").unwrap());
    let mut now = Duration::ZERO;
    now = r.take(now, MIB);
    // Away for a minute: the tape read on and filled the 1 GiB buffer.
    now += Duration::from_secs(60);
    let back = now;
    for _ in 0..1023 {
        assert_eq!(r.take(now, MIB), back, "buffered data comes at once");
    }
    // Then the tape's speed again.
    now = r.take(now, 1024 * MIB);
    let took = (now - back).as_secs_f64();
    assert!((took - 1024.0 * MIB as f64 / 408e6).abs() < 0.01, "{took}");
}

#[test]
fn after_a_reposition_reading_starts_from_a_standing_tape() {
    let mut r = ReadAhead::new(&preset("lto9").unwrap());
    r.take(Duration::ZERO, MIB);
    let later = Duration::from_secs(10);
    r.reposition();
    let ready = r.take(later, 408 * MB);
    assert_eq!(ready, later + Duration::from_secs(1));
}

proptest! {
    /// Whatever the host does, it never gets more than the tape delivered
    /// since its first read plus one buffer, and never waits when the
    /// tape is that far ahead.
    #[test]
    fn reads_never_outrun_the_tape(gaps in prop::collection::vec((0u64..2000, 1u64..64), 1..200)) {
        let params = preset("lto9").unwrap();
        let mut r = ReadAhead::new(&params);
        let mut now = Duration::ZERO;
        let mut taken = 0u64;
        for (gap_ms, mib) in gaps {
            now += Duration::from_millis(gap_ms);
            let ready = r.take(now, mib * MIB);
            prop_assert!(ready >= now);
            taken += mib * MIB;
            let delivered = ready.as_secs_f64() * params.native.0 as f64;
            prop_assert!(taken as f64 <= delivered + params.buffer.0 as f64 + 1.0);
            now = ready;
        }
    }
}
