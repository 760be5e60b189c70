//! Harness shared by the integration tests: a guard that runs the real `ringlb` binary on a
//! config written to a temp dir, small thread-per-connection backends on loopback, and helpers
//! for seeded data, bounded waits and the per-connection log lines.
//!
//! Every socket gets read and write timeouts and every wait is bounded, so a broken balancer
//! makes a test fail instead of hang. Each test compiles this module separately and uses only
//! part of it, hence the `dead_code` allowance.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// Read/write timeout for test sockets unless a test needs another one.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Ringlb::start` waits for every frontend to accept a connection.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a test waits for the log line of a connection that has closed.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(5);

const CHUNK: usize = 64 * 1024;

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, named after the running test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let test = thread::current()
        .name()
        .unwrap_or("test")
        .replace("::", "-");
    let dir = std::env::temp_dir().join(format!("ringlb-{tag}-{test}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A loopback port that was free a moment ago (bind port 0, read it, drop the socket).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A loopback address with nothing listening on it: connecting to it is refused at once.
pub fn refused_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Connects with a bounded connect and sets `IO_TIMEOUT` on both directions.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    set_timeouts(&stream, IO_TIMEOUT);
    stream
}

/// Connects from a local address chosen before the connect, so the caller knows it (to
/// find the connection's log line) even when the connect fails. A balancer that resets a
/// connection right after accepting it can make the connect itself report
/// `ConnectionReset`: the RST lands before the kernel hands the connected socket back.
pub fn connect_from_known_port(addr: SocketAddr) -> (SocketAddr, io::Result<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    let any = match addr {
        SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
    };
    socket.bind(&any.into()).expect("bind client socket");
    let local = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("client address");
    let result = socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .map(|()| {
            let stream = TcpStream::from(socket);
            set_timeouts(&stream, IO_TIMEOUT);
            stream
        });
    (local, result)
}

/// Whether a connection was closed by its peer: EOF or a reset, on connect or on read.
pub fn closed_by_peer(connected: io::Result<TcpStream>) -> Result<(), String> {
    let mut stream = match connected {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
        Err(e) => return Err(format!("connect failed: {e}")),
    };
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        other => Err(format!("expected a close, read gave {other:?}")),
    }
}

pub fn set_timeouts(stream: &TcpStream, timeout: Duration) {
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(timeout))
        .expect("write timeout");
}

/// Reads until EOF, failing past `limit` bytes so a runaway peer cannot exhaust memory.
pub fn read_to_eof(stream: &mut TcpStream, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > limit {
            return Err(io::Error::other(format!(
                "peer sent more than {limit} bytes"
            )));
        }
    }
}

/// Closes the socket with an RST instead of a FIN (SO_LINGER with a zero timeout).
pub fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(stream);
}

/// Polls `check` every 10 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Configs

/// A config with one frontend `fe` on `127.0.0.1:port` (connection log on) and one backend
/// `be`. `frontend_extra` and `backend_extra` are further JSON members, each starting with a
/// comma (`, "forward": "copy"`), or empty; `servers` is a JSON array (see `servers`).
pub fn config(
    workers: u32,
    port: u16,
    frontend_extra: &str,
    backend_extra: &str,
    servers: &str,
) -> String {
    format!(
        r#"{{
  "workers": {workers},
  "frontends": [
    {{ "name": "fe", "bind": ["127.0.0.1:{port}"], "backend": "be", "log": true{frontend_extra} }}
  ],
  "backends": [
    {{ "name": "be"{backend_extra}, "servers": {servers} }}
  ]
}}"#
    )
}

/// A JSON array of servers named s1, s2 ... with weight 1.
pub fn servers(addrs: &[SocketAddr]) -> String {
    let weighted: Vec<_> = addrs.iter().map(|&a| (a, 1)).collect();
    weighted_servers(&weighted)
}

/// A JSON array of servers named s1, s2 ... with the given weights.
pub fn weighted_servers(servers: &[(SocketAddr, u32)]) -> String {
    let items: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, (addr, weight))| {
            format!(
                r#"{{ "name": "s{}", "addr": "{addr}", "weight": {weight} }}"#,
                i + 1
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// The address of the single frontend made by `config`.
pub fn frontend(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// ---------------------------------------------------------------------------------------------
// Seeded data

/// `len` pseudo-random bytes from `seed`, produced chunk by chunk.
pub struct SeededData {
    rng: StdRng,
    left: usize,
}

impl SeededData {
    pub fn new(seed: u64, len: usize) -> SeededData {
        SeededData {
            rng: StdRng::seed_from_u64(seed),
            left: len,
        }
    }

    /// Fills the front of `buf` with the next bytes; returns how many (0 at the end).
    pub fn next_chunk(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.left);
        self.rng.fill_bytes(&mut buf[..n]);
        self.left -= n;
        n
    }
}

pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Writes `len` seeded bytes to `w` and returns their sha256.
pub fn write_seeded(w: &mut impl Write, seed: u64, len: usize) -> io::Result<[u8; 32]> {
    let mut data = SeededData::new(seed, len);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = data.next_chunk(&mut buf);
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n])?;
    }
}

/// More than any test sends on one connection: a peer past it is runaway, not slow.
pub const MAX_TRANSFER: u64 = 1 << 30;

/// Reads `r` to EOF; returns the byte count and sha256 of what was read. Fails past
/// `MAX_TRANSFER` bytes, so that a peer that never stops cannot keep a test running.
pub fn hash_to_eof(r: &mut impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((total, hasher.finalize().into()));
        }
        total += n as u64;
        if total > MAX_TRANSFER {
            return Err(io::Error::other("peer sent more than MAX_TRANSFER bytes"));
        }
        hasher.update(&buf[..n]);
    }
}

// ---------------------------------------------------------------------------------------------
// The balancer under test

/// One `ringlb` process. Killed (SIGKILL) on drop unless it has already exited; its temp dir
/// is removed unless the test is failing, so the config and log can be inspected.
pub struct Ringlb {
    child: Child,
    exited: Option<ExitStatus>,
    dir: PathBuf,
    log_path: PathBuf,
    config_path: PathBuf,
    binds: Vec<SocketAddr>,
}

impl Ringlb {
    /// Writes `config` (JSON), runs `ringlb -c FILE` and waits until every `bind` address of
    /// every frontend accepts TCP connections.
    pub fn start(config: &str) -> Ringlb {
        Ringlb::start_with_args(config, &[])
    }

    pub fn start_with_args(config: &str, extra_args: &[&str]) -> Ringlb {
        let binds = bind_addrs(config);
        let dir = temp_dir("run");
        let config_path = dir.join("ringlb.json");
        let log_path = dir.join("stderr.log");
        fs::write(&config_path, config).expect("write config");
        let log = fs::File::create(&log_path).expect("create log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ringlb"))
            .arg("-c")
            .arg(&config_path)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ringlb");
        let mut lb = Ringlb {
            child,
            exited: None,
            dir,
            log_path,
            config_path,
            binds,
        };
        lb.wait_ready();
        lb
    }

    /// Waits until the kernel has a listening socket on every frontend port, i.e. until a
    /// TCP connect to each would succeed. Checked in /proc/net/tcp{,6} rather than by
    /// connecting, so that no test sees a stray probe connection in its backends, its
    /// round-robin order, its log or its descriptor count.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                panic!(
                    "ringlb exited with {status} before it was ready; log:\n{}",
                    self.log()
                );
            }
            let listening = listening_ports();
            let pending: Vec<_> = self
                .binds
                .iter()
                .filter(|a| !listening.contains(&a.port()))
                .collect();
            if pending.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ringlb not ready after {READY_TIMEOUT:?}: nothing listens on {pending:?}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits for a log line satisfying `pred`.
    pub fn wait_for_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        wait_for(timeout, || {
            self.log().lines().find(|l| pred(l)).map(str::to_owned)
        })
    }

    /// The `conn ...` log line of the connection whose client side is `client`, as key=value
    /// fields; panics with the whole log if it does not appear within `LOG_TIMEOUT`.
    pub fn conn_line(&self, client: SocketAddr) -> ConnLine {
        let want = client.to_string();
        let found = wait_for(LOG_TIMEOUT, || {
            self.log()
                .lines()
                .filter_map(ConnLine::parse)
                .find(|c| c.get("client") == Some(want.as_str()))
        });
        found.unwrap_or_else(|| {
            panic!(
                "no conn log line for client={want} within {LOG_TIMEOUT:?}; log:\n{}",
                self.log()
            )
        })
    }

    /// All `conn ...` lines logged so far.
    pub fn conn_lines(&self) -> Vec<ConnLine> {
        self.log().lines().filter_map(ConnLine::parse).collect()
    }

    pub fn send_signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, signal).expect("kill");
    }

    /// Waits (bounded) for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let child = &mut self.child;
        self.exited = wait_for(timeout, || child.try_wait().expect("try_wait"));
        self.exited
    }

    /// Number of open file descriptors of the process (entries of /proc/PID/fd).
    pub fn fd_count(&self) -> usize {
        self.fds().len()
    }

    /// The targets of the process's open descriptors ("socket:[123]", "pipe:[456]" ...).
    pub fn fds(&self) -> Vec<String> {
        let dir = format!("/proc/{}/fd", self.pid());
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir}: {e}")) {
            let Ok(entry) = entry else { continue };
            // An fd closed between readdir and readlink is simply gone.
            if let Ok(target) = fs::read_link(entry.path()) {
                out.push(target.to_string_lossy().into_owned());
            }
        }
        out
    }
}

impl Drop for Ringlb {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("ringlb test files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Ports of all TCP sockets in LISTEN state on this host (IPv4 and IPv6).
fn listening_ports() -> Vec<u16> {
    const LISTEN: &str = "0A";
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1);
            let state = cols.nth(1);
            if state != Some(LISTEN) {
                continue;
            }
            let port = local
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            ports.extend(port);
        }
    }
    ports
}

/// Every `bind` address of every frontend in a config.
fn bind_addrs(config: &str) -> Vec<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(config).expect("test config is JSON");
    let mut out = Vec::new();
    for frontend in value["frontends"].as_array().expect("frontends array") {
        for bind in frontend["bind"].as_array().expect("bind array") {
            let bind = bind.as_str().expect("bind string");
            out.push(bind.parse().expect("bind is ip:port"));
        }
    }
    out
}

/// Runs `ringlb -c FILE --check` on `config` written to a temp file named `file_name`.
/// Returns the output and the path passed on the command line (removed by then).
pub fn run_check(file_name: &str, config: &str) -> (Output, PathBuf) {
    let dir = temp_dir("check");
    let path = dir.join(file_name);
    fs::write(&path, config).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_ringlb"))
        .arg("-c")
        .arg(&path)
        .arg("--check")
        .stdin(Stdio::null())
        .output()
        .expect("run ringlb --check");
    // The path only labels the messages from here on.
    let _ = fs::remove_dir_all(&dir);
    (output, path)
}

/// The key=value fields of one `conn ...` log line.
#[derive(Debug, Clone)]
pub struct ConnLine {
    pub line: String,
    fields: HashMap<String, String>,
}

impl ConnLine {
    pub fn parse(line: &str) -> Option<ConnLine> {
        let rest = line.strip_prefix("conn ")?;
        let fields = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(ConnLine {
            line: line.to_owned(),
            fields,
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// The field `key`, panicking with the line if it is missing.
    pub fn field(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("no {key}= in log line: {}", self.line))
    }

    pub fn end(&self) -> &str {
        self.field("end")
    }
}

// ---------------------------------------------------------------------------------------------
// Backends

/// A loopback server that runs `handler` on a thread per accepted connection. Stops accepting
/// on drop; connections in progress finish on their own (their sockets have timeouts).
pub struct Backend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn spawn<F>(handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        Backend::spawn_with_timeout(IO_TIMEOUT, handler)
    }

    /// Like `spawn`, with `timeout` as read/write timeout of every accepted socket.
    pub fn spawn_with_timeout<F>(timeout: Duration, handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        Backend::spawn_at("127.0.0.1:0", timeout, handler)
    }

    /// Like `spawn_with_timeout`, listening on `bind` (e.g. `[::1]:0`).
    pub fn spawn_at<F>(bind: &str, timeout: Duration, handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = listen(bind.parse().expect("backend bind address"), BACKEND_BACKLOG);
        let addr = listener.local_addr().expect("backend addr");
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stopping = stop.clone();
        thread::Builder::new()
            .name(format!("backend-{addr}"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    set_timeouts(&stream, timeout);
                    let handler = handler.clone();
                    // Small stacks: the scale test runs 2,000 of these at once.
                    let spawned = thread::Builder::new()
                        .stack_size(256 * 1024)
                        .spawn(move || handler(stream));
                    if let Err(e) = spawned {
                        eprintln!("backend {addr}: cannot spawn connection thread: {e}");
                    }
                }
            })
            .expect("spawn backend thread");
        Backend { addr, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Echoes everything back; on EOF, half-closes its side and closes.
    pub fn echo() -> Backend {
        Backend::echo_at("127.0.0.1:0")
    }

    /// `echo` listening on `bind`.
    pub fn echo_at(bind: &str) -> Backend {
        Backend::spawn_at(bind, IO_TIMEOUT, |mut s| {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            let _ = s.shutdown(Shutdown::Write);
        })
    }

    /// Reads to EOF, then answers with the 32-byte sha256 of what it read and closes.
    pub fn hash_sink() -> Backend {
        Backend::spawn(|mut s| {
            if let Ok((_, digest)) = hash_to_eof(&mut s) {
                let _ = s.write_all(&digest);
            }
        })
    }

    /// Writes `len` bytes of data seeded with `seed`, half-closes, then drains its input to
    /// EOF before closing (closing with unread input would send an RST instead of a FIN).
    pub fn sender(seed: u64, len: usize) -> Backend {
        Backend::spawn(move |mut s| {
            if write_seeded(&mut s, seed, len).is_ok() {
                let _ = s.shutdown(Shutdown::Write);
                let _ = hash_to_eof(&mut s);
            }
        })
    }

    /// Reads to EOF, and only then answers with the sha256 of what it read followed by
    /// `len` seeded bytes, and closes.
    pub fn half_close_answerer(seed: u64, len: usize) -> Backend {
        Backend::spawn(move |mut s| {
            if let Ok((_, digest)) = hash_to_eof(&mut s) {
                if s.write_all(&digest).is_ok() {
                    let _ = write_seeded(&mut s, seed, len);
                }
            }
        })
    }

    /// Waits for the first bytes from the client, then closes with an RST.
    pub fn resetter() -> Backend {
        Backend::spawn(|mut s| {
            let mut buf = [0u8; 1024];
            if let Ok(n) = s.read(&mut buf) {
                if n > 0 {
                    reset(s);
                }
            }
        })
    }

    /// Writes its name, half-closes, drains its input and closes.
    pub fn named(name: &'static str) -> Backend {
        Backend::spawn(move |mut s| {
            if s.write_all(name.as_bytes()).is_ok() {
                let _ = s.shutdown(Shutdown::Write);
                let _ = hash_to_eof(&mut s);
            }
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Accept queue length of test backends. With std's 128, a burst of connects from the
/// balancer overflows the queue; the kernel then drops the handshake's last ACK, and a
/// connection on which the server is to speak first stays half-open for good.
const BACKEND_BACKLOG: i32 = 4096;

/// A TCP listener on `addr` with an accept queue of `backlog` connections.
fn listen(addr: SocketAddr, backlog: i32) -> TcpListener {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(backlog).expect("listen");
    socket.into()
}

/// A listener whose accept queue is full: further SYNs to it are dropped by the kernel, so a
/// connect to it neither succeeds nor is refused until the connecting side gives up.
pub struct FullBacklog {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl FullBacklog {
    pub fn new() -> FullBacklog {
        // Backlog 1: the queue is full after two unaccepted connections.
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)), 1);
        let addr = listener.local_addr().expect("local addr");
        let mut fillers = Vec::new();
        for _ in 0..200 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => fillers.push(s),
                Err(_) => {
                    return FullBacklog {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    }
                }
            }
        }
        panic!("accept queue of {addr} still not full after 200 connections");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Asserts that `elapsed` lies in `[min, max]`, with a message naming `what`.
pub fn assert_between(what: &str, elapsed: Duration, min: Duration, max: Duration) {
    assert!(
        elapsed >= min && elapsed <= max,
        "{what} took {elapsed:?}, expected between {min:?} and {max:?}"
    );
}
