//! Hot reload on SIGHUP and graceful shutdown on SIGTERM, through the real binary: no
//! connection lost or cut short across 100 reloads under load, broken files leave the old
//! config serving, servers and frontends come and go within a second, health state and the
//! worker count survive a reload, and SIGTERM drains then exits 0.
//!
//! Every config file is replaced with one rename (`Ringlb::write_config`), and each SIGHUP
//! waits for the `reload #N` line of the one before, so that no two signals merge into one.

pub mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use sha2::{Digest, Sha256};

use common::*;

// ---------------------------------------------------------------------------------------------
// Configs

/// A config with one backend `be` that every frontend uses.
#[derive(Clone)]
struct Cfg {
    workers: u32,
    /// Further top-level members, each starting with a comma (`, "grace": "2s"`).
    globals: String,
    /// (name, port) of each frontend, all on 127.0.0.1.
    frontends: Vec<(&'static str, u16)>,
    /// Further members of the backend, each starting with a comma.
    backend_extra: String,
    /// (name, address, weight) of each server.
    servers: Vec<(&'static str, SocketAddr, u32)>,
}

impl Cfg {
    fn new(port: u16, servers: &[(&'static str, SocketAddr, u32)]) -> Cfg {
        Cfg {
            workers: 2,
            globals: String::new(),
            frontends: vec![("fe", port)],
            backend_extra: String::new(),
            servers: servers.to_vec(),
        }
    }

    fn json(&self) -> String {
        let frontends: Vec<String> = self
            .frontends
            .iter()
            .map(|(name, port)| {
                format!(
                    r#"{{ "name": "{name}", "bind": ["127.0.0.1:{port}"], "backend": "be", "log": true }}"#
                )
            })
            .collect();
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|(name, addr, weight)| {
                format!(r#"{{ "name": "{name}", "addr": "{addr}", "weight": {weight} }}"#)
            })
            .collect();
        format!(
            r#"{{
  "workers": {}{},
  "frontends": [
    {}
  ],
  "backends": [
    {{ "name": "be"{}, "servers": [
      {}
    ] }}
  ]
}}"#,
            self.workers,
            self.globals,
            frontends.join(",\n    "),
            self.backend_extra,
            servers.join(",\n      ")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// A connection to a greeting `NamedServer` through the balancer, its server's name read:
/// it echoes from here on.
struct NamedConn {
    local: SocketAddr,
    stream: TcpStream,
    name: String,
}

impl NamedConn {
    /// Connects through `addr` and reads the server's name; the client address comes back
    /// even when that fails, to find the connection's log line.
    fn open(addr: SocketAddr) -> (SocketAddr, io::Result<NamedConn>) {
        let (local, connected) = connect_from_known_port(addr);
        let conn = connected.and_then(|mut stream| {
            let name = read_line(&mut stream)?;
            Ok(NamedConn {
                local,
                stream,
                name,
            })
        });
        (local, conn)
    }

    fn must_open(lb: &Ringlb, addr: SocketAddr) -> NamedConn {
        let (local, conn) = NamedConn::open(addr);
        conn.unwrap_or_else(|e| panic!("client {local} through {addr}: {e}; log:\n{}", lb.log()))
    }

    /// Opens connections until one is served by `server` (at most 20).
    fn open_to(lb: &Ringlb, addr: SocketAddr, server: &str) -> NamedConn {
        for _ in 0..20 {
            let conn = NamedConn::must_open(lb, addr);
            if conn.name == server {
                return conn;
            }
        }
        panic!(
            "no connection reached {server} in 20 tries; log:\n{}",
            lb.log()
        );
    }

    /// Sends `msg` and reads it back.
    fn echo(&mut self, msg: &[u8]) -> io::Result<()> {
        self.stream.write_all(msg)?;
        let mut back = vec![0u8; msg.len()];
        self.stream.read_exact(&mut back)?;
        if back != msg {
            return Err(io::Error::other("echo differs"));
        }
        Ok(())
    }

    /// Half-closes, expects the server's EOF with nothing before it, closes.
    fn finish(mut self) -> io::Result<SocketAddr> {
        self.stream.shutdown(Shutdown::Write)?;
        let rest = read_to_eof(&mut self.stream, 1024)?;
        if !rest.is_empty() {
            return Err(io::Error::other(format!(
                "{} bytes after the echo",
                rest.len()
            )));
        }
        Ok(self.local)
    }
}

/// One line, without its newline (at most 64 bytes).
fn read_line(stream: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("closed after {:?}", String::from_utf8_lossy(&line)),
            ));
        }
        line.push(byte[0]);
        if line.len() > 64 {
            return Err(io::Error::other("line too long"));
        }
    }
    line.pop();
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// A whole short connection to a greeting `NamedServer`: name, one echo, half-close, EOF.
/// Returns the server's name.
fn fetch(addr: SocketAddr) -> (SocketAddr, io::Result<String>) {
    let (local, conn) = NamedConn::open(addr);
    let result = conn.and_then(|mut conn| {
        conn.echo(b"ping\n")
            .map_err(|e| io::Error::new(e.kind(), format!("after the name: {e}")))?;
        let name = conn.name.clone();
        conn.finish()?;
        Ok(name)
    });
    (local, result)
}

fn must_fetch(lb: &Ringlb, addr: SocketAddr) -> String {
    let (local, result) = fetch(addr);
    result.unwrap_or_else(|e| panic!("client {local}: {e}; log:\n{}", lb.log()))
}

/// Whether a connect to `addr` is refused right now.
fn refused(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused
    )
}

/// What a client loop saw: connections that worked, and the ones that did not with when
/// and why.
#[derive(Default)]
struct LoopStats {
    ok: u64,
    failures: Vec<Failure>,
}

struct Failure {
    local: SocketAddr,
    at: Instant,
    error: String,
}

/// One short exchange with an echo server: connect, write a message unique to (`id`, `k`),
/// read it back byte-exact, half-close, expect EOF.
fn short_exchange(addr: SocketAddr, id: usize, k: u64) -> (SocketAddr, Result<(), String>) {
    // Not `connect_from_known_port`: binding before connecting cannot reuse a port in
    // TIME_WAIT, and a tight loop leaves thousands. A failed connect was never accepted.
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            return (
                SocketAddr::from(([0, 0, 0, 0], 0)),
                Err(format!("connect: {e}")),
            )
        }
    };
    set_timeouts(&s, IO_TIMEOUT);
    let local = s.local_addr().expect("client address");
    let result = (|| {
        let msg = format!(
            "client {id} connection {k} {}\n",
            "x".repeat((k % 200) as usize)
        );
        s.write_all(msg.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back)
            .map_err(|e| format!("read echo: {e}"))?;
        if back != msg.as_bytes() {
            return Err("echo differs".to_string());
        }
        s.shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        match read_to_eof(&mut s, 1024) {
            Ok(rest) if rest.is_empty() => Ok(()),
            Ok(rest) => Err(format!("{} bytes after the echo", rest.len())),
            Err(e) => Err(format!("read EOF: {e}")),
        }
    })();
    (local, result)
}

/// At most this many short connections a second per client loop: as fast as this machine
/// goes in a debug build, and a cap on the TIME_WAIT sockets the loops leave on loopback
/// (each connection leaves two, and binding port 0 fails once they hold every port).
const SHORT_RATE: u32 = 2000;

/// Short exchanges in a tight loop (at most `SHORT_RATE` a second) until `stop` (or a 60 s
/// safety bound).
fn spawn_short_loop(
    addr: SocketAddr,
    id: usize,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<LoopStats> {
    thread::spawn(move || {
        let mut stats = LoopStats::default();
        let start = Instant::now();
        let bound = start + Duration::from_secs(60);
        let pace = Duration::from_secs(1) / SHORT_RATE;
        let mut k = 0u64;
        while !stop.load(Ordering::Relaxed) && Instant::now() < bound {
            k += 1;
            let due = start + pace * k as u32;
            if let Some(early) = due.checked_duration_since(Instant::now()) {
                thread::sleep(early);
            }
            match short_exchange(addr, id, k) {
                (_, Ok(())) => stats.ok += 1,
                (local, Err(error)) => {
                    stats.failures.push(Failure {
                        local,
                        at: Instant::now(),
                        error,
                    });
                    // A broken balancer should not make the loop spin.
                    thread::sleep(Duration::from_millis(5));
                }
            }
        }
        stats
    })
}

/// A long-lived stream with data flowing both ways: one thread writes seeded chunks of
/// varying size every 2 ms until `stop`, another reads the echo; at `stop` the writer
/// half-closes and both sides' byte counts and sha256 must agree. Returns the client
/// address and the bytes moved.
fn spawn_long_stream(
    addr: SocketAddr,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Result<(SocketAddr, u64), String>> {
    thread::spawn(move || {
        let (local, connected) = connect_from_known_port(addr);
        let mut stream = connected.map_err(|e| format!("{local}: connect: {e}"))?;
        let mut reader = stream
            .try_clone()
            .map_err(|e| format!("{local}: clone: {e}"))?;
        let echoed = thread::spawn(move || hash_to_eof(&mut reader));
        let mut data = SeededData::new(seed, usize::MAX);
        let mut hasher = Sha256::new();
        let mut sent = 0u64;
        let mut buf = vec![0u8; 8 * 1024];
        let bound = Instant::now() + Duration::from_secs(60);
        let mut k = seed;
        while !stop.load(Ordering::Relaxed) && Instant::now() < bound {
            k = k
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (k >> 33) as usize % buf.len();
            let n = data.next_chunk(&mut buf[..len]);
            stream
                .write_all(&buf[..n])
                .map_err(|e| format!("{local}: write after {sent} bytes: {e}"))?;
            hasher.update(&buf[..n]);
            sent += n as u64;
            thread::sleep(Duration::from_millis(2));
        }
        stream
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("{local}: shutdown: {e}"))?;
        let (got, digest) = echoed
            .join()
            .map_err(|_| format!("{local}: reader panicked"))?
            .map_err(|e| format!("{local}: read echo: {e}"))?;
        let want: [u8; 32] = hasher.finalize().into();
        if got != sent || digest != want {
            return Err(format!(
                "{local}: sent {sent} bytes, {got} came back, digests {}",
                if digest == want { "equal" } else { "differ" }
            ));
        }
        Ok((local, sent))
    })
}

/// The failures with each one's conn log line (when the balancer logged one), for a message.
fn describe(lb: &Ringlb, failures: &[Failure]) -> String {
    let lines = lb.conn_lines();
    failures
        .iter()
        .take(10)
        .map(|f| {
            let client = f.local.to_string();
            let line = lines
                .iter()
                .find(|c| c.get("client") == Some(client.as_str()))
                .map_or("no conn line", |c| c.line.as_str());
            format!("  {client}: {} [{line}]", f.error)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The log without its conn lines (reloads, health, errors), for a message.
fn control_lines(lb: &Ringlb) -> String {
    lb.log()
        .lines()
        .filter(|l| !l.starts_with("conn "))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// Reloads under load

/// 100 reloads, alternating between two configs that differ in a weight, a removed and an
/// added server and an extra frontend, while short connections run in a tight loop and four
/// long streams move data both ways: every connection completes byte-exact.
#[test]
fn hundred_reloads_under_load_lose_no_connection() {
    let e1 = Backend::echo();
    let e2 = Backend::echo();
    let e3 = Backend::echo();
    let port = free_port();
    let extra = listener_port();
    let a = Cfg::new(port, &[("s1", e1.addr(), 1), ("s2", e2.addr(), 1)]);
    let mut b = Cfg::new(port, &[("s1", e1.addr(), 3), ("s3", e3.addr(), 1)]);
    b.frontends.push(("extra", extra));
    let (a, b) = (a.json(), b.json());
    let lb = Ringlb::start(&a);
    let addr = frontend(port);

    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..4)
        .map(|i| spawn_long_stream(addr, 100 + i, stop.clone()))
        .collect();
    let shorts: Vec<_> = (0..2)
        .map(|id| spawn_short_loop(addr, id, stop.clone()))
        .collect();
    thread::sleep(Duration::from_millis(200));

    let mut log = lb.log_cursor();
    let started = Instant::now();
    for n in 1..=100u64 {
        lb.write_config(if n % 2 == 1 { &b } else { &a });
        lb.send_signal(Signal::SIGHUP);
        let prefix = format!("ringlb: reload #{n} ");
        let line = log
            .wait_for_line(Duration::from_secs(10), |l| l.starts_with(&prefix))
            .unwrap_or_else(|| {
                stop.store(true, Ordering::Relaxed);
                panic!(
                    "no \"reload #{n}\" line within 10 s; log:\n{}",
                    control_lines(&lb)
                )
            });
        let want = match n {
            1 => "ringlb: reload #1 ok: backend be ~s1(weight 1→3) +s3 -s2; frontend extra added"
                .to_string(),
            2 => "ringlb: reload #2 ok: backend be ~s1(weight 3→1) +s2 -s3; frontend extra removed"
                .to_string(),
            _ => format!("ringlb: reload #{n} ok: "),
        };
        if !line.starts_with(&want) {
            stop.store(true, Ordering::Relaxed);
            panic!(
                "reload #{n}: {line:?}, expected {want:?}; log:\n{}",
                control_lines(&lb)
            );
        }
        // 20 to 50 ms between a reload and the next.
        thread::sleep(Duration::from_millis(20 + (n * 7) % 31));
    }
    let reloading = started.elapsed();
    // The last config has no extra frontend; the load keeps running on the old one a moment.
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);

    let mut errors = Vec::new();
    let mut moved = Vec::new();
    for s in streams {
        match s.join().expect("stream thread") {
            Ok((_, bytes)) => moved.push(bytes),
            Err(e) => errors.push(e),
        }
    }
    let mut ok = 0;
    let mut failures = Vec::new();
    for s in shorts {
        let stats = s.join().expect("short loop thread");
        ok += stats.ok;
        failures.extend(stats.failures);
    }
    assert!(
        errors.is_empty() && failures.is_empty(),
        "during {reloading:?} of 100 reloads: {} of 4 long streams and {} of {} short \
         connections failed:\n{}\n{}\nreloads:\n{}",
        errors.len(),
        failures.len(),
        ok + failures.len() as u64,
        errors.join("\n"),
        describe(&lb, &failures),
        control_lines(&lb)
    );
    assert!(ok >= 100, "only {ok} short connections in {reloading:?}");
    assert!(
        moved.iter().all(|&b| b >= 100_000),
        "long streams moved too little: {moved:?}"
    );
    let reload_lines = lb
        .log()
        .lines()
        .filter(|l| l.starts_with("ringlb: reload #") && l.contains(" ok: "))
        .count();
    assert_eq!(reload_lines, 100, "{}", control_lines(&lb));
    eprintln!(
        "100 reloads in {reloading:?}: {ok} short connections, long streams moved {moved:?} bytes"
    );
}

// ---------------------------------------------------------------------------------------------
// Broken files

/// Each kind of broken file fails its reload with an error naming the path, and the old
/// config keeps serving: the old server takes every new connection, an open one keeps
/// echoing. A valid file after them applies.
#[test]
fn broken_config_keeps_the_previous_one_serving() {
    let one = NamedServer::greeting("one");
    let two = NamedServer::greeting("two");
    let port = free_port();
    let addr = frontend(port);
    let old = Cfg::new(port, &[("s1", one.addr(), 1)]).json();
    // The file each broken one started from: if it were applied, `two` would serve.
    let new = Cfg::new(port, &[("s1", two.addr(), 1)]).json();
    let two_addr = format!(r#""addr": "{}""#, two.addr());
    let broken = [
        (
            "syntax error",
            new.replacen(r#""log": true }"#, r#""log": true, }"#, 1),
            "frontends[0]: trailing comma (line ",
        ),
        (
            "unknown backend",
            new.replacen(r#""backend": "be""#, r#""backend": "nope""#, 1),
            r#"frontends[0].backend: unknown backend "nope" (line "#,
        ),
        (
            "bad address",
            new.replacen(
                r#""weight": 1 }"#,
                r#""weight": 1 }, { "name": "s2", "addr": "127.0.0.1" }"#,
                1,
            ),
            r#"backends[0].servers[1].addr: "127.0.0.1" is not ip:port (line "#,
        ),
        (
            "unknown field",
            new.replacen(&two_addr, &format!(r#"{two_addr}, "wieght": 2"#), 1),
            "backends[0].servers[0].wieght: unknown field `wieght`",
        ),
    ];
    let lb = Ringlb::start(&old);
    let file = lb.config_path().display().to_string();
    let mut held = NamedConn::must_open(&lb, addr);
    assert_eq!(held.name, "one");

    for (i, (kind, text, error)) in broken.iter().enumerate() {
        assert_ne!(text, &new, "{kind}: the test's edit did not apply");
        let n = i as u64 + 1;
        let line = lb.reload(n, text);
        assert_eq!(
            line,
            format!(
                "ringlb: reload #{n} failed: configuration invalid; still serving the previous one"
            ),
            "{kind}; log:\n{}",
            lb.log()
        );
        let want = format!("{file}: {error}");
        let log = lb.log();
        let error_at = log
            .find(&want)
            .unwrap_or_else(|| panic!("{kind}: no error line starting {want:?}; log:\n{log}"));
        assert!(
            error_at < log.find(&line).expect("reload line"),
            "{kind}: the error comes after the failed line; log:\n{log}"
        );
        for _ in 0..4 {
            assert_eq!(
                must_fetch(&lb, addr),
                "one",
                "{kind}: routed by the broken file"
            );
        }
        held.echo(format!("still there after the {kind}\n").as_bytes())
            .unwrap_or_else(|e| panic!("{kind}: open connection: {e}; log:\n{}", lb.log()));
    }

    let line = lb.reload(5, &new);
    assert_eq!(
        line,
        format!(
            "ringlb: reload #5 ok: backend be ~s1(addr {}→{})",
            one.addr(),
            two.addr()
        ),
        "log:\n{}",
        lb.log()
    );
    for _ in 0..4 {
        assert_eq!(must_fetch(&lb, addr), "two", "after the valid file");
    }
    held.echo(b"and after the valid one\n")
        .expect("connection to the replaced server");
    held.finish().expect("finish the held connection");
}

// ---------------------------------------------------------------------------------------------
// Servers

/// A server added by a reload takes new connections within 1 s of the SIGHUP.
#[test]
fn added_server_takes_connections_within_1s() {
    let s1 = NamedServer::greeting("s1");
    let s2 = NamedServer::greeting("s2");
    let port = free_port();
    let addr = frontend(port);
    let lb = Ringlb::start(&Cfg::new(port, &[("s1", s1.addr(), 1)]).json());
    for _ in 0..3 {
        assert_eq!(must_fetch(&lb, addr), "s1");
    }

    lb.write_config(&Cfg::new(port, &[("s1", s1.addr(), 1), ("s2", s2.addr(), 1)]).json());
    let signalled = Instant::now();
    lb.send_signal(Signal::SIGHUP);
    let mut names = Vec::new();
    while signalled.elapsed() < Duration::from_secs(1) && names.len() < 500 {
        let name = must_fetch(&lb, addr);
        names.push(name.clone());
        if name == "s2" {
            break;
        }
    }
    assert_eq!(
        names.last().map(String::as_str),
        Some("s2"),
        "s2 took no connection within 1 s of the reload (took {:?}): {names:?}; log:\n{}",
        signalled.elapsed(),
        control_lines(&lb)
    );
    assert_eq!(lb.wait_reload(1), "ringlb: reload #1 ok: backend be +s2");
}

/// A server removed by a reload (no drain_timeout) gets no new connection, and its
/// established connections keep moving data and finish normally.
#[test]
fn removed_server_finishes_its_connections_and_gets_no_new_ones() {
    let s1 = NamedServer::greeting("s1");
    let s2 = NamedServer::greeting("s2");
    let port = free_port();
    let addr = frontend(port);
    let lb = Ringlb::start(&Cfg::new(port, &[("s1", s1.addr(), 1), ("s2", s2.addr(), 1)]).json());
    let mut on_s2 = NamedConn::open_to(&lb, addr, "s2");
    on_s2.echo(b"before the reload\n").expect("echo before");

    let line = lb.reload(1, &Cfg::new(port, &[("s1", s1.addr(), 1)]).json());
    assert_eq!(line, "ringlb: reload #1 ok: backend be -s2");
    for _ in 0..20 {
        assert_eq!(
            must_fetch(&lb, addr),
            "s1",
            "a new connection after s2 was removed"
        );
    }
    // Data keeps flowing on the old connection for a while after the reload.
    for i in 0..6 {
        thread::sleep(Duration::from_millis(100));
        on_s2
            .echo(
                format!("after the reload, round {i}\n")
                    .repeat(50)
                    .as_bytes(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "connection to removed s2, round {i}: {e}; log:\n{}",
                    lb.log()
                )
            });
    }
    let local = on_s2.finish().expect("finish the connection to s2");
    let conn = lb.conn_line(local);
    assert_eq!(conn.field("server"), "be/s2", "{}", conn.line);
    assert_eq!(conn.end(), "client_close", "{}", conn.line);
}

/// With `drain_timeout` 500ms, an established connection to a removed server is closed
/// about 0.5 s after the reload (`end=drained`); until then it moves data, and a
/// connection to a server that stays is untouched.
#[test]
fn drain_timeout_ends_removed_server_connections() {
    let s1 = NamedServer::greeting("s1");
    let s2 = NamedServer::greeting("s2");
    let port = free_port();
    let addr = frontend(port);
    let mut both = Cfg::new(port, &[("s1", s1.addr(), 1), ("s2", s2.addr(), 1)]);
    both.globals = r#", "drain_timeout": "500ms""#.into();
    let mut only_s1 = both.clone();
    only_s1.servers.truncate(1);
    let lb = Ringlb::start(&both.json());
    let mut on_s1 = NamedConn::open_to(&lb, addr, "s1");
    let mut on_s2 = NamedConn::open_to(&lb, addr, "s2");

    lb.write_config(&only_s1.json());
    let signalled = Instant::now();
    lb.send_signal(Signal::SIGHUP);
    // Echo every 20 ms until the connection ends (bounded: 3 s).
    let mut echoed = 0;
    let ended = loop {
        if signalled.elapsed() > Duration::from_secs(3) {
            panic!(
                "connection to the removed s2 still open 3 s after the reload; log:\n{}",
                lb.log()
            );
        }
        match on_s2.echo(b"tick\n") {
            Ok(()) => echoed += 1,
            Err(_) => break signalled.elapsed(),
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_between(
        "closing a removed server's connection with drain_timeout 500ms",
        ended,
        Duration::from_millis(450),
        Duration::from_millis(1500),
    );
    assert!(
        echoed >= 5,
        "only {echoed} echoes before the drain ended it"
    );
    assert!(lb
        .wait_reload(1)
        .starts_with("ringlb: reload #1 ok: backend be -s2"));
    let conn = lb.conn_line(on_s2.local);
    assert_eq!(conn.end(), "drained", "{}", conn.line);
    assert_eq!(conn.field("server"), "be/s2", "{}", conn.line);

    on_s1
        .echo(b"s1 stays\n")
        .expect("connection to s1 after the drain");
    let local = on_s1.finish().expect("finish s1");
    assert_eq!(lb.conn_line(local).end(), "client_close");
}

// ---------------------------------------------------------------------------------------------
// Frontends

/// A frontend added by a reload answers within 1 s; removed again, its port refuses within
/// 1 s. The unchanged frontend serves throughout.
#[test]
fn added_frontend_answers_and_removed_one_refuses_within_1s() {
    let s1 = NamedServer::greeting("s1");
    let port = free_port();
    let api_port = listener_port();
    let api = frontend(api_port);
    let without = Cfg::new(port, &[("s1", s1.addr(), 1)]);
    let mut with = without.clone();
    with.frontends.push(("api", api_port));
    let lb = Ringlb::start(&without.json());
    assert!(
        refused(api),
        "port {api_port} answers before the frontend exists"
    );

    lb.write_config(&with.json());
    let signalled = Instant::now();
    lb.send_signal(Signal::SIGHUP);
    let mut tries = 0;
    let local = loop {
        tries += 1;
        match fetch(api) {
            (local, Ok(name)) => {
                assert_eq!(name, "s1");
                break local;
            }
            (_, Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {}
            (local, Err(e)) => panic!(
                "client {local} of the new frontend: {e}; log:\n{}",
                lb.log()
            ),
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "the new frontend still refuses 1 s after the reload ({tries} tries); log:\n{}",
            lb.log()
        );
        thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        lb.wait_reload(1),
        "ringlb: reload #1 ok: frontend api added"
    );
    assert_eq!(lb.conn_line(local).field("frontend"), "api");

    lb.write_config(&without.json());
    let signalled = Instant::now();
    lb.send_signal(Signal::SIGHUP);
    while !refused(api) {
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "the removed frontend still accepts 1 s after the reload; log:\n{}",
            lb.log()
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        lb.wait_reload(2),
        "ringlb: reload #2 ok: frontend api removed"
    );
    assert_eq!(must_fetch(&lb, frontend(port)), "s1");
}

/// 50 reloads that add and remove another frontend (and so open and close listeners on
/// every worker) never close the unchanged one: its listening sockets stay the same ones,
/// and a client connecting in a tight loop is never refused nor reset.
#[test]
fn unchanged_listener_is_never_closed_during_50_reloads() {
    let e1 = Backend::echo();
    let port = free_port();
    let other_port = listener_port();
    let without = Cfg::new(port, &[("s1", e1.addr(), 1)]);
    let mut with = without.clone();
    with.frontends.push(("other", other_port));
    let (without, with) = (without.json(), with.json());
    let lb = Ringlb::start(&without);
    let sockets = listening_inodes(port);
    assert_eq!(sockets.len(), 2, "one listener per worker on {port}");

    let stop = Arc::new(AtomicBool::new(false));
    let client = spawn_short_loop(frontend(port), 0, stop.clone());
    let mut log = lb.log_cursor();
    for n in 1..=50u64 {
        lb.write_config(if n % 2 == 1 { &with } else { &without });
        lb.send_signal(Signal::SIGHUP);
        let prefix = format!("ringlb: reload #{n} ok: frontend other ");
        if log
            .wait_for_line(Duration::from_secs(10), |l| l.starts_with(&prefix))
            .is_none()
        {
            stop.store(true, Ordering::Relaxed);
            panic!(
                "no {prefix:?} line within 10 s; log:\n{}",
                control_lines(&lb)
            );
        }
        thread::sleep(Duration::from_millis(10 + (n * 7) % 21));
    }
    stop.store(true, Ordering::Relaxed);
    let stats = client.join().expect("client loop");
    assert!(
        stats.failures.is_empty(),
        "{} of {} connections to the unchanged frontend failed:\n{}",
        stats.failures.len(),
        stats.ok + stats.failures.len() as u64,
        describe(&lb, &stats.failures)
    );
    assert!(stats.ok >= 50, "only {} connections", stats.ok);
    assert_eq!(
        listening_inodes(port),
        sockets,
        "the unchanged frontend's listening sockets were replaced"
    );
    assert!(
        wait_for(Duration::from_secs(1), || listening_inodes(other_port)
            .is_empty()
            .then_some(()))
        .is_some(),
        "the removed frontend still listens 1 s after the last reload"
    );
}

// ---------------------------------------------------------------------------------------------
// Carried state and restart-only settings

/// A reload that changes only another server's weight keeps a DOWN server DOWN and the UP
/// ones UP from the first connection on: nothing reaches the DOWN one, and nothing fails
/// while the checker has not checked anything of the new config yet.
#[test]
fn reload_carries_health_state() {
    let a = NamedServer::start("a");
    let b = NamedServer::start("b");
    let c = NamedServer::start("c");
    let port = free_port();
    let addr = frontend(port);
    // Checks a second apart: the first check after the reload is far from the connections.
    let mut cfg = Cfg::new(
        port,
        &[("a", a.addr(), 1), ("b", b.addr(), 1), ("c", c.addr(), 1)],
    );
    cfg.backend_extra = r#", "health_check": { "type": "http", "interval": "1s", "fast_interval": "1s", "down_interval": "1s", "timeout": "1s", "jitter": 0, "rise": 1, "fall": 1 }"#.into();
    let lb = Ringlb::start(&cfg.json());
    for s in ["be/a", "be/b", "be/c"] {
        lb.wait_health(s, "UP", 1, Duration::from_secs(3));
    }
    a.set_status(503);
    lb.wait_health("be/a", "DOWN", 1, Duration::from_secs(3));
    let a_traffic = a.traffic();

    cfg.servers[2].2 = 2;
    let line = lb.reload(1, &cfg.json());
    assert_eq!(line, "ringlb: reload #1 ok: backend be ~c(weight 1→2)");
    let mut names = Vec::new();
    for _ in 0..30 {
        let (local, result) = fetch_name(addr);
        names.push(result.unwrap_or_else(|e| {
            panic!(
                "client {local} right after the reload: {e}; log:\n{}",
                lb.log()
            )
        }));
    }
    assert_eq!(
        a.traffic(),
        a_traffic,
        "the DOWN server got traffic: {names:?}"
    );
    // Weights 1 and 2, each worker with its own round-robin cursor.
    let to_b = names.iter().filter(|n| *n == "b").count();
    let to_c = names.iter().filter(|n| *n == "c").count();
    assert!(to_b >= 5 && to_c > to_b && to_b + to_c == 30, "{names:?}");
    assert_eq!(lb.health_count("be/a", "UP"), 1, "{:?}", lb.health_lines());
    assert_eq!(
        lb.health_count("be/b", "DOWN"),
        0,
        "{:?}",
        lb.health_lines()
    );
    assert_eq!(
        lb.health_count("be/c", "DOWN"),
        0,
        "{:?}",
        lb.health_lines()
    );
}

/// `workers` changed in the file: the log says it needs a restart, the rest applies, and
/// the process keeps its two workers (threads, listeners, `worker=` of conn lines).
#[test]
fn workers_change_is_reported_and_not_applied() {
    let s1 = NamedServer::greeting("s1");
    let port = free_port();
    let addr = frontend(port);
    let mut cfg = Cfg::new(port, &[("s1", s1.addr(), 1)]);
    let lb = Ringlb::start(&cfg.json());
    let workers = |lb: &Ringlb| -> Vec<String> {
        lb.thread_names()
            .into_iter()
            .filter(|n| n.starts_with("ringlb-w"))
            .collect()
    };
    assert_eq!(workers(&lb), ["ringlb-w0", "ringlb-w1"]);

    cfg.workers = 3;
    cfg.servers[0].2 = 2;
    let line = lb.reload(1, &cfg.json());
    assert_eq!(line, "ringlb: reload #1 ok: backend be ~s1(weight 1→2)");
    let restart = lb
        .wait_for_line(Duration::from_secs(2), |l| {
            l.starts_with("ringlb: reload: ")
        })
        .unwrap_or_else(|| panic!("no restart notice; log:\n{}", lb.log()));
    assert_eq!(
        restart,
        "ringlb: reload: workers 2 → 3 changed; this needs a restart and is not applied"
    );

    assert_eq!(workers(&lb), ["ringlb-w0", "ringlb-w1"]);
    assert_eq!(listening_inodes(port).len(), 2, "listeners on {port}");
    let mut clients = Vec::new();
    for _ in 0..40 {
        let (local, result) = fetch(addr);
        result.unwrap_or_else(|e| panic!("client {local}: {e}; log:\n{}", lb.log()));
        clients.push(local);
    }
    let mut seen = std::collections::BTreeSet::new();
    for local in clients {
        seen.insert(lb.conn_line(local).field("worker").to_owned());
    }
    assert!(
        seen.iter().all(|w| w == "0" || w == "1"),
        "conn lines from workers {seen:?} after the reload"
    );
}

// ---------------------------------------------------------------------------------------------
// Shutdown

/// SIGTERM while long streams move data and short connections run in a loop: new
/// connections are refused at once, every connection the balancer had accepted completes
/// byte-exact, and the process exits 0 as soon as the last one is done, within `grace`.
#[test]
fn sigterm_under_load_drains_and_exits_0() {
    let e1 = Backend::echo();
    let e2 = Backend::echo();
    let port = free_port();
    let addr = frontend(port);
    let mut cfg = Cfg::new(port, &[("s1", e1.addr(), 1), ("s2", e2.addr(), 1)]);
    cfg.globals = r#", "grace": "8s""#.into();
    let mut lb = Ringlb::start(&cfg.json());

    let streams_stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..3)
        .map(|i| spawn_long_stream(addr, 200 + i, streams_stop.clone()))
        .collect();
    let shorts_stop = Arc::new(AtomicBool::new(false));
    let shorts: Vec<_> = (0..2)
        .map(|id| spawn_short_loop(addr, id, shorts_stop.clone()))
        .collect();
    thread::sleep(Duration::from_millis(500));

    let signalled = Instant::now();
    lb.send_signal(Signal::SIGTERM);
    let refused_after = wait_for(Duration::from_secs(2), || {
        refused(addr).then(|| signalled.elapsed())
    })
    .unwrap_or_else(|| panic!("still accepting 2 s after SIGTERM; log:\n{}", lb.log()));
    // The streams keep flowing during the drain, then finish on their own.
    thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert!(
            refused(addr),
            "a new connection was accepted during the drain"
        );
    }
    shorts_stop.store(true, Ordering::Relaxed);
    streams_stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    let mut drained = Vec::new();
    for s in streams {
        match s.join().expect("stream thread") {
            Ok((local, _)) => drained.push(local),
            Err(e) => errors.push(e),
        }
    }
    let status = lb.wait_exit(Duration::from_secs(5)).unwrap_or_else(|| {
        panic!(
            "still running 5 s after the streams ended; log:\n{}",
            lb.log()
        )
    });
    let exited = signalled.elapsed();
    assert!(
        errors.is_empty(),
        "long streams failed during the drain:\n{}\nlog:\n{}",
        errors.join("\n"),
        control_lines(&lb)
    );
    assert_eq!(
        status.code(),
        Some(0),
        "exit status; log:\n{}",
        control_lines(&lb)
    );
    assert!(
        exited < Duration::from_secs(6),
        "exited {exited:?} after SIGTERM: it waited for more than its connections"
    );
    assert!(
        !lb.log().contains("grace period over"),
        "connections were cut at the end of grace; log:\n{}",
        control_lines(&lb)
    );

    for local in drained {
        let conn = lb.conn_line(local);
        assert_eq!(conn.end(), "client_close", "{}", conn.line);
    }

    // A short connection may fail only if the balancer never accepted it: refused, or
    // reset in a closing listener's accept queue. One the balancer logged must have worked.
    let lines = lb.conn_lines();
    let mut ok = 0;
    let mut bad = Vec::new();
    let mut refused_count = 0;
    for s in shorts {
        let stats = s.join().expect("short loop");
        ok += stats.ok;
        for f in stats.failures {
            let client = f.local.to_string();
            let accepted = lines
                .iter()
                .any(|c| c.get("client") == Some(client.as_str()));
            if f.at < signalled || accepted {
                bad.push(f);
            } else {
                refused_count += 1;
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} short connections failed before SIGTERM or after being accepted:\n{}",
        bad.len(),
        describe(&lb, &bad)
    );
    assert!(ok >= 20, "only {ok} short connections before SIGTERM");
    eprintln!(
        "refused after {refused_after:?}, exited after {exited:?}; {ok} short connections, \
         {refused_count} refused"
    );
}

/// A second SIGTERM during the grace period exits at once, connections or not.
#[test]
fn second_sigterm_during_grace_exits_at_once() {
    let s1 = NamedServer::greeting("s1");
    let port = free_port();
    let addr = frontend(port);
    let mut cfg = Cfg::new(port, &[("s1", s1.addr(), 1)]);
    cfg.globals = r#", "grace": "30s""#.into();
    let mut lb = Ringlb::start(&cfg.json());
    let mut held = NamedConn::must_open(&lb, addr);

    lb.send_signal(Signal::SIGTERM);
    assert!(
        wait_for(Duration::from_secs(2), || refused(addr).then_some(())).is_some(),
        "still accepting 2 s after SIGTERM"
    );
    held.echo(b"draining\n").expect("echo during the drain");
    assert!(
        lb.wait_exit(Duration::from_millis(200)).is_none(),
        "exited with a connection open"
    );

    let second = Instant::now();
    lb.send_signal(Signal::SIGTERM);
    let status = lb.wait_exit(Duration::from_secs(2)).unwrap_or_else(|| {
        panic!(
            "still running 2 s after the second SIGTERM; log:\n{}",
            lb.log()
        )
    });
    assert!(
        second.elapsed() < Duration::from_secs(1),
        "the second SIGTERM took {:?} to end the process",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(0), "log:\n{}", lb.log());
    assert!(
        lb.log().contains("ringlb: second signal: exiting now"),
        "log:\n{}",
        lb.log()
    );
}
