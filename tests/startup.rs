//! Start-up: every bind of a frontend listens, IPv4 and IPv6 alike, with its log line; the
//! `--workers` flag overrides the file.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;

use common::*;

fn echo_through(addr: SocketAddr, msg: &[u8]) -> SocketAddr {
    let mut c = connect(addr);
    c.write_all(msg).expect("write");
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).expect("read echo");
    assert_eq!(back, msg, "echo through {addr} differs");
    c.local_addr().unwrap()
}

/// One frontend bound on 127.0.0.1 and [::1], forwarding to a server on [::1].
#[test]
fn ipv4_and_ipv6_binds() {
    let echo6 = Backend::echo_at("[::1]:0");
    let port = free_port();
    let cfg = format!(
        r#"{{
  "workers": 2,
  "frontends": [
    {{ "name": "dual", "bind": ["127.0.0.1:{port}", "[::1]:{port}"], "backend": "be", "log": true }}
  ],
  "backends": [ {{ "name": "be", "servers": {} }} ]
}}"#,
        servers(&[echo6.addr()])
    );
    let lb = Ringlb::start(&cfg);
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    for addr in [v4, v6] {
        let want = format!("ringlb: listening on {addr} (frontend dual, 2 workers)");
        assert!(
            lb.wait_for_line(LOG_TIMEOUT, |l| l == want).is_some(),
            "no line {want:?}; log:\n{}",
            lb.log()
        );
        let local = echo_through(addr, format!("via {addr}").as_bytes());
        let line = lb.conn_line(local);
        assert_eq!(line.field("frontend"), "dual", "{}", line.line);
        assert_eq!(line.field("server"), "be/s1", "{}", line.line);
    }
}

/// The worker= field of 60 connections' log lines, for a file saying `file_workers` and
/// the command line saying `--workers flag`.
fn workers_seen(file_workers: u32, flag: &str) -> BTreeSet<String> {
    let echo = Backend::echo();
    let port = free_port();
    let cfg = config(file_workers, port, "", "", &servers(&[echo.addr()]));
    let lb = Ringlb::start_with_args(&cfg, &["--workers", flag]);
    let clients: BTreeSet<String> = (0..60)
        .map(|i| echo_through(frontend(port), format!("conn {i}").as_bytes()).to_string())
        .collect();
    // Log lines are written in batches: wait for all of them at once.
    let lines = wait_for(LOG_TIMEOUT, || {
        let lines = lb.conn_lines();
        (lines.len() >= clients.len()).then_some(lines)
    })
    .unwrap_or_else(|| panic!("not every connection was logged; log:\n{}", lb.log()));
    lines
        .iter()
        .filter(|l| clients.contains(l.field("client")))
        .map(|l| l.field("worker").to_owned())
        .collect()
}

/// SO_REUSEPORT spreads 60 connections over every worker (missing one of three has odds
/// near 1e-10), so the set of worker ids shows how many workers run.
#[test]
fn workers_flag_overrides_config() {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        workers_seen(1, "3"),
        ids(&["0", "1", "2"]),
        "--workers 3 over \"workers\": 1"
    );
    assert_eq!(
        workers_seen(3, "1"),
        ids(&["0"]),
        "--workers 1 over \"workers\": 3"
    );
}
