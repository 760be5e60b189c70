//! The `announce` section: the VIPs this balancer serves as one of N active balancers behind
//! an ECMP router. ringlb announces each one (puts it on its own TUN interface, which a
//! routing daemon such as BIRD exports over BGP) while this box can serve it, and withdraws
//! it before it stops serving. Validated into an [`Announce`] the runtime (`src/announce/`)
//! uses without further checks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::vrrp::WORKER_TICK;
use super::{Frontend, HumanDuration, Problems, MAX_WORKERS};

/// The validated `announce` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The TUN interface ringlb creates and owns; the routing daemon exports its addresses.
    pub interface: String,
    pub vips: Vec<AnnouncedVip>,
    /// A worker whose loop has not turned for this long counts as stalled.
    pub worker_stall: Duration,
    /// Every VIP is withdrawn while fewer workers than this turn their loop; `None`: half
    /// the workers, rounded up (one stalled worker of two is covered by the other, which
    /// takes its connections once it leaves the accept path).
    pub min_workers: Option<usize>,
    /// A VIP is withdrawn while no frontend bound to it has an UP server.
    pub require_up_server: bool,
    /// On a stop: how long to go on accepting after the withdrawal, so that the router has
    /// moved new flows to the other balancers before the listeners close.
    pub withdraw_delay: Duration,
    /// Forwarding of flows this box does not know to the other balancers while the router's
    /// choice of balancer changes (a balancer leaves or joins).
    pub handoff: Option<Handoff>,
}

/// The validated `announce.handoff` section. When a balancer leaves or joins, the router
/// moves some established flows to a balancer that has no socket for them; during a
/// window around that change, such packets are sent on to the other balancers (the one
/// that has the flow serves it, the others drop it), instead of being answered with a
/// reset. See `src/announce/handoff.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The other balancers' addresses, on a network this box reaches directly.
    pub peers: Vec<IpAddr>,
    /// The UDP port notices of a change are sent to and received on.
    pub port: u16,
    /// How long unknown flows are forwarded after a balancer joins (a leaving balancer asks
    /// for its own `withdraw_delay` plus `grace`).
    pub window: Duration,
    /// The firewall mark the SYNs to the VIPs get, and with it the connections this box
    /// accepts (`net.ipv4.tcp_fwmark_accept`): how a packet of a flow this box owns is told
    /// from one it does not.
    pub mark: u32,
    /// The DSCP a forwarded packet carries, so that the balancer receiving it never forwards
    /// it again nor answers it with a reset.
    pub dscp: u8,
}

/// One announced VIP and the frontends that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncedVip {
    pub addr: IpAddr,
    /// Indexes into `Config::frontends`: those with a bind on this address (or on the
    /// wildcard address of its family).
    pub frontends: Vec<usize>,
}

impl Announce {
    /// `min_workers` for `workers` workers: at least 1, at most all of them.
    pub fn min_workers(&self, workers: usize) -> usize {
        self.min_workers
            .unwrap_or(workers.div_ceil(2))
            .clamp(1, workers.max(1))
    }
}

pub const DEFAULT_INTERFACE: &str = "ringlb-vip";
pub const DEFAULT_ANNOUNCE_STALL: Duration = Duration::from_millis(300);
pub const DEFAULT_WITHDRAW_DELAY: Duration = Duration::from_secs(2);
/// The longest `withdraw_delay`: a stop must not wait on it for longer than an operator
/// would wait for a stop.
pub const MAX_WITHDRAW_DELAY: Duration = Duration::from_secs(300);
/// The most announced VIPs: each is one address on the interface and one route in every
/// router's table.
pub const MAX_ANNOUNCED_VIPS: usize = 64;
/// The most handoff peers: every forwarded packet is copied to each of them.
pub const MAX_HANDOFF_PEERS: usize = 16;
pub const DEFAULT_HANDOFF_PORT: u16 = 5470;
pub const DEFAULT_HANDOFF_WINDOW: Duration = Duration::from_secs(30);
/// The longest window a balancer opens, for itself or when a peer asks: long enough for
/// the longest `withdraw_delay` plus a long `grace`, short enough that a forgotten window
/// closes by itself.
pub const MAX_HANDOFF_WINDOW: Duration = Duration::from_secs(3600);
/// "LB" in ASCII.
pub const DEFAULT_HANDOFF_MARK: u32 = 0x4c42;
/// The highest six-bit code point, which no standard per-hop behaviour uses.
pub const DEFAULT_HANDOFF_DSCP: u8 = 63;
/// Linux interface names hold 15 bytes and a NUL.
const IFNAMSIZ: usize = 15;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnnounce {
    interface: Option<String>,
    vips: Vec<IpAddr>,
    worker_stall: Option<HumanDuration>,
    min_workers: Option<usize>,
    require_up_server: Option<bool>,
    withdraw_delay: Option<HumanDuration>,
    handoff: Option<RawHandoff>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHandoff {
    peers: Vec<IpAddr>,
    port: Option<u16>,
    window: Option<HumanDuration>,
    mark: Option<u32>,
    dscp: Option<u8>,
}

pub(super) fn validate(
    raw: &RawAnnounce,
    frontends: &[Frontend],
    p: &mut Problems<'_>,
) -> Announce {
    let interface = raw
        .interface
        .clone()
        .unwrap_or_else(|| DEFAULT_INTERFACE.to_string());
    if interface.is_empty()
        || interface.len() > IFNAMSIZ
        || interface == "."
        || interface == ".."
        || interface
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || !b.is_ascii_graphic())
    {
        p.add(
            "announce.interface".into(),
            format!(
                "{interface:?} is not an interface name (1 to {IFNAMSIZ} printable bytes, no '/', ':' or space)"
            ),
        );
    }
    if raw.vips.is_empty() {
        p.add(
            "announce.vips".into(),
            "at least one address is required".into(),
        );
    }
    if raw.vips.len() > MAX_ANNOUNCED_VIPS {
        p.add(
            "announce.vips".into(),
            format!(
                "{} addresses is over the maximum of {MAX_ANNOUNCED_VIPS}",
                raw.vips.len()
            ),
        );
    }
    let mut seen: HashMap<IpAddr, usize> = HashMap::new();
    let mut vips = Vec::with_capacity(raw.vips.len());
    for (i, &addr) in raw.vips.iter().enumerate() {
        let at = format!("announce.vips[{i}]");
        if let Some(first) = seen.insert(addr, i) {
            p.add(
                at.clone(),
                format!("{addr} is listed twice (first at announce.vips[{first}])"),
            );
            continue;
        }
        if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() {
            p.add(
                at,
                format!("{addr} cannot be announced (unspecified, loopback or multicast)"),
            );
            continue;
        }
        let serving: Vec<usize> = frontends
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.bind.iter().any(|b| {
                    b.ip() == addr || (b.ip().is_unspecified() && b.is_ipv4() == addr.is_ipv4())
                })
            })
            .map(|(i, _)| i)
            .collect();
        if serving.is_empty() {
            p.add(
                at,
                format!(
                    "{addr} is bound by no frontend: announcing it would draw traffic nobody accepts"
                ),
            );
        }
        vips.push(AnnouncedVip {
            addr,
            frontends: serving,
        });
    }
    let worker_stall = raw.worker_stall.map_or(DEFAULT_ANNOUNCE_STALL, |d| d.0);
    if worker_stall <= WORKER_TICK {
        p.add(
            "announce.worker_stall".into(),
            format!(
                "must be longer than the workers' {}ms tick",
                WORKER_TICK.as_millis()
            ),
        );
    }
    if let Some(n) = raw.min_workers.filter(|n| !(1..=MAX_WORKERS).contains(n)) {
        p.add(
            "announce.min_workers".into(),
            format!("{n} is out of range (1 to {MAX_WORKERS})"),
        );
    }
    let withdraw_delay = raw.withdraw_delay.map_or(DEFAULT_WITHDRAW_DELAY, |d| d.0);
    if withdraw_delay > MAX_WITHDRAW_DELAY {
        p.add(
            "announce.withdraw_delay".into(),
            format!(
                "{withdraw_delay:?} is over the maximum of {}s",
                MAX_WITHDRAW_DELAY.as_secs()
            ),
        );
    }
    let handoff = raw.handoff.as_ref().map(|h| validate_handoff(h, &vips, p));
    Announce {
        interface,
        vips,
        worker_stall,
        min_workers: raw.min_workers,
        require_up_server: raw.require_up_server.unwrap_or(false),
        withdraw_delay,
        handoff,
    }
}

fn validate_handoff(raw: &RawHandoff, vips: &[AnnouncedVip], p: &mut Problems<'_>) -> Handoff {
    if raw.peers.is_empty() {
        p.add(
            "announce.handoff.peers".into(),
            "at least one address is required (the other balancers)".into(),
        );
    }
    if raw.peers.len() > MAX_HANDOFF_PEERS {
        p.add(
            "announce.handoff.peers".into(),
            format!(
                "{} addresses is over the maximum of {MAX_HANDOFF_PEERS}",
                raw.peers.len()
            ),
        );
    }
    let mut seen: HashMap<IpAddr, usize> = HashMap::new();
    for (i, &addr) in raw.peers.iter().enumerate() {
        let at = format!("announce.handoff.peers[{i}]");
        if let Some(first) = seen.insert(addr, i) {
            p.add(
                at,
                format!("{addr} is listed twice (first at announce.handoff.peers[{first}])"),
            );
        } else if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() {
            p.add(
                at,
                format!("{addr} is not a balancer's address (unspecified, loopback or multicast)"),
            );
        } else if vips.iter().any(|v| v.addr == addr) {
            p.add(
                at,
                format!("{addr} is an announced VIP; a peer is the other balancer's own address"),
            );
        }
    }
    for (i, vip) in vips.iter().enumerate() {
        if !raw.peers.iter().any(|p| p.is_ipv4() == vip.addr.is_ipv4()) {
            p.add(
                format!("announce.vips[{i}]"),
                format!(
                    "{} has no handoff peer of its family in announce.handoff.peers",
                    vip.addr
                ),
            );
        }
    }
    let port = raw.port.unwrap_or(DEFAULT_HANDOFF_PORT);
    if port == 0 {
        p.add(
            "announce.handoff.port".into(),
            "must be a port (1 to 65535)".into(),
        );
    }
    let window = raw.window.map_or(DEFAULT_HANDOFF_WINDOW, |d| d.0);
    if window.is_zero() || window > MAX_HANDOFF_WINDOW {
        p.add(
            "announce.handoff.window".into(),
            format!(
                "{window:?} is out of range (over 0, at most {}s)",
                MAX_HANDOFF_WINDOW.as_secs()
            ),
        );
    }
    let mark = raw.mark.unwrap_or(DEFAULT_HANDOFF_MARK);
    if mark == 0 {
        p.add(
            "announce.handoff.mark".into(),
            "must not be 0 (0 is every unmarked socket's mark)".into(),
        );
    }
    let dscp = raw.dscp.unwrap_or(DEFAULT_HANDOFF_DSCP);
    if !(1..=63).contains(&dscp) {
        p.add(
            "announce.handoff.dscp".into(),
            format!("{dscp} is out of range (1 to 63; 0 is what most traffic carries)"),
        );
    }
    Handoff {
        peers: raw.peers.clone(),
        port,
        window,
        mark,
        dscp,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::parse;
    use super::*;

    fn with(announce: &str) -> String {
        format!(
            r#"{{ "frontends": [ {{ "name": "web", "bind": ["192.0.2.80:80", "[2001:db8::80]:80"], "backend": "b" }},
                 {{ "name": "any", "bind": ["0.0.0.0:8080"], "backend": "b" }} ],
  "backends": [ {{ "name": "b", "servers": [ {{ "name": "s", "addr": "192.0.2.21:80" }} ] }} ],
  "announce": {announce} }}"#
        )
    }

    #[test]
    fn defaults_and_the_frontends_of_each_vip() {
        let c = parse(
            "x.json",
            &with(r#"{ "vips": ["192.0.2.80", "2001:db8::80"] }"#),
        )
        .unwrap();
        let a = c.announce.unwrap();
        assert_eq!(a.interface, DEFAULT_INTERFACE);
        assert_eq!(a.worker_stall, DEFAULT_ANNOUNCE_STALL);
        assert_eq!(a.withdraw_delay, DEFAULT_WITHDRAW_DELAY);
        assert!(!a.require_up_server);
        // The v4 VIP is served by its own bind and by the wildcard one.
        assert_eq!(a.vips[0].frontends, vec![0, 1]);
        assert_eq!(a.vips[1].frontends, vec![0]);
        assert_eq!(a.min_workers(2), 1);
        assert_eq!(a.min_workers(3), 2);
        assert_eq!(a.min_workers(1), 1);
    }

    #[test]
    fn every_field() {
        let c = parse(
            "x.json",
            &with(
                r#"{ "interface": "anycast0", "vips": ["192.0.2.80"], "worker_stall": "250ms",
                    "min_workers": 2, "require_up_server": true, "withdraw_delay": "500ms" }"#,
            ),
        )
        .unwrap();
        let a = c.announce.unwrap();
        assert_eq!(a.interface, "anycast0");
        assert_eq!(a.worker_stall, Duration::from_millis(250));
        assert_eq!(a.min_workers(4), 2);
        assert!(a.require_up_server);
        assert_eq!(a.withdraw_delay, Duration::from_millis(500));
        assert_eq!(a.handoff, None);
    }

    #[test]
    fn handoff_at_its_limits() {
        let peers = |n: u8| -> String {
            (1..=n)
                .map(|i| format!("\"192.0.2.{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let at = |n: u8, rest: &str| {
            with(&format!(
                r#"{{ "vips": ["192.0.2.80"], "handoff": {{ "peers": [{}]{rest} }} }}"#,
                peers(n)
            ))
        };
        let h = parse(
            "x.json",
            &at(
                16,
                r#", "window": "1h", "port": 65535, "dscp": 1, "mark": 4294967295"#,
            ),
        )
        .unwrap()
        .announce
        .unwrap()
        .handoff
        .unwrap();
        assert_eq!(h.peers.len(), MAX_HANDOFF_PEERS);
        assert_eq!(h.window, MAX_HANDOFF_WINDOW);
        assert_eq!((h.port, h.dscp, h.mark), (65535, 1, u32::MAX));
        let e = parse("x.json", &at(17, "")).unwrap_err().to_string();
        assert!(
            e.contains("announce.handoff.peers: 17 addresses is over the maximum of 16"),
            "{e}"
        );
        let e = parse("x.json", &at(1, r#", "window": "3601s""#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("announce.handoff.window: 3601s is out of range"),
            "{e}"
        );
    }

    #[test]
    fn handoff_defaults_and_fields() {
        let c = parse(
            "x.json",
            &with(r#"{ "vips": ["192.0.2.80"], "handoff": { "peers": ["192.0.2.81", "192.0.2.82"] } }"#),
        )
        .unwrap();
        let h = c.announce.unwrap().handoff.unwrap();
        assert_eq!(h.peers.len(), 2);
        assert_eq!(h.port, DEFAULT_HANDOFF_PORT);
        assert_eq!(h.window, DEFAULT_HANDOFF_WINDOW);
        assert_eq!(h.mark, DEFAULT_HANDOFF_MARK);
        assert_eq!(h.dscp, DEFAULT_HANDOFF_DSCP);
        let c = parse(
            "x.json",
            &with(
                r#"{ "vips": ["192.0.2.80", "2001:db8::80"],
                    "handoff": { "peers": ["192.0.2.81", "2001:db8::81"], "port": 6000,
                                 "window": "1m", "mark": 7, "dscp": 46 } }"#,
            ),
        )
        .unwrap();
        let h = c.announce.unwrap().handoff.unwrap();
        assert_eq!(
            (h.port, h.window, h.mark, h.dscp),
            (6000, Duration::from_secs(60), 7, 46)
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(
            "x.json",
            &with(
                r#"{ "interface": "a/very-long-name", "vips": ["2001:db8::99", "192.0.2.80", "192.0.2.80", "127.0.0.1"],
                    "worker_stall": "50ms", "min_workers": 0, "withdraw_delay": "1h" }"#,
            ),
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "announce.interface: \"a/very-long-name\" is not an interface name",
            "announce.vips[0]: 2001:db8::99 is bound by no frontend",
            "announce.vips[2]: 192.0.2.80 is listed twice (first at announce.vips[1])",
            "announce.vips[3]: 127.0.0.1 cannot be announced",
            "announce.worker_stall: must be longer than the workers' 100ms tick",
            "announce.min_workers: 0 is out of range (1 to 64)",
            "announce.withdraw_delay: 3600s is over the maximum of 300s",
        ] {
            assert!(e.contains(expected), "{expected:?} not in\n{e}");
        }
        let e = parse(
            "x.json",
            &with(
                r#"{ "vips": ["192.0.2.80", "2001:db8::80"],
                    "handoff": { "peers": ["192.0.2.81", "192.0.2.81", "192.0.2.80", "0.0.0.0"],
                                 "port": 0, "window": "2h", "mark": 0, "dscp": 64 } }"#,
            ),
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "announce.handoff.peers[1]: 192.0.2.81 is listed twice (first at announce.handoff.peers[0])",
            "announce.handoff.peers[2]: 192.0.2.80 is an announced VIP",
            "announce.handoff.peers[3]: 0.0.0.0 is not a balancer's address",
            "announce.vips[1]: 2001:db8::80 has no handoff peer of its family",
            "announce.handoff.port: must be a port",
            "announce.handoff.window: 7200s is out of range",
            "announce.handoff.mark: must not be 0",
            "announce.handoff.dscp: 64 is out of range (1 to 63",
        ] {
            assert!(e.contains(expected), "{expected:?} not in\n{e}");
        }
        let e = parse(
            "x.json",
            &with(r#"{ "vips": ["192.0.2.80"], "handoff": { "peers": [] } }"#),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("announce.handoff.peers: at least one address is required"),
            "{e}"
        );
        let e = parse("x.json", &with(r#"{ "vips": [] }"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("announce.vips: at least one address is required"),
            "{e}"
        );
        let e = parse("x.json", &with(r#"{ "vips": ["192.0.2.80"], "vip": 1 }"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `vip`"), "{e}");
    }
}
