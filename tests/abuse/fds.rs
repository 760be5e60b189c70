//! Abuse: file-descriptor exhaustion. ringlb shares its fd limit out at start (`limits`):
//! connections get a budget, and every accept reserves a whole connection's fds (client
//! and server socket) before it is armed. So accepting stops before the budget, what
//! arrives past it waits in the kernel's accept queue, an accepted client always gets its
//! server socket, and connections held back by `maxconn` are few and bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use crate::common::*;

/// The fd limit of the ringlb under test: with two workers and one bind, about fifty
/// connections' worth once the reserve and the pipes are set aside.
const NOFILE: u64 = 600;

/// The number in `fd limit N allows M connections`.
fn budget(lb: &Ringlb) -> usize {
    let line = lb
        .wait_for_line(Duration::from_secs(5), |l| l.contains(" allows "))
        .expect("fd plan line");
    line.split(" allows ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no budget in {line:?}"))
}

/// An echo server whose connections may sit idle for the whole test.
fn patient_echo() -> Backend {
    Backend::spawn_with_timeout(Duration::from_secs(60), |mut s| {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    })
}

/// Whether `msg` (sent earlier) has come back on `c` within `timeout`.
fn answered(c: &mut TcpStream, msg: &[u8], timeout: Duration) -> bool {
    let _ = c.set_read_timeout(Some(timeout));
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got).is_ok() && got == msg
}

#[test]
fn connections_past_the_fd_budget_wait_and_are_never_reset() {
    let echo = patient_echo();
    let port = free_port();
    let lb = Ringlb::launch(
        &config(2, port, "", "", &servers(&[echo.addr()])),
        &Launch {
            nofile: Some(NOFILE),
            ..Launch::default()
        },
    );
    let n = budget(&lb);
    assert!((16..200).contains(&n), "budget {n} for {NOFILE} fds");

    // Every connection the budget allows is served; `extra` more wait in the kernel.
    let extra = 20;
    let msg = |i: usize| format!("hello {i}\n").into_bytes();
    let mut clients: Vec<(usize, TcpStream)> = (0..n + extra)
        .map(|i| {
            let mut c = connect(frontend(port));
            c.write_all(&msg(i)).expect("send");
            (i, c)
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for (i, mut c) in clients.drain(..) {
        if answered(&mut c, &msg(i), Duration::from_millis(20)) {
            served.push(c);
        } else {
            waiting.push((i, c));
        }
    }
    // Accepts armed on a quiet listener may hold back one connection per worker.
    assert!(
        served.len() + 2 >= n && served.len() <= n,
        "{} of {} connections served with a budget of {n}; log:\n{}",
        served.len(),
        n + extra,
        lb.log()
    );
    assert!(waiting.len() >= extra);

    // Room comes back as served clients leave: every waiting one is served, none reset.
    // (One accept per worker stays armed on its listener, holding one connection's fds.)
    served.truncate(served.len() - waiting.len() - 2);
    for (i, c) in &mut waiting {
        assert!(
            answered(c, &msg(*i), Duration::from_secs(5)),
            "waiting connection {i} not served once room came back; log:\n{}",
            lb.log()
        );
        assert!(echoes(c, b"again\n", Duration::from_secs(2)));
    }
    drop(served);
    drop(waiting);
    let log = lb.log();
    assert!(
        !log.contains("end=no_server") && !log.contains("Too many open files"),
        "a client failed for want of an fd; log:\n{log}"
    );
}

#[test]
fn connections_held_by_maxconn_are_bounded() {
    let echo = patient_echo();
    let port = free_port();
    let lb = Ringlb::start(&config(
        2,
        port,
        r#", "maxconn": 4"#,
        "",
        &servers(&[echo.addr()]),
    ));
    thread::sleep(Duration::from_millis(200));
    let before = lb.fd_count();
    let clients: Vec<TcpStream> = (0..200).map(|_| connect(frontend(port))).collect();
    thread::sleep(Duration::from_millis(500));
    let grown = lb.fd_count().saturating_sub(before);
    // Four connections (two sockets each) plus at most one armed batch of accepts per
    // worker that completed into the held queue; the rest wait in the kernel.
    assert!(
        grown <= 4 * 2 + 2 * 16,
        "ringlb holds {grown} more fds with maxconn 4 and 200 clients; log:\n{}",
        lb.log()
    );
    drop(clients);
}
