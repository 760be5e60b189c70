//! Abuse: the stats and admin listener under hostile clients. A request during fd
//! exhaustion, many connections, a held body, unread pipelined answers, random bytes and a
//! 256 MiB header must neither stop the process nor stop stats for others; a rebinding
//! `Host`, admin without auth, a form body and a password guesser must change nothing.
//!
//! The listener's bounds (src/stats/server.rs): 64 connections, 16 KiB of request head,
//! 5 s for a head or a body, 10 s for a stalled write; 5 failed logins a minute.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::common::*;

// Shared with tests/stats.rs, which uses the rest of it.
#[allow(dead_code)]
#[path = "../stats/client.rs"]
mod client;
use client::{stats_addr, stats_config, PASSWORD, USER};

const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack for timeouts on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(2);

/// A running ringlb with a stats listener on `st` in front of one echo server.
fn start(auth: bool) -> (Ringlb, SocketAddr, SocketAddr, Backend) {
    let echo = Backend::echo();
    let (port, st) = (free_port(), stats_addr());
    let lb = Ringlb::start(&stats_config(port, st, auth, "", &servers(&[echo.addr()])));
    (lb, frontend(port), st, echo)
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

/// A request with `headers` (each ending in CRLF) and an optional JSON body, HTTP/1.0 so
/// that the answer ends at EOF.
fn raw_request(method: &str, path: &str, host: &str, headers: &str, body: &str) -> String {
    let length = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n{headers}{length}\r\n{body}")
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` on `stream` and reads the answer to EOF.
fn exchange(mut stream: TcpStream, request: &str) -> io::Result<Answer> {
    stream.write_all(request.as_bytes())?;
    let raw = read_to_eof(&mut stream, 8 << 20)?;
    parse_answer(&raw).ok_or_else(|| io::Error::other(format!("not an answer: {raw:?}")))
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

fn send(st: SocketAddr, request: &str) -> Answer {
    exchange(connect(st), request).unwrap_or_else(|e| panic!("stats {st}: {e}"))
}

fn get_json(st: SocketAddr, auth: &str) -> serde_json::Value {
    let a = send(
        st,
        &raw_request("GET", "/stats.json", &st.to_string(), auth, ""),
    );
    assert_eq!(a.status, 200, "{a:?}");
    serde_json::from_str(&a.body).expect("stats.json parses")
}

fn server_state(st: SocketAddr, auth: &str) -> String {
    get_json(st, auth)["backends"][0]["servers"][0]["state"]
        .as_str()
        .expect("state")
        .to_string()
}

/// Whether the peer closed the connection (EOF or reset) before sending anything.
fn closed_without_answer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

/// Reads one HTTP/1.1 answer with a Content-Length from a kept-alive connection.
fn read_kept_alive(stream: &mut TcpStream) -> io::Result<u16> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no content-length in {head}")))?;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("no status"))
}

/// The time one authenticated GET of /stats.json takes on a new connection.
fn timed_get(st: SocketAddr, auth: &str) -> Duration {
    let start = Instant::now();
    let a = send(
        st,
        &raw_request("GET", "/stats.json", &st.to_string(), auth, ""),
    );
    assert_eq!(a.status, 200, "{a:?}");
    start.elapsed()
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_stats_request_while_no_fd_is_free_neither_kills_nor_stops_stats() {
    let (mut lb, fe, st, _echo) = start(false);
    let limit = lb.fd_count() as u64 + 40;
    lb.set_fd_limit(limit);

    // Idle clients hold two descriptors each (client and server side): 40 run out.
    let mut clients = Vec::new();
    for _ in 0..40 {
        if let Ok(s) = TcpStream::connect_timeout(&fe, Duration::from_secs(2)) {
            clients.push(s);
        }
    }
    let full = wait_for(Duration::from_secs(5), || {
        (lb.fd_count() as u64 >= limit - 1).then_some(())
    });
    assert!(full.is_some(), "fds at {} of {limit}", lb.fd_count());
    // Idle stats connections take what is left, until the stats accept itself fails.
    let mut idle = Vec::new();
    for _ in 0..20 {
        if lb.log().contains("ringlb: stats: accept: ") {
            break;
        }
        idle.push(connect(st));
        thread::sleep(Duration::from_millis(50));
    }
    let mut during = connect(st);
    during
        .write_all(raw_request("GET", "/stats.json", &st.to_string(), "", "").as_bytes())
        .expect("send the request");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(lb.wait_exit(Duration::ZERO), None, "ringlb exited");

    drop(clients);
    drop(idle);
    let raw = read_to_eof(&mut during, 1 << 20)
        .unwrap_or_else(|e| panic!("stats never answered: {e}; log:\n{}", lb.log()));
    let answer = parse_answer(&raw).expect("an HTTP answer");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        lb.log()
            .contains("ringlb: stats: accept: Too many open files"),
        "the stats listener never ran out; log:\n{}",
        lb.log()
    );
    // Forwarding works, and stats answers new requests.
    let mut s = connect(fe);
    s.write_all(b"still forwarding").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut s, 1024).unwrap(), b"still forwarding");
    assert!(timed_get(st, "") < Duration::from_secs(2));
    assert_eq!(lb.wait_exit(Duration::ZERO), None, "ringlb exited");
}

#[test]
fn many_connections_add_no_thread_and_the_65th_is_closed_at_once() {
    let (lb, _fe, st, _echo) = start(false);
    let threads = lb.thread_names();
    let request = format!("GET /stats.json HTTP/1.1\r\nHost: {st}\r\n\r\n");
    let mut open = Vec::new();
    for i in 0..64 {
        let mut s = connect(st);
        s.write_all(request.as_bytes()).unwrap();
        let status = read_kept_alive(&mut s).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(status, 200);
        open.push(s);
    }
    assert_eq!(
        lb.thread_names(),
        threads,
        "threads changed with 64 connections"
    );

    let mut extra = connect(st);
    extra
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let _ = extra.write_all(request.as_bytes());
    assert!(
        closed_without_answer(&mut extra),
        "the 65th connection was not closed at once"
    );
    // The kept-alive ones are still served, and a freed slot is taken again.
    open[0].write_all(request.as_bytes()).unwrap();
    assert_eq!(read_kept_alive(&mut open[0]).unwrap(), 200);
    drop(open.pop());
    let served = wait_for(Duration::from_secs(2), || {
        exchange(
            connect(st),
            &raw_request("GET", "/", &st.to_string(), "", ""),
        )
        .ok()
        .filter(|a| a.status == 200)
    });
    assert!(served.is_some(), "a freed slot was not reused");
}

#[test]
fn a_held_body_stops_no_one_and_is_closed_after_the_body_timeout() {
    let (lb, _fe, st, _echo) = start(true);
    let auth = basic(USER, PASSWORD);
    let mut held = connect(st);
    let head = format!(
        "POST /admin/server HTTP/1.1\r\nHost: {st}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: 4000\r\n\r\n{{\"backend\""
    );
    held.write_all(head.as_bytes()).unwrap();
    let start = Instant::now();
    thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let took = timed_get(st, &auth);
        assert!(
            took < Duration::from_secs(1),
            "GET took {took:?} beside a held body"
        );
    }
    let raw = read_to_eof(&mut held, 1 << 20).unwrap_or_else(|e| panic!("held body: {e}"));
    let took = start.elapsed();
    assert!(
        took >= BODY_TIMEOUT - Duration::from_millis(500) && took <= BODY_TIMEOUT + SLACK,
        "closed after {took:?}"
    );
    if let Some(a) = parse_answer(&raw) {
        assert_eq!(a.status, 408, "{a:?}");
    }
    assert_eq!(server_state(st, &auth), "UP");
    assert!(!lb.log().contains("ringlb: admin"));
}

#[test]
fn a_client_that_pipelines_and_never_reads_blocks_no_one() {
    let (_lb, _fe, st, _echo) = start(false);
    let greedy = connect(st);
    let one = format!("GET / HTTP/1.1\r\nHost: {st}\r\n\r\n");
    let many = one.repeat(2000);
    // Written from a thread: once the listener stops reading, so does this write.
    let mut writer = greedy.try_clone().unwrap();
    let sending = thread::spawn(move || {
        let _ = writer.write_all(many.as_bytes());
    });
    thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let took = timed_get(st, "");
        assert!(
            took < Duration::from_secs(1),
            "GET took {took:?} beside a pipeliner"
        );
        thread::sleep(Duration::from_millis(200));
    }
    let _ = greedy.shutdown(Shutdown::Both);
    let _ = sending.join();
}

#[test]
fn random_bytes_and_a_trickled_head_end_within_the_header_timeout() {
    let (_lb, _fe, st, _echo) = start(false);
    let mut noise = connect(st);
    let start = Instant::now();
    noise.write_all(&seeded_bytes(11, 4096)).unwrap();
    let raw = read_to_eof(&mut noise, 1 << 20).unwrap_or_default();
    assert!(
        start.elapsed() <= HEADER_TIMEOUT + SLACK,
        "{:?}",
        start.elapsed()
    );
    if let Some(a) = parse_answer(&raw) {
        assert_eq!(a.status, 400, "{a:?}");
    }

    // A head that never ends, one byte every half second.
    let mut slow = connect(st);
    let start = Instant::now();
    slow.write_all(format!("GET / HTTP/1.1\r\nHost: {st}\r\nX-Slow: ").as_bytes())
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let closed = loop {
        thread::sleep(Duration::from_millis(500));
        let _ = slow.write_all(b"a");
        let mut buf = [0u8; 512];
        match slow.read(&mut buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            // EOF, a reset, or an answer: the listener gave up on this head.
            _ => break start.elapsed(),
        }
        if start.elapsed() > HEADER_TIMEOUT * 3 {
            break start.elapsed();
        }
    };
    assert!(
        closed >= HEADER_TIMEOUT - Duration::from_millis(500) && closed <= HEADER_TIMEOUT + SLACK,
        "a trickled head was closed after {closed:?}"
    );
}

#[test]
fn a_256_mib_header_line_gets_431_without_growing_memory() {
    let (lb, _fe, st, _echo) = start(false);
    // One request first, so that what a first request allocates is not counted.
    timed_get(st, "");
    let before = vm_rss_kib(lb.pid());
    let mut s = connect(st);
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {st}\r\nX-Long: ").as_bytes())
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 256 << 20 {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let raw = read_to_eof(&mut s, 1 << 20).unwrap_or_default();
    if let Some(a) = parse_answer(&raw) {
        assert_eq!(a.status, 431, "{a:?}");
    }
    assert!(sent < 256 << 20, "the listener read all 256 MiB");
    let grown = vm_rss_kib(lb.pid()).saturating_sub(before);
    assert!(grown < 4 * 1024, "RSS grew by {grown} KiB");
    assert!(timed_get(st, "") < Duration::from_secs(1));
}

#[test]
fn a_rebinding_host_gets_421_and_changes_nothing() {
    let (lb, _fe, st, _echo) = start(true);
    let auth = basic(USER, PASSWORD);
    let evil = format!("evil.example:{}", st.port());
    let body = r#"{"backend":"be","server":"s1","state":"maint"}"#;
    let headers = format!("{auth}Origin: http://{evil}\r\nContent-Type: application/json\r\n");
    let a = send(
        st,
        &raw_request("POST", "/admin/server", &evil, &headers, body),
    );
    assert_eq!(a.status, 421, "{a:?}");
    let a = send(st, &raw_request("GET", "/stats.json", &evil, &auth, ""));
    assert_eq!(a.status, 421, "reads are refused too: {a:?}");
    assert_eq!(server_state(st, &auth), "UP");
    assert!(!lb.log().contains("ringlb: admin"));
}

#[test]
fn admin_needs_auth_in_the_config() {
    let (lb, _fe, st, _echo) = start(false);
    let body = r#"{"backend":"be","server":"s1","state":"maint"}"#;
    let a = send(
        st,
        &raw_request(
            "POST",
            "/admin/server",
            &st.to_string(),
            "Content-Type: application/json\r\n",
            body,
        ),
    );
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("stats.auth"), "{a:?}");
    assert_eq!(server_state(st, ""), "UP", "reads stay open on loopback");
    assert!(!lb.log().contains("ringlb: admin"));
}

#[test]
fn an_admin_post_that_is_not_json_gets_415_with_the_curl_command() {
    let (lb, _fe, st, _echo) = start(true);
    let auth = basic(USER, PASSWORD);
    let form = "backend=be&server=s1&state=maint";
    for content_type in [
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: text/plain\r\n",
        "",
    ] {
        let headers = format!("{auth}{content_type}");
        let a = send(
            st,
            &raw_request("POST", "/admin/server", &st.to_string(), &headers, form),
        );
        assert_eq!(a.status, 415, "{content_type:?}: {a:?}");
        assert!(
            a.body
                .contains("curl -u admin -H 'Content-Type: application/json' -d '{")
                && a.body.contains(&format!("http://{st}/admin/server")),
            "{}",
            a.body
        );
    }
    assert_eq!(server_state(st, &auth), "UP");
    assert!(!lb.log().contains("ringlb: admin"));
}

#[test]
fn repeated_bad_passwords_get_429_for_that_address_only() {
    let (_lb, _fe, st, _echo) = start(true);
    let wrong = basic(USER, "guess");
    let get = |auth: &str| raw_request("GET", "/stats.json", &st.to_string(), auth, "");
    for i in 0..5 {
        assert_eq!(send(st, &get(&wrong)).status, 401, "failure {}", i + 1);
    }
    let a = send(st, &get(&wrong));
    assert_eq!(a.status, 429, "{a:?}");
    let retry: u64 = a
        .head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let right = basic(USER, PASSWORD);
    assert_eq!(
        send(st, &get(&right)).status,
        429,
        "the address is locked out"
    );
    // Another address is not.
    let other: IpAddr = [127, 0, 0, 2].into();
    let (_, connected) = connect_from(other, st);
    let a = exchange(connected.expect("connect from 127.0.0.2"), &get(&right)).unwrap();
    assert_eq!(a.status, 200, "{a:?}");
}
