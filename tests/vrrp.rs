//! VRRP on a box of the test's own: a network namespace (`rtest-...`) with a veth pair,
//! lab addresses (192.0.2.0/24) and no route out, where a test reads what ringlb sends
//! from the other end of the pair. `ringlb release` takes a dead ringlb's VIP off and
//! sends priority 0, and does nothing where no VIP is held; a tracked link down shows
//! FAULT on the stats page, its JSON, `/metrics` and `ringlb ctl show vrrp`; a notify
//! command that outlives `vrrp.notify_timeout` is killed and reaped.
//!
//! Root only: skipped with a message otherwise. (The two-box scenarios, against keepalived
//! too, are the lab's: `tests/lab.rs`.)

pub mod common;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

const VIP: &str = "192.0.2.10";
const VRID: u8 = 51;
/// The instance's interface `va` (its own address, the adverts' source) and the other end
/// of the pair, `vb`, where the test listens.
const OWN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// A namespace with `va` (192.0.2.1) and `vb` (192.0.2.2), or why there cannot be one.
fn namespace(test: &str) -> Option<Netns> {
    if let Some(why) = Netns::skip_reason() {
        eprintln!("{test}: skipped: {why}");
        return None;
    }
    let ns = Netns::create();
    ns.veth("va", "192.0.2.1/24", "vb", "192.0.2.2/24");
    Some(ns)
}

/// A config with one frontend and instance VI_1 on `va` (priority 150, 100 ms adverts, VIP
/// 192.0.2.10/24); `vrrp_extra` and `instance_extra` are further JSON members, each starting
/// with a comma, or empty.
fn vrrp_config(port: u16, top_extra: &str, vrrp_extra: &str, instance_extra: &str) -> String {
    format!(
        r#"{{ "workers": 1{top_extra},
  "frontends": [ {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be" }} ],
  "backends": [ {{ "name": "be", "servers": [ {{ "name": "s1", "addr": "127.0.0.1:9" }} ] }} ],
  "vrrp": {{ "instances": [ {{ "name": "VI_1", "interface": "va", "vrid": {VRID},
      "priority": 150, "advert_interval": "100ms", "vips": ["{VIP}/24"]{instance_extra} }} ]{vrrp_extra} }} }}"#
    )
}

fn holds_vip(ns: &Netns) -> bool {
    ns.addrs("va").contains(&format!(" {VIP}/24 "))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One VRRPv3 advert as it left the box.
#[derive(Debug, PartialEq, Eq)]
struct Advert {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    version: u8,
    vrid: u8,
    priority: u8,
    vips: Vec<Ipv4Addr>,
}

impl Advert {
    /// An IPv4 packet, if it carries a VRRP advert (protocol 112).
    fn parse(ip: &[u8]) -> Option<Advert> {
        let ihl = usize::from(ip.first()? & 0x0f) * 4;
        if ip.len() < ihl + 8 || ip[9] != 112 {
            return None;
        }
        let vrrp = &ip[ihl..];
        let count = usize::from(vrrp[3]);
        let vips = vrrp
            .get(8..8 + 4 * count)?
            .chunks(4)
            .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
            .collect();
        Some(Advert {
            src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            ttl: ip[8],
            version: vrrp[0] >> 4,
            vrid: vrrp[1],
            priority: vrrp[2],
            vips,
        })
    }
}

/// Every IPv4 packet arriving on one interface of a namespace (an AF_PACKET socket, no
/// tcpdump needed), of which the VRRP adverts are kept.
struct Capture {
    fd: OwnedFd,
}

impl Capture {
    fn open(ns: &Netns, dev: &str) -> Capture {
        ns.run(|| {
            let name = std::ffi::CString::new(dev).unwrap();
            // SAFETY: a valid NUL-terminated name.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert_ne!(index, 0, "no interface {dev}");
            let proto = (libc::ETH_P_IP as u16).to_be();
            // SAFETY: plain syscall; the descriptor is owned at once.
            let raw = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                    i32::from(proto),
                )
            };
            assert!(
                raw >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: `raw` is a descriptor just opened and owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = proto;
            addr.sll_ifindex = index as i32;
            // SAFETY: `addr` is a valid sockaddr_ll of the length given.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(rc, 0, "bind to {dev}: {}", std::io::Error::last_os_error());
            Capture { fd }
        })
    }

    /// The next advert to arrive within `limit`, if any.
    fn next_advert(&self, limit: Duration) -> Option<Advert> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().max(1) as i32;
            // SAFETY: one pollfd we own.
            if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
                continue;
            }
            // SAFETY: `buf` is writable for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if let Some(advert) = usize::try_from(n)
                .ok()
                .and_then(|n| Advert::parse(&buf[..n]))
            {
                return Some(advert);
            }
        }
    }
}

fn release(ns: &Netns, config: &Path) -> Output {
    ns.command(env!("CARGO_BIN_EXE_ringlb"))
        .arg("release")
        .arg("-c")
        .arg(config)
        .output()
        .expect("run ringlb release")
}

#[test]
fn release_takes_a_dead_ringlbs_vip_off_and_sends_priority_0() {
    let Some(ns) = namespace("release") else {
        return;
    };
    let dir = temp_dir("release");
    let config = dir.join("ringlb.json");
    fs::write(&config, vrrp_config(free_port(), "", "", "")).unwrap();
    let capture = Capture::open(&ns, "vb");

    // The VIP as a ringlb killed whole (SIGKILL to the unit's every process) leaves it.
    ns.ip(&format!("addr add {VIP}/24 dev va"));
    let out = release(&ns, &config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("vrrp VI_1: removed {VIP}/24 from va"))
            && said.contains("vrrp VI_1: sent priority 0 (1 adverts)"),
        "{said}"
    );
    assert!(
        !holds_vip(&ns),
        "the VIP is still on va:\n{}",
        ns.addrs("va")
    );
    let advert = capture
        .next_advert(Duration::from_secs(2))
        .expect("no VRRP advert on the wire after ringlb release");
    assert_eq!(
        advert,
        Advert {
            src: OWN,
            dst: Ipv4Addr::new(224, 0, 0, 18),
            ttl: 255,
            version: 3,
            vrid: VRID,
            priority: 0,
            vips: vec![VIP.parse().unwrap()],
        }
    );

    // This box holds no VIP (the backup's ExecStopPost): nothing to do, nothing sent.
    let out = release(&ns, &config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "release without a VIP did something");
    let sent = capture.next_advert(Duration::from_millis(500));
    assert_eq!(sent, None, "an advert sent by a box that held no VIP");
}

/// The instance's state as `ringlb ctl --json show vrrp` gives it.
fn vrrp_state(socket: &Path) -> Option<String> {
    let out = ctl(socket, "--json show vrrp");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    rows[0]["state"].as_str().map(str::to_owned)
}

fn wait_state(lb: &Ringlb, socket: &Path, want: &str) {
    wait_for(Duration::from_secs(5), || {
        (vrrp_state(socket).as_deref() == Some(want)).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "VI_1 not {want} within 5 s (now {:?}); log:\n{}",
            vrrp_state(socket),
            lb.log()
        )
    });
}

/// The body of an HTTP answer.
fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn state_sample(state: &str, value: u8) -> String {
    format!("ringlb_vrrp_state{{vrrp_instance=\"VI_1\",vrid=\"{VRID}\",state=\"{state}\"}} {value}")
}

#[test]
fn a_tracked_link_down_shows_fault_on_the_stats_page_metrics_and_ctl() {
    let Some(ns) = namespace("fault") else {
        return;
    };
    ns.link_pair("ta", "tb");
    let dir = temp_dir("fault");
    let socket = dir.join("ringlb.sock");
    let stats = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = vrrp_config(
        free_port(),
        &format!(
            r#", "control": {{ "socket": "{}" }}, "stats": {{ "bind": "{stats}" }}"#,
            socket.display()
        ),
        "",
        r#", "track_interfaces": [ { "name": "ta" } ]"#,
    );
    let lb = Ringlb::launch(
        &config,
        &Launch {
            netns: Some(ns.name()),
            ..Launch::default()
        },
    );
    wait_state(&lb, &socket, "MASTER");
    assert!(holds_vip(&ns));

    ns.ip("link set ta down");
    wait_state(&lb, &socket, "FAULT");
    assert!(!holds_vip(&ns), "the VIP stays on va in FAULT");
    let out = ctl(&socket, "show vrrp");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("instance "), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("VI_1 "))
        .unwrap_or_else(|| panic!("no VI_1 row:\n{table}"));
    let cols: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cols[1], "FAULT", "{table}");
    assert_eq!(cols[3], "interface ta down", "{table}");
    let out = ctl(&socket, "--json show vrrp");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON rows");
    assert_eq!(rows[0]["fault"], "interface ta down", "{rows}");

    let (json, html, metrics) = ns.run(|| {
        let get = |path| http_get(stats, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (get("/stats.json"), get("/"), get("/metrics"))
    });
    let report: serde_json::Value = serde_json::from_str(body(&json)).expect("stats JSON");
    let row = &report["vrrp"][0];
    assert_eq!(row["name"], "VI_1", "{report}");
    assert_eq!(row["state"], "FAULT", "{row}");
    assert_eq!(row["fault"], "interface ta down", "{row}");
    assert!(
        html.contains(r#"<td><span class="state FAULT">FAULT</span></td>"#)
            && html.contains("interface ta down"),
        "{html}"
    );
    for (state, value) in [("FAULT", 1), ("MASTER", 0), ("BACKUP", 0), ("INIT", 0)] {
        assert!(
            metrics.contains(&state_sample(state, value)),
            "no {}:\n{metrics}",
            state_sample(state, value)
        );
    }

    // The link back: out of FAULT, master again (alone on the link), and so say the metrics.
    ns.ip("link set ta up");
    wait_state(&lb, &socket, "MASTER");
    let metrics = ns.run(|| http_get(stats, "/metrics").expect("GET /metrics"));
    assert!(metrics.contains(&state_sample("FAULT", 0)), "{metrics}");
    assert!(metrics.contains(&state_sample("MASTER", 1)), "{metrics}");
}

/// The processes whose parent is `pid`, with their state letter (`Z` for a zombie).
fn children_of(pid: i32) -> Vec<(i32, char, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // After the command (which may hold spaces): state, ppid.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if f.next().and_then(|p| p.parse().ok()) == Some(pid) {
            let comm = head.split_once('(').map_or("", |(_, c)| c).to_string();
            out.push((child, state, comm));
        }
    }
    out
}

#[test]
fn a_notify_command_past_its_timeout_is_killed_and_reaped() {
    let Some(ns) = namespace("notify") else {
        return;
    };
    let dir = temp_dir("notify");
    let after = dir.join("after-sleep");
    let config = vrrp_config(
        free_port(),
        "",
        r#", "notify_timeout": "300ms""#,
        &format!(r#", "notify_master": "sleep 2; touch {}""#, after.display()),
    );
    let lb = Ringlb::launch(
        &config,
        &Launch {
            netns: Some(ns.name()),
            ..Launch::default()
        },
    );
    let killed = lb
        .wait_for_line(Duration::from_secs(5), |l| l.contains("vrrp: notify "))
        .unwrap_or_else(|| panic!("no notify line within 5 s; log:\n{}", lb.log()));
    assert!(
        killed.contains(&format!(
            "notify sleep 2; touch {} killed after 300ms",
            after.display()
        )),
        "{killed}"
    );
    // The serving process (the supervisor's child) is left without a child, zombie or not,
    // and nothing of the command runs on in the namespace.
    let serving: Vec<i32> = children_of(lb.pid() as i32).iter().map(|c| c.0).collect();
    assert_eq!(serving.len(), 1, "the supervisor's children: {serving:?}");
    let left = children_of(serving[0]);
    assert!(
        left.is_empty(),
        "children of ringlb after the kill: {left:?}"
    );
    let mut ours = vec![lb.pid() as i32, serving[0]];
    ours.sort_unstable();
    // SIGKILL is sent, not yet delivered, when the line is logged.
    let alone = wait_for(Duration::from_secs(1), || {
        let mut inside = ns.pids();
        inside.sort_unstable();
        (inside == ours).then_some(())
    });
    assert!(
        alone.is_some(),
        "processes in the namespace besides ringlb's two {ours:?}: {:?}",
        ns.pids()
    );
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(
        !after.exists(),
        "the notify command ran on past its timeout"
    );
}
