//! Many connections at once on one worker, and no descriptor left behind once every kind of
//! connection (normal, reset by either side, refused by every server) has closed.

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
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

/// One client connection of the given kind; panics if it does not behave as that kind must.
fn exercise(
    kind: usize,
    i: usize,
    splice: SocketAddr,
    copy: SocketAddr,
    reset_fe: SocketAddr,
    dead_fe: SocketAddr,
) {
    let data = seeded_bytes(i as u64, 1024 * (1 + i % 256));
    match kind {
        // Normal exchange, alternately through a splice and a copy frontend.
        0 | 1 => {
            let mut c = connect(if kind == 0 { splice } else { copy });
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
            let mut c = connect(splice);
            c.write_all(&data[..data.len().min(16 * 1024)])
                .expect("write");
            let mut buf = [0u8; 512];
            let _ = c.read(&mut buf).expect("first echo bytes");
            reset(c);
        }
        // The server resets.
        3 => {
            let mut c = connect(reset_fe);
            c.write_all(b"hello").expect("write");
            let mut buf = [0u8; 64];
            match c.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                other => panic!("connection {i}: expected a reset, got {other:?}"),
            }
        }
        // No server accepts.
        _ => {
            let mut c = connect(dead_fe);
            let mut buf = [0u8; 64];
            match c.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                other => panic!("connection {i}: expected a close, got {other:?}"),
            }
        }
    }
}

/// Pushes a few hundred connections of every kind through two workers, then requires the
/// process's descriptor count to come back exactly to where it started.
#[test]
fn no_descriptor_leak() {
    const CONNS: usize = 400;
    const THREADS: usize = 4;
    let echo = Backend::echo();
    let resetter = Backend::resetter();
    let [p_splice, p_copy, p_reset, p_dead] = [free_port(), free_port(), free_port(), free_port()];
    let cfg = format!(
        r#"{{
  "workers": 2,
  "frontends": [
    {{ "name": "splice", "bind": ["127.0.0.1:{p_splice}"], "backend": "echo", "forward": "splice", "log": true }},
    {{ "name": "copy", "bind": ["127.0.0.1:{p_copy}"], "backend": "echo", "forward": "copy", "log": true }},
    {{ "name": "reset", "bind": ["127.0.0.1:{p_reset}"], "backend": "reset", "log": true }},
    {{ "name": "dead", "bind": ["127.0.0.1:{p_dead}"], "backend": "dead", "log": true }}
  ],
  "backends": [
    {{ "name": "echo", "servers": {} }},
    {{ "name": "reset", "servers": {} }},
    {{ "name": "dead", "retries": 1, "servers": {} }}
  ]
}}"#,
        servers(&[echo.addr()]),
        servers(&[resetter.addr()]),
        servers(&[refused_addr(), refused_addr()]),
    );
    let lb = Ringlb::start(&cfg);
    let before = settled_fds(&lb);

    let addrs = [p_splice, p_copy, p_reset, p_dead].map(frontend);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in (t..CONNS).step_by(THREADS) {
                    exercise(i % 5, i, addrs[0], addrs[1], addrs[2], addrs[3]);
                }
            })
        })
        .collect();
    for w in workers {
        if w.join().is_err() {
            panic!("a client thread failed; log tail:\n{}", tail(&lb.log()));
        }
    }

    let logged = wait_for(Duration::from_secs(10), || {
        (lb.conn_lines().len() >= CONNS).then_some(())
    });
    assert!(
        logged.is_some(),
        "not every connection was logged as closed"
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
