//! An instance's addresses as ringlb takes them: `virtual_ipaddress` entries (one family,
//! no duplicates, usable as a VIP, their `dev` checked against the instance's interface),
//! `unicast_peer` entries, and the advert interval rounded as keepalived rounds it.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use super::keepalived::Node;
use super::report::{Report, Source};
use super::values::format_duration;

const K: Source = Source::Keepalived;

/// A VRRPv2 interval is whole seconds (1 to 255), a VRRPv3 one centiseconds (10ms to
/// 40.95s): keepalived rounds others, so does the import.
pub fn advert_interval(d: Duration, version: u8, line: usize, r: &mut Report) -> Duration {
    let ms = d.as_millis() as u64;
    let fixed = if version == 2 {
        ms.div_ceil(1000).clamp(1, 255) * 1000
    } else {
        (ms.div_ceil(10) * 10).clamp(10, 40_950)
    };
    if fixed != ms {
        r.note(
            K,
            line,
            format!(
                "advert_int: {} for VRRPv{version}",
                format_duration(Duration::from_millis(fixed))
            ),
        );
    }
    Duration::from_millis(fixed)
}

pub fn vips(nodes: &[&Node], interface: &str, version: &mut u8, r: &mut Report) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<IpAddr> = HashSet::new();
    let mut family_v6 = None;
    for n in nodes {
        let written = n.key();
        let (addr, len) = written.split_once('/').unwrap_or((written, ""));
        let Ok(ip) = addr.parse::<IpAddr>() else {
            r.warn(
                K,
                n.line,
                format!("virtual_ipaddress {written:?}: not an address, left out"),
            );
            continue;
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = if len.is_empty() {
            Some(max)
        } else {
            len.parse::<u8>().ok()
        };
        if prefix.is_none_or(|p| p == 0 || p > max) {
            r.warn(
                K,
                n.line,
                format!("virtual_ipaddress {written:?}: not a prefix length, left out"),
            );
            continue;
        }
        let unusable = match ip {
            IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
            IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
        };
        if unusable {
            r.warn(
                K,
                n.line,
                format!("virtual_ipaddress {written}: cannot be a virtual address, left out"),
            );
            continue;
        }
        if *family_v6.get_or_insert(ip.is_ipv6()) != ip.is_ipv6() {
            r.warn_hint(
                K,
                n.line,
                format!("virtual_ipaddress {written}: not of the family of the first, left out"),
                "one instance per family",
            );
            continue;
        }
        if !seen.insert(ip) {
            r.warn(
                K,
                n.line,
                format!("virtual_ipaddress {ip} is listed twice: the second is left out"),
            );
            continue;
        }
        let mut i = 1;
        while i < n.words.len() {
            let (opt, value) = (n.word(i), n.word(i + 1));
            match opt {
                "dev" if value != interface => r.warn(
                    K,
                    n.line,
                    format!("dev {value}: ringlb adds every address on the instance's interface, {interface}"),
                ),
                "label" => r.note(K, n.line, format!("label {value}: ringlb sets no address labels")),
                "dev" | "brd" | "broadcast" | "scope" | "preferred_lft" | "metric" | "table" => {}
                "no_track" | "home" | "-" | "nodad" => {
                    i += 1;
                    continue;
                }
                other => r.warn(K, n.line, format!("virtual_ipaddress option `{other}`: left out")),
            }
            i += 2;
        }
        out.push(format!("{ip}/{}", prefix.unwrap_or(max)));
    }
    if family_v6 == Some(true) && *version == 2 {
        if let Some(n) = nodes.first() {
            r.note(K, n.line, "IPv6 addresses: VRRPv3, as keepalived does");
        }
        *version = 3;
    }
    if out.len() > 255 {
        if let Some(n) = nodes.get(255) {
            r.warn(
                K,
                n.line,
                "more than 255 virtual addresses: the rest are left out",
            );
        }
        out.truncate(255);
    }
    out
}

pub fn peer(n: &Node, r: &mut Report) -> Option<String> {
    match n.key().parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => {
            if n.words.len() > 1 {
                r.note(
                    K,
                    n.line,
                    "unicast_peer options (min_ttl, max_ttl): left out",
                );
            }
            Some(ip.to_string())
        }
        _ => {
            r.warn(
                K,
                n.line,
                format!(
                    "unicast_peer {:?}: not a unicast address, left out",
                    n.key()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::keepalived;

    #[test]
    fn addresses_of_one_family_and_keepalived_s_rounding() {
        let tree = keepalived::parse(
            b"virtual_ipaddress {\n  2001:db8::10/64 dev eth0\n  2001:db8::11 no_track\n  192.0.2.1\n  fe80::1/0\n}\n",
        )
        .unwrap();
        let nodes: Vec<&Node> = tree[0].children().iter().collect();
        let mut version = 2;
        let mut r = Report::default();
        assert_eq!(
            vips(&nodes, "eth0", &mut version, &mut r),
            ["2001:db8::10/64", "2001:db8::11/128"]
        );
        assert_eq!(version, 3);
        let found: Vec<String> = r
            .sorted()
            .iter()
            .map(|f| format!("{}: {}", f.line, f.what))
            .collect();
        assert_eq!(
            found,
            [
                "2: IPv6 addresses: VRRPv3, as keepalived does",
                "4: virtual_ipaddress 192.0.2.1: not of the family of the first, left out",
                "5: virtual_ipaddress \"fe80::1/0\": not a prefix length, left out",
            ]
        );
        let mut r = Report::default();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(
            ms(advert_interval(Duration::from_millis(1500), 2, 1, &mut r)),
            2000
        );
        assert_eq!(
            ms(advert_interval(Duration::from_millis(5), 3, 1, &mut r)),
            10
        );
        assert_eq!(
            ms(advert_interval(Duration::from_secs(300), 2, 1, &mut r)),
            255_000
        );
        assert_eq!(
            ms(advert_interval(Duration::from_secs(1), 3, 1, &mut r)),
            1000
        );
        assert_eq!(r.sorted().len(), 3);
    }
}
