//! The checker against real listeners on 127.0.0.1 created by each test: refused ports,
//! silent and full listeners, HTTP and send/expect responders whose answer a test changes,
//! many hanging servers at once, passive failures, reload and stop. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::checker::OnChange;
use super::*;
use crate::config::{CheckKind, Expect};

const MS: Duration = Duration::from_millis(1);
const WAIT: Duration = Duration::from_secs(5);

fn check(kind: CheckKind) -> HealthCheck {
    HealthCheck {
        kind,
        interval: 50 * MS,
        fast_interval: 50 * MS,
        down_interval: 50 * MS,
        rise: 2,
        fall: 3,
        timeout: 200 * MS,
        jitter_percent: 0,
        port: None,
        passive_errors: None,
    }
}

fn http(request: &str) -> CheckKind {
    CheckKind::Http {
        request: request.into(),
        headers: vec![("User-Agent".into(), "ringlb-check".into())],
        expect_status: vec![(200, 299), (300, 399)],
    }
}

fn target(name: &str, addr: SocketAddr, check: HealthCheck) -> Target {
    Target {
        label: format!("t/{name}"),
        addr,
        check,
        send_proxy: None,
        failures: Default::default(),
    }
}

/// A checker whose `on_change` batches arrive on the returned channel.
fn spawn(targets: Vec<Target>) -> (Checker, Receiver<Vec<StateChange>>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let on_change: OnChange = Box::new(move |changes: &[StateChange]| {
        let _ = tx.send(changes.to_vec());
    });
    (Checker::spawn(targets, on_change).unwrap(), rx)
}

fn next(rx: &Receiver<Vec<StateChange>>) -> Vec<StateChange> {
    rx.recv_timeout(WAIT).expect("no state change in time")
}

/// A port on 127.0.0.1 where nothing listens.
fn refused_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A listener that never accepts: the kernel completes connects, nobody answers.
fn silent_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Answers each connection with `answer` after reading up to `until` (nothing when empty),
/// then closes; keeps what it read.
struct Responder {
    addr: SocketAddr,
    answer: Arc<Mutex<Vec<u8>>>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn new(until: &'static [u8], answer: &[u8]) -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer.to_vec()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, r, s) = (answer.clone(), received.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => serve(conn, until, &a, &r),
                    Err(_) => thread::sleep(MS),
                }
            }
        });
        Responder {
            addr,
            answer,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn answer(&self, answer: &[u8]) {
        *self.answer.lock().unwrap() = answer.to_vec();
    }
}

fn serve(mut conn: TcpStream, until: &[u8], answer: &Mutex<Vec<u8>>, got: &Mutex<Vec<Vec<u8>>>) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !until.is_empty() && !request.windows(until.len()).any(|w| w == until) {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    got.lock().unwrap().push(request);
    let answer = answer.lock().unwrap().clone();
    let _ = conn.write_all(&answer);
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn check_addr_takes_check_addr_then_port() {
    let mut server = crate::config::Server {
        name: "web1".into(),
        addr: "192.0.2.21:80".parse().unwrap(),
        weight: 1,
        backup: false,
        maxconn: None,
        check_addr: None,
        send_proxy: None,
    };
    let mut hc = check(CheckKind::Tcp);
    assert_eq!(check_addr(&server, &hc), server.addr);
    hc.port = Some(8080);
    assert_eq!(check_addr(&server, &hc), "192.0.2.21:8080".parse().unwrap());
    server.check_addr = Some("192.0.2.99:9000".parse().unwrap());
    assert_eq!(check_addr(&server, &hc), "192.0.2.99:9000".parse().unwrap());
    let t = Target::new("webfarm", &server, &hc);
    assert_eq!(t.label, "webfarm/web1");
    assert_eq!(t.addr, "192.0.2.99:9000".parse().unwrap());
}

#[test]
fn refused_port_is_down_after_the_first_round() {
    let (checker, rx) = spawn(vec![target(
        "r",
        refused_addr(),
        check(http("GET / HTTP/1.0")),
    )]);
    assert!(checker.wait_first_round(WAIT));
    let changes = next(&rx);
    assert_eq!(changes.len(), 1);
    assert!(!changes[0].up);
    assert!(
        changes[0]
            .to_string()
            .starts_with("server t/r is DOWN: connection refused (first check, after "),
        "{}",
        changes[0].to_string()
    );
}

#[test]
fn silent_server_is_down_on_read_timeout_at_its_timeout() {
    let listener = silent_listener();
    let t0 = Instant::now();
    let (checker, rx) = spawn(vec![target(
        "s",
        listener.local_addr().unwrap(),
        check(http("HEAD /check.txt HTTP/1.0")),
    )]);
    assert!(checker.wait_first_round(WAIT));
    let took = t0.elapsed();
    assert!(
        took >= 200 * MS && took < 450 * MS,
        "first round took {took:?}"
    );
    let change = &next(&rx)[0];
    assert!(!change.up);
    let after = change
        .to_string()
        .strip_prefix("server t/s is DOWN: read timeout after 200ms (first check, after ")
        .and_then(|rest| rest.strip_suffix(" ms)"))
        .and_then(|ms| ms.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{}", change.to_string()));
    assert!((200..300).contains(&after), "{}", change.to_string());
}

#[test]
fn connect_that_hangs_is_a_connect_timeout() {
    // A listener with a full accept queue drops SYNs, so the connect neither succeeds
    // nor fails before the check's timeout.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let fillers: Vec<_> = (0..2)
        .filter_map(|_| TcpStream::connect_timeout(&addr, 100 * MS).ok())
        .collect();
    assert!(!fillers.is_empty());
    let t0 = Instant::now();
    let (checker, rx) = spawn(vec![target("h", addr, check(CheckKind::Tcp))]);
    assert!(checker.wait_first_round(WAIT));
    assert!(t0.elapsed() < 450 * MS, "took {:?}", t0.elapsed());
    let change = &next(&rx)[0];
    assert!(
        change
            .to_string()
            .starts_with("server t/h is DOWN: connect timeout after 200ms (first check"),
        "{}",
        change.to_string()
    );
}

#[test]
fn tcp_check_passes_on_connect() {
    let listener = silent_listener();
    let (checker, rx) = spawn(vec![target(
        "c",
        listener.local_addr().unwrap(),
        check(CheckKind::Tcp),
    )]);
    assert!(checker.wait_first_round(WAIT));
    let change = &next(&rx)[0];
    assert!(change.up);
    assert!(
        change
            .to_string()
            .starts_with("server t/c is UP: connected (first check, after "),
        "{}",
        change.to_string()
    );
}

#[test]
fn http_server_goes_down_after_fall_and_up_after_rise() {
    let web = Responder::new(b"\r\n\r\n", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    let (checker, rx) = spawn(vec![target(
        "web1",
        web.addr,
        check(http("HEAD /check.txt HTTP/1.0")),
    )]);
    assert!(checker.wait_first_round(WAIT));
    let change = &next(&rx)[0];
    assert!(change.up, "{}", change.to_string());
    assert!(change
        .to_string()
        .starts_with("server t/web1 is UP: HTTP 200 (first check, after "));

    web.answer(b"HTTP/1.0 503 Service Unavailable\r\n\r\n");
    let switched = web.received.lock().unwrap().len();
    let change = &next(&rx)[0];
    assert!(!change.up);
    assert!(
        change
            .to_string()
            .starts_with("server t/web1 is DOWN: HTTP 503 (3/3 checks failed, last after "),
        "{}",
        change.to_string()
    );
    let checks = web.received.lock().unwrap().len() - switched;
    assert!(checks >= 3, "DOWN after {checks} checks");

    web.answer(b"HTTP/1.1 200 OK\r\n\r\n");
    let change = &next(&rx)[0];
    assert!(change.up);
    assert!(
        change
            .to_string()
            .starts_with("server t/web1 is UP: HTTP 200 (2/2 checks passed, last after "),
        "{}",
        change.to_string()
    );
    drop(checker);
    for request in web.received.lock().unwrap().iter() {
        assert_eq!(
            String::from_utf8_lossy(request),
            "HEAD /check.txt HTTP/1.0\r\nUser-Agent: ringlb-check\r\n\r\n"
        );
    }
}

#[test]
fn http11_request_carries_host_and_configured_headers() {
    let web = Responder::new(b"\r\n\r\n", b"HTTP/1.1 404 Not Found\r\n\r\n");
    let kind = CheckKind::Http {
        request: "GET /health HTTP/1.1".into(),
        headers: vec![
            ("User-Agent".into(), "probe/2".into()),
            ("X-Check".into(), "yes".into()),
        ],
        expect_status: vec![(404, 404)],
    };
    let (checker, rx) = spawn(vec![target("w", web.addr, check(kind))]);
    assert!(checker.wait_first_round(WAIT));
    assert!(next(&rx)[0].up, "404 is expected here");
    drop(checker);
    let first = web.received.lock().unwrap()[0].clone();
    assert_eq!(
        String::from_utf8_lossy(&first),
        format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nUser-Agent: probe/2\r\nX-Check: yes\r\n\r\n",
            web.addr
        )
    );
}

#[test]
fn send_expect_with_a_prefix() {
    let redis = Responder::new(b"\r\n", b"+PONG\r\n");
    let broken = Responder::new(b"\r\n", b"-ERR unknown command 'PING'\r\n");
    let kind = CheckKind::SendExpect {
        send: b"PING\r\n".to_vec(),
        expect: Expect::Prefix(b"+PONG".to_vec()),
    };
    let (checker, rx) = spawn(vec![
        target("redis", redis.addr, check(kind.clone())),
        target("broken", broken.addr, check(kind)),
    ]);
    assert!(checker.wait_first_round(WAIT));
    let mut changes = next(&rx);
    changes.sort_by_key(|c| c.target);
    assert_eq!(changes.len(), 2, "the first round reports every target");
    assert!(changes[0].up);
    assert!(changes[0]
        .to_string()
        .starts_with("server t/redis is UP: answer starts with \"+PONG\" (first check"));
    assert!(!changes[1].up);
    assert!(
        changes[1].to_string().starts_with(
            "server t/broken is DOWN: expected \"+PONG\", got \"-ERR unknown command 'PING'\\r\\n\" (first check"
        ),
        "{}",
        changes[1].to_string()
    );
    drop(checker);
    assert_eq!(redis.received.lock().unwrap()[0], b"PING\r\n");
}

#[test]
fn send_expect_with_a_regex_reads_a_banner() {
    let smtp = Responder::new(b"", b"220 mail.example.com ESMTP Postfix\r\n");
    let closed = Responder::new(b"", b"554 no service\r\n");
    let kind = CheckKind::SendExpect {
        send: Vec::new(),
        expect: Expect::Regex("^220 .*ESMTP".into()),
    };
    let (checker, rx) = spawn(vec![
        target("smtp", smtp.addr, check(kind.clone())),
        target("closed", closed.addr, check(kind)),
    ]);
    assert!(checker.wait_first_round(WAIT));
    let mut changes = next(&rx);
    changes.sort_by_key(|c| c.target);
    assert!(changes[0].up);
    assert!(changes[0]
        .to_string()
        .starts_with("server t/smtp is UP: answer matches /^220 .*ESMTP/ (first check"));
    assert!(!changes[1].up);
    assert!(changes[1]
        .to_string()
        .starts_with("server t/closed is DOWN: answer does not match /^220 .*ESMTP/ (first check"));
    drop(checker);
    assert!(smtp.received.lock().unwrap()[0].is_empty(), "nothing sent");
}

#[test]
fn fifty_hanging_servers_are_checked_concurrently() {
    let listeners: Vec<_> = (0..50).map(|_| silent_listener()).collect();
    let targets = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| {
            target(
                &format!("s{i}"),
                l.local_addr().unwrap(),
                check(http("HEAD / HTTP/1.0")),
            )
        })
        .collect();
    let t0 = Instant::now();
    let (checker, rx) = spawn(targets);
    assert!(checker.wait_first_round(WAIT));
    let took = t0.elapsed();
    // One after another would take 50 × 200 ms = 10 s.
    assert!(took < Duration::from_secs(1), "first round took {took:?}");
    let changes = next(&rx);
    assert_eq!(changes.len(), 50);
    assert!(changes
        .iter()
        .all(|c| !c.up && c.to_string().contains("read timeout after 200ms")));
}

#[test]
fn passive_failures_mark_a_server_down() {
    let listener = silent_listener();
    let hc = HealthCheck {
        interval: Duration::from_secs(3600),
        fast_interval: Duration::from_secs(3600),
        fall: 1,
        passive_errors: Some(2),
        ..check(CheckKind::Tcp)
    };
    let (checker, rx) = spawn(vec![target("p", listener.local_addr().unwrap(), hc)]);
    assert!(checker.wait_first_round(WAIT));
    assert!(next(&rx)[0].up);
    let reporter = checker.reporter();
    thread::spawn(move || {
        reporter.passive_failure(0);
        reporter.passive_failure(0);
        reporter.passive_failure(7); // unknown index: ignored
    })
    .join()
    .unwrap();
    let change = &next(&rx)[0];
    assert!(!change.up);
    assert_eq!(
        change.to_string(),
        "server t/p is DOWN: 2 passive connect failures (1/1 checks failed)"
    );
}

#[test]
fn replace_keeps_carried_states_and_checks_new_targets() {
    let up = silent_listener();
    let hc = HealthCheck {
        interval: Duration::from_secs(3600),
        ..check(CheckKind::Tcp)
    };
    let (checker, rx) = spawn(vec![target("a", up.local_addr().unwrap(), hc.clone())]);
    assert!(checker.wait_first_round(WAIT));
    assert!(next(&rx)[0].up);
    checker
        .replace(
            vec![
                target("new", refused_addr(), hc.clone()),
                target("a", up.local_addr().unwrap(), hc),
            ],
            vec![None, Some(true)],
            1,
        )
        .unwrap();
    let changes = next(&rx);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].target, 0);
    assert_eq!(changes[0].generation, 1);
    assert!(changes[0]
        .to_string()
        .starts_with("server t/new is DOWN: connection refused (first check"));
    assert!(
        rx.recv_timeout(100 * MS).is_err(),
        "the carried target is not re-reported"
    );
}

#[test]
fn bad_regex_is_refused_at_spawn() {
    let kind = CheckKind::SendExpect {
        send: Vec::new(),
        expect: Expect::Regex("(".into()),
    };
    let on_change: OnChange = Box::new(|_: &[StateChange]| {});
    let err = Checker::spawn(vec![target("x", refused_addr(), check(kind))], on_change)
        .err()
        .unwrap();
    assert!(
        err.to_string().starts_with("health check of t/x: "),
        "{err}"
    );
}

#[test]
fn stop_is_prompt_and_no_targets_is_a_done_round() {
    let (mut checker, _rx) = spawn(Vec::new());
    assert!(checker.wait_first_round(Duration::ZERO));
    let listener = silent_listener();
    let hc = HealthCheck {
        interval: Duration::from_secs(3600),
        ..check(CheckKind::Tcp)
    };
    checker
        .replace(
            vec![target("a", listener.local_addr().unwrap(), hc)],
            vec![None],
            1,
        )
        .unwrap();
    let t0 = Instant::now();
    checker.stop();
    checker.stop();
    assert!(t0.elapsed() < 500 * MS);
    checker.passive_failure(0); // after stop: a no-op
}

#[test]
fn a_trickling_answer_still_ends_at_the_timeout() {
    // One byte every 40 ms: progress, but no status line within the 200 ms timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        for b in b"HTTP/1.1 200 OK" {
            thread::sleep(40 * MS);
            if conn.write_all(&[*b]).is_err() {
                break;
            }
        }
    });
    let t0 = Instant::now();
    let (checker, rx) = spawn(vec![target("slow", addr, check(http("GET / HTTP/1.0")))]);
    assert!(checker.wait_first_round(WAIT));
    assert!(t0.elapsed() < 450 * MS, "took {:?}", t0.elapsed());
    let change = &next(&rx)[0];
    assert!(
        change
            .to_string()
            .starts_with("server t/slow is DOWN: read timeout after 200ms (first check"),
        "{}",
        change.to_string()
    );
    drop(checker);
    server.join().unwrap();
}
