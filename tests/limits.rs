//! Balancing algorithms and connection limits through the real binary: `source` keeps a
//! client address on its server (and moves only a failed server's clients), `leastconn`
//! counts connections across workers, `random` spreads; server `maxconn` queues and the
//! queue timeout holds; frontend and global `maxconn` leave extra clients in the accept
//! queue until a connection closes.

pub mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;

/// Checks every 100 ms without jitter, for the tests that need servers to change state.
const FAST_HTTP_CHECK: &str = r#", "health_check": { "type": "http", "interval": "100ms",
    "timeout": "200ms", "jitter": 0, "rise": 1, "fall": 2 }"#;

/// How long a connection that must not be served is given to prove it.
const NOT_SERVED: Duration = Duration::from_millis(400);
/// How long a connection that must be served may take once it can be.
const SERVED: Duration = Duration::from_secs(1);

fn server(name: &str, addr: SocketAddr, extra: &str) -> String {
    format!(r#"{{ "name": "{name}", "addr": "{addr}"{extra} }}"#)
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn fetch_from(lb: &Ringlb, ip: IpAddr, addr: SocketAddr) -> String {
    let (local, result) = fetch_name_from(ip, addr);
    result.unwrap_or_else(|e| panic!("client {local}: {e}; log:\n{}", lb.log()))
}

/// The server each of the source addresses `ips` is sent to.
fn source_map(lb: &Ringlb, ips: &[IpAddr], addr: SocketAddr) -> BTreeMap<IpAddr, String> {
    ips.iter()
        .map(|&ip| (ip, fetch_from(lb, ip, addr)))
        .collect()
}

/// Waits until `conn`'s log line is written: by then the balancer has released it.
fn wait_released(lb: &Ringlb, local: SocketAddr) {
    lb.conn_line(local);
}

/// Asserts that a held connection gets no answer within `NOT_SERVED`.
fn assert_not_served(lb: &Ringlb, conn: &mut HeldConn, what: &str) {
    match conn.read_name(NOT_SERVED) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!(
            "{what}: expected no answer yet, got {other:?}; log:\n{}",
            lb.log()
        ),
    }
}

/// `balance: source`: every connection from one address lands on one server, each of 40
/// loopback addresses keeps its server, the addresses spread over the servers; when a
/// server goes DOWN only its own clients move, and when it comes back they return.
#[test]
fn source_keeps_each_client_address_on_its_server() {
    let web = [
        NamedServer::start("s1"),
        NamedServer::start("s2"),
        NamedServer::start("s3"),
    ];
    let port = free_port();
    let backend = format!(r#", "balance": "source"{FAST_HTTP_CHECK}"#);
    let addrs: Vec<_> = web.iter().map(NamedServer::addr).collect();
    let lb = Ringlb::start(&config(2, port, "", &backend, &servers(&addrs)));
    for s in ["be/s1", "be/s2", "be/s3"] {
        lb.wait_health(s, "UP", 1, Duration::from_secs(2));
    }
    let fe = frontend(port);

    let from_localhost: BTreeSet<String> = (0..30).map(|_| must_fetch_name(&lb, fe)).collect();
    assert_eq!(
        from_localhost.len(),
        1,
        "127.0.0.1 went to {from_localhost:?}"
    );

    let ips: Vec<IpAddr> = (2..42).map(loopback).collect();
    let first = source_map(&lb, &ips, fe);
    let second = source_map(&lb, &ips, fe);
    assert_eq!(first, second, "a client address changed servers");
    let mut per_server: BTreeMap<&str, usize> = BTreeMap::new();
    for name in first.values() {
        *per_server.entry(name).or_insert(0) += 1;
    }
    assert_eq!(
        per_server.len(),
        3,
        "40 addresses over 3 servers: {per_server:?}"
    );

    // The server with the most clients fails; only its clients may move.
    let (&gone, _) = per_server.iter().max_by_key(|(_, &n)| n).unwrap();
    let failing = web.iter().find(|w| w.name() == gone).unwrap();
    failing.set_status(503);
    lb.wait_health(&format!("be/{gone}"), "DOWN", 1, Duration::from_secs(2));
    let without = source_map(&lb, &ips, fe);
    for ip in &ips {
        if first[ip] == gone {
            assert_ne!(without[ip], gone, "{ip} still on the DOWN server");
        } else {
            assert_eq!(without[ip], first[ip], "{ip} moved though its server is UP");
        }
    }

    failing.set_status(200);
    lb.wait_health(&format!("be/{gone}"), "UP", 2, Duration::from_secs(2));
    assert_eq!(source_map(&lb, &ips, fe), first, "after {gone} came back");
}

/// `balance: leastconn`, counted across two workers: while one connection is held on a
/// server, every new connection goes to the other one; once it closes, both get traffic.
#[test]
fn leastconn_avoids_the_server_holding_a_connection() {
    let s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    let port = free_port();
    let fe = frontend(port);
    let cfg = config(
        2,
        port,
        "",
        r#", "balance": "leastconn""#,
        &servers(&[s1.addr(), s2.addr()]),
    );
    let lb = Ringlb::start(&cfg);

    let (held, busy) = HeldConn::served(&lb, fe);
    let mut others = BTreeMap::new();
    for _ in 0..8 {
        let (local, result) = fetch_name(fe);
        let name = result.unwrap_or_else(|e| panic!("client {local}: {e}; log:\n{}", lb.log()));
        *others.entry(name).or_insert(0) += 1;
        // The next pick must not see this connection still counted.
        wait_released(&lb, local);
    }
    let idle = if busy == "s1" { "s2" } else { "s1" };
    assert_eq!(
        others,
        BTreeMap::from([(idle.to_owned(), 8)]),
        "with a connection held on {busy}"
    );

    let local = held.local;
    drop(held);
    wait_released(&lb, local);
    let mut after = BTreeSet::new();
    for _ in 0..8 {
        let (local, result) = fetch_name(fe);
        after.insert(result.unwrap_or_else(|e| panic!("client {local}: {e}")));
        wait_released(&lb, local);
    }
    assert_eq!(
        after.len(),
        2,
        "both servers once nothing is held: {after:?}"
    );
}

/// `balance: random` (power of two choices): 300 connections over three servers give each
/// a rough third, in an order that is not a fixed rotation.
#[test]
fn random_spreads_connections() {
    let web = [
        NamedServer::start("s1"),
        NamedServer::start("s2"),
        NamedServer::start("s3"),
    ];
    let port = free_port();
    let addrs: Vec<_> = web.iter().map(NamedServer::addr).collect();
    let cfg = config(1, port, "", r#", "balance": "random""#, &servers(&addrs));
    let lb = Ringlb::start(&cfg);

    let order: Vec<String> = (0..300)
        .map(|_| must_fetch_name(&lb, frontend(port)))
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &order {
        *counts.entry(name).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(
        counts.values().all(|&n| (50..=150).contains(&n)),
        "expected about 100 each: {counts:?}"
    );
    // In a rotation every connection goes where the third before it went.
    let period3 = order.windows(4).filter(|w| w[0] == w[3]).count();
    assert!(
        period3 < 200,
        "looks like a fixed rotation: {period3} of 297 repeat the server three back"
    );
}

/// Server `maxconn: 2`: a third connection waits in the queue, unserved, and gets the
/// server as soon as one of the first two closes; the server never sees more than two.
#[test]
fn server_maxconn_queues_until_a_connection_closes() {
    let s1 = NamedServer::start("s1");
    let port = free_port();
    let fe = frontend(port);
    let list = format!("[{}]", server("s1", s1.addr(), r#", "maxconn": 2"#));
    let cfg = config(2, port, "", r#", "timeouts": { "queue": "5s" }"#, &list);
    let lb = Ringlb::start(&cfg);

    let (first, _) = HeldConn::served(&lb, fe);
    let (_second, _) = HeldConn::served(&lb, fe);
    let mut third = HeldConn::open(fe);
    assert_not_served(
        &lb,
        &mut third,
        "a third connection to a server at maxconn 2",
    );
    assert_eq!(s1.peak_traffic(), 2);

    let closed = Instant::now();
    drop(first);
    let name = third.read_name(SERVED).unwrap_or_else(|e| {
        panic!(
            "queued connection after a slot freed: {e}; log:\n{}",
            lb.log()
        )
    });
    assert_eq!(name, "s1");
    assert!(closed.elapsed() < SERVED);
    assert_eq!(
        s1.peak_traffic(),
        2,
        "the server had more than maxconn at once"
    );
    assert_eq!(s1.traffic(), 3);
}

/// A server at its `maxconn` is skipped while another has room: nothing queues, and the
/// full server never sees more than its limit.
#[test]
fn full_server_is_skipped_for_one_with_room() {
    let s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    let port = free_port();
    let fe = frontend(port);
    let list = format!(
        "[{}, {}]",
        server("s1", s1.addr(), r#", "maxconn": 1"#),
        server("s2", s2.addr(), "")
    );
    let cfg = config(2, port, "", r#", "timeouts": { "queue": "5s" }"#, &list);
    let lb = Ringlb::start(&cfg);

    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(HeldConn::served(&lb, fe));
    }
    let on_s1 = held.iter().filter(|(_, name)| name == "s1").count();
    assert_eq!(
        on_s1,
        1,
        "held connections: {:?}",
        held.iter().map(|h| &h.1).collect::<Vec<_>>()
    );
    assert_eq!((s1.peak_traffic(), s2.peak_traffic()), (1, 5));
}

/// With `timeouts.queue: 300ms` and nothing closing, the queued connection is closed after
/// about 300 ms and logged as end=queue_timeout; the server never sees it.
#[test]
fn queue_timeout_closes_the_waiting_connection() {
    let s1 = NamedServer::start("s1");
    let port = free_port();
    let fe = frontend(port);
    let list = format!("[{}]", server("s1", s1.addr(), r#", "maxconn": 2"#));
    let cfg = config(2, port, "", r#", "timeouts": { "queue": "300ms" }"#, &list);
    let lb = Ringlb::start(&cfg);

    let (mut first, _) = HeldConn::served(&lb, fe);
    let (_second, _) = HeldConn::served(&lb, fe);
    let queued_at = Instant::now();
    let third = HeldConn::open(fe);
    let local = third.local;
    if let Err(e) = closed_by_peer(Ok(third.stream)) {
        panic!("queued connection: {e}; log:\n{}", lb.log());
    }
    assert_between(
        "the queue timeout",
        queued_at.elapsed(),
        Duration::from_millis(280),
        Duration::from_millis(800),
    );
    let line = lb.conn_line(local);
    assert_eq!(line.end(), "queue_timeout", "{}", line.line);
    assert_eq!(line.field("server"), "be/-", "{}", line.line);
    assert_eq!(s1.traffic(), 2, "the server saw the timed-out connection");
    // The two connections holding the server are untouched.
    assert_not_served(&lb, &mut first, "a held connection after the queue timeout");
}

/// Waits for a held connection to be served and returns the server's name.
fn must_be_served(lb: &Ringlb, conn: &mut HeldConn, what: &str) -> String {
    conn.read_name(SERVED)
        .unwrap_or_else(|e| panic!("{what}: {e}; log:\n{}", lb.log()))
}

/// Frontend `maxconn: 2`: the kernel completes a third client's handshake (it waits in the
/// accept queue) but nothing serves it until one of the first two closes.
#[test]
fn frontend_maxconn_leaves_extra_clients_waiting() {
    let s1 = NamedServer::start("s1");
    let port = free_port();
    let fe = frontend(port);
    let cfg = config(2, port, r#", "maxconn": 2"#, "", &servers(&[s1.addr()]));
    let lb = Ringlb::start(&cfg);

    let (first, _) = HeldConn::served(&lb, fe);
    let (_second, _) = HeldConn::served(&lb, fe);
    let mut third = HeldConn::open(fe);
    assert_not_served(&lb, &mut third, "a third connection at frontend maxconn 2");
    assert_eq!(s1.peak_traffic(), 2);

    drop(first);
    must_be_served(
        &lb,
        &mut third,
        "the waiting client after a connection closed",
    );
    assert_eq!(
        s1.peak_traffic(),
        2,
        "more than maxconn connections at once"
    );
}

/// Global `maxconn: 2` counts the connections of every frontend: one held on each of two
/// frontends leaves a third client of either waiting until one of them closes.
#[test]
fn global_maxconn_counts_every_frontend() {
    let s1 = NamedServer::start("s1");
    let (port_a, port_b) = (free_port(), free_port());
    let cfg = format!(
        r#"{{
  "workers": 2,
  "maxconn": 2,
  "frontends": [
    {{ "name": "a", "bind": ["127.0.0.1:{port_a}"], "backend": "be" }},
    {{ "name": "b", "bind": ["127.0.0.1:{port_b}"], "backend": "be" }}
  ],
  "backends": [ {{ "name": "be", "servers": {} }} ]
}}"#,
        servers(&[s1.addr()])
    );
    let lb = Ringlb::start(&cfg);

    let (_on_a, _) = HeldConn::served(&lb, frontend(port_a));
    let (on_b, _) = HeldConn::served(&lb, frontend(port_b));
    let mut third = HeldConn::open(frontend(port_a));
    assert_not_served(&lb, &mut third, "a third connection at global maxconn 2");

    drop(on_b);
    must_be_served(
        &lb,
        &mut third,
        "the waiting client after a connection closed",
    );
    assert_eq!(
        s1.peak_traffic(),
        2,
        "more than maxconn connections at once"
    );
    // Bounded: the freed slot went to the waiting client, so the cap still holds.
    let mut fourth = HeldConn::open(frontend(port_b));
    assert_not_served(&lb, &mut fourth, "a fourth connection at global maxconn 2");
}
