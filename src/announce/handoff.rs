//! Handing established flows over while the router's choice of balancer changes
//! (`announce.handoff`).
//!
//! An ECMP router keeps no state per flow: when a balancer leaves (its route is withdrawn)
//! or joins, the router's hash sends some established flows to a balancer that has no
//! socket for them, and that balancer's kernel answers them with a reset. With a handoff,
//! balancers open a *window* around each change; during it, a packet of a TCP flow to a
//! VIP that this box does not know is copied to every peer and dropped here. The peer that
//! has the flow serves it (and answers the client directly, through the router); the
//! others drop the copy. This is the "forward to the previous owner" step of GitHub's GLB
//! and Cloudflare's Unimog, done without knowing the owner: there are a handful of peers,
//! and only packets of moved flows, only during a window, are copied.
//!
//! The packet path is an nftables table this module installs (`ruleset`), evaluated in the
//! kernel before the TCP stack:
//! - a SYN to a VIP gets the firewall mark `mark`; with `net.ipv4.tcp_fwmark_accept = 1`
//!   the connection the kernel accepts from it carries that mark, so "a flow this box
//!   owns" is "the socket the packet belongs to has our mark" (an nftables `socket`
//!   lookup), and a flow it does not own finds only the listener (mark 0) or nothing;
//! - a forwarded copy carries DSCP `dscp`: the receiver serves it if it owns the flow and
//!   otherwise drops it, never forwards it again and never answers it with a reset;
//! - outside a window, packets pass after two comparisons and a set lookup (no socket
//!   lookup), so a handoff costs the data path next to nothing while nothing changes.
//!
//! Windows are elements of an nftables set with a timeout: the kernel closes them by
//! itself, also when ringlb is gone. A balancer tells its peers of a change with a UDP
//! notice (`Notice`): "leaving, open a window of `withdraw_delay` + `grace`" before a stop
//! withdraws its routes (so its established connections keep working through the drain),
//! "joined" when it announces after not announcing (and it opens its own window: flows the
//! router moves to it are forwarded back to their owners). Notices are taken only from the
//! configured peers' addresses; one forged from a peer's address can only open a window,
//! which makes unknown flows' packets go to the peers instead of being reset.
//!
//! Not covered: a handshake completed by a SYN cookie (under a SYN flood) has no
//! marked socket when its first ACK arrives; during a window that ACK is forwarded and the
//! connection fails, outside a window it is served as always.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{Handoff as HandoffConfig, MAX_HANDOFF_WINDOW};
use crate::logging::event;
use crate::sys::{self, SwitchOn};

/// The longest an `nft` run may take before it is killed.
const NFT_TIMEOUT: Duration = Duration::from_secs(2);
/// The sysctl that makes accepted connections carry their SYN's mark.
const FWMARK_ACCEPT: &str = "/proc/sys/net/ipv4/tcp_fwmark_accept";

/// What a balancer tells its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It is withdrawing its routes (a stop, or it can no longer serve).
    Leaving,
    /// It announces its routes again, or for the first time.
    Joined,
}

/// A notice: a change and the window the sender asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub change: Change,
    pub window: Duration,
}

const MAGIC: &[u8; 4] = b"RLBH";
const VERSION: u8 = 1;
pub const NOTICE_LEN: usize = 12;

impl Notice {
    /// `RLBH`, version 1, the change (1 leaving, 2 joined), a zero byte, the window in
    /// milliseconds (32 bits, network order), two zero bytes.
    pub fn encode(&self) -> [u8; NOTICE_LEN] {
        let mut b = [0u8; NOTICE_LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = VERSION;
        b[5] = match self.change {
            Change::Leaving => 1,
            Change::Joined => 2,
        };
        let ms = self.window.as_millis().min(u32::MAX as u128) as u32;
        b[7..11].copy_from_slice(&ms.to_be_bytes());
        b
    }

    /// Reads a notice; the window is capped at `MAX_HANDOFF_WINDOW`.
    pub fn decode(b: &[u8]) -> Result<Notice, &'static str> {
        if b.len() != NOTICE_LEN {
            return Err("wrong length");
        }
        if &b[..4] != MAGIC {
            return Err("not a ringlb handoff notice");
        }
        if b[4] != VERSION {
            return Err("unknown version");
        }
        let change = match b[5] {
            1 => Change::Leaving,
            2 => Change::Joined,
            _ => return Err("unknown change"),
        };
        let ms = u32::from_be_bytes([b[7], b[8], b[9], b[10]]);
        let window = Duration::from_millis(ms.into()).min(MAX_HANDOFF_WINDOW);
        if window.is_zero() {
            return Err("empty window");
        }
        Ok(Notice { change, window })
    }
}

/// The nftables table name for the announce interface `interface` (one ringlb per
/// interface, so one table each).
pub fn table_name(interface: &str) -> String {
    interface
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The nftables families with VIPs: (family, address keyword, set type, VIPs, peers).
fn families<'a>(
    h: &'a HandoffConfig,
    vips: &'a [IpAddr],
) -> impl Iterator<Item = (&'static str, &'static str, Vec<IpAddr>, Vec<IpAddr>)> + 'a {
    [true, false].into_iter().filter_map(move |v4| {
        let vs: Vec<IpAddr> = vips.iter().copied().filter(|a| a.is_ipv4() == v4).collect();
        let ps: Vec<IpAddr> = h
            .peers
            .iter()
            .copied()
            .filter(|a| a.is_ipv4() == v4)
            .collect();
        if vs.is_empty() {
            return None;
        }
        Some(if v4 {
            ("ip", "ipv4_addr", vs, ps)
        } else {
            ("ip6", "ipv6_addr", vs, ps)
        })
    })
}

fn list(addrs: &[IpAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The whole ruleset, as one `nft -f` transaction that replaces an earlier table of the
/// same name (left by a ringlb that died) atomically. Per family with VIPs, a table of:
///
/// - `windows`, a set of VIPs with timeouts: a VIP in it has a window open;
/// - `prerouting` (at the mangle priority, before the TCP stack): TCP to a VIP goes to
///   `vip`, everything else passes untouched;
/// - `vip`: a SYN (without ACK) gets `mark` and passes: the connection accepted from it
///   carries the mark. A copy from a peer (DSCP `dscp`) goes to `forwarded`. Outside a
///   window, everything else passes here: no socket lookup. In a window: a socket with
///   our mark (a connection of ours) passes; a full socket without it (the listener) means
///   a flow this box does not know: `unknown`; a socket that is not a full one (TIME_WAIT,
///   a handshake under way, for which `socket mark` does not match) passes, found by
///   `socket transparent` whatever its value; no socket at all: `unknown`;
/// - `forwarded`: the same lookup, but a flow this box does not know is dropped, never
///   forwarded again nor answered with a reset;
/// - `unknown`: the packet gets DSCP `dscp`, a copy goes to every peer of its family, and
///   it is dropped here.
pub fn ruleset(table: &str, h: &HandoffConfig, vips: &[IpAddr]) -> String {
    let mut s = String::new();
    let (mark, dscp) = (h.mark, h.dscp);
    for (fam, set_type, vs, ps) in families(h, vips) {
        let daddr = if fam == "ip" { "ip daddr" } else { "ip6 daddr" };
        let dscp_kw = if fam == "ip" { "ip dscp" } else { "ip6 dscp" };
        let dups: String = ps.iter().map(|p| format!(" dup to {p}")).collect();
        let _ = write!(
            s,
            "table {fam} {table}
delete table {fam} {table}
table {fam} {table} {{
    set windows {{
        type {set_type}
        flags timeout
    }}
    chain prerouting {{
        type filter hook prerouting priority mangle; policy accept;
        {daddr} {{ {vips} }} meta l4proto tcp jump vip
    }}
    chain vip {{
        tcp flags & (syn | ack) == syn meta mark set {mark} return
        {dscp_kw} {dscp} goto forwarded
        {daddr} != @windows return
        socket mark {mark} return
        socket mark != {mark} goto unknown
        socket transparent 0 return
        socket transparent 1 return
        goto unknown
    }}
    chain forwarded {{
        socket mark {mark} counter return
        socket mark != {mark} counter drop
        socket transparent 0 return
        socket transparent 1 return
        counter drop
    }}
    chain unknown {{
        counter {dscp_kw} set {dscp}{dups} drop
    }}
}}
",
            vips = list(&vs),
        );
    }
    s
}

/// The transaction that opens (or lengthens) a window of `window` for every VIP.
fn open_script(table: &str, h: &HandoffConfig, vips: &[IpAddr], window: Duration) -> String {
    let mut s = String::new();
    let ms = window.as_millis().max(1);
    for (fam, _, vs, _) in families(h, vips) {
        let vs = list(&vs);
        // Add first, so that the delete finds it; the second add sets the new timeout.
        let _ = writeln!(
            s,
            "add element {fam} {table} windows {{ {vs} timeout {ms}ms }}"
        );
        let _ = writeln!(s, "delete element {fam} {table} windows {{ {vs} }}");
        let _ = writeln!(
            s,
            "add element {fam} {table} windows {{ {vs} timeout {ms}ms }}"
        );
    }
    s
}

/// Runs `nft -f -` on `script`; the error carries nft's own message.
fn nft(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft (package nftables): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                return Err(format!("nft exited with {status}: {}", first.trim()));
            }
            Ok(None) if started.elapsed() >= NFT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("nft did not finish in {NFT_TIMEOUT:?}"));
            }
            Ok(None) => {
                // Still turning, for the supervising parent's watch.
                crate::beat::beat();
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(format!("nft: {e}")),
        }
    }
}

/// Deletes the tables a ringlb with a handoff left when it died (a SIGKILL skips `Drop`),
/// when this one runs without: their windows would still forward flows. Nothing to do, and
/// no error, where nftables is not installed.
pub fn remove_stale(interface: &str) {
    let Ok(out) = Command::new("nft")
        .args(["list", "tables"])
        .stderr(Stdio::null())
        .output()
    else {
        return;
    };
    let table = table_name(interface);
    let script: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next(), w.next()) {
                (Some("table"), Some(fam @ ("ip" | "ip6")), Some(t), None) if t == table => {
                    Some(format!("delete table {fam} {t}\n"))
                }
                _ => None,
            }
        })
        .collect();
    if script.is_empty() {
        return;
    }
    match nft(&script) {
        Ok(()) => {
            event!(notice: "announce: deleted nftables table {table} left by an earlier handoff")
        }
        Err(e) => event!(warning: "announce: cannot delete the stale nftables table {table}: {e}"),
    }
}

/// Makes sure accepted connections carry their SYN's mark: an error when the sysctl is 0
/// and cannot be set; a warning when it cannot be read (the shipped unit's `ProcSubset=pid`
/// hides /proc/sys, and the package's sysctl.d file sets it).
fn fwmark_accept() -> Result<(), String> {
    match sys::switch_on(FWMARK_ACCEPT) {
        SwitchOn::WasOn => {}
        SwitchOn::Set => event!("announce.handoff: set net.ipv4.tcp_fwmark_accept = 1"),
        SwitchOn::CannotRead(e) => event!(warning:
            "announce.handoff: cannot read {FWMARK_ACCEPT} ({e}); it must be 1 (the \
             package's /usr/lib/sysctl.d/60-ringlb.conf sets it), else this box's own \
             flows are handed to its peers during a window"
        ),
        SwitchOn::CannotSet(e) => {
            return Err(format!(
                "needs net.ipv4.tcp_fwmark_accept = 1 and cannot set it ({e}); set it in \
                 /etc/sysctl.d (the package's 60-ringlb.conf does)"
            ))
        }
    }
    Ok(())
}

/// The UDP socket notices come in on: dual-stack where IPv6 is on, else IPv4.
fn notice_socket(port: u16) -> io::Result<UdpSocket> {
    let v6 = || -> io::Result<Socket> {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_only_v6(false)?;
        s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
        Ok(s)
    };
    let s = match v6() {
        Ok(s) => s,
        Err(_) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
            s
        }
    };
    s.set_nonblocking(true)?;
    s.set_cloexec(true)?;
    Ok(s.into())
}

/// The handoff of one announcer: the installed table, the notice socket, and the window
/// opened last. Dropping it deletes the table.
pub struct Handoff {
    cfg: HandoffConfig,
    table: String,
    vips: Vec<IpAddr>,
    socket: UdpSocket,
    dual_stack: bool,
    open_until: Option<Instant>,
    counts: HandoffCounts,
}

/// What a handoff did since start (for the stats page, `/metrics` and `ringlb ctl`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandoffCounts {
    pub windows_opened: u64,
    pub notices_sent: u64,
    pub notices_received: u64,
    /// Not from a peer, or malformed; logged at powers of two.
    pub notices_dropped: u64,
}

impl Handoff {
    /// Sets the sysctl, installs the table and binds the notice port.
    pub fn install(
        cfg: &HandoffConfig,
        interface: &str,
        vips: Vec<IpAddr>,
    ) -> Result<Handoff, String> {
        fwmark_accept()?;
        let table = table_name(interface);
        nft(&ruleset(&table, cfg, &vips))?;
        let socket = notice_socket(cfg.port).map_err(|e| {
            format!(
                "announce.handoff.port: cannot bind UDP port {}: {e}",
                cfg.port
            )
        })?;
        let dual_stack = socket.local_addr().is_ok_and(|a| a.is_ipv6());
        event!(
            "announce.handoff: table {table} installed; peers {}; notices on UDP port {}",
            list(&cfg.peers),
            cfg.port
        );
        Ok(Handoff {
            cfg: cfg.clone(),
            table,
            vips,
            socket,
            dual_stack,
            open_until: None,
            counts: HandoffCounts::default(),
        })
    }

    /// Whether `cfg` and `vips` are what is installed (a reload that changes neither
    /// keeps the table and its open window).
    pub fn same(&self, cfg: &HandoffConfig, vips: &[IpAddr]) -> bool {
        self.cfg == *cfg && self.vips == vips
    }

    /// Opens a window of `window` unless one about as long is open (a second off: peers
    /// that start together each ask for the same window).
    pub fn open(&mut self, window: Duration, why: &str) {
        let until = Instant::now() + window;
        if self
            .open_until
            .is_some_and(|u| u + Duration::from_secs(1) >= until)
        {
            return;
        }
        match nft(&open_script(&self.table, &self.cfg, &self.vips, window)) {
            Ok(()) => {
                self.open_until = Some(until);
                self.counts.windows_opened += 1;
                event!(notice:
                    "announce.handoff: window of {window:?} open ({why}): packets of flows \
                     this box does not know go to the peers"
                );
            }
            Err(e) => event!(error: "announce.handoff: cannot open a window ({why}): {e}"),
        }
    }

    /// Sends `notice` to every peer.
    pub fn tell(&mut self, notice: Notice) {
        let bytes = notice.encode();
        for &peer in &self.cfg.peers {
            let to = self.peer_addr(peer);
            match self.socket.send_to(&bytes, to) {
                Ok(_) => self.counts.notices_sent += 1,
                Err(e) => {
                    event!(warning: "announce.handoff: cannot send a notice to {peer}: {e}")
                }
            }
        }
        event!(
            "announce.handoff: told {} peers: {:?}, window {:?}",
            self.cfg.peers.len(),
            notice.change,
            notice.window
        );
    }

    fn peer_addr(&self, peer: IpAddr) -> SocketAddr {
        match peer {
            IpAddr::V4(v4) if self.dual_stack => {
                SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), self.cfg.port)
            }
            _ => SocketAddr::new(peer, self.cfg.port),
        }
    }

    /// Reads the notices that arrived and opens the windows they ask for.
    pub fn poll(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    event!(warning: "announce.handoff: notice socket: {e}");
                    return;
                }
            };
            let src = from.ip().to_canonical();
            if !self.cfg.peers.contains(&src) {
                self.drop_notice(src, "not from a peer");
                continue;
            }
            match Notice::decode(&buf[..n]) {
                Ok(notice) => {
                    self.counts.notices_received += 1;
                    let what = match notice.change {
                        Change::Leaving => "is leaving",
                        Change::Joined => "joined",
                    };
                    self.open(notice.window, &format!("peer {src} {what}"));
                }
                Err(why) => self.drop_notice(src, why),
            }
        }
    }

    fn drop_notice(&mut self, src: IpAddr, why: &str) {
        self.counts.notices_dropped += 1;
        let n = self.counts.notices_dropped;
        if n.is_power_of_two() {
            event!(warning:
                "announce.handoff: dropped a notice from {src}: {why} ({n} dropped so far)"
            );
        }
    }

    pub fn counts(&self) -> HandoffCounts {
        self.counts
    }

    /// How long the window opened last has to run (zero when closed).
    pub fn window_left(&self) -> Duration {
        self.open_until.map_or(Duration::ZERO, |u| {
            u.saturating_duration_since(Instant::now())
        })
    }

    pub fn peers(&self) -> &[IpAddr] {
        &self.cfg.peers
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        let mut script = String::new();
        for (fam, _, _, _) in families(&self.cfg, &self.vips) {
            let _ = writeln!(script, "delete table {fam} {}", self.table);
        }
        match nft(&script) {
            Ok(()) => event!("announce.handoff: table {} deleted", self.table),
            Err(e) => event!(warning: "announce.handoff: cannot delete table {}: {e}", self.table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(peers: &[&str]) -> HandoffConfig {
        HandoffConfig {
            peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
            port: 5470,
            window: Duration::from_secs(30),
            mark: 0x4c42,
            dscp: 63,
        }
    }

    #[test]
    fn notices_round_trip_and_bad_ones_are_named() {
        for change in [Change::Leaving, Change::Joined] {
            let n = Notice {
                change,
                window: Duration::from_millis(6500),
            };
            assert_eq!(Notice::decode(&n.encode()), Ok(n));
        }
        let good = Notice {
            change: Change::Joined,
            window: Duration::from_secs(1),
        }
        .encode();
        assert_eq!(Notice::decode(&good[..11]), Err("wrong length"));
        let mut b = good;
        b[0] = b'X';
        assert_eq!(Notice::decode(&b), Err("not a ringlb handoff notice"));
        let mut b = good;
        b[4] = 2;
        assert_eq!(Notice::decode(&b), Err("unknown version"));
        let mut b = good;
        b[5] = 9;
        assert_eq!(Notice::decode(&b), Err("unknown change"));
        let mut b = good;
        b[7..11].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(Notice::decode(&b), Err("empty window"));
        // A window past the bound is cut to it.
        let mut b = good;
        b[7..11].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Notice::decode(&b).unwrap().window, MAX_HANDOFF_WINDOW);
    }

    #[test]
    fn one_table_per_family_with_vips_and_its_peers() {
        let vips: Vec<IpAddr> = vec!["192.0.2.240".parse().unwrap()];
        let s = ruleset("ringlb_vip", &cfg(&["192.0.2.195", "2001:db8::2"]), &vips);
        assert!(s.contains("table ip ringlb_vip {"), "{s}");
        assert!(!s.contains("table ip6"), "{s}");
        assert!(
            s.contains("ip daddr { 192.0.2.240 } meta l4proto tcp jump vip"),
            "{s}"
        );
        assert!(s.contains("meta mark set 19522 return"), "{s}");
        assert!(s.contains("ip dscp set 63 dup to 192.0.2.195 drop"), "{s}");
        let vips: Vec<IpAddr> = vec![
            "2001:db8::80".parse().unwrap(),
            "192.0.2.240".parse().unwrap(),
        ];
        let s = ruleset(
            "t",
            &cfg(&["192.0.2.195", "2001:db8::2", "2001:db8::3"]),
            &vips,
        );
        assert!(
            s.contains("ip6 dscp set 63 dup to 2001:db8::2 dup to 2001:db8::3 drop"),
            "{s}"
        );
        assert!(s.contains("ip6 daddr != @windows return"), "{s}");
        let o = open_script(
            "t",
            &cfg(&["192.0.2.195"]),
            &vips[1..],
            Duration::from_secs(5),
        );
        assert_eq!(
            o,
            "add element ip t windows { 192.0.2.240 timeout 5000ms }\n\
             delete element ip t windows { 192.0.2.240 }\n\
             add element ip t windows { 192.0.2.240 timeout 5000ms }\n"
        );
    }

    /// The kernel takes both families' tables and the window scripts (`nft -c` checks a
    /// transaction against the kernel without committing it; as root, with nftables
    /// installed, as `scripts/test` makes sure).
    #[test]
    fn the_kernel_takes_the_ruleset() {
        let vips: Vec<IpAddr> = vec![
            "2001:db8::80".parse().unwrap(),
            "192.0.2.240".parse().unwrap(),
        ];
        let c = cfg(&["192.0.2.195", "192.0.2.196", "2001:db8::2"]);
        let mut script = ruleset("ringlb_unit", &c, &vips);
        script += &open_script("ringlb_unit", &c, &vips, Duration::from_millis(2500));
        let mut child = Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft (package nftables; scripts/test installs it)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn table_names_are_nft_identifiers() {
        assert_eq!(table_name("ringlb-vip"), "ringlb_vip");
        assert_eq!(table_name("any.cast0"), "any_cast0");
    }
}
