//! What a frontend reads from a client before choosing a server (a PROXY protocol header,
//! a TLS ClientHello's server name), and the PROXY header a backend sends its servers.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{HumanDuration, Problems};

pub const DEFAULT_INSPECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_INSPECT_MAX: usize = 16 * 1024;
const INSPECT_MAX_RANGE: std::ops::RangeInclusive<usize> = 1024..=65536;

/// A frontend's inspection of the first bytes of each connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inspect {
    /// Clients (from `proxy_trusted`) start with a PROXY v1 or v2 header.
    pub accept_proxy: bool,
    /// Sources that must send PROXY; empty: every source.
    pub proxy_trusted: Vec<Net>,
    /// TLS routes by server name; empty: no ClientHello inspection.
    pub routes: Vec<Route>,
    pub timeout: Duration,
    /// Bytes held while inspecting.
    pub max: usize,
}

impl Inspect {
    /// Whether a connection waits for any bytes before its server is chosen.
    pub fn active(&self) -> bool {
        self.accept_proxy || !self.routes.is_empty()
    }

    /// Whether a client at `ip` must start with a PROXY header.
    pub fn expects_proxy(&self, ip: Option<IpAddr>) -> bool {
        self.accept_proxy
            && (self.proxy_trusted.is_empty()
                || ip.is_some_and(|ip| self.proxy_trusted.iter().any(|n| n.contains(ip))))
    }
}

/// `sni` → backend. A name starting with `*.` matches every name under that suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Lowercase; for a wildcard, the suffix with its leading dot (`.example.org`).
    pub name: String,
    pub wildcard: bool,
    /// Index into `Config::backends`.
    pub backend: usize,
}

/// An address block, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl Net {
    /// IPv4 clients seen as v4-mapped IPv6 match IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let bits = |a: IpAddr| -> (u128, u8) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let (net, net_len) = bits(self.addr);
        let (host, host_len) = bits(ip);
        if net_len != host_len {
            return false;
        }
        let mask = match self.prefix_len {
            0 => 0,
            n => u128::MAX << (128 - u32::from(n)),
        };
        net & mask == host & mask
    }
}

impl<'de> Deserialize<'de> for Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Net;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a network as a string \"ip/prefix\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Net, E> {
                parse_net(s).ok_or_else(|| E::custom(format!("{s:?} is not ip/prefix")))
            }
        }
        d.deserialize_str(V)
    }
}

fn parse_net(s: &str) -> Option<Net> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix_len = len.unwrap_or(max);
    (prefix_len <= max).then_some(Net { addr, prefix_len })
}

/// The PROXY protocol version a backend's servers expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendProxy {
    V1,
    V2,
}

/// Optional TLVs of PROXY v2 headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyTlvs {
    /// The server name of the client's ClientHello.
    pub authority: bool,
    /// The connection's id, as logged.
    pub unique_id: bool,
    pub crc32c: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawTlv {
    Authority,
    UniqueId,
    Crc32c,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    sni: String,
    backend: String,
}

/// The inspection fields of a raw frontend.
pub(super) struct RawInspect<'a> {
    pub accept_proxy: Option<bool>,
    pub proxy_trusted: &'a Option<Vec<Net>>,
    pub routes: &'a Option<Vec<RawRoute>>,
    pub timeout: Option<HumanDuration>,
    pub max: Option<usize>,
}

pub(super) fn validate(
    raw: RawInspect<'_>,
    at: &str,
    backend_index: &std::collections::HashMap<&str, usize>,
    p: &mut Problems<'_>,
) -> Inspect {
    let accept_proxy = raw.accept_proxy.unwrap_or(false);
    if raw.proxy_trusted.is_some() && !accept_proxy {
        p.add(
            format!("{at}.proxy_trusted"),
            "needs \"accept_proxy\": true".into(),
        );
    }
    let mut routes = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for (i, r) in raw.routes.iter().flatten().enumerate() {
        let rat = format!("{at}.routes[{i}]");
        let name = r.sni.to_ascii_lowercase();
        let (name, wildcard) = match name.strip_prefix('*') {
            Some(suffix) => (suffix.to_string(), true),
            None => (name, false),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let valid = if wildcard {
            name.len() > 1 && name.starts_with('.') && name[1..].split('.').all(label_ok)
        } else {
            name.len() <= 253 && name.split('.').all(label_ok)
        };
        if !valid {
            p.add(
                format!("{rat}.sni"),
                format!("{:?} is not a host name or \"*.\" followed by one", r.sni),
            );
        }
        let key = if wildcard {
            format!("*{name}")
        } else {
            name.clone()
        };
        if let Some(first) = seen.get(&key) {
            p.add(
                format!("{rat}.sni"),
                format!("{:?} is already routed at routes[{first}]", r.sni),
            );
        } else {
            seen.insert(key, i);
        }
        let backend = match backend_index.get(r.backend.as_str()) {
            Some(&b) => b,
            None => {
                p.add(
                    format!("{rat}.backend"),
                    format!("unknown backend {:?}", r.backend),
                );
                0
            }
        };
        routes.push(Route {
            name,
            wildcard,
            backend,
        });
    }
    if raw.routes.as_ref().is_some_and(|r| r.is_empty()) {
        p.add(
            format!("{at}.routes"),
            "is empty (leave it out to forward without reading the ClientHello)".into(),
        );
    }
    let timeout = raw.timeout.map_or(DEFAULT_INSPECT_TIMEOUT, |d| d.0);
    if timeout.is_zero() {
        p.add(
            format!("{at}.inspect_timeout"),
            "must be greater than zero".into(),
        );
    }
    let max = raw.max.unwrap_or(DEFAULT_INSPECT_MAX);
    if !INSPECT_MAX_RANGE.contains(&max) {
        p.add(
            format!("{at}.inspect_max"),
            format!(
                "{max} is out of range ({} to {} bytes)",
                INSPECT_MAX_RANGE.start(),
                INSPECT_MAX_RANGE.end()
            ),
        );
    }
    Inspect {
        accept_proxy,
        proxy_trusted: raw.proxy_trusted.clone().unwrap_or_default(),
        routes,
        timeout,
        max,
    }
}

pub(super) fn tlvs(raw: &Option<Vec<RawTlv>>) -> ProxyTlvs {
    let mut t = ProxyTlvs::default();
    for tlv in raw.iter().flatten() {
        match tlv {
            RawTlv::Authority => t.authority = true,
            RawTlv::UniqueId => t.unique_id = true,
            RawTlv::Crc32c => t.crc32c = true,
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_match_their_family_only() {
        let n = parse_net("10.0.0.0/8").expect("net");
        assert!(n.contains("10.1.2.3".parse().expect("ip")));
        assert!(n.contains("::ffff:10.1.2.3".parse().expect("ip")));
        assert!(!n.contains("11.0.0.1".parse().expect("ip")));
        assert!(!n.contains("::1".parse().expect("ip")));
        let h = parse_net("2001:db8::1").expect("host");
        assert_eq!(h.prefix_len, 128);
        assert!(h.contains("2001:db8::1".parse().expect("ip")));
        assert!(!h.contains("2001:db8::2".parse().expect("ip")));
        assert!(parse_net("0.0.0.0/0")
            .expect("any")
            .contains("192.0.2.1".parse().expect("ip")));
        assert!(parse_net("10.0.0.0/33").is_none());
        assert!(parse_net("10.0.0/8").is_none());
    }
}
