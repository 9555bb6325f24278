//! UTC timestamps in the two shapes reel writes: RFC 3339 for manifests and
//! logs (`2026-11-23T10:15:00Z`) and the compact form inside item ids
//! (`20261123T101500`), which sorts as text in time order; and the times a
//! person gives on the command line (`--at`), read with `jiff`.

use std::time::{SystemTime, UNIX_EPOCH};

/// A calendar time in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    /// Now, by reel's clock ([`offset_secs`]).
    pub fn now() -> Self {
        let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        Self::from_unix(secs.saturating_add(offset_secs()))
    }

    pub fn from_system(t: SystemTime) -> Self {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        Self::from_unix(secs)
    }

    /// Nanoseconds since the epoch to a civil date, to the second (floored).
    pub fn from_ns(ns: i128) -> Self {
        Self::from_unix(ns.div_euclid(1_000_000_000) as i64)
    }

    /// Seconds since the epoch to a civil date (Howard Hinnant's
    /// days-to-civil algorithm, proleptic Gregorian calendar).
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// `2026-11-23T10:15:00Z`
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `20261123T101500`
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// `secs` and `nsec` as nanoseconds since the epoch, saturating: an i64
/// holds 1677-09-21 to 2262-04-11; a time beyond (a clock set wrong, a
/// file from year 2400) is kept as the nearest end, never wrapped around.
pub fn ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Nanoseconds since the epoch as a `timespec` (for `futimens` and
/// `utimensat`), negative times included.
pub fn timespec(ns: i64) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
}

/// Nanoseconds since the epoch of an RFC 3339 time (`2026-11-23T10:15:00Z`,
/// any offset), as reel writes them.
pub fn rfc3339_ns(text: &str) -> Option<i64> {
    let t: jiff::Timestamp = text.parse().ok()?;
    i64::try_from(t.as_nanosecond()).ok()
}

/// Nanoseconds since the epoch now, by reel's clock ([`offset_secs`]).
pub fn now_ns() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond())
        .unwrap_or(i64::MAX)
        .saturating_add(offset_secs().saturating_mul(1_000_000_000))
}

/// `REEL_CLOCK_OFFSET`: seconds added to the system clock wherever reel
/// dates what it records (when a version was taken, verified, expired).
/// For drills and tests of retention — weeks pass in minutes — never for
/// production; 0 when unset or unreadable.
pub fn offset_secs() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("REEL_CLOCK_OFFSET")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// A time given by a person (`--at`), as nanoseconds since the epoch:
///
/// - an instant with its offset: `2026-12-01T10:00:00Z`,
///   `2026-12-01T10:00+02:00`;
/// - a date and time without an offset, in this machine's time zone:
///   `2026-12-01T10:00`, `2026-12-01 10:00:30`;
/// - a day, a month or a year (`2026-12-01`, `2026-12`, `2026`): the end of
///   it, in this machine's time zone, so that `--at 2026-11` means "as it
///   was at the end of November".
pub fn parse_at(text: &str) -> Result<i64, String> {
    use jiff::civil::{Date, DateTime};
    use jiff::tz::TimeZone;
    let t = text.trim();
    let bad = |why: String| {
        format!(
            "{t:?} is not a time reel reads ({why}); give 2026-12-01T10:00:00Z, \
             2026-12-01T10:00+02:00, 2026-12-01 10:00, 2026-12-01, 2026-12 or 2026"
        )
    };
    let ns =
        |ts: jiff::Timestamp| i64::try_from(ts.as_nanosecond()).map_err(|e| bad(e.to_string()));
    let tz = TimeZone::system();
    // The last nanosecond before `next` (the start of the following day,
    // month or year) in this time zone.
    let end_before = |next: Date| -> Result<i64, String> {
        let start = next
            .to_zoned(tz.clone())
            .map_err(|e| bad(e.to_string()))?
            .timestamp();
        ns(start).map(|n| n - 1)
    };
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return ns(ts);
    }
    if let Ok(dt) = t.parse::<DateTime>()
        && t.contains([':', 'T', ' '])
    {
        let z = dt.to_zoned(tz.clone()).map_err(|e| bad(e.to_string()))?;
        return ns(z.timestamp());
    }
    if let Ok(d) = t.parse::<Date>() {
        return end_before(d.tomorrow().map_err(|e| bad(e.to_string()))?);
    }
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let month_or_year = match t.split_once('-') {
        Some((y, m)) if digits(y, 4) && digits(m, 2) => {
            let (y, m) = (y.parse::<i16>(), m.parse::<i8>());
            match (y, m) {
                (Ok(y), Ok(12)) => Date::new(y + 1, 1, 1),
                (Ok(y), Ok(m)) => Date::new(y, m + 1, 1),
                _ => return Err(bad("not a month".into())),
            }
        }
        None if digits(t, 4) => {
            let y: i16 = t.parse().map_err(|_| bad("not a year".into()))?;
            Date::new(y + 1, 1, 1)
        }
        _ => return Err(bad("not a date or time".into())),
    };
    end_before(month_or_year.map_err(|e| bad(e.to_string()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_given_by_people() {
        let utc = |s: &str| rfc3339_ns(s).unwrap();
        assert_eq!(
            parse_at("2026-12-01T10:00:00Z"),
            Ok(utc("2026-12-01T10:00:00Z"))
        );
        // The offset is kept, not dropped.
        assert_eq!(
            parse_at("2026-12-01T10:00+02:00"),
            Ok(utc("2026-12-01T08:00:00Z"))
        );
        // Periods end at their last nanosecond (in the machine's zone, so
        // compare with the same reading of the next period's start).
        let next = |s: &str| parse_at(s).unwrap() + 1;
        assert_eq!(next("2026-11"), next("2026-11-30"));
        assert_eq!(next("2026-12"), next("2026-12-31"));
        assert_eq!(next("2026"), next("2026-12-31"));
        assert!(parse_at("2026-11-30").unwrap() < parse_at("2026-12-01 00:00").unwrap());
        for bad in ["yesterday", "2026-13", "2026-11-31", "26-11", "", "2026-1"] {
            let e = parse_at(bad).unwrap_err();
            assert!(e.contains("is not a time reel reads"), "{bad}: {e}");
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(Utc::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Utc::from_unix(951_782_400).rfc3339(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Utc::from_unix(1_795_428_900).rfc3339(),
            "2026-11-23T10:15:00Z"
        );
        assert_eq!(Utc::from_unix(1_795_428_900).compact(), "20261123T101500");
        assert_eq!(Utc::from_unix(-1).rfc3339(), "1969-12-31T23:59:59Z");
    }
}
