//! Real peers for the PROXY protocol and SNI tests: nginx (plain or TLS, with or without
//! `proxy_protocol`), HAProxy in TCP mode, self-signed certificates from the openssl CLI,
//! curl and headless Chromium as clients, a relay that splits the client's first bytes into
//! small segments, and PROXY v1/v2 headers and TLS ClientHellos built and parsed by hand.
//!
//! Every process is killed on drop, every wait is bounded, everything listens on loopback.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, listening_inodes, set_timeouts, temp_dir, wait_for, IO_TIMEOUT};

/// How long a peer process may take to listen.
const PEER_READY: Duration = Duration::from_secs(10);

/// Whether `program` is on the PATH (or, for sbin tools, in /usr/sbin).
pub fn have(program: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(program).exists())
}

/// Panics unless `program` is installed: scripts/test installs every peer these tests use.
pub fn require(program: &str, package: &str) {
    assert!(
        have(program),
        "{program} is not installed (apt-get install {package}; scripts/test installs it)"
    );
}

/// Runs `cmd` to completion with piped output, killing it after `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    collect_bounded(&mut child, timeout, &format!("{cmd:?}"))
}

/// Reads a spawned child's stdout and stderr (both piped) until it exits, killing it after
/// `timeout`.
pub fn collect_bounded(child: &mut Child, timeout: Duration, what: &str) -> Output {
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_for(timeout, || child.try_wait().expect("try_wait"));
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not finish within {timeout:?}");
    });
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Waits until something listens on TCP `port`, failing early if `child` exits.
fn wait_listening(child: &mut Child, port: u16, what: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + PEER_READY;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what} exited with {status} before listening:\n{}", log());
        }
        if listening(port) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not listening on {port} after {PEER_READY:?}:\n{}",
            log()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a TCP socket listens on `port`. Asks the kernel through `ss` (a filtered
/// sock_diag dump of listeners only) when it is there: /proc/net/tcp lists every socket, and
/// on a machine with a hundred thousand of them one read takes longer than nginx to start.
fn listening(port: u16) -> bool {
    let ss = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match ss {
        Ok(out) if out.status.success() => !out.stdout.is_empty(),
        _ => !listening_inodes(port).is_empty(),
    }
}

// ---------------------------------------------------------------------------------------------
// nginx

/// A self-signed certificate and its key, made by the openssl CLI.
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Cert {
    /// A certificate for `names` (the first is the CN, all are subjectAltNames) in `dir`.
    pub fn self_signed(dir: &Path, names: &[&str]) -> Cert {
        require("openssl", "openssl");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        let out = run_bounded(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .arg("-subj")
                .arg(format!("/CN={}", names[0]))
                .arg("-addext")
                .arg(format!("subjectAltName={}", san.join(",")))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cert { cert, key }
    }
}

/// How an nginx peer listens.
pub struct NginxSpec<'a> {
    /// Answers every request with this body and a newline.
    pub body: &'a str,
    /// `listen ... proxy_protocol`: every connection must start with a PROXY header.
    pub proxy_protocol: bool,
    /// `listen ... ssl` with this certificate.
    pub tls: Option<&'a Cert>,
    /// How many ports to listen on (the same server on each; `$server_port` tells them
    /// apart in the access log).
    pub ports: usize,
}

impl NginxSpec<'_> {
    pub fn plain(body: &str) -> NginxSpec<'_> {
        NginxSpec {
            body,
            proxy_protocol: false,
            tls: None,
            ports: 1,
        }
    }
}

/// One line of an nginx peer's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `$proxy_protocol_addr:$proxy_protocol_port`: `None` when the connection carried no
    /// address (no header, or a LOCAL / UNKNOWN one).
    pub proxy_src: Option<String>,
    /// `$proxy_protocol_server_addr:$proxy_protocol_server_port`, `None` likewise.
    pub proxy_dst: Option<String>,
    /// `$remote_addr:$remote_port`: the TCP peer.
    pub remote: String,
    pub server_port: u16,
    pub request: String,
    pub status: u16,
    /// `$ssl_server_name`, `None` without TLS or SNI.
    pub sni: Option<String>,
}

/// nginx in one process (`master_process off`, `daemon off`), with its config, logs and temp
/// paths in its own directory. Killed on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    ports: Vec<u16>,
}

impl Nginx {
    pub fn start(spec: &NginxSpec<'_>) -> Nginx {
        require("nginx", "nginx-light");
        let dir = temp_dir("nginx");
        let ports: Vec<u16> = (0..spec.ports.max(1)).map(|_| free_port()).collect();
        let d = dir.display();
        let mut opts = String::new();
        if spec.tls.is_some() {
            opts.push_str(" ssl");
        }
        if spec.proxy_protocol {
            opts.push_str(" proxy_protocol");
        }
        let listens: String = ports
            .iter()
            .map(|p| format!("        listen 127.0.0.1:{p}{opts};\n"))
            .collect();
        let tls = spec.tls.map_or_else(String::new, |c| {
            format!(
                "        ssl_certificate {};\n        ssl_certificate_key {};\n",
                c.cert.display(),
                c.key.display()
            )
        });
        let body = spec.body;
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format peer '$proxy_protocol_addr|$proxy_protocol_port|$proxy_protocol_server_addr|$proxy_protocol_server_port|$remote_addr:$remote_port|$server_port|$status|$ssl_server_name|$request';
    access_log {d}/access.log peer;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    keepalive_timeout 0;
    server {{
{listens}{tls}        location / {{ return 200 "{body}\n"; }}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let error_log = dir.join("error.log");
        for &p in &ports {
            wait_listening(&mut child, p, "nginx", || {
                fs::read_to_string(&error_log).unwrap_or_default()
            });
        }
        Nginx { child, dir, ports }
    }

    /// The first listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr_n(0)
    }

    pub fn addr_n(&self, n: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[n]))
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The access log so far, parsed.
    pub fn access(&self) -> Vec<Access> {
        fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(parse_access)
            .collect()
    }

    /// Waits (bounded) for an access line satisfying `pred`.
    pub fn wait_access(&self, timeout: Duration, pred: impl Fn(&Access) -> bool) -> Option<Access> {
        wait_for(timeout, || self.access().into_iter().find(|a| pred(a)))
    }

    /// Lines of the error log containing `needle`.
    pub fn error_lines(&self, needle: &str) -> Vec<String> {
        self.error_log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("nginx files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn parse_access(line: &str) -> Option<Access> {
    let f: Vec<&str> = line.splitn(9, '|').collect();
    if f.len() != 9 {
        return None;
    }
    let given = |s: &str| !s.is_empty() && s != "-";
    let pair = |a: &str, p: &str| (given(a) && given(p)).then(|| format!("{a}:{p}"));
    Some(Access {
        proxy_src: pair(f[0], f[1]),
        proxy_dst: pair(f[2], f[3]),
        remote: f[4].to_owned(),
        server_port: f[5].parse().ok()?,
        status: f[6].parse().ok()?,
        sni: given(f[7]).then(|| f[7].to_owned()),
        request: f[8].to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// HAProxy

/// HAProxy in TCP mode, in the foreground (`-db`), with one server: `server s1 <target>
/// <server_opts>`. Killed on drop.
pub struct Haproxy {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Haproxy {
    pub fn start(target: SocketAddr, server_opts: &str) -> Haproxy {
        require("haproxy", "haproxy");
        let dir = temp_dir("haproxy");
        let port = free_port();
        let conf = format!(
            "global\n    maxconn 256\n\
             defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
             backend be\n    server s1 {target} {server_opts}\n"
        );
        let conf_path = dir.join("haproxy.cfg");
        fs::write(&conf_path, conf).expect("write haproxy.cfg");
        let log_path = dir.join("haproxy.log");
        let log = fs::File::create(&log_path).expect("create haproxy log");
        let mut child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn haproxy");
        wait_listening(&mut child, port, "haproxy", || {
            fs::read_to_string(&log_path).unwrap_or_default()
        });
        Haproxy { child, dir, port }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("haproxy files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// What one HTTP exchange gave.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// Parses a complete HTTP/1.x answer (read to EOF).
pub fn parse_http(raw: &[u8]) -> Result<HttpAnswer, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of header in {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok(HttpAnswer {
        status,
        body: body.to_owned(),
    })
}

/// GET `/stats.json` from a stats listener without auth.
pub fn stats_json(addr: SocketAddr) -> serde_json::Value {
    let mut s = super::connect(addr);
    s.write_all(format!("GET /stats.json HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("send stats request");
    let raw = super::read_to_eof(&mut s, 8 << 20).expect("read stats answer");
    let answer = parse_http(&raw).expect("stats answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("stats.json parses")
}

/// A frontend's counter `field` in a stats.json document.
pub fn frontend_counter(stats: &serde_json::Value, frontend: &str, field: &str) -> u64 {
    let fe = stats["frontends"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == frontend))
        .unwrap_or_else(|| panic!("no frontend {frontend} in {stats}"));
    fe[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {field} in {fe}"))
}

/// Adds a `"stats": { "bind": ... }` section (loopback, no auth) to a config document.
pub fn with_stats(config: &str, stats: SocketAddr) -> String {
    let mut value: serde_json::Value = serde_json::from_str(config).expect("config is JSON");
    value["stats"] = serde_json::json!({ "bind": stats.to_string() });
    value.to_string()
}

/// What curl did.
#[derive(Debug)]
pub struct CurlResult {
    pub ok: bool,
    pub exit: Option<i32>,
    pub body: String,
    /// curl's `%{local_ip}:%{local_port}`: the connection's client address.
    pub local: Option<SocketAddr>,
    pub stderr: String,
}

const CURL_MARK: &str = "\n--curl-local--";

/// `curl -sk https://HOST:PORT/` with HOST resolved to 127.0.0.1, bounded at 10 s.
pub fn curl_https(host: &str, port: u16) -> CurlResult {
    require("curl", "curl");
    let out = run_bounded(
        Command::new("curl")
            .args(["-sS", "-k", "--max-time", "8", "--http1.1"])
            .arg("--resolve")
            .arg(format!("{host}:{port}:127.0.0.1"))
            .arg("-w")
            .arg(format!("{CURL_MARK}%{{local_ip}}:%{{local_port}}"))
            .arg(format!("https://{host}:{port}/")),
        Duration::from_secs(10),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, local) = match stdout.rsplit_once(CURL_MARK) {
        Some((b, l)) => (b.to_owned(), l.trim().parse().ok()),
        None => (stdout, None),
    };
    CurlResult {
        ok: out.status.success(),
        exit: out.status.code(),
        body,
        local,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `openssl s_client -connect addr -servername name`, sending one HTTP/1.0 request; returns
/// stdout (session details and the answer) and whether it exited successfully.
pub fn s_client_get(addr: SocketAddr, name: &str) -> (bool, String) {
    require("openssl", "openssl");
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-ign_eof", "-verify_quiet"])
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-servername")
        .arg(name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    let request = format!("GET / HTTP/1.0\r\nHost: {name}\r\n\r\n");
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(request.as_bytes());
        // stdin closes here; -ign_eof keeps the session until the server closes.
    });
    let out = collect_bounded(&mut child, Duration::from_secs(10), "openssl s_client");
    let _ = writer.join();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Debian's chromium, when installed (scripts/test installs it; CI must have it).
pub fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed: scripts/test installs it"
        );
        eprintln!("chromium test skipped: chromium is not installed (apt-get install chromium)");
    }
    found
}

/// Headless Chromium's `--dump-dom` of `https://HOST:PORT/`, HOST mapped to 127.0.0.1 and
/// certificate errors ignored; bounded at 40 s.
pub fn chromium_dump(bin: &str, profile: &Path, host: &str, port: u16) -> String {
    let out = run_bounded(
        Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--ignore-certificate-errors",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--host-resolver-rules=MAP {host} 127.0.0.1"))
            .arg("--dump-dom")
            .arg(format!("https://{host}:{port}/")),
        Duration::from_secs(40),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The splitting relay

/// What the relay saw on one connection.
#[derive(Debug, Clone, Default)]
pub struct RelayedConn {
    /// The relay's address towards the target: the client address the target sees.
    pub upstream_local: Option<SocketAddr>,
    /// Writes of client bytes to the target before the target's first byte came back.
    pub writes_before_answer: usize,
    /// The client's first bytes (up to 64 KiB).
    pub first_bytes: Vec<u8>,
}

impl RelayedConn {
    /// The size of the client's first TLS handshake message (a ClientHello: 4-byte header
    /// plus its length), read from the first record; `None` if the bytes are not TLS.
    pub fn client_hello_len(&self) -> Option<usize> {
        let b = &self.first_bytes;
        if b.len() < 9 || b[0] != 0x16 || b[5] != 0x01 {
            return None;
        }
        Some(4 + (usize::from(b[6]) << 16 | usize::from(b[7]) << 8 | usize::from(b[8])))
    }
}

/// A loopback TCP relay in front of `target`: each client's first `split_bytes` bytes go to
/// the target in writes of at most `chunk` bytes with `gap` between them (TCP_NODELAY, so
/// each is its own segment), then bytes are copied both ways as they come.
pub struct SplitRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Arc<Mutex<RelayedConn>>>>>,
}

impl SplitRelay {
    pub fn start(
        target: SocketAddr,
        chunk: usize,
        gap: Duration,
        split_bytes: usize,
    ) -> SplitRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Arc<Mutex<RelayedConn>>>>> = Arc::default();
        let (stopping, all) = (stop.clone(), conns.clone());
        thread::Builder::new()
            .name("split-relay".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let seen = Arc::new(Mutex::new(RelayedConn::default()));
                    all.lock().unwrap().push(seen.clone());
                    thread::spawn(move || {
                        relay_one(client, target, chunk, gap, split_bytes, &seen)
                    });
                }
            })
            .expect("spawn relay thread");
        SplitRelay { addr, stop, conns }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every connection relayed so far.
    pub fn conns(&self) -> Vec<RelayedConn> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }
}

impl Drop for SplitRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn relay_one(
    client: TcpStream,
    target: SocketAddr,
    chunk: usize,
    gap: Duration,
    split_bytes: usize,
    seen: &Arc<Mutex<RelayedConn>>,
) {
    set_timeouts(&client, IO_TIMEOUT);
    let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        return;
    };
    set_timeouts(&upstream, IO_TIMEOUT);
    let _ = upstream.set_nodelay(true);
    seen.lock().unwrap().upstream_local = upstream.local_addr().ok();
    let answered = Arc::new(AtomicBool::new(false));

    let (Ok(mut up_r), Ok(mut client_w)) = (upstream.try_clone(), client.try_clone()) else {
        return;
    };
    let answered_down = answered.clone();
    let down = thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match up_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answered_down.store(true, Ordering::SeqCst);
                    if client_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = client_w.shutdown(Shutdown::Write);
    });

    let (mut client_r, mut up_w) = (client, upstream);
    let mut buf = vec![0u8; 16 * 1024];
    let mut forwarded = 0usize;
    loop {
        let n = match client_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut s = seen.lock().unwrap();
            let room = (64 * 1024usize).saturating_sub(s.first_bytes.len());
            s.first_bytes.extend_from_slice(&buf[..n.min(room)]);
        }
        let mut data = &buf[..n];
        let mut failed = false;
        while !data.is_empty() {
            let piece = if forwarded < split_bytes {
                data.len().min(chunk)
            } else {
                data.len()
            };
            if up_w.write_all(&data[..piece]).is_err() {
                failed = true;
                break;
            }
            if !answered.load(Ordering::SeqCst) {
                seen.lock().unwrap().writes_before_answer += 1;
            }
            forwarded += piece;
            data = &data[piece..];
            if forwarded < split_bytes + piece && !data.is_empty() {
                thread::sleep(gap);
            }
        }
        if failed {
            break;
        }
    }
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = down.join();
}

// ---------------------------------------------------------------------------------------------
// PROXY protocol headers

/// The 12-byte signature of a PROXY v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

pub const PP2_TYPE_AUTHORITY: u8 = 0x02;
pub const PP2_TYPE_CRC32C: u8 = 0x03;
pub const PP2_TYPE_UNIQUE_ID: u8 = 0x05;

/// A v1 header for a TCP connection from `src` to `dst` (same family).
pub fn proxy_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A v2 PROXY-command header for a TCP connection from `src` to `dst`, with `tlvs`.
pub fn proxy_v2(src: SocketAddr, dst: SocketAddr, tlvs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    let fam = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            0x11
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            0x21
        }
        _ => panic!("mixed families {src} {dst}"),
    };
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&dst.port().to_be_bytes());
    for (t, v) in tlvs {
        body.push(*t);
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
    }
    v2_frame(0x21, fam, &body)
}

/// A v2 LOCAL-command header (no addresses).
pub fn proxy_v2_local() -> Vec<u8> {
    v2_frame(0x20, 0x00, &[])
}

fn v2_frame(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A parsed PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    pub version: u8,
    /// False for v2 LOCAL and v1 UNKNOWN.
    pub proxied: bool,
    pub src: Option<SocketAddr>,
    pub dst: Option<SocketAddr>,
    pub tlvs: Vec<(u8, Vec<u8>)>,
    /// The header's bytes as received.
    pub raw: Vec<u8>,
}

impl ProxyHeader {
    pub fn tlv(&self, t: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the CRC32C TLV matches the header (computed with the TLV's value zeroed).
    pub fn crc32c_ok(&self) -> Option<bool> {
        let want = self.tlv(PP2_TYPE_CRC32C)?;
        if want.len() != 4 {
            return Some(false);
        }
        // Find the TLV in the raw bytes and zero its value.
        let mut raw = self.raw.clone();
        let mut at = 16 + addr_len(raw[13]);
        while at + 3 <= raw.len() {
            let len = usize::from(u16::from_be_bytes([raw[at + 1], raw[at + 2]]));
            if raw[at] == PP2_TYPE_CRC32C {
                raw[at + 3..at + 3 + len].fill(0);
                break;
            }
            at += 3 + len;
        }
        Some(crc32c(&raw).to_be_bytes() == want)
    }
}

fn addr_len(fam: u8) -> usize {
    match fam >> 4 {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    }
}

/// Parses a PROXY header at the start of `buf`: `Ok(None)` while incomplete, the header and
/// its length once complete.
pub fn parse_proxy(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, String> {
    if (buf.len() >= 12 && buf[..12] == V2_SIGNATURE) || V2_SIGNATURE.starts_with(buf) {
        return parse_v2(buf);
    }
    if !buf.starts_with(b"PROXY ") && !b"PROXY ".starts_with(buf) {
        return Err(format!(
            "no PROXY signature: {:?}",
            String::from_utf8_lossy(buf)
        ));
    }
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() > 107 {
            Err("v1 header longer than 107 bytes".into())
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|e| e.to_string())?;
    let parts: Vec<&str> = line.split(' ').collect();
    let header = |proxied, src, dst| ProxyHeader {
        version: 1,
        proxied,
        src,
        dst,
        tlvs: Vec::new(),
        raw: buf[..end + 2].to_vec(),
    };
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Some((header(false, None, None), end + 2))),
        ["PROXY", "TCP4" | "TCP6", s, d, sp, dp] => {
            let addr = |ip: &str, port: &str| -> Result<SocketAddr, String> {
                let ip: IpAddr = ip.parse().map_err(|e| format!("{ip}: {e}"))?;
                let port: u16 = port.parse().map_err(|e| format!("{port}: {e}"))?;
                Ok(SocketAddr::new(ip, port))
            };
            Ok(Some((
                header(true, Some(addr(s, sp)?), Some(addr(d, dp)?)),
                end + 2,
            )))
        }
        _ => Err(format!("bad v1 line {line:?}")),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, String> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if buf.len() < len {
        return Ok(None);
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    if ver_cmd >> 4 != 2 {
        return Err(format!("version nibble {ver_cmd:#x}"));
    }
    let proxied = match ver_cmd & 0x0f {
        0 => false,
        1 => true,
        c => return Err(format!("command {c}")),
    };
    let body = &buf[16..len];
    let alen = addr_len(fam);
    if body.len() < alen {
        return Err(format!(
            "address block of {} bytes for family {fam:#x}",
            body.len()
        ));
    }
    let (src, dst) = match (proxied, fam >> 4) {
        (true, 1) => {
            let ip = |o: usize| IpAddr::from([body[o], body[o + 1], body[o + 2], body[o + 3]]);
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            (
                Some(SocketAddr::new(ip(0), port(8))),
                Some(SocketAddr::new(ip(4), port(10))),
            )
        }
        (true, 2) => {
            let ip = |o: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&body[o..o + 16]);
                IpAddr::from(a)
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            (
                Some(SocketAddr::new(ip(0), port(32))),
                Some(SocketAddr::new(ip(16), port(34))),
            )
        }
        _ => (None, None),
    };
    let mut tlvs = Vec::new();
    let mut rest = &body[alen..];
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err("truncated TLV".into());
        }
        let l = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        if rest.len() < 3 + l {
            return Err("TLV longer than the header".into());
        }
        tlvs.push((rest[0], rest[3..3 + l].to_vec()));
        rest = &rest[3 + l..];
    }
    Ok(Some((
        ProxyHeader {
            version: 2,
            proxied,
            src,
            dst,
            tlvs,
            raw: buf[..len].to_vec(),
        },
        len,
    )))
}

/// CRC-32C (Castagnoli), bit by bit: headers are short.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// What a `ProxyServer` got on one connection.
#[derive(Debug, Clone)]
pub struct ProxyReceived {
    pub header: Result<ProxyHeader, String>,
    /// The bytes after the header, to the client's EOF.
    pub rest: Vec<u8>,
}

/// A loopback server for connections that start with a PROXY header: it reads the header
/// (within 2 s), records it, writes `greeting` at once (a server that speaks first), then
/// echoes everything after the header until EOF, and records those bytes too.
pub struct ProxyServer {
    backend: super::Backend,
    got: Arc<Mutex<Vec<ProxyReceived>>>,
}

impl ProxyServer {
    pub fn start(greeting: &'static str) -> ProxyServer {
        let got: Arc<Mutex<Vec<ProxyReceived>>> = Arc::default();
        let record = got.clone();
        let backend = super::Backend::spawn(move |mut s| {
            set_timeouts(&s, Duration::from_secs(2));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let header = loop {
                match parse_proxy(&buf) {
                    Ok(Some((h, n))) => break Ok((h, n)),
                    Err(e) => break Err(e),
                    Ok(None) => {}
                }
                match s.read(&mut chunk) {
                    Ok(0) => break Err(format!("EOF after {buf:?}")),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) => break Err(format!("{e} after {buf:?}")),
                }
            };
            let (header, mut rest) = match header {
                Ok((h, n)) => (Ok(h), buf[n..].to_vec()),
                Err(e) => (Err(e), Vec::new()),
            };
            if header.is_ok() {
                set_timeouts(&s, IO_TIMEOUT);
                let _ = s.write_all(greeting.as_bytes());
                let _ = s.write_all(&rest);
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            rest.extend_from_slice(&chunk[..n]);
                            if s.write_all(&chunk[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            }
            record.lock().unwrap().push(ProxyReceived { header, rest });
        });
        ProxyServer { backend, got }
    }

    pub fn addr(&self) -> SocketAddr {
        self.backend.addr()
    }

    /// Waits (bounded) for the `n`th (from 1) finished connection.
    pub fn wait_received(&self, n: usize, timeout: Duration) -> Option<ProxyReceived> {
        wait_for(timeout, || self.got.lock().unwrap().get(n - 1).cloned())
    }
}

// ---------------------------------------------------------------------------------------------
// TLS ClientHello

/// A TLS 1.3 ClientHello record for `sni` (none if empty) with a key share of `big_share`
/// bytes for group 0x11EC (X25519MLKEM768, 1216 bytes in real clients) besides an X25519
/// one, and `padding` bytes of padding extension. Not for a real handshake: for routing.
pub fn client_hello(sni: &str, big_share: usize, padding: usize) -> Vec<u8> {
    fn ext(out: &mut Vec<u8>, t: u16, body: &[u8]) {
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut exts = Vec::new();
    if !sni.is_empty() {
        let mut list = vec![0u8];
        list.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        list.extend_from_slice(sni.as_bytes());
        let mut body = (list.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(&list);
        ext(&mut exts, 0x0000, &body);
    }
    ext(&mut exts, 0x000a, &[0, 4, 0x11, 0xec, 0x00, 0x1d]);
    ext(&mut exts, 0x000d, &[0, 4, 0x08, 0x04, 0x04, 0x03]);
    ext(&mut exts, 0x002b, &[2, 0x03, 0x04]);
    let mut shares = Vec::new();
    if big_share > 0 {
        shares.extend_from_slice(&[0x11, 0xec]);
        shares.extend_from_slice(&(big_share as u16).to_be_bytes());
        shares.extend((0..big_share).map(|i| (i * 7 + 3) as u8));
    }
    shares.extend_from_slice(&[0x00, 0x1d, 0, 32]);
    shares.extend((0..32).map(|i| (i * 5 + 1) as u8));
    let mut ks = (shares.len() as u16).to_be_bytes().to_vec();
    ks.extend_from_slice(&shares);
    ext(&mut exts, 0x0033, &ks);
    if padding > 0 {
        ext(&mut exts, 0x0015, &vec![0u8; padding]);
    }

    let mut hello = vec![0x03, 0x03];
    hello.extend((0..32).map(|i| i as u8));
    hello.push(32);
    hello.extend((0..32).map(|i| 0xa0 + i as u8));
    hello.extend_from_slice(&[0, 2, 0x13, 0x01]);
    hello.extend_from_slice(&[1, 0]);
    hello.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    hello.extend_from_slice(&exts);

    let mut hs = vec![0x01];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// Writes `data` in pieces of at most `chunk` bytes with `gap` between them (TCP_NODELAY).
pub fn write_split(s: &mut TcpStream, data: &[u8], chunk: usize, gap: Duration) -> io::Result<()> {
    s.set_nodelay(true)?;
    for (i, piece) in data.chunks(chunk).enumerate() {
        if i > 0 {
            thread::sleep(gap);
        }
        s.write_all(piece)?;
    }
    Ok(())
}

/// The value of `key="..."` (quoted, may contain spaces) or `key=word` in a log line.
pub fn quoted_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    if let Some(q) = rest.strip_prefix('"') {
        q.find('"').map(|e| q[..e].to_owned())
    } else {
        Some(rest.split_whitespace().next().unwrap_or("").to_owned())
    }
}
