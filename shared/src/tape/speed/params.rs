//! The numbers that describe a drive's speed behaviour ([`SpeedParams`]),
//! the named presets, and the two small unit types they need: [`Rate`]
//! (`"408MB/s"`) and [`Fill`] (`"50%"` or `"512M"` of the drive buffer).
//!
//! Parameters are plain data so that a JSON or TOML file (a virtual tape's
//! `meta.json`, `reel-drivesim --params`) can spell them the way a sysadmin
//! would, and so that a benchmark can state exactly which drive it modelled.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{Interval, Percent, Size, UnitError};

/// A data rate in bytes per second. Written as a size per second:
/// `"408MB/s"` (decimal, as drive vendors quote rates), `"4M/s"`; the `/s`
/// may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(pub u64);

impl Rate {
    pub const fn bytes_per_sec(self) -> u64 {
        self.0
    }

    /// `bytes` moved in `elapsed`; zero time counts as no rate at all.
    pub fn of(bytes: u64, elapsed: Duration) -> Rate {
        let ns = elapsed.as_nanos();
        if ns == 0 {
            return Rate(0);
        }
        Rate(u64::try_from(u128::from(bytes) * 1_000_000_000 / ns).unwrap_or(u64::MAX))
    }

    /// For people: decimal megabytes per second (`408.0 MB/s`), never parsed back.
    pub fn human(self) -> String {
        format!("{:.1} MB/s", self.0 as f64 / 1e6)
    }
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        let t = text.trim();
        let t = t
            .strip_suffix("/s")
            .or_else(|| t.strip_suffix("/sec"))
            .unwrap_or(t);
        t.parse::<Size>().map(|s| Rate(s.0))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", Size(self.0))
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rate like \"408MB/s\" or a number of bytes per second")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                Ok(Rate(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                u64::try_from(v)
                    .map(Rate)
                    .map_err(|_| E::custom("a rate cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rate, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A level in the drive buffer: a share of it (`"50%"`) or an amount
/// (`"512M"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Share(Percent),
    Bytes(Size),
}

impl Fill {
    /// The level in bytes for a buffer of `buffer` bytes (never above it).
    pub fn bytes(self, buffer: u64) -> u64 {
        match self {
            Fill::Share(p) => p.of(buffer),
            Fill::Bytes(s) => s.0.min(buffer),
        }
    }
}

impl FromStr for Fill {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        if text.trim_end().ends_with('%') {
            text.parse().map(Fill::Share)
        } else {
            text.parse().map(Fill::Bytes)
        }
    }
}

impl fmt::Display for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fill::Share(p) => p.fmt(f),
            Fill::Bytes(s) => s.fmt(f),
        }
    }
}

impl Serialize for Fill {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fill {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Fill;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a share of the drive buffer like \"50%\", or a size like \"512M\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Fill, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// How a drive moves tape: its speed-matching steps, its buffer, and what a
/// stop costs. See the module documentation of [`super`] for the rules the
/// model applies to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedParams {
    /// The top speed with the drive's own media.
    pub native: Rate,
    /// The lowest speed-matching speed; below it the drive cannot go slower
    /// and shoe-shines instead.
    pub min: Rate,
    /// How many speeds, evenly spaced from `min` to `native` inclusive. With
    /// one step the drive has a single speed and `min` must equal `native`.
    pub steps: u32,
    /// The drive's own data buffer.
    pub buffer: Size,
    /// What one backhitch costs: stopping, winding back past the last block
    /// written and coming up to speed again.
    pub reposition: Interval,
    /// How full the buffer must be before the tape starts, or restarts after
    /// it ran dry.
    #[serde(default = "default_start")]
    pub start: Fill,
    /// Below this level the drive drops to the step under the host's rate so
    /// that the buffer fills again, and stays there until the buffer is full
    /// (`"0%"`: never).
    #[serde(default = "default_low_water")]
    pub low_water: Fill,
    /// Over how long the drive measures the host's rate, and how often it
    /// reconsiders its speed.
    #[serde(default = "default_window")]
    pub window: Interval,
}

fn default_start() -> Fill {
    Fill::Share(Percent::new(50))
}

fn default_low_water() -> Fill {
    Fill::Share(Percent::new(25))
}

fn default_window() -> Interval {
    Interval::from_secs(1)
}

/// Parameters that cannot describe a drive; `key` names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ParamsError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> ParamsError {
    ParamsError {
        key,
        message: message.into(),
    }
}

impl SpeedParams {
    /// Check that the numbers describe a drive the model can run.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.native.0 == 0 {
            return Err(bad("native", "must be above zero"));
        }
        if self.min.0 == 0 {
            return Err(bad("min", "must be above zero"));
        }
        if self.min > self.native {
            return Err(bad(
                "min",
                format!("{} is above native {}", self.min, self.native),
            ));
        }
        if self.steps == 0 || self.steps > 1024 {
            return Err(bad("steps", "must be from 1 to 1024"));
        }
        if self.steps == 1 && self.min != self.native {
            return Err(bad(
                "steps",
                "one step means one speed: set min equal to native, or give more steps",
            ));
        }
        if self.buffer.0 == 0 {
            return Err(bad("buffer", "must be above zero"));
        }
        if let Fill::Bytes(s) = self.start
            && s > self.buffer
        {
            return Err(bad(
                "start",
                format!("{s} is more than the buffer of {}", self.buffer),
            ));
        }
        if self.start_bytes() == 0 {
            return Err(bad("start", "must be above zero"));
        }
        if self.low_water.bytes(self.buffer.0) >= self.start_bytes() {
            return Err(bad(
                "low_water",
                format!("{} must be below start {}", self.low_water, self.start),
            ));
        }
        if self.window.0.is_zero() {
            return Err(bad("window", "must be above zero"));
        }
        Ok(())
    }

    /// The speeds, slowest first: `steps` of them, evenly spaced from `min`
    /// to `native` inclusive (rounded down to whole bytes per second).
    pub fn speeds(&self) -> Vec<Rate> {
        let n = u64::from(self.steps.max(1));
        if n == 1 {
            return vec![self.native];
        }
        let (lo, hi) = (self.min.0, self.native.0.max(self.min.0));
        (0..n)
            .map(|i| {
                Rate(
                    lo + u64::try_from(u128::from(hi - lo) * u128::from(i) / u128::from(n - 1))
                        .unwrap_or(hi),
                )
            })
            .collect()
    }

    /// The buffer level at which the tape starts moving, in bytes.
    pub fn start_bytes(&self) -> u64 {
        self.start.bytes(self.buffer.0)
    }
}

/// The names [`preset`] knows, for help texts and error messages.
pub const PRESETS: &[&str] = &["lto9"];

/// A named drive.
///
/// Only drives whose figures could be checked against a published source
/// are here; where a figure is the model's own assumption, the comment says
/// so. Override any of them with the individual fields.
pub fn preset(name: &str) -> Option<SpeedParams> {
    match name {
        // LTO-9 full-height drive writing LTO-9 media.
        //
        // Rates: IBM's "Speed matching" table for LTO drives
        // (https://www.ibm.com/docs/en/STAKKZ/con_LTOdrive_speedmatching.html,
        // and the same table in Quantum's "LTO-9 HH SAS User's Guide",
        // "Speed Matching"): 12 speeds from 408 down to 177 MB/s with
        // Generation 9 media. The published steps are not quite evenly
        // spaced (408, 385, 366, 347, 325, 305, 284, 263, 244, 223, 203,
        // 177); the model's even spacing (177 + 21·i) is within 6 MB/s of
        // each of them.
        //
        // Assumptions, not published figures: the buffer size (1 GiB; no
        // vendor figure could be confirmed), the reposition time (3 s, for
        // the "a few seconds" a backhitch is known to cost), and the start,
        // low-water and window values, which describe the model's
        // behaviour rather than a drive's datasheet.
        "lto9" => Some(SpeedParams {
            native: Rate(408_000_000),
            min: Rate(177_000_000),
            steps: 12,
            buffer: Size(1 << 30),
            reposition: Interval::from_secs(3),
            start: default_start(),
            low_water: default_low_water(),
            window: default_window(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        assert_eq!("408MB/s".parse::<Rate>(), Ok(Rate(408_000_000)));
        assert_eq!("408MB".parse::<Rate>(), Ok(Rate(408_000_000)));
        assert_eq!("4M/s".parse::<Rate>(), Ok(Rate(4 << 20)));
        assert_eq!(Rate(408_000_000).to_string(), "408MB/s");
        assert!("fast".parse::<Rate>().is_err());
        assert_eq!(Rate(408_000_000).human(), "408.0 MB/s");
        assert_eq!(Rate::of(1000, Duration::from_millis(500)), Rate(2000));
    }

    #[test]
    fn fills_parse() {
        assert_eq!("50%".parse::<Fill>(), Ok(Fill::Share(Percent::new(50))));
        assert_eq!("512M".parse::<Fill>(), Ok(Fill::Bytes(Size(512 << 20))));
        assert_eq!(Fill::Share(Percent::new(50)).bytes(1000), 500);
        assert_eq!(Fill::Bytes(Size(5000)).bytes(1000), 1000);
    }

    #[test]
    fn lto9_has_the_published_range() {
        let p = preset("lto9").unwrap();
        p.validate().unwrap();
        let speeds = p.speeds();
        assert_eq!(speeds.len(), 12);
        assert_eq!(speeds[0], Rate(177_000_000));
        assert_eq!(speeds[11], Rate(408_000_000));
        assert_eq!(speeds[6], Rate(303_000_000));
        for name in PRESETS {
            preset(name).unwrap().validate().unwrap();
        }
        assert!(preset("lto99").is_none());
    }

    #[test]
    fn params_round_trip_through_json() {
        let p = preset("lto9").unwrap();
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<SpeedParams>(&text).unwrap(), p);
        let small: SpeedParams = serde_json::from_str(
            r#"{"native": "4MB/s", "min": "2MB/s", "steps": 3, "buffer": "1M", "reposition": "50ms"}"#,
        )
        .unwrap();
        small.validate().unwrap();
        assert_eq!(
            small.speeds(),
            vec![Rate(2_000_000), Rate(3_000_000), Rate(4_000_000)]
        );
        assert_eq!(small.start, Fill::Share(Percent::new(50)));
        let unknown = serde_json::from_str::<SpeedParams>(
            r#"{"native": "4MB/s", "min": "2MB/s", "steps": 3, "buffer": "1M", "reposition": "50ms", "turbo": true}"#,
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let good = preset("lto9").unwrap();
        type Breakage = fn(&mut SpeedParams);
        let cases: [(&str, Breakage); 6] = [
            ("min", |p| p.min = Rate(500_000_000)),
            ("steps", |p| p.steps = 0),
            ("steps", |p| p.steps = 1),
            ("buffer", |p| p.buffer = Size(0)),
            ("low_water", |p| p.low_water = Fill::Share(Percent::new(60))),
            ("window", |p| p.window = Interval(Duration::ZERO)),
        ];
        for (key, break_it) in cases {
            let mut p = good.clone();
            break_it(&mut p);
            assert_eq!(p.validate().unwrap_err().key, key);
        }
    }
}
