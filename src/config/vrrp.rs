//! The `vrrp` section: virtual router instances under keepalived's names, validated into
//! [`VrrpInstance`]s whose fields the VRRP thread (`src/ha/`) can use without further checks.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ::vrrp::{Auth, ChecksumMode, Interval, Version};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{HumanDuration, Problems};

mod election;
mod hooks;

pub use hooks::{InstanceHooks, TrackFile, TrackScript};

/// The validated `vrrp` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Vrrp {
    pub instances: Vec<VrrpInstance>,
    /// Scripts instances track by name (keepalived's `vrrp_script`).
    pub scripts: Vec<TrackScript>,
    /// Files instances track by name (keepalived's `track_file`).
    pub files: Vec<TrackFile>,
    /// How long a notify command may run.
    pub notify_timeout: Duration,
}

impl Default for Vrrp {
    fn default() -> Self {
        Vrrp {
            instances: Vec::new(),
            scripts: Vec::new(),
            files: Vec::new(),
            notify_timeout: hooks::DEFAULT_NOTIFY_TIMEOUT,
        }
    }
}

/// One virtual router: a VRID on one interface with its virtual addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub version: Version,
    pub advert_interval: Interval,
    pub vips: Vec<Vip>,
    /// Empty: multicast to 224.0.0.18. Otherwise adverts go to (and only come from) these.
    pub unicast_peers: Vec<IpAddr>,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub accept_mode: bool,
    pub auth: Auth,
    pub checksum: ChecksumMode,
    pub garp_repeat: u32,
    pub garp_interval: Duration,
    pub garp_delay: Duration,
    pub garp_refresh: Option<Duration>,
    pub track: Option<Track>,
    /// The other node's priority, when known: only for `--check`'s advice on whether a
    /// penalty or a tracked weight can make this node lose the election.
    pub peer_priority: Option<u8>,
    /// Run as `notify INSTANCE STATE` on every transition. A command line is accepted
    /// (keepalived's `notify` with arguments).
    pub notify: Option<PathBuf>,
    /// Tracked scripts, interfaces and files; the per-state notify commands.
    pub hooks: InstanceHooks,
}

/// A virtual address with the prefix length it is configured with (`192.0.2.10/24`,
/// `2001:db8::10/64`). All of one instance's are of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// Fate-sharing with the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// A worker whose loop has not turned for this long counts as stalled.
    pub worker_stall: Duration,
    pub action: TrackAction,
    /// The action applies while fewer workers than this turn their loop; `None`: half the
    /// workers, rounded up (one stalled worker of two is covered by the other, which takes
    /// its connections).
    pub min_workers: Option<usize>,
}

impl Track {
    /// `min_workers` for `workers` workers: at least 1, at most all of them.
    pub fn min_workers(&self, workers: usize) -> usize {
        self.min_workers
            .unwrap_or(workers.div_ceil(2))
            .clamp(1, workers.max(1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackAction {
    /// Lower the advertised priority by this much while a worker is stalled.
    Penalty(u8),
    /// Leave the cluster while a worker is stalled: a master sends priority 0 and releases
    /// its addresses; the instance restarts as backup when the workers are healthy again.
    StopAdverts,
}

pub const DEFAULT_PRIORITY: u8 = 100;
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_GARP_REPEAT: u32 = 5;
pub const DEFAULT_GARP_DELAY: Duration = Duration::from_secs(5);
pub const DEFAULT_WORKER_STALL: Duration = Duration::from_millis(300);
/// Workers turn their loop at least this often when idle (their tick), so a stall limit must
/// be longer.
pub const WORKER_TICK: Duration = Duration::from_millis(100);
/// The most `unicast_peers` of one instance: every advert (up to 100 a second) is sent to
/// each, so the count bounds the VRRP thread's work; a virtual router has a few members.
pub const MAX_UNICAST_PEERS: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVrrp {
    instances: Vec<RawInstance>,
    scripts: Option<Vec<hooks::RawScript>>,
    files: Option<Vec<hooks::RawFile>>,
    notify_timeout: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    name: String,
    interface: String,
    vrid: u8,
    priority: Option<u8>,
    version: Option<u8>,
    advert_interval: Option<HumanDuration>,
    vips: Vec<RawVip>,
    unicast_peers: Option<Vec<IpAddr>>,
    preempt: Option<bool>,
    preempt_delay: Option<HumanDuration>,
    accept_mode: Option<bool>,
    auth_pass: Option<String>,
    checksum_compat: Option<bool>,
    garp_repeat: Option<u32>,
    garp_interval: Option<HumanDuration>,
    garp_delay: Option<HumanDuration>,
    garp_refresh: Option<HumanDuration>,
    track: Option<RawTrack>,
    peer_priority: Option<u8>,
    notify: Option<PathBuf>,
    track_scripts: Option<Vec<hooks::RawTracked>>,
    track_interfaces: Option<Vec<hooks::RawTracked>>,
    track_files: Option<Vec<hooks::RawTracked>>,
    notify_master: Option<String>,
    notify_backup: Option<String>,
    notify_fault: Option<String>,
    notify_stop: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrack {
    worker_stall: Option<HumanDuration>,
    penalty: Option<u8>,
    stop_adverts: Option<bool>,
    min_workers: Option<usize>,
}

/// `ip/prefix` or a bare `ip` (a /32, as keepalived takes it).
#[derive(Debug, Clone, Copy)]
struct RawVip {
    addr: IpAddr,
    prefix_len: Option<u8>,
}

impl FromStr for RawVip {
    type Err = String;

    fn from_str(s: &str) -> Result<RawVip, String> {
        let bad = || format!("{s:?} is not an address such as \"192.0.2.10/24\"");
        let (addr, prefix_len) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr = addr.parse().map_err(|_| bad())?;
        Ok(RawVip { addr, prefix_len })
    }
}

impl<'de> Deserialize<'de> for RawVip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawVip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address as a string \"ip/prefix\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawVip, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

pub(super) fn validate(raw: &RawVrrp, p: &mut Problems<'_>) -> Vrrp {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut vrids: HashMap<(&str, u8), usize> = HashMap::new();
    let mut instances = Vec::with_capacity(raw.instances.len());
    let scripts = hooks::validate_scripts(&raw.scripts, p);
    let files = hooks::validate_files(&raw.files, p);
    let notify_timeout = hooks::validate_notify_timeout(raw.notify_timeout, p);
    for (i, r) in raw.instances.iter().enumerate() {
        let at = format!("vrrp.instances[{i}]");
        if r.name.is_empty() {
            p.add(format!("{at}.name"), "must not be empty".into());
        } else if let Some(first) = names.get(r.name.as_str()) {
            p.add(
                format!("{at}.name"),
                format!(
                    "duplicate instance name {:?} (first at vrrp.instances[{first}])",
                    r.name
                ),
            );
        } else {
            names.insert(&r.name, i);
        }
        if let Some(first) = vrids.get(&(r.interface.as_str(), r.vrid)) {
            p.add(
                format!("{at}.vrid"),
                format!(
                    "VRID {} is already used on {:?} by vrrp.instances[{first}]",
                    r.vrid, r.interface
                ),
            );
        } else {
            vrids.insert((&r.interface, r.vrid), i);
        }
        let mut instance = validate_instance(r, &at, p);
        instance.hooks = hooks::validate_instance(
            hooks::RawInstanceHooks {
                track_scripts: &r.track_scripts,
                track_interfaces: &r.track_interfaces,
                track_files: &r.track_files,
                notify_master: &r.notify_master,
                notify_backup: &r.notify_backup,
                notify_fault: &r.notify_fault,
                notify_stop: &r.notify_stop,
            },
            &at,
            &scripts,
            &files,
            p,
        );
        instances.push(instance);
    }
    Vrrp {
        instances,
        scripts,
        files,
        notify_timeout,
    }
}

impl Vrrp {
    /// Tracking that cannot move the VIP (see `election`): `(JSON path, message)` pairs.
    pub(super) fn advice(&self) -> Vec<election::Advice> {
        let names: Vec<&str> = self.scripts.iter().map(|s| s.name.as_str()).collect();
        self.instances
            .iter()
            .enumerate()
            .flat_map(|(i, inst)| election::advice(i, inst, &names))
            .collect()
    }
}

fn validate_instance(r: &RawInstance, at: &str, p: &mut Problems<'_>) -> VrrpInstance {
    // An interface name is at most IFNAMSIZ - 1 bytes, without '/' or whitespace.
    if r.interface.is_empty()
        || r.interface.len() > 15
        || r.interface
            .contains(|c: char| c == '/' || c.is_whitespace())
    {
        p.add(
            format!("{at}.interface"),
            format!("{:?} is not an interface name", r.interface),
        );
    }
    if r.vrid == 0 {
        p.add(format!("{at}.vrid"), "must be 1 to 255".into());
    }
    let priority = r.priority.unwrap_or(DEFAULT_PRIORITY);
    if priority == 0 {
        p.add(
            format!("{at}.priority"),
            "must be 1 to 255 (0 is what a leaving master sends)".into(),
        );
    }
    let version = match r.version {
        None | Some(3) => Version::V3,
        Some(2) => Version::V2,
        Some(v) => {
            p.add(format!("{at}.version"), format!("{v} is not 2 or 3"));
            Version::V3
        }
    };
    let advert_interval = advert_interval(r, version, at, p);

    let mut vips = Vec::with_capacity(r.vips.len());
    if r.vips.is_empty() {
        p.add(
            format!("{at}.vips"),
            "at least one address is required".into(),
        );
    }
    if r.vips.len() > 255 {
        p.add(format!("{at}.vips"), "at most 255 addresses".into());
    }
    // The first address decides the family (RFC 9568: one virtual router per family).
    let family_v6 = r.vips.first().is_some_and(|v| v.addr.is_ipv6());
    if family_v6 && version == Version::V2 {
        p.add(
            format!("{at}.vips[0]"),
            "VRRPv2 carries IPv4 addresses only; use \"version\": 3 for IPv6".into(),
        );
    }
    for (j, v) in r.vips.iter().enumerate() {
        let addr = v.addr;
        let max_len = if addr.is_ipv6() { 128 } else { 32 };
        let prefix_len = v.prefix_len.unwrap_or(max_len);
        if addr.is_ipv6() != family_v6 {
            p.add(
                format!("{at}.vips[{j}]"),
                format!("{addr} is not of the family of vips[0]: one instance per family"),
            );
            continue;
        }
        if prefix_len > max_len || prefix_len == 0 {
            p.add(
                format!("{at}.vips[{j}]"),
                format!("prefix length {prefix_len} is not 1 to {max_len}"),
            );
        }
        let unusable = match addr {
            IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
            IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
        };
        if unusable {
            p.add(
                format!("{at}.vips[{j}]"),
                format!("{addr} cannot be a virtual address"),
            );
        }
        if vips.iter().any(|x: &Vip| x.addr == addr) {
            p.add(format!("{at}.vips[{j}]"), format!("{addr} is listed twice"));
        }
        vips.push(Vip { addr, prefix_len });
    }
    let unicast_peers = r.unicast_peers.clone().unwrap_or_default();
    if unicast_peers.len() > MAX_UNICAST_PEERS {
        p.add(
            format!("{at}.unicast_peers"),
            format!("at most {MAX_UNICAST_PEERS} addresses"),
        );
    }
    for (j, peer) in unicast_peers.iter().enumerate() {
        if peer.is_ipv6() != family_v6 || peer.is_unspecified() || peer.is_multicast() {
            let family = if family_v6 { "IPv6" } else { "IPv4" };
            p.add(
                format!("{at}.unicast_peers[{j}]"),
                format!("{peer} is not a unicast {family} address (the family of the vips)"),
            );
        }
    }

    let auth = match (&r.auth_pass, version) {
        (None, _) => Auth::None,
        (Some(_), Version::V3) => {
            p.add(
                format!("{at}.auth_pass"),
                "VRRPv3 has no authentication; only for \"version\": 2".into(),
            );
            Auth::None
        }
        (Some(pass), Version::V2) => match Auth::password(pass.as_bytes()) {
            Some(a) if !pass.is_empty() => a,
            _ => {
                p.add(
                    format!("{at}.auth_pass"),
                    "must be 1 to 8 bytes (keepalived's limit)".into(),
                );
                Auth::None
            }
        },
    };
    let checksum = match (r.checksum_compat, version) {
        (Some(true), Version::V3) => ChecksumMode::V2Compat,
        (Some(true), Version::V2) => {
            p.add(
                format!("{at}.checksum_compat"),
                "only applies to \"version\": 3".into(),
            );
            ChecksumMode::Rfc
        }
        _ => ChecksumMode::Rfc,
    };

    let garp_repeat = r.garp_repeat.unwrap_or(DEFAULT_GARP_REPEAT);
    if garp_repeat > ::vrrp::config::MAX_GARP_REPEAT {
        p.add(
            format!("{at}.garp_repeat"),
            format!("{garp_repeat} is over {}", ::vrrp::config::MAX_GARP_REPEAT),
        );
    }
    let garp_refresh = r.garp_refresh.map(|d| d.0);
    if garp_refresh.is_some_and(|d| d.is_zero()) {
        p.add(
            format!("{at}.garp_refresh"),
            "must be greater than zero (leave it out for none)".into(),
        );
    }

    let track = r.track.as_ref().map(|t| validate_track(t, at, p));
    if let Some(n) = r.peer_priority.filter(|n| !(1..=254).contains(n)) {
        p.add(
            format!("{at}.peer_priority"),
            format!("{n} is not 1 to 254 (a backup's priority)"),
        );
    }
    if let Some(n) = r.notify.as_ref().filter(|n| n.as_os_str().is_empty()) {
        p.add(format!("{at}.notify"), format!("{n:?} is not a command"));
    }

    VrrpInstance {
        name: r.name.clone(),
        interface: r.interface.clone(),
        vrid: r.vrid,
        priority,
        version,
        advert_interval,
        vips,
        unicast_peers,
        preempt: r.preempt.unwrap_or(true),
        preempt_delay: r.preempt_delay.map_or(Duration::ZERO, |d| d.0),
        accept_mode: r.accept_mode.unwrap_or(false),
        auth,
        checksum,
        garp_repeat,
        garp_interval: r.garp_interval.map_or(Duration::ZERO, |d| d.0),
        garp_delay: r.garp_delay.map_or(DEFAULT_GARP_DELAY, |d| d.0),
        garp_refresh,
        track,
        peer_priority: r.peer_priority,
        notify: r.notify.clone(),
        hooks: InstanceHooks::default(),
    }
}

/// VRRPv3 carries centiseconds (10ms to 40.95s); VRRPv2 whole seconds (1s to 255s).
fn advert_interval(r: &RawInstance, version: Version, at: &str, p: &mut Problems<'_>) -> Interval {
    let d = r.advert_interval.map_or(DEFAULT_ADVERT_INTERVAL, |d| d.0);
    let ms = d.as_millis();
    let interval = match version {
        Version::V3 if ms % 10 == 0 => u16::try_from(ms / 10).ok().and_then(Interval::from_centis),
        Version::V2 if ms % 1000 == 0 => u8::try_from(ms / 1000).ok().and_then(Interval::from_secs),
        _ => None,
    };
    interval.unwrap_or_else(|| {
        let range = match version {
            Version::V3 => "a multiple of 10ms from 10ms to 40950ms for VRRPv3",
            Version::V2 => "whole seconds from 1s to 255s for VRRPv2",
        };
        p.add(
            format!("{at}.advert_interval"),
            format!("{ms}ms is out of range ({range})"),
        );
        Interval::ONE_SECOND
    })
}

fn validate_track(t: &RawTrack, at: &str, p: &mut Problems<'_>) -> Track {
    let worker_stall = t.worker_stall.map_or(DEFAULT_WORKER_STALL, |d| d.0);
    if worker_stall <= WORKER_TICK {
        p.add(
            format!("{at}.track.worker_stall"),
            format!(
                "must be longer than the workers' {}ms tick",
                WORKER_TICK.as_millis()
            ),
        );
    }
    let action = match (t.penalty, t.stop_adverts) {
        (Some(_), Some(true)) => {
            p.add(
                format!("{at}.track.stop_adverts"),
                "give either \"penalty\" or \"stop_adverts\", not both".into(),
            );
            TrackAction::StopAdverts
        }
        (Some(0), _) => {
            p.add(format!("{at}.track.penalty"), "must be 1 to 254".into());
            TrackAction::Penalty(1)
        }
        (Some(n), _) => TrackAction::Penalty(n),
        (None, Some(true)) => TrackAction::StopAdverts,
        (None, _) => {
            p.add(
                format!("{at}.track"),
                "needs \"penalty\" (priority to subtract) or \"stop_adverts\": true".into(),
            );
            TrackAction::StopAdverts
        }
    };
    if let Some(n) = t
        .min_workers
        .filter(|n| !(1..=super::MAX_WORKERS).contains(n))
    {
        p.add(
            format!("{at}.track.min_workers"),
            format!("{n} is out of range (1 to {})", super::MAX_WORKERS),
        );
    }
    Track {
        worker_stall,
        action,
        min_workers: t.min_workers,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::parse;
    use super::*;

    const FRONT: &str = r#""frontends": [ { "name": "web", "bind": ["192.0.2.10:80"], "backend": "b" } ],
  "backends": [ { "name": "b", "servers": [ { "name": "s", "addr": "192.0.2.21:80" } ] } ]"#;

    fn with_vrrp(vrrp: &str) -> String {
        format!("{{ {FRONT},\n  \"vrrp\": {vrrp} }}")
    }

    fn errors(vrrp: &str) -> String {
        parse("x.json", &with_vrrp(vrrp)).unwrap_err().to_string()
    }

    #[test]
    fn full_instance() {
        let c = parse(
            "x.json",
            &with_vrrp(
                r#"{ "instances": [ { "name": "VI_1", "interface": "veth-lb1", "vrid": 51,
  "priority": 150, "version": 2, "advert_interval": "2s", "vips": ["192.0.2.10/24", "192.0.2.11"],
  "unicast_peers": ["192.0.2.3"], "preempt": false, "preempt_delay": "5s", "accept_mode": true,
  "auth_pass": "secret", "garp_repeat": 3, "garp_interval": "10ms", "garp_delay": "0s",
  "garp_refresh": "60s", "track": { "worker_stall": "250ms", "penalty": 60 },
  "notify": "/usr/local/bin/vrrp-notify" } ] }"#,
            ),
        )
        .unwrap();
        let i = &c.vrrp.instances[0];
        assert_eq!((i.vrid, i.priority, i.version), (51, 150, Version::V2));
        assert_eq!(i.advert_interval.centis(), 200);
        assert_eq!(
            i.vips,
            vec![
                Vip {
                    addr: Ipv4Addr::new(192, 0, 2, 10).into(),
                    prefix_len: 24
                },
                Vip {
                    addr: Ipv4Addr::new(192, 0, 2, 11).into(),
                    prefix_len: 32
                }
            ]
        );
        assert_eq!(i.auth, Auth::password(b"secret").unwrap());
        assert!(!i.preempt && i.accept_mode);
        assert_eq!(
            i.track,
            Some(Track {
                worker_stall: Duration::from_millis(250),
                action: TrackAction::Penalty(60),
                min_workers: None,
            })
        );
        assert_eq!(i.garp_refresh, Some(Duration::from_secs(60)));
    }

    #[test]
    fn defaults_are_keepalived_like() {
        let c = parse(
            "x.json",
            &with_vrrp(
                r#"{ "instances": [ { "name": "VI_1", "interface": "eth0", "vrid": 1,
  "vips": ["192.0.2.10/24"], "track": { "stop_adverts": true } } ] }"#,
            ),
        )
        .unwrap();
        let i = &c.vrrp.instances[0];
        assert_eq!((i.priority, i.version), (100, Version::V3));
        assert_eq!(i.advert_interval, Interval::ONE_SECOND);
        assert!(i.preempt && !i.accept_mode && i.unicast_peers.is_empty());
        assert_eq!((i.garp_repeat, i.garp_delay), (5, Duration::from_secs(5)));
        assert_eq!(i.track.unwrap().action, TrackAction::StopAdverts);
        assert_eq!(i.track.unwrap().worker_stall, DEFAULT_WORKER_STALL);
        assert!(parse("x.json", &format!("{{ {FRONT} }}"))
            .unwrap()
            .vrrp
            .instances
            .is_empty());
    }

    #[test]
    fn problems_name_their_paths() {
        let e = errors(
            r#"{ "instances": [
  { "name": "A", "interface": "eth0", "vrid": 0, "priority": 0, "version": 4,
    "advert_interval": "15ms", "vips": ["2001:db8::1", "192.0.2.10/33"] },
  { "name": "A", "interface": "eth0", "vrid": 0, "advert_interval": "1500ms", "version": 2,
    "vips": [], "auth_pass": "ninechars", "track": { "worker_stall": "100ms" } },
  { "name": "C", "interface": "eth0", "vrid": 7, "vips": ["192.0.2.1"], "auth_pass": "x",
    "track": { "penalty": 0 }, "unicast_peers": ["::1"] } ] }"#,
        );
        let want = [
            "x.json: vrrp.instances[0].vrid: must be 1 to 255 (line 4, column 47)",
            "x.json: vrrp.instances[0].priority: must be 1 to 255 (0 is what a leaving master sends) (line 4, column 62)",
            "x.json: vrrp.instances[0].version: 4 is not 2 or 3 (line 4, column 76)",
            "x.json: vrrp.instances[0].advert_interval: 15ms is out of range (a multiple of 10ms from 10ms to 40950ms for VRRPv3) (line 5, column 24)",
            "x.json: vrrp.instances[0].vips[1]: 192.0.2.10 is not of the family of vips[0]: one instance per family (line 5, column 56)",
            "x.json: vrrp.instances[1].name: duplicate instance name \"A\" (first at vrrp.instances[0]) (line 6, column 13)",
            "x.json: vrrp.instances[1].vrid: VRID 0 is already used on \"eth0\" by vrrp.instances[0] (line 6, column 47)",
            "x.json: vrrp.instances[1].vrid: must be 1 to 255 (line 6, column 47)",
            "x.json: vrrp.instances[1].advert_interval: 1500ms is out of range (whole seconds from 1s to 255s for VRRPv2) (line 6, column 69)",
            "x.json: vrrp.instances[1].vips: at least one address is required (line 7, column 13)",
            "x.json: vrrp.instances[1].auth_pass: must be 1 to 8 bytes (keepalived's limit) (line 7, column 30)",
            "x.json: vrrp.instances[1].track.worker_stall: must be longer than the workers' 100ms tick (line 7, column 70)",
            "x.json: vrrp.instances[1].track: needs \"penalty\" (priority to subtract) or \"stop_adverts\": true (line 7, column 52)",
            "x.json: vrrp.instances[2].auth_pass: VRRPv3 has no authentication; only for \"version\": 2 (line 8, column 86)",
            "x.json: vrrp.instances[2].track.penalty: must be 1 to 254 (line 9, column 27)",
            "x.json: vrrp.instances[2].unicast_peers[0]: ::1 is not a unicast IPv4 address (the family of the vips) (line 9, column 50)",
        ];
        let mut got: Vec<&str> = e.lines().collect();
        let mut want = want.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "\n{e}");
    }

    #[test]
    fn ipv6_instances() {
        let c = parse(
            "x.json",
            &with_vrrp(
                r#"{ "instances": [ { "name": "VI_6", "interface": "eth0", "vrid": 52,
  "vips": ["fe80::10", "2001:db8::10/64"], "unicast_peers": ["fe80::3"] } ] }"#,
            ),
        )
        .unwrap();
        let i = &c.vrrp.instances[0];
        assert_eq!(i.vips[0].prefix_len, 128);
        assert_eq!(i.vips[1].prefix_len, 64);
        let e = errors(
            r#"{ "instances": [ { "name": "VI_6", "interface": "eth0", "vrid": 52, "version": 2,
  "vips": ["2001:db8::10/129", "ff02::1"], "unicast_peers": ["192.0.2.3"] } ] }"#,
        );
        let want = [
            "x.json: vrrp.instances[0].vips[0]: VRRPv2 carries IPv4 addresses only; use \"version\": 3 for IPv6 (line 4, column 12)",
            "x.json: vrrp.instances[0].vips[0]: prefix length 129 is not 1 to 128 (line 4, column 12)",
            "x.json: vrrp.instances[0].vips[1]: ff02::1 cannot be a virtual address (line 4, column 32)",
            "x.json: vrrp.instances[0].unicast_peers[0]: 192.0.2.3 is not a unicast IPv6 address (the family of the vips) (line 4, column 62)",
        ];
        assert_eq!(e.lines().collect::<Vec<_>>(), want, "\n{e}");
    }

    #[test]
    fn unicast_peers_are_bounded() {
        let peers = |n: usize| -> String {
            let list: Vec<String> = (1..=n).map(|i| format!("\"192.0.2.{i}\"")).collect();
            format!(
                r#"{{ "instances": [ {{ "name": "A", "interface": "eth0", "vrid": 1,
  "vips": ["192.0.2.200"], "unicast_peers": [{}] }} ] }}"#,
                list.join(", ")
            )
        };
        assert_eq!(
            parse("x.json", &with_vrrp(&peers(MAX_UNICAST_PEERS)))
                .unwrap()
                .vrrp
                .instances[0]
                .unicast_peers
                .len(),
            MAX_UNICAST_PEERS
        );
        assert_eq!(
            errors(&peers(MAX_UNICAST_PEERS + 1)),
            "x.json: vrrp.instances[0].unicast_peers: at most 64 addresses (line 4, column 45)"
        );
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e = errors(
            r#"{ "instances": [ { "name": "A", "interface": "eth0", "vrid": 1,
  "vips": ["192.0.2.10"], "advert_int": 1 } ] }"#,
        );
        assert!(
            e.starts_with("x.json: vrrp.instances[0].advert_int: unknown field `advert_int`"),
            "{e}"
        );
        let e = errors(
            r#"{ "instances": [ { "name": "A", "interface": "eth0", "vrid": 1, "vips": ["192.0.2.300/24"] } ] }"#,
        );
        assert!(
            e.contains("vrrp.instances[0].vips[0]: \"192.0.2.300/24\" is not an address"),
            "{e}"
        );
    }

    #[test]
    fn check_says_when_tracking_cannot_move_the_vip() {
        // The seed tutorials' pair: priorities 150 and 100, `weight 2`.
        let advice = |tracking: &str| {
            let text = with_vrrp(&format!(
                r#"{{ "scripts": [ {{ "name": "chk_haproxy", "script": "true", "weight": 2 }} ],
  "instances": [ {{ "name": "VI_1", "interface": "eth0", "vrid": 51, "priority": 150,
    "vips": ["192.0.2.10/24"], {tracking} }} ] }}"#
            ));
            parse("x.json", &text)
                .unwrap()
                .advice("x.json")
                .map(|a| a.warnings().to_string())
        };
        let peer = r#""peer_priority": 100"#;
        assert_eq!(
            advice(&format!(
                r#"{peer}, "track_scripts": [ {{ "name": "chk_haproxy" }} ]"#
            ))
            .as_deref(),
            Some(
                "x.json: warning: vrrp.instances[0].track_scripts[0]: script \"chk_haproxy\" \
                 failing lowers priority 150 by 2 to 148, still above peer_priority 100: the \
                 VIP never moves on it (lower the priority or use a larger weight) (line 5, \
                 column 73)"
            )
        );
        let ok =
            format!(r#"{peer}, "track_scripts": [ {{ "name": "chk_haproxy", "weight": -60 }} ]"#);
        assert_eq!(advice(&ok), None);
        assert_eq!(
            advice(&format!(r#"{peer}, "track": {{ "penalty": 60 }}"#)),
            None
        );
        let tie = advice(&format!(r#"{peer}, "track": {{ "penalty": 50 }}"#)).unwrap();
        assert!(
            tie.contains("track.penalty: a worker stall lowers priority 150 by 50 to 100")
                && tie.contains("equal to peer_priority 100"),
            "{tie}"
        );
        let down =
            format!(r#"{peer}, "track_interfaces": [ {{ "name": "eth1", "weight": -20 }} ]"#);
        assert!(advice(&down)
            .unwrap()
            .contains("interface \"eth1\" going down"));
        // Without the peer's priority nothing can be said; the backup's tracking never
        // has to move anything.
        assert_eq!(advice(r#""track": { "penalty": 1 }"#), None);
        assert_eq!(
            advice(r#""peer_priority": 200, "track": { "penalty": 1 }"#),
            None
        );
        assert!(errors(
            r#"{ "instances": [ { "name": "VI_1", "interface": "eth0", "vrid": 51,
  "vips": ["192.0.2.10/24"], "peer_priority": 255 } ] }"#
        )
        .contains("vrrp.instances[0].peer_priority: 255 is not 1 to 254"));
    }
}
