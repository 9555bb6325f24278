//! Cache space (README, "Staging"; the pause marker: docs/spool.md §7): staging
//! stops above `cache.high_water` and resumes only below `cache.low_water`. The
//! pause survives between runs as a marker file, so a stage started while the
//! cache drains does not fill it right back to the high mark.

use std::path::{Path, PathBuf};

use crate::config::Water;
use crate::units::Size;

pub struct Space {
    cache: PathBuf,
    high: Water,
    low: Water,
}

pub use crate::fsutil::fs_usage as usage;

impl Space {
    pub fn new(cache: &Path, high: Water, low: Water) -> Space {
        Space {
            cache: cache.to_path_buf(),
            high,
            low,
        }
    }

    fn marker(&self) -> PathBuf {
        self.cache.join(".reel-stage-paused")
    }

    fn describe(&self, used: u64, total: u64) -> String {
        format!(
            "cache {} holds {} of {} ({:.0}%)",
            self.cache.display(),
            Size(used).human(),
            Size(total).human(),
            used as f64 * 100.0 / total.max(1) as f64
        )
    }

    /// May staging start? `Err(reason)` while paused or above the high mark.
    pub fn may_start(&self) -> std::io::Result<Result<(), String>> {
        let (used, total) = usage(&self.cache)?;
        if self.marker().exists() {
            if used >= self.low.bytes(total) {
                return Ok(Err(format!(
                    "{}: staging is paused until it drains below low_water ({})",
                    self.describe(used, total),
                    self.low
                )));
            }
            let _ = std::fs::remove_file(self.marker());
            log::info!(
                "{}: below low_water ({}), staging resumes",
                self.describe(used, total),
                self.low
            );
        }
        self.check()
    }

    /// Is the cache still below the high mark? Pauses staging if not.
    pub fn check(&self) -> std::io::Result<Result<(), String>> {
        let (used, total) = usage(&self.cache)?;
        if used >= self.high.bytes(total) {
            self.pause();
            return Ok(Err(format!(
                "{}: above high_water ({}); staging stops until it drains below low_water ({})",
                self.describe(used, total),
                self.high,
                self.low
            )));
        }
        Ok(Ok(()))
    }

    /// Is there room to stage an item that needs `need` and still leave
    /// `reserve` free, so that what is staged can be packed? Staging that
    /// fills the cache with what cannot be packed would stall the pipeline
    /// for good. `Err(reason)` when there is not (no pause: it is waiting
    /// for packing and verifying, not for the water marks).
    pub fn room_for(
        &self,
        item: &str,
        need: u64,
        reserve: u64,
    ) -> std::io::Result<Result<(), String>> {
        let (used, total) = usage(&self.cache)?;
        let free = total.saturating_sub(used);
        if free >= need + reserve {
            return Ok(Ok(()));
        }
        Ok(Err(format!(
            "{}: {item} needs {} and packing what is staged needs {} more; staging waits for packing and verifying to free the cache",
            self.describe(used, total),
            Size(need).human(),
            Size(reserve).human()
        )))
    }

    /// The cache file system's size.
    pub fn total(&self) -> std::io::Result<u64> {
        usage(&self.cache).map(|(_, total)| total)
    }

    /// Remember that staging stopped (the cache filled up).
    pub fn pause(&self) {
        let _ = std::fs::write(self.marker(), b"");
    }
}
