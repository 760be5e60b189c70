//! Real peers for the PROXY protocol and SNI tests: nginx (plain or TLS, with or without
//! `proxy_protocol`), HAProxy in TCP mode, self-signed certificates from the openssl CLI,
//! curl and headless Chromium as clients, a relay that splits the client's first bytes into
//! small segments, and PROXY v1/v2 headers and TLS ClientHellos built and parsed by hand.
//!
//! Every process is killed on drop, every wait is bounded, everything listens on loopback.

mod client_hello;
mod clients;
mod haproxy;
mod nginx;
mod proxy_header;
mod relay;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{listening_inodes, wait_for};

pub use client_hello::*;
pub use clients::*;
pub use haproxy::*;
pub use nginx::*;
pub use proxy_header::*;
pub use relay::*;

/// How long a peer process may take to listen.
const PEER_READY: Duration = Duration::from_secs(10);

/// Whether `program` is on the PATH (or, for sbin tools, in /usr/sbin).
pub fn have(program: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(program).exists())
}

/// Panics unless `program` is installed: scripts/test installs every peer these tests use.
pub fn require(program: &str, package: &str) {
    assert!(
        have(program),
        "{program} is not installed (apt-get install {package}; scripts/test installs it)"
    );
}

/// Runs `cmd` to completion with piped output, killing it after `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    collect_bounded(&mut child, timeout, &format!("{cmd:?}"))
}

/// Reads a spawned child's stdout and stderr (both piped) until it exits, killing it after
/// `timeout`.
pub fn collect_bounded(child: &mut Child, timeout: Duration, what: &str) -> Output {
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_for(timeout, || child.try_wait().expect("try_wait"));
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {timeout:?}");
    });
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Waits until something listens on TCP `port`, failing early if `child` exits.
fn wait_listening(child: &mut Child, port: u16, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + PEER_READY;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what} exited with {status} before listening:\n{}", log());
        }
        if listening(port) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not listening on {port} after {PEER_READY:?}:\n{}",
            log()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a TCP socket listens on `port`. Asks the kernel through `ss` (a filtered
/// sock_diag dump of listeners only) when it is there: /proc/net/tcp lists every socket, and
/// on a machine with a hundred thousand of them one read takes longer than nginx to start.
fn listening(port: u16) -> bool {
    let ss = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match ss {
        Ok(out) if out.status.success() => !out.stdout.is_empty(),
        _ => !listening_inodes(port).is_empty(),
    }
}
