//! Many connections at once on one worker, and no descriptor left behind once every kind of
//! connection (normal, reset by either side, refused by every server) has closed.

pub mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use common::*;

/// A distinct payload per connection: its index, then 100..500 seeded bytes.
fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("conn {i:04} ").into_bytes();
    p.extend(seeded_bytes(i as u64, 100 + i % 400));
    p
}

/// 2,000 client connections through one worker, all open before any payload is sent and
/// none closed before every echo came back.
#[test]
fn two_thousand_concurrent_connections_on_one_worker() {
    const CONNS: usize = 2000;
    let echo = Backend::echo();
    let port = free_port();
    let lb = Ringlb::start(&config(1, port, "", "", &servers(&[echo.addr()])));

    let mut clients = Vec::with_capacity(CONNS);
    for i in 0..CONNS {
        match std::net::TcpStream::connect_timeout(&frontend(port), Duration::from_secs(5)) {
            Ok(s) => {
                set_timeouts(&s, IO_TIMEOUT);
                clients.push(s);
            }
            Err(e) => panic!("connection {i} of {CONNS}: {e}; log:\n{}", lb.log()),
        }
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .write_all(&payload(i))
            .unwrap_or_else(|e| panic!("connection {i}: write: {e}"));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let want = payload(i);
        let mut got = vec![0u8; want.len()];
        if let Err(e) = client.read_exact(&mut got) {
            panic!(
                "connection {i}: no echo: {e}; tail of log:\n{}",
                tail(&lb.log())
            );
        }
        assert!(got == want, "connection {i}: echo differs");
    }
    drop(clients);

    // Every connection is logged once it has closed.
    let logged = wait_for(Duration::from_secs(20), || {
        let n = lb.conn_lines().len();
        (n >= CONNS).then_some(n)
    });
    let lines = lb.conn_lines();
    assert_eq!(logged, Some(CONNS), "conn log lines after closing all");
    let mut ends = BTreeMap::new();
    for line in &lines {
        *ends.entry(line.end().to_owned()).or_insert(0) += 1;
    }
    assert_eq!(
        ends,
        BTreeMap::from([("client_close".to_owned(), CONNS)]),
        "end= of the 2,000 connections"
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<_> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Counts of descriptor kinds ("socket", "pipe", "anon_inode:[io_uring]" ...).
fn fd_kinds(fds: &[String]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for fd in fds {
        let kind = match fd.split_once(":[") {
            Some((kind, _)) if kind == "socket" || kind == "pipe" => kind.to_owned(),
            _ => fd.clone(),
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// Waits until the fd count of `lb` has not changed for 500 ms; returns it.
fn settled_fds(lb: &Ringlb) -> Vec<String> {
    let mut last = lb.fds();
    let mut stable = 0;
    for _ in 0..100 {
        thread::sleep(Duration::from_millis(100));
        let now = lb.fds();
        if now.len() == last.len() {
            stable += 1;
            if stable == 5 {
                return now;
            }
        } else {
            stable = 0;
        }
        last = now;
    }
    panic!("descriptor count of ringlb never settled");
}

/// The frontends of the leak test, one per way a connection can end.
#[derive(Clone, Copy)]
struct LeakFrontends {
    splice: SocketAddr,
    copy: SocketAddr,
    reset: SocketAddr,
    dead: SocketAddr,
    blackhole: SocketAddr,
    idle: SocketAddr,
}

/// One client connection of kind `i % 5`; panics if it does not behave as that kind must.
fn exercise(fe: LeakFrontends, i: usize) {
    let data = seeded_bytes(i as u64, 1024 * (1 + i % 256));
    match i % 5 {
        // Normal exchange, alternately through a splice and a copy frontend.
        kind @ (0 | 1) => {
            let mut c = connect(if kind == 0 { fe.splice } else { fe.copy });
            let mut writer = c.try_clone().unwrap();
            let to_send = data.clone();
            let w = thread::spawn(move || {
                writer.write_all(&to_send)?;
                writer.shutdown(Shutdown::Write)
            });
            let back = read_to_eof(&mut c, data.len() * 2).expect("echo");
            w.join().unwrap().expect("write");
            assert!(back == data, "connection {i}: echo differs");
        }
        // The client resets mid-stream.
        2 => {
            let mut c = connect(fe.splice);
            c.write_all(&data[..data.len().min(16 * 1024)])
                .expect("write");
            let mut buf = [0u8; 512];
            let _ = c.read(&mut buf).expect("first echo bytes");
            reset(c);
        }
        // The server resets.
        3 => {
            let mut c = connect(fe.reset);
            c.write_all(b"hello").expect("write");
            let mut buf = [0u8; 64];
            match c.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                other => panic!("connection {i}: expected a reset, got {other:?}"),
            }
        }
        // No server accepts.
        _ => {
            let (_, connected) = connect_from_known_port(fe.dead);
            if let Err(e) = closed_by_peer(connected) {
                panic!("connection {i}: {e}");
            }
        }
    }
}

/// Connections whose first connect times out before the next server answers.
fn exercise_connect_timeouts(fe: LeakFrontends, n: usize) {
    for i in 0..n {
        let mut c = connect(fe.blackhole);
        let msg = format!("slow {i}");
        c.write_all(msg.as_bytes()).expect("write");
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back)
            .expect("echo after a connect timeout");
        assert_eq!(back, msg.as_bytes());
    }
}

/// Connections left idle, all at once, until the balancer times them out.
fn exercise_idle_timeouts(fe: LeakFrontends, n: usize) {
    let mut conns: Vec<TcpStream> = (0..n).map(|_| connect(fe.idle)).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let msg = format!("idle {i}");
        c.write_all(msg.as_bytes()).expect("write");
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back).expect("echo");
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let mut buf = [0u8; 16];
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("idle connection {i}: expected a close, got {other:?}"),
        }
    }
}

/// Pushes a few hundred connections of every kind through two workers — normal, reset by
/// either side, refused by every server, failed over after a connect timeout, closed by an
/// idle timeout — then requires the process's descriptor count to come back exactly to
/// where it started.
#[test]
fn no_descriptor_leak() {
    const CONNS: usize = 400;
    const THREADS: usize = 4;
    const SLOW: usize = 6;
    const IDLE: usize = 20;
    let echo = Backend::echo();
    let resetter = Backend::resetter();
    let blackhole = FullBacklog::open();
    let ports = [(); 6].map(|_| free_port());
    let [p_splice, p_copy, p_reset, p_dead, p_blackhole, p_idle] = ports;
    let cfg = format!(
        r#"{{
  "workers": 2,
  "frontends": [
    {{ "name": "splice", "bind": ["127.0.0.1:{p_splice}"], "backend": "echo", "forward": "splice", "log": true }},
    {{ "name": "copy", "bind": ["127.0.0.1:{p_copy}"], "backend": "echo", "forward": "copy", "log": true }},
    {{ "name": "reset", "bind": ["127.0.0.1:{p_reset}"], "backend": "reset", "log": true }},
    {{ "name": "dead", "bind": ["127.0.0.1:{p_dead}"], "backend": "dead", "log": true }},
    {{ "name": "blackhole", "bind": ["127.0.0.1:{p_blackhole}"], "backend": "blackhole", "log": true }},
    {{ "name": "idle", "bind": ["127.0.0.1:{p_idle}"], "backend": "idle", "log": true }}
  ],
  "backends": [
    {{ "name": "echo", "servers": {echo} }},
    {{ "name": "reset", "servers": {reset} }},
    {{ "name": "dead", "retries": 1, "servers": {dead} }},
    {{ "name": "blackhole", "retries": 1, "timeouts": {{ "connect": "300ms" }},
       "servers": {blackhole} }},
    {{ "name": "idle", "timeouts": {{ "client": "300ms" }}, "servers": {echo} }}
  ]
}}"#,
        echo = servers(&[echo.addr()]),
        reset = servers(&[resetter.addr()]),
        dead = servers(&[refused_addr(), refused_addr()]),
        blackhole = servers(&[blackhole.addr(), echo.addr()]),
    );
    let lb = Ringlb::start(&cfg);
    let before = settled_fds(&lb);

    let fe = LeakFrontends {
        splice: frontend(p_splice),
        copy: frontend(p_copy),
        reset: frontend(p_reset),
        dead: frontend(p_dead),
        blackhole: frontend(p_blackhole),
        idle: frontend(p_idle),
    };
    let mut clients: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in (t..CONNS).step_by(THREADS) {
                    exercise(fe, i);
                }
            })
        })
        .collect();
    clients.push(thread::spawn(move || exercise_connect_timeouts(fe, SLOW)));
    clients.push(thread::spawn(move || exercise_idle_timeouts(fe, IDLE)));
    for c in clients {
        if c.join().is_err() {
            panic!("a client thread failed; log tail:\n{}", tail(&lb.log()));
        }
    }

    let total = CONNS + SLOW + IDLE;
    let logged = wait_for(Duration::from_secs(10), || {
        (lb.conn_lines().len() >= total).then_some(())
    });
    assert!(
        logged.is_some(),
        "only {} of {total} connections logged as closed",
        lb.conn_lines().len()
    );
    let back = wait_for(Duration::from_secs(10), || {
        (lb.fd_count() == before.len()).then_some(())
    });
    if back.is_none() {
        let after = lb.fds();
        panic!(
            "ringlb holds {} descriptors, {} before the connections: before {:?}, after {:?}",
            after.len(),
            before.len(),
            fd_kinds(&before),
            fd_kinds(&after)
        );
    }
}
