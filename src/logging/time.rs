//! RFC 3339 timestamps in UTC with milliseconds (`2026-12-03T09:05:25.123Z`), formatted
//! from Unix time without allocating: the civil date from a day count is a few lines of
//! integer arithmetic (the proleptic Gregorian algorithm), not worth a crate.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, as Unix time, shown in RFC 3339 (UTC, milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub Duration);

impl Rfc3339 {
    pub fn now() -> Rfc3339 {
        Rfc3339(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }
}

/// The same instant as syslog(3) writes it: `Dec  3 08:05:25` (UTC, no year).
pub struct Bsd(Duration);

impl Rfc3339 {
    pub fn bsd(self) -> Bsd {
        Bsd(self.0)
    }
}

impl fmt::Display for Bsd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let secs = self.0.as_secs();
        let rem = secs % 86_400;
        let (_, mo, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
        write!(
            f,
            "{} {d:>2} {:02}:{:02}:{:02}",
            MONTHS[(mo as usize - 1) % 12],
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

/// Year, month (1–12) and day (1–31) of the `days`-th day after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        let (y, mo, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            self.0.subsec_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, ms: u64) -> String {
        Rfc3339(Duration::from_secs(secs) + Duration::from_millis(ms)).to_string()
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(1_796_285_125, 123), "2026-12-03T08:05:25.123Z");
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn every_day_follows_the_one_before() {
        let mut prev = civil_from_days(-1);
        for days in 0..200_000 {
            let cur = civil_from_days(days);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                cur == next_day || cur == next_month || cur == next_year,
                "{prev:?} then {cur:?}"
            );
            prev = cur;
        }
    }
}
