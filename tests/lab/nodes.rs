//! What the lab tests run inside the namespaces that `scripts/lab` builds: the lab itself as
//! a guard (torn down on drop, even when a test fails), ringlb, keepalived and HAProxy as
//! child processes (killed on drop), and who holds the VIP.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const VIP: &str = "192.0.2.10";
pub const LAB_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab");

/// Why the lab cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: plain syscall without arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the lab creates network namespaces)".into());
    }
    let netns = Command::new("ip").args(["netns", "list"]).output();
    if !netns.is_ok_and(|o| o.status.success()) {
        return Some("`ip netns` is not available".into());
    }
    if !have("nginx") {
        return Some("nginx is not installed (apt-get install nginx-light)".into());
    }
    None
}

/// True if `program` is on the PATH (or in /usr/sbin).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("PATH=$PATH:/usr/sbin command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A lab, held for one test: an exclusive lock (one lab of a topology per machine),
/// `scripts/lab up [TOPOLOGY]`, and `scripts/lab down [TOPOLOGY]` on drop.
pub struct Lab {
    _lock: File,
    topology: Option<&'static str>,
}

impl Lab {
    /// The VRRP lab.
    pub fn up() -> Lab {
        Lab::up_topology(None)
    }

    /// The lab of `topology` (`Some("ecmp")`: the scale-out lab), or the VRRP lab.
    pub fn up_topology(topology: Option<&'static str>) -> Lab {
        let path = format!("/run/ringlb-{}.lock", topology.unwrap_or("lab"));
        let lock = File::create(&path).unwrap_or_else(|e| panic!("create {path}: {e}"));
        // SAFETY: plain syscall on a descriptor we hold; blocks until the other lab is gone.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let lab = Lab {
            _lock: lock,
            topology,
        };
        lab.script("up");
        lab
    }

    fn script(&self, verb: &str) {
        let out = Command::new("timeout")
            .args(["60", LAB_SCRIPT, verb])
            .args(self.topology)
            .output()
            .expect("run scripts/lab");
        assert!(
            out.status.success() || thread::panicking(),
            "scripts/lab {verb} {}: {}\n{}{}",
            self.topology.unwrap_or(""),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.script("down");
    }
}

pub const VIP6: &str = "2001:db8::10";

/// Which balancers (1, 2) hold the IPv4 VIP on their lab interface.
pub fn vip_holders() -> Vec<u8> {
    holders(VIP)
}

/// Which balancers (1, 2) hold `vip` (IPv4 or IPv6) on their lab interface.
pub fn holders(vip: &str) -> Vec<u8> {
    [1u8, 2]
        .into_iter()
        .filter(|&lb| {
            let out = Command::new("ip")
                .args(["-n", &format!("lab-lb{lb}"), "-o", "addr", "show"])
                .args(["dev", &format!("veth-lb{lb}")])
                .output()
                .expect("ip addr show");
            String::from_utf8_lossy(&out.stdout).contains(&format!(" {vip}/"))
        })
        .collect()
}

/// Waits until `want` holds the IPv4 VIP (and, with `alone`, nobody else does); returns
/// how long that took, or an error naming who held it.
pub fn wait_vip(want: u8, alone: bool, limit: Duration) -> Result<Duration, String> {
    wait_holder(VIP, want, alone, limit)
}

/// [`wait_vip`] for any VIP.
pub fn wait_holder(vip: &str, want: u8, alone: bool, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let holders = holders(vip);
        if holders.contains(&want) && (!alone || holders.len() == 1) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "after {limit:?}, lb{want} should hold {vip}{}; holders: {holders:?}",
                if alone { " alone" } else { "" }
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The whole box lab-lb`lb` crashes: every process in it is frozen first (so none sees
/// another die: keepalived's VRRP child would get SIGTERM from its parent's death and leave
/// gracefully), then killed.
pub fn crash_namespace(lb: u8) {
    let out = Command::new("ip")
        .args(["netns", "pids", &format!("lab-lb{lb}")])
        .output()
        .expect("ip netns pids");
    let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for signal in [libc::SIGSTOP, libc::SIGKILL] {
        for &pid in &pids {
            // SAFETY: plain syscall; the pid is a process in a lab namespace.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

/// Sets a sysctl inside lab-lb`lb` (namespace-local, e.g. `net.ipv4.ip_nonlocal_bind`).
pub fn sysctl(lb: u8, key_value: &str) {
    let ok = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("lab-lb{lb}"),
            "sysctl",
            "-qw",
            key_value,
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "sysctl {key_value} in lab-lb{lb}");
}

/// A process started in a lab namespace with `ip netns exec` (which execs in place, so the
/// child's pid is the program's). Killed on drop.
pub struct Node {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Node {
    pub fn spawn(name: &str, netns: &str, argv: &[&str], env: &[(&str, &str)], log: &Path) -> Node {
        let out = File::create(log).expect("create log");
        let err = out.try_clone().expect("dup log");
        let child = Command::new("ip")
            .args(["netns", "exec", netns])
            .args(argv)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Node {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// Sends `signal` to the process. SIGSTOP and SIGCONT, which no process can pass on,
    /// go to its children too (ringlb with VRRP is a supervisor and its serving child;
    /// keepalived a parent and its VRRP child): the whole balancer freezes.
    pub fn signal(&self, signal: i32) {
        let Some(c) = &self.child else {
            return;
        };
        let pid = c.id() as i32;
        let mut pids = vec![pid];
        if signal == libc::SIGSTOP || signal == libc::SIGCONT {
            pids.extend(children(pid));
        }
        for pid in pids {
            // SAFETY: plain syscall on our own child or its children.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// The process's children (for ringlb with VRRP: the serving process).
    pub fn children(&self) -> Vec<i32> {
        self.child
            .as_ref()
            .map(|c| children(c.id() as i32))
            .unwrap_or_default()
    }

    /// Sends `signal` and waits (bounded) for the exit; SIGKILL if it does not come.
    pub fn stop(&mut self, signal: i32, limit: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        // SAFETY: plain syscall on our own child.
        unsafe { libc::kill(c.id() as i32, signal) };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// The child has been reaped after something else killed it.
    pub fn reap(&mut self, limit: Duration) {
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM, Duration::from_secs(3));
    }
}

/// The children of `pid`, from /proc.
fn children(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// ringlb in lab-lb`lb` on `config`, with the test fault switch on.
pub fn ringlb(lb: u8, config: &Path, dir: &Path, tag: &str) -> Node {
    let bin = env!("CARGO_BIN_EXE_ringlb");
    let config = config.to_str().expect("utf-8 path");
    Node::spawn(
        &format!("ringlb lb{lb}"),
        &format!("lab-lb{lb}"),
        &[bin, "-c", config],
        &[("RINGLB_TEST_FAULTS", "1")],
        &dir.join(format!("{tag}-ringlb-lb{lb}.log")),
    )
}

/// The lab config of lb`lb` (conf/lab-lbN.json) with VRRP `version`, advert interval and an
/// optional v2 password changed, written to `dir`.
pub fn ringlb_config(
    lb: u8,
    version: u8,
    interval: &str,
    auth_pass: Option<&str>,
    dir: &Path,
) -> PathBuf {
    let name = format!("lab-lb{lb}-v{version}-{interval}.json");
    edited_config(lb, &name, dir, |vi| {
        vi["version"] = version.into();
        vi["advert_interval"] = interval.into();
        if let Some(pass) = auth_pass {
            vi["auth_pass"] = pass.into();
        }
    })
}

/// The lab config of lb`lb` with its VRRP instance edited by `edit`, written to `dir/name`.
pub fn edited_config(
    lb: u8,
    name: &str,
    dir: &Path,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    edited_document(lb, name, dir, |json| {
        edit(&mut json["vrrp"]["instances"][0])
    })
}

/// `track.worker_stall` in the configs the scenarios run, except the stalled-worker ones:
/// workers starved of CPU by other work on a small CI machine must not move the VIP in the
/// middle of a scenario about something else.
pub const RELAXED_WORKER_STALL: &str = "1s";

/// The lab config of lb`lb` as the scenarios run it: `conf/lab-lbN.json` with
/// [`RELAXED_WORKER_STALL`].
pub fn relaxed_config(lb: u8, dir: &Path) -> PathBuf {
    edited_document(lb, &format!("lab-lb{lb}-relaxed.json"), dir, |_| {})
}

/// The lab config of lb`lb` (with [`RELAXED_WORKER_STALL`]) edited as a whole by `edit`,
/// written to `dir/name`.
pub fn edited_document(
    lb: u8,
    name: &str,
    dir: &Path,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/conf");
    let text = fs::read_to_string(format!("{base}/lab-lb{lb}.json")).expect("read lab config");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("parse lab config");
    for vi in json["vrrp"]["instances"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        vi["track"]["worker_stall"] = RELAXED_WORKER_STALL.into();
    }
    edit(&mut json);
    let path = dir.join(name);
    fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).expect("write config");
    path
}

/// keepalived (Debian 2.2.7) as the VRRP node in lab-lb`lb`, with the same VRID, VIP and
/// timers as the ringlb lab configs; `extra` goes into the `vrrp_instance` block as is
/// (see [`keepalived_auth`], [`keepalived_unicast`]).
pub fn keepalived(
    lb: u8,
    priority: u8,
    version: u8,
    advert_int: &str,
    extra: &str,
    dir: &Path,
    tag: &str,
) -> Node {
    let conf = format!(
        "global_defs {{\n    router_id lb{lb}\n    vrrp_version {version}\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface veth-lb{lb}\n    \
         virtual_router_id 51\n    priority {priority}\n    advert_int {advert_int}\n{extra}    \
         virtual_ipaddress {{\n        {VIP}/24 dev veth-lb{lb}\n    }}\n}}\n"
    );
    spawn_keepalived(lb, &conf, dir, tag)
}

/// keepalived for an IPv6 virtual router: VRID 52, VIP 2001:db8::10/64, VRRPv3 at 100 ms.
pub fn keepalived_ipv6(lb: u8, priority: u8, dir: &Path, tag: &str) -> Node {
    let conf = format!(
        "global_defs {{\n    router_id lb{lb}\n    vrrp_version 3\n}}\n\
         vrrp_instance VI_6 {{\n    state BACKUP\n    interface veth-lb{lb}\n    \
         virtual_router_id 52\n    priority {priority}\n    advert_int 0.1\n    \
         virtual_ipaddress {{\n        {VIP6}/64 dev veth-lb{lb}\n    }}\n}}\n"
    );
    spawn_keepalived(lb, &conf, dir, &format!("{tag}-v6"))
}

fn spawn_keepalived(lb: u8, conf: &str, dir: &Path, tag: &str) -> Node {
    let base = dir.join(format!("{tag}-keepalived-lb{lb}"));
    let conf_path = base.with_extension("conf");
    fs::write(&conf_path, conf).expect("write keepalived.conf");
    let pid = base.with_extension("pid");
    let vrrp_pid = base.with_extension("vrrp.pid");
    Node::spawn(
        &format!("keepalived lb{lb}"),
        &format!("lab-lb{lb}"),
        &[
            "keepalived",
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--vrrp",
            "-f",
            conf_path.to_str().unwrap(),
            "-p",
            pid.to_str().unwrap(),
            "-r",
            vrrp_pid.to_str().unwrap(),
        ],
        &[],
        &base.with_extension("log"),
    )
}

/// keepalived's `authentication` block for a VRRPv2 password, or nothing.
pub fn keepalived_auth(pass: Option<&str>) -> String {
    pass.map_or(String::new(), |p| {
        format!("    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}\n")
    })
}

/// keepalived's unicast settings: adverts from `src` to `peer` only.
pub fn keepalived_unicast(src: &str, peer: &str) -> String {
    format!("    unicast_src_ip {src}\n    unicast_peer {{\n        {peer}\n    }}\n")
}

/// HAProxy 2.6 in lab-lb`lb`, `mode tcp` on the VIP in front of web1/web2 (the seeds'
/// setup); the namespace needs `net.ipv4.ip_nonlocal_bind=1` to bind the VIP as backup.
/// The admin socket of the HAProxy [`haproxy`] starts.
pub fn haproxy_socket(dir: &Path, lb: u8, tag: &str) -> PathBuf {
    dir.join(format!("{tag}-haproxy-lb{lb}.sock"))
}

/// Freezes the HAProxy thread that serves its admin socket for `how_long` (`debug dev
/// delay`, an expert-mode command: that thread sleeps, the other runs on). Returns when the
/// thread runs again.
pub fn haproxy_freeze_thread(socket: &Path, how_long: Duration) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    s.set_read_timeout(Some(how_long + Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    writeln!(
        s,
        "expert-mode on; debug dev delay {}",
        how_long.as_millis()
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    if started.elapsed() + Duration::from_millis(100) < how_long {
        return Err(format!(
            "HAProxy answered at once, no thread was frozen: {answer:?}"
        ));
    }
    Ok(())
}

pub fn haproxy(lb: u8, dir: &Path, tag: &str) -> Node {
    let base = dir.join(format!("{tag}-haproxy-lb{lb}"));
    let conf = format!(
        "global\n    maxconn 4096\n    pidfile {}\n    nbthread 2\n    \
         stats socket {} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    \
         timeout server 30s\n\
         frontend web\n    bind {VIP}:80\n    default_backend webfarm\n\
         backend webfarm\n    balance roundrobin\n    option httpchk HEAD /check.txt\n    \
         server web1 192.0.2.21:80 check inter 2s rise 2 fall 3\n    \
         server web2 192.0.2.22:80 check inter 2s rise 2 fall 3\n",
        base.with_extension("pid").display(),
        haproxy_socket(dir, lb, tag).display()
    );
    let conf_path = base.with_extension("cfg");
    fs::write(&conf_path, conf).expect("write haproxy.cfg");
    Node::spawn(
        &format!("haproxy lb{lb}"),
        &format!("lab-lb{lb}"),
        &["haproxy", "-db", "-f", conf_path.to_str().unwrap()],
        &[],
        &base.with_extension("log"),
    )
}

/// The results of `launched` attempts, each on its own thread sending one result on `rx`:
/// every one that arrives within `limit` (each attempt ends within its own timeouts; the
/// limit only bounds the wait).
pub fn gather<T>(rx: &std::sync::mpsc::Receiver<T>, launched: usize, limit: Duration) -> Vec<T> {
    let mut out = Vec::with_capacity(launched);
    let deadline = Instant::now() + limit;
    while out.len() < launched {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
    }
    out
}
