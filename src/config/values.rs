//! Value types of the configuration that parse, rather than validate: a socket address
//! written `ip:port`, a duration written `250ms` / `5s` / `1m` / `2h` and at most
//! `MAX_DURATION`, a forwarding mode.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// `ip:port`, IPv4 or IPv6 (`[::1]:80`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr(pub SocketAddr);

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Addr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address as a string \"ip:port\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Addr, E> {
                SocketAddr::from_str(s)
                    .map(Addr)
                    .map_err(|_| E::custom(format!("{s:?} is not ip:port")))
            }
        }
        d.deserialize_str(V)
    }
}

/// The longest duration any field accepts. A day is past every sensible timeout, interval
/// or delay, and keeps every deadline (now + duration, in any unit down to nanoseconds)
/// far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A duration written as an integer and a unit: `ms`, `s`, `m` or `h`; at most
/// `MAX_DURATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a duration (expected e.g. \"250ms\", \"5s\", \"1m\")");
        let too_long = || format!("{s:?} is longer than the maximum of 24h");
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = s.split_at(split);
        let per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        if digits.is_empty() {
            return Err(bad());
        }
        // Only digits are left, so a failed parse is a number past u64: too long as well.
        let n: u64 = digits.parse().map_err(|_| too_long())?;
        let ms = n.checked_mul(per_unit).ok_or_else(too_long)?;
        let d = Duration::from_millis(ms);
        if d > MAX_DURATION {
            return Err(too_long());
        }
        Ok(HumanDuration(d))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration as a string such as \"5s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// How a frontend moves bytes between client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// splice(2) socket → pipe → socket on readiness reported by io_uring.
    Splice,
    /// io_uring recv into a provided buffer ring, then send.
    Copy,
    /// Copy, switching a direction to splice once it carries bulk.
    #[default]
    Auto,
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forward::Splice => "splice",
            Forward::Copy => "copy",
            Forward::Auto => "auto",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |s: &str| s.parse::<HumanDuration>().map(|d| d.0.as_millis());
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("5s"), Ok(5_000));
        assert_eq!(ms("2m"), Ok(120_000));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert_eq!(ms("0s"), Ok(0));
        for bad in ["", "5", "s", "5 s", "5sec", "-1s", "1.5s", "+5s", "5h5m"] {
            assert_eq!(
                ms(bad),
                Err(format!(
                    "{bad:?} is not a duration (expected e.g. \"250ms\", \"5s\", \"1m\")"
                )),
            );
        }
    }

    #[test]
    fn durations_stop_at_a_day() {
        let ms = |s: &str| s.parse::<HumanDuration>().map(|d| d.0);
        for max in ["24h", "1440m", "86400s", "86400000ms"] {
            assert_eq!(ms(max), Ok(MAX_DURATION), "{max}");
        }
        for over in [
            "25h",
            "1441m",
            "86401s",
            "86400001ms",
            "18446744073709551615ms",
            "18446744073709551616ms",
            "5124095576030432h",
            "99999999999999999999h",
        ] {
            assert_eq!(
                ms(over),
                Err(format!("{over:?} is longer than the maximum of 24h"))
            );
        }
    }
}
