//! A host as an entry of `stats.hosts` and an HTTP `Host` header name it: a DNS name or an
//! IP literal, with an optional port. Parsed once into a value that cannot hold a bad name,
//! so the stats listener compares normalised values (lowercase, no trailing dot).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A DNS name is at most this long (RFC 1035, without the trailing dot).
const MAX_NAME: usize = 253;
/// And each of its labels at most this long.
const MAX_LABEL: usize = 63;

/// The host part: a name (lowercase, without a trailing dot) or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

/// `name`, `name:port`, `192.0.2.1:port`, `[2001:db8::1]:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: Host,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("no host name")]
    Empty,
    #[error("not a host name (letters, digits and '-' in dot-separated labels)")]
    Name,
    #[error("port {0:?} is not a number from 1 to 65535")]
    Port(String),
    #[error("an IPv6 address is written in brackets, as in [2001:db8::1]:8404")]
    Brackets,
}

impl FromStr for HostPort {
    type Err = HostError;

    fn from_str(s: &str) -> Result<HostPort, HostError> {
        if s.is_empty() {
            return Err(HostError::Empty);
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or(HostError::Brackets)?;
            let ip = Ipv6Addr::from_str(inside).map_err(|_| HostError::Brackets)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(HostError::Brackets)?),
            };
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (name, port) = match s.split_once(':') {
                Some((_, after)) if after.contains(':') => return Err(HostError::Brackets),
                Some((name, port)) => (name, Some(port)),
                None => (s, None),
            };
            (parse_host(name)?, port)
        };
        let port = port.map(parse_port).transpose()?;
        Ok(HostPort { host, port })
    }
}

fn parse_host(s: &str) -> Result<Host, HostError> {
    if let Ok(ip) = Ipv4Addr::from_str(s) {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=MAX_LABEL).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > MAX_NAME || !name.split('.').all(label_ok) {
        return Err(HostError::Name);
    }
    Ok(Host::Name(name))
}

fn parse_port(s: &str) -> Result<u16, HostError> {
    // Digits only: `u16::from_str` would also take a leading '+'.
    match s.parse::<u16>() {
        Ok(p) if p != 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(HostError::Port(s.to_string())),
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Name(n) => f.write_str(n)?,
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(s: &str) -> Result<HostPort, HostError> {
        s.parse()
    }

    fn name(n: &str, port: Option<u16>) -> HostPort {
        HostPort {
            host: Host::Name(n.into()),
            port,
        }
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            hp("Stats.Example.ORG."),
            Ok(name("stats.example.org", None))
        );
        assert_eq!(hp("lb-1:8404"), Ok(name("lb-1", Some(8404))));
        assert_eq!(hp("localhost"), Ok(name("localhost", None)));
        assert_eq!(hp("lb-1:8404").unwrap().to_string(), "lb-1:8404");
    }

    #[test]
    fn ip_literals() {
        assert_eq!(
            hp("127.0.0.1:8404"),
            Ok(HostPort {
                host: Host::Ip([127, 0, 0, 1].into()),
                port: Some(8404)
            })
        );
        let v6 = hp("[::1]:8404").unwrap();
        assert_eq!(v6.host, Host::Ip(Ipv6Addr::LOCALHOST.into()));
        assert_eq!(v6.to_string(), "[::1]:8404");
        assert_eq!(hp("[::1]").unwrap().port, None);
    }

    #[test]
    fn bad_hosts() {
        assert_eq!(hp(""), Err(HostError::Empty));
        for bad in [
            "-lb",
            "lb-",
            "a..b",
            "a b",
            "evil.example/x",
            "é.example",
            ".",
            ":80",
        ] {
            assert!(matches!(hp(bad), Err(HostError::Name)), "{bad}");
        }
        assert!(matches!(hp(&"a".repeat(64)), Err(HostError::Name)));
        assert!(hp(&["a"; 127].join(".")).is_ok());
        assert!(matches!(hp(&["a"; 128].join(".")), Err(HostError::Name)));
        for bad in ["lb:0", "lb:65536", "lb:", "lb:+80", "lb:x"] {
            assert!(matches!(hp(bad), Err(HostError::Port(_))), "{bad}");
        }
        for bad in ["::1", "[::1", "[::1]x", "[nope]:80", "::1:80"] {
            assert!(matches!(hp(bad), Err(HostError::Brackets)), "{bad}");
        }
    }
}
