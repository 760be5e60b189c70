//! A network namespace a test makes for itself (`rtest-PID-N`): veth pairs with lab
//! addresses (192.0.2.0/24, no route out), code and programs run inside it, and its
//! deletion on drop, even when the test fails. Root only (`Netns::skip_reason`).

use std::fs::File;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread;

use super::UNIQUE;

/// A namespace of this test's own; its processes are killed and it is deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Why namespaces cannot be made here, if they cannot.
    pub fn skip_reason() -> Option<String> {
        // SAFETY: plain syscall without arguments.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not root (the test creates a network namespace)".into());
        }
        let netns = Command::new("ip").args(["netns", "list"]).output();
        if !netns.is_ok_and(|o| o.status.success()) {
            return Some("`ip netns` is not available".into());
        }
        None
    }

    /// A new namespace with its loopback up.
    pub fn create() -> Netns {
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let name = format!("rtest-{}-{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS` (split on whitespace); panics with its stderr if it fails.
    pub fn ip(&self, args: &str) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args.split_whitespace());
        ip(&all);
    }

    /// A veth pair `a`–`b`, both ends in this namespace and up, with the addresses given
    /// (`192.0.2.1/24`).
    pub fn veth(&self, a: &str, a_addr: &str, b: &str, b_addr: &str) {
        self.ip(&format!("link add {a} type veth peer name {b}"));
        self.ip(&format!("addr add {a_addr} dev {a}"));
        self.ip(&format!("addr add {b_addr} dev {b}"));
        self.ip(&format!("link set {a} up"));
        self.ip(&format!("link set {b} up"));
    }

    /// A veth pair `a`–`b` without addresses, both ends up (a link to track).
    pub fn link_pair(&self, a: &str, b: &str) {
        self.ip(&format!("link add {a} type veth peer name {b}"));
        self.ip(&format!("link set {a} up"));
        self.ip(&format!("link set {b} up"));
    }

    /// The pids of the processes in the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The addresses of `dev`, as `ip -o addr show` lists them.
    pub fn addrs(&self, dev: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-o", "addr", "show", "dev", dev])
            .output()
            .expect("run ip addr show");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `program` to be run inside the namespace (by `ip netns exec`, which execs in place
    /// and mounts the namespace's own /sys).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program])
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `f` on a thread that has entered the namespace: the sockets it opens are the
    /// namespace's, and stay so wherever they are used afterwards.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // What still runs inside is this test's (ringlb, a notify command it started).
        for pid in self.pids() {
            // SAFETY: plain syscall; the pid is a process in this test's namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
