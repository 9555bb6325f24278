//! `--bwlimit`: a ceiling on how fast sources are read, shared by every
//! copying thread, for sources that must not be hammered (a production
//! database volume, a NAS serving users).

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limiter {
    bytes_per_sec: u64,
    state: Mutex<(Instant, u64)>,
}

impl Limiter {
    pub fn new(bytes_per_sec: u64) -> Limiter {
        Limiter {
            bytes_per_sec: bytes_per_sec.max(1),
            state: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Account for `n` bytes read; sleeps until they are within the rate.
    pub fn take(&self, n: u64) {
        let wait = {
            let mut s = self.state.lock().expect("limiter lock");
            s.1 += n;
            let due = s.0 + Duration::from_secs_f64(s.1 as f64 / self.bytes_per_sec as f64);
            due.saturating_duration_since(Instant::now())
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}
