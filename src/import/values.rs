//! Values as HAProxy and keepalived write them, turned into what ringlb takes: durations
//! (HAProxy's bare number is milliseconds, keepalived's is seconds), and addresses with
//! every form that cannot be used (host names, placeholders, sockets, port ranges)
//! named, so it can be reported rather than guessed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The longest duration a ringlb config takes: a longer value reads as no duration, and
/// is reported as such with its line.
const MAX: Duration = Duration::from_secs(24 * 3600);

/// `5000`, `5000ms`, `5s`, `1m`, `2h`, `1d`, `100us`: HAProxy's time format, at most 24h.
pub fn haproxy_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let ms = match unit {
        "" | "ms" => Some(n),
        "us" => Some(n.div_ceil(1000)),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }?;
    Some(Duration::from_millis(ms)).filter(|d| *d <= MAX)
}

/// `1`, `0.5`: keepalived's seconds, which may have a fraction; at most 24h.
pub fn keepalived_seconds(s: &str) -> Option<Duration> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Milliseconds are the finest step ringlb writes; finer digits are dropped.
    let mut ms: u64 = 0;
    for (i, d) in frac.bytes().take(3).enumerate() {
        ms += u64::from(d - b'0') * 10u64.pow(2 - i as u32);
    }
    secs.checked_mul(1000)?
        .checked_add(ms)
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX)
}

/// A duration in ringlb's notation, in the largest unit that keeps it exact.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms > 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// The host part of an address as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    /// `*`, empty, `0.0.0.0`: every IPv4 address.
    Any4,
    /// `::`: every IPv6 address (and IPv4 too, on Linux's defaults).
    Any6,
    /// A DNS name: ringlb takes addresses only.
    Name(String),
    /// `xx.xx.xx.xx` and the like, left in a file as an example.
    Placeholder(String),
    /// A UNIX socket or another non-TCP address family (`unix@`, `abns@`, `fd@`, a path).
    Socket(String),
    /// An environment variable HAProxy would expand at start.
    Env(String),
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Port {
    None,
    Number(u16),
    Range(u16, u16),
    /// `+1` / `-1`: relative to the port the client connected to.
    Offset(String),
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: Host,
    pub port: Port,
}

impl Endpoint {
    /// A usable `ip:port`, when it is one.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match (&self.host, &self.port) {
            (Host::Ip(ip), Port::Number(p)) => Some(SocketAddr::new(*ip, *p)),
            (Host::Any4, Port::Number(p)) => {
                Some(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), *p))
            }
            (Host::Any6, Port::Number(p)) => {
                Some(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), *p))
            }
            _ => None,
        }
    }
}

/// Parses an address as HAProxy does: an optional family prefix, then the last colon
/// separating the port (so `:::443` is `::` and 443), or `[v6]:port`.
pub fn endpoint(s: &str) -> Endpoint {
    let socket = |s: &str| Endpoint {
        host: Host::Socket(s.to_string()),
        port: Port::None,
    };
    if s.contains('$') {
        return Endpoint {
            host: Host::Env(s.to_string()),
            port: Port::None,
        };
    }
    let rest = match s.split_once('@') {
        Some(("ipv4" | "ipv6" | "tcp" | "tcp4" | "tcp6", rest)) => rest,
        Some(_) => return socket(s),
        None if s.starts_with('/') => return socket(s),
        None => s,
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        match inner.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return invalid(s),
            },
            None => return invalid(s),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    Endpoint {
        host: parse_host(host),
        port: port.map_or(Port::None, parse_port),
    }
}

fn invalid(s: &str) -> Endpoint {
    Endpoint {
        host: Host::Invalid(s.to_string()),
        port: Port::None,
    }
}

fn parse_host(h: &str) -> Host {
    match h {
        "" | "*" | "0.0.0.0" => return Host::Any4,
        "::" => return Host::Any6,
        _ => {}
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Host::Ip(ip);
    }
    if is_placeholder(h) {
        Host::Placeholder(h.to_string())
    } else if is_host_name(h) {
        Host::Name(h.to_string())
    } else {
        Host::Invalid(h.to_string())
    }
}

fn parse_port(p: &str) -> Port {
    if p.starts_with(['+', '-']) {
        return Port::Offset(p.to_string());
    }
    if let Some((a, b)) = p.split_once('-') {
        return match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) => Port::Range(a, b),
            _ => Port::Invalid(p.to_string()),
        };
    }
    match p.parse() {
        Ok(n) => Port::Number(n),
        Err(_) if p.is_empty() => Port::None,
        Err(_) => Port::Invalid(p.to_string()),
    }
}

/// A DNS name as a resolver would take it (letters, digits, `-`, `_`, dots).
pub fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && h.bytes().any(|b| !b.is_ascii_digit() && b != b'.')
}

/// Whether a host or server name looks like an example left unfilled: a label made of
/// one letter x, y or z repeated (`xx.xx.xx.xx`, `zv.xx.yy`), or `<...>`.
pub fn is_placeholder(h: &str) -> bool {
    h.contains(['<', '>'])
        || h.split('.').any(|label| {
            let mut bytes = label.bytes().map(|b| b.to_ascii_lowercase());
            match bytes.next() {
                Some(first @ (b'x' | b'y' | b'z')) => label.len() >= 2 && bytes.all(|b| b == first),
                _ => false,
            }
        })
}

/// Why an endpoint cannot be used, with what to do, for a report.
pub fn unusable(e: &Endpoint, written: &str) -> (String, &'static str) {
    match &e.host {
        Host::Name(n) => (
            format!("{n:?} is a host name; ringlb takes IP addresses only"),
            "resolve it and put the address",
        ),
        Host::Placeholder(p) => (
            format!("{p:?} is a placeholder, not an address"),
            "put the real address",
        ),
        Host::Socket(s) => (
            format!("{s:?} is not a TCP address (UNIX socket or other family)"),
            "ringlb forwards TCP only; use a TCP address",
        ),
        Host::Env(s) => (
            format!("{s:?} uses an environment variable"),
            "put its value",
        ),
        Host::Invalid(_) => (format!("{written:?} is not an address"), "write ip:port"),
        Host::Ip(_) | Host::Any4 | Host::Any6 => match &e.port {
            Port::Range(a, b) => (
                format!("{written:?} is a port range ({a}-{b})"),
                "ringlb binds single ports: list each address",
            ),
            Port::Offset(o) => (
                format!("{written:?} has a relative port ({o})"),
                "ringlb needs the server's port",
            ),
            Port::Invalid(p) => (format!("{p:?} is not a port"), "write ip:port"),
            Port::None => (format!("{written:?} has no port"), "write ip:port"),
            Port::Number(0) => (format!("{written:?} has port 0"), "write ip:port"),
            Port::Number(_) => (String::new(), ""),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |s| haproxy_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("5000"), Some(5000));
        assert_eq!(ms("5000ms"), Some(5000));
        assert_eq!(ms("5s"), Some(5000));
        assert_eq!(ms("1m"), Some(60_000));
        assert_eq!(ms("1d"), Some(86_400_000));
        assert_eq!(ms("1500us"), Some(2));
        assert_eq!(ms("1.5s"), None);
        assert_eq!(ms("s"), None);
        assert_eq!(ms("99999999999999999999"), None);
        let k = |s| keepalived_seconds(s).map(|d| d.as_millis());
        assert_eq!(k("1"), Some(1000));
        assert_eq!(k("0.1"), Some(100));
        assert_eq!(k(".25"), Some(250));
        assert_eq!(k("2.0005"), Some(2000));
        assert_eq!(k(""), None);
        assert_eq!(k("."), None);
        assert_eq!(k("-1"), None);
        assert_eq!(k("1.x"), None);
        for (ms, s) in [
            (5000, "5s"),
            (250, "250ms"),
            (90_000, "90s"),
            (120_000, "2m"),
            (7_200_000, "2h"),
            (0, "0ms"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(ms)), s);
        }
    }

    #[test]
    fn endpoints() {
        let sa = |s| endpoint(s).socket_addr().map(|a| a.to_string());
        assert_eq!(sa("*:80").as_deref(), Some("0.0.0.0:80"));
        assert_eq!(sa(":80").as_deref(), Some("0.0.0.0:80"));
        assert_eq!(sa("0.0.0.0:80").as_deref(), Some("0.0.0.0:80"));
        assert_eq!(sa(":::443").as_deref(), Some("[::]:443"));
        assert_eq!(
            sa("[2001:db8::1]:443").as_deref(),
            Some("[2001:db8::1]:443")
        );
        assert_eq!(sa("ipv4@192.0.2.1:80").as_deref(), Some("192.0.2.1:80"));
        assert_eq!(sa("2001:db8::1:443").as_deref(), Some("[2001:db8::1]:443"));
        let e = endpoint("192.0.2.1");
        assert_eq!(e.port, Port::None);
        assert_eq!(
            endpoint("192.0.2.1:8000-8010").port,
            Port::Range(8000, 8010)
        );
        assert_eq!(endpoint("192.0.2.1:+1").port, Port::Offset("+1".into()));
        assert_eq!(endpoint("mysql2:3306").host, Host::Name("mysql2".into()));
        assert_eq!(
            endpoint("xx.xx.xx.xx:443").host,
            Host::Placeholder("xx.xx.xx.xx".into())
        );
        assert!(matches!(endpoint("/tmp/x.sock").host, Host::Socket(_)));
        assert!(matches!(endpoint("unix@/tmp/x.sock").host, Host::Socket(_)));
        assert!(matches!(endpoint("${IP}:80").host, Host::Env(_)));
        assert!(matches!(endpoint("[::1:80").host, Host::Invalid(_)));
        assert!(matches!(endpoint("a b:80").host, Host::Invalid(_)));
        assert!(matches!(endpoint("1.2.3.4.5:80").host, Host::Invalid(_)));
        let (what, hint) = unusable(&endpoint("mysql2:3306"), "mysql2:3306");
        assert_eq!(
            (what.as_str(), hint),
            (
                "\"mysql2\" is a host name; ringlb takes IP addresses only",
                "resolve it and put the address"
            )
        );
    }

    #[test]
    fn placeholders() {
        assert!(is_placeholder("xx.xx.xx.xx"));
        assert!(is_placeholder("zv.xx.yy"));
        assert!(is_placeholder("<your-ip>"));
        assert!(!is_placeholder("x.example.org"));
        assert!(!is_placeholder("codeberg.org"));
        assert!(!is_placeholder("xyz.example"));
    }
}
