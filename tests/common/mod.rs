//! Harness shared by the integration tests: a guard that runs the real `ringlb` binary on a
//! config written to a temp dir, small thread-per-connection backends on loopback, and helpers
//! for seeded data, bounded waits and the per-connection log lines.
//!
//! Every socket gets read and write timeouts and every wait is bounded, so a broken balancer
//! makes a test fail instead of hang. Each test compiles this module separately and uses only
//! part of it, hence the `dead_code` allowance.

#![allow(dead_code)]

pub mod peers;
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
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
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

/// A loopback port that was free a moment ago and lies below the kernel's ephemeral range,
/// for a listener opened later (by a reload): a port from `free_port` may meanwhile be the
/// local port of some outgoing connection, and then cannot be bound.
pub fn listener_port() -> u16 {
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(32768);
    assert!(
        low > 12000,
        "ephemeral ports start at {low}: no room below them"
    );
    let span = u32::from(low) - 11000;
    // Spread the start over processes and calls, so that parallel tests do not collide.
    let seed = std::process::id()
        .wrapping_mul(2654435761)
        .wrapping_add(UNIQUE.fetch_add(1, Ordering::Relaxed) as u32 * 7919);
    for i in 0..1000 {
        let port = 10000 + (seed.wrapping_add(i * 13) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 10000 and {}", u32::from(low) - 1000);
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
    /// The pipe stderr goes to, when launched so.
    stderr: Option<std::process::ChildStderr>,
}

/// How to start ringlb, beyond its config.
#[derive(Default)]
pub struct Launch<'a> {
    pub args: &'a [&'a str],
    pub env: &'a [(&'a str, &'a str)],
    /// Soft and hard RLIMIT_NOFILE of the process.
    pub nofile: Option<u64>,
    /// stderr to a pipe that nobody reads (see `take_stderr`), instead of the log file.
    pub stderr_pipe: bool,
}

impl Ringlb {
    /// Writes `config` (JSON), runs `ringlb -c FILE` and waits until every `bind` address of
    /// every frontend accepts TCP connections.
    pub fn start(config: &str) -> Ringlb {
        Ringlb::start_with_args(config, &[])
    }

    pub fn start_with_args(config: &str, extra_args: &[&str]) -> Ringlb {
        Ringlb::launch(
            config,
            &Launch {
                args: extra_args,
                ..Launch::default()
            },
        )
    }

    /// Starts ringlb as `opts` says (arguments, an fd limit, stderr a pipe nobody reads).
    pub fn launch(config: &str, opts: &Launch<'_>) -> Ringlb {
        let binds = bind_addrs(config);
        let dir = temp_dir("run");
        let config_path = dir.join("ringlb.json");
        let log_path = dir.join("stderr.log");
        fs::write(&config_path, config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringlb"));
        cmd.arg("-c")
            .arg(&config_path)
            .args(opts.args)
            .envs(opts.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if opts.stderr_pipe {
            cmd.stderr(Stdio::piped());
        } else {
            cmd.stderr(fs::File::create(&log_path).expect("create log file"));
        }
        if let Some(limit) = opts.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn ringlb");
        let stderr = child.stderr.take();
        let mut lb = Ringlb {
            child,
            exited: None,
            dir,
            log_path,
            config_path,
            binds,
            stderr,
        };
        lb.wait_ready();
        lb
    }

    /// The read end of stderr when launched with `stderr_pipe` (nobody reads it until then).
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.stderr.take()
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
                "ringlb not ready after {READY_TIMEOUT:?}: nothing listens on {pending:?} \
                 (listening now: {listening:?}); log:\n{}",
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

    /// Everything the process wrote to stderr so far, each line without its timestamp
    /// and event lines without their level (`ringlb: ...`, `conn ...`): what the tests
    /// look for. `raw_log` has the lines as written.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for line in self.raw_log().lines() {
            out.push_str(untimed(line));
            out.push('\n');
        }
        out
    }

    pub fn raw_log(&self) -> String {
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

    /// Sets the running process's RLIMIT_NOFILE (soft and hard) to `limit`, as
    /// `prlimit --nofile` does. ringlb sizes its connection budget from the limit at start,
    /// so lowering it afterwards is how a test runs it out of descriptors.
    pub fn set_fd_limit(&self, limit: u64) {
        let new = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: `new` is a valid rlimit for the call's duration; the old value is not
        // asked for (null).
        let rc = unsafe {
            libc::prlimit(
                self.pid() as libc::pid_t,
                libc::RLIMIT_NOFILE,
                &new,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "prlimit: {}", io::Error::last_os_error());
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

/// A text log line without its RFC 3339 timestamp, and without the level of an event line.
pub fn untimed(line: &str) -> &str {
    let rest = match line.split_once(' ') {
        Some((ts, rest)) if ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T' => {
            rest
        }
        _ => return line,
    };
    for level in ["info ", "notice ", "warning ", "error "] {
        if let Some(event) = rest.strip_prefix(level) {
            return event;
        }
    }
    rest
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
        let rest = untimed(line).strip_prefix("conn ")?;
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
        Backend::spawn_at(bind, IO_TIMEOUT, |mut s| echo_to_eof(&mut s))
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

// ---------------------------------------------------------------------------------------------
// Web servers for health checks, balancing and limits

/// What a test client sends to a `WebServer` to be served: anything else is a health check.
pub const TRAFFIC_LINE: &[u8] = b"TRAFFIC\n";

/// How long a `WebServer` waits for a client's first line before treating the connection as
/// a bare TCP check.
const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(2);

/// A loopback server that both answers health checks and serves traffic, counts both, and
/// can close its listener (connects are then refused) and reopen it on the same port.
///
/// A connection starting with `TRAFFIC_LINE` is traffic: the server writes its name and a
/// newline, then waits for the client's EOF and closes. Anything else is a check: the server
/// reads up to the end of an HTTP header block (or EOF), records the bytes, and answers
/// `HTTP/1.0 <status>` with the status set by `set_status`, or nothing at all while
/// `set_hang(true)`.
pub struct WebServer {
    name: &'static str,
    addr: SocketAddr,
    state: Arc<WebState>,
    accept: Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>,
}

#[derive(Default)]
struct WebState {
    status: std::sync::atomic::AtomicU16,
    hang: AtomicBool,
    checks: AtomicU64,
    traffic: AtomicU64,
    open_traffic: AtomicU64,
    peak_traffic: AtomicU64,
    last_check: std::sync::Mutex<Vec<u8>>,
}

impl WebServer {
    /// Listens on `127.0.0.1:0`, answering checks with 200.
    pub fn start(name: &'static str) -> WebServer {
        WebServer::start_at(name, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Listens on `addr` (port 0 for any).
    pub fn start_at(name: &'static str, addr: SocketAddr) -> WebServer {
        let state = Arc::new(WebState::default());
        state.status.store(200, Ordering::Relaxed);
        let mut server = WebServer {
            name,
            addr,
            state,
            accept: None,
        };
        server.open();
        server
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The HTTP status of the next check answers.
    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::Relaxed);
    }

    /// While set, checks are read but never answered (a hung application).
    pub fn set_hang(&self, hang: bool) {
        self.state.hang.store(hang, Ordering::Relaxed);
    }

    /// Check connections accepted so far (HTTP requests or bare connects).
    pub fn checks(&self) -> u64 {
        self.state.checks.load(Ordering::Relaxed)
    }

    /// Traffic connections served so far.
    pub fn traffic(&self) -> u64 {
        self.state.traffic.load(Ordering::Relaxed)
    }

    /// Most traffic connections this server ever had open at once.
    pub fn peak_traffic(&self) -> u64 {
        self.state.peak_traffic.load(Ordering::Relaxed)
    }

    /// The bytes of the last check that sent any.
    pub fn last_check(&self) -> Vec<u8> {
        self.state
            .last_check
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Closes the listener: from the return on, connects to `addr` are refused. Connections
    /// already in the accept queue are accepted and served first, so none is reset by the
    /// close itself; established connections go on.
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.accept.take() {
            stop.store(true, Ordering::Relaxed);
            thread.join().expect("web server accept thread");
        }
    }

    /// Listens again on the same address after `stop`.
    pub fn restart(&mut self) {
        assert!(self.accept.is_none(), "{} is still listening", self.name);
        self.open();
    }

    fn open(&mut self) {
        use socket2::{Domain, Socket, Type};
        let socket =
            Socket::new(Domain::for_address(self.addr), Type::STREAM, None).expect("socket");
        // The port of a stopped server has connections in TIME_WAIT; reopening must work.
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        socket
            .bind(&self.addr.into())
            .unwrap_or_else(|e| panic!("bind {}: {e}", self.addr));
        socket.listen(BACKEND_BACKLOG).expect("listen");
        socket.set_nonblocking(true).expect("non-blocking listener");
        let listener: TcpListener = socket.into();
        self.addr = listener.local_addr().expect("web server addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let state = self.state.clone();
        let name = self.name;
        let thread = thread::Builder::new()
            .name(format!("web-{name}"))
            .spawn(move || loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let state = state.clone();
                        let spawned = thread::Builder::new()
                            .stack_size(256 * 1024)
                            .spawn(move || serve_web(&state, name, stream));
                        if let Err(e) = spawned {
                            eprintln!("web server {name}: cannot spawn a thread: {e}");
                        }
                    }
                    // The queue is empty: only now may a stop close the listener.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if stopping.load(Ordering::Relaxed) {
                            return;
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            })
            .expect("spawn web server thread");
        self.accept = Some((stop, thread));
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_web(state: &WebState, name: &str, mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    set_timeouts(&stream, FIRST_LINE_TIMEOUT);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Up to the end of an HTTP header block, or the traffic line, or EOF / error.
    while !got.ends_with(b"\r\n\r\n") && got != TRAFFIC_LINE && got.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    if got == TRAFFIC_LINE {
        let open = state.open_traffic.fetch_add(1, Ordering::SeqCst) + 1;
        state.peak_traffic.fetch_max(open, Ordering::SeqCst);
        state.traffic.fetch_add(1, Ordering::SeqCst);
        set_timeouts(&stream, IO_TIMEOUT);
        if stream.write_all(format!("{name}\n").as_bytes()).is_ok() {
            // The connection stays open until the client closes it (or IO_TIMEOUT).
            let _ = read_to_eof(&mut stream, 1 << 20);
        }
        state.open_traffic.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    state.checks.fetch_add(1, Ordering::SeqCst);
    if !got.is_empty() {
        *state
            .last_check
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = got;
    }
    if state.hang.load(Ordering::Relaxed) {
        // Never answer; the checker gives up at its timeout and closes.
        set_timeouts(&stream, IO_TIMEOUT);
        let _ = read_to_eof(&mut stream, 1 << 20);
        return;
    }
    let status = state.status.load(Ordering::Relaxed);
    let _ =
        stream.write_all(format!("HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes());
}

/// A client connection from `local_ip` (port chosen by the kernel, known before the connect
/// so a failed connection's log line can still be found).
pub fn connect_from(
    local_ip: std::net::IpAddr,
    addr: SocketAddr,
) -> (SocketAddr, io::Result<TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(local_ip, 0).into())
        .unwrap_or_else(|e| panic!("bind client socket to {local_ip}: {e}"));
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

/// One short traffic exchange with a `WebServer` through `addr` from 127.0.0.1: returns the
/// client address and the name of the server that answered.
pub fn fetch_name(addr: SocketAddr) -> (SocketAddr, io::Result<String>) {
    fetch_name_from(std::net::Ipv4Addr::LOCALHOST.into(), addr)
}

/// `fetch_name` from the loopback address `local_ip`.
pub fn fetch_name_from(
    local_ip: std::net::IpAddr,
    addr: SocketAddr,
) -> (SocketAddr, io::Result<String>) {
    let (local, connected) = connect_from(local_ip, addr);
    let result = connected.and_then(|mut s| {
        s.write_all(TRAFFIC_LINE)?;
        s.shutdown(Shutdown::Write)?;
        let answer = read_to_eof(&mut s, 1024)?;
        let text = String::from_utf8_lossy(&answer);
        match text.strip_suffix('\n') {
            Some(name) if !name.is_empty() && !name.contains('\n') => Ok(name.to_owned()),
            _ => Err(io::Error::other(format!("unexpected answer {text:?}"))),
        }
    });
    (local, result)
}

/// `fetch_name`, panicking with the log on failure.
pub fn must_fetch_name(lb: &Ringlb, addr: SocketAddr) -> String {
    let (local, result) = fetch_name(addr);
    result.unwrap_or_else(|e| panic!("client {local}: {e}; log:\n{}", lb.log()))
}

/// A traffic connection kept open: it has been served (the server's name was read) unless
/// `wait_served` is still to be called.
pub struct HeldConn {
    pub local: SocketAddr,
    pub stream: TcpStream,
}

impl HeldConn {
    /// Connects through `addr` and sends the traffic line, without waiting for an answer.
    pub fn open(addr: SocketAddr) -> HeldConn {
        let (local, connected) = connect_from_known_port(addr);
        let mut stream = connected.unwrap_or_else(|e| panic!("connect from {local}: {e}"));
        stream.write_all(TRAFFIC_LINE).expect("write traffic line");
        HeldConn { local, stream }
    }

    /// Reads the serving server's name, waiting at most `timeout`.
    pub fn read_name(&mut self, timeout: Duration) -> io::Result<String> {
        self.stream.set_read_timeout(Some(timeout))?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            match self.stream.read(&mut byte)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("closed after {:?}", String::from_utf8_lossy(&line)),
                    ))
                }
                _ => line.push(byte[0]),
            }
            if line.len() > 64 {
                return Err(io::Error::other("answer line too long"));
            }
        }
        line.pop();
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Opens a connection and waits until it is served; returns it and the server's name.
    pub fn served(lb: &Ringlb, addr: SocketAddr) -> (HeldConn, String) {
        let mut conn = HeldConn::open(addr);
        let name = conn
            .read_name(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("held connection {}: {e}; log:\n{}", conn.local, lb.log()));
        (conn, name)
    }
}

impl Ringlb {
    /// Health transition lines (`ringlb: server BACKEND/SERVER is UP|DOWN: ...`) so far.
    pub fn health_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.starts_with("ringlb: server "))
            .map(str::to_owned)
            .collect()
    }

    /// Waits for the `n`th (from 1) line announcing that `server` (`be/s1`) is `state`
    /// (`"UP"`/`"DOWN"`); panics with the log if it does not come within `timeout`.
    pub fn wait_health(&self, server: &str, state: &str, n: usize, timeout: Duration) -> String {
        let prefix = format!("ringlb: server {server} is {state}: ");
        let found = wait_for(timeout, || {
            self.log()
                .lines()
                .filter(|l| l.starts_with(&prefix))
                .nth(n - 1)
                .map(str::to_owned)
        });
        found.unwrap_or_else(|| {
            panic!(
                "no {n}th \"{server} is {state}\" line within {timeout:?}; log:\n{}",
                self.log()
            )
        })
    }

    /// How many lines announce that `server` is `state`.
    pub fn health_count(&self, server: &str, state: &str) -> usize {
        let prefix = format!("ringlb: server {server} is {state}: ");
        self.log()
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// Reloads, listeners and threads

impl Ringlb {
    /// Replaces the config file with `config` in one rename, so that a reload never reads a
    /// half-written file (the way an editor or a deploy tool should do it too).
    pub fn write_config(&self, config: &str) {
        let tmp = self.dir.join("ringlb.json.new");
        fs::write(&tmp, config).expect("write new config");
        fs::rename(&tmp, &self.config_path).expect("rename new config into place");
    }

    /// Writes `config`, sends SIGHUP and waits (bounded) for the `ringlb: reload #n ...`
    /// line, ok or failed, which it returns. `n` counts every SIGHUP since the start, from 1.
    pub fn reload(&self, n: u64, config: &str) -> String {
        self.write_config(config);
        self.send_signal(nix::sys::signal::Signal::SIGHUP);
        self.wait_reload(n)
    }

    /// Waits for the `ringlb: reload #n ok|failed` line; panics with the log after 10 s.
    pub fn wait_reload(&self, n: u64) -> String {
        let ok = format!("ringlb: reload #{n} ok: ");
        let failed = format!("ringlb: reload #{n} failed: ");
        self.wait_for_line(Duration::from_secs(10), |l| {
            l.starts_with(&ok) || l.starts_with(&failed)
        })
        .unwrap_or_else(|| panic!("no \"reload #{n}\" line within 10 s; log:\n{}", self.log()))
    }

    /// A reader of this process's log that returns only what was written since its last
    /// call: for tests that wait for many lines in a log with thousands of them.
    pub fn log_cursor(&self) -> LogCursor {
        LogCursor {
            path: self.log_path.clone(),
            offset: 0,
            pending: Vec::new(),
            unread: std::collections::VecDeque::new(),
        }
    }

    /// Names of the process's threads (`ringlb-w0`, `ringlb-w1`, ...), from /proc.
    pub fn thread_names(&self) -> Vec<String> {
        let dir = format!("/proc/{}/task", self.pid());
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir}: {e}")) {
            let Ok(entry) = entry else { continue };
            // A thread that exited between readdir and read is simply gone.
            if let Ok(name) = fs::read_to_string(entry.path().join("comm")) {
                names.push(name.trim_end().to_owned());
            }
        }
        names.sort();
        names
    }
}

/// Reads a growing log file line by line, each complete line once.
pub struct LogCursor {
    path: PathBuf,
    offset: u64,
    /// The start of a line whose newline has not been written yet (bytes: a read may end
    /// inside a UTF-8 sequence).
    pending: Vec<u8>,
    /// Complete lines read from the file and not yet handed out.
    unread: std::collections::VecDeque<String>,
}

impl LogCursor {
    /// Every complete line written since the last call (or since the last line handed out
    /// by `wait_for_line`).
    pub fn new_lines(&mut self) -> Vec<String> {
        self.fill();
        self.unread.drain(..).collect()
    }

    /// Waits (bounded) for a new line satisfying `pred` and returns it; the lines before it
    /// are dropped, the ones after it stay for the next call.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        wait_for(timeout, || {
            self.fill();
            while let Some(line) = self.unread.pop_front() {
                if pred(&line) {
                    return Some(line);
                }
            }
            None
        })
    }

    fn fill(&mut self) {
        use std::io::{Seek, SeekFrom};
        let Ok(mut file) = fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let Ok(n) = file.read_to_end(&mut self.pending) else {
            return;
        };
        self.offset += n as u64;
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        let text = String::from_utf8_lossy(&complete);
        self.unread
            .extend(text.lines().map(|l| untimed(l).to_owned()));
    }
}

/// Inodes of the sockets listening on TCP `port` (IPv4 and IPv6), sorted. Stable across a
/// reload only if the listeners were neither closed nor reopened.
pub fn listening_inodes(port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != LISTEN {
                continue;
            }
            let local_port = cols[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.extend(cols[9].parse::<u64>().ok());
            }
        }
    }
    inodes.sort_unstable();
    inodes
}

/// Echoes everything until EOF, then half-closes; gives up on an error.
fn echo_to_eof(s: &mut TcpStream) {
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
}

impl Backend {
    /// Writes `name` and a newline, then echoes everything until EOF, half-closes and
    /// closes: a stream whose server the client can name and keep talking to.
    pub fn named_echo(name: &'static str) -> Backend {
        Backend::spawn(move |mut s| {
            if s.write_all(format!("{name}\n").as_bytes()).is_ok() {
                echo_to_eof(&mut s);
            }
        })
    }
}

/// Sends `msg` and reads it back from an echo path within `timeout`; false if it did not
/// come back whole in time (or the connection failed).
pub fn echoes(stream: &mut TcpStream, msg: &[u8], timeout: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(timeout));
    if stream.write_all(msg).is_err() {
        return false;
    }
    let mut got = vec![0u8; msg.len()];
    stream.read_exact(&mut got).is_ok() && got == msg
}

/// A plain HTTP/1.0 GET of `path` on `addr` (`Host` is the address); the whole answer.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    set_timeouts(&s, IO_TIMEOUT);
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let raw = read_to_eof(&mut s, 16 << 20)?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// The value of an unlabelled sample `name` in an OpenMetrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
