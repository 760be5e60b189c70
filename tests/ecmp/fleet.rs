//! The scale-out lab as the test and the benchmark hold it: `scripts/lab up ecmp` (torn down
//! on drop, even when a test fails), the three ringlb balancers as child processes, and the
//! router's view: which balancers its route to the VIP goes through.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::nodes::Node;

pub const ROUTER_NS: &str = "ecmp-router";

/// Balancer `lb` (1 to 3): its address on the router's segment.
pub fn balancer_addr(lb: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 193 + lb)
}

/// Which balancer (1 to 3) an address is.
pub fn balancer_of(addr: Ipv4Addr) -> Option<u8> {
    (1..=3).find(|&lb| balancer_addr(lb) == addr)
}

/// Balancer `lb` (1 to 3): its IPv6 address on the router's segment.
pub fn balancer_addr6(lb: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xed, 0, 0, 0, 0, 0x193 + u16::from(lb))
}

/// Which balancer (1 to 3) an address of either family is.
fn balancer_of_ip(addr: IpAddr) -> Option<u8> {
    match addr {
        IpAddr::V4(v4) => balancer_of(v4),
        IpAddr::V6(v6) => (1..=3).find(|&lb| balancer_addr6(lb) == v6),
    }
}

/// Why the lab cannot run here, if it cannot (not root). Missing programs are failures:
/// scripts/test installs them.
pub fn skip_reason() -> Option<String> {
    // SAFETY: plain syscall without arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the lab creates network namespaces)".into());
    }
    None
}

/// A scratch directory for logs and edited configs.
pub fn work_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringlb-ecmp-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create work dir");
    dir
}

/// conf/ecmp-lb`lb`.json.
pub fn config(lb: u8) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("conf/ecmp-lb{lb}.json"))
}

/// conf/ecmp-lb`lb`.json without its `announce.handoff`, written to `dir`.
pub fn config_without_handoff(lb: u8, dir: &Path) -> PathBuf {
    let text = fs::read_to_string(config(lb)).expect("read conf/ecmp-lbN.json");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("conf/ecmp-lbN.json");
    json["announce"]
        .as_object_mut()
        .expect("an announce section")
        .remove("handoff")
        .expect("a handoff section");
    let path = dir.join(format!("ecmp-lb{lb}-no-handoff.json"));
    fs::write(&path, json.to_string()).expect("write config");
    path
}

/// ringlb in ecmp-lb`lb` on `config`, with the test fault switches on.
pub fn ringlb(lb: u8, config: &Path, dir: &Path, tag: &str) -> Node {
    let bin = env!("CARGO_BIN_EXE_ringlb");
    let config = config.to_str().expect("utf-8 path");
    Node::spawn(
        &format!("ringlb-lb{lb}"),
        &format!("ecmp-lb{lb}"),
        &[bin, "-c", config],
        &[("RINGLB_TEST_FAULTS", "1")],
        &dir.join(format!("lb{lb}-{tag}.log")),
    )
}

/// `ringlb ctl --json show announce` on balancer `lb` (its control socket, from
/// conf/ecmp-lbN.json).
pub fn announce_status(lb: u8) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .args(["ctl", "--json", "--socket"])
        .arg(format!("/run/ringlb-ecmp/lb{lb}.sock"))
        .args(["show", "announce"])
        .output()
        .expect("run ringlb ctl");
    assert!(
        out.status.success(),
        "ringlb ctl show announce on lb{lb}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from ctl")
}

/// The balancers (1 to 3) the router's route to the VIP goes through now.
pub fn next_hops() -> Vec<u8> {
    hops_of(&["-4", "route", "show", "192.0.2.240/32"])
}

/// The balancers (1 to 3) the router's route to the IPv6 VIP goes through now.
pub fn next_hops6() -> Vec<u8> {
    hops_of(&["-6", "route", "show", "2001:db8:ee::240/128"])
}

/// Waits until the router's next hops to the IPv6 VIP are exactly `want`.
pub fn wait_next_hops6(want: &[u8], limit: Duration) -> Result<Duration, Vec<u8>> {
    wait_hops(next_hops6, want, limit)
}

fn hops_of(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ip")
        .args(["-n", ROUTER_NS])
        .args(args)
        .output()
        .expect("ip route show");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut hops: Vec<u8> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .filter_map(|w| w[1].parse().ok().and_then(balancer_of_ip))
        .collect();
    // A second route (the bench's resilient group above BIRD's) names balancers again.
    hops.sort_unstable();
    hops.dedup();
    hops
}

/// Waits until the router's next hops are exactly `want`; how long it took, or what they
/// were at the limit.
pub fn wait_next_hops(want: &[u8], limit: Duration) -> Result<Duration, Vec<u8>> {
    wait_hops(next_hops, want, limit)
}

fn wait_hops(read: fn() -> Vec<u8>, want: &[u8], limit: Duration) -> Result<Duration, Vec<u8>> {
    let start = Instant::now();
    loop {
        let hops = read();
        if hops == want {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(hops);
        }
        thread::sleep(Duration::from_millis(2));
    }
}
