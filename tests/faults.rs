//! Faults in threads (test builds with the `test-hooks` feature only): a helper thread
//! that panics is restarted and forwarding never notices; a worker that panics closes its
//! connections and the process stops with a non-zero status and a clear log line, so that
//! the service manager restarts it; a frozen worker leaves the accept path and the other
//! worker takes its connections, queued ones included.

pub mod common;

use std::net::SocketAddr;
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

#[test]
fn a_worker_fault_stops_the_process_non_zero_with_a_clear_line() {
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
    send_rt(&lb, 1);
    let status = lb
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running after a worker fault; log:\n{}", lb.log()));
    assert_eq!(status.code(), Some(1), "log:\n{}", lb.log());
    let log = lb.log();
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
    let echo = Backend::echo();
    let port = free_port();
    let mut lb = Ringlb::launch(
        &config(2, port, "", "", &servers(&[echo.addr()]))
            .replace("\"workers\": 2,", "\"workers\": 2, \"grace\": \"1s\","),
        &Launch {
            env: &[("RINGLB_TEST_FAULTS", "1")],
            ..Launch::default()
        },
    );
    let mut c = connect(frontend(port));
    assert!(echoes(&mut c, b"before", Duration::from_secs(2)));
    send_rt(&lb, 5);
    let status = lb
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running after a ring failure; log:\n{}", lb.log()));
    assert_eq!(status.code(), Some(1), "log:\n{}", lb.log());
    let log = lb.log();
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
