//! Time as the sans-IO core sees it: an [`Instant`] the caller hands in (the crate never reads a
//! clock), the centisecond advertisement [`Interval`], and the RFC 9568 §6.1 timer arithmetic
//! (`Skew_Time`, `Master_Down_Interval`), kept in whole centiseconds as the RFC computes it.

use std::fmt;
use std::num::NonZeroU16;
use std::ops::Add;
use std::time::Duration;

/// A point in time, measured from an origin the caller picks (process start, say).
///
/// Tests drive it in virtual time (`Instant::from_centis(360)`); the I/O side builds it from
/// `std::time::Instant::elapsed()` of its own origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_origin` after the origin.
    pub const fn from_duration(since_origin: Duration) -> Instant {
        Instant(since_origin)
    }

    /// The instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(Duration::from_millis(ms))
    }

    /// The instant `cs` centiseconds after the origin, the unit of VRRP timers.
    pub const fn from_centis(cs: u64) -> Instant {
        Instant(Duration::from_millis(cs.saturating_mul(10)))
    }

    /// Time elapsed since the origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates instead of panicking: a deadline past the end of time never fires.
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(rhs))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0.as_secs(), self.0.subsec_micros())
    }
}

/// An advertisement interval in centiseconds, never zero.
///
/// VRRPv3 carries it as 12 bits of centiseconds (1..=4095); VRRPv2 as 8 bits of whole seconds
/// (1..=255, i.e. 100..=25500 cs). Both fit, so the state machine works in one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval(NonZeroU16);

impl Interval {
    /// One second, the RFC default `Advertisement_Interval`.
    pub const ONE_SECOND: Interval = match NonZeroU16::new(100) {
        Some(cs) => Interval(cs),
        // Evaluated at compile time: 100 is not zero, so this arm cannot be taken at run time.
        None => panic!("100 is not zero"),
    };

    /// `cs` centiseconds, or `None` for zero.
    pub const fn from_centis(cs: u16) -> Option<Interval> {
        match NonZeroU16::new(cs) {
            Some(cs) => Some(Interval(cs)),
            None => None,
        }
    }

    /// `secs` whole seconds (the VRRPv2 unit), or `None` for zero.
    pub const fn from_secs(secs: u8) -> Option<Interval> {
        // 255 s = 25500 cs, which fits in a u16.
        Interval::from_centis(secs as u16 * 100)
    }

    /// The interval in centiseconds.
    pub const fn centis(self) -> u16 {
        self.0.get()
    }

    /// The interval in whole seconds if it is a whole number of them (VRRPv2 can carry only those).
    pub const fn whole_secs(self) -> Option<u8> {
        let cs = self.0.get();
        if cs % 100 == 0 && cs / 100 <= u8::MAX as u16 {
            Some((cs / 100) as u8)
        } else {
            None
        }
    }

    /// The interval as a [`Duration`].
    pub fn as_duration(self) -> Duration {
        centis(u32::from(self.centis()))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}cs", self.centis())
    }
}

/// `Skew_Time` in centiseconds: `((256 - Priority) * Master_Adver_Interval) / 256`, truncated as
/// integer division does (RFC 9568 §6.1). Priority 100 at 100 cs gives 60 cs.
pub fn skew_time_centis(priority: u8, master_adver_interval: Interval) -> u32 {
    (256 - u32::from(priority)) * u32::from(master_adver_interval.centis()) / 256
}

/// `Master_Down_Interval` in centiseconds: `3 * Master_Adver_Interval + Skew_Time`
/// (RFC 9568 §6.1). Priority 100 at 100 cs gives 360 cs; at 10 cs, 36 cs.
pub fn master_down_interval_centis(priority: u8, master_adver_interval: Interval) -> u32 {
    3 * u32::from(master_adver_interval.centis())
        + skew_time_centis(priority, master_adver_interval)
}

/// `Skew_Time` as a [`Duration`].
pub fn skew_time(priority: u8, master_adver_interval: Interval) -> Duration {
    centis(skew_time_centis(priority, master_adver_interval))
}

/// `Master_Down_Interval` as a [`Duration`].
pub fn master_down_interval(priority: u8, master_adver_interval: Interval) -> Duration {
    centis(master_down_interval_centis(priority, master_adver_interval))
}

fn centis(cs: u32) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(v: u16) -> Interval {
        Interval::from_centis(v).unwrap()
    }

    #[test]
    fn skew_and_master_down_interval_match_the_rfc_examples() {
        // (256 - 100) * 100 / 256 = 15600 / 256 = 60.9 -> 60 cs; 3 * 100 + 60 = 360 cs.
        assert_eq!(skew_time_centis(100, cs(100)), 60);
        assert_eq!(master_down_interval_centis(100, cs(100)), 360);
        // (256 - 100) * 10 / 256 = 1560 / 256 = 6.09 -> 6 cs; 3 * 10 + 6 = 36 cs.
        assert_eq!(skew_time_centis(100, cs(10)), 6);
        assert_eq!(master_down_interval_centis(100, cs(10)), 36);
        // (256 - 200) * 100 / 256 = 5600 / 256 = 21.9 -> 21 cs.
        assert_eq!(skew_time_centis(200, cs(100)), 21);
        assert_eq!(
            master_down_interval(200, cs(100)),
            Duration::from_millis(3210)
        );
        // Priority 255: (1 * 100) / 256 = 0 cs.
        assert_eq!(skew_time_centis(255, cs(100)), 0);
        // Priority 0 (only ever seen on the wire) and the largest v2 interval stay in range.
        assert_eq!(skew_time_centis(0, cs(25500)), 25500);
        assert_eq!(skew_time(100, cs(100)), Duration::from_millis(600));
    }

    #[test]
    fn interval_units() {
        assert_eq!(Interval::from_centis(0), None);
        assert_eq!(Interval::from_secs(0), None);
        assert_eq!(Interval::from_secs(255).unwrap().centis(), 25500);
        assert_eq!(Interval::from_secs(3).unwrap().whole_secs(), Some(3));
        assert_eq!(cs(150).whole_secs(), None);
        assert_eq!(Interval::ONE_SECOND.as_duration(), Duration::from_secs(1));
        assert_eq!(cs(4095).to_string(), "4095cs");
    }

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::from_centis(360);
        assert_eq!(t, Instant::from_millis(3600));
        assert_eq!(
            t.saturating_duration_since(Instant::ZERO),
            Duration::from_millis(3600)
        );
        assert_eq!(Instant::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(
            Instant::from_duration(Duration::MAX) + Duration::from_secs(1),
            Instant::from_duration(Duration::MAX)
        );
        assert_eq!(t.to_string(), "3.600000s");
    }
}
