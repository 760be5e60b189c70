//! Health checks through the real binary: servers going DOWN and coming back UP within
//! their intervals, each check kind seeing exactly the bytes it should, traffic following
//! the states (backup servers, no usable server, passive marking), and zero failed clients
//! when a backend dies under load.
//!
//! Checks run every 100 ms without jitter, so every timing bound below is a small multiple
//! of that interval plus slack for a loaded machine.

pub mod common;

use std::collections::BTreeMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const INTERVAL: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(200);
/// Scheduling slack on top of a computed bound.
const SLACK: Duration = Duration::from_millis(300);
/// Timing of every check in this file: 100 ms apart in every state, 200 ms to answer.
const FAST: &str = r#""interval": "100ms", "timeout": "200ms", "jitter": 0"#;

/// `backend_extra` for `config`: a health check of `kind_fields` (`"type": ...` and the
/// kind's own fields) with `FAST` timing and the given rise and fall.
fn health(kind_fields: &str, rise: u32, fall: u32) -> String {
    format!(r#", "health_check": {{ {kind_fields}, {FAST}, "rise": {rise}, "fall": {fall} }}"#)
}

fn http_health(rise: u32, fall: u32) -> String {
    health(r#""type": "http""#, rise, fall)
}

/// One server of a JSON server list, with further members in `extra` (`, "backup": true`).
fn server(name: &str, addr: SocketAddr, extra: &str) -> String {
    format!(r#"{{ "name": "{name}", "addr": "{addr}"{extra} }}"#)
}

/// Names of the servers that answered `n` sequential short connections, with counts.
fn spread(lb: &Ringlb, addr: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        *counts.entry(must_fetch_name(lb, addr)).or_insert(0) += 1;
    }
    counts
}

fn only(name: &str, n: usize) -> BTreeMap<String, usize> {
    BTreeMap::from([(name.to_owned(), n)])
}

/// Waits for the `n`th line saying `server` is `state` and returns it with the time it
/// took from `since`. Polls the log every 10 ms, so the time is at most 10 ms late.
fn timed_health(
    lb: &Ringlb,
    server: &str,
    state: &str,
    n: usize,
    since: Instant,
    timeout: Duration,
) -> (String, Duration) {
    let line = lb.wait_health(server, state, n, timeout);
    (line, since.elapsed())
}

/// A server answering 503 goes DOWN after `fall` failed checks, no sooner than
/// (fall - 1) intervals and no later than interval × fall + timeout; after that it gets no
/// new connection while its peer takes them all.
#[test]
fn failing_http_check_marks_server_down_within_fall_intervals() {
    let s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    let port = free_port();
    let cfg = config(
        2,
        port,
        "",
        &http_health(2, 3),
        &servers(&[s1.addr(), s2.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));
    lb.wait_health("be/s2", "UP", 1, Duration::from_secs(2));
    let before = spread(&lb, frontend(port), 10);
    assert_eq!(before.len(), 2, "both UP take traffic: {before:?}");

    let failing_since = Instant::now();
    s1.set_status(503);
    let bound = INTERVAL * 3 + TIMEOUT;
    let (line, took) = timed_health(&lb, "be/s1", "DOWN", 1, failing_since, bound + SLACK);
    assert!(
        line.contains("is DOWN: HTTP 503 (3/3 checks failed, last after "),
        "reason: {line}"
    );
    // Three failures, 100 ms apart: the first one alone must not have flipped it.
    assert_between(
        "marking s1 DOWN",
        took,
        INTERVAL * 2 - Duration::from_millis(10),
        bound + SLACK,
    );

    let served_by_s1 = s1.traffic();
    let after = spread(&lb, frontend(port), 20);
    assert_eq!(after, only("s2", 20), "connections after s1 went DOWN");
    assert_eq!(
        s1.traffic(),
        served_by_s1,
        "s1 served a connection while DOWN"
    );
    assert_eq!(
        lb.health_count("be/s2", "DOWN"),
        0,
        "{:?}",
        lb.health_lines()
    );
}

/// A check that gets no answer ends at its timeout and counts as failed: the server goes
/// DOWN after `fall` timeouts, with the timeout as the reason.
#[test]
fn hung_check_ends_at_its_timeout() {
    let s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    let port = free_port();
    let cfg = config(
        1,
        port,
        "",
        &http_health(2, 2),
        &servers(&[s1.addr(), s2.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));

    let hung_since = Instant::now();
    s1.set_hang(true);
    // Each hung check takes the whole timeout before the next interval starts.
    let bound = (INTERVAL + TIMEOUT) * 2;
    let (line, took) = timed_health(&lb, "be/s1", "DOWN", 1, hung_since, bound + SLACK);
    assert!(
        line.contains("is DOWN: read timeout after 200ms (2/2 checks failed, last after "),
        "reason: {line}"
    );
    // Two checks of 200 ms each, the second at least one interval after the first ended.
    assert_between(
        "marking a hung server DOWN",
        took,
        TIMEOUT * 2 + INTERVAL - Duration::from_millis(10),
        bound + SLACK,
    );
    assert_eq!(spread(&lb, frontend(port), 6), only("s2", 6));
}

/// A client opens a new connection every few milliseconds for 2 s; one of the two backends
/// closes its listener in between two of them. With the default 3 retries, every client
/// connection is served: connects to the dead backend are refused and retried on the other
/// until the checks mark it DOWN.
#[test]
fn killing_a_backend_under_load_fails_no_client() {
    let mut s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    let port = free_port();
    let cfg = config(
        2,
        port,
        "",
        &http_health(2, 3),
        &servers(&[s1.addr(), s2.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));
    lb.wait_health("be/s2", "UP", 1, Duration::from_secs(2));

    let start = Instant::now();
    let kill_at = Duration::from_millis(600);
    let run_for = Duration::from_secs(2);
    let mut killed_at = None;
    let mut failures = Vec::new();
    let mut before_kill = BTreeMap::new();
    let mut after_kill = BTreeMap::new();
    for _ in 0..2000 {
        if killed_at.is_none() && start.elapsed() >= kill_at {
            // Between two client connections, so no client is mid-handshake with s1.
            s1.stop();
            killed_at = Some(Instant::now());
        } else if start.elapsed() >= run_for {
            break;
        }
        let (local, result) = fetch_name(frontend(port));
        match result {
            Ok(name) => {
                let counts = if killed_at.is_some() {
                    &mut after_kill
                } else {
                    &mut before_kill
                };
                *counts.entry(name).or_insert(0) += 1;
            }
            Err(e) => failures.push((start.elapsed(), local, e)),
        }
        thread::sleep(Duration::from_millis(2));
    }
    let killed_at = killed_at.expect("the load ran past the kill time");

    if !failures.is_empty() {
        let lines = lb.conn_lines();
        let report: Vec<String> = failures
            .iter()
            .map(|(at, local, e)| {
                let line = lines
                    .iter()
                    .find(|l| l.get("client") == Some(local.to_string().as_str()))
                    .map_or("(no conn line)", |l| l.line.as_str());
                format!("at {at:?} client {local}: {e}\n    {line}")
            })
            .collect();
        panic!(
            "{} failed client connections (s1 killed at {:?}):\n{}\nhealth: {:#?}",
            failures.len(),
            killed_at - start,
            report.join("\n"),
            lb.health_lines()
        );
    }
    assert_eq!(
        before_kill.len(),
        2,
        "both served before the kill: {before_kill:?}"
    );
    let after: usize = after_kill.values().sum();
    assert!(after >= 100, "only {after} connections after the kill");
    assert_eq!(after_kill, only("s2", after), "after s1 was killed");
    let line = lb.wait_health("be/s1", "DOWN", 1, Duration::from_secs(1));
    assert!(
        line.contains("is DOWN: connection refused (3/3 checks failed"),
        "{line}"
    );
}

/// Both servers fail their first check; a new client is then reset at once (the connect
/// or the first read fails with ECONNRESET) and logged as end=no_server.
#[test]
fn no_usable_server_resets_clients_at_once() {
    let s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    s1.set_status(503);
    s2.set_status(503);
    let port = free_port();
    let cfg = config(
        2,
        port,
        "",
        &http_health(2, 3),
        &servers(&[s1.addr(), s2.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    let line = lb.wait_health("be/s1", "DOWN", 1, Duration::from_secs(2));
    assert!(
        line.contains("is DOWN: HTTP 503 (first check, after"),
        "{line}"
    );
    lb.wait_health("be/s2", "DOWN", 1, Duration::from_secs(2));

    for i in 0..5 {
        let start = Instant::now();
        let (local, connected) = connect_from_known_port(frontend(port));
        let outcome = match connected {
            Err(e) => Err(e),
            Ok(mut stream) => {
                let mut buf = [0u8; 16];
                stream.read(&mut buf)
            }
        };
        let took = start.elapsed();
        match outcome {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!(
                "client {i}: expected a reset, got {other:?}; log:\n{}",
                lb.log()
            ),
        }
        assert!(
            took < Duration::from_millis(150),
            "client {i} was reset after {took:?}"
        );
        let line = lb.conn_line(local);
        assert_eq!(line.end(), "no_server", "{}", line.line);
        assert_eq!(line.field("server"), "be/-", "{}", line.line);
    }
    assert_eq!(s1.traffic() + s2.traffic(), 0);
}

/// With `"no_server": "close"` the same client gets a plain EOF instead of a reset.
#[test]
fn no_usable_server_closes_clients_with_no_server_close() {
    let s1 = NamedServer::start("s1");
    s1.set_status(503);
    let port = free_port();
    let backend = format!(r#"{}, "no_server": "close""#, http_health(2, 3));
    let cfg = config(1, port, "", &backend, &servers(&[s1.addr()]));
    let lb = Ringlb::start(&cfg);
    lb.wait_health("be/s1", "DOWN", 1, Duration::from_secs(2));

    for i in 0..3 {
        let start = Instant::now();
        let (local, connected) = connect_from_known_port(frontend(port));
        let mut stream =
            connected.unwrap_or_else(|e| panic!("client {i}: connect failed: {e}; with close"));
        let mut buf = [0u8; 16];
        match stream.read(&mut buf) {
            Ok(0) => {}
            other => panic!(
                "client {i}: expected EOF, read gave {other:?}; log:\n{}",
                lb.log()
            ),
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(150),
            "client {i} closed after {took:?}"
        );
        let line = lb.conn_line(local);
        assert_eq!(line.end(), "no_server", "{}", line.line);
    }
}

/// A server whose listener closes goes DOWN (connection refused); when it listens again it
/// is UP after `rise` passed checks, not after the first, and gets new connections again.
#[test]
fn server_comes_back_up_after_rise_checks() {
    let mut s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    let port = free_port();
    let cfg = config(
        2,
        port,
        "",
        &http_health(3, 2),
        &servers(&[s1.addr(), s2.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));

    s1.stop();
    let line = lb.wait_health("be/s1", "DOWN", 1, Duration::from_secs(2));
    assert!(
        line.contains("is DOWN: connection refused (2/2 checks failed"),
        "{line}"
    );
    assert_eq!(spread(&lb, frontend(port), 10), only("s2", 10));

    let back_since = Instant::now();
    s1.restart();
    // Three passes, 100 ms apart (down interval, then the fast interval while pending).
    let bound = INTERVAL * 3 + TIMEOUT;
    let (line, took) = timed_health(&lb, "be/s1", "UP", 2, back_since, bound + SLACK);
    assert!(
        line.contains("is UP: HTTP 200 (3/3 checks passed, last after"),
        "{line}"
    );
    assert_between(
        "marking s1 UP again",
        took,
        INTERVAL * 2 - Duration::from_millis(10),
        bound + SLACK,
    );
    let after = spread(&lb, frontend(port), 20);
    assert!(
        after.get("s1").copied().unwrap_or(0) >= 5,
        "s1 gets traffic again: {after:?}"
    );
}

/// An HTTP check sends exactly the configured request line and headers (plus nothing
/// else), and judges the status against `expect_status`.
#[test]
fn http_check_sends_configured_request_and_expects_status() {
    let s1 = NamedServer::start("s1");
    let port = free_port();
    let check = r#""type": "http", "request": "GET /health?full=1 HTTP/1.1",
        "headers": { "Host": "www.example.com", "User-Agent": "HAProxy", "X-Check": "ringlb" },
        "expect_status": [200]"#;
    let cfg = config(1, port, "", &health(check, 2, 2), &servers(&[s1.addr()]));
    let lb = Ringlb::start(&cfg);
    lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));
    let want = "GET /health?full=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: HAProxy\r\nX-Check: ringlb\r\n\r\n";
    assert_eq!(String::from_utf8_lossy(&s1.last_check()), want);

    // 302 would pass by default (2xx and 3xx); this check only takes 200.
    s1.set_status(302);
    let line = lb.wait_health("be/s1", "DOWN", 1, Duration::from_secs(2));
    assert!(
        line.contains("is DOWN: HTTP 302 (2/2 checks failed"),
        "{line}"
    );
}

/// Without a request, the check is `HEAD / HTTP/1.0` with `User-Agent: ringlb-check`, and a
/// 3xx counts as UP.
#[test]
fn http_check_default_request() {
    let s1 = NamedServer::start("s1");
    s1.set_status(301);
    let port = free_port();
    let cfg = config(1, port, "", &http_health(2, 2), &servers(&[s1.addr()]));
    let lb = Ringlb::start(&cfg);
    let line = lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));
    assert!(line.contains("is UP: HTTP 301 (first check"), "{line}");
    assert_eq!(
        String::from_utf8_lossy(&s1.last_check()),
        "HEAD / HTTP/1.0\r\nUser-Agent: ringlb-check\r\n\r\n"
    );
}

/// An SMTP-like server: writes `banner` on connect, then reads until the client is gone.
fn banner_server(banner: &'static str) -> Backend {
    Backend::spawn(move |mut s| {
        if s.write_all(banner.as_bytes()).is_ok() {
            let _ = read_to_eof(&mut s, 1 << 20);
        }
    })
}

/// Reads one line (up to `\n`) from `stream`.
fn read_line(stream: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") && line.len() < 256 {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A send_expect check with nothing to send and a regex: the server with an ESMTP banner is
/// UP, the one with a 554 banner DOWN, and clients only ever see the good banner.
#[test]
fn send_expect_checks_an_smtp_banner() {
    let good = banner_server("220 good.example ESMTP ready\r\n");
    let bad = banner_server("554 bad.example no service here\r\n");
    let port = free_port();
    let check = r#""type": "send_expect", "expect_regex": "^220 [^ ]+ ESMTP""#;
    let cfg = config(
        1,
        port,
        "",
        &health(check, 2, 2),
        &servers(&[good.addr(), bad.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    let up = lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));
    assert!(
        up.contains("is UP: answer matches /^220 [^ ]+ ESMTP/ (first check"),
        "{up}"
    );
    let down = lb.wait_health("be/s2", "DOWN", 1, Duration::from_secs(2));
    assert!(
        // The server keeps the connection open, so only the timeout ends the wait.
        down.contains(
            "is DOWN: answer does not match /^220 [^ ]+ ESMTP/ (read timeout after 200ms) (first check"
        ),
        "{down}"
    );

    for i in 0..6 {
        let mut client = connect(frontend(port));
        let banner = read_line(&mut client).unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(banner, "220 good.example ESMTP ready\r\n", "client {i}");
    }
}

/// A Redis-like server: records what it reads up to the first `\n`, answers `answer`.
fn ping_server(answer: &'static str, seen: Arc<Mutex<Vec<u8>>>) -> Backend {
    Backend::spawn(move |mut s| {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\n") && got.len() < 256 {
            match s.read(&mut byte) {
                Ok(1) => got.push(byte[0]),
                _ => return,
            }
        }
        *seen.lock().unwrap() = got;
        if s.write_all(answer.as_bytes()).is_ok() {
            let _ = read_to_eof(&mut s, 1 << 20);
        }
    })
}

/// A send_expect check sends its bytes, then wants the answer to start with `expect`.
#[test]
fn send_expect_sends_then_matches_a_prefix() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pong = ping_server("+PONG\r\n", seen.clone());
    let loading = ping_server("-LOADING Redis is loading\r\n", Arc::default());
    let port = free_port();
    let check = r#""type": "send_expect", "send": "PING\r\n", "expect": "+PONG""#;
    let cfg = config(
        1,
        port,
        "",
        &health(check, 2, 2),
        &servers(&[pong.addr(), loading.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    let up = lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));
    assert!(
        up.contains(r#"is UP: answer starts with "+PONG" (first check"#),
        "{up}"
    );
    let down = lb.wait_health("be/s2", "DOWN", 1, Duration::from_secs(2));
    assert!(
        down.contains(
            r#"is DOWN: expected "+PONG", got "-LOADING Redis is loading\r\n" (first check"#
        ),
        "{down}"
    );
    assert_eq!(*seen.lock().unwrap(), b"PING\r\n");
}

/// With a check `port` (backend-wide) and a server's own `check_addr`, checks go there and
/// never to the traffic ports, whose check answers would be 503: the states follow the
/// check ports only.
#[test]
fn check_port_and_check_addr_replace_the_traffic_address() {
    // Traffic ports: would fail any check they got.
    let s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    s1.set_status(503);
    s2.set_status(503);
    // s1 is checked at its own check_addr, on another loopback address.
    let c1 = NamedServer::start_at("c1", "127.0.0.2:0".parse().unwrap());
    // s2 at its traffic address with the backend's check port.
    let c2 = NamedServer::start("c2");
    let port = free_port();
    let check = format!(r#""type": "http", "port": {}"#, c2.addr().port());
    let list = format!(
        "[{}, {}]",
        server(
            "s1",
            s1.addr(),
            &format!(r#", "check_addr": "{}""#, c1.addr())
        ),
        server("s2", s2.addr(), "")
    );
    let cfg = config(1, port, "", &health(&check, 2, 2), &list);
    let lb = Ringlb::start(&cfg);
    lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));
    lb.wait_health("be/s2", "UP", 1, Duration::from_secs(2));
    assert_eq!(
        spread(&lb, frontend(port), 10).len(),
        2,
        "both UP take traffic"
    );

    c1.set_status(503);
    let line = lb.wait_health("be/s1", "DOWN", 1, Duration::from_secs(2));
    assert!(line.contains("is DOWN: HTTP 503"), "{line}");
    assert_eq!(spread(&lb, frontend(port), 6), only("s2", 6));
    c2.set_status(503);
    lb.wait_health("be/s2", "DOWN", 1, Duration::from_secs(2));

    assert_eq!(
        (s1.checks(), s2.checks()),
        (0, 0),
        "traffic ports got checks"
    );
    assert!(
        c1.checks() >= 3 && c2.checks() >= 3,
        "check ports: {} {}",
        c1.checks(),
        c2.checks()
    );
}

/// A backup server gets nothing while a primary is UP, everything once every primary is
/// DOWN, and nothing again when a primary comes back.
#[test]
fn backup_server_takes_traffic_only_without_primaries() {
    let s1 = NamedServer::start("s1");
    let s2 = NamedServer::start("s2");
    let s3 = NamedServer::start("s3");
    let port = free_port();
    let list = format!(
        "[{}, {}, {}]",
        server("s1", s1.addr(), ""),
        server("s2", s2.addr(), ""),
        server("s3", s3.addr(), r#", "backup": true"#)
    );
    let cfg = config(2, port, "", &http_health(2, 2), &list);
    let lb = Ringlb::start(&cfg);
    for s in ["be/s1", "be/s2", "be/s3"] {
        lb.wait_health(s, "UP", 1, Duration::from_secs(2));
    }
    let all_up = spread(&lb, frontend(port), 20);
    assert_eq!(
        all_up.keys().collect::<Vec<_>>(),
        ["s1", "s2"],
        "primaries only: {all_up:?}"
    );

    s1.set_status(503);
    lb.wait_health("be/s1", "DOWN", 1, Duration::from_secs(2));
    assert_eq!(
        spread(&lb, frontend(port), 10),
        only("s2", 10),
        "one primary left"
    );

    s2.set_status(503);
    lb.wait_health("be/s2", "DOWN", 1, Duration::from_secs(2));
    assert_eq!(
        spread(&lb, frontend(port), 10),
        only("s3", 10),
        "no primary left"
    );

    s1.set_status(200);
    lb.wait_health("be/s1", "UP", 2, Duration::from_secs(2));
    assert_eq!(
        spread(&lb, frontend(port), 10),
        only("s1", 10),
        "a primary is back"
    );
    assert_eq!(s3.traffic(), 10);
}

/// Passive marking: with `passive_errors: 2` (and `fall: 1`), two failed connects from live
/// traffic mark the server DOWN long before its next active check (10 s away); one alone
/// does not.
#[test]
fn passive_errors_mark_server_down_before_the_next_check() {
    let mut s1 = NamedServer::start("s1");
    let port = free_port();
    let backend = r#", "retries": 0, "health_check": { "type": "tcp", "interval": "10s",
        "timeout": "200ms", "jitter": 0, "rise": 1, "fall": 1, "passive_errors": 2 }"#;
    let cfg = config(1, port, "", backend, &servers(&[s1.addr()]));
    let lb = Ringlb::start(&cfg);
    lb.wait_health("be/s1", "UP", 1, Duration::from_secs(2));
    s1.stop();
    let stopped = Instant::now();

    let refused = |i: usize| {
        let (local, connected) = connect_from_known_port(frontend(port));
        if let Err(e) = closed_by_peer(connected) {
            panic!("client {i}: {e}; log:\n{}", lb.log());
        }
        let line = lb.conn_line(local);
        assert_eq!(line.end(), "no_server", "{}", line.line);
    };
    refused(1);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lb.health_count("be/s1", "DOWN"),
        0,
        "DOWN after one failed connect: {:?}",
        lb.health_lines()
    );
    refused(2);
    let line = lb.wait_health("be/s1", "DOWN", 1, Duration::from_secs(1));
    assert!(
        line.contains("is DOWN: 2 passive connect failures (1/1 checks failed)"),
        "{line}"
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "took {:?}",
        stopped.elapsed()
    );
    // DOWN now: refused at once without a connect attempt.
    refused(3);
}
