//! Sizes, durations and percentages as people write them in `pipeline.toml`
//! and on the command line, parsed and printed both ways.
//!
//! Sizes follow dd and mbuffer: `K`, `M`, `G`, `T`, `P` (and `KiB`…) are
//! powers of 1024, because block and buffer sizes are; `KB`, `MB`, `GB`,
//! `TB`, `PB` are powers of 1000, because tape capacities are (an LTO-9
//! cartridge holds `18TB`, not `18T`). Printing picks the shortest exact form,
//! so `Size::from_str(&s.to_string()) == s` always holds.
//!
//! Durations are one or more `<number><unit>` groups with units `ms`, `s`,
//! `m`, `h`, `d`, `w` (`30s`, `10m`, `1h30m`). A bare number is refused: a
//! sysadmin reading `min_age = 10` cannot know whether it means seconds or
//! minutes, and neither can we.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parse failure for a size, duration or percentage; the message says what
/// was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

const BINARY: [(&str, u64); 5] = [
    ("P", 1 << 50),
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
];
const DECIMAL: [(&str, u64); 5] = [
    ("PB", 1_000_000_000_000_000),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
];

impl Size {
    pub const fn bytes(self) -> u64 {
        self.0
    }

    fn multiplier(suffix: &str) -> Option<u64> {
        let s = suffix.to_ascii_uppercase();
        match s.as_str() {
            "" | "B" => Some(1),
            _ => {
                let s = s.strip_suffix("IB").map(|p| p.to_string()).unwrap_or(s);
                BINARY
                    .iter()
                    .chain(DECIMAL.iter())
                    .find(|(name, _)| *name == s)
                    .map(|&(_, m)| m)
            }
        }
    }
}

impl FromStr for Size {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        let bad = || {
            UnitError(format!(
                "invalid size {text:?}: expected a number with an optional unit, \
                 like 512, 256K, 100G or 18TB"
            ))
        };
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, suffix) = t.split_at(split);
        if number.is_empty() {
            return Err(bad());
        }
        let mult = Size::multiplier(suffix.trim()).ok_or_else(bad)?;
        let value = if let Some((whole, frac)) = number.split_once('.') {
            // "1.5T": exact decimal arithmetic, refusing fractions of a byte.
            if frac.contains('.') || frac.is_empty() || frac.len() > 18 {
                return Err(bad());
            }
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| bad())?
            };
            let scale = 10u128.pow(frac.len() as u32);
            let frac: u128 = frac.parse().map_err(|_| bad())?;
            let total = (whole * scale + frac)
                .checked_mul(mult as u128)
                .ok_or_else(bad)?;
            if total % scale != 0 {
                return Err(UnitError(format!(
                    "invalid size {text:?}: not a whole number of bytes"
                )));
            }
            u64::try_from(total / scale).map_err(|_| bad())?
        } else {
            let n: u64 = number.parse().map_err(|_| bad())?;
            n.checked_mul(mult).ok_or_else(bad)?
        };
        Ok(Size(value))
    }
}

impl fmt::Display for Size {
    /// The shortest exact form; binary units win a tie.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let mut best = n.to_string();
        if n != 0 {
            for (name, m) in BINARY.iter().chain(DECIMAL.iter()) {
                let candidate = format!("{}{}", n / m, name);
                if n % m == 0 && candidate.len() < best.len() {
                    best = candidate;
                }
            }
        }
        f.write_str(&best)
    }
}

impl Size {
    /// A rough human rendering for progress lines (`1.4 GiB`), never parsed back.
    pub fn human(self) -> String {
        let n = self.0 as f64;
        for (name, m) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if self.0 >= m {
                return format!("{:.1} {name}", n / m as f64);
            }
        }
        format!("{} B", self.0)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size like 512, \"256K\", \"100G\" or \"18TB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A span of time written with units (`30s`, `10m`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Interval(pub Duration);

const DURATION_UNITS: [(&str, u64); 6] = [
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl Interval {
    pub const fn from_secs(secs: u64) -> Self {
        Interval(Duration::from_secs(secs))
    }

    pub const fn duration(self) -> Duration {
        self.0
    }
}

impl FromStr for Interval {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        let bad = |why: &str| {
            UnitError(format!(
                "invalid duration {text:?}: {why}; write it like 30s, 10m, 1h or 1h30m"
            ))
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut total_ms: u64 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad("expected a number"));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| bad("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = rest[..unit_len].trim();
            if unit.is_empty() {
                return Err(bad("a unit is missing"));
            }
            let mult = DURATION_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|&(_, m)| m)
                .ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?;
            total_ms = n
                .checked_mul(mult)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(|| bad("too long"))?;
            rest = &rest[unit_len..];
        }
        Ok(Interval(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (name, m) in DURATION_UNITS {
            if ms >= m {
                write!(f, "{}{}", ms / m, name)?;
                ms %= m;
            }
        }
        Ok(())
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Interval;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with a unit, like \"30s\", \"10m\" or \"1h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Interval, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A percentage (`"90%"`), kept in hundredths of a percent so that it
/// compares and prints exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u32);

impl Percent {
    pub const fn new(whole: u32) -> Self {
        Percent(whole * 100)
    }

    /// The fraction, 0.0 to 1.0.
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }

    /// `self` of `total`, rounded down.
    pub fn of(self, total: u64) -> u64 {
        (u128::from(total) * u128::from(self.0) / 10_000) as u64
    }
}

impl FromStr for Percent {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        let bad = || {
            UnitError(format!(
                "invalid percentage {text:?}: expected a number from 0 to 100 followed by %, like \"90%\""
            ))
        };
        let number = text.trim().strip_suffix('%').ok_or_else(bad)?.trim();
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || frac.len() > 2 || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: u32 = whole.parse().map_err(|_| bad())?;
        let frac: u32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<2}").parse().map_err(|_| bad())?
        };
        if whole > 100 || (whole == 100 && frac > 0) {
            return Err(bad());
        }
        Ok(Percent(whole * 100 + frac))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}%"),
            _ if frac % 10 == 0 => write!(f, "{whole}.{}%", frac / 10),
            _ => write!(f, "{whole}.{frac:02}%"),
        }
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a percentage like \"90%\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Percent, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_parse() {
        let cases = [
            ("512", 512),
            ("256K", 256 * 1024),
            ("256k", 256 * 1024),
            ("256KiB", 256 * 1024),
            ("100G", 100 << 30),
            ("18T", 18 << 40),
            ("18TB", 18_000_000_000_000),
            ("1.5K", 1536),
            ("0", 0),
            ("4 M", 4 << 20),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Size>(), Ok(Size(want)), "{text}");
        }
        for bad in [
            "",
            "K",
            "12Q",
            "-1",
            "1.2.3K",
            "0.1B",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Size>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn sizes_print_shortest_exact_form() {
        assert_eq!(Size(256 * 1024).to_string(), "256K");
        assert_eq!(Size(18_000_000_000_000).to_string(), "18TB");
        assert_eq!(Size(1 << 30).to_string(), "1G");
        assert_eq!(Size(1000).to_string(), "1KB");
        assert_eq!(Size(1001).to_string(), "1001");
        assert_eq!(Size(0).to_string(), "0");
    }

    #[test]
    fn durations_parse_and_print() {
        let cases = [
            ("30s", 30_000),
            ("10m", 600_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("2d", 172_800_000),
            ("0s", 0),
        ];
        for (text, ms) in cases {
            let d: Interval = text.parse().unwrap();
            assert_eq!(d.0, Duration::from_millis(ms), "{text}");
            assert_eq!(d.to_string(), text);
        }
        for bad in ["", "10", "m", "10x", "1h 30", "-5s"] {
            assert!(bad.parse::<Interval>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!("90%".parse::<Percent>(), Ok(Percent::new(90)));
        assert_eq!("12.5%".parse::<Percent>().unwrap().to_string(), "12.5%");
        assert_eq!("0.25%".parse::<Percent>().unwrap().to_string(), "0.25%");
        assert_eq!(Percent::new(50).of(1001), 500);
        for bad in ["90", "101%", "100.5%", "-1%", "%", "1.234%"] {
            assert!(bad.parse::<Percent>().is_err(), "{bad:?} should not parse");
        }
    }

    proptest! {
        #[test]
        fn size_round_trips(n in any::<u64>()) {
            let s = Size(n).to_string();
            prop_assert_eq!(s.parse::<Size>(), Ok(Size(n)));
        }

        #[test]
        fn interval_round_trips(ms in 0u64..(1 << 50)) {
            let d = Interval(Duration::from_millis(ms));
            prop_assert_eq!(d.to_string().parse::<Interval>(), Ok(d));
        }

        #[test]
        fn percent_round_trips(hundredths in 0u32..=10_000) {
            let p = Percent(hundredths);
            prop_assert_eq!(p.to_string().parse::<Percent>(), Ok(p));
        }
    }
}
