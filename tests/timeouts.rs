//! Connect timeouts and failover across servers, and idle timeouts on either side.

pub mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Sends one distinct line and expects it echoed; returns how long the exchange took.
fn echo_once(stream: &mut TcpStream, i: usize) -> Duration {
    let start = Instant::now();
    let msg = format!("ping {i}\n");
    stream.write_all(msg.as_bytes()).expect("write");
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).expect("read echo");
    assert_eq!(back, msg.as_bytes(), "echo differs");
    start.elapsed()
}

/// Opens a connection through the balancer and times its first echo.
fn timed_echo(addr: SocketAddr, i: usize, lb: &Ringlb) -> Duration {
    let start = Instant::now();
    let mut client = connect(addr);
    let msg = format!("hello {i}\n");
    client.write_all(msg.as_bytes()).unwrap();
    let mut back = vec![0u8; msg.len()];
    if let Err(e) = client.read_exact(&mut back) {
        panic!("connection {i}: no echo: {e}; log:\n{}", lb.log());
    }
    assert_eq!(back, msg.as_bytes(), "connection {i}: echo differs");
    start.elapsed()
}

/// A server whose accept queue is full swallows the SYN; after `timeouts.connect` the balancer
/// must give up on it and use the next server.
#[test]
fn connect_timeout_fails_over_to_next_server() {
    let blackhole = FullBacklog::open();
    let echo = Backend::echo();
    let port = free_port();
    let cfg = config(
        1,
        port,
        "",
        r#", "retries": 1, "timeouts": { "connect": "300ms" }"#,
        &servers(&[blackhole.addr(), echo.addr()]),
    );
    let lb = Ringlb::start(&cfg);

    // Round robin starts some of these on the black hole; each must still get its echo.
    let times: Vec<Duration> = (0..4).map(|i| timed_echo(frontend(port), i, &lb)).collect();
    let slowest = *times.iter().max().unwrap();
    assert!(
        slowest >= Duration::from_millis(290),
        "no connection waited for the connect timeout ({times:?}): was the black hole ever tried?"
    );
    assert!(
        slowest <= Duration::from_millis(1500),
        "a connection took {slowest:?} with a 300 ms connect timeout ({times:?}); log:\n{}",
        lb.log()
    );
    let lines = lb.conn_lines();
    assert!(
        lines.iter().all(|l| l.field("server") == "be/s2"),
        "every connection must end up on s2: {lines:#?}"
    );
}

/// A refused connect fails at once, so failover to the next server is immediate, far below
/// the connect timeout.
#[test]
fn refused_server_is_skipped_quickly() {
    let echo = Backend::echo();
    let port = free_port();
    let cfg = config(
        1,
        port,
        "",
        r#", "retries": 1, "timeouts": { "connect": "5s" }"#,
        &servers(&[refused_addr(), echo.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    for i in 0..4 {
        let took = timed_echo(frontend(port), i, &lb);
        assert!(
            took < Duration::from_millis(1000),
            "connection {i} took {took:?} to skip a refused server"
        );
    }
}

/// With every server refusing, the client connection is closed promptly and logged as
/// end=no_server with no server named.
#[test]
fn all_servers_refused_closes_client() {
    let port = free_port();
    let cfg = config(
        1,
        port,
        "",
        r#", "retries": 3, "timeouts": { "connect": "5s" }"#,
        &servers(&[refused_addr(), refused_addr()]),
    );
    let lb = Ringlb::start(&cfg);

    let start = Instant::now();
    let (local, connected) = connect_from_known_port(frontend(port));
    if let Err(e) = closed_by_peer(connected) {
        panic!("with every server refusing: {e}; log:\n{}", lb.log());
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(1000),
        "closing took {took:?} with every server refusing"
    );
    let line = lb.conn_line(local);
    assert_eq!(line.end(), "no_server", "{}", line.line);
    assert_eq!(line.field("server"), "be/-", "{}", line.line);
}

/// Keeps a connection busy for longer than the idle timeout (it must survive), then idles and
/// measures how long until the balancer closes it.
fn idle_close_after_activity(lb: &Ringlb, port: u16) -> (Duration, SocketAddr) {
    let mut client = connect(frontend(port));
    let local = client.local_addr().unwrap();
    for i in 0..5 {
        echo_once(&mut client, i);
        thread::sleep(Duration::from_millis(250));
    }
    // 1 s of activity has passed; the 500 ms idle timer restarts at each exchange.
    echo_once(&mut client, 99);
    let idle_since = Instant::now();
    let mut buf = [0u8; 16];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!(
            "idle connection: expected close, read gave {other:?} after {:?}; log:\n{}",
            idle_since.elapsed(),
            lb.log()
        ),
    }
    (idle_since.elapsed(), local)
}

#[test]
fn client_idle_timeout_closes_connection() {
    let echo = Backend::echo();
    let port = free_port();
    let cfg = config(
        1,
        port,
        "",
        r#", "timeouts": { "client": "500ms", "server": "10s" }"#,
        &servers(&[echo.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    let (idle, local) = idle_close_after_activity(&lb, port);
    assert_between(
        "closing an idle client",
        idle,
        Duration::from_millis(450),
        Duration::from_millis(1500),
    );
    let line = lb.conn_line(local);
    assert_eq!(line.end(), "client_timeout", "{}", line.line);
}

#[test]
fn server_idle_timeout_closes_connection() {
    let echo = Backend::echo();
    let port = free_port();
    let cfg = config(
        1,
        port,
        "",
        r#", "timeouts": { "client": "10s", "server": "500ms" }"#,
        &servers(&[echo.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    let (idle, local) = idle_close_after_activity(&lb, port);
    assert_between(
        "closing an idle server",
        idle,
        Duration::from_millis(450),
        Duration::from_millis(1500),
    );
    let line = lb.conn_line(local);
    assert_eq!(line.end(), "server_timeout", "{}", line.line);
}
