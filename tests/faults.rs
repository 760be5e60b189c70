//! Faults in threads (test builds with the `test-hooks` feature only): a helper thread
//! that panics is restarted and forwarding never notices; a worker that panics closes its
//! connections and the process stops with a non-zero status and a clear log line, so that
//! the service manager restarts it; a frozen worker leaves the accept path and the other
//! worker takes its connections, queued ones included; stalled workers stop systemd's
//! watchdog pings until they turn again.

pub mod common;

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Sends SIGRTMIN+n (the fault switches sit on real-time signals, which nix cannot name).
fn send_rt(lb: &Ringlb, n: i32) {
    // SAFETY: kill(2) with a pid we started and a valid signal number.
    let rc = unsafe { libc::kill(lb.pid() as i32, libc::SIGRTMIN() + n) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

#[test]
fn a_health_thread_fault_is_restarted_and_forwarding_goes_on() {
    let echo = Backend::echo();
    let mut web = NamedServer::start("web1");
    let port = free_port();
    let stats = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        r#"{{ "workers": 2, "stats": {{ "bind": "{stats}" }},
  "frontends": [ {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be", "log": true }} ],
  "backends": [ {{ "name": "be",
     "health_check": {{ "type": "tcp", "interval": "100ms", "rise": 1, "fall": 1, "timeout": "1s" }},
     "servers": [ {{ "name": "echo", "addr": "{}" }}, {{ "name": "web1", "addr": "{}" }} ] }} ] }}"#,
        echo.addr(),
        web.addr()
    );
    let lb = Ringlb::launch(
        &config,
        &Launch {
            env: &[("RINGLB_TEST_FAULTS", "1")],
            ..Launch::default()
        },
    );
    let mut before = connect(frontend(port));
    send_rt(&lb, 2);
    lb.wait_for_line(Duration::from_secs(5), |l| {
        l.contains("health thread fault #1: restarting it")
    })
    .unwrap_or_else(|| panic!("no restart logged; log:\n{}", lb.log()));
    assert!(
        lb.log().contains("thread ringlb-health panicked at"),
        "the panic itself is not logged; log:\n{}",
        lb.log()
    );

    // Forwarding never stopped, and the restarted checker still sees a server go down.
    let _ = echoes(&mut before, b"x", Duration::from_secs(2));
    web.stop();
    lb.wait_for_line(Duration::from_secs(5), |l| {
        l.contains("server be/web1 is DOWN")
    })
    .unwrap_or_else(|| panic!("the restarted checker saw nothing; log:\n{}", lb.log()));
    for _ in 0..20 {
        let mut c = connect(frontend(port));
        assert!(echoes(&mut c, b"after the fault", Duration::from_secs(2)));
    }
    let metrics = http_get(stats, "/metrics").expect("metrics");
    assert!(
        metrics.contains("ringlb_thread_faults_total{thread=\"health\"} 1"),
        "fault not counted:\n{metrics}"
    );
}

/// Starts two workers with the fault switches armed, checks one connection, sends
/// SIGRTMIN+`switch` (a fault of worker 0) and returns the log once the process has exited
/// with status 1.
fn worker_fault_exit_log(switch: i32) -> String {
    let echo = Backend::echo();
    let port = free_port();
    let mut lb = Ringlb::launch(
        &config(
            2,
            port,
            "",
            r#", "timeouts": { "client": "5s", "server": "5s" }"#,
            &servers(&[echo.addr()]),
        )
        .replace("\"workers\": 2,", "\"workers\": 2, \"grace\": \"1s\","),
        &Launch {
            env: &[("RINGLB_TEST_FAULTS", "1")],
            ..Launch::default()
        },
    );
    let mut c = connect(frontend(port));
    assert!(echoes(&mut c, b"before", Duration::from_secs(2)));
    send_rt(&lb, switch);
    let status = lb
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running after a worker fault; log:\n{}", lb.log()));
    assert_eq!(status.code(), Some(1), "log:\n{}", lb.log());
    lb.log()
}

#[test]
fn a_worker_fault_stops_the_process_non_zero_with_a_clear_line() {
    let log = worker_fault_exit_log(1);
    assert!(
        log.contains("thread ringlb-w0 panicked at")
            && log.contains("worker 0 failed: panicked: test fault switch")
            && log.contains("stopping (exit status 1)"),
        "log:\n{log}"
    );
}

/// A ring that fails (here io_uring_enter answering EFAULT, by the test switch) ends the
/// process with status 1 and a line naming the worker and the call, instead of a worker
/// thread vanishing with its connections.
#[test]
fn a_ring_failure_stops_the_process_non_zero_with_a_clear_line() {
    let log = worker_fault_exit_log(5);
    assert!(
        log.contains("worker 0 failed: io_uring")
            && log.contains("Bad address")
            && log.contains("stopping (exit status 1)"),
        "log:\n{log}"
    );
}

/// A completion queue with no room makes io_uring_enter answer EBUSY; the worker reaps
/// completions and goes on (here a thousand EBUSY answers in a row, by the test switch,
/// while connections come and go).
#[test]
fn a_busy_ring_is_reaped_and_forwarding_goes_on() {
    let echo = Backend::echo();
    let port = free_port();
    let lb = Ringlb::launch(
        &config(1, port, "", "", &servers(&[echo.addr()])),
        &Launch {
            env: &[("RINGLB_TEST_FAULTS", "1")],
            ..Launch::default()
        },
    );
    let mut held = connect(frontend(port));
    assert!(echoes(&mut held, b"before", Duration::from_secs(2)));
    send_rt(&lb, 6);
    for i in 0..50 {
        let mut c = connect(frontend(port));
        assert!(
            echoes(
                &mut c,
                format!("during {i}").as_bytes(),
                Duration::from_secs(2)
            ),
            "connection {i} while the ring is busy; log:\n{}",
            lb.log()
        );
    }
    assert!(echoes(&mut held, b"after", Duration::from_secs(2)));
    let log = lb.log();
    assert!(!log.contains("failed"), "log:\n{log}");
}

/// Opens a connection every 10 ms for `run`, each with a 500 ms answer timeout (as the
/// lab's client), calling `at(elapsed)` between attempts; returns (attempts, failures).
fn probe(addr: SocketAddr, run: Duration, mut at: impl FnMut(Duration)) -> (usize, usize) {
    let start = Instant::now();
    let mut attempts = Vec::new();
    while start.elapsed() < run {
        at(start.elapsed());
        attempts.push(thread::spawn(move || {
            let Ok(mut c) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            else {
                return false;
            };
            echoes(&mut c, b"ping", Duration::from_millis(500))
        }));
        thread::sleep(Duration::from_millis(10));
    }
    let n = attempts.len();
    let failed = attempts
        .into_iter()
        .map(|a| a.join())
        .filter(|ok| !matches!(ok, Ok(true)))
        .count();
    (n, failed)
}

#[test]
fn a_frozen_worker_leaves_the_accept_path_and_its_queue_moves_on() {
    let echo = Backend::echo();
    let port = free_port();
    let lb = Ringlb::launch(
        &config(2, port, "", "", &servers(&[echo.addr()])),
        &Launch {
            env: &[("RINGLB_TEST_FAULTS", "1")],
            ..Launch::default()
        },
    );
    // Worker 1 freezes at 0.3 s for 1.5 s: without leaving the accept path, half of the
    // ~150 connections of that time would wait on its listener past their timeout.
    let (mut frozen, mut thawed) = (false, false);
    let (attempts, failures) = probe(frontend(port), Duration::from_millis(2_300), |t| {
        if !frozen && t >= Duration::from_millis(300) {
            frozen = true;
            send_rt(&lb, 4);
        }
        if !thawed && t >= Duration::from_millis(1_800) {
            thawed = true;
            send_rt(&lb, 4);
        }
    });
    let log = lb.log();
    eprintln!("frozen worker: {failures} of {attempts} connections failed");
    assert!(
        log.contains("worker 1 has not turned its loop for"),
        "the stall is not noticed; log:\n{log}"
    );
    assert!(
        failures <= 2,
        "{failures} of {attempts} connections failed with one of two workers frozen; log:\n{log}"
    );
    lb.wait_for_line(Duration::from_secs(5), |l| {
        l.contains("worker 1: back in the accept path on")
    })
    .unwrap_or_else(|| panic!("worker 1 does not listen again; log:\n{}", lb.log()));
    // Both workers accept again: nothing fails, and worker 1 takes its share.
    let (attempts, failures) = probe(frontend(port), Duration::from_millis(500), |_| {});
    assert_eq!(
        failures, 0,
        "{failures} of {attempts} failed after the thaw"
    );
}

/// The datagrams that reach systemd's stand-in within `window`: (watchdog pings, others).
fn notifications_for(sock: &UnixDatagram, window: Duration) -> (usize, usize) {
    let (mut pings, mut others) = (0, 0);
    let deadline = Instant::now() + window;
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left)).expect("read timeout");
        match sock.recv(&mut buf) {
            Ok(n) if &buf[..n] == b"WATCHDOG=1" => pings += 1,
            Ok(_) => others += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }
    (pings, others)
}

/// Throws away what is queued on the notify socket.
fn drain(sock: &UnixDatagram) {
    sock.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 4096];
    while sock.recv(&mut buf).is_ok() {}
    sock.set_nonblocking(false).expect("blocking");
}

#[test]
fn stalled_workers_stop_the_systemd_watchdog_pings_until_they_turn_again() {
    // systemd's side: the notify socket, and WatchdogSec=1s (pings due every 500 ms).
    // Not under temp_dir: its name, made of the test's, is too long for a socket path.
    let path = std::env::temp_dir().join(format!("ringlb-wd-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    let path = path.display().to_string();
    let echo = Backend::echo();
    let port = free_port();
    let lb = Ringlb::launch(
        &config(2, port, "", "", &servers(&[echo.addr()])),
        &Launch {
            env: &[
                ("RINGLB_TEST_FAULTS", "1"),
                ("NOTIFY_SOCKET", &path),
                ("WATCHDOG_USEC", "1000000"),
            ],
            ..Launch::default()
        },
    );
    let (pings, _) = notifications_for(&sock, Duration::from_millis(1_500));
    assert!(
        pings >= 1,
        "no WATCHDOG=1 while the workers turn; log:\n{}",
        lb.log()
    );

    send_rt(&lb, 3);
    lb.wait_for_line(Duration::from_secs(5), |l| {
        l.contains("not pinging the systemd watchdog")
    })
    .unwrap_or_else(|| panic!("the stall is not noticed; log:\n{}", lb.log()));
    // Pings sent before the stall was seen are old news.
    drain(&sock);
    let (pings, others) = notifications_for(&sock, Duration::from_millis(2_000));
    assert_eq!(pings, 0, "WATCHDOG=1 sent while every worker is stalled");
    // The control thread still ticks (its STATUS= lines): holding the pings is its choice.
    assert!(
        others >= 2,
        "{others} status lines in 2 s: the control thread is not ticking"
    );

    send_rt(&lb, 3);
    let (pings, _) = notifications_for(&sock, Duration::from_millis(2_000));
    assert!(
        pings >= 1,
        "no WATCHDOG=1 within 2 s of the workers turning again; log:\n{}",
        lb.log()
    );
    let _ = std::fs::remove_file(&path);
}
