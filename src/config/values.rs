//! Value types of the configuration that parse, rather than validate: a socket address
//! written `ip:port`, a duration written `250ms` / `5s` / `1m` / `2h`, a forwarding mode.

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

/// A duration written as an integer and a unit: `ms`, `s`, `m` or `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a duration (expected e.g. \"250ms\", \"5s\", \"1m\")");
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let ms = match unit {
            "ms" => Some(n),
            "s" => n.checked_mul(1_000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            _ => None,
        }
        .ok_or_else(bad)?;
        Ok(HumanDuration(Duration::from_millis(ms)))
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
        for bad in [
            "",
            "5",
            "s",
            "5 s",
            "5sec",
            "-1s",
            "1.5s",
            "99999999999999999999h",
        ] {
            assert!(ms(bad).is_err(), "{bad:?} accepted");
        }
    }
}
